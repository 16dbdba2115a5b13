//! `jobseal verify`.

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use jobseal_verify::{Config, Invocation, UnixTime, Verifier};

#[derive(Args, Debug)]
pub struct VerifyArgs {
    /// The bundle (as GLEXEC_CLIENT_CERT would name it).
    bundle: PathBuf,
    /// CA directory [default: $X509_CERT_DIR or /etc/grid-security/certificates].
    #[arg(long, value_name = "DIR")]
    ca_dir: Option<PathBuf>,
    /// VOMS directory [default: $X509_VOMS_DIR or /etc/grid-security/vomsdir].
    #[arg(long, value_name = "DIR")]
    voms_dir: Option<PathBuf>,
    /// Directory the manifest's inputs are relative to [default: current directory].
    #[arg(long, value_name = "DIR")]
    job_dir: Option<PathBuf>,
    /// Verify as of this time (RFC 3339). For checking only: admission never takes it.
    #[arg(long, value_name = "RFC3339-TIME")]
    at: Option<String>,
    /// Print the decision as JSON on stdout.
    #[arg(long)]
    json: bool,
    /// The command about to run: EXECUTABLE [ARGS...] (after `--`).
    #[arg(last = true, required = true, value_name = "EXECUTABLE [ARGS]")]
    command: Vec<OsString>,
}

/// Exit code of a deny.
pub const EXIT_DENY: u8 = 1;
/// Exit code of a usage error (clap uses 2 as well).
pub const EXIT_USAGE: u8 = 2;

fn env_dir(flag: &Option<PathBuf>, var: &str, default: &str) -> PathBuf {
    flag.clone()
        .or_else(|| {
            std::env::var_os(var)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        })
        .unwrap_or_else(|| PathBuf::from(default))
}

pub fn run(args: &VerifyArgs) -> ExitCode {
    let at = match &args.at {
        None => UnixTime::now(),
        Some(s) => match UnixTime::parse_rfc3339(s) {
            Some(t) => t,
            None => {
                eprintln!(
                    "jobseal: --at {s:?} is not an RFC 3339 time such as 2026-11-24T12:00:00Z"
                );
                return ExitCode::from(EXIT_USAGE);
            }
        },
    };
    let Some((exe, rest)) = args.command.split_first() else {
        eprintln!("jobseal: give the command to check after --");
        return ExitCode::from(EXIT_USAGE);
    };
    let config = Config {
        ca_dir: env_dir(
            &args.ca_dir,
            "X509_CERT_DIR",
            jobseal_verify::DEFAULT_CA_DIR,
        ),
        voms_dir: env_dir(
            &args.voms_dir,
            "X509_VOMS_DIR",
            jobseal_verify::DEFAULT_VOMS_DIR,
        ),
        ..Config::default()
    };
    let invocation = Invocation {
        executable: PathBuf::from(exe),
        arguments: rest.to_vec(),
        job_dir: args.job_dir.clone().unwrap_or_else(|| PathBuf::from(".")),
    };
    let decision = match Verifier::new(config) {
        Ok(v) => v.check_file(&args.bundle, &invocation, at),
        Err(e) => jobseal_verify::Decision::from_error(e),
    };
    if args.json {
        println!("{}", crate::json::decision(&decision, at));
    }
    if decision.is_permit() {
        if !args.json {
            let who = decision
                .identity
                .as_ref()
                .map_or("?", |i| i.end_entity.as_str());
            let job = decision.job.as_ref().map_or("?", |j| j.job_id.as_str());
            eprintln!("permit: job {job} of {who}");
        }
        ExitCode::SUCCESS
    } else {
        eprintln!("{}: {}", decision.code(), one_line(&decision.message));
        ExitCode::from(EXIT_DENY)
    }
}

/// The deny line is exactly one line: control characters a hostile bundle
/// could put in a message (a proxy CN, a file name) are escaped.
fn one_line(message: &str) -> String {
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
