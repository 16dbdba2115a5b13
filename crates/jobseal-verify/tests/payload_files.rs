//! The payload check reads only regular files and never blocks on one.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::path::Path;
use std::process::Command;

use jobseal_testkit::{VECTOR_TIME, generate, write_dir};
use jobseal_verify::{Config, Invocation, Reason, Verifier};

fn check_with_executable(make: impl FnOnce(&Path)) -> Reason {
    let tmp = tempfile::tempdir().unwrap();
    write_dir(&generate().unwrap(), tmp.path()).unwrap();
    let v = Verifier::new(Config {
        ca_dir: tmp.path().join("ca"),
        ..Config::default()
    })
    .unwrap();
    let job = tmp.path().join("permit-direct-from-user-certificate/job");
    let exe = job.join("run.sh");
    std::fs::remove_file(&exe).unwrap();
    make(&exe);
    let inv = Invocation {
        executable: exe,
        arguments: vec!["--events".into(), "1000".into()],
        job_dir: job.clone(),
    };
    let d = v.check_file(&job.join("../bundle.pem"), &inv, VECTOR_TIME);
    d.reason.expect("denied")
}

#[test]
fn a_fifo_in_place_of_the_executable_is_unreadable_not_a_hang() {
    let r = check_with_executable(|p| {
        let st = Command::new("mkfifo")
            .arg(p)
            .status()
            .expect("mkfifo (coreutils) is needed");
        assert!(st.success());
    });
    assert_eq!(r, Reason::PayloadExecutableUnreadable);
}

#[test]
fn a_directory_in_place_of_the_executable_is_unreadable() {
    let r = check_with_executable(|p| std::fs::create_dir(p).unwrap());
    assert_eq!(r, Reason::PayloadExecutableUnreadable);
}

#[test]
fn a_longer_executable_is_a_mismatch() {
    let r = check_with_executable(|p| std::fs::write(p, vec![b'#'; 10 << 20]).unwrap());
    assert_eq!(r, Reason::PayloadExecutableMismatch);
}

#[test]
fn a_fifo_in_place_of_the_bundle_is_a_deny_not_a_hang() {
    let tmp = tempfile::tempdir().unwrap();
    write_dir(&generate().unwrap(), tmp.path()).unwrap();
    let fifo = tmp.path().join("bundle.fifo");
    let st = Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .expect("mkfifo (coreutils) is needed");
    assert!(st.success());
    let ca_dir = tmp.path().join("ca");
    let (tx, rx) = std::sync::mpsc::channel();
    // A blocking open would never return: run it where the test can give up.
    std::thread::spawn(move || {
        let v = Verifier::new(Config {
            ca_dir,
            ..Config::default()
        })
        .unwrap();
        let inv = Invocation {
            executable: "/bin/true".into(),
            arguments: vec![],
            job_dir: ".".into(),
        };
        let _ = tx.send(v.check_file(&fifo, &inv, VECTOR_TIME).reason);
    });
    let reason = rx
        .recv_timeout(std::time::Duration::from_secs(10))
        .expect("check_file blocked on a FIFO");
    assert_eq!(reason, Some(Reason::BundleMalformed));
}

/// `spec/jobseal.md` §6.6 5c: an input that exists but is not a regular
/// file is `payload.input-missing` (never a mismatch), under either input
/// setting; only a path where nothing exists is skipped by `IfPresent`.
#[test]
fn a_fifo_or_directory_input_is_missing_under_every_input_setting() {
    use jobseal_verify::InputPolicy;
    let tmp = tempfile::tempdir().unwrap();
    write_dir(&generate().unwrap(), tmp.path()).unwrap();
    let job = tmp.path().join("permit-direct-from-user-certificate/job");
    let input = job.join("data/in.txt");
    let check = |inputs: InputPolicy| {
        let v = Verifier::new(Config {
            ca_dir: tmp.path().join("ca"),
            inputs,
            ..Config::default()
        })
        .unwrap();
        let inv = Invocation {
            executable: job.join("run.sh"),
            arguments: vec!["--events".into(), "1000".into()],
            job_dir: job.clone(),
        };
        v.check_file(&job.join("../bundle.pem"), &inv, VECTOR_TIME)
            .reason
    };
    std::fs::remove_file(&input).unwrap();
    assert_eq!(check(InputPolicy::IfPresent), None, "absent: skipped");
    let st = Command::new("mkfifo")
        .arg(&input)
        .status()
        .expect("mkfifo (coreutils) is needed");
    assert!(st.success());
    for policy in [InputPolicy::Require, InputPolicy::IfPresent] {
        assert_eq!(check(policy), Some(Reason::PayloadInputMissing));
    }
    std::fs::remove_file(&input).unwrap();
    std::fs::create_dir(&input).unwrap();
    for policy in [InputPolicy::Require, InputPolicy::IfPresent] {
        assert_eq!(check(policy), Some(Reason::PayloadInputMissing));
    }
}
