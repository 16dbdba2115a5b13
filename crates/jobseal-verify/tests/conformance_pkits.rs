//! NIST PKITS (Test Certificates 2011) conformance: the sections that apply
//! to jobseal's path validation, through `path::validate`, at
//! 2020-01-01T00:00:00Z, with `certs/TrustAnchorRootCertificate.crt` as the
//! only trust anchor and the intermediates and CRLs named by
//! `pkits/expected.tsv` (not guessed from file names).
//!
//! Revocation: the CRLs of each row are written to the temporary CA
//! directory as `<issuer-hash>.rN`, and `CrlPolicy::Require` is used (PKITS
//! expects revocation status to be established); sections 4.4 and 4.5 are run
//! a second time under the default `CrlPolicy` (`<id>@default-crl-policy`).
//!
//! Sections run: 4.1–4.7, 4.13 and 4.16, and the rows of 4.8–4.12 whose
//! initial policy inputs are RFC 5280's defaults (jobseal's inputs are fixed
//! at those). Skipped: 4.8–4.12 rows with other initial policy inputs, 4.14
//! (distribution points, indirect CRLs) and 4.15 (delta CRLs). Divergences
//! must be listed in `tests/conformance/pkits-exceptions.tsv`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::print_stderr
)]

#[path = "conformance/common.rs"]
mod common;

use common::{Got, Suite};
use jobseal_core::time::UnixTime;
use jobseal_verify::CrlPolicy;
use jobseal_verify::path::{self, PathOptions};
use jobseal_verify::sig::AlgorithmPolicy;
use jobseal_verify::trust::TrustStore;

/// 2020-01-01T00:00:00Z: inside every PKITS validity window that is meant to
/// be valid (README of the corpus).
const AT: u64 = 1_577_836_800;

struct Row {
    test_id: String,
    section: String,
    ee_file: String,
    expected_ok: bool,
    intermediates: Vec<String>,
    crls: Vec<String>,
    default_policy_inputs: bool,
}

fn list(s: &str) -> Vec<String> {
    s.split(',')
        .map(str::trim)
        .filter(|x| !x.is_empty())
        .map(String::from)
        .collect()
}

fn rows(text: &str) -> Vec<Row> {
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split('\t').collect();
    let col = |name: &str| {
        header
            .iter()
            .position(|h| *h == name)
            .unwrap_or_else(|| panic!("expected.tsv has no column {name}"))
    };
    let (id, sec, ee, exp, int, crl) = (
        col("test_id"),
        col("section"),
        col("ee_file"),
        col("expected"),
        col("intermediates"),
        col("crls"),
    );
    let (ps, ep, pm, ap) = (
        col("initial_policy_set"),
        col("initial_explicit_policy"),
        col("initial_policy_mapping_inhibit"),
        col("initial_any_policy_inhibit"),
    );
    lines
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let c: Vec<&str> = l.split('\t').collect();
            let get = |i: usize| c.get(i).copied().unwrap_or("");
            Row {
                test_id: get(id).into(),
                section: get(sec).into(),
                ee_file: get(ee).into(),
                expected_ok: match get(exp) {
                    "VALID" => true,
                    "INVALID" => false,
                    other => panic!("{}: unknown expected {other}", get(id)),
                },
                intermediates: list(get(int)),
                crls: list(get(crl)),
                default_policy_inputs: get(ps) == "anyPolicy"
                    && get(ep) == "false"
                    && get(pm) == "false"
                    && get(ap) == "false",
            }
        })
        .collect()
}

/// Why a section (or a row of it) is not run, or `None` to run it.
fn skip_reason(row: &Row) -> Option<&'static str> {
    match row.section.as_str() {
        "4.14" => Some(
            "4.14 distribution points and indirect CRLs: not supported (jobseal reads only the issuing CA's <hash>.rN CRLs)",
        ),
        "4.15" => Some("4.15 delta CRLs: not supported"),
        "4.8" | "4.9" | "4.10" | "4.11" | "4.12" if !row.default_policy_inputs => Some(
            "non-default initial policy inputs: jobseal's are fixed at RFC 5280's defaults (any-policy set, no explicit policy, mapping and anyPolicy not inhibited)",
        ),
        _ => None,
    }
}

#[test]
fn pkits() {
    let corpus = common::corpus().join("pkits");
    let text = std::fs::read_to_string(corpus.join("expected.tsv")).unwrap();
    let rows = rows(&text);
    assert_eq!(rows.len(), 247, "pkits/expected.tsv: expected 247 rows");
    let read = |dir: &str, f: &str| {
        std::fs::read(corpus.join(dir).join(f)).unwrap_or_else(|e| panic!("pkits/{dir}/{f}: {e}"))
    };
    let anchor = read("certs", "TrustAnchorRootCertificate.crt");
    let anchor_spki = jobseal_core::tlv::RawCert::split(&anchor)
        .unwrap()
        .spki
        .to_vec();
    let mut suite = Suite::new("pkits", "pkits-exceptions.tsv");
    for row in &rows {
        let group = format!("section {}", row.section);
        if let Some(reason) = skip_reason(row) {
            suite.skip(&group, &row.test_id, reason);
            continue;
        }
        // Leaf first: the EE, then the intermediates from the EE up.
        let mut chain = vec![read("certs", &row.ee_file)];
        chain.extend(row.intermediates.iter().rev().map(|f| read("certs", f)));
        let crls: Vec<Vec<u8>> = row.crls.iter().map(|f| read("crls", f)).collect();
        let dir = common::ca_dir(std::slice::from_ref(&anchor), &crls);
        let opts = PathOptions {
            at: UnixTime(AT),
            clock_skew: 0,
            algorithms: AlgorithmPolicy::default(),
        };
        // PKITS supplies a CRL for every CA of every path and expects
        // revocation status to be established (4.4.1: no CRL → invalid), which
        // is `CrlPolicy::Require`. The revocation sections are run a second
        // time under the default policy, which a site gets unless it opts in,
        // as ids `<test>@default-crl-policy`.
        let mut runs = vec![(CrlPolicy::Require, row.test_id.clone(), group.clone())];
        if matches!(row.section.as_str(), "4.4" | "4.5") {
            runs.push((
                CrlPolicy::default(),
                format!("{}@default-crl-policy", row.test_id),
                format!("section {} (default CRL policy)", row.section),
            ));
        }
        for (policy, id, group) in runs {
            let mut trust = TrustStore::open(dir.path()).unwrap();
            trust.crl = policy;
            let got = Got::from_result(
                common::parse_chain(&chain).and_then(|certs| path::validate(&certs, &trust, &opts)),
            );
            if row.expected_ok
                && got.code() == Some("chain.weak-algorithm")
                && let Some((category, why)) =
                    common::uses_refused_algorithm(&chain, std::slice::from_ref(&anchor_spki))
            {
                eprintln!("pkits: {id}: skipped: {why}");
                suite.skip(
                    &group,
                    &id,
                    &format!("expected valid, but uses an algorithm jobseal refuses: {category}"),
                );
                continue;
            }
            suite.ran(&group, &id, row.expected_ok, &got);
        }
    }
    // The TOTAL line counts the re-runs too; the 247 PKITS tests alone:
    let mut tests = common::Counts::default();
    let mut reruns = common::Counts::default();
    for (group, c) in &suite.groups {
        let into = if group.contains("default CRL policy") {
            &mut reruns
        } else {
            &mut tests
        };
        into.merge(c);
    }
    eprintln!("pkits: the 247 PKITS tests: {}", tests.line());
    eprintln!(
        "pkits: re-runs of 4.4 and 4.5 under the default CRL policy: {}",
        reruns.line()
    );
    suite.finish();
}
