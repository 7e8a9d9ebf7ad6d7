//! A fake Slack Web API for tests and the sandbox, speaking the documented
//! wire format: `POST /api/<method>` with a JSON body and
//! `Authorization: Bearer <token>`, answered `{"ok":true,…}` or
//! `{"ok":false,"error":"<code>"}` (HTTP 200), and `429` with `Retry-After`
//! when rate limited. It keeps every version of every message so a test
//! reads the transcript a person would have seen.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use serde_json::{json, Value};

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
}

/// A running fake Slack.
#[derive(Clone)]
pub struct FakeSlack {
    inner: Arc<Mutex<Inner>>,
    token: Arc<String>,
    /// Where it listens; the Web API base URL is `http://{addr}/api/`.
    pub addr: SocketAddr,
}

impl FakeSlack {
    /// Starts a fake that accepts `token` on a free port of 127.0.0.1.
    pub async fn start(token: &str) -> std::io::Result<FakeSlack> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let fake = FakeSlack {
            inner: Arc::default(),
            token: Arc::new(token.to_owned()),
            addr,
        };
        let app = Router::new()
            .route("/api/{method}", post(call))
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

async fn call(
    State(fake): State<FakeSlack>,
    Path(method): Path<String>,
    headers: HeaderMap,
    body: String,
) -> Response {
    let body: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
    let mut inner = fake.inner();
    inner.calls.push(FakeCall {
        method: method.clone(),
        body: body.clone(),
    });
    let bearer = headers.get("authorization").and_then(|v| v.to_str().ok());
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
            let Some(message) = inner
                .messages
                .iter_mut()
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
            let Some(message) = inner
                .messages
                .iter_mut()
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
