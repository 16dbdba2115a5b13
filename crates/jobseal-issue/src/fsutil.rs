//! Writing output files atomically: a temporary file in the target's
//! directory, written, synced and renamed into place. A failure leaves no
//! partial file; private keys are created 0600 from the start.

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use crate::IssueError;

/// Write `data` to `path` atomically with permission `mode`.
pub fn write_atomic(path: &Path, data: &[u8], mode: u32) -> Result<(), IssueError> {
    write_atomic_deferred(path, data, mode)?;
    sync_dir_of(path);
    Ok(())
}

/// The directory `path` is in.
fn dir_of(path: &Path) -> &Path {
    match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    }
}

/// Make the renames into `path`'s directory durable, where the filesystem
/// allows (as [`write_atomic`] does after each file).
pub fn sync_dir_of(path: &Path) {
    if let Ok(d) = std::fs::File::open(dir_of(path)) {
        let _ = d.sync_all();
    }
}

/// [`write_atomic`] without its last step, the directory sync: for a
/// caller that writes many files into one directory and syncs it once,
/// with [`sync_dir_of`], before it reports any of them written. The file
/// itself is synced before it is renamed into place.
pub fn write_atomic_deferred(path: &Path, data: &[u8], mode: u32) -> Result<(), IssueError> {
    let dir = dir_of(path);
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
    Ok(())
}
