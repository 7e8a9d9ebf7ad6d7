//! Slack's routes: `POST /slack/commands` (slash commands), `POST
//! /slack/events` (Events API) and `POST /slack/interactions` (buttons),
//! all signed with `X-Slack-Signature` over `v0:<timestamp>:<body>`.
//! Each verifies, decodes (`inbound::slack`), dispatches and answers: a
//! slash command with an ephemeral message (`on it`, or why not) within
//! Slack's 3 seconds, events and clicks with a bare 200.

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use super::{read_body, rejected, timed, verify, Answered, ServerState};
use crate::chat::slack::escape;
use crate::inbound::{self, slack, Dispatched};

const COMMANDS: &str = "/slack/commands";
const EVENTS: &str = "/slack/events";
const INTERACTIONS: &str = "/slack/interactions";

/// Handles one slash command.
pub(super) async fn commands(
    State(state): State<Arc<ServerState>>,
    request: Request<Body>,
) -> Response {
    timed(&state, COMMANDS, command(&state, request)).await
}

/// Handles the Events API.
pub(super) async fn events(
    State(state): State<Arc<ServerState>>,
    request: Request<Body>,
) -> Response {
    timed(&state, EVENTS, event(&state, request)).await
}

/// Handles Block Kit button clicks.
pub(super) async fn interactions(
    State(state): State<Arc<ServerState>>,
    request: Request<Body>,
) -> Response {
    timed(&state, INTERACTIONS, interaction(&state, request)).await
}

/// The in-band answer to a slash command: an ephemeral message, or none
/// when nothing is to be said (a repeat). Over HTTP, "could not record" is
/// a 503 instead; over Socket Mode, which has no status, it is this text.
pub(crate) fn ephemeral(answer: &Dispatched) -> Option<serde_json::Value> {
    match answer {
        Dispatched::Accepted(_) | Dispatched::Refused(..) | Dispatched::Unavailable(_) => {
            Some(json!({ "response_type": "ephemeral", "text": escape(&answer.text()) }))
        }
        Dispatched::Ignored(_) | Dispatched::Duplicate => None,
    }
}

/// A decoder's refusal, as Slack is answered: what is not for Gantry is a
/// plain 200 (Slack retries anything else).
fn refused(why: inbound::Rejected) -> (&'static str, Response) {
    match why {
        inbound::Rejected::Ignored(label) => (label, StatusCode::OK.into_response()),
        other => rejected(other),
    }
}

async fn command(state: &ServerState, request: Request<Body>) -> Answered {
    let (settings, bytes, delivery) = verified(state, COMMANDS, request).await?;
    let inbound = slack::slash_command_form(settings, &bytes, delivery).map_err(refused)?;
    let answer = inbound::dispatch_spawned(&state.front, inbound).await;
    let label = answer.label();
    Ok((label, respond(state, COMMANDS, &answer)))
}

async fn event(state: &ServerState, request: Request<Body>) -> Answered {
    let (settings, bytes, _) = verified(state, EVENTS, request).await?;
    match slack::event(settings, &bytes).map_err(refused)? {
        slack::Event::Challenge(challenge) => Ok((
            "challenge",
            Json(json!({ "challenge": challenge })).into_response(),
        )),
        slack::Event::Inbound(inbound) => {
            let answer = inbound::dispatch_spawned(&state.front, inbound).await;
            Ok((answer.label(), respond(state, EVENTS, &answer)))
        }
    }
}

async fn interaction(state: &ServerState, request: Request<Body>) -> Answered {
    let (settings, bytes, _) = verified(state, INTERACTIONS, request).await?;
    let inbound = slack::interaction_form(settings, &bytes).map_err(refused)?;
    let answer = inbound::dispatch_spawned(&state.front, inbound).await;
    Ok((answer.label(), respond(state, INTERACTIONS, &answer)))
}

/// The HTTP answer: an ephemeral message for a slash command, else 200.
fn respond(state: &ServerState, route: &'static str, answer: &Dispatched) -> Response {
    match answer {
        Dispatched::Duplicate => {
            state.metrics.duplicate(route);
            (StatusCode::OK, "duplicate").into_response()
        }
        Dispatched::Unavailable(why) => {
            (StatusCode::SERVICE_UNAVAILABLE, why.clone()).into_response()
        }
        _ if route == COMMANDS => match ephemeral(answer) {
            Some(body) => Json(body).into_response(),
            None => StatusCode::OK.into_response(),
        },
        _ => StatusCode::OK.into_response(),
    }
}

/// Verifies a Slack request: its settings, body and a delivery id made of
/// the signature (Slack gives slash commands no id of their own).
async fn verified<'s>(
    state: &'s ServerState,
    route: &'static str,
    request: Request<Body>,
) -> Result<(&'s slack::Settings, Bytes, String), (&'static str, Response)> {
    let Some(slack) = &state.slack else {
        return Err((
            "disabled",
            (StatusCode::NOT_FOUND, "Slack is not enabled").into_response(),
        ));
    };
    let (parts, bytes) = read_body(request).await?;
    let header = |name: &str| parts.headers.get(name).and_then(|v| v.to_str().ok());
    let timestamp = header("x-slack-request-timestamp");
    let signature = header("x-slack-signature");
    if let Err(e) = verify::slack(
        &slack.secrets,
        timestamp,
        signature,
        &bytes,
        (state.clock)(),
    ) {
        state.metrics.signature_failure(route);
        return Err((
            "unauthorized",
            (StatusCode::UNAUTHORIZED, e.to_string()).into_response(),
        ));
    }
    // Verified, so both headers are present and well formed.
    let delivery = format!(
        "slack:{}:{}",
        timestamp.unwrap_or_default(),
        signature.unwrap_or_default()
    );
    Ok((&slack.settings, bytes, delivery))
}
