//! Step 5: the executable, the arguments and the inputs on disk.

use std::io::Read;
use std::path::Path;

use jobseal_core::manifest::{Manifest, hex};
use jobseal_core::{Error, Reason};

use crate::Invocation;

/// Whether a signed input must be present (`spec/jobseal.md` §6.6 5c, §13).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum InputPolicy {
    /// Every input must be present and unchanged.
    #[default]
    Require,
    /// An input that does not exist is skipped; one that exists must still
    /// be the signed file, and one that cannot be read still denies.
    IfPresent,
}

/// Largest read buffer of [`hash_file`].
const HASH_BUFFER: usize = 256 * 1024;

/// Size and SHA-256 of a file, reading at most `max + 1` bytes: a file that
/// grows while it is read cannot keep the verifier busy.
pub fn hash_file(path: &Path, max: u64) -> std::io::Result<(u64, [u8; 32])> {
    let (f, meta) = crate::fsread::open_regular(path)?;
    // A buffer no larger than the file (plus one byte, to see the end in
    // one read): a 256 KiB zeroed allocation per small file cost more than
    // hashing it. A file that grows while read is still read to `max + 1`.
    let len = meta.len();
    let cap = usize::try_from(len.min(max).saturating_add(1))
        .unwrap_or(HASH_BUFFER)
        .clamp(1, HASH_BUFFER);
    let mut f = f.take(max.saturating_add(1));
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    let mut buf = vec![0u8; cap];
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
pub fn check(manifest: &Manifest, inv: &Invocation, inputs: InputPolicy) -> Result<(), Error> {
    // 5.1 The executable is the signed one.
    let exe = &manifest.executable;
    let (size, digest) = hash_file(&inv.executable, exe.size).map_err(|e| {
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
        // Say where they differ, never what they are: arguments may carry
        // secrets, and this message reaches logs and the audit trail.
        let first = inv
            .arguments
            .iter()
            .zip(&manifest.arguments)
            .position(|(given, signed)| given.to_str() != Some(signed.as_str()))
            .unwrap_or(inv.arguments.len().min(manifest.arguments.len()));
        return Err(Error::new(
            Reason::PayloadArgumentsMismatch,
            format!(
                "the arguments are not the signed ones: {} given, {} signed, first difference at argument {}",
                inv.arguments.len(),
                manifest.arguments.len(),
                first + 1
            ),
        ));
    }
    // 5.3 Every input is present and unchanged.
    for input in &manifest.inputs {
        let path = inv.job_dir.join(&input.name);
        let (size, digest) = match hash_file(&path, input.size) {
            Ok(r) => r,
            // Weaker site setting: only absence is tolerated, never a change.
            Err(e)
                if e.kind() == std::io::ErrorKind::NotFound && inputs == InputPolicy::IfPresent =>
            {
                continue;
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(Error::new(
                    Reason::PayloadInputMissing,
                    format!("input {} is missing", input.name),
                ));
            }
            Err(e) => {
                return Err(Error::new(
                    Reason::PayloadInputMissing,
                    format!("cannot read input {}: {e}", input.name),
                ));
            }
        };
        if size != input.size {
            return Err(Error::new(
                Reason::PayloadInputMismatch,
                format!(
                    "input {} has a size other than the signed {} bytes",
                    input.name, input.size
                ),
            ));
        }
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
