//! Trust anchors from an IGTF-style CA directory, looked up by subject hash.
//!
//! Nothing is loaded up front: each verification reads only the `<hash>.N`
//! files of the issuer it needs, so a directory of a thousand CAs costs the
//! same as one.

use std::path::{Path, PathBuf};

use jobseal_core::pem::parse_blocks;
use jobseal_core::{Error, Reason, name};

use crate::namespaces::NamespacePolicy;
use crate::parse::ParsedCert;
use crate::revocation::CrlPolicy;

/// Most `<hash>.N` candidates examined for one name.
const MAX_CANDIDATES: u32 = 16;

/// An IGTF-style CA directory.
#[derive(Clone, Debug)]
pub struct TrustStore {
    dir: PathBuf,
    /// What to do about CRLs (`<hash>.rN`).
    pub crl: CrlPolicy,
    /// What to do about `.namespaces` and `.signing_policy` files.
    pub namespaces: NamespacePolicy,
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
        use std::os::unix::fs::OpenOptionsExt;
        let path = self.dir.join(format!("{hash:08x}.{suffix}"));
        // Non-blocking, regular files only: a FIFO must not hang the verifier.
        let file = match std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
            .open(&path)
        {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err((path, CaFileError::Unreadable(e))),
        };
        match file.metadata() {
            Ok(m) if m.is_file() => {}
            Ok(_) => {
                let e = std::io::Error::other("not a regular file");
                return Err((path, CaFileError::Unreadable(e)));
            }
            Err(e) => return Err((path, CaFileError::Unreadable(e))),
        }
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
        let Some(hash) = name::openssl_hash(name_der) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for i in 0..MAX_CANDIDATES {
            let path = self.dir.join(format!("{hash:08x}.{i}"));
            let Ok(data) = std::fs::read(&path) else {
                break;
            };
            for der in certificates_in(&data) {
                if let Ok(c) = ParsedCert::from_der(der, 0)
                    && name::same(c.subject(), name_der)
                {
                    out.push((path.clone(), c));
                }
            }
        }
        out
    }
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
