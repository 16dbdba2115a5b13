//! VOMS AC verification (§6.3a) on real proxies of the conformance corpus
//! (`third_party/conformance`): DIRAC's `voms-proxy-fake` proxy and the Java
//! VOMS clients' proxies, each with the outcome its README gives.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::print_stderr
)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use jobseal_core::name;
use jobseal_core::pem::parse_blocks;
use jobseal_core::time::UnixTime;
use jobseal_verify::parse::ParsedCert;
use jobseal_verify::path::PathOptions;
use jobseal_verify::sig::AlgorithmPolicy;
use jobseal_verify::trust::TrustStore;
use jobseal_verify::voms::{self, VomsContext};
use jobseal_verify::{GenericAttribute, VomsCode, VomsInfo};

/// The conformance corpus, `third_party/conformance` in the repository.
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

fn certs(rel: &str) -> Vec<ParsedCert> {
    parse_blocks(&std::fs::read(corpus(rel)).unwrap())
        .unwrap()
        .into_iter()
        .filter(|b| b.label == "CERTIFICATE")
        .enumerate()
        .map(|(i, b)| ParsedCert::from_der(b.der, i).unwrap())
        .collect()
}

/// A CA directory holding these PEM certificates as `<hash>.0`.
fn ca_dir(cas: &[&str]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for rel in cas {
        let c = certs(rel).remove(0);
        let hash = name::openssl_hash(c.subject()).unwrap();
        std::fs::copy(corpus(rel), dir.path().join(format!("{hash:08x}.0"))).unwrap();
    }
    dir
}

fn vomsdir(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (rel, text) in files {
        let p = dir.path().join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }
    dir
}

fn opts(at: &str) -> PathOptions {
    PathOptions {
        at: UnixTime::parse_rfc3339(at).unwrap(),
        clock_skew: 300,
        algorithms: AlgorithmPolicy::default(),
    }
}

fn check(proxy: &ParsedCert, eec: &ParsedCert, ca: &Path, vd: &Path, at: &str) -> Vec<VomsInfo> {
    let trust = TrustStore::open(ca).unwrap();
    let o = opts(at);
    let ctx = VomsContext {
        trust: &trust,
        voms_dir: vd,
        opts: &o,
    };
    voms::check_certificate(proxy, eec, &ctx)
}

fn code(v: &VomsInfo) -> &'static str {
    v.error.as_ref().map_or("verified", |e| e.code.code())
}

fn assert_untrusted(v: &VomsInfo, expected: VomsCode) {
    assert!(!v.verified, "{v:?}");
    assert_eq!(v.error.as_ref().map(|e| e.code), Some(expected), "{v:?}");
    assert!(
        v.fqans.is_empty() && v.generic_attributes.is_empty(),
        "{v:?}"
    );
}

const DIRAC_AA: &str = "/O=Dirac Computing/O=CERN/CN=VOBox";
const DIRAC_CA: &str = "/O=DIRAC Computing/CN=DIRAC Computing Signing Certification Authority";
const DIRAC_LSC: &str = "fakevo/fakeserver.cern.ch.lsc";
const DIRAC_AT: &str = "2026-01-01T00:00:00Z";

struct Dirac {
    proxy: ParsedCert,
    eec: ParsedCert,
    ca: tempfile::TempDir,
}

fn dirac() -> Dirac {
    let mut chain = certs("proxies/dirac/voms/proxy.pem");
    assert_eq!(chain.len(), 2, "proxy and EEC");
    let eec = chain.pop().unwrap();
    let proxy = chain.pop().unwrap();
    Dirac {
        proxy,
        eec,
        ca: ca_dir(&["proxies/dirac/ca/ca.cert.pem"]),
    }
}

#[test]
fn dirac_voms_proxy_fake_ac_is_verified_with_a_matching_lsc() {
    let d = dirac();
    let vd = vomsdir(&[(
        DIRAC_LSC,
        &format!("# the DIRAC test AA\n{DIRAC_AA}\n\n{DIRAC_CA}\n"),
    )]);
    let got = check(&d.proxy, &d.eec, d.ca.path(), vd.path(), DIRAC_AT);
    assert_eq!(got.len(), 1);
    let v = &got[0];
    assert!(v.verified, "{v:?}");
    assert_eq!(v.error, None);
    assert_eq!(v.vo, "fakevo");
    assert_eq!(v.fqans, vec!["/fakevo/Role=user/Capability=NULL"]);
    assert!(v.generic_attributes.is_empty());
    assert_eq!(v.issuer, DIRAC_AA);
    assert_eq!(v.not_after, UnixTime::parse_rfc3339("2029-01-09T21:54:37Z"));
    // Any description of the file may match: here the second, after VOMS's
    // NEXT CHAIN separator.
    let vd = vomsdir(&[(
        DIRAC_LSC,
        &format!("/CN=other AA\n/CN=other CA\n------ NEXT CHAIN ------\n{DIRAC_AA}\n{DIRAC_CA}\n"),
    )]);
    assert!(check(&d.proxy, &d.eec, d.ca.path(), vd.path(), DIRAC_AT)[0].verified);
    eprintln!("dirac: 1 AC verified, FQAN /fakevo/Role=user/Capability=NULL");
}

#[test]
fn dirac_ac_untrusted_for_each_broken_premise() {
    let d = dirac();
    let good = format!("{DIRAC_AA}\n{DIRAC_CA}\n");
    let at = DIRAC_AT;
    let one = |ca: &Path, files: &[(&str, &str)], eec: &ParsedCert, at: &str| {
        let vd = vomsdir(files);
        let mut got = check(&d.proxy, eec, ca, vd.path(), at);
        assert_eq!(got.len(), 1);
        got.remove(0)
    };
    let mut seen = BTreeMap::new();
    let mut expect = |what: &str, v: VomsInfo, c: VomsCode| {
        assert_untrusted(&v, c);
        // Untrusted, but still says which VO and AA it claimed to be.
        assert_eq!(v.vo, "fakevo", "{what}");
        eprintln!(
            "dirac {what}: {}: {}",
            c.code(),
            v.error.as_ref().unwrap().message
        );
        seen.insert(c.code(), what.to_string());
    };
    // Wrong LSC: the AA's DN differs.
    expect(
        "wrong LSC",
        one(
            d.ca.path(),
            &[(
                DIRAC_LSC,
                &format!("/O=Dirac Computing/O=CERN/CN=Other\n{DIRAC_CA}\n"),
            )],
            &d.eec,
            at,
        ),
        VomsCode::LscMismatch,
    );
    // Wrong LSC: right AA, wrong CA.
    expect(
        "LSC naming another CA",
        one(
            d.ca.path(),
            &[(
                DIRAC_LSC,
                &format!("{DIRAC_AA}\n/O=DIRAC Computing/CN=Other CA\n"),
            )],
            &d.eec,
            at,
        ),
        VomsCode::LscMismatch,
    );
    // An LSC describing more than the chain up to the (self-signed) CA.
    expect(
        "LSC longer than the chain",
        one(
            d.ca.path(),
            &[(DIRAC_LSC, &format!("{good}/CN=Above The Root\n"))],
            &d.eec,
            at,
        ),
        VomsCode::LscMismatch,
    );
    // A one-line LSC is no description.
    expect(
        "one-line LSC",
        one(
            d.ca.path(),
            &[(DIRAC_LSC, &format!("{DIRAC_AA}\n"))],
            &d.eec,
            at,
        ),
        VomsCode::NoLsc,
    );
    expect(
        "no LSC",
        one(
            d.ca.path(),
            &[("othervo/fakeserver.cern.ch.lsc", &good)],
            &d.eec,
            at,
        ),
        VomsCode::NoLsc,
    );
    expect(
        "LSC for another host",
        one(
            d.ca.path(),
            &[("fakevo/voms.cern.ch.lsc", &good)],
            &d.eec,
            at,
        ),
        VomsCode::NoLsc,
    );
    // The CA directory does not hold the DIRAC CA.
    let empty = tempfile::tempdir().unwrap();
    expect(
        "AA not under a trusted CA",
        one(empty.path(), &[(DIRAC_LSC, &good)], &d.eec, at),
        VomsCode::UntrustedAa,
    );
    // After the AC's notAfter (the AA and CA are still valid in 2030).
    expect(
        "in 2030",
        one(
            d.ca.path(),
            &[(DIRAC_LSC, &good)],
            &d.eec,
            "2030-01-01T00:00:00Z",
        ),
        VomsCode::Expired,
    );
    // Before its notBefore (2023-04-28T13:54:37Z), beyond the skew.
    expect(
        "before its start",
        one(
            d.ca.path(),
            &[(DIRAC_LSC, &good)],
            &d.eec,
            "2023-04-28T13:40:00Z",
        ),
        VomsCode::NotYetValid,
    );
    // Presented with another EEC than the one it was issued to.
    let host = certs("proxies/dirac/host/hostcert.pem").remove(0);
    expect(
        "another holder",
        one(d.ca.path(), &[(DIRAC_LSC, &good)], &host, at),
        VomsCode::HolderMismatch,
    );
    eprintln!("dirac: untrusted outcomes {seen:?}");
}

#[test]
fn dirac_ac_within_the_skew_of_its_start() {
    // The proxy starts 5 min before its AC (13:49:37 vs 13:54:37): at 13:50
    // the AC is 277 s early, inside the 300 s skew, and the chain is valid.
    let d = dirac();
    let vd = vomsdir(&[(DIRAC_LSC, &format!("{DIRAC_AA}\n{DIRAC_CA}\n"))]);
    let v = &check(
        &d.proxy,
        &d.eec,
        d.ca.path(),
        vd.path(),
        "2023-04-28T13:50:00Z",
    )[0];
    assert!(v.verified, "{v:?}");
}

#[test]
fn voms_java_acs_at_2023_06_01() {
    let root = "proxies/voms-java";
    let ca = ca_dir(&[
        "proxies/voms-java/trust-anchors/igi-test-ca.pem",
        "proxies/voms-java/trust-anchors/igi-test-ca-2.pem",
    ]);
    let vd = corpus(&format!("{root}/vomsdir"));
    let eec = certs(&format!("{root}/certs/test0.cert.pem")).remove(0);
    let at = "2023-06-01T00:00:00Z";
    let ga = |n: &str, v: &str| GenericAttribute {
        name: n.into(),
        value: v.into(),
        qualifier: "test.vo".into(),
    };
    let mut outcomes: BTreeMap<String, Vec<u32>> = BTreeMap::new();
    let mut all = BTreeMap::new();
    for n in [0u32, 1, 2, 3, 4, 5, 6, 9] {
        let chain = certs(&format!("{root}/certs/{n}.pem"));
        let got: Vec<VomsInfo> = chain
            .iter()
            .flat_map(|c| check(c, &eec, ca.path(), &vd, at))
            .collect();
        for v in &got {
            outcomes.entry(code(v).to_string()).or_default().push(n);
        }
        all.insert(n, got);
    }
    eprintln!("voms-java ACs at {at}: {outcomes:?}");
    for n in [0, 9] {
        assert!(all[&n].is_empty(), "{n}.pem carries no AC");
    }
    for n in [1, 2, 3, 4, 5, 6] {
        assert_eq!(all[&n].len(), 1, "{n}.pem");
    }
    // 1: the AC expired on 2022-12-12.
    assert_untrusted(&all[&1][0], VomsCode::Expired);
    // 5: signed by an AA that no LSC describes.
    assert_untrusted(&all[&5][0], VomsCode::LscMismatch);
    // 2 (its proxy has expired, but the AC is fine), 3, 4 and 6 (proxy 3's
    // AC on the inner proxy): verified.
    let v2 = &all[&2][0];
    assert!(v2.verified, "{v2:?}");
    assert_eq!(v2.fqans, vec!["/test.vo"]);
    let v3 = &all[&3][0];
    assert!(v3.verified, "{v3:?}");
    assert_eq!(
        v3.fqans,
        vec!["/test.vo/exp1", "/test.vo/exp2", "/test.vo/exp3/Role=PIPPO"]
    );
    assert_eq!(
        v3.generic_attributes,
        vec![ga("nickname", "sd"), ga("nickname", "cnaf")]
    );
    assert_eq!(v3.issuer, "/C=IT/O=IGI/CN=*.test.example");
    let v4 = &all[&4][0];
    assert!(v4.verified, "{v4:?}");
    assert_eq!(
        v4.generic_attributes,
        vec![
            ga("nickname", "sd"),
            ga("title", "assegnista%di%ricerca@CNAF")
        ]
    );
    assert_eq!(all[&6][0], *v3);
    let count = |c: &str| outcomes.get(c).map_or(0, Vec::len);
    assert_eq!(
        (
            count("verified"),
            count("voms.expired"),
            count("voms.lsc-mismatch")
        ),
        (4, 1, 1)
    );
}

#[test]
fn voms_java_untrusted_aa_is_refused_even_with_an_lsc() {
    // Describe proxy 5's AA in an LSC: its certificate is signed with SHA-1
    // by Test CA 2, which the default algorithm policy refuses.
    let root = "proxies/voms-java";
    let ca = ca_dir(&[
        "proxies/voms-java/trust-anchors/igi-test-ca.pem",
        "proxies/voms-java/trust-anchors/igi-test-ca-2.pem",
    ]);
    let vd = vomsdir(&[(
        "test.vo/voms.example.lsc",
        "/C=IT/O=IGI/CN=voms.example\n/C=IT/O=IGI/CN=Test CA 2\n",
    )]);
    let eec = certs(&format!("{root}/certs/test0.cert.pem")).remove(0);
    let proxy = certs(&format!("{root}/certs/5.pem")).remove(0);
    let v = &check(&proxy, &eec, ca.path(), vd.path(), "2023-06-01T00:00:00Z")[0];
    assert_untrusted(v, VomsCode::UntrustedAa);
    assert!(
        v.error
            .as_ref()
            .unwrap()
            .message
            .contains("chain.weak-algorithm"),
        "{v:?}"
    );
}

#[test]
fn unreadable_extensions_are_untrusted_entries_never_errors() {
    let d = dirac();
    let vd = vomsdir(&[]);
    let trust = TrustStore::open(d.ca.path()).unwrap();
    let o = opts(DIRAC_AT);
    let ctx = VomsContext {
        trust: &trust,
        voms_dir: vd.path(),
        opts: &o,
    };
    let mut budget = voms::MAX_ACS;
    let got = voms::check_extension(b"\x30\x03garbage", &d.eec, &ctx, &mut budget);
    assert_eq!(got.len(), 1);
    assert_untrusted(&got[0], VomsCode::Malformed);
    assert_eq!(got[0].not_after, None);
    let huge = vec![0u8; jobseal_core::voms::MAX_AC_SEQ_BYTES + 1];
    let got = voms::check_extension(&huge, &d.eec, &ctx, &mut budget);
    assert_untrusted(&got[0], VomsCode::LimitsExceeded);
    // The budget of ACs is shared by the whole chain.
    let ext = d
        .proxy
        .extensions_with(jobseal_core::oid::VOMS_AC_SEQ)
        .next()
        .unwrap()
        .extn_value
        .as_bytes()
        .to_vec();
    let mut budget = 0;
    let got = voms::check_extension(&ext, &d.eec, &ctx, &mut budget);
    assert_untrusted(&got[0], VomsCode::LimitsExceeded);
}

#[test]
fn lsc_files_are_read_strictly_and_boundedly() {
    let d = dirac();
    let good = format!("{DIRAC_AA}\n{DIRAC_CA}\n");
    let run = |files: &[(&str, &str)]| {
        let vd = vomsdir(files);
        check(&d.proxy, &d.eec, d.ca.path(), vd.path(), DIRAC_AT).remove(0)
    };
    // Surrounding whitespace is trimmed; a non-DN line makes the file unusable.
    assert!(run(&[(DIRAC_LSC, &format!("  {DIRAC_AA}  \r\n\t{DIRAC_CA}\n"))]).verified);
    assert_untrusted(
        &run(&[(DIRAC_LSC, &format!("{good}\"{DIRAC_AA}\"\n"))]),
        VomsCode::NoLsc,
    );
    let big = format!("{good}{}", "#\n".repeat(40_000));
    assert_untrusted(&run(&[(DIRAC_LSC, &big)]), VomsCode::LimitsExceeded);
    // A directory or a FIFO in place of the file is no LSC (and no hang).
    let vd = vomsdir(&[]);
    std::fs::create_dir_all(vd.path().join(DIRAC_LSC)).unwrap();
    let v = &check(&d.proxy, &d.eec, d.ca.path(), vd.path(), DIRAC_AT)[0];
    assert_untrusted(v, VomsCode::NoLsc);
    let vd = vomsdir(&[]);
    std::fs::create_dir_all(vd.path().join("fakevo")).unwrap();
    let fifo = vd.path().join(DIRAC_LSC);
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(made.success());
    let v = &check(&d.proxy, &d.eec, d.ca.path(), vd.path(), DIRAC_AT)[0];
    assert_untrusted(v, VomsCode::NoLsc);
    // A vomsdir that does not exist describes no AA.
    let v = &check(
        &d.proxy,
        &d.eec,
        d.ca.path(),
        Path::new("/nonexistent/vomsdir"),
        DIRAC_AT,
    )[0];
    assert_untrusted(v, VomsCode::NoLsc);
}

#[test]
fn lsc_pair_form_for_an_aa_under_an_intermediate_ca() {
    // The vector whose AC carries the AA and its intermediate CA: the LSC
    // may also pair each carried certificate's subject and issuer (the
    // layout VOMS's C++ library reads), but no other arrangement.
    let fixture = jobseal_testkit::generate().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    jobseal_testkit::write_dir(&fixture, tmp.path()).unwrap();
    let bundle = std::fs::read(
        tmp.path()
            .join("permit-voms-aa-under-intermediate-ca/bundle.pem"),
    )
    .unwrap();
    let chain: Vec<ParsedCert> = parse_blocks(&bundle)
        .unwrap()
        .into_iter()
        .filter(|b| b.label == "CERTIFICATE")
        .enumerate()
        .map(|(i, b)| ParsedCert::from_der(b.der, i).unwrap())
        .collect();
    let (proxy, eec) = (&chain[1], &chain[2]);
    let aa = "/O=jobseal test vectors/CN=voms2.jobseal.test";
    let sub = "/O=jobseal test vectors/CN=jobseal Test Sub CA";
    let root = "/O=jobseal test vectors/CN=jobseal Test CA";
    let lsc = "testvo/voms2.jobseal.test.lsc";
    let ca = tmp.path().join("ca");
    let at = "2026-01-01T00:00:00Z";
    for (text, verified) in [
        (format!("{aa}\n{sub}\n{root}\n"), true),
        (format!("{aa}\n{sub}\n"), true),
        (format!("{aa}\n{sub}\n{sub}\n{root}\n"), true),
        (format!("{aa}\n{root}\n"), false),
        (format!("{aa}\n{sub}\n{root}\n{root}\n"), false),
        (format!("{aa}\n{sub}\n{sub}\n"), false),
    ] {
        let vd = vomsdir(&[(lsc, &text)]);
        let v = &check(proxy, eec, &ca, vd.path(), at)[0];
        assert_eq!(v.verified, verified, "{text:?}: {v:?}");
        if !verified {
            assert_untrusted(v, VomsCode::LscMismatch);
        }
    }
}
