//! `jobseal inspect`: what a proxy, certificate or bundle holds.

// serde_json indexing by key never panics on reads and only writes into objects built here.
#![allow(clippy::indexing_slicing)]

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use der::Decode;
use jobseal_core::asn1::{JobBinding, ProxyCertInfo};
use jobseal_core::manifest::{Manifest, hex};
use jobseal_core::pem::parse_blocks;
use jobseal_core::time::{UnixTime, format_duration};
use jobseal_core::{bundle, cose, name, oid, sha256, tlv, voms};
use serde_json::{Value, json};
use x509_cert::Certificate;

#[derive(Args, Debug)]
pub struct InspectArgs {
    /// A proxy, certificate or bundle (PEM).
    file: PathBuf,
    /// Print JSON on stdout.
    #[arg(long)]
    json: bool,
}

fn kind(cert: &Certificate, raw: &tlv::RawCert<'_>) -> String {
    let exts = cert
        .tbs_certificate()
        .extensions()
        .map(|e| e.as_slice())
        .unwrap_or_default();
    if let Some(pci) = exts.iter().find(|e| e.extn_id == oid::PROXY_CERT_INFO) {
        return match ProxyCertInfo::from_der(pci.extn_value.as_bytes()) {
            Ok(p) => {
                let lang = p.proxy_policy.policy_language;
                let what = if lang == oid::PPL_JOB_BOUND {
                    "job-bound proxy (jobseal)".to_string()
                } else if lang == oid::PPL_INHERIT_ALL {
                    "RFC 3820 compliant impersonation proxy".to_string()
                } else if lang == oid::PPL_LIMITED {
                    "RFC 3820 compliant limited proxy".to_string()
                } else if lang == oid::PPL_INDEPENDENT {
                    "RFC 3820 compliant independent proxy".to_string()
                } else {
                    format!("RFC 3820 proxy with policy language {lang}")
                };
                match p.path_len_constraint {
                    Some(n) => format!("{what}, path length {n}"),
                    None => what,
                }
            }
            Err(_) => "proxy with a malformed ProxyCertInfo".into(),
        };
    }
    if exts.iter().any(|e| e.extn_id == oid::PROXY_CERT_INFO_GT3) {
        return "GT3-draft proxy (not accepted by jobseal)".into();
    }
    if let Some((parent, cn)) = name::split_last_cn(raw.subject)
        && (cn == "proxy" || cn == "limited proxy")
        && name::same(&parent, raw.issuer)
    {
        return format!("legacy Globus {cn} (not accepted by jobseal)");
    }
    let is_ca = exts
        .iter()
        .find(|e| e.extn_id == oid::BASIC_CONSTRAINTS)
        .and_then(|e| {
            x509_cert::ext::pkix::BasicConstraints::from_der(e.extn_value.as_bytes()).ok()
        })
        .is_some_and(|bc| bc.ca);
    if is_ca {
        "CA certificate".into()
    } else {
        "end-entity certificate".into()
    }
}

fn key_description(spki: &[u8]) -> String {
    let Some(seq) = tlv::read_all(spki) else {
        return "?".into();
    };
    let Some(parts) = tlv::children(seq.value) else {
        return "?".into();
    };
    let alg = parts
        .first()
        .and_then(|a| tlv::children(a.value))
        .and_then(|c| c.first().map(|o| o.value.to_vec()));
    let bits = parts
        .get(1)
        .map(|b| b.value.len().saturating_sub(1))
        .unwrap_or(0);
    match alg.as_deref() {
        Some(o) if o == oid::RSA_ENCRYPTION.as_bytes() => {
            let modulus = parts
                .get(1)
                .and_then(|b| b.value.get(1..))
                .and_then(tlv::read_all)
                .and_then(|s| tlv::children(s.value))
                .and_then(|c| {
                    c.first()
                        .map(|n| n.value.iter().skip_while(|b| **b == 0).count() * 8)
                });
            format!("RSA-{}", modulus.unwrap_or(0))
        }
        Some(o) if o == oid::EC_PUBLIC_KEY.as_bytes() => format!("ECDSA ({} bytes)", bits),
        Some(o) if o == oid::ED25519.as_bytes() => "Ed25519".into(),
        _ => "unknown".into(),
    }
}

pub fn run(args: &InspectArgs) -> ExitCode {
    match inspect(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("jobseal: {}: {e}", args.file.display());
            ExitCode::FAILURE
        }
    }
}

fn inspect(args: &InspectArgs) -> Result<(), String> {
    let data = jobseal_verify::read_bundle_file(&args.file).map_err(|e| e.message)?;
    let blocks = parse_blocks(&data).map_err(|e| e.to_string())?;
    let certs: Vec<&Vec<u8>> = blocks
        .iter()
        .filter(|b| b.label == "CERTIFICATE")
        .map(|b| &b.der)
        .collect();
    let has_key = blocks.iter().any(|b| b.label.contains("PRIVATE KEY"));
    let manifest_block = blocks.iter().find(|b| b.label == bundle::MANIFEST_LABEL);
    let leaf_der = certs.first().ok_or("no certificate in the file")?;
    let now = UnixTime::now();
    let mut chain = Vec::new();
    let mut end_entity = None;
    let mut vomses = Vec::new();
    for der in &certs {
        let cert = Certificate::from_der(der).map_err(|e| format!("malformed certificate: {e}"))?;
        let raw = tlv::RawCert::split(der).ok_or("malformed certificate")?;
        let k = kind(&cert, &raw);
        let v = cert.tbs_certificate().validity();
        let not_after = UnixTime::from_system_time(v.not_after.to_system_time());
        if end_entity.is_none() && k == "end-entity certificate" {
            end_entity = Some(name::to_slash_string(raw.subject));
        }
        if let Some(acs) = voms::from_certificate(&cert) {
            vomses.extend(acs);
        }
        chain.push(json!({
            "subject": name::to_slash_string(raw.subject),
            "issuer": name::to_slash_string(raw.issuer),
            "type": k,
            "key": key_description(raw.spki),
            "not_before": UnixTime::from_system_time(v.not_before.to_system_time()).to_rfc3339(),
            "not_after": not_after.to_rfc3339(),
            "seconds_left": not_after.0.saturating_sub(now.0),
        }));
    }
    let leaf = Certificate::from_der(leaf_der).map_err(|e| e.to_string())?;
    let binding = leaf
        .tbs_certificate()
        .extensions()
        .and_then(|e| e.iter().find(|x| x.extn_id == oid::JOB_BINDING))
        .and_then(|e| JobBinding::from_der(e.extn_value.as_bytes()).ok());
    let job = manifest_block.map(|b| -> Value {
        match cose::parse(&b.der) {
            Err(e) => json!({ "error": e.to_string() }),
            Ok(env) => {
                let digest = sha256(&env.payload);
                let bound = binding.as_ref().and_then(JobBinding::sha256);
                let mut j = json!({
                    "verified": false,
                    "algorithm": env.algorithm.name(),
                    "manifest_sha256": hex(&digest),
                    "bound_sha256": bound.map(|d| hex(&d)),
                    "binding_matches": bound == Some(digest),
                });
                match Manifest::from_cbor(&env.payload) {
                    Ok(m) => {
                        j["job_id"] = json!(m.job_id_hex());
                        j["executable"] = json!(m.executable.name);
                        j["executable_sha256"] = json!(hex(&m.executable.sha256));
                        j["arguments"] = json!(m.arguments);
                        j["inputs"] = json!(m.inputs.iter().map(|i| json!({"name": i.name, "size": i.size, "sha256": hex(&i.sha256)})).collect::<Vec<_>>());
                        j["environment"] = json!(m.environment);
                        j["vo"] = json!(m.vo);
                        j["sites"] = json!(m.sites);
                        j["not_before"] = json!(UnixTime(m.not_before).to_rfc3339());
                        j["not_after"] = json!(UnixTime(m.not_after).to_rfc3339());
                        j["created"] = json!(UnixTime(m.created).to_rfc3339());
                        j["tool"] = json!(m.tool);
                        j["allowed_uses"] = json!(m.allowed_uses);
                    }
                    Err(e) => j["error"] = json!(e.to_string()),
                }
                j
            }
        }
    });
    let voms_json: Vec<Value> = vomses
        .iter()
        .map(|a| {
            json!({
                "vo": a.vo, "server": a.server, "issuer": a.issuer, "fqans": a.fqans,
                "not_before": a.not_before.to_rfc3339(), "not_after": a.not_after.to_rfc3339(),
                "seconds_left": a.not_after.0.saturating_sub(now.0), "verified": false,
            })
        })
        .collect();
    let out = json!({
        "file": args.file.display().to_string(),
        "identity": end_entity,
        "private_key": has_key,
        "certificates": chain,
        "voms": voms_json,
        "job": job,
    });
    if args.json {
        println!("{out}");
        return Ok(());
    }
    print_text(&out);
    Ok(())
}

fn s(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "-".into(),
        other => other.to_string(),
    }
}

fn print_text(out: &Value) {
    let leaf = &out["certificates"][0];
    println!("subject   : {}", s(&leaf["subject"]));
    println!("issuer    : {}", s(&leaf["issuer"]));
    println!("identity  : {}", s(&out["identity"]));
    println!("type      : {}", s(&leaf["type"]));
    println!("strength  : {}", s(&leaf["key"]));
    println!("path      : {}", s(&out["file"]));
    println!(
        "timeleft  : {}",
        format_duration(leaf["seconds_left"].as_u64().unwrap_or(0))
    );
    println!(
        "key       : {}",
        if out["private_key"] == true {
            "present"
        } else {
            "absent"
        }
    );
    if let Some(chain) = out["certificates"].as_array() {
        for (i, c) in chain.iter().enumerate().skip(1) {
            println!(
                "chain[{i}]  : {} ({}, until {})",
                s(&c["subject"]),
                s(&c["type"]),
                s(&c["not_after"])
            );
        }
    }
    for v in out["voms"].as_array().into_iter().flatten() {
        println!(
            "=== VO {} extension information (not verified) ===",
            s(&v["vo"])
        );
        println!("VO        : {}", s(&v["vo"]));
        println!("issuer    : {}", s(&v["issuer"]));
        for f in v["fqans"].as_array().into_iter().flatten() {
            println!("attribute : {}", s(f));
        }
        println!(
            "timeleft  : {}",
            format_duration(v["seconds_left"].as_u64().unwrap_or(0))
        );
        println!("uri       : {}", s(&v["server"]));
    }
    let job = &out["job"];
    if !job.is_null() {
        println!("=== job (signature not verified here: use jobseal verify) ===");
        for (label, key) in [
            ("job id", "job_id"),
            ("manifest", "manifest_sha256"),
            ("bound to", "bound_sha256"),
            ("matches", "binding_matches"),
            ("algorithm", "algorithm"),
            ("executable", "executable"),
            ("exe sha256", "executable_sha256"),
            ("arguments", "arguments"),
            ("vo", "vo"),
            ("sites", "sites"),
            ("not before", "not_before"),
            ("not after", "not_after"),
            ("created", "created"),
            ("tool", "tool"),
            ("uses", "allowed_uses"),
            ("error", "error"),
        ] {
            if !job[key].is_null() {
                println!("{label:<10}: {}", s(&job[key]));
            }
        }
        if let Some(inputs) = job["inputs"].as_array() {
            println!("inputs    : {}", inputs.len());
        }
    }
}
