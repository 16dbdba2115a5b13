//! The policy file's tables for the admission steps 7 (replay) and 8
//! (audit): parsed and checked here, used by `jobseal-admit`.

use std::path::PathBuf;

use serde::Deserialize;

/// Who may have issued the job-bound proxy (`spec/jobseal.md` §13.2
/// `issuer`, §13.4 6f).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum IssuerRule {
    /// The user's certificate or any full proxy of it (what §3.3 allows).
    #[default]
    Any,
    /// The user's end-entity certificate only: a job sealed under a proxy
    /// is denied, so a service holding a user's full proxy cannot seal
    /// jobs this site runs.
    EndEntity,
}

/// Where uses of a job are recorded (`spec/jobseal.md` §13.2 `[replay]`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ReplayStore {
    /// An embedded database on this node: stops replays on this node only.
    #[default]
    Local,
    /// A Redis server shared by the site's worker nodes.
    Redis,
}

/// Default bound on the uses of one job.
pub const DEFAULT_MAX_USES: u64 = 1;

/// The `[replay]` table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReplaySettings {
    pub store: ReplayStore,
    /// The local database file (`None`: under the state directory).
    pub path: Option<PathBuf>,
    /// The Redis URL (`redis://`, `rediss://`, `unix://` or `redis+unix://`);
    /// set exactly when `store` is `Redis`.
    pub redis_url: Option<String>,
    /// Upper bound on the uses a manifest may ask for (at least 1).
    pub max_uses: u64,
    /// `[replay.redis] accept_volatile`: admit with a Redis server that can
    /// lose uses (no AOF, or an eviction policy other than `noeviction`),
    /// which every audit record then says. Default: such a server is
    /// refused (`replay.store-unsafe`).
    pub redis_accept_volatile: bool,
}

impl Default for ReplaySettings {
    fn default() -> Self {
        Self {
            store: ReplayStore::Local,
            path: None,
            redis_url: None,
            max_uses: DEFAULT_MAX_USES,
            redis_accept_volatile: false,
        }
    }
}

/// Default syslog socket.
pub const DEFAULT_SYSLOG_SOCKET: &str = "/dev/log";

/// The `[audit]` table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditSettings {
    /// The JSON-lines audit file (`None`: under the log directory).
    pub file: Option<PathBuf>,
    /// Also send records and the chain head to syslog.
    pub syslog: bool,
    /// The syslog socket.
    pub syslog_socket: PathBuf,
    /// Whether a syslog message that cannot be sent denies the job (the
    /// default) or is only counted.
    pub syslog_required: bool,
    /// Environment variables whose values are secret: their names only are
    /// logged (no environment value is ever logged).
    pub secret_env: Vec<String>,
}

impl Default for AuditSettings {
    fn default() -> Self {
        Self {
            file: None,
            syslog: false,
            syslog_socket: PathBuf::from(DEFAULT_SYSLOG_SOCKET),
            syslog_required: true,
            secret_env: Vec::new(),
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawReplay {
    #[serde(default)]
    pub store: ReplayStore,
    pub path: Option<PathBuf>,
    #[serde(default, deserialize_with = "redis_url")]
    pub redis_url: Option<String>,
    #[serde(default, deserialize_with = "max_uses")]
    pub max_uses: Option<u64>,
    pub redis: Option<RawRedisReplay>,
}

/// The `[replay.redis]` table.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRedisReplay {
    #[serde(default)]
    pub accept_volatile: bool,
}

fn redis_url<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    let s = String::deserialize(d)?;
    let ok = ["redis://", "rediss://", "unix://", "redis+unix://"]
        .iter()
        .any(|p| s.starts_with(p) && s.len() > p.len());
    if !ok {
        return Err(serde::de::Error::custom(
            "redis_url is not a redis://, rediss://, unix:// or redis+unix:// URL (not quoted: it may hold a password)",
        ));
    }
    Ok(Some(s))
}

fn max_uses<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    let n = u64::deserialize(d)?;
    if n == 0 {
        return Err(serde::de::Error::custom("max_uses must be at least 1"));
    }
    Ok(Some(n))
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawAudit {
    pub file: Option<PathBuf>,
    #[serde(default)]
    pub syslog: bool,
    pub syslog_socket: Option<PathBuf>,
    pub syslog_required: Option<bool>,
    #[serde(default)]
    pub secret_env: Vec<String>,
}
