//! x509-limbo conformance: every generic RFC 5280 case of the shared corpus
//! (`limbo/limbo.json`) through the verifier's path-validation core
//! (`path::validate`), the peer certificate taken as the end entity.
//!
//! Limbo gives an unordered set of untrusted intermediates and trusted roots,
//! while jobseal verifies an ordered bundle. A small, bounded path builder in
//! this harness finds candidate issuers by name among the intermediates,
//! tries paths depth first, and validates each candidate path with
//! `path::validate` against a temporary CA directory holding the trusted
//! roots as `<hash>.N` (and the case's CRLs as `<issuer-hash>.rN`).
//!
//! Peer-name and EKU checks are the caller's, not the verifier's; `webpki::`
//! and `online::` (Web PKI profile) are skipped. Divergences must be listed in
//! `tests/conformance/limbo-exceptions.tsv`; the test fails on an unlisted
//! divergence, on a listed case that now agrees, and when nothing ran.
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
use jobseal_core::{Error, Reason, name, pem};
use jobseal_verify::parse::ParsedCert;
use jobseal_verify::path::{self, PathOptions};
use jobseal_verify::sig::AlgorithmPolicy;
use jobseal_verify::trust::TrustStore;

/// Longest path the builder assembles (leaf and intermediates; the anchor is
/// in the CA directory). The verifier's bundles hold at most 12 certificates.
const MAX_PATH_CERTS: usize = jobseal_core::limits::MAX_CHAIN_CERTS;
/// Most candidate paths handed to `path::validate` per case.
const MAX_VALIDATIONS: usize = 64;
/// Most issuer-candidate steps explored per case (pathological cases).
const MAX_STEPS: usize = 4096;

/// One certificate of the case, with its canonical names precomputed.
struct Node {
    der: Vec<u8>,
    subject: Vec<u8>,
    issuer: Vec<u8>,
}

impl Node {
    fn new(der: Vec<u8>) -> Option<Self> {
        let raw = jobseal_core::tlv::RawCert::split(&der)?;
        let subject = name::canonical(raw.subject)?;
        let issuer = name::canonical(raw.issuer)?;
        Some(Self {
            der,
            subject,
            issuer,
        })
    }
    fn self_issued(&self) -> bool {
        self.subject == self.issuer
    }
}

struct Builder<'a> {
    leaf: &'a [u8],
    intermediates: &'a [Node],
    /// Canonical subjects of the trusted roots.
    root_subjects: &'a [Vec<u8>],
    trust: &'a TrustStore,
    opts: PathOptions,
    max_depth: Option<usize>,
    steps: usize,
    validations: usize,
    /// Why each candidate path failed, in the order tried.
    errors: Vec<Error>,
    budget_exhausted: bool,
}

impl Builder<'_> {
    /// Depth-first: validate the current path if a trusted root can have
    /// issued its top, then extend it with each intermediate that may have.
    fn search(&mut self, path: &mut Vec<usize>, top_issuer: &[u8]) -> bool {
        if self.root_subjects.iter().any(|s| s == top_issuer) {
            if self.validations >= MAX_VALIDATIONS {
                self.budget_exhausted = true;
                return false;
            }
            self.validations += 1;
            let mut ders = vec![self.leaf.to_vec()];
            ders.extend(path.iter().map(|&i| self.intermediates[i].der.clone()));
            let result = common::parse_chain(&ders)
                .and_then(|certs| path::validate(&certs, self.trust, &self.opts));
            match result {
                Ok(_) => return true,
                Err(e) => self.errors.push(e),
            }
        }
        if path.len() + 1 >= MAX_PATH_CERTS {
            return false;
        }
        for (i, node) in self.intermediates.iter().enumerate() {
            if node.subject != top_issuer || path.contains(&i) {
                continue;
            }
            // The same certificate twice (e.g. listed twice) is a cycle too.
            if path.iter().any(|&p| self.intermediates[p].der == node.der) {
                continue;
            }
            if let Some(max) = self.max_depth {
                let logical = path
                    .iter()
                    .chain(std::iter::once(&i))
                    .filter(|&&p| !self.intermediates[p].self_issued())
                    .count();
                if logical > max {
                    continue;
                }
            }
            self.steps += 1;
            if self.steps > MAX_STEPS {
                self.budget_exhausted = true;
                return false;
            }
            path.push(i);
            let issuer = node.issuer.clone();
            if self.search(path, &issuer) {
                return true;
            }
            path.pop();
            if self.budget_exhausted {
                return false;
            }
        }
        false
    }
}

/// The error to report when every candidate path failed: the first one that
/// is not merely "this candidate issuer was the wrong one" (a signature that
/// does not verify, or no anchor), else the first one. Only the reported
/// reason depends on this; the verdict does not.
fn most_relevant(errors: Vec<Error>) -> Option<Error> {
    let wrong_issuer =
        |e: &Error| matches!(e.reason, Reason::ChainBadSignature | Reason::ChainUntrusted);
    match errors.iter().position(|e| !wrong_issuer(e)) {
        Some(i) => errors.into_iter().nth(i),
        None => errors.into_iter().next(),
    }
}

fn pem_ders(items: &serde_json::Value, label: &str) -> Vec<Vec<u8>> {
    items
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|p| {
            pem::parse_blocks(p.as_str().unwrap().as_bytes())
                .unwrap()
                .into_iter()
                .filter(|b| b.label == label)
                .map(|b| b.der)
        })
        .collect()
}

/// Run one case through the builder and `path::validate`.
fn run_case(tc: &serde_json::Value) -> Got {
    let roots = pem_ders(&tc["trusted_certs"], "CERTIFICATE");
    let intermediates = pem_ders(&tc["untrusted_intermediates"], "CERTIFICATE");
    let crls = pem_ders(&tc["crls"], "X509 CRL");
    let leaf = pem_ders(
        &serde_json::Value::Array(vec![tc["peer_certificate"].clone()]),
        "CERTIFICATE",
    );
    let leaf = leaf.first().expect("peer certificate").clone();
    let at = match tc["validation_time"].as_str() {
        Some(s) => UnixTime::parse_rfc3339(s).expect("validation_time"),
        None => UnixTime::now(),
    };
    let max_depth = tc["max_chain_depth"]
        .as_u64()
        .map(|d| usize::try_from(d).unwrap_or(usize::MAX));

    let dir = common::ca_dir(&roots, &crls);
    let trust = TrustStore::open(dir.path()).unwrap();
    // The leaf must be a certificate at all (step 1e).
    if let Err(e) = ParsedCert::from_der(leaf.clone(), 0) {
        return Got::from_result::<()>(Err(e));
    }
    let Some(leaf_node) = Node::new(leaf.clone()) else {
        return Got::Failure(
            Reason::CertMalformed.code().into(),
            "the leaf's names cannot be read".into(),
        );
    };
    let nodes: Vec<Node> = intermediates.into_iter().filter_map(Node::new).collect();
    let root_subjects: Vec<Vec<u8>> = roots
        .iter()
        .filter_map(|d| common::cert_subject(d).and_then(name::canonical))
        .collect();
    let mut b = Builder {
        leaf: &leaf,
        intermediates: &nodes,
        root_subjects: &root_subjects,
        trust: &trust,
        opts: PathOptions {
            at,
            // Limbo's times are exact (notbefore-exact, not-yet-valid-1-second).
            clock_skew: 0,
            algorithms: AlgorithmPolicy::default(),
        },
        max_depth,
        steps: 0,
        validations: 0,
        errors: Vec::new(),
        budget_exhausted: false,
    };
    let mut path = Vec::new();
    if b.search(&mut path, &leaf_node.issuer) {
        return Got::Success;
    }
    match most_relevant(std::mem::take(&mut b.errors)) {
        Some(e) => Got::from_result::<()>(Err(e)),
        // No candidate path reached a trusted root: what the verifier says
        // of the leaf alone (chain.untrusted).
        None => {
            let r = common::parse_chain(std::slice::from_ref(&leaf))
                .and_then(|certs| path::validate(&certs, &trust, &b.opts).map(|_| ()));
            match r {
                Err(e) if b.budget_exhausted => Got::Failure(
                    e.reason.code().into(),
                    format!("{} (path building budget exhausted)", e.message),
                ),
                other => Got::from_result(other),
            }
        }
    }
}

#[test]
fn limbo() {
    let corpus = common::corpus();
    let text = std::fs::read_to_string(corpus.join("limbo/limbo.json")).unwrap();
    let json: serde_json::Value = serde_json::from_str(&text).unwrap();
    let cases = json["testcases"].as_array().unwrap();
    assert_eq!(cases.len(), 208, "limbo.json: expected 208 cases");
    let mut suite = Suite::new("limbo", "limbo-exceptions.tsv");
    for tc in cases {
        let id = tc["id"].as_str().unwrap();
        let prefix = id.split("::").next().unwrap();
        let expected_ok = match tc["expected_result"].as_str().unwrap() {
            "SUCCESS" => true,
            "FAILURE" => false,
            other => panic!("{id}: unknown expected_result {other}"),
        };
        match prefix {
            "webpki" | "online" => {
                suite.skip(
                    prefix,
                    id,
                    "Web PKI (CA/B Forum) profile, out of scope for a grid verifier",
                );
                continue;
            }
            "rfc5280" | "pathlen" | "pathological" | "crl" | "cve" | "invalid" => {}
            other => panic!("{id}: unknown prefix {other}"),
        }
        let started = std::time::Instant::now();
        let got = run_case(tc);
        let elapsed = started.elapsed();
        assert!(
            elapsed < std::time::Duration::from_secs(20),
            "{id}: took {elapsed:?}; path building must stay bounded"
        );
        suite.ran(prefix, id, expected_ok, &got);
    }
    suite.finish();
}
