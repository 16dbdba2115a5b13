//! VOMS attribute certificates (`spec/jobseal.md` §6.3a): which ACs carried
//! by the chain's proxies a site may trust, checked as VOMS checks them (LSC
//! files, the AA certificate carried in the AC, its path to a trusted CA, the
//! holder, the validity).
//!
//! An AC that fails a check never denies: as with VOMS, the user stays
//! authenticated, without that AC's attributes, and the decision says why.
//! Work is bounded: at most [`MAX_ACS`] ACs per bundle, each VOMS extension at
//! most [`jobseal_core::voms::MAX_AC_SEQ_BYTES`], each LSC file at most
//! [`MAX_LSC_BYTES`].

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use der::Decode;
use jobseal_core::voms::{self as ac_reader, AcError, AttributeCertificate};
use jobseal_core::{Error, Reason, asn1, name, oid, tlv};
use spki::AlgorithmIdentifierOwned;

pub use jobseal_core::voms::{GenericAttribute, MAX_ACS};

use crate::decision::VomsInfo;
use crate::fsread::{FileCache, ReadError};
use crate::parse::ParsedCert;
use crate::path::{self, PathOptions, ValidatedPath};
use crate::sig::{self, Signer};
use crate::trust::TrustStore;

/// Largest LSC file read.
pub const MAX_LSC_BYTES: u64 = 64 * 1024;

/// Why an AC's attributes are not trusted. The codes are stable, like
/// reason codes, but they never deny: they say why attributes were dropped.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum VomsCode {
    /// More than [`MAX_ACS`] ACs, or a VOMS extension, an AC-certs list or an
    /// LSC file above its limit.
    LimitsExceeded,
    /// The AC is not DER, or breaks the VOMS profile of RFC 5755.
    Malformed,
    /// The AC carries a critical extension the verifier does not process.
    UnhandledCriticalExtension,
    /// The AC is targeted (2.5.29.55), which version 1 cannot evaluate.
    Targeted,
    /// No usable LSC file `<vomsdir>/<vo>/<host>.lsc`.
    NoLsc,
    /// The LSC file does not describe the AA certificate carried in the AC.
    LscMismatch,
    /// The AA certificate has no valid path to a trusted CA.
    UntrustedAa,
    /// The AC's issuer or authority key identifier is not the AA certificate's.
    IssuerMismatch,
    /// The AC signature algorithm or the AA key is not accepted.
    WeakAlgorithm,
    /// The AC signature does not verify under the AA certificate's key.
    BadSignature,
    /// The AC was issued to another certificate than the chain's EEC.
    HolderMismatch,
    /// The AC has expired.
    Expired,
    /// The AC is not yet valid.
    NotYetValid,
}

impl VomsCode {
    /// Every code, in the order of the checks (§6.3a).
    pub const ALL: &'static [VomsCode] = &[
        Self::LimitsExceeded,
        Self::Malformed,
        Self::UnhandledCriticalExtension,
        Self::Targeted,
        Self::NoLsc,
        Self::LscMismatch,
        Self::UntrustedAa,
        Self::IssuerMismatch,
        Self::WeakAlgorithm,
        Self::BadSignature,
        Self::HolderMismatch,
        Self::Expired,
        Self::NotYetValid,
    ];

    /// The stable dotted code, e.g. `voms.no-lsc`.
    pub fn code(self) -> &'static str {
        match self {
            Self::LimitsExceeded => "voms.limits-exceeded",
            Self::Malformed => "voms.malformed",
            Self::UnhandledCriticalExtension => "voms.unhandled-critical-extension",
            Self::Targeted => "voms.targeted",
            Self::NoLsc => "voms.no-lsc",
            Self::LscMismatch => "voms.lsc-mismatch",
            Self::UntrustedAa => "voms.untrusted-aa",
            Self::IssuerMismatch => "voms.issuer-mismatch",
            Self::WeakAlgorithm => "voms.weak-algorithm",
            Self::BadSignature => "voms.bad-signature",
            Self::HolderMismatch => "voms.holder-mismatch",
            Self::Expired => "voms.expired",
            Self::NotYetValid => "voms.not-yet-valid",
        }
    }

    /// Look a code up by its string.
    pub fn from_code(code: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|c| c.code() == code)
    }
}

impl std::fmt::Display for VomsCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.code())
    }
}

/// Why one AC is not trusted, with a line for people.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VomsError {
    pub code: VomsCode,
    pub message: String,
}

fn fail(code: VomsCode, message: impl Into<String>) -> VomsError {
    VomsError {
        code,
        message: message.into(),
    }
}

/// What AC verification needs besides the chain.
#[derive(Clone, Copy, Debug)]
pub struct VomsContext<'a> {
    /// The CA directory: the AA certificate must have a path to it.
    pub trust: &'a TrustStore,
    /// The vomsdir with `<vo>/<host>.lsc` files.
    pub voms_dir: &'a Path,
    /// Time, clock skew and algorithm policy, as for the chain.
    pub opts: &'a PathOptions,
}

/// Step 2's one rule on VOMS ACs that denies (§6.3a): attributes come
/// from one certificate of the chain. A proxy carrying the VOMS extension
/// (whatever it holds) is an AC source; two sources, such as a VOMS proxy
/// and a job-bound proxy with an AC of its own, would let whoever holds the
/// proxy add attributes the user's own AC request did not give
/// (`chain.voms-two-sources`).
pub fn check_sources(certs: &[ParsedCert], end_entity: usize) -> Result<(), Error> {
    let proxies = certs.get(..end_entity).unwrap_or_default();
    let sources: Vec<&ParsedCert> = proxies
        .iter()
        .filter(|c| c.extensions_with(oid::VOMS_AC_SEQ).next().is_some())
        .collect();
    match sources.as_slice() {
        [first, second, ..] => Err(Error::new(
            Reason::ChainVomsTwoSources,
            format!(
                "{} certificates of the chain carry VOMS attributes ({} and {}); attributes may come from one only",
                sources.len(),
                second.subject_dn(),
                first.subject_dn()
            ),
        )),
        _ => Ok(()),
    }
}

/// Check the ACs of every proxy of a validated chain (leaf first, the EEC at
/// `end_entity`), from the proxy below the EEC down to the leaf.
pub fn check_chain(
    certs: &[ParsedCert],
    end_entity: usize,
    ctx: &VomsContext<'_>,
) -> Vec<VomsInfo> {
    let mut out = Vec::new();
    let Some(eec) = certs.get(end_entity) else {
        return out;
    };
    let mut budget = MAX_ACS;
    for proxy in certs.get(..end_entity).unwrap_or_default().iter().rev() {
        out.extend(check_certificate_budget(proxy, eec, ctx, &mut budget));
    }
    out
}

/// Check the ACs one certificate carries for the holder `eec` (empty if it
/// carries none). Examines at most [`MAX_ACS`] ACs.
pub fn check_certificate(
    cert: &ParsedCert,
    eec: &ParsedCert,
    ctx: &VomsContext<'_>,
) -> Vec<VomsInfo> {
    let mut budget = MAX_ACS;
    check_certificate_budget(cert, eec, ctx, &mut budget)
}

fn check_certificate_budget(
    cert: &ParsedCert,
    eec: &ParsedCert,
    ctx: &VomsContext<'_>,
    budget: &mut usize,
) -> Vec<VomsInfo> {
    // Path validation refuses a repeated extension, so there is at most one.
    cert.extensions_with(oid::VOMS_AC_SEQ)
        .flat_map(|ext| check_extension(ext.extn_value.as_bytes(), eec, ctx, budget))
        .collect()
}

/// Check the ACs of one VOMS extension value.
pub fn check_extension(
    ext_value: &[u8],
    eec: &ParsedCert,
    ctx: &VomsContext<'_>,
    budget: &mut usize,
) -> Vec<VomsInfo> {
    let acs = match ac_reader::split_ac_seq(ext_value) {
        Ok(acs) => acs,
        Err(e) => return vec![unread(None, &e)],
    };
    if acs.len() > *budget {
        let e = AcError::Limits(format!(
            "the chain carries more than {MAX_ACS} VOMS ACs; these {} were not examined",
            acs.len()
        ));
        return vec![unread(None, &e)];
    }
    *budget -= acs.len();
    acs.into_iter().map(|ac| check_ac(ac, eec, ctx)).collect()
}

/// An entry for ACs that could not be examined: what the lenient reader
/// could say about the AC (`claimed`), for the log, and why.
fn unread(claimed: Option<ac_reader::VomsAc>, e: &AcError) -> VomsInfo {
    let error = match e {
        AcError::Limits(m) => fail(VomsCode::LimitsExceeded, m.clone()),
        AcError::Malformed(m) => fail(VomsCode::Malformed, m.clone()),
    };
    VomsInfo {
        vo: claimed.as_ref().map(|c| c.vo.clone()).unwrap_or_default(),
        fqans: Vec::new(),
        generic_attributes: Vec::new(),
        issuer: claimed
            .as_ref()
            .map(|c| c.issuer.clone())
            .unwrap_or_default(),
        not_after: claimed.map(|c| c.not_after),
        verified: false,
        error: Some(error),
    }
}

/// Check one AC (its DER) for the holder `eec`.
pub fn check_ac(der: &[u8], eec: &ParsedCert, ctx: &VomsContext<'_>) -> VomsInfo {
    let ac = match ctx.trust.ac_cache().read(der, ctx.trust) {
        Ok(ac) => ac,
        // A malformed AC may still say which VO it claims; one over a
        // limit is not read further.
        Err(e @ AcError::Malformed(_)) => return unread(ac_reader::read_ac_lenient(der), &e),
        Err(e) => return unread(None, &e),
    };
    let result = verify(&ac, eec, ctx);
    let verified = result.is_ok();
    VomsInfo {
        vo: ac.ac.vo.clone(),
        fqans: if verified {
            ac.ac.fqans.clone()
        } else {
            Vec::new()
        },
        generic_attributes: if verified {
            ac.ac.generic_attributes.clone()
        } else {
            Vec::new()
        },
        // The AA's subject, when the AC names it as is, is already spelled out.
        issuer: match ac.carried.first() {
            Some(aa) if aa.subject() == ac.ac.issuer.as_slice() => aa.subject_dn(),
            _ => name::to_slash_string(&ac.ac.issuer),
        },
        not_after: Some(ac.ac.not_after),
        verified,
        error: result.err(),
    }
}

/// An AC with what the checks read from it beyond the core reader.
#[derive(Debug)]
struct ReadAc {
    ac: AttributeCertificate,
    algorithm: AlgorithmIdentifierOwned,
    carried: Vec<ParsedCert>,
}

/// Most ACs one [`AcCache`] keeps; past it the cache is emptied.
const MAX_CACHED_ACS: usize = 256;
/// Most AC bytes one [`AcCache`] keeps; past it the cache is emptied.
const MAX_CACHED_AC_BYTES: usize = 4 * 1024 * 1024;

/// ACs read before (check (b)), keyed by their whole DER and compared byte
/// for byte: a VOMS proxy, and so its ACs, serves many jobs. Reading is a
/// function of the bytes alone; every other check is done again each time.
/// Only ACs that read are kept. Per verifier (no global state).
#[derive(Default)]
pub(crate) struct AcCache(std::sync::RwLock<AcMap>);

/// ACs by DER, and their bytes in all.
type AcMap = (HashMap<Vec<u8>, Arc<ReadAc>>, usize);

impl std::fmt::Debug for AcCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let n = self.0.read().map(|m| m.0.len()).unwrap_or(0);
        write!(f, "AcCache({n} ACs)")
    }
}

impl AcCache {
    /// [`read`], from the cache when these bytes were read before.
    fn read(&self, der: &[u8], trust: &TrustStore) -> Result<Arc<ReadAc>, AcError> {
        // A poisoned lock only costs the cache, never a decision.
        if let Ok(map) = self.0.read()
            && let Some(hit) = map.0.get(der)
        {
            return Ok(hit.clone());
        }
        let ac = Arc::new(read(der, trust)?);
        if let Ok(mut map) = self.0.write() {
            if map.0.len() >= MAX_CACHED_ACS
                || map.1.saturating_add(der.len()) > MAX_CACHED_AC_BYTES
            {
                map.0.clear();
                map.1 = 0;
            }
            if map.0.insert(der.to_vec(), ac.clone()).is_none() {
                map.1 = map.1.saturating_add(der.len());
            }
        }
        Ok(ac)
    }
}

/// Check (b): the AC, its signature algorithm and its carried certificates
/// must parse. The carried certificates (the AA's) recur from job to job:
/// they are kept parsed by the trust store, keyed by their DER.
fn read(der: &[u8], trust: &TrustStore) -> Result<ReadAc, AcError> {
    let ac = ac_reader::parse_ac(der)?;
    let algorithm = AlgorithmIdentifierOwned::from_der(&ac.signature_algorithm)
        .map_err(|e| AcError::Malformed(format!("the AC signature algorithm: {e}")))?;
    let carried = ac
        .ac_certs
        .iter()
        .enumerate()
        .map(|(i, c)| {
            trust.cert_cache().parse(c.clone(), i).map_err(|e| {
                AcError::Malformed(format!(
                    "certificate {i} of the AC-certs extension is malformed: {}",
                    e.message
                ))
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(ReadAc {
        ac,
        algorithm,
        carried,
    })
}

/// Checks (c) to (k) of §6.3a, in order; the first failure is reported.
fn verify(r: &ReadAc, eec: &ParsedCert, ctx: &VomsContext<'_>) -> Result<(), VomsError> {
    let ac = &r.ac;
    let what = format!("the VOMS AC of VO {} from {}", ac.vo, ac.host);
    // (c) Extensions.
    if let Some(id) = ac.unknown_critical.first() {
        return Err(fail(
            VomsCode::UnhandledCriticalExtension,
            format!("{what} carries critical extension {id}, which this verifier does not process"),
        ));
    }
    // (d) The targets name services; the verifier does not know which one
    // the job will use, so a targeted AC is not trusted anywhere.
    if ac.targeting.is_some() {
        return Err(fail(
            VomsCode::Targeted,
            format!("{what} is targeted at named services, which version 1 cannot evaluate"),
        ));
    }
    // (e), (f) The LSC file of the VO and AA host describes the AA.
    let descriptions = read_lsc(ctx.voms_dir, &ac.vo, &ac.host, ctx.trust.file_cache())?;
    let aa = r.carried.first().ok_or_else(|| {
        fail(
            VomsCode::LscMismatch,
            format!(
                "{what} carries no AA certificate (AA certificates installed in the vomsdir are not consulted)"
            ),
        )
    })?;
    // The AA's path (check (g)) is built once: its CAs are also the names
    // an LSC description lists above the carried certificates.
    let validated = path::validate(&r.carried, ctx.trust, ctx.opts);
    let names = chain_names(&r.carried, &validated);
    if !descriptions
        .iter()
        .any(|d| lsc_matches(d, &names, &r.carried))
    {
        return Err(fail(
            VomsCode::LscMismatch,
            format!(
                "{what}: {}/{}/{}.lsc does not describe the AA {} issued by {}",
                ctx.voms_dir.display(),
                ac.vo,
                ac.host,
                aa.subject_dn(),
                name::to_slash_string(aa.issuer())
            ),
        ));
    }
    // (g) The AA certificate has a path to a trusted CA, as an end entity.
    // Spelled out for a failure only: not built when the AC verifies.
    let aa_dn = || aa.subject_dn();
    match validated {
        Ok(p) if p.end_entity == 0 => {}
        Ok(_) => {
            return Err(fail(
                VomsCode::UntrustedAa,
                format!(
                    "{what}: the AA certificate {aa_dn} is not an end-entity certificate",
                    aa_dn = aa_dn()
                ),
            ));
        }
        Err(e) => {
            return Err(fail(
                VomsCode::UntrustedAa,
                format!(
                    "{what}: the AA certificate {aa_dn} is not trusted: {}: {}",
                    e.reason.code(),
                    e.message,
                    aa_dn = aa_dn()
                ),
            ));
        }
    }
    let ku = aa
        .extension(oid::KEY_USAGE)
        .ok()
        .flatten()
        .and_then(|e| asn1::key_usage_bits(e.extn_value.as_bytes()));
    if ku.is_some_and(|k| k & asn1::KU_DIGITAL_SIGNATURE == 0) {
        return Err(fail(
            VomsCode::UntrustedAa,
            format!(
                "{what}: the AA certificate {aa_dn} may not sign (keyUsage lacks digitalSignature)",
                aa_dn = aa_dn()
            ),
        ));
    }
    // (h) The AC names that AA as its issuer.
    if !name::same(&ac.issuer, aa.subject()) {
        return Err(fail(
            VomsCode::IssuerMismatch,
            format!(
                "{what} names {} as its issuer, not the AA certificate it carries, {aa_dn}",
                name::to_slash_string(&ac.issuer),
                aa_dn = aa_dn()
            ),
        ));
    }
    if let Some(Some(key_id)) = &ac.authority_key_id
        && !key_id_matches(key_id, aa)
    {
        return Err(fail(
            VomsCode::IssuerMismatch,
            format!(
                "{what}: its authority key identifier is not that of {aa_dn}",
                aa_dn = aa_dn()
            ),
        ));
    }
    // (i) The AA's key signed it: the algorithm table of §6.3 2d.2, with the
    // minimums of proxies (an AA is an end entity: no legacy allowance).
    sig::verify_certificate(
        &r.algorithm,
        aa.spki(),
        &ac.acinfo,
        &ac.signature,
        &what,
        &ctx.opts.algorithms,
        Signer::EndEntityOrProxy,
    )
    .map_err(|e| {
        let code = match e.reason {
            Reason::ChainWeakAlgorithm => VomsCode::WeakAlgorithm,
            Reason::ChainBadSignature => VomsCode::BadSignature,
            _ => VomsCode::Malformed,
        };
        fail(code, e.message)
    })?;
    // (j) It was issued to this chain's EEC.
    ac_reader::check_holder(ac, &eec.der)
        .map_err(|m| fail(VomsCode::HolderMismatch, format!("{what}: {m}")))?;
    // (k) Validity, with the skew on notBefore only (ACs are not back-dated).
    let at = ctx.opts.at;
    if at > ac.not_after {
        return Err(fail(
            VomsCode::Expired,
            format!("{what} expired at {}", ac.not_after.to_rfc3339()),
        ));
    }
    if at.plus(ctx.opts.clock_skew) < ac.not_before {
        return Err(fail(
            VomsCode::NotYetValid,
            format!("{what} is not valid before {}", ac.not_before.to_rfc3339()),
        ));
    }
    Ok(())
}

/// The authority key identifier names the AA key: its subjectKeyIdentifier,
/// or the SHA-1 of its public key bits (RFC 5280 §4.2.1.2, method 1).
fn key_id_matches(key_id: &[u8], aa: &ParsedCert) -> bool {
    let ski = aa
        .extension(oid::SUBJECT_KEY_ID)
        .ok()
        .flatten()
        .and_then(|e| tlv::read_all(e.extn_value.as_bytes()))
        .filter(|t| t.tag == 0x04)
        .map(|t| t.value);
    if ski == Some(key_id) {
        return true;
    }
    sig::public_key(aa.spki()).is_some_and(|k| {
        ring::digest::digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, k.bits).as_ref() == key_id
    })
}

/// The descriptions of `<voms_dir>/<vo>/<host>.lsc`: each a list of DNs in
/// slash form, the AA first. Lines are trimmed; blank lines and lines
/// starting with `#` are skipped; a line starting with `-` (VOMS's
/// `------ NEXT CHAIN ------`) starts another description; every other line
/// is a DN starting with `/`, or the file is unusable.
fn read_lsc(
    voms_dir: &Path,
    vo: &str,
    host: &str,
    ctx_files: &FileCache,
) -> Result<Vec<Vec<String>>, VomsError> {
    // vo and host are restricted to [A-Za-z0-9._-] by the AC reader.
    let path = voms_dir.join(vo).join(format!("{host}.lsc"));
    let no = |why: String| {
        fail(
            VomsCode::NoLsc,
            format!(
                "no usable LSC file for VO {vo} and AA host {host}: {} {why}",
                path.display()
            ),
        )
    };
    // Kept by the trust store while a `stat` shows the same file.
    let max = usize::try_from(MAX_LSC_BYTES).unwrap_or(usize::MAX);
    let file = match ctx_files.read(&path, max) {
        Ok(file) => file,
        Err(ReadError::Missing(e) | ReadError::Unreadable(e)) => {
            return Err(no(format!("cannot be read ({e})")));
        }
        Err(ReadError::TooLarge) => {
            return Err(fail(
                VomsCode::LimitsExceeded,
                format!("{} is larger than {MAX_LSC_BYTES} bytes", path.display()),
            ));
        }
    };
    let text = std::str::from_utf8(file.data()).map_err(|_| no("is not UTF-8".into()))?;
    let mut out = vec![Vec::new()];
    for line in text.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if line.starts_with('-') {
            out.push(Vec::new());
        } else if line.starts_with('/') {
            if let Some(d) = out.last_mut() {
                d.push(line.to_string());
            }
        } else {
            return Err(no(format!("has a line that is not a DN: {line:?}")));
        }
    }
    out.retain(|d| d.len() >= 2);
    if out.is_empty() {
        return Err(no("holds no description of at least two DNs".into()));
    }
    Ok(out)
}

/// The names from the AA up: the AA's subject, the issuer name of each
/// carried certificate that is not self-issued (as written in it), then
/// the CAs above those in the path that check (g) validated, the anchor
/// last (none without such a path). Names only: trust is check (g)'s.
fn chain_names(carried: &[ParsedCert], validated: &Result<ValidatedPath, Error>) -> Vec<String> {
    let mut names = Vec::new();
    let Some(first) = carried.first() else {
        return names;
    };
    names.push(first.subject_dn());
    let mut issuers = 0;
    for c in carried {
        if c.is_self_issued() {
            break;
        }
        names.push(c.issuer_dn_str().to_string());
        issuers += 1;
    }
    // The path's CAs above the AA: first the issuers named just now.
    if let Ok(p) = validated
        && p.end_entity == 0
    {
        names.extend(p.identity.cas.iter().skip(issuers).cloned());
    }
    names
}

/// An LSC description matches when it is the start of the name chain (the
/// AA, its issuer, … at least two names), or, for an AC carrying several
/// certificates, when it pairs each carried certificate's subject and issuer
/// (the layout VOMS's C++ library reads).
fn lsc_matches(description: &[String], names: &[String], carried: &[ParsedCert]) -> bool {
    let chain_form = description.len() >= 2 && names.starts_with(description);
    let pair_form = carried.len() >= 2
        && description.len() == 2 * carried.len()
        && description.chunks(2).zip(carried).all(
            |(pair, c)| matches!(pair, [s, i] if s == c.subject_dn_str() && i == c.issuer_dn_str()),
        );
    chain_form || pair_form
}
