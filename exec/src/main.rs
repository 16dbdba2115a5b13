//! `jobseal-exec COMMAND [ARGS...]`: a gLExec-compatible launcher that admits
//! the job (check, policy, replay, audit: `spec/jobseal.md` §6.7) before it
//! runs anything, then runs exactly the bytes it admitted, under the mapped
//! account (identity switching) or the caller's own (logging-only).
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

use jobseal_admit::admit::{Admission, Dirs, record_outside, record_setup_failure};
use jobseal_admit::audit::{AuditRecord, Launch, RecordContext};
use jobseal_exec::account::{self, Account};
use jobseal_exec::config::{self, ExecConfig, Mode, check_root_owned, check_root_owned_tree};
use jobseal_exec::creds::{self, Caller};
use jobseal_exec::mapping::{map_target, primary_fqan};
use jobseal_exec::payload::{self, PayloadError};
use jobseal_exec::proxy::{self, ProxyError};
use jobseal_exec::reason::ExecReason;
use jobseal_exec::workdir::{self, WorkDir};
use jobseal_exec::{
    EXIT_CLIENT, EXIT_DENIED, EXIT_INTERNAL, EXIT_NOT_EXECUTABLE, Fail, MAX_BUNDLE_BYTES,
    SAFE_PATH, exit_code, fail, one_line, passes, peek_manifest, signals,
};
use jobseal_policy::Policy;
use jobseal_verify::Reason;
use jobseal_verify::{Config, Invocation};

/// Names the non-privileged launcher reads its configuration from instead
/// of `/etc/jobseal/exec.toml`; ignored in privileged use.
const CONFIG_ENV: &str = "JOBSEAL_EXEC_CONFIG";

/// `jobseal-exec --version`: the version and the git commit it was built
/// from (build.rs; `unknown` outside a git tree).
const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (commit ",
    env!("JOBSEAL_BUILD_COMMIT"),
    ")"
);

fn main() -> ExitCode {
    let mut args = std::env::args_os().skip(1);
    let first = args.next();
    if first.as_deref() == Some(OsStr::new(creds::TRAMPOLINE)) {
        let rest: Vec<OsString> = args.collect();
        return creds::trampoline(&rest);
    }
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
    let inherited = inherited_descriptors();
    match run(inherited.as_deref()) {
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
    let flags = rustix::fs::OFlags::NOFOLLOW | rustix::fs::OFlags::NONBLOCK;
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(flags.bits() as i32)
        .open(path)
        .or_else(|e| {
            fail(
                EXIT_CLIENT,
                ExecReason::Credential.code(),
                format!("GLEXEC_CLIENT_CERT {shown}: {e}"),
            )
        })?;
    let meta = file.metadata().or_else(|e| {
        fail(
            EXIT_CLIENT,
            ExecReason::Credential.code(),
            format!("GLEXEC_CLIENT_CERT {shown}: {e}"),
        )
    })?;
    if !meta.file_type().is_file() {
        return fail(
            EXIT_CLIENT,
            ExecReason::Credential.code(),
            format!("GLEXEC_CLIENT_CERT {shown}: not a regular file"),
        );
    }
    if meta.uid() != caller {
        return fail(
            EXIT_CLIENT,
            ExecReason::Credential.code(),
            format!("GLEXEC_CLIENT_CERT {shown}: not owned by the caller"),
        );
    }
    if meta.mode() & 0o022 != 0 {
        return fail(
            EXIT_CLIENT,
            ExecReason::Credential.code(),
            format!("GLEXEC_CLIENT_CERT {shown}: writable by group or others"),
        );
    }
    let mut bytes = Vec::new();
    file.take(MAX_BUNDLE_BYTES)
        .read_to_end(&mut bytes)
        .or_else(|e| {
            fail(
                EXIT_CLIENT,
                ExecReason::Credential.code(),
                format!("GLEXEC_CLIENT_CERT {shown}: {e}"),
            )
        })?;
    Ok(bytes)
}

/// gLExec's payload check, where the copy alone does not settle it: the
/// original belongs to the caller, the target or root, and nobody else can
/// write it.
fn check_payload_owner(meta: &std::fs::Metadata, caller: u32, target: u32) -> Result<(), Fail> {
    if ![caller, target, 0].contains(&meta.uid()) {
        return fail(
            EXIT_DENIED,
            ExecReason::PayloadUntrusted.code(),
            "the executable is owned by neither the caller, the target account nor root",
        );
    }
    if meta.mode() & 0o022 != 0 {
        return fail(
            EXIT_DENIED,
            ExecReason::PayloadUntrusted.code(),
            "the executable is writable by group or others",
        );
    }
    if meta.mode() & 0o6000 != 0 {
        return fail(
            EXIT_DENIED,
            ExecReason::PayloadUntrusted.code(),
            "the executable is setuid or setgid",
        );
    }
    Ok(())
}

fn load_policy(config: &ExecConfig, privileged: bool) -> Result<Policy, Fail> {
    let loaded = match &config.policy {
        Some(path) => {
            if privileged {
                check_root_owned(path)
                    .or_else(|m| fail(EXIT_INTERNAL, Reason::ConfigInvalid.code(), m))?;
            }
            Policy::load(path)
        }
        None => {
            let default = Path::new(jobseal_policy::DEFAULT_PATH);
            if privileged && std::fs::symlink_metadata(default).is_ok() {
                check_root_owned(default)
                    .or_else(|m| fail(EXIT_INTERNAL, Reason::ConfigInvalid.code(), m))?;
            }
            Policy::load_default()
        }
    };
    loaded.or_else(|e| fail(EXIT_INTERNAL, e.reason.code(), e.message))
}

/// Descriptors above 2 open at start-up: inherited without close-on-exec
/// (the kernel closed the others at exec). Read before this process opens
/// anything of its own.
fn inherited_descriptors() -> Option<Vec<u32>> {
    use rustix::fs::{Mode, OFlags};
    use std::os::fd::AsRawFd;
    let dir = rustix::fs::open(
        "/proc/self/fd",
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .ok()?;
    // The listing's own descriptor is not inherited.
    let own = u32::try_from(dir.as_raw_fd()).unwrap_or(u32::MAX);
    // `Dir::new` reads through this very descriptor (`read_from` would
    // open another one).
    let entries = rustix::fs::Dir::new(dir).ok()?;
    let mut fds = Vec::new();
    for entry in entries {
        let name = entry.ok()?;
        let name = name.file_name().to_str().ok()?;
        if name == "." || name == ".." {
            continue;
        }
        let fd: u32 = name.parse().ok()?;
        if fd > 2 && fd != own {
            fds.push(fd);
        }
    }
    fds.sort_unstable();
    Some(fds)
}

/// Once the configuration is known, the launcher's refusals go to the audit
/// log too (§14.4): everything except usage and configuration errors.
struct Refusals<'a> {
    policy: Option<&'a Policy>,
    dirs: Option<&'a Dirs>,
    context: &'a RecordContext,
}

impl Refusals<'_> {
    fn record(&self, f: Fail, decision: Option<&jobseal_verify::Decision>) -> Fail {
        if let Some(dirs) = self.dirs {
            let base = decision.cloned().unwrap_or_else(|| {
                jobseal_verify::Decision::from_error(jobseal_verify::Error::new(
                    Reason::Internal,
                    f.2.clone(),
                ))
            });
            let mut record = AuditRecord::refusal(&base, f.1, self.context);
            record.message.clone_from(&f.2);
            // Best effort: the refusal stands whether or not it is logged.
            let _ = record_outside(self.policy, dirs, record);
        }
        f
    }
}

fn run(inherited: Option<&[u32]>) -> Result<u8, Fail> {
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
    let caller = Caller::current();
    let privileged = rustix::process::geteuid().is_root();
    // The pilot chose this process's file-size limit: a limit that cuts an
    // audit record short would tear the shared log. Lifted while the
    // launcher writes; the payload gets the caller's back.
    let caller_fsize = rustix::process::getrlimit(rustix::process::Resource::Fsize);
    if privileged {
        creds::lift_file_size_limit();
        // Nor does the pilot choose the modes of what the launcher makes.
        rustix::process::umask(rustix::fs::Mode::from_raw_mode(0o022));
    }
    let env: Vec<(OsString, OsString)> = std::env::vars_os().collect();

    // Configuration: in privileged use only the root-owned file.
    let config_path = match env_var(&env, CONFIG_ENV) {
        Some(p) if !privileged => PathBuf::from(p),
        _ => PathBuf::from(config::DEFAULT_PATH),
    };
    let config = ExecConfig::load(&config_path, privileged)
        .or_else(|m| fail(EXIT_INTERNAL, Reason::ConfigInvalid.code(), m))?;
    match (privileged, config.mode) {
        (true, Mode::LoggingOnly) => {
            return fail(
                EXIT_INTERNAL,
                Reason::ConfigInvalid.code(),
                "logging-only mode would run payloads as root: use identity-switching, or run jobseal-exec unprivileged",
            );
        }
        (true, Mode::Service) => {
            return fail(
                EXIT_INTERNAL,
                Reason::ConfigInvalid.code(),
                "in service mode jobseal-exec is the pilot's client and must not be setuid: chmod u-s it",
            );
        }
        (false, Mode::Service) => {
            return jobseal_exec::client::run(&config, command, rest, &env);
        }
        (false, Mode::IdentitySwitching) => {
            return fail(
                EXIT_INTERNAL,
                Reason::ConfigInvalid.code(),
                "identity-switching mode needs jobseal-exec to run as root (setuid)",
            );
        }
        _ => {}
    }
    // Fully root from here until the payload is spawned (§14.9): the pilot
    // cannot stop the launcher while it holds the shared locks.
    let window = creds::RootWindow::open(&caller)
        .or_else(|m| fail(EXIT_INTERNAL, Reason::Internal.code(), m))?;
    let dirs = match &config.state_dir {
        Some(d) => Dirs::under(d),
        None => {
            let xdg = env_var(&env, "XDG_STATE_HOME").map(PathBuf::from);
            let home = env_var(&env, "HOME").map(PathBuf::from);
            let uid = if privileged { 0 } else { caller.uid };
            Dirs::for_user(Some(uid), xdg.as_deref(), home.as_deref())
                .or_else(|e| fail(EXIT_INTERNAL, e.reason.code(), e.message))?
        }
    };
    let mut policy = load_policy(&config, privileged)?;
    // Mapping a DN to an account trusts the CA for the names it issues:
    // every CA of the path must have a namespace policy (§14.6).
    if config.mode == Mode::IdentitySwitching {
        policy.namespaces = jobseal_verify::NamespacePolicy::Require;
    }
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
    let refuse = |f: Fail| refusals.record(f, None);

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
    // Descriptors the payload would inherit under another account: a
    // launcher cannot close them safely, so it refuses to carry them over.
    if config.mode == Mode::IdentitySwitching {
        let Some(inherited) = inherited else {
            return Err(refuse(Fail(
                EXIT_INTERNAL,
                Reason::Internal.code(),
                "cannot list the inherited descriptors (/proc/self/fd)".into(),
            )));
        };
        if !inherited.is_empty() {
            return Err(refuse(Fail(
                EXIT_CLIENT,
                ExecReason::Descriptor.code(),
                format!(
                    "descriptors {inherited:?} are open without close-on-exec: the payload would inherit them under another account; close them before calling jobseal-exec"
                ),
            )));
        }
        // A terminal would let the payload type into the pilot's session
        // (TIOCSTI): identity switching runs batch payloads only.
        let streams = [
            std::io::IsTerminal::is_terminal(&std::io::stdin()),
            std::io::IsTerminal::is_terminal(&std::io::stdout()),
            std::io::IsTerminal::is_terminal(&std::io::stderr()),
        ];
        if let Some(n) = streams.iter().position(|t| *t) {
            return Err(refuse(Fail(
                EXIT_CLIENT,
                ExecReason::Descriptor.code(),
                format!(
                    "standard stream {n} is a terminal: a payload under another account must not reach it"
                ),
            )));
        }
    }

    // The job's bundle.
    let Some(bundle_path) = env_var(&env, "GLEXEC_CLIENT_CERT") else {
        return Err(refuse(Fail(
            EXIT_CLIENT,
            ExecReason::Credential.code(),
            "GLEXEC_CLIENT_CERT is not set".into(),
        )));
    };
    let bundle = creds::as_caller(&caller, || {
        read_credential(Path::new(&bundle_path), caller.uid)
    })
    .or_else(|m| fail(EXIT_INTERNAL, Reason::Internal.code(), m))
    .and_then(|r| r)
    .map_err(refuse)?;

    // The payload's bytes, sealed: what admission hashes is what runs. The
    // pilot names the file, so it is opened with the pilot's rights.
    let search = if privileged {
        SAFE_PATH.to_string()
    } else {
        env_var(&env, "PATH").map_or_else(
            || SAFE_PATH.to_string(),
            |p| p.to_string_lossy().into_owned(),
        )
    };
    let sealed = creds::as_caller(&caller, || {
        let Some(executable) = payload::resolve(Path::new(command), &search) else {
            return fail(
                EXIT_NOT_EXECUTABLE,
                ExecReason::NotExecutable.code(),
                format!("{}: command not found", command.to_string_lossy()),
            );
        };
        payload::seal_copy(&executable).or_else(|e| match e {
            PayloadError::NotExecutable(m) => {
                fail(EXIT_NOT_EXECUTABLE, ExecReason::NotExecutable.code(), m)
            }
            PayloadError::Internal(m) => fail(EXIT_INTERNAL, Reason::Internal.code(), m),
        })
    })
    .or_else(|m| fail(EXIT_INTERNAL, Reason::Internal.code(), m))
    .and_then(|r| r)
    .map_err(refuse)?;

    // Admission set-up.
    let ca_dir = config
        .ca_dir
        .clone()
        .unwrap_or_else(|| PathBuf::from(jobseal_verify::DEFAULT_CA_DIR));
    let voms_dir = config
        .voms_dir
        .clone()
        .unwrap_or_else(|| PathBuf::from(jobseal_verify::DEFAULT_VOMS_DIR));
    if privileged {
        check_root_owned_tree(&ca_dir, 1)
            .and_then(|()| {
                if std::fs::symlink_metadata(&voms_dir).is_ok() {
                    check_root_owned_tree(&voms_dir, 2)
                } else {
                    Ok(())
                }
            })
            .or_else(|m| fail(EXIT_INTERNAL, Reason::ConfigInvalid.code(), m))
            .map_err(refuse)?;
    }
    let verifier_config = Config {
        ca_dir,
        voms_dir,
        ..Config::default()
    };
    let admission = match Admission::open(verifier_config, policy.clone(), &dirs) {
        Ok(a) => a,
        Err(e) => {
            let decision = jobseal_verify::Decision::from_error(e);
            record_setup_failure(Some(&policy), &dirs, &decision, &context);
            return fail(EXIT_INTERNAL, decision.code(), decision.message);
        }
    };

    // The fresh working directory, with copies of the inputs for admission
    // to hash (the job's own directory otherwise). Made only for a job
    // whose credential and manifest check out (steps 1–4 and policy), so a
    // pilot cannot have the launcher copy data for a forged manifest.
    let credential_ok = admission
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
            let mut w = WorkDir::make(&root, &peeked.job_id_hex(), privileged)
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

    // Who the payload runs as. Identity switching maps (and checks the
    // target, and the original executable against it) from a side-effect-
    // free check BEFORE admission records the use, so a job that cannot be
    // mapped keeps its use. A check deny falls through to `admit`, which
    // denies it again and records it.
    let mapped = if config.mode == Mode::IdentitySwitching {
        let checked = admission.check(&bundle, &invocation);
        match &checked.identity {
            Some(identity) if checked.is_permit() => {
                let record = |f: Fail| refusals.record(f, Some(&checked));
                let m = map_target(&config, identity).map_err(record)?;
                check_payload_owner(&sealed.original, caller.uid, m.account.uid).map_err(record)?;
                Some(m)
            }
            _ => None,
        }
    } else {
        None
    };
    let launch = match &mapped {
        Some(m) => Launch {
            mode: "identity-switching".into(),
            source_uid: caller.uid,
            target_uid: Some(m.account.uid),
            target_gid: Some(m.account.gid),
            target_groups: m.groups.clone(),
            account: m.account.name.clone(),
            mapped_by: m.mapped_by.into(),
            lease: m.lease.clone(),
            workdir: workdir.as_ref().map(|w| w.path.display().to_string()),
            ..Launch::default()
        },
        None => Launch {
            mode: "logging-only".into(),
            source_uid: caller.uid,
            target_uid: Some(caller.uid),
            target_gid: Some(caller.gid),
            target_groups: caller.groups.clone(),
            account: caller_account
                .as_ref()
                .map_or_else(|| caller.uid.to_string(), |a| a.name.clone()),
            mapped_by: "caller".into(),
            lease: None,
            workdir: workdir.as_ref().map(|w| w.path.display().to_string()),
            ..Launch::default()
        },
    };
    let admitted_context = RecordContext {
        launch: Some(launch),
        ..context.clone()
    };
    let decision = admission.admit(&bundle, &invocation, &admitted_context);
    // The replay store and audit log stay out of the payload's reach.
    drop(admission);
    if !decision.is_permit() {
        return fail(EXIT_DENIED, decision.code(), decision.message);
    }

    let target = match (config.mode, mapped, &decision.identity) {
        // The admitted identity must be the one mapped (same bundle, so
        // only a bug could make them differ).
        (Mode::IdentitySwitching, Some(m), Some(identity))
            if m.key.0 == identity.end_entity
                && (m.key.1.is_none() || m.key.1 == primary_fqan(identity)) =>
        {
            Some(m)
        }
        (Mode::IdentitySwitching, ..) => {
            return fail(
                EXIT_INTERNAL,
                Reason::Internal.code(),
                "the admitted identity is not the one that was mapped",
            );
        }
        (Mode::LoggingOnly, ..) => None,
        (Mode::Service, ..) => {
            return fail(
                EXIT_INTERNAL,
                Reason::Internal.code(),
                "service mode reached the local launcher",
            );
        }
    };
    let (account, groups) = match &target {
        Some(m) => (m.account.clone(), m.groups.clone()),
        None => (
            caller_account.unwrap_or_else(|| Account {
                name: caller.uid.to_string(),
                uid: caller.uid,
                gid: caller.gid,
                home: "/".into(),
            }),
            caller.groups.clone(),
        ),
    };

    // The payload's environment (§14.7): the caller's whitelisted names,
    // the fixed PATH, then what the user signed, then the target's own.
    let mut payload_env: Vec<(OsString, OsString)> = env
        .iter()
        .filter(|(k, _)| passes(k, &config.env_whitelist))
        .cloned()
        .collect();
    let mut set = |k: &str, v: OsString| {
        payload_env.retain(|(n, _)| n != k);
        payload_env.push((k.into(), v));
    };
    set("PATH", SAFE_PATH.into());
    for (k, v) in decision.job.iter().flat_map(|j| j.environment.iter()) {
        set(k, v.into());
    }
    set("HOME", account.home.clone().into());
    set("USER", account.name.clone().into());
    set("LOGNAME", account.name.clone().into());
    if let Some(w) = &workdir {
        set("JOBSEAL_WORKDIR", w.path.clone().into_os_string());
    }
    let as_target = Caller {
        uid: account.uid,
        gid: account.gid,
        groups: groups.clone(),
    };
    // The proxy copy (§14.8), then the hand-over of the working directory.
    let mut proxy_after_hand_over: Option<(PathBuf, Vec<u8>)> = None;
    if let Some(source) = env_var(&env, "GLEXEC_SOURCE_PROXY") {
        let default_tmp = PathBuf::from(format!("/tmp/x509up_u{}", account.uid));
        let requested = env_var(&env, "GLEXEC_TARGET_PROXY");
        // Identity switching: the pilot must not choose where the target
        // writes, nor what. Logging-only: all of it is the caller's own to
        // write anyway.
        let switching = config.mode == Mode::IdentitySwitching;
        let destination = if switching {
            proxy::destination(
                requested.as_deref(),
                workdir.as_ref().map(|w| w.path.as_path()),
                &default_tmp,
            )
            .or_else(|m| fail(EXIT_CLIENT, ExecReason::Proxy.code(), m))?
        } else {
            let d = requested.map_or(default_tmp.clone(), PathBuf::from);
            if !d.is_absolute() {
                return fail(
                    EXIT_CLIENT,
                    ExecReason::Proxy.code(),
                    "GLEXEC_TARGET_PROXY must be an absolute path",
                );
            }
            d
        };
        let Some(dn) = decision.identity.as_ref().map(|i| i.end_entity.clone()) else {
            return fail(
                EXIT_INTERNAL,
                Reason::Internal.code(),
                "a permit without identity",
            );
        };
        // Read with the caller's rights; only a proxy of the admitted user.
        let bytes = creds::as_caller(&caller, || {
            proxy::read_source(Path::new(&source), caller.uid)
        })
        .map_err(ProxyError::Internal)
        .and_then(|r| r)
        .and_then(|bytes| {
            if switching {
                proxy::check_owner(&bytes, &dn)?;
            }
            Ok(bytes)
        });
        let bytes = match bytes {
            Ok(b) => b,
            Err(ProxyError::Client(m)) => return fail(EXIT_CLIENT, ExecReason::Proxy.code(), m),
            Err(ProxyError::Internal(m)) => {
                return fail(EXIT_INTERNAL, ExecReason::Proxy.code(), m);
            }
        };
        let in_workdir = workdir
            .as_ref()
            .filter(|w| destination.parent() == Some(w.path.as_path()));
        match (switching, in_workdir) {
            // Into the working directory while only root can enter it: a
            // new file (never over a verified input), handed over below.
            (true, Some(_)) => {
                let name = destination
                    .file_name()
                    .and_then(|n| n.to_str())
                    .unwrap_or_default()
                    .to_string();
                let Some(w) = workdir.as_mut() else {
                    return fail(
                        EXIT_INTERNAL,
                        Reason::Internal.code(),
                        "no working directory",
                    );
                };
                let (_, mut file) = w
                    .create_file(&name)
                    .or_else(|m| fail(EXIT_CLIENT, ExecReason::Proxy.code(), m))?;
                std::io::Write::write_all(&mut file, &bytes)
                    .and_then(|()| file.sync_all())
                    .or_else(|e| {
                        fail(
                            EXIT_INTERNAL,
                            ExecReason::Proxy.code(),
                            format!("{}: {e}", destination.display()),
                        )
                    })?;
            }
            // `/tmp/x509up_u<uid>` (or anywhere, logging-only): written with
            // the target's rights once the directory is handed over.
            _ => proxy_after_hand_over = Some((destination.clone(), bytes)),
        }
        set("X509_USER_PROXY", destination.into_os_string());
    }
    if let Some(w) = &mut workdir {
        w.hand_over(account.uid, account.gid)
            .or_else(|m| fail(EXIT_INTERNAL, ExecReason::Workdir.code(), m))?;
    }
    if let Some((destination, bytes)) = proxy_after_hand_over {
        creds::as_caller(&as_target, || proxy::write_here(&destination, &bytes))
            .and_then(|r| r)
            .or_else(|m| fail(EXIT_INTERNAL, ExecReason::Proxy.code(), m))?;
    }

    // The pilot may signal the launcher again (and so the payload).
    window
        .restore()
        .or_else(|m| fail(EXIT_INTERNAL, Reason::Internal.code(), m))?;

    // Run the sealed copy; stay its parent to report its exit code.
    let status_pipe;
    let mut cmd = if let Some(m) = &target {
        status_pipe = Some(
            creds::StatusPipe::new()
                .or_else(|m| fail(EXIT_INTERNAL, Reason::Internal.code(), m))?,
        );
        let Some(pipe) = &status_pipe else {
            return fail(EXIT_INTERNAL, Reason::Internal.code(), "no status pipe");
        };
        let Some(w) = &workdir else {
            return fail(
                EXIT_INTERNAL,
                Reason::Internal.code(),
                "no working directory",
            );
        };
        pipe.command(&creds::Launch {
            target: &creds::Target {
                uid: m.account.uid,
                gid: m.account.gid,
                groups,
            },
            program: &sealed.path(),
            workdir: &w.path,
            argv0: command,
            args: rest,
            env: &payload_env,
            limits: &[(creds::Resource::Fsize, caller_fsize)],
            cgroup: None,
        })
    } else {
        status_pipe = None;
        let mut c = Command::new(sealed.path());
        c.arg0(command).args(rest).env_clear().envs(payload_env);
        if let Some(w) = &workdir {
            c.current_dir(&w.path);
        }
        c
    };
    // The payload stays our child; signals sent to us are forwarded to it,
    // with the target's rights (never root's).
    let forward_as = target.as_ref().map(|m| (m.account.uid, m.account.gid));
    let status = signals::run_forwarding(&mut cmd, forward_as).or_else(|e| match e {
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
    // The trampoline's own failure (before the payload existed).
    if let Some((code, reason, message)) = status_pipe.and_then(creds::StatusPipe::failure) {
        let reason = match reason.as_str() {
            r if r == ExecReason::NotExecutable.code() => ExecReason::NotExecutable.code(),
            _ => Reason::Internal.code(),
        };
        return fail(code, reason, message);
    }
    Ok(exit_code(status))
}
