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
///
/// The envelope has one shape only, so it is read byte by byte without a
/// general CBOR decoder: `d2 84 <bstr protected> a0 <bstr payload>
/// <bstr signature>`. Nothing is allocated for hostile structure, and the
/// byte strings are taken exactly as carried.
pub fn parse(bytes: &[u8]) -> Result<Envelope, Error> {
    let rest = bytes
        .strip_prefix(&[0xd2])
        .ok_or_else(|| bad("the manifest is not a tagged COSE_Sign1 (tag 18 expected)"))?;
    let rest = rest
        .strip_prefix(&[0x84])
        .ok_or_else(|| bad("the COSE_Sign1 is not an array of four items"))?;
    let (protected, rest) = byte_string(rest, "protected header")?;
    let algorithm = SignatureAlgorithm::ALL
        .into_iter()
        .find(|a| a.protected_header() == protected)
        .ok_or_else(|| {
            bad("the COSE protected header is not {alg, content type} with an algorithm of the profile")
        })?;
    let rest = match rest.split_first() {
        Some((0xa0, rest)) => rest,
        Some((0xf6, _)) => return Err(bad("the COSE unprotected header must be an empty map")),
        _ => return Err(bad("the COSE unprotected header must be empty")),
    };
    if rest.first() == Some(&0xf6) {
        return Err(bad("the COSE payload is detached; it must be attached"));
    }
    let (payload, rest) = byte_string(rest, "payload")?;
    let (signature, rest) = byte_string(rest, "signature")?;
    if !rest.is_empty() {
        return Err(bad("trailing bytes after the COSE_Sign1"));
    }
    Ok(Envelope {
        algorithm,
        to_be_signed: sig_structure(protected, payload),
        payload: payload.to_vec(),
        signature: signature.to_vec(),
    })
}

/// A definite-length byte string with its shortest head; returns it and the rest.
fn byte_string<'a>(input: &'a [u8], what: &str) -> Result<(&'a [u8], &'a [u8]), Error> {
    let err = || {
        bad(format!(
            "the COSE {what} is not a definite-length byte string"
        ))
    };
    let (&first, rest) = input.split_first().ok_or_else(err)?;
    if first >> 5 != 2 {
        return Err(err());
    }
    let (len, rest) = match first & 0x1f {
        n @ 0..=23 => (u64::from(n), rest),
        n @ 24..=27 => {
            let width = 1usize << (n - 24);
            let (head, rest) = rest.split_at_checked(width).ok_or_else(err)?;
            let len = head.iter().fold(0u64, |acc, b| (acc << 8) | u64::from(*b));
            let min = match n {
                24 => 24,
                25 => 0x100,
                26 => 0x1_0000,
                _ => 0x1_0000_0000,
            };
            if len < min {
                return Err(bad(format!(
                    "the COSE {what} length is not in its shortest form"
                )));
            }
            (len, rest)
        }
        _ => return Err(err()),
    };
    let len = usize::try_from(len).map_err(|_| err())?;
    rest.split_at_checked(len)
        .ok_or_else(|| bad(format!("the COSE {what} is truncated")))
}

/// `Sig_structure = ["Signature1", protected, external_aad = h'', payload]`
/// (RFC 9052 §4.4), encoded deterministically.
fn sig_structure(protected: &[u8], payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(protected.len() + payload.len() + 32);
    out.push(0x84);
    out.push(0x6a);
    out.extend_from_slice(b"Signature1");
    push_bstr(&mut out, protected);
    out.push(0x40);
    push_bstr(&mut out, payload);
    out
}

fn push_bstr(out: &mut Vec<u8>, b: &[u8]) {
    let len = b.len() as u64;
    let be = len.to_be_bytes();
    let (info, width) = match len {
        0..=23 => (u8::try_from(len).unwrap_or(0), 0),
        24..=0xff => (24, 1),
        0x100..=0xffff => (25, 2),
        0x1_0000..=0xffff_ffff => (26, 4),
        _ => (27, 8),
    };
    out.push(0x40 | info);
    out.extend_from_slice(be.get(8 - width..).unwrap_or_default());
    out.extend_from_slice(b);
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
    fn sig_structure_matches_coset() {
        for len in [0usize, 23, 24, 255, 256, 70_000] {
            let out = build::<Error>(SignatureAlgorithm::Ps256, vec![7; len], |_| {
                Ok(vec![1; 256])
            })
            .unwrap();
            let env = parse(&out).unwrap();
            let theirs = CoseSign1::from_tagged_slice(&out).unwrap().tbs_data(b"");
            assert_eq!(env.to_be_signed, theirs);
        }
    }

    #[test]
    fn hostile_structure_is_refused_without_decoding_it() {
        // Tag, then an array of 2^32 empty arrays: refused at the second byte.
        let mut bomb = vec![0xd2, 0x9a, 0xff, 0xff, 0xff, 0xff];
        bomb.extend(std::iter::repeat_n(0x80, 1 << 20));
        assert_eq!(
            parse(&bomb).unwrap_err().reason,
            Reason::ManifestBadEnvelope
        );
        let good = build::<Error>(SignatureAlgorithm::EdDsa, vec![1, 2, 3], |_| {
            Ok(vec![9; 64])
        })
        .unwrap();
        // Untagged, trailing bytes, non-empty unprotected header, detached payload.
        assert!(parse(&good[1..]).is_err());
        let mut trailing = good.clone();
        trailing.push(0);
        assert!(parse(&trailing).is_err());
        let p = good.iter().position(|&b| b == 0xa0).unwrap();
        let mut unprotected = good.clone();
        unprotected.splice(p..=p, [0xa1, 0x04, 0x41, 0x00]);
        assert!(parse(&unprotected).is_err());
        let mut detached = good[..=p].to_vec();
        detached.push(0xf6);
        detached.extend_from_slice(&[0x58, 0x40]);
        detached.extend_from_slice(&[9; 64]);
        assert!(parse(&detached).unwrap_err().message.contains("detached"));
        for cut in 0..good.len() {
            assert!(parse(&good[..cut]).is_err());
        }
    }

    #[test]
    fn non_shortest_heads_are_refused() {
        let good =
            build::<Error>(SignatureAlgorithm::EdDsa, vec![1; 30], |_| Ok(vec![9; 64])).unwrap();
        let p = good.iter().position(|&b| b == 0xa0).unwrap();
        let mut variants = Vec::new();
        // Tag 18 as d8 12, the array as 98 04, the unprotected map as b8 00.
        let mut v = vec![0xd8, 0x12];
        v.extend_from_slice(&good[1..]);
        variants.push(v);
        let mut v = vec![0xd2, 0x98, 0x04];
        v.extend_from_slice(&good[2..]);
        variants.push(v);
        let mut v = good.clone();
        v.splice(p..=p, [0xb8, 0x00]);
        variants.push(v);
        // The payload's length (30) as 59 00 1e.
        let mut v = good.clone();
        assert_eq!(&good[p + 1..p + 3], &[0x58, 30]);
        v.splice(p + 1..p + 3, [0x59, 0x00, 30]);
        variants.push(v);
        for v in variants {
            assert_eq!(parse(&v).unwrap_err().reason, Reason::ManifestBadEnvelope);
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
