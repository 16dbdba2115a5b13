//! Reading the policy file: the TOML schema of `spec/jobseal.md` §13.2,
//! checked as a whole; any error is `policy.invalid` with FILE:LINE:COL.

use std::fmt;
use std::io::Read;
use std::path::{Path, PathBuf};

use jobseal_core::time::parse_duration;
use jobseal_core::{Error, Reason};
use jobseal_verify::sig::{AlgorithmPolicy, MIN_RSA_BITS};
use jobseal_verify::{CrlPolicy, InputPolicy, NamespacePolicy};
use serde::Deserialize;
use toml::Spanned;

use crate::ban::{BanList, check_dn, check_hex};
use crate::pattern::{FqanPattern, check_vo};
use crate::settings::{
    AuditSettings, DEFAULT_MAX_USES, DEFAULT_SYSLOG_SOCKET, IssuerRule, RawAudit, RawReplay,
    ReplaySettings, ReplayStore,
};
use crate::{MAX_CLOCK_SKEW, Policy};

/// Largest policy file read, in bytes.
pub const MAX_POLICY_BYTES: u64 = 1024 * 1024;

/// A number of seconds, written as an integer or as a duration string
/// (`"7d"`, `"36h"`, `"1d12h"`, `"300s"`).
#[derive(Clone, Copy, Debug)]
struct Seconds(u64);

impl<'de> Deserialize<'de> for Seconds {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = Seconds;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a number of seconds or a duration such as \"7d\" or \"36h\"")
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Seconds, E> {
                u64::try_from(v)
                    .map(Seconds)
                    .map_err(|_| E::custom(format!("a duration cannot be negative ({v})")))
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Seconds, E> {
                Ok(Seconds(v))
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Seconds, E> {
                parse_duration(v).map(Seconds).ok_or_else(|| {
                    E::custom(format!(
                        "{v:?} is not a duration such as \"7d\", \"36h\" or \"90m\""
                    ))
                })
            }
        }
        d.deserialize_any(V)
    }
}

/// A lifetime maximum: a positive duration.
fn lifetime<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    let Seconds(s) = Seconds::deserialize(d)?;
    if s == 0 {
        return Err(serde::de::Error::custom(
            "a maximum lifetime must be positive",
        ));
    }
    Ok(Some(s))
}

fn clock_skew<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    let Seconds(s) = Seconds::deserialize(d)?;
    if s > MAX_CLOCK_SKEW {
        return Err(serde::de::Error::custom(format!(
            "clock_skew may be at most {MAX_CLOCK_SKEW} seconds"
        )));
    }
    Ok(Some(s))
}

fn site_name<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    let s = String::deserialize(d)?;
    if s.is_empty() || s.trim() != s || s.chars().any(char::is_control) {
        return Err(serde::de::Error::custom(format!(
            "{s:?} is not a site name (non-empty, no surrounding space)"
        )));
    }
    Ok(Some(s))
}

/// A list whose entries are checked after parsing, so that an error points
/// at the entry rather than at the list.
type Entries = Vec<Spanned<String>>;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBan {
    #[serde(default)]
    subjects: Entries,
    #[serde(default)]
    cas: Entries,
    #[serde(default)]
    fqans: Entries,
    #[serde(default)]
    digests: Entries,
    #[serde(default)]
    job_ids: Entries,
    #[serde(default)]
    files: Vec<PathBuf>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAlgorithms {
    #[serde(default)]
    legacy_ca_sha1: bool,
    legacy_ca_rsa_bits: Option<Spanned<u64>>,
}

#[derive(Clone, Copy, Debug, Deserialize)]
#[serde(rename_all = "kebab-case")]
enum RawCrl {
    IfPublished,
    Require,
    Ignore,
}

#[derive(Clone, Copy, Debug, Deserialize)]
#[serde(rename_all = "kebab-case")]
enum RawNamespaces {
    IfPresent,
    Require,
    Ignore,
}

#[derive(Clone, Copy, Debug, Deserialize)]
#[serde(rename_all = "kebab-case")]
enum RawInputs {
    Require,
    IfPresent,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPolicy {
    #[serde(default, deserialize_with = "site_name")]
    site: Option<String>,
    vos: Option<Entries>,
    fqans: Option<Entries>,
    #[serde(default)]
    ban: RawBan,
    #[serde(default)]
    issuer: IssuerRule,
    #[serde(default, deserialize_with = "lifetime")]
    max_proxy_lifetime: Option<u64>,
    #[serde(default, deserialize_with = "lifetime")]
    max_manifest_lifetime: Option<u64>,
    #[serde(default, deserialize_with = "clock_skew")]
    clock_skew: Option<u64>,
    #[serde(default)]
    algorithms: RawAlgorithms,
    crl: Option<RawCrl>,
    namespaces: Option<RawNamespaces>,
    inputs: Option<RawInputs>,
    replay: Option<Spanned<RawReplay>>,
    #[serde(default)]
    audit: RawAudit,
    state_dir: Option<PathBuf>,
    log_dir: Option<PathBuf>,
}

/// 1-based line and column (in characters) of a byte offset.
pub(crate) fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = text.get(..offset.min(text.len())).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, col)
}

fn invalid(m: String) -> Error {
    Error::new(Reason::PolicyInvalid, m)
}

impl Policy {
    /// Read and check the policy file at `path`. Any problem, a missing
    /// file included, is `policy.invalid`; there is never a partial policy.
    pub fn load(path: &Path) -> Result<Self, Error> {
        let shown = path.display();
        let file = std::fs::File::open(path)
            .map_err(|e| invalid(format!("{shown}: cannot read the policy: {e}")))?;
        // Whoever can write the policy decides who runs: trust only a file
        // that root or this user alone can change.
        let meta = file
            .metadata()
            .map_err(|e| invalid(format!("{shown}: cannot read the policy: {e}")))?;
        crate::ban::check_trusted(&meta)
            .map_err(|m| invalid(format!("{shown}: the policy is {m}")))?;
        let mut bytes = Vec::new();
        file.take(MAX_POLICY_BYTES + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| invalid(format!("{shown}: cannot read the policy: {e}")))?;
        if bytes.len() as u64 > MAX_POLICY_BYTES {
            return Err(invalid(format!(
                "{shown}: the policy is larger than {MAX_POLICY_BYTES} bytes"
            )));
        }
        let text = String::from_utf8(bytes)
            .map_err(|_| invalid(format!("{shown}: the policy is not UTF-8")))?;
        Self::from_toml(&text, path)
    }

    /// The policy at [`crate::DEFAULT_PATH`], or the built-in defaults when
    /// that file does not exist. A file that exists but cannot be read or
    /// parsed is `policy.invalid`.
    pub fn load_default() -> Result<Self, Error> {
        let path = Path::new(crate::DEFAULT_PATH);
        match std::fs::symlink_metadata(path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Self::default()),
            _ => Self::load(path),
        }
    }

    /// Parse policy text; `origin` names it in messages, and relative paths
    /// in it are taken relative to `origin`'s directory. Ban files are read
    /// once here, so that a broken one is reported at load time too.
    pub fn from_toml(text: &str, origin: &Path) -> Result<Self, Error> {
        let shown = origin.display();
        let at = |span: Option<std::ops::Range<usize>>, m: &str| match span {
            Some(r) => {
                let (l, c) = line_col(text, r.start);
                invalid(format!("{shown}:{l}:{c}: {m}"))
            }
            None => invalid(format!("{shown}: {m}")),
        };
        let raw: RawPolicy = toml::from_str(text).map_err(|e| at(e.span(), e.message()))?;
        // Check each entry of a list, reporting the first bad one where it is.
        let each = |list: Entries, check: &dyn Fn(&str) -> Result<String, String>| {
            list.into_iter()
                .map(|e| check(e.get_ref()).map_err(|m| at(Some(e.span()), &m)))
                .collect::<Result<Vec<String>, Error>>()
        };
        let patterns = |list: Entries| {
            list.into_iter()
                .map(|e| FqanPattern::new(e.get_ref()).map_err(|m| at(Some(e.span()), &m)))
                .collect::<Result<Vec<FqanPattern>, Error>>()
        };
        let vos = raw.vos.map(|l| each(l, &check_vo)).transpose()?;
        let fqans = raw.fqans.map(patterns).transpose()?;
        let bans = BanList {
            subjects: each(raw.ban.subjects, &check_dn)?,
            cas: each(raw.ban.cas, &check_dn)?,
            fqans: patterns(raw.ban.fqans)?,
            digests: each(raw.ban.digests, &|v| check_hex(v, 64, "manifest SHA-256"))?,
            job_ids: each(raw.ban.job_ids, &|v| check_hex(v, 32, "job id"))?,
        };
        let base = origin.parent().unwrap_or(Path::new("")).to_path_buf();
        let resolve = |p: PathBuf| if p.is_absolute() { p } else { base.join(p) };

        let algorithms = match raw.algorithms.legacy_ca_rsa_bits {
            None => MIN_RSA_BITS,
            Some(bits) => {
                let v = *bits.get_ref();
                if !(1024..=MIN_RSA_BITS as u64).contains(&v) {
                    return Err(at(
                        Some(bits.span()),
                        "legacy_ca_rsa_bits must be between 1024 and 2048",
                    ));
                }
                usize::try_from(v).unwrap_or(MIN_RSA_BITS)
            }
        };
        let replay = match raw.replay {
            None => ReplaySettings::default(),
            Some(spanned) => {
                let span = spanned.span();
                let r = spanned.into_inner();
                match (r.store, &r.redis_url) {
                    (ReplayStore::Redis, None) => {
                        return Err(at(Some(span), "replay store \"redis\" needs a redis_url"));
                    }
                    (ReplayStore::Local, Some(_)) => {
                        return Err(at(
                            Some(span),
                            "redis_url is set but the replay store is \"local\"",
                        ));
                    }
                    _ => {}
                }
                if r.store == ReplayStore::Local && r.redis.is_some() {
                    return Err(at(
                        Some(span),
                        "[replay.redis] is set but the replay store is \"local\"",
                    ));
                }
                ReplaySettings {
                    store: r.store,
                    path: r.path.map(resolve),
                    redis_url: r.redis_url,
                    max_uses: r.max_uses.unwrap_or(DEFAULT_MAX_USES),
                    redis_accept_volatile: r.redis.is_some_and(|x| x.accept_volatile),
                }
            }
        };
        let defaults = Policy::default();
        let policy = Policy {
            site: raw.site,
            vos,
            fqans,
            bans,
            ban_files: raw.ban.files.into_iter().map(resolve).collect(),
            issuer: raw.issuer,
            max_proxy_lifetime: raw.max_proxy_lifetime.or(defaults.max_proxy_lifetime),
            max_manifest_lifetime: raw.max_manifest_lifetime.or(defaults.max_manifest_lifetime),
            clock_skew: raw.clock_skew.unwrap_or(defaults.clock_skew),
            algorithms: AlgorithmPolicy {
                min_rsa_bits_ca_issued: algorithms,
                allow_sha1_ca_issued: raw.algorithms.legacy_ca_sha1,
            },
            crl: match raw.crl {
                None => defaults.crl,
                Some(RawCrl::IfPublished) => CrlPolicy::RequireIfPublished,
                Some(RawCrl::Require) => CrlPolicy::Require,
                Some(RawCrl::Ignore) => CrlPolicy::Ignore,
            },
            namespaces: match raw.namespaces {
                None => defaults.namespaces,
                Some(RawNamespaces::IfPresent) => NamespacePolicy::IfPresent,
                Some(RawNamespaces::Require) => NamespacePolicy::Require,
                Some(RawNamespaces::Ignore) => NamespacePolicy::Ignore,
            },
            inputs: match raw.inputs {
                None => defaults.inputs,
                Some(RawInputs::Require) => InputPolicy::Require,
                Some(RawInputs::IfPresent) => InputPolicy::IfPresent,
            },
            replay,
            audit: AuditSettings {
                file: raw.audit.file.map(resolve),
                syslog: raw.audit.syslog,
                syslog_socket: raw
                    .audit
                    .syslog_socket
                    .map_or_else(|| PathBuf::from(DEFAULT_SYSLOG_SOCKET), resolve),
                syslog_required: raw.audit.syslog_required.unwrap_or(true),
                secret_env: raw.audit.secret_env,
            },
            state_dir: raw.state_dir.map(resolve),
            log_dir: raw.log_dir.map(resolve),
            source: Some(origin.to_path_buf()),
            cache: crate::ban::BanCache::default(),
        };
        policy.ban_list()?;
        Ok(policy)
    }
}

#[cfg(test)]
mod tests {
    use super::line_col;

    #[test]
    fn line_and_column() {
        assert_eq!(line_col("ab\ncd", 0), (1, 1));
        assert_eq!(line_col("ab\ncd", 4), (2, 2));
        assert_eq!(line_col("é\nx", 3), (2, 1));
        assert_eq!(line_col("éx", 2), (1, 2));
    }
}
