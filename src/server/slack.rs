//! `POST /slack/commands`: Slack slash commands.
//!
//! Slack sends `application/x-www-form-urlencoded` with `team_id`,
//! `user_id`, `channel_id`, `command` and `text` (among others), signed with
//! `X-Slack-Signature` and `X-Slack-Request-Timestamp`, and wants an answer
//! within 3 seconds: Gantry answers with an ephemeral message (`on it`, or
//! the parse error) and runs the command in the background.

use std::sync::Arc;
use std::time::Instant;

use axum::body::{to_bytes, Body};
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::json;

use super::{slack_escape, verify, ServerState, MAX_BODY};
use crate::engine::Conversation;
use crate::inbound::Dispatched;
use crate::names::Identity;

const ROUTE: &str = "/slack/commands";

/// The fields of a slash command Gantry reads; Slack sends more.
#[derive(Debug, Deserialize)]
pub(crate) struct SlashCommand {
    team_id: String,
    user_id: String,
    channel_id: String,
    /// `/gantry`, or `/deploy` when the app also has that command.
    #[serde(default)]
    command: String,
    #[serde(default)]
    text: String,
}

impl SlashCommand {
    /// The Gantry command typed: `/deploy feat-x to dev` is `deploy feat-x
    /// to dev`; under `/gantry` the text is the command.
    fn gantry_text(&self) -> String {
        match self.command.as_str() {
            "/deploy" => format!("deploy {}", self.text.trim_start()),
            _ => self.text.clone(),
        }
    }
}

/// What a slash command answers, however it arrived.
#[derive(Debug)]
pub(crate) enum CommandAnswer {
    /// Refused before parsing: a status and a plain reason.
    Refused(StatusCode, &'static str),
    /// An ephemeral message (unescaped) to the person who typed it.
    Ephemeral(String),
    /// Delivered before: nothing was done.
    Duplicate,
    /// Not recorded, so not started; Slack may deliver it again.
    Unavailable(String),
}

impl IntoResponse for CommandAnswer {
    fn into_response(self) -> Response {
        match self {
            CommandAnswer::Refused(status, why) => (status, why).into_response(),
            CommandAnswer::Ephemeral(text) => ephemeral(&text),
            CommandAnswer::Duplicate => (StatusCode::OK, "duplicate").into_response(),
            CommandAnswer::Unavailable(why) => {
                (StatusCode::SERVICE_UNAVAILABLE, why).into_response()
            }
        }
    }
}

impl CommandAnswer {
    /// The text a person reads (Socket Mode answers in its acknowledgement).
    pub(crate) fn text(&self) -> String {
        match self {
            CommandAnswer::Refused(_, why) => (*why).to_owned(),
            CommandAnswer::Ephemeral(text) | CommandAnswer::Unavailable(text) => text.clone(),
            CommandAnswer::Duplicate => "duplicate".to_owned(),
        }
    }
}

fn ephemeral(text: &str) -> Response {
    Json(json!({ "response_type": "ephemeral", "text": slack_escape(text) })).into_response()
}

/// Handles one slash command.
pub(super) async fn commands(
    State(state): State<Arc<ServerState>>,
    request: Request<Body>,
) -> Response {
    let started = Instant::now();
    let (outcome, response) = handle(&state, request).await;
    state.metrics.request(ROUTE, outcome, started.elapsed());
    response
}

async fn handle(state: &ServerState, request: Request<Body>) -> (&'static str, Response) {
    let Some(slack) = &state.slack else {
        return (
            "disabled",
            (StatusCode::NOT_FOUND, "Slack is not enabled").into_response(),
        );
    };
    let (parts, body) = request.into_parts();
    let Ok(bytes) = to_bytes(body, MAX_BODY).await else {
        return (
            "too_large",
            (StatusCode::PAYLOAD_TOO_LARGE, "body too large").into_response(),
        );
    };
    let header = |name: &str| parts.headers.get(name).and_then(|v| v.to_str().ok());
    let timestamp = header("x-slack-request-timestamp");
    let signature = header("x-slack-signature");
    let now = (state.clock)();
    if let Err(e) = verify::slack(&slack.secrets, timestamp, signature, &bytes, now) {
        state.metrics.signature_failure(ROUTE);
        return (
            "unauthorized",
            (StatusCode::UNAUTHORIZED, e.to_string()).into_response(),
        );
    }
    // Verified, so both headers are present and well formed.
    let delivery = format!(
        "slack:{}:{}",
        timestamp.unwrap_or_default(),
        signature.unwrap_or_default()
    );
    if std::str::from_utf8(&bytes).is_err() {
        return (
            "bad_request",
            (StatusCode::BAD_REQUEST, "body is not UTF-8").into_response(),
        );
    }
    let Ok(command) = serde_urlencoded::from_bytes::<SlashCommand>(&bytes) else {
        return (
            "bad_request",
            (StatusCode::BAD_REQUEST, "not a slash command form").into_response(),
        );
    };
    let (outcome, answer) = run_command(state, command, &delivery).await;
    if matches!(answer, CommandAnswer::Duplicate) {
        state.metrics.duplicate(ROUTE);
    }
    (outcome, answer.into_response())
}

/// Runs a slash command whose origin is authenticated (a signed request or
/// a Socket Mode connection): team check, parse, then the one dispatch,
/// which records it with its `delivery` id (a repeat does nothing).
pub(crate) async fn run_command(
    state: &ServerState,
    command: SlashCommand,
    delivery: &str,
) -> (&'static str, CommandAnswer) {
    let Some(slack) = &state.slack else {
        return (
            "disabled",
            CommandAnswer::Refused(StatusCode::NOT_FOUND, "Slack is not enabled"),
        );
    };
    if !slack.team_ids.contains(&command.team_id) {
        return (
            "unknown_team",
            CommandAnswer::Refused(
                StatusCode::FORBIDDEN,
                "this Slack workspace is not configured for Gantry",
            ),
        );
    }
    let Ok(identity) = format!("slack:{}:{}", command.team_id, command.user_id).parse::<Identity>()
    else {
        return (
            "bad_request",
            CommandAnswer::Refused(StatusCode::BAD_REQUEST, "malformed team or user id"),
        );
    };
    let parsed = match state.engine.parse(&command.gantry_text()) {
        Ok(parsed) => parsed,
        Err(e) => return ("parse_error", CommandAnswer::Ephemeral(e.to_string())),
    };
    let conversation = Conversation {
        platform: crate::engine::Platform::Slack,
        channel: command.channel_id,
    };
    // Durable before the acknowledgement: a crash after "on it" leaves the
    // command in the audit trail.
    match crate::inbound::command(
        &state.engine,
        Some(delivery),
        identity,
        conversation,
        parsed,
    )
    .await
    {
        Dispatched::Accepted(text) => ("accepted", CommandAnswer::Ephemeral(text)),
        Dispatched::Duplicate => ("duplicate", CommandAnswer::Duplicate),
        Dispatched::Refused(why) => ("slow_down", CommandAnswer::Ephemeral(why)),
        Dispatched::Unavailable(why) => ("store_error", CommandAnswer::Unavailable(why)),
    }
}
