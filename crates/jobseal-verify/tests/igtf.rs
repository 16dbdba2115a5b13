//! The real IGTF distribution (Debian `igtf-policy-*`) as a CA directory:
//! every CA certificate parses and is found by its subject hash, every
//! `.namespaces` and `.signing_policy` file parses, every CA's policy names
//! it as an issuer and refuses a subject outside its namespace, and every
//! intermediate CA of the distribution is inside its issuer's namespace.
//!
//! The installation is used read-only, through symbolic links in a
//! temporary directory that joins the four profiles. Without the packages
//! the test says SKIPPED and returns (`jobseal_testkit::peers`), or fails
//! under `JOBSEAL_REQUIRE_PEERS=1` (`scripts/test`, CI); never silently.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::print_stderr
)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use jobseal_core::pem::parse_blocks;
use jobseal_core::{Reason, name};
use jobseal_issue::proxy::CertTemplate;
use jobseal_issue::throwaway;
use jobseal_verify::UnixTime;
use jobseal_verify::namespaces::{self, RuleIssuer};
use jobseal_verify::parse::ParsedCert;
use jobseal_verify::trust::TrustStore;

const ROOT: &str = "/usr/share/igtf-policy";
const PROFILES: [&str; 4] = ["classic", "mics", "slcs", "iota"];

/// A CA directory joining every profile, as `/etc/grid-security/certificates`
/// holds it when all four packages are installed; `None` once the test has
/// been reported skipped.
fn joined_installation() -> Option<tempfile::TempDir> {
    let needs: Vec<(String, String)> = PROFILES
        .iter()
        .map(|p| (format!("{ROOT}/{p}"), format!("igtf-policy-{p}")))
        .collect();
    let needs: Vec<(&str, &str)> = needs
        .iter()
        .map(|(a, b)| (a.as_str(), b.as_str()))
        .collect();
    if !jobseal_testkit::peers::require_all(&needs) {
        return None;
    }
    let dir = tempfile::tempdir().unwrap();
    for p in PROFILES {
        for e in std::fs::read_dir(Path::new(ROOT).join(p)).unwrap() {
            let src = e.unwrap().path();
            let dst = dir.path().join(src.file_name().unwrap());
            if dst.exists() {
                assert_eq!(
                    std::fs::read(&src).unwrap(),
                    std::fs::read(&dst).unwrap(),
                    "{} differs between profiles",
                    src.display()
                );
                continue;
            }
            std::os::unix::fs::symlink(&src, &dst).unwrap();
        }
    }
    Some(dir)
}

fn files_with(dir: &Path, suffix: &str) -> BTreeMap<PathBuf, PathBuf> {
    // canonical path → one name in the directory (hash and alias names
    // link to the same file).
    let mut out = BTreeMap::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.file_name().unwrap().to_string_lossy().ends_with(suffix) {
            out.entry(std::fs::canonicalize(&p).unwrap()).or_insert(p);
        }
    }
    out
}

fn certificate(path: &Path) -> ParsedCert {
    let data = std::fs::read(path).unwrap();
    let blocks = parse_blocks(&data).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let certs: Vec<_> = blocks
        .into_iter()
        .filter(|b| b.label == "CERTIFICATE")
        .collect();
    assert_eq!(certs.len(), 1, "{}", path.display());
    ParsedCert::from_der(certs[0].der.clone(), 0)
        .unwrap_or_else(|e| panic!("{} does not parse: {e}", path.display()))
}

/// A certificate with `subject`, claiming to be issued by `issuer` (its
/// signature is not what the namespace check looks at).
fn probe(issuer: &ParsedCert, subject: &str) -> ParsedCert {
    let (key, _, spki) = throwaway::ed25519_from_seed(&[7; 32]).unwrap();
    let der = CertTemplate {
        serial: 7,
        issuer: issuer.subject().to_vec(),
        subject: throwaway::name_der(subject).unwrap(),
        spki,
        not_before: UnixTime(1_767_225_600),
        not_after: UnixTime(1_767_225_600 + 86_400),
        extensions: throwaway::user_extensions().unwrap(),
    }
    .sign(&key)
    .unwrap();
    ParsedCert::from_der(der, 0).unwrap()
}

#[test]
fn the_igtf_distribution_is_read_whole() {
    let Some(dir) = joined_installation() else {
        return;
    };
    let trust = TrustStore::open(dir.path()).unwrap();

    // Every CA file parses as a certificate, under its alias and under each
    // of its <hash>.0 links (current and pre-1.0 OpenSSL hashes).
    let cas: Vec<(PathBuf, ParsedCert)> = files_with(dir.path(), ".pem")
        .into_keys()
        .map(|p| {
            let c = certificate(&p);
            (p, c)
        })
        .collect();
    let mut hash_links = 0;
    for e in std::fs::read_dir(dir.path()).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "0") {
            certificate(&p);
            hash_links += 1;
        }
    }
    assert!(cas.len() > 50, "only {} CAs", cas.len());

    // Every policy file parses.
    let mut parsed = [0usize; 2];
    for (i, (suffix, parse)) in [
        (
            ".namespaces",
            namespaces::parse_namespaces as fn(&[u8]) -> _,
        ),
        (".signing_policy", namespaces::parse_signing_policy),
    ]
    .into_iter()
    .enumerate()
    {
        for (canonical, _) in files_with(dir.path(), suffix) {
            let rules = parse(&std::fs::read(&canonical).unwrap())
                .unwrap_or_else(|e| panic!("{}: {e}", canonical.display()));
            assert!(!rules.is_empty(), "{} has no rule", canonical.display());
            parsed[i] += 1;
        }
    }

    // By subject hash: the certificate, and a policy about the CA itself.
    let subjects: BTreeSet<Vec<u8>> = cas.iter().map(|(_, c)| c.subject().to_vec()).collect();
    for (path, ca) in &cas {
        let found = trust.candidates(ca.subject());
        assert!(
            found.iter().any(|(_, c)| c.der == ca.der),
            "{}: the subject hash of {} finds no file that holds it",
            path.display(),
            ca.subject_dn()
        );
        let hash = name::openssl_hash(ca.subject()).unwrap();
        let rules = ["namespaces", "signing_policy"]
            .iter()
            .map(|s| dir.path().join(format!("{hash:08x}.{s}")))
            .find(|p| p.exists())
            .map(|p| {
                let data = std::fs::read(&p).unwrap();
                if p.extension().is_some_and(|e| e == "namespaces") {
                    namespaces::parse_namespaces(&data).unwrap()
                } else {
                    namespaces::parse_signing_policy(&data).unwrap()
                }
            })
            .unwrap_or_else(|| panic!("{} has no policy file", ca.subject_dn()));
        let me = RuleIssuer::Dn(ca.subject_dn().to_ascii_lowercase());
        assert!(
            rules
                .iter()
                .any(|r| r.issuer == me || r.issuer == RuleIssuer::SelfCa),
            "the policy of {hash:08x} has no rule about {}",
            ca.subject_dn()
        );
    }

    // Each CA's policy refuses a subject outside its namespace, and admits
    // every intermediate CA of the distribution that it issued.
    let by_subject: BTreeMap<Vec<u8>, &ParsedCert> =
        cas.iter().map(|(_, c)| (c.subject().to_vec(), c)).collect();
    let mut intermediates = 0;
    for (_, ca) in &cas {
        let outsider = probe(ca, "CN=jobseal namespace probe,O=nowhere,DC=invalid");
        let e = namespaces::check(&outsider, &[ca], &trust).unwrap_err();
        assert_eq!(e.reason, Reason::ChainNamespaceViolation, "{}", e.message);
        if name::same(ca.subject(), ca.issuer()) || !subjects.contains(ca.issuer()) {
            continue;
        }
        // Walk up to the self-signed root within the distribution.
        let mut above = vec![by_subject[ca.issuer()]];
        while let Some(top) = above.last() {
            if name::same(top.subject(), top.issuer()) {
                break;
            }
            match by_subject.get(top.issuer()) {
                Some(next) if above.len() < 8 => above.push(next),
                _ => break,
            }
        }
        namespaces::check(ca, &above, &trust)
            .unwrap_or_else(|e| panic!("{}: {}", ca.subject_dn(), e.message));
        intermediates += 1;
    }
    eprintln!(
        "igtf: {} CA files ({hash_links} <hash>.0 links), {} namespaces, {} signing_policy parsed; \
         {intermediates} intermediate CAs inside their issuer's namespace",
        cas.len(),
        parsed[0],
        parsed[1]
    );
}
