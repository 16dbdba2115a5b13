//! Opening the files a verification reads (bundle, executable, inputs, CA
//! directory, vomsdir): non-blocking, so that a FIFO put in place of a file
//! cannot hang the verifier, and regular files only.
//!
//! [`FileCache`] keeps the bytes of small trust files (CA policy files, CRLs,
//! LSC files) across checks, served only while a fresh `stat` of the path
//! shows the file it was read from.

use std::any::Any;
use std::collections::HashMap;
use std::fs::Metadata;
use std::io::{self, Read};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock, RwLock};

pub(crate) use jobseal_core::files::open_regular;

/// What identifies one version of a file. ctime is included because it
/// cannot be set back: a file replaced with `cp -p`/`rsync -t` on a reused
/// inode keeps size and mtime but not ctime. (A rewrite of the same inode to
/// the same size within one kernel timestamp tick is not told apart; CA
/// distributions, fetch-crl and VOMS packages replace files by rename.)
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Stamp {
    dev: u64,
    ino: u64,
    size: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
}

impl Stamp {
    pub(crate) fn of(m: &Metadata) -> Self {
        Self {
            dev: m.dev(),
            ino: m.ino(),
            size: m.size(),
            mtime: (m.mtime(), m.mtime_nsec()),
            ctime: (m.ctime(), m.ctime_nsec()),
        }
    }
}

/// Why [`FileCache::read`] gives no bytes.
#[derive(Debug)]
pub(crate) enum ReadError {
    /// It does not exist (the error a read would have reported).
    Missing(io::Error),
    /// Larger than the limit.
    TooLarge,
    /// Exists but cannot be read (or is not a regular file).
    Unreadable(io::Error),
}

/// A file as read: its bytes and the stamp they were read at, and what its
/// reader made of the bytes (kept as long as the bytes are).
pub(crate) struct CachedFile {
    stamp: Stamp,
    data: Vec<u8>,
    parsed: OnceLock<Arc<dyn Any + Send + Sync>>,
}

impl std::fmt::Debug for CachedFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CachedFile")
            .field("stamp", &self.stamp)
            .field("bytes", &self.data.len())
            .finish_non_exhaustive()
    }
}

impl CachedFile {
    pub(crate) fn data(&self) -> &[u8] {
        &self.data
    }

    /// `parse(self.data())`, computed once per version of the file: a
    /// parser must be a function of the bytes alone.
    pub(crate) fn parsed<T: Any + Send + Sync>(&self, parse: impl FnOnce(&[u8]) -> T) -> Arc<T> {
        if let Some(done) = self.parsed.get() {
            return match done.clone().downcast::<T>() {
                Ok(t) => t,
                // Read as something else before (never, paths have one use).
                Err(_) => Arc::new(parse(&self.data)),
            };
        }
        let t = Arc::new(parse(&self.data));
        let _ = self.parsed.set(t.clone());
        t
    }
}

/// Most file bytes kept by one [`FileCache`]; past it the cache is emptied.
/// What readers keep with them (parsed CRLs) takes a few times their size.
const MAX_CACHED_BYTES: usize = 32 * 1024 * 1024;
/// Most files kept by one [`FileCache`]; past it the cache is emptied.
const MAX_CACHED_FILES: usize = 4096;

/// Bytes of files by path, each served only while `stat` still shows the
/// (dev, inode, size, mtime, ctime) it was read at. Per verifier (no global
/// state); a poisoned lock only costs the cache.
#[derive(Default)]
pub(crate) struct FileCache {
    map: RwLock<(HashMap<PathBuf, Arc<CachedFile>>, usize)>,
}

impl std::fmt::Debug for FileCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let n = self.map.read().map(|m| m.0.len()).unwrap_or(0);
        write!(f, "FileCache({n} files)")
    }
}

impl FileCache {
    /// Read `path` as [`open_regular`] and a bounded read would, at most
    /// `max` bytes (one more is read to detect a larger file). One `stat`
    /// when the cached copy is current.
    pub(crate) fn read(&self, path: &Path, max: usize) -> Result<Arc<CachedFile>, ReadError> {
        match std::fs::metadata(path) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(ReadError::Missing(e)),
            Ok(m) if m.is_file() => {
                let stamp = Stamp::of(&m);
                if let Ok(map) = self.map.read()
                    && let Some(hit) = map.0.get(path)
                    && hit.stamp == stamp
                    && hit.data.len() <= max
                {
                    return Ok(hit.clone());
                }
            }
            // Anything else is left to the open below, which reports it as
            // an uncached read would.
            _ => {}
        }
        let (file, meta) = match open_regular(path) {
            Ok(found) => found,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(ReadError::Missing(e)),
            Err(e) => return Err(ReadError::Unreadable(e)),
        };
        // The stamp is taken from the open file before reading: a change
        // during the read makes it stale, never the bytes current.
        let stamp = Stamp::of(&meta);
        let limit = u64::try_from(max).unwrap_or(u64::MAX).saturating_add(1);
        let expect = usize::try_from(meta.len()).unwrap_or(max).min(max);
        let mut data = Vec::with_capacity(expect.saturating_add(1));
        if let Err(e) = file.take(limit).read_to_end(&mut data) {
            return Err(ReadError::Unreadable(e));
        }
        if data.len() > max {
            return Err(ReadError::TooLarge);
        }
        let found = Arc::new(CachedFile {
            stamp,
            data,
            parsed: OnceLock::new(),
        });
        if let Ok(mut map) = self.map.write() {
            let size = found.data.len();
            if map.1.saturating_add(size) > MAX_CACHED_BYTES || map.0.len() >= MAX_CACHED_FILES {
                map.0.clear();
                map.1 = 0;
            }
            if size <= MAX_CACHED_BYTES {
                if let Some(old) = map.0.insert(path.to_path_buf(), found.clone()) {
                    map.1 = map.1.saturating_sub(old.data.len());
                }
                map.1 = map.1.saturating_add(size);
            }
        }
        Ok(found)
    }
}
