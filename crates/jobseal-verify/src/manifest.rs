//! Step 4: the manifest signature, its content and its validity.

use jobseal_core::manifest::Manifest;
use jobseal_core::time::UnixTime;
use jobseal_core::{Error, Reason};

use crate::parse::ParsedBundle;
use crate::sig;

/// Step 4.
pub fn check(bundle: &ParsedBundle, at: UnixTime, skew: u64) -> Result<Manifest, Error> {
    // 4.1 Signed by the key that issued the job-bound proxy.
    let signer = bundle.certs.get(1).ok_or_else(|| {
        Error::new(
            Reason::ChainBroken,
            "the bundle lacks the job-bound proxy's issuer",
        )
    })?;
    let env = &bundle.envelope;
    sig::verify_cose(
        env.algorithm,
        signer.spki(),
        &env.to_be_signed,
        &env.signature,
    )?;
    // 4.2 Schema, version, deterministic encoding.
    let manifest = Manifest::from_cbor(&env.payload)?;
    // 4.3 Validity; skew only moves not-before earlier.
    if at.0 > manifest.not_after {
        return Err(Error::new(
            Reason::ManifestExpired,
            format!(
                "the job expired at {}",
                UnixTime(manifest.not_after).to_rfc3339()
            ),
        ));
    }
    if at.plus(skew).0 < manifest.not_before {
        return Err(Error::new(
            Reason::ManifestNotYetValid,
            format!(
                "the job is not valid before {}",
                UnixTime(manifest.not_before).to_rfc3339()
            ),
        ));
    }
    Ok(manifest)
}
