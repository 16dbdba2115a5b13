//! Finding and loading the user's credential the way grid tools do, and
//! refusing, before anything is signed, an issuer that cannot work.

use std::path::{Path, PathBuf};

use der::Decode;
use jobseal_core::asn1::{self, ProxyCertInfo};
use jobseal_core::pem::parse_blocks;
use jobseal_core::time::UnixTime;
use jobseal_core::voms::{self, VomsAc};
use jobseal_core::{name, oid, tlv};
use x509_cert::Certificate;
use zeroize::Zeroizing;

use crate::IssueError;
use crate::keys::{self, KeyDer, KeyError};
use crate::signer::SigningKey;

/// Where the credential comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    /// A proxy file: certificate, private key, then the issuer chain.
    Proxy(PathBuf),
    /// A certificate (optionally followed by its chain) and a key file.
    CertKey { cert: PathBuf, key: PathBuf },
    /// A PKCS#12 file.
    Pkcs12(PathBuf),
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Proxy(p) => write!(f, "proxy {}", p.display()),
            Self::CertKey { cert, key } => write!(
                f,
                "certificate {} with key {}",
                cert.display(),
                key.display()
            ),
            Self::Pkcs12(p) => write!(f, "PKCS#12 file {}", p.display()),
        }
    }
}

/// Command-line choices; `None` means "not given".
#[derive(Clone, Debug, Default)]
pub struct Explicit {
    pub proxy: Option<PathBuf>,
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
}

/// The environment the search reads, injectable for tests.
#[derive(Clone, Debug, Default)]
pub struct Environment {
    pub x509_user_proxy: Option<PathBuf>,
    pub x509_user_cert: Option<PathBuf>,
    pub x509_user_key: Option<PathBuf>,
    pub home: Option<PathBuf>,
    pub uid: Option<u32>,
}

impl Environment {
    /// Read the process environment.
    pub fn from_process() -> Self {
        use std::os::unix::fs::MetadataExt;
        let var = |k: &str| {
            std::env::var_os(k)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        };
        Self {
            x509_user_proxy: var("X509_USER_PROXY"),
            x509_user_cert: var("X509_USER_CERT"),
            x509_user_key: var("X509_USER_KEY"),
            home: var("HOME"),
            // The owner of /proc/self is the process's uid: no libc call needed.
            uid: std::fs::metadata("/proc/self").ok().map(|m| m.uid()),
        }
    }
}

/// Pick the credential as grid users expect: explicit flags, then
/// `X509_USER_PROXY`, then `X509_USER_CERT`/`X509_USER_KEY`, then
/// `/tmp/x509up_u<uid>`, then `~/.globus/usercert.pem` + `userkey.pem`, then
/// `~/.globus/usercred.p12`.
pub fn find_source(explicit: &Explicit, env: &Environment) -> Result<Source, IssueError> {
    if let Some(p) = &explicit.proxy {
        return Ok(Source::Proxy(p.clone()));
    }
    match (&explicit.cert, &explicit.key) {
        (Some(c), Some(k)) => {
            return Ok(Source::CertKey {
                cert: c.clone(),
                key: k.clone(),
            });
        }
        (Some(c), None) if is_p12(c) => return Ok(Source::Pkcs12(c.clone())),
        (Some(_), None) | (None, Some(_)) => {
            return Err(IssueError::Credential(
                "--cert and --key go together (or give --cert FILE.p12 alone)".into(),
            ));
        }
        (None, None) => {}
    }
    if let Some(p) = &env.x509_user_proxy {
        return set_by("X509_USER_PROXY", p).map(|()| Source::Proxy(p.clone()));
    }
    if let Some(source) = from_cert_key_variables(env)? {
        return Ok(source);
    }
    if let Some(uid) = env.uid {
        let p = PathBuf::from(format!("/tmp/x509up_u{uid}"));
        if p.exists() {
            return Ok(Source::Proxy(p));
        }
    }
    if let Some(home) = &env.home {
        let globus = home.join(".globus");
        let (cert, key) = (globus.join("usercert.pem"), globus.join("userkey.pem"));
        if cert.exists() && key.exists() {
            return Ok(Source::CertKey { cert, key });
        }
        let p12 = globus.join("usercred.p12");
        if p12.exists() {
            return Ok(Source::Pkcs12(p12));
        }
    }
    Err(IssueError::Credential(
        "no credential found: give --proxy FILE or --cert/--key, set X509_USER_PROXY, run voms-proxy-init, \
         or install ~/.globus/usercert.pem and userkey.pem"
            .into(),
    ))
}

/// A file named by an environment variable the user set must be there:
/// falling back to another credential would sign under one they did not
/// choose (as `grid-proxy-init`, which stops with "Couldn't find valid
/// credentials").
fn set_by(var: &str, path: &Path) -> Result<(), IssueError> {
    match std::fs::metadata(path) {
        Ok(m) if m.is_file() => Ok(()),
        Ok(_) => Err(IssueError::Credential(format!(
            "{var}={} is not a regular file: point {var} at your credential or unset it",
            path.display()
        ))),
        Err(e) => Err(IssueError::Credential(format!(
            "{var}={} cannot be used ({e}): point {var} at your credential or unset it",
            path.display()
        ))),
    }
}

/// `X509_USER_CERT`/`X509_USER_KEY`: either one alone takes the other from
/// `~/.globus`, as the Globus tools do; both must then exist.
fn from_cert_key_variables(env: &Environment) -> Result<Option<Source>, IssueError> {
    if env.x509_user_cert.is_none() && env.x509_user_key.is_none() {
        return Ok(None);
    }
    let globus = |file: &str, var: &str| {
        env.home
            .as_ref()
            .map(|h| h.join(".globus").join(file))
            .ok_or_else(|| {
                IssueError::Credential(format!(
                    "{var} is not set and there is no HOME for ~/.globus/{file}: set {var} too"
                ))
            })
    };
    let cert = match &env.x509_user_cert {
        Some(c) => {
            set_by("X509_USER_CERT", c)?;
            c.clone()
        }
        None => globus("usercert.pem", "X509_USER_CERT")?,
    };
    let key = match &env.x509_user_key {
        Some(k) => {
            set_by("X509_USER_KEY", k)?;
            k.clone()
        }
        None => globus("userkey.pem", "X509_USER_KEY")?,
    };
    Ok(Some(Source::CertKey { cert, key }))
}

/// Private keys must be the user's alone, as `grid-proxy-init` requires
/// ("too permissive"): a key others can read is no longer a secret.
fn check_private(path: &Path) -> Result<(), IssueError> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path)
        .map_err(|e| IssueError::io(path, e))?
        .permissions()
        .mode();
    if mode & 0o077 != 0 {
        return Err(IssueError::Key(format!(
            "{p}: the private key is readable by others (mode {:04o}); run: chmod 600 {p}",
            mode & 0o7777,
            p = path.display()
        )));
    }
    Ok(())
}

fn is_p12(p: &Path) -> bool {
    matches!(p.extension().and_then(|e| e.to_str()), Some("p12" | "pfx"))
}

/// A loaded credential: the key and its certificate chain, leaf first.
#[derive(Debug)]
pub struct Credential {
    pub source: Source,
    pub key: SigningKey,
    /// DER certificates: the key's certificate first, then its issuers.
    pub chain: Vec<Vec<u8>>,
    /// A VOMS attribute certificate (DER) that every job-bound proxy sealed
    /// with this credential carries ([`Credential::with_voms_ac`]).
    pub voms_ac: Option<Vec<u8>>,
}

/// Asks for a passphrase; receives the prompt.
pub type PassphrasePrompt<'a> = dyn FnMut(&str) -> Result<Zeroizing<String>, IssueError> + 'a;

/// Largest credential file read (a certificate chain and a key).
const MAX_CREDENTIAL_BYTES: u64 = 1024 * 1024;

fn read(path: &Path) -> Result<Vec<u8>, IssueError> {
    jobseal_core::files::read_regular(path, MAX_CREDENTIAL_BYTES)
        .map_err(|e| IssueError::io(path, e))
}

fn key_error(path: &Path, e: KeyError) -> IssueError {
    match e {
        KeyError::WrongPassphrase => IssueError::WrongPassphrase(path.to_path_buf()),
        other => IssueError::Key(format!("{}: {other}", path.display())),
    }
}

fn certificates(text: &[u8], path: &Path) -> Result<Vec<Vec<u8>>, IssueError> {
    let blocks = parse_blocks(text)
        .map_err(|e| IssueError::Credential(format!("{}: {e}", path.display())))?;
    Ok(blocks
        .into_iter()
        .filter(|b| b.label == "CERTIFICATE")
        .map(|b| b.der)
        .collect())
}

impl Credential {
    /// Load the credential; `prompt` is asked at most once, only if the key
    /// is encrypted.
    pub fn load(source: Source, prompt: &mut PassphrasePrompt<'_>) -> Result<Self, IssueError> {
        let (key, chain) = match &source {
            Source::Proxy(path) => {
                check_private(path)?;
                let text = read(path)?;
                let chain = certificates(&text, path)?;
                let key = keys::decode_private_key(&text, &mut || {
                    prompt(&format!(
                        "Passphrase for the proxy key in {}: ",
                        path.display()
                    ))
                    .map_err(|_| KeyError::NoPassphrase)
                })
                .map_err(|e| key_error(path, e))?;
                (key, chain)
            }
            Source::CertKey { cert, key } => {
                let chain = certificates(&read(cert)?, cert)?;
                check_private(key)?;
                let key_text = read(key)?;
                let k = keys::decode_private_key(&key_text, &mut || {
                    prompt(&format!("Enter GRID pass phrase for {}: ", key.display()))
                        .map_err(|_| KeyError::NoPassphrase)
                })
                .map_err(|e| key_error(key, e))?;
                (k, chain)
            }
            Source::Pkcs12(path) => {
                check_private(path)?;
                let data = read(path)?;
                let pass = prompt(&format!(
                    "Enter import pass phrase for {}: ",
                    path.display()
                ))?;
                keys::decode_pkcs12(&data, &pass).map_err(|e| key_error(path, e))?
            }
        };
        let key = SigningKey::from_key_der(&key)?;
        let Some(leaf) = chain.first() else {
            return Err(IssueError::Credential(format!(
                "{source}: no certificate found"
            )));
        };
        let leaf_spki = tlv::RawCert::split(leaf)
            .and_then(|r| spki_bits(r.spki))
            .ok_or_else(|| {
                IssueError::Credential(format!("{source}: the certificate is malformed"))
            })?;
        if leaf_spki != key.public_key_bits() {
            return Err(IssueError::Credential(format!(
                "{source}: the private key does not match the certificate"
            )));
        }
        Ok(Self {
            source,
            key,
            chain,
            voms_ac: None,
        })
    }

    /// Load from in-memory DER parts (tests and embedders).
    pub fn from_parts(
        source: Source,
        key: &KeyDer,
        chain: Vec<Vec<u8>>,
    ) -> Result<Self, IssueError> {
        let key = SigningKey::from_key_der(key)?;
        Ok(Self {
            source,
            key,
            chain,
            voms_ac: None,
        })
    }

    /// Put `ac`, the DER of one VOMS attribute certificate as a VOMS server
    /// returns it, into every job-bound proxy sealed with this credential,
    /// in the VOMS extension (1.3.6.1.4.1.8005.100.100.5) `voms-proxy-init`
    /// writes. The AC must name this credential's certificate as its holder,
    /// so the credential must be the user's certificate, not a proxy.
    /// Refused ([`IssueError::Credential`]) here: an AC that does not read
    /// as a VOMS AC, a credential that is a proxy, an AC whose holder is
    /// another certificate. [`check_issuer`] then refuses an AC that has
    /// expired or has not started, and caps the jobs' validity at its end.
    pub fn with_voms_ac(mut self, ac: Vec<u8>) -> Result<Self, IssueError> {
        check_leaf_ac(&self, &ac)?;
        self.voms_ac = Some(ac);
        Ok(self)
    }
}

/// What the AC in the job-bound proxy says, once its holder is known to be
/// the credential's certificate and that certificate is not a proxy: the
/// site checks the holder against the end-entity certificate (§6.3a j).
pub(crate) fn check_leaf_ac(cred: &Credential, ac: &[u8]) -> Result<VomsAc, IssueError> {
    let cert = cred
        .chain
        .first()
        .ok_or_else(|| refuse(format!("{}: no certificate found", cred.source)))?;
    if is_proxy_certificate(cert) {
        return Err(refuse(format!(
            "{}: a proxy cannot seal with VOMS attributes fetched for your certificate \
             (the attribute certificate names your certificate as its holder): \
             sign with your certificate and key (--cert/--key), not a proxy",
            cred.source
        )));
    }
    let strict = voms::parse_ac(ac).map_err(|e| {
        let why = match e {
            voms::AcError::Malformed(m) | voms::AcError::Limits(m) => m,
        };
        refuse(format!(
            "the VOMS attribute certificate cannot be used: {why}"
        ))
    })?;
    voms::check_holder(&strict, cert).map_err(|m| {
        refuse(format!(
            "the VOMS attribute certificate of VO {} is not for {}: {m}",
            strict.vo, cred.source
        ))
    })?;
    voms::read_ac_lenient(ac).ok_or_else(|| refuse("the VOMS attribute certificate cannot be read"))
}

/// Whether `cert` (DER) is a proxy: RFC 3820 or GT3-draft ProxyCertInfo, or
/// a legacy Globus proxy's name. A certificate that does not parse counts as
/// one (it cannot be shown not to be).
fn is_proxy_certificate(cert: &[u8]) -> bool {
    let Ok(parsed) = Certificate::from_der(cert) else {
        return true;
    };
    let has = |id| {
        parsed
            .tbs_certificate()
            .extensions()
            .is_some_and(|exts| exts.iter().any(|e| e.extn_id == id))
    };
    let legacy = tlv::RawCert::split(cert).is_none_or(|raw| {
        name::split_last_cn(raw.subject).is_some_and(|(parent, cn)| {
            (cn == "proxy" || cn == "limited proxy") && name::same(&parent, raw.issuer)
        })
    });
    has(oid::PROXY_CERT_INFO) || has(oid::PROXY_CERT_INFO_GT3) || legacy
}

/// The subjectPublicKey bits of an SPKI element.
pub fn spki_bits(spki: &[u8]) -> Option<Vec<u8>> {
    let seq = tlv::read_all(spki)?;
    let parts = tlv::children(seq.value)?;
    let bits = parts.get(1)?;
    let (&unused, rest) = bits.value.split_first()?;
    (bits.tag == 0x03 && unused == 0).then(|| rest.to_vec())
}

/// What the issuer can do, established before signing anything.
#[derive(Clone, Debug)]
pub struct IssuerCheck {
    /// The end-entity (user) certificate's subject, `/DC=…` form.
    pub end_entity: String,
    /// The issuing certificate's subject.
    pub issuer: String,
    /// Whether the issuer is itself a proxy.
    pub issuer_is_proxy: bool,
    /// The latest time anything issued under this credential may be valid:
    /// the earliest expiry of the chain and of any VOMS AC.
    pub expires: UnixTime,
    /// What sets `expires`, for messages.
    pub expires_because: String,
    /// VOMS ACs found in the chain (read, not verified).
    pub voms: Vec<VomsAc>,
}

fn refuse(msg: impl Into<String>) -> IssueError {
    IssueError::Credential(msg.into())
}

/// The AC the job-bound proxy will carry ([`Credential::with_voms_ac`]):
/// checked again (a credential's fields are public), refused if it has not
/// started yet, and added to `acs` so that its end caps the jobs' validity.
/// An AC cannot join one carried by a proxy: the credential is then a proxy.
fn check_ac_sources(
    cred: &Credential,
    acs: &mut Vec<VomsAc>,
    now: UnixTime,
) -> Result<(), IssueError> {
    let Some(der) = &cred.voms_ac else {
        return Ok(());
    };
    let ac = check_leaf_ac(cred, der)?;
    if ac.not_after <= now {
        return Err(refuse(format!(
            "the VOMS attributes of VO {} fetched for your certificate expired at {}: fetch them again",
            ac.vo,
            ac.not_after.to_rfc3339()
        )));
    }
    if ac.not_before > now.plus(300) {
        return Err(refuse(format!(
            "the VOMS attributes of VO {} are not valid before {}: check the clock",
            ac.vo,
            ac.not_before.to_rfc3339()
        )));
    }
    acs.push(ac);
    Ok(())
}

/// Check that `cred` can issue one more proxy level now.
pub fn check_issuer(cred: &Credential, now: UnixTime) -> Result<IssuerCheck, IssueError> {
    let mut expires = UnixTime(u64::MAX);
    let mut expires_because = String::new();
    let mut voms_acs = Vec::new();
    let mut end_entity = None;
    let mut issuer_is_proxy = false;
    let mut ac_bearing = 0usize;
    for (depth, der) in cred.chain.iter().enumerate() {
        let cert = Certificate::from_der(der).map_err(|e| {
            refuse(format!(
                "{}: certificate {depth} is malformed ({e})",
                cred.source
            ))
        })?;
        let raw = tlv::RawCert::split(der).ok_or_else(|| refuse("malformed certificate"))?;
        let dn = name::to_slash_string(raw.subject);
        let validity = cert.tbs_certificate().validity();
        let not_after = UnixTime::from_system_time(validity.not_after.to_system_time());
        let not_before = UnixTime::from_system_time(validity.not_before.to_system_time());
        if not_after <= now {
            return Err(refuse(format!(
                "{dn} expired at {}: renew it (voms-proxy-init, grid-proxy-init or a new certificate) and try again",
                not_after.to_rfc3339()
            )));
        }
        if not_before > now.plus(300) {
            return Err(refuse(format!(
                "{dn} is not valid before {}: check the clock",
                not_before.to_rfc3339()
            )));
        }
        if not_after < expires {
            expires = not_after;
            expires_because = format!("{dn} expires");
        }
        let exts = cert
            .tbs_certificate()
            .extensions()
            .map(|e| e.as_slice())
            .unwrap_or_default();
        let find = |id| exts.iter().find(|e| e.extn_id == id);
        if find(oid::PROXY_CERT_INFO_GT3).is_some() {
            return Err(refuse(format!(
                "{dn} is a GT3-draft proxy, which jobseal does not accept: make an RFC 3820 proxy (voms-proxy-init -rfc)"
            )));
        }
        let is_proxy = match find(oid::PROXY_CERT_INFO) {
            Some(ext) => {
                let pci = ProxyCertInfo::from_der(ext.extn_value.as_bytes())
                    .map_err(|_| refuse(format!("{dn}: malformed ProxyCertInfo")))?;
                let lang = pci.proxy_policy.policy_language;
                if lang == oid::PPL_LIMITED {
                    return Err(refuse(format!(
                        "{dn} is a limited proxy, which cannot authorise execution: make a full proxy \
                         (voms-proxy-init without -limited)"
                    )));
                }
                if lang == oid::PPL_INDEPENDENT {
                    return Err(refuse(format!(
                        "{dn} is an independent proxy: it does not carry your identity"
                    )));
                }
                if lang == oid::PPL_JOB_BOUND {
                    return Err(refuse(format!(
                        "{dn} is a job-bound proxy: it cannot issue anything"
                    )));
                }
                if lang != oid::PPL_INHERIT_ALL {
                    return Err(refuse(format!(
                        "{dn} has proxy policy language {lang}, which jobseal does not know"
                    )));
                }
                // The new proxy adds a level below this one: `depth` proxies
                // already sit below it in the chain.
                if let Some(len) = pci.path_len_constraint
                    && u64::from(len) < depth as u64 + 1
                {
                    return Err(refuse(format!(
                        "{dn} has path length {len}, which forbids another proxy level: \
                             make a proxy with a larger path length (voms-proxy-init -path-length)"
                    )));
                }
                if let Some(acs) = voms::from_certificate(&cert) {
                    voms_acs.extend(acs);
                    ac_bearing += 1;
                }
                true
            }
            None => {
                if let Some((parent, cn)) = name::split_last_cn(raw.subject)
                    && (cn == "proxy" || cn == "limited proxy")
                    && name::same(&parent, raw.issuer)
                {
                    // grid-proxy-init drops the VOMS attributes: advise
                    // the command that keeps them.
                    let advice = match voms::from_certificate(&cert) {
                        Some(acs) if !acs.is_empty() => {
                            let vos: Vec<&str> = acs.iter().map(|a| a.vo.as_str()).collect();
                            format!("voms-proxy-init -rfc -voms {}", vos.join(" -voms "))
                        }
                        _ => "grid-proxy-init -rfc".to_string(),
                    };
                    return Err(refuse(format!(
                        "{dn} is a legacy Globus proxy: make an RFC 3820 proxy ({advice})"
                    )));
                }
                if end_entity.is_none() {
                    end_entity = Some(dn.clone());
                }
                false
            }
        };
        if depth == 0 {
            issuer_is_proxy = is_proxy;
            if let Some(ku) = find(oid::KEY_USAGE) {
                let bits = asn1::key_usage_bits(ku.extn_value.as_bytes())
                    .ok_or_else(|| refuse(format!("{dn}: malformed keyUsage")))?;
                if bits & asn1::KU_DIGITAL_SIGNATURE == 0 {
                    return Err(refuse(format!(
                        "{dn} lacks the digitalSignature key usage, so it cannot issue proxies (RFC 3820 §3.1)"
                    )));
                }
            }
        }
        if end_entity.is_some() {
            break; // CA certificates above the user's do not limit the user
        }
    }
    // Sites take attributes from one certificate of the chain only (§6.3a).
    if ac_bearing > 1 {
        return Err(refuse(format!(
            "{}: {ac_bearing} proxies of the chain carry VOMS attributes, and sites deny a chain \
             with more than one (chain.voms-two-sources): make a fresh proxy from your certificate \
             (voms-proxy-init -voms VO)",
            cred.source
        )));
    }
    check_ac_sources(cred, &mut voms_acs, now)?;
    for ac in &voms_acs {
        if ac.not_after <= now {
            return Err(refuse(format!(
                "the VOMS attributes of VO {} expired at {}: run voms-proxy-init again",
                ac.vo,
                ac.not_after.to_rfc3339()
            )));
        }
        if ac.not_after < expires {
            expires = ac.not_after;
            expires_because = format!("the VOMS attributes of VO {} expire", ac.vo);
        }
    }
    let end_entity = end_entity.ok_or_else(|| {
        refuse(format!(
            "{}: the chain does not reach the user certificate; include it in the file",
            cred.source
        ))
    })?;
    let issuer = cred
        .chain
        .first()
        .and_then(|c| tlv::RawCert::split(c))
        .map(|r| name::to_slash_string(r.subject))
        .unwrap_or_default();
    Ok(IssuerCheck {
        end_entity,
        issuer,
        issuer_is_proxy,
        expires,
        expires_because,
        voms: voms_acs,
    })
}
