//! Steps 1–6 without side effects: the verifier, then the site policy.
//!
//! Here, in the policy crate, rather than beside admission
//! (`jobseal-admit`): a check-only caller (the LCMAPS plugin, `jobseal
//! verify --policy`, the bindings' `check`) then links neither SQLite (the
//! replay store) nor rustls (the Redis replay store's TLS).

use jobseal_core::Error;
use jobseal_verify::{Config, Decision, Invocation, UnixTime, Verifier};

use crate::Policy;

/// Steps 1–6 (the verifier, then the site policy), side-effect free: what
/// a relying party that records nothing uses (`jobseal verify` with a
/// policy, the C and Python bindings' `check`, the LCMAPS plugin).
/// Admission (`jobseal_admit::admit::Admission`) runs the same checker
/// before it records anything.
#[derive(Debug)]
pub struct Checker {
    verifier: Verifier,
    policy: Policy,
}

impl Checker {
    /// A verifier over `config` as `policy` configures it.
    pub fn new(config: Config, policy: Policy) -> Result<Self, Error> {
        let verifier = Verifier::new(policy.configure(config))?;
        Ok(Self { verifier, policy })
    }

    /// The site policy.
    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// Steps 1–6 at `at`.
    pub fn check_at(&self, bundle: &[u8], invocation: &Invocation, at: UnixTime) -> Decision {
        self.apply_policy(self.verifier.check(bundle, invocation, at))
    }

    /// Steps 1–4 and 6 at `at`: the credential without its payload
    /// ([`Verifier::check_credential`]). The payload check (step 5) is left
    /// to whoever runs the job.
    pub fn check_credential_at(&self, bundle: &[u8], at: UnixTime) -> Decision {
        self.apply_policy(self.verifier.check_credential(bundle, at))
    }

    /// Step 6.
    fn apply_policy(&self, decision: Decision) -> Decision {
        if decision.is_permit()
            && let Err(e) = self.policy.evaluate(&decision)
        {
            return decision.denied_by(e);
        }
        decision
    }
}
