//! Ban lists: inline in the policy and in separate files that are re-read
//! when they change (`spec/jobseal.md` §13.3).

use std::collections::HashMap;
use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use jobseal_core::{Error, Reason};

use crate::pattern::FqanPattern;

/// Largest ban file read, in bytes.
pub const MAX_BAN_FILE_BYTES: u64 = 16 * 1024 * 1024;

/// What is banned. DNs are in the slash form of §6.8 and compare as exact
/// strings; digests and job ids are lowercase hex.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BanList {
    pub subjects: Vec<String>,
    pub cas: Vec<String>,
    pub fqans: Vec<FqanPattern>,
    pub digests: Vec<String>,
    pub job_ids: Vec<String>,
}

impl BanList {
    /// Add the entries of `other`.
    pub fn extend(&mut self, other: &BanList) {
        self.subjects.extend_from_slice(&other.subjects);
        self.cas.extend_from_slice(&other.cas);
        self.fqans.extend_from_slice(&other.fqans);
        self.digests.extend_from_slice(&other.digests);
        self.job_ids.extend_from_slice(&other.job_ids);
    }

    /// Whether nothing is banned.
    pub fn is_empty(&self) -> bool {
        self.subjects.is_empty()
            && self.cas.is_empty()
            && self.fqans.is_empty()
            && self.digests.is_empty()
            && self.job_ids.is_empty()
    }
}

/// Check a DN value (slash form).
pub fn check_dn(v: &str) -> Result<String, String> {
    if !v.starts_with('/') || v.len() < 2 {
        return Err(format!(
            "{v:?} is not a DN in slash form (\"/DC=org/DC=example/CN=...\")"
        ));
    }
    if v.chars().any(char::is_control) {
        return Err(format!("DN {v:?} holds a control character"));
    }
    Ok(v.to_owned())
}

/// Check a hex value of `len` digits; returns it in lowercase.
pub fn check_hex(v: &str, len: usize, what: &str) -> Result<String, String> {
    if v.len() != len || !v.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(format!("{v:?} is not a {what} ({len} hex digits)"));
    }
    Ok(v.to_ascii_lowercase())
}

/// Parse a ban file: one `KIND VALUE` a line, `#` comment lines and blank
/// lines ignored. Errors are `LINE:COL: message`.
pub fn parse_ban_file(text: &str) -> Result<BanList, String> {
    let mut out = BanList::default();
    for (i, raw) in text.lines().enumerate() {
        let line_no = i + 1;
        let indent = raw.len() - raw.trim_start().len();
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (kind, rest) = line.split_once(char::is_whitespace).unwrap_or((line, ""));
        let value = rest.trim();
        // Columns (1-based, in characters) of the kind and the value.
        let col_of = |byte: usize| raw.get(..byte).map_or(1, |p| p.chars().count() + 1);
        let after_kind = indent + kind.len();
        let value_col = col_of(
            raw.get(after_kind..)
                .and_then(|r| r.find(value))
                .map_or(after_kind, |o| after_kind + o),
        );
        let kind_col = col_of(indent);
        let at = |col: usize, m: String| format!("{line_no}:{col}: {m}");
        if value.is_empty() {
            return Err(at(kind_col, format!("{kind:?} has no value")));
        }
        let r = match kind {
            "subject" => check_dn(value).map(|v| out.subjects.push(v)),
            "ca" => check_dn(value).map(|v| out.cas.push(v)),
            "fqan" => FqanPattern::new(value).map(|v| out.fqans.push(v)),
            "digest" => check_hex(value, 64, "manifest SHA-256").map(|v| out.digests.push(v)),
            "job" => check_hex(value, 32, "job id").map(|v| out.job_ids.push(v)),
            _ => {
                return Err(at(
                    kind_col,
                    format!(
                        "unknown entry kind {kind:?}; expected subject, ca, fqan, digest or job"
                    ),
                ));
            }
        };
        r.map_err(|m| at(value_col, m))?;
    }
    Ok(out)
}

/// What identifies one version of a file: a change of any of these makes
/// the file be read again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Stamp {
    dev: u64,
    ino: u64,
    size: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
}

impl Stamp {
    fn of(m: &std::fs::Metadata) -> Self {
        Self {
            dev: m.dev(),
            ino: m.ino(),
            size: m.size(),
            mtime: (m.mtime(), m.mtime_nsec()),
            ctime: (m.ctime(), m.ctime_nsec()),
        }
    }
}

/// Parsed ban files by path, with the stamp they were read at. A cache
/// only: cloning a policy starts with an empty one.
#[derive(Debug, Default)]
pub(crate) struct BanCache(Mutex<HashMap<PathBuf, (Stamp, Arc<BanList>)>>);

impl Clone for BanCache {
    fn clone(&self) -> Self {
        Self::default()
    }
}

impl BanCache {
    /// The current contents of a ban file: opened on every call, and read
    /// again when its stamp changed. The stamp is taken from the open file
    /// itself, so it describes the bytes read.
    pub(crate) fn get(&self, path: &Path) -> Result<Arc<BanList>, Error> {
        let invalid = |m: String| Error::new(Reason::PolicyInvalid, m);
        let shown = path.display();
        let file = std::fs::File::open(path)
            .map_err(|e| invalid(format!("{shown}: cannot read the ban file: {e}")))?;
        let meta = file
            .metadata()
            .map_err(|e| invalid(format!("{shown}: cannot read the ban file: {e}")))?;
        if !meta.is_file() {
            return Err(invalid(format!(
                "{shown}: the ban file is not a regular file"
            )));
        }
        let stamp = Stamp::of(&meta);
        // The cache holds whole values only, so a poisoned lock is still sound.
        let mut cache = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((s, list)) = cache.get(path)
            && *s == stamp
        {
            return Ok(Arc::clone(list));
        }
        if meta.len() > MAX_BAN_FILE_BYTES {
            return Err(invalid(format!(
                "{shown}: the ban file is larger than {MAX_BAN_FILE_BYTES} bytes"
            )));
        }
        let mut bytes = Vec::new();
        file.take(MAX_BAN_FILE_BYTES + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| invalid(format!("{shown}: cannot read the ban file: {e}")))?;
        let text = String::from_utf8(bytes)
            .map_err(|_| invalid(format!("{shown}: the ban file is not UTF-8")))?;
        // A file that does not parse bans nothing and admits nothing: the
        // old contents are dropped too, so fixing the file is the only way on.
        let list = match parse_ban_file(&text) {
            Ok(l) => Arc::new(l),
            Err(m) => {
                cache.remove(path);
                return Err(invalid(format!("{shown}:{m}")));
            }
        };
        cache.insert(path.to_path_buf(), (stamp, Arc::clone(&list)));
        Ok(list)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn parses_every_kind_and_reports_columns() {
        let l = parse_ban_file(
            "# security team\n\nsubject /DC=org/CN=Jane Doe\n  ca /DC=org/CN=Bad CA\nfqan /atlas/Role=*\ndigest ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef0123456789\njob 00112233445566778899aabbccddeeff\n",
        )
        .unwrap();
        assert_eq!(l.subjects, ["/DC=org/CN=Jane Doe"]);
        assert_eq!(l.cas, ["/DC=org/CN=Bad CA"]);
        assert_eq!(l.fqans.len(), 1);
        assert!(l.digests[0].starts_with("abcdef"));
        assert_eq!(l.job_ids.len(), 1);
        assert_eq!(
            parse_ban_file("\nuser /DC=x")
                .unwrap_err()
                .split(": ")
                .next(),
            Some("2:1")
        );
        assert_eq!(
            parse_ban_file("  job   123")
                .unwrap_err()
                .split(": ")
                .next(),
            Some("1:9")
        );
        assert!(parse_ban_file("subject").unwrap_err().starts_with("1:1:"));
    }
}
