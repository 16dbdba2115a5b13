//! Every known-answer vector gives exactly its expected decision, every
//! reason code has a vector, and the checked-in `test-vectors/` are what the
//! generator makes today.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::print_stderr
)]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use jobseal_testkit::{Expected, VECTOR_TIME, generate, write_dir};
use jobseal_verify::{Config, Decision, Invocation, Reason, Verifier, VomsCode, VomsInfo};

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Why the decision's VOMS entries differ from a vector's `expected_voms`.
fn voms_mismatch(expected: &serde_json::Value, got: &[VomsInfo]) -> Option<String> {
    let expected = expected.as_array().unwrap();
    if expected.len() != got.len() {
        return Some(format!("expected {} ACs, got {got:?}", expected.len()));
    }
    for (e, g) in expected.iter().zip(got) {
        let code = g.error.as_ref().map(|x| x.code.code());
        let fqans: Vec<&str> = e["fqans"]
            .as_array()
            .map(|a| a.iter().map(|f| f.as_str().unwrap()).collect())
            .unwrap_or_default();
        let gas: Vec<(&str, &str, &str)> = e["generic_attributes"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|x| {
                        let s = |k: &str| x[k].as_str().unwrap();
                        (s("name"), s("value"), s("qualifier"))
                    })
                    .collect()
            })
            .unwrap_or_default();
        let got_gas: Vec<(&str, &str, &str)> = g
            .generic_attributes
            .iter()
            .map(|x| (x.name.as_str(), x.value.as_str(), x.qualifier.as_str()))
            .collect();
        let ok = e["verified"].as_bool() == Some(g.verified)
            && e["vo"].as_str() == Some(g.vo.as_str())
            && e["error"].as_str() == code
            && fqans == g.fqans
            && gas == got_gas
            // Untrusted ACs give no attributes; trusted ones no error.
            && g.verified == code.is_none()
            && (g.verified || (g.fqans.is_empty() && g.generic_attributes.is_empty()));
        if !ok {
            return Some(format!("expected {e}, got {g:?}"));
        }
    }
    None
}

/// The decisions of one verifier on every vector, one `NAME<TAB>CODE` line
/// each, sorted by name: what the one-behaviour check (`.ci/one-behaviour`)
/// compares across the Rust API, the CLI and the C and Python bindings.
/// Written only when `JOBSEAL_DECISIONS_DIR` is set.
fn write_decisions(file: &str, decisions: &[(String, String)]) {
    let Some(dir) = std::env::var_os("JOBSEAL_DECISIONS_DIR") else {
        return;
    };
    let mut lines: Vec<String> = decisions
        .iter()
        .map(|(n, c)| format!("{n}\t{c}\n"))
        .collect();
    lines.sort();
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(Path::new(&dir).join(file), lines.concat()).unwrap();
}

struct Run {
    n: usize,
    failures: Vec<String>,
    seen: BTreeSet<&'static str>,
    /// (name, code) of the full check, and of the credential-only check.
    decisions: Vec<(String, String)>,
    credential: Vec<(String, String)>,
}

fn verify_dir(dir: &Path) -> (usize, Vec<String>, BTreeSet<&'static str>) {
    let r = run_dir(dir);
    (r.n, r.failures, r.seen)
}

fn run_dir(dir: &Path) -> Run {
    let index: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("vectors.json")).unwrap()).unwrap();
    let at = jobseal_verify::UnixTime::parse_rfc3339(index["verify_at"].as_str().unwrap()).unwrap();
    let verifier = Verifier::new(Config {
        ca_dir: dir.join(index["ca_dir"].as_str().unwrap()),
        voms_dir: dir.join(index["voms_dir"].as_str().unwrap()),
        ..Config::default()
    })
    .unwrap();
    let mut failures = Vec::new();
    let mut seen = BTreeSet::new();
    let mut decisions = Vec::new();
    let mut credential = Vec::new();
    let vectors = index["vectors"].as_array().unwrap();
    for v in vectors {
        let inv = Invocation {
            executable: dir.join(v["executable"].as_str().unwrap()),
            arguments: v["arguments"]
                .as_array()
                .unwrap()
                .iter()
                .map(|a| a.as_str().unwrap().into())
                .collect(),
            job_dir: dir.join(v["job_dir"].as_str().unwrap()),
        };
        let bundle = dir.join(v["bundle"].as_str().unwrap());
        let d = verifier.check_file(&bundle, &inv, at);
        let name = v["name"].as_str().unwrap().to_string();
        decisions.push((name.clone(), d.code().to_string()));
        let c = jobseal_verify::read_bundle_file(&bundle)
            .map_or_else(Decision::from_error, |b| verifier.check_credential(&b, at));
        credential.push((name, c.code().to_string()));
        let expected = v["expected"].as_str().unwrap();
        if d.code() != expected {
            failures.push(format!(
                "{}: expected {expected}, got {} ({})",
                v["name"],
                d.code(),
                d.message
            ));
        }
        if let Some(expected) = v.get("expected_voms") {
            let got = d
                .identity
                .as_ref()
                .map(|i| i.voms.as_slice())
                .unwrap_or_default();
            if let Some(why) = voms_mismatch(expected, got) {
                failures.push(format!("{}: VOMS: {why}", v["name"]));
            }
        }
        seen.insert(d.code());
    }
    Run {
        n: vectors.len(),
        failures,
        seen,
        decisions,
        credential,
    }
}

#[test]
fn every_vector_gives_its_expected_decision() {
    let fixture = generate().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    write_dir(&fixture, tmp.path()).unwrap();
    let (n, failures, _) = verify_dir(tmp.path());
    eprintln!(
        "vectors: {n} run, {} agree, {} disagree",
        n - failures.len(),
        failures.len()
    );
    assert!(n >= 50, "only {n} vectors");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn every_reason_code_has_a_vector() {
    let fixture = generate().unwrap();
    let covered: BTreeSet<&str> = fixture.vectors.iter().map(|v| v.expected.code()).collect();
    // config.invalid is a property of the verifier, not of a bundle (tested
    // below); internal.error has no input that reaches it by design;
    // chain.crl-missing needs CrlPolicy::Require, which the vectors do not
    // set (tests/revocation.rs covers it on these vectors).
    let exempt = [
        Reason::ConfigInvalid,
        Reason::Internal,
        Reason::ChainCrlMissing,
    ];
    // Codes of the admission steps (6 policy, 7 replay, 8 audit) are never
    // given by the verifier; their crates test them.
    let admission = |r: &Reason| {
        ["policy.", "replay.", "audit."]
            .iter()
            .any(|p| r.code().starts_with(p))
    };
    let missing: Vec<&str> = Reason::ALL
        .iter()
        .filter(|r| !exempt.contains(r) && !admission(r) && !covered.contains(r.code()))
        .map(|r| r.code())
        .collect();
    assert!(
        missing.is_empty(),
        "reason codes without a vector: {missing:?}"
    );
    assert!(
        fixture
            .vectors
            .iter()
            .any(|v| v.expected == Expected::Permit)
    );
}

#[test]
fn vector_names_are_unique_and_say_their_outcome() {
    let fixture = generate().unwrap();
    let mut names = BTreeSet::new();
    for v in &fixture.vectors {
        assert!(names.insert(v.name.clone()), "duplicate vector {}", v.name);
        let prefix = if v.expected == Expected::Permit {
            "permit-"
        } else {
            "deny-"
        };
        assert!(
            v.name.starts_with(prefix),
            "{} should start with {prefix}",
            v.name
        );
    }
}

#[test]
fn generation_is_deterministic() {
    let a = generate().unwrap();
    let b = generate().unwrap();
    assert_eq!(a.vectors.len(), b.vectors.len());
    for (x, y) in a.vectors.iter().zip(&b.vectors) {
        assert_eq!(x.bundle, y.bundle, "{} differs between two runs", x.name);
    }
}

fn tree(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if p.file_name().is_some_and(|n| n != "README.md") {
                out.push((
                    p.strip_prefix(dir).unwrap().to_path_buf(),
                    std::fs::read(&p).unwrap(),
                ));
            }
        }
    }
    out.sort();
    out
}

#[test]
fn checked_in_vectors_are_current_and_verify() {
    let checked_in = repo_root().join("test-vectors");
    assert!(
        checked_in.join("vectors.json").is_file(),
        "test-vectors/vectors.json is missing: run `cargo run -p jobseal-testkit --bin gen-vectors -- test-vectors`"
    );
    let tmp = tempfile::tempdir().unwrap();
    write_dir(&generate().unwrap(), tmp.path()).unwrap();
    let (fresh, old) = (tree(tmp.path()), tree(&checked_in));
    let names = |t: &[(PathBuf, Vec<u8>)]| t.iter().map(|(p, _)| p.clone()).collect::<Vec<_>>();
    assert_eq!(
        names(&old),
        names(&fresh),
        "test-vectors/ lists other files than the generator makes: regenerate"
    );
    for ((p, a), (_, b)) in old.iter().zip(&fresh) {
        assert!(
            a == b,
            "test-vectors/{} is stale: regenerate with gen-vectors",
            p.display()
        );
    }
    let run = run_dir(&checked_in);
    assert!(run.failures.is_empty(), "{}", run.failures.join("\n"));
    write_decisions("rust-api.tsv", &run.decisions);
    write_decisions("rust-credential.tsv", &run.credential);
    eprintln!(
        "checked-in vectors: {} verified as expected at {}",
        run.n,
        VECTOR_TIME.to_rfc3339()
    );
}

#[test]
fn a_missing_ca_directory_is_a_configuration_error() {
    let err = Verifier::new(Config {
        ca_dir: PathBuf::from("/nonexistent/jobseal/certificates"),
        ..Config::default()
    })
    .unwrap_err();
    assert_eq!(err.reason, Reason::ConfigInvalid);
}

#[test]
fn verifier_is_send_and_sync() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Verifier>();
}

#[test]
fn every_voms_code_has_a_vector_and_a_trusted_ac_one_too() {
    let fixture = generate().unwrap();
    let covered: BTreeSet<&str> = fixture
        .vectors
        .iter()
        .flat_map(|v| v.expected_voms.iter().flatten())
        .map(|e| e.error.unwrap_or("verified"))
        .collect();
    let missing: Vec<&str> = VomsCode::ALL
        .iter()
        .map(|c| c.code())
        .filter(|c| !covered.contains(c))
        .collect();
    assert!(
        missing.is_empty(),
        "VOMS codes without a vector: {missing:?}"
    );
    assert!(covered.contains("verified"));
    // A VOMS outcome never changes the decision.
    for v in &fixture.vectors {
        if v.expected_voms.is_some() {
            assert_eq!(v.expected, Expected::Permit, "{}", v.name);
        }
    }
}
