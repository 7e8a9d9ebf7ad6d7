//! An environment's freeze windows taken together: whether it is frozen
//! now and until when, and which windows open soon.

use super::{FreezeWindow, Occurrence, Zone};

/// How many back-to-back stretches `frozen_at` follows before it gives up
/// on finding the end (a window on every day of the week never ends).
const MAX_LINKS: usize = 400;

/// An environment frozen at some instant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frozen<'a> {
    /// The first window (in config order) that covers the instant.
    pub window: &'a FreezeWindow,
    /// When deploys open again: the end of the last of the windows that
    /// follow each other without a gap, and that window's zone. `None` when
    /// there is no end in sight.
    pub until: Option<(i64, &'a Zone)>,
}

impl Frozen<'_> {
    /// The end as a person reads it: `Mon 09:00 Europe/Berlin` (see
    /// [`Zone::describe`]), or `no end in sight`.
    pub fn until_text(&self, now: i64) -> String {
        match self.until {
            Some((at, zone)) => zone.describe(at, now),
            None => "no end in sight".to_owned(),
        }
    }
}

/// Whether `windows` freeze the environment at `now`, and until when.
pub fn frozen_at(windows: &[FreezeWindow], now: i64) -> Option<Frozen<'_>> {
    let window = windows.iter().find(|w| w.active_at(now))?;
    let mut until = None;
    let mut at = now;
    for _ in 0..MAX_LINKS {
        let open = windows
            .iter()
            .flat_map(|w| {
                w.occurrences(at, at.saturating_add(1))
                    .into_iter()
                    .map(move |o| (o.end, w.zone()))
            })
            .max_by_key(|(end, _)| *end);
        match open {
            Some((end, zone)) => {
                at = end;
                until = Some((end, zone));
            }
            None => return Some(Frozen { window, until }),
        }
    }
    Some(Frozen {
        window,
        until: None,
    })
}

/// A stretch of a window that is open or opens within a horizon.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upcoming<'a> {
    /// The window.
    pub window: &'a FreezeWindow,
    /// When it starts and ends.
    pub occurrence: Occurrence,
}

impl Upcoming<'_> {
    /// `Fri 15:00 to Sat 00:00 Europe/Berlin`, both ends in the window's zone.
    pub fn describe(&self, now: i64) -> String {
        let zone = self.window.zone();
        format!(
            "{} to {}",
            zone.describe_bare(self.occurrence.start, now),
            zone.describe(self.occurrence.end, now)
        )
    }
}

/// Every stretch of `windows` that overlaps `[now, now + horizon)`, by start.
pub fn upcoming(windows: &[FreezeWindow], now: i64, horizon: i64) -> Vec<Upcoming<'_>> {
    let until = now.saturating_add(horizon);
    let mut out: Vec<Upcoming<'_>> = windows
        .iter()
        .flat_map(|window| {
            window
                .occurrences(now, until)
                .into_iter()
                .map(move |occurrence| Upcoming { window, occurrence })
        })
        .collect();
    out.sort_by_key(|u| u.occurrence);
    out
}
