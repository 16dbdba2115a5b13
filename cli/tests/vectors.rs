//! The checked-in test vectors give the same decision through the CLI as
//! through the library (`crates/jobseal-verify/tests/vectors.rs`).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::print_stderr
)]

use std::path::Path;
use std::process::Command;

/// The JSON `voms` entries agree with a vector's `expected_voms`.
fn voms_agrees(expected: &serde_json::Value, got: &serde_json::Value) -> bool {
    let (Some(e), Some(g)) = (expected.as_array(), got.as_array()) else {
        return false;
    };
    e.len() == g.len()
        && e.iter().zip(g).all(|(e, g)| {
            let empty = serde_json::json!([]);
            let verified = e["verified"].as_bool().unwrap();
            g["verified"] == e["verified"]
                && g["vo"] == e["vo"]
                && g["error"] == e["error"]
                && (g["error_message"].is_string() != verified)
                && g["fqans"] == *e.get("fqans").unwrap_or(&empty)
                && g["generic_attributes"] == *e.get("generic_attributes").unwrap_or(&empty)
        })
}

#[test]
fn every_vector_through_the_cli() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../test-vectors");
    let index: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("vectors.json")).unwrap()).unwrap();
    let at = index["verify_at"].as_str().unwrap();
    let vectors = index["vectors"].as_array().unwrap();
    let mut disagreements = Vec::new();
    let mut decisions = Vec::new();
    for v in vectors {
        let o = Command::new(env!("CARGO_BIN_EXE_jobseal"))
            .current_dir(&dir)
            .env_clear()
            .arg("verify")
            .arg(v["bundle"].as_str().unwrap())
            .args([
                "--ca-dir",
                index["ca_dir"].as_str().unwrap(),
                "--voms-dir",
                index["voms_dir"].as_str().unwrap(),
                "--at",
                at,
                "--json",
                "--job-dir",
            ])
            .arg(v["job_dir"].as_str().unwrap())
            .arg("--")
            .arg(v["executable"].as_str().unwrap())
            .args(
                v["arguments"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|a| a.as_str().unwrap()),
            )
            .output()
            .unwrap();
        let expected = v["expected"].as_str().unwrap();
        let json: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        let got = json["reason"].as_str().unwrap_or("permit");
        decisions.push(format!("{}\t{got}\n", v["name"].as_str().unwrap()));
        let exit_ok = o.status.code() == Some(if expected == "permit" { 0 } else { 1 });
        let line = String::from_utf8_lossy(&o.stderr);
        let stderr_ok = expected == "permit" || line.starts_with(&format!("{expected}: "));
        let voms_ok = v
            .get("expected_voms")
            .is_none_or(|e| voms_agrees(e, &json["voms"]));
        if got != expected || !exit_ok || !stderr_ok || !voms_ok {
            disagreements.push(format!(
                "{}: expected {expected}, got {got} (exit {:?}, stderr {line:?}){}",
                v["name"],
                o.status.code(),
                if voms_ok {
                    String::new()
                } else {
                    format!(
                        "; VOMS expected {}, got {}",
                        v["expected_voms"], json["voms"]
                    )
                }
            ));
        }
    }
    // For the one-behaviour check (`.ci/one-behaviour`).
    if let Some(out) = std::env::var_os("JOBSEAL_DECISIONS_DIR") {
        decisions.sort();
        std::fs::create_dir_all(&out).unwrap();
        std::fs::write(Path::new(&out).join("cli.tsv"), decisions.concat()).unwrap();
    }
    eprintln!(
        "cli vectors: {} run, {} disagree",
        vectors.len(),
        disagreements.len()
    );
    assert!(!vectors.is_empty());
    assert!(disagreements.is_empty(), "{}", disagreements.join("\n"));
}
