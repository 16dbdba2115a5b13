//! Certificate revocation lists for the test PKI (RFC 5280 §5), encoded by
//! hand so that tests can also make the odd ones (v1, no nextUpdate,
//! critical extensions) a verifier must refuse.

use der::Encode;
use jobseal_core::pem::encode_block;
use jobseal_core::time::UnixTime;
use jobseal_core::tlv;
use jobseal_issue::IssueError;
use jobseal_issue::signer::SigningKey;
use x509_cert::ext::Extension;
use x509_cert::serial_number::SerialNumber;
use x509_cert::time::Time;

/// `id-ce-cRLNumber`.
pub const CRL_NUMBER: der::asn1::ObjectIdentifier =
    der::asn1::ObjectIdentifier::new_unwrap("2.5.29.20");

/// One revoked certificate.
#[derive(Clone, Debug)]
pub struct Revoked {
    pub serial: u64,
    pub date: UnixTime,
    pub extensions: Vec<Extension>,
}

/// Everything a CRL is made of, before signing.
#[derive(Clone, Debug)]
pub struct CrlTemplate {
    /// Write the v2 version field (`false`: a v1 CRL, no extensions).
    pub v2: bool,
    /// The issuer `Name` element, as in the CA's certificate.
    pub issuer: Vec<u8>,
    pub this_update: UnixTime,
    pub next_update: Option<UnixTime>,
    pub revoked: Vec<Revoked>,
    pub extensions: Vec<Extension>,
}

fn encoding(e: der::Error) -> IssueError {
    IssueError::Internal(format!("DER encoding failed: {e}"))
}

fn time(t: UnixTime) -> Result<Vec<u8>, IssueError> {
    Time::try_from(t.to_system_time())
        .and_then(|t| t.to_der())
        .map_err(encoding)
}

fn wrap(tag: u8, parts: &[&[u8]]) -> Vec<u8> {
    let body: Vec<u8> = parts.concat();
    let mut out = tlv::header(tag, body.len());
    out.extend_from_slice(&body);
    out
}

impl CrlTemplate {
    /// A v2 CRL of the CA `ca_cert` with CRL number 1 and no entries.
    pub fn new(
        ca_cert: &[u8],
        this_update: UnixTime,
        next_update: UnixTime,
    ) -> Result<Self, IssueError> {
        let issuer = tlv::RawCert::split(ca_cert)
            .ok_or_else(|| IssueError::Internal("malformed CA certificate".into()))?
            .subject
            .to_vec();
        Ok(Self {
            v2: true,
            issuer,
            this_update,
            next_update: Some(next_update),
            revoked: Vec::new(),
            extensions: vec![jobseal_issue::proxy::extension(
                CRL_NUMBER,
                false,
                &[0x02, 0x01, 0x01],
            )?],
        })
    }

    /// Revoke `serial` as of `date`.
    pub fn revoke(mut self, serial: u64, date: UnixTime) -> Self {
        self.revoked.push(Revoked {
            serial,
            date,
            extensions: Vec::new(),
        });
        self
    }

    /// The DER `TBSCertList` for `algorithm`.
    fn tbs(&self, key: &SigningKey) -> Result<Vec<u8>, IssueError> {
        let mut fields: Vec<Vec<u8>> = Vec::new();
        if self.v2 {
            fields.push(vec![0x02, 0x01, 0x01]);
        }
        fields.push(key.x509_algorithm().to_der().map_err(encoding)?);
        fields.push(self.issuer.clone());
        fields.push(time(self.this_update)?);
        if let Some(t) = self.next_update {
            fields.push(time(t)?);
        }
        if !self.revoked.is_empty() {
            let mut entries = Vec::new();
            for r in &self.revoked {
                let serial = SerialNumber::from(r.serial).to_der().map_err(encoding)?;
                let date = time(r.date)?;
                let exts = if r.extensions.is_empty() {
                    Vec::new()
                } else {
                    r.extensions.to_der().map_err(encoding)?
                };
                entries.push(wrap(0x30, &[&serial, &date, &exts]));
            }
            let refs: Vec<&[u8]> = entries.iter().map(Vec::as_slice).collect();
            fields.push(wrap(0x30, &refs));
        }
        if !self.extensions.is_empty() {
            let exts = self.extensions.to_der().map_err(encoding)?;
            fields.push(wrap(0xa0, &[&exts]));
        }
        let refs: Vec<&[u8]> = fields.iter().map(Vec::as_slice).collect();
        Ok(wrap(0x30, &refs))
    }

    /// Sign with the CA's key; returns the DER CRL.
    pub fn sign(&self, key: &SigningKey) -> Result<Vec<u8>, IssueError> {
        let tbs = self.tbs(key)?;
        let signature = key.sign_x509(&tbs)?;
        let alg = key.x509_algorithm().to_der().map_err(encoding)?;
        let mut bits = vec![0u8];
        bits.extend_from_slice(&signature);
        Ok(wrap(0x30, &[&tbs, &alg, &wrap(0x03, &[&bits])]))
    }

    /// Sign and write as PEM (`X509 CRL`), as fetch-crl stores CRLs.
    pub fn sign_pem(&self, key: &SigningKey) -> Result<Vec<u8>, IssueError> {
        Ok(encode_block("X509 CRL", &self.sign(key)?).into_bytes())
    }
}
