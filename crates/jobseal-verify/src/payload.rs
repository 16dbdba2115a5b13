//! Step 5: the executable, the arguments and the inputs on disk.

use std::io::Read;
use std::path::Path;

use jobseal_core::manifest::{Manifest, hex};
use jobseal_core::{Error, Reason};

use crate::Invocation;

/// Size and SHA-256 of a file, streamed.
pub fn hash_file(path: &Path) -> std::io::Result<(u64, [u8; 32])> {
    // A FIFO would block on open and a device never end: only regular
    // files, checked before opening and again on what was opened.
    let not_regular = || std::io::Error::other("not a regular file");
    if !std::fs::metadata(path)?.is_file() {
        return Err(not_regular());
    }
    let mut f = std::fs::File::open(path)?;
    if !f.metadata()?.is_file() {
        return Err(not_regular());
    }
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    let mut buf = vec![0u8; 256 * 1024];
    let mut size = 0u64;
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        size += n as u64;
        ctx.update(buf.get(..n).unwrap_or_default());
    }
    let mut out = [0u8; 32];
    out.copy_from_slice(ctx.finish().as_ref());
    Ok((size, out))
}

/// Step 5.
pub fn check(manifest: &Manifest, inv: &Invocation) -> Result<(), Error> {
    // 5.1 The executable is the signed one.
    let exe = &manifest.executable;
    let (size, digest) = hash_file(&inv.executable).map_err(|e| {
        Error::new(
            Reason::PayloadExecutableUnreadable,
            format!(
                "cannot read the executable {}: {e}",
                inv.executable.display()
            ),
        )
    })?;
    if size != exe.size || digest != exe.sha256 {
        return Err(Error::new(
            Reason::PayloadExecutableMismatch,
            format!(
                "{} (sha256 {}) is not the signed executable {} (sha256 {})",
                inv.executable.display(),
                hex(&digest),
                exe.name,
                hex(&exe.sha256)
            ),
        ));
    }
    // 5.2 The arguments are the signed ones, exactly.
    let same = inv.arguments.len() == manifest.arguments.len()
        && inv
            .arguments
            .iter()
            .zip(&manifest.arguments)
            .all(|(given, signed)| given.to_str() == Some(signed.as_str()));
    if !same {
        return Err(Error::new(
            Reason::PayloadArgumentsMismatch,
            format!(
                "the arguments {:?} are not the signed arguments {:?}",
                inv.arguments, manifest.arguments
            ),
        ));
    }
    // 5.3 Every input is present and unchanged.
    for input in &manifest.inputs {
        let path = inv.job_dir.join(&input.name);
        let meta = std::fs::metadata(&path).map_err(|e| {
            Error::new(
                Reason::PayloadInputMissing,
                format!("input {} is missing: {e}", input.name),
            )
        })?;
        if meta.len() != input.size {
            return Err(Error::new(
                Reason::PayloadInputMismatch,
                format!(
                    "input {} has {} bytes, the signed one {}",
                    input.name,
                    meta.len(),
                    input.size
                ),
            ));
        }
        let (_, digest) = hash_file(&path).map_err(|e| {
            Error::new(
                Reason::PayloadInputMissing,
                format!("cannot read input {}: {e}", input.name),
            )
        })?;
        if digest != input.sha256 {
            return Err(Error::new(
                Reason::PayloadInputMismatch,
                format!(
                    "input {} is not the signed file (SHA-256 differs)",
                    input.name
                ),
            ));
        }
    }
    Ok(())
}
