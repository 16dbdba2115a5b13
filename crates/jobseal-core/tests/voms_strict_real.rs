//! The strict AC reader on the real VOMS proxies of the conformance corpus
//! (`third_party/conformance`): DIRAC's voms-proxy-fake proxy and the Java
//! VOMS clients' proxies, field by field as their READMEs describe them.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::path::{Path, PathBuf};

use der::Decode;
use jobseal_core::pem::parse_blocks;
use jobseal_core::time::UnixTime;
use jobseal_core::voms::{self, AttributeCertificate, GenericAttribute};
use jobseal_core::{name, oid};

fn corpus(rel: &str) -> PathBuf {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../third_party/conformance")
        .join(rel);
    assert!(
        p.exists(),
        "{} is missing: the conformance corpus is part of the repository (third_party/conformance)",
        p.display()
    );
    p
}

/// The strictly parsed ACs of every certificate of a PEM file that has some.
fn acs_of(rel: &str) -> Vec<AttributeCertificate> {
    let text = std::fs::read(corpus(rel)).unwrap();
    let mut out = Vec::new();
    for b in parse_blocks(&text).unwrap() {
        if b.label != "CERTIFICATE" {
            continue;
        }
        let cert = x509_cert::Certificate::from_der(&b.der).unwrap();
        let Some(ext) = cert
            .tbs_certificate()
            .extensions()
            .and_then(|e| e.iter().find(|e| e.extn_id == oid::VOMS_AC_SEQ))
        else {
            continue;
        };
        for ac in voms::split_ac_seq(ext.extn_value.as_bytes()).unwrap() {
            out.push(voms::parse_ac(ac).unwrap());
        }
    }
    out
}

fn time(s: &str) -> UnixTime {
    UnixTime::parse_rfc3339(s).unwrap()
}

fn ga(name: &str, value: &str, qualifier: &str) -> GenericAttribute {
    GenericAttribute {
        name: name.into(),
        value: value.into(),
        qualifier: qualifier.into(),
    }
}

#[test]
fn dirac_voms_proxy_fake_ac() {
    let acs = acs_of("proxies/dirac/voms/proxy.pem");
    assert_eq!(acs.len(), 1);
    let ac = &acs[0];
    assert_eq!(ac.vo, "fakevo");
    assert_eq!(
        (ac.host.as_str(), ac.port.as_str()),
        ("fakeserver.cern.ch", "15000")
    );
    assert_eq!(ac.fqans, vec!["/fakevo/Role=user/Capability=NULL"]);
    assert!(ac.generic_attributes.is_empty());
    assert_eq!(
        name::to_slash_string(&ac.issuer),
        "/O=Dirac Computing/O=CERN/CN=VOBox"
    );
    assert_eq!(ac.serial, vec![1]);
    assert_eq!(ac.not_before, time("2023-04-28T13:54:37Z"));
    assert_eq!(ac.not_after, time("2029-01-09T21:54:37Z"));
    // voms-proxy-fake names the holder by the EEC's *subject* and serial.
    let holder = ac.holder.base_certificate_id.as_ref().unwrap();
    assert_eq!(holder.names.len(), 1);
    assert_eq!(
        name::to_slash_string(&holder.names[0]),
        "/O=Dirac Computing/O=CERN/CN=MrUser"
    );
    assert_eq!(holder.serial, vec![0x10, 0x01]);
    // The AA certificate is carried, byte for byte the DIRAC host certificate.
    let host = parse_blocks(&std::fs::read(corpus("proxies/dirac/host/hostcert.pem")).unwrap())
        .unwrap()
        .remove(0)
        .der;
    assert_eq!(ac.ac_certs, vec![host]);
    assert!(ac.no_rev_avail);
    assert!(matches!(&ac.authority_key_id, Some(Some(k)) if k.len() == 20));
    assert_eq!(ac.targeting, None);
    assert!(ac.unknown_critical.is_empty());
}

#[test]
fn voms_java_acs() {
    let dir = "proxies/voms-java/certs";
    // 0 and 9 carry none.
    assert!(acs_of(&format!("{dir}/0.pem")).is_empty());
    assert!(acs_of(&format!("{dir}/9.pem")).is_empty());
    for n in 1..=6 {
        let acs = acs_of(&format!("{dir}/{n}.pem"));
        assert_eq!(acs.len(), 1, "{n}.pem");
        let ac = &acs[0];
        assert_eq!(ac.vo, "test.vo", "{n}");
        assert_eq!(
            (ac.host.as_str(), ac.port.as_str()),
            ("voms.example", "15000")
        );
        assert_eq!(ac.serial, vec![0x01, 0xe2, 0x40], "{n}"); // 123456
        let holder = ac.holder.base_certificate_id.as_ref().unwrap();
        assert_eq!(
            name::to_slash_string(&holder.names[0]),
            "/C=IT/O=IGI/CN=test0"
        );
        assert_eq!(holder.serial, vec![0x08]);
        assert_eq!(ac.ac_certs.len(), 1);
        let expected_issuer = if n == 5 {
            "/C=IT/O=IGI/CN=voms.example"
        } else {
            "/C=IT/O=IGI/CN=*.test.example"
        };
        assert_eq!(name::to_slash_string(&ac.issuer), expected_issuer, "{n}");
    }
    let one = &acs_of(&format!("{dir}/1.pem"))[0];
    assert_eq!(one.fqans, vec!["/test.vo"]);
    assert_eq!(
        one.generic_attributes,
        vec![ga("nickname", "sd", "test.vo")]
    );
    assert_eq!(one.not_after, time("2022-12-12T00:00:00Z"));
    let three = &acs_of(&format!("{dir}/3.pem"))[0];
    assert_eq!(
        three.fqans,
        vec!["/test.vo/exp1", "/test.vo/exp2", "/test.vo/exp3/Role=PIPPO"]
    );
    assert_eq!(
        three.generic_attributes,
        vec![
            ga("nickname", "sd", "test.vo"),
            ga("nickname", "cnaf", "test.vo")
        ]
    );
    assert_eq!(three.not_before, time("2022-12-10T00:00:00Z"));
    assert_eq!(three.not_after, time("2031-12-31T00:00:00Z"));
    let four = &acs_of(&format!("{dir}/4.pem"))[0];
    assert_eq!(four.fqans, vec!["/test.vo"]);
    assert_eq!(
        four.generic_attributes,
        vec![
            ga("nickname", "sd", "test.vo"),
            ga("title", "assegnista%di%ricerca@CNAF", "test.vo")
        ]
    );
    // 6 is a proxy of proxy 3: the same AC, on the inner proxy.
    assert_eq!(acs_of(&format!("{dir}/6.pem"))[0], *three);
}
