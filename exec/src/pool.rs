//! Pool accounts leased through a gridmapdir, as Globus's gridmapdir and
//! LCMAPS's poolaccount plugin do, so that every worker node sharing the
//! directory maps a user the same way:
//!
//! - the gridmapdir holds one empty file per pool account (`atlas001`, …);
//! - a lease is a hard link to that file named by the URL-encoded user
//!   (`%2fdc%3dch%2f…`); an account is free while its link count is 1;
//! - taking a lease: `link(account, lease)`, then the account's link count
//!   must be exactly 2, else two users linked it at once and this one backs
//!   off. Two users therefore never share an account while a lease is held.
//!
//! Leases are not released here: as with LCMAPS, the site expires them (by
//! the lease's modification time, which each use refreshes).

use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::Path;

/// Scans of the pool before giving up when other users keep taking the
/// same free account at the same moment.
const MAX_PASSES: u32 = 50;

/// A lease taken or found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Lease {
    /// The pool account.
    pub account: String,
    /// The lease file's name in the gridmapdir.
    pub name: String,
}

/// The lease name of `key` (a DN, or `DN:FQAN`): every byte that is not an
/// ASCII letter or digit becomes `%hh` (lower-case hex), letters are
/// lower-cased, as gridmapdir and LCMAPS encode a DN.
pub fn lease_name(key: &str) -> String {
    let mut out = String::with_capacity(key.len() * 3);
    for b in key.bytes() {
        if b.is_ascii_alphanumeric() {
            out.push(char::from(b.to_ascii_lowercase()));
        } else {
            out.push_str(&format!("%{b:02x}"));
        }
    }
    out
}

/// The lease name of a user mapped through an FQAN entry: the encoded DN
/// and the encoded FQAN joined by `:`, which no encoded string contains, so
/// no DN can imitate another user's FQAN lease.
pub fn fqan_lease_name(dn: &str, fqan: &str) -> String {
    // Upper-case letters keep their identity here (`%hh`): FQAN leases are
    // jobseal's own, so LCMAPS's case folding need not be kept.
    let exact = |text: &str| -> String {
        text.bytes()
            .map(|b| {
                if b.is_ascii_lowercase() || b.is_ascii_digit() {
                    char::from(b).to_string()
                } else {
                    format!("%{b:02x}")
                }
            })
            .collect()
    };
    format!("{}:{}", exact(dn), exact(fqan))
}

/// Whether `name` is an account of pool `prefix`: the prefix and then
/// digits only (so pool `.cms` is `cms001`…, never `cmsprd001`), not a
/// lease, not hidden, not root.
fn is_account_file(name: &str, prefix: &str) -> bool {
    let Some(number) = name.strip_prefix(prefix) else {
        return false;
    };
    !prefix.is_empty()
        && !prefix.starts_with('%')
        && !prefix.starts_with('.')
        && name != "root"
        && prefix
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        && !number.is_empty()
        && number.bytes().all(|b| b.is_ascii_digit())
}

/// Any pool account file, whatever its pool (to find a lease's account).
fn is_any_account_file(name: &str) -> bool {
    let prefix = name.trim_end_matches(|c: char| c.is_ascii_digit());
    is_account_file(name, prefix)
}

/// The pool accounts of `prefix` in `dir`, sorted, with their metadata.
fn accounts(dir: &Path, prefix: Option<&str>) -> Result<Vec<(String, std::fs::Metadata)>, String> {
    let entries = std::fs::read_dir(dir)
        .map_err(|e| format!("gridmapdir {}: cannot read: {e}", dir.display()))?;
    let mut out = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| format!("gridmapdir {}: {e}", dir.display()))?;
        let Some(name) = entry.file_name().to_str().map(str::to_string) else {
            continue;
        };
        let ok = match prefix {
            Some(p) => is_account_file(&name, p),
            None => is_any_account_file(&name),
        };
        if !ok {
            continue;
        }
        // Regular files only; a symbolic link is no account.
        if let Ok(meta) = std::fs::symlink_metadata(entry.path())
            && meta.file_type().is_file()
        {
            out.push((name, meta));
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(out)
}

/// The account an existing lease points to, if any.
fn existing(dir: &Path, lease: &str, prefix: &str) -> Result<Option<Lease>, String> {
    let path = dir.join(lease);
    let meta = match std::fs::symlink_metadata(&path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("lease {}: {e}", path.display())),
    };
    if !meta.file_type().is_file() {
        return Err(format!("lease {}: not a regular file", path.display()));
    }
    // A lease held by one user exactly: the account file and this link.
    match meta.nlink() {
        2 => {}
        1 => {
            return Err(format!(
                "lease {} points to no pool account (stale: the site must remove it)",
                path.display()
            ));
        }
        n => {
            return Err(format!(
                "lease {}: its account has {n} links, not 2 (shared)",
                path.display()
            ));
        }
    }
    // Any account file, whatever its pool, to tell a foreign lease apart
    // from a stale one.
    for (name, account) in accounts(dir, None)? {
        if account.ino() == meta.ino() && account.dev() == meta.dev() {
            if !is_account_file(&name, prefix) {
                return Err(format!(
                    "the user's lease is on {name}, which is not in pool .{prefix}"
                ));
            }
            // The site expires leases by age: this use renews it.
            let now = std::time::SystemTime::now();
            let _ = std::fs::File::open(&path).and_then(|f| f.set_modified(now));
            return Ok(Some(Lease {
                account: name,
                name: lease.to_string(),
            }));
        }
    }
    Err(format!(
        "lease {} points to no pool account (stale: the site must remove it)",
        path.display()
    ))
}

/// The pool account leased under lease name `name` in pool `.prefix`: the
/// one it already holds, else a free one, leased now. Launchers sharing the
/// gridmapdir take turns (an exclusive lock on `.jobseal.lock` in it), so a
/// user's second launch never sees a lease another launcher is still
/// deciding about.
pub fn lease(dir: &Path, prefix: &str, name: &str) -> Result<Lease, String> {
    if prefix.is_empty() {
        return Err("an empty pool prefix".into());
    }
    let lock_path = dir.join(".jobseal.lock");
    let lock = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32)
        .open(&lock_path)
        .map_err(|e| format!("{}: {e}", lock_path.display()))?;
    rustix::fs::flock(&lock, rustix::fs::FlockOperation::LockExclusive)
        .map_err(|e| format!("{}: {e}", lock_path.display()))?;
    let leased = lease_locked(dir, prefix, name);
    drop(lock);
    leased
}

fn lease_locked(dir: &Path, prefix: &str, name: &str) -> Result<Lease, String> {
    let name = name.to_string();
    if let Some(found) = existing(dir, &name, prefix)? {
        return Ok(found);
    }
    let lease_path = dir.join(&name);
    // A pass that backed off may have left a free account behind it (the
    // other user backed off too): scan again, a bounded number of times.
    for pass in 0..MAX_PASSES {
        let mut contended = false;
        for (account, meta) in accounts(dir, Some(prefix))? {
            if meta.nlink() != 1 {
                continue;
            }
            match std::fs::hard_link(dir.join(&account), &lease_path) {
                Ok(()) => {}
                // Another launcher leased for the same user meanwhile: use it.
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    return existing(dir, &name, prefix)?
                        .ok_or_else(|| format!("lease {} vanished", lease_path.display()));
                }
                Err(e) => return Err(format!("lease {}: {e}", lease_path.display())),
            }
            let now = std::fs::symlink_metadata(dir.join(&account))
                .map_err(|e| format!("pool account {account}: {e}"))?;
            if now.nlink() == 2 {
                return Ok(Lease { account, name });
            }
            // Two users linked it at once: both back off, and try the next.
            std::fs::remove_file(&lease_path)
                .map_err(|e| format!("lease {}: {e}", lease_path.display()))?;
            contended = true;
        }
        if !contended {
            break;
        }
        // Out of step with the other contenders before the next pass.
        std::thread::sleep(std::time::Duration::from_micros(
            100 * u64::from(pass + 1) + u64::from(std::process::id() % 97),
        ));
    }
    Err(format!("pool .{prefix} has no free account"))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;

    fn pool(n: usize) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for i in 1..=n {
            std::fs::write(dir.path().join(format!("atl{i:03}")), b"").unwrap();
        }
        std::fs::write(dir.path().join("cms001"), b"").unwrap();
        // Another pool whose name starts like this one's: not part of it.
        std::fs::write(dir.path().join("atlprd001"), b"").unwrap();
        dir
    }

    #[test]
    fn lease_names_are_encoded_as_gridmapdir_does() {
        assert_eq!(
            lease_name("/DC=ch/CN=Jane Doe"),
            "%2fdc%3dch%2fcn%3djane%20doe"
        );
        assert_eq!(lease_name("/O=é"), "%2fo%3d%c3%a9");
    }

    #[test]
    fn a_user_keeps_its_lease_and_two_users_get_different_accounts() {
        let dir = pool(2);
        let a = lease(dir.path(), "atl", &lease_name("/O=x/CN=A")).unwrap();
        let b = lease(dir.path(), "atl", &lease_name("/O=x/CN=B")).unwrap();
        assert_ne!(a.account, b.account);
        assert_eq!(
            lease(dir.path(), "atl", &lease_name("/O=x/CN=A")).unwrap(),
            a
        );
        let full = lease(dir.path(), "atl", &lease_name("/O=x/CN=C")).unwrap_err();
        assert!(full.contains("no free account"), "{full}");
        // Another pool is another set of accounts.
        assert_eq!(
            lease(dir.path(), "cms", &lease_name("/O=x/CN=C"))
                .unwrap()
                .account,
            "cms001"
        );
        // A user leased in one pool is not silently moved to another.
        assert!(lease(dir.path(), "cms", &lease_name("/O=x/CN=A")).is_err());
    }

    #[test]
    fn concurrent_users_never_share_an_account() {
        const USERS: usize = 16;
        for _ in 0..5 {
            let dir = pool(USERS);
            let path = dir.path().to_path_buf();
            let threads: Vec<_> = (0..USERS)
                .map(|i| {
                    let path = path.clone();
                    std::thread::spawn(move || {
                        lease(&path, "atl", &lease_name(&format!("/CN=user{i}")))
                    })
                })
                .collect();
            let mut got: Vec<String> = threads
                .into_iter()
                .map(|t| t.join().unwrap().unwrap().account)
                .collect();
            got.sort();
            got.dedup();
            assert_eq!(got.len(), USERS, "two users share an account");
            for i in 1..=USERS {
                let meta = std::fs::metadata(path.join(format!("atl{i:03}"))).unwrap();
                assert_eq!(meta.nlink(), 2, "atl{i:03} has a leftover or missing lease");
            }
        }
    }

    #[test]
    fn pools_are_the_prefix_and_digits_only() {
        assert!(is_account_file("atl001", "atl"));
        assert!(!is_account_file("atlprd001", "atl"));
        assert!(!is_account_file("atl", "atl"));
        assert!(!is_account_file("atl01x", "atl"));
        assert!(is_any_account_file("atlprd001"));
        assert!(!is_any_account_file("%2fcn%3da"));
        assert_ne!(
            fqan_lease_name("/CN=A", "/vo"),
            lease_name("/CN=A:/vo"),
            "a DN can imitate an FQAN lease"
        );
        assert_ne!(
            fqan_lease_name("/CN=Ab", "/vo"),
            fqan_lease_name("/CN=ab", "/vo"),
            "DNs differing in case share an FQAN lease"
        );
    }

    #[test]
    fn the_same_user_racing_itself_and_others_never_shares() {
        // Launches of the same users from many threads at once (as several
        // jobs of one user start together): each user ends with one
        // account, and no two users with the same one.
        for _ in 0..5 {
            let dir = pool(4);
            let path = dir.path().to_path_buf();
            let threads: Vec<_> = (0..16)
                .map(|i| {
                    let path = path.clone();
                    std::thread::spawn(move || {
                        let user = format!("/CN=user{}", i % 4);
                        (user.clone(), lease(&path, "atl", &lease_name(&user)))
                    })
                })
                .collect();
            let mut by_user = std::collections::BTreeMap::new();
            for t in threads {
                let (user, got) = t.join().unwrap();
                let account = got.unwrap().account;
                let previous = by_user.insert(user.clone(), account.clone());
                assert!(
                    previous.is_none_or(|p| p == account),
                    "{user} got two accounts"
                );
            }
            let mut accounts: Vec<_> = by_user.values().collect();
            accounts.sort();
            accounts.dedup();
            assert_eq!(accounts.len(), 4, "two users share an account");
        }
    }

    #[test]
    fn a_stale_lease_is_refused_not_guessed() {
        let dir = pool(1);
        std::fs::write(dir.path().join(lease_name("/CN=A")), b"").unwrap();
        let e = lease(dir.path(), "atl", &lease_name("/CN=A")).unwrap_err();
        assert!(e.contains("stale"), "{e}");
    }
}
