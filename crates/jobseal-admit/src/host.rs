//! How admission is hosted, once for every face (the CLI's `jobseal
//! admit`, the C API, the Python module, `jobseal-exec` in logging-only
//! mode, the launch service `jobseal-launchd`): where its state lives, the side-effect-free checker built once,
//! the replay store and audit log opened lazily and kept, the fork guard,
//! and the records of set-up failures.
//!
//! The rules it holds:
//! - **Directories.** Named by the caller: both under that one, winning
//!   over the policy's `state_dir`/`log_dir`. Otherwise, for root,
//!   `/var/lib/jobseal` and `/var/log/jobseal`; for anyone else
//!   `$XDG_STATE_HOME/jobseal` or `~/.local/state/jobseal`, read once. A
//!   process that runs setuid or setgid (real, effective and saved ids
//!   differ), or whose ids cannot be read, takes nothing from its
//!   environment ([`environment_untrusted`]): its environment is its
//!   caller's.
//! - **Fork.** Admission belongs to the process that opened it. In another
//!   process (a child after `fork`) it denies, recorded by path; the
//!   parent's admission is never closed from the child.
//! - **Fail closed.** A failure to set admission up is a deny with its
//!   reason, recorded where it still can be.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use jobseal_core::{Error, Reason};
use jobseal_policy::{Checker, Policy};
use jobseal_verify::{Config, Decision, Invocation};

use crate::admit::{Admission, Dirs, record_outside, record_setup_failure};
use crate::audit::{AuditRecord, RecordContext};

/// Where admission keeps its state, chosen once (when the host is built,
/// or earlier by a caller that must know before anything else).
#[derive(Clone, Debug)]
pub struct StateDirs {
    dirs: Result<Dirs, Error>,
    /// Named by the caller: wins over the policy's directories.
    named: bool,
}

impl StateDirs {
    /// Both under `dir`, which wins over the policy's `state_dir` and
    /// `log_dir` (`jobseal admit --state-dir`, the bindings' `state_dir`).
    pub fn named(dir: &Path) -> Self {
        Self {
            dirs: Ok(Dirs::under(dir)),
            named: true,
        }
    }

    /// `dirs`, where the policy names no directory of its own (the
    /// launcher's `state_dir`, the launch service's system directories).
    pub fn fallback(dirs: Dirs) -> Self {
        Self {
            dirs: Ok(dirs),
            named: false,
        }
    }

    /// This process's default, read now from `/proc/self/status` and the
    /// environment ([`default_dirs`]); the policy's directories win.
    pub fn process_default() -> Self {
        let status = std::fs::read_to_string("/proc/self/status").ok();
        let xdg = std::env::var_os("XDG_STATE_HOME").map(PathBuf::from);
        let home = std::env::var_os("HOME").map(PathBuf::from);
        Self {
            dirs: default_dirs(status.as_deref(), xdg.as_deref(), home.as_deref()),
            named: false,
        }
    }

    /// The directories, or why there are none (a deny on admission).
    pub fn dirs(&self) -> Result<&Dirs, &Error> {
        self.dirs.as_ref()
    }

    /// `policy` as admission uses it: without its own directories when
    /// the caller named one.
    fn apply(&self, mut policy: Policy) -> Policy {
        if self.named {
            policy.state_dir = None;
            policy.log_dir = None;
        }
        policy
    }
}

/// Why this process must not take settings (directories, trust paths)
/// from its environment, or `None` if it may. `status` is the text of
/// `/proc/self/status` (`None`: it could not be read, which fails closed).
/// The rule: any real, effective or saved uid or gid differing from the
/// others means setuid or setgid, whose environment is its caller's. (The
/// owner of `/proc/self` is no substitute for these lines: it is root in a
/// process that is not dumpable.)
pub fn environment_untrusted(status: Option<&str>) -> Option<String> {
    let Some(ids) = status.and_then(ProcessIds::parse) else {
        return Some("its uids and gids cannot be read from /proc/self/status".into());
    };
    ids.setid().then(|| {
        let [u0, u1, u2] = ids.uid;
        let [g0, g1, g2] = ids.gid;
        format!(
            "it runs setuid or setgid (uids {u0}/{u1}/{u2}, gids {g0}/{g1}/{g2}: real/effective/saved)"
        )
    })
}

/// [`environment_untrusted`] of this process, now.
pub fn this_environment_untrusted() -> Option<String> {
    environment_untrusted(std::fs::read_to_string("/proc/self/status").ok().as_deref())
}

/// The default directories of a process whose `/proc/self/status` reads
/// `status`, with `XDG_STATE_HOME` and `HOME` as given: root's (effective
/// uid 0) are fixed and read nothing from the environment; anyone else's
/// come from it ([`Dirs::for_user`]) unless [`environment_untrusted`].
pub fn default_dirs(
    status: Option<&str>,
    xdg_state_home: Option<&Path>,
    home: Option<&Path>,
) -> Result<Dirs, Error> {
    let effective = status.and_then(ProcessIds::parse).map(|ids| ids.uid[1]);
    if effective == Some(0) {
        return Dirs::for_user(Some(0), None, None);
    }
    if let Some(why) = environment_untrusted(status) {
        return Err(Error::new(
            Reason::ConfigInvalid,
            format!(
                "no state directory: {why}, so none is taken from HOME or XDG_STATE_HOME; \
                 give one (state_dir, --state-dir)"
            ),
        ));
    }
    Dirs::for_user(effective, xdg_state_home, home)
}

/// Real, effective and saved ids of the `Uid:` and `Gid:` lines.
struct ProcessIds {
    uid: [u32; 3],
    gid: [u32; 3],
}

impl ProcessIds {
    fn parse(status: &str) -> Option<Self> {
        let ids = |key| {
            let [real, effective, saved, _] = jobseal_core::procstatus::ids(status, key)?;
            Some([real, effective, saved])
        };
        Some(Self {
            uid: ids("Uid:")?,
            gid: ids("Gid:")?,
        })
    }

    fn setid(&self) -> bool {
        let differ = |ids: [u32; 3]| ids.iter().any(|&i| i != ids[0]);
        differ(self.uid) || differ(self.gid)
    }
}

/// The paths a binding is given (`None`: the system default), made
/// absolute once: a host that changes directory later (into a job's) must
/// not change its CA directory, policy or state directory, which admission
/// opens on first use.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HostPaths {
    pub ca_dir: Option<PathBuf>,
    pub voms_dir: Option<PathBuf>,
    pub policy: Option<PathBuf>,
    pub state_dir: Option<PathBuf>,
}

impl HostPaths {
    /// Each path made absolute against the current directory now.
    pub fn absolute(self) -> Result<Self, Error> {
        let abs = |p: Option<PathBuf>| p.as_deref().map(absolute).transpose();
        Ok(Self {
            ca_dir: abs(self.ca_dir)?,
            voms_dir: abs(self.voms_dir)?,
            policy: abs(self.policy)?,
            state_dir: abs(self.state_dir)?,
        })
    }

    /// The state directory named, else this process's default (which
    /// reads the environment: call it where that is safe to read).
    pub fn state_dirs(&self) -> StateDirs {
        match &self.state_dir {
            Some(dir) => StateDirs::named(dir),
            None => StateDirs::process_default(),
        }
    }

    /// The verifier's directories: those given, else the system's.
    pub fn config(&self) -> Config {
        let or = |p: &Option<PathBuf>, default: &str| p.clone().unwrap_or_else(|| default.into());
        Config {
            ca_dir: or(&self.ca_dir, jobseal_verify::DEFAULT_CA_DIR),
            voms_dir: or(&self.voms_dir, jobseal_verify::DEFAULT_VOMS_DIR),
            ..Config::default()
        }
    }

    /// The policy file given, else `/etc/jobseal/policy.toml` if it
    /// exists, else the built-in policy.
    pub fn load_policy(&self) -> Result<Policy, Error> {
        match &self.policy {
            Some(path) => Policy::load(path),
            None => Policy::load_default(),
        }
    }
}

/// `path` made absolute against the current directory now.
pub fn absolute(path: &Path) -> Result<PathBuf, Error> {
    std::path::absolute(path).map_err(|e| {
        Error::new(
            Reason::ConfigInvalid,
            format!("cannot make the path {:?} absolute: {e}", path.display()),
        )
    })
}

/// Admissions opened by a parent process and dropped in a child after
/// `fork`: kept, never closed (closing the parent's SQLite connection from
/// the child could checkpoint and remove the parent's journal).
static ORPHANED: Mutex<Vec<Arc<Admission>>> = Mutex::new(Vec::new());

/// Admission as a long-lived process hosts it: the checker (steps 1–6,
/// built once, shared by threads) and, opened on first use, the replay
/// store and audit log (steps 7–8). Thread-safe; not across `fork`.
pub struct AdmissionHost {
    checker: Checker,
    config: Config,
    state: StateDirs,
    admission: Mutex<Option<Arc<Admission>>>,
    /// The process that opened `admission` (0: not opened): its replay
    /// database (SQLite) and audit log must not be used from a child.
    opened_in: AtomicU32,
}

impl std::fmt::Debug for AdmissionHost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdmissionHost")
            .field("checker", &self.checker)
            .field("state", &self.state)
            .finish_non_exhaustive()
    }
}

impl Drop for AdmissionHost {
    fn drop(&mut self) {
        let opened_in = *self.opened_in.get_mut();
        if opened_in == 0 || opened_in == std::process::id() {
            return;
        }
        let slot = self
            .admission
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(a) = slot.take() {
            // try_lock: a thread of the parent may have held it at the fork.
            match ORPHANED.try_lock() {
                Ok(mut kept) => kept.push(a),
                Err(_) => std::mem::forget(a),
            }
        }
    }
}

/// The deny of an admission used in another process than the one that
/// opened it.
fn across_fork(opened_in: u32, pid: u32) -> Error {
    Error::new(
        Reason::Internal,
        format!(
            "used across fork: this verifier's admission (replay database, audit log) was \
             opened in process {opened_in}, not in this process {pid}; build a new verifier \
             after fork"
        ),
    )
}

impl AdmissionHost {
    /// A host over `config` and `policy`, keeping state in `state`. Reads
    /// the CA directory now (an unusable one is `config.invalid`); opens
    /// nothing for admission yet, so a host used only to check needs no
    /// writable directory.
    pub fn new(config: Config, policy: Policy, state: StateDirs) -> Result<Self, Error> {
        let checker = Checker::new(config.clone(), state.apply(policy))?;
        Ok(Self {
            checker,
            config,
            state,
            admission: Mutex::new(None),
            opened_in: AtomicU32::new(0),
        })
    }

    /// A host from a binding's paths (made absolute by the caller):
    /// [`HostPaths::config`], [`HostPaths::load_policy`], `state`.
    pub fn load(paths: &HostPaths, state: StateDirs) -> Result<Self, Error> {
        Self::new(paths.config(), paths.load_policy()?, state)
    }

    /// As [`AdmissionHost::new`] for a launcher that records every deny:
    /// an unusable policy or CA directory is a deny, recorded in the audit
    /// log the policy names, or the default one (best effort).
    pub fn new_or_record(
        config: Config,
        policy: Result<Policy, Error>,
        state: StateDirs,
        context: &RecordContext,
    ) -> Result<Self, Box<Decision>> {
        let policy = policy.map(|p| state.apply(p));
        let made = policy
            .clone()
            .and_then(|p| Self::new(config, p, state.clone()));
        made.map_err(|e| {
            let d = Decision::from_error(e);
            if let Ok(dirs) = state.dirs() {
                record_setup_failure(policy.as_ref().ok(), dirs, &d, context);
            }
            Box::new(d)
        })
    }

    /// Steps 1–6, side-effect free.
    pub fn checker(&self) -> &Checker {
        &self.checker
    }

    /// The site policy (without its directories if the caller named one).
    pub fn policy(&self) -> &Policy {
        self.checker.policy()
    }

    /// The verifier's configuration (CA and VOMS directories).
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Where admission keeps its state.
    pub fn state(&self) -> &StateDirs {
        &self.state
    }

    /// Admission, opened now if it is not yet, and kept. A failure to open
    /// it is a deny, recorded where it still can be, and tried again next
    /// time; in another process than the one that opened it (after
    /// `fork`), a deny, recorded by path.
    pub fn open(&self, context: &RecordContext) -> Result<Arc<Admission>, Box<Decision>> {
        self.open_in(std::process::id(), context)
    }

    /// [`AdmissionHost::open`] as process `pid`.
    fn open_in(&self, pid: u32, context: &RecordContext) -> Result<Arc<Admission>, Box<Decision>> {
        // No state directory at all: nowhere to record.
        let dirs = self
            .state
            .dirs()
            .map_err(|e| Box::new(Decision::from_error(e.clone())))?;
        let refuse = |e: Error| {
            let d = Decision::from_error(e);
            record_setup_failure(Some(self.policy()), dirs, &d, context);
            Box::new(d)
        };
        // After a fork the child must not take the lock (a thread of the
        // parent may have held it) nor use the parent's replay database.
        let opened_in = self.opened_in.load(Ordering::Acquire);
        if opened_in != 0 && opened_in != pid {
            return Err(refuse(across_fork(opened_in, pid)));
        }
        // A poisoned lock only means a panic elsewhere while it was held;
        // the Option it guards is always whole.
        let mut slot = self
            .admission
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(a) = slot.as_ref() {
            return Ok(Arc::clone(a));
        }
        let a = Admission::open(self.config.clone(), self.policy().clone(), dirs)
            .map(Arc::new)
            .map_err(refuse)?;
        self.opened_in.store(pid, Ordering::Release);
        *slot = Some(Arc::clone(&a));
        Ok(a)
    }

    /// Steps 1–8, now: admit (or refuse) the job about to run. A failure to
    /// set admission up is a deny with its reason (fail closed).
    pub fn admit(
        &self,
        bundle: &[u8],
        invocation: &Invocation,
        context: &RecordContext,
    ) -> Decision {
        match self.open(context) {
            Ok(admission) => admission.admit(bundle, invocation, context),
            Err(deny) => *deny,
        }
    }

    /// As [`AdmissionHost::admit`], with the bundle read by `read` once
    /// admission is open: a bundle that cannot be read is a deny recorded
    /// like any other.
    pub fn admit_read(
        &self,
        read: impl FnOnce() -> Result<Vec<u8>, Error>,
        invocation: &Invocation,
        context: &RecordContext,
    ) -> Decision {
        match self.open(context) {
            Ok(admission) => match read() {
                Ok(bundle) => admission.admit(&bundle, invocation, context),
                Err(e) => admission.record(Decision::from_error(e), context),
            },
            Err(deny) => *deny,
        }
    }

    /// Append a refusal made outside admission (a launcher's) to the audit
    /// log, opened by path for this record (so also from a child after
    /// `fork`). Errs if there is no state directory or it cannot be
    /// written: the refusal stands either way.
    pub fn record_refusal(&self, record: AuditRecord) -> Result<String, Error> {
        let dirs = self.state.dirs().map_err(Clone::clone)?;
        record_outside(Some(self.policy()), dirs, record)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;

    /// A `/proc/self/status` with these uid and gid lines.
    fn status(uid: &str, gid: &str) -> String {
        format!("Name:\tx\nUmask:\t0022\nUid:\t{uid}\nGid:\t{gid}\nGroups:\t\n")
    }

    #[test]
    fn the_environment_of_a_setuid_or_setgid_process_is_untrusted() {
        let plain = status("1000\t1000\t1000\t1000", "100\t100\t100\t100");
        assert_eq!(environment_untrusted(Some(&plain)), None);
        let root = status("0\t0\t0\t0", "0\t0\t0\t0");
        assert_eq!(environment_untrusted(Some(&root)), None);
        for (uid, gid) in [
            ("1000\t0\t0\t0", "100\t100\t100\t100"),        // setuid root
            ("1000\t1000\t0\t1000", "100\t100\t100\t100"),  // saved uid differs
            ("1000\t1000\t1000\t1000", "100\t5\t5\t5"),     // setgid
            ("1000\t1000\t1000\t1000", "100\t100\t5\t100"), // saved gid differs
            ("0\t1000\t0\t1000", "0\t0\t0\t0"),             // root, ids dropped for now
        ] {
            let why = environment_untrusted(Some(&status(uid, gid)));
            assert!(
                why.as_deref()
                    .is_some_and(|w| w.contains("setuid or setgid")),
                "{uid} / {gid}: {why:?}"
            );
        }
        // The filesystem id (the fourth) follows the effective one: not a sign.
        let fs = status("1000\t1000\t1000\t7", "100\t100\t100\t7");
        assert_eq!(environment_untrusted(Some(&fs)), None);
        // Unreadable or unparsable: fails closed.
        for bad in [
            None,
            Some("Name:\tx\n"),
            Some("Uid:\t1\t1\t1\nGid:\t1\t1\t1\t1\n"),
        ] {
            let why = environment_untrusted(bad).unwrap();
            assert!(why.contains("cannot be read"), "{why}");
        }
    }

    #[test]
    fn this_process_is_judged_by_its_own_status() {
        let text = std::fs::read_to_string("/proc/self/status").unwrap();
        assert_eq!(
            this_environment_untrusted(),
            environment_untrusted(Some(&text))
        );
        // The test runner is neither setuid nor setgid.
        assert_eq!(this_environment_untrusted(), None);
    }

    #[test]
    fn default_directories_follow_the_effective_uid_and_the_rule() {
        let xdg = Path::new("/xdg");
        let home = Path::new("/home/u");
        let user = status("1000\t1000\t1000\t1000", "100\t100\t100\t100");
        let d = default_dirs(Some(&user), Some(xdg), Some(home)).unwrap();
        assert_eq!(d, Dirs::under(Path::new("/xdg/jobseal")));
        let d = default_dirs(Some(&user), None, Some(home)).unwrap();
        assert_eq!(d, Dirs::under(Path::new("/home/u/.local/state/jobseal")));
        // A relative XDG_STATE_HOME is not a base directory.
        let d = default_dirs(Some(&user), Some(Path::new("rel")), Some(home)).unwrap();
        assert_eq!(d, Dirs::under(Path::new("/home/u/.local/state/jobseal")));
        let e = default_dirs(Some(&user), None, None).unwrap_err();
        assert_eq!(e.reason, Reason::ConfigInvalid);

        // Root's are fixed, whatever the environment, setuid root included.
        let system = Dirs::for_user(Some(0), None, None).unwrap();
        assert_eq!(system.state, Path::new("/var/lib/jobseal"));
        let root = status("0\t0\t0\t0", "0\t0\t0\t0");
        let setuid_root = status("1000\t0\t0\t0", "100\t100\t100\t100");
        for s in [&root, &setuid_root] {
            assert_eq!(
                default_dirs(Some(s), Some(xdg), Some(home)).unwrap(),
                system
            );
        }

        // Setuid or setgid to another account, or unknown ids: none.
        let setgid = status("1000\t1000\t1000\t1000", "100\t5\t5\t5");
        let setuid = status("1000\t2000\t2000\t2000", "100\t100\t100\t100");
        for (s, says) in [
            (Some(setgid.as_str()), "setuid or setgid"),
            (Some(setuid.as_str()), "setuid or setgid"),
            (None, "cannot be read"),
        ] {
            let e = default_dirs(s, Some(xdg), Some(home)).unwrap_err();
            assert_eq!(e.reason, Reason::ConfigInvalid);
            assert!(
                e.message.starts_with("no state directory: "),
                "{}",
                e.message
            );
            assert!(e.message.contains(says), "{}", e.message);
        }
    }

    fn vectors_config() -> Config {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../test-vectors");
        Config {
            ca_dir: root.join("ca"),
            voms_dir: root.join("no-such-vomsdir"),
            ..Config::default()
        }
    }

    fn policy_with_dirs(dir: &Path) -> Policy {
        let mut policy = Policy::default();
        policy.state_dir = Some(dir.join("policy-state"));
        policy.log_dir = Some(dir.join("policy-log"));
        policy
    }

    #[test]
    fn a_named_directory_wins_over_the_policy_a_fallback_does_not() {
        let tmp = tempfile::tempdir().unwrap();
        let named = StateDirs::named(&tmp.path().join("named"));
        let host =
            AdmissionHost::new(vectors_config(), policy_with_dirs(tmp.path()), named).unwrap();
        assert_eq!(host.policy().state_dir, None);
        assert_eq!(host.policy().log_dir, None);
        assert_eq!(
            host.state().dirs().unwrap(),
            &Dirs::under(&tmp.path().join("named"))
        );
        host.open(&RecordContext::default()).unwrap();
        assert!(tmp.path().join("named/audit.jsonl").is_file());

        let fallback = StateDirs::fallback(Dirs::under(&tmp.path().join("fallback")));
        let host =
            AdmissionHost::new(vectors_config(), policy_with_dirs(tmp.path()), fallback).unwrap();
        host.open(&RecordContext::default()).unwrap();
        assert!(tmp.path().join("policy-log/audit.jsonl").is_file());
        assert!(!tmp.path().join("fallback").exists());
    }

    #[test]
    fn admission_opens_once_and_a_failure_is_a_recorded_deny_tried_again() {
        let tmp = tempfile::tempdir().unwrap();
        let state = tmp.path().join("state");
        let mut policy = Policy::default();
        // The replay database under a file, where none can be made (yet).
        std::fs::write(tmp.path().join("blocked"), "").unwrap();
        policy.replay.path = Some(tmp.path().join("blocked/replay.sqlite"));
        let host = AdmissionHost::new(vectors_config(), policy, StateDirs::named(&state)).unwrap();
        let context = RecordContext::default();
        let deny = host.open(&context).unwrap_err();
        assert!(!deny.is_permit());
        let log = std::fs::read_to_string(state.join("audit.jsonl")).unwrap();
        assert!(log.contains(deny.code()), "{log}");
        // Tried again: it opens now, and is kept.
        std::fs::remove_file(tmp.path().join("blocked")).unwrap();
        std::fs::create_dir(tmp.path().join("blocked")).unwrap();
        let a = host.open(&context).unwrap();
        assert!(Arc::ptr_eq(&a, &host.open(&context).unwrap()));
    }

    #[test]
    fn no_state_directory_is_a_deny_and_checking_needs_none() {
        let nowhere = StateDirs {
            dirs: Err(Error::new(
                Reason::ConfigInvalid,
                "no state directory: test",
            )),
            named: false,
        };
        let host = AdmissionHost::new(vectors_config(), Policy::default(), nowhere).unwrap();
        let invocation = Invocation {
            executable: "/bin/true".into(),
            arguments: Vec::new(),
            job_dir: ".".into(),
        };
        let d = host.admit(b"", &invocation, &RecordContext::default());
        assert_eq!(d.reason, Some(Reason::ConfigInvalid));
        assert!(d.message.contains("no state directory"), "{}", d.message);
        let e = host.record_refusal(AuditRecord::from_decision(&d, &RecordContext::default()));
        assert!(e.is_err());
        // The checker works without any directory.
        let d = host
            .checker()
            .check_credential_at(b"", jobseal_verify::UnixTime(0));
        assert!(!d.is_permit());
    }

    /// The fork guard, with the child's pid given (a real fork is what the
    /// C API's and the Python module's tests do, through this host): the
    /// admission opened by one process denies in another, recorded by
    /// path, and its original process still uses it.
    #[test]
    fn admission_opened_in_one_process_denies_in_another() {
        let tmp = tempfile::tempdir().unwrap();
        let state = tmp.path().join("state");
        let host = AdmissionHost::new(
            vectors_config(),
            Policy::default(),
            StateDirs::named(&state),
        )
        .unwrap();
        let context = RecordContext::default();
        let parent = std::process::id();
        let a = host.open(&context).unwrap();
        let child = parent.wrapping_add(1);
        let deny = host.open_in(child, &context).unwrap_err();
        assert_eq!(deny.reason, Some(Reason::Internal));
        assert!(
            deny.message.contains("used across fork"),
            "{}",
            deny.message
        );
        assert!(
            deny.message
                .contains(&format!("process {parent}, not in this process {child}"))
        );
        let log = std::fs::read_to_string(state.join("audit.jsonl")).unwrap();
        assert!(log.contains("used across fork"), "{log}");
        assert!(Arc::ptr_eq(&a, &host.open(&context).unwrap()));
    }

    /// Dropped in another process than the one that opened it, the host
    /// keeps the admission open (never closed from a child); in its own,
    /// it closes it.
    #[test]
    fn a_child_never_closes_the_parents_admission() {
        let tmp = tempfile::tempdir().unwrap();
        let open_host = || {
            let state = StateDirs::named(&tmp.path().join("state"));
            let host = AdmissionHost::new(vectors_config(), Policy::default(), state).unwrap();
            let weak = Arc::downgrade(&host.open(&RecordContext::default()).unwrap());
            (host, weak)
        };
        let (host, weak) = open_host();
        drop(host);
        assert!(weak.upgrade().is_none(), "closed in its own process");
        let (mut host, weak) = open_host();
        *host.opened_in.get_mut() = std::process::id().wrapping_add(1);
        drop(host);
        assert!(weak.upgrade().is_some(), "kept open in the child");
    }

    #[test]
    fn paths_are_made_absolute_once() {
        let cwd = std::env::current_dir().unwrap();
        let paths = HostPaths {
            ca_dir: Some("certs".into()),
            voms_dir: None,
            policy: Some("/etc/p.toml".into()),
            state_dir: Some("state".into()),
        }
        .absolute()
        .unwrap();
        assert_eq!(paths.ca_dir, Some(cwd.join("certs")));
        assert_eq!(paths.voms_dir, None);
        assert_eq!(paths.policy, Some(PathBuf::from("/etc/p.toml")));
        assert_eq!(
            paths.config().voms_dir,
            Path::new(jobseal_verify::DEFAULT_VOMS_DIR)
        );
        let named = paths.state_dirs();
        assert_eq!(named.dirs().unwrap(), &Dirs::under(&cwd.join("state")));
        let e = absolute(Path::new("")).unwrap_err();
        assert_eq!(e.reason, Reason::ConfigInvalid);
    }
}
