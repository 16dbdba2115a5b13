//! Step 3: the JobBinding extension, the leaf's proxy profile, the derived
//! key and the manifest digest.

use der::{Decode, Encode};
use jobseal_core::asn1::{self, JOB_BINDING_V1, JobBinding, ProxyCertInfo};
use jobseal_core::{Error, Reason, bound_key, oid, sha256};

use crate::parse::ParsedBundle;

/// What the binding check established.
#[derive(Debug)]
pub struct Bound {
    /// SHA-256 of the manifest payload, equal to the bound digest.
    pub digest: [u8; 32],
}

fn err(reason: Reason, msg: impl Into<String>) -> Error {
    Error::new(reason, msg)
}

/// Step 3.
pub fn check(bundle: &ParsedBundle) -> Result<Bound, Error> {
    let (leaf, rest) = bundle
        .certs
        .split_first()
        .ok_or_else(|| err(Reason::BundleMalformed, "no certificate"))?;
    // 3.1 Exactly one JobBinding, on the leaf, critical.
    if let Some(c) = rest
        .iter()
        .find(|c| c.extensions_with(oid::JOB_BINDING).next().is_some())
    {
        return Err(err(
            Reason::BindingMisplaced,
            format!(
                "{} carries a JobBinding but is not the leaf",
                c.subject_dn()
            ),
        ));
    }
    let mut bindings = leaf.extensions_with(oid::JOB_BINDING);
    let ext = bindings.next().ok_or_else(|| {
        err(
            Reason::BindingMissing,
            "the leaf certificate is not a job-bound proxy (no JobBinding extension)",
        )
    })?;
    if bindings.next().is_some() {
        return Err(err(
            Reason::BindingMisplaced,
            "the leaf carries JobBinding more than once",
        ));
    }
    if !ext.critical {
        return Err(err(
            Reason::BindingNotCritical,
            "the JobBinding extension is not marked critical",
        ));
    }
    // 3.2 Understood: DER, version, digest algorithm, no unknown critical sub-extension.
    let value = ext.extn_value.as_bytes();
    let binding = JobBinding::from_der_strict(value).map_err(|e| {
        err(
            Reason::BindingMalformed,
            format!("the JobBinding extension is malformed: {e}"),
        )
    })?;
    if binding.to_der().ok().as_deref() != Some(value) {
        return Err(err(
            Reason::BindingMalformed,
            "the JobBinding extension is not DER",
        ));
    }
    if binding.version != JOB_BINDING_V1 {
        return Err(err(
            Reason::BindingMalformed,
            format!("JobBinding version {} is not supported", binding.version),
        ));
    }
    let bound = binding.sha256().ok_or_else(|| {
        err(
            Reason::BindingMalformed,
            "the JobBinding digest is not a SHA-256 digest",
        )
    })?;
    // The ASN.1 says SIZE (1..MAX): an empty list is not a JobBinding.
    if binding.extensions.as_ref().is_some_and(Vec::is_empty) {
        return Err(err(
            Reason::BindingMalformed,
            "the JobBinding extensions field is present but empty (omit it instead)",
        ));
    }
    if let Some(e) = binding.extensions.iter().flatten().find(|e| e.critical) {
        return Err(err(
            Reason::BindingMalformed,
            format!(
                "the JobBinding carries critical extension {} which this verifier does not know",
                e.extn_id
            ),
        ));
    }
    // 3.3 Permits identity-switch execution.
    if !binding.permitted_uses.contains(&oid::USE_IDENTITY_SWITCH) {
        return Err(err(
            Reason::BindingUseNotPermitted,
            "the JobBinding does not permit identity-switch execution",
        ));
    }
    // 3.4 Proxy profile: job-bound policy language, path length 0, keyUsage
    // digitalSignature alone.
    let pci = leaf
        .extension(oid::PROXY_CERT_INFO)
        .ok()
        .flatten()
        .and_then(|e| ProxyCertInfo::from_der(e.extn_value.as_bytes()).ok())
        .ok_or_else(|| {
            err(
                Reason::BindingBadProxyProfile,
                "the job-bound proxy has no usable ProxyCertInfo",
            )
        })?;
    if pci.proxy_policy.policy_language != oid::PPL_JOB_BOUND {
        return Err(err(
            Reason::BindingBadProxyProfile,
            format!(
                "the job-bound proxy's policy language is {}, not the job-bound language",
                pci.proxy_policy.policy_language
            ),
        ));
    }
    if pci.path_len_constraint != Some(0) || pci.proxy_policy.policy.is_some() {
        return Err(err(
            Reason::BindingBadProxyProfile,
            "the job-bound proxy must have path length 0 and no policy",
        ));
    }
    let ku = leaf
        .extension(oid::KEY_USAGE)
        .ok()
        .flatten()
        .filter(|e| e.critical)
        .and_then(|e| asn1::key_usage_bits(e.extn_value.as_bytes()));
    if ku != Some(asn1::KU_DIGITAL_SIGNATURE) {
        return Err(err(
            Reason::BindingBadProxyProfile,
            "the job-bound proxy's keyUsage must be critical and digitalSignature alone",
        ));
    }
    // 3.5 The public key is the one derived from the bound digest.
    let derived = bound_key::derive(&bound)?;
    let expected = bound_key::ed25519_spki(&derived)
        .and_then(|s| s.to_der())
        .map_err(|_| err(Reason::Internal, "cannot encode the derived key"))?;
    if leaf.spki() != expected.as_slice() {
        return Err(err(
            Reason::BindingKeyNotDerived,
            "the job-bound proxy's public key is not derived from the manifest digest (someone may hold its private key)",
        ));
    }
    // 3.6 The bound digest is the manifest's.
    let digest = sha256(&bundle.envelope.payload);
    if digest != bound {
        return Err(err(
            Reason::BindingDigestMismatch,
            "the manifest in the bundle is not the one the proxy is bound to",
        ));
    }
    Ok(Bound { digest })
}
