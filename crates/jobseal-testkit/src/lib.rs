//! Deterministic test PKI and the known-answer vectors of `test-vectors/`.
//!
//! Every vector names the one check it exercises: a negative vector is a
//! valid bundle with exactly one thing wrong, so it fails for exactly the
//! reason it claims. Keys are Ed25519 from fixed seeds and all times are
//! fixed, so generating twice gives the same bytes (CI diffs them).
#![forbid(unsafe_code)]

pub mod ac;
pub mod crl;
pub mod peers;
mod vectors;

pub use vectors::{
    Expected, ExpectedVoms, Fixture, PolicyVector, VECTOR_TIME, Vector, generate, write_dir,
};
