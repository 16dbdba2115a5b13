//! RFC 5280 rules that x509-cert does not enforce and on which readers
//! would disagree about a certificate (issue 13 §6, spec §6.2 1e): each is
//! `cert.malformed`, for any certificate of a bundle. (Zero and negative
//! serials are refused on proxies only: tests/path_building.rs.)
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use jobseal_core::time::UnixTime;
use jobseal_core::tlv;
use jobseal_issue::throwaway;
use jobseal_verify::Reason;
use jobseal_verify::parse::ParsedCert;

fn wrap(tag: u8, parts: &[&[u8]]) -> Vec<u8> {
    let body = parts.concat();
    let mut out = tlv::header(tag, body.len());
    out.extend_from_slice(&body);
    out
}

/// A user certificate with TBS field `index` replaced by `field`, and, if
/// `v1_keep_extensions`, its version field removed (a v1 certificate that
/// keeps its extensions). The signature no longer matches: parsing decides
/// first.
fn edited(index: usize, field: Option<&[u8]>, v1_keep_extensions: bool) -> Vec<u8> {
    let t = UnixTime(1_767_225_600);
    let ca = throwaway::ca(&[7; 32], "CN=Profile CA,O=jobseal", t.minus(60), t.plus(60)).unwrap();
    let user = throwaway::user(
        &ca,
        &[8; 32],
        "CN=Pat,O=jobseal",
        5,
        t.minus(60),
        t.plus(60),
    )
    .unwrap()
    .cert;
    let outer = tlv::read_all(&user).unwrap();
    let parts = tlv::children(outer.value).unwrap();
    let fields = tlv::children(parts[0].value).unwrap();
    let mut tbs: Vec<&[u8]> = fields.iter().map(|f| f.raw).collect();
    if let Some(field) = field {
        tbs[index] = field;
    }
    if v1_keep_extensions {
        // Drop `version [0] v3`: the certificate reads as v1, extensions kept.
        tbs.remove(0);
    }
    let tbs = wrap(0x30, &tbs);
    wrap(0x30, &[&tbs, parts[1].raw, parts[2].raw])
}

fn refused(der: Vec<u8>, why: &str) {
    let e = ParsedCert::from_der(der, 1).unwrap_err();
    assert_eq!(e.reason, Reason::CertMalformed, "{}", e.message);
    assert!(e.message.contains("certificate 1"), "{}", e.message);
    assert!(e.message.contains(why), "{}", e.message);
}

#[test]
fn the_unedited_certificate_parses() {
    ParsedCert::from_der(edited(1, None, false), 1).unwrap();
    // 20 value octets with the sign octet in front: allowed.
    let mut twenty = vec![0x02, 21, 0x00];
    twenty.extend([0xff; 20]);
    ParsedCert::from_der(edited(1, Some(&twenty), false), 1).unwrap();
}

#[test]
fn serial_numbers_longer_than_20_octets_are_refused() {
    let mut long = vec![0x02, 21];
    long.extend([0x11; 21]);
    refused(edited(1, Some(&long), false), "longer than 20 octets");
    // Zero and negative serials parse: CAs of the field use them (IGTF
    // roots with serial 0); proxies are refused them in step 2.
    ParsedCert::from_der(edited(1, Some(&[0x02, 0x01, 0x00]), false), 1).unwrap();
    ParsedCert::from_der(edited(1, Some(&[0x02, 0x01, 0xff]), false), 1).unwrap();
}

#[test]
fn a_version_1_certificate_with_extensions_is_refused() {
    refused(edited(0, None, true), "not a version 3 certificate");
}
