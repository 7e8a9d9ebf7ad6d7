//! Discord's gateway (API v10, JSON encoding, no compression), for the one
//! thing only it delivers: reactions. `GET /api/v10/gateway/bot` gives the
//! WebSocket URL; the client answers Hello (op 10) with Identify (op 2,
//! intents `GUILDS | GUILD_MESSAGE_REACTIONS`), heartbeats (op 1, the last
//! sequence) every `heartbeat_interval` and expects an ack (op 11) before
//! the next beat. `MESSAGE_REACTION_ADD` of the approve emoji approves, of
//! the deny emoji denies, and `MESSAGE_REACTION_REMOVE` of the approve
//! emoji withdraws the approval, as reactions do in Slack. Reactions by
//! bots (and by Gantry itself) and from guilds not configured are ignored.
//!
//! Sessions are resumed: READY's `session_id` and `resume_gateway_url` and
//! the last sequence seen are kept, and when a connection ends (a close
//! that is not final, op 7 Reconnect, a missed heartbeat ack) Gantry
//! connects to the resume URL and sends RESUME (op 6) instead of Identify,
//! so the dispatches sent meanwhile — a reaction among them — are replayed
//! and acted on once. Invalid Session (op 9) with `d: false`, and closes
//! 4007 (invalid seq) and 4009 (session timed out), end the session: the
//! next connection identifies afresh. Reconnects wait 1, 2, 4 … s (at most
//! 60 s). Close codes Discord documents as final (4004 authentication
//! failed, 4010–4014 bad shard, version or intents) stop the client. The
//! first heartbeat waits a random part of the interval (jitter), as
//! Discord asks.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::{SinkExt, StreamExt};
use serde_json::json;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;

use super::websocket::{ask_for_url, next_payload, reconnecting, Backoff, Ended, HELLO_TIMEOUT};
use crate::config::Secret;
use crate::inbound::{self, discord, Dispatch, Inbound};
use crate::server::ServerState;

/// The gateway's name in `/metrics`.
const ROUTE: &str = "gateway/reactions";

/// `GUILDS` (1 << 0) and `GUILD_MESSAGE_REACTIONS` (1 << 10).
pub const INTENTS: u64 = (1 << 0) | (1 << 10);

/// What the gateway client needs.
#[derive(Clone)]
pub struct GatewaySettings {
    /// REST base URL (`https://discord.com` or a fake's).
    pub api_url: String,
    /// Bot token.
    pub token: Secret,
    /// The application's id.
    pub application_id: u64,
    /// Guilds whose reactions count.
    pub guild_ids: Vec<u64>,
    /// Emoji that approves.
    pub approve_emoji: String,
    /// Emoji that denies.
    pub deny_emoji: String,
}

/// What a lost connection resumes with.
#[derive(Debug, Clone)]
struct Resumable {
    session_id: String,
    url: String,
    seq: Option<u64>,
    /// The bot's own user id, from READY (RESUMED does not repeat it).
    me: Option<String>,
}

impl GatewaySettings {
    /// What decoding its dispatches needs.
    fn decoding(&self) -> discord::Settings {
        discord::Settings {
            application_id: self.application_id,
            guild_ids: self.guild_ids.clone(),
            approve_emoji: self.approve_emoji.clone(),
            deny_emoji: self.deny_emoji.clone(),
        }
    }

    /// Runs the client until a final close code: connects, handles
    /// reactions, reconnects with backoff.
    /// It shares the HTTP routes' state: its reactions count in the same
    /// `/metrics`.
    pub async fn run(self, state: Arc<ServerState>) {
        crate::tls::install_crypto();
        // Reactions are handled one at a time, in order, apart from the
        // socket so a long deploy never delays a heartbeat.
        let (tx, mut rx) = mpsc::unbounded_channel::<(Inbound, Instant)>();
        crate::work::spawn(async move {
            while let Some((inbound, arrived)) = rx.recv().await {
                let Dispatch { answer, work } = inbound::dispatch(&state.front, inbound).await;
                state
                    .metrics
                    .request(ROUTE, answer.label(), arrived.elapsed());
                if let Some(work) = work {
                    work.run().await;
                }
            }
        });
        let decoding = self.decoding();
        let decoding = &decoding;
        let resume = Mutex::new(None);
        let (this, tx, resume) = (&self, &tx, &resume);
        reconnecting("discord gateway", |backoff| async move {
            let ended = this.session(decoding, tx, &backoff, resume).await;
            if let Ended::Closed(4007 | 4009, _) = ended {
                // Discord ended the session: the next connection identifies.
                *lock(resume) = None;
            }
            ended
        })
        .await;
    }

    /// `GET /api/v10/gateway/bot`: the WebSocket URL.
    async fn gateway_url(&self) -> Result<String, Ended> {
        let url = format!("{}/api/v10/gateway/bot", self.api_url.trim_end_matches('/'));
        let body = ask_for_url("GET /gateway/bot", |client| {
            client
                .get(&url)
                .header("Authorization", format!("Bot {}", self.token.expose()))
        })
        .await?;
        let base = body["url"]
            .as_str()
            .ok_or_else(|| Ended::Retry("GET /gateway/bot: no url".into()))?;
        Ok(format!(
            "{}/?v=10&encoding=json",
            base.trim_end_matches('/')
        ))
    }

    /// One connection, until it ends: a RESUME of the session in `resume`
    /// when there is one, else a fresh Identify.
    async fn session(
        &self,
        decoding: &discord::Settings,
        tx: &mpsc::UnboundedSender<(Inbound, Instant)>,
        backoff: &Backoff,
        resume: &Mutex<Option<Resumable>>,
    ) -> Ended {
        let resuming = lock(resume).clone();
        let url = match &resuming {
            Some(r) => format!("{}/?v=10&encoding=json", r.url.trim_end_matches('/')),
            None => match self.gateway_url().await {
                Ok(url) => url,
                Err(ended) => return ended,
            },
        };
        let (socket, _) = match tokio_tungstenite::connect_async(&url).await {
            Ok(s) => s,
            Err(e) => return Ended::Retry(format!("cannot connect: {e}")),
        };
        let (mut write, mut read) = socket.split();
        let hello =
            match tokio::time::timeout(HELLO_TIMEOUT, next_payload(&mut read, final_close)).await {
                Ok(Ok(p)) if p["op"] == 10 => p,
                Ok(Ok(p)) => return Ended::Retry(format!("expected Hello, got op {}", p["op"])),
                Ok(Err(ended)) => return ended,
                Err(_) => return Ended::Retry("no Hello".into()),
            };
        let interval = hello["d"]["heartbeat_interval"].as_u64().unwrap_or(41_250);
        let hello_back = match &resuming {
            Some(r) => json!({ "op": 6, "d": {
                "token": self.token.expose(),
                "session_id": r.session_id,
                "seq": r.seq,
            }}),
            None => json!({ "op": 2, "d": {
                "token": self.token.expose(),
                "intents": INTENTS,
                "properties": { "os": std::env::consts::OS, "browser": "gantry", "device": "gantry" },
            }}),
        };
        if let Err(e) = write.send(Message::text(hello_back.to_string())).await {
            return Ended::Retry(format!("cannot identify or resume: {e}"));
        }
        let every = Duration::from_millis(interval.max(100));
        // The first beat comes after a random part of the interval.
        let mut beat = tokio::time::interval_at(tokio::time::Instant::now() + jitter(every), every);
        let mut sequence: Option<u64> = resuming.as_ref().and_then(|r| r.seq);
        let mut acked = true;
        let mut me: Option<String> = resuming.as_ref().and_then(|r| r.me.clone());
        loop {
            let payload = tokio::select! {
                _ = beat.tick() => {
                    if !acked {
                        return Ended::Retry("no heartbeat ack".into());
                    }
                    acked = false;
                    let beat = json!({ "op": 1, "d": sequence });
                    if let Err(e) = write.send(Message::text(beat.to_string())).await {
                        return Ended::Retry(format!("cannot heartbeat: {e}"));
                    }
                    continue;
                }
                payload = next_payload(&mut read, final_close) => match payload {
                    Ok(p) => p,
                    Err(ended) => return ended,
                },
            };
            if let Some(s) = payload["s"].as_u64() {
                sequence = Some(s);
                if let Some(r) = lock(resume).as_mut() {
                    r.seq = Some(s);
                }
            }
            match payload["op"].as_u64() {
                Some(11) => acked = true,
                Some(1) => {
                    let beat = json!({ "op": 1, "d": sequence });
                    if let Err(e) = write.send(Message::text(beat.to_string())).await {
                        return Ended::Retry(format!("cannot heartbeat: {e}"));
                    }
                }
                Some(7) => return Ended::Retry("Discord asked for a reconnect".into()),
                Some(9) => {
                    if payload["d"] != true {
                        *lock(resume) = None;
                    }
                    return Ended::Retry("invalid session".into());
                }
                Some(0) => {
                    let t = payload["t"].as_str().unwrap_or_default();
                    if t == "READY" {
                        me = payload["d"]["user"]["id"].as_str().map(str::to_owned);
                        *lock(resume) = payload["d"]["session_id"].as_str().map(|id| Resumable {
                            session_id: id.to_owned(),
                            url: payload["d"]["resume_gateway_url"].as_str().map_or_else(
                                || url.split("/?").next().unwrap_or(&url).to_owned(),
                                str::to_owned,
                            ),
                            seq: sequence,
                            me: me.clone(),
                        });
                        backoff.reset();
                        tracing::info!(transport = "discord gateway", "ready");
                    } else if t == "RESUMED" {
                        backoff.reset();
                        tracing::info!(transport = "discord gateway", "resumed");
                    } else if let Some(inbound) =
                        discord::gateway_dispatch(decoding, t, &payload["d"], me.as_deref())
                    {
                        let _ = tx.send((inbound, Instant::now()));
                    }
                }
                _ => {}
            }
        }
    }
}

/// The resume state, usable even if a holder panicked (it is plain data).
fn lock(resume: &Mutex<Option<Resumable>>) -> std::sync::MutexGuard<'_, Option<Resumable>> {
    resume.lock().unwrap_or_else(|e| e.into_inner())
}

/// A random part of `every`, from the clock's nanoseconds (no need for a
/// strong random source: it only spreads first heartbeats out).
fn jitter(every: Duration) -> Duration {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    every.mul_f64(f64::from(nanos % 1000) / 1000.0)
}

/// Close codes Discord documents as final: authentication failed (4004),
/// invalid shard (4010), sharding required (4011), invalid API version
/// (4012), invalid or disallowed intents (4013, 4014).
fn final_close(code: u16) -> bool {
    matches!(code, 4004 | 4010..=4014)
}
