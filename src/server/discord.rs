//! `POST /discord/interactions`: Discord's HTTP interactions endpoint.
//!
//! Discord signs each interaction with the application's Ed25519 key over
//! `X-Signature-Timestamp + body` and wants an answer within 3 seconds. It
//! also sends bad signatures on purpose to test an endpoint: those get 401.
//! The route verifies, decodes (`inbound::discord`), dispatches and
//! answers: PING with PONG; the `/gantry` command with a deferred response
//! (type 5) whose text the work edits later ("on it", then the command's
//! reply), while its progress goes to the channel; anything refused with
//! an ephemeral reply (type 4, flag 64); an Approve / Deny click with a
//! deferred update (type 6).

use std::sync::Arc;

use async_trait::async_trait;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use ed25519_dalek::VerifyingKey;
use serde_json::json;

use super::{read_body, rejected, timed, verify, Answered, ServerState};
use crate::adapters::discord::DiscordNotifier;
use crate::chat::discord::escape;
use crate::inbound::{self, discord, Answer, Dispatched, FollowUp, Rejected};

const ROUTE: &str = "/discord/interactions";

/// What the Discord route needs.
pub struct DiscordInbound {
    /// The application's public key, which verifies interactions.
    pub public_key: VerifyingKey,
    /// What decoding needs.
    pub settings: discord::Settings,
    /// Edits the original response of a deferred command; `None` leaves
    /// it as Discord shows it.
    pub rest: Option<Arc<DiscordNotifier>>,
}

/// Handles one interaction.
pub(super) async fn interactions(
    State(state): State<Arc<ServerState>>,
    request: Request<Body>,
) -> Response {
    timed(&state, ROUTE, handle(&state, request)).await
}

/// A reply only the invoking person sees; it can mention no one.
fn ephemeral(text: &str) -> Response {
    let data = json!({
        "content": escape(text), "flags": 64, "allowed_mentions": { "parse": [] }
    });
    Json(json!({ "type": 4, "data": data })).into_response()
}

/// The deferred answer of a `/gantry` command: its original response,
/// edited through the interaction token (valid for 15 minutes).
struct EditOriginal {
    rest: Arc<DiscordNotifier>,
    token: String,
}

#[async_trait]
impl FollowUp for EditOriginal {
    async fn update(&self, text: &str) {
        let _ = self.rest.edit_original(&self.token, text).await;
    }
}

struct NoFollowUp;

#[async_trait]
impl FollowUp for NoFollowUp {
    async fn update(&self, _text: &str) {}
}

async fn handle(state: &ServerState, request: Request<Body>) -> Answered {
    let Some(discord) = &state.discord else {
        return Err((
            "disabled",
            (StatusCode::NOT_FOUND, "Discord is not enabled").into_response(),
        ));
    };
    let (parts, bytes) = read_body(request).await?;
    let header = |name: &str| parts.headers.get(name).and_then(|v| v.to_str().ok());
    if let Err(e) = verify::discord(
        &discord.public_key,
        header("x-signature-timestamp"),
        header("x-signature-ed25519"),
        &bytes,
        (state.clock)(),
    ) {
        state.metrics.signature_failure(ROUTE);
        return Err((
            "unauthorized",
            (StatusCode::UNAUTHORIZED, e.to_string()).into_response(),
        ));
    }
    let decoded = match discord::interaction(&discord.settings, &bytes) {
        Ok(decoded) => decoded,
        Err(Rejected::Told(label, text)) => return Ok((label, ephemeral(&text))),
        Err(other) => return Err(rejected(other)),
    };
    let (mut inbound, deferred) = match decoded {
        discord::Decoded::Ping => return Ok(("pong", Json(json!({ "type": 1 })).into_response())),
        discord::Decoded::Command { inbound, token } => {
            let follow: Arc<dyn FollowUp> = match &discord.rest {
                Some(rest) => Arc::new(EditOriginal {
                    rest: rest.clone(),
                    token,
                }),
                None => Arc::new(NoFollowUp),
            };
            (inbound, Some(follow))
        }
        discord::Decoded::Button(inbound) => (inbound, None),
    };
    let is_command = deferred.is_some();
    if let Some(follow) = deferred {
        inbound.answer = Answer::FollowUp(follow);
    }
    let answer = inbound::dispatch_spawned(&state.front, inbound).await;
    let response = match &answer {
        // A deferred response for a command, a deferred update for a click.
        Dispatched::Accepted(_) => {
            Json(json!({ "type": if is_command { 5 } else { 6 } })).into_response()
        }
        Dispatched::Refused(_, text) => ephemeral(text),
        Dispatched::Ignored(idle) => (StatusCode::OK, idle.to_string()).into_response(),
        Dispatched::Duplicate => {
            state.metrics.duplicate(ROUTE);
            (StatusCode::OK, "duplicate").into_response()
        }
        Dispatched::Unavailable(why) => {
            (StatusCode::SERVICE_UNAVAILABLE, why.clone()).into_response()
        }
    };
    Ok((answer.label(), response))
}
