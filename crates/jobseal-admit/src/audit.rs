//! The tamper-evident audit trail (`spec/jobseal.md` §6.7.3).
//!
//! Every decision is one JSON line in an append-only file. Each line carries
//! `seq` (1, 2, 3, … over the whole chain), `line` (its line number in its
//! file) and `prev`, the SHA-256 of the previous line's exact bytes, so
//! deleting, editing or reordering a record breaks the chain at that record.
//! The chain continues across rotation, and its head can be anchored in
//! syslog, outside the reach of whoever owns the file.
//!
//! Writers take an exclusive lock on a sibling `.lock` file around
//! read-head-then-append, so concurrent threads and processes never
//! interleave, lose a record or fork the chain.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufRead, BufReader, Read, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use jobseal_core::manifest::hex;
use jobseal_core::time::UnixTime;
use jobseal_core::{Error, Reason};
use jobseal_verify::{Decision, Outcome};
use serde::{Deserialize, Serialize};

use crate::fsown;

/// The record format version (`v`).
pub const FORMAT_VERSION: u32 = 1;
/// `prev` of the very first record of a chain.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";
/// The longest line a writer produces or a reader accepts (LF excluded).
pub const MAX_RECORD_BYTES: usize = 1024 * 1024;
/// Rotate once the current file has reached this size.
pub const DEFAULT_MAX_FILE_BYTES: u64 = 64 * 1024 * 1024;
/// Where syslog listens on most Linux systems.
pub const DEFAULT_SYSLOG_SOCKET: &str = "/dev/log";
/// syslog facility `authpriv` (10): security messages, root-readable only.
pub const DEFAULT_SYSLOG_FACILITY: u8 = 10;
/// What replaces a secret value.
pub const REDACTED: &str = "<redacted>";

/// Arguments beyond this many bytes in total are left out of a record (and
/// `arguments_truncated` is set), so a record stays below `MAX_RECORD_BYTES`.
const MAX_ARGUMENT_BYTES: usize = 256 * 1024;
/// Environment variable names beyond this many, or beyond
/// `MAX_ENVIRONMENT_BYTES` in total, are left out (`environment_truncated`).
const MAX_ENVIRONMENT_NAMES: usize = 1024;
const MAX_ENVIRONMENT_BYTES: usize = 64 * 1024;
const MAX_MESSAGE_BYTES: usize = 4096;
/// Bounds of the fields a minimal record (a record too large to write whole)
/// keeps, so that the minimal record always fits in `MAX_RECORD_BYTES`.
const MAX_MINIMAL_FIELD_BYTES: usize = 64 * 1024;
/// How long a writer waits for the lock before `audit.unavailable`.
pub const DEFAULT_LOCK_TIMEOUT: Duration = Duration::from_secs(10);
const MAX_SYSLOG_MSG_BYTES: usize = 1024;
/// /etc/passwd larger than this is not read (the user name is then absent).
const MAX_PASSWD_BYTES: u64 = 16 * 1024 * 1024;
/// A lock file replaced under us is re-opened at most this many times.
const LOCK_ATTEMPTS: usize = 4;
/// Private Enterprise Number of the SD-ID: 32473 is the documentation PEN
/// (RFC 5612), like the OIDs of §2.1, until a PEN is assigned.
const SD_ID: &str = "jobseal@32473";

fn unavailable(message: impl Into<String>) -> Error {
    Error::new(Reason::AuditUnavailable, message)
}

fn io_unavailable(what: &str, path: &Path, e: &io::Error) -> Error {
    unavailable(format!("audit log: {what} {}: {e}", path.display()))
}

/// SHA-256 of a line's exact bytes (without its LF), lowercase hex.
pub fn line_hash(line: &[u8]) -> String {
    hex(&jobseal_core::sha256(line))
}

// ---------------------------------------------------------------------------
// The record

/// One audit record: one line of the log. Field order is the serialisation
/// order; the line is compact JSON (`serde_json::to_string`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditRecord {
    /// Format version ([`FORMAT_VERSION`]).
    pub v: u32,
    /// Position in the chain, from 1; set by [`AuditLog::append`].
    pub seq: u64,
    /// Line number in its file, from 1; set by [`AuditLog::append`].
    pub line: u64,
    /// SHA-256 of the previous record's line, or [`GENESIS`]; set by
    /// [`AuditLog::append`].
    pub prev: String,
    /// When: UTC, RFC 3339 with seconds.
    pub time: String,
    /// `permit` or `deny`.
    pub outcome: String,
    /// The reason code of a deny (`None` on permit).
    pub reason: Option<String>,
    /// One line for people (secret values scrubbed).
    pub message: String,
    pub who: Who,
    pub what: What,
    #[serde(rename = "where")]
    pub place: Where,
    /// The jobseal version that wrote the record.
    pub jobseal: String,
    /// The replay store's weakness the site policy accepts (a Redis server
    /// that can lose uses, §6.7.2): absent when there is none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replay: Option<ReplayNote>,
    /// How a launcher runs the payload (`jobseal-exec`): absent otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub launch: Option<Launch>,
}

/// What every record says about a replay store the site accepts although it
/// can lose use records (`[replay.redis] accept_volatile = true`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplayNote {
    /// `redis`.
    pub store: String,
    /// `true`: uses may be lost (no AOF, or keys evicted), so a job may be
    /// admitted again after a restart of the server.
    pub accept_volatile: bool,
}

/// The identity change a launcher makes for the payload, recorded before
/// it is made (traceability: which local account ran whose job).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Launch {
    /// `identity-switching` or `logging-only`.
    pub mode: String,
    /// The invoking (pilot) uid.
    pub source_uid: u32,
    /// The uid, gid and supplementary groups the payload runs with; absent
    /// in the record of a refusal made before the user was mapped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_uid: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_gid: Option<u32>,
    #[serde(default)]
    pub target_groups: Vec<u32>,
    /// The local account.
    pub account: String,
    /// How it was chosen (`map dn`, `map fqan`, `grid-mapfile`, `caller`).
    pub mapped_by: String,
    /// The gridmapdir lease, for a pool account.
    pub lease: Option<String>,
    /// The payload's fresh working directory, if one was made.
    pub workdir: Option<String>,
    /// The caller's pid (the launch service knows it from the socket).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_pid: Option<u32>,
    /// The caller's batch job: its cgroup (v2) path, which the payload
    /// joins. The first question in an incident is which batch job asked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batch_job: Option<String>,
}

/// Who: as far as path validation got.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Who {
    /// The user: the end-entity certificate's subject.
    pub end_entity: Option<String>,
    /// The job-bound proxy's subject (the leaf).
    pub subject: Option<String>,
    /// The job-bound proxy's issuer.
    pub issuer: Option<String>,
    /// Whether that issuer is the end-entity certificate itself (no proxy
    /// sealed the job; what `issuer = "end-entity"` requires, §13.4 6f).
    /// Absent in records written before it was added.
    #[serde(default)]
    pub issued_by_end_entity: Option<bool>,
    /// The trust anchor.
    pub ca: Option<String>,
    /// Certificate serials (hex), leaf first: job-bound proxy, user proxies,
    /// user certificate.
    #[serde(default)]
    pub serials: Vec<String>,
    #[serde(default)]
    pub voms: Vec<VomsEntry>,
}

/// One VOMS attribute certificate; only `verified` ones may be trusted.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct VomsEntry {
    pub vo: String,
    #[serde(default)]
    pub fqans: Vec<String>,
    pub issuer: String,
    pub verified: bool,
    /// The `voms.*` code of an untrusted AC.
    pub error: Option<String>,
}

/// What: the job, as far as it was established.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct What {
    pub job_id: Option<String>,
    pub manifest_sha256: Option<String>,
    /// The executable path as given to the launcher.
    pub executable: Option<String>,
    /// The executable's name in the manifest (informational).
    pub executable_name: Option<String>,
    /// The executable's SHA-256 from the manifest.
    pub executable_sha256: Option<String>,
    /// The arguments as given (or the manifest's), secret values redacted.
    #[serde(default)]
    pub arguments: Vec<String>,
    #[serde(default)]
    pub arguments_truncated: bool,
    /// Environment variable names only, never values.
    #[serde(default)]
    pub environment: Vec<String>,
    /// Names were left out: more than 1024 or 64 KiB of them.
    #[serde(default)]
    pub environment_truncated: bool,
    pub vo: Option<String>,
    pub sites: Option<Vec<String>>,
}

/// Where: this node and the invoking process.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Where {
    pub host: Option<String>,
    /// The site name from the policy.
    pub site: Option<String>,
    /// The real uid of the invoking process.
    pub uid: Option<u32>,
    /// The effective uid, when it differs (a setuid launcher).
    pub euid: Option<u32>,
    /// The user name of `uid` from `/etc/passwd`.
    pub user: Option<String>,
    pub cwd: Option<String>,
}

/// What the caller knows beyond the decision.
#[derive(Clone, Debug, Default)]
pub struct RecordContext {
    /// The executable path as given.
    pub executable: Option<String>,
    /// The arguments as given; `None` takes the manifest's.
    pub arguments: Option<Vec<String>>,
    /// Environment variable names (a `NAME=VALUE` is cut at `=`: values are
    /// never logged).
    pub environment: Vec<String>,
    /// The site name from the policy.
    pub site: Option<String>,
    /// Names the policy marks secret: `--NAME=v`, `-NAME=v`, `NAME=v` and the
    /// argument after `--NAME`/`-NAME` are redacted (ASCII case-insensitive),
    /// and the redacted values are scrubbed from the message.
    pub secret_names: Vec<String>,
    /// A launcher's identity change, recorded with the decision.
    pub launch: Option<Launch>,
}

impl AuditRecord {
    /// The record of `decision`, stamped now, on this node. The chain fields
    /// (`seq`, `line`, `prev`) are filled in by [`AuditLog::append`].
    pub fn from_decision(decision: &Decision, ctx: &RecordContext) -> Self {
        let identity = decision.identity.as_ref();
        let job = decision.job.as_ref();
        let given = ctx
            .arguments
            .clone()
            .or_else(|| job.map(|j| j.arguments.clone()))
            .unwrap_or_default();
        let (arguments, secrets) = redact_arguments(&given, &ctx.secret_names);
        let (arguments, arguments_truncated) = cap_arguments(arguments);
        let (environment, environment_truncated) = cap_environment(&ctx.environment);
        Self {
            v: FORMAT_VERSION,
            seq: 0,
            line: 0,
            prev: String::new(),
            time: UnixTime::now().to_rfc3339(),
            outcome: match decision.outcome {
                Outcome::Permit => "permit".into(),
                Outcome::Deny => "deny".into(),
            },
            reason: decision.reason.map(|r| r.code().to_string()),
            message: cap(&scrub(&decision.message, &secrets), MAX_MESSAGE_BYTES),
            who: Who {
                end_entity: identity.map(|i| i.end_entity.clone()),
                subject: identity.map(|i| i.subject.clone()),
                issuer: identity.map(|i| i.issuer.clone()),
                issued_by_end_entity: identity.map(|i| i.issued_by_end_entity),
                ca: identity.map(|i| i.ca.clone()),
                serials: identity.map(|i| i.serials.clone()).unwrap_or_default(),
                voms: identity
                    .map(|i| {
                        i.voms
                            .iter()
                            .map(|v| VomsEntry {
                                vo: v.vo.clone(),
                                fqans: v.fqans.clone(),
                                issuer: v.issuer.clone(),
                                verified: v.verified,
                                error: v.error.as_ref().map(|e| e.code.code().to_string()),
                            })
                            .collect()
                    })
                    .unwrap_or_default(),
            },
            what: What {
                job_id: job.map(|j| j.job_id.clone()),
                manifest_sha256: decision.manifest_sha256.clone(),
                executable: ctx.executable.clone(),
                executable_name: job.map(|j| j.executable.clone()),
                executable_sha256: job.map(|j| j.executable_sha256.clone()),
                arguments,
                arguments_truncated,
                environment,
                environment_truncated,
                vo: job.and_then(|j| j.vo.clone()),
                sites: job.and_then(|j| j.sites.clone()),
            },
            place: Where::current(ctx.site.clone()),
            jobseal: env!("CARGO_PKG_VERSION").to_string(),
            replay: None,
            launch: ctx.launch.clone(),
        }
    }

    /// The record of a launcher's own refusal (an `exec.*` or set-up code,
    /// `spec/jobseal.md` §14.11), made before or without a verifier
    /// decision; whatever `decision` established is kept.
    pub fn refusal(decision: &Decision, code: &str, ctx: &RecordContext) -> Self {
        let mut record = Self::from_decision(decision, ctx);
        record.outcome = "deny".into();
        record.reason = Some(code.to_string());
        record
    }

    /// The record's time, if it parses.
    pub fn unix_time(&self) -> Option<UnixTime> {
        UnixTime::parse_rfc3339(&self.time)
    }
}

impl Where {
    /// This host and process. Anything unreadable is left out, never guessed.
    pub fn current(site: Option<String>) -> Self {
        let host = fs::read_to_string("/proc/sys/kernel/hostname")
            .ok()
            .map(|h| h.trim().to_string())
            .filter(|h| !h.is_empty());
        let (uid, euid) = proc_uids().unzip();
        Self {
            host,
            site,
            uid,
            euid: euid.filter(|e| Some(*e) != uid),
            user: uid.and_then(user_name),
            cwd: std::env::current_dir()
                .ok()
                .map(|p| p.to_string_lossy().into_owned()),
        }
    }
}

/// Real and effective uid from `/proc/self/status` (`Uid: r e s fs`).
fn proc_uids() -> Option<(u32, u32)> {
    let status = fs::read_to_string("/proc/self/status").ok()?;
    let [real, effective, ..] = jobseal_core::procstatus::ids(&status, "Uid:")?;
    Some((real, effective))
}

/// The `/etc/passwd` name of `uid` (no NSS: a launcher must not load modules).
///
/// Read a line at a time (a worker node's file lists its pool accounts: it
/// is not held whole for every admission), with the result of reading the
/// first `MAX_PASSWD_BYTES` as one UTF-8 text: nothing if any of it is not
/// UTF-8 or cannot be read, else the name on the first line that matches.
fn user_name(uid: u32) -> Option<String> {
    passwd_user(File::open("/etc/passwd").ok()?, uid)
}

/// [`user_name`] on the text `passwd` gives.
fn passwd_user(passwd: impl Read, uid: u32) -> Option<String> {
    let mut reader = BufReader::new(passwd.take(MAX_PASSWD_BYTES));
    let mut line = Vec::new();
    let mut found = None;
    loop {
        line.clear();
        if reader.read_until(b'\n', &mut line).ok()? == 0 {
            return found;
        }
        let text = std::str::from_utf8(&line).ok()?;
        if found.is_none() {
            found = passwd_name(passwd_line(text), uid);
        }
    }
}

/// A line without its ending, as `str::lines` gives it: `\n` or `\r\n`.
fn passwd_line(text: &str) -> &str {
    match text.strip_suffix('\n') {
        Some(l) => l.strip_suffix('\r').unwrap_or(l),
        None => text,
    }
}

/// The name on a `/etc/passwd` line, if the line is `uid`'s.
fn passwd_name(l: &str, uid: u32) -> Option<String> {
    let mut fields = l.split(':');
    let name = fields.next()?;
    let id = fields.nth(1)?.parse::<u32>().ok()?;
    (id == uid && !name.is_empty()).then(|| name.to_string())
}

/// Redact secret values; returns the arguments and the values removed.
fn redact_arguments(args: &[String], secret_names: &[String]) -> (Vec<String>, Vec<String>) {
    let secret =
        |name: &str| !name.is_empty() && secret_names.iter().any(|s| s.eq_ignore_ascii_case(name));
    let mut out = Vec::with_capacity(args.len());
    let mut removed = Vec::new();
    let mut redact_next = false;
    for a in args {
        if redact_next {
            redact_next = false;
            removed.push(a.clone());
            out.push(REDACTED.to_string());
            continue;
        }
        let bare = a.trim_start_matches('-');
        if let Some((name, value)) = bare.split_once('=') {
            if secret(name) {
                let prefix_len = a.len() - bare.len() + name.len();
                out.push(format!(
                    "{}={REDACTED}",
                    a.get(..prefix_len).unwrap_or_default()
                ));
                removed.push(value.to_string());
                continue;
            }
        } else if a.starts_with('-') && secret(bare) {
            redact_next = true;
        }
        out.push(a.clone());
    }
    (out, removed)
}

/// Keep arguments up to `MAX_ARGUMENT_BYTES` in total.
fn cap_arguments(args: Vec<String>) -> (Vec<String>, bool) {
    let mut total = 0usize;
    let mut out = Vec::new();
    for a in args {
        total = total.saturating_add(a.len());
        if total > MAX_ARGUMENT_BYTES {
            return (out, true);
        }
        out.push(a);
    }
    (out, false)
}

/// The variable names (a `NAME=VALUE` is cut at `=`), sorted and without
/// duplicates, at most `MAX_ENVIRONMENT_NAMES` of them and
/// `MAX_ENVIRONMENT_BYTES` in total; `true` if some were left out.
fn cap_environment(given: &[String]) -> (Vec<String>, bool) {
    let mut names: Vec<&str> = given
        .iter()
        .map(|e| e.split('=').next().unwrap_or_default())
        .collect();
    names.sort_unstable();
    names.dedup();
    let mut total = 0usize;
    let mut out = Vec::new();
    for n in names {
        total = total.saturating_add(n.len());
        if out.len() >= MAX_ENVIRONMENT_NAMES || total > MAX_ENVIRONMENT_BYTES {
            return (out, true);
        }
        out.push(n.to_string());
    }
    (out, false)
}

/// Remove every secret value, and its `{:?}`-escaped form, from `message`:
/// deny messages may quote arguments. A short value mangles the message;
/// that is the price of never logging it.
fn scrub(message: &str, secrets: &[String]) -> String {
    let mut m = message.to_string();
    for s in secrets.iter().filter(|s| !s.is_empty()) {
        let escaped = format!("{s:?}");
        let inner = escaped
            .strip_prefix('"')
            .and_then(|e| e.strip_suffix('"'))
            .unwrap_or(&escaped);
        m = m.replace(inner, REDACTED).replace(s.as_str(), REDACTED);
    }
    m
}

/// At most `max` bytes, cut at a character boundary.
fn cap(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s.get(..end).unwrap_or_default().to_string()
}

// ---------------------------------------------------------------------------
// The log

/// syslog anchoring (RFC 5424 over a unix datagram socket).
#[derive(Clone, Debug)]
pub struct SyslogOptions {
    /// Default [`DEFAULT_SYSLOG_SOCKET`].
    pub socket: PathBuf,
    /// APP-NAME, default `jobseal`.
    pub app_name: String,
    /// Default [`DEFAULT_SYSLOG_FACILITY`] (authpriv).
    pub facility: u8,
    /// If the message cannot be sent: `true` (the default) fails the append
    /// with `audit.unavailable` (the job is not admitted); `false` only counts
    /// the failure ([`AuditLog::syslog_failures`]).
    pub required: bool,
    /// How long a send may block (a full syslog queue must not hang jobs).
    pub timeout: Duration,
}

impl Default for SyslogOptions {
    fn default() -> Self {
        Self {
            socket: PathBuf::from(DEFAULT_SYSLOG_SOCKET),
            app_name: "jobseal".into(),
            facility: DEFAULT_SYSLOG_FACILITY,
            required: true,
            timeout: Duration::from_secs(2),
        }
    }
}

/// How the log is written.
#[derive(Clone, Debug)]
pub struct AuditOptions {
    /// Rotate when the current file has reached this many bytes.
    pub max_file_bytes: u64,
    /// Anchor every record's head in syslog (`None`: off).
    pub syslog: Option<SyslogOptions>,
    /// How long a writer waits for the lock (default
    /// [`DEFAULT_LOCK_TIMEOUT`]) before failing with `audit.unavailable`.
    pub lock_timeout: Duration,
}

impl Default for AuditOptions {
    fn default() -> Self {
        Self {
            max_file_bytes: DEFAULT_MAX_FILE_BYTES,
            syslog: None,
            lock_timeout: DEFAULT_LOCK_TIMEOUT,
        }
    }
}

/// An append-only, hash-chained JSON-lines audit log. Shared across threads;
/// any number of processes may append to the same path.
#[derive(Debug)]
pub struct AuditLog {
    path: PathBuf,
    lock_path: PathBuf,
    options: AuditOptions,
    /// `flock` is per open file description: threads of one process need
    /// their own exclusion too.
    threads: Mutex<()>,
    syslog_failures: AtomicU64,
}

/// The last record of a chain as a writer needs it.
#[derive(Clone, Debug)]
struct Head {
    seq: u64,
    line: u64,
    hash: String,
}

impl AuditLog {
    /// Open (create) the log at `path`: the directory is created 0750, the
    /// file 0640 and its `.lock` sibling 0600. Refuses symbolic links, files
    /// not owned by the effective uid, a log writable by group or others, and
    /// a directory not owned by root or the effective uid or writable by
    /// group or others.
    pub fn open(path: impl AsRef<Path>, options: AuditOptions) -> Result<Self, Error> {
        let path = path.as_ref().to_path_buf();
        let name = path
            .file_name()
            .ok_or_else(|| unavailable(format!("audit log: {} names no file", path.display())))?;
        let dir = parent_dir(&path);
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o750)
            .create(&dir)
            .map_err(|e| io_unavailable("cannot create directory", &dir, &e))?;
        let mut lock_name = name.to_os_string();
        lock_name.push(".lock");
        let lock_path = dir.join(lock_name);
        if options.max_file_bytes == 0 {
            return Err(unavailable("audit log: max_file_bytes must be positive"));
        }
        let log = Self {
            path,
            lock_path,
            options,
            threads: Mutex::new(()),
            syslog_failures: AtomicU64::new(0),
        };
        log.check_dir()?;
        open_lock_file(&log.lock_path)?;
        open_log_file(&log.path)?;
        Ok(log)
    }

    /// The current file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// How many syslog messages could not be sent (with `required: false`).
    pub fn syslog_failures(&self) -> u64 {
        self.syslog_failures.load(Ordering::Relaxed)
    }

    /// Append `record` as the next link of the chain and return the new head
    /// (the SHA-256 of the line written). `seq`, `line` and `prev` are set
    /// here. Returns only after the line is on disk (fsync); any failure is
    /// `audit.unavailable` and the job must not run.
    pub fn append(&self, record: AuditRecord) -> Result<String, Error> {
        let _threads = self.threads.lock().unwrap_or_else(PoisonError::into_inner);
        let lock = self.lock()?;
        let result = self.append_locked(record);
        // Closing the file releases the lock too; unlock first so a failed
        // close cannot keep others waiting.
        let _ = lock.unlock();
        result
    }

    /// The log directory: owned by root or us, not writable by others.
    fn check_dir(&self) -> Result<(), Error> {
        let euid = fsown::euid().map_err(|m| unavailable(format!("audit log: {m}")))?;
        fsown::check_dir(&parent_dir(&self.path), euid)
            .map_err(|m| unavailable(format!("audit log: {m}")))
    }

    /// Take the exclusive lock on the `.lock` file, making sure it is still
    /// the file at that path (a replaced lock file would split writers).
    /// Never blocks: retries a non-blocking lock until `lock_timeout`.
    fn lock(&self) -> Result<File, Error> {
        self.check_dir()?;
        let deadline = Instant::now() + self.options.lock_timeout;
        for _ in 0..LOCK_ATTEMPTS {
            let f = open_lock_file(&self.lock_path)?;
            let mut pause = Duration::from_millis(1);
            loop {
                match f.try_lock() {
                    Ok(()) => break,
                    Err(fs::TryLockError::WouldBlock) => {
                        let left = deadline.saturating_duration_since(Instant::now());
                        if left.is_zero() {
                            return Err(unavailable(format!(
                                "audit log: lock {} still held by another writer after {:?}",
                                self.lock_path.display(),
                                self.options.lock_timeout
                            )));
                        }
                        std::thread::sleep(pause.min(left));
                        pause = pause.saturating_mul(2).min(Duration::from_millis(50));
                    }
                    Err(fs::TryLockError::Error(e)) => {
                        return Err(io_unavailable("cannot lock", &self.lock_path, &e));
                    }
                }
            }
            let held = f
                .metadata()
                .map_err(|e| io_unavailable("cannot stat lock", &self.lock_path, &e))?;
            match fs::symlink_metadata(&self.lock_path) {
                Ok(now) if now.dev() == held.dev() && now.ino() == held.ino() => return Ok(f),
                _ => continue,
            }
        }
        Err(unavailable(format!(
            "audit log: lock file {} keeps being replaced",
            self.lock_path.display()
        )))
    }

    /// Tell syslog, when anchoring is on, of a decision whose record could
    /// not be written (`seq=0 head=unrecorded`, then `NOT RECORDED:` and
    /// `note`): the one trace left when the log itself fails. Best effort.
    pub fn report_unrecorded(&self, record: &AuditRecord, note: &str) {
        if let Some(opts) = &self.options.syslog {
            let mut msg = syslog_message(opts, record, 0, "unrecorded");
            msg.push_str(" NOT RECORDED: ");
            msg.push_str(&cap(
                &note.replace(|c: char| c.is_control(), "?"),
                MAX_SYSLOG_MSG_BYTES,
            ));
            if send_syslog_text(opts, &msg).is_err() {
                self.syslog_failures.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    fn append_locked(&self, record: AuditRecord) -> Result<String, Error> {
        self.rotate_if_full()?;
        let (seq, head) = self.write_record(record.clone())?;
        let Some(syslog) = &self.options.syslog else {
            return Ok(head);
        };
        let Err(e) = send_syslog(syslog, &record, seq, &head) else {
            return Ok(head);
        };
        if !syslog.required {
            self.syslog_failures.fetch_add(1, Ordering::Relaxed);
            return Ok(head);
        }
        // The file says what the verifier decided; a permit that cannot be
        // anchored is withdrawn in the file too, so it never claims a run
        // that did not happen.
        if record.outcome == "permit" {
            let mut withdrawn = record;
            withdrawn.outcome = "deny".into();
            withdrawn.reason = Some(Reason::AuditUnavailable.code().into());
            withdrawn.message = format!("the permit of seq {seq} is withdrawn: {e}");
            withdrawn.time = UnixTime::now().to_rfc3339();
            self.write_record(withdrawn)?;
        }
        Err(unavailable(format!(
            "audit log: record seq {seq} written but not anchored: {e}"
        )))
    }

    /// Rename a full current file to `<name>.<n>` (n one above the highest);
    /// the next record, first of the new file, continues the chain from the
    /// rotated file's last record.
    fn rotate_if_full(&self) -> Result<(), Error> {
        let len = match fs::metadata(&self.path) {
            Ok(m) => m.len(),
            Err(e) if e.kind() == io::ErrorKind::NotFound => 0,
            Err(e) => return Err(io_unavailable("cannot stat", &self.path, &e)),
        };
        if len < self.options.max_file_bytes {
            return Ok(());
        }
        let n = match rotated_files(&self.path)?.last() {
            None => 1,
            Some((n, _)) => n.checked_add(1).ok_or_else(|| {
                unavailable(format!(
                    "audit log: cannot rotate {}: the rotated suffix .{n} is the largest possible",
                    self.path.display()
                ))
            })?,
        };
        let target = rotated_name(&self.path, n);
        fs::rename(&self.path, &target)
            .map_err(|e| io_unavailable("cannot rotate", &self.path, &e))?;
        sync_dir(&self.path)
    }

    /// Read the head, write one line, fsync. Returns (seq, new head).
    fn write_record(&self, mut record: AuditRecord) -> Result<(u64, String), Error> {
        let mut file = open_log_file(&self.path)?;
        let len = file
            .metadata()
            .map_err(|e| io_unavailable("cannot stat", &self.path, &e))?
            .len();
        let head = if len > 0 {
            read_head(&file, len, &self.path)?
        } else {
            // A new file continues from the newest rotated file, if any.
            match rotated_files(&self.path)?.last() {
                Some((_, p)) => {
                    let f = open_rotated_file(p)?;
                    let l = f
                        .metadata()
                        .map_err(|e| io_unavailable("cannot stat", p, &e))?
                        .len();
                    let h = read_head(&f, l, p)?;
                    Head { line: 0, ..h }
                }
                None => Head {
                    seq: 0,
                    line: 0,
                    hash: GENESIS.into(),
                },
            }
        };
        record.v = FORMAT_VERSION;
        record.seq = head
            .seq
            .checked_add(1)
            .ok_or_else(|| unavailable("audit log: seq overflow"))?;
        record.line = head.line.saturating_add(1);
        record.prev = head.hash;
        record.message = cap(&record.message, MAX_MESSAGE_BYTES);
        let encode = |r: &AuditRecord| {
            serde_json::to_string(r)
                .map_err(|e| unavailable(format!("audit log: cannot encode the record: {e}")))
        };
        let mut line = encode(&record)?;
        if line.len() > MAX_RECORD_BYTES {
            // The decision must leave a trace all the same (a replay use may
            // already be spent): keep what identifies it.
            record = minimal_record(&record, line.len());
            line = encode(&record)?;
            if line.len() > MAX_RECORD_BYTES {
                return Err(unavailable(format!(
                    "audit log: record of {} bytes exceeds {MAX_RECORD_BYTES}",
                    line.len()
                )));
            }
        }
        // Make a new file's directory entry durable before the record that
        // depends on it: a failure here leaves nothing written.
        if len == 0 {
            sync_dir(&self.path)?;
        }
        let mut bytes = line.into_bytes();
        let hash = line_hash(&bytes);
        bytes.push(b'\n');
        // One write on an O_APPEND descriptor under the lock: never interleaved.
        let written = file.write_all(&bytes).and_then(|()| file.sync_data());
        if let Err(e) = written {
            // Take back a partial line so the next writer is not blocked by
            // it; this record was never acknowledged.
            let _ = file.set_len(len).and_then(|()| file.sync_data());
            return Err(io_unavailable("cannot write", &self.path, &e));
        }
        Ok((record.seq, hash))
    }
}

fn parent_dir(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// What a record too large to write keeps: the chain fields, `time`,
/// `outcome`, `reason`, `who.end_entity`, `what.job_id`,
/// `what.manifest_sha256`, `jobseal`, `replay` and `launch`, each bounded, and a
/// message saying so.
fn minimal_record(r: &AuditRecord, size: usize) -> AuditRecord {
    let short = |s: &str| cap(s, MAX_MINIMAL_FIELD_BYTES);
    AuditRecord {
        v: r.v,
        seq: r.seq,
        line: r.line,
        prev: r.prev.clone(),
        time: cap(&r.time, 64),
        outcome: cap(&r.outcome, 16),
        reason: r.reason.as_deref().map(|s| cap(s, 256)),
        message: format!(
            "minimal record: the full record of {size} bytes exceeds {MAX_RECORD_BYTES}; \
             only the chain fields, time, outcome, reason, who.end_entity, what.job_id and \
             what.manifest_sha256 (and a launcher's identity change) are kept: {}",
            cap(&r.message, 1024)
        ),
        who: Who {
            end_entity: r.who.end_entity.as_deref().map(short),
            ..Who::default()
        },
        what: What {
            job_id: r.what.job_id.as_deref().map(|s| cap(s, 256)),
            manifest_sha256: r.what.manifest_sha256.as_deref().map(|s| cap(s, 256)),
            ..What::default()
        },
        place: Where::default(),
        jobseal: cap(&r.jobseal, 64),
        replay: r.replay.as_ref().map(|n| ReplayNote {
            store: cap(&n.store, 16),
            accept_volatile: n.accept_volatile,
        }),
        // Who ran it, and as whom, is kept: a few numbers and short names.
        launch: r.launch.as_ref().map(|l| Launch {
            mode: cap(&l.mode, 32),
            account: short(&l.account),
            mapped_by: cap(&l.mapped_by, 32),
            lease: l.lease.as_deref().map(short),
            workdir: l.workdir.as_deref().map(short),
            batch_job: l.batch_job.as_deref().map(short),
            target_groups: l.target_groups.iter().take(64).copied().collect(),
            ..*l
        }),
    }
}

/// The lock file: created 0600; it must be ours, a regular file and not a
/// symbolic link. Anyone who can open it can hold the lock, so group and
/// other permissions are removed.
fn open_lock_file(path: &Path) -> Result<File, Error> {
    let f = fsown::open_nofollow(
        OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .mode(0o600),
        path,
    )
    .map_err(|e| io_unavailable("cannot open lock", path, &e))?;
    let m = check_owned(&f, path)?;
    if m.mode() & 0o077 != 0 {
        f.set_permissions(fs::Permissions::from_mode(0o600))
            .map_err(|e| io_unavailable("cannot make private (0600)", path, &e))?;
    }
    Ok(f)
}

/// The current log file, for appending: created 0640.
fn open_log_file(path: &Path) -> Result<File, Error> {
    let f = fsown::open_nofollow(
        OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .mode(0o640),
        path,
    )
    .map_err(|e| io_unavailable("cannot open", path, &e))?;
    check_mode(&f, path)?;
    Ok(f)
}

/// A rotated file whose head continues the chain: read-only, same checks.
fn open_rotated_file(path: &Path) -> Result<File, Error> {
    let f = fsown::open_nofollow(OpenOptions::new().read(true), path)
        .map_err(|e| io_unavailable("cannot open", path, &e))?;
    check_mode(&f, path)?;
    Ok(f)
}

/// A regular file owned by the effective uid.
fn check_owned(f: &File, path: &Path) -> Result<fs::Metadata, Error> {
    let m = f
        .metadata()
        .map_err(|e| io_unavailable("cannot stat", path, &e))?;
    let euid = fsown::euid().map_err(|m| unavailable(format!("audit log: {m}")))?;
    fsown::check_owned_file(&m, path, euid).map_err(|m| unavailable(format!("audit log: {m}")))?;
    Ok(m)
}

/// A log someone else owns or others may write is no evidence: refuse it.
fn check_mode(f: &File, path: &Path) -> Result<(), Error> {
    let m = check_owned(f, path)?;
    if m.mode() & 0o022 != 0 {
        return Err(unavailable(format!(
            "audit log: {} is writable by group or others (mode {:o})",
            path.display(),
            m.mode() & 0o7777
        )));
    }
    Ok(())
}

/// Make a created or renamed directory entry durable.
fn sync_dir(path: &Path) -> Result<(), Error> {
    let dir = parent_dir(path);
    File::open(&dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| io_unavailable("cannot sync directory", &dir, &e))
}

fn rotated_name(path: &Path, n: u64) -> PathBuf {
    let mut name = path.as_os_str().to_os_string();
    name.push(format!(".{n}"));
    PathBuf::from(name)
}

/// The rotated files `<name>.<n>` next to `path`, oldest (lowest n) first.
pub fn rotated_files(path: &Path) -> Result<Vec<(u64, PathBuf)>, Error> {
    let dir = parent_dir(path);
    let Some(base) = path.file_name().and_then(|n| n.to_str()) else {
        return Err(unavailable(format!(
            "audit log: {} is not a UTF-8 file name",
            path.display()
        )));
    };
    let entries = fs::read_dir(&dir).map_err(|e| io_unavailable("cannot list", &dir, &e))?;
    let mut out = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| io_unavailable("cannot list", &dir, &e))?;
        let name = entry.file_name();
        let Some(n) = name
            .to_str()
            .and_then(|s| s.strip_prefix(base))
            .and_then(|s| s.strip_prefix('.'))
            .filter(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|s| s.parse::<u64>().ok())
        else {
            continue;
        };
        out.push((n, dir.join(&name)));
    }
    out.sort();
    Ok(out)
}

/// Every file of the chain at `path`, in order: the rotated files, then the
/// current one (if it exists). What `jobseal audit verify` checks by default.
pub fn chain_files(path: impl AsRef<Path>) -> Result<Vec<PathBuf>, Error> {
    let path = path.as_ref();
    let mut files: Vec<PathBuf> = rotated_files(path)?.into_iter().map(|(_, p)| p).collect();
    if path.exists() {
        files.push(path.to_path_buf());
    }
    Ok(files)
}

/// The first read of [`read_head`]: a typical record (about 2 KiB with a
/// VOMS identity) and the line break before it fit.
const HEAD_FIRST_READ: u64 = 8 * 1024;

/// The last record of a non-empty file: read at most one record's worth of
/// bytes from the end. A torn last line (no LF) fails closed.
///
/// Reads backwards from the end, 8 KiB first and doubling, only until the
/// line break before the last line is found (or the one-record window is
/// exhausted): the same line as reading the whole window at once, without
/// holding up to 1 MiB of the file in memory for every admission.
fn read_head(file: &File, len: u64, path: &Path) -> Result<Head, Error> {
    use std::os::unix::fs::FileExt;
    let window = len.min(MAX_RECORD_BYTES as u64 + 2);
    let start = len - window;
    // `tail` holds the file's bytes from `pos` to `len`.
    let mut tail: Vec<u8> = Vec::new();
    let mut pos = len;
    let mut step = HEAD_FIRST_READ;
    let line_start = loop {
        let from = pos.saturating_sub(step).max(start);
        let n = usize::try_from(pos - from)
            .map_err(|_| unavailable("audit log: the read window does not fit in memory"))?;
        let mut chunk = vec![0u8; n];
        file.read_exact_at(&mut chunk, from)
            .map_err(|e| io_unavailable("cannot read", path, &e))?;
        let searched = chunk.len();
        chunk.extend_from_slice(&tail);
        tail = chunk;
        pos = from;
        if tail.last() != Some(&b'\n') {
            return Err(unavailable(format!(
                "audit log: {} ends with an incomplete line (a torn write); truncate it \
                 after its last complete line (`jobseal audit verify` names it)",
                path.display()
            )));
        }
        // A line break before the last line's own, in the bytes just read.
        let body = tail.len() - 1;
        let fresh = tail.get(..searched.min(body)).unwrap_or_default();
        if let Some(i) = fresh.iter().rposition(|b| *b == b'\n') {
            break i + 1;
        }
        if pos == start {
            if start == 0 {
                break 0;
            }
            return Err(unavailable(format!(
                "audit log: the last line of {} is longer than {MAX_RECORD_BYTES} bytes",
                path.display()
            )));
        }
        step = step.saturating_mul(2);
    };
    let line = tail.get(line_start..tail.len() - 1).unwrap_or_default();
    let links: Links = serde_json::from_slice(line).map_err(|e| {
        unavailable(format!(
            "audit log: the last line of {} is not a record: {e}",
            path.display()
        ))
    })?;
    Ok(Head {
        seq: links.seq,
        line: links.line,
        hash: line_hash(line),
    })
}

/// The chain fields of a line.
#[derive(Deserialize)]
struct Links {
    seq: u64,
    line: u64,
    prev: String,
}

// ---------------------------------------------------------------------------
// syslog

/// The RFC 5424 message anchoring `head`: short, one per decision.
pub fn syslog_message(opts: &SyslogOptions, record: &AuditRecord, seq: u64, head: &str) -> String {
    // Severity: permit notice (5), deny warning (4).
    let severity = if record.outcome == "permit" { 5 } else { 4 };
    let pri = u32::from(opts.facility) * 8 + severity;
    let host = nil_or(record.place.host.as_deref());
    let code = record.reason.as_deref().unwrap_or("permit");
    let dn = record.who.end_entity.as_deref().unwrap_or("-");
    let job = record.what.job_id.as_deref().unwrap_or("-");
    let msg = cap(
        &format!(
            "{} {code} seq={seq} head={head} job={job} dn={dn}",
            record.outcome
        )
        .replace(|c: char| c.is_control(), "?"),
        MAX_SYSLOG_MSG_BYTES,
    );
    format!(
        "<{pri}>1 {} {host} {} {} audit [{SD_ID} seq=\"{seq}\" head=\"{head}\" outcome=\"{}\" reason=\"{}\" job=\"{}\"] {msg}",
        record.time,
        nil_or(Some(&opts.app_name)),
        std::process::id(),
        sd_escape(&record.outcome),
        sd_escape(code),
        sd_escape(job),
    )
}

/// A header field: printable US-ASCII without spaces, at most 48, or `-`.
fn nil_or(s: Option<&str>) -> String {
    let s: String = s
        .unwrap_or_default()
        .chars()
        .filter(|c| c.is_ascii_graphic())
        .take(48)
        .collect();
    if s.is_empty() { "-".into() } else { s }
}

/// RFC 5424 §6.3.3: `"`, `\` and `]` are escaped in PARAM-VALUE.
fn sd_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '"' | '\\' | ']') {
            out.push('\\');
        }
        out.push(if c.is_control() { '?' } else { c });
    }
    out
}

fn send_syslog(
    opts: &SyslogOptions,
    record: &AuditRecord,
    seq: u64,
    head: &str,
) -> Result<(), String> {
    send_syslog_text(opts, &syslog_message(opts, record, seq, head))
}

fn send_syslog_text(opts: &SyslogOptions, msg: &str) -> Result<(), String> {
    let sock = UnixDatagram::unbound().map_err(|e| format!("syslog socket: {e}"))?;
    sock.set_write_timeout(Some(opts.timeout))
        .map_err(|e| format!("syslog socket: {e}"))?;
    let sent = sock
        .send_to(msg.as_bytes(), &opts.socket)
        .map_err(|e| format!("syslog {}: {e}", opts.socket.display()))?;
    if sent != msg.len() {
        return Err(format!("syslog {}: short send", opts.socket.display()));
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// Verification

/// What is wrong with the chain.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProblemKind {
    /// A file cannot be opened or read.
    Unreadable,
    /// A line is not a record (not JSON, missing fields, too long, no LF).
    Malformed,
    /// A record is missing (deleted).
    Missing,
    /// A record is out of place.
    Reordered,
    /// Two records claim the same place in the chain.
    Fork,
    /// A record's bytes changed since the next record (or the anchor) was made.
    Altered,
    /// The tail is shorter than the anchor says.
    Truncated,
    /// The anchor names a record before the first record of the files read:
    /// nothing could be compared (earlier files were not given or were
    /// removed, or the whole log was replaced).
    AnchorNotInFiles,
    /// There is no log, or it holds no record: where a log is expected,
    /// that is not an intact chain (it may have been removed or emptied).
    Empty,
}

/// The first problem found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    pub kind: ProblemKind,
    pub file: PathBuf,
    /// The line (from 1) in `file` the problem is at.
    pub line: u64,
    /// The seq of the record named (missing, moved or altered), if known.
    pub seq: Option<u64>,
    pub message: String,
}

/// The result of [`verify_file`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Report {
    pub files: usize,
    /// Records read (up to the first malformed line).
    pub records: u64,
    pub first_seq: Option<u64>,
    pub last_seq: Option<u64>,
    /// The hash of the last record: compare with the newest syslog anchor.
    pub head: Option<String>,
    /// The first record is not seq 1: earlier files were not given (or were
    /// removed); the records before it are not checked.
    pub starts_mid_chain: bool,
    /// An anchor was given and compared with a record of the files (set
    /// only when a comparison happened).
    pub anchor_checked: bool,
    /// The first problem; `None` if the chain is intact.
    pub problem: Option<Problem>,
}

impl Report {
    pub fn is_ok(&self) -> bool {
        self.problem.is_none()
    }

    /// Warnings to print with the result even when the chain is intact: a
    /// chain that starts mid-way (`starts_mid_chain`) proves nothing about
    /// the records before it.
    pub fn notes(&self) -> Vec<String> {
        let mut notes = Vec::new();
        if self.starts_mid_chain {
            notes.push(format!(
                "the chain starts mid-way at seq {}: the records before it were not checked \
                 (earlier files not given, or removed); compare with the syslog anchors",
                self.first_seq.unwrap_or(0)
            ));
        }
        notes
    }
}

#[derive(Debug)]
struct Entry {
    file: usize,
    lineno: u64,
    seq: u64,
    line: u64,
    prev: String,
    hash: String,
}

/// Check the chain over `paths` (in chain order; see [`chain_files`]) and
/// report the first broken, reordered, missing or malformed record; with
/// `anchor` (`SEQ:HASH` as syslog carries it, or a bare `HASH`), also a
/// truncated or altered tail.
pub fn verify_file<P: AsRef<Path>>(paths: &[P], anchor: Option<&str>) -> Report {
    let files: Vec<PathBuf> = paths.iter().map(|p| p.as_ref().to_path_buf()).collect();
    let mut report = Report {
        files: files.len(),
        ..Report::default()
    };
    if files.is_empty() {
        report.problem = Some(Problem {
            kind: ProblemKind::Empty,
            file: PathBuf::new(),
            line: 0,
            seq: None,
            message: "no audit log file exists: a missing log is not an intact chain".into(),
        });
        return report;
    }
    let mut entries = Vec::new();
    let mut read_problem = None;
    for (i, path) in files.iter().enumerate() {
        if let Err(p) = read_entries(i, path, &mut entries) {
            read_problem = Some(p);
            break;
        }
    }
    report.records = entries.len() as u64;
    report.first_seq = entries.first().map(|e| e.seq);
    report.last_seq = entries.last().map(|e| e.seq);
    report.head = entries.last().map(|e| e.hash.clone());
    report.starts_mid_chain = entries.first().is_some_and(|e| e.seq > 1);
    let file_of = |i: usize| files.get(i).cloned().unwrap_or_default();
    if let Some(p) = check_links(&entries, &file_of) {
        report.problem = Some(p);
        return report;
    }
    if let Some(p) = read_problem {
        report.problem = Some(p);
        return report;
    }
    if entries.is_empty() {
        let files = files
            .iter()
            .map(|f| f.display().to_string())
            .collect::<Vec<_>>()
            .join(", ");
        report.problem = Some(Problem {
            kind: ProblemKind::Empty,
            file: file_of(0),
            line: 0,
            seq: None,
            message: format!("{files}: the audit log holds no record (emptied, or never written)"),
        });
        return report;
    }
    if let Some(a) = anchor {
        let (problem, compared) = check_anchor(&entries, a, &file_of);
        report.anchor_checked = compared;
        report.problem = problem;
    }
    report
}

fn read_entries(file: usize, path: &Path, out: &mut Vec<Entry>) -> Result<(), Problem> {
    let problem = |kind, line, message: String| Problem {
        kind,
        file: path.to_path_buf(),
        line,
        seq: None,
        message,
    };
    // The one reader of files a person names: a FIFO or a device in place
    // of the log cannot hang or exhaust the command.
    let (f, _) = jobseal_core::files::open_regular(path).map_err(|e| {
        problem(
            ProblemKind::Unreadable,
            0,
            format!("{}: {e}", path.display()),
        )
    })?;
    let mut reader = BufReader::new(f);
    let mut lineno = 0u64;
    loop {
        lineno += 1;
        let mut buf = Vec::new();
        let n = reader
            .by_ref()
            .take(MAX_RECORD_BYTES as u64 + 1)
            .read_until(b'\n', &mut buf)
            .map_err(|e| {
                problem(
                    ProblemKind::Unreadable,
                    lineno,
                    format!("{}: {e}", path.display()),
                )
            })?;
        if n == 0 {
            return Ok(());
        }
        let Some(body) = buf.strip_suffix(b"\n") else {
            let why = if buf.len() > MAX_RECORD_BYTES {
                format!("longer than {MAX_RECORD_BYTES} bytes")
            } else {
                "incomplete (no line feed: a torn write)".into()
            };
            return Err(problem(
                ProblemKind::Malformed,
                lineno,
                format!("{} line {lineno}: {why}", path.display()),
            ));
        };
        let links: Links = serde_json::from_slice(body)
            .ok()
            .filter(|l: &Links| is_hash(&l.prev) && l.seq > 0 && l.line > 0)
            .ok_or_else(|| {
                problem(
                    ProblemKind::Malformed,
                    lineno,
                    format!(
                        "{} line {lineno}: not an audit record (JSON with seq, line, prev)",
                        path.display()
                    ),
                )
            })?;
        out.push(Entry {
            file,
            lineno,
            seq: links.seq,
            line: links.line,
            prev: links.prev,
            hash: line_hash(body),
        });
    }
}

fn is_hash(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

fn check_links(entries: &[Entry], file_of: &dyn Fn(usize) -> PathBuf) -> Option<Problem> {
    let at = |e: &Entry, kind, seq: Option<u64>, message: String| {
        Some(Problem {
            kind,
            file: file_of(e.file),
            line: e.lineno,
            seq,
            message,
        })
    };
    let mut previous: Option<&Entry> = None;
    for (k, e) in entries.iter().enumerate() {
        let rest = entries.get(k + 1..).unwrap_or_default();
        if e.line != e.lineno {
            if previous.is_some_and(|p| p.seq == e.seq) {
                return at(
                    e,
                    ProblemKind::Fork,
                    Some(e.seq),
                    format!(
                        "line {}: a second record with seq {} (a forked chain)",
                        e.lineno, e.seq
                    ),
                );
            }
            if let Some(moved) = rest.iter().find(|x| x.file == e.file && x.line == e.lineno) {
                return at(
                    e,
                    ProblemKind::Reordered,
                    Some(moved.seq),
                    format!(
                        "line {}: holds seq {} (written as line {}); the record written here, seq {}, is at line {}",
                        e.lineno, e.seq, e.line, moved.seq, moved.lineno
                    ),
                );
            }
            if e.line > e.lineno {
                let missing = e.seq.saturating_sub(e.line - e.lineno);
                return at(
                    e,
                    ProblemKind::Missing,
                    Some(missing),
                    format!(
                        "line {}: the record written here (seq {missing}) is missing; the line holds seq {} written as line {}",
                        e.lineno, e.seq, e.line
                    ),
                );
            }
            return at(
                e,
                ProblemKind::Reordered,
                Some(e.seq),
                format!(
                    "line {}: seq {} was written as line {}",
                    e.lineno, e.seq, e.line
                ),
            );
        }
        match previous {
            None => {
                if e.seq == 1 && e.prev != GENESIS {
                    return at(
                        e,
                        ProblemKind::Altered,
                        Some(1),
                        "the first record (seq 1) does not start from the genesis value".into(),
                    );
                }
            }
            Some(p) => {
                if e.seq != p.seq.saturating_add(1) {
                    let (kind, what) = if e.seq == p.seq {
                        (
                            ProblemKind::Fork,
                            "a second record with the same seq (a forked chain)".to_string(),
                        )
                    } else if e.seq > p.seq {
                        (
                            ProblemKind::Missing,
                            format!("seq {} to {} are missing", p.seq + 1, e.seq - 1),
                        )
                    } else {
                        (
                            ProblemKind::Reordered,
                            format!("seq goes back from {}", p.seq),
                        )
                    };
                    let named = if kind == ProblemKind::Missing {
                        p.seq + 1
                    } else {
                        e.seq
                    };
                    return at(
                        e,
                        kind,
                        Some(named),
                        format!("line {} (seq {}): {what}", e.lineno, e.seq),
                    );
                }
                if e.prev != p.hash {
                    // A changed body breaks only the link after it; a changed
                    // `prev` also breaks the record's own outgoing link.
                    let own_link_broken = rest.first().is_some_and(|n| n.prev != e.hash);
                    let (culprit, why) = if own_link_broken {
                        (e, "its prev field was changed")
                    } else {
                        (p, "its bytes no longer hash to the next record's prev")
                    };
                    return at(
                        culprit,
                        ProblemKind::Altered,
                        Some(culprit.seq),
                        format!(
                            "line {} (seq {}) was altered: {why}",
                            culprit.lineno, culprit.seq
                        ),
                    );
                }
            }
        }
        previous = Some(e);
    }
    None
}

fn check_anchor(
    entries: &[Entry],
    anchor: &str,
    file_of: &dyn Fn(usize) -> PathBuf,
) -> (Option<Problem>, bool) {
    let anchor = anchor.trim().to_ascii_lowercase();
    let (seq, hash) = match anchor.split_once(':') {
        Some((s, h)) => (s.parse::<u64>().ok(), h.to_string()),
        None => (None, anchor.clone()),
    };
    let last = entries.last();
    let problem = |kind, e: Option<&Entry>, line: u64, seq, message: String| {
        Some(Problem {
            kind,
            file: e.map(|e| file_of(e.file)).unwrap_or_default(),
            line,
            seq,
            message,
        })
    };
    if !is_hash(&hash) || (anchor.contains(':') && seq.is_none()) {
        return (
            problem(
                ProblemKind::Malformed,
                None,
                0,
                None,
                format!("the anchor {anchor:?} is not SEQ:HASH or HASH (64 hex digits)"),
            ),
            false,
        );
    }
    if let Some(s) = seq {
        if let Some(e) = entries.iter().find(|e| e.seq == s) {
            if e.hash == hash {
                return (None, true);
            }
            return (
                problem(
                    ProblemKind::Altered,
                    Some(e),
                    e.lineno,
                    Some(s),
                    format!(
                        "line {} (seq {s}) does not match the anchor: it was altered",
                        e.lineno
                    ),
                ),
                true,
            );
        }
        let first = entries.first();
        return match (first, last) {
            (_, Some(l)) if s > l.seq => (
                problem(
                    ProblemKind::Truncated,
                    Some(l),
                    l.lineno + 1,
                    Some(l.seq + 1),
                    format!(
                        "the tail was truncated: the chain ends at seq {} but the anchor is seq {s}; seq {} to {s} are missing",
                        l.seq,
                        l.seq + 1
                    ),
                ),
                true,
            ),
            (Some(f), _) if s < f.seq => (
                problem(
                    ProblemKind::AnchorNotInFiles,
                    Some(f),
                    f.lineno,
                    Some(s),
                    format!(
                        "the anchored record seq {s} is not in the files; the chain starts at seq {}: \
                         nothing was compared (give the earlier files)",
                        f.seq
                    ),
                ),
                false,
            ),
            _ => (
                problem(
                    ProblemKind::Truncated,
                    None,
                    1,
                    Some(1),
                    format!("no records, but the anchor is seq {s}"),
                ),
                false,
            ),
        };
    }
    if entries.iter().any(|e| e.hash == hash) {
        return (None, true);
    }
    let p = match last {
        Some(l) => problem(
            ProblemKind::Truncated,
            Some(l),
            l.lineno,
            Some(l.seq),
            format!(
                "no record hashes to the anchor: records after seq {} (line {}) were removed, or it was altered",
                l.seq, l.lineno
            ),
        ),
        None => problem(
            ProblemKind::Truncated,
            None,
            1,
            None,
            "no records, but an anchor was given".into(),
        ),
    };
    (p, false)
}

// ---------------------------------------------------------------------------
// Showing

/// Which records `jobseal audit show` prints; every set field must match.
#[derive(Clone, Debug, Default)]
pub struct Filter {
    /// The end-entity DN, exactly.
    pub dn: Option<String>,
    /// The job id (ASCII case-insensitive).
    pub job_id: Option<String>,
    /// At or after.
    pub since: Option<UnixTime>,
    /// Before.
    pub until: Option<UnixTime>,
    /// `permit` or `deny`.
    pub outcome: Option<String>,
}

impl Filter {
    pub fn matches(&self, r: &AuditRecord) -> bool {
        let time = r.unix_time();
        self.dn
            .as_ref()
            .is_none_or(|dn| r.who.end_entity.as_ref() == Some(dn))
            && self.job_id.as_ref().is_none_or(|j| {
                r.what
                    .job_id
                    .as_ref()
                    .is_some_and(|x| x.eq_ignore_ascii_case(j))
            })
            && self.since.is_none_or(|s| time.is_some_and(|t| t >= s))
            && self.until.is_none_or(|u| time.is_some_and(|t| t < u))
            && self.outcome.as_ref().is_none_or(|o| &r.outcome == o)
    }
}

/// One record found by [`show`].
#[derive(Clone, Debug)]
pub struct Shown {
    pub file: PathBuf,
    pub line: u64,
    pub record: AuditRecord,
}

/// What [`show`] found.
#[derive(Clone, Debug, Default)]
pub struct ShowResult {
    pub records: Vec<Shown>,
    /// Lines that are not records, as (file, line): run `audit verify`.
    pub malformed: Vec<(PathBuf, u64)>,
}

/// The records of `paths` matching `filter`, in file order. Does not check
/// the chain ([`verify_file`] does).
pub fn show<P: AsRef<Path>>(paths: &[P], filter: &Filter) -> Result<ShowResult, Error> {
    let mut result = ShowResult::default();
    for path in paths {
        let path = path.as_ref();
        let f = File::open(path)
            .map_err(|e| Error::new(Reason::ConfigInvalid, format!("{}: {e}", path.display())))?;
        let mut reader = BufReader::new(f);
        let mut lineno = 0u64;
        loop {
            lineno += 1;
            let mut buf = Vec::new();
            let n = reader
                .by_ref()
                .take(MAX_RECORD_BYTES as u64 + 1)
                .read_until(b'\n', &mut buf)
                .map_err(|e| {
                    Error::new(Reason::ConfigInvalid, format!("{}: {e}", path.display()))
                })?;
            if n == 0 {
                break;
            }
            if buf.len() > MAX_RECORD_BYTES {
                // Skip the rest of an over-long line.
                result.malformed.push((path.to_path_buf(), lineno));
                let mut rest = Vec::new();
                reader.read_until(b'\n', &mut rest).map_err(|e| {
                    Error::new(Reason::ConfigInvalid, format!("{}: {e}", path.display()))
                })?;
                continue;
            }
            let body = buf.strip_suffix(b"\n").unwrap_or(&buf);
            match serde_json::from_slice::<AuditRecord>(body) {
                Ok(record) if filter.matches(&record) => result.records.push(Shown {
                    file: path.to_path_buf(),
                    line: lineno,
                    record,
                }),
                Ok(_) => {}
                Err(_) => result.malformed.push((path.to_path_buf(), lineno)),
            }
        }
    }
    Ok(result)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn redaction_forms() {
        let args: Vec<String> = [
            "--token=abc123",
            "-x",
            "--password",
            "hunter22",
            "KEY=v",
            "plain",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let names = vec!["TOKEN".to_string(), "password".into(), "key".into()];
        let (out, removed) = redact_arguments(&args, &names);
        assert_eq!(
            out,
            [
                "--token=<redacted>",
                "-x",
                "--password",
                "<redacted>",
                "KEY=<redacted>",
                "plain"
            ]
        );
        assert_eq!(removed, ["abc123", "hunter22", "v"]);
        let m = scrub("the arguments [\"--token=abc123\"] differ", &removed);
        assert!(!m.contains("abc123"));
    }

    /// `read_head` before it read backwards in steps: the whole window.
    fn read_head_whole(file: &mut File, len: u64, path: &Path) -> Result<Head, Error> {
        use std::io::{Seek, SeekFrom};
        let window = len.min(MAX_RECORD_BYTES as u64 + 2);
        let start = len - window;
        let mut buf = Vec::new();
        file.seek(SeekFrom::Start(start))
            .and_then(|_| Read::by_ref(file).take(window).read_to_end(&mut buf))
            .map_err(|e| io_unavailable("cannot read", path, &e))?;
        let Some(body) = buf.strip_suffix(b"\n") else {
            return Err(unavailable(format!(
                "audit log: {} ends with an incomplete line (a torn write); truncate it \
                 after its last complete line (`jobseal audit verify` names it)",
                path.display()
            )));
        };
        let line = match body.iter().rposition(|b| *b == b'\n') {
            Some(i) => body.get(i + 1..).unwrap_or_default(),
            None if start == 0 => body,
            None => {
                return Err(unavailable(format!(
                    "audit log: the last line of {} is longer than {MAX_RECORD_BYTES} bytes",
                    path.display()
                )));
            }
        };
        let links: Links = serde_json::from_slice(line).map_err(|e| {
            unavailable(format!(
                "audit log: the last line of {} is not a record: {e}",
                path.display()
            ))
        })?;
        Ok(Head {
            seq: links.seq,
            line: links.line,
            hash: line_hash(line),
        })
    }

    /// A record line of exactly `len` bytes (LF excluded), `len` >= 60.
    fn record_line(seq: u64, len: usize) -> Vec<u8> {
        let head = format!("{{\"seq\":{seq},\"line\":{seq},\"prev\":\"p\",\"pad\":\"");
        let mut l = head.into_bytes();
        l.resize(len - 2, b'x');
        l.extend_from_slice(b"\"}");
        l
    }

    fn outcome(r: Result<Head, Error>) -> Result<(u64, u64, String), (Reason, String)> {
        r.map(|h| (h.seq, h.line, h.hash))
            .map_err(|e| (e.reason, e.message))
    }

    /// Reading backwards in steps finds the same last record, and fails the
    /// same way, as reading the whole window: last lines around the step
    /// sizes and the window's bound, alone or after others, torn tails,
    /// lines that are not records.
    #[test]
    fn the_head_read_backwards_is_the_head_of_the_whole_window() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.jsonl");
        let max = MAX_RECORD_BYTES;
        let lens = [
            60,
            2000,
            8190,
            8191,
            8192,
            8193,
            16383,
            16384,
            24575,
            24576,
            24577,
            100_000,
            max - 1,
            max,
            max + 1,
            max + 2,
        ];
        let mut cases: Vec<Vec<u8>> = Vec::new();
        for &n in &lens {
            for before in [0usize, 1, 3] {
                let mut text = Vec::new();
                for i in 0..before {
                    text.extend_from_slice(&record_line(i as u64 + 1, 100 + i * 5000));
                    text.push(b'\n');
                }
                text.extend_from_slice(&record_line(before as u64 + 1, n));
                text.push(b'\n');
                cases.push(text.clone());
                // Torn: the last line without its LF.
                text.pop();
                cases.push(text);
            }
        }
        // Not a record; an empty last line; LFs only.
        cases.push(b"{\"seq\":1,\"line\":1,\"prev\":\"p\"}\nnot json\n".to_vec());
        cases.push(b"{\"seq\":1,\"line\":1,\"prev\":\"p\"}\n\n".to_vec());
        cases.push(b"\n".to_vec());
        cases.push(b"\n\n\n".to_vec());
        for (i, text) in cases.iter().enumerate() {
            fs::write(&path, text).unwrap();
            let mut f = File::open(&path).unwrap();
            let len = f.metadata().unwrap().len();
            let want = outcome(read_head_whole(&mut f, len, &path));
            let got = outcome(read_head(&f, len, &path));
            assert_eq!(got, want, "case {i}: {} bytes", text.len());
        }
    }

    /// `user_name` before it read a line at a time: the whole text at once.
    fn passwd_user_whole(passwd: impl Read, uid: u32) -> Option<String> {
        let mut text = String::new();
        passwd
            .take(MAX_PASSWD_BYTES)
            .read_to_string(&mut text)
            .ok()?;
        text.lines().find_map(|l| {
            let mut fields = l.split(':');
            let name = fields.next()?;
            let id = fields.nth(1)?.parse::<u32>().ok()?;
            (id == uid && !name.is_empty()).then(|| name.to_string())
        })
    }

    #[test]
    fn passwd_lookup_line_by_line_is_the_whole_text_lookup() {
        let texts: [&[u8]; 12] = [
            b"root:x:0:0:root:/root:/bin/bash\nalice:x:1000:1000::/home/alice:/bin/sh\n",
            b"root:x:0:0::/:\r\nalice:x:1000:1000::/:\r\n",
            b"alice:x:1000:1000::/:/bin/sh",
            b"alice:x:1000\r",
            b"alice:x:1000\r\n",
            b"\n\n:x:1000:1000::/:\nbob:x:1000:1:::\n",
            b"alice:x:1000:1000::/:\n\xff\xfe:x:1:1:::\n",
            b"\xff:x:2:2:::\nalice:x:1000:1000::/:\n",
            b"alice:x:01000:1:::\nbob:x:1000:1:::\n",
            b"alice:x:+1000:1:::\nbob:x: 1000:1:::\n",
            b"alice\nbob:x\ncarol:x:1000\n",
            b"",
        ];
        for (i, t) in texts.iter().enumerate() {
            for uid in [0, 1, 2, 1000] {
                assert_eq!(
                    passwd_user(*t, uid),
                    passwd_user_whole(*t, uid),
                    "text {i}, uid {uid}"
                );
            }
        }
        // A multi-byte character cut by the size bound: nothing, as before.
        let mut big = b"alice:x:1000:1:::\n".to_vec();
        big.resize(usize::try_from(MAX_PASSWD_BYTES).unwrap() - 1, b'a');
        big.extend_from_slice("\u{e9}\n".as_bytes());
        assert_eq!(passwd_user(big.as_slice(), 1000), None);
        assert_eq!(passwd_user_whole(big.as_slice(), 1000), None);
    }
}
