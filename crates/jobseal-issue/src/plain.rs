//! Plain RFC 3820 proxies (`jobseal proxy`), like `grid-proxy-init -rfc`.
//!
//! The proxy key is RSA-2048: XRootD's GSI cannot use EC or Ed25519 proxy
//! keys, and a plain proxy is what storage access needs. ring cannot generate
//! RSA keys, so the `rsa` crate does that (key generation only; all signing
//! is ring's).

use jobseal_core::pem::encode_block;
use jobseal_core::time::UnixTime;
use rsa::pkcs1::EncodeRsaPrivateKey;
use rsa::pkcs8::EncodePublicKey;

use crate::IssueError;
use crate::credential::Credential;
use crate::proxy::{CertTemplate, ProxyKind};

/// A plain proxy ready to be written: PEM of certificate, key, then chain.
#[derive(Debug)]
pub struct PlainProxy {
    pub pem: zeroize::Zeroizing<String>,
    pub certificate: Vec<u8>,
}

/// Issue a plain `inheritAll` proxy of `cred` valid from `not_before` to `not_after`.
pub fn issue_plain_proxy(
    cred: &Credential,
    not_before: UnixTime,
    not_after: UnixTime,
    path_len: Option<u32>,
) -> Result<PlainProxy, IssueError> {
    let issuer_cert = cred
        .chain
        .first()
        .ok_or_else(|| IssueError::Credential("the credential has no certificate".into()))?;
    let key = rsa::PrivateKey::new(&mut crate::rng::RingRng::new(), 2048)
        .map_err(|e| IssueError::Internal(format!("RSA key generation failed: {e}")))?;
    let spki = key
        .to_public_key()
        .to_public_key_der()
        .map_err(|e| IssueError::Internal(format!("SPKI encoding failed: {e}")))?;
    let key_der = key
        .to_pkcs1_der()
        .map_err(|e| IssueError::Internal(format!("key encoding failed: {e}")))?;
    let template = CertTemplate::proxy(
        issuer_cert,
        spki.as_bytes().to_vec(),
        crate::proxy::random_serial()?,
        not_before,
        not_after,
        &ProxyKind::InheritAll { path_len },
    )?;
    let certificate = template.sign(&cred.key)?;
    let mut pem = zeroize::Zeroizing::new(encode_block("CERTIFICATE", &certificate));
    pem.push_str(&encode_block("RSA PRIVATE KEY", key_der.as_bytes()));
    for c in &cred.chain {
        pem.push_str(&encode_block("CERTIFICATE", c));
    }
    Ok(PlainProxy { pem, certificate })
}
