//! `jobseal-launchd [--config FILE]`: the site's launch service
//! (`spec/jobseal.md` §14.14, `docs/jobseal-exec.md`). Runs as root in the
//! foreground (systemd's `jobseal-launchd.service`, or by hand), listening
//! on the socket its configuration names, bound by itself or passed by
//! systemd (`jobseal-launchd.socket`); pilots reach it through
//! `jobseal-exec` in `mode = "service"`.
#![forbid(unsafe_code)]
// A service reports its start-up failure on stderr (the journal).
#![allow(clippy::print_stderr)]

use std::ffi::OsStr;
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixListener;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use jobseal_exec::config::{self, ExecConfig};
use jobseal_exec::creds;
use jobseal_exec::service::Service;
use jobseal_exec::verifier;

const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (commit ",
    env!("JOBSEAL_BUILD_COMMIT"),
    ")"
);

const USAGE: &str = "usage: jobseal-launchd [--config FILE]   (default /etc/jobseal/exec.toml)";

fn main() -> ExitCode {
    let args: Vec<std::ffi::OsString> = std::env::args_os().skip(1).collect();
    // The payload's trampoline is this binary re-executed by the service.
    if args.first().map(|a| a.as_os_str()) == Some(OsStr::new(creds::TRAMPOLINE)) {
        return creds::trampoline(args.get(1..).unwrap_or_default());
    }
    // A launch's verifier process, started by the service as its account.
    if args.first().map(|a| a.as_os_str()) == Some(OsStr::new(verifier::VERIFIER)) {
        return verifier::serve_stdin();
    }
    let config_path = match args.as_slice() {
        [] => PathBuf::from(config::DEFAULT_PATH),
        [flag, path] if flag == "--config" => PathBuf::from(path),
        [v] if v == "--version" => {
            use std::io::Write;
            let mut out = std::io::stdout().lock();
            return match writeln!(out, "jobseal-launchd {VERSION}") {
                Ok(()) => ExitCode::SUCCESS,
                Err(_) => ExitCode::FAILURE,
            };
        }
        _ => {
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    match start(&config_path) {
        Ok(()) => ExitCode::SUCCESS,
        Err(m) => {
            eprintln!("jobseal-launchd: {m}");
            ExitCode::FAILURE
        }
    }
}

fn start(config_path: &std::path::Path) -> Result<(), String> {
    if !rustix::process::geteuid().is_root() || !rustix::process::getuid().is_root() {
        return Err("must run as root (it switches to the mapped accounts)".into());
    }
    let activated = activated_socket()?;
    // A descriptor inherited without close-on-exec would reach every
    // payload (the trampoline refuses to run then): refuse to start.
    let passed = activated.as_ref().map(AsRawFd::as_raw_fd);
    let inherited: Vec<i32> = creds::open_descriptors()
        .ok_or("cannot list its descriptors (/proc/self/fd)")?
        .into_iter()
        .filter(|fd| *fd > 2 && Some(*fd) != passed)
        .collect();
    if !inherited.is_empty() {
        return Err(format!(
            "descriptors {inherited:?} were inherited without close-on-exec; start jobseal-launchd with only 0-2 open (as systemd does)"
        ));
    }
    // What the service makes (working directories, records) has the modes
    // it chooses, whatever umask it was started with.
    rustix::process::umask(rustix::fs::Mode::from_raw_mode(0o022));
    let config = ExecConfig::load(config_path, true)?;
    let service = Arc::new(Service::new(config)?);
    service.prepare_records()?;
    let (listener, how) = match activated {
        Some(l) => (service.adopt(l)?, "socket passed by systemd"),
        None => (service.listen()?, "listening"),
    };
    eprintln!(
        "jobseal-launchd {VERSION}: {how} on {}",
        service.socket().display()
    );
    service.serve(&listener);
    Ok(())
}

/// The socket systemd passed (`sd_listen_fds(3)`): only when `LISTEN_PID`
/// names this process; then exactly one, a Unix stream socket, made
/// close-on-exec so that no payload inherits it.
fn activated_socket() -> Result<Option<UnixListener>, String> {
    let (Some(pid), Some(count)) = (
        std::env::var_os("LISTEN_PID"),
        std::env::var_os("LISTEN_FDS"),
    ) else {
        return Ok(None);
    };
    if pid.to_str().and_then(|p| p.parse::<u32>().ok()) != Some(std::process::id()) {
        // Meant for another process: any descriptor it left open is
        // refused as inherited.
        return Ok(None);
    }
    if count != "1" {
        return Err(format!(
            "systemd passed {} sockets (LISTEN_FDS); jobseal-launchd.socket must have exactly one ListenStream=",
            count.to_string_lossy()
        ));
    }
    listenfd::ListenFd::from_env()
        .take_unix_listener(0)
        .map_err(|e| format!("the socket passed by systemd: {e}"))?
        .map(Some)
        .ok_or_else(|| "systemd announced a socket but passed none".into())
}
