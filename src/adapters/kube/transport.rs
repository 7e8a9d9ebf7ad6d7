//! One Kubernetes API call: a timeout, retries under the shared
//! [`Policy`](crate::adapters::retry::Policy), and the mapping of the API
//! server's answers to [`PortError`].
//!
//! `429` (the API server's priority and fairness rejects before it reads
//! the request) and a connection that was never made are retried for every
//! verb. Timeouts, dropped connections and `500`/`502`/`503`/`504` are
//! retried for reads; for a write they leave the outcome unknown, so the
//! write is not sent again and the [`Failure`] says so; the Deployment
//! patch then reads the object back before deciding.

use std::time::Duration;

use futures::{Stream, StreamExt};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Status;
use kube::core::WatchEvent;
use kube::Client;
use serde::de::DeserializeOwned;

use crate::adapters::retry::{self, Policy, Stop, Verdict};
use crate::engine::ports::PortError;

/// What a call does, for error messages: `patch deployments.apps/web in namespace dev`.
#[derive(Debug, Clone)]
pub struct Op {
    /// The Kubernetes verb (get, list, watch, patch, delete).
    pub verb: &'static str,
    /// The resource, e.g. `deployments.apps`.
    pub resource: &'static str,
    /// The namespace, if the resource has one.
    pub namespace: Option<String>,
    /// The object's name, for calls on one object.
    pub name: Option<String>,
}

impl Op {
    /// A call on objects in a namespace.
    pub fn namespaced(verb: &'static str, resource: &'static str, namespace: &str) -> Op {
        Op {
            verb,
            resource,
            namespace: Some(namespace.to_owned()),
            name: None,
        }
    }

    /// A call on a cluster-wide resource.
    pub fn cluster(verb: &'static str, resource: &'static str) -> Op {
        Op {
            verb,
            resource,
            namespace: None,
            name: None,
        }
    }

    /// The same call on one named object.
    pub fn named(mut self, name: &str) -> Op {
        self.name = Some(name.to_owned());
        self
    }

    fn describe(&self) -> String {
        let mut text = format!("{} {}", self.verb, self.resource);
        if let Some(name) = &self.name {
            text.push('/');
            text.push_str(name);
        }
        if let Some(ns) = &self.namespace {
            text.push_str(" in namespace ");
            text.push_str(ns);
        }
        text
    }

    /// Whether repeating the call after a lost answer could do something twice.
    fn writes(&self) -> bool {
        !matches!(self.verb, "get" | "list" | "watch")
    }
}

/// Timeouts and retry limits for every call.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// How long one request may take.
    pub request_timeout: Duration,
    /// Retries after what is safe to retry (attempts = retries + 1).
    pub retries: u32,
    /// Ceiling of the first jittered backoff; it doubles on each retry.
    pub backoff: Duration,
    /// The longest `Retry-After` honoured; a longer one fails at once.
    pub max_retry_after: Duration,
}

impl Limits {
    /// The shared retry policy these limits stand for.
    fn policy(&self) -> Policy {
        Policy {
            attempts: self.retries.saturating_add(1),
            base_delay: self.backoff,
            max_retry_after: self.max_retry_after,
            ..Policy::default()
        }
    }
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            request_timeout: Duration::from_secs(15),
            retries: 3,
            backoff: Duration::from_millis(200),
            max_retry_after: Duration::from_secs(30),
        }
    }
}

/// A client for one cluster, as one user.
#[derive(Clone)]
pub struct Transport {
    client: Client,
    limits: Limits,
    /// Who the calls act as, for error messages.
    actor: String,
}

/// One attempt's error, with the API server's `Status` when it sent one.
type Failed = (PortError, Option<Box<Status>>);

/// A call that failed: the port error, the API server's `Status` when its
/// final answer carried one (so a caller can tell whose 404 it was), and
/// whether a write may have happened all the same.
#[derive(Debug)]
pub struct Failure {
    /// The error as the engine sees it.
    pub error: PortError,
    /// The `Status` the server answered, if any.
    pub status: Option<Box<Status>>,
    /// A write whose outcome is unknown (timed out, connection dropped,
    /// `5xx`); it was not sent again.
    pub outcome_unknown: bool,
}

impl Transport {
    /// Wraps a client.
    pub fn new(client: Client, limits: Limits, actor: String) -> Transport {
        Transport {
            client,
            limits,
            actor,
        }
    }

    /// Sends a request and parses the JSON answer.
    pub async fn json<T: DeserializeOwned>(
        &self,
        op: &Op,
        request: http::Request<Vec<u8>>,
    ) -> Result<T, PortError> {
        let body = self.call(op, request).await?;
        serde_json::from_slice(&body).map_err(|e| {
            PortError::Unavailable(format!("{}: unreadable answer: {e}", op.describe()))
        })
    }

    /// Sends a request, retrying what is safe to retry, and returns the body.
    pub async fn call(
        &self,
        op: &Op,
        request: http::Request<Vec<u8>>,
    ) -> Result<Vec<u8>, PortError> {
        self.call_with_status(op, request)
            .await
            .map_err(|f| f.error)
    }

    /// [`Transport::call`], keeping the server's `Status` of a failure.
    pub async fn call_with_status(
        &self,
        op: &Op,
        request: http::Request<Vec<u8>>,
    ) -> Result<Vec<u8>, Failure> {
        let request = &request;
        let sent = self
            .limits
            .policy()
            .run(|| self.once(op, clone_request(request)))
            .await;
        sent.map_err(|g| {
            let (error, status) = g.error;
            Failure {
                error,
                status,
                outcome_unknown: g.stop == Stop::OutcomeUnknown,
            }
        })
    }

    async fn once(
        &self,
        op: &Op,
        request: http::Request<Vec<u8>>,
    ) -> Result<Vec<u8>, Verdict<Failed>> {
        // A read is safe to repeat; a write only when it never left.
        let lost = |e: PortError| {
            if op.writes() {
                Verdict::Unknown((e, None))
            } else {
                Verdict::Retry((e, None))
            }
        };
        let timeout = self.limits.request_timeout;
        let send = async {
            let response = self
                .client
                .send(request.map(kube::client::Body::from))
                .await?;
            let status = response.status();
            let retry_after = retry::retry_after(response.headers());
            let body = response.into_body().collect_bytes().await?.to_vec();
            Ok::<_, kube::Error>((status, retry_after, body))
        };
        let (status, retry_after, body) = match tokio::time::timeout(timeout, send).await {
            Err(_) => {
                let e = PortError::Timeout(format!(
                    "{}: no answer within {}",
                    op.describe(),
                    humantime::format_duration(timeout)
                ));
                // A write whose answer was lost may have happened: the caller
                // reads the object back before deciding.
                return Err(lost(e));
            }
            Ok(Err(e)) => {
                let never_sent = retry::never_sent(&e);
                let e = PortError::Unavailable(format!("{}: {e}", op.describe()));
                return Err(if never_sent {
                    Verdict::Retry((e, None))
                } else {
                    lost(e)
                });
            }
            Ok(Ok(answer)) => answer,
        };
        if status.is_success() {
            return Ok(body);
        }
        let seconds = retry_after.map(|d| d.as_secs());
        let error = self.error(op, status.as_u16(), &body, seconds);
        match (status.as_u16(), retry_after) {
            (429, Some(wait)) => Err(Verdict::RetryAfter((error, None), wait)),
            (429, None) => Err(Verdict::Retry((error, None))),
            (500 | 502 | 503 | 504, _) => Err(lost(error)),
            _ => {
                let status = serde_json::from_slice::<Status>(&body)
                    .ok()
                    .filter(|s| s.code.is_some() || s.reason.is_some());
                Err(Verdict::Fail((error, status.map(Box::new))))
            }
        }
    }

    /// Maps an error answer, naming the call and the server's message.
    fn error(&self, op: &Op, code: u16, body: &[u8], retry_after: Option<u64>) -> PortError {
        let message = serde_json::from_slice::<Status>(body)
            .ok()
            .and_then(|s| s.message)
            .unwrap_or_else(|| String::from_utf8_lossy(body).chars().take(200).collect());
        status_error(op, code, &message, &self.actor, retry_after)
    }

    /// Opens a watch and yields its events; the stream ends when the server
    /// closes it or the connection drops.
    pub async fn watch<T>(
        &self,
        op: &Op,
        request: http::Request<Vec<u8>>,
    ) -> Result<impl Stream<Item = Result<WatchEvent<T>, PortError>>, PortError>
    where
        T: Clone + DeserializeOwned,
    {
        let timeout = self.limits.request_timeout;
        let opened = tokio::time::timeout(timeout, self.client.request_events::<T>(request)).await;
        let events = match opened {
            Err(_) => {
                return Err(PortError::Timeout(format!(
                    "{}: no answer within {}",
                    op.describe(),
                    humantime::format_duration(timeout)
                )))
            }
            Ok(Err(kube::Error::Api(e))) => {
                return Err(status_error(op, e.code, &e.message, &self.actor, None))
            }
            Ok(Err(e)) => return Err(PortError::Unavailable(format!("{}: {e}", op.describe()))),
            Ok(Ok(events)) => events,
        };
        let op = op.clone();
        Ok(
            events.map(move |event: Result<WatchEvent<T>, kube::Error>| {
                event.map_err(|e| PortError::Unavailable(format!("{}: {e}", op.describe())))
            }),
        )
    }
}

/// The port error for an API server error status.
pub fn status_error(
    op: &Op,
    code: u16,
    message: &str,
    actor: &str,
    retry_after: Option<u64>,
) -> PortError {
    let what = op.describe();
    match code {
        401 => PortError::Unauthorised(format!("{what}: the cluster refused Gantry's credentials")),
        403 => PortError::Unauthorised(format!("{actor} may not {what} (RBAC): {message}")),
        404 => PortError::NotFound(format!("{what}: {message}")),
        409 => PortError::Conflict(format!("{what}: {message}")),
        400 | 422 => PortError::Invalid(format!("{what}: {message}")),
        429 => PortError::RateLimited {
            retry_after: Duration::from_secs(retry_after.unwrap_or(1)),
        },
        _ => PortError::Unavailable(format!("{what}: HTTP {code}: {message}")),
    }
}

fn clone_request(request: &http::Request<Vec<u8>>) -> http::Request<Vec<u8>> {
    let mut copy = http::Request::new(request.body().clone());
    *copy.method_mut() = request.method().clone();
    *copy.uri_mut() = request.uri().clone();
    *copy.headers_mut() = request.headers().clone();
    copy
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_name_verb_resource_and_namespace() {
        let op = Op::namespaced("patch", "deployments.apps", "dev").named("web");
        let e = status_error(&op, 403, "forbidden", "alice@example.com", None);
        assert_eq!(
            e.to_string(),
            "unauthorised: alice@example.com may not patch deployments.apps/web in namespace dev (RBAC): forbidden"
        );
        let list = Op::cluster("list", "namespaces");
        assert!(matches!(
            status_error(&list, 404, "x", "g", None),
            PortError::NotFound(_)
        ));
        assert!(matches!(
            status_error(&list, 409, "x", "g", None),
            PortError::Conflict(_)
        ));
        assert!(matches!(
            status_error(&list, 422, "x", "g", None),
            PortError::Invalid(_)
        ));
        assert!(matches!(
            status_error(&list, 500, "x", "g", None),
            PortError::Unavailable(_)
        ));
        assert_eq!(
            status_error(&list, 429, "x", "g", Some(7)),
            PortError::RateLimited {
                retry_after: Duration::from_secs(7)
            }
        );
        assert!(op.writes() && !list.writes());
    }
}
