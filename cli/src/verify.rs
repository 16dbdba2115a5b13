//! `jobseal verify`.

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use jobseal_verify::namespaces::NamespacePolicy;
use jobseal_verify::revocation::CrlPolicy;
use jobseal_verify::sig::{AlgorithmPolicy, MIN_RSA_BITS};
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
    /// CRLs of the CA directory: checked where a CA publishes one (default),
    /// required for every CA, or ignored.
    #[arg(long, value_enum, default_value_t = CrlArg::IfPublished)]
    crl: CrlArg,
    /// IGTF namespace files: enforced where present (default), required, or ignored.
    #[arg(long, value_enum, default_value_t = NamespacesArg::IfPresent)]
    namespaces: NamespacesArg,
    /// Accept SHA-1 signatures made by legacy CAs (never on proxies).
    #[arg(long)]
    legacy_ca_sha1: bool,
    /// Accept RSA keys of at least this many bits on legacy CAs (1024..2048;
    /// proxies always need 2048).
    #[arg(long, value_name = "BITS", value_parser = clap::value_parser!(u16).range(1024..=2048))]
    legacy_ca_rsa_bits: Option<u16>,
    /// The command about to run: EXECUTABLE [ARGS...] (after `--`).
    #[arg(last = true, required = true, value_name = "EXECUTABLE [ARGS]")]
    command: Vec<OsString>,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
enum CrlArg {
    IfPublished,
    Require,
    Ignore,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
enum NamespacesArg {
    IfPresent,
    Require,
    Ignore,
}

/// Exit code of a deny.
pub const EXIT_DENY: u8 = 1;
/// Exit code of a usage error (clap uses 2 as well).
pub const EXIT_USAGE: u8 = 2;

pub fn env_dir(flag: &Option<PathBuf>, var: &str, default: &str) -> PathBuf {
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
        crl: match args.crl {
            CrlArg::IfPublished => CrlPolicy::RequireIfPublished,
            CrlArg::Require => CrlPolicy::Require,
            CrlArg::Ignore => CrlPolicy::Ignore,
        },
        namespaces: match args.namespaces {
            NamespacesArg::IfPresent => NamespacePolicy::IfPresent,
            NamespacesArg::Require => NamespacePolicy::Require,
            NamespacesArg::Ignore => NamespacePolicy::Ignore,
        },
        algorithms: AlgorithmPolicy {
            allow_sha1_ca_issued: args.legacy_ca_sha1,
            min_rsa_bits_ca_issued: args.legacy_ca_rsa_bits.map_or(MIN_RSA_BITS, usize::from),
        },
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
    finish(&decision, args.json, at, "permit")
}

/// Print a decision as `verify` and `admit` do and give the exit code: on
/// permit one line (or the JSON), on deny exactly one `code: message` line.
pub fn finish(
    decision: &jobseal_verify::Decision,
    json: bool,
    at: UnixTime,
    permit_word: &str,
) -> ExitCode {
    if json {
        println!("{}", crate::json::decision(decision, at));
    }
    if decision.is_permit() {
        if !json {
            let who = decision
                .identity
                .as_ref()
                .map_or("?", |i| i.end_entity.as_str());
            let job = decision.job.as_ref().map_or("?", |j| j.job_id.as_str());
            eprintln!("{permit_word}: job {job} of {}", one_line(who));
        }
        ExitCode::SUCCESS
    } else {
        eprintln!("{}: {}", decision.code(), one_line(&decision.message));
        ExitCode::from(EXIT_DENY)
    }
}

/// The deny line is exactly one line: control characters a hostile bundle
/// could put in a message (a proxy CN, a file name) are escaped.
pub fn one_line(message: &str) -> String {
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
