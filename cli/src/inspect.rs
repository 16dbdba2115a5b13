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
use jobseal_core::time::UnixTime;
use jobseal_core::{bundle, cose, name, oid, sha256, tlv, voms};
use serde_json::{Value, json};
use x509_cert::Certificate;

#[derive(Args, Debug)]
pub struct InspectArgs {
    /// A proxy, certificate or bundle (PEM); default `$X509_USER_PROXY`,
    /// else `/tmp/x509up_u<uid>`, as voms-proxy-info.
    #[arg(value_name = "FILE")]
    file_arg: Option<PathBuf>,
    /// The file, as voms-proxy-info -file.
    #[arg(long, value_name = "FILE", conflicts_with = "file_arg")]
    file: Option<PathBuf>,
    /// Print JSON on stdout.
    #[arg(long)]
    json: bool,
    /// Print the seconds the credential has left (0 once expired), as
    /// voms-proxy-info -timeleft.
    #[arg(long, conflicts_with_all = ["json", "exists"])]
    timeleft: bool,
    /// Print nothing; exit 0 if the credential exists and is valid (for
    /// `--valid`/`--hours` more), else 1, as voms-proxy-info -exists.
    #[arg(long, conflicts_with = "json")]
    exists: bool,
    /// With --exists: valid for at least HH:MM more.
    #[arg(
        long,
        value_name = "HH:MM",
        requires = "exists",
        conflicts_with = "hours"
    )]
    valid: Option<String>,
    /// With --exists: valid for at least H hours more.
    #[arg(long, value_name = "H", requires = "exists")]
    hours: Option<u64>,
    /// Accepted for voms-proxy-info -all: everything is always shown.
    #[arg(long, hide = true)]
    all: bool,
}

impl InspectArgs {
    fn path(&self) -> Option<PathBuf> {
        self.file_arg
            .clone()
            .or_else(|| self.file.clone())
            .or_else(crate::sign::standard_proxy_path)
    }
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
    let Some(path) = args.path() else {
        eprintln!("jobseal: name the file to inspect (no X509_USER_PROXY and no uid)");
        return ExitCode::FAILURE;
    };
    if args.exists {
        return exists(args, &path);
    }
    match inspect(&path) {
        Ok(out) => show(args, &out),
        Err(e) => {
            eprintln!("jobseal: {}: {e}", path.display());
            ExitCode::FAILURE
        }
    }
}

/// The seconds the credential has left: its leaf's.
fn seconds_left(out: &Value) -> u64 {
    out["certificates"][0]["seconds_left"].as_u64().unwrap_or(0)
}

/// voms-proxy-info -exists [-valid H:M]: silent, the exit code says.
fn exists(args: &InspectArgs, path: &std::path::Path) -> ExitCode {
    let needed = match (&args.valid, args.hours) {
        (_, Some(h)) => h.saturating_mul(3600),
        (Some(v), None) => match crate::sign::parse_validity(v) {
            Some(s) => s,
            None => {
                eprintln!("jobseal: --valid {v:?} is not a time such as 12:00 (HH:MM)");
                return ExitCode::from(2);
            }
        },
        (None, None) => 0,
    };
    match inspect(path) {
        Ok(out) if seconds_left(&out) > needed => ExitCode::SUCCESS,
        _ => ExitCode::FAILURE,
    }
}

fn show(args: &InspectArgs, out: &Value) -> ExitCode {
    let left = seconds_left(out);
    if args.timeleft {
        println!("{left}");
    } else if args.json {
        println!("{out}");
    } else {
        print_text(out);
    }
    // As voms-proxy-info -exists: an expired credential is a failure for
    // scripts (the text and JSON still say everything).
    if left == 0 {
        if !args.timeleft {
            eprintln!("jobseal: {}: the credential has expired", s(&out["file"]));
        }
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}

/// Seconds as voms-proxy-info prints time left, `HH:MM:SS`.
fn hms(seconds: u64) -> String {
    format!(
        "{:02}:{:02}:{:02}",
        seconds / 3600,
        seconds / 60 % 60,
        seconds % 60
    )
}

fn inspect(path: &std::path::Path) -> Result<Value, String> {
    let data = jobseal_verify::read_bundle_file(path).map_err(|e| e.message)?;
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
        vomses.extend(voms_of(&cert));
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
        .map(|(a, generic)| {
            json!({
                "vo": a.vo, "server": a.server, "issuer": a.issuer, "fqans": a.fqans,
                "generic_attributes": generic,
                "not_before": a.not_before.to_rfc3339(), "not_after": a.not_after.to_rfc3339(),
                "seconds_left": a.not_after.0.saturating_sub(now.0), "verified": false,
            })
        })
        .collect();
    Ok(json!({
        "file": path.display().to_string(),
        "identity": end_entity,
        "private_key": has_key,
        "certificates": chain,
        "voms": voms_json,
        "job": job,
    }))
}

/// The VOMS ACs of a certificate, each with its generic attributes
/// (`name = value`, qualifier), as voms-proxy-info -all shows them.
fn voms_of(cert: &Certificate) -> Vec<(voms::VomsAc, Vec<Value>)> {
    let Some(acs) = voms::from_certificate(cert) else {
        return Vec::new();
    };
    let strict: Vec<Vec<Value>> = cert
        .tbs_certificate()
        .extensions()
        .and_then(|e| e.iter().find(|x| x.extn_id == oid::VOMS_AC_SEQ))
        .and_then(|e| voms::split_ac_seq(e.extn_value.as_bytes()).ok())
        .unwrap_or_default()
        .iter()
        .map(|der| {
            voms::parse_ac(der)
                .map(|ac| {
                    ac.generic_attributes
                        .iter()
                        .map(
                            |g| json!({"name": g.name, "value": g.value, "qualifier": g.qualifier}),
                        )
                        .collect()
                })
                .unwrap_or_default()
        })
        .collect();
    acs.into_iter()
        .enumerate()
        .map(|(i, ac)| (ac, strict.get(i).cloned().unwrap_or_default()))
        .collect()
}

fn s(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "-".into(),
        other => other.to_string(),
    }
}

/// A list or map of the JSON as one line: `a, b c` or `K=V, K2=V2`.
fn joined(v: &Value) -> String {
    match v {
        Value::Array(items) => items.iter().map(s).collect::<Vec<_>>().join(", "),
        Value::Object(map) => map
            .iter()
            .map(|(k, v)| format!("{k}={}", s(v)))
            .collect::<Vec<_>>()
            .join(", "),
        other => s(other),
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
        "valid     : {} to {}",
        s(&leaf["not_before"]),
        s(&leaf["not_after"])
    );
    print_timeleft(&leaf["seconds_left"]);
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
                "chain[{i}]  : {} ({}, {}, issued by {}, {} to {})",
                s(&c["subject"]),
                s(&c["type"]),
                s(&c["key"]),
                s(&c["issuer"]),
                s(&c["not_before"]),
                s(&c["not_after"])
            );
        }
    }
    for v in out["voms"].as_array().into_iter().flatten() {
        print_voms(v);
    }
    let job = &out["job"];
    if !job.is_null() {
        print_job(job);
    }
}

fn print_timeleft(seconds: &Value) {
    let left = seconds.as_u64().unwrap_or(0);
    if left == 0 {
        println!("timeleft  : 00:00:00 (expired)");
    } else {
        println!("timeleft  : {}", hms(left));
    }
}

fn print_voms(v: &Value) {
    println!(
        "=== VO {} extension information (not verified) ===",
        s(&v["vo"])
    );
    println!("VO        : {}", s(&v["vo"]));
    println!("issuer    : {}", s(&v["issuer"]));
    for f in v["fqans"].as_array().into_iter().flatten() {
        println!("attribute : {}", s(f));
    }
    for g in v["generic_attributes"].as_array().into_iter().flatten() {
        let qualifier = s(&g["qualifier"]);
        if qualifier.is_empty() {
            println!("attribute : {} = {}", s(&g["name"]), s(&g["value"]));
        } else {
            println!(
                "attribute : {} = {} ({qualifier})",
                s(&g["name"]),
                s(&g["value"])
            );
        }
    }
    println!(
        "valid     : {} to {}",
        s(&v["not_before"]),
        s(&v["not_after"])
    );
    print_timeleft(&v["seconds_left"]);
    println!("uri       : {}", s(&v["server"]));
}

fn print_job(job: &Value) {
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
        ("environ", "environment"),
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
            println!("{label:<10}: {}", joined(&job[key]));
        }
    }
    for i in job["inputs"].as_array().into_iter().flatten() {
        println!(
            "input     : {} ({} bytes, sha256 {})",
            s(&i["name"]),
            s(&i["size"]),
            s(&i["sha256"])
        );
    }
}
