//! `GLEXEC_SOURCE_PROXY` → `GLEXEC_TARGET_PROXY`, as gLExec does. The
//! launcher reads the source with the caller's rights (it must be the
//! caller's own file) and writes the copy with the target's, never as root
//! into a directory someone else controls (`creds::as_caller`): mode 0600,
//! never through a symbolic link.

use std::io::{Read, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::Path;

use rustix::fs::OFlags;

/// Largest proxy file copied.
const MAX_PROXY_BYTES: u64 = 1 << 20;

/// Client errors (201) and internal ones (202).
#[derive(Debug)]
pub enum ProxyError {
    Client(String),
    Internal(String),
}

/// Read the source proxy: a regular file owned by `caller_uid`, reached
/// without following a final symbolic link, readable by nobody else.
pub fn read_source(path: &Path, caller_uid: u32) -> Result<Vec<u8>, ProxyError> {
    let shown = path.display();
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags((OFlags::NOFOLLOW | OFlags::NONBLOCK).bits() as i32)
        .open(path)
        .map_err(|e| ProxyError::Client(format!("GLEXEC_SOURCE_PROXY {shown}: {e}")))?;
    let meta = file
        .metadata()
        .map_err(|e| ProxyError::Client(format!("GLEXEC_SOURCE_PROXY {shown}: {e}")))?;
    if !meta.file_type().is_file() {
        return Err(ProxyError::Client(format!(
            "GLEXEC_SOURCE_PROXY {shown}: not a regular file"
        )));
    }
    if meta.uid() != caller_uid {
        return Err(ProxyError::Client(format!(
            "GLEXEC_SOURCE_PROXY {shown}: not owned by the caller"
        )));
    }
    if meta.mode() & 0o077 != 0 {
        return Err(ProxyError::Client(format!(
            "GLEXEC_SOURCE_PROXY {shown}: readable or writable by others (must be 0600)"
        )));
    }
    let mut bytes = Vec::new();
    file.take(MAX_PROXY_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| ProxyError::Client(format!("GLEXEC_SOURCE_PROXY {shown}: {e}")))?;
    if bytes.len() as u64 > MAX_PROXY_BYTES {
        return Err(ProxyError::Client(format!(
            "GLEXEC_SOURCE_PROXY {shown}: too large"
        )));
    }
    Ok(bytes)
}

/// Write `bytes` to `target` with the current thread's credentials: a new
/// file next to it (O_CREAT|O_EXCL|O_NOFOLLOW, 0600), then renamed over the
/// target (a rename replaces a symbolic link, it never follows it).
pub fn write_here(target: &Path, bytes: &[u8]) -> Result<(), String> {
    let shown = target.display();
    let name = target
        .file_name()
        .ok_or_else(|| format!("GLEXEC_TARGET_PROXY {shown}: no file name"))?;
    let mut tmp_name = std::ffi::OsString::from(".");
    tmp_name.push(name);
    tmp_name.push(format!(".jobseal-{}", std::process::id()));
    let tmp = target.with_file_name(tmp_name);
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(OFlags::NOFOLLOW.bits() as i32)
        .open(&tmp)
        .map_err(|e| format!("GLEXEC_TARGET_PROXY {shown}: {e}"))?;
    let written = file
        .write_all(bytes)
        .and_then(|()| file.sync_all())
        .and_then(|()| std::fs::rename(&tmp, target));
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(format!("GLEXEC_TARGET_PROXY {shown}: {e}"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn copies_with_0600_and_replaces_a_symlink_without_following_it() {
        let dir = tempfile::tempdir().unwrap();
        let me = rustix::process::getuid().as_raw();
        let src = dir.path().join("src");
        std::fs::write(&src, b"PROXY").unwrap();
        std::fs::set_permissions(&src, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(matches!(read_source(&src, me), Err(ProxyError::Client(_))));
        std::fs::set_permissions(&src, std::fs::Permissions::from_mode(0o600)).unwrap();
        let bytes = read_source(&src, me).unwrap();
        let victim = dir.path().join("victim");
        std::fs::write(&victim, b"keep").unwrap();
        let target = dir.path().join("target");
        std::os::unix::fs::symlink(&victim, &target).unwrap();
        write_here(&target, &bytes).unwrap();
        assert_eq!(std::fs::read(&victim).unwrap(), b"keep");
        let meta = std::fs::symlink_metadata(&target).unwrap();
        assert!(meta.file_type().is_file());
        assert_eq!(meta.mode() & 0o777, 0o600);
        assert_eq!(std::fs::read(&target).unwrap(), b"PROXY");
        // A symlinked source is refused.
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&src, &link).unwrap();
        assert!(read_source(&link, me).is_err());
    }
}
