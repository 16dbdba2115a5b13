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
//! again, and only then execs the sealed copy. A failure before the exec is
//! reported to the launcher on a status pipe, with a nonce the payload never
//! sees, so the launcher never mistakes it for the payload's own status.

use std::ffi::OsString;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::Command;

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
        worker
            .join()
            .map_err(|_| "the thread acting as the caller failed".to_string())?
    })
}

/// The first argument that makes the binary the trampoline. It starts with
/// `-`, so a pilot can never reach it: the launcher refuses every option.
pub const TRAMPOLINE: &str = "--jobseal-payload";

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
    /// the trampoline, with `argv0` and `args`.
    pub fn command(
        &self,
        target: &Target,
        program: &std::path::Path,
        argv0: &OsString,
        args: &[OsString],
    ) -> Command {
        let write_fd = self.write.as_ref().map_or(-1, AsRawFd::as_raw_fd);
        let groups: Vec<String> = target.groups.iter().map(u32::to_string).collect();
        let mut cmd = Command::new("/proc/self/exe");
        cmd.arg0("jobseal-exec")
            .arg(TRAMPOLINE)
            .arg(&self.nonce)
            .arg(write_fd.to_string())
            .arg(target.uid.to_string())
            .arg(target.gid.to_string())
            .arg(groups.join(","))
            .arg(program)
            .arg(argv0)
            .arg("--")
            .args(args)
            // A fully root process (real ids too), so that the trampoline can
            // tell it was started by the launcher and not by a pilot.
            .uid(0)
            .gid(0);
        cmd
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
    let uid = target.uid.to_string();
    let gid = target.gid.to_string();
    if status_line(&status, "Uid:") != Some(vec![uid.as_str(); 4]) {
        return Err("the uids are not all the target's".into());
    }
    if status_line(&status, "Gid:") != Some(vec![gid.as_str(); 4]) {
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
/// [`TRAMPOLINE`]. Never returns: execs the payload or exits.
pub fn trampoline(args: &[OsString]) -> std::process::ExitCode {
    // Only a root process the launcher started (real uid 0: a pilot running
    // a setuid binary keeps its own real uid) may be the trampoline.
    if !rustix::process::getuid().is_root() || !rustix::process::geteuid().is_root() {
        return std::process::ExitCode::from(crate::EXIT_CLIENT);
    }
    let text = |i: usize| args.get(i).and_then(|a| a.to_str()).unwrap_or("");
    let nonce = text(0).to_string();
    let report = |code: u8, reason: &str, message: String| {
        let path = format!("/proc/self/fd/{}", text(1));
        if let Ok(mut w) = std::fs::OpenOptions::new().write(true).open(path) {
            let line = format!("{nonce} {code} {reason} {}\n", crate::one_line(&message));
            let _ = w.write_all(line.as_bytes());
        }
        std::process::ExitCode::from(code)
    };
    let parsed = (|| -> Option<(Target, PathBuf, OsString, Vec<OsString>)> {
        let uid = text(2).parse().ok()?;
        let gid = text(3).parse().ok()?;
        let groups = if text(4).is_empty() {
            Vec::new()
        } else {
            text(4)
                .split(',')
                .map(str::parse)
                .collect::<Result<_, _>>()
                .ok()?
        };
        let program = PathBuf::from(args.get(5)?);
        let argv0 = args.get(6)?.clone();
        if args.get(7)? != "--" {
            return None;
        }
        let rest = args.get(8..)?.to_vec();
        Some((Target { uid, gid, groups }, program, argv0, rest))
    })();
    let Some((target, program, argv0, rest)) = parsed else {
        return report(
            crate::EXIT_INTERNAL,
            "internal.error",
            "bad trampoline arguments".into(),
        );
    };
    if target.uid == 0 || target.gid == 0 || target.groups.contains(&0) {
        return report(
            crate::EXIT_INTERNAL,
            "internal.error",
            "refusing to run a payload as root".into(),
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
        return report(crate::EXIT_INTERNAL, "internal.error", m);
    }
    // The environment and working directory are the launcher's choice.
    let e = Command::new(&program).arg0(&argv0).args(&rest).exec();
    report(
        crate::EXIT_NOT_EXECUTABLE,
        "exec.not-executable",
        format!("{}: {e}", argv0.to_string_lossy()),
    )
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

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
                "exec.not-executable".to_string(),
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
    fn acting_as_oneself_runs_in_place() {
        let me = Caller::current();
        assert_eq!(as_caller(&me, || 42).unwrap(), 42);
    }
}
