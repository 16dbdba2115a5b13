//! vomsdir LSC files (`<vomsdir>/<vo>/<host>.lsc`): descriptions of an AA's
//! certificate chain, each a list of DNs in slash form, the AA first. The
//! rules are the verifier's (`jobseal_verify::voms`), so what the client
//! accepts here a site accepts too: lines trimmed, blank lines and `#`
//! comments skipped, a line starting with `-` (`------ NEXT CHAIN ------`)
//! starts another description, every other line is a DN starting with `/`.

use std::path::Path;

/// Largest LSC file read (the verifier's limit).
const MAX_LSC: u64 = jobseal_verify::voms::MAX_LSC_BYTES;

/// The descriptions of at least two DNs; `Err` says what is wrong with
/// the file (to follow its path in a message).
pub(crate) fn read(path: &Path) -> Result<Vec<Vec<String>>, String> {
    let data = jobseal_core::files::read_regular(path, MAX_LSC)
        .map_err(|e| format!("cannot be read ({e})"))?;
    if data.len() as u64 > MAX_LSC {
        return Err(format!("is larger than {MAX_LSC} bytes"));
    }
    let text = String::from_utf8(data).map_err(|_| "is not text".to_string())?;
    let mut out = vec![Vec::new()];
    for line in text.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if line.starts_with('-') {
            out.push(Vec::new());
        } else if line.starts_with('/') {
            if let Some(d) = out.last_mut() {
                d.push(line.to_string());
            }
        } else {
            return Err(format!("has a line that is not a DN: {line:?}"));
        }
    }
    out.retain(|d| d.len() >= 2);
    if out.is_empty() {
        return Err("holds no description of at least two DNs".into());
    }
    Ok(out)
}
