//! A progress bar on standard error for `jobseal sign` (many jobs, large
//! inputs). Drawn only when standard error is a terminal (and `TERM` is not
//! `dumb`): output that goes to a file, a pipe or a test never sees it. One
//! line, redrawn at most ten times a second, cleared when done.

use std::io::{IsTerminal, Write};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// What the bar counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unit {
    Jobs,
    Bytes,
}

/// Least time between two redraws.
const EVERY: Duration = Duration::from_millis(100);
/// Width of the bar itself, in characters.
const WIDTH: u64 = 28;

/// A progress bar; [`Progress::on_terminal`] gives none off a terminal.
#[derive(Debug)]
pub struct Progress {
    verb: &'static str,
    unit: Unit,
    total: u64,
    done: AtomicU64,
    start: Instant,
    /// When it was last drawn (`None`: never); also keeps two threads from
    /// drawing at once.
    drawn: Mutex<Option<Instant>>,
}

/// Whether a bar would be drawn at all (checked before counting what it
/// would show).
pub fn stderr_is_terminal() -> bool {
    let dumb = std::env::var_os("TERM").is_some_and(|t| t == "dumb");
    !dumb && std::io::stderr().is_terminal()
}

impl Progress {
    /// A bar for `total` units, or `None` when standard error is not a
    /// terminal or there is nothing to count.
    pub fn on_terminal(verb: &'static str, unit: Unit, total: u64) -> Option<Self> {
        if total == 0 || !stderr_is_terminal() {
            return None;
        }
        Some(Self {
            verb,
            unit,
            total,
            done: AtomicU64::new(0),
            start: Instant::now(),
            drawn: Mutex::new(None),
        })
    }

    /// What the bar counts.
    pub fn unit(&self) -> Unit {
        self.unit
    }

    /// `n` more units done (from any thread).
    pub fn add(&self, n: u64) {
        let done = self.done.fetch_add(n, Ordering::Relaxed).saturating_add(n);
        // Whoever holds the lock is drawing: skip rather than wait.
        let Ok(mut drawn) = self.drawn.try_lock() else {
            return;
        };
        let now = Instant::now();
        if drawn.is_some_and(|t| now.duration_since(t) < EVERY) {
            return;
        }
        *drawn = Some(now);
        let line = self.line(done.min(self.total), now.duration_since(self.start));
        let mut err = std::io::stderr().lock();
        // A bar that cannot be drawn is no reason to fail the command.
        let _ = write!(err, "\r{line}\x1b[K");
        let _ = err.flush();
    }

    /// Clear the bar (if it was ever drawn), so that what follows starts on
    /// a clean line.
    pub fn finish(&self) {
        let drawn = self.drawn.lock().map(|d| d.is_some()).unwrap_or(true);
        if drawn {
            let mut err = std::io::stderr().lock();
            let _ = write!(err, "\r\x1b[2K");
            let _ = err.flush();
        }
    }

    fn line(&self, done: u64, elapsed: Duration) -> String {
        let filled = done.saturating_mul(WIDTH) / self.total.max(1);
        let bar: String = (0..WIDTH)
            .map(|i| if i < filled { '#' } else { '-' })
            .collect();
        let percent = done.saturating_mul(100) / self.total.max(1);
        let secs = elapsed.as_secs_f64();
        let count = match self.unit {
            Unit::Jobs => format!("{done}/{} jobs", self.total),
            Unit::Bytes => {
                let rate = if secs > 0.0 {
                    format!(", {}/s", bytes(done as f64 / secs))
                } else {
                    String::new()
                };
                format!(
                    "{} of {}{rate}",
                    bytes(done as f64),
                    bytes(self.total as f64)
                )
            }
        };
        format!(
            "jobseal: {} [{bar}] {percent:>3}% {count}, {secs:.1} s",
            self.verb
        )
    }
}

/// Bytes for people: `812 MiB`, `3.4 GiB`.
fn bytes(n: f64) -> String {
    const KIB: f64 = 1024.0;
    if n >= KIB * KIB * KIB {
        format!("{:.1} GiB", n / (KIB * KIB * KIB))
    } else if n >= KIB * KIB {
        format!("{:.0} MiB", n / (KIB * KIB))
    } else {
        format!("{:.0} KiB", n / KIB)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bar(unit: Unit, total: u64) -> Progress {
        Progress {
            verb: "sealing",
            unit,
            total,
            done: AtomicU64::new(0),
            start: Instant::now(),
            drawn: Mutex::new(None),
        }
    }

    #[test]
    fn lines() {
        let p = bar(Unit::Jobs, 1000);
        assert_eq!(
            p.line(250, Duration::from_millis(1500)),
            "jobseal: sealing [#######---------------------]  25% 250/1000 jobs, 1.5 s"
        );
        let p = bar(Unit::Bytes, 4 << 30);
        assert_eq!(
            p.line(1 << 30, Duration::from_secs(1)),
            "jobseal: sealing [#######---------------------]  25% 1.0 GiB of 4.0 GiB, 1.0 GiB/s, 1.0 s"
        );
        assert!(p.line(4 << 30, Duration::ZERO).contains("100%"));
    }

    #[test]
    fn nothing_off_a_terminal() {
        // Tests run with standard error captured: never a terminal.
        if !std::io::stderr().is_terminal() {
            assert!(Progress::on_terminal("sealing", Unit::Jobs, 10).is_none());
        }
        assert!(Progress::on_terminal("sealing", Unit::Jobs, 0).is_none());
    }
}
