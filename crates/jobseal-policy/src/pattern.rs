//! FQAN patterns with a `*` glob (`spec/jobseal.md` §13.2).

use std::fmt;

/// An FQAN pattern: an FQAN (`/vo/group/Role=r`) in which `*` stands for
/// any run of characters, `/` included. The first component is a literal
/// VO name. FQANs are normalised before matching: a trailing
/// `/Capability=NULL` and then `/Role=NULL` are dropped, so the long and
/// short VOMS forms compare equal. A pattern is not widened by this: when
/// it ends in `/Role=NULL` (or `/Capability=NULL`), the rest of it is
/// matched and the FQAN must moreover have the null role (capability).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FqanPattern {
    text: String,
    /// The pattern without its trailing `NULL` parts.
    normalized: Vec<char>,
    /// The pattern ended in `/Role=NULL`: the FQAN's role must be null.
    null_role: bool,
    /// The pattern ended in `/Capability=NULL`: so must its capability.
    null_capability: bool,
}

/// VO names as VOMS policy authorities spell them (§6.3a b): letters,
/// digits, `.`, `-`, `_`, not starting with `.`.
pub fn check_vo(vo: &str) -> Result<String, String> {
    let ok = !vo.is_empty()
        && !vo.starts_with('.')
        && vo
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'));
    if ok {
        Ok(vo.to_owned())
    } else {
        Err(format!(
            "{vo:?} is not a VO name (letters, digits, '.', '-', '_')"
        ))
    }
}

/// Check the `Role=` and `Capability=` parts of a pattern: spelt as VOMS
/// writes them, so that none silently never matches.
fn check_qualifier(text: &str, component: &str) -> Result<(), String> {
    let Some((key, value)) = component.split_once('=') else {
        return Ok(());
    };
    for want in ["Role", "Capability"] {
        if key.eq_ignore_ascii_case(want) && key != want {
            return Err(format!(
                "FQAN pattern {text:?} writes {key:?}; VOMS writes {want:?}"
            ));
        }
        if key == want {
            if value.is_empty() {
                return Err(format!("FQAN pattern {text:?}: {want}= has no value"));
            }
            if value.eq_ignore_ascii_case("NULL") && value != "NULL" {
                return Err(format!(
                    "FQAN pattern {text:?} writes {want}={value}; VOMS writes the null \
                     {} as {want}=NULL",
                    want.to_ascii_lowercase()
                ));
            }
        }
    }
    Ok(())
}

impl FqanPattern {
    /// Parse a pattern; the message says what is wrong with it.
    pub fn new(text: &str) -> Result<Self, String> {
        let Some(body) = text.strip_prefix('/') else {
            return Err(format!("FQAN pattern {text:?} does not start with '/'"));
        };
        if body.is_empty() {
            return Err("FQAN pattern \"/\" names no VO".into());
        }
        // Other glob syntax is refused rather than taken literally, so that a
        // site never believes `?` or `[...]` did something.
        if let Some(c) = text
            .chars()
            .find(|c| c.is_whitespace() || c.is_control() || matches!(c, '?' | '[' | ']' | '\\'))
        {
            return Err(format!(
                "FQAN pattern {text:?} holds {c:?}; only '*' is a wildcard"
            ));
        }
        if text.contains("//") || text.ends_with('/') {
            return Err(format!("FQAN pattern {text:?} has an empty group"));
        }
        let mut components = body.split('/');
        let vo = components.next().unwrap_or("");
        check_vo(vo).map_err(|_| {
            format!(
                "FQAN pattern {text:?} does not start with a VO name: its first part {vo:?} \
                 must be a literal VO (letters, digits, '.', '-', '_'; no '*')"
            )
        })?;
        for c in components {
            check_qualifier(text, c)?;
        }
        let mut rest = text;
        let null_capability = match rest.strip_suffix("/Capability=NULL") {
            Some(r) => {
                rest = r;
                true
            }
            None => false,
        };
        let null_role = match rest.strip_suffix("/Role=NULL") {
            Some(r) => {
                rest = r;
                true
            }
            None => false,
        };
        Ok(Self {
            text: text.to_owned(),
            normalized: rest.chars().collect(),
            null_role,
            null_capability,
        })
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Whether `fqan` matches.
    pub fn matches(&self, fqan: &str) -> bool {
        let n = normalize_fqan(fqan);
        // After normalisation a null role or capability can only remain
        // before a non-null capability (`/vo/Role=NULL/Capability=x`).
        let has = |key: &str| {
            n.split('/')
                .any(|c| c.strip_prefix(key).is_some_and(|v| v != "NULL"))
        };
        if (self.null_role && has("Role=")) || (self.null_capability && has("Capability=")) {
            return false;
        }
        let f: Vec<char> = n.chars().collect();
        glob(&self.normalized, &f)
    }
}

impl fmt::Display for FqanPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl<'de> serde::Deserialize<'de> for FqanPattern {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::new(&s).map_err(serde::de::Error::custom)
    }
}

/// Drop the `Role=NULL` and `Capability=NULL` parts VOMS writes in the long
/// form of an FQAN (never of a pattern). Only `NULL` as VOMS writes it is
/// the null value; `Role=null` names a role called "null".
pub fn normalize_fqan(fqan: &str) -> String {
    let mut out = fqan;
    for suffix in ["/Capability=NULL", "/Role=NULL"] {
        out = out.strip_suffix(suffix).unwrap_or(out);
    }
    out.to_owned()
}

/// `*` matches any run of characters (iterative, no backtracking blow-up).
fn glob(p: &[char], s: &[char]) -> bool {
    let (mut pi, mut si) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while si < s.len() {
        match (p.get(pi), s.get(si)) {
            (Some('*'), _) => {
                star = Some((pi, si));
                pi += 1;
            }
            (Some(a), Some(b)) if a == b => {
                pi += 1;
                si += 1;
            }
            _ => match star {
                Some((sp, ss)) => {
                    pi = sp + 1;
                    si = ss + 1;
                    star = Some((sp, ss + 1));
                }
                None => return false,
            },
        }
    }
    p.get(pi..)
        .is_some_and(|rest| rest.iter().all(|&c| c == '*'))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn globs() {
        let p = FqanPattern::new("/atlas/*").unwrap();
        assert!(p.matches("/atlas/Role=production"));
        assert!(p.matches("/atlas/de/Role=NULL/Capability=NULL"));
        assert!(!p.matches("/atlas"));
        assert!(!p.matches("/atlasx/y"));
        let p = FqanPattern::new("/atlas").unwrap();
        assert!(p.matches("/atlas/Role=NULL/Capability=NULL"));
        assert!(!p.matches("/atlas/Role=pilot"));
        let p = FqanPattern::new("/cms/*/Role=pilot").unwrap();
        assert!(p.matches("/cms/uscms/Role=pilot"));
        assert!(!p.matches("/cms/uscms/Role=production"));
        assert!(FqanPattern::new("atlas").is_err());
        assert!(FqanPattern::new("/atlas/?").is_err());
        assert!(FqanPattern::new("/atlas//x").is_err());
        assert!(FqanPattern::new("/").is_err());
    }

    /// C4: a pattern's `NULL` parts narrow it; they are never dropped.
    #[test]
    fn null_role_in_a_pattern_narrows_it() {
        let p = FqanPattern::new("/atlas/*/Role=NULL").unwrap();
        assert!(!p.matches("/atlas/x/Role=production"));
        assert!(!p.matches("/atlas/x/Role=production/Capability=NULL"));
        assert!(p.matches("/atlas/x/Role=NULL/Capability=NULL"));
        assert!(p.matches("/atlas/x/Role=NULL"));
        assert!(p.matches("/atlas/x"));
        assert!(!p.matches("/atlas"));
        let p = FqanPattern::new("/atlas/Role=NULL/Capability=NULL").unwrap();
        assert!(p.matches("/atlas"));
        assert!(p.matches("/atlas/Role=NULL/Capability=NULL"));
        assert!(!p.matches("/atlas/Role=pilot"));
        assert!(!p.matches("/atlas/Role=NULL/Capability=x"));
        let p = FqanPattern::new("/atlas/*/Capability=NULL").unwrap();
        assert!(p.matches("/atlas/x/Role=pilot/Capability=NULL"));
        assert!(p.matches("/atlas/x/Role=pilot"));
        assert!(!p.matches("/atlas/x/Role=pilot/Capability=x"));
        // `Role=*` needs a role: the null role is none.
        let p = FqanPattern::new("/atlas/Role=*").unwrap();
        assert!(p.matches("/atlas/Role=pilot"));
        assert!(!p.matches("/atlas/Role=NULL/Capability=NULL"));
    }

    /// C4: the VO is literal, and qualifiers are spelt as VOMS spells them.
    #[test]
    fn patterns_start_with_a_vo_and_spell_qualifiers_as_voms() {
        for bad in [
            "/*",
            "/*/Role=pilot",
            "/at*/x",
            "/.atlas",
            "/Role=pilot",
            "/atlas/Role=null",
            "/atlas/*/Role=Null",
            "/atlas/Capability=null",
            "/atlas/role=pilot",
            "/atlas/ROLE=NULL",
            "/atlas/Role=",
        ] {
            assert!(FqanPattern::new(bad).is_err(), "{bad}");
        }
        let e = FqanPattern::new("/*").unwrap_err();
        assert!(e.contains("VO name"), "{e}");
        let e = FqanPattern::new("/atlas/Role=null").unwrap_err();
        assert!(e.contains("Role=NULL"), "{e}");
        // An FQAN's `Role=null` is a role called "null", not the null role.
        let p = FqanPattern::new("/atlas").unwrap();
        assert!(!p.matches("/atlas/Role=null"));
        assert!(
            FqanPattern::new("/atlas/*")
                .unwrap()
                .matches("/atlas/Role=null")
        );
    }
}
