//! A real VOMS server for tests in other languages (the Python wheel's):
//! `voms-test-server DIR` makes the test PKI in DIR (`voms_server.rs`),
//! starts MariaDB and voms in a network namespace of their own, prints
//! `NETNS=/proc/<pid>/ns/net` and waits; when its standard input closes it
//! stops them all. Exit 77 when the server cannot run here (the reason on
//! stderr, as a SKIPPED line; a failure under `JOBSEAL_REQUIRE_PEERS`).
#![forbid(unsafe_code)]
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::io::{Read as _, Write as _};
use std::path::PathBuf;
use std::process::ExitCode;

#[allow(dead_code)]
#[path = "../peers.rs"]
mod peers;
#[allow(dead_code)]
#[path = "../voms_server.rs"]
mod voms_server;

fn main() -> ExitCode {
    let Some(root) = std::env::args_os().nth(1).map(PathBuf::from) else {
        eprintln!("usage: voms-test-server DIR");
        return ExitCode::from(2);
    };
    if !voms_server::available() {
        return ExitCode::from(77);
    }
    let server =
        match voms_server::Pki::new(&root).and_then(|pki| voms_server::VomsServer::start(&pki)) {
            Ok(s) => s,
            Err(e) => {
                eprintln!("voms-test-server: {e}");
                return ExitCode::FAILURE;
            }
        };
    println!("NETNS={}", server.netns().display());
    let _ = std::io::stdout().flush();
    // Until the test is done with it.
    let _ = std::io::stdin().read_to_end(&mut Vec::new());
    drop(server);
    ExitCode::SUCCESS
}
