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
    // RSA PKCS#1 v1.5 algorithm identifiers carry NULL (or absent)
    // parameters; ECDSA and Ed25519 ones carry none (RFC 4055, 5758, 8410).
    let a = alg.oid;
    let rsa_pkcs1 = [
        oid::MD5_WITH_RSA,
        oid::SHA1_WITH_RSA,
        oid::SHA256_WITH_RSA,
        oid::SHA384_WITH_RSA,
        oid::SHA512_WITH_RSA,
    ];
    let params_ok = match &alg.parameters {
        None => true,
        Some(p) => rsa_pkcs1.contains(&a) && p.is_null(),
    };
    if !params_ok {
        return Err(Error::new(
            Reason::CertMalformed,
            format!("{subject_dn}: unexpected signature algorithm parameters"),
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
                "{subject_dn} is signed with algorithm {a} and a {:?} key, which is not supported",
                key.kind
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
