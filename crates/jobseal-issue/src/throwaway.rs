//! A throwaway PKI (CA, users, CA directory) for `jobseal demo` and tests.
//!
//! Nothing made here belongs in production: keys are Ed25519 made on the
//! spot (or from fixed seeds for reproducible test vectors).

use std::path::Path;
use std::str::FromStr;

use der::Encode;
use jobseal_core::pem::encode_block;
use jobseal_core::time::UnixTime;
use jobseal_core::{name, oid};
use ring::signature::KeyPair;
use x509_cert::ext::Extension;

use crate::IssueError;
use crate::keys::KeyDer;
use crate::proxy::{CertTemplate, extension};
use crate::signer::SigningKey;

/// A key with its certificate.
#[derive(Debug)]
pub struct Party {
    pub key: SigningKey,
    /// PKCS#8 of the key, to write it out.
    pub pkcs8: zeroize::Zeroizing<Vec<u8>>,
    pub cert: Vec<u8>,
}

/// PKCS#8 v1 prefix of an Ed25519 private key (RFC 8410).
const ED25519_PKCS8_PREFIX: [u8; 16] = [
    0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20,
];

/// A key, its PKCS#8 and its SubjectPublicKeyInfo DER.
pub type KeyMaterial = (SigningKey, zeroize::Zeroizing<Vec<u8>>, Vec<u8>);

/// An Ed25519 key from a 32-byte seed.
pub fn ed25519_from_seed(seed: &[u8; 32]) -> Result<KeyMaterial, IssueError> {
    let mut pkcs8 = zeroize::Zeroizing::new(ED25519_PKCS8_PREFIX.to_vec());
    pkcs8.extend_from_slice(seed);
    let key = SigningKey::from_key_der(&KeyDer::Pkcs8(pkcs8.clone()))?;
    let pair = ring::signature::Ed25519KeyPair::from_seed_unchecked(seed)
        .map_err(|_| IssueError::Internal("bad Ed25519 seed".into()))?;
    let public: [u8; 32] = pair
        .public_key()
        .as_ref()
        .try_into()
        .map_err(|_| IssueError::Internal("Ed25519 public key length".into()))?;
    let spki = jobseal_core::bound_key::ed25519_spki(&public)
        .and_then(|s| s.to_der())
        .map_err(|e| IssueError::Internal(e.to_string()))?;
    Ok((key, pkcs8, spki))
}

/// A random Ed25519 seed.
pub fn random_seed() -> Result<[u8; 32], IssueError> {
    let mut seed = [0u8; 32];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut seed)
        .map_err(|_| IssueError::Internal("the system random generator failed".into()))?;
    Ok(seed)
}

/// Encode an RFC 4514 name (`CN=Jane Doe,O=Example`).
pub fn name_der(rfc4514: &str) -> Result<Vec<u8>, IssueError> {
    x509_cert::name::Name::from_str(rfc4514)
        .and_then(|n| n.to_der())
        .map_err(|e| IssueError::Internal(format!("bad name {rfc4514:?}: {e}")))
}

/// basicConstraints cA=TRUE (critical) and keyUsage keyCertSign|cRLSign.
pub fn ca_extensions() -> Result<Vec<Extension>, IssueError> {
    Ok(vec![
        extension(
            oid::BASIC_CONSTRAINTS,
            true,
            &[0x30, 0x03, 0x01, 0x01, 0xff],
        )?,
        extension(oid::KEY_USAGE, true, &[0x03, 0x02, 0x01, 0x06])?,
    ])
}

/// keyUsage digitalSignature|keyEncipherment for a user certificate.
pub fn user_extensions() -> Result<Vec<Extension>, IssueError> {
    Ok(vec![extension(
        oid::KEY_USAGE,
        true,
        &crate::proxy::KU_SIGNATURE_AND_ENCIPHERMENT,
    )?])
}

/// A self-signed CA.
pub fn ca(
    seed: &[u8; 32],
    subject: &str,
    not_before: UnixTime,
    not_after: UnixTime,
) -> Result<Party, IssueError> {
    let (key, pkcs8, spki) = ed25519_from_seed(seed)?;
    let name = name_der(subject)?;
    let cert = CertTemplate {
        serial: 1,
        issuer: name.clone(),
        subject: name,
        spki,
        not_before,
        not_after,
        extensions: ca_extensions()?,
    }
    .sign(&key)?;
    Ok(Party { key, pkcs8, cert })
}

/// A user (end-entity) certificate issued by `ca`.
pub fn user(
    ca: &Party,
    seed: &[u8; 32],
    subject: &str,
    serial: u64,
    not_before: UnixTime,
    not_after: UnixTime,
) -> Result<Party, IssueError> {
    let (key, pkcs8, spki) = ed25519_from_seed(seed)?;
    let issuer = jobseal_core::tlv::RawCert::split(&ca.cert)
        .ok_or_else(|| IssueError::Internal("malformed CA certificate".into()))?
        .subject
        .to_vec();
    let cert = CertTemplate {
        serial,
        issuer,
        subject: name_der(subject)?,
        spki,
        not_before,
        not_after,
        extensions: user_extensions()?,
    }
    .sign(&ca.key)?;
    Ok(Party { key, pkcs8, cert })
}

/// Install a CA certificate in an IGTF-style directory as `<hash>.0`.
pub fn install_ca(dir: &Path, ca_cert: &[u8]) -> Result<std::path::PathBuf, IssueError> {
    let subject = jobseal_core::tlv::RawCert::split(ca_cert)
        .ok_or_else(|| IssueError::Internal("malformed CA certificate".into()))?
        .subject;
    let hash = name::openssl_hash(subject)
        .ok_or_else(|| IssueError::Internal("malformed CA name".into()))?;
    std::fs::create_dir_all(dir).map_err(|e| IssueError::io(dir, e))?;
    let path = dir.join(format!("{hash:08x}.0"));
    std::fs::write(&path, encode_block("CERTIFICATE", ca_cert))
        .map_err(|e| IssueError::io(&path, e))?;
    Ok(path)
}
