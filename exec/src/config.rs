//! The launcher's configuration (`/etc/jobseal/exec.toml`).
//!
//! In privileged use this file is the only source of trust settings: it must
//! be a root-owned regular file writable by nobody else, and no environment
//! variable or option can replace it or anything it names.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Where the configuration lives.
pub const DEFAULT_PATH: &str = "/etc/jobseal/exec.toml";

/// Largest configuration file read.
const MAX_CONFIG_BYTES: u64 = 1 << 20;

/// What the launcher does after a permit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Mode {
    /// gLExec's "declare only": run the payload under the caller's own uid.
    #[serde(rename = "logging-only")]
    LoggingOnly,
    /// Retired with the setuid launcher: still parsed, so that
    /// `jobseal-exec` can refuse it with a pointer to `service`.
    #[serde(rename = "identity-switching")]
    IdentitySwitching,
    /// `jobseal-exec` is the pilot's client of the site's launch service
    /// (`jobseal-launchd`), which admits, maps and starts the payload.
    #[serde(rename = "service")]
    Service,
}

/// Where the launch service listens, by default.
pub const DEFAULT_SOCKET: &str = "/run/jobseal/launch.sock";

/// A resource limit of the payload: a number (soft and hard) or
/// `"unlimited"`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum LimitValue {
    Number(u64),
    Text(String),
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExecConfig {
    pub mode: Mode,
    /// Site policy (`None`: `/etc/jobseal/policy.toml` if present, else the
    /// built-in policy).
    pub policy: Option<PathBuf>,
    pub ca_dir: Option<PathBuf>,
    pub voms_dir: Option<PathBuf>,
    /// Replay database and audit log directory (the policy's win).
    pub state_dir: Option<PathBuf>,
    /// Invoking users allowed (names or numeric uids). `None`: anyone, which
    /// only logging-only mode accepts.
    pub users: Option<Vec<String>>,
    /// Environment names passed to the payload besides `TZ`,
    /// `X509_USER_PROXY` and `GLEXEC_*`.
    #[serde(default)]
    pub env_whitelist: Vec<String>,
    /// `"/DN" account` lines (identity switching), consulted after `map`.
    pub gridmapfile: Option<PathBuf>,
    /// Pool-account leases (`.prefix` entries): one empty file per pool
    /// account, hard-linked to a lease per user, as Globus and LCMAPS do.
    pub gridmapdir: Option<PathBuf>,
    /// Static mappings, tried in order before the grid-mapfile.
    #[serde(default)]
    pub map: Vec<MapEntry>,
    /// Where fresh working directories are made: required semantics in
    /// identity-switching mode (default [`DEFAULT_WORK_ROOT`]); in
    /// logging-only mode, only if set (else the payload runs in the
    /// caller's directory).
    pub work_root: Option<PathBuf>,
    #[serde(default = "default_min_id")]
    pub min_uid: u32,
    #[serde(default = "default_min_id")]
    pub min_gid: u32,
    /// Service mode: the launch service's socket (default
    /// [`DEFAULT_SOCKET`]).
    pub socket: Option<PathBuf>,
    /// The socket's group and mode (octal text, default `"0666"`: the
    /// `users` whitelist, checked by the peer's credentials, decides).
    pub socket_group: Option<String>,
    pub socket_mode: Option<String>,
    /// The payload's resource limits, set by the launch service (`nofile`,
    /// `nproc`, `cpu`, `as`, `fsize`, `core`, `data`, `stack`, `memlock`);
    /// a limit not listed is the service's own, never the pilot's.
    #[serde(default)]
    pub limits: std::collections::BTreeMap<String, LimitValue>,
    /// Service mode: recorded refusals one pilot account may cause per
    /// minute before its launches are refused up front, unrecorded
    /// (default 60).
    pub refusals_per_minute: Option<u32>,
    /// Service mode: the account the verifier processes run as, which owns
    /// the replay database and the audit log (default `jobseal`).
    pub service_user: Option<String>,
}

/// Where identity-switching mode makes fresh working directories.
pub const DEFAULT_WORK_ROOT: &str = "/var/lib/jobseal/work";

/// One static mapping: a verified DN, or a verified primary FQAN, to an
/// account or a pool (`.prefix`).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MapEntry {
    pub dn: Option<String>,
    pub fqan: Option<String>,
    pub account: String,
}

impl MapEntry {
    fn check(&self) -> Result<(), String> {
        match (&self.dn, &self.fqan) {
            (Some(_), None) | (None, Some(_)) => {}
            _ => return Err("each [[map]] entry needs exactly one of dn or fqan".into()),
        }
        if self.account.trim_start_matches('.').is_empty() {
            return Err("a [[map]] entry has an empty account".into());
        }
        Ok(())
    }
}

fn default_min_id() -> u32 {
    1000
}

impl Default for ExecConfig {
    fn default() -> Self {
        Self {
            mode: Mode::LoggingOnly,
            policy: None,
            ca_dir: None,
            voms_dir: None,
            state_dir: None,
            users: None,
            env_whitelist: Vec::new(),
            gridmapfile: None,
            gridmapdir: None,
            map: Vec::new(),
            work_root: None,
            min_uid: default_min_id(),
            min_gid: default_min_id(),
            socket: None,
            socket_group: None,
            socket_mode: None,
            refusals_per_minute: None,
            service_user: None,
            limits: std::collections::BTreeMap::new(),
        }
    }
}

/// A file that only root may have written: root-owned, a regular file (no
/// symbolic link), not writable by group or others; and every directory
/// above it root-owned and not writable by group or others unless sticky
/// (as `/tmp`), so that nobody else can swap it.
pub fn check_root_owned(path: &Path) -> Result<(), String> {
    check_ancestors(path)?;
    check_root_owned_entry(path)
}

fn check_ancestors(path: &Path) -> Result<(), String> {
    let absolute = std::path::absolute(path).map_err(|e| format!("{}: {e}", path.display()))?;
    for dir in absolute.ancestors().skip(1) {
        let meta = std::fs::metadata(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let sticky = meta.mode() & 0o1000 != 0;
        if meta.uid() != 0 || (meta.mode() & 0o022 != 0 && !sticky) {
            return Err(format!(
                "{}: a directory above {} that someone other than root can change",
                dir.display(),
                path.display()
            ));
        }
    }
    Ok(())
}

/// [`check_root_owned`] without the ancestors (for entries of a directory
/// already checked).
pub fn check_root_owned_entry(path: &Path) -> Result<(), String> {
    let meta = std::fs::symlink_metadata(path)
        .map_err(|e| format!("{}: cannot read: {e}", path.display()))?;
    if !meta.file_type().is_file() && !meta.file_type().is_dir() {
        return Err(format!(
            "{}: not a regular file or directory",
            path.display()
        ));
    }
    if meta.uid() != 0 {
        return Err(format!("{}: not owned by root", path.display()));
    }
    if meta.mode() & 0o022 != 0 {
        return Err(format!("{}: writable by group or others", path.display()));
    }
    Ok(())
}

impl ExecConfig {
    /// Parse configuration text.
    pub fn from_toml(text: &str, origin: &Path) -> Result<Self, String> {
        let config: Self =
            toml::from_str(text).map_err(|e| format!("{}: {}", origin.display(), e.message()))?;
        for entry in &config.map {
            entry
                .check()
                .map_err(|m| format!("{}: {m}", origin.display()))?;
        }
        config
            .payload_limits()
            .map_err(|m| format!("{}: {m}", origin.display()))?;
        Ok(config)
    }

    /// The `[limits]` table as the trampoline sets them.
    pub fn payload_limits(
        &self,
    ) -> Result<Vec<(crate::creds::Resource, rustix::process::Rlimit)>, String> {
        self.limits
            .iter()
            .map(|(name, value)| {
                let resource = crate::creds::LIMIT_NAMES
                    .iter()
                    .find(|(n, _)| n == name)
                    .map(|(_, r)| *r)
                    .ok_or_else(|| {
                        format!("[limits] {name}: not a limit (cpu, fsize, data, stack, core, nproc, nofile, memlock, as)")
                    })?;
                let v = match value {
                    LimitValue::Number(n) => Some(*n),
                    LimitValue::Text(t) if t == "unlimited" => None,
                    LimitValue::Text(t) => {
                        return Err(format!("[limits] {name} = {t:?}: a number or \"unlimited\""));
                    }
                };
                Ok((
                    resource,
                    rustix::process::Rlimit {
                        current: v,
                        maximum: v,
                    },
                ))
            })
            .collect()
    }

    /// The socket's mode.
    pub fn socket_mode(&self) -> Result<u32, String> {
        match &self.socket_mode {
            None => Ok(0o666),
            Some(t) => u32::from_str_radix(t, 8)
                .ok()
                .filter(|m| *m <= 0o777)
                .ok_or_else(|| {
                    format!("socket_mode {t:?}: octal permission bits such as \"0660\"")
                }),
        }
    }

    /// The directory fresh working directories are made in, if any.
    pub fn work_root(&self) -> Option<PathBuf> {
        match self.mode {
            Mode::IdentitySwitching | Mode::Service => Some(
                self.work_root
                    .clone()
                    .unwrap_or_else(|| PathBuf::from(DEFAULT_WORK_ROOT)),
            ),
            Mode::LoggingOnly => self.work_root.clone(),
        }
    }

    /// Read the file at `path`. `privileged`: it must exist and be
    /// root-owned; otherwise a missing file gives the defaults.
    pub fn load(path: &Path, privileged: bool) -> Result<Self, String> {
        use std::io::Read;
        if privileged {
            check_root_owned(path)?;
        }
        let file = match std::fs::File::open(path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !privileged => {
                return Ok(Self::default());
            }
            Err(e) => return Err(format!("{}: cannot read: {e}", path.display())),
        };
        let mut bytes = Vec::new();
        file.take(MAX_CONFIG_BYTES + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| format!("{}: cannot read: {e}", path.display()))?;
        if bytes.len() as u64 > MAX_CONFIG_BYTES {
            return Err(format!("{}: too large", path.display()));
        }
        let text =
            String::from_utf8(bytes).map_err(|_| format!("{}: not UTF-8", path.display()))?;
        Self::from_toml(&text, path)
    }

    /// Whether the invoking user may use the launcher.
    pub fn user_allowed(&self, uid: u32, name: Option<&str>) -> bool {
        match &self.users {
            None => self.mode == Mode::LoggingOnly,
            Some(list) => list
                .iter()
                .any(|u| Some(u.as_str()) == name || u.parse::<u32>().ok() == Some(uid)),
        }
    }
}

/// A root-owned trust directory (§14.3): the directory and, `depth` levels
/// down, every entry: owned by root and, for what a symbolic link leads to
/// and everything else, writable by nobody else.
pub fn check_root_owned_tree(dir: &Path, depth: u32) -> Result<(), String> {
    check_root_owned(dir)?;
    if depth == 0 {
        return Ok(());
    }
    let entries =
        std::fs::read_dir(dir).map_err(|e| format!("{}: cannot read: {e}", dir.display()))?;
    for entry in entries {
        let path = entry.map_err(|e| format!("{}: {e}", dir.display()))?.path();
        let link =
            std::fs::symlink_metadata(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        if link.file_type().is_symlink() {
            if link.uid() != 0 {
                return Err(format!("{}: not owned by root", path.display()));
            }
            // A dangling link is harmless: nothing can be read through it.
            let Ok(meta) = std::fs::metadata(&path) else {
                continue;
            };
            if meta.uid() != 0 || meta.mode() & 0o022 != 0 {
                return Err(format!(
                    "{}: leads to a file not owned by root or writable by others",
                    path.display()
                ));
            }
            // Its contents would escape this check.
            if meta.is_dir() {
                return Err(format!(
                    "{}: a symbolic link to a directory",
                    path.display()
                ));
            }
        } else if link.is_dir() {
            check_root_owned_tree(&path, depth - 1)?;
        } else {
            check_root_owned_entry(&path)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn parses_and_refuses_unknown_fields() {
        let c = ExecConfig::from_toml(
            "mode = \"identity-switching\"\nusers = [\"pilot\", \"1234\"]\nmin_uid = 500\n",
            Path::new("x"),
        )
        .unwrap();
        assert_eq!(c.mode, Mode::IdentitySwitching);
        assert!(c.user_allowed(1, Some("pilot")));
        assert!(c.user_allowed(1234, None));
        assert!(!c.user_allowed(1, Some("other")));
        assert_eq!(c.min_uid, 500);
        assert_eq!(c.min_gid, 1000);
        assert!(
            ExecConfig::from_toml("mode = \"logging-only\"\nca_dri = \"/x\"\n", Path::new("x"))
                .is_err()
        );
        assert!(ExecConfig::from_toml("mode = \"yolo\"\n", Path::new("x")).is_err());
    }

    #[test]
    fn map_entries_need_exactly_one_key_and_an_account() {
        let ok = "mode = \"identity-switching\"\n[[map]]\nfqan = \"/atlas/Role=production\"\naccount = \".atlprd\"\n[[map]]\ndn = \"/O=x/CN=A\"\naccount = \"alice\"\n";
        let c = ExecConfig::from_toml(ok, Path::new("x")).unwrap();
        assert_eq!(c.map.len(), 2);
        for bad in [
            "[[map]]\naccount = \"a\"\n",
            "[[map]]\ndn = \"/O=x\"\nfqan = \"/vo\"\naccount = \"a\"\n",
            "[[map]]\ndn = \"/O=x\"\naccount = \".\"\n",
            "[[map]]\ndn = \"/O=x\"\naccount = \"a\"\nuid = 5\n",
        ] {
            let text = format!("mode = \"identity-switching\"\n{bad}");
            assert!(
                ExecConfig::from_toml(&text, Path::new("x")).is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn work_root_defaults_only_in_identity_switching_mode() {
        let mut c = ExecConfig::default();
        assert_eq!(c.work_root(), None);
        c.mode = Mode::IdentitySwitching;
        assert_eq!(c.work_root(), Some(PathBuf::from(DEFAULT_WORK_ROOT)));
    }

    #[test]
    fn no_whitelist_only_in_logging_only_mode() {
        let mut c = ExecConfig::default();
        assert!(c.user_allowed(5, None));
        c.mode = Mode::IdentitySwitching;
        assert!(!c.user_allowed(5, None));
    }
}
