//! `vomses` files: where a VO's VOMS servers are. One line per server,
//! `"alias" "host" "port" "server subject DN" "vo"` (a sixth field, the old
//! Globus version, is ignored). A path is a file or a directory of files.

use std::path::{Path, PathBuf};

use crate::VomsError;

/// One VOMS server of a VO.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Server {
    pub alias: String,
    pub host: String,
    pub port: u16,
    /// The server's certificate subject, in slash form.
    pub dn: String,
    pub vo: String,
    /// The file and line it came from, for messages.
    pub origin: String,
}

impl Server {
    /// `host:port`, for messages.
    pub fn address(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }
}

/// Largest vomses file read.
const MAX_FILE: u64 = 1024 * 1024;
/// Most files read from one directory.
const MAX_FILES: usize = 256;

/// Where vomses files are looked for, as `voms-proxy-init` does:
/// `$VOMS_USERCONF` (which must then exist), `~/.voms/vomses`,
/// `~/.glite/vomses`, `/etc/vomses`. (path, must exist).
pub fn default_paths() -> Vec<(PathBuf, bool)> {
    let mut out = Vec::new();
    if let Some(p) = std::env::var_os("VOMS_USERCONF").filter(|p| !p.is_empty()) {
        out.push((PathBuf::from(p), true));
    }
    if let Some(home) = std::env::var_os("HOME").filter(|h| !h.is_empty()) {
        let home = PathBuf::from(home);
        out.push((home.join(".voms/vomses"), false));
        out.push((home.join(".glite/vomses"), false));
    }
    out.push((PathBuf::from("/etc/vomses"), false));
    out
}

/// The servers of `name` (an alias or a VO name), in the order of the files
/// and their lines; duplicates dropped.
pub fn servers_for(name: &str, paths: &[(PathBuf, bool)]) -> Result<Vec<Server>, VomsError> {
    let mut all = Vec::new();
    for (path, required) in paths {
        match std::fs::metadata(path) {
            Ok(m) if m.is_dir() => read_dir(path, &mut all)?,
            Ok(_) => read_file(path, &mut all)?,
            Err(e) if *required => {
                return Err(VomsError::Config(format!(
                    "the vomses file {} cannot be read ({e}): fix VOMS_USERCONF or --vomses",
                    path.display()
                )));
            }
            Err(_) => {}
        }
    }
    let mut found: Vec<Server> = Vec::new();
    for s in all.into_iter().filter(|s| s.alias == name || s.vo == name) {
        if !found
            .iter()
            .any(|f| f.host == s.host && f.port == s.port && f.vo == s.vo)
        {
            found.push(s);
        }
    }
    if found.is_empty() {
        let searched: Vec<String> = paths.iter().map(|(p, _)| p.display().to_string()).collect();
        return Err(VomsError::NoServer {
            vo: name.to_string(),
            searched: searched.join(", "),
        });
    }
    Ok(found)
}

fn read_dir(dir: &Path, out: &mut Vec<Server>) -> Result<(), VomsError> {
    let entries = std::fs::read_dir(dir).map_err(|e| config(dir, &e.to_string()))?;
    let mut files: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.is_file())
        .take(MAX_FILES + 1)
        .collect();
    if files.len() > MAX_FILES {
        return Err(config(dir, &format!("holds more than {MAX_FILES} files")));
    }
    files.sort();
    files.iter().try_for_each(|f| read_file(f, out))
}

fn config(path: &Path, why: &str) -> VomsError {
    VomsError::Config(format!("vomses {}: {why}", path.display()))
}

fn read_file(path: &Path, out: &mut Vec<Server>) -> Result<(), VomsError> {
    let data = jobseal_core::files::read_regular(path, MAX_FILE)
        .map_err(|e| config(path, &format!("cannot be read ({e})")))?;
    let text = String::from_utf8(data).map_err(|_| config(path, "is not text"))?;
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let origin = format!("{}:{}", path.display(), n + 1);
        out.push(parse_line(line).ok_or_else(|| {
            VomsError::Config(format!(
                "{origin}: not a vomses line (\"alias\" \"host\" \"port\" \"server DN\" \"vo\"): {line}"
            ))
        })
        .map(|mut s| {
            s.origin = origin;
            s
        })?);
    }
    Ok(())
}

/// The quoted fields of a line; `None` if a quote is not closed or text
/// lies outside quotes.
fn fields(line: &str) -> Option<Vec<&str>> {
    let mut out = Vec::new();
    let mut rest = line.trim();
    while !rest.is_empty() {
        let inner = rest.strip_prefix('"')?;
        let end = inner.find('"')?;
        out.push(inner.get(..end)?);
        rest = inner.get(end + 1..)?.trim_start();
    }
    Some(out)
}

fn parse_line(line: &str) -> Option<Server> {
    let f = fields(line)?;
    let [alias, host, port, dn, vo, ..] = f.as_slice() else {
        return None;
    };
    let ok_host = !host.is_empty()
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':'));
    if f.len() > 6 || !ok_host || !dn.starts_with('/') || vo.is_empty() || alias.is_empty() {
        return None;
    }
    Some(Server {
        alias: alias.to_string(),
        host: host.to_string(),
        port: port.parse().ok().filter(|p| *p > 0)?,
        dn: dn.to_string(),
        vo: vo.to_string(),
        origin: String::new(),
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    #[test]
    fn lines() {
        let s = parse_line(
            r#""atlas" "voms2.cern.ch" "15001" "/DC=ch/DC=cern/OU=computers/CN=voms2.cern.ch" "atlas" "24""#,
        )
        .unwrap();
        assert_eq!(
            (s.host.as_str(), s.port, s.vo.as_str()),
            ("voms2.cern.ch", 15001, "atlas")
        );
        for bad in [
            r#""atlas" "h" "15001" "/DC=x" "#,
            r#""atlas" "h" "port" "/DC=x" "atlas""#,
            r#""atlas" "h" "0" "/DC=x" "atlas""#,
            r#""atlas" "h h" "1" "/DC=x" "atlas""#,
            r#""atlas" "h" "1" "DC=x" "atlas""#,
            r#"atlas "h" "1" "/DC=x" "atlas""#,
            r#""atlas" "h" "1" "/DC=x" "atlas"#,
        ] {
            assert!(parse_line(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn files_and_directories_in_order() {
        let d = tempfile::tempdir().unwrap();
        let dir = d.path().join("vomses.d");
        std::fs::create_dir(&dir).unwrap();
        std::fs::write(
            dir.join("b"),
            "\"atlas\" \"b.example\" \"1\" \"/CN=b\" \"atlas\"\n",
        )
        .unwrap();
        std::fs::write(
            dir.join("a"),
            "# comment\n\"atlas\" \"a.example\" \"1\" \"/CN=a\" \"atlas\"\n\"cms\" \"c\" \"2\" \"/CN=c\" \"cms\"\n",
        )
        .unwrap();
        let file = d.path().join("vomses");
        std::fs::write(&file, "\"atl\" \"a.example\" \"1\" \"/CN=a\" \"atlas\"\n").unwrap();
        let paths = vec![(dir, true), (file, false), (d.path().join("none"), false)];
        let s = servers_for("atlas", &paths).unwrap();
        let hosts: Vec<&str> = s.iter().map(|s| s.host.as_str()).collect();
        assert_eq!(hosts, ["a.example", "b.example"]);
        assert_eq!(servers_for("atl", &paths).unwrap().len(), 1);
        assert!(matches!(
            servers_for("lhcb", &paths),
            Err(VomsError::NoServer { .. })
        ));
        let missing = vec![(d.path().join("none"), true)];
        assert!(matches!(
            servers_for("atlas", &missing),
            Err(VomsError::Config(_))
        ));
    }
}
