//! Writing output files atomically: a temporary file in the target's
//! directory, written, synced and renamed into place. A failure leaves no
//! partial file; private keys are created 0600 from the start.

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use crate::IssueError;

/// Write `data` to `path` atomically with permission `mode`.
pub fn write_atomic(path: &Path, data: &[u8], mode: u32) -> Result<(), IssueError> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    // tempfile creates the file 0600; widen only if asked.
    let mut tmp = tempfile::Builder::new()
        .prefix(".jobseal-")
        .tempfile_in(dir)
        .map_err(|e| IssueError::io(dir, e))?;
    tmp.write_all(data).map_err(|e| IssueError::io(path, e))?;
    tmp.as_file()
        .set_permissions(std::fs::Permissions::from_mode(mode))
        .map_err(|e| IssueError::io(path, e))?;
    tmp.as_file()
        .sync_all()
        .map_err(|e| IssueError::io(path, e))?;
    tmp.persist(path)
        .map_err(|e| IssueError::io(path, e.error))?;
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all(); // make the rename durable where the FS allows
    }
    Ok(())
}
