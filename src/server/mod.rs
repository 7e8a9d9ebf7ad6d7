//! The HTTP server: inbound chat and webhooks, health and metrics.
//!
//! Every inbound route caps the body before reading it, verifies the
//! signature over the raw bytes, records the delivery for exactly-once
//! handling, parses, and acknowledges at once; the work itself runs on a
//! background task that reports through the request's progress message.

pub mod assemble;
mod discord;
mod github;
mod metrics;
pub(crate) mod slack;
pub mod verify;

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;

pub use discord::DiscordInbound;
pub use github::GithubInbound;
pub use metrics::Metrics;
pub(crate) use slack::ephemeral as slack_ephemeral;

use crate::config::Secret;
use crate::engine::{Clock, Request};

/// Largest request body read, in bytes; larger ones get 413.
pub const MAX_BODY: usize = 256 * 1024;

/// What the Slack routes need.
pub struct SlackInbound {
    /// Current and previous signing secrets.
    pub secrets: Vec<Secret>,
    /// What decoding needs.
    pub settings: crate::inbound::slack::Settings,
}

/// Everything the handlers share.
pub struct ServerState {
    /// The front door: the engine and the queue its commands wait in.
    pub front: Arc<crate::inbound::Front>,
    /// Slack, when enabled.
    pub slack: Option<SlackInbound>,
    /// Discord, when enabled.
    pub discord: Option<DiscordInbound>,
    /// GitHub webhooks, when enabled.
    pub github: Option<GithubInbound>,
    /// Counters and histograms.
    pub metrics: Metrics,
    /// Unix seconds.
    pub clock: Clock,
}

/// Builds the router with every route.
pub fn router(state: Arc<ServerState>) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics_text))
        .route("/slack/commands", post(slack::commands))
        .route("/slack/events", post(slack::events))
        .route("/slack/interactions", post(slack::interactions))
        .route("/discord/interactions", post(discord::interactions))
        .route("/github/webhook", post(github::webhook))
        .with_state(state)
}

async fn healthz() -> &'static str {
    "ok"
}

/// `200 ready` when the store and every outside system answer, else `503`;
/// either way one line per check, e.g. `ok  registry ghcr.io` or
/// `FAIL kubernetes prod: unavailable: …`.
async fn readyz(State(state): State<Arc<ServerState>>) -> Response {
    let checks = state.front.engine().readiness().await;
    let ready = checks.iter().all(|c| c.problem.is_none());
    let mut body = String::from(if ready { "ready\n" } else { "not ready\n" });
    for check in &checks {
        match &check.problem {
            None => body.push_str(&format!("ok   {}\n", check.name)),
            Some(why) => body.push_str(&format!("FAIL {}: {why}\n", check.name)),
        }
    }
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, body).into_response()
}

async fn metrics_text(State(state): State<Arc<ServerState>>) -> Response {
    let requests: Vec<(u64, Request)> = state.front.engine().store().requests().unwrap_or_default();
    let mut by_state: BTreeMap<&'static str, u64> = BTreeMap::new();
    let mut in_flight = 0;
    for (_, r) in &requests {
        *by_state.entry(state_label(r.state)).or_default() += 1;
        if matches!(
            r.state,
            crate::engine::State::Deploying | crate::engine::State::Verifying
        ) {
            in_flight += 1;
        }
    }
    let body = state.metrics.render(&by_state, in_flight);
    ([("content-type", "text/plain; version=0.0.4")], body).into_response()
}

fn state_label(state: crate::engine::State) -> &'static str {
    use crate::engine::State as S;
    match state {
        S::Requested => "requested",
        S::AwaitingApproval => "awaiting_approval",
        S::Approved => "approved",
        S::Building => "building",
        S::Deploying => "deploying",
        S::Verifying => "verifying",
        S::Succeeded => "succeeded",
        S::Denied => "denied",
        S::Expired => "expired",
        S::Cancelled => "cancelled",
        S::Failed => "failed",
        S::RolledBack => "rolled_back",
        S::Interrupted => "interrupted",
    }
}

pub use crate::chat::slack::escape as slack_escape;

/// A route's answer with its outcome label for `/metrics`; `Err` for what
/// was refused before it reached the dispatch.
pub(crate) type Answered = Result<(&'static str, Response), (&'static str, Response)>;

/// Runs a route's handler, counting its outcome and acknowledgement time.
async fn timed(
    state: &ServerState,
    route: &'static str,
    handler: impl std::future::Future<Output = Answered>,
) -> Response {
    let started = std::time::Instant::now();
    let (outcome, response) = handler.await.unwrap_or_else(|refused| refused);
    state.metrics.request(route, outcome, started.elapsed());
    response
}

/// Reads a request's body, at most [`MAX_BODY`] bytes.
async fn read_body(
    request: axum::extract::Request,
) -> Result<(http::request::Parts, axum::body::Bytes), (&'static str, Response)> {
    let (parts, body) = request.into_parts();
    match axum::body::to_bytes(body, MAX_BODY).await {
        Ok(bytes) => Ok((parts, bytes)),
        Err(_) => Err((
            "too_large",
            (StatusCode::PAYLOAD_TOO_LARGE, "body too large").into_response(),
        )),
    }
}

/// How a decoder's refusal is answered over HTTP.
fn rejected(why: crate::inbound::Rejected) -> (&'static str, Response) {
    use crate::inbound::Rejected;
    let label = why.label();
    let response = match why {
        Rejected::Malformed(text) => (StatusCode::BAD_REQUEST, text).into_response(),
        Rejected::Forbidden(text) => (StatusCode::FORBIDDEN, text).into_response(),
        Rejected::Told(_, text) => (StatusCode::OK, text).into_response(),
        Rejected::Ignored(text) => (StatusCode::ACCEPTED, text).into_response(),
    };
    (label, response)
}
