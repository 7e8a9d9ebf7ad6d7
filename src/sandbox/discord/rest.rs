//! The fake's REST side: one handler that authenticates, applies the
//! rate-limit buckets, records the call and dispatches on the route.

use std::time::Instant;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

use super::{FakeCall, FakeDiscord, FakeMessage, Inner, Window, BOT_USER, LIMIT, WINDOW};

const TIMESTAMP: &str = "2026-11-24T12:00:00.000000+00:00";

fn error(status: StatusCode, code: u32, message: &str) -> Response {
    (status, Json(json!({ "message": message, "code": code }))).into_response()
}

fn bot_user() -> Value {
    json!({
        "id": BOT_USER.to_string(), "username": "gantry", "discriminator": "0",
        "global_name": null, "avatar": null, "bot": true, "public_flags": 0
    })
}

/// A message object as Discord returns it.
pub(super) fn message_json(m: &FakeMessage) -> Value {
    json!({
        "id": m.id, "type": 0, "channel_id": m.channel,
        "content": m.versions.last().cloned().unwrap_or_default(),
        "author": bot_user(), "attachments": [], "embeds": [], "mentions": [],
        "mention_roles": [], "pinned": false, "mention_everyone": false, "tts": false,
        "timestamp": TIMESTAMP,
        "edited_timestamp": (m.versions.len() > 1).then_some(TIMESTAMP),
        "flags": m.flags, "components": m.components,
    })
}

/// Decodes `%XX` escapes (an emoji in a reaction route).
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(b)) => {
                out.push(b);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The bucket a route counts against: the route with its major parameter
/// (channel, webhook, guild) kept and the others collapsed.
fn bucket_of(method: &Method, segments: &[&str]) -> String {
    let shape: Vec<&str> = segments
        .iter()
        .enumerate()
        .map(|(i, s)| match i {
            4 => s,
            _ if s.bytes().all(|b| b.is_ascii_digit()) && !s.is_empty() => ":id",
            5 if segments.get(3) == Some(&"webhooks") => ":token",
            8 if segments.get(7) == Some(&"reactions") => ":emoji",
            _ => s,
        })
        .collect();
    let text = format!("{method} {}", shape.join("/"));
    // Discord's bucket ids are opaque hashes; a stable hex digest stands in.
    let digest = <sha2::Sha256 as sha2::Digest>::digest(text.as_bytes());
    hex::encode(&digest[..8])
}

fn header(name: &'static str, value: String) -> Option<(HeaderName, HeaderValue)> {
    Some((
        HeaderName::from_static(name),
        HeaderValue::from_str(&value).ok()?,
    ))
}

/// Answers every request.
pub(super) async fn handle(
    State(fake): State<FakeDiscord>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path().to_owned();
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let segments: Vec<&str> = path.split('/').collect();
    let webhook = segments.get(3) == Some(&"webhooks");
    let mut inner = fake.inner();
    let bucket = bucket_of(&method, &segments);
    let auth = headers.get("authorization").and_then(|v| v.to_str().ok());
    let mut response = if !webhook && auth != Some(format!("Bot {}", fake.token).as_str()) {
        error(StatusCode::UNAUTHORIZED, 0, "401: Unauthorized")
    } else if let Some(limited) = limit(&mut inner, &bucket) {
        limited
    } else {
        route(&fake, &mut inner, &method, &segments, &body)
    };
    let status = response.status().as_u16();
    inner.calls.push(FakeCall {
        method: method.to_string(),
        path,
        body,
        status,
    });
    let window = inner.windows.get(&bucket);
    let used = window.map_or(0, |w| w.used);
    let reset_after = window.map_or(WINDOW.as_secs_f64(), |w| {
        WINDOW.saturating_sub(w.started.elapsed()).as_secs_f64()
    });
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64());
    let rate_headers = [
        header("x-ratelimit-limit", LIMIT.to_string()),
        header(
            "x-ratelimit-remaining",
            LIMIT.saturating_sub(used).to_string(),
        ),
        header("x-ratelimit-reset", format!("{:.3}", now + reset_after)),
        header("x-ratelimit-reset-after", format!("{reset_after:.3}")),
        header("x-ratelimit-bucket", bucket),
    ];
    for (name, value) in rate_headers.into_iter().flatten() {
        response.headers_mut().entry(name).or_insert(value);
    }
    response
}

/// A 429 when one is forced or the bucket is spent; else counts the call.
fn limit(inner: &mut Inner, bucket: &str) -> Option<Response> {
    let retry_after = if inner.rate_limit_next > 0 {
        inner.rate_limit_next -= 1;
        inner.retry_after
    } else {
        let window = inner
            .windows
            .entry(bucket.to_owned())
            .or_insert_with(|| Window {
                started: Instant::now(),
                used: 0,
            });
        if window.started.elapsed() >= WINDOW {
            *window = Window {
                started: Instant::now(),
                used: 0,
            };
        }
        match inner.enforce {
            Some(limit) if window.used >= limit => WINDOW
                .saturating_sub(window.started.elapsed())
                .as_secs_f64(),
            _ => {
                window.used += 1;
                return None;
            }
        }
    };
    let mut response = (
        StatusCode::TOO_MANY_REQUESTS,
        Json(json!({
            "message": "You are being rate limited.", "retry_after": retry_after, "global": false
        })),
    )
        .into_response();
    let headers = [
        header("retry-after", format!("{}", retry_after.ceil().max(1.0))),
        header("x-ratelimit-remaining", "0".into()),
        header("x-ratelimit-reset-after", format!("{retry_after:.3}")),
        header("x-ratelimit-scope", "user".into()),
    ];
    for (name, value) in headers.into_iter().flatten() {
        response.headers_mut().insert(name, value);
    }
    Some(response)
}

/// Applies a create or edit body to a message: content, components,
/// allowed mentions.
fn apply(message: &mut FakeMessage, body: &Value, new_version: bool) {
    let content = body["content"].as_str().map(str::to_owned);
    if new_version {
        let text = content.unwrap_or_else(|| message.versions.last().cloned().unwrap_or_default());
        message.versions.push(text);
        message
            .allowed_mentions
            .push(body["allowed_mentions"].clone());
    }
    if !body["components"].is_null() {
        message.components = body["components"].clone();
    }
    if let Some(flags) = body["flags"].as_u64() {
        message.flags = flags;
    }
}

fn invalid(body: &Value) -> Option<Response> {
    let content = body["content"].as_str().unwrap_or_default();
    if content.chars().count() > crate::adapters::discord::MAX_CONTENT {
        return Some(error(
            StatusCode::BAD_REQUEST,
            50035,
            "Invalid Form Body: content: Must be 2000 or fewer in length.",
        ));
    }
    None
}

fn route(
    fake: &FakeDiscord,
    inner: &mut Inner,
    method: &Method,
    segments: &[&str],
    body: &Value,
) -> Response {
    let unknown_message = || error(StatusCode::NOT_FOUND, 10008, "Unknown Message");
    match (method.as_str(), segments) {
        ("POST", ["", "api", "v10", "channels", channel, "messages"]) => {
            if let Some(bad) = invalid(body) {
                return bad;
            }
            let empty = body["content"].as_str().is_none_or(str::is_empty);
            if empty && body["components"].as_array().is_none_or(Vec::is_empty) {
                return error(
                    StatusCode::BAD_REQUEST,
                    50006,
                    "Cannot send an empty message",
                );
            }
            let id = FakeDiscord::next_id(inner).to_string();
            let mut message = FakeMessage {
                channel: (*channel).to_owned(),
                id,
                versions: Vec::new(),
                allowed_mentions: Vec::new(),
                components: json!([]),
                reactions: Vec::new(),
                flags: 0,
            };
            apply(&mut message, body, true);
            let answer = message_json(&message);
            inner.messages.push(message);
            Json(answer).into_response()
        }
        ("PATCH", ["", "api", "v10", "channels", channel, "messages", id]) => {
            if let Some(bad) = invalid(body) {
                return bad;
            }
            let Some(message) = inner
                .messages
                .iter_mut()
                .find(|m| m.channel == *channel && m.id == *id)
            else {
                return unknown_message();
            };
            apply(message, body, true);
            Json(message_json(message)).into_response()
        }
        (
            "PUT",
            ["", "api", "v10", "channels", channel, "messages", id, "reactions", emoji, "@me"],
        ) => {
            let Some(message) = inner
                .messages
                .iter_mut()
                .find(|m| m.channel == *channel && m.id == *id)
            else {
                return unknown_message();
            };
            let emoji = percent_decode(emoji);
            if !message.reactions.contains(&emoji) {
                message.reactions.push(emoji);
            }
            StatusCode::NO_CONTENT.into_response()
        }
        ("GET", ["", "api", "v10", "gateway", "bot"]) => Json(json!({
            "url": fake.gateway_url(),
            "shards": 1,
            "session_start_limit": {
                "total": 1000, "remaining": 999, "reset_after": 86_400_000, "max_concurrency": 1
            },
        }))
        .into_response(),
        ("PATCH", ["", "api", "v10", "webhooks", app, token, "messages", "@original"]) => {
            if let Some(bad) = invalid(body) {
                return bad;
            }
            let known = *app == fake.application_id.to_string();
            let Some(message) = inner.originals.get_mut(*token).filter(|_| known) else {
                return error(StatusCode::NOT_FOUND, 10015, "Unknown Webhook");
            };
            apply(message, body, true);
            // Editing the deferred response ends its "thinking" state.
            message.flags &= !128;
            Json(message_json(message)).into_response()
        }
        ("PUT", ["", "api", "v10", "applications", app, "guilds", guild, "commands"]) => {
            let (Some(list), true) = (body.as_array(), *app == fake.application_id.to_string())
            else {
                return error(StatusCode::BAD_REQUEST, 50035, "Invalid Form Body");
            };
            let mut registered = Vec::new();
            for command in list {
                let mut command = command.clone();
                let id = FakeDiscord::next_id(inner).to_string();
                if let Some(fields) = command.as_object_mut() {
                    fields.insert("id".into(), json!(id));
                    fields.insert("application_id".into(), json!(app));
                    fields.insert("guild_id".into(), json!(guild));
                    fields.insert("version".into(), json!(id));
                    fields.entry("type").or_insert(json!(1));
                    fields
                        .entry("default_member_permissions")
                        .or_insert(Value::Null);
                }
                registered.push(command);
            }
            inner
                .commands
                .insert((*guild).to_owned(), json!(registered));
            Json(json!(registered)).into_response()
        }
        _ => error(StatusCode::NOT_FOUND, 0, "404: Not Found"),
    }
}
