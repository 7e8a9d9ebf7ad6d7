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
pub(crate) mod slack_events;
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

use crate::config::Secret;
use crate::engine::{Clock, Engine, Request};

/// Largest request body read, in bytes; larger ones get 413.
pub const MAX_BODY: usize = 256 * 1024;

/// What the Slack routes need.
pub struct SlackInbound {
    /// Current and previous signing secrets.
    pub secrets: Vec<Secret>,
    /// Workspaces whose requests are accepted.
    pub team_ids: Vec<String>,
    /// Reaction name that approves.
    pub approve_reaction: String,
    /// Reaction name that denies.
    pub deny_reaction: String,
}

/// Everything the handlers share.
pub struct ServerState {
    /// The engine that runs commands.
    pub engine: Engine,
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
        .route("/slack/events", post(slack_events::events))
        .route("/slack/interactions", post(slack_events::interactions))
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
    let checks = state.engine.readiness().await;
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
    let requests: Vec<(u64, Request)> = state.engine.store().requests().unwrap_or_default();
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

/// Records a delivery: `None` the first time, else the answer to send
/// (`duplicate`, or 503 when the store cannot record it).
pub(crate) fn repeat_answer(
    state: &ServerState,
    route: &'static str,
    key: &str,
) -> Option<(&'static str, Response)> {
    match crate::inbound::once(state.engine.store(), key, (state.clock)()) {
        crate::inbound::Once::First => None,
        crate::inbound::Once::Duplicate => {
            state.metrics.duplicate(route);
            Some(("duplicate", (StatusCode::OK, "duplicate").into_response()))
        }
        crate::inbound::Once::Unavailable(e) => Some((
            "store_error",
            (
                StatusCode::SERVICE_UNAVAILABLE,
                format!("cannot record the delivery: {e}"),
            )
                .into_response(),
        )),
    }
}
