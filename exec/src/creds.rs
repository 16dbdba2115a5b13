//! Credentials: acting with the caller's rights, and the irrevocable switch
//! to the target account.
//!
//! Files the caller names (the executable, the inputs, the source proxy) are
//! opened *with the caller's rights*, by a short-lived thread that takes the
//! caller's credentials for itself alone (raw per-thread system calls), so
//! a privileged launcher never reads for a pilot what the pilot could not.
//!
//! The payload is started through a **trampoline**: the launcher (which stays
//! privileged, so that the pilot can still signal it and the signals reach
//! the payload) spawns a fresh root process of its own binary, which sets
//! its supplementary groups, gid and uid (real, effective and saved) to the
//! target's, verifies in `/proc/self/status` that no uid, gid, group or
//! capability of the old identity is left and that it cannot become root
//! again, and only then enters the working directory and execs the sealed
//! copy. The trampoline runs as root, so nothing the user or the pilot chose
//! may reach its dynamic loader: its own environment holds only a nonce and
//! the payload's environment hex-encoded under inert names, which it decodes
//! for the payload alone. A failure before the exec is reported to the
//! launcher on a status pipe, prefixed with that nonce (which only root could
//! read, in the trampoline's environment), so the launcher never mistakes a
//! line written by the payload for its own status.

use std::ffi::OsString;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::Command;

use crate::reason::ExecReason;
use jobseal_verify::Reason;
use rustix::process::{Gid, Uid};

/// Who called the launcher: its real ids and supplementary groups.
#[derive(Clone, Debug)]
pub struct Caller {
    pub uid: u32,
    pub gid: u32,
    pub groups: Vec<u32>,
}

impl Caller {
    pub fn current() -> Self {
        Self {
            uid: rustix::process::getuid().as_raw(),
            gid: rustix::process::getgid().as_raw(),
            groups: rustix::process::getgroups()
                .map(|g| g.iter().map(|g| g.as_raw()).collect())
                .unwrap_or_default(),
        }
    }
}

fn gids(raw: &[u32]) -> Vec<Gid> {
    raw.iter().map(|g| Gid::from_raw(*g)).collect()
}

/// Run `f` with the caller's rights: directly if the launcher has no other
/// rights, else in a thread that takes the caller's groups, gid and uid.
pub fn as_caller<T: Send>(caller: &Caller, f: impl FnOnce() -> T + Send) -> Result<T, String> {
    let me = rustix::process::geteuid().as_raw();
    let my_gid = rustix::process::getegid().as_raw();
    if me == caller.uid && my_gid == caller.gid {
        return Ok(f());
    }
    std::thread::scope(|scope| {
        let worker = scope.spawn(|| -> Result<T, String> {
            let (u, g) = (Uid::from_raw(caller.uid), Gid::from_raw(caller.gid));
            rustix::thread::set_thread_groups(&gids(&caller.groups))
                .and_then(|()| rustix::thread::set_thread_res_gid(g, g, g))
                .and_then(|()| rustix::thread::set_thread_res_uid(u, u, u))
                .map_err(|e| format!("cannot act as the caller (uid {}): {e}", caller.uid))?;
            // Verified, not assumed (these read this thread's ids).
            if rustix::process::geteuid().as_raw() != caller.uid
                || rustix::process::getegid().as_raw() != caller.gid
            {
                return Err(format!("still not the caller (uid {})", caller.uid));
            }
            Ok(f())
        });
        let done = worker
            .join()
            .map_err(|_| "the thread acting as the caller failed".to_string())?;
        // While that thread had the caller's uids, the caller could change
        // this process's limits through it (prlimit): lift the file-size
        // limit again, so that no audit record can be cut short.
        lift_file_size_limit();
        done
    })
}

/// Lift `RLIMIT_FSIZE` (a privileged process only): the pilot chose it.
pub fn lift_file_size_limit() {
    if rustix::process::geteuid().is_root() {
        let unlimited = rustix::process::Rlimit {
            current: None,
            maximum: None,
        };
        let _ = rustix::process::setrlimit(Resource::Fsize, unlimited);
    }
}

/// The first argument that makes `jobseal-launchd` the trampoline. It
/// starts with `-`, so a pilot can never reach it through `jobseal-exec`
/// (which refuses every option), and the trampoline refuses any process
/// but a root one.
pub const TRAMPOLINE: &str = "--jobseal-payload";

/// The trampoline's environment: the nonce, and the payload's variables
/// hex-encoded under inert names.
const NONCE_VAR: &str = "JOBSEAL_TRAMPOLINE_NONCE";
const ENV_PREFIX: &str = "JOBSEAL_TRAMPOLINE_ENV_";

/// What the trampoline is to run, as whom, where.
#[derive(Debug)]
pub struct Launch<'a> {
    pub target: &'a Target,
    pub program: &'a std::path::Path,
    pub workdir: &'a std::path::Path,
    pub argv0: &'a OsString,
    pub args: &'a [OsString],
    pub env: &'a [(OsString, OsString)],
    /// Resource limits the payload gets: the site's `[limits]`.
    pub limits: &'a [(Resource, rustix::process::Rlimit)],
    /// The cgroup (v2, under `/sys/fs/cgroup`) the payload joins before
    /// anything of it runs: the caller's batch job.
    pub cgroup: Option<&'a std::path::Path>,
}

pub use rustix::process::Resource;

/// The limits a site may set, by the names of `[limits]` and of `ulimit`.
pub const LIMIT_NAMES: [(&str, Resource); 9] = [
    ("cpu", Resource::Cpu),
    ("fsize", Resource::Fsize),
    ("data", Resource::Data),
    ("stack", Resource::Stack),
    ("core", Resource::Core),
    ("nproc", Resource::Nproc),
    ("nofile", Resource::Nofile),
    ("memlock", Resource::Memlock),
    ("as", Resource::As),
];

fn limit_name(r: Resource) -> &'static str {
    LIMIT_NAMES
        .iter()
        .find(|(_, x)| *x == r)
        .map_or("?", |(n, _)| n)
}

/// `name=current:maximum,…`, `-` for unlimited.
fn encode_limits(limits: &[(Resource, rustix::process::Rlimit)]) -> String {
    let v = |v: Option<u64>| v.map_or_else(|| "-".to_string(), |v| v.to_string());
    let parts: Vec<String> = limits
        .iter()
        .map(|(r, l)| format!("{}={}:{}", limit_name(*r), v(l.current), v(l.maximum)))
        .collect();
    if parts.is_empty() {
        "-".into()
    } else {
        parts.join(",")
    }
}

fn decode_limits(text: &str) -> Option<Vec<(Resource, rustix::process::Rlimit)>> {
    if text == "-" {
        return Some(Vec::new());
    }
    let v = |t: &str| -> Option<Option<u64>> {
        if t == "-" {
            Some(None)
        } else {
            t.parse().ok().map(Some)
        }
    };
    text.split(',')
        .map(|part| {
            let (name, values) = part.split_once('=')?;
            let (cur, max) = values.split_once(':')?;
            let resource = LIMIT_NAMES.iter().find(|(n, _)| *n == name)?.1;
            Some((
                resource,
                rustix::process::Rlimit {
                    current: v(cur)?,
                    maximum: v(max)?,
                },
            ))
        })
        .collect()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

/// What the trampoline needs to become the target and run the payload.
#[derive(Clone, Debug)]
pub struct Target {
    pub uid: u32,
    pub gid: u32,
    pub groups: Vec<u32>,
}

/// The status pipe: the launcher keeps the read end.
#[derive(Debug)]
pub struct StatusPipe {
    read: OwnedFd,
    write: Option<OwnedFd>,
    nonce: String,
}

impl StatusPipe {
    pub fn new() -> Result<Self, String> {
        use rustix::pipe::{PipeFlags, pipe_with};
        let (read, write) =
            pipe_with(PipeFlags::NONBLOCK).map_err(|e| format!("status pipe: {e}"))?;
        // The read end is ours alone; the write end is inherited.
        rustix::io::fcntl_setfd(&read, rustix::io::FdFlags::CLOEXEC)
            .map_err(|e| format!("status pipe: {e}"))?;
        let mut bytes = [0u8; 16];
        ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut bytes)
            .map_err(|_| "no randomness for the status nonce".to_string())?;
        let nonce = bytes.iter().map(|b| format!("{b:02x}")).collect();
        Ok(Self {
            read,
            write: Some(write),
            nonce,
        })
    }

    /// The command that runs `program` (the sealed copy) as `target` through
    /// the trampoline, with `argv0`, `args`, the environment `env` and the
    /// working directory `workdir`.
    pub fn command(&self, launch: &Launch<'_>) -> Command {
        let write_fd = self.write.as_ref().map_or(-1, AsRawFd::as_raw_fd);
        let groups: Vec<String> = launch.target.groups.iter().map(u32::to_string).collect();
        let cgroup = launch
            .cgroup
            .map_or_else(|| OsString::from("-"), |c| c.as_os_str().to_owned());
        let mut cmd = Command::new("/proc/self/exe");
        cmd.arg0("jobseal-exec")
            .arg(TRAMPOLINE)
            .arg(write_fd.to_string())
            .arg(launch.target.uid.to_string())
            .arg(launch.target.gid.to_string())
            .arg(groups.join(","))
            .arg(launch.program)
            .arg(launch.workdir)
            .arg(encode_limits(launch.limits))
            .arg(cgroup)
            .arg(launch.argv0)
            .arg("--")
            .args(launch.args)
            // Nothing chosen by the pilot or the user reaches the root
            // trampoline's loader: an inert, encoded environment, and "/".
            .env_clear()
            .env(NONCE_VAR, &self.nonce)
            .current_dir("/")
            // A fully root process (real ids too), so that the trampoline can
            // tell it was started by the launcher and not by a pilot.
            .uid(0)
            .gid(0);
        for (i, (k, v)) in launch.env.iter().enumerate() {
            let mut pair = k.as_encoded_bytes().to_vec();
            pair.push(b'=');
            pair.extend_from_slice(v.as_encoded_bytes());
            cmd.env(format!("{ENV_PREFIX}{i}"), hex(&pair));
        }
        cmd
    }

    /// Close this process's copy of the write end once the trampoline is
    /// spawned: no later child may inherit it, and its end is then the
    /// trampoline's alone.
    pub fn close_write_end(&mut self) {
        drop(self.write.take());
    }

    /// After the trampoline's process exited: its failure report, if it
    /// made one (exit code, reason code, message).
    pub fn failure(mut self) -> Option<(u8, String, String)> {
        drop(self.write.take());
        let mut text = String::new();
        let _ = std::fs::File::from(self.read)
            .take(4096)
            .read_to_string(&mut text);
        let line = text.lines().find_map(|l| l.strip_prefix(&self.nonce))?;
        let mut parts = line.trim_start().splitn(3, ' ');
        let code = parts.next()?.parse().ok()?;
        let reason = parts.next()?.to_string();
        Some((code, reason, parts.next().unwrap_or("").to_string()))
    }
}

/// Ids and capabilities from `/proc/self/status`.
fn status_line<'a>(status: &'a str, key: &str) -> Option<Vec<&'a str>> {
    status
        .lines()
        .find_map(|l| l.strip_prefix(key))
        .map(|rest| rest.split_whitespace().collect())
}

/// Check that this process is exactly `target` and nothing more.
fn verify_switched(target: &Target) -> Result<(), String> {
    let status = std::fs::read_to_string("/proc/self/status")
        .map_err(|e| format!("/proc/self/status: {e}"))?;
    use jobseal_core::procstatus::ids;
    if ids(&status, "Uid:") != Some([target.uid; 4]) {
        return Err("the uids are not all the target's".into());
    }
    if ids(&status, "Gid:") != Some([target.gid; 4]) {
        return Err("the gids are not all the target's".into());
    }
    let mut want: Vec<String> = target.groups.iter().map(u32::to_string).collect();
    want.sort();
    let mut have: Vec<String> = status_line(&status, "Groups:")
        .unwrap_or_default()
        .into_iter()
        .map(str::to_string)
        .collect();
    have.sort();
    if have != want {
        return Err(format!(
            "supplementary groups are {have:?}, not the target's {want:?}"
        ));
    }
    for cap in ["CapPrm:", "CapEff:", "CapAmb:"] {
        match status_line(&status, cap).as_deref() {
            Some([v]) if v.bytes().all(|b| b == b'0') => {}
            _ => return Err(format!("{cap} capabilities are left")),
        }
    }
    if rustix::thread::set_thread_res_uid(Uid::ROOT, Uid::ROOT, Uid::ROOT).is_ok() {
        return Err("could become root again".into());
    }
    Ok(())
}

/// The trampoline: `args` are this process's arguments after
/// [`TRAMPOLINE`]. Execs the payload, or exits with a report.
pub fn trampoline(args: &[OsString]) -> std::process::ExitCode {
    use std::os::unix::ffi::OsStringExt;
    // Only a root process the launcher started (real uid 0: a pilot running
    // a setuid binary keeps its own real uid) may be the trampoline.
    if !rustix::process::getuid().is_root() || !rustix::process::geteuid().is_root() {
        return std::process::ExitCode::from(crate::EXIT_CLIENT);
    }
    let text = |i: usize| args.get(i).and_then(|a| a.to_str()).unwrap_or("");
    // The nonce and the payload's environment, then nothing of ours is left.
    let mut nonce = String::new();
    let mut encoded: Vec<(usize, String)> = Vec::new();
    for (k, v) in std::env::vars_os() {
        let (Some(k), Some(v)) = (k.to_str(), v.to_str()) else {
            continue;
        };
        if k == NONCE_VAR {
            nonce = v.to_string();
        } else if let Some(i) = k.strip_prefix(ENV_PREFIX).and_then(|i| i.parse().ok()) {
            encoded.push((i, v.to_string()));
        }
    }
    encoded.sort();
    // Opened now, as root and close-on-exec: after the switch the target
    // could not open the root-owned pipe any more.
    let status = std::fs::OpenOptions::new()
        .write(true)
        .open(format!("/proc/self/fd/{}", text(0)))
        .ok();
    let report = |code: u8, reason: &str, message: String| {
        if !nonce.is_empty()
            && let Some(mut w) = status.as_ref()
        {
            let line = format!("{nonce} {code} {reason} {}\n", crate::one_line(&message));
            let _ = w.write_all(line.as_bytes());
        }
        std::process::ExitCode::from(code)
    };
    let mut payload_env: Vec<(OsString, OsString)> = Vec::new();
    for (_, hexed) in &encoded {
        let Some(pair) = unhex(hexed) else {
            return report(
                crate::EXIT_INTERNAL,
                Reason::Internal.code(),
                "bad trampoline environment".into(),
            );
        };
        let pair = OsString::from_vec(pair);
        let bytes = pair.as_encoded_bytes();
        let Some(eq) = bytes.iter().position(|b| *b == b'=') else {
            continue;
        };
        let (k, v) = bytes.split_at(eq);
        payload_env.push((
            OsString::from_vec(k.to_vec()),
            OsString::from_vec(v.get(1..).unwrap_or_default().to_vec()),
        ));
    }
    type Parsed = (
        Target,
        PathBuf,
        PathBuf,
        Vec<(Resource, rustix::process::Rlimit)>,
        Option<PathBuf>,
        OsString,
        Vec<OsString>,
    );
    let parsed = (|| -> Option<Parsed> {
        let uid = text(1).parse().ok()?;
        let gid = text(2).parse().ok()?;
        let groups = if text(3).is_empty() {
            Vec::new()
        } else {
            text(3)
                .split(',')
                .map(str::parse)
                .collect::<Result<_, _>>()
                .ok()?
        };
        let program = PathBuf::from(args.get(4)?);
        let workdir = PathBuf::from(args.get(5)?);
        let limits = decode_limits(text(6))?;
        let cgroup = match args.get(7)? {
            c if c == "-" => None,
            c => Some(PathBuf::from(c)),
        };
        let argv0 = args.get(8)?.clone();
        if args.get(9)? != "--" {
            return None;
        }
        let rest = args.get(10..)?.to_vec();
        Some((
            Target { uid, gid, groups },
            program,
            workdir,
            limits,
            cgroup,
            argv0,
            rest,
        ))
    })();
    let Some((target, program, workdir, limits, cgroup, argv0, rest)) = parsed else {
        return report(
            crate::EXIT_INTERNAL,
            Reason::Internal.code(),
            "bad trampoline arguments".into(),
        );
    };
    if target.uid == 0 || target.gid == 0 || target.groups.contains(&0) {
        return report(
            crate::EXIT_INTERNAL,
            Reason::Internal.code(),
            "refusing to run a payload as root".into(),
        );
    }
    // Nothing of root's may reach the payload but the streams, the sealed
    // executable and the status pipe (which the exec closes): a descriptor
    // leaked by the launcher is a refusal, not a gift to the target.
    let mut allowed = vec![0, 1, 2];
    allowed.extend(text(0).parse::<i32>().ok());
    allowed.extend(status.as_ref().map(AsRawFd::as_raw_fd));
    allowed.extend(
        program
            .to_str()
            .and_then(|p| p.strip_prefix("/proc/self/fd/"))
            .and_then(|n| n.parse::<i32>().ok()),
    );
    match open_descriptors() {
        Some(open) if open.iter().all(|fd| allowed.contains(fd)) => {}
        Some(open) => {
            let stray: Vec<i32> = open
                .into_iter()
                .filter(|fd| !allowed.contains(fd))
                .collect();
            return report(
                crate::EXIT_INTERNAL,
                Reason::Internal.code(),
                format!("descriptors {stray:?} would reach the payload"),
            );
        }
        None => {
            return report(
                crate::EXIT_INTERNAL,
                Reason::Internal.code(),
                "cannot list this process's descriptors (/proc/self/fd)".into(),
            );
        }
    }
    // Into the caller's batch job first: its accounting, limits and kill
    // reach everything the payload will be.
    if let Some(cgroup) = &cgroup
        && let Err(m) = join_cgroup(cgroup)
    {
        return report(crate::EXIT_INTERNAL, ExecReason::Cgroup.code(), m);
    }
    for (resource, limit) in &limits {
        if let Err(e) = rustix::process::setrlimit(*resource, *limit) {
            return report(
                crate::EXIT_INTERNAL,
                Reason::Internal.code(),
                format!(
                    "cannot set the payload's {} limit: {e}",
                    limit_name(*resource)
                ),
            );
        }
    }
    // Its own session and process group: the launcher ends the whole group.
    if let Err(e) = rustix::process::setsid() {
        return report(
            crate::EXIT_INTERNAL,
            Reason::Internal.code(),
            format!("cannot start a session: {e}"),
        );
    }
    // This process has one thread: the per-thread calls change it all.
    let (u, g) = (Uid::from_raw(target.uid), Gid::from_raw(target.gid));
    let switched = rustix::thread::set_thread_groups(&gids(&target.groups))
        .and_then(|()| rustix::thread::set_thread_res_gid(g, g, g))
        .and_then(|()| rustix::thread::set_thread_res_uid(u, u, u))
        .map_err(|e| format!("cannot become uid {}: {e}", target.uid))
        .and_then(|()| verify_switched(&target));
    if let Err(m) = switched {
        return report(crate::EXIT_INTERNAL, Reason::Internal.code(), m);
    }
    // Entered as the target, with the target's rights.
    if let Err(e) = std::env::set_current_dir(&workdir) {
        return report(
            crate::EXIT_INTERNAL,
            Reason::Internal.code(),
            format!("working directory {}: {e}", workdir.display()),
        );
    }
    let e = Command::new(&program)
        .arg0(&argv0)
        .args(&rest)
        .env_clear()
        .envs(payload_env)
        .exec();
    report(
        crate::EXIT_NOT_EXECUTABLE,
        ExecReason::NotExecutable.code(),
        format!("{}: {e}", argv0.to_string_lossy()),
    )
}

/// This process's open descriptors (without the listing's own).
pub fn open_descriptors() -> Option<Vec<i32>> {
    use rustix::fs::{Mode, OFlags};
    let dir = rustix::fs::open(
        "/proc/self/fd",
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .ok()?;
    let own = dir.as_raw_fd();
    let mut fds = Vec::new();
    for entry in rustix::fs::Dir::new(dir).ok()? {
        let entry = entry.ok()?;
        let name = entry.file_name().to_str().ok()?;
        if name == "." || name == ".." {
            continue;
        }
        let fd: i32 = name.parse().ok()?;
        if fd != own {
            fds.push(fd);
        }
    }
    Some(fds)
}

/// Move this process into the cgroup v2 directory `cgroup` (a path under
/// `/sys/fs/cgroup`, from the caller's `/proc/PID/cgroup`).
fn join_cgroup(cgroup: &std::path::Path) -> Result<(), String> {
    let procs = cgroup.join("cgroup.procs");
    std::fs::OpenOptions::new()
        .write(true)
        .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32)
        .open(&procs)
        .and_then(|mut f| f.write_all(b"0\n"))
        .map_err(|e| format!("cannot join the caller's cgroup {}: {e}", cgroup.display()))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn limits_survive_their_encoding() {
        let limits = vec![
            (
                Resource::Nofile,
                rustix::process::Rlimit {
                    current: Some(1024),
                    maximum: Some(4096),
                },
            ),
            (
                Resource::Cpu,
                rustix::process::Rlimit {
                    current: None,
                    maximum: None,
                },
            ),
        ];
        let text = encode_limits(&limits);
        assert_eq!(text, "nofile=1024:4096,cpu=-:-");
        assert_eq!(decode_limits(&text).unwrap(), limits);
        assert_eq!(decode_limits("-").unwrap(), vec![]);
        assert!(decode_limits("bogus=1:2").is_none());
    }

    #[test]
    fn status_lines_are_read_field_by_field() {
        let s = "Name:\tx\nUid:\t1\t1\t1\t1\nGroups:\t100 2000 \nCapEff:\t0000000000000000\n";
        assert_eq!(status_line(s, "Uid:").unwrap(), vec!["1"; 4]);
        assert_eq!(status_line(s, "Groups:").unwrap(), vec!["100", "2000"]);
        assert_eq!(status_line(s, "CapEff:").unwrap(), vec!["0000000000000000"]);
        assert!(status_line(s, "Gid:").is_none());
    }

    #[test]
    fn a_failure_report_needs_the_nonce() {
        let pipe = StatusPipe::new().unwrap();
        let nonce = pipe.nonce.clone();
        let mut w = std::fs::File::from(pipe.write.as_ref().unwrap().try_clone().unwrap());
        w.write_all(b"forged 202 internal.error fake\n").unwrap();
        w.write_all(format!("{nonce} 126 exec.not-executable no such file\n").as_bytes())
            .unwrap();
        drop(w);
        assert_eq!(
            pipe.failure(),
            Some((
                126,
                ExecReason::NotExecutable.code().to_string(),
                "no such file".to_string()
            ))
        );
        let pipe = StatusPipe::new().unwrap();
        let mut w = std::fs::File::from(pipe.write.as_ref().unwrap().try_clone().unwrap());
        w.write_all(b"forged 202 internal.error fake\n").unwrap();
        drop(w);
        assert_eq!(pipe.failure(), None);
    }

    #[test]
    fn environment_pairs_survive_hex_encoding() {
        let pair = b"LD_LIBRARY_PATH=/opt/x=y\xff";
        assert_eq!(unhex(&hex(pair)).unwrap(), pair);
        assert!(unhex("abc").is_none());
        assert!(unhex("zz").is_none());
    }

    #[test]
    fn acting_as_oneself_runs_in_place() {
        let me = Caller::current();
        assert_eq!(as_caller(&me, || 42).unwrap(), 42);
    }
}
