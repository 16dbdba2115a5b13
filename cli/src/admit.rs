//! `jobseal admit`: check, apply site policy, record the use and write the
//! audit record — what a launcher does once, right before execution.

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use jobseal_admit::audit::RecordContext;
use jobseal_admit::{AdmissionHost, StateDirs};
use jobseal_policy::Policy;
use jobseal_verify::{Config, Invocation, UnixTime};

use crate::verify::{EXIT_DENY, env_dir, one_line};

#[derive(Args, Debug)]
pub struct AdmitArgs {
    /// The bundle (as GLEXEC_CLIENT_CERT would name it).
    bundle: PathBuf,
    /// CA directory [default: $X509_CERT_DIR or /etc/grid-security/certificates].
    #[arg(long, value_name = "DIR")]
    ca_dir: Option<PathBuf>,
    /// VOMS directory [default: $X509_VOMS_DIR or /etc/grid-security/vomsdir].
    #[arg(long, value_name = "DIR")]
    voms_dir: Option<PathBuf>,
    /// Site policy [default: $JOBSEAL_POLICY or /etc/jobseal/policy.toml; built-in defaults if absent].
    #[arg(long, value_name = "FILE")]
    policy: Option<PathBuf>,
    /// State and log directory [default: /var/lib/jobseal and /var/log/jobseal as root,
    /// else $XDG_STATE_HOME/jobseal].
    #[arg(long, value_name = "DIR")]
    state_dir: Option<PathBuf>,
    /// Directory the manifest's inputs are relative to [default: current directory].
    #[arg(long, value_name = "DIR")]
    job_dir: Option<PathBuf>,
    /// Print the decision as JSON on stdout.
    #[arg(long)]
    json: bool,
    /// The command about to run: EXECUTABLE [ARGS...] (after `--`).
    #[arg(last = true, required = true, value_name = "EXECUTABLE [ARGS]")]
    command: Vec<OsString>,
}

fn load_policy(flag: &Option<PathBuf>) -> Result<Policy, jobseal_core::Error> {
    match flag.clone().or_else(|| {
        std::env::var_os("JOBSEAL_POLICY")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    }) {
        Some(path) => Policy::load(&path),
        None => Policy::load_default(),
    }
}

pub fn run(args: &AdmitArgs) -> ExitCode {
    let Some((exe, rest)) = args.command.split_first() else {
        eprintln!("jobseal: give the command to admit after --");
        return ExitCode::from(crate::verify::EXIT_USAGE);
    };
    let invocation = Invocation {
        executable: PathBuf::from(exe),
        arguments: rest.to_vec(),
        job_dir: args.job_dir.clone().unwrap_or_else(|| PathBuf::from(".")),
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
    let context = RecordContext {
        executable: Some(PathBuf::from(exe).display().to_string()),
        arguments: Some(
            rest.iter()
                .map(|a| a.to_string_lossy().into_owned())
                .collect(),
        ),
        environment: std::env::vars_os()
            .map(|(k, _)| k.to_string_lossy().into_owned())
            .collect(),
        ..RecordContext::default()
    };
    // A policy or setup failure is a deny like any other (there is no
    // admission without policy, replay store and audit log), and is recorded
    // where it still can be. An explicit --state-dir wins over the policy's
    // directories.
    let state = match &args.state_dir {
        Some(dir) => StateDirs::named(dir),
        None => StateDirs::process_default(),
    };
    if let Err(e) = state.dirs() {
        eprintln!("{}: {}", e.reason.code(), one_line(&e.message));
        return ExitCode::from(EXIT_DENY);
    }
    let policy = load_policy(&args.policy);
    let decision = match AdmissionHost::new_or_record(config, policy, state, &context) {
        // The verifier's reader: regular files only, without blocking, at
        // most 32 MiB; a refusal is recorded like any deny.
        Ok(host) => host.admit_read(
            || jobseal_verify::read_bundle_file(&args.bundle),
            &invocation,
            &context,
        ),
        Err(deny) => *deny,
    };
    crate::verify::finish(&decision, args.json, UnixTime::now(), "admitted")
}
