//! One GitHub REST call through octocrab, with Gantry's retry rules.
//!
//! Every call has a timeout. `429`, and `403` with `Retry-After` or an
//! exhausted `X-RateLimit-Remaining` (GitHub's secondary and primary rate
//! limits), are retried after the wait GitHub asks for, when that wait is
//! short enough; `5xx` and transport failures are retried with backoff for
//! calls that are safe to repeat. After the last attempt the caller gets a
//! typed [`PortError`] naming what GitHub said, never a guess.

use std::time::Duration;

use http::{HeaderMap, Method, StatusCode};
use octocrab::Octocrab;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::auth::Auth;
use crate::engine::ports::PortError;

/// How hard one call tries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included.
    pub attempts: u32,
    /// Wait before the second attempt after a 5xx; doubled each time.
    pub backoff: Duration,
    /// Longest `Retry-After` Gantry waits for; a longer one fails at once.
    pub max_wait: Duration,
    /// Limit for one attempt.
    pub timeout: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            attempts: 4,
            backoff: Duration::from_millis(500),
            max_wait: Duration::from_secs(60),
            timeout: Duration::from_secs(30),
        }
    }
}

/// A successful answer: status and body.
#[derive(Debug, Clone)]
pub(crate) struct Answer {
    pub status: StatusCode,
    pub body: String,
}

impl Answer {
    /// The body as JSON of type `T`.
    pub fn json<T: DeserializeOwned>(&self, what: &str) -> Result<T, PortError> {
        serde_json::from_str(&self.body).map_err(|e| {
            PortError::Unavailable(format!("GitHub answered {what} with unexpected JSON: {e}"))
        })
    }
}

/// Why one attempt did not succeed, and whether another may.
enum Attempt {
    /// Final: the error to report.
    Fail(PortError),
    /// Worth another attempt after `wait` (`None` = the backoff).
    Retry(PortError, Option<Duration>),
}

/// The REST API behind the adapter.
pub(crate) struct Api {
    auth: Auth,
    policy: RetryPolicy,
}

impl Api {
    pub fn new(auth: Auth, policy: RetryPolicy) -> Api {
        Api { auth, policy }
    }

    pub fn with_policy(self, policy: RetryPolicy) -> Api {
        Api { policy, ..self }
    }

    /// `GET path` for `repo` (whose installation token is used with App auth).
    pub async fn get(&self, repo: &str, path: &str) -> Result<Answer, PortError> {
        self.send(repo, Method::GET, path, None).await
    }

    /// Sends one call; `repo` picks the credentials. Paths are relative so
    /// that octocrab adds the base URL and the credentials.
    pub async fn send(
        &self,
        repo: &str,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Answer, PortError> {
        let crab = self.auth.client_for(repo, self).await?;
        self.send_with(&crab, method, path, body).await
    }

    /// Sends one call with a given client (the App's own JWT client, for
    /// looking up installations).
    pub async fn send_with(
        &self,
        crab: &Octocrab,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Answer, PortError> {
        // A POST that failed with a 5xx may have been carried out; only
        // rate limits (which GitHub documents as not processed) repeat it.
        let repeatable = method != Method::POST;
        let mut backoff = self.policy.backoff;
        let mut last = PortError::Unavailable("no attempt was made".into());
        for attempt in 1..=self.policy.attempts.max(1) {
            match self.once(crab, &method, path, body).await {
                Ok(answer) => return Ok(answer),
                Err(Attempt::Fail(e)) => return Err(e),
                Err(Attempt::Retry(e, wait)) => {
                    let rate_limited = wait.is_some();
                    last = e;
                    if (!repeatable && !rate_limited) || attempt == self.policy.attempts {
                        break;
                    }
                    let pause = wait.unwrap_or(backoff);
                    if pause > self.policy.max_wait {
                        break;
                    }
                    tokio::time::sleep(pause).await;
                    if !rate_limited {
                        backoff = backoff.saturating_mul(2);
                    }
                }
            }
        }
        Err(match last {
            PortError::Unavailable(why) => PortError::Unavailable(format!(
                "{why} (gave up after {} attempts)",
                self.policy.attempts
            )),
            other => other,
        })
    }

    async fn once(
        &self,
        crab: &Octocrab,
        method: &Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Answer, Attempt> {
        let call = async {
            match *method {
                Method::GET => crab._get(path).await,
                Method::POST => crab._post(path, body).await,
                Method::PATCH => crab._patch(path, body).await,
                Method::PUT => crab._put(path, body).await,
                Method::DELETE => crab._delete(path, body).await,
                _ => crab._get(path).await,
            }
        };
        let what = format!("{method} {}", path_only(path));
        let response = match tokio::time::timeout(self.policy.timeout, call).await {
            Err(_) => {
                return Err(Attempt::Retry(
                    PortError::Timeout(format!("GitHub did not answer {what} in time")),
                    None,
                ))
            }
            Ok(Err(e)) => {
                return Err(Attempt::Retry(
                    PortError::Unavailable(format!("cannot reach GitHub for {what}: {e}")),
                    None,
                ))
            }
            Ok(Ok(response)) => response,
        };
        let status = response.status();
        let headers = response.headers().clone();
        let text =
            match tokio::time::timeout(self.policy.timeout, crab.body_to_string(response)).await {
                Ok(Ok(text)) => text,
                Ok(Err(e)) => {
                    return Err(Attempt::Retry(
                        PortError::Unavailable(format!("GitHub's answer to {what} broke off: {e}")),
                        None,
                    ))
                }
                Err(_) => {
                    return Err(Attempt::Retry(
                        PortError::Timeout(format!("GitHub's answer to {what} stalled")),
                        None,
                    ))
                }
            };
        if status.is_success() {
            return Ok(Answer { status, body: text });
        }
        Err(classify(status, &headers, text.as_bytes(), &what))
    }
}

/// The path without its query, for messages.
fn path_only(path: &str) -> &str {
    path.split('?').next().unwrap_or(path)
}

/// GitHub's `message` field, or a short form of the body.
fn message(body: &[u8]) -> String {
    let text = serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|v| v.get("message").and_then(Value::as_str).map(str::to_owned))
        .unwrap_or_else(|| String::from_utf8_lossy(body).chars().take(200).collect());
    text.trim().to_owned()
}

/// The wait a rate-limited answer asks for, if it is one.
pub(crate) fn rate_limit_wait(status: StatusCode, headers: &HeaderMap) -> Option<Duration> {
    if status != StatusCode::TOO_MANY_REQUESTS && status != StatusCode::FORBIDDEN {
        return None;
    }
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    if let Some(seconds) = header("retry-after").and_then(|v| v.trim().parse::<u64>().ok()) {
        return Some(Duration::from_secs(seconds));
    }
    if header("x-ratelimit-remaining") == Some("0") {
        let reset = header("x-ratelimit-reset").and_then(|v| v.parse::<u64>().ok())?;
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        return Some(Duration::from_secs(reset.saturating_sub(now)));
    }
    (status == StatusCode::TOO_MANY_REQUESTS).then_some(Duration::from_secs(60))
}

fn classify(status: StatusCode, headers: &HeaderMap, body: &[u8], what: &str) -> Attempt {
    let said = message(body);
    if let Some(wait) = rate_limit_wait(status, headers) {
        return Attempt::Retry(PortError::RateLimited { retry_after: wait }, Some(wait));
    }
    let error = match status.as_u16() {
        401 => {
            PortError::Unauthorised(format!("GitHub refused the credentials for {what}: {said}"))
        }
        403 => PortError::Unauthorised(format!("GitHub forbids {what}: {said}")),
        404 => PortError::NotFound(format!("{what}: {said}")),
        409 => PortError::Conflict(format!("{what}: {said}")),
        422 => PortError::Invalid(format!("{what}: {said}")),
        500..=599 => {
            return Attempt::Retry(
                PortError::Unavailable(format!("GitHub answered {status} to {what}: {said}")),
                None,
            )
        }
        _ => PortError::Unavailable(format!("GitHub answered {status} to {what}: {said}")),
    };
    Attempt::Fail(error)
}

/// Percent-encodes one path segment (a branch name inside a query, a file name).
pub(crate) fn encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Encodes a file path, keeping its `/` separators.
pub(crate) fn encode_path(path: &str) -> String {
    path.split('/').map(encode).collect::<Vec<_>>().join("/")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_limits_are_read_from_the_documented_headers() {
        let mut h = HeaderMap::new();
        assert_eq!(rate_limit_wait(StatusCode::FORBIDDEN, &h), None);
        h.insert("retry-after", "7".parse().unwrap());
        assert_eq!(
            rate_limit_wait(StatusCode::FORBIDDEN, &h),
            Some(Duration::from_secs(7))
        );
        assert_eq!(rate_limit_wait(StatusCode::NOT_FOUND, &h), None);
        let mut primary = HeaderMap::new();
        primary.insert("x-ratelimit-remaining", "0".parse().unwrap());
        primary.insert("x-ratelimit-reset", "1".parse().unwrap());
        assert_eq!(
            rate_limit_wait(StatusCode::FORBIDDEN, &primary),
            Some(Duration::ZERO)
        );
    }

    #[test]
    fn segments_are_encoded() {
        assert_eq!(encode("feat/x y"), "feat%2Fx%20y");
        assert_eq!(
            encode_path("envs/dev/kustomization.yaml"),
            "envs/dev/kustomization.yaml"
        );
    }
}
