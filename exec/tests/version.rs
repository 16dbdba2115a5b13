//! `jobseal-exec --version` (spec §14.2): `--version` alone prints the
//! version and the commit and exits 0, reading nothing; with anything after
//! it, or as `-V`, it is an option like any other: 201 `exec.usage`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::Command;

fn exec(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_jobseal-exec"))
        .args(args)
        .env_clear()
        // A configuration that cannot be read: --version must not read it.
        .env("JOBSEAL_EXEC_CONFIG", "/nonexistent/exec.toml")
        .output()
        .unwrap()
}

#[test]
fn version_alone_prints_version_and_commit() {
    let o = exec(&["--version"]);
    assert_eq!(o.status.code(), Some(0));
    let out = String::from_utf8(o.stdout).unwrap();
    let expected = format!("jobseal-exec {} (commit ", env!("CARGO_PKG_VERSION"));
    assert!(out.starts_with(&expected), "{out}");
    assert!(out.ends_with(")\n") && out.lines().count() == 1, "{out}");
    assert!(o.stderr.is_empty());
}

#[test]
fn version_with_arguments_or_short_is_a_usage_error() {
    for args in [&["--version", "./run.sh"][..], &["-V"], &["--version=1"]] {
        let o = exec(args);
        assert_eq!(o.status.code(), Some(201), "{args:?}");
        assert!(o.stdout.is_empty(), "{args:?}");
        let err = String::from_utf8(o.stderr).unwrap();
        assert!(err.starts_with("exec.usage: "), "{args:?}: {err}");
    }
}
