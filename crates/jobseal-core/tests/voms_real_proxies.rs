//! VOMS attribute certificates of real proxies (the conformance corpus,
//! `third_party/conformance`) read as their READMEs describe them.
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
use jobseal_core::voms;

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

#[test]
fn dirac_voms_proxy_attributes() {
    let text = std::fs::read(corpus("proxies/dirac/voms/proxy.pem")).unwrap();
    let leaf = parse_blocks(&text)
        .unwrap()
        .into_iter()
        .find(|b| b.label == "CERTIFICATE")
        .unwrap();
    let cert = x509_cert::Certificate::from_der(&leaf.der).unwrap();
    let acs = voms::from_certificate(&cert).expect("the DIRAC proxy carries a VOMS AC");
    assert_eq!(acs.len(), 1);
    let ac = &acs[0];
    assert_eq!(ac.vo, "fakevo");
    assert_eq!(ac.server, "fakeserver.cern.ch:15000");
    assert_eq!(
        ac.fqans,
        vec!["/fakevo/Role=user/Capability=NULL".to_string()]
    );
    assert_eq!(ac.issuer, "/O=Dirac Computing/O=CERN/CN=VOBox");
    assert_eq!(
        ac.not_before,
        UnixTime::parse_rfc3339("2023-04-28T13:54:37Z").unwrap()
    );
    assert_eq!(
        ac.not_after,
        UnixTime::parse_rfc3339("2029-01-09T21:54:37Z").unwrap()
    );
}

#[test]
fn plain_proxies_carry_no_voms_attributes() {
    let text = std::fs::read(corpus("proxies/dirac/diset_transports_test/proxy.pem")).unwrap();
    let leaf = parse_blocks(&text)
        .unwrap()
        .into_iter()
        .find(|b| b.label == "CERTIFICATE")
        .unwrap();
    let cert = x509_cert::Certificate::from_der(&leaf.der).unwrap();
    assert!(voms::from_certificate(&cert).is_none());
}
