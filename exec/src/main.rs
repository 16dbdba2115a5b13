//! `jobseal-exec COMMAND [ARGS...]`: a gLExec-compatible launcher that admits
//! the job (check, policy, replay, audit: `spec/jobseal.md` §6.7) before it
//! runs anything, then runs exactly the bytes it admitted, under the mapped
//! account (identity switching) or the caller's own (logging-only).
//! Exit codes, modes and configuration: `docs/jobseal-exec.md`.
#![forbid(unsafe_code)]
// A launcher reports on stderr by design (gLExec's contract).
#![allow(clippy::print_stderr)]

mod account;
mod config;
mod payload;
mod proxy;
mod signals;

use std::ffi::{OsStr, OsString};
use std::io::Read;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use jobseal_admit::admit::{Admission, Dirs};
use jobseal_admit::audit::RecordContext;
use jobseal_policy::Policy;
use jobseal_verify::{Config, Invocation};

use crate::account::Account;
use crate::config::{ExecConfig, Mode, check_root_owned};
use crate::payload::PayloadError;
use crate::proxy::ProxyError;

/// gLExec's exit codes.
const EXIT_CLIENT: u8 = 201;
const EXIT_INTERNAL: u8 = 202;
const EXIT_DENIED: u8 = 203;
const EXIT_PAYLOAD_201_204: u8 = 204;
const EXIT_NOT_EXECUTABLE: u8 = 126;

/// The payload's PATH, whatever the caller's.
const SAFE_PATH: &str = "/usr/local/bin:/usr/bin:/bin";

/// Largest bundle read (the verifier's own limit is 32 MiB: one byte more
/// lets it say `limits.exceeded`).
const MAX_BUNDLE_BYTES: u64 = 32 * 1024 * 1024 + 1;

/// Names the non-privileged launcher reads its configuration from instead
/// of `/etc/jobseal/exec.toml`; ignored in privileged use.
const CONFIG_ENV: &str = "JOBSEAL_EXEC_CONFIG";

/// A refusal: exit code, reason code, message.
#[derive(Debug)]
struct Fail(u8, &'static str, String);

fn fail<T>(code: u8, reason: &'static str, message: impl Into<String>) -> Result<T, Fail> {
    Err(Fail(code, reason, message.into()))
}

fn main() -> ExitCode {
    match run() {
        Ok(code) => ExitCode::from(code),
        Err(Fail(code, reason, message)) => {
            eprintln!("{reason}: {}", one_line(&message));
            ExitCode::from(code)
        }
    }
}

/// Control characters escaped: one line on stderr whatever a message holds.
fn one_line(message: &str) -> String {
    message
        .chars()
        .map(|c| {
            if c.is_control() {
                format!("\\x{:02X}", u32::from(c))
            } else {
                c.to_string()
            }
        })
        .collect()
}

fn env_var(env: &[(OsString, OsString)], name: &str) -> Option<OsString> {
    env.iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.clone())
        .filter(|v| !v.is_empty())
}

/// What gLExec passes: `TZ`, `X509_USER_PROXY`, `GLEXEC_*` and the site's
/// whitelist. Everything else (`LD_*`, `BASH_ENV`, `PYTHONPATH`, …) is gone.
fn passes(name: &OsStr, whitelist: &[String]) -> bool {
    let Some(name) = name.to_str() else {
        return false;
    };
    name == "TZ"
        || name == "X509_USER_PROXY"
        || name.starts_with("GLEXEC_")
        || whitelist.iter().any(|w| w == name)
}

/// The credential named by `GLEXEC_CLIENT_CERT`: the caller's own regular
/// file (no symbolic link), writable by nobody else.
fn read_credential(path: &Path, caller: u32) -> Result<Vec<u8>, Fail> {
    let shown = path.display();
    let flags = rustix::fs::OFlags::NOFOLLOW | rustix::fs::OFlags::NONBLOCK;
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(flags.bits() as i32)
        .open(path)
        .or_else(|e| {
            fail(
                EXIT_CLIENT,
                "exec.credential",
                format!("GLEXEC_CLIENT_CERT {shown}: {e}"),
            )
        })?;
    let meta = file.metadata().or_else(|e| {
        fail(
            EXIT_CLIENT,
            "exec.credential",
            format!("GLEXEC_CLIENT_CERT {shown}: {e}"),
        )
    })?;
    if !meta.file_type().is_file() {
        return fail(
            EXIT_CLIENT,
            "exec.credential",
            format!("GLEXEC_CLIENT_CERT {shown}: not a regular file"),
        );
    }
    if meta.uid() != caller {
        return fail(
            EXIT_CLIENT,
            "exec.credential",
            format!("GLEXEC_CLIENT_CERT {shown}: not owned by the caller"),
        );
    }
    if meta.mode() & 0o022 != 0 {
        return fail(
            EXIT_CLIENT,
            "exec.credential",
            format!("GLEXEC_CLIENT_CERT {shown}: writable by group or others"),
        );
    }
    let mut bytes = Vec::new();
    file.take(MAX_BUNDLE_BYTES)
        .read_to_end(&mut bytes)
        .or_else(|e| {
            fail(
                EXIT_CLIENT,
                "exec.credential",
                format!("GLEXEC_CLIENT_CERT {shown}: {e}"),
            )
        })?;
    Ok(bytes)
}

/// The local account a permitted identity runs under (identity switching).
fn map_target(config: &ExecConfig, dn: &str) -> Result<Account, Fail> {
    let Some(gridmap) = &config.gridmapfile else {
        return fail(
            EXIT_INTERNAL,
            "config.invalid",
            "identity switching needs a gridmapfile",
        );
    };
    check_root_owned(gridmap).or_else(|m| fail(EXIT_INTERNAL, "config.invalid", m))?;
    let name =
        account::map_dn_file(gridmap, dn).or_else(|m| fail(EXIT_DENIED, "exec.no-mapping", m))?;
    let Some(target) = account::by_name(&name) else {
        return fail(
            EXIT_DENIED,
            "exec.no-account",
            format!("{dn} maps to {name}, which is not a local account"),
        );
    };
    if target.uid == 0 || target.uid < config.min_uid {
        return fail(
            EXIT_DENIED,
            "exec.target-uid",
            format!(
                "{name}: uid {} is below the minimum {}",
                target.uid, config.min_uid
            ),
        );
    }
    if target.gid == 0 || target.gid < config.min_gid {
        return fail(
            EXIT_DENIED,
            "exec.target-gid",
            format!(
                "{name}: gid {} is below the minimum {}",
                target.gid, config.min_gid
            ),
        );
    }
    Ok(target)
}

/// gLExec's payload check, where the copy alone does not settle it: the
/// original belongs to the caller, the target or root, and nobody else can
/// write it.
fn check_payload_owner(meta: &std::fs::Metadata, caller: u32, target: u32) -> Result<(), Fail> {
    if ![caller, target, 0].contains(&meta.uid()) {
        return fail(
            EXIT_DENIED,
            "exec.payload-untrusted",
            "the executable is owned by neither the caller, the target account nor root",
        );
    }
    if meta.mode() & 0o022 != 0 {
        return fail(
            EXIT_DENIED,
            "exec.payload-untrusted",
            "the executable is writable by group or others",
        );
    }
    Ok(())
}

fn load_policy(config: &ExecConfig, privileged: bool) -> Result<Policy, Fail> {
    let loaded = match &config.policy {
        Some(path) => {
            if privileged {
                check_root_owned(path).or_else(|m| fail(EXIT_INTERNAL, "config.invalid", m))?;
            }
            Policy::load(path)
        }
        None => {
            let default = Path::new(jobseal_policy::DEFAULT_PATH);
            if privileged && std::fs::symlink_metadata(default).is_ok() {
                check_root_owned(default).or_else(|m| fail(EXIT_INTERNAL, "config.invalid", m))?;
            }
            Policy::load_default()
        }
    };
    loaded.or_else(|e| fail(EXIT_INTERNAL, e.reason.code(), e.message))
}

fn run() -> Result<u8, Fail> {
    let args: Vec<OsString> = std::env::args_os().skip(1).collect();
    let Some((command, rest)) = args.split_first() else {
        return fail(
            EXIT_CLIENT,
            "exec.usage",
            "usage: jobseal-exec COMMAND [ARGS...] (the job's bundle in GLEXEC_CLIENT_CERT)",
        );
    };
    // No options at all: nothing on the command line can change trust
    // (--policy, --ca-dir, --at, …).
    if command.as_encoded_bytes().starts_with(b"-") {
        return fail(
            EXIT_CLIENT,
            "exec.usage",
            format!(
                "jobseal-exec takes no options ({}); the configuration is {}",
                command.to_string_lossy(),
                config::DEFAULT_PATH
            ),
        );
    }
    let caller = rustix::process::getuid().as_raw();
    let privileged = rustix::process::geteuid().is_root();
    let env: Vec<(OsString, OsString)> = std::env::vars_os().collect();

    // Configuration: in privileged use only the root-owned file.
    let config_path = match env_var(&env, CONFIG_ENV) {
        Some(p) if !privileged => PathBuf::from(p),
        _ => PathBuf::from(config::DEFAULT_PATH),
    };
    let config = ExecConfig::load(&config_path, privileged)
        .or_else(|m| fail(EXIT_INTERNAL, "config.invalid", m))?;
    match (privileged, config.mode) {
        (true, Mode::LoggingOnly) => {
            return fail(
                EXIT_INTERNAL,
                "config.invalid",
                "logging-only mode would run payloads as root: use identity-switching, or run jobseal-exec unprivileged",
            );
        }
        (false, Mode::IdentitySwitching) => {
            return fail(
                EXIT_INTERNAL,
                "config.invalid",
                "identity-switching mode needs jobseal-exec to run as root (setuid)",
            );
        }
        _ => {}
    }
    let caller_account = account::by_uid(caller);
    if !config.user_allowed(caller, caller_account.as_ref().map(|a| a.name.as_str())) {
        return fail(
            EXIT_DENIED,
            "exec.caller-not-allowed",
            format!("uid {caller} may not use jobseal-exec"),
        );
    }

    // The job's bundle.
    let Some(bundle_path) = env_var(&env, "GLEXEC_CLIENT_CERT") else {
        return fail(
            EXIT_CLIENT,
            "exec.credential",
            "GLEXEC_CLIENT_CERT is not set",
        );
    };
    let bundle = read_credential(Path::new(&bundle_path), caller)?;

    // The payload's bytes, sealed: what admission hashes is what runs.
    let search = if privileged {
        SAFE_PATH.to_string()
    } else {
        env_var(&env, "PATH").map_or_else(
            || SAFE_PATH.to_string(),
            |p| p.to_string_lossy().into_owned(),
        )
    };
    let Some(executable) = payload::resolve(Path::new(command), &search) else {
        return fail(
            EXIT_NOT_EXECUTABLE,
            "exec.not-executable",
            format!("{}: command not found", command.to_string_lossy()),
        );
    };
    let sealed = payload::seal_copy(&executable).or_else(|e| match e {
        PayloadError::NotExecutable(m) => fail(EXIT_NOT_EXECUTABLE, "exec.not-executable", m),
        PayloadError::Internal(m) => fail(EXIT_INTERNAL, "internal.error", m),
    })?;

    // Admission: check, policy, replay, audit, on the sealed copy.
    let policy = load_policy(&config, privileged)?;
    let ca_dir = config
        .ca_dir
        .clone()
        .unwrap_or_else(|| PathBuf::from(jobseal_verify::DEFAULT_CA_DIR));
    let voms_dir = config
        .voms_dir
        .clone()
        .unwrap_or_else(|| PathBuf::from(jobseal_verify::DEFAULT_VOMS_DIR));
    if privileged {
        check_root_owned(&ca_dir).or_else(|m| fail(EXIT_INTERNAL, "config.invalid", m))?;
    }
    let dirs = match &config.state_dir {
        Some(d) => Dirs::under(d),
        None => {
            let xdg = env_var(&env, "XDG_STATE_HOME").map(PathBuf::from);
            let home = env_var(&env, "HOME").map(PathBuf::from);
            let uid = if privileged { 0 } else { caller };
            Dirs::for_user(Some(uid), xdg.as_deref(), home.as_deref())
                .or_else(|e| fail(EXIT_INTERNAL, e.reason.code(), e.message))?
        }
    };
    let verifier_config = Config {
        ca_dir,
        voms_dir,
        ..Config::default()
    };
    let admission = Admission::open(verifier_config, policy, &dirs)
        .or_else(|e| fail(EXIT_INTERNAL, e.reason.code(), e.message))?;
    let invocation = Invocation {
        executable: sealed.path(),
        arguments: rest.to_vec(),
        job_dir: PathBuf::from("."),
    };
    let context = RecordContext {
        executable: Some(Path::new(command).display().to_string()),
        arguments: Some(
            rest.iter()
                .map(|a| a.to_string_lossy().into_owned())
                .collect(),
        ),
        environment: env
            .iter()
            .map(|(k, _)| k.to_string_lossy().into_owned())
            .collect(),
        ..RecordContext::default()
    };
    // Identity switching: map (and check the target, and the original
    // executable against it) from a side-effect-free check (steps 1–6)
    // BEFORE admission records the use, so a job that cannot be mapped
    // keeps its use. A check deny falls through to `admit`, which denies
    // it again and records it.
    let mapped = if privileged {
        let checked = admission.check(&bundle, &invocation);
        match &checked.identity {
            Some(identity) if checked.is_permit() => {
                let target = map_target(&config, &identity.end_entity)?;
                check_payload_owner(&sealed.original, caller, target.uid)?;
                Some((identity.end_entity.clone(), target))
            }
            _ => None,
        }
    } else {
        None
    };
    let decision = admission.admit(&bundle, &invocation, &context);
    // The replay store and audit log stay out of the payload's reach.
    drop(admission);
    if !decision.is_permit() {
        return fail(EXIT_DENIED, decision.code(), decision.message);
    }

    // Who the payload runs as.
    let target = if privileged {
        // The admitted identity must be the one mapped (same bundle, so
        // only a bug could make them differ).
        match (mapped, &decision.identity) {
            (Some((dn, target)), Some(identity)) if dn == identity.end_entity => target,
            _ => {
                return fail(
                    EXIT_INTERNAL,
                    "internal.error",
                    "the admitted identity is not the one that was mapped",
                );
            }
        }
    } else {
        caller_account.unwrap_or_else(|| Account {
            name: caller.to_string(),
            uid: caller,
            gid: rustix::process::getgid().as_raw(),
            home: "/".into(),
        })
    };

    // The payload's environment.
    let mut payload_env: Vec<(OsString, OsString)> = env
        .iter()
        .filter(|(k, _)| passes(k, &config.env_whitelist))
        .cloned()
        .collect();
    let mut set = |k: &str, v: OsString| {
        payload_env.retain(|(n, _)| n != k);
        payload_env.push((k.into(), v));
    };
    set("PATH", SAFE_PATH.into());
    set("HOME", target.home.clone().into());
    set("USER", target.name.clone().into());
    set("LOGNAME", target.name.clone().into());
    if let Some(source) = env_var(&env, "GLEXEC_SOURCE_PROXY") {
        let destination = env_var(&env, "GLEXEC_TARGET_PROXY").map_or_else(
            || PathBuf::from(format!("/tmp/x509up_u{}", target.uid)),
            PathBuf::from,
        );
        if !destination.is_absolute() {
            return fail(
                EXIT_CLIENT,
                "exec.proxy",
                "GLEXEC_TARGET_PROXY must be an absolute path",
            );
        }
        let copy = proxy::read_source(Path::new(&source), caller)
            .and_then(|bytes| proxy::write_target(&destination, bytes, target.uid, target.gid));
        match copy {
            Ok(()) => set("X509_USER_PROXY", destination.into_os_string()),
            Err(ProxyError::Client(m)) => return fail(EXIT_CLIENT, "exec.proxy", m),
            Err(ProxyError::Internal(m)) => return fail(EXIT_INTERNAL, "exec.proxy", m),
        }
    }

    // Run the sealed copy; stay its parent to report its exit code.
    let mut cmd = Command::new(sealed.path());
    cmd.arg0(command).args(rest).env_clear().envs(payload_env);
    if privileged {
        // std drops supplementary groups, then setgid, then setuid, in the
        // child before exec, and fails the spawn if any of them fails.
        cmd.uid(target.uid).gid(target.gid);
    }
    // The payload stays our child; signals sent to us are forwarded to it.
    let status = signals::run_forwarding(&mut cmd).or_else(|e| match e {
        signals::RunError::Spawn(e) => fail(
            EXIT_NOT_EXECUTABLE,
            "exec.not-executable",
            format!("{}: {e}", command.to_string_lossy()),
        ),
        signals::RunError::Setup(m) | signals::RunError::Wait(m) => {
            fail(EXIT_INTERNAL, "internal.error", m)
        }
    })?;
    drop(sealed);
    Ok(match (status.code(), status.signal()) {
        (Some(c), _) if (201..=204).contains(&c) => EXIT_PAYLOAD_201_204,
        (Some(c), _) => u8::try_from(c).unwrap_or(EXIT_INTERNAL),
        // Killed by a signal: the shell's convention.
        (None, Some(s)) => u8::try_from(128 + s).unwrap_or(EXIT_INTERNAL),
        (None, None) => EXIT_INTERNAL,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn environment_whitelist() {
        let w = vec!["OMP_NUM_THREADS".to_string()];
        for ok in [
            "TZ",
            "X509_USER_PROXY",
            "GLEXEC_CLIENT_CERT",
            "OMP_NUM_THREADS",
        ] {
            assert!(passes(OsStr::new(ok), &w), "{ok}");
        }
        for bad in [
            "LD_PRELOAD",
            "BASH_ENV",
            "ENV",
            "PYTHONPATH",
            "PATH",
            "X509_CERT_DIR",
            "JOBSEAL_POLICY",
        ] {
            assert!(!passes(OsStr::new(bad), &w), "{bad}");
        }
    }
}
