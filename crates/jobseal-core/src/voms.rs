//! Reading VOMS attribute certificates (RFC 5755 ACs in extension
//! 1.3.6.1.4.1.8005.100.100.5) for display and for lifetime checks.
//!
//! This module only *reads* ACs. It does not verify their signatures, so
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
    tlv::children(acs.value)?.iter().map(parse_ac).collect()
}

fn parse_ac(ac: &Tlv<'_>) -> Option<VomsAc> {
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
