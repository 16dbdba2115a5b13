//! Sealing jobs from Python (issue 15 §4): the submission clients (DIRAC,
//! Ganga, PanDA's `prun`) load the user's credential once and seal jobs
//! without shelling out to `jobseal sign`.
//!
//! The same code as the CLI runs underneath: the credential search order
//! and loading of `jobseal-issue`, the checks of what sites refuse
//! (`cli/src/site_checks.rs`, included below), the per-job checks of
//! `jobseal_issue::preflight`, and sealing. Errors are typed exceptions
//! whose text is the CLI's message (without the `jobseal: ` prefix).

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, RwLock};
use std::time::Duration;

use jobseal_core::manifest::hex;
use jobseal_core::time::UnixTime;
use jobseal_issue::credential::{self, Environment, Explicit, IssuerCheck};
use jobseal_issue::job::{DigestCache, seal_with_cache};
use jobseal_issue::preflight::{self, Problem, Severity};
use jobseal_issue::{Credential, IssueError, JobSpec, SealParams};
use pyo3::exceptions::{PyException, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyString};
use zeroize::Zeroizing;

#[allow(dead_code)]
#[path = "../../../cli/src/site_checks.rs"]
mod site_checks;

pyo3::create_exception!(
    jobseal,
    SealError,
    PyException,
    "A job could not be sealed; the message is the one `jobseal sign` prints."
);
pyo3::create_exception!(
    jobseal,
    CredentialError,
    SealError,
    "The credential cannot be found or cannot sign (expired, limited, refused by sites, ...)."
);
pyo3::create_exception!(
    jobseal,
    PrivateKeyError,
    SealError,
    "The private key cannot be read or used (format, size, permissions)."
);
pyo3::create_exception!(
    jobseal,
    PassphraseError,
    SealError,
    "The passphrase does not decrypt the private key."
);
pyo3::create_exception!(
    jobseal,
    JobError,
    SealError,
    "A job cannot be sealed. `problems` lists every problem, one line each (job, field, what)."
);

/// The exception of an [`IssueError`], its text the CLI's.
fn issue_error(py: Python<'_>, e: &IssueError) -> PyErr {
    let msg = e.to_string();
    match e {
        IssueError::Credential(_) => CredentialError::new_err(msg),
        IssueError::Key(_) => PrivateKeyError::new_err(msg),
        IssueError::WrongPassphrase(_) => PassphraseError::new_err(msg),
        IssueError::Job(_) => job_error(py, msg.lines().map(str::to_owned).collect()),
        _ => SealError::new_err(msg),
    }
}

/// A [`JobError`] listing `problems` (its text: one per line).
fn job_error(py: Python<'_>, problems: Vec<String>) -> PyErr {
    let err = JobError::new_err(problems.join("\n"));
    // An exception instance takes attributes; failing that, the text
    // still lists every problem.
    let _ = err.value(py).setattr("problems", problems);
    err
}

/// The passphrase, as the Python caller chose to give it.
enum Passphrase {
    /// `getpass.getpass(prompt)`, as `voms-proxy-init` asks on the terminal.
    Ask,
    Given(Zeroizing<String>),
    Callback(Py<PyAny>),
}

impl Passphrase {
    fn from_arg(arg: Option<&Bound<'_, PyAny>>) -> PyResult<Self> {
        match arg.filter(|a| !a.is_none()) {
            None => Ok(Self::Ask),
            Some(a) if a.is_instance_of::<PyString>() => {
                Ok(Self::Given(Zeroizing::new(a.extract::<String>()?)))
            }
            Some(a) if a.is_callable() => Ok(Self::Callback(a.clone().unbind())),
            Some(a) => Err(PyTypeError::new_err(format!(
                "passphrase must be a str, a callable(prompt) -> str or None, not {}",
                a.get_type().name()?
            ))),
        }
    }

    fn get(&self, py: Python<'_>, prompt: &str) -> PyResult<Zeroizing<String>> {
        let answer = match self {
            Self::Given(p) => return Ok(p.clone()),
            Self::Ask => py.import("getpass")?.call_method1("getpass", (prompt,))?,
            Self::Callback(f) => f.bind(py).call1((prompt,))?,
        };
        Ok(Zeroizing::new(answer.extract::<String>()?))
    }
}

/// The user's credential, loaded once (one passphrase) for many jobs.
#[pyclass(frozen, module = "jobseal", name = "Credential")]
#[derive(Debug)]
pub struct PyCredential {
    /// Written only while a call sealing with `voms=` puts the AC in (and
    /// takes it out again); every lock is taken without the GIL.
    cred: RwLock<Credential>,
    issuer: IssuerCheck,
    /// Where `voms=` asks (the constructor's `vomses`, `vomsdir`,
    /// `certdir`, `voms_timeout`).
    voms: VomsSettings,
    /// ACs fetched, by `voms=` argument, reused while they last.
    acs: Mutex<Vec<(String, jobseal_voms::Attributes)>>,
}

/// The VOMS client's settings of a credential.
#[derive(Debug, Default)]
struct VomsSettings {
    vomses: Vec<PathBuf>,
    vomsdir: Option<PathBuf>,
    certdir: Option<PathBuf>,
    timeout: u64,
}

/// Why a sealing call failed, as plain data (built without the GIL).
enum Failure {
    Issue(IssueError),
    Problems(Vec<String>),
}

impl From<IssueError> for Failure {
    fn from(e: IssueError) -> Self {
        Self::Issue(e)
    }
}

/// Results of a sealing call: one per job, or why none was sealed.
type Outcome = Result<Vec<Result<PySealedJob, Vec<String>>>, Failure>;

/// What a job is made of, as Python gives it.
#[derive(Default)]
struct JobArgs {
    executable: String,
    arguments: Vec<String>,
    inputs: Vec<String>,
    environment: Option<BTreeMap<String, String>>,
    vo: Option<String>,
    sites: Option<Vec<String>>,
    valid: Option<String>,
    allowed_uses: Option<u64>,
}

/// A TOML basic string (`"…"`), every control character escaped.
fn toml_str(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => out.push_str(&format!("\\U{:08X}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn toml_list(items: &[String]) -> String {
    let quoted: Vec<String> = items.iter().map(|s| toml_str(s)).collect();
    format!("[{}]", quoted.join(", "))
}

impl JobArgs {
    /// The job as a job file would describe it: read by the same parser,
    /// it gets the same checks and messages as a TOML job.
    fn to_toml(&self) -> String {
        let mut t = format!(
            "executable = {}\narguments = {}\ninputs = {}\n",
            toml_str(&self.executable),
            toml_list(&self.arguments),
            toml_list(&self.inputs)
        );
        if let Some(vo) = &self.vo {
            t.push_str(&format!("vo = {}\n", toml_str(vo)));
        }
        if let Some(sites) = &self.sites {
            t.push_str(&format!("sites = {}\n", toml_list(sites)));
        }
        if let Some(valid) = &self.valid {
            t.push_str(&format!("valid = {}\n", toml_str(valid)));
        }
        if let Some(n) = self.allowed_uses {
            t.push_str(&format!("allowed_uses = {n}\n"));
        }
        if let Some(env) = &self.environment {
            let pairs: Vec<String> = env
                .iter()
                .map(|(k, v)| format!("{} = {}", toml_str(k), toml_str(v)))
                .collect();
            t.push_str(&format!("environment = {{ {} }}\n", pairs.join(", ")));
        }
        t
    }

    /// `valid=`: a str (`"24h"`, `"12:00"`) or whole seconds.
    fn validity(valid: Option<&Bound<'_, PyAny>>) -> PyResult<Option<String>> {
        let Some(v) = valid.filter(|v| !v.is_none()) else {
            return Ok(None);
        };
        if let Ok(s) = v.extract::<String>() {
            return Ok(Some(s));
        }
        match v.extract::<u64>() {
            Ok(secs) if !v.is_instance_of::<pyo3::types::PyBool>() => Ok(Some(format!("{secs}s"))),
            _ => Err(PyTypeError::new_err(
                "valid must be a str such as \"24h\" or \"12:00\", or whole seconds",
            )),
        }
    }

    /// The job of keyword arguments (`seal`'s, or a dict of them).
    fn from_dict(d: &Bound<'_, PyDict>) -> PyResult<Self> {
        let known = [
            "executable",
            "arguments",
            "inputs",
            "environment",
            "vo",
            "sites",
            "valid",
            "allowed_uses",
            "base_dir",
            "name",
        ];
        for k in d.keys() {
            let k: String = k.extract()?;
            if !known.contains(&k.as_str()) {
                return Err(PyTypeError::new_err(format!(
                    "unknown job field {k:?} (known: {})",
                    known.join(", ")
                )));
            }
        }
        let get = |k: &str| d.get_item(k).ok().flatten().filter(|v| !v.is_none());
        let executable = get("executable")
            .ok_or_else(|| PyTypeError::new_err("a job needs an executable"))?
            .extract::<PathBuf>()?;
        Ok(Self {
            executable: executable.to_string_lossy().into_owned(),
            arguments: get("arguments")
                .map(|a| a.extract())
                .transpose()?
                .unwrap_or_default(),
            inputs: get("inputs")
                .map(|a| a.extract::<Vec<PathBuf>>())
                .transpose()?
                .unwrap_or_default()
                .iter()
                .map(|p| p.to_string_lossy().into_owned())
                .collect(),
            environment: get("environment").map(|a| a.extract()).transpose()?,
            vo: get("vo").map(|a| a.extract()).transpose()?,
            sites: get("sites").map(|a| a.extract()).transpose()?,
            valid: Self::validity(get("valid").as_ref())?,
            allowed_uses: get("allowed_uses").map(|a| a.extract()).transpose()?,
        })
    }
}

/// A job to seal, read: its spec, or what is wrong with it.
fn job_of(item: &Bound<'_, PyAny>, index: usize) -> PyResult<Result<JobSpec, IssueError>> {
    if let Ok(d) = item.cast::<PyDict>() {
        let args = JobArgs::from_dict(d)?;
        let get = |k: &str| d.get_item(k).ok().flatten().filter(|v| !v.is_none());
        let base: PathBuf = get("base_dir")
            .map(|b| b.extract())
            .transpose()?
            .unwrap_or_else(|| PathBuf::from("."));
        let name: String = get("name")
            .map(|n| n.extract())
            .transpose()?
            .unwrap_or_else(|| format!("job {index}"));
        return Ok(JobSpec::from_toml(&args.to_toml(), Path::new(&name), &base));
    }
    let path: PathBuf = item.extract().map_err(|_| {
        PyTypeError::new_err(
            "each job is a dict of seal()'s arguments or the path of a job TOML file",
        )
    })?;
    Ok(JobSpec::from_toml_file(&path))
}

/// One sealed job: the bundle and what its manifest says.
#[pyclass(frozen, module = "jobseal", name = "SealedJob")]
#[derive(Debug)]
pub struct PySealedJob {
    /// The bundle (PEM): what the pilot hands to the site.
    #[pyo3(get)]
    bundle: Vec<u8>,
    #[pyo3(get)]
    job_id: String,
    #[pyo3(get)]
    manifest_sha256: String,
    /// The executable's name in the manifest.
    #[pyo3(get)]
    executable: String,
    #[pyo3(get)]
    executable_sha256: String,
    #[pyo3(get)]
    arguments: Vec<String>,
    /// `(name, size, sha256)` of every input.
    #[pyo3(get)]
    inputs: Vec<(String, u64, String)>,
    #[pyo3(get)]
    environment: Option<BTreeMap<String, String>>,
    #[pyo3(get)]
    vo: Option<String>,
    #[pyo3(get)]
    sites: Option<Vec<String>>,
    /// Unix seconds.
    #[pyo3(get)]
    not_before: u64,
    #[pyo3(get)]
    not_after: u64,
    #[pyo3(get)]
    allowed_uses: u64,
    /// The user the job runs for (end-entity subject).
    #[pyo3(get)]
    identity: String,
    /// Why the validity was cut short, if it was.
    #[pyo3(get)]
    capped: Option<String>,
    /// What `force=True` let through.
    #[pyo3(get)]
    warnings: Vec<String>,
    /// The job file, or the job's name.
    #[pyo3(get)]
    source: String,
}

#[pymethods]
impl PySealedJob {
    /// Write the bundle to `path` atomically (mode 0644), as `jobseal sign`.
    fn write(&self, py: Python<'_>, path: PathBuf) -> PyResult<()> {
        py.detach(|| jobseal_issue::fsutil::write_atomic(&path, &self.bundle, 0o644))
            .map_err(|e| issue_error(py, &e))
    }

    fn __repr__(&self) -> String {
        format!(
            "SealedJob(job_id={:?}, executable={:?}, source={:?})",
            self.job_id, self.executable, self.source
        )
    }
}

/// A job checked and ready: its spec and the warnings `force` let through.
struct Ready {
    job: JobSpec,
    warnings: Vec<String>,
}

/// The problems of `job` under this credential (files, VO), split into
/// warnings (`force`) and what blocks it.
fn check(job: JobSpec, issuer: &IssuerCheck, force: bool) -> Result<Ready, Vec<String>> {
    let mut problems: Vec<Problem> = preflight::file_problems(&job);
    problems.extend(preflight::vo_problem(&job, issuer));
    let (block, warn): (Vec<Problem>, Vec<Problem>) =
        problems.into_iter().partition(|p| p.blocks(force));
    if !block.is_empty() {
        return Err(block
            .into_iter()
            .map(|p| match p.severity {
                Severity::Refusal => format!("{} (force=True seals it anyway)", p.message),
                _ => p.message,
            })
            .collect());
    }
    Ok(Ready {
        job,
        warnings: warn.into_iter().map(|p| p.message).collect(),
    })
}

/// Check every job, then seal them with `cred` and `issuer` (no GIL
/// needed): all or nothing unless `keep_going`.
fn seal_checked(
    cred: &Credential,
    issuer: &IssuerCheck,
    jobs: Vec<Result<JobSpec, IssueError>>,
    keep_going: bool,
    force: bool,
) -> Outcome {
    let now = UnixTime::now();
    // The issuer still usable now, and what sites refuse refused.
    credential::check_issuer(cred, now)?;
    let chain_warning = site_checks::refuse_what_sites_refuse(cred, now, force)?;
    let checked: Vec<Result<Ready, Vec<String>>> = jobs
        .into_iter()
        .map(|j| match j {
            Ok(job) => check(job, issuer, force),
            Err(e) => Err(e.to_string().lines().map(str::to_owned).collect()),
        })
        .collect();
    let problems: Vec<String> = checked
        .iter()
        .filter_map(|c| c.as_ref().err())
        .flatten()
        .cloned()
        .collect();
    if !problems.is_empty() && !keep_going {
        return Err(Failure::Problems(problems));
    }
    let cache = DigestCache::new();
    let sealed: Vec<Result<PySealedJob, Vec<String>>> = checked
        .into_iter()
        .map(|c| {
            let mut ready = c?;
            ready.warnings.extend(chain_warning.clone());
            PyCredential::seal_ready(cred, issuer, ready, now, &cache)
                .map_err(|e| e.to_string().lines().map(str::to_owned).collect::<Vec<_>>())
        })
        .collect();
    if !keep_going && let Some(Err(p)) = sealed.iter().find(|r| r.is_err()) {
        return Err(Failure::Problems(p.clone()));
    }
    Ok(sealed)
}

impl PyCredential {
    /// Seal one checked job (no GIL needed).
    fn seal_ready(
        cred: &Credential,
        issuer: &IssuerCheck,
        ready: Ready,
        now: UnixTime,
        cache: &DigestCache,
    ) -> Result<PySealedJob, IssueError> {
        let sealed = seal_with_cache(
            cred,
            issuer,
            &ready.job,
            &SealParams::random(now)?,
            &|_| {},
            cache,
        )?;
        let m = &sealed.manifest;
        Ok(PySealedJob {
            bundle: sealed.bundle.to_pem().into_bytes(),
            job_id: m.job_id_hex(),
            manifest_sha256: hex(&sealed.manifest_sha256),
            executable: m.executable.name.clone(),
            executable_sha256: hex(&m.executable.sha256),
            arguments: m.arguments.clone(),
            inputs: m
                .inputs
                .iter()
                .map(|i| (i.name.clone(), i.size, hex(&i.sha256)))
                .collect(),
            environment: m.environment.clone(),
            vo: m.vo.clone(),
            sites: m.sites.clone(),
            not_before: m.not_before,
            not_after: m.not_after,
            allowed_uses: m.allowed_uses,
            identity: issuer.end_entity.clone(),
            capped: sealed.capped.clone(),
            warnings: ready.warnings,
            source: ready.job.source.display().to_string(),
        })
    }

    /// Check every job, then seal: all or nothing unless `keep_going`
    /// (then a [`JobError`] instance stands for each job not sealed). With
    /// `voms`, the jobs carry the VOMS attributes it asks for, fetched with
    /// the user's certificate (once for the call, or reused).
    fn seal_all(
        &self,
        py: Python<'_>,
        jobs: Vec<Result<JobSpec, IssueError>>,
        keep_going: bool,
        force: bool,
        voms: Option<String>,
    ) -> PyResult<Vec<Result<PySealedJob, Vec<String>>>> {
        // The locks and the network without the GIL: a thread waiting for
        // a lock never holds what the lock's holder needs.
        let outcome = py.detach(|| match voms {
            Some(spec) => self.seal_with_voms(jobs, keep_going, force, &spec),
            None => match self.cred.read() {
                Ok(cred) => seal_checked(&cred, &self.issuer, jobs, keep_going, force),
                Err(_) => Err(IssueError::Internal("the credential is poisoned".into()).into()),
            },
        });
        match outcome {
            Ok(sealed) => Ok(sealed),
            Err(Failure::Issue(e)) => Err(issue_error(py, &e)),
            Err(Failure::Problems(p)) => Err(job_error(py, p)),
        }
    }

    /// Where the credential came from (the lock taken without the GIL).
    fn source_text(&self, py: Python<'_>) -> String {
        py.detach(|| match self.cred.read() {
            Ok(c) => c.source.to_string(),
            Err(_) => "unknown".into(),
        })
    }

    /// [`Self::seal_all`] with the AC `spec` asks for in the credential.
    fn seal_with_voms(
        &self,
        jobs: Vec<Result<JobSpec, IssueError>>,
        keep_going: bool,
        force: bool,
        spec: &str,
    ) -> Outcome {
        let lifetime = jobs
            .iter()
            .filter_map(|j| j.as_ref().ok().map(|j| j.valid))
            .max()
            .unwrap_or(24 * 3600);
        let poisoned = || Failure::Issue(IssueError::Internal("the credential is poisoned".into()));
        let mut cred = self.cred.write().map_err(|_| poisoned())?;
        let ac = self.attributes(&cred, spec, lifetime)?;
        cred.voms_ac = Some(ac.der);
        let result = credential::check_issuer(&cred, UnixTime::now())
            .map_err(Failure::from)
            .and_then(|issuer| seal_checked(&cred, &issuer, jobs, keep_going, force));
        // The AC serves this call only.
        cred.voms_ac = None;
        result
    }

    /// The AC `spec` asks for: one this credential fetched before for the
    /// same `spec` that is still valid more than 5 minutes from now and
    /// covers `lifetime` (capped at 24 hours), else a new one from the
    /// server (which then replaces the old one for `spec`).
    fn attributes(
        &self,
        cred: &Credential,
        spec: &str,
        lifetime: u64,
    ) -> Result<jobseal_voms::Attributes, Failure> {
        let now = UnixTime::now().0;
        let mut acs = self
            .acs
            .lock()
            .map_err(|_| IssueError::Internal("the AC cache is poisoned".into()))?;
        acs.retain(|(_, a)| a.not_after.0 > now + 300);
        let fresh = |(s, a): &&(String, jobseal_voms::Attributes)| {
            s == spec && a.not_after.0 >= now.saturating_add(lifetime).min(now + 24 * 3600)
        };
        if let Some((_, a)) = acs.iter().find(fresh) {
            return Ok(a.clone());
        }
        let fail = |e: jobseal_voms::VomsError| {
            Failure::Issue(IssueError::Credential(python_words(&e.to_string())))
        };
        let request = jobseal_voms::Request::parse(spec).map_err(fail)?;
        let mut opts = jobseal_voms::Options::from_env(lifetime);
        opts.vomses.clone_from(&self.voms.vomses);
        if let Some(d) = &self.voms.vomsdir {
            opts.vomsdir.clone_from(d);
        }
        if let Some(d) = &self.voms.certdir {
            opts.ca_dir.clone_from(d);
        }
        opts.timeout = Duration::from_secs(self.voms.timeout);
        let a = jobseal_voms::fetch(cred, &request, &opts).map_err(fail)?;
        acs.retain(|(s, _)| s != spec);
        acs.push((spec.to_string(), a.clone()));
        Ok(a)
    }

    /// The one result of a one-job [`Self::seal_all`].
    fn seal_one(
        &self,
        py: Python<'_>,
        job: Result<JobSpec, IssueError>,
        force: bool,
        voms: Option<String>,
    ) -> PyResult<PySealedJob> {
        match self.seal_all(py, vec![job], false, force, voms)?.pop() {
            Some(Ok(sealed)) => Ok(sealed),
            Some(Err(problems)) => Err(job_error(py, problems)),
            None => Err(SealError::new_err("internal error: no job sealed")),
        }
    }
}

#[pymethods]
impl PyCredential {
    /// Load the credential as `jobseal sign` finds it: `proxy`, or `cert`
    /// and `key` (or `cert` alone for a .p12), else `$X509_USER_PROXY`,
    /// `$X509_USER_CERT`/`$X509_USER_KEY`, `/tmp/x509up_u<uid>`,
    /// `~/.globus/usercert.pem` + `userkey.pem`, `~/.globus/usercred.p12`.
    /// `vomses`, `vomsdir`, `certdir` and `voms_timeout` (seconds per VOMS
    /// server) are where and how the sealing methods' `voms=` asks, as
    /// `jobseal sign --voms` does.
    #[new]
    #[pyo3(signature = (proxy=None, cert=None, key=None, *, passphrase=None, vomses=None,
                        vomsdir=None, certdir=None, voms_timeout=60))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        proxy: Option<PathBuf>,
        cert: Option<PathBuf>,
        key: Option<PathBuf>,
        passphrase: Option<&Bound<'_, PyAny>>,
        vomses: Option<Vec<PathBuf>>,
        vomsdir: Option<PathBuf>,
        certdir: Option<PathBuf>,
        voms_timeout: u64,
    ) -> PyResult<Self> {
        if !(1..=3600).contains(&voms_timeout) {
            return Err(PyValueError::new_err(
                "voms_timeout must be 1 to 3600 seconds",
            ));
        }
        let voms = VomsSettings {
            vomses: vomses.unwrap_or_default(),
            vomsdir,
            certdir,
            timeout: voms_timeout,
        };
        let pass = Passphrase::from_arg(passphrase)?;
        if proxy.is_some() && (cert.is_some() || key.is_some()) {
            return Err(PyTypeError::new_err(
                "give proxy, or cert and key, not both",
            ));
        }
        let explicit = Explicit { proxy, cert, key };
        let source = credential::find_source(&explicit, &Environment::from_process())
            .map_err(|e| issue_error(py, &e))?;
        // A Python exception of the passphrase callback (KeyboardInterrupt,
        // EOFError of getpass) is raised as itself.
        let raised: RefCell<Option<PyErr>> = RefCell::new(None);
        let mut prompt = |text: &str| {
            pass.get(py, text).map_err(|e| {
                let msg = format!("no passphrase: {e}");
                *raised.borrow_mut() = Some(e);
                IssueError::Key(msg)
            })
        };
        let loaded = Credential::load(source, &mut prompt);
        if let Some(e) = raised.borrow_mut().take() {
            return Err(e);
        }
        let cred = loaded.map_err(|e| issue_error(py, &e))?;
        let issuer =
            credential::check_issuer(&cred, UnixTime::now()).map_err(|e| issue_error(py, &e))?;
        Ok(Self {
            cred: RwLock::new(cred),
            issuer,
            voms,
            acs: Mutex::new(Vec::new()),
        })
    }

    /// The user (end-entity subject, `/DC=…` form).
    #[getter]
    fn identity(&self) -> String {
        self.issuer.end_entity.clone()
    }

    /// Where the credential came from, as `jobseal sign` names it.
    #[getter]
    fn source(&self, py: Python<'_>) -> String {
        self.source_text(py)
    }

    /// The VOs of its VOMS attributes (read, not verified).
    #[getter]
    fn vos(&self) -> Vec<String> {
        self.issuer.voms.iter().map(|ac| ac.vo.clone()).collect()
    }

    /// The last Unix second anything sealed under it may be valid.
    #[getter]
    fn expires(&self) -> u64 {
        self.issuer.expires.0
    }

    /// Seal one job from Python values; paths are relative to `base_dir`
    /// (default: the current directory).
    #[pyo3(signature = (executable, arguments=None, *, inputs=None, environment=None, vo=None,
                        sites=None, valid=None, allowed_uses=None, base_dir=None, name=None,
                        force=false, voms=None))]
    #[allow(clippy::too_many_arguments)]
    fn seal(
        &self,
        py: Python<'_>,
        executable: &Bound<'_, PyAny>,
        arguments: Option<&Bound<'_, PyAny>>,
        inputs: Option<&Bound<'_, PyAny>>,
        environment: Option<&Bound<'_, PyAny>>,
        vo: Option<&Bound<'_, PyAny>>,
        sites: Option<&Bound<'_, PyAny>>,
        valid: Option<&Bound<'_, PyAny>>,
        allowed_uses: Option<&Bound<'_, PyAny>>,
        base_dir: Option<&Bound<'_, PyAny>>,
        name: Option<&Bound<'_, PyAny>>,
        force: bool,
        voms: Option<String>,
    ) -> PyResult<PySealedJob> {
        let d = PyDict::new(py);
        d.set_item("executable", executable)?;
        for (k, v) in [
            ("arguments", arguments),
            ("inputs", inputs),
            ("environment", environment),
            ("vo", vo),
            ("sites", sites),
            ("valid", valid),
            ("allowed_uses", allowed_uses),
            ("base_dir", base_dir),
            ("name", name),
        ] {
            if let Some(v) = v {
                d.set_item(k, v)?;
            }
        }
        let job = job_of(d.as_any(), 0)?;
        self.seal_one(py, job, force, voms)
    }

    /// Seal the job of a job TOML file (`jobseal sign FILE`).
    #[pyo3(signature = (path, *, force=false, voms=None))]
    fn seal_file(
        &self,
        py: Python<'_>,
        path: PathBuf,
        force: bool,
        voms: Option<String>,
    ) -> PyResult<PySealedJob> {
        self.seal_one(py, JobSpec::from_toml_file(&path), force, voms)
    }

    /// Seal many jobs (dicts of `seal`'s arguments, or job TOML paths).
    /// Every job is checked first; a [`JobError`] lists every problem and
    /// nothing is sealed, unless `keep_going`: then the result holds a
    /// `JobError` instance in place of each job that could not be sealed.
    #[pyo3(signature = (jobs, *, keep_going=false, force=false, voms=None))]
    fn seal_many(
        &self,
        py: Python<'_>,
        jobs: &Bound<'_, PyAny>,
        keep_going: bool,
        force: bool,
        voms: Option<String>,
    ) -> PyResult<Py<PyList>> {
        let mut specs = Vec::new();
        for (i, item) in jobs.try_iter()?.enumerate() {
            specs.push(job_of(&item?, i)?);
        }
        let results = self.seal_all(py, specs, keep_going, force, voms)?;
        let list = PyList::empty(py);
        for r in results {
            match r {
                Ok(sealed) => list.append(Py::new(py, sealed)?)?,
                Err(problems) => list.append(job_error(py, problems).into_value(py))?,
            }
        }
        Ok(list.unbind())
    }

    fn __repr__(&self, py: Python<'_>) -> String {
        format!(
            "Credential(identity={:?}, source={:?})",
            self.issuer.end_entity,
            self.source_text(py)
        )
    }
}

/// A `jobseal_voms` message in the words of this API: its advice names the
/// command-line option, Python sets `Credential(voms_timeout=…)`.
fn python_words(message: &str) -> String {
    message.replace(
        "with --voms-timeout",
        "with Credential(voms_timeout=...) (seconds per VOMS server)",
    )
}
