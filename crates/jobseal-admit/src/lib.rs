//! Admission: what a launcher does once, right before execution. The same
//! checks as verification, then site policy, then the replay record, then
//! the audit record, in that order (`spec/jobseal.md` §6.7).
#![forbid(unsafe_code)]

pub mod admit;
pub mod audit;
mod fsown;
pub mod replay;
