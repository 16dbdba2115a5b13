//! `jobseal sign` and `jobseal proxy`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Args;
use jobseal_core::time::{UnixTime, format_duration, parse_duration};
use jobseal_issue::credential::{self, Credential, Environment, Explicit};
use jobseal_issue::job::{DigestCache, seal_with_cache};
use jobseal_issue::{IssueError, JobSpec, SealParams, fsutil};

use crate::CredentialArgs;
use crate::passphrase::prompter;

#[path = "progress.rs"]
mod progress;
use progress::{Progress, Unit};

/// Files of the jobs together at least this large get a bar of bytes
/// hashed (on a terminal); smaller, a bar of jobs sealed when there are
/// several.
const LARGE_INPUT_BYTES: u64 = 64 << 20;

#[derive(Args, Debug)]
pub struct SignArgs {
    /// Job descriptions (TOML).
    #[arg(required = true, value_name = "JOB.toml")]
    jobs: Vec<PathBuf>,
    /// Output bundle (one job).
    #[arg(long, value_name = "FILE", conflicts_with = "out_dir")]
    out: Option<PathBuf>,
    /// Output directory (several jobs): one `<job>.bundle.pem` each.
    #[arg(long, value_name = "DIR")]
    out_dir: Option<PathBuf>,
    #[command(flatten)]
    credential: CredentialArgs,
}

#[derive(Args, Debug)]
pub struct ProxyArgs {
    /// Where to write the proxy (mode 0600).
    #[arg(long, value_name = "FILE")]
    out: PathBuf,
    /// Validity, e.g. `12h` or `2d`.
    #[arg(long, default_value = "12h")]
    valid: String,
    /// Limit further delegation (pCPathLenConstraint).
    #[arg(long, value_name = "N")]
    path_length: Option<u32>,
    #[command(flatten)]
    credential: CredentialArgs,
}

fn fail(e: impl std::fmt::Display) -> ExitCode {
    eprintln!("jobseal: {e}");
    ExitCode::FAILURE
}

fn load_credential(args: &CredentialArgs) -> Result<Credential, IssueError> {
    let explicit = Explicit {
        proxy: args.proxy.clone(),
        cert: args.cert.clone(),
        key: args.key.clone(),
    };
    let source = credential::find_source(&explicit, &Environment::from_process())?;
    let mut prompt = prompter(args.pwstdin);
    Credential::load(source, &mut prompt)
}

pub fn run_sign(args: &SignArgs) -> ExitCode {
    match sign(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(e),
    }
}

fn output_for(args: &SignArgs, job: &Path) -> Result<PathBuf, IssueError> {
    match (&args.out, &args.out_dir, args.jobs.len()) {
        (Some(out), None, 1) => Ok(out.clone()),
        (Some(_), _, _) => Err(IssueError::Job(
            "with several jobs, use --out-dir DIR".into(),
        )),
        (None, Some(dir), _) => {
            let stem = job.file_stem().and_then(|s| s.to_str()).unwrap_or("job");
            Ok(dir.join(format!("{stem}.bundle.pem")))
        }
        (None, None, _) => Err(IssueError::Job(
            "say where to write: --out FILE (one job) or --out-dir DIR".into(),
        )),
    }
}

fn sign(args: &SignArgs) -> Result<(), IssueError> {
    // Read every job first: a typo in job 900 should not waste a passphrase prompt.
    let mut jobs = Vec::with_capacity(args.jobs.len());
    for path in &args.jobs {
        jobs.push((JobSpec::from_toml_file(path)?, output_for(args, path)?));
    }
    if let Some(dir) = &args.out_dir {
        std::fs::create_dir_all(dir).map_err(|e| IssueError::io(dir, e))?;
    }
    let cred = load_credential(&args.credential)?;
    let now = UnixTime::now();
    let issuer = credential::check_issuer(&cred, now)?;
    refuse_what_sites_refuse(&cred, now)?;
    // Jobs are independent: seal and write them on every core, then report
    // in the order given. The passphrase was asked once, above.
    let bar = progress_for(&jobs);
    let results = seal_all(&cred, &issuer, &jobs, now, bar.as_ref());
    if let Some(bar) = &bar {
        bar.finish();
    }
    // Each bundle was synced before it was renamed into place; the renames
    // are made durable here, once per output directory, before any bundle
    // is reported written (as `write_atomic` does after each file).
    if results.iter().any(Result::is_ok) {
        let mut outs: Vec<&Path> = jobs.iter().map(|(_, out)| out.as_path()).collect();
        outs.sort_by_key(|out| out.parent());
        outs.dedup_by_key(|out| out.parent());
        for out in outs {
            fsutil::sync_dir_of(out);
        }
    }
    // One write to standard error (unbuffered) for all the jobs' lines.
    let mut report = String::new();
    let mut first_error = None;
    for r in results {
        match r {
            Ok(lines) => report.push_str(&lines),
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    eprint!("{report}");
    first_error.map_or(Ok(()), Err)
}

/// Run the verifier's path checks over the credential's chain, as far as
/// the chain alone shows them (`spec/jobseal.md` §6.3; no CA directory on
/// the user's side), with the most lenient legacy settings a site may
/// choose: what this refuses, every site refuses, so nothing is signed
/// that can only fail a day later on a worker node.
fn refuse_what_sites_refuse(cred: &Credential, now: UnixTime) -> Result<(), IssueError> {
    use jobseal_verify::parse::ParsedCert;
    use jobseal_verify::path::{self, PathOptions};
    use jobseal_verify::sig::AlgorithmPolicy;
    let refused = |e: jobseal_verify::Error| {
        IssueError::Credential(format!(
            "{}: every site would refuse jobs sealed under this credential ({}: {}); make a new proxy (voms-proxy-init -rfc) or ask your CA",
            cred.source,
            e.reason.code(),
            e.message
        ))
    };
    let chain = cred
        .chain
        .iter()
        .enumerate()
        .map(|(i, der)| ParsedCert::from_der(der.clone(), i + 1))
        .collect::<Result<Vec<_>, _>>()
        .map_err(refused)?;
    let opts = PathOptions {
        at: now,
        clock_skew: jobseal_verify::DEFAULT_CLOCK_SKEW,
        algorithms: AlgorithmPolicy {
            min_rsa_bits_ca_issued: 1024,
            allow_sha1_ca_issued: true,
        },
    };
    path::check_without_anchor(&chain, &opts)
        .map(|_| ())
        .map_err(refused)
}

/// A progress bar for sealing `jobs`, when standard error is a terminal:
/// of bytes hashed when their files are large, else of jobs when there
/// are several.
fn progress_for(jobs: &[(JobSpec, PathBuf)]) -> Option<Progress> {
    if !progress::stderr_is_terminal() {
        return None;
    }
    let bytes: u64 = jobs
        .iter()
        .flat_map(|(job, _)| {
            std::iter::once(&job.executable).chain(job.inputs.iter().map(|(_, path)| path))
        })
        .filter_map(|path| std::fs::metadata(path).ok())
        .map(|m| m.len())
        .sum();
    if bytes >= LARGE_INPUT_BYTES {
        Progress::on_terminal("hashing", Unit::Bytes, bytes)
    } else if jobs.len() > 1 {
        Progress::on_terminal("sealing", Unit::Jobs, jobs.len() as u64)
    } else {
        None
    }
}

/// What every job of a `sign` run shares.
struct Task<'a> {
    cred: &'a Credential,
    issuer: &'a credential::IssuerCheck,
    now: UnixTime,
    bar: Option<&'a Progress>,
    /// The working directory, to write through absolute paths.
    cwd: Option<PathBuf>,
    /// Files the jobs share (an executable, common inputs) are hashed once.
    digests: DigestCache,
}

/// Seal and write one job; what to print about it.
fn seal_one(task: &Task<'_>, job: &JobSpec, out: &Path) -> Result<String, IssueError> {
    let Task {
        cred,
        issuer,
        now,
        bar,
        ref cwd,
        ref digests,
    } = *task;
    let hashed = |n: u64| {
        if let Some(bar) = bar.filter(|b| b.unit() == Unit::Bytes) {
            bar.add(n);
        }
    };
    let sealed = seal_with_cache(
        cred,
        issuer,
        job,
        &SealParams::random(now)?,
        &hashed,
        digests,
    )?;
    // The directory is synced once for all jobs, by `sign`. An absolute
    // path spares the temporary file a `getcwd` per job (slow while other
    // threads rename files in the same directory).
    let target = match cwd {
        Some(cwd) if out.is_relative() => cwd.join(out),
        _ => out.to_path_buf(),
    };
    fsutil::write_atomic_deferred(&target, sealed.bundle.to_pem().as_bytes(), 0o644).map_err(
        |e| match e {
            // Errors name the file, or its directory, as given.
            IssueError::Io { path, source } if path == target => IssueError::io(out, source),
            IssueError::Io { path, source } if Some(path.as_path()) == target.parent() => {
                let dir = match out.parent() {
                    Some(d) if !d.as_os_str().is_empty() => d,
                    _ => Path::new("."),
                };
                IssueError::io(dir, source)
            }
            other => other,
        },
    )?;
    if let Some(bar) = bar.filter(|b| b.unit() == Unit::Jobs) {
        bar.add(1);
    }
    let m = &sealed.manifest;
    let mut lines = format!(
        "sealed job {} ({} {} argument(s), {} input(s)) for {} -> {} (valid {})\n",
        m.job_id_hex(),
        m.executable.name,
        m.arguments.len(),
        m.inputs.len(),
        issuer.end_entity,
        out.display(),
        format_duration(m.not_after.saturating_sub(now.0)),
    );
    if let Some(note) = &sealed.capped {
        lines.push_str(&format!("jobseal: note: {note}\n"));
    }
    Ok(lines)
}

/// Seal every job on up to two threads per core, taking jobs in order; after
/// a failure no new job is started. One result per job started, in job
/// order (jobs never started after a failure have none).
fn seal_all(
    cred: &Credential,
    issuer: &credential::IssuerCheck,
    jobs: &[(JobSpec, PathBuf)],
    now: UnixTime,
    bar: Option<&Progress>,
) -> Vec<Result<String, IssueError>> {
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    // Two threads per core: while one waits for its bundle's fsync,
    // another signs.
    let threads = std::thread::available_parallelism()
        .map_or(1, usize::from)
        .saturating_mul(2)
        .min(jobs.len())
        .max(1);
    let next = AtomicUsize::new(0);
    let failed = AtomicBool::new(false);
    let task = Task {
        cred,
        issuer,
        now,
        bar,
        cwd: std::env::current_dir().ok(),
        digests: DigestCache::new(),
    };
    let work = || {
        let mut done = Vec::new();
        while !failed.load(Ordering::Relaxed) {
            let i = next.fetch_add(1, Ordering::Relaxed);
            let Some((job, out)) = jobs.get(i) else { break };
            let r = seal_one(&task, job, out);
            if r.is_err() {
                failed.store(true, Ordering::Relaxed);
            }
            done.push((i, r));
        }
        done
    };
    let mut all: Vec<(usize, Result<String, IssueError>)> = if threads == 1 {
        work()
    } else {
        std::thread::scope(|s| {
            let handles: Vec<_> = (0..threads).map(|_| s.spawn(work)).collect();
            handles
                .into_iter()
                .flat_map(|h| {
                    h.join().unwrap_or_else(|_| {
                        vec![(
                            usize::MAX,
                            Err(IssueError::Internal("a signing thread panicked".into())),
                        )]
                    })
                })
                .collect()
        })
    };
    all.sort_by_key(|(i, _)| *i);
    all.into_iter().map(|(_, r)| r).collect()
}

pub fn run_proxy(args: &ProxyArgs) -> ExitCode {
    match proxy(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(e),
    }
}

fn proxy(args: &ProxyArgs) -> Result<(), IssueError> {
    let valid = parse_duration(&args.valid)
        .filter(|v| *v > 0)
        .ok_or_else(|| {
            IssueError::Job(format!(
                "--valid {:?} is not a duration such as 12h or 2d",
                args.valid
            ))
        })?;
    let cred = load_credential(&args.credential)?;
    let now = UnixTime::now();
    let issuer = credential::check_issuer(&cred, now)?;
    refuse_what_sites_refuse(&cred, now)?;
    let mut not_after = now.plus(valid);
    if not_after > issuer.expires {
        eprintln!(
            "jobseal: note: validity capped to {} because {} then",
            issuer.expires.to_rfc3339(),
            issuer.expires_because
        );
        not_after = issuer.expires;
    }
    let proxy = jobseal_issue::plain::issue_plain_proxy(
        &cred,
        now.minus(300),
        not_after,
        args.path_length,
    )?;
    fsutil::write_atomic(&args.out, proxy.pem.as_bytes(), 0o600)?;
    eprintln!(
        "proxy for {} written to {} (valid until {})",
        issuer.end_entity,
        args.out.display(),
        not_after.to_rfc3339()
    );
    Ok(())
}
