//! The fake's gateway: a WebSocket server speaking Discord's gateway v10 in
//! JSON. It sends Hello (op 10), expects Identify (op 2) with the bot token
//! (else closes 4004 "Authentication failed") and the
//! `GUILD_MESSAGE_REACTIONS` intent (else closes 4013 "Invalid intent(s)"),
//! sends READY, acks every heartbeat (op 1 → op 11) and sends the
//! dispatches a test pushes, with increasing sequence numbers. Each session
//! keeps its dispatches, so a client that lost its connection can RESUME
//! (op 6 with `session_id` and the last `seq` it saw): the fake replays what
//! came after that and sends RESUMED, as Discord does; an unknown session
//! gets Invalid Session (op 9, `d: false`). Dispatches pushed while a
//! session has no connection wait in its log. Everything a client sends is
//! recorded.

use futures::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::Message;

use super::{FakeDiscord, Origin, BOT_USER};

/// `GUILD_MESSAGE_REACTIONS`, which the fake insists on.
const REACTIONS_INTENT: u64 = 1 << 10;
/// Heartbeat interval the fake asks for unless told otherwise.
const HEARTBEAT_MS: u64 = 41_250;

/// What a test sends down an identified connection.
#[derive(Debug)]
pub(super) enum Outbound {
    /// A dispatch with its sequence number.
    Dispatch(u64, String, Value),
    Close(u16, String),
}

/// One gateway session: what was dispatched to it, and its connection.
#[derive(Debug, Default)]
pub(crate) struct Session {
    log: Vec<(u64, String, Value)>,
    next_seq: u64,
    connection: Option<mpsc::UnboundedSender<Outbound>>,
}

/// Accepts gateway connections.
pub(super) async fn serve(listener: TcpListener, fake: FakeDiscord) {
    loop {
        let Ok((tcp, _)) = listener.accept().await else {
            continue;
        };
        let fake = fake.clone();
        tokio::spawn(async move {
            let _ = connection(tcp, fake).await;
        });
    }
}

fn text(value: &Value) -> Message {
    Message::text(value.to_string())
}

fn close(code: u16, reason: &str) -> Message {
    Message::Close(Some(CloseFrame {
        code: CloseCode::from(code),
        reason: reason.to_owned().into(),
    }))
}

async fn connection(
    tcp: tokio::net::TcpStream,
    fake: FakeDiscord,
) -> Result<(), tokio_tungstenite::tungstenite::Error> {
    let mut ws = tokio_tungstenite::accept_async(tcp).await?;
    let interval = fake.inner().heartbeat_ms.unwrap_or(HEARTBEAT_MS);
    ws.send(text(
        &json!({ "op": 10, "d": { "heartbeat_interval": interval } }),
    ))
    .await?;
    let identify = loop {
        let wait = tokio::time::timeout(std::time::Duration::from_secs(10), ws.next()).await;
        match wait {
            Ok(Some(Ok(Message::Text(t)))) => {
                break serde_json::from_str::<Value>(&t).unwrap_or(Value::Null)
            }
            Ok(Some(Ok(_))) => continue,
            _ => return Ok(()),
        }
    };
    fake.inner().gateway_received.push(identify.clone());
    if identify["op"] == 6 {
        return resume(ws, fake, &identify).await;
    }
    if identify["op"] != 2 || identify["d"]["token"].as_str() != Some(fake.token.as_str()) {
        ws.send(close(4004, "Authentication failed")).await?;
        return Ok(());
    }
    let intents = identify["d"]["intents"].as_u64().unwrap_or(0);
    if intents & REACTIONS_INTENT == 0 {
        ws.send(close(4013, "Invalid intent(s)")).await?;
        return Ok(());
    }
    let (tx, rx) = mpsc::unbounded_channel();
    let id = {
        let mut inner = fake.inner();
        let identified = inner
            .gateway_received
            .iter()
            .filter(|p| p["op"] == 2)
            .count();
        let id = format!("fake-session-{identified}");
        inner.gateway_sessions.insert(
            id.clone(),
            Session {
                log: Vec::new(),
                next_seq: 2,
                connection: Some(tx),
            },
        );
        id
    };
    let ready = json!({ "op": 0, "t": "READY", "s": 1, "d": {
        "v": 10,
        "user": { "id": BOT_USER.to_string(), "username": "gantry", "discriminator": "0", "bot": true },
        "guilds": [],
        "session_id": id,
        "resume_gateway_url": fake.gateway_url(),
        "application": { "id": fake.application_id.to_string(), "flags": 0 },
    }});
    ws.send(text(&ready)).await?;
    serve_session(ws, fake, rx).await
}

/// Op 6: picks the session up where the client's `seq` left it.
async fn resume(
    mut ws: tokio_tungstenite::WebSocketStream<tokio::net::TcpStream>,
    fake: FakeDiscord,
    resume: &Value,
) -> Result<(), tokio_tungstenite::tungstenite::Error> {
    if resume["d"]["token"].as_str() != Some(fake.token.as_str()) {
        ws.send(close(4004, "Authentication failed")).await?;
        return Ok(());
    }
    let id = resume["d"]["session_id"].as_str().unwrap_or_default();
    let seen = resume["d"]["seq"].as_u64().unwrap_or(0);
    let (tx, rx) = mpsc::unbounded_channel();
    let missed = {
        let mut inner = fake.inner();
        match inner.gateway_sessions.get_mut(id) {
            Some(session) => {
                session.connection = Some(tx);
                Some(
                    session
                        .log
                        .iter()
                        .filter(|(s, _, _)| *s > seen)
                        .cloned()
                        .collect::<Vec<_>>(),
                )
            }
            None => None,
        }
    };
    let Some(missed) = missed else {
        ws.send(text(&json!({ "op": 9, "d": false }))).await?;
        return Ok(());
    };
    for (s, t, d) in missed {
        ws.send(text(&json!({ "op": 0, "t": t, "s": s, "d": d })))
            .await?;
    }
    ws.send(text(
        &json!({ "op": 0, "t": "RESUMED", "s": null, "d": null }),
    ))
    .await?;
    serve_session(ws, fake, rx).await
}

/// Sends what the session is dispatched and answers heartbeats.
async fn serve_session(
    mut ws: tokio_tungstenite::WebSocketStream<tokio::net::TcpStream>,
    fake: FakeDiscord,
    mut rx: mpsc::UnboundedReceiver<Outbound>,
) -> Result<(), tokio_tungstenite::tungstenite::Error> {
    loop {
        tokio::select! {
            out = rx.recv() => match out {
                Some(Outbound::Dispatch(s, t, d)) => {
                    ws.send(text(&json!({ "op": 0, "t": t, "s": s, "d": d }))).await?;
                }
                Some(Outbound::Close(code, reason)) => {
                    ws.send(close(code, &reason)).await?;
                    return Ok(());
                }
                None => return Ok(()),
            },
            incoming = ws.next() => match incoming {
                Some(Ok(Message::Text(t))) => {
                    let payload: Value = serde_json::from_str(&t).unwrap_or(Value::Null);
                    fake.inner().gateway_received.push(payload.clone());
                    if payload["op"] == 1 {
                        ws.send(text(&json!({ "op": 11 }))).await?;
                    }
                }
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return Ok(()),
                Some(Ok(_)) => {}
            },
        }
    }
}

impl FakeDiscord {
    /// The URL `GET /gateway/bot` answers (`ws://…`).
    pub fn gateway_url(&self) -> String {
        format!("ws://{}", self.gateway_addr)
    }

    /// The heartbeat interval Hello asks for (default 41,250 ms).
    pub fn set_heartbeat_interval(&self, ms: u64) {
        self.inner().heartbeat_ms = Some(ms);
    }

    /// Every payload clients sent the gateway (Identify, heartbeats), in order.
    pub fn gateway_received(&self) -> Vec<Value> {
        self.inner().gateway_received.clone()
    }

    /// Open gateway connections (identified or resumed).
    pub fn gateway_sessions(&self) -> usize {
        self.inner()
            .gateway_sessions
            .values()
            .filter(|s| s.connection.as_ref().is_some_and(|c| !c.is_closed()))
            .count()
    }

    /// Sends dispatch `t` with payload `d` to every session that is
    /// connected or may resume; answers how many were connected. A
    /// session without a connection keeps it for its RESUME.
    pub fn dispatch(&self, t: &str, d: Value) -> usize {
        let mut inner = self.inner();
        let mut reached = 0;
        for session in inner.gateway_sessions.values_mut() {
            let seq = session.next_seq;
            session.next_seq += 1;
            session.log.push((seq, t.to_owned(), d.clone()));
            if let Some(c) = &session.connection {
                if c.send(Outbound::Dispatch(seq, t.to_owned(), d.clone()))
                    .is_ok()
                {
                    reached += 1;
                }
            }
        }
        reached
    }

    /// Closes every connection with `code`. Their sessions stay resumable,
    /// except after 4007 (invalid seq) and 4009 (session timed out), which
    /// end them as Discord does.
    pub fn close_gateway(&self, code: u16, reason: &str) {
        let mut inner = self.inner();
        for session in inner.gateway_sessions.values_mut() {
            if let Some(c) = session.connection.take() {
                let _ = c.send(Outbound::Close(code, reason.to_owned()));
            }
        }
        if matches!(code, 4007 | 4009) {
            inner.gateway_sessions.clear();
        }
    }

    /// `MESSAGE_REACTION_ADD` by `origin.user` (a bot when `bot`).
    pub fn reaction_add(&self, origin: Origin, message: &str, emoji: &str, bot: bool) -> usize {
        let mut d = reaction(origin, message, emoji);
        d["member"] = json!({
            "user": { "id": origin.user.to_string(), "username": format!("user{}", origin.user), "bot": bot },
            "roles": [], "joined_at": "2026-01-01T00:00:00.000000+00:00", "deaf": false, "mute": false,
        });
        self.dispatch("MESSAGE_REACTION_ADD", d)
    }

    /// `MESSAGE_REACTION_REMOVE` by `origin.user` (Discord sends no member).
    pub fn reaction_remove(&self, origin: Origin, message: &str, emoji: &str) -> usize {
        self.dispatch("MESSAGE_REACTION_REMOVE", reaction(origin, message, emoji))
    }
}

fn reaction(origin: Origin, message: &str, emoji: &str) -> Value {
    json!({
        "user_id": origin.user.to_string(),
        "channel_id": origin.channel.to_string(),
        "message_id": message,
        "guild_id": origin.guild.to_string(),
        "emoji": { "id": null, "name": emoji },
    })
}
