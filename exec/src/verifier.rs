//! Privilege separation in the launch service (`spec/jobseal.md` §14.14.7):
//! everything that parses what a pilot or a user sent beyond the bounded
//! request (the bundle, the source proxy) and everything that writes the
//! site's records runs in a process of its own for each launch, under the
//! site's service account (`service_user`), which owns the replay database
//! and the audit log and nothing else. The root process keeps what needs
//! root: the caller's identity, the working directory, the mapping, the
//! cgroup, the identity switch and the payload's supervision.
//!
//! The two talk over a socket pair, one JSON frame per message (raw bytes
//! in a frame of their own), the root side always asking. The verifier
//! process answers each question once and ends when the root side closes
//! its end.

use std::ffi::OsString;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStringExt;
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use jobseal_admit::admit::{Admission, Dirs, record_setup_failure};
use jobseal_admit::audit::{AuditRecord, Launch, RecordContext};
use jobseal_admit::{AdmissionHost, StateDirs};
use jobseal_policy::Policy;
use jobseal_verify::{Config, Decision, Invocation, Reason, UnixTime};

use crate::config::{ExecConfig, check_root_owned, check_root_owned_tree};
use crate::proto;
use crate::proxy::{self, ProxyError};
use crate::reason::ExecReason;
use crate::{EXIT_CLIENT, EXIT_DENIED, EXIT_INTERNAL, Fail, fail, peek_manifest};

/// The first argument of `jobseal-launchd` run as the verifier process.
pub const VERIFIER: &str = "--jobseal-verify";

/// The service account, unless `service_user` names another.
pub const DEFAULT_SERVICE_USER: &str = "jobseal";

/// Longest JSON message either side reads: the launch's arguments and
/// environment names (at most 1 MiB of exec strings, §14.14.2) as JSON
/// numbers, with the configuration (a bundle or a proxy travels as raw
/// bytes, bounded as the request is).
const MAX_JSON: usize = 8 << 20;
/// How long the root side waits for one answer, all of it.
const ANSWER_TIME: Duration = Duration::from_secs(120);

/// What the verifier process needs to admit one launch.
#[derive(Debug, Serialize, Deserialize)]
struct Start {
    config: ExecConfig,
    /// The sealed executable's descriptor, inherited by the process.
    executable_fd: i32,
    argv0: Vec<u8>,
    args: Vec<Vec<u8>>,
    env_names: Vec<String>,
    /// The launch as known before mapping (who asked, from which job).
    launch: Launch,
}

/// The root side's questions after [`Start`] and the bundle.
#[derive(Debug, Serialize, Deserialize)]
enum Ask {
    /// Steps 1–5 against the working directory with the inputs copied.
    Check { workdir: PathBuf },
    /// The source proxy (in the next frame) as a credential of `dn`.
    Proxy { dn: String },
    /// Steps 1–8 against the checked working directory: spend the use,
    /// recorded with `launch`.
    Admit { launch: Launch },
    /// Record a refusal the root side made, with the verdict so far if
    /// the job was checked.
    Record {
        code: String,
        message: String,
        launch: Launch,
        checked: bool,
    },
}

/// What was verified: the job's directory name and inputs (after the
/// credential), who it is and what it signed (after a check or an
/// admission).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Verdict {
    pub job_id_hex: String,
    pub inputs: Vec<(String, u64)>,
    pub end_entity: String,
    pub primary_fqan: Option<String>,
    pub environment: Vec<(String, String)>,
}

/// An answer: a verdict, a refusal (exit code, reason code, message), or
/// done.
#[derive(Debug, Serialize, Deserialize)]
enum Answer {
    Verdict(Verdict),
    Refused {
        exit: u8,
        code: String,
        message: String,
    },
    Done,
}

/// The root side's handle on one launch's verifier process.
#[derive(Debug)]
pub struct VerifierProcess {
    child: Child,
    stream: UnixStream,
    executable_fd: i32,
}

fn internal(message: impl Into<String>) -> Fail {
    Fail(EXIT_INTERNAL, Reason::Internal.code(), message.into())
}

/// A refusal as the verifier process reports it, its exit code one of a
/// refusal's (a verifier process cannot make a refusal look like success).
fn refusal(exit: u8, code: &str, message: String) -> Fail {
    let exit = match exit {
        crate::EXIT_NOT_EXECUTABLE | EXIT_CLIENT | EXIT_INTERNAL | EXIT_DENIED => exit,
        _ => EXIT_INTERNAL,
    };
    Fail(exit, known_code(code), message)
}

/// A reason code as a `&'static str`: one of the spec's, else
/// `internal.error` (a verifier process naming an unknown code is broken).
fn known_code(code: &str) -> &'static str {
    if let Some(r) = Reason::from_code(code) {
        return r.code();
    }
    ExecReason::ALL
        .iter()
        .find(|r| r.code() == code)
        .map_or(Reason::Internal.code(), |r| r.code())
}

impl VerifierProcess {
    /// Spawn the verifier process as `account` (uid, gid, no other group),
    /// with nothing of this process but the sealed executable (made
    /// inheritable by the caller, under the spawning lock, for this spawn
    /// only). Nothing is sent yet: the lock is not held while it verifies.
    pub fn spawn(account: (u32, u32), executable: &OwnedFd) -> Result<Self, Fail> {
        let (ours, theirs) =
            UnixStream::pair().map_err(|e| internal(format!("verifier socket: {e}")))?;
        let mut cmd = Command::new("/proc/self/exe");
        cmd.arg0("jobseal-launchd")
            .arg(VERIFIER)
            .env_clear()
            .current_dir("/")
            .stdin(Stdio::from(OwnedFd::from(theirs)))
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            // std drops the supplementary groups when it sets the uid.
            .gid(account.1)
            .uid(account.0);
        let child = cmd
            .spawn()
            .map_err(|e| internal(format!("cannot start the verifier process: {e}")))?;
        Ok(Self {
            child,
            stream: ours,
            executable_fd: executable.as_raw_fd(),
        })
    }

    /// Send the launch and the bundle; the first answer is the
    /// credential's verdict.
    pub fn begin(
        &mut self,
        config: &ExecConfig,
        launch: Launch,
        request: &proto::Request,
    ) -> Result<Verdict, Fail> {
        let start = Start {
            config: config.clone(),
            executable_fd: self.executable_fd,
            argv0: request.argv0.clone(),
            args: request.args.clone(),
            env_names: request
                .env
                .iter()
                .map(|p| {
                    let name = p.split(|b| *b == b'=').next().unwrap_or_default();
                    String::from_utf8_lossy(name).into_owned()
                })
                .collect(),
            launch,
        };
        self.send(&start)?;
        self.send_raw(&request.bundle)?;
        self.verdict()
    }

    fn send<T: Serialize>(&mut self, message: &T) -> Result<(), Fail> {
        let bytes = serde_json::to_vec(message).map_err(|e| internal(e.to_string()))?;
        self.send_raw(&bytes)
    }

    fn send_raw(&mut self, bytes: &[u8]) -> Result<(), Fail> {
        // A verifier process that does not read cannot hold the launch.
        let _ = self.stream.set_write_timeout(Some(ANSWER_TIME));
        proto::send(&mut self.stream, bytes).map_err(|e| internal(format!("verifier process: {e}")))
    }

    fn answer(&mut self) -> Result<Answer, Fail> {
        // One deadline for the whole answer, however it trickles in.
        let deadline = Instant::now() + ANSWER_TIME;
        let bytes = proto::receive_until(&mut self.stream, MAX_JSON, deadline).map_err(|e| {
            internal(format!(
                "the verifier process gave no answer ({e:?}); see the service's log"
            ))
        })?;
        serde_json::from_slice(&bytes)
            .map_err(|e| internal(format!("the verifier process's answer: {e}")))
    }

    fn verdict(&mut self) -> Result<Verdict, Fail> {
        match self.answer()? {
            Answer::Verdict(v) => Ok(v),
            Answer::Refused {
                exit,
                code,
                message,
            } => Err(refusal(exit, &code, message)),
            Answer::Done => Err(internal("the verifier process answered out of turn")),
        }
    }

    fn done(&mut self) -> Result<(), Fail> {
        match self.answer()? {
            Answer::Done => Ok(()),
            Answer::Refused {
                exit,
                code,
                message,
            } => Err(refusal(exit, &code, message)),
            Answer::Verdict(_) => Err(internal("the verifier process answered out of turn")),
        }
    }

    /// Steps 1–5 in `workdir` (readable by the service account).
    pub fn check(&mut self, workdir: &Path) -> Result<Verdict, Fail> {
        self.send(&Ask::Check {
            workdir: workdir.to_path_buf(),
        })?;
        self.verdict()
    }

    /// The source proxy's bytes, as a credential of `dn`.
    pub fn check_proxy(&mut self, dn: &str, bytes: &[u8]) -> Result<(), Fail> {
        self.send(&Ask::Proxy { dn: dn.into() })?;
        self.send_raw(bytes)?;
        self.done()
    }

    /// Spend the use.
    pub fn admit(&mut self, launch: Launch) -> Result<Verdict, Fail> {
        self.send(&Ask::Admit { launch })?;
        self.verdict()
    }

    /// Record a refusal of the root side's (best effort: the refusal
    /// stands either way).
    pub fn record(&mut self, f: &Fail, launch: Launch, checked: bool) {
        let asked = self.send(&Ask::Record {
            code: f.1.into(),
            message: f.2.clone(),
            launch,
            checked,
        });
        if asked.is_ok() {
            let _ = self.done();
        }
    }
}

impl Drop for VerifierProcess {
    fn drop(&mut self) {
        // End of the conversation: the process exits on it; one that
        // does not is killed.
        let _ = self.stream.shutdown(std::net::Shutdown::Both);
        for _ in 0..50 {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// --- the verifier process ---------------------------------------------------

/// `jobseal-launchd --jobseal-verify`, started by the service as its
/// account, the conversation on its standard input.
pub fn serve_stdin() -> ExitCode {
    // Not dumpable: another process of the service account (a compromised
    // verifier of another launch) cannot ptrace this one.
    if rustix::process::set_dumpable_behavior(rustix::process::DumpableBehavior::NotDumpable)
        .is_err()
    {
        return ExitCode::FAILURE;
    }
    // It never starts a process: neither may anything that took it over
    // (no child to outlive its launch and wait for the next ones).
    let none = rustix::process::Rlimit {
        current: Some(0),
        maximum: Some(0),
    };
    if rustix::process::setrlimit(rustix::process::Resource::Nproc, none).is_err() {
        return ExitCode::FAILURE;
    }
    let Ok(fd) = std::io::stdin().as_fd().try_clone_to_owned() else {
        return ExitCode::FAILURE;
    };
    let mut stream = UnixStream::from(fd);
    match Worker::start(&mut stream) {
        Ok(Some(mut w)) => {
            w.serve(&mut stream);
            ExitCode::SUCCESS
        }
        Ok(None) => ExitCode::SUCCESS,
        Err(()) => ExitCode::FAILURE,
    }
}

/// The verifier process's state for its one launch.
struct Worker {
    start: Start,
    bundle: Vec<u8>,
    ca_dir: PathBuf,
    host: AdmissionHost,
    admission: std::sync::Arc<Admission>,
    context: RecordContext,
    /// The last verdict's decision: the base of a refusal's record.
    decision: Option<Decision>,
    /// The working directory the job was checked in.
    workdir: Option<PathBuf>,
}

fn reply(stream: &mut UnixStream, answer: &Answer) -> Result<(), ()> {
    let bytes = serde_json::to_vec(answer).map_err(|_| ())?;
    proto::send(stream, &bytes).map_err(|_| ())
}

fn refused(f: Fail) -> Answer {
    Answer::Refused {
        exit: f.0,
        code: f.1.into(),
        message: f.2,
    }
}

impl Worker {
    /// Read the launch and the bundle, set admission up, and answer the
    /// credential's verdict; `None` if the launch ends there.
    fn start(stream: &mut UnixStream) -> Result<Option<Self>, ()> {
        let start: Start = proto::receive(stream, MAX_JSON)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .ok_or(())?;
        let bundle = proto::receive(stream, proto::MAX_REQUEST_BYTES).map_err(|_| ())?;
        let mut worker = match Self::open(start, bundle) {
            Ok(w) => w,
            Err(f) => {
                reply(stream, &refused(f))?;
                return Ok(None);
            }
        };
        match worker.credential() {
            Ok(v) => {
                reply(stream, &Answer::Verdict(v))?;
                Ok(Some(worker))
            }
            Err(f) => {
                reply(stream, &refused(f))?;
                Ok(None)
            }
        }
    }

    /// The policy, the trust directories' checks and admission, as the
    /// service configures them; a failure is recorded where it can be.
    fn open(start: Start, bundle: Vec<u8>) -> Result<Self, Fail> {
        let config = &start.config;
        let mut policy = load_policy(config)?;
        let dirs = record_dirs(config);
        let ca_dir = config
            .ca_dir
            .clone()
            .unwrap_or_else(|| PathBuf::from(jobseal_verify::DEFAULT_CA_DIR));
        let voms_dir = config
            .voms_dir
            .clone()
            .unwrap_or_else(|| PathBuf::from(jobseal_verify::DEFAULT_VOMS_DIR));
        let context = context_of(&start, &policy);
        if let Err(m) = check_trees(&ca_dir, &voms_dir) {
            let decision =
                Decision::from_error(jobseal_verify::Error::new(Reason::ConfigInvalid, &m));
            let context = RecordContext {
                launch: Some(start.launch.clone()),
                ..context.clone()
            };
            record_setup_failure(Some(&policy), &dirs, &decision, &context);
            return fail(EXIT_INTERNAL, Reason::ConfigInvalid.code(), m);
        }
        // Mapping a DN to an account trusts the CA for the names it issues.
        policy.namespaces = jobseal_verify::NamespacePolicy::Require;
        let verifier = Config {
            ca_dir: ca_dir.clone(),
            voms_dir,
            ..Config::default()
        };
        let (host, admission) =
            AdmissionHost::new_or_record(verifier, Ok(policy), StateDirs::fallback(dirs), &context)
                .and_then(|host| host.open(&context).map(|a| (host, a)))
                .map_err(|deny| Fail(EXIT_INTERNAL, known_code(deny.code()), deny.message))?;
        Ok(Self {
            start,
            bundle,
            ca_dir,
            host,
            admission,
            context,
            decision: None,
            workdir: None,
        })
    }

    fn serve(&mut self, stream: &mut UnixStream) {
        loop {
            let Ok(bytes) = proto::receive(stream, MAX_JSON) else {
                return;
            };
            let Ok(ask) = serde_json::from_slice::<Ask>(&bytes) else {
                return;
            };
            let answer = match ask {
                Ask::Check { workdir } => self.check(&workdir),
                Ask::Proxy { dn } => match proto::receive(stream, MAX_JSON) {
                    Ok(proxy) => self.proxy(&dn, &proxy),
                    Err(_) => return,
                },
                Ask::Admit { launch } => self.admit(launch),
                Ask::Record {
                    code,
                    message,
                    launch,
                    checked,
                } => self.record(&code, &message, launch, checked),
            };
            if reply(stream, &answer).is_err() {
                return;
            }
        }
    }

    fn invocation(&self, job_dir: &Path) -> Invocation {
        Invocation {
            executable: PathBuf::from(format!("/proc/self/fd/{}", self.start.executable_fd)),
            arguments: self
                .start
                .args
                .iter()
                .map(|a| OsString::from_vec(a.clone()))
                .collect(),
            job_dir: job_dir.to_path_buf(),
        }
    }

    fn context(&self, launch: Launch) -> RecordContext {
        RecordContext {
            launch: Some(launch),
            ..self.context.clone()
        }
    }

    /// A deny of the side-effect-free checks, recorded as it is (never
    /// through `admit`, which could permit a moment later and spend the
    /// use).
    fn deny(&self, decision: Decision) -> Fail {
        let context = self.context(self.start.launch.clone());
        let decision = self.admission.record(decision, &context);
        Fail(EXIT_DENIED, known_code(decision.code()), decision.message)
    }

    /// Steps 1–4 and 6 (the credential), and what the root side needs to
    /// make the working directory.
    fn credential(&mut self) -> Result<Verdict, Fail> {
        let credential = self
            .host
            .checker()
            .check_credential_at(&self.bundle, UnixTime::now());
        if !credential.is_permit() {
            return Err(self.deny(credential));
        }
        let Some(manifest) = peek_manifest(&self.bundle) else {
            return Err(self.deny(Decision::from_error(jobseal_verify::Error::new(
                Reason::Internal,
                "a permitted bundle whose manifest cannot be read again",
            ))));
        };
        Ok(Verdict {
            job_id_hex: manifest.job_id_hex(),
            inputs: manifest
                .inputs
                .iter()
                .map(|i| (i.name.clone(), i.size))
                .collect(),
            ..Verdict::default()
        })
    }

    fn check(&mut self, workdir: &Path) -> Answer {
        let decision = self
            .admission
            .check(&self.bundle, &self.invocation(workdir));
        if !decision.is_permit() {
            return refused(self.deny(decision));
        }
        let answer = verdict_of(&decision);
        self.decision = Some(decision);
        self.workdir = Some(workdir.to_path_buf());
        answer
    }

    fn proxy(&self, dn: &str, bytes: &[u8]) -> Answer {
        match proxy::check_credential(bytes, &self.ca_dir, dn, UnixTime::now()) {
            Ok(()) => Answer::Done,
            Err(ProxyError::Client(m)) => refused(Fail(EXIT_CLIENT, ExecReason::Proxy.code(), m)),
            Err(ProxyError::Internal(m)) => {
                refused(Fail(EXIT_INTERNAL, ExecReason::Proxy.code(), m))
            }
        }
    }

    fn admit(&mut self, launch: Launch) -> Answer {
        let Some(workdir) = self.workdir.clone() else {
            return refused(internal("admission asked before the check"));
        };
        let context = self.context(launch);
        let decision = self
            .admission
            .admit(&self.bundle, &self.invocation(&workdir), &context);
        if !decision.is_permit() {
            return refused(Fail(
                EXIT_DENIED,
                known_code(decision.code()),
                decision.message,
            ));
        }
        let answer = verdict_of(&decision);
        self.decision = Some(decision);
        // Not kept while the payload runs (§14.14.6).
        self.bundle = Vec::new();
        answer
    }

    fn record(&self, code: &str, message: &str, launch: Launch, checked: bool) -> Answer {
        let base = self
            .decision
            .clone()
            .filter(|_| checked)
            .unwrap_or_else(|| {
                Decision::from_error(jobseal_verify::Error::new(Reason::Internal, message))
            });
        let mut record = AuditRecord::refusal(&base, known_code(code), &self.context(launch));
        record.message = message.to_string();
        // The refusal stands whether or not it is logged.
        let _ = self.host.record_refusal(record);
        Answer::Done
    }
}

/// What the root side needs of a permit.
fn verdict_of(decision: &Decision) -> Answer {
    let Some(identity) = &decision.identity else {
        return refused(internal("a permit without identity"));
    };
    Answer::Verdict(Verdict {
        end_entity: identity.end_entity.clone(),
        primary_fqan: crate::mapping::primary_fqan(identity),
        environment: decision
            .job
            .as_ref()
            .map(|j| j.environment.clone())
            .unwrap_or_default(),
        ..Verdict::default()
    })
}

fn check_trees(ca_dir: &Path, voms_dir: &Path) -> Result<(), String> {
    check_root_owned_tree(ca_dir, 1)?;
    if std::fs::symlink_metadata(voms_dir).is_ok() {
        check_root_owned_tree(voms_dir, 2)?;
    }
    Ok(())
}

/// The site policy the service's configuration names, which must be
/// root's (else the built-in one, or the default file if it exists).
pub(crate) fn load_policy(config: &ExecConfig) -> Result<Policy, Fail> {
    let loaded = match &config.policy {
        Some(path) => {
            check_root_owned(path)
                .or_else(|m| fail(EXIT_INTERNAL, Reason::ConfigInvalid.code(), m))?;
            Policy::load(path)
        }
        None => {
            let default = Path::new(jobseal_policy::DEFAULT_PATH);
            if std::fs::symlink_metadata(default).is_ok() {
                check_root_owned(default)
                    .or_else(|m| fail(EXIT_INTERNAL, Reason::ConfigInvalid.code(), m))?;
            }
            Policy::load_default()
        }
    };
    loaded.or_else(|e| fail(EXIT_INTERNAL, e.reason.code(), e.message))
}

/// What every record of this launch says about the request.
fn context_of(start: &Start, policy: &Policy) -> RecordContext {
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    RecordContext {
        executable: Some(text(&start.argv0)),
        arguments: Some(start.args.iter().map(|a| text(a)).collect()),
        environment: start.env_names.clone(),
        site: policy.site.clone(),
        ..RecordContext::default()
    }
}

/// Where the service's records go unless the policy names directories:
/// under `state_dir`, else `/var/lib/jobseal/launchd` and
/// `/var/log/jobseal-launchd`, directories of their own (the service
/// account owns them; it must own nothing above the work root, and its
/// processes must reach them: `/var/log/jobseal` is 0750).
pub fn record_dirs(config: &ExecConfig) -> Dirs {
    match &config.state_dir {
        Some(d) => Dirs::under(d),
        None => Dirs {
            state: PathBuf::from("/var/lib/jobseal/launchd"),
            log: PathBuf::from("/var/log/jobseal-launchd"),
        },
    }
}

/// Make the record `files`' directories the service account's (at the
/// service's start): created if missing (0750, under existing root-owned
/// parents every directory of which the account can search), and what a
/// service that ran as root left of the records (each file, its SQLite
/// journals, its lock) given to it. Only root's own files with one link
/// are taken over, each through its descriptor, so that nothing the
/// account planted there (a link to a file of root's) is ever chowned.
pub fn give_records_to(files: &[PathBuf], uid: u32, gid: u32) -> Result<(), String> {
    use std::os::unix::fs::DirBuilderExt;
    for file in files {
        let (Some(dir), Some(name)) = (file.parent(), file.file_name().and_then(|n| n.to_str()))
        else {
            return Err(format!("{}: not a file in a directory", file.display()));
        };
        let shown = dir.display();
        if std::fs::symlink_metadata(dir).is_err() {
            std::fs::DirBuilder::new()
                .mode(0o750)
                .create(dir)
                .map_err(|e| format!("{shown}: {e} (its parent must exist)"))?;
        }
        searchable_above(dir, uid, gid)?;
        let fd = rustix::fs::open(
            dir,
            rustix::fs::OFlags::DIRECTORY
                | rustix::fs::OFlags::NOFOLLOW
                | rustix::fs::OFlags::CLOEXEC,
            rustix::fs::Mode::empty(),
        )
        .map_err(|e| format!("{shown}: {e} (a directory, not a symbolic link)"))?;
        let st = rustix::fs::fstat(&fd).map_err(|e| format!("{shown}: {e}"))?;
        // Root's, or already the account's: never someone else's.
        if st.st_uid != 0 && st.st_uid != uid {
            return Err(format!(
                "{shown}: owned by uid {}, neither root nor the service account",
                st.st_uid
            ));
        }
        rustix::fs::fchown(
            &fd,
            Some(rustix::fs::Uid::from_raw(uid)),
            Some(rustix::fs::Gid::from_raw(gid)),
        )
        .and_then(|()| rustix::fs::fchmod(&fd, rustix::fs::Mode::from_raw_mode(0o750)))
        .map_err(|e| format!("{shown}: {e}"))?;
        for suffix in RECORD_SUFFIXES {
            take_over(&fd, dir, &format!("{name}{suffix}"), uid, gid)?;
        }
    }
    Ok(())
}

/// A record file and its companions: SQLite's journals, the audit log's
/// lock.
const RECORD_SUFFIXES: [&str; 5] = ["", "-wal", "-shm", "-journal", ".lock"];

/// Give `dir/name` to the account if it is root's regular file with one
/// link; anything else is left alone (admission then refuses what it
/// cannot trust).
fn take_over(dir_fd: &OwnedFd, dir: &Path, name: &str, uid: u32, gid: u32) -> Result<(), String> {
    use rustix::fs::OFlags;
    let fd = match rustix::fs::openat(
        dir_fd,
        name,
        OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC | OFlags::NOCTTY,
        rustix::fs::Mode::empty(),
    ) {
        Ok(fd) => fd,
        Err(rustix::io::Errno::NOENT | rustix::io::Errno::LOOP) => return Ok(()),
        Err(e) => return Err(format!("{}: {e}", dir.join(name).display())),
    };
    let st = rustix::fs::fstat(&fd).map_err(|e| format!("{}: {e}", dir.join(name).display()))?;
    let regular =
        rustix::fs::FileType::from_raw_mode(st.st_mode) == rustix::fs::FileType::RegularFile;
    if regular && st.st_uid == 0 && st.st_nlink == 1 {
        rustix::fs::fchown(
            &fd,
            Some(rustix::fs::Uid::from_raw(uid)),
            Some(rustix::fs::Gid::from_raw(gid)),
        )
        .map_err(|e| format!("{}: {e}", dir.join(name).display()))?;
    }
    Ok(())
}

/// Every directory above `dir` is root's and lets the account search it:
/// otherwise its verifier processes could not reach their records (and a
/// directory someone else owns could be swapped under root).
fn searchable_above(dir: &Path, uid: u32, gid: u32) -> Result<(), String> {
    use std::os::unix::fs::MetadataExt;
    for ancestor in dir
        .ancestors()
        .skip(1)
        .filter(|a| !a.as_os_str().is_empty())
    {
        let m = std::fs::metadata(ancestor).map_err(|e| format!("{}: {e}", ancestor.display()))?;
        // Sticky (as /tmp): others cannot rename or remove what is root's.
        let others_may_swap = m.mode() & 0o022 != 0 && m.mode() & 0o1000 == 0;
        if m.uid() != 0 || others_may_swap {
            return Err(format!(
                "{}: above the records' directory {}, it must be root's and writable by nobody else",
                ancestor.display(),
                dir.display()
            ));
        }
        let bit = if m.uid() == uid {
            0o100
        } else if m.gid() == gid {
            0o010
        } else {
            0o001
        };
        if m.mode() & bit == 0 {
            return Err(format!(
                "{}: the service account cannot enter it (mode {:o}), so its verifier processes cannot reach {}; chmod o+x it or name other directories",
                ancestor.display(),
                m.mode() & 0o7777,
                dir.display()
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::os::unix::fs::{MetadataExt, PermissionsExt};

    #[test]
    fn a_verifier_cannot_make_a_refusal_look_like_success() {
        let code = Reason::ALL.first().unwrap().code();
        assert_eq!(refusal(0, code, String::new()).0, EXIT_INTERNAL);
        assert_eq!(refusal(1, code, String::new()).0, EXIT_INTERNAL);
        let f = refusal(EXIT_DENIED, code, String::new());
        assert_eq!((f.0, f.1), (EXIT_DENIED, code));
        let unknown = refusal(EXIT_DENIED, "no.such-code", String::new());
        assert_eq!(unknown.1, Reason::Internal.code());
    }

    /// Root only: the directories and files are chowned.
    fn as_root() -> bool {
        if rustix::process::geteuid().is_root() {
            return true;
        }
        assert!(std::env::var_os("CI").is_none(), "CI runs these as root");
        false
    }

    #[test]
    fn only_root_s_own_single_link_records_are_given_to_the_account() {
        if !as_root() {
            return;
        }
        let top = tempfile::tempdir().unwrap();
        std::fs::set_permissions(top.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let dir = top.path().join("records");
        std::fs::create_dir(&dir).unwrap();
        std::fs::write(dir.join("audit.jsonl"), "").unwrap();
        // Planted by the account: a second link to a file of root's, and a
        // symbolic link to another.
        let precious = top.path().join("precious");
        std::fs::write(&precious, "root's").unwrap();
        std::fs::hard_link(&precious, dir.join("replay.sqlite")).unwrap();
        let other = top.path().join("other");
        std::fs::write(&other, "root's").unwrap();
        std::os::unix::fs::symlink(&other, dir.join("replay.sqlite-wal")).unwrap();
        give_records_to(
            &[dir.join("replay.sqlite"), dir.join("audit.jsonl")],
            4242,
            4243,
        )
        .unwrap();
        let m = std::fs::metadata(&dir).unwrap();
        assert_eq!((m.uid(), m.gid(), m.mode() & 0o7777), (4242, 4243, 0o750));
        assert_eq!(
            std::fs::metadata(dir.join("audit.jsonl")).unwrap().uid(),
            4242
        );
        assert_eq!(
            std::fs::metadata(&precious).unwrap().uid(),
            0,
            "a hard link was followed"
        );
        assert_eq!(
            std::fs::metadata(&other).unwrap().uid(),
            0,
            "a symbolic link was followed"
        );
    }

    #[test]
    fn records_the_account_cannot_reach_stop_the_service() {
        if !as_root() {
            return;
        }
        let top = tempfile::tempdir().unwrap();
        // As /var/log/jobseal is: 0750 root:root.
        std::fs::set_permissions(top.path(), std::fs::Permissions::from_mode(0o750)).unwrap();
        let e = give_records_to(&[top.path().join("launchd/audit.jsonl")], 4242, 4243).unwrap_err();
        assert!(
            e.contains("the service account cannot enter it (mode 750)"),
            "{e}"
        );
        // Someone else's directory above: never.
        std::fs::set_permissions(top.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        std::os::unix::fs::chown(top.path(), Some(4242), None).unwrap();
        let e = give_records_to(&[top.path().join("launchd/audit.jsonl")], 4242, 4243).unwrap_err();
        assert!(e.contains("must be root's"), "{e}");
    }
}
