//! Time as whole seconds since the Unix epoch, the unit of every jobseal field.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Seconds since 1970-01-01T00:00:00Z.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct UnixTime(pub u64);

impl UnixTime {
    /// The current time of the system clock (0 if the clock is before 1970).
    pub fn now() -> Self {
        Self::from_system_time(SystemTime::now())
    }

    /// Convert, saturating at 0 for times before the epoch.
    pub fn from_system_time(t: SystemTime) -> Self {
        Self(t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs()))
    }

    /// Back to a [`SystemTime`].
    pub fn to_system_time(self) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(self.0)
    }

    /// `self + secs`, saturating.
    pub fn plus(self, secs: u64) -> Self {
        Self(self.0.saturating_add(secs))
    }

    /// `self - secs`, saturating at 0.
    pub fn minus(self, secs: u64) -> Self {
        Self(self.0.saturating_sub(secs))
    }

    /// RFC 3339 form in UTC, e.g. `2026-11-24T13:20:00Z`.
    pub fn to_rfc3339(self) -> String {
        match der::DateTime::from_unix_duration(Duration::from_secs(self.0)) {
            Ok(dt) => format!(
                "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
                dt.year(),
                dt.month(),
                dt.day(),
                dt.hour(),
                dt.minutes(),
                dt.seconds()
            ),
            Err(_) => format!("@{}", self.0),
        }
    }

    /// Parse an RFC 3339 time in UTC (`YYYY-MM-DDTHH:MM:SSZ`, or with a
    /// `+HH:MM`/`-HH:MM` offset).
    pub fn parse_rfc3339(s: &str) -> Option<Self> {
        let s = s.trim();
        let b = s.as_bytes();
        if b.len() < 20 {
            return None;
        }
        let num = |r: std::ops::Range<usize>| -> Option<u32> {
            let part = s.get(r)?;
            if !part.bytes().all(|c| c.is_ascii_digit()) {
                return None;
            }
            part.parse().ok()
        };
        let sep_ok = b.get(4) == Some(&b'-')
            && b.get(7) == Some(&b'-')
            && matches!(b.get(10), Some(b'T' | b't' | b' '))
            && b.get(13) == Some(&b':')
            && b.get(16) == Some(&b':');
        if !sep_ok {
            return None;
        }
        let year = u16::try_from(num(0..4)?).ok()?;
        let (month, day) = (
            u8::try_from(num(5..7)?).ok()?,
            u8::try_from(num(8..10)?).ok()?,
        );
        let (hour, min, sec) = (
            u8::try_from(num(11..13)?).ok()?,
            u8::try_from(num(14..16)?).ok()?,
            u8::try_from(num(17..19)?).ok()?,
        );
        let mut rest = s.get(19..)?;
        if let Some(frac) = rest.strip_prefix('.') {
            let digits = frac.bytes().take_while(u8::is_ascii_digit).count();
            rest = frac.get(digits..)?;
        }
        let offset: i64 = match rest {
            "Z" | "z" => 0,
            _ => {
                let rb = rest.as_bytes();
                if rb.len() != 6 || rb.get(3) != Some(&b':') {
                    return None;
                }
                let sign = match rb.first() {
                    Some(b'+') => 1,
                    Some(b'-') => -1,
                    _ => return None,
                };
                let h: i64 = rest.get(1..3)?.parse().ok()?;
                let m: i64 = rest.get(4..6)?.parse().ok()?;
                sign * (h * 3600 + m * 60)
            }
        };
        let dt = der::DateTime::new(year, month, day, hour, min, sec).ok()?;
        let utc = i64::try_from(dt.unix_duration().as_secs()).ok()? - offset;
        u64::try_from(utc).ok().map(Self)
    }
}

/// Parse a duration such as `36h`, `2d`, `90m`, `3600s` or `1d12h`.
pub fn parse_duration(s: &str) -> Option<u64> {
    let s = s.trim();
    if s.is_empty() {
        return None;
    }
    let mut total: u64 = 0;
    let mut num: Option<u64> = None;
    for c in s.chars() {
        if let Some(d) = c.to_digit(10) {
            num = Some(
                num.unwrap_or(0)
                    .checked_mul(10)?
                    .checked_add(u64::from(d))?,
            );
            continue;
        }
        let unit = match c {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            'd' => 86_400,
            'w' => 604_800,
            _ => return None,
        };
        total = total.checked_add(num.take()?.checked_mul(unit)?)?;
    }
    if num.is_some() {
        return None; // a bare number has no unit
    }
    Some(total)
}

/// Human form of a number of seconds: `1d 2h 3m 4s`.
pub fn format_duration(secs: u64) -> String {
    let (d, h, m, s) = (
        secs / 86_400,
        secs % 86_400 / 3600,
        secs % 3600 / 60,
        secs % 60,
    );
    let mut parts = Vec::new();
    if d > 0 {
        parts.push(format!("{d}d"));
    }
    if h > 0 {
        parts.push(format!("{h}h"));
    }
    if m > 0 {
        parts.push(format!("{m}m"));
    }
    if s > 0 || parts.is_empty() {
        parts.push(format!("{s}s"));
    }
    parts.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_round_trip() {
        let t = UnixTime::parse_rfc3339("2026-11-24T13:20:00Z").unwrap();
        assert_eq!(t.0, 1_795_478_400 + 13 * 3600 + 20 * 60);
        assert_eq!(t.to_rfc3339(), "2026-11-24T13:20:00Z");
        let with_offset = UnixTime::parse_rfc3339("2026-11-24T14:20:00+01:00").unwrap();
        assert_eq!(with_offset, t);
        assert!(UnixTime::parse_rfc3339("2026-11-24 garbage").is_none());
        assert!(UnixTime::parse_rfc3339("2026-13-24T13:20:00Z").is_none());
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("36h"), Some(36 * 3600));
        assert_eq!(parse_duration("2d"), Some(2 * 86_400));
        assert_eq!(parse_duration("1d12h"), Some(36 * 3600));
        assert_eq!(parse_duration("12"), None);
        assert_eq!(parse_duration("h"), None);
        assert_eq!(parse_duration("99999999999999999999d"), None);
        assert_eq!(format_duration(90_061), "1d 1h 1m 1s");
    }
}
