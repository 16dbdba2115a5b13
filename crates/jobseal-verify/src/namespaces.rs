//! IGTF namespace constraints (`spec/jobseal.md` §5.2, §6.3 2d.7): which
//! subjects a CA may sign, from the CA directory's `<hash>.namespaces`
//! (EUGridPMA namespaces format 1.0) or, where that file does not exist,
//! `<hash>.signing_policy` (Globus EACL).
//!
//! Files are read lazily, for the CAs of the path being verified only.
//! Anything the parser does not understand makes the whole file invalid:
//! a policy that is half read is not enforced half way.

use std::path::PathBuf;

use jobseal_core::limits::MAX_POLICY_FILE_BYTES;
use jobseal_core::{Error, Reason};

use crate::parse::ParsedCert;
use crate::trust::{CaFileError, TrustStore};

/// Whether CA namespace policies are enforced (a [`crate::Config`] setting).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum NamespacePolicy {
    /// Enforce the policy files the CA directory holds for the CAs of the
    /// path; a path none of whose CAs has one is not constrained.
    #[default]
    IfPresent,
    /// As `IfPresent`, and every CA that signs a certificate of the path must
    /// be covered by a policy file.
    Require,
    /// Read no policy files.
    Ignore,
}

/// Which file format a rule came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// `<hash>.namespaces`: subjects are regular expressions.
    Namespaces,
    /// `<hash>.signing_policy`: subjects are `*`/`?` wildcards.
    SigningPolicy,
}

/// The CA a rule is about.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RuleIssuer {
    /// A DN in `/`-form, ASCII lower-cased.
    Dn(String),
    /// `SELF`: the CA whose subject hash names the file.
    SelfCa,
}

/// One rule: the issuer may (PERMIT) or may not (DENY) sign subjects that
/// match the pattern.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rule {
    pub issuer: RuleIssuer,
    pub permit: bool,
    pub pattern: Pattern,
    /// Line of the file where the rule starts (1-based).
    pub line: usize,
}

/// Why a policy file cannot be used.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PolicyError {
    /// 1-based line, 0 for the whole file.
    pub line: usize,
    pub message: String,
}

impl std::fmt::Display for PolicyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.line == 0 {
            f.write_str(&self.message)
        } else {
            write!(f, "line {}: {}", self.line, self.message)
        }
    }
}

fn perr(line: usize, message: impl Into<String>) -> PolicyError {
    PolicyError {
        line,
        message: message.into(),
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Atom {
    Any,
    Char(char),
}

/// A compiled subject pattern, matched against the whole `/`-form DN, ASCII
/// case-insensitively. Matching simulates the automaton state by state, so
/// its cost is at most pattern length × subject length: no backtracking.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pattern {
    /// Each atom, and whether it may repeat (`*`).
    atoms: Vec<(Atom, bool)>,
}

impl Pattern {
    /// A `.namespaces` subject: `.` any character, `*` zero or more of the
    /// preceding atom, `\` makes the next character literal, a leading `^` and
    /// a trailing `$` are accepted (matching is anchored anyway). Every other
    /// character is literal, `[` and `]` included (IGTF writes DNs such as
    /// `CN=… [Run by the Issuer]` that are meant literally). The other
    /// regular expression operators (`+ ? ( ) | { }`) are refused: another
    /// reader would give them a meaning this one does not.
    pub fn regex(p: &str) -> Result<Self, String> {
        let chars: Vec<char> = p.chars().collect();
        let mut atoms: Vec<(Atom, bool)> = Vec::new();
        let mut i = 0;
        while let Some(&c) = chars.get(i) {
            let last = i + 1 == chars.len();
            match c {
                '^' if i == 0 => {}
                '$' if last => {}
                '.' => atoms.push((Atom::Any, false)),
                '*' => match atoms.last_mut() {
                    Some(a) => a.1 = true,
                    None => return Err("`*` with nothing before it to repeat".into()),
                },
                '\\' => {
                    i += 1;
                    let next = chars
                        .get(i)
                        .ok_or_else(|| "a pattern ends with `\\`".to_string())?;
                    atoms.push((Atom::Char(next.to_ascii_lowercase()), false));
                }
                '+' | '?' | '(' | ')' | '|' | '{' | '}' | '^' | '$' => {
                    return Err(format!(
                        "unsupported regular expression operator `{c}` (only `.`, `*` and `\\` are)"
                    ));
                }
                c => atoms.push((Atom::Char(c.to_ascii_lowercase()), false)),
            }
            i += 1;
        }
        if atoms.is_empty() {
            return Err("an empty subject pattern".into());
        }
        Ok(Self { atoms })
    }

    /// A `.signing_policy` subject: `*` any run of characters, `?` any one
    /// character, everything else literal.
    pub fn glob(p: &str) -> Result<Self, String> {
        let atoms: Vec<(Atom, bool)> = p
            .chars()
            .map(|c| match c {
                '*' => (Atom::Any, true),
                '?' => (Atom::Any, false),
                c => (Atom::Char(c.to_ascii_lowercase()), false),
            })
            .collect();
        if atoms.is_empty() {
            return Err("an empty subject pattern".into());
        }
        Ok(Self { atoms })
    }

    /// Whether the whole of `subject` matches.
    pub fn matches(&self, subject: &str) -> bool {
        let n = self.atoms.len();
        let mut current = vec![false; n + 1];
        self.enter(&mut current, 0);
        for c in subject.chars().map(|c| c.to_ascii_lowercase()) {
            let mut next = vec![false; n + 1];
            for (state, (atom, star)) in self.atoms.iter().enumerate() {
                if !current.get(state).copied().unwrap_or(false) {
                    continue;
                }
                let hit = match atom {
                    Atom::Any => true,
                    Atom::Char(x) => *x == c,
                };
                if hit {
                    self.enter(&mut next, if *star { state } else { state + 1 });
                }
            }
            if !next.contains(&true) {
                return false;
            }
            current = next;
        }
        current.get(n).copied().unwrap_or(false)
    }

    /// Mark `state` and every state reached from it by skipping repeatable
    /// atoms.
    fn enter(&self, set: &mut [bool], mut state: usize) {
        loop {
            match set.get_mut(state) {
                Some(slot) if !*slot => *slot = true,
                _ => return,
            }
            match self.atoms.get(state) {
                Some((_, true)) => state += 1,
                _ => return,
            }
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Token {
    Word(String),
    /// The contents of a quoted string; with escapes on, `\x` is kept as is.
    Quoted(String),
}

fn tokens(s: &str, quote: char, escapes: bool, line: usize) -> Result<Vec<Token>, PolicyError> {
    let mut out = Vec::new();
    let mut it = s.chars().peekable();
    loop {
        while it.next_if(|c| c.is_whitespace()).is_some() {}
        let Some(&c) = it.peek() else {
            return Ok(out);
        };
        if c == quote {
            it.next();
            let mut v = String::new();
            let mut closed = false;
            while let Some(c) = it.next() {
                if c == '\\' && escapes {
                    v.push(c);
                    if let Some(n) = it.next() {
                        v.push(n);
                    }
                    continue;
                }
                if c == quote {
                    closed = true;
                    break;
                }
                v.push(c);
            }
            if !closed {
                return Err(perr(line, "a quoted string is not closed"));
            }
            if it.peek().is_some_and(|c| !c.is_whitespace()) {
                return Err(perr(line, "expected a space after a quoted string"));
            }
            out.push(Token::Quoted(v));
        } else {
            let mut w = String::new();
            while let Some(c) = it.next_if(|c| !c.is_whitespace()) {
                if c == quote {
                    return Err(perr(line, format!("unexpected {quote} inside a word")));
                }
                w.push(c);
            }
            out.push(Token::Word(w));
        }
    }
}

fn is(t: &Token, keyword: &str) -> bool {
    matches!(t, Token::Word(w) if w.eq_ignore_ascii_case(keyword))
}

/// Remove `\` escapes from a DN.
fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut it = s.chars();
    while let Some(c) = it.next() {
        if c == '\\' {
            if let Some(n) = it.next() {
                out.push(n);
            }
        } else {
            out.push(c);
        }
    }
    out
}

fn issuer_dn(dn: &str, line: usize) -> Result<RuleIssuer, PolicyError> {
    if !dn.starts_with('/') {
        return Err(perr(line, format!("the issuer {dn:?} is not a /-form DN")));
    }
    Ok(RuleIssuer::Dn(dn.to_ascii_lowercase()))
}

/// Cut a physical line at a `#` outside double quotes.
fn strip_comment(line: &str) -> &str {
    let mut in_quotes = false;
    let mut escaped = false;
    for (i, c) in line.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' => escaped = true,
            '"' => in_quotes = !in_quotes,
            '#' if !in_quotes => return line.get(..i).unwrap_or_default(),
            _ => {}
        }
    }
    line
}

/// Parse a `.namespaces` file: `TO Issuer "DN"|SELF PERMIT|DENY Subject
/// "pattern"` statements, keywords in any case, `#` comments, `\` at the end
/// of a line continuing it, and an optional `#NAMESPACES-VERSION: 1.0`.
pub fn parse_namespaces(text: &[u8]) -> Result<Vec<Rule>, PolicyError> {
    let text = std::str::from_utf8(text).map_err(|_| perr(0, "the file is not UTF-8 text"))?;
    let mut rules = Vec::new();
    let mut statement = String::new();
    let mut start = 0;
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        if let Some(v) = raw.trim().strip_prefix("#NAMESPACES-VERSION:") {
            if v.trim() != "1.0" {
                return Err(perr(
                    line,
                    format!("namespaces format version {:?} is not supported", v.trim()),
                ));
            }
            continue;
        }
        if statement.trim().is_empty() {
            start = line;
        }
        let content = strip_comment(raw).trim_end();
        if content.ends_with('\\') && !content.ends_with("\\\\") {
            statement.push_str(content.get(..content.len() - 1).unwrap_or_default());
            statement.push(' ');
            continue;
        }
        statement.push_str(content);
        if !statement.trim().is_empty() {
            rules.push(namespaces_statement(&statement, start)?);
        }
        statement.clear();
    }
    if !statement.trim().is_empty() {
        return Err(perr(
            start,
            "the last statement is continued past the end of the file",
        ));
    }
    Ok(rules)
}

fn namespaces_statement(s: &str, line: usize) -> Result<Rule, PolicyError> {
    let toks = tokens(s, '"', true, line)?;
    let [to, iss, issuer, action, subj, Token::Quoted(pattern)] = toks.as_slice() else {
        return Err(perr(
            line,
            "expected `TO Issuer \"DN\" PERMIT|DENY Subject \"pattern\"`",
        ));
    };
    if !(is(to, "to") && is(iss, "issuer") && is(subj, "subject")) {
        return Err(perr(
            line,
            "expected `TO Issuer \"DN\" PERMIT|DENY Subject \"pattern\"`",
        ));
    }
    let issuer = match issuer {
        Token::Quoted(dn) => issuer_dn(&unescape(dn), line)?,
        w if is(w, "self") => RuleIssuer::SelfCa,
        Token::Word(w) => {
            return Err(perr(
                line,
                format!("expected a quoted issuer DN or SELF, not {w:?}"),
            ));
        }
    };
    let permit = if is(action, "permit") {
        true
    } else if is(action, "deny") {
        false
    } else {
        return Err(perr(line, "expected PERMIT or DENY"));
    };
    let pattern = Pattern::regex(pattern).map_err(|m| perr(line, m))?;
    Ok(Rule {
        issuer,
        permit,
        pattern,
        line,
    })
}

/// Parse a `.signing_policy` file: blocks of `access_id_CA X509 '/DN'`,
/// `pos_rights globus CA:sign` and `cond_subjects globus '"pattern" …'`, one
/// statement a line, in that order; `#` starts a comment line. Every pattern
/// is a PERMIT rule for the block's CA.
pub fn parse_signing_policy(text: &[u8]) -> Result<Vec<Rule>, PolicyError> {
    let text = std::str::from_utf8(text).map_err(|_| perr(0, "the file is not UTF-8 text"))?;
    let mut rules = Vec::new();
    // The open block: its issuer, the line it starts on, whether
    // pos_rights and cond_subjects were seen.
    let mut block: Option<(RuleIssuer, usize, bool, bool)> = None;
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        let trimmed = raw.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let toks = tokens(trimmed, '\'', false, line)?;
        match toks.as_slice() {
            [a, x, Token::Quoted(dn)] if is(a, "access_id_CA") && is(x, "X509") => {
                if let Some((_, l, _, false)) = block {
                    return Err(perr(l, "this access_id_CA block has no cond_subjects"));
                }
                block = Some((issuer_dn(dn, line)?, line, false, false));
            }
            [p, g, r] if is(p, "pos_rights") && is(g, "globus") && is(r, "CA:sign") => {
                match &mut block {
                    Some((_, _, rights @ false, false)) => *rights = true,
                    _ => {
                        return Err(perr(
                            line,
                            "pos_rights must follow access_id_CA, once per block",
                        ));
                    }
                }
            }
            [c, g, Token::Quoted(list)] if is(c, "cond_subjects") && is(g, "globus") => {
                let Some((issuer, _, true, cond @ false)) = &mut block else {
                    return Err(perr(
                        line,
                        "cond_subjects must follow pos_rights, once per block",
                    ));
                };
                *cond = true;
                let subjects = tokens(list, '"', false, line)?;
                if subjects.is_empty() {
                    return Err(perr(line, "cond_subjects lists no subject"));
                }
                for s in subjects {
                    let Token::Quoted(p) = s else {
                        return Err(perr(
                            line,
                            "every cond_subjects subject must be in double quotes",
                        ));
                    };
                    rules.push(Rule {
                        issuer: issuer.clone(),
                        permit: true,
                        pattern: Pattern::glob(&p).map_err(|m| perr(line, m))?,
                        line,
                    });
                }
            }
            _ => {
                return Err(perr(
                    line,
                    "expected access_id_CA X509 '…', pos_rights globus CA:sign or cond_subjects globus '…'",
                ));
            }
        }
    }
    if let Some((_, l, _, false)) = block {
        return Err(perr(l, "this access_id_CA block has no cond_subjects"));
    }
    Ok(rules)
}

/// The rules of a policy file that parsed, shared with the file's cache.
struct Rules(std::sync::Arc<Result<Vec<Rule>, PolicyError>>);

impl Rules {
    fn iter(&self) -> impl Iterator<Item = &Rule> {
        // Only made from a file that parsed (see `policy_file`).
        self.0
            .as_ref()
            .as_ref()
            .map(Vec::as_slice)
            .unwrap_or_default()
            .iter()
    }
}

/// The policy file of one CA (by subject hash), if the directory has one.
fn policy_file(trust: &TrustStore, hash: u32) -> Result<Option<(PathBuf, Format, Rules)>, Error> {
    for (suffix, format) in [
        ("namespaces", Format::Namespaces),
        ("signing_policy", Format::SigningPolicy),
    ] {
        match trust.read_file(hash, suffix, MAX_POLICY_FILE_BYTES) {
            Ok(None) => continue,
            Ok(Some((path, file))) => {
                // Parsed once per version of the file (kept with its bytes).
                let parsed = file.parsed(|data| match format {
                    Format::Namespaces => parse_namespaces(data),
                    Format::SigningPolicy => parse_signing_policy(data),
                });
                return match &*parsed {
                    Ok(_) => Ok(Some((path, format, Rules(parsed)))),
                    Err(e) => Err(Error::new(
                        Reason::ChainPolicyFileInvalid,
                        format!("the CA policy file {} cannot be used: {e}", path.display()),
                    )),
                };
            }
            Err((path, CaFileError::TooLarge)) => {
                return Err(Error::new(
                    Reason::LimitExceeded,
                    format!(
                        "the CA policy file {} is larger than {MAX_POLICY_FILE_BYTES} bytes",
                        path.display()
                    ),
                ));
            }
            Err((path, CaFileError::Unreadable(e) | CaFileError::Missing(e))) => {
                return Err(Error::new(
                    Reason::ChainPolicyFileInvalid,
                    format!("the CA policy file {} cannot be read: {e}", path.display()),
                ));
            }
        }
    }
    Ok(None)
}

/// Step 2d.7 for a certificate a CA issued (intermediate CA or EEC).
/// `above` holds its issuer first, then each CA above it up to the anchor.
///
/// The policy that applies is the first file, from the issuer's own up to
/// the anchor's, with a rule for the issuer; the subject must match one of
/// its PERMIT rules for that issuer and none of its DENY rules. If files
/// exist along the path but none has a rule for the issuer, the issuer may
/// sign nothing.
/// Whether `cert` asserts `cA` (a malformed or repeated basicConstraints
/// is path.rs's to refuse; here it counts as not a CA, so it is checked).
fn is_ca(cert: &ParsedCert) -> bool {
    match cert.extension(jobseal_core::oid::BASIC_CONSTRAINTS) {
        Ok(Some(e)) => <x509_cert::ext::pkix::BasicConstraints as der::Decode>::from_der(
            e.extn_value.as_bytes(),
        )
        .is_ok_and(|b| b.ca),
        _ => false,
    }
}

pub fn check(cert: &ParsedCert, above: &[&ParsedCert], trust: &TrustStore) -> Result<(), Error> {
    // A self-issued CA certificate (key rollover) adds no name to constrain;
    // an end entity is always checked (path.rs refuses one named as its
    // issuer anyway).
    if trust.namespaces == NamespacePolicy::Ignore || (cert.is_self_issued() && is_ca(cert)) {
        return Ok(());
    }
    let issuer = above
        .first()
        .ok_or_else(|| Error::new(Reason::Internal, "namespace check without an issuer"))?;
    // The names are built once a policy file is found: a CA without one
    // costs no string building.
    let mut names: Option<(String, String, String, RuleIssuer)> = None;
    let mut consulted = Vec::new();
    for (depth, ca) in above.iter().enumerate() {
        let Some(hash) = ca.subject_hash() else {
            continue;
        };
        let Some((path, format, rules)) = policy_file(trust, hash)? else {
            continue;
        };
        let (subject_dn, issuer_dn, subject, issuer_key) = names.get_or_insert_with(|| {
            let subject_dn = cert.subject_dn();
            let issuer_dn = issuer.subject_dn();
            let subject = subject_dn.to_ascii_lowercase();
            let issuer_key = RuleIssuer::Dn(issuer_dn.to_ascii_lowercase());
            (subject_dn, issuer_dn, subject, issuer_key)
        });
        let (subject_dn, issuer_dn, subject, issuer_key) =
            (&*subject_dn, &*issuer_dn, &*subject, &*issuer_key);
        let applicable: Vec<&Rule> = rules
            .iter()
            .filter(|r| r.issuer == *issuer_key || (r.issuer == RuleIssuer::SelfCa && depth == 0))
            .collect();
        if applicable.is_empty() {
            consulted.push(path.display().to_string());
            continue;
        }
        // A DENY rule written as grid tools print names (a `/` or `+` in a
        // value unescaped) still denies: it is matched against both forms.
        // PERMIT rules see the unambiguous form only.
        let plain = jobseal_core::name::unescaped_slash_form(subject);
        if let Some(r) = applicable
            .iter()
            .find(|r| !r.permit && (r.pattern.matches(subject) || r.pattern.matches(&plain)))
        {
            return Err(Error::new(
                Reason::ChainNamespaceViolation,
                format!(
                    "{subject_dn} may not be signed by {issuer_dn}: denied by {} line {}",
                    path.display(),
                    r.line
                ),
            ));
        }
        if applicable
            .iter()
            .any(|r| r.permit && r.pattern.matches(subject))
        {
            return Ok(());
        }
        let kind = match format {
            Format::Namespaces => "namespaces",
            Format::SigningPolicy => "signing policy",
        };
        return Err(Error::new(
            Reason::ChainNamespaceViolation,
            format!(
                "{subject_dn} is outside the namespace of {issuer_dn} ({kind} {})",
                path.display()
            ),
        ));
    }
    if !consulted.is_empty() {
        let (issuer_dn, subject_dn) = (issuer.subject_dn(), cert.subject_dn());
        return Err(Error::new(
            Reason::ChainNamespaceViolation,
            format!(
                "{issuer_dn} signed {subject_dn}, but no rule of {} is about that issuer",
                consulted.join(", ")
            ),
        ));
    }
    if trust.namespaces == NamespacePolicy::Require {
        return Err(Error::new(
            Reason::ChainNamespaceViolation,
            format!(
                "no .namespaces or .signing_policy file in {} constrains {}, and the configuration requires one",
                trust.dir().display(),
                issuer.subject_dn()
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    fn ns(text: &str) -> Result<Vec<Rule>, PolicyError> {
        parse_namespaces(text.as_bytes())
    }

    fn sp(text: &str) -> Result<Vec<Rule>, PolicyError> {
        parse_signing_policy(text.as_bytes())
    }

    #[test]
    fn regex_subset() {
        let p = Pattern::regex("/C=BR/O=ANSP/OU=ANSPGrid CA/.*").unwrap();
        assert!(p.matches("/C=BR/O=ANSP/OU=ANSPGrid CA/CN=Jane"));
        assert!(
            p.matches("/c=br/o=ansp/ou=anspgrid ca/"),
            "ASCII case-insensitive"
        );
        assert!(
            !p.matches("/C=BR/O=ANSP/OU=ANSPGrid CA"),
            "the / is required"
        );
        assert!(!p.matches("/C=BR/O=ANSP/OU=Other/CN=x"));
        assert!(
            !p.matches("x/C=BR/O=ANSP/OU=ANSPGrid CA/CN=Jane"),
            "anchored at the start"
        );
        // `.` is any character, `\.` a dot.
        let p = Pattern::regex(r"/O=a.b\.c").unwrap();
        assert!(p.matches("/O=axb.c"));
        assert!(!p.matches("/O=axbxc"));
        // A starred literal, and `^`/`$` as no-op anchors.
        let p = Pattern::regex("^/CN=ab*c$").unwrap();
        assert!(p.matches("/CN=ac") && p.matches("/CN=abbbc"));
        assert!(!p.matches("/CN=abd"));
        // Brackets are literal (IGTF's `[Run by the Issuer]`).
        let p = Pattern::regex("/CN=CA G3  [Run by the Issuer]").unwrap();
        assert!(p.matches("/CN=CA G3  [Run by the Issuer]"));
        assert!(!p.matches("/CN=CA G3  R"));
        // Several stars, and a star that can match nothing.
        let p = Pattern::regex("/DC=.*/DC=.*/CN=.*x").unwrap();
        assert!(p.matches("/DC=a/DC=b/CN=x"));
        assert!(p.matches("/DC=/DC=/CN=yyx"));
        assert!(!p.matches("/DC=a/CN=x"));
    }

    #[test]
    fn regex_refusals() {
        for bad in [
            "",
            "*x",
            "/CN=a+",
            "/CN=a?",
            "/CN=(a|b)",
            "/CN=a{2}",
            "a^b",
            "a$b",
            "/CN=a\\",
        ] {
            assert!(Pattern::regex(bad).is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn globs() {
        let p = Pattern::glob("/C=KR/O=KISTI/*").unwrap();
        assert!(p.matches("/C=KR/O=KISTI/O=Research/CN=x"));
        assert!(p.matches("/C=KR/O=KISTI/"));
        assert!(!p.matches("/C=KR/O=KISTIX/CN=x"));
        let p = Pattern::glob("/CN=a?c*.d").unwrap();
        assert!(p.matches("/CN=abc.d") && p.matches("/cn=AXCzz.d"));
        assert!(!p.matches("/CN=ac.d"), "? is exactly one character");
        assert!(!p.matches("/CN=abcxd"), ". is literal in a glob");
        assert!(Pattern::glob("*").unwrap().matches(""));
        assert!(Pattern::glob("").is_err());
    }

    #[test]
    fn pathological_patterns_stay_linear() {
        let p = Pattern::regex(&".*a".repeat(200)).unwrap();
        let s = "a".repeat(199) + "b";
        let start = std::time::Instant::now();
        assert!(!p.matches(&s));
        assert!(start.elapsed() < std::time::Duration::from_secs(2));
    }

    #[test]
    fn namespaces_file_as_igtf_writes_it() {
        let text = "##############\n#NAMESPACES-VERSION: 1.0\n#\n# @(#)x.namespaces\n\
                    TO Issuer \"/C=NL/O=Example/CN=Root\" \\\n  PERMIT Subject \"/C=NL/O=Example/CN=Sub\"\n\n\
                    to issuer \"/C=NL/O=Example/CN=Sub\" \\\n  permit subject \"/DC=org/DC=example/.*\" # trailing comment\n";
        let rules = ns(text).unwrap();
        assert_eq!(rules.len(), 2);
        assert_eq!(
            rules[0].issuer,
            RuleIssuer::Dn("/c=nl/o=example/cn=root".into())
        );
        assert_eq!(rules[0].line, 5);
        assert!(rules[0].permit);
        assert_eq!(rules[1].line, 8);
        assert!(rules[1].pattern.matches("/DC=org/DC=example/CN=Jane"));
    }

    #[test]
    fn namespaces_self_deny_and_escapes() {
        let rules = ns("TO Issuer SELF DENY Subject \"/O=x/CN=Mallory.*\"\n\
                        TO Issuer \"/O=x/CN=Quote\\\" CA\" PERMIT Subject \"/O=x/CN=a\\.b\"\n")
        .unwrap();
        assert_eq!(rules[0].issuer, RuleIssuer::SelfCa);
        assert!(!rules[0].permit);
        assert_eq!(rules[1].issuer, RuleIssuer::Dn("/o=x/cn=quote\" ca".into()));
        assert!(rules[1].pattern.matches("/O=x/CN=a.b"));
        assert!(!rules[1].pattern.matches("/O=x/CN=axb"));
        // `#` inside quotes is not a comment.
        let rules = ns("TO Issuer \"/O=x/CN=#1\" PERMIT Subject \"/O=x/CN=#.*\"\n").unwrap();
        assert!(rules[0].pattern.matches("/O=x/CN=#2"));
    }

    #[test]
    fn malformed_namespaces_files() {
        let cases = [
            ("#NAMESPACES-VERSION: 2.0\n", 1),
            ("TO Issuer \"/O=x\" PERMT Subject \"/O=x/.*\"\n", 1),
            ("TO Issuer \"/O=x\" PERMIT Subject \"/O=x/.*\n", 1),
            ("TO Issuer \"/O=x\" PERMIT Subject \"/O=x/.*\" extra\n", 1),
            ("TO Issuer \"O=x\" PERMIT Subject \"/O=x/.*\"\n", 1),
            ("TO Issuer OTHER PERMIT Subject \"/O=x/.*\"\n", 1),
            ("\n\nTO Issuer \"/O=x\" \\\n PERMIT Subject \\\n", 3),
            ("TO Issuer \"/O=x\" PERMIT Subject\"/O=x/.*\"\n", 1),
            ("TO Issuer \"/O=x\"PERMIT Subject \"/O=x/.*\"\n", 1),
            ("TO Issuer \"/O=x\" PERMIT Subject \"\"\n", 1),
            ("TO Issuer \"/O=x\" PERMIT Subject \"/O=(x)\"\n", 1),
        ];
        for (text, line) in cases {
            let e = ns(text).expect_err(text);
            assert_eq!(e.line, line, "{text:?}: {e}");
        }
        assert!(parse_namespaces(&[0xff, 0xfe]).is_err(), "not UTF-8");
        assert_eq!(ns("# only comments\n\n").unwrap().len(), 0);
    }

    #[test]
    fn signing_policy_as_igtf_writes_it() {
        let text = "# EACL\n access_id_CA      X509         '/C=JP/O=NII/OU=HPCI/CN=HPCI CA'\n\n \
                    pos_rights        globus        CA:sign\n\n \
                    cond_subjects     globus       '\"/C=JP/O=NII/OU=HPCI/*\" \"/C=JP/O=NII/CN=?\"'\n\
                    access_id_CA X509 '/C=JP/O=Two'\npos_rights globus CA:sign\ncond_subjects globus '\"/C=JP/O=Two/*\"'\n";
        let rules = sp(text).unwrap();
        assert_eq!(rules.len(), 3);
        assert_eq!(
            rules[0].issuer,
            RuleIssuer::Dn("/c=jp/o=nii/ou=hpci/cn=hpci ca".into())
        );
        assert!(rules.iter().all(|r| r.permit));
        assert!(rules[1].pattern.matches("/C=JP/O=NII/CN=x"));
        assert_eq!(rules[2].issuer, RuleIssuer::Dn("/c=jp/o=two".into()));
    }

    #[test]
    fn malformed_signing_policies() {
        let head = "access_id_CA X509 '/O=x'\n";
        let cases = [
            head.to_string(),
            format!("{head}pos_rights globus CA:sign\n"),
            format!("{head}cond_subjects globus '\"/O=x/*\"'\n"),
            format!("{head}pos_rights globus CA:revoke\ncond_subjects globus '\"/O=x/*\"'\n"),
            format!("{head}pos_rights globus CA:sign\ncond_subjects globus '/O=x/*'\n"),
            format!("{head}pos_rights globus CA:sign\ncond_subjects globus ''\n"),
            format!("{head}pos_rights globus CA:sign\ncond_subjects globus '\"/O=x/*\"\n"),
            format!("{head}neg_rights globus CA:sign\n"),
            "pos_rights globus CA:sign\n".to_string(),
            "access_id_CA globus '/O=x'\n".to_string(),
            format!(
                "{head}pos_rights globus CA:sign\ncond_subjects globus '\"/O=x/*\"'\ncond_subjects globus '\"/O=y/*\"'\n"
            ),
        ];
        for text in cases {
            assert!(sp(&text).is_err(), "{text:?} should be refused");
        }
        assert_eq!(sp("# nothing\n").unwrap().len(), 0);
    }

    /// `spec/jobseal.md` §5.2: a quoted string is unescaped once, by its
    /// reader (issue 18 §5 point 13).
    #[test]
    fn backslashes_are_unescaped_once() {
        let rules = ns(
            r#"TO Issuer "/O=x/CN=a\\b" PERMIT Subject "/O=x/CN=a\\.b\.c"
"#,
        )
        .unwrap();
        assert_eq!(rules[0].issuer, RuleIssuer::Dn(r"/o=x/cn=a\b".into()));
        let p = &rules[0].pattern;
        // `\\.` a backslash then any character; `\.` a literal dot.
        assert!(p.matches(r"/O=x/CN=a\Xb.c"));
        assert!(!p.matches(r"/O=x/CN=a\Xbxc"));
        assert!(!p.matches("/O=x/CN=aXb.c"));
        // A line ending in `\\` does not continue.
        assert!(ns("TO Issuer \"/O=x\" PERMIT Subject \"/O=x/CN=a\\\\\"\n").is_ok());
    }

    #[test]
    fn signing_policy_words_in_any_case_and_unescaped_patterns() {
        let rules = sp("ACCESS_ID_CA x509 '/O=x'\nPos_Rights GLOBUS ca:SIGN\n\
                        COND_SUBJECTS Globus '\"/O=x/CN=a\\*\"'\n")
        .unwrap();
        // `\` is literal in a glob: it does not quote the `*`.
        assert!(rules[0].pattern.matches("/O=x/CN=a\\anything"));
        assert!(!rules[0].pattern.matches("/O=x/CN=a*"));
        // `#` is a comment only at the start of a line.
        assert!(sp("access_id_CA X509 '/O=x' # c\n").is_err());
    }
}
