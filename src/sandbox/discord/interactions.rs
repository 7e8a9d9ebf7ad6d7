//! The fake's other direction: Discord sending interactions to Gantry's
//! `/discord/interactions`, signed with Ed25519 over `timestamp + body`
//! (`X-Signature-Ed25519`, `X-Signature-Timestamp`), and reading the
//! answer as Discord does: type 4 creates the original response, type 5
//! creates it in its "thinking" (loading) state for later edits.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::{FakeDiscord, FakeMessage};
use crate::adapters::discord::{COMMAND, TEXT_OPTION};
use crate::server::verify::discord_signature;

/// Message flag: only the person who invoked the interaction sees it.
pub const EPHEMERAL: u64 = 64;
/// Message flag: the deferred response still shows "thinking".
pub const LOADING: u64 = 128;

/// Where an interaction comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Origin {
    /// Guild (server) id.
    pub guild: u64,
    /// Channel id.
    pub channel: u64,
    /// The user's id.
    pub user: u64,
}

/// What Gantry answered one interaction.
#[derive(Debug, Clone)]
pub struct Sent {
    /// HTTP status.
    pub status: u16,
    /// The raw body.
    pub body: String,
    /// The body as JSON (`null` when it is not JSON).
    pub json: Value,
    /// How long the answer took.
    pub elapsed: Duration,
    /// The interaction's token (the key of its original response).
    pub token: String,
}

fn member(user: u64) -> Value {
    json!({
        "user": { "id": user.to_string(), "username": format!("user{user}"), "discriminator": "0",
                  "global_name": null, "avatar": null, "public_flags": 0 },
        "roles": [], "joined_at": "2026-01-01T00:00:00.000000+00:00", "deaf": false, "mute": false,
        "flags": 0, "permissions": "2248473465835073"
    })
}

/// An APPLICATION_COMMAND interaction (type 2) for `/gantry text:<text>`.
pub fn command_payload(application: u64, id: u64, token: &str, from: Origin, text: &str) -> Value {
    json!({
        "id": id.to_string(), "application_id": application.to_string(), "type": 2,
        "token": token, "version": 1, "locale": "en-US", "guild_locale": "en-US",
        "guild_id": from.guild.to_string(), "channel_id": from.channel.to_string(),
        "channel": { "id": from.channel.to_string(), "type": 0 },
        "member": member(from.user), "app_permissions": "2248473465835073",
        "data": { "id": "1200000000000000001", "name": COMMAND, "type": 1,
                  "guild_id": from.guild.to_string(),
                  "options": [{ "name": TEXT_OPTION, "type": 3, "value": text }] }
    })
}

/// A MESSAGE_COMPONENT interaction (type 3): a click on button `custom_id`
/// of `message` (a message object).
pub fn button_payload(
    application: u64,
    id: u64,
    token: &str,
    from: Origin,
    message: &Value,
    custom_id: &str,
) -> Value {
    json!({
        "id": id.to_string(), "application_id": application.to_string(), "type": 3,
        "token": token, "version": 1, "locale": "en-US", "guild_locale": "en-US",
        "guild_id": from.guild.to_string(), "channel_id": from.channel.to_string(),
        "channel": { "id": from.channel.to_string(), "type": 0 },
        "member": member(from.user), "message": message,
        "data": { "custom_id": custom_id, "component_type": 2 }
    })
}

impl FakeDiscord {
    /// The public key Gantry verifies with, as the developer portal shows it.
    pub fn public_key_hex(&self) -> String {
        hex::encode(self.key.verifying_key().to_bytes())
    }

    /// Signs `body` at `timestamp` as Discord does.
    pub fn sign(&self, timestamp: i64, body: &[u8]) -> String {
        discord_signature(&self.key, timestamp, body)
    }

    fn fresh(&self) -> (u64, String) {
        let id = FakeDiscord::next_id(&mut self.inner());
        (id, format!("aW50ZXJhY3Rpb246{id}"))
    }

    /// A PING (type 1), as Discord sends when the endpoint URL is saved.
    pub async fn ping(&self) -> Sent {
        let (id, token) = self.fresh();
        let payload = json!({
            "id": id.to_string(), "application_id": self.application_id.to_string(),
            "type": 1, "token": token, "version": 1
        });
        self.send(&payload).await
    }

    /// `user` runs `/gantry text:<text>` in `from`.
    pub async fn command(&self, from: Origin, text: &str) -> Sent {
        let (id, token) = self.fresh();
        let payload = command_payload(self.application_id, id, &token, from, text);
        self.send(&payload).await
    }

    /// `from.user` clicks button `custom_id` on message `message_id`.
    pub async fn click(&self, from: Origin, message_id: &str, custom_id: &str) -> Sent {
        let message = {
            let inner = self.inner();
            inner
                .messages
                .iter()
                .find(|m| m.id == message_id)
                .map(super::rest::message_json)
                .unwrap_or_else(
                    || json!({ "id": message_id, "channel_id": from.channel.to_string() }),
                )
        };
        let (id, token) = self.fresh();
        let payload = button_payload(self.application_id, id, &token, from, &message, custom_id);
        self.send(&payload).await
    }

    /// Signs and sends an interaction, and records the original response
    /// that Gantry's answer creates.
    pub async fn send(&self, payload: &Value) -> Sent {
        let body = payload.to_string().into_bytes();
        let ts = self.now();
        let headers = [
            ("X-Signature-Ed25519".to_owned(), self.sign(ts, &body)),
            ("X-Signature-Timestamp".to_owned(), ts.to_string()),
        ];
        let mut sent = self.send_raw(&headers, body).await;
        sent.token = payload["token"].as_str().unwrap_or_default().to_owned();
        let data = &sent.json["data"];
        let created = match sent.json["type"].as_u64() {
            Some(4) => Some((
                data["content"].as_str().unwrap_or_default().to_owned(),
                data["flags"].as_u64().unwrap_or(0),
            )),
            Some(5) => Some((String::new(), LOADING | data["flags"].as_u64().unwrap_or(0))),
            _ => None,
        };
        if let (Some((content, flags)), 200) = (created, sent.status) {
            let original = FakeMessage {
                channel: payload["channel_id"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
                id: sent.token.clone(),
                versions: vec![content],
                allowed_mentions: vec![data["allowed_mentions"].clone()],
                components: data["components"].clone(),
                reactions: Vec::new(),
                flags,
            };
            self.inner().originals.insert(sent.token.clone(), original);
        }
        sent
    }

    /// Posts `body` with exactly `headers` to Gantry's interactions URL.
    pub async fn send_raw(&self, headers: &[(String, String)], body: Vec<u8>) -> Sent {
        let url = self.inner().interactions_url.clone().unwrap_or_default();
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(20))
            .build();
        let started = Instant::now();
        let answer = match client {
            Ok(client) => {
                let mut request = client
                    .post(&url)
                    .header("Content-Type", "application/json")
                    .header(
                        "User-Agent",
                        "Discord-Interactions/1.0 (+https://discord.com)",
                    );
                for (name, value) in headers {
                    request = request.header(name.as_str(), value.as_str());
                }
                match request.body(body).send().await {
                    Ok(r) => (r.status().as_u16(), r.text().await.unwrap_or_default()),
                    Err(e) => (0, e.to_string()),
                }
            }
            Err(e) => (0, e.to_string()),
        };
        Sent {
            status: answer.0,
            json: serde_json::from_str(&answer.1).unwrap_or(Value::Null),
            body: answer.1,
            elapsed: started.elapsed(),
            token: String::new(),
        }
    }
}
