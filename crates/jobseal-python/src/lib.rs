//! Python bindings of jobseal: the `jobseal._jobseal` extension module of
//! the `jobseal` wheel (`docs/python.md`).
//!
//! A [`PyVerifier`] holds one [`AdmissionHost`]: its checker (steps 1–6,
//! built once: a long-lived pilot pays for reading the CA directory and the
//! policy once), and admission (steps 7–8), opened on its first `admit`. Every check
//! runs with the GIL released, so threads verify in parallel. Only misuse
//! raises (a wrong type, a verifier that cannot be built); a deny is a
//! [`PyDecision`] like a permit, whatever its reason.
//!
//! No trust setting comes from the environment unless asked for:
//! `Verifier()` uses the arguments or the fixed system paths;
//! `Verifier.from_env()` reads `X509_CERT_DIR`, `X509_VOMS_DIR` and
//! `JOBSEAL_POLICY`, and refuses in a setuid or setgid process.

use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;
use std::path::{Path, PathBuf};

mod seal;

use jobseal_admit::audit::RecordContext;
use jobseal_admit::{AdmissionHost, HostPaths};
use jobseal_core::{Error, Reason};
use jobseal_verify::{Decision, Invocation, UnixTime};
use pyo3::BoundObject;
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyByteArray, PyBytes, PyFloat, PyInt, PyList, PyString, PyTuple, PyType};

pyo3::create_exception!(
    jobseal,
    ConfigError,
    PyValueError,
    "The verifier cannot be built: its CA directory (code `config.invalid`) or its site policy (`policy.invalid`) is unusable. `code` holds the reason code."
);

fn config_error(py: Python<'_>, e: &Error) -> PyErr {
    let err = ConfigError::new_err(format!("{}: {}", e.reason.code(), e.message));
    // An exception instance takes attributes; failing that, the code still
    // leads the message.
    let _ = err.value(py).setattr("code", e.reason.code());
    err
}

/// One VOMS attribute certificate of the chain (`spec/jobseal.md` §6.3a).
#[pyclass(frozen, module = "jobseal", name = "VomsAttributes")]
#[derive(Clone, Debug)]
struct PyVoms {
    /// The VO the AC names (only a claim unless `verified`).
    #[pyo3(get)]
    vo: String,
    /// The FQANs, primary first; empty unless `verified`.
    #[pyo3(get)]
    fqans: Vec<String>,
    /// `(name, value, qualifier)` triples; empty unless `verified`.
    #[pyo3(get)]
    generic_attributes: Vec<(String, String, String)>,
    /// The AA the AC names as its issuer.
    #[pyo3(get)]
    issuer: String,
    /// Every check passed: only then may the attributes be used.
    #[pyo3(get)]
    verified: bool,
    /// The `voms.*` code saying why the AC is not trusted (`None` if verified).
    #[pyo3(get)]
    error: Option<String>,
    #[pyo3(get)]
    error_message: Option<String>,
}

#[pymethods]
impl PyVoms {
    fn __repr__(&self, py: Python<'_>) -> String {
        match &self.error {
            None => format!(
                "VomsAttributes(vo={}, verified=True, fqans={})",
                py_repr(py, &self.vo),
                py_repr(py, &self.fqans)
            ),
            Some(code) => format!(
                "VomsAttributes(vo={}, verified=False, error={})",
                py_repr(py, &self.vo),
                py_repr(py, code)
            ),
        }
    }
}

/// The answer: permit or deny, with its reason code, who and what.
#[pyclass(frozen, module = "jobseal", name = "Decision")]
#[derive(Clone, Debug)]
struct PyDecision {
    /// Whether the job may run.
    #[pyo3(get)]
    permitted: bool,
    /// `"permit"`, or the reason code of the deny (`spec/jobseal.md` §9).
    #[pyo3(get)]
    code: String,
    /// One line for people; only `code` is stable.
    #[pyo3(get)]
    message: String,
    /// The user: the end-entity certificate's subject, if path validation got that far.
    #[pyo3(get)]
    dn: Option<String>,
    /// The job-bound proxy's issuer: the user's certificate (`dn`) or a
    /// proxy of it.
    #[pyo3(get)]
    issuer: Option<String>,
    /// Whether the user's certificate issued the job-bound proxy directly
    /// (no proxy sealed the job: what `issuer = "end-entity"` requires,
    /// spec §13.4 6f); `None` if path validation did not get that far.
    #[pyo3(get)]
    issued_by_end_entity: Option<bool>,
    /// The trust anchor's subject.
    #[pyo3(get)]
    ca: Option<String>,
    /// The verified FQANs of every verified AC, in chain order.
    #[pyo3(get)]
    fqans: Vec<String>,
    /// Every AC examined, verified or not.
    #[pyo3(get)]
    voms: Vec<PyVoms>,
    /// The manifest's VO (the user's claim; a VO is proven by `fqans`).
    #[pyo3(get)]
    vo: Option<String>,
    /// The job id (32 hex digits), if the manifest was verified.
    #[pyo3(get)]
    job_id: Option<String>,
    /// The SHA-256 of the manifest the proxy is bound to (64 hex digits).
    #[pyo3(get)]
    manifest_sha256: Option<String>,
}

impl PyDecision {
    fn new(d: &Decision) -> Self {
        let identity = d.identity.as_ref();
        let voms: Vec<PyVoms> = identity
            .map(|i| {
                i.voms
                    .iter()
                    .map(|v| PyVoms {
                        vo: v.vo.clone(),
                        fqans: v.fqans.clone(),
                        generic_attributes: v
                            .generic_attributes
                            .iter()
                            .map(|g| (g.name.clone(), g.value.clone(), g.qualifier.clone()))
                            .collect(),
                        issuer: v.issuer.clone(),
                        verified: v.verified,
                        error: v.error.as_ref().map(|e| e.code.code().to_owned()),
                        error_message: v.error.as_ref().map(|e| e.message.clone()),
                    })
                    .collect()
            })
            .unwrap_or_default();
        let fqans = voms
            .iter()
            .filter(|v| v.verified)
            .flat_map(|v| v.fqans.iter().cloned())
            .collect();
        Self {
            permitted: d.is_permit(),
            code: d.code().to_owned(),
            message: d.message.clone(),
            dn: identity.map(|i| i.end_entity.clone()),
            issuer: identity.map(|i| i.issuer.clone()),
            issued_by_end_entity: identity.map(|i| i.issued_by_end_entity),
            ca: identity.map(|i| i.ca.clone()),
            fqans,
            voms,
            vo: d.job.as_ref().and_then(|j| j.vo.clone()),
            job_id: d.job.as_ref().map(|j| j.job_id.clone()),
            manifest_sha256: d.manifest_sha256.clone(),
        }
    }
}

#[pymethods]
impl PyDecision {
    /// `True` exactly when permitted, so that `if verifier.verify(...):`
    /// does what it says (an object without `__bool__` would always be
    /// true, and a deny would read as a permit).
    fn __bool__(&self) -> bool {
        self.permitted
    }

    fn __repr__(&self, py: Python<'_>) -> String {
        if self.permitted {
            format!(
                "Decision(permitted=True, code='permit', job_id={}, dn={})",
                py_repr(py, &self.job_id),
                py_repr(py, &self.dn)
            )
        } else {
            format!(
                "Decision(permitted=False, code={}, message={})",
                py_repr(py, &self.code),
                py_repr(py, &self.message)
            )
        }
    }
}

/// `repr(value)` as Python writes it.
fn py_repr<'py, T>(py: Python<'py>, value: T) -> String
where
    T: IntoPyObject<'py> + std::fmt::Debug + Copy,
{
    value
        .into_pyobject(py)
        .ok()
        .and_then(|o| o.into_any().into_bound().repr().ok())
        .map_or_else(|| format!("{value:?}"), |r| r.to_string())
}

/// A bundle given as bytes, or as the path of its file.
enum Bundle {
    Bytes(Vec<u8>),
    Path(PathBuf),
}

impl Bundle {
    fn extract(obj: &Bound<'_, PyAny>) -> PyResult<Self> {
        if let Ok(b) = obj.cast::<PyBytes>() {
            return Ok(Self::Bytes(b.as_bytes().to_vec()));
        }
        if let Ok(b) = obj.cast::<PyByteArray>() {
            return Ok(Self::Bytes(b.to_vec()));
        }
        if let Ok(s) = obj.cast::<PyString>() {
            let s = s.to_cow()?;
            // PEM text handed over as a str would read as a (missing) path:
            // a deny that hides the mistake. Say so instead.
            if s.contains("-----BEGIN") || s.contains('\n') {
                return Err(PyValueError::new_err(
                    "bundle: a str is a path; pass the bundle's PEM text as bytes (text.encode())",
                ));
            }
        }
        match fs_path(obj) {
            Ok(p) => Ok(Self::Path(PathBuf::from(p))),
            Err(_) => Err(PyTypeError::new_err(format!(
                "bundle must be bytes or a path (str or os.PathLike), not {}",
                type_name(obj)
            ))),
        }
    }

    fn read(self) -> Result<Vec<u8>, Error> {
        match self {
            Self::Bytes(b) => Ok(b),
            Self::Path(p) => jobseal_verify::read_bundle_file(&p),
        }
    }
}

fn type_name(obj: &Bound<'_, PyAny>) -> String {
    obj.get_type()
        .name()
        .map_or_else(|_| "?".to_owned(), |n| n.to_string())
}

/// `os.fspath(obj)` as an OS string: str, bytes or os.PathLike.
fn fs_path(obj: &Bound<'_, PyAny>) -> PyResult<OsString> {
    let py = obj.py();
    let p = py.import("os")?.getattr("fspath")?.call1((obj,))?;
    if let Ok(b) = p.cast::<PyBytes>() {
        return Ok(OsString::from_vec(b.as_bytes().to_vec()));
    }
    p.extract::<OsString>()
}

/// `argv` as execve takes it: the executable, then its arguments.
fn invocation(argv: &Bound<'_, PyAny>, job_dir: Option<&Bound<'_, PyAny>>) -> PyResult<Invocation> {
    let items: Vec<Bound<'_, PyAny>> = if let Ok(l) = argv.cast::<PyList>() {
        l.iter().collect()
    } else if let Ok(t) = argv.cast::<PyTuple>() {
        t.iter().collect()
    } else {
        return Err(PyTypeError::new_err(format!(
            "argv must be a list of str (the executable, then its arguments), not {}",
            type_name(argv)
        )));
    };
    let mut words = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        words.push(fs_path(item).map_err(|_| {
            PyTypeError::new_err(format!(
                "argv[{i}] must be str, bytes or os.PathLike, not {}",
                type_name(item)
            ))
        })?);
    }
    let mut words = words.into_iter();
    let Some(executable) = words.next() else {
        return Err(PyValueError::new_err(
            "argv is empty: argv[0] must be the executable about to run",
        ));
    };
    let job_dir = match job_dir {
        Some(d) if !d.is_none() => PathBuf::from(fs_path(d).map_err(|_| {
            PyTypeError::new_err(format!(
                "job_dir must be str, bytes or os.PathLike, not {}",
                type_name(d)
            ))
        })?),
        // As `jobseal verify` and `jobseal admit`: the current directory.
        _ => PathBuf::from("."),
    };
    Ok(Invocation {
        executable: PathBuf::from(executable),
        arguments: words.collect(),
        job_dir,
    })
}

/// `at=`: `None` (now), Unix seconds, an aware `datetime`, or RFC 3339 text.
fn verification_time(at: Option<&Bound<'_, PyAny>>) -> PyResult<UnixTime> {
    let Some(at) = at.filter(|a| !a.is_none()) else {
        return Ok(UnixTime::now());
    };
    let py = at.py();
    let negative = || PyValueError::new_err("at must not be before 1970");
    if at.is_instance_of::<pyo3::types::PyBool>() {
        return Err(PyTypeError::new_err(
            "at must be a datetime, Unix seconds or RFC 3339 text, not bool",
        ));
    }
    if at.is_instance_of::<PyInt>() {
        let secs: i128 = at.extract()?;
        return u64::try_from(secs).map(UnixTime).map_err(|_| negative());
    }
    let seconds_of = |f: f64| {
        if !(0.0..1.8e19).contains(&f) {
            return Err(negative());
        }
        // Whole seconds, as the verifier counts them.
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        Ok(UnixTime(f.floor() as u64))
    };
    if at.is_instance_of::<PyFloat>() {
        return seconds_of(at.extract()?);
    }
    if let Ok(s) = at.cast::<PyString>() {
        let s = s.to_cow()?;
        return UnixTime::parse_rfc3339(&s).ok_or_else(|| {
            PyValueError::new_err(format!(
                "at={s:?} is not an RFC 3339 time such as 2026-11-24T12:00:00Z"
            ))
        });
    }
    let datetime = py.import("datetime")?.getattr("datetime")?;
    if at.is_instance(&datetime)? {
        if at.call_method0("utcoffset")?.is_none() {
            return Err(PyValueError::new_err(
                "at is a naive datetime: give it a timezone (datetime.timezone.utc)",
            ));
        }
        return seconds_of(at.call_method0("timestamp")?.extract()?);
    }
    Err(PyTypeError::new_err(format!(
        "at must be a datetime, Unix seconds or RFC 3339 text, not {}",
        type_name(at)
    )))
}

/// Verifies and admits jobs; build one per process and share it.
#[pyclass(frozen, module = "jobseal", name = "Verifier")]
struct PyVerifier {
    /// The paths given, made absolute (the policy's and the state
    /// directory's are shown by `repr`).
    paths: HostPaths,
    /// The checker and admission, opened on the first `admit`; its
    /// directories chosen when the verifier was built; not across `fork`.
    host: AdmissionHost,
}

impl PyVerifier {
    /// Build a verifier from explicit settings (`None`: the system paths),
    /// each made absolute now: a pilot that changes directory later (into
    /// a job's) keeps them.
    fn build(py: Python<'_>, paths: HostPaths) -> PyResult<Self> {
        let paths = paths.absolute().map_err(|e| config_error(py, &e))?;
        // The default directories, read attached: Python's `os.environ`
        // writes call `putenv` under the GIL.
        let state = paths.state_dirs();
        // The policy: the given file, else /etc/jobseal/policy.toml if it
        // exists, else the built-in policy.
        let host = py
            .detach(|| AdmissionHost::load(&paths, state))
            .map_err(|e| config_error(py, &e))?;
        Ok(Self { paths, host })
    }
}

#[pymethods]
impl PyVerifier {
    /// Build a verifier: read the CA directory and the site policy once.
    /// `None` means the system paths; the environment is not read.
    /// Raises ConfigError if either is unusable.
    #[new]
    #[pyo3(signature = (ca_dir=None, voms_dir=None, policy=None, *, state_dir=None))]
    fn new(
        py: Python<'_>,
        ca_dir: Option<PathBuf>,
        voms_dir: Option<PathBuf>,
        policy: Option<PathBuf>,
        state_dir: Option<PathBuf>,
    ) -> PyResult<Self> {
        let paths = HostPaths {
            ca_dir,
            voms_dir,
            policy,
            state_dir,
        };
        Self::build(py, paths)
    }

    /// As `Verifier(...)`, but what is not given comes from the
    /// environment first: `$X509_CERT_DIR`, `$X509_VOMS_DIR`,
    /// `$JOBSEAL_POLICY`. Raises ConfigError in a setuid or setgid process,
    /// whose environment is its caller's.
    #[classmethod]
    #[pyo3(signature = (ca_dir=None, voms_dir=None, policy=None, *, state_dir=None))]
    fn from_env(
        _cls: &Bound<'_, PyType>,
        py: Python<'_>,
        ca_dir: Option<PathBuf>,
        voms_dir: Option<PathBuf>,
        policy: Option<PathBuf>,
        state_dir: Option<PathBuf>,
    ) -> PyResult<Self> {
        if let Some(why) = jobseal_admit::this_environment_untrusted() {
            return Err(config_error(
                py,
                &Error::new(
                    Reason::ConfigInvalid,
                    format!(
                        "Verifier.from_env() reads no X509_CERT_DIR, X509_VOMS_DIR or \
                         JOBSEAL_POLICY here: {why}; pass the paths to Verifier()"
                    ),
                ),
            ));
        }
        let env = |var: &str| {
            std::env::var_os(var)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        };
        let paths = HostPaths {
            ca_dir: ca_dir.or_else(|| env("X509_CERT_DIR")),
            voms_dir: voms_dir.or_else(|| env("X509_VOMS_DIR")),
            policy: policy.or_else(|| env("JOBSEAL_POLICY")),
            state_dir,
        };
        Self::build(py, paths)
    }

    /// Steps 1–6 (chain, binding, manifest, payload, site policy) at `at`
    /// (default now); records nothing. A deny is returned, never raised.
    #[pyo3(signature = (bundle, argv, *, job_dir=None, at=None))]
    fn verify(
        &self,
        py: Python<'_>,
        bundle: &Bound<'_, PyAny>,
        argv: &Bound<'_, PyAny>,
        job_dir: Option<&Bound<'_, PyAny>>,
        at: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<PyDecision> {
        let bundle = Bundle::extract(bundle)?;
        let invocation = invocation(argv, job_dir)?;
        let at = verification_time(at)?;
        Ok(py.detach(|| {
            let decision = match bundle.read() {
                Ok(b) => self.host.checker().check_at(&b, &invocation, at),
                Err(e) => Decision::from_error(e),
            };
            PyDecision::new(&decision)
        }))
    }

    /// Steps 1–4 and 6: the credential, without its payload (for whoever
    /// is handed a bundle but not yet the command; the payload must still
    /// be checked before it runs).
    #[pyo3(signature = (bundle, *, at=None))]
    fn check_credential(
        &self,
        py: Python<'_>,
        bundle: &Bound<'_, PyAny>,
        at: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<PyDecision> {
        let bundle = Bundle::extract(bundle)?;
        let at = verification_time(at)?;
        Ok(py.detach(|| {
            let decision = match bundle.read() {
                Ok(b) => self.host.checker().check_credential_at(&b, at),
                Err(e) => Decision::from_error(e),
            };
            PyDecision::new(&decision)
        }))
    }

    /// Admit the job about to run, now: steps 1–6, then count its use
    /// (replay) and append the audit record. Call it once, right before
    /// running `argv`. A deny (including a replay) is returned, never raised.
    #[pyo3(signature = (bundle, argv, *, job_dir=None))]
    fn admit(
        &self,
        py: Python<'_>,
        bundle: &Bound<'_, PyAny>,
        argv: &Bound<'_, PyAny>,
        job_dir: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<PyDecision> {
        let bundle = Bundle::extract(bundle)?;
        let invocation = invocation(argv, job_dir)?;
        // The environment is read here, attached: Python threads change it
        // (os.environ) only while they hold the GIL.
        let context = RecordContext {
            executable: Some(invocation.executable.display().to_string()),
            arguments: Some(
                invocation
                    .arguments
                    .iter()
                    .map(|a| a.to_string_lossy().into_owned())
                    .collect(),
            ),
            environment: std::env::vars_os()
                .map(|(k, _)| k.to_string_lossy().into_owned())
                .collect(),
            ..RecordContext::default()
        };
        Ok(py.detach(|| {
            let decision = self
                .host
                .admit_read(|| bundle.read(), &invocation, &context);
            PyDecision::new(&decision)
        }))
    }

    /// The CA directory in use.
    #[getter]
    fn ca_dir(&self) -> PathBuf {
        self.host.config().ca_dir.clone()
    }

    /// The VOMS directory in use.
    #[getter]
    fn voms_dir(&self) -> PathBuf {
        self.host.config().voms_dir.clone()
    }

    /// The policy file read (`None`: the built-in policy).
    #[getter]
    fn policy(&self) -> Option<PathBuf> {
        self.host.policy().source.clone()
    }

    fn __repr__(&self, py: Python<'_>) -> String {
        let shown = |p: Option<&Path>| py_repr(py, p.map(|p| p.display().to_string()).as_ref());
        format!(
            "Verifier(ca_dir={}, voms_dir={}, policy={}, state_dir={})",
            shown(Some(&self.host.config().ca_dir)),
            shown(Some(&self.host.config().voms_dir)),
            shown(
                self.host
                    .policy()
                    .source
                    .as_deref()
                    .or(self.paths.policy.as_deref())
            ),
            shown(self.paths.state_dir.as_deref()),
        )
    }
}

/// jobseal: verify and admit job-bound proxies before a payload runs.
#[pymodule]
mod _jobseal {
    #[pymodule_export]
    use super::seal::{
        CredentialError, JobError, PassphraseError, PrivateKeyError, PyCredential, PySealedJob,
        SealError,
    };
    #[pymodule_export]
    use super::{ConfigError, PyDecision, PyVerifier, PyVoms};

    #[pymodule_init]
    fn init(m: &pyo3::Bound<'_, pyo3::types::PyModule>) -> pyo3::PyResult<()> {
        use pyo3::types::PyModuleMethods;
        m.add("__version__", env!("CARGO_PKG_VERSION"))?;
        // The git commit the wheel was built from (build.rs), or "unknown".
        m.add("__commit__", env!("JOBSEAL_BUILD_COMMIT"))?;
        let codes: Vec<&str> = jobseal_core::Reason::ALL.iter().map(|r| r.code()).collect();
        m.add("REASON_CODES", pyo3::types::PyTuple::new(m.py(), codes)?)?;
        Ok(())
    }
}
