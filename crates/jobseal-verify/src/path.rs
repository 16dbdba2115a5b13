//! Step 2: path validation. RFC 5280 for the end-entity chain, RFC 3820 for
//! every proxy, from the trust anchor down to the leaf.

use der::Decode;
use jobseal_core::asn1::{self, ProxyCertInfo};
use jobseal_core::time::UnixTime;
use jobseal_core::{Error, Reason, name, oid};
use x509_cert::ext::pkix::BasicConstraints;

use crate::decision::Identity;
use crate::parse::ParsedCert;
use crate::sig::{self, AlgorithmPolicy, Signer};
use crate::trust::TrustStore;

/// Settings of path validation.
#[derive(Clone, Debug)]
pub struct PathOptions {
    /// The verification time.
    pub at: UnixTime,
    /// Seconds a notBefore may lie in the future.
    pub clock_skew: u64,
    /// Legacy algorithms accepted on CA-issued certificates.
    pub algorithms: AlgorithmPolicy,
}

/// What path validation established.
#[derive(Debug)]
pub struct ValidatedPath {
    pub identity: Identity,
    /// Index of the end-entity certificate in the bundle.
    pub end_entity: usize,
}

/// The role a certificate plays in the chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Ca,
    EndEntity,
    Proxy,
}

fn err(reason: Reason, msg: impl Into<String>) -> Error {
    Error::new(reason, msg)
}

/// Extensions this verifier processes; a critical one not listed here denies.
fn handled(id: der::asn1::ObjectIdentifier, role: Role) -> bool {
    match role {
        Role::Proxy => {
            id == oid::KEY_USAGE
                || id == oid::BASIC_CONSTRAINTS
                || id == oid::PROXY_CERT_INFO
                || id == oid::EXTENDED_KEY_USAGE
                // Placement is step 3's to judge (binding.misplaced).
                || id == oid::JOB_BINDING
        }
        Role::EndEntity | Role::Ca => {
            id == oid::KEY_USAGE
                || id == oid::BASIC_CONSTRAINTS
                || id == oid::EXTENDED_KEY_USAGE
                || id == oid::SUBJECT_ALT_NAME
                // Any policy is acceptable (initial-policy-set = anyPolicy).
                || id == oid::CERTIFICATE_POLICIES
                // Placement is step 3's to judge (binding.misplaced).
                || id == oid::JOB_BINDING
        }
    }
}

fn basic_constraints(c: &ParsedCert, dn: &str) -> Result<Option<BasicConstraints>, Error> {
    match c.extension(oid::BASIC_CONSTRAINTS) {
        Err(_) => Err(err(
            Reason::CertMalformed,
            format!("{dn} repeats basicConstraints"),
        )),
        Ok(None) => Ok(None),
        Ok(Some(e)) => BasicConstraints::from_der(e.extn_value.as_bytes())
            .map(Some)
            .map_err(|_| {
                err(
                    Reason::CertMalformed,
                    format!("{dn} has a malformed basicConstraints"),
                )
            }),
    }
}

fn key_usage(c: &ParsedCert, dn: &str) -> Result<Option<u16>, Error> {
    match c.extension(oid::KEY_USAGE) {
        Err(_) => Err(err(Reason::CertMalformed, format!("{dn} repeats keyUsage"))),
        Ok(None) => Ok(None),
        Ok(Some(e)) => asn1::key_usage_bits(e.extn_value.as_bytes())
            .map(Some)
            .ok_or_else(|| {
                err(
                    Reason::CertMalformed,
                    format!("{dn} has a malformed keyUsage"),
                )
            }),
    }
}

fn is_ca(c: &ParsedCert, dn: &str) -> Result<bool, Error> {
    Ok(basic_constraints(c, dn)?.is_some_and(|bc| bc.ca))
}

/// Whether `c` looks like a legacy Globus proxy (`CN=proxy` / `CN=limited
/// proxy` appended to its issuer's name, no ProxyCertInfo).
fn is_legacy_proxy(c: &ParsedCert) -> bool {
    if c.extension(oid::PROXY_CERT_INFO_GT3)
        .ok()
        .flatten()
        .is_some()
    {
        return true;
    }
    matches!(c.last_cn(),
        Some((cn, true)) if cn == "proxy" || cn == "limited proxy")
}

fn check_time(c: &ParsedCert, dn: &str, at: UnixTime, skew: u64) -> Result<(u64, u64), Error> {
    let (nb, na) = c.validity();
    if at.0 > na {
        return Err(err(
            Reason::TimeExpired,
            format!("{dn} expired at {}", UnixTime(na).to_rfc3339()),
        ));
    }
    if at.plus(skew).0 < nb {
        return Err(err(
            Reason::TimeNotYetValid,
            format!("{dn} is not valid before {}", UnixTime(nb).to_rfc3339()),
        ));
    }
    Ok((nb, na))
}

fn check_signature(
    c: &ParsedCert,
    issuer_spki: &[u8],
    dn: &str,
    opts: &PathOptions,
    signer: Signer,
) -> Result<(), Error> {
    let tbs_alg = c.cert.tbs_certificate().signature();
    let outer_alg = c.cert.signature_algorithm();
    if tbs_alg != outer_alg {
        return Err(err(
            Reason::CertMalformed,
            format!("{dn}: the two signature algorithm fields differ"),
        ));
    }
    let signature = c.cert.signature().as_bytes().ok_or_else(|| {
        err(
            Reason::CertMalformed,
            format!("{dn}: the signature is not whole bytes"),
        )
    })?;
    sig::verify_certificate(
        outer_alg,
        issuer_spki,
        c.tbs(),
        signature,
        dn,
        &opts.algorithms,
        signer,
    )
}

fn check_critical(c: &ParsedCert, dn: &str, role: Role) -> Result<(), Error> {
    // RFC 5280 §4.2: no extension appears twice. A repeated JobBinding is
    // step 3's to report (binding.misplaced).
    let exts = c.extensions();
    for (i, e) in exts.iter().enumerate() {
        let repeated = exts.iter().skip(i + 1).any(|o| o.extn_id == e.extn_id);
        if repeated && e.extn_id != oid::JOB_BINDING {
            return Err(err(
                Reason::CertMalformed,
                format!("{dn} carries extension {} twice", e.extn_id),
            ));
        }
    }
    for e in exts {
        if e.critical && !handled(e.extn_id, role) {
            return Err(err(
                Reason::ChainUnhandledCritical,
                format!(
                    "{dn} carries critical extension {} which this verifier does not process",
                    e.extn_id
                ),
            ));
        }
    }
    Ok(())
}

/// Step 2, over certificates ordered leaf first (the bundle's order).
pub fn validate(
    certs: &[ParsedCert],
    trust: &TrustStore,
    opts: &PathOptions,
) -> Result<ValidatedPath, Error> {
    let (at, skew) = (opts.at, opts.clock_skew);
    // 2.1 Each certificate is issued by the next one.
    for pair in certs.windows(2) {
        if let [child, parent] = pair
            && !child.is_issued_by(parent)
        {
            return Err(err(
                Reason::ChainBroken,
                format!(
                    "{} is not issued by the next certificate of the bundle, {}",
                    child.subject_dn(),
                    parent.subject_dn()
                ),
            ));
        }
    }
    // 2.2 A trust anchor from the CA directory issued the topmost certificate.
    // A copy of the anchor at the end of the bundle is ignored.
    let mut chain: &[ParsedCert] = certs;
    let top = chain
        .last()
        .ok_or_else(|| err(Reason::BundleMalformed, "no certificate"))?;
    let top_is_anchor = top.is_self_issued()
        && trust
            .anchors(top.subject())
            .matching()
            .any(|(_, a)| a.der == top.der);
    if top_is_anchor && chain.len() > 1 {
        chain = chain.get(..chain.len() - 1).unwrap_or_default();
    }
    let top = chain
        .last()
        .ok_or_else(|| err(Reason::BundleMalformed, "no certificate"))?;
    let mut top_dn = top.subject_dn();
    let anchors = trust.issuer_anchors(top);
    let candidates: Vec<&ParsedCert> = anchors.matching().map(|(_, a)| a).collect();
    if candidates.is_empty() {
        let issuer = name::to_slash_string(top.issuer());
        let hash = name::openssl_hash(top.issuer()).unwrap_or(0);
        return Err(err(
            Reason::ChainUntrusted,
            format!(
                "the issuer {issuer} of {top_dn} is not a trusted CA: no {hash:08x}.N file in {} holds it",
                trust.dir().display()
            ),
        ));
    }
    // Several anchors may share a name (key rollover): the one whose key
    // verifies the signature is the issuer. If none does, the first one is
    // taken and step 2d.2 reports why (weak algorithm, bad signature).
    let verified_by = candidates
        .iter()
        .position(|a| check_signature(top, a.spki(), &top_dn, opts, Signer::Ca).is_ok());
    let anchor: &ParsedCert = candidates
        .get(verified_by.unwrap_or(0))
        .ok_or_else(|| err(Reason::Internal, "no anchor candidate"))?;
    let top_verified = verified_by.is_some();
    let anchor_dn = anchor.subject_dn();
    check_time(anchor, &anchor_dn, at, skew)?;
    if !is_ca(anchor, &anchor_dn)? {
        return Err(err(
            Reason::ChainNotCa,
            format!("the trust anchor {anchor_dn} is not a CA"),
        ));
    }
    // The anchor's own critical extensions bind too: one this verifier does
    // not process (name constraints, policy constraints, …) fails closed.
    check_critical(anchor, &anchor_dn, Role::Ca)?;
    let mut ca_path_len =
        basic_constraints(anchor, &anchor_dn)?.and_then(|bc| bc.path_len_constraint);

    // 2.3 From the top down: CAs, then the end entity, then proxies.
    let mut role = Role::Ca;
    let mut end_entity = None;
    let mut not_before = 0u64;
    let mut not_after = u64::MAX;
    // (index, pCPathLenConstraint) of every proxy above the current one.
    let mut proxy_limits: Vec<(usize, u32)> = Vec::new();
    let mut issuer_spki = anchor.spki().to_vec();
    let mut issuer_ku = key_usage(anchor, &anchor_dn)?;
    let mut issuer_dn = anchor_dn.clone();
    let last = chain.len().saturating_sub(1);
    // Subject names top down, built once and reused for the identity.
    let mut dns: Vec<String> = Vec::with_capacity(chain.len());
    for (depth_from_top, c) in chain.iter().rev().enumerate() {
        let index = last - depth_from_top;
        let dn = if index == last {
            std::mem::take(&mut top_dn)
        } else {
            c.subject_dn()
        };
        let is_leaf = index == 0;
        // Role of this certificate: basicConstraints first (repeated or
        // malformed → cert.malformed), then ProxyCertInfo.
        let cert_is_ca = is_ca(c, &dn)?;
        let pci_ext = c.extension(oid::PROXY_CERT_INFO).map_err(|_| {
            err(
                Reason::ProxyMalformed,
                format!("{dn} carries ProxyCertInfo more than once"),
            )
        })?;
        role = match role {
            Role::Ca if cert_is_ca => Role::Ca,
            Role::Ca | Role::EndEntity | Role::Proxy => {
                if is_legacy_proxy(c) {
                    return Err(err(
                        Reason::ProxyLegacy,
                        format!(
                            "{dn} is a legacy (pre-RFC 3820) proxy; only RFC 3820 proxies are accepted"
                        ),
                    ));
                }
                match (role, pci_ext.is_some()) {
                    (Role::Ca, false) => Role::EndEntity,
                    (Role::Ca, true) => {
                        return Err(err(
                            Reason::ProxyMalformed,
                            format!("{dn} is a proxy issued directly by a CA"),
                        ));
                    }
                    (_, true) => Role::Proxy,
                    // Issued by the end entity without being a proxy: the
                    // issuer acted as a CA without being one.
                    (Role::EndEntity, false) => {
                        return Err(err(
                            Reason::ChainNotCa,
                            format!(
                                "{dn} is issued by {issuer_dn}, which is not a CA (and it is not a proxy)"
                            ),
                        ));
                    }
                    (_, false) => {
                        return Err(err(
                            Reason::ProxyMalformed,
                            format!("{dn} is issued by a proxy but carries no ProxyCertInfo"),
                        ));
                    }
                }
            }
        };
        // Common checks: algorithm and signature, validity, critical extensions.
        // The topmost signature was verified when choosing the anchor.
        if !(index == last && top_verified) {
            let signer = if role == Role::Proxy {
                Signer::EndEntityOrProxy
            } else {
                Signer::Ca
            };
            check_signature(c, &issuer_spki, &dn, opts, signer)?;
        }
        let (nb, na) = check_time(c, &dn, at, skew)?;
        not_before = not_before.max(nb);
        not_after = not_after.min(na);
        check_critical(c, &dn, role)?;
        let ku = key_usage(c, &dn)?;
        match role {
            Role::Ca => {
                if issuer_ku.is_some_and(|k| k & asn1::KU_KEY_CERT_SIGN == 0) {
                    return Err(err(
                        Reason::ChainNotCa,
                        format!("{issuer_dn} may not sign certificates (keyUsage)"),
                    ));
                }
                // Self-issued CA certificates (key rollover) do not count
                // against path length constraints (RFC 5280 §6.1.4 (l)).
                let self_issued = c.is_self_issued();
                match ca_path_len {
                    _ if self_issued => {}
                    Some(0) => {
                        return Err(err(
                            Reason::ChainPathLength,
                            format!("{dn} exceeds the CA path length constraint"),
                        ));
                    }
                    Some(n) => ca_path_len = Some(n - 1),
                    None => {}
                }
                if let Some(own) = basic_constraints(c, &dn)?.and_then(|bc| bc.path_len_constraint)
                {
                    ca_path_len = Some(ca_path_len.map_or(own, |n| n.min(own)));
                }
            }
            Role::EndEntity => {
                if issuer_ku.is_some_and(|k| k & asn1::KU_KEY_CERT_SIGN == 0) {
                    return Err(err(
                        Reason::ChainNotCa,
                        format!("{issuer_dn} may not sign certificates (keyUsage)"),
                    ));
                }
                // The user's identity is this subject: it cannot be empty
                // (RFC 5280 §4.1.2.6 for a certificate that names no one).
                if c.subject_is_empty() {
                    return Err(err(
                        Reason::CertMalformed,
                        "the end-entity certificate has an empty subject",
                    ));
                }
                end_entity = Some(index);
            }
            Role::Proxy => {
                check_proxy(
                    c,
                    &dn,
                    issuer_ku,
                    &issuer_dn,
                    index,
                    is_leaf,
                    &mut proxy_limits,
                )?;
            }
        }
        // 2d.7 namespace and 2d.8 revocation, for what a CA issued.
        if role != Role::Proxy {
            let above: Vec<&ParsedCert> = chain
                .iter()
                .skip(index + 1)
                .chain(std::iter::once(anchor))
                .collect();
            crate::namespaces::check(c, &above, trust)?;
            crate::revocation::check(c, &above, trust, opts)?;
        }
        issuer_spki = c.spki().to_vec();
        issuer_ku = ku;
        dns.push(dn.clone());
        issuer_dn = dn;
    }
    let end_entity = end_entity.ok_or_else(|| {
        err(
            Reason::ChainBroken,
            "the bundle does not contain the end-entity (user) certificate",
        )
    })?;
    let eec = chain
        .get(end_entity)
        .ok_or_else(|| err(Reason::Internal, "end entity index"))?;
    let leaf = chain
        .first()
        .ok_or_else(|| err(Reason::Internal, "no leaf"))?;
    // Bundle certificates above the EEC are its CAs (a set-aside anchor copy
    // is not in `chain`), then the anchor.
    let dn_of = |i: usize, c: &ParsedCert| {
        dns.get(last.saturating_sub(i))
            .cloned()
            .unwrap_or_else(|| c.subject_dn())
    };
    let mut cas: Vec<String> = chain
        .iter()
        .enumerate()
        .skip(end_entity.saturating_add(1))
        .map(|(i, c)| dn_of(i, c))
        .collect();
    cas.push(anchor_dn.clone());
    Ok(ValidatedPath {
        identity: Identity {
            end_entity: dn_of(end_entity, eec),
            subject: dn_of(0, leaf),
            // The leaf's issuer, spelled out already when it is the subject
            // of the next certificate byte for byte.
            issuer: match chain.get(1) {
                Some(next) if next.subject() == leaf.issuer() => next.subject_dn(),
                _ => leaf.issuer_dn_str().to_string(),
            },
            ca: anchor_dn,
            cas,
            serials: chain
                .iter()
                .take(end_entity + 1)
                .map(|c| crate::decision::hex(c.cert.tbs_certificate().serial_number().as_bytes()))
                .collect(),
            // VOMS ACs need the EEC and the vomsdir: voms::check_chain (§6.3a).
            voms: Vec::new(),
            not_before: UnixTime(not_before),
            not_after: UnixTime(not_after),
        },
        end_entity,
    })
}

/// RFC 3820 rules for one proxy.
fn check_proxy(
    c: &ParsedCert,
    dn: &str,
    issuer_ku: Option<u16>,
    issuer_dn: &str,
    index: usize,
    is_leaf: bool,
    proxy_limits: &mut Vec<(usize, u32)>,
) -> Result<(), Error> {
    // Subject = issuer subject + one single-valued CN.
    match c.last_cn() {
        Some((_, true)) => {}
        _ => {
            return Err(err(
                Reason::ProxyBadSubject,
                format!("{dn}: a proxy's subject must be its issuer's subject plus one CN"),
            ));
        }
    }
    if c.extensions_with(oid::SUBJECT_ALT_NAME).next().is_some()
        || c.extensions_with(oid::ISSUER_ALT_NAME).next().is_some()
    {
        return Err(err(
            Reason::ProxyMalformed,
            format!("{dn}: a proxy must not carry subject or issuer alternative names"),
        ));
    }
    if is_ca(c, dn)? {
        return Err(err(
            Reason::ProxyMalformed,
            format!("{dn}: a proxy must not be a CA"),
        ));
    }
    let ext = c
        .extension(oid::PROXY_CERT_INFO)
        .ok()
        .flatten()
        .ok_or_else(|| {
            err(
                Reason::ProxyMalformed,
                format!("{dn}: ProxyCertInfo is missing"),
            )
        })?;
    if !ext.critical {
        return Err(err(
            Reason::ProxyMalformed,
            format!("{dn}: ProxyCertInfo must be critical"),
        ));
    }
    let pci = ProxyCertInfo::from_der(ext.extn_value.as_bytes()).map_err(|_| {
        err(
            Reason::ProxyMalformed,
            format!("{dn}: malformed ProxyCertInfo"),
        )
    })?;
    let lang = pci.proxy_policy.policy_language;
    // RFC 3820 §3.8: inheritAll and independent carry no policy.
    if (lang == oid::PPL_INHERIT_ALL || lang == oid::PPL_INDEPENDENT)
        && pci.proxy_policy.policy.is_some()
    {
        return Err(err(
            Reason::ProxyMalformed,
            format!("{dn}: policy language {lang} must not carry a policy"),
        ));
    }
    // A proxy is not a CA: it never asserts keyCertSign.
    let own_ku = c
        .extension(oid::KEY_USAGE)
        .ok()
        .flatten()
        .and_then(|e| asn1::key_usage_bits(e.extn_value.as_bytes()));
    if own_ku.is_some_and(|k| k & asn1::KU_KEY_CERT_SIGN != 0) {
        return Err(err(
            Reason::ProxyMalformed,
            format!("{dn}: a proxy must not assert keyCertSign"),
        ));
    }
    if issuer_ku.is_some_and(|k| k & asn1::KU_DIGITAL_SIGNATURE == 0) {
        return Err(err(
            Reason::ProxyIssuerKeyUsage,
            format!("{issuer_dn} issued a proxy but lacks the digitalSignature key usage"),
        ));
    }
    // Every proxy above limits how many proxies may follow it.
    for &(above, limit) in proxy_limits.iter() {
        let below = above - index; // proxies from that one down to this one
        if below > limit as usize {
            return Err(err(
                Reason::ProxyPathLength,
                format!("{dn} exceeds the proxy path length {limit} set above it"),
            ));
        }
    }
    if let Some(limit) = pci.path_len_constraint {
        proxy_limits.push((index, limit));
    }
    if !is_leaf {
        if lang == oid::PPL_LIMITED {
            return Err(err(
                Reason::ProxyPolicyRefused,
                format!("{dn} is a limited proxy: nothing issued under it may authorise execution"),
            ));
        }
        if lang == oid::PPL_INDEPENDENT {
            return Err(err(
                Reason::ProxyPolicyRefused,
                format!("{dn} is an independent proxy: it does not carry the user's identity"),
            ));
        }
        if lang != oid::PPL_INHERIT_ALL {
            return Err(err(
                Reason::ProxyPolicyRefused,
                format!(
                    "{dn} has proxy policy language {lang}, which may not issue a job-bound proxy"
                ),
            ));
        }
    }
    Ok(())
}
