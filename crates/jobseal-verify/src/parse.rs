//! Step 1: parse the bundle, its certificates and the COSE envelope.

use der::Decode;
use jobseal_core::bundle::Bundle;
use jobseal_core::cose::{self, Envelope};
use jobseal_core::{Error, Reason, name, tlv};
use std::sync::OnceLock;
use x509_cert::Certificate;
use x509_cert::ext::Extension;

/// A certificate with the raw bytes the checks need.
#[derive(Debug, Clone)]
pub struct ParsedCert {
    pub der: Vec<u8>,
    pub cert: Certificate,
    /// Byte ranges into `der`.
    tbs: std::ops::Range<usize>,
    issuer: std::ops::Range<usize>,
    subject: std::ops::Range<usize>,
    spki: std::ops::Range<usize>,
    /// Canonical subject and issuer (§5), computed on first use: name
    /// comparisons and subject hashes need them again and again.
    subject_canon: OnceLock<Option<Vec<u8>>>,
    issuer_canon: OnceLock<Option<Vec<u8>>>,
}

fn range_of(outer: &[u8], inner: &[u8]) -> std::ops::Range<usize> {
    let start = (inner.as_ptr() as usize).saturating_sub(outer.as_ptr() as usize);
    start..start + inner.len()
}

impl ParsedCert {
    /// Parse one DER certificate; `index` 0 is the leaf (for messages).
    pub fn from_der(der: Vec<u8>, index: usize) -> Result<Self, Error> {
        let malformed = |e: &dyn std::fmt::Display| {
            Error::new(
                Reason::CertMalformed,
                format!("certificate {index} of the bundle is malformed: {e}"),
            )
        };
        let cert = Certificate::from_der(&der).map_err(|e| malformed(&e))?;
        let raw = tlv::RawCert::split(&der).ok_or_else(|| malformed(&"cannot locate its parts"))?;
        let (tbs, issuer, subject, spki) = (
            range_of(&der, raw.tbs),
            range_of(&der, raw.issuer),
            range_of(&der, raw.subject),
            range_of(&der, raw.spki),
        );
        Ok(Self {
            der,
            cert,
            tbs,
            issuer,
            subject,
            spki,
            subject_canon: OnceLock::new(),
            issuer_canon: OnceLock::new(),
        })
    }

    fn slice(&self, r: &std::ops::Range<usize>) -> &[u8] {
        self.der.get(r.clone()).unwrap_or_default()
    }
    /// The signed `TBSCertificate` bytes.
    pub fn tbs(&self) -> &[u8] {
        self.slice(&self.tbs)
    }
    /// The issuer `Name` element as encoded.
    pub fn issuer(&self) -> &[u8] {
        self.slice(&self.issuer)
    }
    /// The subject `Name` element as encoded.
    pub fn subject(&self) -> &[u8] {
        self.slice(&self.subject)
    }
    /// The `SubjectPublicKeyInfo` element as encoded.
    pub fn spki(&self) -> &[u8] {
        self.slice(&self.spki)
    }
    /// The canonical form of the subject (`None` if it has none).
    pub fn subject_canonical(&self) -> Option<&[u8]> {
        self.subject_canon
            .get_or_init(|| name::canonical(self.subject()))
            .as_deref()
    }
    /// The canonical form of the issuer (`None` if it has none).
    pub fn issuer_canonical(&self) -> Option<&[u8]> {
        self.issuer_canon
            .get_or_init(|| name::canonical(self.issuer()))
            .as_deref()
    }
    /// `name::same(self.subject(), self.issuer())`, from the cached forms.
    pub fn is_self_issued(&self) -> bool {
        same(
            self.subject(),
            self.issuer(),
            || self.subject_canonical(),
            || self.issuer_canonical(),
        )
    }
    /// `name::same(self.issuer(), parent.subject())`, from the cached forms.
    pub fn is_issued_by(&self, parent: &ParsedCert) -> bool {
        same(
            self.issuer(),
            parent.subject(),
            || self.issuer_canonical(),
            || parent.subject_canonical(),
        )
    }
    /// `name::same(self.subject(), other)` where `canon` is
    /// `name::canonical(other)`.
    pub fn subject_is(&self, other: &[u8], canon: Option<&[u8]>) -> bool {
        same(self.subject(), other, || self.subject_canonical(), || canon)
    }
    /// `name::openssl_hash(self.subject())`, from the cached form.
    pub fn subject_hash(&self) -> Option<u32> {
        name::openssl_hash_of_canonical(self.subject_canonical()?)
    }
    /// The subject in `/DC=…/CN=…` form.
    pub fn subject_dn(&self) -> String {
        name::to_slash_string(self.subject())
    }
    /// The extensions (empty if none).
    pub fn extensions(&self) -> &[Extension] {
        self.cert
            .tbs_certificate()
            .extensions()
            .map(|e| e.as_slice())
            .unwrap_or_default()
    }
    /// All extensions with this OID.
    pub fn extensions_with(
        &self,
        id: der::asn1::ObjectIdentifier,
    ) -> impl Iterator<Item = &Extension> {
        self.extensions().iter().filter(move |e| e.extn_id == id)
    }
    /// The single extension with this OID (`Err` if repeated).
    pub fn extension(
        &self,
        id: der::asn1::ObjectIdentifier,
    ) -> Result<Option<&Extension>, RepeatedExtension> {
        let mut it = self.extensions_with(id);
        let first = it.next();
        if it.next().is_some() {
            Err(RepeatedExtension)
        } else {
            Ok(first)
        }
    }
    /// Validity as Unix seconds.
    pub fn validity(&self) -> (u64, u64) {
        let v = self.cert.tbs_certificate().validity();
        let secs = |t: &x509_cert::time::Time| t.to_unix_duration().as_secs();
        (secs(&v.not_before), secs(&v.not_after))
    }
}

/// `name::same` over canonical forms that may already be known.
fn same<'a>(
    a: &[u8],
    b: &[u8],
    ca: impl FnOnce() -> Option<&'a [u8]>,
    cb: impl FnOnce() -> Option<&'a [u8]>,
) -> bool {
    a == b || matches!((ca(), cb()), (Some(x), Some(y)) if x == y)
}

/// An extension appears more than once (RFC 5280 §4.2 forbids it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RepeatedExtension;

/// A parsed bundle.
#[derive(Debug)]
pub struct ParsedBundle {
    /// Leaf first.
    pub certs: Vec<ParsedCert>,
    pub envelope: Envelope,
}

/// Step 1.
pub fn parse(bytes: &[u8]) -> Result<ParsedBundle, Error> {
    let bundle = Bundle::parse(bytes)?;
    let certs = bundle
        .certificates
        .into_iter()
        .enumerate()
        .map(|(i, der)| ParsedCert::from_der(der, i))
        .collect::<Result<Vec<_>, _>>()?;
    let envelope = cose::parse(&bundle.manifest)?;
    Ok(ParsedBundle { certs, envelope })
}
