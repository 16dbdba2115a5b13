//! `jobseal sign` and `jobseal proxy`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Args;
use jobseal_core::time::{UnixTime, format_duration};
use jobseal_issue::credential::{self, Credential, Environment, Explicit};
use jobseal_issue::job::{DigestCache, seal_with_cache};
use jobseal_issue::preflight::{self, Problem, Severity};
use jobseal_issue::{IssueError, JobSpec, SealParams, fsutil};

use crate::CredentialArgs;
use crate::passphrase::prompter;

#[path = "progress.rs"]
mod progress;
#[path = "site_checks.rs"]
mod site_checks;
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
    /// Validity of every job, overriding the job files' `valid`: `HH:MM`
    /// (as voms-proxy-init -valid) or a duration such as `12h`, `2d`.
    #[arg(long, value_name = "HH:MM|DURATION", conflicts_with = "hours")]
    valid: Option<String>,
    /// Validity of every job in hours (as voms-proxy-init -hours).
    #[arg(long, value_name = "H")]
    hours: Option<u64>,
    /// Seal the jobs that can be sealed when others cannot (by default
    /// nothing is written unless every job can be sealed).
    #[arg(long)]
    keep_going: bool,
    /// Seal even what sites are certain to fail or refuse by default: an
    /// executable without an execute bit (exit 126 at the site), a chain
    /// only sites accepting legacy CAs accept. (A VO the credential's VOMS
    /// attributes do not carry is sealed with a warning.)
    #[arg(long)]
    force: bool,
    #[command(flatten)]
    credential: CredentialArgs,
    #[command(flatten)]
    voms: VomsArgs,
}

/// VOMS attributes fetched for the jobs, as voms-proxy-init fetches them,
/// but into the job-bound proxies themselves.
#[derive(Args, Debug, Default)]
pub struct VomsArgs {
    /// Fetch VOMS attributes from the VO's VOMS server with your certificate
    /// and key (not a proxy) and put them in every job-bound proxy:
    /// VO, VO:/VO/group, VO:/VO/group/Role=role or VO:/VO/Role=role.
    #[arg(long, value_name = "VO[:FQAN]")]
    voms: Option<String>,
    /// vomses file or directory naming the VO's servers [default:
    /// $VOMS_USERCONF, ~/.voms/vomses, ~/.glite/vomses, /etc/vomses].
    #[arg(long, value_name = "FILE", requires = "voms")]
    vomses: Vec<PathBuf>,
    /// Directory of the VOs' LSC files [default: $X509_VOMS_DIR or
    /// /etc/grid-security/vomsdir].
    #[arg(long, value_name = "DIR", requires = "voms")]
    vomsdir: Option<PathBuf>,
    /// CA directory that must trust the VOMS server [default:
    /// $X509_CERT_DIR or /etc/grid-security/certificates].
    #[arg(long, value_name = "DIR", requires = "voms")]
    certdir: Option<PathBuf>,
    /// Seconds one VOMS server may take to answer, connection included
    /// (the next server of the VO is tried after).
    #[arg(long, value_name = "SECONDS", default_value_t = 60, requires = "voms",
          value_parser = clap::value_parser!(u64).range(1..=3600))]
    voms_timeout: u64,
}

#[derive(Args, Debug)]
pub struct ProxyArgs {
    /// Where to write the proxy (mode 0600); default `$X509_USER_PROXY`,
    /// else `/tmp/x509up_u<uid>`, as grid-proxy-init.
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
    /// Validity: `HH:MM` (as voms-proxy-init -valid) or a duration such as
    /// `12h` or `2d`.
    #[arg(long, default_value = "12h", conflicts_with = "hours")]
    valid: String,
    /// Validity in hours (as voms-proxy-init -hours).
    #[arg(long, value_name = "H")]
    hours: Option<u64>,
    /// Limit further delegation (pCPathLenConstraint).
    #[arg(long, value_name = "N")]
    path_length: Option<u32>,
    #[command(flatten)]
    credential: CredentialArgs,
}

fn fail(e: impl std::fmt::Display) -> ExitCode {
    // A batch's problems come one per line: each gets the prefix.
    for line in e.to_string().lines() {
        eprintln!("jobseal: {line}");
    }
    ExitCode::FAILURE
}

pub use jobseal_issue::job::parse_validity;

/// The validity asked on the command line, if any.
fn validity_flag(valid: Option<&str>, hours: Option<u64>) -> Result<Option<u64>, IssueError> {
    match (valid, hours) {
        (_, Some(h)) => h
            .checked_mul(3600)
            .filter(|s| *s > 0)
            .map(Some)
            .ok_or_else(|| {
                IssueError::Job(format!("--hours {h} is not a number of hours above 0"))
            }),
        (Some(v), None) => parse_validity(v).map(Some).ok_or_else(|| {
            IssueError::Job(format!(
                "--valid {v:?} is not a validity such as 12:00 (HH:MM), 12h or 2d"
            ))
        }),
        (None, None) => Ok(None),
    }
}

/// Which credentials a command may use: `sign` takes the proxy the user
/// made (as every grid tool does); `proxy` makes one from the end-entity
/// credential unless named `--proxy`, as grid-proxy-init does.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Search {
    ProxiesFirst,
    EndEntityOnly,
}

fn load_credential(args: &CredentialArgs, search: Search) -> Result<Credential, IssueError> {
    let explicit = Explicit {
        proxy: args.proxy.clone(),
        cert: args.cert.clone(),
        key: args.key.clone(),
    };
    let mut env = Environment::from_process();
    if search == Search::EndEntityOnly {
        env.x509_user_proxy = None;
        env.uid = None;
    }
    let source = credential::find_source(&explicit, &env)?;
    let mut prompt = prompter(args.pwstdin);
    Credential::load(source, &mut prompt)
}

/// Say which credential signs, as voms-proxy-init prints the identity.
fn announce(cred: &Credential, issuer: &credential::IssuerCheck) {
    let vos: Vec<&str> = issuer.voms.iter().map(|ac| ac.vo.as_str()).collect();
    let voms = if vos.is_empty() {
        String::new()
    } else {
        format!(", VOMS attributes of {}", vos.join(", "))
    };
    eprintln!(
        "jobseal: signing as {} with {}{voms}",
        issuer.end_entity, cred.source
    );
}

pub fn run_sign(args: &SignArgs) -> ExitCode {
    match sign(args) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
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

/// One job of the batch: what to seal and where, and what stops it.
struct Planned {
    file: PathBuf,
    job: Option<JobSpec>,
    out: PathBuf,
    problems: Vec<Problem>,
}

impl Planned {
    /// Whether the job is sealed: read, and nothing blocks it (warnings do
    /// not; refusals do unless `force`).
    fn sealable(&self, force: bool) -> bool {
        self.job.is_some() && self.problems.iter().all(|p| !p.blocks(force))
    }
}

/// Read every job file and check every file it names; nothing is asked or
/// signed yet.
fn plan(args: &SignArgs, valid: Option<u64>) -> Result<Vec<Planned>, IssueError> {
    let mut plans = Vec::with_capacity(args.jobs.len());
    for file in &args.jobs {
        let out = output_for(args, file)?;
        let mut problems = Vec::new();
        let job = match JobSpec::from_toml_file(file) {
            Ok(mut job) => {
                if let Some(v) = valid {
                    job.valid = v;
                }
                problems.extend(preflight::file_problems(&job));
                Some(job)
            }
            Err(e) => {
                problems.push(Problem::error(e.to_string()));
                None
            }
        };
        if out.is_dir() {
            problems.push(Problem::error(format!(
                "{}: the bundle {} cannot be written: it is a directory",
                file.display(),
                out.display()
            )));
        }
        plans.push(Planned {
            file: file.clone(),
            job,
            out,
            problems,
        });
    }
    Ok(plans)
}

fn print_problem(p: &Problem, force: bool) {
    let kind = match (p.severity, p.blocks(force)) {
        (_, false) => "warning",
        (Severity::Refusal, true) => "refused (--force seals it anyway)",
        _ => "error",
    };
    eprintln!("jobseal: {kind}: {}", p.message);
}

/// A blocking problem as the one-job error: a refusal says how to
/// override it.
fn as_error(p: &Problem) -> Problem {
    let mut p = p.clone();
    if p.severity == Severity::Refusal {
        p.message.push_str(" (--force seals it anyway)");
    }
    p
}

/// Print the problems of every job (blocking ones as errors, the others as
/// warnings); the number of jobs blocked. A single job's blocking problems
/// are its error instead ([`nothing_written`]).
fn report_problems(plans: &[Planned], force: bool) -> usize {
    let single = plans.len() == 1;
    for p in plans.iter().flat_map(|p| &p.problems) {
        if !single || !p.blocks(force) {
            print_problem(p, force);
        }
    }
    plans.iter().filter(|p| !p.sealable(force)).count()
}

/// The batch refused as a whole: nothing written.
fn nothing_written(plans: &[Planned], blocked: usize, force: bool) -> IssueError {
    if let [single] = plans {
        let blocking: Vec<Problem> = single
            .problems
            .iter()
            .filter(|p| p.blocks(force))
            .map(as_error)
            .collect();
        return preflight::combined(&blocking);
    }
    let n = plans.len();
    let advice = if blocked < n {
        format!(", or seal the other {} with --keep-going", n - blocked)
    } else {
        String::new()
    };
    IssueError::Job(format!(
        "nothing sealed: {blocked} of {n} job(s) cannot be sealed (listed above); fix them{advice}"
    ))
}

/// Seal the jobs of `args`; `Ok(false)` when some were left out
/// (`--keep-going`).
fn sign(args: &SignArgs) -> Result<bool, IssueError> {
    let valid = validity_flag(args.valid.as_deref(), args.hours)?;
    // Every job is read and its files checked first: a typo in job 900 or
    // a missing input of job 25 should not waste a passphrase prompt, nor
    // leave half a batch written.
    let mut plans = plan(args, valid)?;
    let blocked = report_problems(&plans, args.force);
    if blocked > 0 && !args.keep_going {
        return Err(nothing_written(&plans, blocked, args.force));
    }
    if blocked == plans.len() {
        return Err(IssueError::Job("no job can be sealed".into()));
    }
    if let Some(dir) = &args.out_dir {
        std::fs::create_dir_all(dir).map_err(|e| IssueError::io(dir, e))?;
    }
    let cred = match &args.voms.voms {
        // The AC's holder is the user's certificate, which then issues the
        // job-bound proxies itself: no proxy is looked for.
        Some(spec) => with_voms(
            load_credential(&args.credential, Search::EndEntityOnly)?,
            spec,
            &args.voms,
            &plans,
        )?,
        None => load_credential(&args.credential, Search::ProxiesFirst)?,
    };
    let now = UnixTime::now();
    let issuer = credential::check_issuer(&cred, now)?;
    if let Some(warning) = site_checks::refuse_what_sites_refuse(&cred, now, args.force)? {
        eprintln!("jobseal: warning: {warning}");
    }
    announce(&cred, &issuer);
    let blocked = check_vos(&mut plans, &issuer, args.force);
    if blocked > 0 && !args.keep_going {
        return Err(nothing_written(&plans, blocked, args.force));
    }
    let chosen: Vec<(JobSpec, PathBuf)> = plans
        .iter()
        .filter(|p| p.sealable(args.force))
        .filter_map(|p| Some((p.job.clone()?, p.out.clone())))
        .collect();
    let outcome = seal_and_write(&cred, &issuer, &chosen, now, args.keep_going)?;
    summarize(&plans, &chosen, &outcome, args);
    Ok(outcome.iter().all(Result::is_ok) && chosen.len() == plans.len())
}

/// The credential with the VOMS attributes `spec` asks for, from the VO's
/// server: asked once for the whole batch, for the longest validity a job
/// asks. Any failure stops the batch: never sealed without them.
fn with_voms(
    cred: Credential,
    spec: &str,
    args: &VomsArgs,
    plans: &[Planned],
) -> Result<Credential, IssueError> {
    let fail = |e: jobseal_voms::VomsError| IssueError::Credential(e.to_string());
    let request = jobseal_voms::Request::parse(spec).map_err(fail)?;
    let lifetime = plans
        .iter()
        .filter_map(|p| p.job.as_ref().map(|j| j.valid))
        .max()
        .unwrap_or(24 * 3600);
    let mut opts = jobseal_voms::Options::from_env(lifetime);
    opts.vomses.clone_from(&args.vomses);
    if let Some(dir) = &args.vomsdir {
        opts.vomsdir.clone_from(dir);
    }
    if let Some(dir) = &args.certdir {
        opts.ca_dir.clone_from(dir);
    }
    opts.timeout = std::time::Duration::from_secs(args.voms_timeout);
    let wanted = request
        .fqan
        .as_deref()
        .unwrap_or("your attributes in the VO");
    eprintln!(
        "jobseal: asking the VOMS server of {} for {wanted}",
        request.name
    );
    let attrs = jobseal_voms::fetch(&cred, &request, &opts).map_err(fail)?;
    eprintln!(
        "jobseal: VOMS attributes from {} ({}): {}, valid until {}",
        attrs.server,
        attrs.issuer,
        attrs.fqans.join(", "),
        attrs.not_after.to_rfc3339()
    );
    cred.with_voms_ac(attrs.der)
}

/// What the credential decides, once it is loaded: the VO each job claims
/// (a warning when its VOMS attributes do not carry it). The number of
/// jobs blocked.
fn check_vos(plans: &mut [Planned], issuer: &credential::IssuerCheck, force: bool) -> usize {
    let batch = plans.len() > 1;
    for plan in plans.iter_mut().filter(|p| p.sealable(force)) {
        if let Some(p) = plan
            .job
            .as_ref()
            .and_then(|j| preflight::vo_problem(j, issuer))
        {
            if batch || !p.blocks(force) {
                print_problem(&p, force);
            }
            plan.problems.push(p);
        }
    }
    plans.iter().filter(|p| !p.sealable(force)).count()
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
    /// Files the jobs share (an executable, common inputs) are hashed once.
    digests: DigestCache,
}

/// A job sealed in memory: its bundle and what to print once written.
struct SealedJob {
    pem: String,
    lines: String,
}

/// Seal one job in memory (nothing written).
fn seal_one(task: &Task<'_>, job: &JobSpec, out: &Path) -> Result<SealedJob, IssueError> {
    let hashed = |n: u64| {
        if let Some(bar) = task.bar.filter(|b| b.unit() == Unit::Bytes) {
            bar.add(n);
        }
    };
    let sealed = seal_with_cache(
        task.cred,
        task.issuer,
        job,
        &SealParams::random(task.now)?,
        &hashed,
        &task.digests,
    )?;
    if let Some(bar) = task.bar.filter(|b| b.unit() == Unit::Jobs) {
        bar.add(1);
    }
    let m = &sealed.manifest;
    let mut lines = format!(
        "sealed job {} ({} {} argument(s), {} input(s)) for {} -> {} (valid {})\n",
        m.job_id_hex(),
        m.executable.name,
        m.arguments.len(),
        m.inputs.len(),
        task.issuer.end_entity,
        out.display(),
        format_duration(m.not_after.saturating_sub(task.now.0)),
    );
    if let Some(note) = &sealed.capped {
        lines.push_str(&format!("jobseal: note: {note}\n"));
    }
    Ok(SealedJob {
        pem: sealed.bundle.to_pem(),
        lines,
    })
}

/// Write one sealed bundle; the directory is synced once for all jobs, by
/// [`seal_and_write`].
fn write_one(cwd: Option<&Path>, out: &Path, pem: &str) -> Result<(), IssueError> {
    // An absolute path spares the temporary file a `getcwd` per job (slow
    // while other threads rename files in the same directory).
    let target = match cwd {
        Some(cwd) if out.is_relative() => cwd.join(out),
        _ => out.to_path_buf(),
    };
    fsutil::write_atomic_deferred(&target, pem.as_bytes(), 0o644).map_err(|e| match e {
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
    })
}

/// `f` over every item on up to two threads per core (while one waits for
/// its bundle's fsync, another signs); one result per item, in order.
fn parallel<T: Sync, R: Send>(
    items: &[T],
    f: impl Fn(&T) -> Result<R, IssueError> + Sync,
) -> Vec<Result<R, IssueError>> {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let threads = std::thread::available_parallelism()
        .map_or(1, usize::from)
        .saturating_mul(2)
        .min(items.len())
        .max(1);
    let next = AtomicUsize::new(0);
    let work = || {
        let mut done = Vec::new();
        loop {
            let i = next.fetch_add(1, Ordering::Relaxed);
            let Some(item) = items.get(i) else { break };
            done.push((i, f(item)));
        }
        done
    };
    let mut slots: Vec<Option<Result<R, IssueError>>> = items.iter().map(|_| None).collect();
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads).map(|_| s.spawn(work)).collect();
        for (i, r) in handles
            .into_iter()
            .flat_map(|h| h.join().unwrap_or_default())
        {
            if let Some(slot) = slots.get_mut(i) {
                *slot = Some(r);
            }
        }
    });
    // A job whose thread panicked has no result: an error, never a success.
    slots
        .into_iter()
        .map(|r| r.unwrap_or_else(|| Err(IssueError::Internal("a signing thread panicked".into()))))
        .collect()
}

/// Seal every job in memory, then (unless one failed and `keep_going` is
/// off: then nothing is written) write them all. One result per job: the
/// lines to print, or why it was not sealed.
fn seal_and_write(
    cred: &Credential,
    issuer: &credential::IssuerCheck,
    jobs: &[(JobSpec, PathBuf)],
    now: UnixTime,
    keep_going: bool,
) -> Result<Vec<Result<String, IssueError>>, IssueError> {
    let bar = progress_for(jobs);
    let task = Task {
        cred,
        issuer,
        now,
        bar: bar.as_ref(),
        digests: DigestCache::new(),
    };
    let sealed = parallel(jobs, |(job, out)| seal_one(&task, job, out));
    if let Some(bar) = &bar {
        bar.finish();
    }
    if !keep_going && sealed.iter().any(Result::is_err) {
        let errors: Vec<String> = sealed
            .iter()
            .filter_map(|r| r.as_ref().err().map(ToString::to_string))
            .collect();
        return Err(IssueError::Job(format!(
            "{}\nnothing sealed: {} of {} job(s) failed (listed above)",
            errors.join("\n"),
            errors.len(),
            jobs.len()
        )));
    }
    let cwd = std::env::current_dir().ok();
    let pairs: Vec<(&Path, Result<SealedJob, IssueError>)> = jobs
        .iter()
        .map(|(_, out)| out.as_path())
        .zip(sealed)
        .collect();
    let written = parallel(&pairs, |(out, sealed)| match sealed {
        Ok(job) => write_one(cwd.as_deref(), out, &job.pem).map(|()| job.lines.clone()),
        Err(e) => Err(IssueError::Job(e.to_string())),
    });
    // Each bundle was synced before it was renamed into place; the renames
    // are made durable here, once per output directory, before any bundle
    // is reported written (as `write_atomic` does after each file).
    let mut outs: Vec<&Path> = jobs.iter().map(|(_, out)| out.as_path()).collect();
    outs.sort_by_key(|out| out.parent());
    outs.dedup_by_key(|out| out.parent());
    for out in outs {
        fsutil::sync_dir_of(out);
    }
    Ok(written)
}

/// Print each job's lines in order, its errors, and, for a batch or a run
/// that left jobs out, one summary line.
fn summarize(
    plans: &[Planned],
    chosen: &[(JobSpec, PathBuf)],
    outcome: &[Result<String, IssueError>],
    args: &SignArgs,
) {
    let mut text = String::new();
    let mut left_out: Vec<String> = plans
        .iter()
        .filter(|p| !p.sealable(args.force))
        .map(|p| p.file.display().to_string())
        .collect();
    for ((job, _), r) in chosen.iter().zip(outcome) {
        match r {
            Ok(lines) => text.push_str(lines),
            Err(e) => {
                text.push_str(&format!("jobseal: error: {e}\n"));
                left_out.push(job.source.display().to_string());
            }
        }
    }
    let sealed = outcome.iter().filter(|r| r.is_ok()).count();
    if plans.len() > 1 || !left_out.is_empty() {
        let into = args
            .out_dir
            .as_ref()
            .map(|d| format!(" into {}", d.display()))
            .unwrap_or_default();
        text.push_str(&format!(
            "jobseal: {sealed} of {} job(s) sealed{into}",
            plans.len()
        ));
        if !left_out.is_empty() {
            text.push_str(&format!("; not sealed: {}", left_out.join(", ")));
        }
        text.push('\n');
    }
    // One write to standard error (unbuffered) for all the jobs' lines.
    eprint!("{text}");
}

pub fn run_proxy(args: &ProxyArgs) -> ExitCode {
    match proxy(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(e),
    }
}

/// Where grid tools keep the user's proxy: `$X509_USER_PROXY`, else
/// `/tmp/x509up_u<uid>`.
pub fn standard_proxy_path() -> Option<PathBuf> {
    let env = Environment::from_process();
    env.x509_user_proxy.or_else(|| {
        env.uid
            .map(|uid| PathBuf::from(format!("/tmp/x509up_u{uid}")))
    })
}

fn proxy(args: &ProxyArgs) -> Result<(), IssueError> {
    let valid = validity_flag(Some(&args.valid), args.hours)?
        .ok_or_else(|| IssueError::Internal("no validity".into()))?;
    let out = match &args.out {
        Some(out) => out.clone(),
        None => standard_proxy_path()
            .ok_or_else(|| IssueError::Job("say where to write the proxy: --out FILE".into()))?,
    };
    let cred = load_credential(&args.credential, Search::EndEntityOnly)?;
    let now = UnixTime::now();
    let issuer = credential::check_issuer(&cred, now)?;
    site_checks::refuse_what_sites_refuse(&cred, now, false)?;
    announce(&cred, &issuer);
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
    fsutil::write_atomic(&out, proxy.pem.as_bytes(), 0o600)?;
    eprintln!(
        "proxy for {} written to {} (valid until {})",
        issuer.end_entity,
        out.display(),
        not_after.to_rfc3339()
    );
    Ok(())
}
