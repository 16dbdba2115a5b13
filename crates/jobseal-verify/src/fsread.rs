//! Opening the files a verification reads (bundle, executable, inputs, CA
//! directory, vomsdir): non-blocking, so that a FIFO put in place of a file
//! cannot hang the verifier, and regular files only.

use std::fs::{File, Metadata};
use std::io;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// Open `path` for reading if it is a regular file. A missing file keeps
/// its `NotFound` error kind.
pub(crate) fn open_regular(path: &Path) -> io::Result<(File, Metadata)> {
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(path)?;
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Err(io::Error::other("not a regular file"));
    }
    Ok((file, meta))
}
