//! FQAN patterns with a `*` glob (`spec/jobseal.md` §13.2).

use std::fmt;

/// An FQAN pattern: an FQAN (`/vo/group/Role=r`) in which `*` stands for
/// any run of characters, `/` included. `/Role=NULL` and
/// `/Capability=NULL` are dropped from both sides before matching, so the
/// long and short VOMS forms compare equal.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FqanPattern {
    text: String,
    normalized: Vec<char>,
}

impl FqanPattern {
    /// Parse a pattern; the message says what is wrong with it.
    pub fn new(text: &str) -> Result<Self, String> {
        if !text.starts_with('/') {
            return Err(format!("FQAN pattern {text:?} does not start with '/'"));
        }
        if text.len() < 2 {
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
        Ok(Self {
            text: text.to_owned(),
            normalized: normalize_fqan(text).chars().collect(),
        })
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Whether `fqan` matches.
    pub fn matches(&self, fqan: &str) -> bool {
        let f: Vec<char> = normalize_fqan(fqan).chars().collect();
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
/// form.
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
}
