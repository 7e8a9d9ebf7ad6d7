//! One retry policy for every outbound call: bounded attempts, jittered
//! exponential backoff, `Retry-After` honoured up to a cap, and a verdict the
//! caller gives for each failed attempt.
//!
//! The caller knows what a failure means; the policy only knows what to do
//! about it. Each failed attempt is one of:
//! - [`Verdict::Retry`]: safe to send again — an idempotent read, or a write
//!   that certainly did not happen (the connection was never made, or the
//!   server refused it before reading it, as a `429` does);
//! - [`Verdict::RetryAfter`]: the same, after the wait the server asked for;
//! - [`Verdict::Fail`]: final, the answer will not change;
//! - [`Verdict::Unknown`]: a write whose outcome is unknown (it timed out, the
//!   connection dropped after it was sent, a `5xx` came back). It is never
//!   sent again blindly: the call fails, and a caller that can read the state
//!   back (the Deployment patch) does so before deciding.
//!
//! What each adapter treats as which (`docs/retries.md` has the wire facts):
//!
//! | adapter | retry | fail | unknown |
//! |---|---|---|---|
//! | GitHub | any call: `429`, `403` with `Retry-After` or `X-RateLimit-Remaining: 0`, connection not made; `GET`: also timeouts, dropped connections, `5xx` | other answers | `POST`, `PUT`, `PATCH`, `DELETE`: timeouts, dropped connections, `5xx` |
//! | registry (reads only) | `429`, `5xx`, timeouts, refused or dropped connections | a request that cannot be built; other answers go to the caller | — |
//! | Kubernetes | any verb: `429`, connection not made; get/list: also timeouts, transport errors, `500`/`502`/`503`/`504` | other statuses | patch/delete/create: timeouts, dropped connections, `500`/`502`/`503`/`504` (the Deployment patch reads the object back) |
//! | Slack | `429`, connection not made | `ok: false` answers, other statuses, unreadable answers | timeouts, dropped connections, `5xx` |
//! | Discord | `429` (when serenity's ratelimiter is off), connection not made; a `404` editing an interaction's original response | other answers | timeouts, dropped connections, `5xx` |
//!
//! Conflict loops (a `409` from the contents API or a Deployment patch, a
//! rejected `git push`) are not retries of the same request: they read the
//! state again and re-apply the change, and stay with their adapters. So do
//! the Socket Mode and gateway reconnects, and the reopening of a watch,
//! which last as long as the connection or the rollout is wanted.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// How hard one call tries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// Attempts in all, the first included (0 counts as 1). Default: 3.
    pub attempts: u32,
    /// Ceiling of the wait before the second attempt, doubled before each
    /// later one; the wait itself is between half the ceiling and all of it.
    /// Default: 250 ms.
    pub base_delay: Duration,
    /// Largest ceiling. Default: 10 s.
    pub max_delay: Duration,
    /// Longest `Retry-After` waited for; a longer one fails at once. Default: 30 s.
    pub max_retry_after: Duration,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            attempts: 3,
            base_delay: Duration::from_millis(250),
            max_delay: Duration::from_secs(10),
            max_retry_after: Duration::from_secs(30),
        }
    }
}

/// What one failed attempt means, as the caller judges it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict<E> {
    /// Safe to send again, after the backoff.
    Retry(E),
    /// Safe to send again after this wait, which the server asked for.
    RetryAfter(E, Duration),
    /// Final.
    Fail(E),
    /// A write that may or may not have happened; never sent again.
    Unknown(E),
}

impl<E> Verdict<E> {
    /// The error it carries.
    pub fn into_error(self) -> E {
        match self {
            Verdict::Retry(e)
            | Verdict::RetryAfter(e, _)
            | Verdict::Fail(e)
            | Verdict::Unknown(e) => e,
        }
    }
}

/// Why the policy stopped trying.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// The caller said the failure is final.
    Failed,
    /// A write whose outcome is unknown.
    OutcomeUnknown,
    /// Every attempt failed.
    Exhausted,
    /// The server asked for a longer wait than the policy allows.
    WaitTooLong(Duration),
}

/// A call that did not succeed: the last attempt's error, why the policy
/// stopped, and how many attempts were made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GaveUp<E> {
    /// The error of the last attempt.
    pub error: E,
    /// Why there was no further attempt.
    pub stop: Stop,
    /// Attempts made.
    pub attempts: u32,
}

/// What to do after a failed attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// Wait this long, then try again.
    Wait(Duration),
    /// Stop.
    Stop(Stop),
}

impl Policy {
    /// The ceiling of the wait before attempt `retry + 1` (`retry` ≥ 1).
    pub fn ceiling(&self, retry: u32) -> Duration {
        let factor = 2u32
            .checked_pow(retry.saturating_sub(1))
            .unwrap_or(u32::MAX);
        self.base_delay.saturating_mul(factor).min(self.max_delay)
    }

    /// The wait before attempt `retry + 1`: between half the ceiling and all
    /// of it, placed by `jitter` (any number; equal jitter).
    pub fn backoff(&self, retry: u32, jitter: u64) -> Duration {
        let ceiling = self.ceiling(retry);
        let floor = ceiling / 2;
        let span = u64::try_from((ceiling - floor).as_nanos()).unwrap_or(u64::MAX);
        floor + Duration::from_nanos(jitter % span.saturating_add(1))
    }

    /// [`Policy::backoff`] with fresh jitter.
    pub fn delay(&self, retry: u32) -> Duration {
        self.backoff(retry, jitter())
    }

    /// What to do after attempt `attempt` (1 for the first) failed as `verdict` says.
    pub fn decide<E>(&self, attempt: u32, verdict: &Verdict<E>, jitter: u64) -> Next {
        match verdict {
            Verdict::Fail(_) => Next::Stop(Stop::Failed),
            Verdict::Unknown(_) => Next::Stop(Stop::OutcomeUnknown),
            Verdict::RetryAfter(_, wait) if *wait > self.max_retry_after => {
                Next::Stop(Stop::WaitTooLong(*wait))
            }
            _ if attempt >= self.attempts.max(1) => Next::Stop(Stop::Exhausted),
            Verdict::RetryAfter(_, wait) => Next::Wait(*wait),
            Verdict::Retry(_) => Next::Wait(self.backoff(attempt, jitter)),
        }
    }

    /// Runs `call` until it succeeds or the policy stops, sleeping between
    /// attempts.
    pub async fn run<T, E, F, Fut>(&self, call: F) -> Result<T, GaveUp<E>>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Result<T, Verdict<E>>>,
    {
        let mut attempt = 1;
        loop {
            let verdict = match call().await {
                Ok(value) => return Ok(value),
                Err(verdict) => verdict,
            };
            match self.decide(attempt, &verdict, jitter()) {
                Next::Wait(wait) => {
                    tracing::debug!(
                        attempt,
                        wait_ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX),
                        "retrying an outbound call"
                    );
                    tokio::time::sleep(wait).await;
                    attempt += 1;
                }
                Next::Stop(stop) => {
                    return Err(GaveUp {
                        error: verdict.into_error(),
                        stop,
                        attempts: attempt,
                    })
                }
            }
        }
    }
}

/// A fresh number for the backoff's jitter: xorshift64* over a shared state
/// stirred with the clock. Not for anything secret.
fn jitter() -> u64 {
    static STATE: AtomicU64 = AtomicU64::new(0x2545_F491_4F6C_DD1D);
    let clock = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::from(d.subsec_nanos()));
    let mut x = STATE.fetch_add(0x9E37_79B9_7F4A_7C15, Ordering::Relaxed) ^ clock;
    if x == 0 {
        x = 0x9E37_79B9_7F4A_7C15;
    }
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    x.wrapping_mul(0x2545_F491_4F6C_DD1D)
}

/// The wait a `Retry-After` header in `headers` asks for, now.
pub fn retry_after(headers: &http::HeaderMap) -> Option<Duration> {
    let value = headers.get(http::header::RETRY_AFTER)?.to_str().ok()?;
    parse_retry_after(value, SystemTime::now())
}

/// The wait a `Retry-After` value asks for at `now`: delta-seconds, or an
/// HTTP-date (IMF-fixdate, RFC 850 or asctime form) rounded up to whole
/// seconds, a date in the past being no wait. `None` for anything else.
/// Seconds too many to count are the longest wait there is.
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        return Some(Duration::from_secs(value.parse().unwrap_or(u64::MAX)));
    }
    let at = UNIX_EPOCH.checked_add(Duration::from_secs(http_date(value)?))?;
    let wait = at.duration_since(now).unwrap_or(Duration::ZERO);
    let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    Some(Duration::from_secs(seconds))
}

/// Seconds since the epoch of an HTTP-date (RFC 9110 §5.6.7); dates before
/// 1970 are the epoch.
fn http_date(text: &str) -> Option<u64> {
    let parts: Vec<&str> = text.split_whitespace().collect();
    let (day, month, year, time) = match parts.as_slice() {
        // Sun, 06 Nov 1994 08:49:37 GMT
        [weekday, day, month, year, time, "GMT"] if weekday.ends_with(',') => {
            (*day, *month, year4(year)?, *time)
        }
        // Sunday, 06-Nov-94 08:49:37 GMT
        [weekday, date, time, "GMT"] if weekday.ends_with(',') => {
            let mut fields = date.split('-');
            let (day, month, year) = (fields.next()?, fields.next()?, fields.next()?);
            if fields.next().is_some() || year.len() != 2 {
                return None;
            }
            let yy: i64 = number(year)?;
            (
                day,
                month,
                if yy < 70 { 2000 + yy } else { 1900 + yy },
                *time,
            )
        }
        // Sun Nov  6 08:49:37 1994
        [_weekday, month, day, time, year] => (*day, *month, year4(year)?, *time),
        _ => return None,
    };
    let day: i64 = number(day).filter(|d| (1..=31).contains(d))?;
    let month = MONTHS.iter().position(|m| *m == month)?;
    let mut clock = time.split(':');
    let (h, m, s) = (clock.next()?, clock.next()?, clock.next()?);
    if clock.next().is_some() || [h, m, s].iter().any(|f| f.len() != 2) {
        return None;
    }
    let (h, m, s): (i64, i64, i64) = (number(h)?, number(m)?, number(s)?);
    if h > 23 || m > 59 || s > 60 {
        return None;
    }
    let days = days_from_civil(year, i64::try_from(month).ok()? + 1, day);
    let seconds = days * 86_400 + h * 3600 + m * 60 + s;
    Some(u64::try_from(seconds).unwrap_or(0))
}

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// Digits only (no sign), at most four of them.
fn number(text: &str) -> Option<i64> {
    let digits = !text.is_empty() && text.len() <= 4 && text.bytes().all(|b| b.is_ascii_digit());
    digits.then(|| text.parse().ok()).flatten()
}

fn year4(text: &str) -> Option<i64> {
    (text.len() == 4).then(|| number(text)).flatten()
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's
/// `days_from_civil`).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let month_from_march = if month > 2 { month - 3 } else { month + 9 };
    let day_of_year = (153 * month_from_march + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// Whether a transport error happened before the request left: the
/// connection (or its TLS handshake) was never made, so nothing was sent.
pub fn never_sent(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut cause = Some(error);
    while let Some(e) = cause {
        if let Some(e) = e.downcast_ref::<hyper_util::client::legacy::Error>() {
            if e.is_connect() {
                return true;
            }
        }
        if let Some(e) = e.downcast_ref::<reqwest::Error>() {
            if e.is_connect() {
                return true;
            }
        }
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            if io.kind() == std::io::ErrorKind::ConnectionRefused {
                return true;
            }
            // An io::Error's `source` skips the error it wraps.
            if let Some(inner) = io.get_ref() {
                cause = Some(inner);
                continue;
            }
        }
        cause = e.source();
    }
    false
}

#[cfg(test)]
mod tests;
