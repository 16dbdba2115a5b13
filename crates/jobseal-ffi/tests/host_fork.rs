//! The admission host's fork guard across a real `fork` (the host itself,
//! below the C API and the Python module that use it): admission opened
//! in the parent denies in the child, recorded by path, and the parent's
//! admission stays open and usable after the child dropped its copy.
//! Here rather than in `jobseal-admit`, which forbids `unsafe` (and so
//! `fork`). The only test of this binary: no other test thread runs at the
//! fork.
#![allow(unsafe_code, clippy::unwrap_used, clippy::panic)]

use std::path::Path;
use std::sync::Arc;

use jobseal_admit::audit::RecordContext;
use jobseal_admit::{AdmissionHost, StateDirs};
use jobseal_core::Reason;
use jobseal_policy::Policy;
use jobseal_verify::{Config, Invocation};

unsafe extern "C" {
    fn fork() -> i32;
    fn _exit(status: i32) -> !;
    fn waitpid(pid: i32, status: *mut i32, options: i32) -> i32;
}

/// In the child: the parent's host denies, across fork; then the child
/// drops the host (which must leave the parent's admission open) and
/// leaves without running any exit handler. Exit status 0 if all held.
fn child(host: AdmissionHost, invocation: &Invocation) -> ! {
    let d = host.admit(b"", invocation, &RecordContext::default());
    let ok = d.reason == Some(Reason::Internal) && d.message.contains("used across fork");
    drop(host);
    // SAFETY: ends the child at once, as a child of fork must.
    unsafe { _exit(if ok { 0 } else { 1 }) }
}

#[test]
fn a_host_opened_before_fork_denies_in_the_child() {
    let vectors = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../test-vectors");
    let config = Config {
        ca_dir: vectors.join("ca"),
        voms_dir: vectors.join("no-such-vomsdir"),
        ..Config::default()
    };
    let tmp = tempfile::tempdir().unwrap();
    let state = tmp.path().join("state");
    let host = AdmissionHost::new(config, Policy::default(), StateDirs::named(&state)).unwrap();
    let context = RecordContext::default();
    let opened = host.open(&context).unwrap();
    let invocation = Invocation {
        executable: "/bin/true".into(),
        arguments: Vec::new(),
        job_dir: tmp.path().to_path_buf(),
    };
    // SAFETY: fork has no preconditions; the child only runs `child`,
    // which ends with _exit.
    let pid = unsafe { fork() };
    assert!(pid >= 0, "fork failed");
    if pid == 0 {
        child(host, &invocation);
    }
    let mut status = -1;
    // SAFETY: a child of this process, and a valid pointer.
    let waited = unsafe { waitpid(pid, &mut status, 0) };
    assert_eq!(waited, pid, "waitpid failed");
    assert_eq!(
        status, 0,
        "the child was not denied across fork (status {status:#x})"
    );
    let log = std::fs::read_to_string(state.join("audit.jsonl")).unwrap();
    assert!(log.contains("used across fork"), "{log}");
    // The parent's admission is its own still, and works.
    assert!(Arc::ptr_eq(&opened, &host.open(&context).unwrap()));
    let d = opened.admit(b"", &invocation, &context);
    assert!(!d.is_permit());
    assert_ne!(d.reason, Some(Reason::Internal), "{}", d.message);
}
