//! Watch streams: the backlog after the asked resourceVersion, then live
//! changes, one JSON event per line, until `timeoutSeconds` or a drop.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};
use tokio::sync::broadcast::error::RecvError;

use super::api::{selectors, status, Target};
use super::store::{selected, Change};
use super::Shared;

fn event_line(kind: &str, object: &Value) -> String {
    format!("{}\n", json!({"type": kind, "object": object}))
}

/// A watch: the backlog after the asked version, then live changes, until
/// `timeoutSeconds` or a scenario's drop.
pub(super) fn watch(
    shared: &Arc<Shared>,
    target: &Target,
    query: &BTreeMap<String, String>,
) -> Response {
    let (labels, fields) = match selectors(query) {
        Ok(found) => found,
        Err(message) => return status(400, "BadRequest", &message, Some(target)),
    };
    let seconds = query
        .get("timeoutSeconds")
        .and_then(|s| s.parse().ok())
        .unwrap_or(1800);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(seconds);
    let kind = target.kind;
    let namespace = target.namespace.clone();
    let wanted = move |c: &Change| {
        c.key.kind == kind
            && namespace.as_ref().is_none_or(|ns| &c.key.namespace == ns)
            && selected(&c.object, &labels, &fields)
    };
    let (backlog, receiver, start, drop_after) = {
        let inner = shared.lock();
        let receiver = shared.changes.subscribe();
        let asked = query.get("resourceVersion").map_or("", String::as_str);
        let (backlog, start): (VecDeque<Change>, u64) = if asked.is_empty() || asked == "0" {
            let now = inner.objects.version();
            let current = inner
                .objects
                .list(kind, target.namespace.as_deref())
                .into_iter()
                .map(|(key, object)| Change {
                    version: 0,
                    key,
                    kind: "ADDED",
                    object,
                });
            (current.collect(), now)
        } else {
            let Ok(asked) = asked.parse::<u64>() else {
                return status(
                    400,
                    "BadRequest",
                    &format!("invalid resource version: {asked}"),
                    Some(target),
                );
            };
            if asked < inner.objects.oldest() {
                let gone = json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                    "message": format!("too old resource version: {asked} ({})", inner.objects.oldest()),
                    "reason": "Expired", "code": 410});
                let line = event_line("ERROR", &gone);
                return (
                    StatusCode::OK,
                    [(header::CONTENT_TYPE, "application/json")],
                    line,
                )
                    .into_response();
            }
            (inner.objects.since(asked).into(), asked)
        };
        (backlog, receiver, start, inner.faults.drop_watches_after)
    };
    let state = (backlog, receiver, start, 0usize, false);
    let stream = futures::stream::unfold(
        state,
        move |(mut backlog, mut receiver, mut last, sent, done)| {
            let wanted = wanted.clone();
            async move {
                if done {
                    return None;
                }
                if drop_after.is_some_and(|n| sent >= n) {
                    // Pause first so the events already written are flushed
                    // and delivered; then the connection breaks mid-stream.
                    tokio::time::sleep(Duration::from_millis(5)).await;
                    let cut = std::io::Error::new(
                        std::io::ErrorKind::ConnectionReset,
                        "watch dropped by the scenario",
                    );
                    return Some((Err(cut), (backlog, receiver, last, sent, true)));
                }
                loop {
                    let change = match backlog.pop_front() {
                        Some(c) => c,
                        None => tokio::select! {
                            received = receiver.recv() => match received {
                                Ok(c) if c.version > last => c,
                                Ok(_) => continue,
                                // Too slow a reader: end the watch; the client resumes.
                                Err(RecvError::Lagged(_) | RecvError::Closed) => return None,
                            },
                            () = tokio::time::sleep_until(deadline) => return None,
                        },
                    };
                    last = last.max(change.version);
                    if wanted(&change) {
                        let line = event_line(change.kind, &change.object);
                        return Some((
                            Ok::<_, std::io::Error>(line),
                            (backlog, receiver, last, sent + 1, false),
                        ));
                    }
                }
            }
        },
    );
    let mut answer = Response::new(Body::from_stream(stream));
    answer.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/json"),
    );
    answer
}
