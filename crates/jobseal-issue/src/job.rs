//! Job descriptions (`JOB.toml`), manifests and sealing a job into a bundle.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use der::Encode;
use jobseal_core::bundle::Bundle;
use jobseal_core::manifest::{FileDigest, Manifest, check_input_name};
use jobseal_core::time::{UnixTime, format_duration, parse_duration};
use jobseal_core::{bound_key, cose, limits, sha256};

use crate::IssueError;
use crate::credential::{Credential, IssuerCheck};
use crate::proxy::{CertTemplate, ProxyKind};

/// Default job validity when the description does not say.
pub const DEFAULT_VALIDITY: u64 = 24 * 3600;
/// How far back a manifest and its proxy start, for clock skew (as Globus).
pub const BACKDATE: u64 = 300;

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct JobFile {
    executable: String,
    #[serde(default)]
    arguments: Vec<String>,
    #[serde(default)]
    inputs: Vec<String>,
    environment: Option<BTreeMap<String, String>>,
    vo: Option<String>,
    sites: Option<Vec<String>>,
    valid: Option<String>,
    allowed_uses: Option<u64>,
}

/// A job description with paths resolved.
#[derive(Clone, Debug)]
pub struct JobSpec {
    /// Where the description came from (for messages).
    pub source: PathBuf,
    pub executable: PathBuf,
    pub arguments: Vec<String>,
    /// (name in the manifest, path on this machine)
    pub inputs: Vec<(String, PathBuf)>,
    pub environment: Option<BTreeMap<String, String>>,
    pub vo: Option<String>,
    pub sites: Option<Vec<String>>,
    /// Requested validity in seconds.
    pub valid: u64,
    pub allowed_uses: u64,
}

fn job_err(path: &Path, msg: impl std::fmt::Display) -> IssueError {
    IssueError::Job(format!("{}: {msg}", path.display()))
}

impl JobSpec {
    /// Read a TOML job description; paths are relative to its directory.
    pub fn from_toml_file(path: &Path) -> Result<Self, IssueError> {
        let text = std::fs::read_to_string(path).map_err(|e| IssueError::io(path, e))?;
        let base = path.parent().unwrap_or(Path::new("."));
        Self::from_toml(&text, path, base)
    }

    /// Parse a TOML job description; `base` resolves relative paths.
    pub fn from_toml(text: &str, source: &Path, base: &Path) -> Result<Self, IssueError> {
        let f: JobFile = toml::from_str(text).map_err(|e| job_err(source, e))?;
        let valid = match &f.valid {
            None => DEFAULT_VALIDITY,
            Some(s) => parse_duration(s).filter(|&v| v > 0).ok_or_else(|| {
                job_err(
                    source,
                    format!("valid = {s:?} is not a duration such as \"36h\" or \"2d\""),
                )
            })?,
        };
        if valid > limits::MAX_MANIFEST_LIFETIME {
            return Err(job_err(
                source,
                "valid is longer than the 31 days a manifest may last",
            ));
        }
        let mut inputs = Vec::with_capacity(f.inputs.len());
        for i in &f.inputs {
            let name = i.trim_start_matches("./").to_string();
            check_input_name(&name).map_err(|e| job_err(source, e.message))?;
            inputs.push((name.clone(), base.join(&name)));
        }
        if f.allowed_uses == Some(0) {
            return Err(job_err(source, "allowed_uses must be at least 1"));
        }
        if f.sites.as_ref().is_some_and(|s| s.is_empty()) {
            return Err(job_err(
                source,
                "sites, when given, must name at least one site",
            ));
        }
        Ok(Self {
            source: source.to_path_buf(),
            executable: base.join(&f.executable),
            arguments: f.arguments,
            inputs,
            environment: f.environment,
            vo: f.vo,
            sites: f.sites,
            valid,
            allowed_uses: f.allowed_uses.unwrap_or(1),
        })
    }
}

/// Largest read buffer of [`hash_file`]: reads of 1 MiB keep SHA-256 at the
/// speed of `openssl dgst` on large files.
const HASH_BUFFER: usize = 1 << 20;

/// Files at least this large are worth a thread of their own.
const PARALLEL_MIN_BYTES: u64 = 8 << 20;

/// Size and SHA-256 of a file, streamed.
pub fn hash_file(path: &Path) -> Result<(u64, [u8; 32]), IssueError> {
    hash_file_with(path, &|_| {})
}

/// [`hash_file`], calling `progress(n)` after each `n` bytes read.
pub fn hash_file_with(
    path: &Path,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<(u64, [u8; 32]), IssueError> {
    hash_file_sized(path, None, progress)
}

/// [`hash_file_with`]; `size`, if known, is the size `stat` gave (it only
/// sizes the buffer).
fn hash_file_sized(
    path: &Path,
    size: Option<u64>,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<(u64, [u8; 32]), IssueError> {
    let mut f = std::fs::File::open(path).map_err(|e| IssueError::io(path, e))?;
    // A buffer sized to the file (a zeroed 1 MiB per small file cost more
    // than hashing it), grown while reads fill it (a file that grows, or
    // one whose size says nothing, such as a pipe).
    let len = match size {
        Some(len) => Some(len),
        None => f.metadata().ok().filter(|m| m.is_file()).map(|m| m.len()),
    };
    let start = match len {
        Some(len) => usize::try_from(len)
            .unwrap_or(HASH_BUFFER)
            .saturating_add(1)
            .min(HASH_BUFFER),
        None => 64 * 1024,
    };
    let mut buf = vec![0u8; start.max(1)];
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    let mut size = 0u64;
    loop {
        let n = f.read(&mut buf).map_err(|e| IssueError::io(path, e))?;
        if n == 0 {
            break;
        }
        size += n as u64;
        ctx.update(buf.get(..n).unwrap_or_default());
        progress(n as u64);
        if n == buf.len() && buf.len() < HASH_BUFFER {
            buf.resize(buf.len().saturating_mul(2).min(HASH_BUFFER), 0);
        }
    }
    let digest: [u8; 32] = ctx
        .finish()
        .as_ref()
        .try_into()
        .map_err(|_| IssueError::Internal("SHA-256 output is not 32 bytes".into()))?;
    Ok((size, digest))
}

/// Size and SHA-256 of one file, or why it could not be read.
pub type FileHash = Result<(u64, [u8; 32]), IssueError>;

/// [`hash_file_with`] of every path, one result per path in order, up to
/// the first failure at least. When several are large, they are hashed on
/// up to one thread per core (each file read by one thread, start to end).
pub fn hash_files(paths: &[&Path], progress: &(dyn Fn(u64) + Sync)) -> Vec<FileHash> {
    use std::sync::atomic::{AtomicUsize, Ordering};
    // Sizes of regular files (one `stat` each), when there is a choice.
    let sizes: Vec<Option<u64>> = if paths.len() < 2 {
        vec![None; paths.len()]
    } else {
        paths
            .iter()
            .map(|p| {
                std::fs::metadata(p)
                    .ok()
                    .filter(|m| m.is_file())
                    .map(|m| m.len())
            })
            .collect()
    };
    let large = sizes
        .iter()
        .filter(|s| s.is_some_and(|len| len >= PARALLEL_MIN_BYTES))
        .count();
    // Asked only when it matters: it reads the cgroup files each time.
    let threads = if large < 2 {
        1
    } else {
        std::thread::available_parallelism()
            .map_or(1, usize::from)
            .min(large)
    };
    if threads < 2 {
        // One after the other, up to the first failure.
        let mut out = Vec::with_capacity(paths.len());
        for (path, size) in paths.iter().zip(&sizes) {
            let r = hash_file_sized(path, *size, progress);
            let failed = r.is_err();
            out.push(r);
            if failed {
                break;
            }
        }
        return out;
    }
    let next = AtomicUsize::new(0);
    let work = || {
        let mut done = Vec::new();
        loop {
            let i = next.fetch_add(1, Ordering::Relaxed);
            let Some(path) = paths.get(i) else { break };
            let size = sizes.get(i).copied().flatten();
            done.push((i, hash_file_sized(path, size, progress)));
        }
        done
    };
    let mut all: Vec<(usize, FileHash)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads).map(|_| s.spawn(work)).collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap_or_default())
            .collect()
    });
    all.sort_by_key(|(i, _)| *i);
    // A thread that panicked lost its files: they fail, not vanish.
    let mut out: Vec<FileHash> = Vec::with_capacity(paths.len());
    let mut it = all.into_iter().peekable();
    for i in 0..paths.len() {
        match it.next_if(|(j, _)| *j == i) {
            Some((_, r)) => out.push(r),
            None => out.push(Err(IssueError::Internal(
                "a hashing thread panicked".into(),
            ))),
        }
    }
    out
}

/// Values that a test fixes and the CLI draws at random.
#[derive(Clone, Debug)]
pub struct SealParams {
    pub now: UnixTime,
    pub job_id: [u8; 16],
    pub serial: u64,
}

impl SealParams {
    /// Current time, random job id and serial.
    pub fn random(now: UnixTime) -> Result<Self, IssueError> {
        let mut job_id = [0u8; 16];
        ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut job_id)
            .map_err(|_| IssueError::Internal("the system random generator failed".into()))?;
        Ok(Self {
            now,
            job_id,
            serial: crate::proxy::random_serial()?,
        })
    }
}

/// A sealed job.
#[derive(Clone, Debug)]
pub struct Sealed {
    pub bundle: Bundle,
    pub manifest: Manifest,
    pub manifest_sha256: [u8; 32],
    /// Set when the requested validity was cut short, saying why.
    pub capped: Option<String>,
}

/// Build the manifest of `job` (hashing its files) under `params`.
pub fn build_manifest(
    job: &JobSpec,
    issuer: &IssuerCheck,
    params: &SealParams,
) -> Result<(Manifest, Option<String>), IssueError> {
    let (manifest, capped) = manifest_of(job, issuer, params, &|_| {})?;
    round_trip(&manifest, &manifest.to_cbor(), &job.source)?;
    Ok((manifest, capped))
}

/// The manifest of `job`, its files hashed (reporting bytes to `progress`).
fn manifest_of(
    job: &JobSpec,
    issuer: &IssuerCheck,
    params: &SealParams,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<(Manifest, Option<String>), IssueError> {
    let exe_name = job
        .executable
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| job_err(&job.source, "the executable path has no UTF-8 file name"))?
        .to_string();
    // The executable, then the inputs in order; the first failure in that
    // order is the one reported.
    let paths: Vec<&Path> = std::iter::once(job.executable.as_path())
        .chain(job.inputs.iter().map(|(_, p)| p.as_path()))
        .collect();
    let mut digests = hash_files(&paths, progress).into_iter();
    let (size, sha) = digests
        .next()
        .ok_or_else(|| IssueError::Internal("no digest of the executable".into()))??;
    let mut inputs = Vec::with_capacity(job.inputs.len());
    for (name, _) in &job.inputs {
        let (size, sha256) = digests
            .next()
            .ok_or_else(|| IssueError::Internal("an input was not hashed".into()))??;
        inputs.push(FileDigest {
            name: name.clone(),
            size,
            sha256,
        });
    }
    let not_before = params.now.minus(BACKDATE);
    let wanted = params.now.plus(job.valid);
    let (not_after, capped) = if wanted > issuer.expires {
        (
            issuer.expires,
            Some(format!(
                "validity capped to {} ({} left) because {} then",
                issuer.expires.to_rfc3339(),
                format_duration(issuer.expires.0.saturating_sub(params.now.0)),
                issuer.expires_because
            )),
        )
    } else {
        (wanted, None)
    };
    let vo = job.vo.clone();
    let manifest = Manifest {
        job_id: params.job_id,
        executable: FileDigest {
            name: exe_name,
            size,
            sha256: sha,
        },
        arguments: job.arguments.clone(),
        environment: job.environment.clone(),
        inputs,
        vo,
        sites: job.sites.clone(),
        not_before: not_before.0,
        not_after: not_after.0,
        created: params.now.0,
        tool: crate::TOOL.to_string(),
        allowed_uses: job.allowed_uses,
    };
    Ok((manifest, capped))
}

/// What we sign must read back identically.
fn round_trip(manifest: &Manifest, cbor: &[u8], source: &Path) -> Result<(), IssueError> {
    let check = Manifest::from_cbor(cbor).map_err(|e| job_err(source, e.message))?;
    if check != *manifest {
        return Err(IssueError::Internal(
            "the manifest does not round-trip".into(),
        ));
    }
    Ok(())
}

/// Sign `manifest` and issue the job-bound proxy: the bundle.
pub fn seal_manifest(
    cred: &Credential,
    manifest: &Manifest,
    serial: u64,
) -> Result<(Bundle, [u8; 32]), IssueError> {
    seal_payload(cred, manifest, manifest.to_cbor(), serial)
}

/// [`seal_manifest`] with `payload`, the manifest's encoding, made already.
fn seal_payload(
    cred: &Credential,
    manifest: &Manifest,
    payload: Vec<u8>,
    serial: u64,
) -> Result<(Bundle, [u8; 32]), IssueError> {
    let digest = sha256(&payload);
    let envelope = cose::build::<IssueError>(cred.key.cose_algorithm(), payload, |tbs| {
        cred.key.sign_cose(tbs)
    })?;
    let key = bound_key::derive(&digest)?;
    let spki = bound_key::ed25519_spki(&key)
        .and_then(|s| s.to_der())
        .map_err(|e| IssueError::Internal(format!("SPKI encoding failed: {e}")))?;
    let issuer_cert = cred
        .chain
        .first()
        .ok_or_else(|| IssueError::Credential("the credential has no certificate".into()))?;
    let template = CertTemplate::proxy(
        issuer_cert,
        spki,
        serial,
        UnixTime(manifest.not_before),
        UnixTime(manifest.not_after),
        &ProxyKind::JobBound {
            manifest_sha256: digest,
        },
    )?;
    let leaf = template.sign(&cred.key)?;
    let mut certificates = Vec::with_capacity(cred.chain.len() + 1);
    certificates.push(leaf);
    certificates.extend(cred.chain.iter().cloned());
    Ok((
        Bundle {
            certificates,
            manifest: envelope,
        },
        digest,
    ))
}

/// Hash, build, sign and issue: everything but writing the bundle.
pub fn seal(
    cred: &Credential,
    issuer: &IssuerCheck,
    job: &JobSpec,
    params: &SealParams,
) -> Result<Sealed, IssueError> {
    seal_with(cred, issuer, job, params, &|_| {})
}

/// [`seal`], reporting the bytes of the job's files as they are hashed
/// (`progress(n)`, from any thread). The manifest is encoded once: the
/// bytes checked to read back identically are the bytes signed.
pub fn seal_with(
    cred: &Credential,
    issuer: &IssuerCheck,
    job: &JobSpec,
    params: &SealParams,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<Sealed, IssueError> {
    let (manifest, capped) = manifest_of(job, issuer, params, progress)?;
    let payload = manifest.to_cbor();
    round_trip(&manifest, &payload, &job.source)?;
    let (bundle, manifest_sha256) = seal_payload(cred, &manifest, payload, params.serial)?;
    Ok(Sealed {
        bundle,
        manifest,
        manifest_sha256,
        capped,
    })
}

#[cfg(test)]
#[allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::cast_possible_truncation
)]
mod tests {
    use std::io::Write;
    use std::sync::atomic::{AtomicU64, Ordering};

    use super::*;

    fn data(len: usize, seed: u8) -> Vec<u8> {
        (0..len)
            .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
            .collect()
    }

    #[test]
    fn large_files_hashed_on_several_threads_give_the_same_digests() {
        let dir = tempfile::tempdir().unwrap();
        let big = usize::try_from(PARALLEL_MIN_BYTES).unwrap() + 12_345;
        let mut paths = Vec::new();
        for (i, len) in [big, 7, big + 1, 0, big * 2].into_iter().enumerate() {
            let p = dir.path().join(format!("f{i}"));
            std::fs::write(&p, data(len, i as u8)).unwrap();
            paths.push(p);
        }
        let refs: Vec<&Path> = paths.iter().map(PathBuf::as_path).collect();
        let seen = AtomicU64::new(0);
        let parallel = hash_files(&refs, &|n| {
            seen.fetch_add(n, Ordering::Relaxed);
        });
        let total: u64 = paths
            .iter()
            .map(|p| std::fs::metadata(p).unwrap().len())
            .sum();
        assert_eq!(seen.load(Ordering::Relaxed), total);
        assert_eq!(parallel.len(), paths.len());
        for (p, r) in paths.iter().zip(parallel) {
            let bytes = std::fs::read(p).unwrap();
            let (size, digest) = r.unwrap();
            assert_eq!(size, bytes.len() as u64);
            assert_eq!(digest, sha256(&bytes), "{}", p.display());
        }
    }

    #[test]
    fn the_first_missing_file_in_order_is_the_one_reported() {
        let dir = tempfile::tempdir().unwrap();
        let big = usize::try_from(PARALLEL_MIN_BYTES).unwrap();
        let exe = dir.path().join("run.sh");
        std::fs::write(&exe, data(big, 1)).unwrap();
        std::fs::write(dir.path().join("b.dat"), data(big, 2)).unwrap();
        let toml = "executable = \"run.sh\"\ninputs = [\"a.dat\", \"b.dat\", \"c.dat\"]\n";
        let job = JobSpec::from_toml(toml, &dir.path().join("job.toml"), dir.path()).unwrap();
        let issuer = IssuerCheck {
            end_entity: "/CN=test".into(),
            issuer: "/CN=test".into(),
            issuer_is_proxy: false,
            expires: UnixTime(2_000_000_000),
            expires_because: "test".into(),
            voms: Vec::new(),
        };
        let params = SealParams {
            now: UnixTime(1_767_225_600),
            job_id: [1; 16],
            serial: 1,
        };
        // a.dat and c.dat are missing: a.dat, the first in order, is named.
        match build_manifest(&job, &issuer, &params) {
            Err(IssueError::Io { path, .. }) => assert!(path.ends_with("a.dat"), "{path:?}"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_pipe_is_hashed_whole() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo");
        let made = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .is_ok_and(|s| s.success());
        if !made {
            return; // no mkfifo here: nothing to test
        }
        let bytes = data(3 << 20, 9);
        let writer = {
            let (fifo, bytes) = (fifo.clone(), bytes.clone());
            std::thread::spawn(move || {
                let mut f = std::fs::OpenOptions::new().write(true).open(fifo).unwrap();
                f.write_all(&bytes).unwrap();
            })
        };
        let (size, digest) = hash_file(&fifo).unwrap();
        writer.join().unwrap();
        assert_eq!(size, bytes.len() as u64);
        assert_eq!(digest, sha256(&bytes));
    }
}
