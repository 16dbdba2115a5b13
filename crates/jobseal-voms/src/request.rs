//! What the user asks for, `VO[:FQAN]` as `voms-proxy-init -voms` takes it,
//! and the legacy protocol's request document.

use crate::VomsError;

/// One `--voms` argument: a vomses alias (usually the VO's name) and, if
/// given, the group or role wanted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    /// The alias or VO name looked up in the vomses files.
    pub name: String,
    /// `/vo/group…[/Role=role]` or `/Role=role`; `None` for the VO's
    /// default attributes.
    pub fqan: Option<String>,
}

/// Characters of a VO name or vomses alias.
fn name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')
}

/// Characters of a group or role name. Nothing that XML would read as
/// markup can get into the request.
fn segment_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')
}

fn bad(spec: &str, why: &str) -> VomsError {
    VomsError::Request(format!(
        "--voms {spec:?}: {why}; write VO, VO:/VO/group, VO:/VO/group/Role=role or VO:/VO/Role=role"
    ))
}

/// Longest `--voms` argument accepted.
const MAX_SPEC: usize = 1024;

impl Request {
    /// Read `VO`, `VO:/VO/group`, `VO:/VO/group/Role=role`, `VO:/VO/Role=role`
    /// (or `VO:/Role=role`, every group's role, as the C client allows).
    pub fn parse(spec: &str) -> Result<Self, VomsError> {
        if spec.len() > MAX_SPEC {
            return Err(bad(spec, "too long"));
        }
        let (name, fqan) = match spec.split_once(':') {
            Some((n, f)) => (n, Some(f)),
            None => (spec, None),
        };
        if name.is_empty() || !name.chars().all(name_char) {
            return Err(bad(
                spec,
                "the VO name may hold only letters, digits, '.', '_' and '-'",
            ));
        }
        let fqan = match fqan {
            None => None,
            Some(f) => Some(check_fqan(spec, f)?),
        };
        Ok(Self {
            name: name.to_string(),
            fqan,
        })
    }

    /// The legacy protocol's command for VO `vo` (the C client's
    /// `parse_fqan`): `G/vo/group`, `B/vo/group:role`, `Rrole`.
    pub fn command(&self, vo: &str) -> Result<String, VomsError> {
        let fqan = self.fqan.clone().unwrap_or_else(|| format!("/{vo}"));
        if let Some(role) = fqan.strip_prefix("/Role=") {
            return Ok(format!("R{role}"));
        }
        let first = fqan.trim_start_matches('/').split('/').next().unwrap_or("");
        if first != vo {
            return Err(VomsError::Request(format!(
                "--voms {}:{fqan}: the group {fqan} is not in VO {vo} (an FQAN of VO {vo} starts with /{vo})",
                self.name
            )));
        }
        Ok(match fqan.split_once("/Role=") {
            Some((group, role)) => format!("B{group}:{role}"),
            None => format!("G{fqan}"),
        })
    }

    /// Whether the FQANs of an AC include what was asked.
    pub fn granted_by(&self, vo: &str, fqans: &[String]) -> bool {
        let wanted = self.fqan.clone().unwrap_or_else(|| format!("/{vo}"));
        let mut have = fqans.iter().map(|f| short_form(f));
        match wanted.strip_prefix("/Role=") {
            Some(role) => have.any(|f| f.ends_with(&format!("/Role={role}"))),
            None => have.any(|f| f == wanted),
        }
    }

    /// What was asked, for messages: `/vo/…` or the VO's default.
    pub fn describe(&self) -> String {
        match &self.fqan {
            Some(f) => format!("{}:{f}", self.name),
            None => self.name.clone(),
        }
    }
}

/// An FQAN without `/Role=NULL` and `/Capability=NULL`.
pub(crate) fn short_form(fqan: &str) -> String {
    fqan.replace("/Capability=NULL", "")
        .replace("/Role=NULL", "")
}

fn check_fqan(spec: &str, f: &str) -> Result<String, VomsError> {
    if !f.starts_with('/') {
        return Err(bad(spec, "the part after ':' must start with '/'"));
    }
    if f.contains("/Capability=") {
        return Err(bad(
            spec,
            "capability selection is not supported (nor by voms-proxy-init)",
        ));
    }
    let segments: Vec<&str> = f.split('/').skip(1).collect();
    let last = segments.len().saturating_sub(1);
    for (i, seg) in segments.iter().enumerate() {
        let name = match seg.strip_prefix("Role=") {
            Some(role) if i == last => role,
            Some(_) => return Err(bad(spec, "Role= must come last")),
            None => seg,
        };
        if name.is_empty() || !name.chars().all(segment_char) {
            return Err(bad(
                spec,
                "groups and roles may hold only letters, digits, '.', '_' and '-'",
            ));
        }
    }
    Ok(f.to_string())
}

/// The request document of the legacy protocol (VOMS's `XML_Req_Encode`):
/// one command, base64 answers, protocol version 4, the AC lifetime asked
/// in seconds. `command` holds only checked characters.
pub(crate) fn document(command: &str, lifetime: u64) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"US-ASCII\"?><voms><command>{command}</command>\
         <base64>1</base64><version>4</version><lifetime>{lifetime}</lifetime></voms>"
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn cmd(spec: &str) -> String {
        Request::parse(spec).unwrap().command("atlas").unwrap()
    }

    #[test]
    fn every_form_voms_proxy_init_accepts() {
        assert_eq!(cmd("atlas"), "G/atlas");
        assert_eq!(cmd("atlas:/atlas"), "G/atlas");
        assert_eq!(cmd("atlas:/atlas/higgs"), "G/atlas/higgs");
        assert_eq!(
            cmd("atlas:/atlas/higgs/Role=production"),
            "B/atlas/higgs:production"
        );
        assert_eq!(cmd("atlas:/atlas/Role=production"), "B/atlas:production");
        assert_eq!(cmd("atlas:/Role=production"), "Rproduction");
    }

    #[test]
    fn refusals() {
        for spec in [
            "",
            "at las",
            "atlas:",
            "atlas:atlas",
            "atlas:/atlas/Role=a/b",
            "atlas:/atlas//x",
            "atlas:/atlas/<x>",
            "atlas:/atlas/Capability=x",
            "atlas:/atlas/Role=",
        ] {
            assert!(Request::parse(spec).is_err(), "{spec:?} accepted");
        }
        let other = Request::parse("atlas:/cms/x").unwrap();
        assert!(other.command("atlas").is_err());
    }

    #[test]
    fn granted() {
        let f = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let ac = f(&[
            "/atlas/higgs/Role=production/Capability=NULL",
            "/atlas/Role=NULL/Capability=NULL",
        ]);
        let r = |s: &str| Request::parse(s).unwrap();
        assert!(r("atlas").granted_by("atlas", &ac));
        assert!(r("atlas:/atlas/higgs/Role=production").granted_by("atlas", &ac));
        assert!(r("atlas:/Role=production").granted_by("atlas", &ac));
        assert!(!r("atlas:/atlas/Role=production").granted_by("atlas", &ac));
        assert!(!r("atlas:/atlas/higgs").granted_by("atlas", &ac));
    }
}
