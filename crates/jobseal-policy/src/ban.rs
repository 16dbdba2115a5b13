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

/// What is banned. DNs are in the slash form of §6.8, escaped or as grid
/// tools print it (unescaped), and compare as exact strings with either;
/// digests and job ids are lowercase hex.
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

/// The attribute types a DN entry may name: the short names jobseal prints
/// (`jobseal_core::name`), exactly as written there; any other type is a
/// dotted OID.
pub const DN_TYPES: [&str; 12] = [
    "CN",
    "C",
    "L",
    "ST",
    "O",
    "OU",
    "DC",
    "UID",
    "emailAddress",
    "serialNumber",
    "GN",
    "SN",
];

/// A dotted OID as jobseal prints one: at least two arcs of decimal digits,
/// no leading zeros.
fn is_dotted_oid(t: &str) -> bool {
    let mut arcs = 0usize;
    for arc in t.split('.') {
        if arc.is_empty()
            || !arc.bytes().all(|b| b.is_ascii_digit())
            || (arc.len() > 1 && arc.starts_with('0'))
        {
            return false;
        }
        arcs += 1;
    }
    arcs >= 2
}

/// If `rest` (the text after a `/` or `+`) begins like `TYPE=`, the type
/// as written (possibly mistyped); otherwise the separator belongs to the
/// value before it.
fn type_like(rest: &str) -> Option<&str> {
    let (token, _) = rest.split_once('=')?;
    let looks = !token.trim().is_empty()
        && token
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | ' ' | '\t'));
    looks.then_some(token)
}

/// Check one attribute type of a DN entry.
fn check_dn_type(v: &str, t: &str) -> Result<(), String> {
    if DN_TYPES.contains(&t) || is_dotted_oid(t) {
        return Ok(());
    }
    let hint = DN_TYPES
        .iter()
        .find(|k| k.eq_ignore_ascii_case(t.trim()))
        .map_or_else(String::new, |k| format!(" (write {k:?})"));
    Err(format!(
        "DN {v:?} names the attribute type {t:?}, which jobseal never prints{hint}; \
         types are {} or a dotted OID, case-sensitive",
        DN_TYPES.join(", ")
    ))
}

/// Check one attribute value of a DN entry.
fn check_dn_value(v: &str, t: &str, value: &str) -> Result<(), String> {
    let bad = |what: &str| Err(format!("DN {v:?}: the value of {t} {what}"));
    if value.is_empty() {
        return bad("is empty");
    }
    if value.starts_with('/') || value.ends_with('/') {
        return bad("starts or ends with '/' (an empty RDN or a trailing '/')");
    }
    if value.starts_with(char::is_whitespace) || value.ends_with(char::is_whitespace) {
        return bad("starts or ends with whitespace");
    }
    if strip_comment(value) != value {
        return bad("holds whitespace followed by '#', which starts a comment in a ban file");
    }
    Ok(())
}

/// Check a DN entry: the one-line form of §6.8 that jobseal prints,
/// `(/TYPE=value(+TYPE=value)*)+`, with TYPE one of [`DN_TYPES`] (exact
/// case) or a dotted OID. A `/` or `+` followed by something like `word=`
/// separates attributes, so its type must be valid; any other `/` or `+` is
/// part of a value (`CN=host/node.example.org`). A value is non-empty, does
/// not start or end with `/` or whitespace, and holds no control character.
/// The DN is returned unchanged: DNs compare as exact strings, values
/// case-sensitively.
pub fn check_dn(v: &str) -> Result<String, String> {
    if v.chars().any(char::is_control) {
        return Err(format!("DN {v:?} holds a control character"));
    }
    let Some(body) = v.strip_prefix('/') else {
        return Err(format!(
            "{v:?} is not a DN in slash form (\"/DC=org/DC=example/CN=...\")"
        ));
    };
    let Some(first) = type_like(body) else {
        return Err(format!(
            "{v:?} is not a DN in slash form (\"/DC=org/DC=example/CN=...\")"
        ));
    };
    // Walk the attributes: (type, start of value) pairs, split at each
    // separator that introduces a type.
    let mut ty = first;
    check_dn_type(v, ty)?;
    let mut value_start = first.len() + 1;
    let mut i = value_start;
    while let Some(off) = body.get(i..).and_then(|r| r.find(['/', '+'])) {
        let sep = i + off;
        let rest = body.get(sep + 1..).unwrap_or("");
        match type_like(rest) {
            Some(next) => {
                check_dn_type(v, next)?;
                check_dn_value(v, ty, body.get(value_start..sep).unwrap_or(""))?;
                ty = next;
                value_start = sep + 1 + next.len() + 1;
                i = value_start;
            }
            None => i = sep + 1,
        }
    }
    check_dn_value(v, ty, body.get(value_start..).unwrap_or(""))?;
    Ok(v.to_owned())
}

/// A ban file line without its trailing comment: a `#` preceded by
/// whitespace starts a comment, and trailing whitespace is dropped.
fn strip_comment(line: &str) -> &str {
    let mut prev_space = false;
    for (i, c) in line.char_indices() {
        if c == '#' && prev_space {
            return line.get(..i).unwrap_or(line).trim_end();
        }
        prev_space = c.is_whitespace();
    }
    line.trim_end()
}

/// Check a hex value of `len` digits; returns it in lowercase.
pub fn check_hex(v: &str, len: usize, what: &str) -> Result<String, String> {
    if v.len() != len || !v.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(format!("{v:?} is not a {what} ({len} hex digits)"));
    }
    Ok(v.to_ascii_lowercase())
}

/// Parse a ban file: one `KIND VALUE` a line, `#` comment lines and blank
/// lines ignored, a `#` after whitespace starting a trailing comment.
/// Errors are `LINE:COL: message`.
pub fn parse_ban_file(text: &str) -> Result<BanList, String> {
    let mut out = BanList::default();
    for (i, raw) in text.lines().enumerate() {
        let line_no = i + 1;
        let indent = raw.len() - raw.trim_start().len();
        let line = strip_comment(raw.trim());
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

/// The effective uid of this process: the second field of the `Uid:` line
/// of `/proc/self/status`. `None` when it cannot be read, and then only
/// files owned by root are trusted.
pub(crate) fn effective_uid() -> Option<u32> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    Some(jobseal_core::procstatus::ids(&status, "Uid:")?[1])
}

/// Whether a policy or ban file with this mode and owner may be trusted:
/// writable by its owner only, and owned by root or by `euid` (the user
/// jobseal runs as). The message completes "FILE is ...".
pub fn check_owner_and_mode(mode: u32, uid: u32, euid: Option<u32>) -> Result<(), String> {
    if mode & 0o022 != 0 {
        let who = match (mode & 0o020 != 0, mode & 0o002 != 0) {
            (true, true) => "its group and by others",
            (true, false) => "its group",
            _ => "others",
        };
        return Err(format!(
            "writable by {who} (mode {:04o}); it must be writable by its owner only",
            mode & 0o7777
        ));
    }
    if uid != 0 && Some(uid) != euid {
        return Err(format!(
            "owned by uid {uid}, neither root nor the user jobseal runs as{}",
            euid.map_or_else(String::new, |e| format!(" (uid {e})"))
        ));
    }
    Ok(())
}

/// [`check_owner_and_mode`] on a file's status, for this process.
pub(crate) fn check_trusted(meta: &std::fs::Metadata) -> Result<(), String> {
    check_owner_and_mode(meta.mode(), meta.uid(), effective_uid())
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
        check_trusted(&meta).map_err(|m| invalid(format!("{shown}: the ban file is {m}")))?;
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

    /// C1: entries that could never match are refused, not kept.
    #[test]
    fn dn_entries_are_parsed_strictly() {
        for ok in [
            "/DC=org/DC=test/CN=alice",
            "/DC=org/DC=example/O=Example/CN=Jane Doe",
            "/C=NL/O=NIKHEF/OU=PDP/CN=host/node.example.org",
            "/DC=org/CN=a+UID=b",
            "/emailAddress=x@example.org/serialNumber=1/GN=J/SN=D/L=A/ST=B/C=NL",
            "/2.5.4.12=Director/CN=x",
            "/CN=C++ dev",
            "/CN=Team#5",
            "/CN=a=b",
        ] {
            assert_eq!(check_dn(ok).unwrap(), ok);
        }
        for (bad, says) in [
            ("/DC=org/DC=test/CN=alice/", "'/'"),
            ("/DC=org/DC=test/CN=alice   # INC-42", "'#'"),
            ("/DC=org/DC=test/CN=alice ", "whitespace"),
            ("/dc=org/dc=test/CN=alice", "write \"DC\""),
            ("/DC=org/dc=test/CN=alice", "write \"DC\""),
            ("/DC=org/Cn=alice", "write \"CN\""),
            ("/DC=org/CN=a+uid=b", "write \"UID\""),
            ("/DC=org/ CN=alice", "type"),
            ("/DC=org/CN =alice", "type"),
            ("/DC=org/Foo=alice", "type"),
            ("/DC=org//CN=alice", "'/'"),
            ("/DC=org/CN=", "empty"),
            ("/CN=x/01.2=y", "type"),
            ("/CN=x/2=y", "type"),
            ("/", "slash form"),
            ("/alice", "slash form"),
            ("CN=alice", "slash form"),
            ("/CN=a\nb", "control"),
        ] {
            let e = check_dn(bad).unwrap_err();
            assert!(e.contains(says), "{bad:?}: {e}");
        }
    }

    /// C1: a trailing comment is stripped only after whitespace.
    #[test]
    fn ban_file_lines_may_end_in_a_comment() {
        let l = parse_ban_file(
            "subject /DC=org/DC=test/CN=alice   # INC-42\n\
             ca /DC=org/CN=Bad CA\t#ticket\n\
             fqan /atlas/Role=pilot # why\n\
             job 00112233445566778899aabbccddeeff   \n",
        )
        .unwrap();
        assert_eq!(l.subjects, ["/DC=org/DC=test/CN=alice"]);
        assert_eq!(l.cas, ["/DC=org/CN=Bad CA"]);
        assert_eq!(l.fqans[0].as_str(), "/atlas/Role=pilot");
        assert_eq!(l.job_ids.len(), 1);
        // `#` not after whitespace is part of the value.
        let l = parse_ban_file("subject /DC=org/CN=Team#5 # x\n").unwrap();
        assert_eq!(l.subjects, ["/DC=org/CN=Team#5"]);
        let e = parse_ban_file("\nsubject /DC=org/DC=test/CN=alice/  # x\n").unwrap_err();
        assert!(e.starts_with("2:9: ") && e.contains("'/'"), "{e}");
        let e = parse_ban_file("subject /dc=org/dc=test/CN=alice\n").unwrap_err();
        assert!(e.starts_with("1:9: "), "{e}");
        assert!(parse_ban_file("subject # only a comment\n").is_err());
    }

    /// M3: only files that root or this user alone can write are trusted.
    #[test]
    fn owner_and_mode() {
        assert!(check_owner_and_mode(0o100644, 0, Some(1000)).is_ok());
        assert!(check_owner_and_mode(0o100600, 1000, Some(1000)).is_ok());
        assert!(check_owner_and_mode(0o100444, 0, None).is_ok());
        let e = check_owner_and_mode(0o100664, 0, Some(0)).unwrap_err();
        assert!(e.contains("its group") && e.contains("0664"), "{e}");
        let e = check_owner_and_mode(0o100646, 0, Some(0)).unwrap_err();
        assert!(e.contains("by others"), "{e}");
        assert!(check_owner_and_mode(0o100666, 0, Some(0)).is_err());
        let e = check_owner_and_mode(0o100644, 1001, Some(1000)).unwrap_err();
        assert!(e.contains("uid 1001"), "{e}");
        assert!(check_owner_and_mode(0o100644, 1000, None).is_err());
        // This process can read its own effective uid.
        assert!(effective_uid().is_some());
    }
}
