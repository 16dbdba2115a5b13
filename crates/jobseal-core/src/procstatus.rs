//! The id lines of Linux's `/proc/<pid>/status`, parsed (reading the file is
//! the caller's). The owner of `/proc/self` is no substitute: it is root in
//! a process that is not dumpable (after setuid or setgid).

/// The ids of a `Uid:` or `Gid:` line: real, effective, saved, filesystem.
/// `None` unless the line is there with exactly four numbers.
pub fn ids(status: &str, key: &str) -> Option<[u32; 4]> {
    let line = status.lines().find_map(|l| l.strip_prefix(key))?;
    let mut fields = line.split_whitespace().map(|f| f.parse::<u32>().ok());
    let ids = [
        fields.next()??,
        fields.next()??,
        fields.next()??,
        fields.next()??,
    ];
    fields.next().is_none().then_some(ids)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn four_numbers_or_nothing() {
        let s = "Name:\tx\nUid:\t1000\t0\t0\t0\nGid:\t5\t5\t5\t5\n";
        assert_eq!(ids(s, "Uid:"), Some([1000, 0, 0, 0]));
        assert_eq!(ids(s, "Gid:"), Some([5; 4]));
        assert_eq!(ids("Uid:\t1\t1\t1\n", "Uid:"), None);
        assert_eq!(ids("Uid:\t1\t1\t1\t1\t1\n", "Uid:"), None);
        assert_eq!(ids("Uid:\tx\t1\t1\t1\n", "Uid:"), None);
        assert_eq!(ids(s, "Groups:"), None);
    }
}
