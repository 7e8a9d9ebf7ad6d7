//! Freeze windows: fixed date ranges and weekly windows, each in a time zone
//! (default UTC), read with the compiled-in time-zone database so that a
//! weekly window keeps its wall-clock times across daylight-saving changes.
//! Pure; the caller passes the time in as Unix seconds.

mod status;
mod zone;

#[cfg(test)]
mod tests;

use std::fmt;

use jiff::civil::{self, Date};
use jiff::Timestamp;

use crate::names::escape_for_display;

pub use status::{frozen_at, upcoming, Frozen, Upcoming};
pub use zone::{Zone, ZoneError};

/// A day of the week.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Weekday {
    /// Monday.
    Mon,
    /// Tuesday.
    Tue,
    /// Wednesday.
    Wed,
    /// Thursday.
    Thu,
    /// Friday.
    Fri,
    /// Saturday.
    Sat,
    /// Sunday.
    Sun,
}

const WEEK: [(Weekday, &str, &str); 7] = [
    (Weekday::Mon, "mon", "monday"),
    (Weekday::Tue, "tue", "tuesday"),
    (Weekday::Wed, "wed", "wednesday"),
    (Weekday::Thu, "thu", "thursday"),
    (Weekday::Fri, "fri", "friday"),
    (Weekday::Sat, "sat", "saturday"),
    (Weekday::Sun, "sun", "sunday"),
];

impl Weekday {
    /// Parses `mon` … `sun` or the full lowercase English name.
    pub fn parse(text: &str) -> Option<Weekday> {
        WEEK.iter()
            .find(|(_, short, long)| text == *short || text == *long)
            .map(|(day, _, _)| *day)
    }

    /// The three-letter lowercase name.
    pub fn as_str(self) -> &'static str {
        WEEK[self as usize].1
    }

    /// The three-letter name with a capital, as replies write it (`Mon`).
    pub fn title(self) -> &'static str {
        ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"][self as usize]
    }
}

impl From<civil::Weekday> for Weekday {
    fn from(day: civil::Weekday) -> Weekday {
        // to_monday_zero_offset is 0..=6, Monday first, like WEEK.
        WEEK[day.to_monday_zero_offset() as usize].0
    }
}

/// When a freeze applies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FreezeSchedule {
    /// From `start` (inclusive) to `end` (exclusive), in Unix seconds.
    Fixed {
        /// Start, Unix seconds.
        start: i64,
        /// End, Unix seconds.
        end: i64,
    },
    /// On the given days, from minute `from` to minute `to` of the day, as
    /// the clock in the window's zone reads.
    Weekly {
        /// The days the window applies on.
        days: Vec<Weekday>,
        /// Start, minutes after local midnight (inclusive).
        from: u32,
        /// End, minutes after local midnight (exclusive, at most 24:00).
        to: u32,
    },
}

/// One stretch of time a window covers: `[start, end)` in Unix seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Occurrence {
    /// Start, Unix seconds (inclusive).
    pub start: i64,
    /// End, Unix seconds (exclusive).
    pub end: i64,
}

/// A period in which deploys to an environment need break-glass.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FreezeWindow {
    schedule: FreezeSchedule,
    reason: String,
    zone: Zone,
}

/// Why a freeze window was refused; `field` names the offending key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct FreezeError {
    /// The key that is wrong (`start`, `end`, `days`, `from`, `to`).
    pub field: &'static str,
    /// What is wrong with it.
    pub message: String,
}

fn fail(field: &'static str, message: String) -> FreezeError {
    FreezeError { field, message }
}

impl FreezeWindow {
    /// A fixed window between two RFC 3339 times (with `Z` or an offset).
    /// When `zone` is given (the window's or its environment's `timezone`),
    /// a time without an offset is a wall-clock time in that zone; the
    /// window is shown in `zone`, or in UTC when there is none.
    pub fn fixed(
        start: &str,
        end: &str,
        reason: &str,
        zone: Option<&Zone>,
    ) -> Result<FreezeWindow, FreezeError> {
        let s = parse_instant(start, zone).map_err(|why| fail("start", why))?;
        let e = parse_instant(end, zone).map_err(|why| fail("end", why))?;
        if e <= s {
            return Err(fail(
                "end",
                format!("freeze ends ({end}) before or when it starts ({start})"),
            ));
        }
        Ok(FreezeWindow {
            schedule: FreezeSchedule::Fixed { start: s, end: e },
            reason: reason.to_owned(),
            zone: zone.cloned().unwrap_or_else(Zone::utc),
        })
    }

    /// A weekly window on `days`, between `from` and `to` (`HH:MM`) as the
    /// clock reads in `zone` (UTC when `None`).
    pub fn weekly(
        days: &[String],
        from: &str,
        to: &str,
        reason: &str,
        zone: Option<&Zone>,
    ) -> Result<FreezeWindow, FreezeError> {
        if days.is_empty() {
            return Err(fail("days", "list at least one day (mon … sun)".into()));
        }
        let mut parsed = Vec::new();
        for day in days {
            let d = Weekday::parse(day).ok_or_else(|| {
                fail(
                    "days",
                    format!(
                        "`{}` is not a day; use mon, tue, wed, thu, fri, sat or sun",
                        escape_for_display(day)
                    ),
                )
            })?;
            if !parsed.contains(&d) {
                parsed.push(d);
            }
        }
        parsed.sort();
        let from_m = parse_clock(from).ok_or_else(|| bad_clock("from", from))?;
        let to_m = parse_clock(to).ok_or_else(|| bad_clock("to", to))?;
        if to_m <= from_m {
            return Err(fail(
                "to",
                format!("window ends ({to}) before or when it starts ({from}); split a window that crosses midnight in two"),
            ));
        }
        Ok(FreezeWindow {
            schedule: FreezeSchedule::Weekly {
                days: parsed,
                from: from_m,
                to: to_m,
            },
            reason: reason.to_owned(),
            zone: zone.cloned().unwrap_or_else(Zone::utc),
        })
    }

    /// Whether the window covers the instant `unix_seconds`.
    pub fn active_at(&self, unix_seconds: i64) -> bool {
        !self
            .occurrences(unix_seconds, unix_seconds.saturating_add(1))
            .is_empty()
    }

    /// The stretches of this window that overlap `[from, until)`, earliest
    /// first. Meant for spans of days, not years.
    pub fn occurrences(&self, from: i64, until: i64) -> Vec<Occurrence> {
        let overlaps = |o: &Occurrence| o.end > from && o.start < until && o.start < o.end;
        match &self.schedule {
            FreezeSchedule::Fixed { start, end } => [Occurrence {
                start: *start,
                end: *end,
            }]
            .into_iter()
            .filter(overlaps)
            .collect(),
            FreezeSchedule::Weekly { days, from: f, to } => {
                let (Some(first), Some(last)) = (self.zone.civil(from), self.zone.civil(until))
                else {
                    return Vec::new();
                };
                // A day's window can reach past its local date only by a
                // daylight-saving shift, so one day either side is enough.
                let mut date = first.date().yesterday().unwrap_or(first.date());
                let last = last.date().tomorrow().unwrap_or(last.date());
                let mut out = Vec::new();
                while date <= last {
                    if days.contains(&Weekday::from(date.weekday())) {
                        if let Some(o) = self.on(date, *f, *to).filter(overlaps) {
                            out.push(o);
                        }
                    }
                    match date.tomorrow() {
                        Ok(next) => date = next,
                        Err(_) => break,
                    }
                }
                out
            }
        }
    }

    /// The weekly window's stretch on local `date`.
    fn on(&self, date: Date, from: u32, to: u32) -> Option<Occurrence> {
        let at = |date: Date, minute: u32| -> Option<i64> {
            let (day, minute) = if minute >= 24 * 60 {
                (date.tomorrow().ok()?, 0)
            } else {
                (date, minute)
            };
            // Both are below 24 and 60 here, so they fit an i8.
            let local = day.at((minute / 60) as i8, (minute % 60) as i8, 0, 0);
            self.zone.instant(local)
        };
        Some(Occurrence {
            start: at(date, from)?,
            end: at(date, to)?,
        })
    }

    /// Why the freeze exists, as config states it.
    pub fn reason(&self) -> &str {
        &self.reason
    }

    /// When the freeze applies.
    pub fn schedule(&self) -> &FreezeSchedule {
        &self.schedule
    }

    /// The zone the window is written and shown in.
    pub fn zone(&self) -> &Zone {
        &self.zone
    }
}

impl fmt::Display for FreezeWindow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.schedule {
            FreezeSchedule::Fixed { start, end } => {
                write!(
                    f,
                    "{} to {}",
                    self.zone.rfc3339(*start),
                    self.zone.rfc3339(*end)
                )?;
                if self.zone != Zone::utc() {
                    write!(f, " {}", self.zone)?;
                }
            }
            FreezeSchedule::Weekly { days, from, to } => {
                let names: Vec<&str> = days.iter().map(|d| d.as_str()).collect();
                write!(
                    f,
                    "{} {:02}:{:02}-{:02}:{:02} {}",
                    names.join(","),
                    from / 60,
                    from % 60,
                    to / 60,
                    to % 60,
                    self.zone
                )?
            }
        }
        write!(f, " ({})", self.reason)
    }
}

fn bad_clock(field: &'static str, text: &str) -> FreezeError {
    fail(
        field,
        format!(
            "`{}` is not a time of day HH:MM between 00:00 and 24:00",
            escape_for_display(text)
        ),
    )
}

/// Parses `HH:MM` (00:00 to 24:00) into minutes after midnight.
fn parse_clock(text: &str) -> Option<u32> {
    let (h, m) = text.split_once(':')?;
    let h = two_digits(h)?;
    let m = two_digits(m)?;
    let total = h * 60 + m;
    (h <= 24 && m <= 59 && total <= 24 * 60).then_some(total)
}

fn two_digits(text: &str) -> Option<u32> {
    (text.len() == 2 && text.bytes().all(|b| b.is_ascii_digit()))
        .then(|| text.parse().ok())
        .flatten()
}

/// Reads an RFC 3339 time with `Z` or an offset; with a zone, also a
/// wall-clock time without one (`2026-12-20T00:00:00`) in that zone.
fn parse_instant(text: &str, zone: Option<&Zone>) -> Result<i64, String> {
    let shown = escape_for_display(text);
    // jiff reads a superset of RFC 3339 (ISO 8601 basic forms, bracketed
    // zone annotations); Gantry takes the RFC's shape: a full date, `T` (or
    // a space), hours, minutes and seconds.
    let b = text.as_bytes();
    let shaped = b.len() >= 19
        && b[4] == b'-'
        && b[7] == b'-'
        && matches!(b[10], b'T' | b't' | b' ')
        && b[13] == b':'
        && b[16] == b':'
        && !text.contains('[');
    if shaped {
        if let Ok(t) = text.parse::<Timestamp>() {
            return Ok(t.as_second());
        }
        if let (Some(zone), Ok(local)) = (zone, text.parse::<civil::DateTime>()) {
            if !has_offset(text) {
                return zone
                    .instant(local)
                    .ok_or_else(|| format!("`{shown}` is out of range in {}", zone.name()));
            }
        }
    }
    let local_hint = if zone.is_some() {
        " (or a wall-clock time such as 2026-12-20T00:00:00 in the window's timezone)"
    } else {
        "; without an offset, set `timezone` on the window or its environment"
    };
    Err(format!(
        "`{shown}` is not an RFC 3339 time such as 2026-12-20T00:00:00Z{local_hint}"
    ))
}

/// Whether an RFC 3339-shaped text carries `Z` or a `±HH:MM` offset.
fn has_offset(text: &str) -> bool {
    let rest = text.get(19..).unwrap_or("");
    rest.contains(['Z', 'z', '+', '-'])
}
