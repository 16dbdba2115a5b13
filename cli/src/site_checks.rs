//! What `sign` refuses because sites refuse it, found in the credential
//! alone: the verifier's own path check (§6.3 2) and VOMS signature table
//! (§6.3a i), run before anything is signed. Shared with the Python
//! package (`crates/jobseal-python/src/seal.rs` includes this file), so
//! that both refuse the same credentials with the same messages.

use jobseal_core::time::UnixTime;
use jobseal_issue::{Credential, IssueError};

/// The verifier's path check (§6.3 2) over the credential's chain alone,
/// under `algorithms`.
fn check_chain(
    chain: &[jobseal_verify::parse::ParsedCert],
    now: UnixTime,
    algorithms: jobseal_verify::sig::AlgorithmPolicy,
) -> Result<(), jobseal_verify::Error> {
    use jobseal_verify::path::{self, PathOptions};
    let opts = PathOptions {
        at: now,
        clock_skew: jobseal_verify::DEFAULT_CLOCK_SKEW,
        algorithms,
    };
    path::check_without_anchor(chain, &opts).map(|_| ())
}

/// What to do about a chain sites refuse.
fn advice(e: &jobseal_verify::Error) -> &'static str {
    let m = &e.message;
    if m.contains("by its CA") {
        "ask your CA for a certificate signed with SHA-256"
    } else if m.contains("SHA-1") || m.contains("MD5") {
        "make a proxy signed with SHA-256 (voms-proxy-init -rfc, or arcproxy -c signingAlgorithm=sha256)"
    } else if m.contains("RSA-") {
        "make a proxy with a 2048-bit key (voms-proxy-init -rfc -bits 2048, or arcproxy -c keybits=2048), \
         or ask your CA for a certificate with one"
    } else {
        "make a new proxy (voms-proxy-init -rfc) or ask your CA"
    }
}

/// Run the verifier's path checks over the credential's chain, as far as
/// the chain alone shows them (`spec/jobseal.md` §6.3; no CA directory on
/// the user's side), under the default algorithm policy every site starts
/// from. What only sites that accept legacy CAs (SHA-1, RSA-1024 CA
/// signatures) would accept is sealed only with `--force`; what even they
/// refuse is never sealed: it could only fail a day later on a worker node.
/// The VOMS attributes' signatures are held to the same table. Returns
/// the warning to give when `force` let a legacy-CA chain through.
pub fn refuse_what_sites_refuse(
    cred: &Credential,
    now: UnixTime,
    force: bool,
) -> Result<Option<String>, IssueError> {
    use jobseal_verify::parse::ParsedCert;
    use jobseal_verify::sig::AlgorithmPolicy;
    let refused = |e: &jobseal_verify::Error, who: &str| {
        IssueError::Credential(format!(
            "{}: {who} would refuse jobs sealed under this credential ({}: {}); {}",
            cred.source,
            e.reason.code(),
            e.message,
            advice(e)
        ))
    };
    let chain = cred
        .chain
        .iter()
        .enumerate()
        .map(|(i, der)| ParsedCert::from_der(der.clone(), i + 1))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| refused(&e, "every site"))?;
    let strict = check_chain(&chain, now, AlgorithmPolicy::default())
        .and_then(|()| top_signature(&chain, false));
    if let Err(strict) = strict {
        let legacy = AlgorithmPolicy {
            min_rsa_bits_ca_issued: 1024,
            allow_sha1_ca_issued: true,
        };
        check_chain(&chain, now, legacy)
            .and_then(|()| top_signature(&chain, true))
            .map_err(|e| refused(&e, "every site"))?;
        let e = refused(&strict, "every site but those accepting legacy CAs");
        if !force {
            return Err(IssueError::Credential(format!(
                "{e} (--force seals it anyway, for sites that accept legacy CAs)"
            )));
        }
        weak_voms_attributes(cred, &chain)?;
        return Ok(Some(e.to_string()));
    }
    weak_voms_attributes(cred, &chain).map(|()| None)
}

/// The signature algorithm of the topmost certificate, whose signer (a
/// CA, usually not in the user's files) `check_without_anchor` cannot
/// check: SHA-1 there is accepted only by sites that accept legacy CAs,
/// MD5 nowhere (the same refusal as the path check's, §6.3 2d.2).
fn top_signature(
    chain: &[jobseal_verify::parse::ParsedCert],
    allow_sha1: bool,
) -> Result<(), jobseal_verify::Error> {
    use jobseal_core::{Reason, oid};
    let top = match chain.split_last() {
        Some((top, rest)) if !rest.is_empty() && top.is_self_issued() => rest.last(),
        Some((top, _)) => Some(top),
        None => None,
    };
    let Some(top) = top else { return Ok(()) };
    let alg = top.cert.signature_algorithm().oid;
    let dn = top.subject_dn();
    if alg == oid::MD5_WITH_RSA {
        return Err(jobseal_verify::Error::new(
            Reason::ChainWeakAlgorithm,
            format!("{dn} is signed with MD5, which is never accepted"),
        ));
    }
    if alg == oid::SHA1_WITH_RSA && !allow_sha1 {
        return Err(jobseal_verify::Error::new(
            Reason::ChainWeakAlgorithm,
            format!("{dn} is signed by its CA with SHA-1, which is not accepted by default"),
        ));
    }
    Ok(())
}

/// A VOMS AC signed with an algorithm or AA key the verifier refuses
/// (`voms.weak-algorithm`, §6.3a i): every site ignores its attributes, so
/// a job relying on them is refused or runs without them.
fn weak_voms_attributes(
    cred: &Credential,
    chain: &[jobseal_verify::parse::ParsedCert],
) -> Result<(), IssueError> {
    use der::Decode;
    use jobseal_verify::parse::ParsedCert;
    use jobseal_verify::sig::{self, AlgorithmPolicy, Signer};
    use x509_cert::spki::AlgorithmIdentifierOwned;
    for cert in chain {
        let Ok(Some(ext)) = cert.extension(jobseal_core::oid::VOMS_AC_SEQ) else {
            continue;
        };
        let acs = jobseal_core::voms::split_ac_seq(ext.extn_value.as_bytes()).unwrap_or_default();
        for ac in acs
            .iter()
            .filter_map(|der| jobseal_core::voms::parse_ac(der).ok())
        {
            // Without the AA certificate the site cannot check it at all;
            // that is not a question of algorithms.
            let Some(aa) = ac.ac_certs.first() else {
                continue;
            };
            let (Ok(aa), Ok(alg)) = (
                ParsedCert::from_der(aa.clone(), 0),
                AlgorithmIdentifierOwned::from_der(&ac.signature_algorithm),
            ) else {
                continue;
            };
            let what = format!("the VOMS attributes of VO {}", ac.vo);
            let checked = sig::verify_certificate(
                &alg,
                aa.spki(),
                &ac.acinfo,
                &ac.signature,
                &what,
                &AlgorithmPolicy::default(),
                Signer::EndEntityOrProxy,
            );
            if let Err(e) = checked
                && e.reason == jobseal_core::Reason::ChainWeakAlgorithm
            {
                return Err(IssueError::Credential(format!(
                    "{}: every site ignores {what} (voms.weak-algorithm: {}); ask the VO's VOMS service \
                     for attributes signed with SHA-256 and a 2048-bit key, then run voms-proxy-init again",
                    cred.source, e.message
                )));
            }
        }
    }
    Ok(())
}
