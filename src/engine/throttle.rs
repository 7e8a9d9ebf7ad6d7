//! A per-person limit on commands that start work: a burst from one person
//! (or one runaway script) is answered "slow down" instead of piling up
//! accepted work. Memory is bounded: people come from config, and each
//! keeps at most `count` start times.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use crate::command::Command;
use crate::config::StartLimit;

/// Start times per person within the current period.
#[derive(Debug, Default)]
pub struct Starts {
    seen: Mutex<HashMap<String, VecDeque<i64>>>,
}

impl Starts {
    /// Counts a start by `person` at `now` (unix seconds) against `limit`;
    /// `Err(seconds)` says how long until one is allowed again (nothing is
    /// counted then).
    pub fn take(&self, person: &str, now: i64, limit: StartLimit) -> Result<(), i64> {
        if limit.count == 0 {
            return Ok(());
        }
        let period = i64::try_from(limit.per.as_secs())
            .unwrap_or(i64::MAX)
            .max(1);
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        let times = seen.entry(person.to_owned()).or_default();
        while times.front().is_some_and(|t| now - t >= period) {
            times.pop_front();
        }
        if times.len() >= limit.count as usize {
            let oldest = times.front().copied().unwrap_or(now);
            return Err((oldest + period - now).max(1));
        }
        times.push_back(now);
        Ok(())
    }
}

/// Whether `command` starts work (and so counts against the limit).
pub fn starts_work(command: &Command) -> bool {
    match command {
        Command::Deploy { .. }
        | Command::Promote { .. }
        | Command::Rollback { .. }
        | Command::Build { .. }
        | Command::Teardown { .. } => true,
        Command::Approve { .. }
        | Command::Deny { .. }
        | Command::Cancel { .. }
        | Command::Complete { .. }
        | Command::RollbackRequest { .. }
        | Command::Lock { .. }
        | Command::Unlock { .. }
        | Command::Status { .. }
        | Command::History { .. }
        | Command::Envs
        | Command::Whoami
        | Command::Help { .. } => false,
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    const LIMIT: StartLimit = StartLimit {
        count: 2,
        per: Duration::from_secs(60),
    };

    #[test]
    fn a_burst_is_cut_at_the_limit_and_the_window_slides() {
        let starts = Starts::default();
        assert_eq!(starts.take("alice", 100, LIMIT), Ok(()));
        assert_eq!(starts.take("alice", 110, LIMIT), Ok(()));
        assert_eq!(starts.take("alice", 120, LIMIT), Err(40));
        // Someone else is not held back by alice.
        assert_eq!(starts.take("bob", 120, LIMIT), Ok(()));
        // The refused one did not count: at 160 the first start has aged out.
        assert_eq!(starts.take("alice", 160, LIMIT), Ok(()));
        assert_eq!(starts.take("alice", 161, LIMIT), Err(9));
    }

    #[test]
    fn zero_means_no_limit() {
        let starts = Starts::default();
        let none = StartLimit { count: 0, ..LIMIT };
        for t in 0..1000 {
            assert_eq!(starts.take("alice", t / 100, none), Ok(()));
        }
    }
}
