//! `jobseal`: seal a job on a laptop, verify it on a worker node.
//!
//! The command line lives in this library so that the packaging generator
//! (`crates/jobseal-dist`: man pages, shell completions) reads the same clap
//! definitions as the binary (`src/main.rs`).
#![forbid(unsafe_code)]
// A command-line tool prints by design.
#![allow(clippy::print_stdout, clippy::print_stderr)]

mod admit;
mod audit;
mod demo;
mod inspect;
mod json;
mod passphrase;
mod sign;
mod verify;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, CommandFactory, Parser, Subcommand};

/// `jobseal --version`: the version and the git commit it was built from
/// (build.rs; `unknown` outside a git tree).
pub const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (commit ",
    env!("JOBSEAL_BUILD_COMMIT"),
    ")"
);

/// Restricted delegation for grid jobs: job-bound proxies and signed job manifests.
#[derive(Parser, Debug)]
#[command(name = "jobseal", version = VERSION, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the whole flow on a throwaway PKI: make a CA and a user, seal a job,
    /// verify it, and show tampered jobs being denied.
    Demo(demo::DemoArgs),
    /// Seal jobs: hash, sign the manifest, issue the job-bound proxy, write the bundle.
    #[command(
        after_help = "voms-proxy-init's spellings work too: -pwstdin, -valid 12:00, -hours 12, -cert, -key, -proxy, -out, -voms, -vomses, -vomsdir, -certdir.\n\
                      Every job is checked before any is signed; nothing is written unless all can be sealed (or --keep-going)."
    )]
    Sign(sign::SignArgs),
    /// Make a plain RFC 3820 proxy (like `grid-proxy-init -rfc`), from your
    /// certificate (from a proxy only with --proxy).
    #[command(
        after_help = "voms-proxy-init's spellings work too: -pwstdin, -valid 12:00, -hours 12, -cert, -key, -proxy, -out, -path-length."
    )]
    Proxy(sign::ProxyArgs),
    /// Show what a proxy, certificate or bundle holds (like `voms-proxy-info -all`).
    #[command(
        after_help = "voms-proxy-info's spellings work too: -file, -timeleft, -exists [-valid H:M | -hours H], -all.\n\
                      Exit status: 1 if the credential has expired (with -exists: or is not valid that long, or is missing)."
    )]
    Inspect(inspect::InspectArgs),
    /// Check a bundle against the command about to run (no side effects).
    /// Exit 0: permit; 1: deny; 2: usage error.
    Verify(verify::VerifyArgs),
    /// Admit a job right before it runs: check, site policy, replay record,
    /// audit record. Exit 0: admitted; 1: denied; 2: usage error.
    Admit(admit::AdmitArgs),
    /// Read and check the tamper-evident audit log.
    Audit(audit::AuditArgs),
}

/// Where the user's credential comes from.
#[derive(Args, Debug, Default, Clone)]
pub struct CredentialArgs {
    /// A proxy file (certificate, key, chain), e.g. from voms-proxy-init.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["cert", "key"])]
    proxy: Option<PathBuf>,
    /// The user certificate (PEM), or a .p12 file.
    #[arg(long, value_name = "FILE")]
    cert: Option<PathBuf>,
    /// The user key (PEM: PKCS#1, PKCS#8, encrypted or not).
    #[arg(long, value_name = "FILE")]
    key: Option<PathBuf>,
    /// Read the passphrase from the first line of standard input.
    #[arg(long)]
    pwstdin: bool,
}

/// The clap definition of the whole command line (for man pages and
/// completions).
pub fn command() -> clap::Command {
    Cli::command()
}

/// voms-proxy-init's and voms-proxy-info's single-dash options that
/// `jobseal` takes too, by subcommand. None is a clap short option (those
/// are single letters), so `-valid` cannot mean anything else.
const SINGLE_DASH: &[(&str, &[&str])] = &[
    (
        "sign",
        &[
            "pwstdin", "valid", "hours", "cert", "key", "proxy", "out", "voms", "vomses",
            "vomsdir", "certdir",
        ],
    ),
    (
        "proxy",
        &[
            "pwstdin",
            "valid",
            "hours",
            "cert",
            "key",
            "proxy",
            "out",
            "path-length",
        ],
    ),
    (
        "inspect",
        &[
            "timeleft", "exists", "valid", "hours", "file", "all", "json",
        ],
    ),
];

/// The command line as clap reads it: `-valid 12:00` becomes `--valid
/// 12:00` where the subcommand knows `--valid` (never after `--`, which
/// starts the payload's own arguments), and `jobseal help --help` is
/// `jobseal help` (clap's help subcommand has no help of its own).
pub fn normalize_args(args: Vec<std::ffi::OsString>) -> Vec<std::ffi::OsString> {
    let sub = args
        .get(1)
        .and_then(|a| a.to_str())
        .unwrap_or_default()
        .to_owned();
    if sub == "help" {
        return args
            .into_iter()
            .filter(|a| a != "--help" && a != "-h")
            .collect();
    }
    let known = SINGLE_DASH
        .iter()
        .find(|(name, _)| *name == sub)
        .map_or(&[][..], |(_, words)| *words);
    let mut payload = false;
    args.into_iter()
        .map(|a| {
            payload |= a == "--";
            let word = a.to_str().and_then(|t| t.strip_prefix('-'));
            match word {
                Some(w) if !payload && known.contains(&w) => format!("--{w}").into(),
                _ => a,
            }
        })
        .collect()
}

/// Parses the command line and runs the command: `jobseal`'s `main`.
pub fn main() -> ExitCode {
    let cli = Cli::parse_from(normalize_args(std::env::args_os().collect()));
    match cli.command {
        Command::Demo(a) => demo::run(&a),
        Command::Sign(a) => sign::run_sign(&a),
        Command::Proxy(a) => sign::run_proxy(&a),
        Command::Inspect(a) => inspect::run(&a),
        Command::Verify(a) => verify::run(&a),
        Command::Admit(a) => admit::run(&a),
        Command::Audit(a) => audit::run(&a),
    }
}
