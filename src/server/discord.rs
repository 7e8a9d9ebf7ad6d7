//! `POST /discord/interactions`: Discord's HTTP interactions endpoint.
//!
//! Discord signs each interaction with the application's Ed25519 key over
//! `X-Signature-Timestamp + body` and wants an answer within 3 seconds. It
//! also sends bad signatures on purpose to test an endpoint: those get 401.
//! PING (type 1) is answered PONG; the `/gantry` command (type 2) is
//! answered at once with a deferred response (type 5) whose text is edited
//! later ("on it", then the command's reply), while its progress goes to
//! the channel through the notifier; a parse error is an ephemeral reply
//! (type 4, flag 64). An Approve / Deny button click (type 3) is answered
//! with a deferred update (type 6) and counted like a reaction.

use std::sync::Arc;
use std::time::Instant;

use axum::body::{to_bytes, Body};
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use ed25519_dalek::VerifyingKey;
use serde::Deserialize;
use serde_json::{json, Value};

use super::{verify, ServerState, MAX_BODY};
use crate::adapters::discord::{
    discord_escape, DiscordNotifier, APPROVE_BUTTON, COMMAND, DENY_BUTTON, TEXT_OPTION,
};
use crate::engine::{Conversation, Reaction};
use crate::names::{Identity, RequestId};

const ROUTE: &str = "/discord/interactions";

/// What the Discord route needs.
pub struct DiscordInbound {
    /// The application's public key, which verifies interactions.
    pub public_key: VerifyingKey,
    /// The application id interactions must carry.
    pub application_id: u64,
    /// Guilds whose interactions are accepted.
    pub guild_ids: Vec<u64>,
    /// Edits the original response of a deferred command; `None` leaves
    /// it as Discord shows it.
    pub rest: Option<Arc<DiscordNotifier>>,
}

#[derive(Debug, Deserialize)]
struct User {
    id: String,
    #[serde(default)]
    bot: bool,
}

#[derive(Debug, Deserialize)]
struct Member {
    user: User,
}

/// The fields of an interaction Gantry reads; Discord sends more.
#[derive(Debug, Deserialize)]
struct Interaction {
    id: String,
    #[serde(rename = "type")]
    kind: u8,
    #[serde(default)]
    application_id: String,
    #[serde(default)]
    token: String,
    #[serde(default)]
    guild_id: Option<String>,
    #[serde(default)]
    channel_id: Option<String>,
    #[serde(default)]
    member: Option<Member>,
    #[serde(default)]
    data: Value,
    #[serde(default)]
    message: Value,
}

type Answer = (&'static str, Response);

fn plain(outcome: &'static str, status: StatusCode, text: &'static str) -> Answer {
    (outcome, (status, text).into_response())
}

/// A reply only the invoking person sees; it can mention no one.
fn ephemeral(outcome: &'static str, text: &str) -> Answer {
    let data = json!({
        "content": discord_escape(text), "flags": 64, "allowed_mentions": { "parse": [] }
    });
    (
        outcome,
        Json(json!({ "type": 4, "data": data })).into_response(),
    )
}

/// Handles one interaction.
pub(super) async fn interactions(
    State(state): State<Arc<ServerState>>,
    request: Request<Body>,
) -> Response {
    let started = Instant::now();
    let (outcome, response) = handle(&state, request).await;
    state.metrics.request(ROUTE, outcome, started.elapsed());
    response
}

async fn handle(state: &Arc<ServerState>, request: Request<Body>) -> Answer {
    let Some(discord) = &state.discord else {
        return plain("disabled", StatusCode::NOT_FOUND, "Discord is not enabled");
    };
    let (parts, body) = request.into_parts();
    let Ok(bytes) = to_bytes(body, MAX_BODY).await else {
        return plain("too_large", StatusCode::PAYLOAD_TOO_LARGE, "body too large");
    };
    let header = |name: &str| parts.headers.get(name).and_then(|v| v.to_str().ok());
    let now = (state.clock)();
    if let Err(e) = verify::discord(
        &discord.public_key,
        header("x-signature-timestamp"),
        header("x-signature-ed25519"),
        &bytes,
        now,
    ) {
        state.metrics.signature_failure(ROUTE);
        return (
            "unauthorized",
            (StatusCode::UNAUTHORIZED, e.to_string()).into_response(),
        );
    }
    if let Err(e) = crate::json_keys::check_unique_keys(&bytes) {
        let why = format!("{e} in the JSON body");
        return (
            "bad_request",
            (StatusCode::BAD_REQUEST, why).into_response(),
        );
    }
    let Ok(interaction) = serde_json::from_slice::<Interaction>(&bytes) else {
        return plain("bad_request", StatusCode::BAD_REQUEST, "not an interaction");
    };
    if interaction.kind == 1 {
        return ("pong", Json(json!({ "type": 1 })).into_response());
    }
    if interaction.application_id != discord.application_id.to_string() {
        return plain(
            "wrong_application",
            StatusCode::FORBIDDEN,
            "this interaction is for another application",
        );
    }
    let delivery = format!("discord:{}", interaction.id);
    let guild = interaction.guild_id.as_deref().unwrap_or_default();
    if !discord.guild_ids.iter().any(|g| g.to_string() == guild) {
        return ephemeral(
            "unknown_guild",
            "refused: this Discord server is not configured for Gantry",
        );
    }
    let (Some(member), Some(channel)) = (&interaction.member, &interaction.channel_id) else {
        return plain(
            "bad_request",
            StatusCode::BAD_REQUEST,
            "no member or channel",
        );
    };
    if member.user.bot {
        return plain(
            "ignored",
            StatusCode::BAD_REQUEST,
            "bots do not run commands",
        );
    }
    let Ok(identity) = format!("discord:{}", member.user.id).parse::<Identity>() else {
        return plain("bad_request", StatusCode::BAD_REQUEST, "malformed user id");
    };
    let conversation = Conversation {
        platform: crate::engine::Platform::Discord,
        channel: channel.clone(),
    };
    match interaction.kind {
        2 => {
            command(
                state,
                discord,
                &interaction,
                &delivery,
                identity,
                conversation,
            )
            .await
        }
        3 => match super::repeat_answer(state, ROUTE, &delivery) {
            None => button(state, &interaction, identity, conversation),
            Some(repeat) => repeat,
        },
        _ => plain(
            "unsupported",
            StatusCode::BAD_REQUEST,
            "unsupported interaction type",
        ),
    }
}

async fn command(
    state: &Arc<ServerState>,
    discord: &DiscordInbound,
    interaction: &Interaction,
    delivery: &str,
    identity: Identity,
    conversation: Conversation,
) -> Answer {
    if interaction.data["name"] != COMMAND {
        return ephemeral("unknown_command", "unknown command: use /gantry");
    }
    let text = interaction.data["options"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|o| o["name"] == TEXT_OPTION)
        .and_then(|o| o["value"].as_str())
        .unwrap_or_default();
    let parsed = match state.engine.parse(text) {
        Ok(parsed) => parsed,
        Err(e) => return ephemeral("parse_error", &e.to_string()),
    };
    // Durable before the acknowledgement, together with the interaction
    // id: a repeat does nothing, a failure may come again.
    match state
        .engine
        .accept_delivered(Some(delivery), &identity, &conversation, &parsed)
        .await
    {
        Ok(crate::engine::Accepted::New) => {}
        Ok(crate::engine::Accepted::Duplicate) => {
            state.metrics.duplicate(ROUTE);
            return plain("duplicate", StatusCode::OK, "duplicate");
        }
        Ok(crate::engine::Accepted::SlowDown(why)) => return ephemeral("slow_down", &why),
        Err(e) => {
            return (
                "store_error",
                (
                    StatusCode::SERVICE_UNAVAILABLE,
                    format!("cannot record the command: {e}"),
                )
                    .into_response(),
            )
        }
    }
    let engine = state.engine.clone();
    let rest = discord.rest.clone();
    let token = interaction.token.clone();
    tokio::spawn(async move {
        if let Some(rest) = &rest {
            let _ = rest
                .edit_original(&token, &format!("on it: {parsed}"))
                .await;
        }
        let reply = engine.run_accepted(&identity, &conversation, &parsed).await;
        if let Some(rest) = &rest {
            // The channel's progress message holds the outcome even if
            // this edit fails (the token lives 15 minutes).
            let _ = rest.edit_original(&token, &reply.text).await;
        }
    });
    ("accepted", Json(json!({ "type": 5 })).into_response())
}

fn button(
    state: &Arc<ServerState>,
    interaction: &Interaction,
    identity: Identity,
    conversation: Conversation,
) -> Answer {
    let custom_id = interaction.data["custom_id"].as_str().unwrap_or_default();
    let (meaning, id) = match custom_id.split_once(':') {
        Some((APPROVE_BUTTON, id)) => (Reaction::Approve, id),
        Some((DENY_BUTTON, id)) => (Reaction::Deny, id),
        _ => return ephemeral("ignored", "this button is not Gantry's"),
    };
    let Some(message) = interaction.message["id"].as_str() else {
        return plain("bad_request", StatusCode::BAD_REQUEST, "no message");
    };
    let owner = state.engine.request_for_message(
        crate::engine::Platform::Discord,
        &conversation.channel,
        message,
    );
    if owner.is_none() || owner != id.parse::<RequestId>().ok() {
        return ephemeral("ignored", "this button is not on a request's message");
    }
    let engine = state.engine.clone();
    let message = message.to_owned();
    tokio::spawn(async move {
        let reply = engine
            .react(
                &identity,
                crate::engine::Platform::Discord,
                &conversation.channel,
                &message,
                meaning,
            )
            .await;
        // A click has no other way to answer a refusal than the channel.
        if let Some(reply) = reply.filter(|r| r.is_refused()) {
            engine.say(&conversation, &reply.text).await;
        }
    });
    ("accepted", Json(json!({ "type": 6 })).into_response())
}
