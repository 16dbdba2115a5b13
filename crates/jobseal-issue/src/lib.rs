//! The issuing side of jobseal, run on the user's machine: find and load the
//! user's credential, describe a job, sign its manifest, issue the job-bound
//! proxy over the key derived from the manifest digest, and write the bundle.
//! Also issues plain RFC 3820 proxies for users without Globus tools.
#![forbid(unsafe_code)]

pub mod credential;
pub mod fsutil;
pub mod job;
pub mod keys;
pub mod plain;
pub mod preflight;
pub mod proxy;
mod rng;
pub mod signer;
pub mod throwaway;

use std::path::{Path, PathBuf};

pub use credential::{Credential, Source};
pub use job::{JobSpec, SealParams, Sealed, seal};
pub use signer::SigningKey;

/// Why something could not be issued. Every message says what to do.
#[non_exhaustive]
#[derive(Debug)]
pub enum IssueError {
    /// A file could not be read or written.
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The job description is wrong.
    Job(String),
    /// The private key cannot be read or used.
    Key(String),
    /// The passphrase does not decrypt the key.
    WrongPassphrase(PathBuf),
    /// The credential cannot issue (expired, limited, wrong chain, …).
    Credential(String),
    /// A fault of jobseal itself.
    Internal(String),
}

impl IssueError {
    pub fn io(path: &Path, source: std::io::Error) -> Self {
        Self::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}

impl std::fmt::Display for IssueError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Io { path, source } => write!(f, "{}: {source}", path.display()),
            Self::Job(m) | Self::Key(m) | Self::Credential(m) => f.write_str(m),
            Self::WrongPassphrase(p) => write!(f, "wrong passphrase for {}", p.display()),
            Self::Internal(m) => write!(f, "internal error: {m}"),
        }
    }
}

impl std::error::Error for IssueError {}

impl From<jobseal_core::Error> for IssueError {
    fn from(e: jobseal_core::Error) -> Self {
        Self::Internal(e.to_string())
    }
}

/// The tool string recorded in manifests.
pub const TOOL: &str = concat!("jobseal/", env!("CARGO_PKG_VERSION"));
