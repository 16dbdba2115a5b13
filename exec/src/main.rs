//! `jobseal-exec COMMAND [ARGS...]`: gLExec's command for a pilot, an
//! ordinary unprivileged program. With `mode = "service"` it is the client
//! of the site's launch service (`jobseal-launchd`, which maps the user to
//! a local account); in logging-only mode it admits the job itself (check,
//! policy, replay, audit: `spec/jobseal.md` §6.7) and runs exactly the
//! bytes it admitted under the pilot's own uid, with records the pilot
//! owns. The setuid identity-switching launcher is retired: installed
//! setuid, or configured for it, it refuses (§14.1).
//! Exit codes, modes and configuration: `docs/jobseal-exec.md`.
#![forbid(unsafe_code)]
// A launcher reports on stderr by design (gLExec's contract).
#![allow(clippy::print_stderr)]

use std::ffi::{OsStr, OsString};
use std::io::Read;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use jobseal_admit::admit::{Dirs, record_outside};
use jobseal_admit::audit::{AuditRecord, Launch, RecordContext};
use jobseal_admit::{AdmissionHost, StateDirs};
use jobseal_exec::account::{self, Account};
use jobseal_exec::config::{self, ExecConfig, Mode};
use jobseal_exec::creds::Caller;
use jobseal_exec::payload::{self, PayloadError};
use jobseal_exec::proxy::{self, ProxyError};
use jobseal_exec::reason::ExecReason;
use jobseal_exec::workdir::{self, WorkDir};
use jobseal_exec::{
    EXIT_CLIENT, EXIT_DENIED, EXIT_INTERNAL, EXIT_NOT_EXECUTABLE, Fail, MAX_BUNDLE_BYTES,
    SAFE_PATH, exit_code, fail, one_line, payload_env, peek_manifest, set_var, signals,
};
use jobseal_policy::Policy;
use jobseal_verify::Reason;
use jobseal_verify::{Config, Invocation};

/// Names the file the launcher reads its configuration from instead of
/// `/etc/jobseal/exec.toml`; ignored when run as root.
const CONFIG_ENV: &str = "JOBSEAL_EXEC_CONFIG";

/// `jobseal-exec --version`: the version and the git commit it was built
/// from (build.rs; `unknown` outside a git tree).
const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (commit ",
    env!("JOBSEAL_BUILD_COMMIT"),
    ")"
);

/// What a setuid `jobseal-exec` says (§14.1): the launcher is retired, and
/// how a site moves over.
const SETUID_RETIRED: &str = "jobseal-exec is installed setuid root, and the setuid launcher is retired: set mode = \"service\" in /etc/jobseal/exec.toml, run jobseal-launchd (systemctl enable --now jobseal-launchd), and remove the setuid bit (chmod u-s jobseal-exec)";

/// What `mode = "identity-switching"` gets (§14.1).
const IDENTITY_SWITCHING_RETIRED: &str = "mode = \"identity-switching\" (the setuid launcher) is retired: set mode = \"service\" and run jobseal-launchd, which maps users to accounts with the same settings";

fn main() -> ExitCode {
    let mut args = std::env::args_os().skip(1);
    let first = args.next();
    // The one exception to "no options" (spec §14.2): `--version` alone.
    // It reads no configuration, environment or file and runs nothing.
    if first.as_deref() == Some(OsStr::new("--version")) && args.next().is_none() {
        use std::io::Write;
        let mut out = std::io::stdout().lock();
        return match writeln!(out, "jobseal-exec {VERSION}").and_then(|()| out.flush()) {
            Ok(()) => ExitCode::SUCCESS,
            Err(_) => ExitCode::from(EXIT_INTERNAL),
        };
    }
    match run() {
        Ok(code) => ExitCode::from(code),
        Err(Fail(code, reason, message)) => {
            eprintln!("{reason}: {}", one_line(&message));
            ExitCode::from(code)
        }
    }
}

fn env_var(env: &[(OsString, OsString)], name: &str) -> Option<OsString> {
    env.iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.clone())
        .filter(|v| !v.is_empty())
}

/// The credential named by `GLEXEC_CLIENT_CERT`: the caller's own regular
/// file (no symbolic link), writable by nobody else.
fn read_credential(path: &Path, caller: u32) -> Result<Vec<u8>, Fail> {
    let shown = path.display();
    let refuse = |m: String| Fail(EXIT_CLIENT, ExecReason::Credential.code(), m);
    let flags = rustix::fs::OFlags::NOFOLLOW | rustix::fs::OFlags::NONBLOCK;
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(flags.bits() as i32)
        .open(path)
        .map_err(|e| refuse(format!("GLEXEC_CLIENT_CERT {shown}: {e}")))?;
    let meta = file
        .metadata()
        .map_err(|e| refuse(format!("GLEXEC_CLIENT_CERT {shown}: {e}")))?;
    if !meta.file_type().is_file() {
        return Err(refuse(format!(
            "GLEXEC_CLIENT_CERT {shown}: not a regular file"
        )));
    }
    if meta.uid() != caller {
        return Err(refuse(format!(
            "GLEXEC_CLIENT_CERT {shown}: not owned by the caller"
        )));
    }
    if meta.mode() & 0o022 != 0 {
        return Err(refuse(format!(
            "GLEXEC_CLIENT_CERT {shown}: writable by group or others"
        )));
    }
    let mut bytes = Vec::new();
    file.take(MAX_BUNDLE_BYTES)
        .read_to_end(&mut bytes)
        .map_err(|e| refuse(format!("GLEXEC_CLIENT_CERT {shown}: {e}")))?;
    Ok(bytes)
}

fn load_policy(config: &ExecConfig) -> Result<Policy, Fail> {
    match &config.policy {
        Some(path) => Policy::load(path),
        None => Policy::load_default(),
    }
    .or_else(|e| fail(EXIT_INTERNAL, e.reason.code(), e.message))
}

/// Once the configuration is known, the launcher's refusals go to the audit
/// log too (§14.4): everything except usage and configuration errors.
struct Refusals<'a> {
    policy: Option<&'a Policy>,
    dirs: Option<&'a Dirs>,
    context: &'a RecordContext,
}

impl Refusals<'_> {
    fn record(&self, f: Fail) -> Fail {
        if let Some(dirs) = self.dirs {
            let base = jobseal_verify::Decision::from_error(jobseal_verify::Error::new(
                Reason::Internal,
                f.2.clone(),
            ));
            let mut record = AuditRecord::refusal(&base, f.1, self.context);
            record.message.clone_from(&f.2);
            // Best effort: the refusal stands whether or not it is logged.
            let _ = record_outside(self.policy, dirs, record);
        }
        f
    }
}

/// The configuration, and whether this process may go on with it: never
/// privileged, never the retired identity-switching mode (§14.1).
fn configuration(env: &[(OsString, OsString)]) -> Result<ExecConfig, Fail> {
    let config_invalid = |m: &str| Fail(EXIT_INTERNAL, Reason::ConfigInvalid.code(), m.into());
    let privileged = rustix::process::geteuid().is_root();
    // Setuid root: the retired launcher. Refused before the configuration,
    // the environment or any file is read.
    if privileged && !rustix::process::getuid().is_root() {
        return Err(config_invalid(SETUID_RETIRED));
    }
    // Run by root: only the root-owned file.
    let config_path = match env_var(env, CONFIG_ENV) {
        Some(p) if !privileged => PathBuf::from(p),
        _ => PathBuf::from(config::DEFAULT_PATH),
    };
    let config = ExecConfig::load(&config_path, privileged)
        .or_else(|m| fail(EXIT_INTERNAL, Reason::ConfigInvalid.code(), m))?;
    match (privileged, config.mode) {
        (_, Mode::IdentitySwitching) => Err(config_invalid(IDENTITY_SWITCHING_RETIRED)),
        (true, Mode::LoggingOnly) => Err(config_invalid(
            "logging-only mode would run payloads as root: run jobseal-exec as the pilot",
        )),
        (true, Mode::Service) => Err(config_invalid(
            "jobseal-exec is the pilot's client of the launch service and does not run as root: run it as the pilot",
        )),
        (false, Mode::LoggingOnly | Mode::Service) => Ok(config),
    }
}

fn run() -> Result<u8, Fail> {
    let args: Vec<OsString> = std::env::args_os().skip(1).collect();
    let Some((command, rest)) = args.split_first() else {
        return fail(
            EXIT_CLIENT,
            ExecReason::Usage.code(),
            "usage: jobseal-exec COMMAND [ARGS...] (the job's bundle in GLEXEC_CLIENT_CERT)",
        );
    };
    // No options at all: nothing on the command line can change trust
    // (--policy, --ca-dir, --at, …).
    if command.as_encoded_bytes().starts_with(b"-") {
        return fail(
            EXIT_CLIENT,
            ExecReason::Usage.code(),
            format!(
                "jobseal-exec takes no options ({}); the configuration is {}",
                command.to_string_lossy(),
                config::DEFAULT_PATH
            ),
        );
    }
    let env: Vec<(OsString, OsString)> = std::env::vars_os().collect();
    let config = configuration(&env)?;
    if config.mode == Mode::Service {
        return jobseal_exec::client::run(&config, command, rest, &env);
    }
    // Logging-only mode: the pilot's own launcher, under its own uid.
    let caller = Caller::current();
    // The configured directory where the policy names none; else the
    // host's default for this process (the pilot's own).
    let state = match &config.state_dir {
        Some(d) => StateDirs::fallback(Dirs::under(d)),
        None => StateDirs::process_default(),
    };
    let dirs = match state.dirs() {
        Ok(d) => d.clone(),
        Err(e) => return fail(EXIT_INTERNAL, e.reason.code(), e.message.clone()),
    };
    let policy = load_policy(&config)?;
    let context = RecordContext {
        executable: Some(Path::new(command).display().to_string()),
        arguments: Some(
            rest.iter()
                .map(|a| a.to_string_lossy().into_owned())
                .collect(),
        ),
        environment: env
            .iter()
            .map(|(k, _)| k.to_string_lossy().into_owned())
            .collect(),
        site: policy.site.clone(),
        ..RecordContext::default()
    };
    let refusals = Refusals {
        policy: Some(&policy),
        dirs: Some(&dirs),
        context: &context,
    };
    let refuse = |f: Fail| refusals.record(f);

    // The caller.
    let caller_account = account::by_uid(caller.uid);
    if !config.user_allowed(caller.uid, caller_account.as_ref().map(|a| a.name.as_str())) {
        // Not recorded: anyone on the node could flood the shared log.
        return fail(
            EXIT_DENIED,
            ExecReason::CallerNotAllowed.code(),
            format!("uid {} may not use jobseal-exec", caller.uid),
        );
    }

    // The job's bundle.
    let Some(bundle_path) = env_var(&env, "GLEXEC_CLIENT_CERT") else {
        return Err(refuse(Fail(
            EXIT_CLIENT,
            ExecReason::Credential.code(),
            "GLEXEC_CLIENT_CERT is not set".into(),
        )));
    };
    let bundle = read_credential(Path::new(&bundle_path), caller.uid).map_err(refuse)?;

    // The payload's bytes, sealed: what admission hashes is what runs.
    let search = env_var(&env, "PATH").map_or_else(
        || SAFE_PATH.to_string(),
        |p| p.to_string_lossy().into_owned(),
    );
    let Some(executable) = payload::resolve(Path::new(command), &search) else {
        return Err(refuse(Fail(
            EXIT_NOT_EXECUTABLE,
            ExecReason::NotExecutable.code(),
            format!("{}: command not found", command.to_string_lossy()),
        )));
    };
    let sealed = payload::seal_copy(&executable)
        .or_else(|e| match e {
            PayloadError::NotExecutable(m) => {
                fail(EXIT_NOT_EXECUTABLE, ExecReason::NotExecutable.code(), m)
            }
            PayloadError::Internal(m) => fail(EXIT_INTERNAL, Reason::Internal.code(), m),
        })
        .map_err(refuse)?;

    // Admission set-up.
    let verifier_config = Config {
        ca_dir: config
            .ca_dir
            .clone()
            .unwrap_or_else(|| PathBuf::from(jobseal_verify::DEFAULT_CA_DIR)),
        voms_dir: config
            .voms_dir
            .clone()
            .unwrap_or_else(|| PathBuf::from(jobseal_verify::DEFAULT_VOMS_DIR)),
        ..Config::default()
    };
    // A failure is recorded (the policy is known) and is gLExec's 202.
    let set_up_failed = |d: Box<jobseal_verify::Decision>| Fail(EXIT_INTERNAL, d.code(), d.message);
    let host = AdmissionHost::new_or_record(verifier_config, Ok(policy.clone()), state, &context)
        .map_err(set_up_failed)?;
    let admission = host.open(&context).map_err(set_up_failed)?;

    // The fresh working directory (if `work_root` is set), with copies of
    // the inputs for admission to hash (the job's own directory otherwise).
    // Made only for a job whose credential and manifest check out (steps
    // 1–4 and policy), so nothing is copied for a forged manifest.
    let credential_ok = host
        .checker()
        .check_credential_at(&bundle, jobseal_verify::UnixTime::now())
        .is_permit();
    let peeked = if credential_ok {
        peek_manifest(&bundle)
    } else {
        None
    };
    let mut workdir = match (config.work_root(), &peeked) {
        (Some(root), Some(peeked)) => {
            let mut w = WorkDir::make(&root, &peeked.job_id_hex(), false)
                .or_else(|m| fail(EXIT_INTERNAL, ExecReason::Workdir.code(), m))
                .map_err(refuse)?;
            let inputs: Vec<workdir::Input> = peeked
                .inputs
                .iter()
                .map(|i| workdir::Input {
                    name: i.name.clone(),
                    size: i.size,
                })
                .collect();
            let cwd = std::env::current_dir()
                .or_else(|e| {
                    fail(
                        EXIT_CLIENT,
                        ExecReason::Workdir.code(),
                        format!("working directory: {e}"),
                    )
                })
                .map_err(refuse)?;
            w.copy_inputs(&cwd, &inputs, &caller)
                .or_else(|e| match e {
                    workdir::CopyError::Client(m) => {
                        fail(EXIT_CLIENT, ExecReason::Workdir.code(), m)
                    }
                    workdir::CopyError::Internal(m) => {
                        fail(EXIT_INTERNAL, ExecReason::Workdir.code(), m)
                    }
                })
                .map_err(refuse)?;
            Some(w)
        }
        // A job that fails its credential check: admission denies it and
        // records the deny, in the caller's directory, copying nothing.
        _ => None,
    };
    let invocation = Invocation {
        executable: sealed.path(),
        arguments: rest.to_vec(),
        job_dir: workdir
            .as_ref()
            .map_or_else(|| PathBuf::from("."), |w| w.path.clone()),
    };
    let account = caller_account.unwrap_or_else(|| Account {
        name: caller.uid.to_string(),
        uid: caller.uid,
        gid: caller.gid,
        home: "/".into(),
    });
    let launch = Launch {
        mode: "logging-only".into(),
        source_uid: caller.uid,
        target_uid: Some(caller.uid),
        target_gid: Some(caller.gid),
        target_groups: caller.groups.clone(),
        account: account.name.clone(),
        mapped_by: "caller".into(),
        lease: None,
        workdir: workdir.as_ref().map(|w| w.path.display().to_string()),
        ..Launch::default()
    };
    let admitted_context = RecordContext {
        launch: Some(launch),
        ..context.clone()
    };
    let decision = admission.admit(&bundle, &invocation, &admitted_context);
    // The replay store and audit log stay out of the payload's reach.
    drop(admission);
    drop(host);
    if !decision.is_permit() {
        return fail(EXIT_DENIED, decision.code(), decision.message);
    }

    // The payload's environment (§14.7).
    let signed = decision
        .job
        .as_ref()
        .map_or(&[][..], |j| &j.environment[..]);
    let mut payload_env = payload_env(
        &env,
        &config.env_whitelist,
        signed,
        &account,
        workdir.as_ref().map(|w| w.path.as_path()),
        None,
    );
    // The proxy copy (§14.8): the caller's own file, written where the
    // caller says (all of it is the caller's to write anyway).
    let mut proxy_copy: Option<(PathBuf, Vec<u8>)> = None;
    if let Some(source) = env_var(&env, "GLEXEC_SOURCE_PROXY") {
        let destination = env_var(&env, "GLEXEC_TARGET_PROXY").map_or_else(
            || PathBuf::from(format!("/tmp/x509up_u{}", account.uid)),
            PathBuf::from,
        );
        if !destination.is_absolute() {
            return fail(
                EXIT_CLIENT,
                ExecReason::Proxy.code(),
                "GLEXEC_TARGET_PROXY must be an absolute path",
            );
        }
        let bytes = match proxy::read_source(Path::new(&source), caller.uid) {
            Ok(b) => b,
            Err(ProxyError::Client(m)) => return fail(EXIT_CLIENT, ExecReason::Proxy.code(), m),
            Err(ProxyError::Internal(m)) => {
                return fail(EXIT_INTERNAL, ExecReason::Proxy.code(), m);
            }
        };
        set_var(
            &mut payload_env,
            "X509_USER_PROXY",
            destination.clone().into_os_string(),
        );
        proxy_copy = Some((destination, bytes));
    }
    if let Some(w) = &mut workdir {
        w.hand_over(account.uid, account.gid)
            .or_else(|m| fail(EXIT_INTERNAL, ExecReason::Workdir.code(), m))?;
    }
    if let Some((destination, bytes)) = proxy_copy {
        proxy::write_here(&destination, &bytes)
            .or_else(|m| fail(EXIT_INTERNAL, ExecReason::Proxy.code(), m))?;
    }

    // Run the sealed copy; stay its parent to report its exit code, and
    // forward the signals sent to us.
    let mut cmd = Command::new(sealed.path());
    cmd.arg0(command).args(rest).env_clear().envs(payload_env);
    if let Some(w) = &workdir {
        cmd.current_dir(&w.path);
    }
    let status = signals::run_forwarding(&mut cmd, None).or_else(|e| match e {
        signals::RunError::Spawn(e) => fail(
            EXIT_NOT_EXECUTABLE,
            ExecReason::NotExecutable.code(),
            format!("{}: {e}", command.to_string_lossy()),
        ),
        signals::RunError::Setup(m) | signals::RunError::Wait(m) => {
            fail(EXIT_INTERNAL, Reason::Internal.code(), m)
        }
    })?;
    drop(sealed);
    Ok(exit_code(status))
}
