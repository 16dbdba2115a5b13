//! Trust anchors from an IGTF-style CA directory, looked up by subject hash.
//!
//! Nothing is loaded up front: each verification reads only the `<hash>.N`
//! files of the issuer it needs, so a directory of a thousand CAs costs the
//! same as one.
//!
//! Parsed anchors are cached per store, keyed by subject hash and checked on
//! every lookup against a fresh `stat` of each `<hash>.N` file, so a CA
//! directory update is seen at once.

use std::collections::HashMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use jobseal_core::pem::parse_blocks;
use jobseal_core::{Error, Reason, name};

use crate::namespaces::NamespacePolicy;
use crate::parse::ParsedCert;
use crate::revocation::CrlPolicy;

/// Most `<hash>.N` candidates examined for one name.
const MAX_CANDIDATES: u32 = 16;

/// Most subject hashes whose anchors are kept parsed; past it the cache is
/// emptied (simple, and a verifier needs only a handful).
const MAX_CACHED_HASHES: usize = 4096;

/// What identifies one version of a file. ctime is included because it
/// cannot be set back: a file replaced with `cp -p`/`rsync -t` on a reused
/// inode keeps size and mtime but not ctime.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Stamp {
    dev: u64,
    ino: u64,
    size: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
}

impl Stamp {
    fn of(m: &std::fs::Metadata) -> Self {
        Self {
            dev: m.dev(),
            ino: m.ino(),
            size: m.size(),
            mtime: (m.mtime(), m.mtime_nsec()),
            ctime: (m.ctime(), m.ctime_nsec()),
        }
    }
}

/// One `<hash>.N` file, parsed: every certificate in it, whatever its name.
#[derive(Debug)]
struct AnchorFile {
    path: PathBuf,
    stamp: Stamp,
    certs: Vec<ParsedCert>,
}

/// The parsed `<hash>.0`, `.1`, … files of one subject hash, in order.
type HashFiles = Arc<Vec<AnchorFile>>;

/// The anchors looked up for one name: the files of its subject hash.
#[derive(Debug)]
pub struct Anchors {
    files: HashFiles,
    name: Vec<u8>,
    canon: Option<Vec<u8>>,
}

impl Anchors {
    /// The certificates whose subject is the name looked up (`name::same`),
    /// with their file; others of the same hash are skipped.
    pub fn matching(&self) -> impl Iterator<Item = (&Path, &ParsedCert)> + '_ {
        self.files.iter().flat_map(move |f| {
            f.certs
                .iter()
                .filter(move |c| c.subject_is(&self.name, self.canon.as_deref()))
                .map(move |c| (f.path.as_path(), c))
        })
    }
}

/// Parsed anchors by subject hash.
#[derive(Default)]
struct AnchorCache(RwLock<HashMap<u32, HashFiles>>);

impl std::fmt::Debug for AnchorCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let n = self.0.read().map(|m| m.len()).unwrap_or(0);
        write!(f, "AnchorCache({n} hashes)")
    }
}

/// An IGTF-style CA directory.
#[derive(Clone, Debug)]
pub struct TrustStore {
    dir: PathBuf,
    /// What to do about CRLs (`<hash>.rN`).
    pub crl: CrlPolicy,
    /// What to do about `.namespaces` and `.signing_policy` files.
    pub namespaces: NamespacePolicy,
    /// Shared by clones: they read the same directory.
    anchors: Arc<AnchorCache>,
}

/// A file of the CA directory, read: its path and its bytes.
pub(crate) type CaFile = (PathBuf, Vec<u8>);

/// A file of the CA directory that could not be used.
#[derive(Debug)]
pub(crate) enum CaFileError {
    /// Larger than the limit.
    TooLarge,
    /// Exists but cannot be read.
    Unreadable(std::io::Error),
}

impl TrustStore {
    /// Open a CA directory (it must exist and be a directory).
    pub fn open(dir: &Path) -> Result<Self, Error> {
        match std::fs::metadata(dir) {
            Ok(m) if m.is_dir() => Ok(Self {
                dir: dir.to_path_buf(),
                crl: CrlPolicy::default(),
                namespaces: NamespacePolicy::default(),
                anchors: Arc::default(),
            }),
            Ok(_) => Err(Error::new(
                Reason::ConfigInvalid,
                format!("the CA directory {} is not a directory", dir.display()),
            )),
            Err(e) => Err(Error::new(
                Reason::ConfigInvalid,
                format!("the CA directory {} cannot be used: {e}", dir.display()),
            )),
        }
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Read `<hash>.<suffix>` lazily: `Ok(None)` if it does not exist, at
    /// most `max` bytes (one more is read to detect a larger file).
    pub(crate) fn read_file(
        &self,
        hash: u32,
        suffix: &str,
        max: usize,
    ) -> Result<Option<CaFile>, (PathBuf, CaFileError)> {
        use std::io::Read;
        let path = self.dir.join(format!("{hash:08x}.{suffix}"));
        let file = match crate::fsread::open_regular(&path) {
            Ok((f, _)) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err((path, CaFileError::Unreadable(e))),
        };
        let mut data = Vec::new();
        let limit = u64::try_from(max).unwrap_or(u64::MAX).saturating_add(1);
        if let Err(e) = file.take(limit).read_to_end(&mut data) {
            return Err((path, CaFileError::Unreadable(e)));
        }
        if data.len() > max {
            return Err((path, CaFileError::TooLarge));
        }
        Ok(Some((path, data)))
    }

    /// Certificates whose subject matches `name` (an encoded Name).
    pub fn candidates(&self, name_der: &[u8]) -> Vec<(PathBuf, ParsedCert)> {
        self.anchors(name_der)
            .matching()
            .map(|(p, c)| (p.to_path_buf(), c.clone()))
            .collect()
    }

    /// The parsed `<hash>.N` files for `name` (an encoded Name), from the
    /// cache if every file still has the stamp it was parsed at.
    pub fn anchors(&self, name_der: &[u8]) -> Anchors {
        self.lookup(name_der.to_vec(), name::canonical(name_der))
    }

    /// [`Self::anchors`] for the issuer of `c` (its canonical form is kept).
    pub fn issuer_anchors(&self, c: &ParsedCert) -> Anchors {
        self.lookup(
            c.issuer().to_vec(),
            c.issuer_canonical().map(<[u8]>::to_vec),
        )
    }

    fn lookup(&self, name: Vec<u8>, canon: Option<Vec<u8>>) -> Anchors {
        let files = match canon.as_deref().and_then(name::openssl_hash_of_canonical) {
            Some(hash) => self.hash_files(hash),
            None => HashFiles::default(),
        };
        Anchors { files, name, canon }
    }

    fn hash_files(&self, hash: u32) -> HashFiles {
        let path = |i: u32| self.dir.join(format!("{hash:08x}.{i}"));
        // A stat per file on every lookup: cheap, and a replaced, added or
        // removed file is noticed before the cached copy is used.
        let mut stamps = Vec::new();
        for i in 0..MAX_CANDIDATES {
            match std::fs::metadata(path(i)) {
                Ok(m) => stamps.push(Stamp::of(&m)),
                Err(_) => break,
            }
        }
        // A poisoned lock only costs the cache, never a decision.
        if let Ok(map) = self.anchors.0.read()
            && let Some(hit) = map.get(&hash)
            && hit.iter().map(|f| f.stamp).eq(stamps.iter().copied())
        {
            return hit.clone();
        }
        let mut files = Vec::new();
        for i in 0..MAX_CANDIDATES {
            let Some(file) = load_anchor_file(path(i)) else {
                break;
            };
            files.push(file);
        }
        let found = HashFiles::new(files);
        if let Ok(mut map) = self.anchors.0.write() {
            if map.len() >= MAX_CACHED_HASHES && !map.contains_key(&hash) {
                map.clear();
            }
            map.insert(hash, found.clone());
        }
        found
    }
}

/// Read and parse one `<hash>.N` file; `None` ends the series (missing,
/// unreadable, or not a regular file). The stamp is taken from the open
/// file before reading, so a change during the read makes it stale.
fn load_anchor_file(path: PathBuf) -> Option<AnchorFile> {
    use std::io::Read;
    let (mut file, meta) = crate::fsread::open_regular(&path).ok()?;
    let mut data = Vec::new();
    file.read_to_end(&mut data).ok()?;
    let certs = certificates_in(&data)
        .into_iter()
        .filter_map(|der| ParsedCert::from_der(der, 0).ok())
        .collect();
    Some(AnchorFile {
        path,
        stamp: Stamp::of(&meta),
        certs,
    })
}

/// PEM certificates of a file, or the file itself if it is DER.
fn certificates_in(data: &[u8]) -> Vec<Vec<u8>> {
    match parse_blocks(data) {
        Ok(blocks) if !blocks.is_empty() => blocks
            .into_iter()
            .filter(|b| b.label == "CERTIFICATE")
            .map(|b| b.der)
            .collect(),
        _ => vec![data.to_vec()],
    }
}
