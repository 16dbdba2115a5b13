//! What the launch service lets one pilot take of it (`spec/jobseal.md`
//! §14.14.6): memory held by received requests, turns at verification,
//! and recorded refusals. Each bound is per caller uid, so that one
//! pilot's flood neither fills the node's memory nor the site's audit log,
//! nor delays another pilot's launch beyond its turn.

use std::collections::{HashMap, VecDeque};
use std::sync::{Condvar, Mutex, PoisonError};
use std::time::{Duration, Instant};

/// Bytes of received requests (bundles, arguments, environment) held
/// between their arrival and their admission: per uid and in all.
#[derive(Debug)]
pub struct InFlight {
    per_uid: u64,
    all: u64,
    held: Mutex<(HashMap<u32, u64>, u64)>,
}

/// Bytes counted until dropped.
#[derive(Debug)]
pub struct Held<'a> {
    owner: &'a InFlight,
    uid: u32,
    bytes: u64,
}

impl InFlight {
    pub fn new(per_uid: u64, all: u64) -> Self {
        Self {
            per_uid,
            all,
            held: Mutex::new((HashMap::new(), 0)),
        }
    }

    /// Count `bytes` for `uid`, or `None` if that goes beyond a bound.
    pub fn hold(&self, uid: u32, bytes: u64) -> Option<Held<'_>> {
        let mut held = self.held.lock().unwrap_or_else(PoisonError::into_inner);
        let (by_uid, total) = &mut *held;
        let mine = by_uid.entry(uid).or_insert(0);
        if mine.saturating_add(bytes) > self.per_uid || total.saturating_add(bytes) > self.all {
            return None;
        }
        *mine += bytes;
        *total += bytes;
        Some(Held {
            owner: self,
            uid,
            bytes,
        })
    }
}

impl Drop for Held<'_> {
    fn drop(&mut self) {
        let mut held = self
            .owner
            .held
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let (by_uid, total) = &mut *held;
        if let Some(mine) = by_uid.get_mut(&self.uid) {
            *mine = mine.saturating_sub(self.bytes);
            if *mine == 0 {
                by_uid.remove(&self.uid);
            }
        }
        *total = total.saturating_sub(self.bytes);
    }
}

/// Turns at verification (parsing, chain, payload hashing, admission):
/// `slots` at once, at most `per_uid` of them one uid's, so that a pilot
/// with many launches queued leaves slots for the others. A request waits
/// for its turn at most `wait`.
#[derive(Debug)]
pub struct Turns {
    slots: usize,
    per_uid: usize,
    wait: Duration,
    taken: Mutex<(HashMap<u32, usize>, usize)>,
    freed: Condvar,
}

/// A turn, given back when dropped.
#[derive(Debug)]
pub struct Turn<'a> {
    owner: &'a Turns,
    uid: u32,
}

impl Turns {
    pub fn new(slots: usize, per_uid: usize, wait: Duration) -> Self {
        Self {
            slots: slots.max(1),
            per_uid: per_uid.clamp(1, slots.max(1)),
            wait,
            taken: Mutex::new((HashMap::new(), 0)),
            freed: Condvar::new(),
        }
    }

    /// Wait for a turn of `uid`'s; `None` after the wait.
    pub fn take(&self, uid: u32) -> Option<Turn<'_>> {
        let deadline = Instant::now() + self.wait;
        let mut taken = self.taken.lock().unwrap_or_else(PoisonError::into_inner);
        loop {
            let (by_uid, total) = &mut *taken;
            let mine = by_uid.entry(uid).or_insert(0);
            if *total < self.slots && *mine < self.per_uid {
                *mine += 1;
                *total += 1;
                return Some(Turn { owner: self, uid });
            }
            let left = deadline.checked_duration_since(Instant::now())?;
            taken = self
                .freed
                .wait_timeout(taken, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }
}

impl Drop for Turn<'_> {
    fn drop(&mut self) {
        let mut taken = self
            .owner
            .taken
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let (by_uid, total) = &mut *taken;
        if let Some(mine) = by_uid.get_mut(&self.uid) {
            *mine = mine.saturating_sub(1);
            if *mine == 0 {
                by_uid.remove(&self.uid);
            }
        }
        *total = total.saturating_sub(1);
        drop(taken);
        self.owner.freed.notify_all();
    }
}

/// Recorded refusals per uid in a sliding window: a pilot that reaches
/// `max` is refused up front, unrecorded, until its oldest refusal leaves
/// the window, so that it cannot fill the site's audit log.
#[derive(Debug)]
pub struct RefusalBudget {
    max: usize,
    window: Duration,
    seen: Mutex<HashMap<u32, VecDeque<Instant>>>,
}

impl RefusalBudget {
    pub fn new(max: usize, window: Duration) -> Self {
        Self {
            max,
            window,
            seen: Mutex::new(HashMap::new()),
        }
    }

    /// `Err(wait)` while `uid` has spent its budget: how long until it may
    /// ask again.
    pub fn check(&self, uid: u32, now: Instant) -> Result<(), Duration> {
        let mut seen = self.seen.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(times) = seen.get_mut(&uid) else {
            return Ok(());
        };
        while times
            .front()
            .is_some_and(|t| now.saturating_duration_since(*t) >= self.window)
        {
            times.pop_front();
        }
        match times.front() {
            Some(oldest) if times.len() >= self.max => Err(self
                .window
                .saturating_sub(now.saturating_duration_since(*oldest))),
            None => {
                seen.remove(&uid);
                Ok(())
            }
            Some(_) => Ok(()),
        }
    }

    /// Count one recorded refusal of `uid`'s; `true` if it spent the last
    /// of the budget (the moment to say so, once).
    pub fn spend(&self, uid: u32, now: Instant) -> bool {
        let mut seen = self.seen.lock().unwrap_or_else(PoisonError::into_inner);
        let times = seen.entry(uid).or_default();
        times.push_back(now);
        times.len() == self.max
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn held_bytes_are_bounded_per_uid_and_in_all_and_given_back() {
        let f = InFlight::new(100, 150);
        let a = f.hold(1, 60).unwrap();
        assert!(f.hold(1, 41).is_none(), "beyond uid 1's bound");
        let b = f.hold(2, 90).unwrap();
        assert!(f.hold(3, 1).is_none(), "beyond the bound for all");
        drop(a);
        assert!(f.hold(3, 60).is_some());
        drop(b);
        assert!(f.hold(1, 100).is_some());
        assert!(f.hold(1, u64::MAX).is_none());
    }

    #[test]
    fn one_uid_never_takes_every_turn() {
        let t = Turns::new(4, 2, Duration::from_millis(50));
        let a1 = t.take(1).unwrap();
        let _a2 = t.take(1).unwrap();
        // uid 1 has its two: it waits (and gives up), uid 2 does not.
        assert!(t.take(1).is_none());
        let _b1 = t.take(2).unwrap();
        let _b2 = t.take(2).unwrap();
        assert!(t.take(3).is_none(), "all four slots taken");
        drop(a1);
        assert!(t.take(3).is_some());
    }

    #[test]
    fn a_waiting_request_gets_the_turn_given_back() {
        let t = std::sync::Arc::new(Turns::new(1, 1, Duration::from_secs(10)));
        let first = t.take(1).unwrap();
        let waiter = {
            let t = std::sync::Arc::clone(&t);
            std::thread::spawn(move || t.take(2).is_some())
        };
        std::thread::sleep(Duration::from_millis(50));
        drop(first);
        assert!(waiter.join().unwrap());
    }

    #[test]
    fn a_caller_that_spent_its_refusals_waits_for_the_window() {
        let b = RefusalBudget::new(3, Duration::from_secs(60));
        let t0 = Instant::now();
        assert!(!b.spend(7, t0));
        assert!(!b.spend(7, t0 + Duration::from_secs(10)));
        assert!(b.check(7, t0 + Duration::from_secs(11)).is_ok());
        assert!(b.spend(7, t0 + Duration::from_secs(20)), "the last one");
        let wait = b.check(7, t0 + Duration::from_secs(30)).unwrap_err();
        assert_eq!(wait, Duration::from_secs(30));
        assert!(
            b.check(8, t0 + Duration::from_secs(30)).is_ok(),
            "others unaffected"
        );
        // The first refusal leaves the window at t0 + 60 s.
        assert!(b.check(7, t0 + Duration::from_secs(60)).is_ok());
    }
}
