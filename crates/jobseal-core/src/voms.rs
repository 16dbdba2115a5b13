//! Reading VOMS attribute certificates (RFC 5755 ACs in extension
//! 1.3.6.1.4.1.8005.100.100.5).
//!
//! Two readers: [`parse_ac_seq`]/[`from_certificate`], lenient, for display
//! and lifetime checks (`jobseal inspect`, the issuer's credential checks);
//! and [`split_ac_seq`]/[`parse_ac`], strict, which read everything the
//! verifier checks (`spec/jobseal.md` §6.3a). Neither verifies a signature:
//! nothing here may be used as an authorisation attribute on its own.

use crate::name;
use crate::time::UnixTime;
use crate::tlv::{self, Tlv};

/// `1.3.6.1.4.1.8005.100.100.4`, the VOMS FQAN attribute (contents bytes).
const VOMS_ATTRIBUTE: &[u8] = &[0x2b, 0x06, 0x01, 0x04, 0x01, 0xbe, 0x45, 0x64, 0x64, 0x04];

/// What a VOMS AC says, unverified.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VomsAc {
    /// The VO, from the policy authority `vo://host:port`.
    pub vo: String,
    /// The AA's host and port, from the policy authority.
    pub server: String,
    /// FQANs in the order the AA issued them (the first is the primary).
    pub fqans: Vec<String>,
    /// The AC issuer (the AA), `/DC=…` form.
    pub issuer: String,
    pub not_before: UnixTime,
    pub not_after: UnixTime,
}

/// Parse the value of a VOMS AC sequence extension.
pub fn parse_ac_seq(ext_value: &[u8]) -> Option<Vec<VomsAc>> {
    let outer = tlv::read_all(ext_value)?;
    let [acs] = tlv::children(outer.value)?.try_into().ok()?;
    tlv::children(acs.value)?.iter().map(read_lenient).collect()
}

fn read_lenient(ac: &Tlv<'_>) -> Option<VomsAc> {
    let parts = tlv::children(ac.value)?;
    let info = parts.first()?;
    let fields = tlv::children(info.value)?;
    // version, holder, issuer, signature, serial, validity, attributes, ...
    let issuer = fields.get(2)?;
    let validity = fields.get(5)?;
    let attributes = fields.get(6)?;
    let issuer_dn =
        ac_issuer_name(issuer).map_or_else(|| "<unknown>".into(), name::to_slash_string);
    let times = tlv::children(validity.value)?;
    let not_before = generalized_time(times.first()?)?;
    let not_after = generalized_time(times.get(1)?)?;
    let mut vo = String::new();
    let mut server = String::new();
    let mut fqans = Vec::new();
    for attr in tlv::children(attributes.value)? {
        let a = tlv::children(attr.value)?;
        let (oid, values) = (a.first()?, a.get(1)?);
        if oid.value != VOMS_ATTRIBUTE {
            continue;
        }
        for ietf in tlv::children(values.value)? {
            // IetfAttrSyntax ::= SEQUENCE { policyAuthority [0] GeneralNames OPTIONAL,
            //                               values SEQUENCE OF CHOICE {...} }
            for part in tlv::children(ietf.value)? {
                match part.tag {
                    0xa0 => {
                        for gn in tlv::children(part.value)? {
                            // uniformResourceIdentifier [6] IA5String: "vo://host:port"
                            if gn.tag == 0x86 {
                                let uri = std::str::from_utf8(gn.value).ok()?;
                                if let Some((v, s)) = uri.split_once("://") {
                                    vo = v.to_string();
                                    server = s.to_string();
                                }
                            }
                        }
                    }
                    0x30 => {
                        for v in tlv::children(part.value)? {
                            if matches!(v.tag, 0x04 | 0x0c) {
                                fqans.push(String::from_utf8_lossy(v.value).into_owned());
                            }
                        }
                    }
                    _ => {}
                }
            }
        }
    }
    Some(VomsAc {
        vo,
        server,
        fqans,
        issuer: issuer_dn,
        not_before,
        not_after,
    })
}

/// Read one AC (its DER) leniently, as [`parse_ac_seq`] does.
pub fn read_ac_lenient(der: &[u8]) -> Option<VomsAc> {
    read_lenient(&tlv::read_all(der)?)
}

/// The AA's name from `AttCertIssuer` (v2Form [0] { issuerName GeneralNames }).
fn ac_issuer_name<'a>(issuer: &Tlv<'a>) -> Option<&'a [u8]> {
    let mut node = *issuer;
    // Descend through v2Form / GeneralNames to the first directoryName [4].
    for _ in 0..4 {
        let children = tlv::children(node.value)?;
        let first = *children.first()?;
        if first.tag == 0xa4 {
            return Some(tlv::children(first.value)?.first()?.raw);
        }
        node = first;
    }
    None
}

fn generalized_time(t: &Tlv<'_>) -> Option<UnixTime> {
    let s = std::str::from_utf8(t.value).ok()?;
    let (digits, year_len) = match t.tag {
        0x18 => (s.strip_suffix('Z')?, 4),
        0x17 => (s.strip_suffix('Z')?, 2),
        _ => return None,
    };
    if !digits.bytes().all(|b| b.is_ascii_digit()) || digits.len() != year_len + 10 {
        return None;
    }
    let n = |r: std::ops::Range<usize>| digits.get(r).and_then(|x| x.parse::<u16>().ok());
    let mut year = n(0..year_len)?;
    if year_len == 2 {
        year += if year >= 50 { 1900 } else { 2000 };
    }
    let o = year_len;
    let b = |r: std::ops::Range<usize>| n(r).and_then(|v| u8::try_from(v).ok());
    let dt = der::DateTime::new(
        year,
        b(o..o + 2)?,
        b(o + 2..o + 4)?,
        b(o + 4..o + 6)?,
        b(o + 6..o + 8)?,
        b(o + 8..o + 10)?,
    )
    .ok()?;
    Some(UnixTime(dt.unix_duration().as_secs()))
}

/// Find and parse the VOMS ACs of a certificate, if it carries any.
pub fn from_certificate(cert: &x509_cert::Certificate) -> Option<Vec<VomsAc>> {
    let ext = cert
        .tbs_certificate()
        .extensions()?
        .iter()
        .find(|e| e.extn_id == crate::oid::VOMS_AC_SEQ)?;
    parse_ac_seq(ext.extn_value.as_bytes())
}

// ---------------------------------------------------------------------------
// The strict reader (`spec/jobseal.md` §6.3a).

/// Most ACs a verifier examines per bundle, over every proxy.
pub const MAX_ACS: usize = 8;
/// Largest VOMS extension value a verifier examines.
pub const MAX_AC_SEQ_BYTES: usize = 32 * 1024;
/// Most certificates one AC may carry in its AC-certs extension.
pub const MAX_AC_CERTS: usize = 4;

// OID contents bytes of the AC extensions the verifier processes.
const OID_AC_CERTS: &[u8] = &[0x2b, 0x06, 0x01, 0x04, 0x01, 0xbe, 0x45, 0x64, 0x64, 0x0a];
const OID_GENERIC_ATTRIBUTES: &[u8] = &[0x2b, 0x06, 0x01, 0x04, 0x01, 0xbe, 0x45, 0x64, 0x64, 0x0b];
const OID_TARGETING: &[u8] = &[0x55, 0x1d, 0x37];
const OID_NO_REV_AVAIL: &[u8] = &[0x55, 0x1d, 0x38];
const OID_AUTHORITY_KEY_ID: &[u8] = &[0x55, 0x1d, 0x23];

const SEQUENCE: u8 = 0x30;
const SET: u8 = 0x31;
const INTEGER: u8 = 0x02;
const BIT_STRING: u8 = 0x03;
const OCTET_STRING: u8 = 0x04;
const OID: u8 = 0x06;
const BOOLEAN: u8 = 0x01;
const GENERALIZED_TIME: u8 = 0x18;
const CTX0: u8 = 0xa0;
const CTX1: u8 = 0xa1;
const CTX2: u8 = 0xa2;
const DIRECTORY_NAME: u8 = 0xa4;
const URI: u8 = 0x86;

/// Why an AC cannot be examined.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AcError {
    /// Not DER, or not the VOMS profile of RFC 5755.
    Malformed(String),
    /// Beyond a limit of §6.3a: not examined.
    Limits(String),
}

fn bad(msg: impl Into<String>) -> AcError {
    AcError::Malformed(msg.into())
}

/// A VOMS generic attribute (AC extension 1.3.6.1.4.1.8005.100.100.11).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GenericAttribute {
    pub name: String,
    pub value: String,
    pub qualifier: String,
}

/// `IssuerSerial` of the holder's `baseCertificateID`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IssuerSerial {
    /// The directoryName entries of `issuer`, each a `Name` as encoded.
    pub names: Vec<Vec<u8>>,
    /// How many `issuer` entries are not directoryNames.
    pub other_names: usize,
    /// The serial number's INTEGER contents.
    pub serial: Vec<u8>,
    /// `issuerUID` (BIT STRING contents), if present.
    pub issuer_uid: Option<Vec<u8>>,
}

/// The AC's `Holder`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Holder {
    pub base_certificate_id: Option<IssuerSerial>,
    /// `entityName` or `objectDigestInfo` is present (VOMS uses neither).
    pub other_forms: bool,
}

/// A VOMS AC read strictly: every field the verifier checks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AttributeCertificate {
    /// The `AttributeCertificateInfo` element as encoded: what is signed.
    pub acinfo: Vec<u8>,
    /// The outer `signatureAlgorithm` element as encoded (the one inside
    /// `acinfo` is byte-identical, or the AC is malformed).
    pub signature_algorithm: Vec<u8>,
    pub signature: Vec<u8>,
    pub holder: Holder,
    /// The AA's name: the one directoryName of `v2Form.issuerName`.
    pub issuer: Vec<u8>,
    /// The AC serial's INTEGER contents.
    pub serial: Vec<u8>,
    pub not_before: UnixTime,
    pub not_after: UnixTime,
    /// From the policy authority `vo://host:port`.
    pub vo: String,
    pub host: String,
    pub port: String,
    /// FQANs in the AA's order; the first is the primary one.
    pub fqans: Vec<String>,
    pub generic_attributes: Vec<GenericAttribute>,
    /// The AC-certs extension: the AA certificate first, as encoded.
    pub ac_certs: Vec<Vec<u8>>,
    /// AC targeting (2.5.29.55): `Some(critical)` if present.
    pub targeting: Option<bool>,
    pub no_rev_avail: bool,
    /// `authorityKeyIdentifier`: `Some(keyIdentifier)` if present.
    pub authority_key_id: Option<Option<Vec<u8>>>,
    /// Dotted OIDs of critical extensions this reader does not process.
    pub unknown_critical: Vec<String>,
}

fn kids<'a>(t: &Tlv<'a>, tag: u8, what: &str) -> Result<Vec<Tlv<'a>>, AcError> {
    if t.tag != tag {
        return Err(bad(format!("{what}: unexpected tag {:#04x}", t.tag)));
    }
    tlv::children(t.value).ok_or_else(|| bad(format!("{what} is not DER")))
}

fn utf8(bytes: &[u8], what: &str) -> Result<String, AcError> {
    std::str::from_utf8(bytes)
        .map(str::to_string)
        .map_err(|_| bad(format!("{what} is not UTF-8")))
}

fn oid_text(contents: &[u8]) -> String {
    der::asn1::ObjectIdentifier::from_bytes(contents)
        .map_or_else(|_| "<malformed OID>".into(), |o| o.to_string())
}

/// The ACs of a VOMS extension value, each as encoded; refuses a value above
/// [`MAX_AC_SEQ_BYTES`] or holding more than [`MAX_ACS`] ACs before reading
/// any of them.
pub fn split_ac_seq(ext_value: &[u8]) -> Result<Vec<&[u8]>, AcError> {
    if ext_value.len() > MAX_AC_SEQ_BYTES {
        return Err(AcError::Limits(format!(
            "the VOMS extension holds {} bytes, more than {MAX_AC_SEQ_BYTES}",
            ext_value.len()
        )));
    }
    let outer = tlv::read_all(ext_value).ok_or_else(|| bad("the VOMS extension is not DER"))?;
    let [acs] = kids(&outer, SEQUENCE, "the VOMS extension")?
        .try_into()
        .map_err(|_| bad("the VOMS extension does not hold one sequence of ACs"))?;
    let acs = kids(&acs, SEQUENCE, "the VOMS AC sequence")?;
    if acs.len() > MAX_ACS {
        return Err(AcError::Limits(format!(
            "the VOMS extension holds {} ACs, more than {MAX_ACS}",
            acs.len()
        )));
    }
    if acs.is_empty() {
        return Err(bad("the VOMS extension holds no AC"));
    }
    Ok(acs.iter().map(|a| a.raw).collect())
}

/// Read one AC (RFC 5755 §4.1) under the VOMS profile.
pub fn parse_ac(der: &[u8]) -> Result<AttributeCertificate, AcError> {
    let ac = tlv::read_all(der).ok_or_else(|| bad("the AC is not DER"))?;
    let [info, alg, sig] = kids(&ac, SEQUENCE, "the AC")?
        .try_into()
        .map_err(|_| bad("the AC does not have three fields"))?;
    if alg.tag != SEQUENCE {
        return Err(bad("the AC signature algorithm is not a sequence"));
    }
    let signature = match (sig.tag, sig.value.split_first()) {
        (BIT_STRING, Some((0, bits))) => bits.to_vec(),
        _ => return Err(bad("the AC signature is not a whole-byte BIT STRING")),
    };
    let mut fields = kids(&info, SEQUENCE, "the AC info")?.into_iter();
    let mut next = |what: &str| {
        fields
            .next()
            .ok_or_else(|| bad(format!("the AC lacks {what}")))
    };
    let version = next("a version")?;
    if version.tag != INTEGER || version.value != [1] {
        return Err(bad("the AC version is not v2"));
    }
    let holder = parse_holder(&next("a holder")?)?;
    let issuer = parse_issuer(&next("an issuer")?)?;
    let inner_alg = next("a signature algorithm")?;
    if inner_alg.raw != alg.raw {
        return Err(bad("the two AC signature algorithm fields differ"));
    }
    let serial = next("a serial number")?;
    if serial.tag != INTEGER || serial.value.is_empty() || serial.value.len() > 20 {
        return Err(bad(
            "the AC serial number is not an INTEGER of 1 to 20 bytes",
        ));
    }
    let validity = next("a validity period")?;
    let [nb, na] = kids(&validity, SEQUENCE, "the AC validity")?
        .try_into()
        .map_err(|_| bad("the AC validity does not have two times"))?;
    let time = |t: &Tlv<'_>| match t.tag {
        GENERALIZED_TIME => generalized_time(t),
        _ => None,
    };
    let (not_before, not_after) = match (time(&nb), time(&na)) {
        (Some(b), Some(a)) => (b, a),
        _ => return Err(bad("the AC validity is not two GeneralizedTimes")),
    };
    let attributes = parse_attributes(&next("attributes")?)?;
    let mut rest: Vec<Tlv<'_>> = fields.collect();
    if rest.first().map(|t| t.tag) == Some(BIT_STRING) {
        rest.remove(0); // issuerUniqueID: not used by VOMS
    }
    let mut ac = AttributeCertificate {
        acinfo: info.raw.to_vec(),
        signature_algorithm: alg.raw.to_vec(),
        signature,
        holder,
        issuer,
        serial: serial.value.to_vec(),
        not_before,
        not_after,
        vo: attributes.vo,
        host: attributes.host,
        port: attributes.port,
        fqans: attributes.fqans,
        generic_attributes: Vec::new(),
        ac_certs: Vec::new(),
        targeting: None,
        no_rev_avail: false,
        authority_key_id: None,
        unknown_critical: Vec::new(),
    };
    match rest.as_slice() {
        [exts] => parse_extensions(exts, &mut ac)?,
        [] => {
            return Err(bad(
                "the AC has no extensions (VOMS requires noRevAvail and authorityKeyIdentifier)",
            ));
        }
        _ => return Err(bad("the AC info has trailing fields")),
    }
    if !ac.no_rev_avail || ac.authority_key_id.is_none() {
        return Err(bad(
            "the AC lacks noRevAvail or authorityKeyIdentifier, which VOMS requires",
        ));
    }
    Ok(ac)
}

fn parse_holder(t: &Tlv<'_>) -> Result<Holder, AcError> {
    let mut holder = Holder {
        base_certificate_id: None,
        other_forms: false,
    };
    for part in kids(t, SEQUENCE, "the AC holder")? {
        match part.tag {
            CTX0 if holder.base_certificate_id.is_none() => {
                holder.base_certificate_id = Some(parse_issuer_serial(&part)?);
            }
            CTX1 | CTX2 => holder.other_forms = true,
            _ => return Err(bad("the AC holder has an unexpected field")),
        }
    }
    Ok(holder)
}

fn parse_issuer_serial(t: &Tlv<'_>) -> Result<IssuerSerial, AcError> {
    let parts = kids(t, CTX0, "the holder baseCertificateID")?;
    let (names, other_names) = match parts.first() {
        Some(gns) => general_names(gns)?,
        None => return Err(bad("the holder baseCertificateID is empty")),
    };
    let serial = match parts.get(1) {
        Some(s) if s.tag == INTEGER && !s.value.is_empty() => s.value.to_vec(),
        _ => return Err(bad("the holder baseCertificateID has no serial number")),
    };
    let issuer_uid = match parts.get(2..) {
        Some([]) | None => None,
        Some([uid]) if uid.tag == BIT_STRING => Some(uid.value.to_vec()),
        Some(_) => return Err(bad("the holder baseCertificateID has unexpected fields")),
    };
    Ok(IssuerSerial {
        names,
        other_names,
        serial,
        issuer_uid,
    })
}

/// The directoryNames of a `GeneralNames` sequence, and how many other names.
fn general_names(t: &Tlv<'_>) -> Result<(Vec<Vec<u8>>, usize), AcError> {
    let mut names = Vec::new();
    let mut others = 0;
    for gn in kids(t, SEQUENCE, "a GeneralNames")? {
        if gn.tag == DIRECTORY_NAME {
            let name = tlv::read_all(gn.value)
                .filter(|n| n.tag == SEQUENCE)
                .ok_or_else(|| bad("a directoryName is not a Name"))?;
            names.push(name.raw.to_vec());
        } else {
            others += 1;
        }
    }
    Ok((names, others))
}

fn parse_issuer(t: &Tlv<'_>) -> Result<Vec<u8>, AcError> {
    // RFC 5755 §4.2.3: v2Form with issuerName only, one directoryName.
    let parts = kids(t, CTX0, "the AC issuer (v2Form)")?;
    let [gns] = parts.as_slice() else {
        return Err(bad("the AC issuer v2Form must hold issuerName only"));
    };
    match general_names(gns)? {
        (mut names, 0) if names.len() == 1 => names.pop().ok_or_else(|| bad("no issuer")),
        _ => Err(bad("the AC issuer is not exactly one directoryName")),
    }
}

struct VomsAttributes {
    vo: String,
    host: String,
    port: String,
    fqans: Vec<String>,
}

fn parse_attributes(t: &Tlv<'_>) -> Result<VomsAttributes, AcError> {
    let mut found = None;
    for attr in kids(t, SEQUENCE, "the AC attributes")? {
        let [oid, values] = kids(&attr, SEQUENCE, "an AC attribute")?
            .try_into()
            .map_err(|_| bad("an AC attribute does not have two fields"))?;
        if oid.tag != OID {
            return Err(bad("an AC attribute type is not an OID"));
        }
        if oid.value != VOMS_ATTRIBUTE {
            continue; // other attributes carry nothing VOMS defines
        }
        if found.is_some() {
            return Err(bad("the AC repeats the VOMS attribute"));
        }
        let [ietf] = kids(&values, SET, "the VOMS attribute values")?
            .try_into()
            .map_err(|_| bad("the VOMS attribute does not hold exactly one value"))?;
        found = Some(parse_ietf_attr(&ietf)?);
    }
    found.ok_or_else(|| bad("the AC carries no VOMS attribute (1.3.6.1.4.1.8005.100.100.4)"))
}

fn parse_ietf_attr(t: &Tlv<'_>) -> Result<VomsAttributes, AcError> {
    let parts = kids(t, SEQUENCE, "the VOMS IetfAttrSyntax")?;
    let [authority, values] = parts.as_slice() else {
        return Err(bad(
            "the VOMS attribute lacks its policy authority or values",
        ));
    };
    let uri = match kids(authority, CTX0, "the VOMS policy authority")?.as_slice() {
        [gn] if gn.tag == URI => utf8(gn.value, "the VOMS policy authority")?,
        _ => return Err(bad("the VOMS policy authority is not exactly one URI")),
    };
    let (vo, server) = uri.split_once("://").ok_or_else(|| {
        bad(format!(
            "the VOMS policy authority {uri:?} is not vo://host:port"
        ))
    })?;
    let (host, port) = server
        .split_once(':')
        .ok_or_else(|| bad(format!("the VOMS policy authority {uri:?} has no port")))?;
    // VO and host name a file of the vomsdir (`<vo>/<host>.lsc`): letters,
    // digits, '.', '-', '_' only, and not starting with '.'.
    let path_safe = |s: &str| {
        !s.is_empty()
            && !s.starts_with('.')
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-' || b == b'_')
    };
    if !path_safe(vo)
        || !path_safe(host)
        || port.is_empty()
        || !port.bytes().all(|b| b.is_ascii_digit())
    {
        return Err(bad(format!(
            "the VOMS policy authority {uri:?} is not vo://host:port"
        )));
    }
    let mut fqans = Vec::new();
    for v in kids(values, SEQUENCE, "the VOMS attribute values")? {
        if v.tag != OCTET_STRING {
            return Err(bad("an FQAN is not an OCTET STRING"));
        }
        let fqan = utf8(v.value, "an FQAN")?;
        // VOMS: every FQAN lies under the VO's top group.
        let under_vo = fqan
            .strip_prefix('/')
            .and_then(|f| f.strip_prefix(vo))
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'));
        if !under_vo {
            return Err(bad(format!("the FQAN {fqan:?} is not under the VO {vo}")));
        }
        fqans.push(fqan);
    }
    if fqans.is_empty() {
        return Err(bad("the AC carries no FQAN"));
    }
    Ok(VomsAttributes {
        vo: vo.to_string(),
        host: host.to_string(),
        port: port.to_string(),
        fqans,
    })
}

fn parse_extensions(t: &Tlv<'_>, ac: &mut AttributeCertificate) -> Result<(), AcError> {
    let mut seen: Vec<&[u8]> = Vec::new();
    for ext in kids(t, SEQUENCE, "the AC extensions")? {
        let parts = kids(&ext, SEQUENCE, "an AC extension")?;
        let (oid, critical, value) = match parts.as_slice() {
            [o, v] => (o, false, v),
            [o, c, v] if c.tag == BOOLEAN && (c.value == [0xff] || c.value == [0]) => {
                (o, c.value == [0xff], v)
            }
            _ => return Err(bad("an AC extension is malformed")),
        };
        if oid.tag != OID || value.tag != OCTET_STRING {
            return Err(bad("an AC extension is malformed"));
        }
        if seen.contains(&oid.value) {
            return Err(bad(format!(
                "the AC repeats extension {}",
                oid_text(oid.value)
            )));
        }
        seen.push(oid.value);
        let inner = || {
            tlv::read_all(value.value)
                .ok_or_else(|| bad(format!("AC extension {} is not DER", oid_text(oid.value))))
        };
        match oid.value {
            OID_AC_CERTS => {
                let [certs] = kids(&inner()?, SEQUENCE, "the AC-certs extension")?
                    .try_into()
                    .map_err(|_| bad("the AC-certs extension does not hold one sequence"))?;
                let certs = kids(&certs, SEQUENCE, "the AC-certs sequence")?;
                if certs.len() > MAX_AC_CERTS {
                    return Err(AcError::Limits(format!(
                        "the AC carries {} certificates, more than {MAX_AC_CERTS}",
                        certs.len()
                    )));
                }
                ac.ac_certs = certs.iter().map(|c| c.raw.to_vec()).collect();
            }
            OID_GENERIC_ATTRIBUTES => ac.generic_attributes = parse_generic(&inner()?)?,
            OID_TARGETING => ac.targeting = Some(critical),
            OID_NO_REV_AVAIL => {
                if value.value != [0x05, 0x00] {
                    return Err(bad("noRevAvail is not NULL"));
                }
                ac.no_rev_avail = true;
            }
            OID_AUTHORITY_KEY_ID => {
                let mut key_id = None;
                for part in kids(&inner()?, SEQUENCE, "the AC authorityKeyIdentifier")? {
                    match part.tag {
                        0x80 if key_id.is_none() => key_id = Some(part.value.to_vec()),
                        0xa1 | 0x82 => {}
                        _ => return Err(bad("the AC authorityKeyIdentifier is malformed")),
                    }
                }
                ac.authority_key_id = Some(key_id);
            }
            other if critical => ac.unknown_critical.push(oid_text(other)),
            _ => {}
        }
    }
    Ok(())
}

fn parse_generic(t: &Tlv<'_>) -> Result<Vec<GenericAttribute>, AcError> {
    // FullAttributes ::= SEQUENCE { SEQUENCE OF AttributeHolder }
    // AttributeHolder ::= SEQUENCE { grantor GeneralNames,
    //                                attributes SEQUENCE OF GenericAttribute }
    // GenericAttribute ::= SEQUENCE { name, value, qualifier OCTET STRING }
    let mut out = Vec::new();
    let [holders] = kids(t, SEQUENCE, "the generic attributes")?
        .try_into()
        .map_err(|_| bad("the generic attributes do not hold one sequence"))?;
    for holder in kids(&holders, SEQUENCE, "the generic attribute holders")? {
        let [_grantor, attrs] = kids(&holder, SEQUENCE, "a generic attribute holder")?
            .try_into()
            .map_err(|_| bad("a generic attribute holder does not have two fields"))?;
        for attr in kids(&attrs, SEQUENCE, "the generic attributes")? {
            let parts = kids(&attr, SEQUENCE, "a generic attribute")?;
            let [name, value, qualifier] = parts.as_slice() else {
                return Err(bad("a generic attribute does not have three fields"));
            };
            if [name, value, qualifier]
                .iter()
                .any(|p| p.tag != OCTET_STRING)
            {
                return Err(bad("a generic attribute field is not an OCTET STRING"));
            }
            out.push(GenericAttribute {
                name: utf8(name.value, "a generic attribute name")?,
                value: utf8(value.value, "a generic attribute value")?,
                qualifier: utf8(qualifier.value, "a generic attribute qualifier")?,
            });
        }
    }
    Ok(out)
}

/// The fields of a certificate that an AC holder's `baseCertificateID`
/// names, as encoded.
struct HolderFields<'a> {
    subject: &'a [u8],
    issuer: &'a [u8],
    /// The serial number's INTEGER contents.
    serial: &'a [u8],
    /// `issuerUniqueID` ([1] IMPLICIT BIT STRING) contents, if present.
    issuer_uid: Option<&'a [u8]>,
}

impl<'a> HolderFields<'a> {
    fn of(cert: &'a [u8]) -> Option<Self> {
        let raw = tlv::RawCert::split(cert)?;
        let tbs = tlv::read_all(raw.tbs)?;
        let mut fields = tlv::children(tbs.value)?.into_iter().peekable();
        if fields.peek().map(|t| t.tag) == Some(0xa0) {
            fields.next(); // version
        }
        let serial = fields.next().filter(|s| s.tag == INTEGER)?.value;
        // signature, issuer, validity, subject, subjectPublicKeyInfo
        let issuer_uid = fields.nth(5).filter(|t| t.tag == 0x81).map(|t| t.value);
        Some(Self {
            subject: raw.subject,
            issuer: raw.issuer,
            serial,
            issuer_uid,
        })
    }
}

/// Check (j) of `spec/jobseal.md` §6.3a: `ac` was issued to the end-entity
/// certificate `eec` (DER). Its holder is a `baseCertificateID` alone,
/// naming exactly one directoryName, equal to the EEC's subject (what VOMS
/// servers, `voms-proxy-fake` and the Java clients write) or to its issuer
/// (RFC 5755, and what the Debian VOMS server writes), with the EEC's serial
/// number and issuerUID. Shared by the verifier and by the issuer, which
/// refuses to seal an AC no site would accept. The error says why, in words.
pub fn check_holder(ac: &AttributeCertificate, eec: &[u8]) -> Result<(), String> {
    let base = match (&ac.holder.base_certificate_id, ac.holder.other_forms) {
        (Some(b), false) => b,
        _ => return Err("its holder is not a baseCertificateID alone".into()),
    };
    let [holder_name] = base.names.as_slice() else {
        return Err("its holder does not name exactly one directoryName".into());
    };
    if base.other_names != 0 {
        return Err("its holder names other than a directoryName".into());
    }
    let cert = HolderFields::of(eec).ok_or("the end-entity certificate cannot be read")?;
    let eec_dn = || name::to_slash_string(cert.subject);
    if !name::same(holder_name, cert.subject) && !name::same(holder_name, cert.issuer) {
        return Err(format!(
            "it was issued to {}, not to {} or its CA",
            name::to_slash_string(holder_name),
            eec_dn()
        ));
    }
    if cert.serial != base.serial.as_slice() {
        return Err(format!(
            "it was issued to serial number {} of {}, not to {}'s {}",
            crate::manifest::hex(&base.serial),
            name::to_slash_string(holder_name),
            eec_dn(),
            crate::manifest::hex(cert.serial)
        ));
    }
    if cert.issuer_uid != base.issuer_uid.as_deref() {
        return Err("its holder issuerUID differs from the EEC's".into());
    }
    Ok(())
}

/// The value of a VOMS extension (1.3.6.1.4.1.8005.100.100.5) carrying
/// `acs`, each one AC's DER: a SEQUENCE holding one SEQUENCE OF AC, the form
/// `voms-proxy-init` writes.
pub fn encode_ac_seq(acs: &[&[u8]]) -> Vec<u8> {
    let body: Vec<u8> = acs.concat();
    let mut inner = tlv::header(SEQUENCE, body.len());
    inner.extend_from_slice(&body);
    let mut outer = tlv::header(SEQUENCE, inner.len());
    outer.extend_from_slice(&inner);
    outer
}

#[cfg(test)]
#[allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
mod tests {
    use super::*;

    fn t(tag: u8, parts: &[&[u8]]) -> Vec<u8> {
        let body: Vec<u8> = parts.concat();
        let mut out = tlv::header(tag, body.len());
        out.extend_from_slice(&body);
        out
    }

    fn name(cn: &str) -> Vec<u8> {
        let atv = t(
            0x30,
            &[&t(0x06, &[&[0x55, 0x04, 0x03]]), &t(0x0c, &[cn.as_bytes()])],
        );
        t(0x30, &[&t(0x31, &[&atv])])
    }

    fn ext(oid: &[u8], critical: bool, value: &[u8]) -> Vec<u8> {
        let crit = if critical {
            t(0x01, &[&[0xff]])
        } else {
            Vec::new()
        };
        t(0x30, &[&t(0x06, &[oid]), &crit, &t(0x04, &[value])])
    }

    struct Spec {
        fqans: Vec<&'static str>,
        inner_alg: Vec<u8>,
        issuer: Vec<u8>,
        not_after: &'static str,
        time_tag: u8,
        exts: Vec<Vec<u8>>,
    }

    fn ed25519_alg() -> Vec<u8> {
        t(0x30, &[&t(0x06, &[&[0x2b, 0x65, 0x70]])])
    }

    fn default_exts() -> Vec<Vec<u8>> {
        vec![
            ext(
                OID_AC_CERTS,
                false,
                &t(0x30, &[&t(0x30, &[&t(0x30, &[b"\x02\x01\x07"])])]),
            ),
            ext(OID_NO_REV_AVAIL, false, &[0x05, 0x00]),
            ext(
                OID_AUTHORITY_KEY_ID,
                false,
                &t(0x30, &[&t(0x80, &[&[7; 20]])]),
            ),
        ]
    }

    fn spec() -> Spec {
        Spec {
            fqans: vec!["/testvo", "/testvo/Role=admin"],
            inner_alg: ed25519_alg(),
            issuer: t(0xa0, &[&t(0x30, &[&t(0xa4, &[&name("aa")])])]),
            not_after: "20300101000000Z",
            time_tag: 0x18,
            exts: default_exts(),
        }
    }

    fn build(s: &Spec) -> Vec<u8> {
        let holder = t(
            0x30,
            &[&t(
                0xa0,
                &[&t(0x30, &[&t(0xa4, &[&name("user")])]), &[0x02, 0x01, 0x2a]],
            )],
        );
        let values: Vec<Vec<u8>> = s.fqans.iter().map(|f| t(0x04, &[f.as_bytes()])).collect();
        let values: Vec<&[u8]> = values.iter().map(Vec::as_slice).collect();
        let ietf = t(
            0x30,
            &[
                &t(0xa0, &[&t(0x86, &[b"testvo://voms.example:15000"])]),
                &t(0x30, &values),
            ],
        );
        let attr = t(0x30, &[&t(0x06, &[VOMS_ATTRIBUTE]), &t(0x31, &[&ietf])]);
        let exts: Vec<&[u8]> = s.exts.iter().map(Vec::as_slice).collect();
        let info = t(
            0x30,
            &[
                &[0x02, 0x01, 0x01],
                &holder,
                &s.issuer,
                &s.inner_alg,
                &[0x02, 0x01, 0x05],
                &t(
                    0x30,
                    &[
                        &t(s.time_tag, &[b"20250101000000Z"]),
                        &t(s.time_tag, &[s.not_after.as_bytes()]),
                    ],
                ),
                &t(0x30, &[&attr]),
                &t(0x30, &exts),
            ],
        );
        t(0x30, &[&info, &ed25519_alg(), &t(0x03, &[&[0], &[9; 64]])])
    }

    fn seq_of(acs: &[Vec<u8>]) -> Vec<u8> {
        let acs: Vec<&[u8]> = acs.iter().map(Vec::as_slice).collect();
        t(0x30, &[&t(0x30, &acs)])
    }

    fn malformed(s: &Spec) -> String {
        match parse_ac(&build(s)) {
            Err(AcError::Malformed(m)) => m,
            other => panic!("expected malformed, got {other:?}"),
        }
    }

    #[test]
    fn reads_every_field() {
        let ac = parse_ac(&build(&spec())).unwrap();
        assert_eq!(ac.vo, "testvo");
        assert_eq!(
            (ac.host.as_str(), ac.port.as_str()),
            ("voms.example", "15000")
        );
        assert_eq!(ac.fqans, vec!["/testvo", "/testvo/Role=admin"]);
        assert_eq!(ac.issuer, name("aa"));
        assert_eq!(ac.serial, vec![5]);
        let base = ac.holder.base_certificate_id.unwrap();
        assert_eq!(
            (base.names, base.other_names, base.serial),
            (vec![name("user")], 0, vec![0x2a])
        );
        assert!(!ac.holder.other_forms);
        assert_eq!(ac.not_before, UnixTime(1_735_689_600));
        assert_eq!(ac.ac_certs.len(), 1);
        assert!(ac.no_rev_avail);
        assert_eq!(ac.authority_key_id, Some(Some(vec![7; 20])));
        assert_eq!(ac.targeting, None);
        assert!(ac.unknown_critical.is_empty());
        assert_eq!(ac.signature, vec![9; 64]);
        assert_eq!(ac.signature_algorithm, ed25519_alg());
        // The lenient reader agrees.
        let lenient = parse_ac_seq(&seq_of(&[build(&spec())])).unwrap();
        assert_eq!(lenient[0].fqans, ac.fqans);
        assert_eq!(lenient[0].vo, ac.vo);
    }

    #[test]
    fn oid_constants_are_the_voms_and_rfc_5755_ones() {
        let o = |s: &str| der::asn1::ObjectIdentifier::new(s).unwrap();
        assert_eq!(o("1.3.6.1.4.1.8005.100.100.4").as_bytes(), VOMS_ATTRIBUTE);
        assert_eq!(o("1.3.6.1.4.1.8005.100.100.10").as_bytes(), OID_AC_CERTS);
        assert_eq!(
            o("1.3.6.1.4.1.8005.100.100.11").as_bytes(),
            OID_GENERIC_ATTRIBUTES
        );
        assert_eq!(o("2.5.29.55").as_bytes(), OID_TARGETING);
        assert_eq!(o("2.5.29.56").as_bytes(), OID_NO_REV_AVAIL);
        assert_eq!(o("2.5.29.35").as_bytes(), OID_AUTHORITY_KEY_ID);
    }

    #[test]
    fn generic_attributes_targeting_and_unknown_critical_extensions() {
        let mut s = spec();
        let ga = t(
            0x30,
            &[
                &t(0x04, &[b"nickname"]),
                &t(0x04, &[b"al%ce@x"]),
                &t(0x04, &[b"testvo"]),
            ],
        );
        let holder = t(
            0x30,
            &[
                &t(0x30, &[&t(0x86, &[b"testvo://voms.example:15000"])]),
                &t(0x30, &[&ga]),
            ],
        );
        s.exts.push(ext(
            OID_GENERIC_ATTRIBUTES,
            false,
            &t(0x30, &[&t(0x30, &[&holder])]),
        ));
        s.exts.push(ext(OID_TARGETING, true, &t(0x30, &[])));
        s.exts.push(ext(&[0x2a, 0x03, 0x04], true, &[0x05, 0x00]));
        s.exts.push(ext(&[0x2a, 0x03, 0x05], false, &[0x05, 0x00]));
        let ac = parse_ac(&build(&s)).unwrap();
        assert_eq!(
            ac.generic_attributes,
            vec![GenericAttribute {
                name: "nickname".into(),
                value: "al%ce@x".into(),
                qualifier: "testvo".into()
            }]
        );
        assert_eq!(ac.targeting, Some(true));
        assert_eq!(ac.unknown_critical, vec!["1.2.3.4".to_string()]);
    }

    #[test]
    fn profile_violations_are_malformed() {
        let mut s = spec();
        s.fqans = vec!["/testvo", "/othervo/Role=admin"];
        assert!(malformed(&s).contains("not under the VO"));
        let mut s = spec();
        s.fqans = vec!["/testvoX"];
        assert!(malformed(&s).contains("not under the VO"));
        let mut s = spec();
        s.fqans = vec![];
        assert!(malformed(&s).contains("no FQAN"));
        for authority in [
            "../x://h:1",
            "testvo://../h:1",
            "testvo://h",
            "testvo://h:x",
            "vo/x://h:1",
        ] {
            let mut bytes = build(&spec());
            let good = b"testvo://voms.example:15000";
            let pos = bytes.windows(good.len()).position(|w| w == good).unwrap();
            // A replacement of the same length keeps every length valid.
            let mut repl = authority.as_bytes().to_vec();
            repl.resize(good.len(), b'0');
            bytes[pos..pos + good.len()].copy_from_slice(&repl);
            assert!(
                matches!(parse_ac(&bytes), Err(AcError::Malformed(_))),
                "{authority}"
            );
        }
        let mut s = spec();
        s.inner_alg = t(
            0x30,
            &[&t(
                0x06,
                &[&[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02]],
            )],
        );
        assert!(malformed(&s).contains("differ"));
        let mut s = spec();
        s.exts.remove(1);
        assert!(malformed(&s).contains("noRevAvail"));
        let mut s = spec();
        s.exts.remove(2);
        assert!(malformed(&s).contains("authorityKeyIdentifier"));
        let mut s = spec();
        s.exts.push(ext(OID_NO_REV_AVAIL, false, &[0x05, 0x00]));
        assert!(malformed(&s).contains("repeats"));
        let mut s = spec();
        s.issuer = t(0x30, &[&t(0xa4, &[&name("aa")])]); // v1Form
        assert!(malformed(&s).contains("v2Form"));
        let mut s = spec();
        s.issuer = t(
            0xa0,
            &[&t(
                0x30,
                &[&t(0xa4, &[&name("aa")]), &t(0xa4, &[&name("bb")])],
            )],
        );
        assert!(malformed(&s).contains("exactly one directoryName"));
        let mut s = spec();
        s.time_tag = 0x17;
        s.not_after = "300101000000Z";
        assert!(malformed(&s).contains("GeneralizedTime"));
        assert!(matches!(
            parse_ac(&[0x30, 0x00]),
            Err(AcError::Malformed(_))
        ));
        let mut ac = build(&spec());
        ac.push(0);
        assert!(matches!(parse_ac(&ac), Err(AcError::Malformed(_))));
    }

    #[test]
    fn too_many_carried_certificates_is_a_limit() {
        let mut s = spec();
        let cert = t(0x30, &[b"\x02\x01\x07"]);
        let certs: Vec<&[u8]> = std::iter::repeat_n(cert.as_slice(), MAX_AC_CERTS + 1).collect();
        s.exts[0] = ext(OID_AC_CERTS, false, &t(0x30, &[&t(0x30, &certs)]));
        assert!(matches!(parse_ac(&build(&s)), Err(AcError::Limits(_))));
    }

    #[test]
    fn the_sequence_is_bounded_before_any_ac_is_read() {
        let one = build(&spec());
        assert_eq!(
            split_ac_seq(&seq_of(std::slice::from_ref(&one))).unwrap(),
            vec![one.as_slice()]
        );
        let eight = vec![one.clone(); MAX_ACS];
        assert_eq!(split_ac_seq(&seq_of(&eight)).unwrap().len(), MAX_ACS);
        let nine = vec![one.clone(); MAX_ACS + 1];
        assert!(matches!(
            split_ac_seq(&seq_of(&nine)),
            Err(AcError::Limits(_))
        ));
        let big = vec![vec![0x04, 0x00]; MAX_AC_SEQ_BYTES / 2];
        assert!(matches!(
            split_ac_seq(&seq_of(&big)),
            Err(AcError::Limits(_))
        ));
        assert!(matches!(
            split_ac_seq(&seq_of(&[])),
            Err(AcError::Malformed(_))
        ));
        assert!(matches!(split_ac_seq(&[0x30]), Err(AcError::Malformed(_))));
    }
}
