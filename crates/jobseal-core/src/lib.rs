//! jobseal formats shared by the issuing side and the verifier.
//!
//! This crate holds no policy and performs no I/O: it defines the object
//! identifiers, the ASN.1 types of the `JobBinding` extension and of RFC 3820
//! `ProxyCertInfo`, the job manifest and its deterministic CBOR encoding, the
//! bundle layout, the derivation of a job-bound proxy's public key, the
//! size limits and the stable reason codes. `spec/` is normative; this crate
//! follows it.
#![forbid(unsafe_code)]

pub mod asn1;
pub mod bound_key;
pub mod bundle;
pub mod cose;
pub mod files;
pub mod limits;
pub mod manifest;
pub mod name;
pub mod oid;
pub mod pem;
pub mod procstatus;
pub mod reason;
pub mod time;
pub mod tlv;
pub mod voms;

pub use reason::{Error, Reason};

/// SHA-256 of `data`.
pub fn sha256(data: &[u8]) -> [u8; 32] {
    let digest = ring::digest::digest(&ring::digest::SHA256, data);
    let mut out = [0u8; 32];
    out.copy_from_slice(digest.as_ref());
    out
}
