//! The payload's bytes: copied once into a sealed memfd, and that copy is
//! what admission hashes and what runs (`spec/jobseal.md` §8.6). Hashing the
//! original file, even through an open descriptor, is not enough: the inode
//! can be rewritten in place after the hash.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use rustix::fs::{MemfdFlags, SealFlags};

/// Largest executable copied (the manifest limits what can be signed far
/// below this; the verifier then denies a mismatch).
const MAX_EXECUTABLE_BYTES: u64 = 4 << 30;

/// Why the payload cannot be prepared.
#[derive(Debug)]
pub enum PayloadError {
    /// Missing, not a regular file, not executable: gLExec's 126.
    NotExecutable(String),
    /// Could not make the sealed copy: an internal error.
    Internal(String),
}

/// The sealed copy of the executable.
#[derive(Debug)]
pub struct Sealed {
    fd: OwnedFd,
    /// Metadata of the original (owner, mode), for the privileged checks.
    pub original: std::fs::Metadata,
}

impl Sealed {
    /// `/proc/self/fd/N`: the copy, for admission and for exec. The
    /// descriptor is not close-on-exec, so the child inherits it under the
    /// same number and a `#!` interpreter can open this path.
    pub fn path(&self) -> PathBuf {
        PathBuf::from(format!("/proc/self/fd/{}", self.fd.as_raw_fd()))
    }

    /// The sealed copy's descriptor (the client sends it to the service).
    pub fn fd(&self) -> std::os::fd::BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

/// Find `command` as a shell would: a name with a `/` is a path, any other
/// is searched in `path_var`.
pub fn resolve(command: &Path, path_var: &str) -> Option<PathBuf> {
    if command.as_os_str().as_encoded_bytes().contains(&b'/') {
        return Some(command.to_path_buf());
    }
    path_var
        .split(':')
        .filter(|d| !d.is_empty())
        .map(|d| Path::new(d).join(command))
        .find(|p| {
            std::fs::metadata(p)
                .map(|m| m.is_file() && m.mode() & 0o111 != 0)
                .unwrap_or(false)
        })
}

fn memfd() -> Result<OwnedFd, PayloadError> {
    // MFD_EXEC (Linux 6.3+) says so explicitly where `vm.memfd_noexec`
    // exists; older kernels refuse the flag and allow exec by default.
    let name = "jobseal-payload";
    rustix::fs::memfd_create(name, MemfdFlags::ALLOW_SEALING | MemfdFlags::EXEC)
        .or_else(|e| {
            if e == rustix::io::Errno::INVAL {
                rustix::fs::memfd_create(name, MemfdFlags::ALLOW_SEALING)
            } else {
                Err(e)
            }
        })
        .map_err(|e| PayloadError::Internal(format!("memfd_create: {e}")))
}

/// The seals that make a memfd's contents final.
pub const FINAL_SEALS: SealFlags = SealFlags::SHRINK
    .union(SealFlags::GROW)
    .union(SealFlags::WRITE)
    .union(SealFlags::SEAL);

/// Copy the executable at `path` into a sealed memfd.
pub fn seal_copy(path: &Path) -> Result<Sealed, PayloadError> {
    let shown = path.display();
    // O_NONBLOCK: a FIFO must not hang the launcher.
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(rustix::fs::OFlags::NONBLOCK.bits() as i32)
        .open(path)
        .map_err(|e| PayloadError::NotExecutable(format!("{shown}: {e}")))?;
    let original = file
        .metadata()
        .map_err(|e| PayloadError::NotExecutable(format!("{shown}: {e}")))?;
    if !original.file_type().is_file() {
        return Err(PayloadError::NotExecutable(format!(
            "{shown}: not a regular file"
        )));
    }
    // The copy is always executable; the original must say it is meant to be.
    if original.mode() & 0o111 == 0 {
        return Err(PayloadError::NotExecutable(format!(
            "{shown}: not executable"
        )));
    }
    let fd = memfd()?;
    let mut copy = File::from(
        fd.try_clone()
            .map_err(|e| PayloadError::Internal(format!("memfd: {e}")))?,
    );
    let copied = std::io::copy(&mut (&mut file).take(MAX_EXECUTABLE_BYTES + 1), &mut copy)
        .map_err(|e| PayloadError::NotExecutable(format!("{shown}: cannot read: {e}")))?;
    if copied > MAX_EXECUTABLE_BYTES {
        return Err(PayloadError::NotExecutable(format!("{shown}: too large")));
    }
    // Nobody changes the copy from here on, not even this process.
    rustix::fs::fcntl_add_seals(
        fd.as_fd(),
        SealFlags::SHRINK | SealFlags::GROW | SealFlags::WRITE | SealFlags::SEAL,
    )
    .map_err(|e| PayloadError::Internal(format!("sealing the copy: {e}")))?;
    let seals = rustix::fs::fcntl_get_seals(fd.as_fd())
        .map_err(|e| PayloadError::Internal(format!("reading the seals: {e}")))?;
    if !seals.contains(SealFlags::SHRINK | SealFlags::GROW | SealFlags::WRITE | SealFlags::SEAL) {
        return Err(PayloadError::Internal("the copy is not sealed".into()));
    }
    copy.seek(SeekFrom::Start(0))
        .map_err(|e| PayloadError::Internal(format!("memfd: {e}")))?;
    Ok(Sealed { fd, original })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use std::io::Write;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn rewriting_the_original_does_not_change_the_copy() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("run.sh");
        std::fs::write(&p, b"#!/bin/sh\necho original\n").unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        let sealed = seal_copy(&p).unwrap();
        // In place: same inode, as an attacker with write access would.
        let mut f = std::fs::OpenOptions::new().write(true).open(&p).unwrap();
        f.write_all(b"#!/bin/sh\necho tampered\n").unwrap();
        drop(f);
        let out = std::process::Command::new(sealed.path()).output().unwrap();
        assert_eq!(String::from_utf8_lossy(&out.stdout), "original\n");
        // The copy refuses writes.
        let mut w = std::fs::OpenOptions::new()
            .write(true)
            .open(sealed.path())
            .unwrap();
        assert!(w.write_all(b"x").is_err());
    }

    #[test]
    fn refuses_non_executable_and_non_regular() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("data");
        std::fs::write(&p, b"x").unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(matches!(seal_copy(&p), Err(PayloadError::NotExecutable(_))));
        assert!(matches!(
            seal_copy(dir.path()),
            Err(PayloadError::NotExecutable(_))
        ));
        assert!(matches!(
            seal_copy(&dir.path().join("missing")),
            Err(PayloadError::NotExecutable(_))
        ));
    }

    #[test]
    fn resolves_like_a_shell() {
        assert_eq!(resolve(Path::new("./x"), ""), Some(PathBuf::from("./x")));
        assert_eq!(
            resolve(Path::new("sh"), "/nonexistent:/bin"),
            Some(PathBuf::from("/bin/sh"))
        );
        assert_eq!(resolve(Path::new("no-such-cmd-xyz"), "/bin"), None);
    }
}
