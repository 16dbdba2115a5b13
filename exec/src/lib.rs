//! The launcher's parts, shared by its two programs (`spec/jobseal.md`
//! §14): `jobseal-exec`, the gLExec-compatible command a pilot calls (a
//! client of the site's launch service, or the logging-only launcher), and
//! `jobseal-launchd`, the site's launch service. Not a public API: the
//! modules follow the launch from the request to the payload's exit.
#![forbid(unsafe_code)]

pub mod account;
pub mod bounds;
pub mod client;
pub mod config;
pub mod creds;
pub mod mapping;
pub mod payload;
pub mod pool;
pub mod proxy;
pub mod reason;
pub mod service;
pub mod signals;
pub mod verifier;
pub mod workdir;

pub use jobseal_launch_proto as proto;

use std::ffi::{OsStr, OsString};
use std::path::Path;
use std::process::ExitStatus;

/// gLExec's exit codes.
pub const EXIT_CLIENT: u8 = 201;
pub const EXIT_INTERNAL: u8 = 202;
pub const EXIT_DENIED: u8 = 203;
pub const EXIT_PAYLOAD_201_204: u8 = 204;
pub const EXIT_NOT_EXECUTABLE: u8 = 126;

/// The payload's PATH, whatever the caller's.
pub const SAFE_PATH: &str = "/usr/local/bin:/usr/bin:/bin";

/// Largest bundle read (the verifier's own limit is 32 MiB: one byte more
/// lets it say `limits.exceeded`).
pub const MAX_BUNDLE_BYTES: u64 = 32 * 1024 * 1024 + 1;

/// A refusal: exit code, reason code, message.
#[derive(Debug)]
pub struct Fail(pub u8, pub &'static str, pub String);

pub fn fail<T>(code: u8, reason: &'static str, message: impl Into<String>) -> Result<T, Fail> {
    Err(Fail(code, reason, message.into()))
}

/// Control characters escaped: one line on stderr whatever a message holds.
pub fn one_line(message: &str) -> String {
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

/// gLExec's exit code for a payload's end: its own code, except that
/// 201–204 (gLExec's) become 204; death by a signal is 128 + the signal.
pub fn exit_code(status: ExitStatus) -> u8 {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(c), _) if (201..=204).contains(&c) => EXIT_PAYLOAD_201_204,
        (Some(c), _) => u8::try_from(c).unwrap_or(EXIT_INTERNAL),
        // Killed by a signal: the shell's convention.
        (None, Some(s)) => u8::try_from(128 + s).unwrap_or(EXIT_INTERNAL),
        (None, None) => EXIT_INTERNAL,
    }
}

/// The payload's environment (§14.7), built from nothing: the names of
/// `inherited` that [`passes`] lets through, the fixed `PATH`, what the user
/// signed, then the account's own `HOME`, `USER`, `LOGNAME`, and
/// `JOBSEAL_WORKDIR` and `X509_USER_PROXY` where given.
pub fn payload_env(
    inherited: &[(OsString, OsString)],
    whitelist: &[String],
    signed: &[(String, String)],
    account: &account::Account,
    workdir: Option<&Path>,
    proxy: Option<&Path>,
) -> Vec<(OsString, OsString)> {
    let mut env: Vec<(OsString, OsString)> = inherited
        .iter()
        .filter(|(k, _)| passes(k, whitelist))
        .cloned()
        .collect();
    set_var(&mut env, "PATH", SAFE_PATH.into());
    for (k, v) in signed {
        set_var(&mut env, k, v.into());
    }
    set_var(&mut env, "HOME", account.home.clone().into());
    set_var(&mut env, "USER", account.name.clone().into());
    set_var(&mut env, "LOGNAME", account.name.clone().into());
    if let Some(w) = workdir {
        set_var(&mut env, "JOBSEAL_WORKDIR", w.into());
    }
    if let Some(p) = proxy {
        set_var(&mut env, "X509_USER_PROXY", p.into());
    }
    env
}

/// Set `name` in `env`, replacing any earlier value.
pub fn set_var(env: &mut Vec<(OsString, OsString)>, name: &str, value: OsString) {
    env.retain(|(n, _)| n != name);
    env.push((name.into(), value));
}

/// What gLExec passes: `TZ`, `X509_USER_PROXY`, `GLEXEC_*` and the site's
/// whitelist. Everything else (`LD_*`, `BASH_ENV`, `PYTHONPATH`, …) is gone.
pub fn passes(name: &OsStr, whitelist: &[String]) -> bool {
    let Some(name) = name.to_str() else {
        return false;
    };
    name == "TZ"
        || name == "X509_USER_PROXY"
        || name.starts_with("GLEXEC_")
        || whitelist.iter().any(|w| w == name)
}

/// Read the manifest out of a bundle without verifying anything: to name
/// the working directory and know which inputs to copy into it before
/// admission hashes them. Admission verifies these very bytes afterwards.
pub fn peek_manifest(bundle: &[u8]) -> Option<jobseal_core::manifest::Manifest> {
    let parsed = jobseal_core::bundle::Bundle::parse(bundle).ok()?;
    let envelope = jobseal_core::cose::parse(&parsed.manifest).ok()?;
    jobseal_core::manifest::Manifest::from_cbor(&envelope.payload).ok()
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
