//! Trust anchors from an IGTF-style CA directory, looked up by subject hash.
//!
//! Nothing is loaded up front: each verification reads only the `<hash>.N`
//! files of the issuer it needs, so a directory of a thousand CAs costs the
//! same as one.
//!
//! Parsed anchors are cached per store, keyed by subject hash and checked on
//! every lookup against a fresh `stat` of each `<hash>.N` file, so a CA
//! directory update is seen at once. The other files of a hash (policy
//! files, CRLs) are kept the same way, by path ([`FileCache`]).
//!
//! One check looks the same hash up several times (the chain's anchor, the
//! namespace and CRL files of each certificate the CA issued, the AA's
//! path): a store made by [`TrustStore::for_check`] answers each of those
//! once per check, from one `stat` pass, so a check sees one state of the
//! directory and the next check sees any change.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};

use jobseal_core::pem::parse_blocks;
use jobseal_core::{Error, Reason, name};

use crate::fsread::{CachedFile, FileCache, Stamp};
use crate::namespaces::NamespacePolicy;
use crate::parse::{CertCache, ParsedCert};
use crate::revocation::CrlPolicy;
use crate::voms::AcCache;

/// Most `<hash>.N` candidates examined for one name.
const MAX_CANDIDATES: u32 = 16;

/// Most subject hashes whose anchors are kept parsed; past it the cache is
/// emptied (simple, and a verifier needs only a handful).
const MAX_CACHED_HASHES: usize = 4096;

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

/// What the clones of one store share: they read the same directory.
#[derive(Debug, Default)]
struct Shared {
    anchors: AnchorCache,
    /// Policy files and CRLs of the CA directory, LSC files of the vomsdir.
    files: FileCache,
    /// Certificates that recur across checks (bundle and VOMS AC).
    certs: CertCache,
    /// VOMS ACs that recur across checks (those of a VOMS proxy).
    acs: AcCache,
}

/// What one check has looked up already (see [`TrustStore::for_check`]).
#[derive(Debug, Default)]
struct CheckMemo {
    anchors: Vec<(u32, HashFiles)>,
    files: Vec<(u32, String, Option<CaFile>)>,
}

/// An IGTF-style CA directory.
#[derive(Clone, Debug)]
pub struct TrustStore {
    dir: PathBuf,
    /// What to do about CRLs (`<hash>.rN`).
    pub crl: CrlPolicy,
    /// What to do about `.namespaces` and `.signing_policy` files.
    pub namespaces: NamespacePolicy,
    shared: Arc<Shared>,
    /// Set on the store of one check only.
    check: Option<Arc<Mutex<CheckMemo>>>,
}

/// A file of the CA directory, read: its path and its bytes.
pub(crate) type CaFile = (PathBuf, Arc<CachedFile>);

/// A file of the CA directory that could not be used.
pub(crate) use crate::fsread::ReadError as CaFileError;

impl TrustStore {
    /// Open a CA directory (it must exist and be a directory).
    pub fn open(dir: &Path) -> Result<Self, Error> {
        match std::fs::metadata(dir) {
            Ok(m) if m.is_dir() => Ok(Self {
                dir: dir.to_path_buf(),
                crl: CrlPolicy::default(),
                namespaces: NamespacePolicy::default(),
                shared: Arc::default(),
                check: None,
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

    /// This store for one check: the same directory and caches, and each
    /// hash's files looked up once for the whole check (a check sees one
    /// state of the directory; the next check looks again).
    pub(crate) fn for_check(&self) -> Self {
        Self {
            check: Some(Arc::default()),
            ..self.clone()
        }
    }

    /// Parsed certificates that recur across checks.
    pub(crate) fn cert_cache(&self) -> &CertCache {
        &self.shared.certs
    }

    /// VOMS ACs read before.
    pub(crate) fn ac_cache(&self) -> &AcCache {
        &self.shared.acs
    }

    /// Small trust files kept across checks while unchanged.
    pub(crate) fn file_cache(&self) -> &FileCache {
        &self.shared.files
    }

    /// Read `<hash>.<suffix>` lazily: `Ok(None)` if it does not exist, at
    /// most `max` bytes (one more is read to detect a larger file). Kept
    /// while a `stat` shows the same file; once per check.
    pub(crate) fn read_file(
        &self,
        hash: u32,
        suffix: &str,
        max: usize,
    ) -> Result<Option<CaFile>, (PathBuf, CaFileError)> {
        if let Some(memo) = &self.check
            && let Ok(m) = memo.lock()
            && let Some((_, _, found)) = m.files.iter().find(|(h, s, _)| *h == hash && s == suffix)
        {
            return Ok(found.clone());
        }
        let path = hash_path(&self.dir, hash, suffix);
        let found = match self.shared.files.read(&path, max) {
            Ok(file) => Some((path, file)),
            Err(CaFileError::Missing(_)) => None,
            Err(e) => return Err((path, e)),
        };
        if let Some(memo) = &self.check
            && let Ok(mut m) = memo.lock()
        {
            m.files.push((hash, suffix.to_string(), found.clone()));
        }
        Ok(found)
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
        let canon = name::canonical(name_der);
        let hash = canon.as_deref().and_then(name::openssl_hash_of_canonical);
        self.lookup(name_der.to_vec(), canon, hash)
    }

    /// [`Self::anchors`] for the issuer of `c` (its canonical form and
    /// subject hash are kept with the certificate).
    pub fn issuer_anchors(&self, c: &ParsedCert) -> Anchors {
        self.lookup(
            c.issuer().to_vec(),
            c.issuer_canonical().map(<[u8]>::to_vec),
            c.issuer_hash(),
        )
    }

    fn lookup(&self, name: Vec<u8>, canon: Option<Vec<u8>>, hash: Option<u32>) -> Anchors {
        let files = match hash {
            Some(hash) => self.hash_files(hash),
            None => HashFiles::default(),
        };
        Anchors { files, name, canon }
    }

    /// The `<hash>.N` files, once per check.
    fn hash_files(&self, hash: u32) -> HashFiles {
        if let Some(memo) = &self.check
            && let Ok(m) = memo.lock()
            && let Some((_, files)) = m.anchors.iter().find(|(h, _)| *h == hash)
        {
            return files.clone();
        }
        let files = self.stat_hash_files(hash);
        if let Some(memo) = &self.check
            && let Ok(mut m) = memo.lock()
        {
            m.anchors.push((hash, files.clone()));
        }
        files
    }

    fn stat_hash_files(&self, hash: u32) -> HashFiles {
        const DIGITS: [&str; MAX_CANDIDATES as usize] = [
            "0", "1", "2", "3", "4", "5", "6", "7", "8", "9", "10", "11", "12", "13", "14", "15",
        ];
        let path = |i: u32| {
            hash_path(
                &self.dir,
                hash,
                DIGITS.get(i as usize).copied().unwrap_or("x"),
            )
        };
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
        if let Ok(map) = self.shared.anchors.0.read()
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
        if let Ok(mut map) = self.shared.anchors.0.write() {
            if map.len() >= MAX_CACHED_HASHES && !map.contains_key(&hash) {
                map.clear();
            }
            map.insert(hash, found.clone());
        }
        found
    }
}

/// `dir.join("<hash>.<suffix>")` in one allocation (a check makes several).
fn hash_path(dir: &Path, hash: u32, suffix: &str) -> PathBuf {
    let dir = dir.as_os_str();
    let mut path = std::ffi::OsString::with_capacity(dir.len() + 10 + suffix.len());
    path.push(dir);
    if !dir.is_empty() && !dir.as_encoded_bytes().ends_with(b"/") {
        path.push("/");
    }
    let mut hex = [0u8; 8];
    for (i, digit) in hex.iter_mut().enumerate() {
        let nibble = (hash >> (28 - 4 * i)) & 0xf;
        *digit = b"0123456789abcdef"
            .get(nibble as usize)
            .copied()
            .unwrap_or(b'0');
    }
    path.push(std::str::from_utf8(&hex).unwrap_or("00000000"));
    path.push(".");
    path.push(suffix);
    PathBuf::from(path)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_path_is_the_joined_name() {
        for dir in ["", "/", "ca", "ca/", "/etc/grid-security/certificates"] {
            for (hash, suffix) in [
                (0u32, "0"),
                (0x0a1b_2c3d, "signing_policy"),
                (u32::MAX, "r15"),
            ] {
                assert_eq!(
                    hash_path(Path::new(dir), hash, suffix),
                    Path::new(dir).join(format!("{hash:08x}.{suffix}")),
                    "{dir:?}"
                );
            }
        }
    }
}
