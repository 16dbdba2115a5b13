//! The decision and what it says about the job: who, what, when.

use jobseal_core::manifest::Manifest;
use jobseal_core::time::UnixTime;
use jobseal_core::{Error, Reason};

/// Lower-case hex, as `jobseal_core::manifest::hex` writes it, without a
/// formatter call per byte (a check writes some 150 bytes of hex).
pub(crate) fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        for nibble in [b >> 4, b & 0x0f] {
            out.push(char::from(
                DIGITS.get(usize::from(nibble)).copied().unwrap_or(b'0'),
            ));
        }
    }
    out
}

/// Permit or deny.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    Permit,
    Deny,
}

/// One VOMS attribute certificate of the chain (`spec/jobseal.md` §6.3a).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VomsInfo {
    /// The VO the AC names (only a claim unless `verified`).
    pub vo: String,
    /// The FQANs, in the AA's order (the first is the primary one). Empty
    /// unless `verified`: an untrusted AC gives no attributes.
    pub fqans: Vec<String>,
    /// The generic attributes; empty unless `verified`.
    pub generic_attributes: Vec<crate::voms::GenericAttribute>,
    /// The AA the AC names as its issuer (only a claim unless `verified`).
    pub issuer: String,
    /// The AC's notAfter, if it could be read.
    pub not_after: Option<UnixTime>,
    /// Every check of §6.3a passed: only then may the attributes be used.
    pub verified: bool,
    /// Why the attributes are not trusted (`None` when `verified`).
    pub error: Option<crate::voms::VomsError>,
}

/// Who: established by path validation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Identity {
    /// The user (end-entity certificate subject).
    pub end_entity: String,
    /// The job-bound proxy's subject.
    pub subject: String,
    /// The job-bound proxy's issuer.
    pub issuer: String,
    /// Whether the job-bound proxy was issued directly by the end-entity
    /// certificate (the user's own key signed the job), not by a proxy:
    /// what site policy `issuer = "end-entity"` requires (§13.4 6f).
    pub issued_by_end_entity: bool,
    /// The trust anchor.
    pub ca: String,
    /// Every CA of the path, from the end entity's issuer up to the trust
    /// anchor (last): what site policy bans on issuing CAs match.
    pub cas: Vec<String>,
    /// Serial numbers (hex) of the bundle's certificates below the CAs, leaf
    /// first: the job-bound proxy, any user proxies, the user certificate.
    pub serials: Vec<String>,
    pub voms: Vec<VomsInfo>,
    /// Intersection of the chain's validity periods.
    pub not_before: UnixTime,
    pub not_after: UnixTime,
}

/// What and when: from the verified manifest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JobInfo {
    pub job_id: String,
    pub manifest_sha256: String,
    pub executable: String,
    pub executable_sha256: String,
    pub arguments: Vec<String>,
    pub inputs: usize,
    /// The signed inputs' relative paths, in manifest order.
    pub input_names: Vec<String>,
    /// The signed environment (`NAME`, value), sorted by name; empty if the
    /// manifest has none.
    pub environment: Vec<(String, String)>,
    pub vo: Option<String>,
    pub sites: Option<Vec<String>>,
    pub not_before: UnixTime,
    pub not_after: UnixTime,
    pub allowed_uses: u64,
}

impl JobInfo {
    pub fn new(m: &Manifest, digest: &[u8; 32]) -> Self {
        Self {
            job_id: hex(&m.job_id),
            manifest_sha256: hex(digest),
            executable: m.executable.name.clone(),
            executable_sha256: hex(&m.executable.sha256),
            arguments: m.arguments.clone(),
            inputs: m.inputs.len(),
            input_names: m.inputs.iter().map(|i| i.name.clone()).collect(),
            environment: m
                .environment
                .iter()
                .flatten()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            vo: m.vo.clone(),
            sites: m.sites.clone(),
            not_before: UnixTime(m.not_before),
            not_after: UnixTime(m.not_after),
            allowed_uses: m.allowed_uses,
        }
    }
}

/// What the steps established before deciding.
#[derive(Clone, Debug, Default)]
pub struct Partial {
    pub identity: Option<Identity>,
    pub manifest_sha256: Option<[u8; 32]>,
    pub job: Option<JobInfo>,
}

/// The verifier's answer.
#[derive(Clone, Debug)]
pub struct Decision {
    pub outcome: Outcome,
    /// Why it was denied (`None` on permit).
    pub reason: Option<Reason>,
    /// One line for people.
    pub message: String,
    /// Who, if path validation got that far.
    pub identity: Option<Identity>,
    /// The bound manifest digest, if the binding was checked.
    pub manifest_sha256: Option<String>,
    /// What and when, if the manifest was verified.
    pub job: Option<JobInfo>,
}

impl Decision {
    pub(crate) fn permit(p: Partial) -> Self {
        Self {
            outcome: Outcome::Permit,
            reason: None,
            message: "the job may run".into(),
            identity: p.identity,
            manifest_sha256: p.manifest_sha256.as_ref().map(|d| hex(d)),
            job: p.job,
        }
    }

    pub(crate) fn deny(e: Error, p: Partial) -> Self {
        Self {
            outcome: Outcome::Deny,
            reason: Some(e.reason),
            message: e.message,
            identity: p.identity,
            manifest_sha256: p.manifest_sha256.as_ref().map(|d| hex(d)),
            job: p.job,
        }
    }

    /// Whether the job may run.
    pub fn is_permit(&self) -> bool {
        self.outcome == Outcome::Permit
    }

    /// The reason code, or `"permit"`.
    pub fn code(&self) -> &'static str {
        self.reason.map_or("permit", Reason::code)
    }
}

impl Decision {
    /// A deny from an error found before verification started (e.g. an
    /// unusable configuration).
    pub fn from_error(e: Error) -> Self {
        Self::deny(e, Partial::default())
    }
}

impl Decision {
    /// This decision turned into a deny by a later step (policy, replay,
    /// audit), keeping who and what for the record.
    pub fn denied_by(self, e: Error) -> Self {
        Self {
            outcome: Outcome::Deny,
            reason: Some(e.reason),
            message: e.message,
            ..self
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn hex_is_the_core_hex() {
        let all: Vec<u8> = (0..=255u8).collect();
        assert_eq!(super::hex(&all), jobseal_core::manifest::hex(&all));
        assert_eq!(super::hex(&[]), "");
    }
}
