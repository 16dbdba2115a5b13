//! Admission: steps 1–5 (the verifier), 6 (site policy), 7 (replay record)
//! and 8 (audit record), in that order, so that a bundle presented with the
//! wrong executable or by a banned user never uses up its job, and every
//! decision, permit or deny, leaves a record.

use std::path::{Path, PathBuf};

use jobseal_core::{Error, Reason};
use jobseal_policy::Policy;
use jobseal_verify::{Config, Decision, Invocation, UnixTime};

/// Steps 1–6 without side effects. It lives in `jobseal-policy`, so that a
/// check-only caller (the LCMAPS plugin) links neither SQLite nor rustls;
/// re-exported here, where admission uses it.
pub use jobseal_policy::Checker;

use crate::audit::{AuditLog, AuditOptions, AuditRecord, RecordContext, ReplayNote, SyslogOptions};
use crate::replay::{RedisStore, ReplayKey, ReplayStore, SqliteStore};

/// Where admission keeps its state (the replay database) and its logs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Dirs {
    pub state: PathBuf,
    pub log: PathBuf,
}

impl Dirs {
    /// `/var/lib/jobseal` and `/var/log/jobseal` for root; otherwise
    /// `$XDG_STATE_HOME/jobseal` (or `~/.local/state/jobseal`) for both.
    /// Without a usable home directory there is no default: state never
    /// lands in the current (often the job's) directory.
    pub fn for_user(
        uid: Option<u32>,
        xdg_state_home: Option<&Path>,
        home: Option<&Path>,
    ) -> Result<Self, Error> {
        if uid == Some(0) {
            return Ok(Self {
                state: PathBuf::from("/var/lib/jobseal"),
                log: PathBuf::from("/var/log/jobseal"),
            });
        }
        let base = match (xdg_state_home, home) {
            (Some(x), _) if x.is_absolute() => x.to_path_buf(),
            (_, Some(h)) if h.is_absolute() => h.join(".local/state"),
            _ => {
                return Err(Error::new(
                    Reason::ConfigInvalid,
                    "no state directory: set HOME or XDG_STATE_HOME, or give --state-dir",
                ));
            }
        };
        let dir = base.join("jobseal");
        Ok(Self {
            state: dir.clone(),
            log: dir,
        })
    }

    /// Both under one directory (`--state-dir`, `jobseal demo`).
    pub fn under(dir: &Path) -> Self {
        Self {
            state: dir.to_path_buf(),
            log: dir.to_path_buf(),
        }
    }

    /// The directories admission uses under `policy`: the policy's own
    /// `state_dir` and `log_dir` win over these.
    pub fn under_policy(&self, policy: Option<&Policy>) -> Self {
        Self {
            state: policy
                .and_then(|p| p.state_dir.clone())
                .unwrap_or_else(|| self.state.clone()),
            log: policy
                .and_then(|p| p.log_dir.clone())
                .unwrap_or_else(|| self.log.clone()),
        }
    }

    /// The files admission writes under `policy`: the local replay
    /// database (used only with the local store) and the audit log.
    pub fn record_files(&self, policy: Option<&Policy>) -> (PathBuf, PathBuf) {
        let dirs = self.under_policy(policy);
        let replay = policy
            .and_then(|p| p.replay.path.clone())
            .unwrap_or_else(|| dirs.state.join(REPLAY_DB));
        let audit = policy
            .and_then(|p| p.audit.file.clone())
            .unwrap_or_else(|| dirs.log.join(AUDIT_LOG));
        (replay, audit)
    }
}

/// File names inside the directories.
pub const REPLAY_DB: &str = "replay.sqlite";
pub const AUDIT_LOG: &str = "audit.jsonl";

/// A verifier with its site policy, replay store and audit log.
pub struct Admission {
    checker: Checker,
    replay: Box<dyn ReplayStore>,
    audit: AuditLog,
}

impl std::fmt::Debug for Admission {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Admission")
            .field("checker", &self.checker)
            .field("audit", &self.audit)
            .finish_non_exhaustive()
    }
}

impl Admission {
    /// Set up admission. `config` gives the CA and VOMS directories; the
    /// policy sets the rest. The policy's directories win over `dirs`.
    pub fn open(config: Config, policy: Policy, dirs: &Dirs) -> Result<Self, Error> {
        let checker = Checker::new(config, policy)?;
        let policy = checker.policy();
        let (replay_path, audit_path) = dirs.record_files(Some(policy));
        let replay: Box<dyn ReplayStore> = match policy.replay.store {
            jobseal_policy::ReplayStore::Local => {
                Box::new(SqliteStore::open(replay_path)?.with_skew(policy.clock_skew))
            }
            jobseal_policy::ReplayStore::Redis => {
                let url = policy.replay.redis_url.as_deref().ok_or_else(|| {
                    Error::new(
                        Reason::PolicyInvalid,
                        "replay.store = \"redis\" needs replay.redis_url",
                    )
                })?;
                Box::new(
                    RedisStore::new(url)?
                        .with_skew(policy.clock_skew)
                        .with_accept_volatile(policy.replay.redis_accept_volatile),
                )
            }
        };
        let syslog = policy.audit.syslog.then(|| SyslogOptions {
            socket: policy.audit.syslog_socket.clone(),
            required: policy.audit.syslog_required,
            ..SyslogOptions::default()
        });
        let audit = AuditLog::open(
            audit_path,
            AuditOptions {
                syslog,
                ..AuditOptions::default()
            },
        )?;
        Ok(Self {
            checker,
            replay,
            audit,
        })
    }

    /// The audit log.
    pub fn audit_log(&self) -> &AuditLog {
        &self.audit
    }

    /// Record a decision made outside [`Admission::admit`] (e.g. an
    /// unreadable bundle): a deny stays a deny, and leaves a trace.
    pub fn record(&self, decision: Decision, context: &RecordContext) -> Decision {
        let mut record = AuditRecord::from_decision(&decision, context);
        record.replay = replay_note(self.checker.policy());
        match self.audit.append(record) {
            Ok(_) => decision,
            Err(e) => decision.denied_by(e),
        }
    }

    /// Steps 1–6 only (verifier and site policy), now, recording nothing:
    /// no use spent, no audit record. For a caller that must resolve
    /// something from the verified identity (`jobseal-exec`: the local
    /// account) before the job's use is spent. A permit here admits
    /// nothing: the caller still calls [`Admission::admit`], which checks
    /// again.
    pub fn check(&self, bundle: &[u8], invocation: &Invocation) -> Decision {
        self.check_at(bundle, invocation, UnixTime::now())
    }

    /// Steps 1–6 at `now`.
    fn check_at(&self, bundle: &[u8], invocation: &Invocation, now: UnixTime) -> Decision {
        self.checker.check_at(bundle, invocation, now)
    }

    /// The side-effect-free part (steps 1–6).
    pub fn checker(&self) -> &Checker {
        &self.checker
    }

    /// Admit (or refuse) the job about to run, now.
    pub fn admit(
        &self,
        bundle: &[u8],
        invocation: &Invocation,
        context: &RecordContext,
    ) -> Decision {
        let now = UnixTime::now();
        let mut decision = self.check_at(bundle, invocation, now);
        // Step 7: only a job that may run uses up one of its uses.
        if decision.is_permit() {
            let used = match (&decision.identity, &decision.job) {
                (Some(identity), Some(job)) => ReplayKey::for_job(identity, job).and_then(|key| {
                    let max_uses = self.checker.policy().allowed_uses(job.allowed_uses);
                    self.replay.record_use(&key, max_uses, job.not_after, now)
                }),
                _ => Err(Error::new(
                    Reason::Internal,
                    "a permit without identity or job",
                )),
            };
            if let Err(e) = used {
                decision = decision.denied_by(e);
            }
        }
        // Whether this admission spent a use: said in the deny if the
        // record below cannot be written (the decision would be lost).
        let spent = decision.is_permit();
        // Step 8: no execution without a trace.
        let mut context = context.clone();
        if context.site.is_none() {
            context.site = self.checker.policy().site.clone();
        }
        context
            .secret_names
            .extend(self.checker.policy().audit.secret_env.iter().cloned());
        let mut record = AuditRecord::from_decision(&decision, &context);
        record.replay = replay_note(self.checker.policy());
        match self.audit.append(record) {
            Ok(_) => decision,
            Err(e) => {
                let reached = match &decision.reason {
                    None => "permit".to_string(),
                    Some(r) => r.code().to_string(),
                };
                let use_note = if spent {
                    "its use was spent: the job cannot be admitted again"
                } else {
                    "no use was spent"
                };
                let message = format!(
                    "{} (the decision reached was {reached}, not recorded; {use_note})",
                    e.message
                );
                let mut unrecorded = AuditRecord::from_decision(&decision, &context);
                unrecorded.replay = replay_note(self.checker.policy());
                self.audit.report_unrecorded(&unrecorded, &message);
                decision.denied_by(Error::new(e.reason, message))
            }
        }
    }
}

/// What every audit record says of the replay store: that the site accepts
/// a Redis server that can lose uses (§6.7.2), or nothing.
pub fn replay_note(policy: &Policy) -> Option<ReplayNote> {
    (policy.replay.store == jobseal_policy::ReplayStore::Redis
        && policy.replay.redis_accept_volatile)
        .then(|| ReplayNote {
            store: "redis".into(),
            accept_volatile: true,
        })
}

/// Record a deny that happened before admission could be set up (a policy
/// or store error), in the audit log the policy names or the default one.
/// Best effort: if even that fails, the deny stands without a record.
pub fn record_setup_failure(
    policy: Option<&Policy>,
    dirs: &Dirs,
    decision: &Decision,
    context: &RecordContext,
) {
    let _ = record_outside(policy, dirs, AuditRecord::from_decision(decision, context));
}

/// Append `record` (a refusal made outside [`Admission::admit`], such as a
/// launcher's) to the audit log the policy names, or the default one.
pub fn record_outside(
    policy: Option<&Policy>,
    dirs: &Dirs,
    mut record: AuditRecord,
) -> Result<String, Error> {
    if record.replay.is_none() {
        record.replay = policy.and_then(replay_note);
    }
    let (_, path) = dirs.record_files(policy);
    // Anchored in syslog as the policy says, as admission's own records.
    let syslog = policy.and_then(|p| {
        p.audit.syslog.then(|| SyslogOptions {
            socket: p.audit.syslog_socket.clone(),
            required: p.audit.syslog_required,
            ..SyslogOptions::default()
        })
    });
    AuditLog::open(
        path,
        AuditOptions {
            syslog,
            ..AuditOptions::default()
        },
    )?
    .append(record)
}
