//! `jobseal-launchd [--config FILE]`: the site's launch service
//! (`spec/jobseal.md` §14.14, `docs/jobseal-exec.md`). Runs as root in the
//! foreground (systemd's `jobseal-launchd.service`, or by hand), listening
//! on the socket its configuration names; pilots reach it through
//! `jobseal-exec` in `mode = "service"`.
#![forbid(unsafe_code)]
// A service reports its start-up failure on stderr (the journal).
#![allow(clippy::print_stderr)]

use std::ffi::OsStr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use jobseal_exec::config::{self, ExecConfig};
use jobseal_exec::creds;
use jobseal_exec::service::Service;

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
    // A descriptor inherited without close-on-exec would reach every
    // payload (the trampoline refuses to run then): refuse to start.
    let inherited: Vec<i32> = creds::open_descriptors()
        .ok_or("cannot list its descriptors (/proc/self/fd)")?
        .into_iter()
        .filter(|fd| *fd > 2)
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
    let listener = service.listen()?;
    eprintln!(
        "jobseal-launchd {VERSION}: listening on {}",
        service.socket().display()
    );
    service.serve(&listener);
    Ok(())
}
