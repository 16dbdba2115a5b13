//! Embeds the git commit this crate is built from as `JOBSEAL_BUILD_COMMIT`
//! (shown by `--version`): `$JOBSEAL_COMMIT` when set (scripts/dist sets
//! it), else `git rev-parse HEAD`, else `unknown` (a source tree without
//! git). One file, the build script of cli/, exec/, jobseal-ffi and
//! jobseal-python (`build = …` in each Cargo.toml).
#![allow(clippy::print_stdout)]

use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    if !out.status.success() {
        return None;
    }
    let s = String::from_utf8(out.stdout).ok()?.trim().to_string();
    (!s.is_empty()).then_some(s)
}

fn main() {
    println!("cargo:rerun-if-changed={}", file!());
    println!("cargo:rerun-if-env-changed=JOBSEAL_COMMIT");
    let given = std::env::var("JOBSEAL_COMMIT").unwrap_or_default();
    let commit = if given.trim().is_empty() {
        // Run again when HEAD moves: HEAD itself, the branch it names, and
        // the packed refs (only files that exist: a missing one would make
        // cargo run this script on every build).
        let mut watched = vec!["HEAD".to_string(), "packed-refs".to_string()];
        watched.extend(git(&["symbolic-ref", "-q", "HEAD"]));
        for name in &watched {
            if let Some(path) = git(&["rev-parse", "--path-format=absolute", "--git-path", name])
                && std::path::Path::new(&path).exists()
            {
                println!("cargo:rerun-if-changed={path}");
            }
        }
        git(&["rev-parse", "HEAD"]).unwrap_or_else(|| "unknown".to_string())
    } else {
        given.trim().to_string()
    };
    println!("cargo:rustc-env=JOBSEAL_BUILD_COMMIT={commit}");
}
