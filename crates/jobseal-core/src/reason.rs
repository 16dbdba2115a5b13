//! Stable reason codes for every verification failure (`spec/jobseal.md` §6).
//!
//! The string form of a [`Reason`] is part of the interface: scripts, audit
//! records and the C and Python bindings match on it. Codes are never reused.

use std::fmt;

macro_rules! reasons {
    ($( $(#[$doc:meta])* $variant:ident => $code:literal, )*) => {
        /// Why a bundle was denied (or why an input could not be used).
        #[non_exhaustive]
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum Reason {
            $( $(#[$doc])* $variant, )*
        }

        impl Reason {
            /// Every reason, in specification order.
            pub const ALL: &'static [Reason] = &[ $( Reason::$variant, )* ];

            /// The stable dotted code, e.g. `binding.digest-mismatch`.
            pub fn code(self) -> &'static str {
                match self { $( Reason::$variant => $code, )* }
            }

            /// Look a reason up by its code.
            pub fn from_code(code: &str) -> Option<Reason> {
                match code { $( $code => Some(Reason::$variant), )* _ => None }
            }
        }
    };
}

reasons! {
    // Step 1: bundle
    /// The bundle is not a PEM file of the expected layout.
    BundleMalformed => "bundle.malformed",
    /// The bundle carries a private key (a bundle never does).
    BundlePrivateKey => "bundle.private-key-present",
    /// The bundle has no `JOBSEAL MANIFEST` block, or more than one.
    BundleManifestCount => "bundle.manifest-count",
    /// A size limit was exceeded (bundle, chain, manifest, inputs, strings, nesting).
    LimitExceeded => "limits.exceeded",
    /// A certificate is not valid DER X.509, repeats an extension, has a
    /// malformed standard extension, or (the user certificate) an empty subject.
    CertMalformed => "cert.malformed",
    /// The COSE_Sign1 envelope or its header breaks the profile.
    ManifestBadEnvelope => "manifest.bad-envelope",
    // Step 2: path
    /// No trust anchor in the CA directory issued the chain.
    ChainUntrusted => "chain.untrusted",
    /// The certificates do not form a chain (issuer/subject mismatch).
    ChainBroken => "chain.broken",
    /// A certificate signature does not verify.
    ChainBadSignature => "chain.bad-signature",
    /// A signature or key algorithm is not supported or below the minimum.
    ChainWeakAlgorithm => "chain.weak-algorithm",
    /// A certificate carries a critical extension the verifier does not process.
    ChainUnhandledCritical => "chain.unhandled-critical-extension",
    /// An issuing CA lacks basicConstraints cA or keyCertSign, or the user
    /// certificate issued a certificate that is not a proxy.
    ChainNotCa => "chain.not-ca",
    /// A CA path length constraint is exceeded.
    ChainPathLength => "chain.path-length",
    /// A CA's `.namespaces` or `.signing_policy` file cannot be read or parsed.
    ChainPolicyFileInvalid => "chain.policy-file-invalid",
    /// A CA signed a subject outside the namespace its policy file permits.
    ChainNamespaceViolation => "chain.namespace-violation",
    /// A CA's CRL cannot be read or parsed, its signature does not verify, or
    /// it uses a feature the verifier does not support.
    ChainCrlInvalid => "chain.crl-invalid",
    /// A certificate is listed in its issuer's CRL.
    ChainRevoked => "chain.revoked",
    /// The issuer's CRL is past its nextUpdate.
    ChainCrlExpired => "chain.crl-expired",
    /// No CRL of the issuer covers the certificate (its CRLs are for another
    /// key or scope, or it has none and the configuration requires one).
    ChainCrlMissing => "chain.crl-missing",
    /// A certificate is outside its validity period.
    TimeExpired => "time.expired",
    /// A certificate is not yet valid.
    TimeNotYetValid => "time.not-yet-valid",
    /// Legacy Globus (`CN=proxy`) or GT3-draft proxies are not accepted.
    ProxyLegacy => "proxy.legacy-unsupported",
    /// A proxy's subject is not its issuer's subject plus one CN.
    ProxyBadSubject => "proxy.bad-subject",
    /// A proxy breaks an RFC 3820 rule (alt names, cA, ProxyCertInfo form).
    ProxyMalformed => "proxy.malformed",
    /// A proxy's issuer lacks the digitalSignature key usage.
    ProxyIssuerKeyUsage => "proxy.issuer-key-usage",
    /// A ProxyCertInfo path length constraint is exceeded.
    ProxyPathLength => "proxy.path-length",
    /// A limited or independent proxy sits in the chain of a job-bound proxy.
    ProxyPolicyRefused => "proxy.policy-refused",
    /// More than one certificate of the chain carries VOMS attribute
    /// certificates: attributes come from one source only.
    ChainVomsTwoSources => "chain.voms-two-sources",
    // Step 3: binding
    /// The leaf carries no JobBinding extension.
    BindingMissing => "binding.missing",
    /// The JobBinding extension is not marked critical.
    BindingNotCritical => "binding.not-critical",
    /// JobBinding appears more than once, or on a certificate other than the leaf.
    BindingMisplaced => "binding.misplaced",
    /// JobBinding is not valid DER, or its version or digest algorithm is unknown.
    BindingMalformed => "binding.malformed",
    /// JobBinding does not permit identity-switch execution.
    BindingUseNotPermitted => "binding.use-not-permitted",
    /// The leaf's ProxyCertInfo is not the job-bound language with path length 0,
    /// or its key usage is not digitalSignature alone.
    BindingBadProxyProfile => "binding.bad-proxy-profile",
    /// The leaf's public key is not the one derived from the manifest digest.
    BindingKeyNotDerived => "binding.key-not-derived",
    /// SHA-256 of the manifest differs from the bound digest.
    BindingDigestMismatch => "binding.digest-mismatch",
    // Step 4: manifest
    /// The COSE signature does not verify under the proxy issuer's key.
    ManifestBadSignature => "manifest.bad-signature",
    /// The manifest payload is not valid deterministic CBOR of the schema.
    ManifestMalformed => "manifest.malformed",
    /// The manifest has an unknown format version.
    ManifestUnsupportedVersion => "manifest.unsupported-version",
    /// The manifest has a field the schema does not define.
    ManifestUnknownField => "manifest.unknown-field",
    /// The manifest is outside its own validity period.
    ManifestExpired => "time.manifest-expired",
    /// The manifest is not yet valid.
    ManifestNotYetValid => "time.manifest-not-yet-valid",
    // Step 5: payload
    /// The executable cannot be read.
    PayloadExecutableUnreadable => "payload.executable-unreadable",
    /// The executable's SHA-256 differs from the manifest's.
    PayloadExecutableMismatch => "payload.executable-mismatch",
    /// The argument list differs from the manifest's.
    PayloadArgumentsMismatch => "payload.arguments-mismatch",
    /// An input named in the manifest is missing.
    PayloadInputMissing => "payload.input-missing",
    /// An input's size or SHA-256 differs from the manifest's.
    PayloadInputMismatch => "payload.input-mismatch",
    // Step 6: policy
    /// The site policy or one of its ban files cannot be read or parsed.
    PolicyInvalid => "policy.invalid",
    /// The user (end-entity subject) is banned by site policy.
    PolicyBannedSubject => "policy.banned-subject",
    /// A CA of the path is banned by site policy.
    PolicyBannedCa => "policy.banned-ca",
    /// A verified VOMS FQAN matches a banned pattern.
    PolicyBannedFqan => "policy.banned-fqan",
    /// The manifest digest is banned by site policy.
    PolicyBannedDigest => "policy.banned-digest",
    /// The job id is banned by site policy.
    PolicyBannedJob => "policy.banned-job",
    /// The manifest names target sites and this site is not one of them.
    PolicySiteNotTargeted => "policy.site-not-targeted",
    /// The job's VO is not accepted, or not proven by verified VOMS attributes.
    PolicyVoNotAccepted => "policy.vo-not-accepted",
    /// No verified VOMS FQAN matches an accepted pattern.
    PolicyFqanNotAccepted => "policy.fqan-not-accepted",
    /// The job-bound proxy or the manifest is valid for longer than the site allows.
    PolicyLifetimeExceeded => "policy.lifetime-exceeded",
    /// The job-bound proxy was issued by a proxy and the site accepts only
    /// jobs sealed with the user's end-entity certificate.
    PolicyIssuerNotEndEntity => "policy.issuer-not-end-entity",
    // Step 7: replay
    /// The job has already been admitted as many times as it may be.
    ReplayJobIdUsed => "replay.job-id-used",
    /// The replay store cannot be reached or failed; the use was not recorded.
    ReplayStoreUnavailable => "replay.store-unavailable",
    /// A clock is behind the time the replay store has already seen by more
    /// than the skew (the node's clock behind the store's high-water mark,
    /// or the node's and the Redis server's clocks apart): purged records
    /// could be admissible again, so nothing is admitted until it catches up.
    ReplayClockWentBack => "replay.clock-went-back",
    /// The replay store can lose use records (a Redis server without AOF,
    /// or one that may evict keys) and the site policy does not accept that.
    ReplayStoreUnsafe => "replay.store-unsafe",
    // Step 8: audit
    /// The audit record could not be written durably (or anchored in syslog
    /// when that is required): no execution without a trace.
    AuditUnavailable => "audit.unavailable",
    // Configuration and faults
    /// The verifier's own configuration is unusable (e.g. no CA directory).
    ConfigInvalid => "config.invalid",
    /// An internal fault; the verifier denies.
    Internal => "internal.error",
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// A failure with its reason and a one-line message a person can act on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Error {
    pub reason: Reason,
    pub message: String,
}

impl Error {
    pub fn new(reason: Reason, message: impl Into<String>) -> Self {
        Self {
            reason,
            message: message.into(),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.reason.code(), self.message)
    }
}

impl std::error::Error for Error {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_unique_and_round_trip() {
        let mut seen = std::collections::HashSet::new();
        for r in Reason::ALL {
            assert!(seen.insert(r.code()), "duplicate code {}", r.code());
            assert_eq!(Reason::from_code(r.code()), Some(*r));
        }
        assert_eq!(Reason::from_code("no.such-code"), None);
    }

    #[test]
    fn the_spec_registry_lists_every_code() {
        let spec = include_str!("../../../spec/jobseal.md");
        let registry = spec
            .split("\n## 9. Reason code registry")
            .nth(1)
            .and_then(|s| s.split("\n## ").next())
            .unwrap();
        let listed: std::collections::BTreeSet<&str> = registry
            .lines()
            .filter_map(|l| l.strip_prefix("| `"))
            .filter_map(|l| l.split('`').next())
            .collect();
        let ours: std::collections::BTreeSet<&str> = Reason::ALL.iter().map(|r| r.code()).collect();
        let missing: Vec<&&str> = ours.difference(&listed).collect();
        assert!(missing.is_empty(), "spec §9 lacks {missing:?}");
    }
}
