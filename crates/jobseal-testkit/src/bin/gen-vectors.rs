//! Regenerate `test-vectors/`: `cargo run -p jobseal-testkit --bin gen-vectors -- test-vectors`.
#![forbid(unsafe_code)]
#![allow(clippy::print_stderr)]

use std::path::PathBuf;
use std::process::ExitCode;

fn main() -> ExitCode {
    let Some(dir) = std::env::args_os().nth(1).map(PathBuf::from) else {
        eprintln!("usage: gen-vectors DIR");
        return ExitCode::from(2);
    };
    let fixture = match jobseal_testkit::generate() {
        Ok(f) => f,
        Err(e) => {
            eprintln!("gen-vectors: {e}");
            return ExitCode::FAILURE;
        }
    };
    // Start afresh so that removed vectors disappear; keep the README.
    if let Ok(entries) = std::fs::read_dir(&dir) {
        for e in entries.flatten() {
            let p = e.path();
            let removed = if p.is_dir() {
                std::fs::remove_dir_all(&p)
            } else if e.file_name() != "README.md" {
                std::fs::remove_file(&p)
            } else {
                Ok(())
            };
            if let Err(err) = removed {
                eprintln!("gen-vectors: cannot remove {}: {err}", p.display());
                return ExitCode::FAILURE;
            }
        }
    }
    if let Err(e) = jobseal_testkit::write_dir(&fixture, &dir) {
        eprintln!("gen-vectors: {}: {e}", dir.display());
        return ExitCode::FAILURE;
    }
    eprintln!(
        "gen-vectors: {} vectors written to {}",
        fixture.vectors.len(),
        dir.display()
    );
    ExitCode::SUCCESS
}
