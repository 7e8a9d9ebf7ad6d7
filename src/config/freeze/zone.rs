//! Time zones for freeze windows: IANA names looked up in the time-zone
//! database compiled into Gantry, and instants written in a zone.

use std::fmt;

use jiff::tz::TimeZone;
use jiff::{civil, Timestamp};

use crate::names::escape_for_display;

/// An IANA time zone such as `Europe/Berlin`, or `UTC`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Zone {
    name: String,
    tz: TimeZone,
}

/// A time-zone name the database does not know.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown time zone `{shown}`; use an IANA name such as Europe/Berlin, America/New_York or UTC{hint}")]
pub struct ZoneError {
    /// The name as written, escaped for display.
    pub shown: String,
    /// A suggestion, such as "; did you mean Europe/Berlin?", or nothing.
    hint: String,
}

impl Zone {
    /// Coordinated Universal Time, the default.
    pub fn utc() -> Zone {
        Zone {
            name: "UTC".to_owned(),
            tz: TimeZone::UTC,
        }
    }

    /// Looks up an IANA name (`Europe/Berlin`, `UTC`). Names are matched
    /// without regard to case and shown as the database spells them.
    pub fn named(text: &str) -> Result<Zone, ZoneError> {
        let plausible = !text.is_empty()
            && text
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'/' | b'_' | b'-' | b'+'));
        let found = if plausible {
            TimeZone::get(text).ok()
        } else {
            None
        };
        match found {
            Some(tz) => Ok(Zone {
                name: tz.iana_name().unwrap_or(text).to_owned(),
                tz,
            }),
            None => Err(ZoneError {
                shown: escape_for_display(text),
                hint: suggestion(text),
            }),
        }
    }

    /// The zone's IANA name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The wall-clock date and time in this zone at `unix_seconds`.
    pub(crate) fn civil(&self, unix_seconds: i64) -> Option<civil::DateTime> {
        Timestamp::from_second(unix_seconds)
            .ok()
            .map(|t| self.tz.to_datetime(t))
    }

    /// The instant a wall-clock time in this zone names. A time that a
    /// daylight-saving change skips is read with the offset before the
    /// change, a repeated time as its first occurrence (RFC 5545).
    pub(crate) fn instant(&self, local: civil::DateTime) -> Option<i64> {
        self.tz.to_timestamp(local).ok().map(|t| t.as_second())
    }

    /// `unix_seconds` as a person reads it in this zone: `Mon 09:00
    /// Europe/Berlin` on the local day of `now` or the six after it (where
    /// a weekday names one date), `Mon 2027-01-04 09:00 Europe/Berlin`
    /// otherwise.
    pub fn describe(&self, unix_seconds: i64, now: i64) -> String {
        format!("{} {}", self.describe_bare(unix_seconds, now), self.name)
    }

    /// [`Zone::describe`] without the zone's name.
    pub fn describe_bare(&self, unix_seconds: i64, now: i64) -> String {
        let Some(local) = self.civil(unix_seconds) else {
            return format!("unix time {unix_seconds}");
        };
        let day = super::Weekday::from(local.weekday()).title();
        let clock = format!("{:02}:{:02}", local.hour(), local.minute());
        let days_ahead = self
            .civil(now)
            .and_then(|today| local.date().since(today.date()).ok())
            .map(|span| span.get_days());
        if matches!(days_ahead, Some(0..=6)) {
            format!("{day} {clock}")
        } else {
            format!(
                "{day} {:04}-{:02}-{:02} {clock}",
                local.year(),
                local.month(),
                local.day()
            )
        }
    }

    /// `unix_seconds` in RFC 3339 with this zone's offset (`Z` in UTC).
    pub(crate) fn rfc3339(&self, unix_seconds: i64) -> String {
        match Timestamp::from_second(unix_seconds) {
            Ok(t) if self.tz == TimeZone::UTC => t.to_string(),
            Ok(t) => t.display_with_offset(self.tz.to_offset(t)).to_string(),
            Err(_) => format!("unix time {unix_seconds}"),
        }
    }
}

impl fmt::Display for Zone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)
    }
}

/// "; did you mean Europe/Berlin?" when `text` is the last part of a name.
fn suggestion(text: &str) -> String {
    if text.is_empty() || text.contains('/') {
        return String::new();
    }
    let tail = format!("/{}", text.to_ascii_lowercase());
    let mut names: Vec<String> = jiff::tz::db()
        .available()
        .map(|n| n.as_str().to_owned())
        .filter(|n| n.to_ascii_lowercase().ends_with(&tail))
        .collect();
    names.sort();
    names.truncate(3);
    if names.is_empty() {
        String::new()
    } else {
        format!("; did you mean {}?", names.join(" or "))
    }
}
