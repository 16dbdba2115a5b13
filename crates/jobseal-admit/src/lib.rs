//! Admission: what a launcher does once, right before execution. The same
//! checks as verification, then site policy, then the replay record, then
//! the audit record, in that order (`spec/jobseal.md` §6.7).
//!
//! [`AdmissionHost`] is how every face hosts it (the CLI, the C API, the
//! Python module, the launcher): directories, lazy opening, the fork guard.
//! The side-effect-free part, [`admit::Checker`] (steps 1–6), lives in
//! `jobseal-policy`, so that a check-only caller links neither SQLite nor
//! rustls; it is re-exported from [`admit`].
#![forbid(unsafe_code)]

pub mod admit;
pub mod audit;
mod fsown;
mod host;
pub mod replay;

pub use host::{
    AdmissionHost, HostPaths, StateDirs, absolute, default_dirs, environment_untrusted,
    this_environment_untrusted,
};
