//! `jobseal`: seal a job on a laptop, verify it on a worker node (the
//! command line is in `lib.rs`).
#![forbid(unsafe_code)]

fn main() -> std::process::ExitCode {
    jobseal_cli::main()
}
