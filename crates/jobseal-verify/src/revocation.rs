//! Revocation (`spec/jobseal.md` §5.1, §6.3 2d.8): every certificate a CA
//! issued (intermediate CAs and the EEC) is looked up in its issuer's CRLs,
//! `<issuer-hash>.r0`, `.r1`, … of the CA directory.
//!
//! CRLs are read lazily, per verification, for the issuers of the path
//! only. CRLs of the certificate's own issuer and key only, partitioned by
//! an issuing distribution point or not: delta, indirect and
//! reason-partitioned CRLs are refused (`chain.crl-invalid`), never half
//! understood.

use std::path::Path;
use std::sync::Arc;

use der::asn1::ObjectIdentifier;
use der::{Decode, Encode};
use jobseal_core::limits::{MAX_CRL_BYTES, MAX_CRL_FILES};
use jobseal_core::pem::parse_blocks;
use jobseal_core::time::UnixTime;
use jobseal_core::{Error, Reason, asn1, name, oid, tlv};
use x509_cert::crl::CertificateList;
use x509_cert::ext::Extension;
use x509_cert::ext::pkix::crl::dp::IssuingDistributionPoint;
use x509_cert::ext::pkix::name::{DistributionPointName, GeneralName};
use x509_cert::ext::pkix::{
    AuthorityKeyIdentifier, BasicConstraints, CrlDistributionPoints, SubjectKeyIdentifier,
};

use crate::fsread::CachedFile;
use crate::parse::ParsedCert;
use crate::path::PathOptions;
use crate::sig::{self, Signer};
use crate::trust::{CaFileError, TrustStore};

/// What to do about CRLs (a [`crate::Config`] setting).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum CrlPolicy {
    /// Check the CRLs an issuer publishes in the CA directory; deny if one
    /// has expired or none covers the certificate. An issuer without a CRL
    /// file is accepted.
    #[default]
    RequireIfPublished,
    /// As `RequireIfPublished`, and an issuer without a CRL denies
    /// (`chain.crl-missing`).
    Require,
    /// Read no CRLs (revoked certificates are accepted).
    Ignore,
}

const CRL_NUMBER: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.29.20");
const DELTA_CRL_INDICATOR: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.29.27");
const ISSUING_DISTRIBUTION_POINT: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.29.28");
const CRL_DISTRIBUTION_POINTS: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.29.31");
/// keyUsage cRLSign (RFC 5280 §4.2.1.3 bit 6).
const KU_CRL_SIGN: u16 = 1 << 6;

fn invalid(msg: impl Into<String>) -> Error {
    Error::new(Reason::ChainCrlInvalid, msg)
}

/// A CRL that was parsed, belongs to the issuer and verified.
#[derive(Debug)]
struct Crl {
    list: Arc<CertificateList>,
    this_update: u64,
    /// Its cRLNumber as a comparable key (length, then big-endian bytes,
    /// leading zeros dropped); empty if absent.
    number: (usize, Vec<u8>),
    next_update: u64,
    /// Its issuingDistributionPoint, if any.
    idp: Option<IssuingDistributionPoint>,
}

/// A name a distribution point can be compared by: a directory name in
/// canonical form (§5), any other general name as encoded.
#[derive(Debug, PartialEq, Eq)]
enum DpName {
    Dir(Vec<u8>),
    Other(Vec<u8>),
}

fn dir_key(name_der: &[u8]) -> DpName {
    DpName::Dir(name::canonical(name_der).unwrap_or_else(|| name_der.to_vec()))
}

fn general_names(names: &[GeneralName]) -> Vec<DpName> {
    names
        .iter()
        .filter_map(|g| match g {
            GeneralName::DirectoryName(n) => n.to_der().ok().map(|d| dir_key(&d)),
            other => other.to_der().ok().map(DpName::Other),
        })
        .collect()
}

/// The names of a distribution point; a name relative to the CRL issuer
/// is that issuer's name with one more RDN.
fn dp_names(dp: &DistributionPointName, crl_issuer: &[u8]) -> Vec<DpName> {
    match dp {
        DistributionPointName::FullName(names) => general_names(names),
        DistributionPointName::NameRelativeToCRLIssuer(rdn) => {
            let (Some(seq), Ok(rdn)) = (tlv::read_all(crl_issuer), rdn.to_der()) else {
                return Vec::new();
            };
            let mut full = tlv::header(0x30, seq.value.len() + rdn.len());
            full.extend_from_slice(seq.value);
            full.extend_from_slice(&rdn);
            vec![dir_key(&full)]
        }
    }
}

/// Whether a CRL with this issuing distribution point covers `cert` (RFC
/// 5280 §6.3.3 (b)): its scope (user or CA certificates) and, if it names a
/// distribution point, one of the certificate's cRLDistributionPoints (or,
/// without that extension, the issuer's name).
fn covers(idp: &IssuingDistributionPoint, cert: &ParsedCert, issuer: &[u8]) -> Result<bool, Error> {
    let is_ca = match cert.extension(oid::BASIC_CONSTRAINTS) {
        Ok(Some(e)) => BasicConstraints::from_der(e.extn_value.as_bytes()).is_ok_and(|b| b.ca),
        _ => false,
    };
    if idp.only_contains_attribute_certs
        || (idp.only_contains_user_certs && is_ca)
        || (idp.only_contains_ca_certs && !is_ca)
    {
        return Ok(false);
    }
    let Some(dp) = &idp.distribution_point else {
        return Ok(true);
    };
    let wanted = dp_names(dp, issuer);
    let dn = cert.subject_dn();
    let cert_names: Vec<DpName> = match cert.extension(CRL_DISTRIBUTION_POINTS) {
        Ok(None) => vec![dir_key(issuer)],
        Ok(Some(e)) => CrlDistributionPoints::from_der(e.extn_value.as_bytes())
            .map_err(|_| {
                Error::new(
                    Reason::CertMalformed,
                    format!("{dn} has a malformed cRLDistributionPoints"),
                )
            })?
            .0
            .iter()
            .flat_map(|p| match (&p.distribution_point, &p.crl_issuer) {
                (Some(name), _) => dp_names(name, issuer),
                (None, Some(names)) => general_names(names),
                (None, None) => Vec::new(),
            })
            .collect(),
        Err(_) => {
            return Err(Error::new(
                Reason::CertMalformed,
                format!("{dn} repeats cRLDistributionPoints"),
            ));
        }
    };
    Ok(wanted.iter().any(|w| cert_names.contains(w)))
}

/// The CRLs of a file: its PEM `X509 CRL` blocks, or the file itself as DER.
fn crls_in(data: &[u8]) -> Vec<Vec<u8>> {
    match parse_blocks(data) {
        Ok(blocks) if !blocks.is_empty() => blocks
            .into_iter()
            .filter(|b| b.label == "X509 CRL")
            .map(|b| b.der)
            .collect(),
        _ => vec![data.to_vec()],
    }
}

/// Parse a DER CRL. A v1 CRL (no version field) is given an explicit v1
/// version for x509-cert, which requires the field; its signature is still
/// verified over the bytes as they came.
fn parse_crl(der: &[u8]) -> Result<(CertificateList, tlv::RawCrl<'_>), String> {
    let raw = tlv::RawCrl::split(der).ok_or("not a DER CRL")?;
    let list = if raw.has_version {
        CertificateList::from_der(der).map_err(|e| e.to_string())?
    } else {
        let outer = tlv::read_all(der).ok_or("not a DER CRL")?;
        let (tbs, rest) = tlv::read(outer.value).ok_or("not a DER CRL")?;
        let mut tbs_v1 = tlv::header(0x30, tbs.value.len() + 3);
        tbs_v1.extend_from_slice(&[0x02, 0x01, 0x00]);
        tbs_v1.extend_from_slice(tbs.value);
        let mut whole = tlv::header(0x30, tbs_v1.len() + rest.len());
        whole.extend_from_slice(&tbs_v1);
        whole.extend_from_slice(rest);
        CertificateList::from_der(&whole).map_err(|e| e.to_string())?
    };
    Ok((list, raw))
}

/// Whether the CRL's authority key identifier names another key than the
/// issuer's subject key identifier (a same-name CA of a key rollover).
fn other_key(list: &CertificateList, issuer: &ParsedCert, what: &str) -> Result<bool, Error> {
    let exts = list
        .tbs_cert_list
        .crl_extensions
        .as_deref()
        .unwrap_or_default();
    let Some(aki) = exts.iter().find(|e| e.extn_id == oid::AUTHORITY_KEY_ID) else {
        return Ok(false);
    };
    let aki = AuthorityKeyIdentifier::from_der(aki.extn_value.as_bytes())
        .map_err(|_| invalid(format!("{what} has a malformed authorityKeyIdentifier")))?;
    let ski = match issuer.extension(oid::SUBJECT_KEY_ID) {
        Ok(Some(e)) => SubjectKeyIdentifier::from_der(e.extn_value.as_bytes()).ok(),
        _ => None,
    };
    Ok(match (aki.key_identifier, ski) {
        (Some(a), Some(s)) => a.as_bytes() != s.0.as_bytes(),
        _ => false,
    })
}

/// The cRLNumber of a CRL (RFC 5280 §5.2.3: a non-negative INTEGER) as a
/// key that orders like the number.
fn crl_number(exts: &[Extension], what: &str) -> Result<(usize, Vec<u8>), Error> {
    let Some(e) = exts.iter().find(|e| e.extn_id == CRL_NUMBER) else {
        return Ok((0, Vec::new()));
    };
    let n = der::asn1::Int::from_der(e.extn_value.as_bytes())
        .map_err(|_| invalid(format!("{what} has a malformed cRLNumber")))?;
    let bytes = n.as_bytes();
    if bytes.first().is_some_and(|b| b & 0x80 != 0) {
        return Err(invalid(format!("{what} has a negative cRLNumber")));
    }
    let digits: Vec<u8> = bytes.iter().copied().skip_while(|b| *b == 0).collect();
    Ok((digits.len(), digits))
}

fn check_extensions(exts: &[Extension], what: &str, entry: bool) -> Result<(), Error> {
    for (i, e) in exts.iter().enumerate() {
        if exts.iter().skip(i + 1).any(|o| o.extn_id == e.extn_id) {
            return Err(invalid(format!("{what} repeats extension {}", e.extn_id)));
        }
        if e.extn_id == DELTA_CRL_INDICATOR {
            return Err(invalid(format!(
                "{what} is a delta CRL; delta CRLs are not supported"
            )));
        }
        // CRL number, authority key identifier and issuing distribution
        // point are processed; no entry extension is (a critical
        // certificateIssuer would make the CRL indirect).
        let handled = !entry
            && (e.extn_id == CRL_NUMBER
                || e.extn_id == oid::AUTHORITY_KEY_ID
                || e.extn_id == ISSUING_DISTRIBUTION_POINT);
        if e.critical && !handled {
            return Err(invalid(format!(
                "{what} carries critical {}extension {}, which is not supported",
                if entry { "entry " } else { "" },
                e.extn_id
            )));
        }
    }
    Ok(())
}

/// Check one CRL that names the issuer: structure, signature, extensions
/// and thisUpdate. Its expiry and entries are judged by the caller.
fn validate(
    list: Arc<CertificateList>,
    raw: &tlv::RawCrl<'_>,
    issuer: &ParsedCert,
    what: &str,
    opts: &PathOptions,
) -> Result<Crl, Error> {
    let tbs = &list.tbs_cert_list;
    let entries = tbs.revoked_certificates.as_deref().unwrap_or_default();
    let has_extensions =
        tbs.crl_extensions.is_some() || entries.iter().any(|r| r.crl_entry_extensions.is_some());
    match (raw.has_version, tbs.version) {
        (true, x509_cert::Version::V2) => {}
        (false, _) if !has_extensions => {}
        _ => return Err(invalid(format!("{what} has an invalid version"))),
    }
    if tbs.signature != list.signature_algorithm {
        return Err(invalid(format!(
            "{what}: the two signature algorithm fields differ"
        )));
    }
    let issuer_ku = match issuer.extension(oid::KEY_USAGE) {
        Ok(None) => None,
        Ok(Some(e)) => asn1::key_usage_bits(e.extn_value.as_bytes()),
        Err(_) => None,
    };
    if issuer_ku.is_some_and(|k| k & KU_CRL_SIGN == 0) {
        return Err(invalid(format!(
            "{what}: its issuer {} may not sign CRLs (keyUsage without cRLSign)",
            issuer.subject_dn()
        )));
    }
    let signature = list
        .signature
        .as_bytes()
        .ok_or_else(|| invalid(format!("{what}: the signature is not whole bytes")))?;
    sig::verify_certificate(
        &list.signature_algorithm,
        issuer.spki(),
        raw.tbs,
        signature,
        what,
        &opts.algorithms,
        Signer::Ca,
    )
    .map_err(|e| invalid(format!("{what} cannot be trusted: {}", e.message)))?;
    check_extensions(
        tbs.crl_extensions.as_deref().unwrap_or_default(),
        what,
        false,
    )?;
    for entry in entries {
        check_extensions(
            entry.crl_entry_extensions.as_deref().unwrap_or_default(),
            what,
            true,
        )?;
    }
    let this_update = tbs.this_update.to_unix_duration().as_secs();
    let next_update = tbs
        .next_update
        .map(|t| t.to_unix_duration().as_secs())
        .ok_or_else(|| invalid(format!("{what} has no nextUpdate")))?;
    if next_update < this_update {
        return Err(invalid(format!("{what}: nextUpdate is before thisUpdate")));
    }
    let idp = match tbs
        .crl_extensions
        .as_deref()
        .unwrap_or_default()
        .iter()
        .find(|e| e.extn_id == ISSUING_DISTRIBUTION_POINT)
    {
        None => None,
        Some(e) => {
            let idp = IssuingDistributionPoint::from_der(e.extn_value.as_bytes())
                .map_err(|_| invalid(format!("{what} has a malformed issuingDistributionPoint")))?;
            if idp.indirect_crl {
                return Err(invalid(format!(
                    "{what} is an indirect CRL, which is not supported"
                )));
            }
            if idp.only_some_reasons.is_some() {
                return Err(invalid(format!(
                    "{what} covers only some revocation reasons, which is not supported"
                )));
            }
            let scopes = [
                idp.only_contains_user_certs,
                idp.only_contains_ca_certs,
                idp.only_contains_attribute_certs,
            ];
            if scopes.iter().filter(|b| **b).count() > 1 {
                return Err(invalid(format!(
                    "{what}: its issuingDistributionPoint asserts more than one scope"
                )));
            }
            Some(idp)
        }
    };
    let number = crl_number(tbs.crl_extensions.as_deref().unwrap_or_default(), what)?;
    Ok(Crl {
        list,
        this_update,
        number,
        next_update,
        idp,
    })
}

/// Step 2d.8 for a certificate a CA issued (intermediate CA or EEC);
/// `above` holds its issuer first (the anchor or an intermediate CA).
pub fn check(
    cert: &ParsedCert,
    above: &[&ParsedCert],
    trust: &TrustStore,
    opts: &PathOptions,
) -> Result<(), Error> {
    if trust.crl == CrlPolicy::Ignore {
        return Ok(());
    }
    let issuer = above
        .first()
        .ok_or_else(|| Error::new(Reason::Internal, "revocation check without an issuer"))?;
    // Names are only spelled out for a deny: not built on the common path.
    let issuer_dn = || issuer.subject_dn();
    // The CRLs of the issuer that apply to this certificate, and whether
    // the issuer publishes any CRL under its name at all.
    let mut crls: Vec<(String, Crl)> = Vec::new();
    let mut published = false;
    if let Some(hash) = issuer.subject_hash() {
        for i in 0..MAX_CRL_FILES {
            let (path, data) = match trust.read_file(hash, &format!("r{i}"), MAX_CRL_BYTES) {
                Ok(Some(found)) => found,
                Ok(None) => break,
                Err((path, CaFileError::TooLarge)) => {
                    return Err(Error::new(
                        Reason::LimitExceeded,
                        format!(
                            "the CRL file {} is larger than {MAX_CRL_BYTES} bytes",
                            path.display()
                        ),
                    ));
                }
                Err((path, CaFileError::Unreadable(e) | CaFileError::Missing(e))) => {
                    return Err(invalid(format!(
                        "the CRL file {} cannot be read: {e}",
                        path.display()
                    )));
                }
            };
            published |= read_file(&path, hash, &data, cert, issuer, opts, &mut crls)?;
        }
    }
    let serial = cert.cert.tbs_certificate().serial_number();
    let dn = || cert.subject_dn();
    for (what, crl) in &crls {
        let entries = crl.list.tbs_cert_list.revoked_certificates.as_deref();
        if let Some(r) = entries
            .unwrap_or_default()
            .iter()
            .find(|r| r.serial_number == *serial)
        {
            return Err(Error::new(
                Reason::ChainRevoked,
                format!(
                    "{} was revoked by {} on {} ({what})",
                    dn(),
                    issuer_dn(),
                    UnixTime(r.revocation_date.to_unix_duration().as_secs()).to_rfc3339()
                ),
            ));
        }
    }
    check_current(&crls, opts, issuer_dn)?;
    if crls.is_empty() && published {
        // Published, but for another key or another scope: nothing says
        // this certificate is not revoked.
        return Err(Error::new(
            Reason::ChainCrlMissing,
            format!(
                "no CRL of {} covers {} (other key or scope)",
                issuer_dn(),
                dn()
            ),
        ));
    }
    if crls.is_empty() && trust.crl == CrlPolicy::Require {
        return Err(Error::new(
            Reason::ChainCrlMissing,
            format!(
                "{} has no CRL in {} and the configuration requires one",
                issuer_dn(),
                trust.dir().display()
            ),
        ));
    }
    Ok(())
}

/// The CRLs that cover a certificate must include a current one: valid at
/// `t` (its thisUpdate, less the skew, passed; its nextUpdate not). An old
/// CRL beside a current one (a file a tool left behind) does not deny;
/// only when none is current does the freshest say why.
fn check_current(
    crls: &[(String, Crl)],
    opts: &PathOptions,
    issuer_dn: impl Fn() -> String,
) -> Result<(), Error> {
    let at = opts.at.0;
    let is_current =
        |c: &Crl| opts.at.plus(opts.clock_skew).0 >= c.this_update && at <= c.next_update;
    if crls.is_empty() || crls.iter().any(|(_, c)| is_current(c)) {
        return Ok(());
    }
    // The freshest: latest thisUpdate, then highest cRLNumber, then latest
    // nextUpdate.
    let freshest = crls
        .iter()
        .max_by_key(|(_, c)| (c.this_update, &c.number, c.next_update))
        .ok_or_else(|| Error::new(Reason::Internal, "no CRL to judge"))?;
    let (what, crl) = freshest;
    if at > crl.next_update {
        return Err(Error::new(
            Reason::ChainCrlExpired,
            format!(
                "{what} of {} expired at {} (nextUpdate) and no current CRL is beside it; the CRL must be refreshed (fetch-crl)",
                issuer_dn(),
                UnixTime(crl.next_update).to_rfc3339()
            ),
        ));
    }
    Err(invalid(format!(
        "{what} is not valid before {} and no current CRL is beside it",
        UnixTime(crl.this_update).to_rfc3339()
    )))
}

/// The CRLs of one file, decoded: each DER of [`crls_in`] with what
/// [`parse_crl`] made of it. A function of the file's bytes: kept with them
/// ([`CachedFile::parsed`]) while the file is unchanged.
struct FileCrls(Vec<(Vec<u8>, DecodedCrl)>);

/// One CRL as [`parse_crl`] read it, or why it could not.
type DecodedCrl = Result<Arc<CertificateList>, String>;

fn decode_file(data: &[u8]) -> FileCrls {
    FileCrls(
        crls_in(data)
            .into_iter()
            .map(|der| {
                let list = parse_crl(&der).map(|(list, _)| Arc::new(list));
                (der, list)
            })
            .collect(),
    )
}

/// Validate the CRLs of one file that `issuer` published into `out`, those
/// that cover `cert`; returns whether the file holds any CRL of the issuer's
/// name.
fn read_file(
    path: &Path,
    hash: u32,
    file: &CachedFile,
    cert: &ParsedCert,
    issuer: &ParsedCert,
    opts: &PathOptions,
    out: &mut Vec<(String, Crl)>,
) -> Result<bool, Error> {
    let decoded = file.parsed(decode_file);
    let ders = &decoded.0;
    if ders.is_empty() {
        return Err(invalid(format!("{} holds no CRL", path.display())));
    }
    let count = ders.len();
    let mut published = false;
    for (n, (der, list)) in ders.iter().enumerate() {
        let what = if count == 1 {
            format!("the CRL {}", path.display())
        } else {
            format!("CRL {} of {}", n + 1, path.display())
        };
        // `parse_crl` split the same bytes when it decoded them.
        let (list, raw) = match (list, tlv::RawCrl::split(der)) {
            (Ok(list), Some(raw)) => (list.clone(), raw),
            (Err(e), _) => return Err(invalid(format!("{what} is malformed: {e}"))),
            (Ok(_), None) => return Err(invalid(format!("{what} is malformed: not a DER CRL"))),
        };
        // Files are named by hash: a CRL of another name under it is
        // misplaced (or damaged), unless the two names share the hash.
        if name::openssl_hash(raw.issuer) != Some(hash) {
            return Err(invalid(format!(
                "{what} is issued by {}, whose subject hash is not {hash:08x}",
                name::to_slash_string(raw.issuer)
            )));
        }
        // CRLs of another CA with the same hash are not this issuer's, nor
        // are those of a same-name CA's other key.
        if !name::same(raw.issuer, issuer.subject()) {
            continue;
        }
        published = true;
        if other_key(&list, issuer, &what)? {
            continue;
        }
        let crl = validate(list, &raw, issuer, &what, opts)?;
        let in_scope = match &crl.idp {
            Some(idp) => covers(idp, cert, issuer.subject())?,
            None => true,
        };
        if in_scope {
            out.push((what, crl));
        }
    }
    Ok(published)
}
