//! Site policy (step 6 of `spec/jobseal.md`, specified in §13): the policy
//! file, ban lists re-read when they change, and the decision they make on
//! a verified job.
//!
//! A [`Policy`] is loaded once ([`Policy::load`], [`Policy::load_default`])
//! and shared; [`Policy::evaluate`] runs on every admission after steps 1–5
//! permitted, and re-reads a ban file only when its stamp changed. Every
//! problem with the policy is `policy.invalid`: nothing runs under a
//! partial policy.
#![forbid(unsafe_code)]

pub mod ban;
mod check;
mod load;
pub mod pattern;
pub mod settings;

use std::path::PathBuf;
use std::sync::Arc;

use jobseal_core::limits::MAX_MANIFEST_LIFETIME;
use jobseal_core::time::format_duration;
use jobseal_core::{Error, Reason};
use jobseal_verify::sig::AlgorithmPolicy;
use jobseal_verify::{Config, CrlPolicy, Decision, InputPolicy, NamespacePolicy};

pub use ban::BanList;
pub use check::Checker;
pub use load::MAX_POLICY_BYTES;
pub use pattern::FqanPattern;
pub use settings::{AuditSettings, IssuerRule, ReplaySettings, ReplayStore};

/// Where the policy is read from when nothing else is given.
pub const DEFAULT_PATH: &str = "/etc/jobseal/policy.toml";

/// Default maximum lifetime of the job-bound proxy and of the manifest:
/// the longest manifest the format allows (31 days).
pub const DEFAULT_MAX_LIFETIME: u64 = MAX_MANIFEST_LIFETIME;

/// Largest clock skew a policy may set (one day).
pub const MAX_CLOCK_SKEW: u64 = 86_400;

/// A site policy. Fields are public so that tools can show and adjust a
/// loaded policy; [`Policy::default`] is the built-in policy.
#[derive(Clone, Debug)]
pub struct Policy {
    /// This site's name, matched exactly against the manifest's sites.
    pub site: Option<String>,
    /// Accepted VOs (`None`: any VO, and none needed).
    pub vos: Option<Vec<String>>,
    /// Accepted FQAN patterns over verified VOMS FQANs (`None`: no FQAN
    /// needed).
    pub fqans: Option<Vec<FqanPattern>>,
    /// The ban lists written in the policy itself.
    pub bans: BanList,
    /// Ban files, re-read when they change.
    pub ban_files: Vec<PathBuf>,
    /// Who may have issued the job-bound proxy ([`IssuerRule::Any`]: the
    /// user's certificate or a full proxy of it).
    pub issuer: IssuerRule,
    /// Longest usable job-bound proxy, in seconds (`None`: no limit).
    pub max_proxy_lifetime: Option<u64>,
    /// Longest manifest validity, in seconds (`None`: no limit).
    pub max_manifest_lifetime: Option<u64>,
    /// Seconds a not-before may lie in the future ([`Config::clock_skew`]).
    pub clock_skew: u64,
    pub algorithms: AlgorithmPolicy,
    pub crl: CrlPolicy,
    pub namespaces: NamespacePolicy,
    pub inputs: InputPolicy,
    pub replay: ReplaySettings,
    pub audit: AuditSettings,
    /// State directory (replay database); `None`: the caller's default.
    pub state_dir: Option<PathBuf>,
    /// Log directory (audit file); `None`: the caller's default.
    pub log_dir: Option<PathBuf>,
    /// The file the policy was read from (`None`: built in).
    pub source: Option<PathBuf>,
    cache: ban::BanCache,
}

impl Default for Policy {
    /// The built-in policy (§13.5): no site name, any VO, no FQAN needed,
    /// no bans, lifetimes up to 31 days, the verifier's defaults otherwise.
    fn default() -> Self {
        let verifier = Config::default();
        Self {
            site: None,
            vos: None,
            fqans: None,
            bans: BanList::default(),
            ban_files: Vec::new(),
            issuer: IssuerRule::Any,
            max_proxy_lifetime: Some(DEFAULT_MAX_LIFETIME),
            max_manifest_lifetime: Some(DEFAULT_MAX_LIFETIME),
            clock_skew: verifier.clock_skew,
            algorithms: verifier.algorithms,
            crl: verifier.crl,
            namespaces: verifier.namespaces,
            inputs: verifier.inputs,
            replay: ReplaySettings::default(),
            audit: AuditSettings::default(),
            state_dir: None,
            log_dir: None,
            source: None,
            cache: ban::BanCache::default(),
        }
    }
}

fn deny(reason: Reason, message: String) -> Result<(), Error> {
    Err(Error::new(reason, message))
}

impl Policy {
    /// The verifier settings this policy sets (clock skew, algorithms, CRLs,
    /// namespaces, inputs) applied to `config`; the rest is kept.
    pub fn configure(&self, config: Config) -> Config {
        Config {
            clock_skew: self.clock_skew,
            algorithms: self.algorithms,
            crl: self.crl,
            namespaces: self.namespaces,
            inputs: self.inputs,
            ..config
        }
    }

    /// The number of uses a job gets: what its manifest asks for, bounded by
    /// `replay.max_uses`.
    pub fn allowed_uses(&self, manifest_uses: u64) -> u64 {
        manifest_uses.min(self.replay.max_uses)
    }

    /// Every ban in force now: the inline lists and each ban file as it is
    /// now (read again if it changed). An unreadable or unparsable ban file
    /// is `policy.invalid`.
    pub fn ban_list(&self) -> Result<Arc<BanList>, Error> {
        if self.ban_files.is_empty() {
            return Ok(Arc::new(self.bans.clone()));
        }
        let mut all = self.bans.clone();
        for path in &self.ban_files {
            all.extend(&*self.cache.get(path)?);
        }
        Ok(Arc::new(all))
    }

    /// Step 6 (§13.4) on a decision of steps 1–5. A deny decision stays a
    /// deny with its own reason. On a permit the checks run in this order,
    /// the first failing one deciding: bans (subject, CA, FQAN, digest, job
    /// id), site, VO, FQAN acceptance, proxy lifetime, manifest lifetime,
    /// the job-bound proxy's issuer.
    pub fn evaluate(&self, decision: &Decision) -> Result<(), Error> {
        if !decision.is_permit() {
            let reason = decision.reason.unwrap_or(Reason::Internal);
            return Err(Error::new(reason, decision.message.clone()));
        }
        let (Some(id), Some(job)) = (&decision.identity, &decision.job) else {
            return deny(
                Reason::Internal,
                "a permit without identity or job reached site policy".into(),
            );
        };
        // Only verified VOMS attributes count, for bans as for acceptance.
        let verified: Vec<&jobseal_verify::VomsInfo> =
            id.voms.iter().filter(|v| v.verified).collect();
        let fqans: Vec<&str> = verified
            .iter()
            .flat_map(|v| v.fqans.iter().map(String::as_str))
            .collect();

        // 6a. Bans.
        let bans = self.ban_list()?;
        // A ban names a DN in the / form of §6.8, or as grid tools print it
        // (unescaped): either denies (a ban that matches less would admit).
        let banned = |list: &[String], dn: &str| {
            let plain = jobseal_core::name::unescaped_slash_form(dn);
            list.iter().any(|b| b == dn || *b == plain)
        };
        if banned(&bans.subjects, &id.end_entity) {
            return deny(
                Reason::PolicyBannedSubject,
                format!("the user {} is banned at this site", id.end_entity),
            );
        }
        let mut cas = id.cas.iter().chain(std::iter::once(&id.ca));
        if let Some(ca) = cas.find(|ca| banned(&bans.cas, ca)) {
            return deny(
                Reason::PolicyBannedCa,
                format!("the CA {ca} is banned at this site"),
            );
        }
        for p in &bans.fqans {
            if let Some(f) = fqans.iter().find(|f| p.matches(f)) {
                return deny(
                    Reason::PolicyBannedFqan,
                    format!("the FQAN {f} is banned at this site (pattern {p})"),
                );
            }
        }
        if bans.digests.contains(&job.manifest_sha256) {
            return deny(
                Reason::PolicyBannedDigest,
                format!(
                    "the manifest {} is banned at this site",
                    job.manifest_sha256
                ),
            );
        }
        if bans.job_ids.contains(&job.job_id) {
            return deny(
                Reason::PolicyBannedJob,
                format!("the job {} is banned at this site", job.job_id),
            );
        }

        // 6b. Site: a manifest that names sites must name this one.
        if let Some(sites) = &job.sites {
            match &self.site {
                Some(site) if sites.contains(site) => {}
                Some(site) => {
                    return deny(
                        Reason::PolicySiteNotTargeted,
                        format!("the job is for the sites {sites:?}, not for {site}"),
                    );
                }
                None => {
                    return deny(
                        Reason::PolicySiteNotTargeted,
                        format!(
                            "the job is for the sites {sites:?} and the site policy names no site"
                        ),
                    );
                }
            }
        }

        // 6c. VO: proven by a verified AC; the manifest's VO is a claim.
        if let Some(vos) = &self.vos {
            let proven = |vo: &str| verified.iter().any(|v| v.vo == vo);
            match &job.vo {
                Some(vo) if !vos.contains(vo) => {
                    return deny(
                        Reason::PolicyVoNotAccepted,
                        format!("the VO {vo} is not accepted at this site"),
                    );
                }
                Some(vo) if !proven(vo) => {
                    return deny(
                        Reason::PolicyVoNotAccepted,
                        format!(
                            "the job names the VO {vo} but carries no verified VOMS attributes of it"
                        ),
                    );
                }
                Some(_) => {}
                None if !vos.iter().any(|vo| proven(vo)) => {
                    return deny(
                        Reason::PolicyVoNotAccepted,
                        format!(
                            "the job carries no verified VOMS attributes of an accepted VO ({})",
                            vos.join(", ")
                        ),
                    );
                }
                None => {}
            }
        }

        // 6d. FQAN acceptance over verified FQANs.
        if let Some(patterns) = &self.fqans
            && !fqans.iter().any(|f| patterns.iter().any(|p| p.matches(f)))
        {
            return deny(
                Reason::PolicyFqanNotAccepted,
                if fqans.is_empty() {
                    "the job carries no verified VOMS FQAN and this site requires one".into()
                } else {
                    format!("none of the verified FQANs {fqans:?} is accepted at this site")
                },
            );
        }

        // 6e. Lifetimes: the window the chain can be used in, and the
        // manifest's own validity.
        let proxy = id.not_after.0.saturating_sub(id.not_before.0);
        if let Some(max) = self.max_proxy_lifetime
            && proxy > max
        {
            return deny(
                Reason::PolicyLifetimeExceeded,
                format!(
                    "the job-bound proxy is usable for {}, longer than the {} this site allows",
                    format_duration(proxy),
                    format_duration(max)
                ),
            );
        }
        let manifest = job.not_after.0.saturating_sub(job.not_before.0);
        if let Some(max) = self.max_manifest_lifetime
            && manifest > max
        {
            return deny(
                Reason::PolicyLifetimeExceeded,
                format!(
                    "the manifest is valid for {}, longer than the {} this site allows",
                    format_duration(manifest),
                    format_duration(max)
                ),
            );
        }

        // 6f. Issuer: sealed by the user's own key, not under a proxy that
        // a service or an intruder may hold.
        if self.issuer == IssuerRule::EndEntity && !id.issued_by_end_entity {
            return deny(
                Reason::PolicyIssuerNotEndEntity,
                format!(
                    "the job was sealed under the proxy {}, and this site accepts only jobs sealed \
                     with the user's certificate (jobseal sign --cert/--key)",
                    id.issuer
                ),
            );
        }
        Ok(())
    }
}
