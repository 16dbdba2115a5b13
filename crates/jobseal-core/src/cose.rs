//! The COSE_Sign1 profile of a signed manifest (`spec/jobseal.md` §3.2).
//!
//! The envelope is a tagged COSE_Sign1 (RFC 9052 §4.2) with an attached
//! payload, an empty unprotected header and a protected header that is
//! exactly `{1: alg, 3: CONTENT_TYPE}` in deterministic encoding. The payload
//! bytes are hashed and verified as they are; nothing is re-encoded.

use coset::{CborSerializable, CoseSign1, TaggedCborSerializable, iana};

use crate::reason::{Error, Reason};

/// Content type of the payload, carried in the protected header.
pub const CONTENT_TYPE: &str = "application/jobseal-manifest+cbor";

/// The signature algorithms a manifest may use.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SignatureAlgorithm {
    /// EdDSA with Ed25519 (COSE -8).
    EdDsa,
    /// ECDSA P-256 with SHA-256 (COSE -7).
    Es256,
    /// ECDSA P-384 with SHA-384 (COSE -35).
    Es384,
    /// RSASSA-PSS with SHA-256, MGF1-SHA-256, salt 32 (COSE -37).
    Ps256,
}

impl SignatureAlgorithm {
    fn iana(self) -> iana::Algorithm {
        match self {
            Self::EdDsa => iana::Algorithm::EdDSA,
            Self::Es256 => iana::Algorithm::ES256,
            Self::Es384 => iana::Algorithm::ES384,
            Self::Ps256 => iana::Algorithm::PS256,
        }
    }

    /// The COSE name, e.g. `PS256`.
    pub fn name(self) -> &'static str {
        match self {
            Self::EdDsa => "EdDSA",
            Self::Es256 => "ES256",
            Self::Es384 => "ES384",
            Self::Ps256 => "PS256",
        }
    }

    const ALL: [Self; 4] = [Self::EdDsa, Self::Es256, Self::Es384, Self::Ps256];

    /// The only accepted encoding of the protected header for this algorithm.
    pub fn protected_header(self) -> Vec<u8> {
        let mut out = vec![0xa2, 0x01];
        let alg = self.iana() as i64;
        // COSE algorithm ids used here are small negative integers.
        let n = u8::try_from(-1 - alg).unwrap_or(0);
        if n < 24 {
            out.push(0x20 | n);
        } else {
            out.extend_from_slice(&[0x38, n]);
        }
        out.push(0x03);
        let ct = CONTENT_TYPE.as_bytes();
        out.push(0x78);
        out.push(u8::try_from(ct.len()).unwrap_or(0));
        out.extend_from_slice(ct);
        out
    }
}

/// A parsed envelope whose profile has been checked (not its signature).
#[derive(Clone, Debug)]
pub struct Envelope {
    pub algorithm: SignatureAlgorithm,
    /// The manifest bytes exactly as signed.
    pub payload: Vec<u8>,
    /// The Sig_structure bytes the signature covers.
    pub to_be_signed: Vec<u8>,
    pub signature: Vec<u8>,
}

fn bad(msg: impl Into<String>) -> Error {
    Error::new(Reason::ManifestBadEnvelope, msg)
}

/// Parse a tagged COSE_Sign1 and check it against the profile.
pub fn parse(bytes: &[u8]) -> Result<Envelope, Error> {
    let sign1 = CoseSign1::from_tagged_slice(bytes)
        .map_err(|e| bad(format!("the manifest is not a tagged COSE_Sign1 ({e})")))?;
    if !sign1.unprotected.is_empty() {
        return Err(bad("the COSE unprotected header must be empty"));
    }
    let protected = sign1
        .protected
        .original_data
        .as_deref()
        .ok_or_else(|| bad("the COSE protected header is missing"))?;
    let algorithm = SignatureAlgorithm::ALL
        .into_iter()
        .find(|a| a.protected_header() == protected)
        .ok_or_else(|| {
            bad("the COSE protected header is not {alg, content type} with an algorithm of the profile")
        })?;
    let Some(payload) = sign1.payload.clone() else {
        return Err(bad("the COSE payload is detached; it must be attached"));
    };
    let to_be_signed = sign1.tbs_data(b"");
    Ok(Envelope {
        algorithm,
        payload,
        to_be_signed,
        signature: sign1.signature,
    })
}

/// Build a tagged COSE_Sign1 over `payload`, signing with `sign`, which
/// receives the Sig_structure bytes.
pub fn build<E>(
    algorithm: SignatureAlgorithm,
    payload: Vec<u8>,
    sign: impl FnOnce(&[u8]) -> Result<Vec<u8>, E>,
) -> Result<Vec<u8>, E>
where
    E: From<Error>,
{
    let protected = coset::ProtectedHeader {
        original_data: Some(algorithm.protected_header()),
        header: coset::HeaderBuilder::new()
            .algorithm(algorithm.iana())
            .content_type(CONTENT_TYPE.to_string())
            .build(),
    };
    let mut sign1 = CoseSign1 {
        protected,
        unprotected: coset::Header::default(),
        payload: Some(payload),
        signature: Vec::new(),
    };
    sign1.signature = sign(&sign1.tbs_data(b""))?;
    let out = sign1
        .to_tagged_vec()
        .map_err(|e| Error::new(Reason::Internal, format!("COSE encoding failed: {e}")))?;
    // The envelope must read back as it was meant.
    parse(&out)?;
    Ok(out)
}

/// Decode the untagged form too, for diagnostics only.
pub fn is_untagged_sign1(bytes: &[u8]) -> bool {
    CoseSign1::from_slice(bytes).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn protected_header_matches_coset_encoding() {
        for alg in SignatureAlgorithm::ALL {
            let h = coset::HeaderBuilder::new()
                .algorithm(alg.iana())
                .content_type(CONTENT_TYPE.to_string())
                .build();
            assert_eq!(
                h.to_vec().unwrap(),
                alg.protected_header(),
                "{}",
                alg.name()
            );
        }
    }

    #[test]
    fn build_then_parse() {
        let out = build::<Error>(SignatureAlgorithm::EdDsa, vec![1, 2, 3], |tbs| {
            assert!(!tbs.is_empty());
            Ok(vec![9; 64])
        })
        .unwrap();
        let env = parse(&out).unwrap();
        assert_eq!(env.payload, vec![1, 2, 3]);
        assert_eq!(env.signature, vec![9; 64]);
        assert_eq!(env.algorithm, SignatureAlgorithm::EdDsa);
        assert!(!is_untagged_sign1(&out));
    }
}
