//! The public key of a job-bound proxy, derived from the manifest digest.
//!
//! The key is an Ed25519 point found by hashing to the curve
//! (try-and-increment, then clearing the cofactor), so nobody knows its
//! private key: a bundle cannot authenticate anywhere, even to a relying party
//! that ignores unknown critical extensions. The verifier recomputes it.

use crate::reason::{Error, Reason};
use curve25519_dalek::edwards::CompressedEdwardsY;
use curve25519_dalek::traits::IsIdentity;
use der::asn1::BitString;
use spki::{AlgorithmIdentifierOwned, SubjectPublicKeyInfoOwned};

/// Domain-separation tag of the derivation (`spec/jobseal.md` §2.4).
pub const DOMAIN_TAG: &[u8] = b"jobseal-v1 job-bound proxy key ed25519";

/// Most attempts before giving up (each succeeds with probability about 1/2).
const MAX_ATTEMPTS: u8 = 255;

/// Derive the 32-byte Ed25519 public key bound to a manifest digest.
///
/// `candidate_i = SHA-256(DOMAIN_TAG || 0x00 || digest || i)` for i = 0, 1, …;
/// the first candidate that decompresses to a curve point `P` whose `8·P` is
/// not the identity gives the key `compress(8·P)`.
pub fn derive(manifest_sha256: &[u8; 32]) -> Result<[u8; 32], Error> {
    for counter in 0..MAX_ATTEMPTS {
        let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
        ctx.update(DOMAIN_TAG);
        ctx.update(&[0]);
        ctx.update(manifest_sha256);
        ctx.update(&[counter]);
        let candidate: [u8; 32] = ctx
            .finish()
            .as_ref()
            .try_into()
            .map_err(|_| Error::new(Reason::Internal, "SHA-256 output is not 32 bytes"))?;
        if let Some(point) = CompressedEdwardsY(candidate).decompress() {
            let cleared = point.mul_by_cofactor();
            // `8·P` is the identity exactly when `P` has small order
            // (`is_small_order` would multiply by the cofactor again).
            if !cleared.is_identity() {
                return Ok(cleared.compress().to_bytes());
            }
        }
    }
    Err(Error::new(
        Reason::Internal,
        "no curve point found for this digest (probability 2^-255)",
    ))
}

/// SubjectPublicKeyInfo of an Ed25519 public key.
pub fn ed25519_spki(public_key: &[u8; 32]) -> Result<SubjectPublicKeyInfoOwned, der::Error> {
    Ok(SubjectPublicKeyInfoOwned {
        algorithm: AlgorithmIdentifierOwned {
            oid: crate::oid::ED25519,
            parameters: None,
        },
        subject_public_key: BitString::from_bytes(public_key)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derivation_is_deterministic_and_digest_dependent() {
        let a = derive(&[1u8; 32]).unwrap();
        assert_eq!(a, derive(&[1u8; 32]).unwrap());
        assert_ne!(a, derive(&[2u8; 32]).unwrap());
    }

    /// Known answers of `spec/jobseal.md` Appendix A.1, computed there by an
    /// independent implementation.
    #[test]
    fn known_answers_from_the_spec() {
        let hex = |k: [u8; 32]| crate::manifest::hex(&k);
        assert_eq!(
            hex(derive(&[0u8; 32]).unwrap()),
            "8955f3a6cf1556b65eda326623c7f56197e989e8c2af654ab9f188437abd398b"
        );
        assert_eq!(
            hex(derive(&[1u8; 32]).unwrap()),
            "78b36a8aa2539d1680ebefdba03acfbf8125a00118506756f8c920eb661461d1"
        );
        assert_eq!(
            hex(derive(&crate::sha256(b"")).unwrap()),
            "5d369ca466d2d1c081119dda649dad239c0e2463c66770b07cb2199832efd1c3"
        );
    }

    #[test]
    fn derived_key_is_a_prime_order_subgroup_point() {
        for i in 0..64u8 {
            let key = derive(&[i; 32]).unwrap();
            let p = CompressedEdwardsY(key).decompress().unwrap();
            assert!(p.is_torsion_free());
            assert!(!p.is_small_order());
        }
    }
}
