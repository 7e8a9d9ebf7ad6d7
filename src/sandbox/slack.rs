//! A fake Slack Web API for tests and the sandbox, speaking the documented
//! wire format: `POST /api/<method>` with a JSON body and
//! `Authorization: Bearer <token>`, answered `{"ok":true,…}` or
//! `{"ok":false,"error":"<code>"}` (HTTP 200), and `429` with `Retry-After`
//! when rate limited. It keeps every version of every message so a test
//! reads the transcript a person would have seen.
//!
//! Socket Mode: with an app token set, `apps.connections.open` (checked
//! against that token, not the bot's) answers the `ws://` URL of the fake's
//! own WebSocket server, which sends `hello`, sends the envelopes a test
//! pushes, records every acknowledgement and can send `disconnect`.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use futures::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;

/// The bot user the fake reports from `auth.test`.
pub const BOT_USER: &str = "UGANTRY00";

/// One message and its history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FakeMessage {
    /// Channel id.
    pub channel: String,
    /// Its `ts`, Slack's message id.
    pub ts: String,
    /// Every text it has had, oldest first.
    pub versions: Vec<String>,
    /// The Block Kit blocks of its latest version.
    pub blocks: Value,
    /// Reactions the bot added.
    pub reactions: Vec<String>,
}

/// One recorded call.
#[derive(Debug, Clone, PartialEq)]
pub struct FakeCall {
    /// The Web API method.
    pub method: String,
    /// The JSON body.
    pub body: Value,
}

#[derive(Debug, Default)]
struct Inner {
    messages: Vec<FakeMessage>,
    ephemeral: Vec<(String, String, String)>,
    calls: Vec<FakeCall>,
    rate_limit_next: u32,
    counter: u64,
    app_token: Option<String>,
    connections_opened: usize,
    socket_sessions: Vec<mpsc::UnboundedSender<String>>,
    socket_received: Vec<Value>,
    /// Envelopes sent and not acknowledged, by envelope id: as Slack does,
    /// the fake sends them again on the next connection.
    unacknowledged: Vec<Value>,
}

/// What the fake sends itself to drop a connection without a word.
const DROP: &str = "\u{0}drop";

/// A running fake Slack.
#[derive(Clone)]
pub struct FakeSlack {
    inner: Arc<Mutex<Inner>>,
    token: Arc<String>,
    /// Where it listens; the Web API base URL is `http://{addr}/api/`.
    pub addr: SocketAddr,
    socket_addr: SocketAddr,
}

impl FakeSlack {
    /// Starts a fake that accepts `token` on a free port of 127.0.0.1.
    pub async fn start(token: &str) -> std::io::Result<FakeSlack> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let sockets = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let fake = FakeSlack {
            inner: Arc::default(),
            token: Arc::new(token.to_owned()),
            addr,
            socket_addr: sockets.local_addr()?,
        };
        tokio::spawn(serve_sockets(sockets, fake.clone()));
        let app = Router::new()
            // Slack takes every Web API method as POST (JSON or form) or
            // GET (query string); slack-morphism sends `auth.test` as GET.
            .route("/api/{method}", post(call).get(call_get))
            .route("/_sandbox/messages", axum::routing::get(messages))
            .with_state(fake.clone());
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(fake)
    }

    /// The Web API base URL to give a client.
    pub fn api_url(&self) -> String {
        format!("http://{}/api/", self.addr)
    }

    fn inner(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Every message, in posting order.
    pub fn messages(&self) -> Vec<FakeMessage> {
        self.inner().messages.clone()
    }

    /// Every call received.
    pub fn calls(&self) -> Vec<FakeCall> {
        self.inner().calls.clone()
    }

    /// Answers the next `n` calls with 429 and `Retry-After: 1`.
    pub fn rate_limit_next(&self, n: u32) {
        self.inner().rate_limit_next = n;
    }

    /// Accepts `token` (`xapp-…`) for `apps.connections.open`.
    pub fn set_app_token(&self, token: &str) {
        self.inner().app_token = Some(token.to_owned());
    }

    /// How many times `apps.connections.open` handed out a URL.
    pub fn connections_opened(&self) -> usize {
        self.inner().connections_opened
    }

    /// Open Socket Mode connections (those that were sent `hello`).
    pub fn socket_sessions(&self) -> usize {
        let mut inner = self.inner();
        inner.socket_sessions.retain(|s| !s.is_closed());
        inner.socket_sessions.len()
    }

    /// Sends `envelope` to every open connection; answers how many it reached.
    pub fn push_envelope(&self, envelope: Value) -> usize {
        if envelope["envelope_id"].is_string() {
            self.inner().unacknowledged.push(envelope.clone());
        }
        self.push_text(&envelope.to_string())
    }

    /// Drops every open connection at once, with no `disconnect` and no
    /// close frame, as a network failure would; envelopes not acknowledged
    /// by then come again on the next connection (`retry_attempt` + 1).
    pub fn socket_drop(&self) -> usize {
        self.push_text(DROP)
    }

    /// Sends `text` as it is (say JSON with a key twice, which no
    /// serializer writes) to every open connection; answers how many it
    /// reached.
    pub fn push_text(&self, text: &str) -> usize {
        self.inner()
            .socket_sessions
            .iter()
            .filter(|s| s.send(text.to_owned()).is_ok())
            .count()
    }

    /// Sends `{"type":"disconnect","reason":…}` to every open connection,
    /// which the fake then closes.
    pub fn socket_disconnect(&self, reason: &str) -> usize {
        self.push_envelope(
            json!({ "type": "disconnect", "reason": reason, "debug_info": { "host": "fake" } }),
        )
    }

    /// Everything clients sent over Socket Mode (acknowledgements), in order.
    pub fn socket_received(&self) -> Vec<Value> {
        self.inner().socket_received.clone()
    }
}

/// Accepts Socket Mode connections.
async fn serve_sockets(listener: tokio::net::TcpListener, fake: FakeSlack) {
    loop {
        let Ok((tcp, _)) = listener.accept().await else {
            continue;
        };
        let fake = fake.clone();
        tokio::spawn(async move {
            let _ = socket(tcp, fake).await;
        });
    }
}

async fn socket(
    tcp: tokio::net::TcpStream,
    fake: FakeSlack,
) -> Result<(), tokio_tungstenite::tungstenite::Error> {
    let mut ws = tokio_tungstenite::accept_async(tcp).await?;
    let (tx, mut rx) = mpsc::unbounded_channel::<String>();
    let connections = {
        let mut inner = fake.inner();
        inner.socket_sessions.push(tx);
        inner.socket_sessions.len()
    };
    let hello = json!({
        "type": "hello", "num_connections": connections,
        "debug_info": { "host": "fake", "approximate_connection_time": 18060 },
        "connection_info": { "app_id": "A0GANTRY" },
    });
    ws.send(Message::text(hello.to_string())).await?;
    let again: Vec<Value> = fake.inner().unacknowledged.clone();
    for mut envelope in again {
        let attempt = envelope["retry_attempt"].as_u64().unwrap_or(0);
        envelope["retry_attempt"] = json!(attempt + 1);
        envelope["retry_reason"] = json!("timeout");
        ws.send(Message::text(envelope.to_string())).await?;
    }
    loop {
        tokio::select! {
            out = rx.recv() => match out {
                Some(text) if text == DROP => return Ok(()),
                Some(text) => {
                    ws.send(Message::text(text.clone())).await?;
                    let sent: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
                    if sent["type"] == "disconnect" {
                        let _ = ws.close(None).await;
                        return Ok(());
                    }
                }
                None => return Ok(()),
            },
            incoming = ws.next() => match incoming {
                Some(Ok(Message::Text(t))) => {
                    let payload: Value = serde_json::from_str(&t).unwrap_or(Value::Null);
                    let mut inner = fake.inner();
                    let id = payload["envelope_id"].clone();
                    inner.unacknowledged.retain(|e| e["envelope_id"] != id);
                    inner.socket_received.push(payload);
                }
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return Ok(()),
                Some(Ok(_)) => {}
            },
        }
    }
}

/// `GET /_sandbox/messages`: every message with every version, for
/// `gantry chat`. Not part of Slack's API: the sandbox's window into itself.
async fn messages(State(fake): State<FakeSlack>) -> Json<Value> {
    let all: Vec<Value> = fake
        .messages()
        .into_iter()
        .map(|m| json!({ "channel": m.channel, "ts": m.ts, "versions": m.versions }))
        .collect();
    Json(Value::Array(all))
}

fn error(code: &str) -> Response {
    Json(json!({ "ok": false, "error": code })).into_response()
}

async fn call_get(
    State(fake): State<FakeSlack>,
    Path(method): Path<String>,
    headers: HeaderMap,
    axum::extract::RawQuery(query): axum::extract::RawQuery,
) -> Response {
    let pairs: Vec<(String, String)> =
        serde_urlencoded::from_str(query.as_deref().unwrap_or("")).unwrap_or_default();
    let body = Value::Object(
        pairs
            .into_iter()
            .map(|(k, v)| (k, Value::String(v)))
            .collect(),
    );
    answer(&fake, method, &headers, body)
}

async fn call(
    State(fake): State<FakeSlack>,
    Path(method): Path<String>,
    headers: HeaderMap,
    body: String,
) -> Response {
    let body: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
    answer(&fake, method, &headers, body)
}

fn answer(fake: &FakeSlack, method: String, headers: &HeaderMap, body: Value) -> Response {
    let mut inner = fake.inner();
    inner.calls.push(FakeCall {
        method: method.clone(),
        body: body.clone(),
    });
    let bearer = headers.get("authorization").and_then(|v| v.to_str().ok());
    if method == "apps.connections.open" {
        let expected = inner.app_token.as_ref().map(|t| format!("Bearer {t}"));
        if bearer.is_none() {
            return error("not_authed");
        }
        if bearer.map(str::to_owned) != expected {
            return error("invalid_auth");
        }
        inner.connections_opened += 1;
        let url = format!(
            "ws://{}/link/?ticket=fake-ticket-{}&app_id=A0GANTRY",
            fake.socket_addr, inner.connections_opened
        );
        return Json(json!({ "ok": true, "url": url })).into_response();
    }
    if bearer != Some(format!("Bearer {}", fake.token).as_str()) {
        return error(if bearer.is_none() {
            "not_authed"
        } else {
            "invalid_auth"
        });
    }
    if inner.rate_limit_next > 0 {
        inner.rate_limit_next -= 1;
        return (
            StatusCode::TOO_MANY_REQUESTS,
            [("retry-after", "1")],
            Json(json!({"ok": false, "error": "ratelimited"})),
        )
            .into_response();
    }
    let text = body["text"].as_str().unwrap_or_default().to_owned();
    let channel = body["channel"].as_str().unwrap_or_default().to_owned();
    match method.as_str() {
        "auth.test" => Json(json!({
            "ok": true, "url": "https://sandbox.slack.com/", "team": "Sandbox", "user": "gantry",
            "team_id": "T0SANDBOX", "user_id": BOT_USER, "bot_id": "BGANTRY00"
        }))
        .into_response(),
        "chat.postMessage" => {
            if channel.is_empty() {
                return error("channel_not_found");
            }
            inner.counter += 1;
            let ts = format!("1700000000.{:06}", inner.counter);
            inner.messages.push(FakeMessage {
                channel: channel.clone(),
                ts: ts.clone(),
                versions: vec![text.clone()],
                blocks: body["blocks"].clone(),
                reactions: Vec::new(),
            });
            Json(json!({
                "ok": true, "channel": channel, "ts": ts,
                "message": { "type": "message", "text": text, "ts": ts, "user": BOT_USER, "bot_id": "BGANTRY00" }
            }))
            .into_response()
        }
        "chat.update" => {
            let ts = body["ts"].as_str().unwrap_or_default().to_owned();
            // Newest first: edits go to recent messages, and a long run
            // (a benchmark) holds many.
            let Some(message) = inner
                .messages
                .iter_mut()
                .rev()
                .find(|m| m.channel == channel && m.ts == ts)
            else {
                return error("message_not_found");
            };
            message.versions.push(text.clone());
            message.blocks = body["blocks"].clone();
            Json(json!({
                "ok": true, "channel": channel, "ts": ts, "text": text,
                "message": { "text": text, "user": BOT_USER, "bot_id": "BGANTRY00" }
            }))
            .into_response()
        }
        "chat.postEphemeral" => {
            let user = body["user"].as_str().unwrap_or_default().to_owned();
            inner.ephemeral.push((channel, user, text));
            inner.counter += 1;
            Json(json!({ "ok": true, "message_ts": format!("1700000000.{:06}", inner.counter) }))
                .into_response()
        }
        "reactions.add" => {
            let ts = body["timestamp"].as_str().unwrap_or_default().to_owned();
            let name = body["name"].as_str().unwrap_or_default().to_owned();
            // Newest first: edits go to recent messages, and a long run
            // (a benchmark) holds many.
            let Some(message) = inner
                .messages
                .iter_mut()
                .rev()
                .find(|m| m.channel == channel && m.ts == ts)
            else {
                return error("message_not_found");
            };
            if message.reactions.contains(&name) {
                return error("already_reacted");
            }
            message.reactions.push(name);
            Json(json!({ "ok": true })).into_response()
        }
        "users.info" => {
            let user = body["user"].as_str().unwrap_or_default();
            Json(json!({ "ok": true, "user": { "id": user, "name": user.to_lowercase(), "is_bot": user == BOT_USER } })).into_response()
        }
        _ => error("unknown_method"),
    }
}

/// Builds the transcript a person would read: every version of every
/// message, in order, keyed by message.
pub fn transcript(messages: &[FakeMessage]) -> BTreeMap<String, Vec<String>> {
    messages
        .iter()
        .map(|m| (m.ts.clone(), m.versions.clone()))
        .collect()
}
