//! Real grid proxies from the shared corpus (`proxies/`), through the
//! verifier's path validation (`path::validate`: CA* → EEC → RFC 3820
//! proxies*, no job binding; step 3 is not run here):
//!
//! - `glite`: canl-java's glite-utiljava suite against the `rfc3820_only_expected`
//!   column of `glite/expected.tsv`, at 2026-01-01, trust store
//!   `grid-security/certificates-newhash-all` (read in place, never written);
//! - `legacy-globus`: JGlobus GT2 and GT3-draft proxies, each of which must be
//!   refused (the reason codes are reported);
//! - `gct-pci`: pre-RFC ProxyCertInfo blobs, each of which must fail to decode
//!   as an RFC 3820 `ProxyCertInfo`;
//! - `voms-java`: proxies of the Java VOMS clients at 2023-06-01;
//! - `dirac`: DIRAC's DISET and VOMS proxies and its EECs at 2026-01-01.
//!
//! The legacy corpora need the legacy-CA algorithm setting
//! (`AlgorithmPolicy { allow_sha1_ca_issued: true, min_rsa_bits_ca_issued:
//! 1024 }`); it is used for glite, legacy-globus and voms-java and said so in
//! the output. DIRAC runs with the defaults. Divergences must be listed in
//! `tests/conformance/proxies-exceptions.tsv`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::print_stderr
)]

#[path = "conformance/common.rs"]
mod common;

use std::path::Path;

use common::{Got, Suite};
use der::Decode;
use jobseal_core::asn1::ProxyCertInfo;
use jobseal_core::time::UnixTime;
use jobseal_verify::path::{self, PathOptions};
use jobseal_verify::sig::AlgorithmPolicy;
use jobseal_verify::trust::TrustStore;

/// The legacy-CA setting the old corpora need: SHA-1 and RSA-1024 on
/// CA-issued certificates. Proxies still need the default table; MD5 is
/// never accepted.
fn legacy_cas() -> AlgorithmPolicy {
    AlgorithmPolicy {
        allow_sha1_ca_issued: true,
        min_rsa_bits_ca_issued: 1024,
    }
}

fn time(s: &str) -> UnixTime {
    UnixTime::parse_rfc3339(s).unwrap()
}

fn read(p: &Path) -> Vec<u8> {
    std::fs::read(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// Validate a chain (leaf first) and record it; an expected-valid chain that
/// is refused only because it uses an algorithm jobseal refuses is skipped.
#[allow(clippy::too_many_arguments)]
fn check(
    suite: &mut Suite,
    group: &str,
    id: &str,
    chain: &[Vec<u8>],
    trust: &TrustStore,
    opts: &PathOptions,
    expected_ok: bool,
    anchor_spkis: &[Vec<u8>],
) {
    let got = Got::from_result(
        common::parse_chain(chain).and_then(|certs| path::validate(&certs, trust, opts)),
    );
    if expected_ok
        && got.code() == Some("chain.weak-algorithm")
        && let Some((category, why)) = common::uses_refused_algorithm(chain, anchor_spkis)
    {
        eprintln!("proxies: {id}: skipped: {why}");
        suite.skip(
            group,
            id,
            &format!("expected valid, but uses an algorithm jobseal refuses: {category}"),
        );
        return;
    }
    suite.ran(group, id, expected_ok, &got);
}

fn spki_of(der: &[u8]) -> Vec<u8> {
    jobseal_core::tlv::RawCert::split(der)
        .unwrap()
        .spki
        .to_vec()
}

fn glite(suite: &mut Suite, root: &Path) {
    let dir = root.join("glite");
    let text = std::fs::read_to_string(dir.join("expected.tsv")).unwrap();
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split('\t').collect();
    let col = |n: &str| header.iter().position(|h| *h == n).unwrap();
    let (file_c, exp_c) = (col("file"), col("rfc3820_only_expected"));
    let trust_dir = dir.join("grid-security/certificates-newhash-all");
    let trust = TrustStore::open(&trust_dir).unwrap();
    let anchor_spkis: Vec<Vec<u8>> = std::fs::read_dir(&trust_dir)
        .unwrap()
        .filter_map(|e| {
            let p = e.ok()?.path();
            let ext = p.extension()?.to_str()?;
            ext.chars().all(|c| c.is_ascii_digit()).then(|| read(&p))
        })
        .flat_map(|data| common::certs_in(&data))
        .map(|d| spki_of(&d))
        .collect();
    let opts = PathOptions {
        at: time("2026-01-01T00:00:00Z"),
        clock_skew: jobseal_verify::DEFAULT_CLOCK_SKEW,
        algorithms: legacy_cas(),
    };
    let mut rows = 0;
    for line in lines.filter(|l| !l.trim().is_empty()) {
        rows += 1;
        let c: Vec<&str> = line.split('\t').collect();
        let file = c[file_c];
        let id = format!("glite:{file}");
        let group = format!("glite/{}", file.split('/').next().unwrap());
        let expected_ok = match c.get(exp_c).copied().unwrap_or("") {
            "VALID" => true,
            "INVALID" => false,
            "" => {
                suite.skip(
                    &group,
                    &id,
                    "no RFC 3820-only expectation established by the corpus (rfc3820_only_expected empty)",
                );
                continue;
            }
            other => panic!("{id}: unknown expectation {other}"),
        };
        let chain = common::certs_in(&read(&dir.join(file)));
        check(
            suite,
            &group,
            &id,
            &chain,
            &trust,
            &opts,
            expected_ok,
            &anchor_spkis,
        );
    }
    assert_eq!(rows, 303, "glite/expected.tsv: expected 303 rows");
}

fn legacy_globus(suite: &mut Suite, root: &Path) {
    let dir = root.join("legacy-globus");
    let anchor_files = ["TestCA1.pem", "testca2.pem", "testca3.pem"];
    let anchors: Vec<Vec<u8>> = anchor_files
        .iter()
        .flat_map(|f| common::certs_in(&read(&dir.join(f))))
        .collect();
    let crls = vec![
        common::blocks_in(&read(&dir.join("testca3.r0")), "X509 CRL")
            .into_iter()
            .next()
            .unwrap(),
    ];
    let ca = common::ca_dir(&anchors, &crls);
    let trust = TrustStore::open(ca.path()).unwrap();
    // (file, extra issuer certificates not in the file, fallback time). The
    // time used is one hour after the leaf's notBefore, inside the leaf's
    // (12-hour) window and the EEC's, as the corpus README advises; the
    // fallback is for a leaf that does not parse.
    let mut cases: Vec<(String, Vec<&str>, &str)> = Vec::new();
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.starts_with("gsi") && n.ends_with(".pem"))
        .collect();
    names.sort();
    for n in names {
        cases.push((n, vec![], "2009-09-29T00:00:00Z"));
    }
    cases.push((
        "testgsi3proxy.pem".into(),
        vec!["testeec2.pem"],
        "2003-04-25T00:00:00Z",
    ));
    cases.push((
        "crl_proxy.pem".into(),
        vec!["crl_usercert.pem"],
        "2003-08-09T00:00:00Z",
    ));
    assert_eq!(cases.len(), 21, "legacy-globus: expected 21 proxy files");
    for (file, extra, at) in cases {
        let mut chain = common::certs_in(&read(&dir.join(&file)));
        for e in extra {
            let der = common::certs_in(&read(&dir.join(e))).remove(0);
            if !chain.contains(&der) {
                chain.push(der);
            }
        }
        let at = jobseal_verify::parse::ParsedCert::from_der(chain[0].clone(), 0)
            .map(|leaf| UnixTime(leaf.validity().0 + 3600))
            .unwrap_or_else(|_| time(at));
        let opts = PathOptions {
            at,
            clock_skew: jobseal_verify::DEFAULT_CLOCK_SKEW,
            algorithms: legacy_cas(),
        };
        let anchor_spkis: Vec<Vec<u8>> = anchors.iter().map(|a| spki_of(a)).collect();
        check(
            suite,
            "legacy-globus",
            &format!("legacy-globus:{file}"),
            &chain,
            &trust,
            &opts,
            false,
            &anchor_spkis,
        );
    }
}

fn gct_pci(suite: &mut Suite, root: &Path) {
    let dir = root.join("gct-pci");
    for n in 1..=5 {
        let file = format!("test_pci.norm{n}.stdout");
        let blob = read(&dir.join(&file));
        // What path validation does with an extension value (spec §6.3
        // 2d.6.2): a DER ProxyCertInfo with no trailing bytes, else
        // proxy.malformed.
        let got = match ProxyCertInfo::from_der(&blob) {
            Ok(pci) => {
                eprintln!("proxies: gct-pci:{file} decoded as {pci:?}");
                Got::Success
            }
            Err(e) => Got::Failure(
                "proxy.malformed".into(),
                format!("not a ProxyCertInfo: {e}"),
            ),
        };
        suite.ran("gct-pci", &format!("gct-pci:{file}"), false, &got);
    }
}

fn voms_java(suite: &mut Suite, root: &Path) {
    let dir = root.join("voms-java");
    let anchors: Vec<Vec<u8>> = ["igi-test-ca.pem", "igi-test-ca-2.pem"]
        .iter()
        .flat_map(|f| common::certs_in(&read(&dir.join("trust-anchors").join(f))))
        .collect();
    let anchor_spkis: Vec<Vec<u8>> = anchors.iter().map(|a| spki_of(a)).collect();
    let ca = common::ca_dir(&anchors, &[]);
    let trust = TrustStore::open(ca.path()).unwrap();
    let opts = PathOptions {
        at: time("2023-06-01T00:00:00Z"),
        clock_skew: jobseal_verify::DEFAULT_CLOCK_SKEW,
        algorithms: legacy_cas(),
    };
    // README of the corpus: chains 0, 1, 3, 4, 5, 6 and 9 valid, 2 expired.
    for (n, expected_ok) in [
        (0, true),
        (1, true),
        (2, false),
        (3, true),
        (4, true),
        (5, true),
        (6, true),
        (9, true),
    ] {
        let chain = common::certs_in(&read(&dir.join(format!("certs/{n}.pem"))));
        check(
            suite,
            "voms-java",
            &format!("voms-java:{n}.pem"),
            &chain,
            &trust,
            &opts,
            expected_ok,
            &anchor_spkis,
        );
    }
}

fn dirac(suite: &mut Suite, root: &Path) {
    let dir = root.join("dirac");
    let anchor = common::certs_in(&read(&dir.join("ca/ca.cert.pem")));
    let ca = common::ca_dir(&anchor, &[]);
    let trust = TrustStore::open(ca.path()).unwrap();
    let opts = PathOptions {
        at: time("2026-01-01T00:00:00Z"),
        clock_skew: jobseal_verify::DEFAULT_CLOCK_SKEW,
        algorithms: AlgorithmPolicy::default(),
    };
    for file in [
        "diset_transports_test/proxy.pem",
        "voms/proxy.pem",
        "user/usercert.pem",
        "host/hostcert.pem",
    ] {
        let chain = common::certs_in(&read(&dir.join(file)));
        check(
            suite,
            "dirac",
            &format!("dirac:{file}"),
            &chain,
            &trust,
            &opts,
            true,
            &[],
        );
    }
}

#[test]
fn proxies() {
    let root = common::corpus().join("proxies");
    eprintln!(
        "proxies: glite, legacy-globus and voms-java run with the legacy-CA algorithm setting \
         {:?} (SHA-1 and RSA >= 1024 on CA-issued certificates only; never on proxies; never MD5); \
         dirac runs with the defaults",
        legacy_cas()
    );
    let mut suite = Suite::new("proxies", "proxies-exceptions.tsv");
    glite(&mut suite, &root);
    legacy_globus(&mut suite, &root);
    gct_pci(&mut suite, &root);
    voms_java(&mut suite, &root);
    dirac(&mut suite, &root);
    suite.finish();
}

/// With the default algorithm policy, the SHA-1-signed EEC of the Java VOMS
/// fixtures is refused before anything else: the legacy setting is what
/// lets the other test reach the proxies.
#[test]
fn voms_java_default_policy_refuses_sha1() {
    let dir = common::corpus().join("proxies/voms-java");
    let anchors: Vec<Vec<u8>> = ["igi-test-ca.pem", "igi-test-ca-2.pem"]
        .iter()
        .flat_map(|f| common::certs_in(&read(&dir.join("trust-anchors").join(f))))
        .collect();
    let ca = common::ca_dir(&anchors, &[]);
    let trust = TrustStore::open(ca.path()).unwrap();
    let opts = PathOptions {
        at: time("2023-06-01T00:00:00Z"),
        clock_skew: jobseal_verify::DEFAULT_CLOCK_SKEW,
        algorithms: AlgorithmPolicy::default(),
    };
    for n in [0, 1, 2, 3, 4, 5, 6, 9] {
        let chain = common::certs_in(&read(&dir.join(format!("certs/{n}.pem"))));
        let got = Got::from_result(
            common::parse_chain(&chain).and_then(|certs| path::validate(&certs, &trust, &opts)),
        );
        assert_eq!(
            got.code(),
            Some("chain.weak-algorithm"),
            "voms-java {n}.pem with default algorithms: {}",
            got.label()
        );
    }
}
