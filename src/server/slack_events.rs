//! `POST /slack/events` (Events API) and `POST /slack/interactions`
//! (Block Kit buttons), both signed like slash commands.
//!
//! Events: `url_verification` is answered with its `challenge`;
//! `event_callback` with `reaction_added` / `reaction_removed` on one of
//! Gantry's progress messages approves, denies or withdraws an approval.
//! Slack retries an event it thinks went unanswered (`X-Slack-Retry-Num`)
//! with the same `event_id`, which is de-duplicated. Interactions arrive as
//! a form with one `payload` field holding JSON (`type: block_actions`).

use std::sync::Arc;
use std::time::Instant;

use axum::body::{to_bytes, Body};
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use super::{verify, ServerState, MAX_BODY};
use crate::adapters::slack::{APPROVE_ACTION, DENY_ACTION};
use crate::engine::{Conversation, Reaction};
use crate::names::Identity;

/// Verifies a Slack request and returns its body, or the refusal to send.
async fn verified(
    state: &ServerState,
    route: &'static str,
    request: Request<Body>,
) -> Result<axum::body::Bytes, (&'static str, Response)> {
    let Some(slack) = &state.slack else {
        return Err((
            "disabled",
            (StatusCode::NOT_FOUND, "Slack is not enabled").into_response(),
        ));
    };
    let (parts, body) = request.into_parts();
    let Ok(bytes) = to_bytes(body, MAX_BODY).await else {
        return Err((
            "too_large",
            (StatusCode::PAYLOAD_TOO_LARGE, "body too large").into_response(),
        ));
    };
    let header = |name: &str| parts.headers.get(name).and_then(|v| v.to_str().ok());
    let now = (state.clock)();
    if let Err(e) = verify::slack(
        &slack.secrets,
        header("x-slack-request-timestamp"),
        header("x-slack-signature"),
        &bytes,
        now,
    ) {
        state.metrics.signature_failure(route);
        return Err((
            "unauthorized",
            (StatusCode::UNAUTHORIZED, e.to_string()).into_response(),
        ));
    }
    Ok(bytes)
}

#[derive(Debug, Deserialize)]
struct Envelope {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    challenge: String,
    #[serde(default)]
    team_id: String,
    #[serde(default)]
    event_id: String,
    #[serde(default)]
    event: Value,
}

/// Handles the Events API.
pub(super) async fn events(
    State(state): State<Arc<ServerState>>,
    request: Request<Body>,
) -> Response {
    const ROUTE: &str = "/slack/events";
    let started = Instant::now();
    let (outcome, response) = match verified(&state, ROUTE, request).await {
        Err(refused) => refused,
        Ok(bytes) => handle_event(&state, &bytes),
    };
    state.metrics.request(ROUTE, outcome, started.elapsed());
    response
}

pub(crate) fn handle_event(state: &Arc<ServerState>, bytes: &[u8]) -> (&'static str, Response) {
    const ROUTE: &str = "/slack/events";
    if let Err(e) = crate::json_keys::check_unique_keys(bytes) {
        let why = format!("{e} in the JSON body");
        return (
            "bad_request",
            (StatusCode::BAD_REQUEST, why).into_response(),
        );
    }
    let Ok(envelope) = serde_json::from_slice::<Envelope>(bytes) else {
        return (
            "bad_request",
            (StatusCode::BAD_REQUEST, "not an Events API payload").into_response(),
        );
    };
    match envelope.kind.as_str() {
        "url_verification" => {
            return (
                "challenge",
                Json(json!({ "challenge": envelope.challenge })).into_response(),
            )
        }
        "event_callback" => {}
        _ => return ("ignored", StatusCode::OK.into_response()),
    }
    let Some(slack) = state
        .slack
        .as_ref()
        .filter(|s| s.team_ids.contains(&envelope.team_id))
    else {
        return (
            "unknown_team",
            (
                StatusCode::FORBIDDEN,
                "this Slack workspace is not configured for Gantry",
            )
                .into_response(),
        );
    };
    if let Some(answer) =
        super::repeat_answer(state, ROUTE, &format!("slack-event:{}", envelope.event_id))
    {
        return answer;
    }
    let event = &envelope.event;
    let kind = event["type"].as_str().unwrap_or_default();
    let reaction = event["reaction"].as_str().unwrap_or_default();
    let approve = slack.approve_reaction.as_str();
    let deny = slack.deny_reaction.as_str();
    let meaning = match (kind, reaction) {
        ("reaction_added", r) if r == approve => Reaction::Approve,
        ("reaction_added", r) if r == deny => Reaction::Deny,
        ("reaction_removed", r) if r == approve => Reaction::Revoke,
        _ => return ("ignored", StatusCode::OK.into_response()),
    };
    let (Some(user), Some(channel), Some(ts)) = (
        event["user"].as_str(),
        event["item"]["channel"].as_str(),
        event["item"]["ts"].as_str(),
    ) else {
        return ("ignored", StatusCode::OK.into_response());
    };
    let Ok(identity) = format!("slack:{}:{user}", envelope.team_id).parse::<Identity>() else {
        return ("ignored", StatusCode::OK.into_response());
    };
    spawn_reaction(state, identity, channel.to_owned(), ts.to_owned(), meaning);
    ("accepted", StatusCode::OK.into_response())
}

/// Runs a reaction in the background and posts the reply in the channel
/// when it is a refusal (a reaction has no other way to answer).
fn spawn_reaction(
    state: &Arc<ServerState>,
    identity: Identity,
    channel: String,
    ts: String,
    meaning: Reaction,
) {
    let engine = state.engine.clone();
    tokio::spawn(async move {
        if let Some(reply) = engine
            .react(
                &identity,
                crate::engine::Platform::Slack,
                &channel,
                &ts,
                meaning,
            )
            .await
        {
            if reply.is_refused() {
                let conversation = Conversation {
                    platform: crate::engine::Platform::Slack,
                    channel,
                };
                engine.say(&conversation, &reply.text).await;
            }
        }
    });
}

#[derive(Debug, Deserialize)]
struct InteractionForm {
    payload: String,
}

/// Handles Block Kit button clicks.
pub(super) async fn interactions(
    State(state): State<Arc<ServerState>>,
    request: Request<Body>,
) -> Response {
    const ROUTE: &str = "/slack/interactions";
    let started = Instant::now();
    let (outcome, response) = match verified(&state, ROUTE, request).await {
        Err(refused) => refused,
        Ok(bytes) => handle_interaction(&state, &bytes),
    };
    state.metrics.request(ROUTE, outcome, started.elapsed());
    response
}

fn handle_interaction(state: &Arc<ServerState>, bytes: &[u8]) -> (&'static str, Response) {
    let Ok(form) = serde_urlencoded::from_bytes::<InteractionForm>(bytes) else {
        return (
            "bad_request",
            (StatusCode::BAD_REQUEST, "no payload field").into_response(),
        );
    };
    if let Err(e) = crate::json_keys::check_unique_keys(form.payload.as_bytes()) {
        let why = format!("{e} in the payload field");
        return (
            "bad_request",
            (StatusCode::BAD_REQUEST, why).into_response(),
        );
    }
    let Ok(payload) = serde_json::from_str::<Value>(&form.payload) else {
        return (
            "bad_request",
            (StatusCode::BAD_REQUEST, "payload is not JSON").into_response(),
        );
    };
    handle_interaction_payload(state, &payload)
}

/// Handles an interactivity payload (`block_actions`), however it arrived.
pub(crate) fn handle_interaction_payload(
    state: &Arc<ServerState>,
    payload: &Value,
) -> (&'static str, Response) {
    const ROUTE: &str = "/slack/interactions";
    if payload["type"] != "block_actions" {
        return ("ignored", StatusCode::OK.into_response());
    }
    let team = payload["team"]["id"].as_str().unwrap_or_default();
    if !state
        .slack
        .as_ref()
        .is_some_and(|s| s.team_ids.iter().any(|t| t == team))
    {
        return (
            "unknown_team",
            (
                StatusCode::FORBIDDEN,
                "this Slack workspace is not configured for Gantry",
            )
                .into_response(),
        );
    }
    let action = &payload["actions"][0];
    let key = format!(
        "slack-action:{}:{}",
        payload["trigger_id"].as_str().unwrap_or_default(),
        action["action_ts"].as_str().unwrap_or_default()
    );
    if let Some(answer) = super::repeat_answer(state, ROUTE, &key) {
        return answer;
    }
    let meaning = match action["action_id"].as_str() {
        Some(APPROVE_ACTION) => Reaction::Approve,
        Some(DENY_ACTION) => Reaction::Deny,
        _ => return ("ignored", StatusCode::OK.into_response()),
    };
    let user = payload["user"]["id"].as_str().unwrap_or_default();
    let (Some(channel), Some(ts)) = (
        payload["channel"]["id"].as_str(),
        payload["message"]["ts"].as_str(),
    ) else {
        return (
            "bad_request",
            (StatusCode::BAD_REQUEST, "no channel or message").into_response(),
        );
    };
    let Ok(identity) = format!("slack:{team}:{user}").parse::<Identity>() else {
        return (
            "bad_request",
            (StatusCode::BAD_REQUEST, "malformed team or user id").into_response(),
        );
    };
    spawn_reaction(state, identity, channel.to_owned(), ts.to_owned(), meaning);
    ("accepted", StatusCode::OK.into_response())
}
