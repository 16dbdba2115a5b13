//! Signature verification with ring: certificate signatures (X.509
//! algorithms) and manifest signatures (COSE algorithms), with the minimums of
//! `spec/jobseal.md` §6 (RSA ≥ 2048 bits; no MD5, no SHA-1).

use jobseal_core::cose::SignatureAlgorithm;
use jobseal_core::{Error, Reason, oid, tlv};
use ring::signature::{self, UnparsedPublicKey, VerificationAlgorithm};
use spki::AlgorithmIdentifierOwned;

/// The key inside a SubjectPublicKeyInfo.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    /// RSA with the modulus size in bits.
    Rsa(usize),
    P256,
    P384,
    Ed25519,
    Other,
}

/// A public key: its kind and the subjectPublicKey bits.
#[derive(Debug)]
pub struct PublicKey<'a> {
    pub kind: KeyKind,
    pub bits: &'a [u8],
}

/// Read an encoded SubjectPublicKeyInfo.
pub fn public_key(spki: &[u8]) -> Option<PublicKey<'_>> {
    let seq = tlv::read_all(spki)?;
    let [alg, bits] = tlv::leading::<2>(seq.value)?;
    let [alg_oid] = tlv::leading::<1>(alg.value)?;
    let alg_oid = alg_oid.value;
    let (&unused, key) = bits.value.split_first()?;
    if bits.tag != 0x03 || unused != 0 {
        return None;
    }
    let is = |o: der::asn1::ObjectIdentifier| o.as_bytes() == alg_oid;
    let kind = if is(oid::RSA_ENCRYPTION) {
        KeyKind::Rsa(rsa_modulus_bits(key)?)
    } else if is(oid::EC_PUBLIC_KEY) {
        let [_, curve] = tlv::leading::<2>(alg.value)?;
        let curve = curve.value;
        if curve == oid::SECP256R1.as_bytes() {
            KeyKind::P256
        } else if curve == oid::SECP384R1.as_bytes() {
            KeyKind::P384
        } else {
            KeyKind::Other
        }
    } else if is(oid::ED25519) {
        KeyKind::Ed25519
    } else {
        KeyKind::Other
    };
    Some(PublicKey { kind, bits: key })
}

fn rsa_modulus_bits(rsa_public_key: &[u8]) -> Option<usize> {
    let seq = tlv::read_all(rsa_public_key)?;
    let [n] = tlv::leading::<1>(seq.value)?;
    let mut m = n.value;
    while let [0, rest @ ..] = m {
        m = rest;
    }
    let first = *m.first()?;
    Some(m.len() * 8 - first.leading_zeros() as usize)
}

fn weak(msg: impl Into<String>) -> Error {
    Error::new(Reason::ChainWeakAlgorithm, msg)
}

/// Which legacy algorithms a site accepts. The defaults accept none.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AlgorithmPolicy {
    /// Smallest RSA modulus accepted on a CA-issued certificate (CAs,
    /// end-entity certificates, CRLs). Never below 1024; proxies always need
    /// [`MIN_RSA_BITS`].
    pub min_rsa_bits_ca_issued: usize,
    /// Accept SHA-1 signatures made by a CA (legacy CAs only; never on
    /// proxies, never MD5).
    pub allow_sha1_ca_issued: bool,
}

/// RSA modulus minimum of the default policy and of every proxy.
pub const MIN_RSA_BITS: usize = 2048;

impl Default for AlgorithmPolicy {
    fn default() -> Self {
        Self {
            min_rsa_bits_ca_issued: MIN_RSA_BITS,
            allow_sha1_ca_issued: false,
        }
    }
}

/// Who made a signature: a CA (on a CA or end-entity certificate, or a CRL),
/// or an end entity or proxy (on a proxy).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Signer {
    Ca,
    EndEntityOrProxy,
}

/// Verify a certificate signature made by `issuer_spki` over `tbs`.
pub fn verify_certificate(
    alg: &AlgorithmIdentifierOwned,
    issuer_spki: &[u8],
    tbs: &[u8],
    signature: &[u8],
    subject_dn: &str,
    policy: &AlgorithmPolicy,
    signer: Signer,
) -> Result<(), Error> {
    let legacy = signer == Signer::Ca;
    let min_rsa = if legacy {
        policy.min_rsa_bits_ca_issued.max(1024)
    } else {
        MIN_RSA_BITS
    };
    let sha1_ok = legacy && policy.allow_sha1_ca_issued;
    let key = public_key(issuer_spki).ok_or_else(|| {
        Error::new(
            Reason::CertMalformed,
            format!("the issuer key of {subject_dn} is malformed"),
        )
    })?;
    // An algorithm outside the table is refused as such, whatever its
    // parameters (§6.3 2d.2). RSA PKCS#1 v1.5 identifiers carry NULL (or
    // absent) parameters; ECDSA and Ed25519 ones carry none (RFC 4055,
    // 5758, 8410).
    let a = alg.oid;
    let rsa_pkcs1 = [
        oid::MD5_WITH_RSA,
        oid::SHA1_WITH_RSA,
        oid::SHA256_WITH_RSA,
        oid::SHA384_WITH_RSA,
        oid::SHA512_WITH_RSA,
    ];
    let others = [oid::ECDSA_WITH_SHA256, oid::ECDSA_WITH_SHA384, oid::ED25519];
    if !rsa_pkcs1.contains(&a) && !others.contains(&a) {
        return Err(weak(format!(
            "{subject_dn} is signed with {}, which is not accepted ({ACCEPTED})",
            algorithm_name(a)
        )));
    }
    let params_ok = match &alg.parameters {
        None => true,
        Some(p) => rsa_pkcs1.contains(&a) && p.is_null(),
    };
    if !params_ok {
        return Err(Error::new(
            Reason::CertMalformed,
            format!(
                "{subject_dn}: the {} signature algorithm identifier carries parameters it must not have",
                algorithm_name(a)
            ),
        ));
    }
    if let KeyKind::Rsa(bits) = key.kind
        && bits < min_rsa
    {
        return Err(weak(format!(
            "{subject_dn} is signed by an RSA-{bits} key; at least {min_rsa} bits are required"
        )));
    }
    let small_rsa = matches!(key.kind, KeyKind::Rsa(bits) if bits < MIN_RSA_BITS);
    let algorithm: &dyn VerificationAlgorithm = match (a, key.kind) {
        (x, _) if x == oid::MD5_WITH_RSA => {
            return Err(weak(format!(
                "{subject_dn} is signed with MD5, which is never accepted"
            )));
        }
        (x, KeyKind::Rsa(_)) if x == oid::SHA1_WITH_RSA && sha1_ok => {
            if small_rsa {
                &signature::RSA_PKCS1_1024_8192_SHA1_FOR_LEGACY_USE_ONLY
            } else {
                &signature::RSA_PKCS1_2048_8192_SHA1_FOR_LEGACY_USE_ONLY
            }
        }
        (x, _) if x == oid::SHA1_WITH_RSA => {
            return Err(weak(format!(
                "{subject_dn} is signed with SHA-1, which is not accepted"
            )));
        }
        (x, KeyKind::Rsa(_)) if small_rsa && x == oid::SHA256_WITH_RSA => {
            &signature::RSA_PKCS1_1024_8192_SHA256_FOR_LEGACY_USE_ONLY
        }
        (x, KeyKind::Rsa(_)) if small_rsa && x == oid::SHA512_WITH_RSA => {
            &signature::RSA_PKCS1_1024_8192_SHA512_FOR_LEGACY_USE_ONLY
        }
        (x, KeyKind::Rsa(_)) if x == oid::SHA256_WITH_RSA => &signature::RSA_PKCS1_2048_8192_SHA256,
        (x, KeyKind::Rsa(_)) if x == oid::SHA384_WITH_RSA && !small_rsa => {
            &signature::RSA_PKCS1_2048_8192_SHA384
        }
        (x, KeyKind::Rsa(_)) if x == oid::SHA512_WITH_RSA => &signature::RSA_PKCS1_2048_8192_SHA512,
        (x, KeyKind::P256) if x == oid::ECDSA_WITH_SHA256 => &signature::ECDSA_P256_SHA256_ASN1,
        (x, KeyKind::P256) if x == oid::ECDSA_WITH_SHA384 => &signature::ECDSA_P256_SHA384_ASN1,
        (x, KeyKind::P384) if x == oid::ECDSA_WITH_SHA384 => &signature::ECDSA_P384_SHA384_ASN1,
        (x, KeyKind::P384) if x == oid::ECDSA_WITH_SHA256 => &signature::ECDSA_P384_SHA256_ASN1,
        (x, KeyKind::Ed25519) if x == oid::ED25519 => &signature::ED25519,
        _ => {
            return Err(weak(format!(
                "{subject_dn} is signed with {} by a {} key, which is not accepted ({ACCEPTED})",
                algorithm_name(a),
                key_name(issuer_spki, key.kind)
            )));
        }
    };
    UnparsedPublicKey::new(algorithm, key.bits)
        .verify(tbs, signature)
        .map_err(|_| {
            Error::new(
                Reason::ChainBadSignature,
                format!("the signature on {subject_dn} does not verify"),
            )
        })
}

/// What 2d.2 accepts, for messages.
const ACCEPTED: &str = "accepted: RSA of 2048 bits or more with SHA-256/384/512 (PKCS#1 v1.5), ECDSA P-256/P-384 with SHA-256/384, Ed25519";

/// A signature algorithm's name (dotted OID if not known here).
fn algorithm_name(a: der::asn1::ObjectIdentifier) -> String {
    let name = match a.to_string().as_str() {
        "1.2.840.113549.1.1.2" => "md2WithRSAEncryption",
        "1.2.840.113549.1.1.4" => "md5WithRSAEncryption",
        "1.2.840.113549.1.1.5" => "sha1WithRSAEncryption",
        "1.2.840.113549.1.1.10" => "RSASSA-PSS",
        "1.2.840.113549.1.1.11" => "sha256WithRSAEncryption",
        "1.2.840.113549.1.1.12" => "sha384WithRSAEncryption",
        "1.2.840.113549.1.1.13" => "sha512WithRSAEncryption",
        "1.2.840.113549.1.1.14" => "sha224WithRSAEncryption",
        "1.2.840.10040.4.3" => "dsa-with-sha1",
        "2.16.840.1.101.3.4.3.2" => "dsa-with-sha256",
        "1.2.840.10045.4.1" => "ecdsa-with-SHA1",
        "1.2.840.10045.4.3.1" => "ecdsa-with-SHA224",
        "1.2.840.10045.4.3.2" => "ecdsa-with-SHA256",
        "1.2.840.10045.4.3.3" => "ecdsa-with-SHA384",
        "1.2.840.10045.4.3.4" => "ecdsa-with-SHA512",
        "1.3.101.112" => "Ed25519",
        "1.3.101.113" => "Ed448",
        other => return format!("algorithm {other}"),
    };
    name.to_string()
}

/// A public key's description for messages: RSA with its size, the curve
/// of an EC key by name, or the key algorithm.
fn key_name(spki: &[u8], kind: KeyKind) -> String {
    let named = |oid: &[u8]| {
        let text = der::asn1::ObjectIdentifier::from_bytes(oid)
            .map(|o| o.to_string())
            .unwrap_or_else(|_| "?".into());
        let name = match text.as_str() {
            "1.3.132.0.35" => "EC secp521r1 (P-521)",
            "1.3.132.0.34" => "EC secp384r1 (P-384)",
            "1.2.840.10045.3.1.7" => "EC prime256v1 (P-256)",
            "1.3.132.0.10" => "EC secp256k1",
            "1.3.132.0.33" => "EC secp224r1 (P-224)",
            "1.3.36.3.3.2.8.1.1.7" => "EC brainpoolP256r1",
            "1.2.840.113549.1.1.1" => "RSA",
            "1.2.840.10040.4.1" => "DSA",
            "1.3.101.112" => "Ed25519",
            "1.3.101.113" => "Ed448",
            "1.3.101.110" => "X25519",
            _ => return text,
        };
        name.to_string()
    };
    match kind {
        KeyKind::Rsa(bits) => format!("RSA-{bits}"),
        KeyKind::P256 => "EC P-256".into(),
        KeyKind::P384 => "EC P-384".into(),
        KeyKind::Ed25519 => "Ed25519".into(),
        KeyKind::Other => {
            let parts = tlv::read_all(spki)
                .and_then(|seq| tlv::leading::<1>(seq.value))
                .and_then(|[alg]| tlv::children(alg.value));
            match parts.as_deref() {
                Some([alg, curve, ..]) if alg.value == oid::EC_PUBLIC_KEY.as_bytes() => {
                    named(curve.value)
                }
                Some([alg, ..]) => named(alg.value),
                _ => "unreadable".into(),
            }
        }
    }
}

/// Verify a COSE signature with the key of the certificate that signed the
/// manifest.
pub fn verify_cose(
    alg: SignatureAlgorithm,
    signer_spki: &[u8],
    tbs: &[u8],
    signature: &[u8],
) -> Result<(), Error> {
    let bad = |m: String| Error::new(Reason::ManifestBadSignature, m);
    let key = public_key(signer_spki)
        .ok_or_else(|| bad("the signer's public key is malformed".into()))?;
    let algorithm: &dyn VerificationAlgorithm = match (alg, key.kind) {
        (SignatureAlgorithm::EdDsa, KeyKind::Ed25519) => &signature::ED25519,
        (SignatureAlgorithm::Es256, KeyKind::P256) => &signature::ECDSA_P256_SHA256_FIXED,
        (SignatureAlgorithm::Es384, KeyKind::P384) => &signature::ECDSA_P384_SHA384_FIXED,
        (SignatureAlgorithm::Ps256, KeyKind::Rsa(bits)) if bits >= 2048 => {
            &signature::RSA_PSS_2048_8192_SHA256
        }
        (a, k) => {
            return Err(bad(format!(
                "the manifest algorithm {} does not fit the signer's {k:?} key",
                a.name()
            )));
        }
    };
    UnparsedPublicKey::new(algorithm, key.bits)
        .verify(tbs, signature)
        .map_err(|_| bad("the manifest signature does not verify under the key that issued the job-bound proxy".into()))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use der::asn1::{Any, ObjectIdentifier};

    fn tlv(tag: u8, parts: &[&[u8]]) -> Vec<u8> {
        let body = parts.concat();
        let mut out = tlv::header(tag, body.len());
        out.extend_from_slice(&body);
        out
    }

    fn ec_spki(curve: &str) -> Vec<u8> {
        let curve = ObjectIdentifier::new_unwrap(curve);
        let alg = tlv(
            0x30,
            &[
                &tlv(0x06, &[oid::EC_PUBLIC_KEY.as_bytes()]),
                &tlv(0x06, &[curve.as_bytes()]),
            ],
        );
        tlv(0x30, &[&alg, &tlv(0x03, &[&[0x00, 0x04], &[0x11; 64]])])
    }

    fn ed25519_spki() -> Vec<u8> {
        let alg = tlv(0x30, &[&tlv(0x06, &[oid::ED25519.as_bytes()])]);
        tlv(0x30, &[&alg, &tlv(0x03, &[&[0x00], &[0x22; 32]])])
    }

    fn check(alg: &str, params: Option<Any>, spki: &[u8]) -> Error {
        let alg = AlgorithmIdentifierOwned {
            oid: ObjectIdentifier::new_unwrap(alg),
            parameters: params,
        };
        let policy = AlgorithmPolicy::default();
        verify_certificate(&alg, spki, b"tbs", &[0; 64], "/CN=x", &policy, Signer::Ca).unwrap_err()
    }

    #[test]
    fn algorithms_outside_the_table_are_named_and_refused_whatever_their_parameters() {
        // sha224WithRSAEncryption with NULL parameters, RSASSA-PSS with
        // its parameter SEQUENCE: not "unexpected parameters", but which
        // algorithm and that it is not accepted.
        for (alg, params, name) in [
            (
                "1.2.840.113549.1.1.14",
                Some(Any::null()),
                "sha224WithRSAEncryption",
            ),
            (
                "1.2.840.113549.1.1.10",
                Some(Any::new(der::Tag::Sequence, Vec::new()).unwrap()),
                "RSASSA-PSS",
            ),
        ] {
            let e = check(alg, params, &ed25519_spki());
            assert_eq!(e.reason, Reason::ChainWeakAlgorithm, "{}", e.message);
            assert!(e.message.contains(name), "{}", e.message);
            assert!(e.message.contains("not accepted"), "{}", e.message);
        }
    }

    #[test]
    fn parameters_on_an_accepted_algorithm_are_malformed() {
        let e = check("1.3.101.112", Some(Any::null()), &ed25519_spki());
        assert_eq!(e.reason, Reason::CertMalformed, "{}", e.message);
        assert!(e.message.contains("Ed25519"), "{}", e.message);
    }

    #[test]
    fn curves_outside_the_table_are_named() {
        for (curve, name) in [("1.3.132.0.35", "secp521r1"), ("1.3.132.0.10", "secp256k1")] {
            let e = check("1.2.840.10045.4.3.2", None, &ec_spki(curve));
            assert_eq!(e.reason, Reason::ChainWeakAlgorithm, "{}", e.message);
            assert!(e.message.contains(name), "{}", e.message);
            assert!(!e.message.contains("Other"), "{}", e.message);
        }
    }
}
