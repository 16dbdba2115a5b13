//! JSON forms of decisions and inspections.

use jobseal_verify::{Decision, UnixTime};
use serde_json::{Value, json};

fn time(t: UnixTime) -> Value {
    json!(t.to_rfc3339())
}

/// The decision as JSON: decision, reason, who, what, when.
pub fn decision(d: &Decision, at: UnixTime) -> Value {
    let identity = d.identity.as_ref();
    let job = d.job.as_ref();
    json!({
        "decision": if d.is_permit() { "permit" } else { "deny" },
        "reason": d.reason.map(|r| r.code()),
        "message": d.message,
        "checked_at": time(at),
        "end_entity": identity.map(|i| &i.end_entity),
        "subject": identity.map(|i| &i.subject),
        "issuer": identity.map(|i| &i.issuer),
        "issued_by_end_entity": identity.map(|i| i.issued_by_end_entity),
        "ca": identity.map(|i| &i.ca),
        "voms": identity.map(|i| i.voms.iter().map(|v| json!({
            "vo": v.vo,
            "fqans": v.fqans,
            "generic_attributes": v.generic_attributes.iter().map(|g| json!({
                "name": g.name,
                "value": g.value,
                "qualifier": g.qualifier,
            })).collect::<Vec<_>>(),
            "issuer": v.issuer,
            "not_after": v.not_after.map(time),
            "verified": v.verified,
            "error": v.error.as_ref().map(|e| e.code.code()),
            "error_message": v.error.as_ref().map(|e| &e.message),
        })).collect::<Vec<_>>()),
        "job_id": job.map(|j| &j.job_id),
        "manifest_sha256": d.manifest_sha256,
        "executable": job.map(|j| &j.executable),
        "executable_sha256": job.map(|j| &j.executable_sha256),
        "arguments": job.map(|j| &j.arguments),
        "inputs": job.map(|j| j.inputs),
        "vo": job.and_then(|j| j.vo.as_ref()),
        "sites": job.and_then(|j| j.sites.as_ref()),
        "allowed_uses": job.map(|j| j.allowed_uses),
        "validity": {
            "not_before": match (job, identity) {
                (Some(j), Some(i)) => Some(time(j.not_before.max(i.not_before))),
                (None, Some(i)) => Some(time(i.not_before)),
                _ => None,
            },
            "not_after": match (job, identity) {
                (Some(j), Some(i)) => Some(time(j.not_after.min(i.not_after))),
                (None, Some(i)) => Some(time(i.not_after)),
                _ => None,
            },
        },
    })
}
