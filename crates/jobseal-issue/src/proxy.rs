//! Issuing RFC 3820 proxy certificates: plain (`inheritAll`) proxies and
//! job-bound proxies (`spec/jobseal.md` §2.4).

use der::asn1::{Any, OctetString};
use der::{Decode, Encode, Sequence};
use jobseal_core::asn1::{JobBinding, ProxyCertInfo, ProxyPolicy};
use jobseal_core::time::UnixTime;
use jobseal_core::{name, oid, tlv};
use spki::AlgorithmIdentifierOwned;
use x509_cert::ext::Extension;
use x509_cert::serial_number::SerialNumber;
use x509_cert::time::{Time, Validity};

use crate::IssueError;
use crate::signer::SigningKey;

/// keyUsage = digitalSignature (RFC 5280 bit 0).
pub const KU_DIGITAL_SIGNATURE: [u8; 4] = [0x03, 0x02, 0x07, 0x80];
/// keyUsage = digitalSignature, keyEncipherment (bits 0 and 2).
pub const KU_SIGNATURE_AND_ENCIPHERMENT: [u8; 4] = [0x03, 0x02, 0x05, 0xa0];

/// What kind of proxy to issue.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProxyKind {
    /// A job-bound proxy: job-bound policy language, path length 0, and a
    /// critical JobBinding to the manifest digest.
    JobBound { manifest_sha256: [u8; 32] },
    /// A plain RFC 3820 proxy with the user's full rights (`inheritAll`).
    InheritAll { path_len: Option<u32> },
}

/// Everything a proxy certificate is made of, before signing. Tests build
/// malformed certificates by editing a template; `issue` never does.
#[derive(Clone, Debug)]
pub struct CertTemplate {
    pub serial: u64,
    /// The issuer `Name` element, exactly as in the issuing certificate.
    pub issuer: Vec<u8>,
    /// The subject `Name` element.
    pub subject: Vec<u8>,
    /// The `SubjectPublicKeyInfo` element.
    pub spki: Vec<u8>,
    pub not_before: UnixTime,
    pub not_after: UnixTime,
    pub extensions: Vec<Extension>,
}

#[derive(Sequence)]
struct TbsCertificate {
    #[asn1(context_specific = "0", tag_mode = "EXPLICIT")]
    version: u8,
    serial_number: SerialNumber,
    signature: AlgorithmIdentifierOwned,
    issuer: Any,
    validity: Validity,
    subject: Any,
    subject_public_key_info: Any,
    #[asn1(context_specific = "3", tag_mode = "EXPLICIT")]
    extensions: Vec<Extension>,
}

fn encoding(e: der::Error) -> IssueError {
    IssueError::Internal(format!("DER encoding failed: {e}"))
}

fn time(t: UnixTime) -> Result<Time, IssueError> {
    Time::try_from(t.to_system_time()).map_err(encoding)
}

/// An extension from a DER-encodable value.
pub fn extension(
    id: der::asn1::ObjectIdentifier,
    critical: bool,
    der: &[u8],
) -> Result<Extension, IssueError> {
    Ok(Extension {
        extn_id: id,
        critical,
        extn_value: OctetString::new(der).map_err(encoding)?,
    })
}

impl CertTemplate {
    /// The template of a proxy of `issuer_cert` over `spki`: subject is the
    /// issuer's subject plus `CN=<serial>`, extensions as `kind` requires.
    pub fn proxy(
        issuer_cert: &[u8],
        spki: Vec<u8>,
        serial: u64,
        not_before: UnixTime,
        not_after: UnixTime,
        kind: &ProxyKind,
    ) -> Result<Self, IssueError> {
        let raw = tlv::RawCert::split(issuer_cert)
            .ok_or_else(|| IssueError::Credential("the issuer certificate is malformed".into()))?;
        let subject = name::append_cn(raw.subject, &serial.to_string())
            .ok_or_else(|| IssueError::Credential("the issuer subject name is malformed".into()))?;
        let (policy_language, path_len, ku, binding) = match kind {
            ProxyKind::JobBound { manifest_sha256 } => (
                oid::PPL_JOB_BOUND,
                Some(0),
                KU_DIGITAL_SIGNATURE,
                Some(JobBinding::for_identity_switch(manifest_sha256).map_err(encoding)?),
            ),
            ProxyKind::InheritAll { path_len } => (
                oid::PPL_INHERIT_ALL,
                *path_len,
                KU_SIGNATURE_AND_ENCIPHERMENT,
                None,
            ),
        };
        let pci = ProxyCertInfo {
            path_len_constraint: path_len,
            proxy_policy: ProxyPolicy {
                policy_language,
                policy: None,
            },
        };
        let mut extensions = vec![
            extension(oid::KEY_USAGE, true, &ku)?,
            extension(oid::PROXY_CERT_INFO, true, &pci.to_der().map_err(encoding)?)?,
        ];
        if let Some(b) = binding {
            extensions.push(extension(
                oid::JOB_BINDING,
                true,
                &b.to_der().map_err(encoding)?,
            )?);
        }
        Ok(Self {
            serial,
            issuer: raw.subject.to_vec(),
            subject,
            spki,
            not_before,
            not_after,
            extensions,
        })
    }

    /// Sign the template with the issuer's key; returns the DER certificate.
    pub fn sign(&self, key: &SigningKey) -> Result<Vec<u8>, IssueError> {
        self.sign_claiming(key, key.x509_algorithm())
    }

    /// Sign, but name `algorithm` in the certificate whatever the key really
    /// uses. Only negative test vectors want this.
    #[doc(hidden)]
    pub fn sign_claiming(
        &self,
        key: &SigningKey,
        algorithm: AlgorithmIdentifierOwned,
    ) -> Result<Vec<u8>, IssueError> {
        let any = |b: &[u8]| Any::from_der(b).map_err(encoding);
        let tbs = TbsCertificate {
            version: 2,
            serial_number: SerialNumber::from(self.serial),
            signature: algorithm.clone(),
            issuer: any(&self.issuer)?,
            validity: Validity::new(time(self.not_before)?, time(self.not_after)?),
            subject: any(&self.subject)?,
            subject_public_key_info: any(&self.spki)?,
            extensions: self.extensions.clone(),
        }
        .to_der()
        .map_err(encoding)?;
        let signature = key.sign_x509(&tbs)?;
        let alg = algorithm.to_der().map_err(encoding)?;
        let mut bits = tlv::header(0x03, signature.len() + 1);
        bits.push(0);
        bits.extend_from_slice(&signature);
        let mut cert = tlv::header(0x30, tbs.len() + alg.len() + bits.len());
        cert.extend_from_slice(&tbs);
        cert.extend_from_slice(&alg);
        cert.extend_from_slice(&bits);
        // What we issue must parse as a certificate.
        x509_cert::Certificate::from_der(&cert).map_err(encoding)?;
        Ok(cert)
    }
}

/// A random positive 63-bit serial number (also the proxy's CN, as Globus does).
pub fn random_serial() -> Result<u64, IssueError> {
    let mut b = [0u8; 8];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut b)
        .map_err(|_| IssueError::Internal("the system random generator failed".into()))?;
    Ok((u64::from_be_bytes(b) >> 1).max(1))
}
