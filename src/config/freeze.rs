//! Freeze windows: fixed date ranges and weekly UTC windows. Pure; the caller
//! passes the time in as Unix seconds.

use std::fmt;

use crate::names::escape_for_display;

const DAY: i64 = 86_400;

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

    /// The weekday of a Unix time, in UTC (1970-01-01 was a Thursday).
    pub fn of_unix(unix_seconds: i64) -> Weekday {
        let index = (unix_seconds.div_euclid(DAY) + 3).rem_euclid(7);
        WEEK[index as usize].0
    }

    /// The three-letter lowercase name.
    pub fn as_str(self) -> &'static str {
        WEEK[self as usize].1
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
    /// On the given days, from minute `from` to minute `to` of the UTC day.
    Weekly {
        /// The days the window applies on.
        days: Vec<Weekday>,
        /// Start, minutes after 00:00 UTC (inclusive).
        from: u32,
        /// End, minutes after 00:00 UTC (exclusive, at most 24:00).
        to: u32,
    },
}

/// A period in which deploys to an environment need break-glass.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FreezeWindow {
    schedule: FreezeSchedule,
    reason: String,
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
    pub fn fixed(start: &str, end: &str, reason: &str) -> Result<FreezeWindow, FreezeError> {
        let bad = |field, text: &str| {
            fail(
                field,
                format!(
                    "`{}` is not an RFC 3339 time such as 2026-12-20T00:00:00Z",
                    escape_for_display(text)
                ),
            )
        };
        let s = parse_rfc3339(start).ok_or_else(|| bad("start", start))?;
        let e = parse_rfc3339(end).ok_or_else(|| bad("end", end))?;
        if e <= s {
            return Err(fail(
                "end",
                format!("freeze ends ({end}) before or when it starts ({start})"),
            ));
        }
        Ok(FreezeWindow {
            schedule: FreezeSchedule::Fixed { start: s, end: e },
            reason: reason.to_owned(),
        })
    }

    /// A weekly window on `days`, between `from` and `to` (`HH:MM`, UTC).
    pub fn weekly(
        days: &[String],
        from: &str,
        to: &str,
        reason: &str,
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
        })
    }

    /// Whether the window covers the instant `unix_seconds`.
    pub fn active_at(&self, unix_seconds: i64) -> bool {
        match &self.schedule {
            FreezeSchedule::Fixed { start, end } => *start <= unix_seconds && unix_seconds < *end,
            FreezeSchedule::Weekly { days, from, to } => {
                let minute = unix_seconds.rem_euclid(DAY) / 60;
                days.contains(&Weekday::of_unix(unix_seconds))
                    && i64::from(*from) <= minute
                    && minute < i64::from(*to)
            }
        }
    }

    /// Why the freeze exists, as config states it.
    pub fn reason(&self) -> &str {
        &self.reason
    }

    /// When the freeze applies.
    pub fn schedule(&self) -> &FreezeSchedule {
        &self.schedule
    }
}

impl fmt::Display for FreezeWindow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.schedule {
            FreezeSchedule::Fixed { start, end } => {
                write!(f, "{} to {}", format_unix(*start), format_unix(*end))?
            }
            FreezeSchedule::Weekly { days, from, to } => {
                let names: Vec<&str> = days.iter().map(|d| d.as_str()).collect();
                write!(
                    f,
                    "{} {:02}:{:02}-{:02}:{:02} UTC",
                    names.join(","),
                    from / 60,
                    from % 60,
                    to / 60,
                    to % 60
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

fn digits(text: &str, range: std::ops::Range<usize>) -> Option<i64> {
    let part = text.get(range)?;
    part.bytes()
        .all(|b| b.is_ascii_digit())
        .then(|| part.parse().ok())
        .flatten()
}

/// Days from 1970-01-01 to the civil date (proleptic Gregorian).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

fn format_unix(t: i64) -> String {
    let (y, m, d) = civil_from_days(t.div_euclid(DAY));
    let s = t.rem_euclid(DAY);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        s / 3600,
        s / 60 % 60,
        s % 60
    )
}

/// Parses `YYYY-MM-DDTHH:MM:SS[.frac](Z|±HH:MM)` into Unix seconds.
fn parse_rfc3339(text: &str) -> Option<i64> {
    let b = text.as_bytes();
    if b.len() < 20
        || b[4] != b'-'
        || b[7] != b'-'
        || !matches!(b[10], b'T' | b't' | b' ')
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    let (year, month, day) = (
        digits(text, 0..4)?,
        digits(text, 5..7)?,
        digits(text, 8..10)?,
    );
    let (hour, minute, second) = (
        digits(text, 11..13)?,
        digits(text, 14..16)?,
        digits(text, 17..19)?,
    );
    let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
    let month_days = [
        31,
        if leap { 29 } else { 28 },
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ];
    let max_day = *month_days.get(usize::try_from(month).ok()?.checked_sub(1)?)?;
    if day < 1 || day > max_day || hour > 23 || minute > 59 || second > 59 {
        return None;
    }
    let mut rest = &text[19..];
    if let Some(frac) = rest.strip_prefix('.') {
        let n = frac.bytes().take_while(u8::is_ascii_digit).count();
        if n == 0 {
            return None;
        }
        rest = &frac[n..];
    }
    let offset = match rest {
        "Z" | "z" => 0,
        _ => {
            let sign = match rest.as_bytes().first()? {
                b'+' => 1,
                b'-' => -1,
                _ => return None,
            };
            if rest.len() != 6 || rest.as_bytes()[3] != b':' {
                return None;
            }
            let (oh, om) = (digits(rest, 1..3)?, digits(rest, 4..6)?);
            if oh > 23 || om > 59 {
                return None;
            }
            sign * (oh * 3600 + om * 60)
        }
    };
    let days = days_from_civil(year, month, day);
    Some(days * DAY + hour * 3600 + minute * 60 + second - offset)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_table() {
        let cases = [
            ("1970-01-01T00:00:00Z", Some(0)),
            ("2026-12-20T00:00:00Z", Some(1_797_724_800)),
            ("2026-12-20T01:00:00+01:00", Some(1_797_724_800)),
            ("2026-12-19T19:00:00-05:00", Some(1_797_724_800)),
            ("2026-12-20 00:00:00.250Z", Some(1_797_724_800)),
            ("2024-02-29T00:00:00Z", Some(1_709_164_800)),
            ("1969-12-31T23:59:59Z", Some(-1)),
            ("2023-02-29T00:00:00Z", None),
            ("2026-12-20T00:00:00", None),
            ("2026-12-20", None),
            ("2026-13-01T00:00:00Z", None),
            ("2026-12-20T24:00:00Z", None),
            ("2026-12-20T00:00:00.Z", None),
            ("2026-12-20T00:00:00+1:00", None),
            ("２026-12-20T00:00:00Z", None),
            ("", None),
        ];
        for (text, want) in cases {
            assert_eq!(parse_rfc3339(text), want, "{text}");
        }
        for t in [0, -1, 1_797_724_800, 4_102_444_799] {
            assert_eq!(parse_rfc3339(&format_unix(t)), Some(t));
        }
    }

    #[test]
    fn weekdays_from_unix_time() {
        assert_eq!(Weekday::of_unix(0), Weekday::Thu);
        assert_eq!(Weekday::of_unix(-1), Weekday::Wed);
        assert_eq!(Weekday::of_unix(1_797_724_800), Weekday::Sun); // 2026-12-20
        assert_eq!(Weekday::of_unix(1_797_724_800 - 2 * DAY), Weekday::Fri);
    }

    #[test]
    fn fixed_window_bounds() {
        let w = FreezeWindow::fixed("2026-12-20T00:00:00Z", "2027-01-04T00:00:00Z", "eoy").unwrap();
        assert!(!w.active_at(1_797_724_799));
        assert!(w.active_at(1_797_724_800));
        assert!(!w.active_at(1_797_724_800 + 15 * DAY));
        assert_eq!(
            w.to_string(),
            "2026-12-20T00:00:00Z to 2027-01-04T00:00:00Z (eoy)"
        );
        let err =
            FreezeWindow::fixed("2027-01-04T00:00:00Z", "2026-12-20T00:00:00Z", "x").unwrap_err();
        assert_eq!(err.field, "end");
        assert_eq!(
            FreezeWindow::fixed("soon", "2026-12-20T00:00:00Z", "x")
                .unwrap_err()
                .field,
            "start"
        );
    }

    #[test]
    fn weekly_window_bounds() {
        let fri = 1_797_724_800 - 2 * DAY;
        let w = FreezeWindow::weekly(&["fri".into()], "15:00", "24:00", "weekend").unwrap();
        let cases = [
            (fri, false),
            (fri + 15 * 3600 - 1, false),
            (fri + 15 * 3600, true),
            (fri + DAY - 1, true),
            (fri + DAY, false),
            (fri + 7 * DAY + 16 * 3600, true),
            (fri - 7 * DAY + 16 * 3600, true),
        ];
        for (t, want) in cases {
            assert_eq!(w.active_at(t), want, "{t}");
        }
        assert_eq!(w.to_string(), "fri 15:00-24:00 UTC (weekend)");
        let bad = [
            (vec![], "09:00", "10:00", "days"),
            (
                vec!["fri".to_string(), "funday".into()],
                "09:00",
                "10:00",
                "days",
            ),
            (vec!["Fri".into()], "09:00", "10:00", "days"),
            (vec!["mon".into()], "9:00", "10:00", "from"),
            (vec!["mon".into()], "09:00", "24:01", "to"),
            (vec!["mon".into()], "09:60", "10:00", "from"),
            (vec!["mon".into()], "10:00", "09:00", "to"),
            (vec!["mon".into()], "10:00", "10:00", "to"),
        ];
        for (days, from, to, field) in bad {
            let err = FreezeWindow::weekly(&days, from, to, "r").unwrap_err();
            assert_eq!(err.field, field, "{days:?} {from} {to}: {err}");
        }
    }
}
