//! Who the payload runs as (identity switching, §14.6): the verified DN or
//! primary FQAN mapped to a local account, a pool lease, the target's
//! groups.

use jobseal_verify::Identity;

use crate::account::{self, Account};
use crate::config::{ExecConfig, check_root_owned};
use crate::reason::ExecReason;
use crate::{EXIT_DENIED, EXIT_INTERNAL, Fail, fail, pool};
use jobseal_verify::Reason;

/// How the target account was chosen.
#[derive(Debug)]
pub struct Mapped {
    pub account: Account,
    pub groups: Vec<u32>,
    pub mapped_by: &'static str,
    pub lease: Option<String>,
    /// What the mapping was decided on: the DN, and the primary FQAN for a
    /// mapping by FQAN. Admission must admit the same.
    pub key: (String, Option<String>),
}

/// The primary FQAN of an identity (§14.6): the first FQAN of the first
/// verified attribute certificate, short form.
pub fn primary_fqan(identity: &Identity) -> Option<String> {
    identity
        .voms
        .iter()
        .find(|v| v.verified)
        .and_then(|v| v.fqans.first())
        .map(|f| short_fqan(f).to_string())
}

/// An FQAN without the `/Role=NULL` and `/Capability=NULL` that VOMS adds.
pub fn short_fqan(fqan: &str) -> &str {
    let f = fqan.strip_suffix("/Capability=NULL").unwrap_or(fqan);
    f.strip_suffix("/Role=NULL").unwrap_or(f)
}

/// The local account a permitted identity runs under (identity switching,
/// §14.6): the first `[[map]]` entry for its DN or its primary FQAN (the
/// first FQAN of the first verified attribute certificate), else the
/// grid-mapfile; a `.prefix` account is a pool lease in the gridmapdir.
pub fn map_target(config: &ExecConfig, identity: &Identity) -> Result<Mapped, Fail> {
    map_identity(config, &identity.end_entity, primary_fqan(identity))
}

/// [`map_target`] for a DN and its primary FQAN (as the launch service's
/// verifier process reports them).
pub fn map_identity(
    config: &ExecConfig,
    dn: &str,
    primary: Option<String>,
) -> Result<Mapped, Fail> {
    let by_map = config.map.iter().find_map(|entry| {
        if entry.dn.as_deref() == Some(dn) {
            Some((entry.account.clone(), "map dn", pool::lease_name(dn)))
        } else {
            let fqan = entry.fqan.as_deref().map(short_fqan)?;
            (Some(fqan) == primary.as_deref()).then(|| {
                (
                    entry.account.clone(),
                    "map fqan",
                    pool::fqan_lease_name(dn, fqan),
                )
            })
        }
    });
    let by_fqan = by_map.as_ref().is_some_and(|m| m.1 == "map fqan");
    let key = (dn.to_string(), if by_fqan { primary } else { None });
    let (name, mapped_by, lease_key) = match (by_map, &config.gridmapfile) {
        (Some(found), _) => found,
        (None, Some(gridmap)) => {
            check_root_owned(gridmap)
                .or_else(|m| fail(EXIT_INTERNAL, Reason::ConfigInvalid.code(), m))?;
            let name = account::map_dn_file(gridmap, dn)
                .or_else(|m| fail(EXIT_DENIED, ExecReason::NoMapping.code(), m))?;
            (name, "grid-mapfile", pool::lease_name(dn))
        }
        (None, None) if config.map.is_empty() => {
            return fail(
                EXIT_INTERNAL,
                Reason::ConfigInvalid.code(),
                "identity switching needs [[map]] entries or a gridmapfile",
            );
        }
        (None, None) => {
            return fail(
                EXIT_DENIED,
                ExecReason::NoMapping.code(),
                format!("no [[map]] entry for {dn} or its primary FQAN"),
            );
        }
    };
    let (name, lease) = match name.strip_prefix('.') {
        Some(prefix) => {
            let Some(dir) = &config.gridmapdir else {
                return fail(
                    EXIT_INTERNAL,
                    Reason::ConfigInvalid.code(),
                    format!("{dn} maps to pool .{prefix}, but no gridmapdir is configured"),
                );
            };
            check_root_owned(dir)
                .or_else(|m| fail(EXIT_INTERNAL, Reason::ConfigInvalid.code(), m))?;
            let lease = pool::lease(dir, prefix, &lease_key)
                .or_else(|m| fail(EXIT_DENIED, ExecReason::NoMapping.code(), m))?;
            (lease.account, Some(lease.name))
        }
        None => (name, None),
    };
    let Some(target) = account::by_name(&name) else {
        return fail(
            EXIT_DENIED,
            ExecReason::NoAccount.code(),
            format!("{dn} maps to {name}, which is not a local account"),
        );
    };
    if target.uid == 0 || target.uid < config.min_uid {
        return fail(
            EXIT_DENIED,
            ExecReason::TargetUid.code(),
            format!(
                "{name}: uid {} is below the minimum {}",
                target.uid, config.min_uid
            ),
        );
    }
    if target.gid == 0 || target.gid < config.min_gid {
        return fail(
            EXIT_DENIED,
            ExecReason::TargetGid.code(),
            format!(
                "{name}: gid {} is below the minimum {}",
                target.gid, config.min_gid
            ),
        );
    }
    // Supplementary groups below min_gid (system groups: 0, disk, shadow,
    // docker, adm, …) are never given to a payload.
    let mut groups: Vec<u32> = account::groups_of(&name)
        .into_iter()
        .filter(|g| *g != 0 && *g >= config.min_gid)
        .collect();
    if !groups.contains(&target.gid) {
        groups.insert(0, target.gid);
    }
    Ok(Mapped {
        account: target,
        groups,
        mapped_by,
        lease,
        key,
    })
}
