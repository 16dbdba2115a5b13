//! The jobseal verifier: decide, right before a payload starts on a worker
//! node, whether a job bundle may run it.
//!
//! The checks run in the fixed order of `spec/jobseal.md` §6, one module per
//! step: [`parse`] → [`path`] → [`binding`] → [`manifest`] → [`payload`]. The
//! first failing check decides, with a stable [`Reason`]. Every error, every
//! unparseable input and every internal fault is a deny. After [`path`],
//! [`voms`] checks the VOMS attribute certificates of the chain; those only
//! gain or lose attributes ([`VomsCode`]), they never deny.
//!
//! The crate has no global state and does no printing; a [`Verifier`] is
//! `Send + Sync` and can be shared by threads. Checking has no side effects.
#![forbid(unsafe_code)]

pub mod binding;
pub mod decision;
mod fsread;
pub mod manifest;
pub mod namespaces;
pub mod parse;
pub mod path;
pub mod payload;
pub mod revocation;
pub mod sig;
pub mod trust;
pub mod voms;

use std::ffi::OsString;
use std::path::{Path, PathBuf};

pub use decision::{Decision, Identity, JobInfo, Outcome, VomsInfo};
pub use jobseal_core::time::UnixTime;
pub use jobseal_core::{Error, Reason};
pub use namespaces::NamespacePolicy;
pub use payload::InputPolicy;
pub use revocation::CrlPolicy;
pub use voms::{GenericAttribute, VomsCode, VomsError};

/// Default tolerance for clocks that run behind: a notBefore up to this many
/// seconds in the future is accepted. It never extends an expiry.
pub const DEFAULT_CLOCK_SKEW: u64 = 300;

/// Default CA directory of grid hosts.
pub const DEFAULT_CA_DIR: &str = "/etc/grid-security/certificates";
/// Default VOMS directory of grid hosts.
pub const DEFAULT_VOMS_DIR: &str = "/etc/grid-security/vomsdir";

/// Verifier settings.
#[derive(Clone, Debug)]
pub struct Config {
    /// IGTF-style CA directory (`<hash>.N` files).
    pub ca_dir: PathBuf,
    /// VOMS directory of LSC files (`<vo>/<aa-host>.lsc`). An AC whose AA it
    /// does not describe is reported untrusted, without attributes (§6.3a);
    /// a missing directory describes no AA.
    pub voms_dir: PathBuf,
    /// Seconds a notBefore may lie in the future.
    pub clock_skew: u64,
    /// Legacy algorithms accepted on CA-issued certificates (default: none).
    pub algorithms: sig::AlgorithmPolicy,
    /// CRLs of the CA directory (`<hash>.rN`); by default checked where
    /// published.
    pub crl: CrlPolicy,
    /// IGTF namespace policies (`<hash>.namespaces`, `.signing_policy`); by
    /// default enforced where present.
    pub namespaces: NamespacePolicy,
    /// Whether every signed input must be present (step 5c); set by site
    /// policy (`spec/jobseal.md` §13).
    pub inputs: InputPolicy,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            ca_dir: PathBuf::from(DEFAULT_CA_DIR),
            voms_dir: PathBuf::from(DEFAULT_VOMS_DIR),
            clock_skew: DEFAULT_CLOCK_SKEW,
            algorithms: sig::AlgorithmPolicy::default(),
            crl: CrlPolicy::default(),
            namespaces: NamespacePolicy::default(),
            inputs: InputPolicy::default(),
        }
    }
}

/// What is about to be executed.
#[derive(Clone, Debug)]
pub struct Invocation {
    /// The executable file.
    pub executable: PathBuf,
    /// Its arguments (argv\[1..\]).
    pub arguments: Vec<OsString>,
    /// The directory input names are resolved against.
    pub job_dir: PathBuf,
}

/// A verifier over one trust configuration.
#[derive(Debug)]
pub struct Verifier {
    config: Config,
    trust: trust::TrustStore,
}

impl Verifier {
    /// A verifier over `config`; fails if the CA directory is unusable.
    pub fn new(config: Config) -> Result<Self, Error> {
        let mut trust = trust::TrustStore::open(&config.ca_dir)?;
        trust.crl = config.crl;
        trust.namespaces = config.namespaces;
        Ok(Self { config, trust })
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Check the bundle in `path` (side-effect free).
    pub fn check_file(&self, path: &Path, invocation: &Invocation, at: UnixTime) -> Decision {
        match read_bundle_file(path) {
            Ok(bytes) => self.check(&bytes, invocation, at),
            Err(e) => Decision::deny(e, decision::Partial::default()),
        }
    }

    /// Check bundle bytes against an invocation at time `at` (side-effect
    /// free). Any internal fault, even a panic, is a deny.
    pub fn check(&self, bundle: &[u8], invocation: &Invocation, at: UnixTime) -> Decision {
        let run = std::panic::AssertUnwindSafe(|| self.check_inner(bundle, invocation, at));
        std::panic::catch_unwind(run).unwrap_or_else(|_| {
            Decision::deny(
                Error::new(Reason::Internal, "internal fault while verifying; denied"),
                decision::Partial::default(),
            )
        })
    }

    /// Steps 1–4 only (parse, path, binding, manifest), at time `at`: for a
    /// relying party that is handed the credential but not the command, such
    /// as an LCMAPS plugin. A permit here says nothing about the payload;
    /// whoever runs it MUST still check it (step 5) before it starts.
    pub fn check_credential(&self, bundle: &[u8], at: UnixTime) -> Decision {
        let run = std::panic::AssertUnwindSafe(|| {
            let mut partial = decision::Partial::default();
            match self.steps(bundle, None, at, &mut partial) {
                Ok(()) => Decision::permit(partial),
                Err(e) => Decision::deny(e, partial),
            }
        });
        std::panic::catch_unwind(run).unwrap_or_else(|_| {
            Decision::deny(
                Error::new(Reason::Internal, "internal fault while verifying; denied"),
                decision::Partial::default(),
            )
        })
    }

    fn check_inner(&self, bundle: &[u8], invocation: &Invocation, at: UnixTime) -> Decision {
        let mut partial = decision::Partial::default();
        match self.steps(bundle, Some(invocation), at, &mut partial) {
            Ok(()) => Decision::permit(partial),
            Err(e) => Decision::deny(e, partial),
        }
    }

    fn steps(
        &self,
        bundle: &[u8],
        invocation: Option<&Invocation>,
        at: UnixTime,
        partial: &mut decision::Partial,
    ) -> Result<(), Error> {
        let skew = self.config.clock_skew;
        // One view of the CA directory for the whole check: each hash's
        // files are looked up once (the next check looks again).
        let trust = self.trust.for_check();
        // 1. Parse (certificates above the leaf may be kept from earlier
        // checks, by their exact DER).
        let parsed = parse::parse_with(bundle, Some(trust.cert_cache()))?;
        // 2. Path validation.
        let opts = path::PathOptions {
            at,
            clock_skew: skew,
            algorithms: self.config.algorithms,
        };
        let path::ValidatedPath {
            mut identity,
            end_entity,
        } = path::validate(&parsed.certs, &trust, &opts)?;
        // 2, VOMS: one source of attributes per chain (the one VOMS rule
        // that denies); untrusted ACs lose their attributes, never deny.
        if let Err(e) = voms::check_sources(&parsed.certs, end_entity) {
            partial.identity = Some(identity);
            return Err(e);
        }
        identity.voms = voms::check_chain(
            &parsed.certs,
            end_entity,
            &voms::VomsContext {
                trust: &trust,
                voms_dir: &self.config.voms_dir,
                opts: &opts,
            },
        );
        partial.identity = Some(identity);
        // 3. Binding.
        let bound = binding::check(&parsed)?;
        partial.manifest_sha256 = Some(bound.digest);
        // 4. Manifest.
        let manifest = manifest::check(&parsed, at, skew)?;
        partial.job = Some(JobInfo::new(&manifest, &bound.digest));
        // 5. Payload (unless only the credential is checked).
        if let Some(invocation) = invocation {
            payload::check(&manifest, invocation, self.config.inputs)?;
        }
        Ok(())
    }
}

/// Read a bundle file as the verifier does (`spec/jobseal.md` §6.2): opened
/// without blocking (a FIFO cannot hang the caller), regular files only, at
/// most 32 MiB; a file that cannot be read is `bundle.malformed`. For
/// bindings that take a path.
pub fn read_bundle_file(path: &Path) -> Result<Vec<u8>, Error> {
    use std::io::Read;
    let limit = jobseal_core::limits::MAX_BUNDLE_BYTES as u64;
    let (f, _) = fsread::open_regular(path).map_err(|e| {
        Error::new(
            Reason::BundleMalformed,
            format!("cannot read the bundle {}: {e}", path.display()),
        )
    })?;
    let mut out = Vec::new();
    f.take(limit + 1).read_to_end(&mut out).map_err(|e| {
        Error::new(
            Reason::BundleMalformed,
            format!("cannot read the bundle {}: {e}", path.display()),
        )
    })?;
    if out.len() as u64 > limit {
        return Err(Error::new(
            Reason::LimitExceeded,
            "the bundle file is larger than 32 MiB",
        ));
    }
    Ok(out)
}
