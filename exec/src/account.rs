//! Local accounts (`/etc/passwd`, no NSS, as the audit record does) and the
//! grid-mapfile that maps a verified DN to one.

use std::path::Path;

/// A local account.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Account {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
    pub home: String,
}

/// Parse passwd text (`name:x:uid:gid:gecos:home:shell`).
fn parse_passwd(text: &str) -> Vec<Account> {
    text.lines()
        .filter_map(|line| {
            let f: Vec<&str> = line.split(':').collect();
            let (Some(name), Some(uid), Some(gid), Some(home)) =
                (f.first(), f.get(2), f.get(3), f.get(5))
            else {
                return None;
            };
            Some(Account {
                name: (*name).to_string(),
                uid: uid.parse().ok()?,
                gid: gid.parse().ok()?,
                home: (*home).to_string(),
            })
        })
        .collect()
}

fn read_passwd() -> Vec<Account> {
    std::fs::read_to_string("/etc/passwd")
        .map(|t| parse_passwd(&t))
        .unwrap_or_default()
}

pub fn by_uid(uid: u32) -> Option<Account> {
    read_passwd().into_iter().find(|a| a.uid == uid)
}

pub fn by_name(name: &str) -> Option<Account> {
    read_passwd().into_iter().find(|a| a.name == name)
}

/// The supplementary groups of `name` in group text (`name:x:gid:a,b`):
/// every group that lists it as a member, sorted, without duplicates.
fn parse_groups(text: &str, name: &str) -> Vec<u32> {
    let mut out: Vec<u32> = text
        .lines()
        .filter_map(|line| {
            let f: Vec<&str> = line.split(':').collect();
            let gid = f.get(2)?.parse().ok()?;
            f.get(3)?
                .split(',')
                .any(|m| m.trim() == name)
                .then_some(gid)
        })
        .collect();
    out.sort_unstable();
    out.dedup();
    out
}

/// The supplementary groups `/etc/group` gives `name` (no NSS, as for the
/// account itself). Unreadable: none.
pub fn groups_of(name: &str) -> Vec<u32> {
    std::fs::read_to_string("/etc/group")
        .map(|t| parse_groups(&t, name))
        .unwrap_or_default()
}

/// The gid of the group `name` in `/etc/group`.
pub fn group_id(name: &str) -> Option<u32> {
    let text = std::fs::read_to_string("/etc/group").ok()?;
    text.lines().find_map(|line| {
        let f: Vec<&str> = line.split(':').collect();
        (f.first() == Some(&name)).then(|| f.get(2)?.parse().ok())?
    })
}

/// The account a grid-mapfile gives `dn`: lines `"DN" account[,account…]`
/// (the first account is taken; `.prefix` names a pool); `#` comments.
pub fn map_dn(text: &str, dn: &str) -> Result<String, String> {
    for line in text.lines() {
        let line = line.trim();
        let Some(rest) = line.strip_prefix('"') else {
            continue;
        };
        let Some((entry_dn, accounts)) = rest.split_once('"') else {
            continue;
        };
        if entry_dn != dn {
            continue;
        }
        let account = accounts.trim().split(',').next().unwrap_or("").trim();
        if account.is_empty() {
            return Err(format!("the grid-mapfile maps {dn} to no account"));
        }
        return Ok(account.to_string());
    }
    Err(format!("{dn} is not in the grid-mapfile"))
}

pub fn map_dn_file(path: &Path, dn: &str) -> Result<String, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("{}: cannot read: {e}", path.display()))?;
    map_dn(&text, dn)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;

    #[test]
    fn passwd() {
        let a =
            parse_passwd("root:x:0:0:root:/root:/bin/sh\nbad\njd:x:1001:1002::/home/jd:/bin/sh\n");
        assert_eq!(a.len(), 2);
        assert_eq!(a[1].name, "jd");
        assert_eq!((a[1].uid, a[1].gid), (1001, 1002));
    }

    #[test]
    fn supplementary_groups_are_the_groups_listing_the_account() {
        let t = "root:x:0:\nusers:x:100:jd,other\nbad\natlas:x:2000:jd\nlookalike:x:3000:jdx\nusers2:x:100:jd\n";
        assert_eq!(parse_groups(t, "jd"), vec![100, 2000]);
        assert!(parse_groups(t, "nobody").is_empty());
    }

    #[test]
    fn gridmap() {
        let t = "# comment\n\"/O=x/CN=A B\" alice,other\n\"/O=x/CN=P\" .pool\n\"/O=x/CN=E\"\n";
        assert_eq!(map_dn(t, "/O=x/CN=A B").unwrap(), "alice");
        assert_eq!(map_dn(t, "/O=x/CN=P").unwrap(), ".pool");
        assert!(map_dn(t, "/O=x/CN=E").is_err());
        assert!(map_dn(t, "/O=x/CN=A").is_err());
    }
}
