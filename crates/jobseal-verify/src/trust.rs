//! Trust anchors from an IGTF-style CA directory, looked up by subject hash.
//!
//! Nothing is loaded up front: each verification reads only the `<hash>.N`
//! files of the issuer it needs, so a directory of a thousand CAs costs the
//! same as one.

use std::path::{Path, PathBuf};

use jobseal_core::pem::parse_blocks;
use jobseal_core::{Error, Reason, name};

use crate::parse::ParsedCert;

/// Most `<hash>.N` candidates examined for one name.
const MAX_CANDIDATES: u32 = 16;

/// An IGTF-style CA directory.
#[derive(Clone, Debug)]
pub struct TrustStore {
    dir: PathBuf,
}

impl TrustStore {
    /// Open a CA directory (it must exist and be a directory).
    pub fn open(dir: &Path) -> Result<Self, Error> {
        match std::fs::metadata(dir) {
            Ok(m) if m.is_dir() => Ok(Self {
                dir: dir.to_path_buf(),
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
                if let Ok(c) = ParsedCert::from_der(der, 0) {
                    if name::same(c.subject(), name_der) {
                        out.push((path.clone(), c));
                    }
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
