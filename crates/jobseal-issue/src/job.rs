//! Job descriptions (`JOB.toml`), manifests and sealing a job into a bundle.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use der::Encode;
use jobseal_core::bundle::Bundle;
use jobseal_core::manifest::{FileDigest, Manifest, check_input_name};
use jobseal_core::time::{UnixTime, format_duration, parse_duration};
use jobseal_core::{bound_key, cose, limits, oid, sha256};

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

/// A TOML error as one line: `FILE:LINE:COLUMN: message`, control
/// characters escaped (the message may quote the file's bytes).
fn toml_err(source: &Path, text: &str, e: &toml::de::Error) -> IssueError {
    let mut msg = String::new();
    for c in e.message().trim().chars() {
        match c {
            '\n' => msg.push_str("; "),
            c if c.is_control() => msg.push_str(&format!("\\x{:02X}", u32::from(c))),
            c => msg.push(c),
        }
    }
    match e.span() {
        Some(span) => {
            let before = text.get(..span.start.min(text.len())).unwrap_or(text);
            let line = before.matches('\n').count() + 1;
            let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
            IssueError::Job(format!("{}:{line}:{col}: {msg}", source.display()))
        }
        None => job_err(source, msg),
    }
}

/// A validity as grid users write it: `HH:MM` (voms-proxy-init's
/// `-valid`) or a duration (`12h`, `2d`, `1d12h`); above zero.
pub fn parse_validity(s: &str) -> Option<u64> {
    let seconds = match s.split_once(':') {
        Some((h, m)) => {
            let (h, m): (u64, u64) = (h.trim().parse().ok()?, m.trim().parse().ok()?);
            if m >= 60 {
                return None;
            }
            h.checked_mul(3600)?.checked_add(m * 60)?
        }
        None => parse_duration(s)?,
    };
    (seconds > 0).then_some(seconds)
}

/// Largest job file read.
const MAX_JOB_FILE_BYTES: u64 = 1024 * 1024;

impl JobSpec {
    /// Read a TOML job description; paths are relative to its directory.
    pub fn from_toml_file(path: &Path) -> Result<Self, IssueError> {
        let bytes = jobseal_core::files::read_regular(path, MAX_JOB_FILE_BYTES)
            .map_err(|e| IssueError::io(path, e))?;
        let text = String::from_utf8(bytes).map_err(|_| {
            IssueError::Job(format!(
                "{}: the job file is not UTF-8 text",
                path.display()
            ))
        })?;
        let base = path.parent().unwrap_or(Path::new("."));
        Self::from_toml(&text, path, base)
    }

    /// Parse a TOML job description; `base` resolves relative paths.
    pub fn from_toml(text: &str, source: &Path, base: &Path) -> Result<Self, IssueError> {
        let f: JobFile = toml::from_str(text).map_err(|e| toml_err(source, text, &e))?;
        let valid = match &f.valid {
            None => DEFAULT_VALIDITY,
            Some(s) => parse_validity(s).ok_or_else(|| {
                job_err(
                    source,
                    format!("valid = {s:?} is not a duration such as \"36h\", \"2d\" or \"12:00\""),
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
    let (mut f, _) =
        jobseal_core::files::open_regular(path).map_err(|e| IssueError::io(path, e))?;
    hash_open_file(&mut f, path, size, progress)
}

/// Hash `f` (opened from `path`) from where it stands to its end.
fn hash_open_file(
    f: &mut std::fs::File,
    path: &Path,
    size: Option<u64>,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<(u64, [u8; 32]), IssueError> {
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

/// What tells one version of a file from another without reading it: a
/// write changes the modification and change times, a replacement the
/// inode.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct FileStamp {
    dev: u64,
    ino: u64,
    size: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
}

impl FileStamp {
    /// The stamp of a regular file; `None` for anything else.
    fn of(m: &std::fs::Metadata) -> Option<Self> {
        use std::os::unix::fs::MetadataExt;
        m.is_file().then(|| Self {
            dev: m.dev(),
            ino: m.ino(),
            size: m.len(),
            mtime: (m.mtime(), m.mtime_nsec()),
            ctime: (m.ctime(), m.ctime_nsec()),
        })
    }
}

/// At most this many digests are kept (a task's distinct files).
const MAX_CACHED_DIGESTS: usize = 1 << 16;

/// A file changed this recently when it is hashed is not kept: timestamps
/// have a coarse tick (up to a second or two on some filesystems), and a
/// rewrite within the tick of the hashed version would show the same
/// stamp. Older files show any later change (as git treats "racily clean"
/// files).
const RECENT_CHANGE: std::time::Duration = std::time::Duration::from_secs(2);

/// Digests of the files a task of many jobs has hashed, so that an
/// executable or input shared by its jobs is read once, not once per job.
/// A digest is served for a path only while the file opened there shows
/// the stamp it was computed from (device, inode, size, modification and
/// change times, unchanged from before the file was read to after); a
/// file rewritten or replaced meanwhile is hashed again. A file changed
/// less than two seconds before it was hashed is not kept (hashed again
/// each time): a rewrite within the timestamps' tick could not be told
/// apart.
///
/// What a stamp cannot show: a change through a shared writable mapping
/// (no new times), a file server whose clock is more than two seconds
/// behind, times set back by hand (`touch -r`). Such a change during a
/// `sign` run gives the later jobs the digest of what the file held
/// earlier in the same run: their bundles name content no longer on disk
/// and are refused where they run (never the other way round).
#[derive(Debug)]
pub struct DigestCache {
    files: std::sync::Mutex<std::collections::HashMap<PathBuf, (FileStamp, [u8; 32])>>,
    hits: std::sync::atomic::AtomicU64,
    recent: std::time::Duration,
}

impl Default for DigestCache {
    fn default() -> Self {
        Self {
            files: std::sync::Mutex::default(),
            hits: std::sync::atomic::AtomicU64::new(0),
            recent: RECENT_CHANGE,
        }
    }
}

impl DigestCache {
    /// An empty cache.
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether a file whose status changed at `ctime` may be kept, its
    /// hashing having started at `started`.
    fn settled(&self, ctime: (i64, i64), started: std::time::SystemTime) -> bool {
        let Ok(since_epoch) = started.duration_since(std::time::UNIX_EPOCH) else {
            return false;
        };
        let Some(limit) = since_epoch.checked_sub(self.recent) else {
            return false;
        };
        let (secs, nanos) = ctime;
        match (u64::try_from(secs), u32::try_from(nanos)) {
            (Ok(secs), Ok(nanos)) if nanos < 1_000_000_000 => {
                std::time::Duration::new(secs, nanos) < limit
            }
            _ => false,
        }
    }

    /// How many digests were served without reading the file.
    pub fn hits(&self) -> u64 {
        self.hits.load(std::sync::atomic::Ordering::Relaxed)
    }

    fn get(&self, path: &Path, stamp: &FileStamp) -> Option<[u8; 32]> {
        let files = self.files.lock().ok()?;
        let (kept, digest) = files.get(path)?;
        (kept == stamp).then(|| {
            self.hits.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            *digest
        })
    }

    fn put(&self, path: &Path, stamp: FileStamp, digest: [u8; 32]) {
        if let Ok(mut files) = self.files.lock()
            && (files.len() < MAX_CACHED_DIGESTS || files.contains_key(path))
        {
            files.insert(path.to_path_buf(), (stamp, digest));
        }
    }
}

/// [`hash_file_with`], served from `cache` when the file is unchanged since
/// it was hashed, and kept there when it did not change while being read.
fn hash_file_cached(path: &Path, cache: &DigestCache, progress: &(dyn Fn(u64) + Sync)) -> FileHash {
    let started = std::time::SystemTime::now();
    // Opened even when the digest is kept: the stamp is that of the open
    // file this job names now (on NFS an open revalidates what a `stat`
    // may take from its attribute cache), and an unreadable file fails as
    // it would without the cache.
    let (mut f, _) =
        jobseal_core::files::open_regular(path).map_err(|e| IssueError::io(path, e))?;
    let before = f.metadata().ok().as_ref().and_then(FileStamp::of);
    if let Some(stamp) = before
        && let Some(digest) = cache.get(path, &stamp)
    {
        // Counted as covered, for a bar of the bytes of every job's files.
        progress(stamp.size);
        return Ok((stamp.size, digest));
    }
    let (size, digest) = hash_open_file(&mut f, path, before.map(|s| s.size), progress)?;
    let after = f.metadata().ok().as_ref().and_then(FileStamp::of);
    if let Some(stamp) = before
        && before == after
        && stamp.size == size
        && cache.settled(stamp.ctime, started)
    {
        cache.put(path, stamp, digest);
    }
    Ok((size, digest))
}

/// [`hash_file_with`] of every path, one result per path in order, up to
/// the first failure at least. When several are large, they are hashed on
/// up to one thread per core (each file read by one thread, start to end).
pub fn hash_files(paths: &[&Path], progress: &(dyn Fn(u64) + Sync)) -> Vec<FileHash> {
    hash_files_in(paths, progress, None)
}

/// [`hash_files`], each file served from or kept in `cache`
/// ([`DigestCache`]).
pub fn hash_files_cached(
    paths: &[&Path],
    progress: &(dyn Fn(u64) + Sync),
    cache: &DigestCache,
) -> Vec<FileHash> {
    hash_files_in(paths, progress, Some(cache))
}

fn hash_files_in(
    paths: &[&Path],
    progress: &(dyn Fn(u64) + Sync),
    cache: Option<&DigestCache>,
) -> Vec<FileHash> {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let hash = |path: &Path, size: Option<u64>| match cache {
        Some(cache) => hash_file_cached(path, cache, progress),
        None => hash_file_sized(path, size, progress),
    };
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
            let r = hash(path, *size);
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
            done.push((i, hash(path, size)));
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
    let (manifest, capped) = manifest_of(job, issuer, params, &|_| {}, None)?;
    round_trip(&manifest, &manifest.to_cbor(), &job.source)?;
    Ok((manifest, capped))
}

/// A file of `job` that could not be read, named as what it is to the job:
/// `job.toml: the executable run.sh: No such file or directory`.
fn in_job(job: &JobSpec, what: &str, e: IssueError) -> IssueError {
    match e {
        IssueError::Io { path, source } => IssueError::Job(format!(
            "{}: {what} {} cannot be read: {source}",
            job.source.display(),
            path.display()
        )),
        other => other,
    }
}

/// The manifest of `job`, its files hashed (reporting bytes to `progress`).
fn manifest_of(
    job: &JobSpec,
    issuer: &IssuerCheck,
    params: &SealParams,
    progress: &(dyn Fn(u64) + Sync),
    cache: Option<&DigestCache>,
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
    let mut digests = hash_files_in(&paths, progress, cache).into_iter();
    let (size, sha) = digests
        .next()
        .ok_or_else(|| IssueError::Internal("no digest of the executable".into()))?
        .map_err(|e| in_job(job, "the executable", e))?;
    let mut inputs = Vec::with_capacity(job.inputs.len());
    for (name, _) in &job.inputs {
        let (size, sha256) = digests
            .next()
            .ok_or_else(|| IssueError::Internal("an input was not hashed".into()))?
            .map_err(|e| in_job(job, &format!("the input {name:?}"), e))?;
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
    let mut template = CertTemplate::proxy(
        issuer_cert,
        spki,
        serial,
        UnixTime(manifest.not_before),
        UnixTime(manifest.not_after),
        &ProxyKind::JobBound {
            manifest_sha256: digest,
        },
    )?;
    if let Some(ac) = &cred.voms_ac {
        // Checked again here: a credential's fields are public, and a leaf
        // AC under a proxy or for another holder is one no site accepts.
        crate::credential::check_leaf_ac(cred, ac)?;
        let value = jobseal_core::voms::encode_ac_seq(&[ac]);
        template
            .extensions
            .push(crate::proxy::extension(oid::VOMS_AC_SEQ, false, &value)?);
    }
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
    seal_in(cred, issuer, job, params, progress, None)
}

/// [`seal_with`] for one job of a task: the files its jobs share are
/// hashed once ([`DigestCache`]).
pub fn seal_with_cache(
    cred: &Credential,
    issuer: &IssuerCheck,
    job: &JobSpec,
    params: &SealParams,
    progress: &(dyn Fn(u64) + Sync),
    cache: &DigestCache,
) -> Result<Sealed, IssueError> {
    seal_in(cred, issuer, job, params, progress, Some(cache))
}

fn seal_in(
    cred: &Credential,
    issuer: &IssuerCheck,
    job: &JobSpec,
    params: &SealParams,
    progress: &(dyn Fn(u64) + Sync),
    cache: Option<&DigestCache>,
) -> Result<Sealed, IssueError> {
    let (manifest, capped) = manifest_of(job, issuer, params, progress, cache)?;
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
    use std::sync::atomic::{AtomicU64, Ordering};

    use super::*;

    fn data(len: usize, seed: u8) -> Vec<u8> {
        (0..len)
            .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
            .collect()
    }

    /// Issue 15 §2: `HH:MM` as voms-proxy-init -valid takes it, or a duration.
    #[test]
    fn validity_is_hh_mm_or_a_duration() {
        assert_eq!(parse_validity("12:00"), Some(12 * 3600));
        assert_eq!(parse_validity("0:30"), Some(1800));
        assert_eq!(parse_validity("36h"), Some(36 * 3600));
        assert_eq!(parse_validity("1:60"), None);
        assert_eq!(parse_validity("0:00"), None);
        assert_eq!(parse_validity("12"), None);
        assert_eq!(parse_validity("a:b"), None);
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
            Err(IssueError::Job(m)) => {
                assert!(m.contains("the input \"a.dat\""), "{m}");
                assert!(m.contains("a.dat cannot be read"), "{m}");
            }
            other => panic!("{other:?}"),
        }
    }

    /// A FIFO is refused at once, never waited for (issue 13 §3): the
    /// verifier refuses it as an executable or input too (spec §6.6 5c).
    #[test]
    fn a_pipe_is_refused_not_waited_for() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo");
        let made = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .is_ok_and(|s| s.success());
        assert!(made, "mkfifo (coreutils) is needed for this test");
        // No writer: a blocking open would never return.
        match hash_file(&fifo) {
            Err(IssueError::Io { path, source }) => {
                assert_eq!(path, fifo);
                assert!(source.to_string().contains("FIFO"), "{source}");
            }
            other => panic!("{other:?}"),
        }
    }

    /// A cache that keeps files however recently they changed (the tests'
    /// files are all new).
    fn cache_keeping_new_files() -> DigestCache {
        DigestCache {
            recent: std::time::Duration::ZERO,
            ..DigestCache::default()
        }
    }

    fn hashed(paths: &[&Path], cache: &DigestCache) -> (Vec<(u64, [u8; 32])>, u64) {
        let covered = AtomicU64::new(0);
        let digests = hash_files_cached(
            paths,
            &|n| {
                covered.fetch_add(n, Ordering::Relaxed);
            },
            cache,
        )
        .into_iter()
        .map(Result::unwrap)
        .collect();
        (digests, covered.load(Ordering::Relaxed))
    }

    #[test]
    fn files_shared_by_jobs_are_read_once() {
        let dir = tempfile::tempdir().unwrap();
        let (exe, input) = (dir.path().join("run.sh"), dir.path().join("in.dat"));
        std::fs::write(&exe, data(100, 1)).unwrap();
        std::fs::write(&input, data(5000, 2)).unwrap();
        let cache = cache_keeping_new_files();
        let want = vec![(100, sha256(&data(100, 1))), (5000, sha256(&data(5000, 2)))];
        assert_eq!(hashed(&[&exe, &input], &cache), (want.clone(), 5100));
        assert_eq!(cache.hits(), 0);
        // The next job: both served, both counted for a bar of all bytes.
        assert_eq!(hashed(&[&exe, &input], &cache), (want, 5100));
        assert_eq!(cache.hits(), 2);
    }

    #[test]
    fn a_file_rewritten_or_replaced_is_hashed_again() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("in.dat");
        std::fs::write(&path, data(4096, 1)).unwrap();
        let cache = cache_keeping_new_files();
        assert_eq!(
            hashed(&[&path], &cache).0,
            vec![(4096, sha256(&data(4096, 1)))]
        );
        // Rewritten in place, same size (its times move on, as a later
        // write's would).
        std::fs::write(&path, data(4096, 2)).unwrap();
        let later = std::time::SystemTime::now() + std::time::Duration::from_secs(5);
        std::fs::File::options()
            .write(true)
            .open(&path)
            .unwrap()
            .set_modified(later)
            .unwrap();
        assert_eq!(
            hashed(&[&path], &cache).0,
            vec![(4096, sha256(&data(4096, 2)))]
        );
        // Replaced by another file of the same size.
        let other = dir.path().join("other");
        std::fs::write(&other, data(4096, 3)).unwrap();
        std::fs::rename(&other, &path).unwrap();
        assert_eq!(
            hashed(&[&path], &cache).0,
            vec![(4096, sha256(&data(4096, 3)))]
        );
        assert_eq!(cache.hits(), 0);
    }

    /// With the real margin, a file changed just before it is hashed is
    /// never served from the cache: a rewrite in the same timestamp tick
    /// would look unchanged.
    #[test]
    fn a_file_changed_just_now_is_not_kept() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("in.dat");
        std::fs::write(&path, data(64, 1)).unwrap();
        let cache = DigestCache::new();
        for _ in 0..3 {
            assert_eq!(hashed(&[&path], &cache).0, vec![(64, sha256(&data(64, 1)))]);
        }
        assert_eq!(cache.hits(), 0);
        assert!(cache.files.lock().unwrap().is_empty());
    }
}
