//! One GitHub REST call through octocrab, with Gantry's retry policy.
//!
//! Every call has a timeout. `429`, and `403` with `Retry-After` or an
//! exhausted `X-RateLimit-Remaining` (GitHub's secondary and primary rate
//! limits), are retried after the wait GitHub asks for, when that wait is
//! short enough; GitHub documents rate-limited requests as not processed.
//! A connection that was never made is retried for every method. Timeouts,
//! dropped connections and `5xx` are retried for `GET` only: a write that
//! met one may have been carried out, so it is not sent again. After the
//! last attempt the caller gets a typed [`PortError`] naming what GitHub
//! said, never a guess. The rules are in [`crate::adapters::retry`].

use std::time::Duration;

use http::{HeaderMap, Method, StatusCode};
use octocrab::Octocrab;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::auth::Auth;
use crate::adapters::retry::{self, GaveUp, Policy, Stop, Verdict};
use crate::engine::ports::PortError;

/// How hard one call tries: GitHub's settings for the shared
/// [`Policy`](crate::adapters::retry::Policy), plus a timeout per attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included.
    pub attempts: u32,
    /// Ceiling of the jittered wait before the second attempt; doubled each time.
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

impl RetryPolicy {
    /// The shared policy these settings stand for.
    fn policy(&self) -> Policy {
        Policy {
            attempts: self.attempts,
            base_delay: self.backoff,
            max_retry_after: self.max_wait,
            ..Policy::default()
        }
    }
}

impl Answer {
    /// The body as JSON of type `T`.
    pub fn json<T: DeserializeOwned>(&self, what: &str) -> Result<T, PortError> {
        serde_json::from_str(&self.body).map_err(|e| {
            PortError::Unavailable(format!("GitHub answered {what} with unexpected JSON: {e}"))
        })
    }
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
        let write = method != Method::GET;
        let method = &method;
        self.policy
            .policy()
            .run(|| self.once(crab, method, path, body, write))
            .await
            .map_err(gave_up)
    }

    async fn once(
        &self,
        crab: &Octocrab,
        method: &Method,
        path: &str,
        body: Option<&Value>,
        write: bool,
    ) -> Result<Answer, Verdict<PortError>> {
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
        // A read is safe to repeat; a write only when it never left.
        let lost = |e: PortError| {
            if write {
                Verdict::Unknown(e)
            } else {
                Verdict::Retry(e)
            }
        };
        let response = match tokio::time::timeout(self.policy.timeout, call).await {
            Err(_) => {
                return Err(lost(PortError::Timeout(format!(
                    "GitHub did not answer {what} in time"
                ))))
            }
            Ok(Err(e)) => {
                let error = PortError::Unavailable(format!("cannot reach GitHub for {what}: {e}"));
                return Err(if retry::never_sent(&e) {
                    Verdict::Retry(error)
                } else {
                    lost(error)
                });
            }
            Ok(Ok(response)) => response,
        };
        let status = response.status();
        let headers = response.headers().clone();
        let text =
            match tokio::time::timeout(self.policy.timeout, crab.body_to_string(response)).await {
                Ok(Ok(text)) => text,
                Ok(Err(e)) => {
                    return Err(lost(PortError::Unavailable(format!(
                        "GitHub's answer to {what} broke off: {e}"
                    ))))
                }
                Err(_) => {
                    return Err(lost(PortError::Timeout(format!(
                        "GitHub's answer to {what} stalled"
                    ))))
                }
            };
        if status.is_success() {
            return Ok(Answer { status, body: text });
        }
        Err(classify(status, &headers, text.as_bytes(), &what, write))
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
    if let Some(wait) = retry::retry_after(headers) {
        return Some(wait);
    }
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    if header("x-ratelimit-remaining") == Some("0") {
        let reset = header("x-ratelimit-reset").and_then(|v| v.parse::<u64>().ok())?;
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        return Some(Duration::from_secs(reset.saturating_sub(now)));
    }
    (status == StatusCode::TOO_MANY_REQUESTS).then_some(Duration::from_secs(60))
}

/// What a failed answer means: rate limits are retried after their wait,
/// a `5xx` is retried for a read and unknown for a write, the rest is final.
fn classify(
    status: StatusCode,
    headers: &HeaderMap,
    body: &[u8],
    what: &str,
    write: bool,
) -> Verdict<PortError> {
    let said = message(body);
    if let Some(wait) = rate_limit_wait(status, headers) {
        return Verdict::RetryAfter(PortError::RateLimited { retry_after: wait }, wait);
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
            let error =
                PortError::Unavailable(format!("GitHub answered {status} to {what}: {said}"));
            return if write {
                Verdict::Unknown(error)
            } else {
                Verdict::Retry(error)
            };
        }
        _ => PortError::Unavailable(format!("GitHub answered {status} to {what}: {said}")),
    };
    Verdict::Fail(error)
}

/// The error for a call the policy gave up on, saying why it stopped.
fn gave_up(g: GaveUp<PortError>) -> PortError {
    let note = match g.stop {
        Stop::Exhausted => format!("gave up after {} attempts", g.attempts),
        Stop::OutcomeUnknown => "not repeated: it may have been carried out".to_owned(),
        Stop::Failed | Stop::WaitTooLong(_) => return g.error,
    };
    match g.error {
        PortError::Unavailable(why) => PortError::Unavailable(format!("{why} ({note})")),
        PortError::Timeout(why) => PortError::Timeout(format!("{why} ({note})")),
        other => other,
    }
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
    fn answers_are_classified_by_method() {
        let none = HeaderMap::new();
        let mut limited = HeaderMap::new();
        limited.insert("retry-after", "7".parse().unwrap());
        let seven = Duration::from_secs(7);
        let class = |status: u16, headers: &HeaderMap, write: bool| {
            let status = StatusCode::from_u16(status).unwrap();
            match classify(status, headers, b"{}", "GET /x", write) {
                Verdict::Retry(_) => "retry".to_owned(),
                Verdict::RetryAfter(_, wait) => format!("retry after {}s", wait.as_secs()),
                Verdict::Fail(_) => "fail".to_owned(),
                Verdict::Unknown(_) => "unknown".to_owned(),
            }
        };
        let cases = [
            (502, &none, false, "retry"),
            (502, &none, true, "unknown"),
            (500, &none, true, "unknown"),
            (429, &limited, true, "retry after 7s"),
            (403, &limited, true, "retry after 7s"),
            (403, &none, false, "fail"),
            (404, &none, false, "fail"),
            (409, &none, true, "fail"),
            (422, &none, true, "fail"),
        ];
        for (status, headers, write, expected) in cases {
            assert_eq!(class(status, headers, write), expected, "{status} {write}");
        }
        assert_eq!(
            seven,
            rate_limit_wait(StatusCode::FORBIDDEN, &limited).unwrap()
        );
    }

    fn quick() -> RetryPolicy {
        RetryPolicy {
            attempts: 3,
            backoff: Duration::from_millis(1),
            max_wait: Duration::from_secs(1),
            timeout: Duration::from_secs(5),
        }
    }

    #[tokio::test]
    async fn a_write_that_met_a_server_error_is_sent_once() {
        use crate::sandbox::github::{FakeFault, FakeGithub};
        let fake = FakeGithub::start("t").await.unwrap();
        let forge = super::super::GithubForge::for_url(&fake.url(), "t")
            .unwrap()
            .with_retry(quick());
        let api = forge.api();
        let path = "/repos/acme/web/git/refs/heads/main";
        fake.fault(path, 5, FakeFault::Status(502));
        let body = serde_json::json!({ "sha": "0".repeat(40) });
        let err = api
            .send("acme/web", Method::PATCH, path, Some(&body))
            .await
            .unwrap_err();
        assert!(
            matches!(&err, PortError::Unavailable(why) if why.contains("not repeated")),
            "{err}"
        );
        assert_eq!(fake.requests().len(), 1);
        // A read is repeated, up to the attempts.
        let err = api.get("acme/web", path).await.unwrap_err();
        assert!(
            matches!(&err, PortError::Unavailable(why) if why.contains("after 3 attempts")),
            "{err}"
        );
        assert_eq!(fake.requests().len(), 4);
    }

    #[tokio::test]
    async fn a_write_that_never_left_is_sent_again() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        drop(listener);
        let forge = super::super::GithubForge::for_url(&url, "t")
            .unwrap()
            .with_retry(quick());
        let err = forge
            .api()
            .send(
                "acme/web",
                Method::POST,
                "/repos/acme/web/issues/7/comments",
                None,
            )
            .await
            .unwrap_err();
        assert!(
            matches!(&err, PortError::Unavailable(why) if why.contains("after 3 attempts")),
            "{err}"
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
