//! A fake Discord for tests and the sandbox. It speaks the REST endpoints
//! serenity calls for Gantry (`/api/v10/...`: create and edit channel
//! messages, add a reaction, overwrite guild commands, edit an
//! interaction's original response), with `Authorization: Bot <token>`,
//! Discord's JSON shapes, and Discord's rate-limit headers
//! (`X-RateLimit-Limit/Remaining/Reset/Reset-After/Bucket`) on every answer;
//! a 429 carries `Retry-After` and `{"message": "You are being rate
//! limited.", "retry_after": …, "global": false}`. It keeps every version of
//! every message, so a test reads the transcript a person would have seen,
//! and it sends signed interactions to Gantry (see [`interactions`]).
//! `GET /api/v10/gateway/bot` points at its gateway (see [`gateway`]), a
//! WebSocket server on another port that delivers reactions.

pub mod gateway;
pub mod interactions;
mod rest;

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use axum::Router;
use ed25519_dalek::SigningKey;
use serde_json::Value;

use crate::engine::Clock;

pub use interactions::{button_payload, command_payload, Origin, Sent};

/// The bot user the fake posts as.
pub const BOT_USER: u64 = 1_100_000_000_000_000_001;

/// One message and its history.
#[derive(Debug, Clone, PartialEq)]
pub struct FakeMessage {
    /// Channel id.
    pub channel: String,
    /// Message id (for an original interaction response, its token).
    pub id: String,
    /// Every content it has had, oldest first.
    pub versions: Vec<String>,
    /// The `allowed_mentions` sent with each version.
    pub allowed_mentions: Vec<Value>,
    /// The components (action rows) of its latest version.
    pub components: Value,
    /// Reactions the bot added.
    pub reactions: Vec<String>,
    /// Message flags (64 = ephemeral, 128 = loading) of the latest version.
    pub flags: u64,
}

/// One recorded REST call.
#[derive(Debug, Clone, PartialEq)]
pub struct FakeCall {
    /// HTTP method.
    pub method: String,
    /// Path, e.g. `/api/v10/channels/1/messages`.
    pub path: String,
    /// The JSON body (`null` when there is none).
    pub body: Value,
    /// The status answered.
    pub status: u16,
}

/// A rate-limit bucket's window.
#[derive(Debug)]
struct Window {
    started: Instant,
    used: u32,
}

#[derive(Default)]
struct Inner {
    messages: Vec<FakeMessage>,
    /// Original interaction responses, by interaction token.
    originals: BTreeMap<String, FakeMessage>,
    /// Registered commands, by guild id.
    commands: BTreeMap<String, Value>,
    calls: Vec<FakeCall>,
    windows: HashMap<String, Window>,
    /// Requests per bucket window when enforced; `None` = only report.
    enforce: Option<u32>,
    /// Forced 429s still to answer, and their `retry_after`.
    rate_limit_next: u32,
    retry_after: f64,
    counter: u64,
    clock: Option<Clock>,
    interactions_url: Option<String>,
    /// Payloads clients sent the gateway.
    gateway_received: Vec<Value>,
    /// Gateway sessions by id: their dispatch log (for RESUME) and open
    /// connection.
    gateway_sessions: std::collections::BTreeMap<String, gateway::Session>,
    /// Heartbeat interval Hello asks for.
    heartbeat_ms: Option<u64>,
}

/// A running fake Discord.
#[derive(Clone)]
pub struct FakeDiscord {
    inner: Arc<Mutex<Inner>>,
    token: Arc<String>,
    key: Arc<SigningKey>,
    /// The application id interactions carry.
    pub application_id: u64,
    /// Where it listens; the base URL to give serenity is `http://{addr}`.
    pub addr: SocketAddr,
    /// Where its gateway listens (`ws://{gateway_addr}`).
    pub gateway_addr: SocketAddr,
}

/// Length of a rate-limit bucket's window.
const WINDOW: Duration = Duration::from_secs(5);
/// Requests per window Discord reports for message routes.
const LIMIT: u32 = 5;

impl FakeDiscord {
    /// Starts a fake that accepts bot `token`, sends interactions for
    /// `application_id` signed with `key`, on a free port of 127.0.0.1.
    pub async fn start(
        token: &str,
        application_id: u64,
        key: SigningKey,
    ) -> std::io::Result<FakeDiscord> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let gateway_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let gateway_addr = gateway_listener.local_addr()?;
        let fake = FakeDiscord {
            inner: Arc::default(),
            token: Arc::new(token.to_owned()),
            key: Arc::new(key),
            application_id,
            addr,
            gateway_addr,
        };
        tokio::spawn(gateway::serve(gateway_listener, fake.clone()));
        let app = Router::new()
            .fallback(rest::handle)
            .with_state(fake.clone());
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(fake)
    }

    /// The base URL to give a client (`HttpBuilder::proxy`).
    pub fn api_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn inner(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Every channel message, in posting order.
    pub fn messages(&self) -> Vec<FakeMessage> {
        self.inner().messages.clone()
    }

    /// Every original interaction response, by interaction token.
    pub fn originals(&self) -> BTreeMap<String, FakeMessage> {
        self.inner().originals.clone()
    }

    /// The commands registered in a guild (`null` when none).
    pub fn commands(&self, guild: u64) -> Value {
        let inner = self.inner();
        inner
            .commands
            .get(&guild.to_string())
            .cloned()
            .unwrap_or(Value::Null)
    }

    /// Every REST call received.
    pub fn calls(&self) -> Vec<FakeCall> {
        self.inner().calls.clone()
    }

    /// Answers the next `n` calls with 429 and `retry_after` seconds.
    pub fn rate_limit_next(&self, n: u32, retry_after: f64) {
        let mut inner = self.inner();
        inner.rate_limit_next = n;
        inner.retry_after = retry_after;
    }

    /// Enforces the buckets: more than five calls to one route within five
    /// seconds get 429, as Discord answers.
    pub fn enforce_buckets(&self, on: bool) {
        self.inner().enforce = on.then_some(LIMIT);
    }

    /// The clock interactions are signed with (default: the system's).
    pub fn set_clock(&self, clock: Clock) {
        self.inner().clock = Some(clock);
    }

    /// Where Gantry's interactions endpoint is (`http://…/discord/interactions`).
    pub fn set_interactions_url(&self, url: &str) {
        self.inner().interactions_url = Some(url.to_owned());
    }

    fn now(&self) -> i64 {
        let clock = self.inner().clock.clone();
        match clock {
            Some(clock) => clock(),
            None => crate::engine::system_clock()(),
        }
    }

    fn next_id(inner: &mut Inner) -> u64 {
        inner.counter += 1;
        1_300_000_000_000_000_000 + inner.counter
    }
}

/// Builds the transcript a person would read: every version of every
/// channel message, in order, keyed by message id.
pub fn transcript(messages: &[FakeMessage]) -> BTreeMap<String, Vec<String>> {
    messages
        .iter()
        .map(|m| (m.id.clone(), m.versions.clone()))
        .collect()
}

/// Text with the zero-width spaces of escaped mentions taken out, as a
/// person reads it.
pub fn shown(text: &str) -> String {
    text.replace('\u{200B}', "")
}

/// The variable holding the sandbox's Discord signing key (64 hex digits),
/// whose public half is the configured `public_key`.
pub const SIGNING_KEY_VAR: &str = "DISCORD_SANDBOX_SIGNING_KEY";

/// A signing key from its 32-byte seed in hex; `None` when malformed.
pub fn signing_key(hex_seed: &str) -> Option<SigningKey> {
    let seed: [u8; 32] = hex::decode(hex_seed.trim()).ok()?.try_into().ok()?;
    Some(SigningKey::from_bytes(&seed))
}
