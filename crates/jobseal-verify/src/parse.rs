//! Step 1: parse the bundle, its certificates and the COSE envelope.

use der::Decode;
use jobseal_core::bundle::Bundle;
use jobseal_core::cose::{self, Envelope};
use jobseal_core::{Error, Reason, name, tlv};
use std::collections::HashMap;
use std::sync::{Arc, OnceLock, RwLock};
use x509_cert::Certificate;
use x509_cert::ext::Extension;

/// A certificate with the raw bytes the checks need.
///
/// Clones share the decoded certificate and the names derived from it
/// (computed once, on first use), so a certificate kept parsed across checks
/// (trust anchors, [`CertCache`]) keeps them too.
#[derive(Debug, Clone)]
pub struct ParsedCert {
    pub der: Vec<u8>,
    pub cert: Arc<Certificate>,
    /// Byte ranges into `der`.
    tbs: std::ops::Range<usize>,
    issuer: std::ops::Range<usize>,
    subject: std::ops::Range<usize>,
    spki: std::ops::Range<usize>,
    names: Arc<Names>,
}

/// What the checks derive from a certificate's names, again and again:
/// canonical forms (§5), subject hashes, `/`-form strings. Each is computed
/// on first use; all are functions of the DER alone.
#[derive(Debug, Default)]
struct Names {
    subject_canon: OnceLock<Option<Vec<u8>>>,
    issuer_canon: OnceLock<Option<Vec<u8>>>,
    subject_hash: OnceLock<Option<u32>>,
    issuer_hash: OnceLock<Option<u32>>,
    subject_dn: OnceLock<String>,
    issuer_dn: OnceLock<String>,
    /// The subject's last RDN, if it is a single CN, and whether the rest
    /// of the subject names the issuer (a proxy's subject, RFC 3820 §3.4).
    last_cn: OnceLock<Option<(String, bool)>>,
    /// The subject has no RDN (or cannot be read as RDNs).
    subject_empty: OnceLock<bool>,
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
        let cert = Certificate::from_der(&der).map_err(|e| malformed(&why_unreadable(&der, e)))?;
        let raw = tlv::RawCert::split(&der).ok_or_else(|| malformed(&"cannot locate its parts"))?;
        check_profile(&cert).map_err(|why| malformed(&why))?;
        // A name is an identity: one whose strings cannot be read as text
        // is refused (as OpenSSL refuses to load it), never shown vaguely.
        let names = Names::default();
        for (field, value, canon) in [
            ("issuer", raw.issuer, &names.issuer_canon),
            ("subject", raw.subject, &names.subject_canon),
        ] {
            let form = name::canonical(value);
            if form.is_none() {
                return Err(malformed(&format_args!(
                    "its {field} name holds a value that is not valid text for its string type"
                )));
            }
            let _ = canon.set(form);
        }
        let (tbs, issuer, subject, spki) = (
            range_of(&der, raw.tbs),
            range_of(&der, raw.issuer),
            range_of(&der, raw.subject),
            range_of(&der, raw.spki),
        );
        Ok(Self {
            der,
            cert: Arc::new(cert),
            tbs,
            issuer,
            subject,
            spki,
            names: Arc::new(names),
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
        self.names
            .subject_canon
            .get_or_init(|| name::canonical(self.subject()))
            .as_deref()
    }
    /// The canonical form of the issuer (`None` if it has none).
    pub fn issuer_canonical(&self) -> Option<&[u8]> {
        self.names
            .issuer_canon
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
    /// `name::openssl_hash(self.subject())`, computed once.
    pub fn subject_hash(&self) -> Option<u32> {
        *self.names.subject_hash.get_or_init(|| {
            self.subject_canonical()
                .and_then(name::openssl_hash_of_canonical)
        })
    }
    /// `name::openssl_hash(self.issuer())`, computed once.
    pub fn issuer_hash(&self) -> Option<u32> {
        *self.names.issuer_hash.get_or_init(|| {
            self.issuer_canonical()
                .and_then(name::openssl_hash_of_canonical)
        })
    }
    /// The subject in `/DC=…/CN=…` form.
    pub fn subject_dn(&self) -> String {
        self.subject_dn_str().to_string()
    }
    /// The subject in `/DC=…/CN=…` form, computed once.
    pub fn subject_dn_str(&self) -> &str {
        self.names
            .subject_dn
            .get_or_init(|| name::to_slash_string(self.subject()))
    }
    /// The issuer in `/DC=…/CN=…` form, computed once.
    pub fn issuer_dn_str(&self) -> &str {
        self.names
            .issuer_dn
            .get_or_init(|| name::to_slash_string(self.issuer()))
    }
    /// `name::split_last_cn(self.subject())`: the last CN, and whether the
    /// subject without it is the issuer (`name::same`); computed once.
    pub fn last_cn(&self) -> Option<(&str, bool)> {
        self.names
            .last_cn
            .get_or_init(|| {
                let (parent, cn) = name::split_last_cn(self.subject())?;
                let is_issuer = parent == self.issuer()
                    || matches!(
                        (name::canonical(&parent), self.issuer_canonical()),
                        (Some(x), Some(y)) if x == y
                    );
                Some((cn, is_issuer))
            })
            .as_ref()
            .map(|(cn, is_issuer)| (cn.as_str(), *is_issuer))
    }
    /// `name::rdns(self.subject())` gives no RDN (or fails); computed once.
    pub fn subject_is_empty(&self) -> bool {
        *self
            .names
            .subject_empty
            .get_or_init(|| name::rdns(self.subject()).is_none_or(|r| r.is_empty()))
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

/// RFC 5280 rules x509-cert does not enforce, on which readers would
/// otherwise disagree about what a certificate says (§6.2 1e).
fn check_profile(cert: &Certificate) -> Result<(), &'static str> {
    let tbs = cert.tbs_certificate();
    // §4.1.2.9: extensions only in v3; §4.1.2.8: unique identifiers not in v1.
    if tbs.extensions().is_some() && tbs.version() != x509_cert::Version::V3 {
        return Err("it carries extensions but is not a version 3 certificate");
    }
    if tbs.version() == x509_cert::Version::V1
        && (tbs.issuer_unique_id().is_some() || tbs.subject_unique_id().is_some())
    {
        return Err("it carries unique identifiers but is a version 1 certificate");
    }
    // §4.1.2.2: at most 20 octets (a leading zero octet that only keeps it
    // positive is not one of them). Zero and negative serials are refused
    // on proxies only (path.rs): IGTF roots and CAs of the field use them.
    let serial = tbs.serial_number().as_bytes();
    if serial.strip_prefix(&[0]).unwrap_or(serial).len() > 20 {
        return Err("its serial number is longer than 20 octets");
    }
    Ok(())
}

/// Why x509-cert could not decode a certificate, naming the field where a
/// known cause can be found.
fn why_unreadable(der: &[u8], e: der::Error) -> String {
    const UNIVERSAL_STRING: u8 = 0x1c;
    if let Some(raw) = tlv::RawCert::split(der) {
        for (field, value) in [("issuer", raw.issuer), ("subject", raw.subject)] {
            let universal = name::rdns(value).is_some_and(|rdns| {
                rdns.iter()
                    .flatten()
                    .any(|a| a.value.tag == UNIVERSAL_STRING)
            });
            if universal {
                return format!(
                    "its {field} name holds a UniversalString, which is not supported (UTF8String is)"
                );
            }
        }
    }
    e.to_string()
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
    parse_with(bytes, None)
}

/// Step 1, taking the certificates above the leaf from `cache` when they
/// were parsed before (the leaf, a job-bound proxy, is new for every job).
pub(crate) fn parse_with(bytes: &[u8], cache: Option<&CertCache>) -> Result<ParsedBundle, Error> {
    let bundle = Bundle::parse(bytes)?;
    let certs = bundle
        .certificates
        .into_iter()
        .enumerate()
        .map(|(i, der)| match cache {
            Some(c) if i > 0 => c.parse(der, i),
            _ => ParsedCert::from_der(der, i),
        })
        .collect::<Result<Vec<_>, _>>()?;
    let envelope = cose::parse(&bundle.manifest)?;
    Ok(ParsedBundle { certs, envelope })
}

/// Most certificates one [`CertCache`] keeps; past it the cache is emptied.
const MAX_CACHED_CERTS: usize = 1024;
/// Most DER bytes one [`CertCache`] keeps; past it the cache is emptied.
const MAX_CACHED_CERT_BYTES: usize = 4 * 1024 * 1024;

/// Certificates that recur from check to check (the user certificate, its
/// proxies, the AA certificate of a VOMS AC), kept parsed. Keyed by the
/// whole DER, compared byte for byte: a hit is the certificate that would
/// be parsed, with the names already derived. Only certificates that parse
/// are kept. Per verifier (no global state).
#[derive(Default)]
pub(crate) struct CertCache(RwLock<(HashMap<Vec<u8>, ParsedCert>, usize)>);

impl std::fmt::Debug for CertCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let n = self.0.read().map(|m| m.0.len()).unwrap_or(0);
        write!(f, "CertCache({n} certificates)")
    }
}

impl CertCache {
    /// [`ParsedCert::from_der`], from the cache when this DER was parsed.
    pub(crate) fn parse(&self, der: Vec<u8>, index: usize) -> Result<ParsedCert, Error> {
        // A poisoned lock only costs the cache, never a decision.
        if let Ok(map) = self.0.read()
            && let Some(hit) = map.0.get(&der)
        {
            return Ok(hit.clone());
        }
        let parsed = ParsedCert::from_der(der, index)?;
        if let Ok(mut map) = self.0.write() {
            let size = parsed.der.len();
            if map.0.len() >= MAX_CACHED_CERTS || map.1.saturating_add(size) > MAX_CACHED_CERT_BYTES
            {
                map.0.clear();
                map.1 = 0;
            }
            if map.0.insert(parsed.der.clone(), parsed.clone()).is_none() {
                map.1 = map.1.saturating_add(size);
            }
        }
        Ok(parsed)
    }
}
