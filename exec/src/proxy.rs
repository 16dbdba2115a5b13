//! `GLEXEC_SOURCE_PROXY` → `GLEXEC_TARGET_PROXY`, as gLExec does. The
//! launcher reads the source with the caller's rights (it must be the
//! caller's own file) and writes the copy with the target's, never as root
//! into a directory someone else controls (`creds::as_caller`): mode 0600,
//! never through a symbolic link.

use std::io::{Read, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::Path;

use rustix::fs::OFlags;

/// Largest proxy file copied.
const MAX_PROXY_BYTES: u64 = 1 << 20;

/// Client errors (201) and internal ones (202).
#[derive(Debug)]
pub enum ProxyError {
    Client(String),
    Internal(String),
}

/// Where the copy goes (§14.8): a file name (no `/`) or an absolute path
/// directly inside the working directory, or exactly `default_tmp`
/// (`/tmp/x509up_u<target uid>`); unset: `x509up` in the working directory
/// if there is one, else `default_tmp`. Anything else would let the pilot
/// write a file of its choice wherever the target can write.
pub fn destination(
    requested: Option<&std::ffi::OsStr>,
    workdir: Option<&Path>,
    default_tmp: &Path,
) -> Result<std::path::PathBuf, String> {
    let Some(requested) = requested else {
        return Ok(workdir.map_or_else(|| default_tmp.to_path_buf(), |w| w.join("x509up")));
    };
    let path = Path::new(requested);
    if path == default_tmp {
        return Ok(path.to_path_buf());
    }
    let plain_name = |p: &Path| {
        let mut parts = p.components();
        matches!(
            (parts.next(), parts.next()),
            (Some(std::path::Component::Normal(_)), None)
        )
    };
    match workdir {
        Some(w) if plain_name(path) => Ok(w.join(path)),
        Some(w)
            if path.parent() == Some(w)
                && path.file_name().is_some_and(|n| plain_name(Path::new(n))) =>
        {
            Ok(path.to_path_buf())
        }
        _ => Err(format!(
            "GLEXEC_TARGET_PROXY {}: must be a file name in the working directory or {}",
            path.display(),
            default_tmp.display()
        )),
    }
}

/// PEM labels a proxy file may hold.
const PROXY_LABELS: [&str; 5] = [
    "CERTIFICATE",
    "RSA PRIVATE KEY",
    "PRIVATE KEY",
    "EC PRIVATE KEY",
    "ENCRYPTED PRIVATE KEY",
];

/// The proxy must be the admitted user's: PEM certificates whose first
/// certificate without an RFC 3820 ProxyCertInfo extension (the end entity)
/// has the subject `dn` (§6.8 form). So the pilot can only hand the payload
/// a proxy of the user whose job it is, never a file of its own choosing.
pub fn check_owner(bytes: &[u8], dn: &str) -> Result<(), ProxyError> {
    let refuse = |m: &str| ProxyError::Client(format!("GLEXEC_SOURCE_PROXY: {m}"));
    // Nothing but PEM blocks of a credential, and blank lines: a proxy
    // file that is also a script or anything else is not one.
    let text = std::str::from_utf8(bytes).map_err(|_| refuse("not PEM text"))?;
    let mut open: Option<&str> = None;
    for line in text.lines().map(str::trim_end) {
        match open {
            None if line.is_empty() => {}
            None => {
                let label = line
                    .strip_prefix("-----BEGIN ")
                    .and_then(|l| l.strip_suffix("-----"))
                    .ok_or_else(|| refuse("text outside PEM blocks"))?;
                if !PROXY_LABELS.contains(&label) {
                    return Err(refuse(&format!("a {label} block has no place in a proxy")));
                }
                open = Some(label);
            }
            Some(label) => {
                if line
                    .strip_prefix("-----END ")
                    .and_then(|l| l.strip_suffix("-----"))
                    == Some(label)
                {
                    open = None;
                }
            }
        }
    }
    if open.is_some() {
        return Err(refuse("an unterminated PEM block"));
    }
    let blocks = jobseal_core::pem::parse_blocks(bytes).map_err(|e| refuse(&e.0))?;
    for (i, block) in blocks
        .into_iter()
        .filter(|b| b.label == "CERTIFICATE")
        .enumerate()
    {
        let cert = jobseal_verify::parse::ParsedCert::from_der(block.der, i)
            .map_err(|e| refuse(&e.message))?;
        let is_proxy = cert
            .extensions_with(jobseal_core::oid::PROXY_CERT_INFO)
            .next()
            .is_some();
        if !is_proxy {
            return if cert.subject_dn() == dn {
                Ok(())
            } else {
                Err(refuse(&format!(
                    "a credential of {}, not of the job's user {dn}",
                    cert.subject_dn()
                )))
            };
        }
    }
    Err(refuse(
        "no end-entity certificate: not an RFC 3820 proxy chain",
    ))
}

/// Read the source proxy: a regular file owned by `caller_uid`, reached
/// without following a final symbolic link, readable by nobody else.
pub fn read_source(path: &Path, caller_uid: u32) -> Result<Vec<u8>, ProxyError> {
    let shown = path.display();
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags((OFlags::NOFOLLOW | OFlags::NONBLOCK).bits() as i32)
        .open(path)
        .map_err(|e| ProxyError::Client(format!("GLEXEC_SOURCE_PROXY {shown}: {e}")))?;
    let meta = file
        .metadata()
        .map_err(|e| ProxyError::Client(format!("GLEXEC_SOURCE_PROXY {shown}: {e}")))?;
    if !meta.file_type().is_file() {
        return Err(ProxyError::Client(format!(
            "GLEXEC_SOURCE_PROXY {shown}: not a regular file"
        )));
    }
    if meta.uid() != caller_uid {
        return Err(ProxyError::Client(format!(
            "GLEXEC_SOURCE_PROXY {shown}: not owned by the caller"
        )));
    }
    if meta.mode() & 0o077 != 0 {
        return Err(ProxyError::Client(format!(
            "GLEXEC_SOURCE_PROXY {shown}: readable or writable by others (must be 0600)"
        )));
    }
    let mut bytes = Vec::new();
    file.take(MAX_PROXY_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| ProxyError::Client(format!("GLEXEC_SOURCE_PROXY {shown}: {e}")))?;
    if bytes.len() as u64 > MAX_PROXY_BYTES {
        return Err(ProxyError::Client(format!(
            "GLEXEC_SOURCE_PROXY {shown}: too large"
        )));
    }
    Ok(bytes)
}

/// Write `bytes` to `target` with the current thread's credentials: a new
/// file next to it (O_CREAT|O_EXCL|O_NOFOLLOW, 0600), then renamed over the
/// target (a rename replaces a symbolic link, it never follows it).
pub fn write_here(target: &Path, bytes: &[u8]) -> Result<(), String> {
    let shown = target.display();
    let name = target
        .file_name()
        .ok_or_else(|| format!("GLEXEC_TARGET_PROXY {shown}: no file name"))?;
    let mut tmp_name = std::ffi::OsString::from(".");
    tmp_name.push(name);
    tmp_name.push(format!(".jobseal-{}", std::process::id()));
    let tmp = target.with_file_name(tmp_name);
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(OFlags::NOFOLLOW.bits() as i32)
        .open(&tmp)
        .map_err(|e| format!("GLEXEC_TARGET_PROXY {shown}: {e}"))?;
    let written = file
        .write_all(bytes)
        .and_then(|()| file.sync_all())
        .and_then(|()| std::fs::rename(&tmp, target));
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(format!("GLEXEC_TARGET_PROXY {shown}: {e}"));
    }
    Ok(())
}

/// `GLEXEC_SOURCE_PROXY` as the launch service takes it (§14.14): a
/// credential, not just a file naming the user. Its chain must validate to
/// a CA of `ca_dir` at `at` (signatures, validity, RFC 3820 rules), end at
/// the admitted user `dn`, begin with a proxy, and hold the private key of
/// that proxy. A file that merely carries the user's public certificate
/// beside another key is refused.
pub fn check_credential(
    bytes: &[u8],
    ca_dir: &Path,
    dn: &str,
    at: jobseal_verify::UnixTime,
) -> Result<(), ProxyError> {
    let refuse = |m: &str| ProxyError::Client(format!("GLEXEC_SOURCE_PROXY: {m}"));
    check_owner(bytes, dn)?;
    let blocks = jobseal_core::pem::parse_blocks(bytes).map_err(|e| refuse(&e.0))?;
    let mut certs = Vec::new();
    let mut keys = Vec::new();
    for block in blocks {
        if block.label == "CERTIFICATE" {
            let cert = jobseal_verify::parse::ParsedCert::from_der(block.der, certs.len())
                .map_err(|e| refuse(&e.message))?;
            certs.push(cert);
        } else {
            keys.push((block.label, block.der));
        }
    }
    let Some(leaf) = certs.first() else {
        return Err(refuse("no certificate"));
    };
    if leaf
        .extensions_with(jobseal_core::oid::PROXY_CERT_INFO)
        .next()
        .is_none()
    {
        return Err(refuse("the first certificate is not an RFC 3820 proxy"));
    }
    let [(label, key)] = keys.as_slice() else {
        return Err(refuse(&format!(
            "{} private keys (a proxy holds exactly one, its own)",
            keys.len()
        )));
    };
    if !key_matches(label, key, leaf.spki()) {
        return Err(refuse(
            "the private key is not the key of the proxy certificate",
        ));
    }
    let trust = jobseal_verify::trust::TrustStore::open(ca_dir).map_err(|e| refuse(&e.message))?;
    let options = jobseal_verify::path::PathOptions {
        at,
        clock_skew: jobseal_verify::DEFAULT_CLOCK_SKEW,
        algorithms: jobseal_verify::sig::AlgorithmPolicy::default(),
    };
    let validated =
        jobseal_verify::path::validate(&certs, &trust, &options).map_err(|e| refuse(&e.message))?;
    if validated.identity.end_entity != dn {
        return Err(refuse(&format!(
            "a credential of {}, not of the job's user {dn}",
            validated.identity.end_entity
        )));
    }
    Ok(())
}

/// Whether the private key `der` (PEM `label`) is the key of the
/// SubjectPublicKeyInfo `spki`: RSA (PKCS#1 or PKCS#8) or ECDSA P-256/P-384
/// (PKCS#8). An encrypted or other key does not match: a proxy's key is
/// never encrypted.
fn key_matches(label: &str, der: &[u8], spki: &[u8]) -> bool {
    use ring::signature::{self, KeyPair};
    let Some(public) = spki_bits(spki) else {
        return false;
    };
    let rsa = match label {
        "RSA PRIVATE KEY" => signature::RsaKeyPair::from_der(der).ok(),
        "PRIVATE KEY" => signature::RsaKeyPair::from_pkcs8(der).ok(),
        _ => None,
    };
    if let Some(pair) = rsa {
        return pair.public().as_ref() == public;
    }
    if label != "PRIVATE KEY" {
        return false;
    }
    let rng = ring::rand::SystemRandom::new();
    [
        &signature::ECDSA_P256_SHA256_ASN1_SIGNING,
        &signature::ECDSA_P384_SHA384_ASN1_SIGNING,
    ]
    .into_iter()
    .find_map(|alg| signature::EcdsaKeyPair::from_pkcs8(alg, der, &rng).ok())
    .is_some_and(|pair| pair.public_key().as_ref() == public)
}

/// The subjectPublicKey bits of a SubjectPublicKeyInfo.
fn spki_bits(spki: &[u8]) -> Option<&[u8]> {
    use der::Decode;
    let info = spki::SubjectPublicKeyInfoRef::from_der(spki).ok()?;
    info.subject_public_key.as_bytes()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn the_destination_is_the_working_directory_or_the_default() {
        let tmp = Path::new("/tmp/x509up_u1234");
        let w = Path::new("/var/lib/jobseal/work/ab");
        let d =
            |r: Option<&str>, w: Option<&Path>| destination(r.map(std::ffi::OsStr::new), w, tmp);
        assert_eq!(d(None, Some(w)).unwrap(), w.join("x509up"));
        assert_eq!(d(None, None).unwrap(), tmp);
        assert_eq!(d(Some("p.pem"), Some(w)).unwrap(), w.join("p.pem"));
        assert_eq!(
            d(Some("/var/lib/jobseal/work/ab/p.pem"), Some(w)).unwrap(),
            w.join("p.pem")
        );
        assert_eq!(d(Some("/tmp/x509up_u1234"), None).unwrap(), tmp);
        for bad in [
            "/home/alice/.bashrc",
            "../x",
            "sub/x",
            "/var/lib/jobseal/work/ab/sub/x",
            "/tmp/x509up_u999",
            ".",
        ] {
            assert!(d(Some(bad), Some(w)).is_err(), "{bad}");
        }
        assert!(d(Some("p.pem"), None).is_err());
    }

    #[test]
    fn copies_with_0600_and_replaces_a_symlink_without_following_it() {
        let dir = tempfile::tempdir().unwrap();
        let me = rustix::process::getuid().as_raw();
        let src = dir.path().join("src");
        std::fs::write(&src, b"PROXY").unwrap();
        std::fs::set_permissions(&src, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(matches!(read_source(&src, me), Err(ProxyError::Client(_))));
        std::fs::set_permissions(&src, std::fs::Permissions::from_mode(0o600)).unwrap();
        let bytes = read_source(&src, me).unwrap();
        let victim = dir.path().join("victim");
        std::fs::write(&victim, b"keep").unwrap();
        let target = dir.path().join("target");
        std::os::unix::fs::symlink(&victim, &target).unwrap();
        write_here(&target, &bytes).unwrap();
        assert_eq!(std::fs::read(&victim).unwrap(), b"keep");
        let meta = std::fs::symlink_metadata(&target).unwrap();
        assert!(meta.file_type().is_file());
        assert_eq!(meta.mode() & 0o777, 0o600);
        assert_eq!(std::fs::read(&target).unwrap(), b"PROXY");
        // A symlinked source is refused.
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&src, &link).unwrap();
        assert!(read_source(&link, me).is_err());
    }
}
