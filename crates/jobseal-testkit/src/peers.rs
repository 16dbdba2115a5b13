//! Test peers: the programs and files of Debian packages (OpenSSL, the grid
//! middleware, Redis, LCMAPS, valgrind, …) that some tests run against.
//!
//! A test that needs one asks here first:
//!
//! ```ignore
//! if !peers::require_all(&[("openssl", "openssl"), ("grid-proxy-init", "globus-proxy-utils")]) {
//!     return;
//! }
//! ```
//!
//! - Under plain `cargo test`, a missing peer prints one line to stderr,
//!   `SKIPPED <test>: needs <package> (apt-get install -y <package>); run scripts/test to run it`,
//!   and the test returns without failing. The line is written to the stderr
//!   file itself, not through `eprintln!`, so the test harness does not
//!   swallow it: a skip is never silent.
//! - With `JOBSEAL_REQUIRE_PEERS=1` (set by `scripts/test`, hence by CI), a
//!   missing peer fails the test, naming the package.
//!
//! This file uses only `std`: crates that do not depend on `jobseal-testkit`
//! include it with `#[path = ".../jobseal-testkit/src/peers.rs"] mod peers;`,
//! so that there is one copy of the rule.

use std::io::Write as _;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};

/// The environment variable that turns a missing peer into a failure.
pub const REQUIRE_ENV: &str = "JOBSEAL_REQUIRE_PEERS";

/// Whether a missing peer fails the test (`JOBSEAL_REQUIRE_PEERS` set to
/// anything but empty or `0`).
pub fn required() -> bool {
    std::env::var_os(REQUIRE_ENV).is_some_and(|v| !v.is_empty() && v != "0")
}

/// Where `what` is: an absolute path that exists, or the first executable
/// file of that name on `PATH` (then `/usr/sbin`, `/sbin`).
pub fn find(what: &str) -> Option<PathBuf> {
    if what.starts_with('/') {
        let p = PathBuf::from(what);
        return p.exists().then_some(p);
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    let extra = [PathBuf::from("/usr/sbin"), PathBuf::from("/sbin")];
    std::env::split_paths(&path)
        .chain(extra)
        .map(|dir| dir.join(what))
        .find(|p| is_executable(p))
}

fn is_executable(p: &Path) -> bool {
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// One peer: its path, or `None` once the test has been reported skipped
/// (a failure instead under `JOBSEAL_REQUIRE_PEERS`). `what` is a program
/// name or an absolute path; `package` the Debian package that provides it.
#[track_caller]
pub fn require(what: &str, package: &str) -> Option<PathBuf> {
    let found = find(what);
    if found.is_none() {
        missing(&[(what, package)]);
    }
    found
}

/// Whether every peer is there; if some are not, the test is reported
/// skipped (or fails under `JOBSEAL_REQUIRE_PEERS`) naming all their
/// packages in one line. Pairs are (program or absolute path, package).
#[track_caller]
pub fn require_all(needs: &[(&str, &str)]) -> bool {
    let absent: Vec<(&str, &str)> = needs
        .iter()
        .copied()
        .filter(|(what, _)| find(what).is_none())
        .collect();
    if absent.is_empty() {
        return true;
    }
    missing(&absent);
    false
}

/// A peer that only one part of a test needs (the rest runs without it):
/// its path, or `None` after the line `SKIPPED <test> (<part>): needs …`
/// (a failure instead under `JOBSEAL_REQUIRE_PEERS`).
#[track_caller]
pub fn require_for(part: &str, what: &str, package: &str) -> Option<PathBuf> {
    let found = find(what);
    if found.is_none() {
        report(Some(part), &[(what, package)]);
    }
    found
}

/// Report peers that are missing, as (what, package) pairs: fail the test
/// under `JOBSEAL_REQUIRE_PEERS`, else write the SKIPPED line. For peers a
/// path cannot show (a program that is there but lacks a feature), call this
/// directly.
#[track_caller]
pub fn missing(absent: &[(&str, &str)]) {
    report(None, absent);
}

#[track_caller]
#[allow(clippy::panic)]
fn report(part: Option<&str>, absent: &[(&str, &str)]) {
    let mut packages: Vec<&str> = absent.iter().map(|(_, p)| *p).collect();
    packages.sort_unstable();
    packages.dedup();
    let packages = packages.join(" ");
    let what: Vec<&str> = absent.iter().map(|(w, _)| *w).collect();
    let what = what.join(", ");
    let mut suite = current_test();
    if let Some(part) = part {
        suite = format!("{suite} ({part})");
    }
    if required() {
        panic!(
            "{suite}: missing {what}: needs {packages} (apt-get install -y {packages}); \
             {REQUIRE_ENV} is set, so a missing test peer is a failure"
        );
    }
    // Straight to the file descriptor (libtest captures `eprintln!`), in
    // one write so that parallel tests do not interleave inside the line.
    let line = format!(
        "SKIPPED {suite}: needs {packages} (apt-get install -y {packages}; missing {what}); \
         run scripts/test to run it\n"
    );
    let _ = std::io::stderr().write_all(line.as_bytes());
}

/// `<test target>::<test name>` of the running test, as well as it can be
/// told (the binary's name without cargo's hash, and libtest's thread name).
pub fn current_test() -> String {
    let target = std::env::current_exe()
        .ok()
        .and_then(|p| p.file_stem().map(|s| s.to_string_lossy().into_owned()))
        .map(|s| match s.rsplit_once('-') {
            Some((name, hash))
                if hash.len() == 16 && hash.chars().all(|c| c.is_ascii_hexdigit()) =>
            {
                name.to_string()
            }
            _ => s,
        })
        .unwrap_or_else(|| "test".into());
    match std::thread::current().name() {
        Some(name) if name != "main" => format!("{target}::{name}"),
        _ => target,
    }
}
