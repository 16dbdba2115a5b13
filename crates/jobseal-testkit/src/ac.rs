//! VOMS attribute certificates (RFC 5755, the VOMS profile) for tests: what
//! a VOMS server or `voms-proxy-fake` makes, signed by a test AA, with every
//! field open to editing so that a test can get exactly one thing wrong.

use der::Encode;
use der::asn1::ObjectIdentifier;
use jobseal_core::oid;
use jobseal_core::time::UnixTime;
use jobseal_core::tlv;
use jobseal_issue::IssueError;
use jobseal_issue::proxy::{CertTemplate, extension};
use jobseal_issue::signer::SigningKey;
use jobseal_issue::throwaway::{self, Party};

/// The port of every test AA's policy authority (`vo://host:15000`).
pub const PORT: &str = "15000";
/// The subjectKeyIdentifier of every test AA (the AC's authority key id).
pub const AA_KEY_ID: [u8; 20] = [0x5a; 20];

const OID_NO_REV_AVAIL: &str = "2.5.29.56";
const OID_AUTHORITY_KEY_ID: &str = "2.5.29.35";
/// AC targeting.
pub const OID_TARGETING: &str = "2.5.29.55";
const OID_AC_CERTS: &str = "1.3.6.1.4.1.8005.100.100.10";
const OID_GENERIC_ATTRIBUTES: &str = "1.3.6.1.4.1.8005.100.100.11";
const OID_VOMS_ATTRIBUTE: &str = "1.3.6.1.4.1.8005.100.100.4";

/// A DER element: `tag`, then the parts as its contents.
pub fn t(tag: u8, parts: &[&[u8]]) -> Vec<u8> {
    let body = parts.concat();
    let mut out = tlv::header(tag, body.len());
    out.extend_from_slice(&body);
    out
}

/// The DER of a dotted OID.
pub fn oid_der(dotted: &str) -> Result<Vec<u8>, IssueError> {
    ObjectIdentifier::new(dotted)
        .map_err(|e| IssueError::Internal(e.to_string()))?
        .to_der()
        .map_err(|e| IssueError::Internal(e.to_string()))
}

/// One AC extension.
pub fn ac_ext(dotted: &str, critical: bool, value: &[u8]) -> Result<Vec<u8>, IssueError> {
    let crit = if critical {
        vec![0x01, 0x01, 0xff]
    } else {
        Vec::new()
    };
    Ok(t(0x30, &[&oid_der(dotted)?, &crit, &t(0x04, &[value])]))
}

fn generalized_time(u: UnixTime) -> Vec<u8> {
    let digits: String = u
        .to_rfc3339()
        .chars()
        .filter(|c| c.is_ascii_digit())
        .collect();
    t(0x18, &[format!("{digits}Z").as_bytes()])
}

/// `GeneralNames` holding one directoryName.
fn dir_names(name: &[u8]) -> Vec<u8> {
    t(0x30, &[&t(0xa4, &[name])])
}

/// Everything an AC is made of; a vector edits one field.
#[derive(Clone, Debug)]
pub struct AcSpec {
    pub vo: String,
    pub host: String,
    pub fqans: Vec<String>,
    pub generic: Vec<(String, String, String)>,
    pub holder_name: Vec<u8>,
    pub holder_serial: Vec<u8>,
    /// The AC's issuer name (the AA's subject, unless a vector lies).
    pub issuer: Vec<u8>,
    /// The AC-certs extension: the AA certificate, then its CAs.
    pub carried: Vec<Vec<u8>>,
    pub not_before: UnixTime,
    pub not_after: UnixTime,
    pub extra_extensions: Vec<Vec<u8>>,
    /// Claimed signature algorithm (`None`: the signer's own).
    pub algorithm: Option<Vec<u8>>,
    pub flip_signature: bool,
}

impl AcSpec {
    /// The AC, signed by `key`.
    pub fn sign(&self, key: &SigningKey) -> Result<Vec<u8>, IssueError> {
        let enc = |e: der::Error| IssueError::Internal(e.to_string());
        let alg = match &self.algorithm {
            Some(a) => a.clone(),
            None => key.x509_algorithm().to_der().map_err(enc)?,
        };
        let holder = t(
            0x30,
            &[&t(
                0xa0,
                &[
                    &dir_names(&self.holder_name),
                    &t(0x02, &[&self.holder_serial]),
                ],
            )],
        );
        let issuer = t(0xa0, &[&dir_names(&self.issuer)]);
        let authority = format!("{}://{}:{PORT}", self.vo, self.host);
        let fqans: Vec<Vec<u8>> = self
            .fqans
            .iter()
            .map(|f| t(0x04, &[f.as_bytes()]))
            .collect();
        let fqans: Vec<&[u8]> = fqans.iter().map(Vec::as_slice).collect();
        let ietf = t(
            0x30,
            &[
                &t(0xa0, &[&t(0x86, &[authority.as_bytes()])]),
                &t(0x30, &fqans),
            ],
        );
        let attributes = t(
            0x30,
            &[&t(
                0x30,
                &[&oid_der(OID_VOMS_ATTRIBUTE)?, &t(0x31, &[&ietf])],
            )],
        );
        let carried: Vec<&[u8]> = self.carried.iter().map(Vec::as_slice).collect();
        let mut exts = vec![ac_ext(
            OID_AC_CERTS,
            false,
            &t(0x30, &[&t(0x30, &carried)]),
        )?];
        if !self.generic.is_empty() {
            let gas: Vec<Vec<u8>> = self
                .generic
                .iter()
                .map(|(n, v, q)| {
                    t(
                        0x30,
                        &[
                            &t(0x04, &[n.as_bytes()]),
                            &t(0x04, &[v.as_bytes()]),
                            &t(0x04, &[q.as_bytes()]),
                        ],
                    )
                })
                .collect();
            let gas: Vec<&[u8]> = gas.iter().map(Vec::as_slice).collect();
            let grantor = t(0x30, &[&t(0x86, &[authority.as_bytes()])]);
            let holder = t(0x30, &[&grantor, &t(0x30, &gas)]);
            exts.push(ac_ext(
                OID_GENERIC_ATTRIBUTES,
                false,
                &t(0x30, &[&t(0x30, &[&holder])]),
            )?);
        }
        exts.push(ac_ext(OID_NO_REV_AVAIL, false, &[0x05, 0x00])?);
        exts.push(ac_ext(
            OID_AUTHORITY_KEY_ID,
            false,
            &t(0x30, &[&t(0x80, &[&AA_KEY_ID])]),
        )?);
        exts.extend(self.extra_extensions.iter().cloned());
        let exts: Vec<&[u8]> = exts.iter().map(Vec::as_slice).collect();
        let info = t(
            0x30,
            &[
                &[0x02, 0x01, 0x01], // v2
                &holder,
                &issuer,
                &alg,
                &[0x02, 0x01, 0x2a], // serial 42
                &t(
                    0x30,
                    &[
                        &generalized_time(self.not_before),
                        &generalized_time(self.not_after),
                    ],
                ),
                &attributes,
                &t(0x30, &exts),
            ],
        );
        let mut signature = key.sign_x509(&info)?;
        if let (true, Some(last)) = (self.flip_signature, signature.last_mut()) {
            *last ^= 0x01;
        }
        Ok(t(0x30, &[&info, &alg, &t(0x03, &[&[0], &signature])]))
    }
}

/// The VOMS extension value holding these ACs.
pub fn ac_seq(acs: &[Vec<u8>]) -> Vec<u8> {
    let acs: Vec<&[u8]> = acs.iter().map(Vec::as_slice).collect();
    t(0x30, &[&t(0x30, &acs)])
}

/// An AA certificate: an end-entity certificate of `ca` named `subject`
/// (RFC 4514, e.g. `CN=voms.example,O=test`), with the key of `seed` and
/// the subjectKeyIdentifier [`AA_KEY_ID`], valid over `validity`.
pub fn aa(
    ca: &Party,
    seed: &[u8; 32],
    serial: u64,
    subject: &str,
    validity: (UnixTime, UnixTime),
) -> Result<Party, IssueError> {
    let (key, pkcs8, spki) = throwaway::ed25519_from_seed(seed)?;
    let mut extensions = throwaway::user_extensions()?;
    extensions.push(extension(
        oid::SUBJECT_KEY_ID,
        false,
        &t(0x04, &[&AA_KEY_ID]),
    )?);
    let issuer = tlv::RawCert::split(&ca.cert)
        .map(|r| r.subject.to_vec())
        .ok_or_else(|| IssueError::Internal("the CA certificate is malformed".into()))?;
    let cert = CertTemplate {
        serial,
        issuer,
        subject: throwaway::name_der(subject)?,
        spki,
        not_before: validity.0,
        not_after: validity.1,
        extensions,
    }
    .sign(&ca.key)?;
    Ok(Party { key, pkcs8, cert })
}
