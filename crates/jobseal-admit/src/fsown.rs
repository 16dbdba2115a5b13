//! Ownership and mode checks for the files admission trusts (the audit log
//! of §6.7.3 and the replay database of §6.7.2): a file someone else owns or
//! may write, or a symbolic link planted in its place, is refused.

use std::fs::{self, File, Metadata, OpenOptions};
use std::io;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::Path;

/// The effective uid, from `/proc/self/status` (`Uid: real effective saved fs`).
/// `None` if it cannot be read: callers fail closed.
pub(crate) fn effective_uid() -> Option<u32> {
    let status = fs::read_to_string("/proc/self/status").ok()?;
    Some(jobseal_core::procstatus::ids(&status, "Uid:")?[1])
}

/// The effective uid, or a message saying why it is unknown.
pub(crate) fn euid() -> Result<u32, String> {
    effective_uid().ok_or_else(|| "cannot read the effective uid from /proc/self/status".into())
}

/// `opts` plus `O_NOFOLLOW | O_CLOEXEC`: a symbolic link at `path` fails to
/// open (`ELOOP`) instead of being followed.
pub(crate) fn open_nofollow(opts: &mut OpenOptions, path: &Path) -> io::Result<File> {
    opts.custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)
}

/// A directory holding trusted files must be owned by root or `euid` and not
/// writable by group or others (else anyone could replace the files in it).
pub(crate) fn check_dir(dir: &Path, euid: u32) -> Result<(), String> {
    let m =
        fs::metadata(dir).map_err(|e| format!("cannot stat directory {}: {e}", dir.display()))?;
    if !m.is_dir() {
        return Err(format!("{} is not a directory", dir.display()));
    }
    if m.uid() != 0 && m.uid() != euid {
        return Err(format!(
            "directory {} is owned by uid {}, not by root or the effective uid {euid}",
            dir.display(),
            m.uid()
        ));
    }
    if m.mode() & 0o022 != 0 {
        return Err(format!(
            "directory {} is writable by group or others (mode {:o})",
            dir.display(),
            m.mode() & 0o7777
        ));
    }
    Ok(())
}

/// A regular file owned by `euid`.
pub(crate) fn check_owned_file(m: &Metadata, path: &Path, euid: u32) -> Result<(), String> {
    if m.file_type().is_symlink() {
        return Err(format!("{} is a symbolic link", path.display()));
    }
    if !m.is_file() {
        return Err(format!("{} is not a regular file", path.display()));
    }
    if m.uid() != euid {
        return Err(format!(
            "{} is owned by uid {}, not by the effective uid {euid}",
            path.display(),
            m.uid()
        ));
    }
    Ok(())
}
