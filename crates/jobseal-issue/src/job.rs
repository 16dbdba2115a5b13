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

/// Size and SHA-256 of a file, streamed.
pub fn hash_file(path: &Path) -> Result<(u64, [u8; 32]), IssueError> {
    let mut f = std::fs::File::open(path).map_err(|e| IssueError::io(path, e))?;
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    let mut buf = vec![0u8; 1 << 20];
    let mut size = 0u64;
    loop {
        let n = f.read(&mut buf).map_err(|e| IssueError::io(path, e))?;
        if n == 0 {
            break;
        }
        size += n as u64;
        ctx.update(buf.get(..n).unwrap_or_default());
    }
    let digest: [u8; 32] = ctx
        .finish()
        .as_ref()
        .try_into()
        .map_err(|_| IssueError::Internal("SHA-256 output is not 32 bytes".into()))?;
    Ok((size, digest))
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
    let exe_name = job
        .executable
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| job_err(&job.source, "the executable path has no UTF-8 file name"))?
        .to_string();
    let (size, sha) = hash_file(&job.executable)?;
    let mut inputs = Vec::with_capacity(job.inputs.len());
    for (name, path) in &job.inputs {
        let (size, sha256) = hash_file(path)?;
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
    // What we sign must read back identically.
    let check =
        Manifest::from_cbor(&manifest.to_cbor()).map_err(|e| job_err(&job.source, e.message))?;
    if check != manifest {
        return Err(IssueError::Internal(
            "the manifest does not round-trip".into(),
        ));
    }
    Ok((manifest, capped))
}

/// Sign `manifest` and issue the job-bound proxy: the bundle.
pub fn seal_manifest(
    cred: &Credential,
    manifest: &Manifest,
    serial: u64,
) -> Result<(Bundle, [u8; 32]), IssueError> {
    let payload = manifest.to_cbor();
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
    let (manifest, capped) = build_manifest(job, issuer, params)?;
    let (bundle, manifest_sha256) = seal_manifest(cred, &manifest, params.serial)?;
    Ok(Sealed {
        bundle,
        manifest,
        manifest_sha256,
        capped,
    })
}
