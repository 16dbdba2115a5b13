//! What the launch service's root tests share: accounts made with
//! `useradd`/`groupadd`, the service started as systemd starts it, and the
//! client's refusal as a pilot sees it.
#![allow(dead_code, clippy::unwrap_used, clippy::print_stderr)]

use std::process::{Command, Output};
use std::time::Duration;

/// Whether these tests may run (root); fails under CI when they cannot.
pub fn root_or_skip(what: &str) -> bool {
    if rustix::process::geteuid().is_root() {
        return true;
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "CI must run the {what} as root"
    );
    eprintln!("SKIPPED the {what}: they need root (useradd, a root service)");
    false
}

/// Run `cmd`, retrying a few times: another test binary may hold the lock
/// of `/etc/passwd` for a moment (useradd exits 10 then).
pub fn sh(cmd: &mut Command) -> Output {
    let mut tries = 0;
    loop {
        let o = cmd.output().unwrap();
        if o.status.success() {
            return o;
        }
        tries += 1;
        assert!(
            tries < 20 && o.status.code() == Some(10),
            "{cmd:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        std::thread::sleep(Duration::from_millis(250));
    }
}

#[derive(Clone, Debug)]
pub struct Account {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
}

pub fn useradd(name: &str) -> Account {
    sh(Command::new("useradd")
        .args([
            "--no-create-home",
            "--user-group",
            "--shell",
            "/usr/sbin/nologin",
        ])
        .arg(name));
    let id = |flag: &str| -> u32 {
        let o = sh(Command::new("id").arg(flag).arg(name));
        String::from_utf8_lossy(&o.stdout).trim().parse().unwrap()
    };
    Account {
        name: name.into(),
        uid: id("-u"),
        gid: id("-g"),
    }
}

pub fn groupadd(name: &str, system: bool) -> u32 {
    let mut c = Command::new("groupadd");
    if system {
        c.arg("--system");
    }
    sh(c.arg(name));
    let o = sh(Command::new("getent").args(["group", name]));
    String::from_utf8_lossy(&o.stdout)
        .split(':')
        .nth(2)
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

/// `jobseal-launchd`, started as systemd starts it: with no descriptor
/// but 0-2 (this test process would pass on cargo's jobserver pipes).
pub fn launchd() -> Command {
    launchd_via(&[])
}

/// [`launchd`], exec'ed by `wrapper` (such as `systemd-socket-activate -l
/// SOCKET`).
pub fn launchd_via(wrapper: &[&std::ffi::OsStr]) -> Command {
    let closes: String = leaked_descriptors()
        .iter()
        .map(|fd| format!("exec {fd}>&-; "))
        .collect();
    let mut c = Command::new("bash");
    c.arg("-c")
        .arg(format!("{closes}exec \"$@\""))
        .arg("bash")
        .args(wrapper)
        .arg(env!("CARGO_BIN_EXE_jobseal-launchd"));
    c
}

/// systemd's `systemd-socket-activate` (package systemd), which binds a
/// socket and execs a service with it as systemd does; fails under CI when
/// it is missing.
pub fn socket_activate() -> Option<std::path::PathBuf> {
    let path = std::path::PathBuf::from("/usr/bin/systemd-socket-activate");
    if path.exists() {
        return Some(path);
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "CI needs systemd-socket-activate (apt-get install -y systemd)"
    );
    eprintln!(
        "SKIPPED socket activation: needs systemd-socket-activate (apt-get install -y systemd)"
    );
    None
}

/// Descriptors this process would pass on (open, not close-on-exec).
pub fn leaked_descriptors() -> Vec<u32> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc/self/fd").unwrap().flatten() {
        let Ok(fd) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        if fd <= 2 {
            continue;
        }
        let Ok(info) = std::fs::read_to_string(format!("/proc/self/fdinfo/{fd}")) else {
            continue;
        };
        let flags = info
            .lines()
            .find_map(|l| l.strip_prefix("flags:"))
            .and_then(|f| u32::from_str_radix(f.trim(), 8).ok())
            .unwrap_or(0);
        if flags & 0o2_000_000 == 0 {
            out.push(fd);
        }
    }
    out
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// The last line of stderr: the pilot's own `LD_PRELOAD` makes ld.so
/// complain about the client (and `setpriv`) before it.
pub fn last_line(o: &Output) -> String {
    stderr(o).lines().last().unwrap_or("").to_string()
}

/// The refusal line the client prints, and that nothing ran.
pub fn assert_refused(o: &Output, code: i32, reason: &str) {
    assert_eq!(o.status.code(), Some(code), "{}", stderr(o));
    assert!(
        last_line(o).starts_with(&format!("{reason}: ")),
        "expected {reason}: {}",
        stderr(o)
    );
    assert!(stdout(o).is_empty(), "something ran: {}", stdout(o));
}
