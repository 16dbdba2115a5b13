//! Step 2: path validation. RFC 5280 for the end-entity chain, RFC 3820 for
//! every proxy, from the trust anchor down to the leaf.

use der::Decode;
use jobseal_core::asn1::{self, ProxyCertInfo};
use jobseal_core::time::UnixTime;
use jobseal_core::{Error, Reason, oid};
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

/// Most CA-directory certificates between the bundle and its anchor.
const MAX_DIRECTORY_CAS: usize = 6;
/// Most same-name candidates weighed while building one path upward (each
/// costs a signature verification).
const MAX_CANDIDATES_WEIGHED: usize = 48;

/// The part of the path the CA directory supplies (§6.3 2b).
struct Upward {
    /// CA certificates of the directory that are not self-issued, the one
    /// that issued the bundle's top first.
    directory: Vec<ParsedCert>,
    /// The self-issued certificate the path ends at.
    anchor: ParsedCert,
    /// For the bundle's top and each directory certificate: whether its
    /// signature was verified by the certificate above while building.
    verified: Vec<bool>,
}

/// Builds a path upward through the CA directory, depth first, trying the
/// same-name candidates that verify and are valid first.
struct Builder<'a> {
    trust: &'a TrustStore,
    opts: &'a PathOptions,
    weighed: usize,
    /// The first issuer name the directory holds no certificate of.
    missing: Option<String>,
}

impl Builder<'_> {
    /// Certificates above `below` up to a self-issued one, nearest first,
    /// each with whether its key verified the certificate below it.
    fn up(&mut self, below: &ParsedCert, depth: usize) -> Option<Vec<(ParsedCert, bool)>> {
        let anchors = self.trust.issuer_anchors(below);
        let mut ranked: Vec<(u8, &ParsedCert)> = Vec::new();
        let mut any = false;
        for (_, candidate) in anchors.matching() {
            any = true;
            if self.weighed >= MAX_CANDIDATES_WEIGHED {
                break;
            }
            self.weighed += 1;
            let signed =
                check_signature(below, candidate.spki(), "", self.opts, Signer::Ca).is_ok();
            let current = check_time(candidate, "", self.opts.at, self.opts.clock_skew).is_ok();
            ranked.push((u8::from(!signed) * 2 + u8::from(!current), candidate));
        }
        if !any && self.missing.is_none() {
            self.missing = Some(below.issuer_dn_str().to_string());
        }
        // Stable: among equals, file order.
        ranked.sort_by_key(|(rank, _)| *rank);
        for (rank, candidate) in ranked {
            let signed = rank < 2;
            if candidate.is_self_issued() {
                return Some(vec![(candidate.clone(), signed)]);
            }
            // `candidate` would be directory certificate number depth + 1.
            if depth >= MAX_DIRECTORY_CAS || candidate.der == below.der {
                continue;
            }
            if let Some(mut above) = self.up(candidate, depth + 1) {
                above.insert(0, (candidate.clone(), signed));
                return Some(above);
            }
        }
        None
    }
}

/// 2b: from the bundle's top certificate up to a self-issued certificate of
/// the CA directory.
fn build_upward(
    top: &ParsedCert,
    top_dn: &str,
    trust: &TrustStore,
    opts: &PathOptions,
) -> Result<Upward, Error> {
    let mut builder = Builder {
        trust,
        opts,
        weighed: 0,
        missing: None,
    };
    let Some(mut found) = builder.up(top, 0) else {
        let dir = trust.dir().display();
        let issuer = top.issuer_dn_str();
        let message = match builder.missing {
            Some(missing) if missing == issuer => {
                let hash = top.issuer_hash().unwrap_or(0);
                format!(
                    "the issuer {issuer} of {top_dn} is not a trusted CA: no {hash:08x}.N file in {dir} holds it"
                )
            }
            Some(missing) => format!(
                "no path from {top_dn} to a self-signed root CA in {dir}: it holds a CA issued by {missing}, but no certificate of {missing} (install that root, or remove the orphaned CA)"
            ),
            None => format!(
                "no path from {top_dn} to a self-signed root CA in {dir} within {MAX_DIRECTORY_CAS} CA certificates and {MAX_CANDIDATES_WEIGHED} candidates"
            ),
        };
        return Err(err(Reason::ChainUntrusted, message));
    };
    let (anchor, anchor_verified) = found
        .pop()
        .ok_or_else(|| err(Reason::Internal, "empty upward path"))?;
    let verified = found
        .iter()
        .map(|(_, v)| *v)
        .chain(std::iter::once(anchor_verified))
        .collect();
    Ok(Upward {
        directory: found.into_iter().map(|(c, _)| c).collect(),
        anchor,
        verified,
    })
}

/// 2a: each certificate is issued by the next one.
fn check_links(certs: &[ParsedCert]) -> Result<(), Error> {
    for pair in certs.windows(2) {
        if let [child, parent] = pair
            && !child.is_issued_by(parent)
        {
            return Err(err(
                Reason::ChainBroken,
                format!(
                    "{} is not issued by the next certificate of the bundle, {}: a bundle carries each certificate's issuer right after it, and may stop below a CA (the site's CA directory supplies the rest) but never skip one",
                    child.subject_dn(),
                    parent.subject_dn()
                ),
            ));
        }
    }
    Ok(())
}

/// 2b: a self-issued last certificate that the CA directory holds (same
/// name, same key, whatever its validity) is a copy of an anchor and is set
/// aside: the directory, not the bundle, says which anchor applies.
fn without_anchor_copy<'c>(certs: &'c [ParsedCert], trust: &TrustStore) -> &'c [ParsedCert] {
    match certs.split_last() {
        Some((top, rest))
            if !rest.is_empty()
                && top.is_self_issued()
                && trust
                    .anchors(top.subject())
                    .matching()
                    .any(|(_, a)| a.der == top.der || a.spki() == top.spki()) =>
        {
            rest
        }
        _ => certs,
    }
}

/// A CA certificate outside the bundle (the anchor or one of the CA
/// directory) carrying a JobBinding: step 3 sees only the bundle.
fn refuse_binding_on_ca(c: &ParsedCert, dn: &str) -> Result<(), Error> {
    if c.extensions_with(oid::JOB_BINDING).next().is_some() {
        return Err(err(
            Reason::BindingMisplaced,
            format!(
                "the CA certificate {dn} of the CA directory carries a JobBinding, which belongs on a job-bound proxy only: remove it from the CA directory"
            ),
        ));
    }
    Ok(())
}

/// 2c: the anchor's own checks.
fn check_anchor(anchor: &ParsedCert, dn: &str, opts: &PathOptions) -> Result<(), Error> {
    check_time(anchor, dn, opts.at, opts.clock_skew)?;
    if !is_ca(anchor, dn)? {
        return Err(err(
            Reason::ChainNotCa,
            format!("the trust anchor {dn} is not a CA"),
        ));
    }
    // The anchor's own critical extensions bind too: one this verifier does
    // not process (name constraints, policy constraints, …) fails closed.
    check_critical(anchor, dn, Role::Ca)?;
    refuse_binding_on_ca(anchor, dn)
}

/// Step 2, over certificates ordered leaf first (the bundle's order).
pub fn validate(
    certs: &[ParsedCert],
    trust: &TrustStore,
    opts: &PathOptions,
) -> Result<ValidatedPath, Error> {
    check_links(certs)?;
    let bundle = without_anchor_copy(certs, trust);
    let top = bundle
        .last()
        .ok_or_else(|| err(Reason::BundleMalformed, "no certificate"))?;
    let top_dn = top.subject_dn();
    let upward = build_upward(top, &top_dn, trust, opts)?;
    let anchor_dn = upward.anchor.subject_dn();
    check_anchor(&upward.anchor, &anchor_dn, opts)?;
    let path: Vec<&ParsedCert> = bundle.iter().chain(&upward.directory).collect();
    walk(
        &path,
        Some(Above {
            anchor: &upward.anchor,
            anchor_dn,
            trust,
            bundle_len: bundle.len(),
            verified: &upward.verified,
        }),
        opts,
    )
}

/// Step 2 as far as the chain alone shows it, for an issuer about to sign
/// under it: everything but the anchor, the topmost certificate's signature
/// and the CA directory's files (CRLs, namespaces). What this refuses, every
/// verifier refuses.
pub fn check_without_anchor(certs: &[ParsedCert], opts: &PathOptions) -> Result<usize, Error> {
    check_links(certs)?;
    // A self-issued top above others is a copy of an anchor (set aside,
    // 2b) or the anchor itself (checked by 2c, from the directory's copy):
    // neither is a path certificate.
    let certs = match certs.split_last() {
        Some((top, rest)) if !rest.is_empty() && top.is_self_issued() => rest,
        _ => certs,
    };
    let path: Vec<&ParsedCert> = certs.iter().collect();
    walk(&path, None, opts).map(|p| p.end_entity)
}

/// What lies above the path's top certificate.
struct Above<'a> {
    anchor: &'a ParsedCert,
    anchor_dn: String,
    trust: &'a TrustStore,
    /// Path certificates from the bundle; the rest came from the directory.
    bundle_len: usize,
    /// [`Upward::verified`].
    verified: &'a [bool],
}

/// 2d and 2e over `path` (leaf first: the bundle, then the directory's
/// certificates), from the top down.
fn walk(
    path: &[&ParsedCert],
    above: Option<Above<'_>>,
    opts: &PathOptions,
) -> Result<ValidatedPath, Error> {
    let (at, skew) = (opts.at, opts.clock_skew);
    let anchor = above.as_ref().map(|a| a.anchor);
    let mut ca_path_len = match &above {
        Some(a) => basic_constraints(a.anchor, &a.anchor_dn)?.and_then(|bc| bc.path_len_constraint),
        None => None,
    };
    let mut role = Role::Ca;
    let mut end_entity = None;
    let mut not_before = 0u64;
    let mut not_after = u64::MAX;
    // (index, pCPathLenConstraint) of every proxy above the current one.
    let mut proxy_limits: Vec<(usize, u32)> = Vec::new();
    let mut issuer_spki = anchor.map(|a| a.spki().to_vec());
    let mut issuer_ku = match &above {
        Some(a) => key_usage(a.anchor, &a.anchor_dn)?,
        None => None,
    };
    let mut issuer_dn = above
        .as_ref()
        .map(|a| a.anchor_dn.clone())
        .unwrap_or_default();
    let last = path.len().saturating_sub(1);
    let bundle_len = above.as_ref().map_or(path.len(), |a| a.bundle_len);
    // Subject names top down, built once and reused for the identity.
    let mut dns: Vec<String> = Vec::with_capacity(path.len());
    for (depth_from_top, c) in path.iter().rev().enumerate() {
        let c: &ParsedCert = c;
        let index = last - depth_from_top;
        let dn = c.subject_dn();
        let is_leaf = index == 0;
        let from_directory = index >= bundle_len;
        // Role of this certificate: basicConstraints first (repeated or
        // malformed → cert.malformed), then ProxyCertInfo.
        let cert_is_ca = is_ca(c, &dn)?;
        if from_directory && !cert_is_ca {
            return Err(err(
                Reason::ChainNotCa,
                format!("{dn}, a certificate of the CA directory on the path, is not a CA"),
            ));
        }
        let pci_ext = c.extension(oid::PROXY_CERT_INFO).map_err(|_| {
            err(
                Reason::ProxyMalformed,
                format!("{dn} carries ProxyCertInfo more than once"),
            )
        })?;
        role = next_role(role, c, &dn, pci_ext.is_some(), cert_is_ca, &issuer_dn)?;
        // Common checks: algorithm and signature, validity, critical
        // extensions. Signatures verified while building are not redone.
        let verified_before = match &above {
            Some(a) => {
                index + 1 >= a.bundle_len && a.verified.get(index + 1 - a.bundle_len) == Some(&true)
            }
            None => false,
        };
        match &issuer_spki {
            Some(spki) if !verified_before => {
                let signer = if role == Role::Proxy {
                    Signer::EndEntityOrProxy
                } else {
                    Signer::Ca
                };
                check_signature(c, spki, &dn, opts, signer)?;
            }
            _ => {}
        }
        let (nb, na) = check_time(c, &dn, at, skew)?;
        not_before = not_before.max(nb);
        not_after = not_after.min(na);
        check_critical(c, &dn, role)?;
        let ku = key_usage(c, &dn)?;
        if from_directory {
            refuse_binding_on_ca(c, &dn)?;
        }
        let has_issuer = above.is_some() || index != last;
        match role {
            Role::Ca => {
                if has_issuer {
                    check_issuer_may_sign(issuer_ku, &issuer_dn)?;
                }
                ca_path_len = count_ca(c, &dn, ca_path_len)?;
            }
            Role::EndEntity => {
                if has_issuer {
                    check_issuer_may_sign(issuer_ku, &issuer_dn)?;
                }
                // The user's identity is this subject: it cannot be empty
                // (RFC 5280 §4.1.2.6 for a certificate that names no one).
                if c.subject_is_empty() {
                    return Err(err(
                        Reason::CertMalformed,
                        "the end-entity certificate has an empty subject",
                    ));
                }
                // Nor its CA's name (in any case or spacing): such a user
                // would pass for the CA in namespace rules and differ from
                // it in identity strings only by case.
                if c.is_self_issued() {
                    return Err(err(
                        Reason::ChainNamespaceViolation,
                        format!(
                            "the end-entity certificate {dn} is named as its issuer: a CA does not give a user its own name"
                        ),
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
        if let (Some(a), false) = (&above, role == Role::Proxy) {
            let issuers: Vec<&ParsedCert> = path
                .iter()
                .skip(index + 1)
                .copied()
                .chain(std::iter::once(a.anchor))
                .collect();
            crate::namespaces::check(c, &issuers, a.trust)?;
            crate::revocation::check(c, &issuers, a.trust, opts)?;
        }
        issuer_spki = Some(c.spki().to_vec());
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
    identity(path, &dns, end_entity, above, not_before, not_after)
}

/// The role of the next certificate down, given the role above it (2d.1).
fn next_role(
    above: Role,
    c: &ParsedCert,
    dn: &str,
    has_pci: bool,
    cert_is_ca: bool,
    issuer_dn: &str,
) -> Result<Role, Error> {
    if above == Role::Ca && cert_is_ca {
        return Ok(Role::Ca);
    }
    if is_legacy_proxy(c) {
        return Err(err(
            Reason::ProxyLegacy,
            format!("{dn} is a legacy (pre-RFC 3820) proxy; only RFC 3820 proxies are accepted"),
        ));
    }
    match (above, has_pci) {
        (Role::Ca, false) => Ok(Role::EndEntity),
        (Role::Ca, true) => Err(err(
            Reason::ProxyMalformed,
            format!("{dn} is a proxy issued directly by a CA"),
        )),
        (_, true) => Ok(Role::Proxy),
        // Issued by the end entity without being a proxy: the issuer acted
        // as a CA without being one.
        (Role::EndEntity, false) => Err(err(
            Reason::ChainNotCa,
            format!("{dn} is issued by {issuer_dn}, which is not a CA (and it is not a proxy)"),
        )),
        (Role::Proxy, false) => Err(err(
            Reason::ProxyMalformed,
            format!("{dn} is issued by a proxy but carries no ProxyCertInfo"),
        )),
    }
}

/// 2d.6: a CA or end-entity certificate's issuer must be allowed to sign
/// certificates.
fn check_issuer_may_sign(issuer_ku: Option<u16>, issuer_dn: &str) -> Result<(), Error> {
    if issuer_ku.is_some_and(|k| k & asn1::KU_KEY_CERT_SIGN == 0) {
        return Err(err(
            Reason::ChainNotCa,
            format!("{issuer_dn} may not sign certificates (keyUsage)"),
        ));
    }
    Ok(())
}

/// 2d.6: an intermediate CA against the path length constraints above it;
/// returns the constraint that applies below it.
fn count_ca(c: &ParsedCert, dn: &str, limit: Option<u8>) -> Result<Option<u8>, Error> {
    // Self-issued CA certificates (key rollover) do not count against path
    // length constraints (RFC 5280 §6.1.4 (l)).
    let limit = match limit {
        _ if c.is_self_issued() => limit,
        Some(0) => {
            return Err(err(
                Reason::ChainPathLength,
                format!("{dn} exceeds the CA path length constraint"),
            ));
        }
        Some(n) => Some(n - 1),
        None => None,
    };
    Ok(
        match basic_constraints(c, dn)?.and_then(|bc| bc.path_len_constraint) {
            Some(own) => Some(limit.map_or(own, |n| n.min(own))),
            None => limit,
        },
    )
}

/// What path validation established, from the walked path.
fn identity(
    path: &[&ParsedCert],
    dns: &[String],
    end_entity: usize,
    above: Option<Above<'_>>,
    not_before: u64,
    not_after: u64,
) -> Result<ValidatedPath, Error> {
    let last = path.len().saturating_sub(1);
    let (Some(eec), Some(leaf)) = (path.get(end_entity), path.first()) else {
        return Err(err(Reason::Internal, "end entity index"));
    };
    let dn_of = |i: usize, c: &ParsedCert| {
        dns.get(last.saturating_sub(i))
            .cloned()
            .unwrap_or_else(|| c.subject_dn())
    };
    // The CAs above the EEC (from the bundle, then the directory), then
    // the anchor.
    let mut cas: Vec<String> = path
        .iter()
        .enumerate()
        .skip(end_entity.saturating_add(1))
        .map(|(i, c)| dn_of(i, c))
        .collect();
    let ca = above.map(|a| a.anchor_dn).unwrap_or_default();
    cas.push(ca.clone());
    Ok(ValidatedPath {
        identity: Identity {
            end_entity: dn_of(end_entity, eec),
            subject: dn_of(0, leaf),
            // The leaf's issuer, spelled out already when it is the subject
            // of the next certificate byte for byte.
            issuer: match path.get(1) {
                Some(next) if next.subject() == leaf.issuer() => next.subject_dn(),
                _ => leaf.issuer_dn_str().to_string(),
            },
            // The leaf is path[0]: its issuer is the EEC when that is path[1].
            issued_by_end_entity: end_entity == 1,
            ca,
            cas,
            serials: path
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
    // RFC 5280 §4.1.2.2: a positive serial. Every proxy issuer makes one;
    // CAs of the field do not always, so CA-issued certificates are spared.
    let serial = c.cert.tbs_certificate().serial_number().as_bytes();
    if serial.first().is_none_or(|b| b & 0x80 != 0) || serial.iter().all(|b| *b == 0) {
        return Err(err(
            Reason::ProxyMalformed,
            format!("{dn}: a proxy's serial number must be a positive integer"),
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
