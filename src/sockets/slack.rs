//! Slack's Socket Mode: inbound chat over a WebSocket Gantry opens, instead
//! of requests to a public URL. `POST apps.connections.open` with the
//! app-level token (`xapp-…`) gives a `wss://` URL; Slack sends `hello`,
//! then envelopes (`slash_commands`, `events_api`, `interactive`) whose
//! `payload` is what the HTTP routes receive. Each envelope is acknowledged
//! with its `envelope_id` (for a slash command with the ephemeral answer as
//! `payload`) once handled, which is quick: runs go to the background.
//!
//! There is no request signature: the connection is authenticated by the
//! app token. Envelopes are handled by the same code as the HTTP routes
//! (team check, de-duplication, approvals), and an envelope delivered twice
//! (same `envelope_id`) acts once. On `disconnect`, a close or an error the
//! client fetches a new URL and reconnects after 1, 2, 4 … s (at most 60 s).
//! An app token Slack refuses (`invalid_auth`, `not_authed`) stops it.

use std::sync::Arc;

use futures::{SinkExt, StreamExt};
use serde_json::json;
use tokio_tungstenite::tungstenite::Message;

use super::websocket::{ask_for_url, next_payload, reconnecting, Backoff, Ended, HELLO_TIMEOUT};
use crate::config::Secret;
use crate::inbound::{self, slack, Dispatched};
use crate::server::ServerState;

/// What the Socket Mode client needs.
#[derive(Clone)]
pub struct SocketSettings {
    /// Web API base URL (`https://slack.com/api/` or a fake's).
    pub api_url: String,
    /// App-level token (`xapp-…`).
    pub app_token: Secret,
    /// Workspaces whose envelopes are accepted.
    pub team_ids: Vec<String>,
    /// Reaction name that approves.
    pub approve_reaction: String,
    /// Reaction name that denies.
    pub deny_reaction: String,
}

/// The Socket Mode client.
pub struct SocketMode;

impl SocketMode {
    /// Runs the client until Slack refuses the token: connects, handles
    /// envelopes, reconnects with backoff. It shares the HTTP routes'
    /// state: its envelopes count in the same `/metrics`.
    pub async fn serve(state: Arc<ServerState>, settings: SocketSettings) {
        crate::tls::install_crypto();
        let decoding = slack::Settings {
            team_ids: settings.team_ids.clone(),
            approve_reaction: settings.approve_reaction.clone(),
            deny_reaction: settings.deny_reaction.clone(),
        };
        let (settings, state, decoding) = (&settings, &state, &decoding);
        reconnecting("slack socket mode", |backoff| async move {
            session(settings, decoding, state, &backoff).await
        })
        .await;
    }
}

/// `POST apps.connections.open`: the WebSocket URL.
async fn open(settings: &SocketSettings) -> Result<String, Ended> {
    let url = format!(
        "{}/apps.connections.open",
        settings.api_url.trim_end_matches('/')
    );
    let body = ask_for_url("apps.connections.open", |client| {
        client
            .post(&url)
            .header(
                "Authorization",
                format!("Bearer {}", settings.app_token.expose()),
            )
            .header("Content-Type", "application/x-www-form-urlencoded")
    })
    .await?;
    if body["ok"] != true {
        let error = body["error"].as_str().unwrap_or("no error code");
        let why = format!("apps.connections.open: {error}");
        return Err(match error {
            "invalid_auth" | "not_authed" | "not_allowed_token_type" => Ended::Fatal(why),
            _ => Ended::Retry(why),
        });
    }
    body["url"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| Ended::Retry("apps.connections.open: no url".into()))
}

/// One connection, until it ends.
async fn session(
    settings: &SocketSettings,
    decoding: &slack::Settings,
    state: &ServerState,
    backoff: &Backoff,
) -> Ended {
    let url = match open(settings).await {
        Ok(url) => url,
        Err(ended) => return ended,
    };
    let (socket, _) = match tokio_tungstenite::connect_async(&url).await {
        Ok(s) => s,
        Err(e) => return Ended::Retry(format!("cannot connect: {e}")),
    };
    let (mut write, mut read) = socket.split();
    match tokio::time::timeout(HELLO_TIMEOUT, next_payload(&mut read, never)).await {
        Ok(Ok(p)) if p["type"] == "hello" => {}
        Ok(Ok(p)) => return Ended::Retry(format!("expected hello, got {}", p["type"])),
        Ok(Err(ended)) => return ended,
        Err(_) => return Ended::Retry("no hello".into()),
    }
    backoff.reset();
    tracing::info!(transport = "slack socket mode", "connected");
    loop {
        let payload = match next_payload(&mut read, never).await {
            Ok(p) => p,
            Err(ended) => return ended,
        };
        let started = std::time::Instant::now();
        let bytes = payload.to_string();
        let message = match slack::socket_message(decoding, bytes.as_bytes()) {
            Ok(message) => message,
            Err(why) => {
                tracing::warn!(outcome = why.label(), "Socket Mode message not understood");
                continue;
            }
        };
        let (id, accepts_response_payload, route, inbound) = match message {
            slack::SocketMessage::Disconnect(reason) => {
                let _ = write.send(Message::Close(None)).await;
                return Ended::Retry(format!("Slack asked for a reconnect ({reason})"));
            }
            slack::SocketMessage::Hello | slack::SocketMessage::Other => continue,
            slack::SocketMessage::Envelope {
                id,
                accepts_response_payload,
                route,
                inbound,
            } => (id, accepts_response_payload, route, inbound),
        };
        let (outcome, answer) = match inbound {
            Ok(inbound) => {
                let answer = inbound::dispatch_spawned(&state.front, inbound).await;
                if answer == Dispatched::Duplicate {
                    state.metrics.duplicate(route);
                }
                (answer.label(), crate::server::slack_ephemeral(&answer))
            }
            Err(why) => {
                tracing::warn!(envelope = %id, outcome = why.label(), "Socket Mode envelope not acted on");
                (why.label(), None)
            }
        };
        // Socket Mode acknowledgements count in /metrics like the routes'.
        state.metrics.request(route, outcome, started.elapsed());
        let ack = match answer {
            Some(answer) if accepts_response_payload => {
                json!({ "envelope_id": id, "payload": answer })
            }
            _ => json!({ "envelope_id": id }),
        };
        if let Err(e) = write.send(Message::text(ack.to_string())).await {
            return Ended::Retry(format!("cannot acknowledge: {e}"));
        }
    }
}

/// Slack ends Socket Mode sessions with `disconnect` messages, never with
/// a close code that means "stop".
fn never(_code: u16) -> bool {
    false
}
