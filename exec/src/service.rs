//! `jobseal-launchd`, the site's launch service (`spec/jobseal.md` §14.14).
//!
//! A root process that no pilot can `prlimit`, `ptrace` or give an
//! environment: each pilot's `jobseal-exec` connects to its Unix socket and
//! hands over descriptors it opened with its own rights. A launch moves
//! through typed phases, and the use of a job is spent only in
//! [`Prepared::admit`], once everything that can fail for a reason knowable
//! in advance has been checked:
//!
//! `Peer` (who asks: `SO_PEERCRED`, pidfd, batch cgroup, whitelist) →
//! `Received` (the bounded request and its descriptors) → `Checked`
//! (sealed executable, the credential, a working directory with the
//! inputs copied from the descriptors, the verifier's permit) → `Prepared`
//! (mapped account, reachable directory, source proxy validated) →
//! `Admitted` (policy, replay, audit) → the payload, run and supervised.

use std::cell::RefCell;
use std::collections::HashMap;
use std::ffi::OsString;
use std::fs::File;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStringExt;
use std::os::unix::fs::{FileExt, MetadataExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use jobseal_admit::audit::Launch;

use crate::account::{self, Account};
use crate::bounds::{InFlight, RefusalBudget, Turns};
use crate::config::{ExecConfig, Mode};
use crate::creds::{self, Resource, StatusPipe, Target};
use crate::mapping::{Mapped, map_identity};
use crate::proto::{self, ClientMessage, Descriptors, ReceiveError, Reply, Request};
use crate::proxy;
use crate::reason::ExecReason;
use crate::verifier::{
    DEFAULT_SERVICE_USER, Verdict, VerifierProcess, give_records_to, load_policy, record_dirs,
};
use crate::workdir::{Input, WorkDir};
use crate::{EXIT_CLIENT, EXIT_DENIED, EXIT_INTERNAL, Fail, exit_code, fail, signals};
use jobseal_verify::Reason;

/// Time a client has to send its whole request.
pub const REQUEST_TIME: Duration = Duration::from_secs(10);
/// Requests being received at once, from one uid and from all.
const PENDING_PER_UID: usize = 32;
const PENDING_ALL: usize = 128;
/// Descriptors of received requests held until their admission, per uid
/// and in all: well below the unit's `LimitNOFILE=65536`, so that launches
/// past admission always find descriptors.
const FDS_PER_UID: u64 = 4096;
const FDS_ALL: u64 = 16384;
/// Stack of a launch's thread (verification included); set, not taken from
/// the environment.
const LAUNCH_STACK: usize = 4 << 20;
/// Longest message in a reply or a record.
const MAX_MESSAGE: usize = 4096;
/// Longest single argument, environment entry or `argv0` (the trampoline
/// carries the environment hex-encoded: twice this stays below the
/// kernel's 128 KiB for one string), and all of them together.
const MAX_EXEC_STRING: usize = 60 << 10;
const MAX_EXEC_TOTAL: usize = 1 << 20;
/// Largest source proxy read.
const MAX_PROXY_BYTES: u64 = 1 << 20;
/// Bytes of received requests held until their admission, per uid and in
/// all (a request is at most 34 MiB).
const IN_FLIGHT_PER_UID: u64 = 128 << 20;
const IN_FLIGHT_ALL: u64 = 512 << 20;
/// How long a received request waits for its turn at verification.
const TURN_WAIT: Duration = Duration::from_secs(60);
/// Recorded refusals per uid and minute, unless configured.
const REFUSALS_PER_MINUTE: u32 = 60;

/// The service: its configuration, and what its connections share.
#[derive(Debug)]
pub struct Service {
    config: ExecConfig,
    limits: Vec<(Resource, rustix::process::Rlimit)>,
    /// Held while a payload is spawned, so that no other payload inherits
    /// the descriptors made inheritable for it.
    spawning: Mutex<()>,
    pending: Mutex<HashMap<u32, usize>>,
    pending_all: AtomicUsize,
    in_flight: InFlight,
    fds_held: InFlight,
    turns: Turns,
    refusals: RefusalBudget,
    /// The service account (uid, gid) its verifier processes run as.
    verifier_account: (u32, u32),
}

impl Service {
    /// A service over `config` (`mode = "service"`, a `users` whitelist).
    pub fn new(config: ExecConfig) -> Result<Self, String> {
        if config.mode != Mode::Service {
            return Err("the launch service needs mode = \"service\"".into());
        }
        if config.users.as_ref().is_none_or(Vec::is_empty) {
            return Err("the launch service needs `users`: the pilot accounts it serves".into());
        }
        let limits = config.payload_limits()?;
        config.socket_mode()?;
        let refusals = match config.refusals_per_minute.unwrap_or(REFUSALS_PER_MINUTE) {
            0 => return Err("refusals_per_minute must be at least 1".into()),
            n => RefusalBudget::new(n as usize, Duration::from_secs(60)),
        };
        // Verification is CPU work: twice the cores at once, half of them
        // at most for one pilot.
        let verifier_account = service_account(&config)?;
        let cores = std::thread::available_parallelism().map_or(2, usize::from);
        let slots = (2 * cores).max(4);
        Ok(Self {
            config,
            limits,
            spawning: Mutex::new(()),
            pending: Mutex::new(HashMap::new()),
            pending_all: AtomicUsize::new(0),
            in_flight: InFlight::new(IN_FLIGHT_PER_UID, IN_FLIGHT_ALL),
            fds_held: InFlight::new(FDS_PER_UID, FDS_ALL),
            turns: Turns::new(slots, slots / 2, TURN_WAIT),
            refusals,
            verifier_account,
        })
    }

    /// Give the records' directories (the policy's, else `state_dir` or
    /// the system's) to the service account, at start (§14.14.7).
    pub fn prepare_records(&self) -> Result<(), String> {
        // A policy that cannot be loaded, or that is not root's, refuses
        // every launch anyway (recorded by the verifier process where it
        // can be); it never steers what root gives away here.
        let policy = load_policy(&self.config).ok();
        let (replay, audit) = record_dirs(&self.config).record_files(policy.as_ref());
        let files = [replay, audit];
        let mut both: Vec<PathBuf> = files
            .iter()
            .filter_map(|f| f.parent().map(Path::to_path_buf))
            .collect();
        both.dedup();
        let work_root = self
            .config
            .work_root()
            .unwrap_or_else(|| PathBuf::from(crate::config::DEFAULT_WORK_ROOT));
        if let Some(dir) = both.iter().find(|d| work_root.starts_with(d)) {
            return Err(format!(
                "work_root {} is inside the records' directory {}, which the service account owns: put them apart",
                work_root.display(),
                dir.display()
            ));
        }
        let (uid, gid) = self.verifier_account;
        give_records_to(&files, uid, gid)
    }

    /// The socket path.
    pub fn socket(&self) -> PathBuf {
        self.config
            .socket
            .clone()
            .unwrap_or_else(|| PathBuf::from(crate::config::DEFAULT_SOCKET))
    }

    /// Bind the socket (replacing a stale one), with the configured mode
    /// and group.
    pub fn listen(&self) -> Result<UnixListener, String> {
        let path = self.socket();
        let shown = path.display();
        if let Some(dir) = path.parent()
            && !dir.exists()
        {
            std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755))
                .map_err(|e| format!("{}: {e}", dir.display()))?;
        }
        match std::fs::symlink_metadata(&path) {
            Ok(m) if m.file_type().is_socket_like() => {
                std::fs::remove_file(&path).map_err(|e| format!("{shown}: {e}"))?;
            }
            Ok(_) => return Err(format!("{shown}: exists and is not a socket")),
            Err(_) => {}
        }
        let listener = UnixListener::bind(&path).map_err(|e| format!("{shown}: {e}"))?;
        self.own_socket(&path)?;
        Ok(listener)
    }

    /// Take over the socket systemd bound for `jobseal-launchd.socket`
    /// (socket activation). It must be the configured `socket`; its group
    /// and mode then become the configured ones, as [`Self::listen`] sets
    /// them, so that the configuration stays the one place that says who
    /// may connect.
    pub fn adopt(&self, listener: UnixListener) -> Result<UnixListener, String> {
        let path = self.socket();
        let address = listener
            .local_addr()
            .map_err(|e| format!("the socket passed by systemd: {e}"))?;
        let Some(bound) = address.as_pathname() else {
            return Err(
                "the socket passed by systemd has no path (ListenStream= must name a file)".into(),
            );
        };
        if bound != path {
            return Err(format!(
                "systemd passed the socket {}, but `socket` in the configuration is {}: make ListenStream= in jobseal-launchd.socket and `socket` agree",
                bound.display(),
                path.display()
            ));
        }
        self.own_socket(&path)?;
        Ok(listener)
    }

    /// Root's socket, with the configured group and mode.
    fn own_socket(&self, path: &Path) -> Result<(), String> {
        let shown = path.display();
        let gid = match &self.config.socket_group {
            None => None,
            Some(g) => Some(
                account::group_id(g).ok_or_else(|| format!("socket_group {g}: no such group"))?,
            ),
        };
        std::os::unix::fs::chown(path, Some(0), Some(gid.unwrap_or(0)))
            .map_err(|e| format!("{shown}: {e}"))?;
        std::fs::set_permissions(
            path,
            std::fs::Permissions::from_mode(self.config.socket_mode()?),
        )
        .map_err(|e| format!("{shown}: {e}"))
    }

    /// Accept connections for ever, one thread each.
    pub fn serve(self: Arc<Self>, listener: &UnixListener) {
        for stream in listener.incoming() {
            let Ok(stream) = stream else {
                // EMFILE and the like: let the moment pass.
                std::thread::sleep(Duration::from_millis(10));
                continue;
            };
            let service = Arc::clone(&self);
            let spawned = std::thread::Builder::new()
                .name("jobseal-launch".into())
                .stack_size(LAUNCH_STACK)
                .spawn(move || service.connection(stream));
            // Out of threads: the connection is dropped, the client reports
            // the service unavailable.
            drop(spawned);
        }
    }

    /// One launch, from the first byte to the payload's exit.
    fn connection(&self, mut stream: UnixStream) {
        // A client that never reads cannot hold this thread for ever.
        let _ = stream.set_write_timeout(Some(REQUEST_TIME));
        let reply = match self.launch(&mut stream) {
            Ok(exit) => Reply::Exited { exit },
            Err(Fail(exit, reason, message)) => Reply::Refused {
                exit,
                reason: reason.into(),
                message: short_message(&message),
            },
        };
        let _ = proto::send(&mut stream, &reply.encode());
        let _ = stream.shutdown(std::net::Shutdown::Both);
    }

    fn launch(&self, stream: &mut UnixStream) -> Result<u8, Fail> {
        let peer = Peer::of(stream)?;
        if !self
            .config
            .user_allowed(peer.uid, peer.account.as_ref().map(|a| a.name.as_str()))
        {
            // Not recorded: anyone on the node could flood the site's log.
            return fail(
                EXIT_DENIED,
                ExecReason::CallerNotAllowed.code(),
                format!("uid {} may not use the launch service", peer.uid),
            );
        }
        let uid = peer.uid;
        self.within_budget(uid)?;
        let received = self.receive(stream, peer)?;
        // Held until admission; the payload's run holds no bundle.
        let (run, admitted) = {
            let _held = self
                .in_flight
                .hold(uid, request_bytes(&received.request))
                .ok_or_else(|| {
                    Fail(
                        EXIT_INTERNAL,
                        ExecReason::ServiceBusy.code(),
                        format!("uid {uid} has too many bytes of requests in progress; try again"),
                    )
                })?;
            let _fds = self
                .fds_held
                .hold(uid, received.fds.count())
                .ok_or_else(|| {
                    Fail(
                        EXIT_INTERNAL,
                        ExecReason::ServiceBusy.code(),
                        format!(
                            "uid {uid} has too many descriptors in requests in progress; try again"
                        ),
                    )
                })?;
            let _turn = self.turns.take(uid).ok_or_else(|| {
                Fail(
                    EXIT_INTERNAL,
                    ExecReason::ServiceBusy.code(),
                    format!(
                        "no turn at verification within {} s; try again",
                        TURN_WAIT.as_secs()
                    ),
                )
            })?;
            // Again: refusals recorded while this request waited count.
            self.within_budget(uid)?;
            // Every refusal from here on is recorded: it counts.
            let counted = |f: Fail| {
                self.spend_refusal(uid);
                f
            };
            let (run, manifest) = Run::open(self, &received).map_err(counted)?;
            let admitted = run
                .check(&manifest, received)
                .and_then(|c| run.prepare(c))
                .and_then(|p| run.admit(p))
                .map_err(counted)?;
            (run, admitted)
        };
        run.start(stream, admitted)
    }

    /// A pilot that caused too many recorded refusals lately is refused
    /// up front, unrecorded (§14.14.6).
    fn within_budget(&self, uid: u32) -> Result<(), Fail> {
        self.refusals.check(uid, Instant::now()).map_err(|wait| {
            Fail(
                EXIT_INTERNAL,
                ExecReason::CallerThrottled.code(),
                format!(
                    "uid {uid} had {} refused launches within a minute; try again in {} s",
                    self.config
                        .refusals_per_minute
                        .unwrap_or(REFUSALS_PER_MINUTE),
                    wait.as_secs() + 1
                ),
            )
        })
    }

    fn spend_refusal(&self, uid: u32) {
        if self.refusals.spend(uid, Instant::now()) {
            // Once per episode, in the service's log (the journal): its
            // next launches are refused without a record.
            #[allow(clippy::print_stderr)]
            {
                eprintln!(
                    "jobseal-launchd: uid {uid} reached {} recorded refusals within a minute; its launches are refused unrecorded (exec.caller-throttled) until the minute has passed",
                    self.config
                        .refusals_per_minute
                        .unwrap_or(REFUSALS_PER_MINUTE)
                );
            }
        }
    }

    /// Read the request within [`REQUEST_TIME`], bounded per uid.
    fn receive(&self, stream: &mut UnixStream, peer: Peer) -> Result<Received, Fail> {
        let _slot = self.pending_slot(peer.uid)?;
        let deadline = Instant::now() + REQUEST_TIME;
        let (request, fds) = proto::receive_request(stream, deadline).map_err(|e| {
            let m = match e {
                ReceiveError::TimedOut => format!(
                    "the request did not arrive within {} s",
                    REQUEST_TIME.as_secs()
                ),
                ReceiveError::Closed => "the client closed the connection".into(),
                ReceiveError::Io(m) | ReceiveError::Malformed(m) => m,
            };
            Fail(EXIT_CLIENT, ExecReason::Request.code(), m)
        })?;
        let fds = Descriptors::sort(&request, fds)
            .map_err(|e| Fail(EXIT_CLIENT, ExecReason::Request.code(), e.0))?;
        // Protocol-level refusals, before any credential is looked at: not
        // recorded (a pilot could fill the site's log with them).
        check_exec_strings(&request)?;
        check_sealed(&fds.executable)?;
        Ok(Received { peer, request, fds })
    }

    fn pending_slot(&self, uid: u32) -> Result<PendingSlot<'_>, Fail> {
        let busy = || {
            fail(
                EXIT_INTERNAL,
                ExecReason::ServiceBusy.code(),
                "the launch service has too many requests in progress; try again",
            )
        };
        if self.pending_all.fetch_add(1, Ordering::SeqCst) >= PENDING_ALL {
            self.pending_all.fetch_sub(1, Ordering::SeqCst);
            return busy();
        }
        let mut pending = self.pending.lock().unwrap_or_else(PoisonError::into_inner);
        let n = pending.entry(uid).or_insert(0);
        if *n >= PENDING_PER_UID {
            drop(pending);
            self.pending_all.fetch_sub(1, Ordering::SeqCst);
            return busy();
        }
        *n += 1;
        Ok(PendingSlot { service: self, uid })
    }
}

/// A request being received, counted until dropped.
struct PendingSlot<'a> {
    service: &'a Service,
    uid: u32,
}

impl Drop for PendingSlot<'_> {
    fn drop(&mut self) {
        let mut pending = self
            .service
            .pending
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(n) = pending.get_mut(&self.uid) {
            *n = n.saturating_sub(1);
        }
        drop(pending);
        self.service.pending_all.fetch_sub(1, Ordering::SeqCst);
    }
}

trait SocketLike {
    fn is_socket_like(&self) -> bool;
}

impl SocketLike for std::fs::FileType {
    fn is_socket_like(&self) -> bool {
        std::os::unix::fs::FileTypeExt::is_socket(self)
    }
}

/// Who is asking: the kernel's word, never the client's.
#[derive(Debug)]
struct Peer {
    uid: u32,
    pid: u32,
    account: Option<Account>,
    /// The caller's cgroup v2 directory under `/sys/fs/cgroup`, if any.
    cgroup: Option<PathBuf>,
}

impl Peer {
    fn of(stream: &UnixStream) -> Result<Self, Fail> {
        let internal = |m: String| Fail(EXIT_INTERNAL, Reason::Internal.code(), m);
        let cred = rustix::net::sockopt::socket_peercred(stream.as_fd())
            .map_err(|e| internal(format!("peer credentials: {e}")))?;
        let pid = cred.pid;
        // A pidfd first: if the caller exits and its pid is reused while we
        // read its cgroup, the pidfd tells (below).
        let pidfd = rustix::process::pidfd_open(pid, rustix::process::PidfdFlags::empty())
            .map_err(|e| internal(format!("pidfd of the caller: {e}")))?;
        let raw_pid = u32::try_from(pid.as_raw_nonzero().get()).unwrap_or_default();
        let cgroup = caller_cgroup(raw_pid).map_err(|m| {
            Fail(
                EXIT_INTERNAL,
                ExecReason::Cgroup.code(),
                format!("the caller's batch job cannot be known: {m}"),
            )
        })?;
        if exited(&pidfd) {
            return fail(
                EXIT_CLIENT,
                ExecReason::Request.code(),
                "the caller exited while it was identified",
            );
        }
        Ok(Self {
            uid: cred.uid.as_raw(),
            pid: raw_pid,
            account: account::by_uid(cred.uid.as_raw()),
            cgroup,
        })
    }
}

/// Whether the process of `pidfd` has exited (its pidfd is readable).
fn exited(pidfd: &OwnedFd) -> bool {
    use rustix::event::{PollFd, PollFlags, poll};
    let mut fds = [PollFd::new(pidfd, PollFlags::IN)];
    let zero = rustix::event::Timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    poll(&mut fds, Some(&zero)).map_or(true, |n| n > 0)
}

/// The cgroup v2 directory of `pid` (`0::/path` in `/proc/PID/cgroup`),
/// under the unified hierarchy's mount point (`/sys/fs/cgroup`, or
/// `/sys/fs/cgroup/unified` on hybrid hosts); `None` only without cgroup
/// v2. With cgroup v2, a caller whose cgroup cannot be known is an error,
/// never a payload placed outside the batch job.
fn caller_cgroup(pid: u32) -> Result<Option<PathBuf>, String> {
    let Some(mount) = cgroup2_mount()? else {
        return Ok(None);
    };
    let file = format!("/proc/{pid}/cgroup");
    let text = std::fs::read_to_string(&file).map_err(|e| format!("{file}: {e}"))?;
    cgroup_under(&mount, &text)
        .map(Some)
        .map_err(|m| format!("{file}: {m}"))
}

/// The directory under `mount` of the `0::/path` line of a
/// `/proc/PID/cgroup` text.
fn cgroup_under(mount: &Path, text: &str) -> Result<PathBuf, String> {
    let path = text
        .lines()
        .find_map(|l| l.strip_prefix("0::"))
        .ok_or("no cgroup v2 line")?;
    let relative = Path::new(path)
        .strip_prefix("/")
        .ok()
        .filter(|r| {
            r.components()
                .all(|c| matches!(c, std::path::Component::Normal(_)))
        })
        .ok_or_else(|| format!("cgroup {path:?} is not a plain absolute path"))?;
    Ok(mount.join(relative))
}

/// Where the cgroup v2 hierarchy is mounted (`/proc/self/mountinfo`).
fn cgroup2_mount() -> Result<Option<PathBuf>, String> {
    let info = std::fs::read_to_string("/proc/self/mountinfo")
        .map_err(|e| format!("/proc/self/mountinfo: {e}"))?;
    Ok(info.lines().find_map(|line| {
        let (fields, rest) = line.split_once(" - ")?;
        if rest.split(' ').next()? != "cgroup2" {
            return None;
        }
        // Mount points with spaces are octal-escaped; the cgroup mount has none.
        fields.split(' ').nth(4).map(PathBuf::from)
    }))
}

/// The request and its descriptors.
#[derive(Debug)]
struct Received {
    peer: Peer,
    request: Request,
    fds: Descriptors,
}

/// A verified job with its working directory and inputs in place.
struct Checked {
    received: Received,
    verdict: Verdict,
    workdir: WorkDir,
}

/// Everything the launch needs, checked; the job's use not yet spent.
struct Prepared {
    checked: Checked,
    mapped: Mapped,
    proxy: Option<ProxyCopy>,
    env: Vec<(OsString, OsString)>,
}

/// The source proxy's validated bytes and where the payload finds them.
struct ProxyCopy {
    bytes: Vec<u8>,
    destination: PathBuf,
}

/// Admitted: the job's use is spent; only the start can still fail.
struct Admitted {
    prepared: Prepared,
}

/// One launch: the service, and the launch's verifier process, which
/// parses the bundle and the source proxy and writes the records
/// (privilege separation, §14.14.7).
struct Run<'a> {
    service: &'a Service,
    verifier: RefCell<VerifierProcess>,
}

impl<'a> Run<'a> {
    /// Start the launch's verifier process; its first answer is the
    /// credential's verdict (a deny is recorded by it).
    fn open(service: &'a Service, received: &Received) -> Result<(Self, Verdict), Fail> {
        let executable = &received.fds.executable;
        let started = {
            let _one_at_a_time = service
                .spawning
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            // The sealed executable, inheritable for this spawn only: the
            // verifier process hashes exactly these bytes.
            rustix::io::fcntl_setfd(executable, rustix::io::FdFlags::empty()).map_err(|e| {
                Fail(
                    EXIT_INTERNAL,
                    Reason::Internal.code(),
                    format!("executable descriptor: {e}"),
                )
            })?;
            let started = VerifierProcess::spawn(service.verifier_account, executable);
            let _ = rustix::io::fcntl_setfd(executable, rustix::io::FdFlags::CLOEXEC);
            started
        };
        // The conversation without the lock: a slow verifier process
        // delays only its own launch.
        let mut verifier = started?;
        let verdict = verifier.begin(
            &service.config,
            source_launch(&received.peer),
            &received.request,
        )?;
        Ok((
            Self {
                service,
                verifier: RefCell::new(verifier),
            },
            verdict,
        ))
    }

    /// Record a refusal (with what is known of the launch so far; with
    /// the verifier's verdict once `checked`).
    fn refuse(&self, f: Fail, checked: bool, launch: &Launch) -> Fail {
        let f = Fail(f.0, f.1, short_message(&f.2));
        self.verifier
            .borrow_mut()
            .record(&f, launch.clone(), checked);
        f
    }

    fn check(&self, manifest: &Verdict, mut received: Received) -> Result<Checked, Fail> {
        let launch = source_launch(&received.peer);
        let root = self
            .service
            .config
            .work_root()
            .unwrap_or_else(|| PathBuf::from(crate::config::DEFAULT_WORK_ROOT));
        let refuse = |f: Fail| self.refuse(f, false, &launch);
        let mut workdir = WorkDir::make(&root, &manifest.job_id_hex, true)
            .map_err(|m| refuse(Fail(EXIT_INTERNAL, ExecReason::Workdir.code(), m)))?;
        let inputs: Vec<Input> = manifest
            .inputs
            .iter()
            .map(|(name, size)| Input {
                name: name.clone(),
                size: *size,
            })
            .collect();
        let given = received
            .request
            .inputs
            .iter()
            .cloned()
            .zip(
                received
                    .fds
                    .inputs
                    .iter()
                    .map(|fd| fd.try_clone().map(File::from)),
            )
            .map(|(n, f)| f.map(|f| (n, f)))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| refuse(Fail(EXIT_INTERNAL, Reason::Internal.code(), e.to_string())))?;
        let copied = workdir.copy_from(&inputs, given);
        // The pilot's descriptors are not held for the payload's lifetime.
        received.fds.inputs.clear();
        copied.map_err(|m| refuse(Fail(EXIT_CLIENT, ExecReason::Workdir.code(), m)))?;
        workdir
            .share_with_group(self.service.verifier_account.1)
            .map_err(|m| refuse(Fail(EXIT_INTERNAL, ExecReason::Workdir.code(), m)))?;
        // A deny is recorded by the verifier process.
        let verdict = self.verifier.borrow_mut().check(&workdir.path)?;
        Ok(Checked {
            received,
            verdict,
            workdir,
        })
    }

    fn prepare(&self, mut checked: Checked) -> Result<Prepared, Fail> {
        let launch = source_launch(&checked.received.peer);
        let refuse = |f: Fail, launch: &Launch| self.refuse(f, true, launch);
        let verdict = &checked.verdict;
        let mapped = map_identity(
            &self.service.config,
            &verdict.end_entity,
            verdict.primary_fqan.clone(),
        )
        .map_err(|f| refuse(f, &launch))?;
        let launch = mapped_launch(&checked.received.peer, &mapped, &checked.workdir);
        reachable(&checked.workdir.path, &mapped)
            .map_err(|m| refuse(Fail(EXIT_INTERNAL, ExecReason::Workdir.code(), m), &launch))?;
        if let Some(cgroup) = &checked.received.peer.cgroup {
            joinable(cgroup)
                .map_err(|m| refuse(Fail(EXIT_INTERNAL, ExecReason::Cgroup.code(), m), &launch))?;
        }
        let proxy = self
            .source_proxy(&checked, &mapped)
            .map_err(|f| refuse(f, &launch))?;
        checked.received.fds.source_proxy = None;
        let env = payload_env(
            &checked.received.request,
            &self.service.config,
            &checked.verdict.environment,
            &mapped.account,
            &checked.workdir.path,
            proxy.as_ref().map(|p| p.destination.as_path()),
        );
        Ok(Prepared {
            checked,
            mapped,
            proxy,
            env,
        })
    }

    /// The source proxy, validated by the verifier process as a
    /// credential of the admitted user, and where its copy goes.
    fn source_proxy(&self, checked: &Checked, mapped: &Mapped) -> Result<Option<ProxyCopy>, Fail> {
        let Some(fd) = &checked.received.fds.source_proxy else {
            return Ok(None);
        };
        let client = |m: String| Fail(EXIT_CLIENT, ExecReason::Proxy.code(), m);
        let bytes = read_all_at(fd, MAX_PROXY_BYTES)
            .map_err(|e| client(format!("GLEXEC_SOURCE_PROXY: {e}")))?;
        self.verifier
            .borrow_mut()
            .check_proxy(&checked.verdict.end_entity, &bytes)?;
        let requested = checked
            .received
            .request
            .target_proxy
            .as_ref()
            .map(|p| OsString::from_vec(p.clone()));
        let default_tmp = PathBuf::from(format!("/tmp/x509up_u{}", mapped.account.uid));
        let destination = proxy::destination(
            requested.as_deref(),
            Some(checked.workdir.path.as_path()),
            &default_tmp,
        )
        .map_err(client)?;
        // Only into the working directory, before the hand-over: the
        // service never writes as the target (a thread of the root daemon
        // with the target's ids could be signalled or limited by the
        // target's processes), and a file in the shared /tmp could be
        // blocked by anyone after the use is spent.
        if destination.parent() != Some(checked.workdir.path.as_path()) {
            return Err(client(format!(
                "GLEXEC_TARGET_PROXY {}: the launch service writes the proxy copy into the job's working directory only (unset it, or name a file there)",
                destination.display()
            )));
        }
        let name = destination
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        if checked
            .received
            .request
            .inputs
            .iter()
            .any(|i| Path::new(i).components().next() == Path::new(name).components().next())
        {
            return Err(client(format!(
                "GLEXEC_TARGET_PROXY {name}: an input of the job has that name"
            )));
        }
        Ok(Some(ProxyCopy { bytes, destination }))
    }

    /// Spend the use: policy, replay, audit (steps 6–8), in the verifier
    /// process.
    fn admit(&self, prepared: Prepared) -> Result<Admitted, Fail> {
        let checked = &prepared.checked;
        let launch = mapped_launch(&checked.received.peer, &prepared.mapped, &checked.workdir);
        let admitted = self.verifier.borrow_mut().admit(launch.clone())?;
        // The admitted identity must be the one mapped. Reachable without
        // a bug: an attribute certificate that expired between the check
        // and the admission changes the primary FQAN.
        let key = &prepared.mapped.key;
        let same =
            key.0 == admitted.end_entity && (key.1.is_none() || key.1 == admitted.primary_fqan);
        if !same {
            return Err(self.refuse(
                Fail(
                    EXIT_INTERNAL,
                    Reason::Internal.code(),
                    "the admitted identity is not the one that was mapped".into(),
                ),
                true,
                &launch,
            ));
        }
        Ok(Admitted { prepared })
    }

    /// Hand the directory over, start the payload, supervise it.
    fn start(&self, stream: &mut UnixStream, admitted: Admitted) -> Result<u8, Fail> {
        let Prepared {
            checked,
            mapped,
            proxy,
            env,
        } = admitted.prepared;
        let launch = mapped_launch(&checked.received.peer, &mapped, &checked.workdir);
        let after = |f: Fail| self.refuse(f, true, &launch);
        let mut workdir = checked.workdir;
        let account = &mapped.account;
        if let Some(p) = proxy {
            write_into(&mut workdir, &p).map_err(after)?;
        }
        workdir
            .hand_over(account.uid, account.gid)
            .map_err(|m| after(Fail(EXIT_INTERNAL, ExecReason::Workdir.code(), m)))?;
        let mut received = checked.received;
        // Not kept for the payload's lifetime (§14.14.6: counted only
        // until admission).
        received.request.bundle = Vec::new();
        let target = Target {
            uid: account.uid,
            gid: account.gid,
            groups: mapped.groups.clone(),
        };
        let (child, pipe) = self
            .spawn(&received, &target, &workdir.path, &env)
            .map_err(after)?;
        // A failure of the trampoline (the exec, the cgroup) comes after
        // the use was spent: recorded with its code (§14.14.4).
        let outcome = supervise(stream, child, pipe, target.uid).map_err(after)?;
        if outcome.client_gone {
            let _ = after(Fail(
                outcome.exit,
                ExecReason::ClientGone.code(),
                "the client disconnected; the payload was killed".into(),
            ));
        }
        Ok(outcome.exit)
    }

    fn spawn(
        &self,
        received: &Received,
        target: &Target,
        workdir: &Path,
        env: &[(OsString, OsString)],
    ) -> Result<(std::process::Child, StatusPipe), Fail> {
        let internal = |m: String| Fail(EXIT_INTERNAL, Reason::Internal.code(), m);
        let argv0 = OsString::from_vec(received.request.argv0.clone());
        let args: Vec<OsString> = received
            .request
            .args
            .iter()
            .map(|a| OsString::from_vec(a.clone()))
            .collect();
        let executable = &received.fds.executable;
        let stdio = received
            .fds
            .stdio
            .iter()
            .map(OwnedFd::try_clone)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| internal(format!("standard streams: {e}")))?;
        let mut stdio = stdio.into_iter().map(std::process::Stdio::from);
        let _one_at_a_time = self
            .service
            .spawning
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let mut pipe = StatusPipe::new().map_err(internal)?;
        // Inheritable only while this payload is spawned (under the lock).
        rustix::io::fcntl_setfd(executable, rustix::io::FdFlags::empty())
            .map_err(|e| internal(format!("executable descriptor: {e}")))?;
        let program = fd_path(executable);
        let mut cmd = pipe.command(&creds::Launch {
            target,
            program: &program,
            workdir,
            argv0: &argv0,
            args: &args,
            env,
            limits: &self.service.limits,
            cgroup: received.peer.cgroup.as_deref(),
        });
        if let (Some(i), Some(o), Some(e)) = (stdio.next(), stdio.next(), stdio.next()) {
            cmd.stdin(i).stdout(o).stderr(e);
        }
        let spawned = cmd.spawn();
        let _ = rustix::io::fcntl_setfd(executable, rustix::io::FdFlags::CLOEXEC);
        pipe.close_write_end();
        let child = spawned.map_err(|e| internal(format!("cannot start the payload: {e}")))?;
        Ok((child, pipe))
    }
}

/// How the payload ended.
struct Outcome {
    exit: u8,
    client_gone: bool,
}

/// Tell the client the payload runs, forward its signals, end the payload
/// if the client goes, and wait for the payload's exit.
fn supervise(
    stream: &mut UnixStream,
    mut child: std::process::Child,
    pipe: StatusPipe,
    target_uid: u32,
) -> Result<Outcome, Fail> {
    let internal = |m: String| Fail(EXIT_INTERNAL, Reason::Internal.code(), m);
    let pid = rustix::process::Pid::from_child(&child);
    // Without its pidfd or the client's connection the payload cannot be
    // supervised: it is ended, not left running unwatched.
    let watched = rustix::process::pidfd_open(pid, rustix::process::PidfdFlags::empty())
        .map_err(|e| format!("pidfd of the payload: {e}"))
        .and_then(|pidfd| {
            let reader = stream.try_clone().map_err(|e| format!("connection: {e}"))?;
            Ok((pidfd, reader))
        });
    let (pidfd, mut reader) = match watched {
        Ok(w) => w,
        Err(m) => {
            let _ = child.kill();
            let _ = child.wait();
            return Err(internal(format!("{m}; the payload was killed")));
        }
    };
    let pidfd = Arc::new(pidfd);
    let gone = Arc::new(AtomicBool::new(false));
    let reaped = Arc::new(Mutex::new(false));
    let _ = proto::send(stream, &Reply::Started { pid: child.id() }.encode());
    let _ = reader.set_read_timeout(None);
    {
        let (pidfd, gone, reaped) = (Arc::clone(&pidfd), Arc::clone(&gone), Arc::clone(&reaped));
        let _ = std::thread::Builder::new()
            .name("jobseal-client".into())
            .stack_size(256 << 10)
            .spawn(move || {
                let watch = Watch {
                    pid,
                    target_uid,
                    pidfd: &pidfd,
                    gone: &gone,
                    reaped: &reaped,
                };
                forward_until_closed(&mut reader, &watch);
            });
    }
    // Exited, not yet reaped: the pid and its group stay ours until then.
    let _ = rustix::process::waitid(
        rustix::process::WaitId::PidFd(pidfd.as_fd()),
        rustix::process::WaitIdOptions::EXITED | rustix::process::WaitIdOptions::NOWAIT,
    );
    *reaped.lock().unwrap_or_else(PoisonError::into_inner) = true;
    let status = child
        .wait()
        .map_err(|e| internal(format!("the payload's status: {e}")))?;
    if let Some((code, reason, message)) = pipe.failure() {
        let reason = match reason.as_str() {
            r if r == ExecReason::NotExecutable.code() => ExecReason::NotExecutable.code(),
            r if r == ExecReason::Cgroup.code() => ExecReason::Cgroup.code(),
            _ => Reason::Internal.code(),
        };
        return Err(Fail(code, reason, message));
    }
    Ok(Outcome {
        exit: exit_code(status),
        client_gone: gone.load(Ordering::SeqCst),
    })
}

/// What the client's thread watches.
#[derive(Clone, Copy)]
struct Watch<'a> {
    pid: rustix::process::Pid,
    target_uid: u32,
    pidfd: &'a OwnedFd,
    gone: &'a AtomicBool,
    reaped: &'a Mutex<bool>,
}

/// The client's messages: signals to forward; its end kills the payload's
/// process group, unless the payload was already reaped.
fn forward_until_closed(reader: &mut UnixStream, watch: &Watch<'_>) {
    let Watch {
        pid,
        target_uid,
        pidfd,
        gone,
        reaped,
    } = *watch;
    loop {
        let message = proto::receive(reader, proto::MAX_MESSAGE_BYTES)
            .ok()
            .and_then(|b| ClientMessage::decode(&b).ok());
        match message {
            Some(ClientMessage::Signal(s)) => {
                // Only while the payload is still the target's alone: a
                // payload that ran a setuid program is not the pilot's to
                // signal through the service.
                if signals::FORWARDED.contains(&i32::from(s))
                    && signals::runs_only_as(pid, target_uid)
                    && let Some(signal) = rustix::process::Signal::from_named_raw(i32::from(s))
                {
                    let _ = rustix::process::pidfd_send_signal(pidfd, signal);
                }
            }
            None => {
                let done = reaped.lock().unwrap_or_else(PoisonError::into_inner);
                if !*done {
                    gone.store(true, Ordering::SeqCst);
                    let _ = rustix::process::kill_process_group(pid, rustix::process::Signal::KILL);
                    let _ =
                        rustix::process::pidfd_send_signal(pidfd, rustix::process::Signal::KILL);
                }
                return;
            }
        }
    }
}

/// The service account of `service_user` (default `jobseal`): its uid and
/// primary gid; never root.
fn service_account(config: &ExecConfig) -> Result<(u32, u32), String> {
    let name = config
        .service_user
        .as_deref()
        .unwrap_or(DEFAULT_SERVICE_USER);
    let account = account::by_name(name).ok_or_else(|| {
        format!(
            "service_user {name}: no such account; create it (useradd --system --user-group --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin {name}), as the packages do"
        )
    })?;
    if account.uid == 0 || account.gid == 0 {
        return Err(format!(
            "service_user {name}: uid {} gid {}: the verifier processes must not run as root",
            account.uid, account.gid
        ));
    }
    Ok((account.uid, account.gid))
}

/// The bytes a received request holds.
fn request_bytes(request: &Request) -> u64 {
    let strings = std::iter::once(&request.argv0)
        .chain(&request.args)
        .chain(&request.env)
        .chain(&request.target_proxy)
        .map(Vec::len)
        .sum::<usize>();
    let names = request.inputs.iter().map(String::len).sum::<usize>();
    (request.bundle.len() + strings + names) as u64
}

/// What the trampoline and the exec take, checked before anything is
/// spent: no NUL byte (the kernel's strings end at one), no string or total
/// beyond what one exec carries.
fn check_exec_strings(request: &Request) -> Result<(), Fail> {
    let refuse = |m: String| Fail(EXIT_CLIENT, ExecReason::Request.code(), m);
    let strings = std::iter::once(&request.argv0)
        .chain(&request.args)
        .chain(&request.env)
        .chain(&request.target_proxy);
    let mut total = 0usize;
    for s in strings {
        if s.contains(&0) {
            return Err(refuse(
                "a NUL byte in the command line, the environment or GLEXEC_TARGET_PROXY".into(),
            ));
        }
        if s.len() > MAX_EXEC_STRING {
            return Err(refuse(format!(
                "an argument or environment entry of {} bytes (at most {MAX_EXEC_STRING})",
                s.len()
            )));
        }
        total += s.len();
    }
    if total > MAX_EXEC_TOTAL {
        return Err(refuse(format!(
            "{total} bytes of command line and environment (at most {MAX_EXEC_TOTAL})"
        )));
    }
    Ok(())
}

/// A message as a client and a record carry it: one line, at most 4 KiB
/// (a client-sent name can be 256 KiB).
fn short_message(message: &str) -> String {
    let line = crate::one_line(message);
    if line.len() <= MAX_MESSAGE {
        return line;
    }
    let mut end = MAX_MESSAGE;
    while !line.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", line.get(..end).unwrap_or_default())
}

fn fd_path(fd: &OwnedFd) -> PathBuf {
    use std::os::fd::AsRawFd;
    PathBuf::from(format!("/proc/self/fd/{}", fd.as_raw_fd()))
}

/// The executable must be a memfd sealed for good: what is hashed is what
/// runs.
fn check_sealed(fd: &OwnedFd) -> Result<(), Fail> {
    let seals = rustix::fs::fcntl_get_seals(fd).map_err(|e| {
        Fail(
            EXIT_CLIENT,
            ExecReason::PayloadUnsealed.code(),
            format!("the executable is not a sealable memfd: {e}"),
        )
    })?;
    if !seals.contains(crate::payload::FINAL_SEALS) {
        return fail(
            EXIT_CLIENT,
            ExecReason::PayloadUnsealed.code(),
            "the executable's memfd is not sealed against writing, growing, shrinking and resealing",
        );
    }
    // A copy that cannot be executed would fail only after the use is
    // spent (a memfd made with MFD_NOEXEC_SEAL, or chmod'ed before sealing).
    // The target is neither the memfd's owner nor of its group.
    let mode = rustix::fs::fstat(fd).map_or(0, |st| st.st_mode);
    if mode & 0o005 != 0o005 {
        return fail(
            crate::EXIT_NOT_EXECUTABLE,
            ExecReason::NotExecutable.code(),
            "the sealed copy of the executable is not readable and executable by others (mode o+rx)",
        );
    }
    Ok(())
}

/// Read a whole file from offset 0 (whatever the client's offset), at most
/// `max` bytes.
fn read_all_at(fd: &OwnedFd, max: u64) -> std::io::Result<Vec<u8>> {
    let file = File::from(fd.try_clone()?);
    if !file.metadata()?.file_type().is_file() {
        return Err(std::io::Error::other("not a regular file"));
    }
    let mut bytes = Vec::new();
    let mut offset = 0u64;
    let mut chunk = [0u8; 8192];
    loop {
        let n = file.read_at(&mut chunk, offset)?;
        if n == 0 {
            return Ok(bytes);
        }
        bytes.extend_from_slice(chunk.get(..n).unwrap_or_default());
        offset += n as u64;
        if offset > max {
            return Err(std::io::Error::other(format!("larger than {max} bytes")));
        }
    }
}

fn write_into(workdir: &mut WorkDir, p: &ProxyCopy) -> Result<(), Fail> {
    let name = p
        .destination
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default()
        .to_string();
    let (_, mut file) = workdir
        .create_file(&name)
        .map_err(|m| Fail(EXIT_CLIENT, ExecReason::Proxy.code(), m))?;
    std::io::Write::write_all(&mut file, &p.bytes)
        .and_then(|()| file.sync_all())
        .map_err(|e| {
            Fail(
                EXIT_INTERNAL,
                ExecReason::Proxy.code(),
                format!("{}: {e}", p.destination.display()),
            )
        })
}

/// The caller's cgroup can take the payload: its `cgroup.procs` is there
/// (a cgroup removed meanwhile, or not a cgroup v2 directory, is not).
fn joinable(cgroup: &Path) -> Result<(), String> {
    match std::fs::symlink_metadata(cgroup.join("cgroup.procs")) {
        Ok(m) if m.file_type().is_file() => Ok(()),
        _ => Err(format!(
            "the caller's cgroup {} has no cgroup.procs: the payload cannot join its batch job",
            cgroup.display()
        )),
    }
}

/// Every directory from `/` down to `dir` lets the target account search
/// it: a directory it cannot enter would fail the payload after its use
/// was spent.
fn reachable(dir: &Path, mapped: &Mapped) -> Result<(), String> {
    let account = &mapped.account;
    for ancestor in dir.ancestors().skip(1) {
        let meta =
            std::fs::metadata(ancestor).map_err(|e| format!("{}: {e}", ancestor.display()))?;
        let mode = meta.mode();
        let ok = if meta.uid() == account.uid {
            mode & 0o100 != 0
        } else if meta.gid() == account.gid || mapped.groups.contains(&meta.gid()) {
            mode & 0o010 != 0
        } else {
            mode & 0o001 != 0
        };
        if !ok {
            return Err(format!(
                "{}: the account {} cannot enter it (mode {:o}); the work root must be reachable by the mapped accounts (e.g. chmod 711)",
                ancestor.display(),
                account.name,
                mode & 0o7777
            ));
        }
    }
    Ok(())
}

/// The payload's environment (§14.7): the client's variables as the
/// shared rules take them, except its `X509_USER_PROXY` (the payload's is
/// only ever the service's copy).
fn payload_env(
    request: &Request,
    config: &ExecConfig,
    signed: &[(String, String)],
    account: &Account,
    workdir: &Path,
    proxy: Option<&Path>,
) -> Vec<(OsString, OsString)> {
    let inherited: Vec<(OsString, OsString)> = request
        .env
        .iter()
        .filter_map(|pair| {
            let eq = pair.iter().position(|b| *b == b'=')?;
            let (k, v) = pair.split_at(eq);
            Some((
                OsString::from_vec(k.to_vec()),
                OsString::from_vec(v.get(1..).unwrap_or_default().to_vec()),
            ))
        })
        .filter(|(k, _)| k != "X509_USER_PROXY")
        .collect();
    crate::payload_env(
        &inherited,
        &config.env_whitelist,
        signed,
        account,
        Some(workdir),
        proxy,
    )
}

/// The launch as known before mapping: who asked, from which batch job.
fn source_launch(peer: &Peer) -> Launch {
    Launch {
        mode: "service".into(),
        source_uid: peer.uid,
        source_pid: Some(peer.pid),
        batch_job: peer.cgroup.as_ref().map(|c| c.display().to_string()),
        account: String::new(),
        mapped_by: "not mapped".into(),
        ..Launch::default()
    }
}

fn mapped_launch(peer: &Peer, mapped: &Mapped, workdir: &WorkDir) -> Launch {
    Launch {
        target_uid: Some(mapped.account.uid),
        target_gid: Some(mapped.account.gid),
        target_groups: mapped.groups.clone(),
        account: mapped.account.name.clone(),
        mapped_by: mapped.mapped_by.into(),
        lease: mapped.lease.clone(),
        workdir: Some(workdir.path.display().to_string()),
        ..source_launch(peer)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn an_unsealed_memfd_or_a_plain_file_is_refused() {
        let plain = File::open("/dev/null").unwrap();
        let e = check_sealed(&OwnedFd::from(plain)).unwrap_err();
        assert_eq!(e.1, ExecReason::PayloadUnsealed.code());
        let memfd = rustix::fs::memfd_create("t", rustix::fs::MemfdFlags::ALLOW_SEALING).unwrap();
        let e = check_sealed(&memfd).unwrap_err();
        assert_eq!(e.1, ExecReason::PayloadUnsealed.code());
        rustix::fs::fcntl_add_seals(&memfd, crate::payload::FINAL_SEALS).unwrap();
        // Sealed, but made without execute permission.
        rustix::fs::fchmod(&memfd, rustix::fs::Mode::from_raw_mode(0o600)).unwrap();
        let e = check_sealed(&memfd).unwrap_err();
        assert_eq!(e.1, ExecReason::NotExecutable.code());
        let exec = rustix::fs::memfd_create("t", rustix::fs::MemfdFlags::ALLOW_SEALING).unwrap();
        rustix::fs::fchmod(&exec, rustix::fs::Mode::from_raw_mode(0o755)).unwrap();
        rustix::fs::fcntl_add_seals(&exec, crate::payload::FINAL_SEALS).unwrap();
        check_sealed(&exec).unwrap();
    }

    #[test]
    fn a_caller_whose_cgroup_cannot_be_known_is_an_error() {
        let m = Path::new("/sys/fs/cgroup");
        assert_eq!(
            cgroup_under(m, "1:cpu:/x\n0::/batch/job7\n").unwrap(),
            m.join("batch/job7")
        );
        assert_eq!(cgroup_under(m, "0::/\n").unwrap(), m.join(""));
        assert!(cgroup_under(m, "1:cpu:/x\n").is_err());
        assert!(cgroup_under(m, "0::/a/../b\n").is_err());
        assert!(cgroup_under(m, "0::relative\n").is_err());
    }

    #[test]
    fn the_pilot_s_own_proxy_variable_never_reaches_the_payload() {
        let request = Request {
            env: vec![
                b"X509_USER_PROXY=/pilot/proxy".to_vec(),
                b"LD_PRELOAD=/evil.so".to_vec(),
                b"TZ=UTC".to_vec(),
                b"OMP_NUM_THREADS=4".to_vec(),
            ],
            ..Request::default()
        };
        let config = ExecConfig {
            env_whitelist: vec!["OMP_NUM_THREADS".into()],
            ..ExecConfig::default()
        };
        let account = Account {
            name: "u".into(),
            uid: 1001,
            gid: 1001,
            home: "/home/u".into(),
        };
        let env = payload_env(&request, &config, &[], &account, Path::new("/w"), None);
        let names: Vec<String> = env
            .iter()
            .map(|(k, _)| k.to_string_lossy().into())
            .collect();
        assert!(!names.contains(&"X509_USER_PROXY".to_string()), "{names:?}");
        assert!(!names.contains(&"LD_PRELOAD".to_string()));
        assert!(names.contains(&"TZ".to_string()));
        assert!(names.contains(&"OMP_NUM_THREADS".to_string()));
        let with = payload_env(
            &request,
            &config,
            &[],
            &account,
            Path::new("/w"),
            Some(Path::new("/w/x509up")),
        );
        assert!(with.contains(&("X509_USER_PROXY".into(), "/w/x509up".into())));
    }
}
