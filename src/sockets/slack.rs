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
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

use super::websocket::{next_payload, reconnecting, Backoff, Ended, HELLO_TIMEOUT};
use crate::config::Secret;
use crate::engine::{system_clock, Engine};
use crate::server::slack::{run_command, CommandAnswer, SlashCommand};
use crate::server::slack_events::{handle_event, handle_interaction_payload};
use crate::server::{slack_escape, Metrics, ServerState, SlackInbound};

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
    /// envelopes, reconnects with backoff.
    /// With a state of its own (its own metrics, the system clock); a
    /// server passes its shared state to [`SocketMode::serve`] instead.
    pub async fn run(engine: Engine, settings: SocketSettings) {
        let state = Arc::new(ServerState {
            engine,
            slack: Some(SlackInbound {
                secrets: Vec::new(),
                team_ids: settings.team_ids.clone(),
                approve_reaction: settings.approve_reaction.clone(),
                deny_reaction: settings.deny_reaction.clone(),
            }),
            discord: None,
            github: None,
            metrics: Metrics::default(),
            clock: system_clock(),
        });
        SocketMode::serve(state, settings).await;
    }

    /// Runs the client with the HTTP routes' state: its envelopes count in
    /// the same `/metrics` and run on the same clock.
    pub async fn serve(state: Arc<ServerState>, settings: SocketSettings) {
        crate::tls::install_crypto();
        let (settings, state) = (&settings, &state);
        reconnecting("slack socket mode", |backoff| async move {
            session(settings, state, &backoff).await
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
    let answer = reqwest::Client::builder()
        .use_rustls_tls()
        .timeout(Duration::from_secs(10))
        .build()
        .map_err(|e| Ended::Retry(e.to_string()))?
        .post(&url)
        .header(
            "Authorization",
            format!("Bearer {}", settings.app_token.expose()),
        )
        .header("Content-Type", "application/x-www-form-urlencoded")
        .send()
        .await
        .map_err(|e| Ended::Retry(format!("apps.connections.open: {e}")))?;
    let status = answer.status();
    if !status.is_success() {
        return Err(Ended::Retry(format!("apps.connections.open: {status}")));
    }
    let body: Value = answer
        .json()
        .await
        .map_err(|e| Ended::Retry(format!("apps.connections.open: {e}")))?;
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
async fn session(settings: &SocketSettings, state: &Arc<ServerState>, backoff: &Backoff) -> Ended {
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
        if payload["type"] == "disconnect" {
            let reason = payload["reason"].as_str().unwrap_or("no reason");
            let _ = write.send(Message::Close(None)).await;
            return Ended::Retry(format!("Slack asked for a reconnect ({reason})"));
        }
        let Some(id) = payload["envelope_id"].as_str() else {
            continue;
        };
        let started = std::time::Instant::now();
        let answered = envelope(state, id, &payload).await;
        // Socket Mode acknowledgements count in /metrics like the routes'.
        let route = match payload["type"].as_str() {
            Some("slash_commands") => "socket_mode/slash_commands",
            Some("events_api") => "socket_mode/events_api",
            Some("interactive") => "socket_mode/interactive",
            _ => "socket_mode/other",
        };
        state.metrics.request(route, "acked", started.elapsed());
        let ack = match answered {
            Some(answer) if payload["accepts_response_payload"] == true => {
                json!({ "envelope_id": id, "payload": answer })
            }
            _ => json!({ "envelope_id": id }),
        };
        if let Err(e) = write.send(Message::text(ack.to_string())).await {
            return Ended::Retry(format!("cannot acknowledge: {e}"));
        }
    }
}

/// Handles one envelope as its HTTP route would; answers the response
/// payload for a slash command.
async fn envelope(state: &Arc<ServerState>, id: &str, envelope: &Value) -> Option<Value> {
    const ROUTE: &str = "socket_mode";
    let kind = envelope["type"].as_str().unwrap_or_default();
    let delivery = format!("slack-envelope:{id}");
    let payload = &envelope["payload"];
    if kind == "slash_commands" {
        let Ok(command) = serde_json::from_value::<SlashCommand>(payload.clone()) else {
            tracing::warn!(envelope = id, "Socket Mode envelope is not a slash command");
            return None;
        };
        // Recorded with its envelope id in the one dispatch.
        let answer = run_command(state, command, &delivery).await.1;
        if matches!(answer, CommandAnswer::Duplicate) {
            state.metrics.duplicate(ROUTE);
            return None;
        }
        let text = answer.text();
        return Some(json!({ "response_type": "ephemeral", "text": slack_escape(&text) }));
    }
    match crate::inbound::once(state.engine.store(), &delivery, (state.clock)()) {
        crate::inbound::Once::First => {}
        crate::inbound::Once::Duplicate => {
            state.metrics.duplicate(ROUTE);
            return None;
        }
        crate::inbound::Once::Unavailable(e) => {
            // Not acknowledging would make Slack retry, but the ack goes out
            // regardless; the natural keys below still de-duplicate events.
            tracing::warn!(envelope = id, error = %e, "cannot record a Socket Mode envelope");
        }
    }
    let outcome = match kind {
        "events_api" => match serde_json::to_vec(payload) {
            Ok(bytes) => handle_event(state, &bytes).0,
            Err(_) => "bad_request",
        },
        "interactive" => handle_interaction_payload(state, payload).0,
        _ => "ignored",
    };
    if !matches!(outcome, "accepted" | "ignored" | "duplicate") {
        tracing::warn!(
            envelope = id,
            kind,
            outcome,
            "Socket Mode envelope not handled"
        );
    }
    None
}

/// Slack ends Socket Mode sessions with `disconnect` messages, never with
/// a close code that means "stop".
fn never(_code: u16) -> bool {
    false
}
