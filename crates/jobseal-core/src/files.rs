//! The one way every command opens a file a person names (a bundle, a
//! credential, a job file, an executable, an input): without blocking, so
//! that a FIFO put in its place cannot hang the command, regular files
//! only (never `/dev/zero` or a directory), and bounded where the
//! specification sets a limit. Symbolic links are followed to what they
//! name, which must itself be a regular file.

use std::fs::{File, Metadata};
use std::io::{self, Read};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// Open `path` for reading if it is a regular file. A missing file keeps
/// its `NotFound` error kind; anything else that is not a regular file is
/// an error that says so.
pub fn open_regular(path: &Path) -> io::Result<(File, Metadata)> {
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(path)?;
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Err(io::Error::other(not_regular(&meta)));
    }
    Ok((file, meta))
}

/// What `meta` is, for the message that refuses it.
fn not_regular(meta: &Metadata) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    let t = meta.file_type();
    if t.is_dir() {
        "a directory, not a regular file"
    } else if t.is_fifo() {
        "a FIFO, not a regular file"
    } else if t.is_char_device() || t.is_block_device() {
        "a device, not a regular file"
    } else if t.is_socket() {
        "a socket, not a regular file"
    } else {
        "not a regular file"
    }
}

/// Read the regular file `path` whole, at most `max` bytes (one more is
/// read to tell a larger file, which is an `InvalidData` error).
pub fn read_regular(path: &Path, max: u64) -> io::Result<Vec<u8>> {
    let (file, meta) = open_regular(path)?;
    let mut out = Vec::with_capacity(usize::try_from(meta.len().min(max)).unwrap_or(0));
    file.take(max.saturating_add(1)).read_to_end(&mut out)?;
    if out.len() as u64 > max {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("larger than {max} bytes"),
        ));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn only_regular_files_are_read_and_within_the_bound() {
        let dir = std::env::temp_dir().join(format!("jobseal-files-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("f");
        std::fs::write(&file, b"12345").unwrap();
        assert_eq!(read_regular(&file, 5).unwrap(), b"12345");
        let e = read_regular(&file, 4).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidData);
        let e = read_regular(&dir, 10).unwrap_err();
        assert!(e.to_string().contains("directory"), "{e}");
        let e = read_regular(Path::new("/dev/zero"), 10).unwrap_err();
        assert!(e.to_string().contains("device"), "{e}");
        let e = read_regular(&dir.join("missing"), 10).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::NotFound);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
