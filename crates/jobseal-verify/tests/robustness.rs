//! No input makes the verifier fault: mutated vectors and the shared
//! malformed-certificate seeds all get a decision other than `internal.error`,
//! and no mutation of a permitted bundle is permitted.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::print_stderr,
    clippy::cast_possible_truncation
)]

use std::path::{Path, PathBuf};

use jobseal_core::pem::encode_block;
use jobseal_testkit::{VECTOR_TIME, generate, write_dir};
use jobseal_verify::{Config, Invocation, Verifier};

fn setup() -> (tempfile::TempDir, Verifier, Invocation, Vec<u8>) {
    let tmp = tempfile::tempdir().unwrap();
    let fixture = generate().unwrap();
    write_dir(&fixture, tmp.path()).unwrap();
    let verifier = Verifier::new(Config {
        ca_dir: tmp.path().join("ca"),
        ..Config::default()
    })
    .unwrap();
    let name = "permit-via-two-proxies";
    let job = tmp.path().join(name).join("job");
    let inv = Invocation {
        executable: job.join("run.sh"),
        arguments: vec!["--events".into(), "1000".into()],
        job_dir: job,
    };
    let bundle = std::fs::read(tmp.path().join(name).join("bundle.pem")).unwrap();
    (tmp, verifier, inv, bundle)
}

/// A small deterministic generator (xorshift), so failures reproduce.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

#[test]
fn mutated_bundles_never_fault_and_tampered_der_is_never_permitted() {
    let (_tmp, verifier, inv, bundle) = setup();
    assert!(verifier.check(&bundle, &inv, VECTOR_TIME).is_permit());
    let original = jobseal_core::pem::parse_blocks(&bundle).unwrap();
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let (mut runs, mut permits) = (0, 0);
    for _ in 0..3000 {
        // Mutate the DER inside one block, then re-wrap it, so the mutation
        // reaches the ASN.1/CBOR parsers rather than the base64 decoder.
        let mut blocks = original.clone();
        let b = rng.below(original.len());
        let der = &mut blocks[b].der;
        match rng.below(4) {
            0 => {
                let i = rng.below(der.len());
                der[i] ^= 1 << rng.below(8);
            }
            1 => der.truncate(rng.below(der.len())),
            2 => {
                let i = rng.below(der.len());
                der.insert(i, rng.next() as u8);
            }
            _ => {
                let i = rng.below(der.len());
                der[i] = rng.next() as u8;
            }
        }
        if blocks[b].der == original[b].der {
            continue; // the mutation happened to change nothing
        }
        let text: String = blocks
            .iter()
            .map(|b| encode_block(&b.label, &b.der))
            .collect();
        let d = verifier.check(text.as_bytes(), &inv, VECTOR_TIME);
        assert_ne!(d.code(), "internal.error", "{}", d.message);
        runs += 1;
        if d.is_permit() {
            permits += 1;
        }
    }
    eprintln!("robustness: {runs} mutated bundles, {permits} still permitted");
    // Every byte of a bundle is signed, hashed or checked: no change survives.
    assert_eq!(permits, 0, "a mutated bundle was permitted");
}

fn conformance() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../third_party/conformance")
}

#[test]
fn malformed_certificate_seeds_never_fault() {
    let seeds = conformance().join("fuzz-seeds/x509");
    assert!(
        seeds.is_dir(),
        "{} is missing: the conformance corpus is part of the repository (third_party/conformance)",
        seeds.display()
    );
    let (_tmp, verifier, inv, bundle) = setup();
    let manifest_block = jobseal_core::pem::parse_blocks(&bundle)
        .unwrap()
        .into_iter()
        .find(|b| b.label == "JOBSEAL MANIFEST")
        .unwrap();
    let mut n = 0;
    let mut stack = vec![seeds];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
                continue;
            }
            let data = std::fs::read(&p).unwrap();
            // As raw input, and as the leaf of a bundle.
            let blocks = jobseal_core::pem::parse_blocks(&data).unwrap_or_default();
            let ders: Vec<Vec<u8>> = if blocks.is_empty() {
                vec![data.clone()]
            } else {
                blocks.into_iter().map(|b| b.der).collect()
            };
            for der in ders {
                let text = encode_block("CERTIFICATE", &der)
                    + &encode_block("JOBSEAL MANIFEST", &manifest_block.der);
                let d = verifier.check(text.as_bytes(), &inv, VECTOR_TIME);
                assert_ne!(d.code(), "internal.error", "{}: {}", p.display(), d.message);
                assert!(!d.is_permit(), "{} was permitted", p.display());
                let _ = jobseal_core::name::to_slash_string(&der);
                let _ = jobseal_core::tlv::RawCert::split(&der);
                n += 1;
            }
            let d = verifier.check(&data, &inv, VECTOR_TIME);
            assert_ne!(d.code(), "internal.error", "{}: {}", p.display(), d.message);
        }
    }
    eprintln!("fuzz seeds: {n} certificates and CRLs run through the verifier, none faulted");
    assert!(n >= 100, "only {n} seeds found");
}

/// Replays `fuzz/regressions/<target>/*` (and, so that the replay itself is
/// exercised, every test-vector bundle) through each target's code.
#[test]
fn fuzz_regressions_replay() {
    let (tmp, verifier, inv, _) = setup();
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/regressions");
    let mut inputs: Vec<(String, Vec<u8>)> = Vec::new();
    for target in ["bundle", "manifest", "cose", "names", "verify"] {
        if let Ok(dir) = std::fs::read_dir(root.join(target)) {
            for e in dir {
                let p = e.unwrap().path();
                inputs.push((target.to_string(), std::fs::read(&p).unwrap()));
            }
        }
    }
    for e in std::fs::read_dir(tmp.path()).unwrap() {
        let p = e.unwrap().path().join("bundle.pem");
        if p.is_file() {
            inputs.push(("verify".into(), std::fs::read(&p).unwrap()));
        }
    }
    for (target, data) in &inputs {
        match target.as_str() {
            "bundle" => {
                let _ = jobseal_verify::parse::parse(data);
            }
            "manifest" => {
                if let Ok(m) = jobseal_core::manifest::Manifest::from_cbor(data) {
                    assert_eq!(
                        &m.to_cbor(),
                        data,
                        "an accepted manifest must re-encode to itself"
                    );
                }
            }
            "cose" => {
                let _ = jobseal_core::cose::parse(data);
            }
            "names" => {
                let _ = jobseal_core::name::canonical(data);
                let _ = jobseal_core::name::to_slash_string(data);
                let _ = jobseal_core::voms::parse_ac_seq(data);
            }
            _ => {
                let d = verifier.check(data, &inv, VECTOR_TIME);
                assert_ne!(d.code(), "internal.error", "{}", d.message);
            }
        }
    }
    eprintln!("fuzz regressions: {} inputs replayed", inputs.len());
    assert!(inputs.len() >= 50);
}
