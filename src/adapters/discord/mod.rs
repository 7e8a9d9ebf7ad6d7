//! Discord's REST API through serenity's `Http`: progress messages posted to
//! a channel and edited in place, reactions, the `/gantry` guild command,
//! and edits of an interaction's original (deferred) response. Approval
//! messages carry Approve / Deny buttons (message components), so a
//! deployment that only has the HTTP interactions endpoint can approve too.
//!
//! Every message is sent with `allowed_mentions: {"parse": []}` and its `@`
//! signs neutralised, so text echoed back can never mention anyone.
//!
//! Rate limits: against Discord itself serenity's ratelimiter follows the
//! `X-RateLimit-*` buckets. serenity 0.12's ratelimiter ignores
//! `HttpBuilder::proxy`, so a client pointed elsewhere (the fake) runs
//! without it and Gantry retries a 429 itself under the shared [`Policy`]
//! (serenity's error keeps no `Retry-After`, so the waits are the backoff).
//! Every call is a write: besides a 429, only a connection that was never
//! made is sent again; a timeout, a dropped connection or a `5xx` may have
//! posted the message, so the call fails instead.
//! Edits of one message are coalesced: an edit still waiting when a newer
//! one arrives is dropped, so a slow channel shows the latest state.

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use serenity::all::{
    ButtonStyle, ChannelId, CommandOptionType, CreateActionRow, CreateAllowedMentions,
    CreateButton, CreateCommand, CreateCommandOption, CreateMessage, EditInteractionResponse,
    EditMessage, GuildId, HttpBuilder, MessageId, ReactionType,
};
use serenity::http::{Http, HttpError};

use crate::adapters::retry::{self, Policy, Verdict};
use crate::config::Secret;
use crate::engine::ports::{Buttons, MessageRef, Notifier, PortError};
use crate::engine::Conversation;
use crate::names::RequestId;

pub use crate::chat::discord::{
    escape as discord_escape, APPROVE_BUTTON, COMMAND, COMPLETE_BUTTON, DENY_BUTTON,
    ROLLBACK_BUTTON, TEXT_OPTION,
};
/// Discord's base URL, which serenity's routes start with.
pub const DISCORD_URL: &str = "https://discord.com";
/// Longest message content Discord accepts, in characters.
pub const MAX_CONTENT: usize = 2000;

/// The retry policy unless replaced. Without serenity's ratelimiter, the
/// waits after 429s (at least 0.5, 1, 2 and 2 s) outlast a 5 s bucket window.
const POLICY: Policy = Policy {
    attempts: 5,
    base_delay: Duration::from_secs(1),
    max_delay: Duration::from_secs(4),
    max_retry_after: Duration::from_secs(30),
};
/// Waiting for an interaction's original response to exist: waits of up to
/// 0.1, 0.2, 0.4, 0.8 and 1.6 s.
const ORIGINAL_APPEARS: Policy = Policy {
    attempts: 6,
    base_delay: Duration::from_millis(100),
    max_delay: Duration::from_millis(1600),
    max_retry_after: Duration::ZERO,
};
/// Timeout of one HTTP call.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// Escaped and cut to Discord's content limit.
fn content(text: &str) -> String {
    let escaped = discord_escape(text);
    if escaped.chars().count() <= MAX_CONTENT {
        return escaped;
    }
    let mut cut: String = escaped.chars().take(MAX_CONTENT - 1).collect();
    cut.push('…');
    cut
}

fn no_mentions() -> CreateAllowedMentions {
    CreateAllowedMentions::new()
}

/// The action row with Approve and Deny for `request`.
pub fn approval_buttons(request: RequestId) -> Vec<CreateActionRow> {
    vec![CreateActionRow::Buttons(vec![
        CreateButton::new(format!("{APPROVE_BUTTON}:{request}"))
            .label("Approve")
            .style(ButtonStyle::Success),
        CreateButton::new(format!("{DENY_BUTTON}:{request}"))
            .label("Deny")
            .style(ButtonStyle::Danger),
    ])]
}

/// The action row with Roll back and Complete for a verifying `request`.
pub fn verifying_buttons(request: RequestId) -> Vec<CreateActionRow> {
    vec![CreateActionRow::Buttons(vec![
        CreateButton::new(format!("{ROLLBACK_BUTTON}:{request}"))
            .label("Roll back")
            .style(ButtonStyle::Danger),
        CreateButton::new(format!("{COMPLETE_BUTTON}:{request}"))
            .label("Complete")
            .style(ButtonStyle::Primary),
    ])]
}

/// The components for `buttons`: no rows for [`Buttons::None`].
pub fn components(buttons: Buttons) -> Vec<CreateActionRow> {
    match buttons {
        Buttons::None => Vec::new(),
        Buttons::Approval(request) => approval_buttons(request),
        Buttons::Verifying(request) => verifying_buttons(request),
    }
}

/// The `/gantry` command with its required `text` option.
pub fn gantry_command() -> CreateCommand {
    CreateCommand::new(COMMAND)
        .description("Deploy, approve, promote and roll back")
        .add_option(
            CreateCommandOption::new(
                CommandOptionType::String,
                TEXT_OPTION,
                "e.g. deploy main to dev",
            )
            .required(true)
            .max_length(512),
        )
}

/// The latest edit asked for one message, and a lock that keeps its edits
/// in order.
#[derive(Default)]
struct Slot {
    latest: AtomicU64,
    turn: tokio::sync::Mutex<()>,
}

/// Posts and edits progress messages in Discord.
pub struct DiscordNotifier {
    http: Http,
    /// Whether serenity's ratelimiter is off (pointed at a fake).
    own_retries: bool,
    policy: Policy,
    slots: Mutex<HashMap<String, Arc<Slot>>>,
    /// The base URL it calls.
    api_url: String,
}

impl DiscordNotifier {
    /// A client for `api_url` (`https://discord.com`, or a fake's base URL).
    pub fn new(api_url: &str, token: &Secret, application_id: u64) -> Result<Self, String> {
        let base = api_url.trim_end_matches('/');
        let client = reqwest::Client::builder()
            .use_rustls_tls()
            .timeout(CALL_TIMEOUT)
            .build()
            .map_err(|e| format!("cannot build the Discord HTTP client: {e}"))?;
        let mut builder = HttpBuilder::new(token.expose()).client(client);
        if let Some(id) = std::num::NonZeroU64::new(application_id) {
            builder = builder.application_id(id.into());
        }
        let own_retries = base != DISCORD_URL;
        if own_retries {
            builder = builder.proxy(base).ratelimiter_disabled(true);
        }
        Ok(DiscordNotifier {
            http: builder.build(),
            own_retries,
            policy: POLICY,
            slots: Mutex::default(),
            api_url: base.to_owned(),
        })
    }

    /// Replaces the retry policy.
    pub fn with_policy(mut self, policy: Policy) -> Self {
        self.policy = policy;
        self
    }

    /// The base URL it calls (`https://discord.com` or a fake's).
    pub fn api_url(&self) -> &str {
        &self.api_url
    }

    /// Registers (overwrites) the `/gantry` command in each guild.
    pub async fn register_commands(&self, guild_ids: &[u64]) -> Result<(), PortError> {
        for &guild in guild_ids {
            let guild = GuildId::from(nonzero(guild, "guild")?);
            self.call("register the command", || {
                guild.set_commands(&self.http, vec![gantry_command()])
            })
            .await?;
        }
        Ok(())
    }

    /// Replaces the text of an interaction's original response (the
    /// deferred "thinking" message). Edits are coalesced like messages'.
    pub async fn edit_original(
        &self,
        interaction_token: &str,
        text: &str,
    ) -> Result<(), PortError> {
        let body = EditInteractionResponse::new()
            .content(content(text))
            .allowed_mentions(no_mentions());
        self.coalesced(&format!("original/{interaction_token}"), || async {
            // Discord creates the original response when it reads the
            // deferred answer, which can be just after this edit is sent; a
            // 404 until then means nothing was edited.
            let edited = ORIGINAL_APPEARS
                .run(|| async {
                    let edited = self
                        .call("edit the original response", || {
                            self.http.edit_original_interaction_response(
                                interaction_token,
                                &body,
                                vec![],
                            )
                        })
                        .await;
                    match edited {
                        Ok(_) => Ok(()),
                        Err(e @ PortError::NotFound(_)) => Err(Verdict::Retry(e)),
                        Err(e) => Err(Verdict::Fail(e)),
                    }
                })
                .await;
            edited.map_err(|g| g.error)
        })
        .await
    }

    /// Runs `send` unless a newer edit of `key` arrives while it waits.
    async fn coalesced<F, Fut>(&self, key: &str, send: F) -> Result<(), PortError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<(), PortError>>,
    {
        let slot = {
            let mut slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
            slots.entry(key.to_owned()).or_default().clone()
        };
        let mine = slot.latest.fetch_add(1, Ordering::SeqCst) + 1;
        let turn = slot.turn.lock().await;
        // When a newer text for this message is queued behind us, it wins.
        let result = if slot.latest.load(Ordering::SeqCst) == mine {
            send().await
        } else {
            Ok(())
        };
        drop(turn);
        let mut slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
        // Clones are made under this lock, so two means no one else waits.
        if Arc::strong_count(&slot) == 2 {
            slots.remove(key);
        }
        result
    }

    /// Calls Discord under the notifier's policy and maps the error to a
    /// port error.
    async fn call<T, F, Fut>(&self, what: &str, call: F) -> Result<T, PortError>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = serenity::Result<T>>,
    {
        let done = self
            .policy
            .run(|| async {
                call()
                    .await
                    .map_err(|e| verdict(self.own_retries, what, &e))
            })
            .await;
        done.map_err(|g| g.error)
    }

    async fn post_with(
        &self,
        conversation: &Conversation,
        text: &str,
        buttons: Buttons,
    ) -> Result<MessageRef, PortError> {
        let channel = ChannelId::new(nonzero_text(&conversation.channel, "channel")?);
        let mut message = CreateMessage::new()
            .content(content(text))
            .allowed_mentions(no_mentions());
        if buttons != Buttons::None {
            message = message.components(components(buttons));
        }
        let posted = self
            .call("create message", || {
                channel.send_message(&self.http, message.clone())
            })
            .await?;
        Ok(MessageRef {
            conversation: conversation.clone(),
            id: posted.id.to_string(),
        })
    }
}

fn nonzero(id: u64, what: &str) -> Result<std::num::NonZeroU64, PortError> {
    std::num::NonZeroU64::new(id).ok_or_else(|| PortError::Invalid(format!("Discord {what} id 0")))
}

fn nonzero_text(id: &str, what: &str) -> Result<u64, PortError> {
    id.parse::<std::num::NonZeroU64>()
        .map(std::num::NonZeroU64::get)
        .map_err(|_| PortError::Invalid(format!("`{id}` is not a Discord {what} id")))
}

fn status(error: &serenity::Error) -> Option<u16> {
    match error {
        serenity::Error::Http(HttpError::UnsuccessfulRequest(r)) => Some(r.status_code.as_u16()),
        _ => None,
    }
}

/// What a failed call means. A 429 is retried only without serenity's
/// ratelimiter (which has waited already); a connection never made is
/// retried; a timeout, a dropped connection or a `5xx` leaves the write unknown.
fn verdict(own_retries: bool, what: &str, error: &serenity::Error) -> Verdict<PortError> {
    let e = port_error(what, error);
    match (status(error), error) {
        (Some(429), _) if own_retries => Verdict::Retry(e),
        (Some(500..=599), _) => Verdict::Unknown(e),
        (None, serenity::Error::Http(HttpError::Request(_))) if retry::never_sent(error) => {
            Verdict::Retry(e)
        }
        (None, serenity::Error::Http(HttpError::Request(_))) => Verdict::Unknown(e),
        _ => Verdict::Fail(e),
    }
}

fn port_error(what: &str, error: &serenity::Error) -> PortError {
    let text = format!("Discord {what}: {error}");
    match (status(error), error) {
        (Some(429), _) => PortError::RateLimited {
            retry_after: Duration::from_secs(1),
        },
        (Some(401 | 403), _) => PortError::Unauthorised(text),
        (Some(404), _) => PortError::NotFound(text),
        (Some(400), _) | (_, serenity::Error::Model(_)) => PortError::Invalid(text),
        (_, serenity::Error::Http(HttpError::Request(e))) if e.is_timeout() => {
            PortError::Timeout(text)
        }
        _ => PortError::Unavailable(text),
    }
}

#[async_trait]
impl Notifier for DiscordNotifier {
    async fn post(&self, conversation: &Conversation, text: &str) -> Result<MessageRef, PortError> {
        self.post_with(conversation, text, Buttons::None).await
    }

    async fn edit(&self, message: &MessageRef, text: &str) -> Result<(), PortError> {
        self.edit_asking(message, text, Buttons::None).await
    }

    /// `GET /gateway/bot`: Discord answers and the bot token is good.
    async fn ping(&self) -> Vec<(String, Result<(), PortError>)> {
        let answer = self.http.get_bot_gateway().await.map(drop);
        vec![(
            "discord".to_owned(),
            answer.map_err(|e| port_error("get the gateway", &e)),
        )]
    }

    async fn react(&self, message: &MessageRef, emoji: &str) -> Result<(), PortError> {
        let channel = ChannelId::new(nonzero_text(&message.conversation.channel, "channel")?);
        let id = MessageId::new(nonzero_text(&message.id, "message")?);
        let emoji = emoji.trim_matches(':');
        let reaction = ReactionType::try_from(emoji)
            .unwrap_or_else(|_| ReactionType::Unicode(emoji.to_owned()));
        self.call("create reaction", || {
            self.http.create_reaction(channel, id, &reaction)
        })
        .await
    }

    async fn post_asking(
        &self,
        conversation: &Conversation,
        text: &str,
        buttons: Buttons,
    ) -> Result<MessageRef, PortError> {
        self.post_with(conversation, text, buttons).await
    }

    async fn edit_asking(
        &self,
        message: &MessageRef,
        text: &str,
        buttons: Buttons,
    ) -> Result<(), PortError> {
        let channel = ChannelId::new(nonzero_text(&message.conversation.channel, "channel")?);
        let id = MessageId::new(nonzero_text(&message.id, "message")?);
        // An empty list removes the buttons a message had.
        let edit = EditMessage::new()
            .content(content(text))
            .allowed_mentions(no_mentions())
            .components(components(buttons));
        let key = format!("{}/{}", message.conversation.channel, message.id);
        self.coalesced(&key, || async {
            self.call("edit message", || {
                channel.edit_message(&self.http, id, edit.clone())
            })
            .await
            .map(drop)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mentions_are_neutralised() {
        for text in ["@everyone", "@here", "<@80351110224678912>", "<@&123>"] {
            let escaped = discord_escape(text);
            assert!(!escaped.contains("@e") && !escaped.contains("@h") && !escaped.contains("@8"));
            assert!(escaped.contains("@\u{200B}"), "{escaped}");
        }
    }

    #[test]
    fn long_text_is_cut_to_the_limit() {
        let long = "x".repeat(MAX_CONTENT + 10);
        let cut = content(&long);
        assert_eq!(cut.chars().count(), MAX_CONTENT);
        assert!(cut.ends_with('…'));
        assert_eq!(content("short"), "short");
    }

    #[tokio::test]
    async fn a_429_is_retried_up_to_the_policy_s_attempts() {
        use crate::sandbox::discord::FakeDiscord;
        let key = ed25519_dalek::SigningKey::from_bytes(&[7; 32]);
        let fake = FakeDiscord::start("bot-token", 1, key).await.unwrap();
        let quick = Policy {
            attempts: 3,
            base_delay: Duration::from_millis(1),
            max_delay: Duration::from_millis(2),
            max_retry_after: Duration::from_secs(1),
        };
        let discord = DiscordNotifier::new(&fake.api_url(), &Secret::new("bot-token".into()), 1)
            .unwrap()
            .with_policy(quick);
        let conversation = Conversation {
            platform: crate::engine::Platform::Discord,
            channel: "42".into(),
        };
        fake.rate_limit_next(5, 0.0);
        let err = discord.post(&conversation, "hello").await.unwrap_err();
        assert!(matches!(err, PortError::RateLimited { .. }), "{err}");
        assert_eq!(fake.calls().len(), 3);
        fake.rate_limit_next(1, 0.0);
        discord.post(&conversation, "hello").await.unwrap();
        let statuses: Vec<u16> = fake.calls().iter().map(|c| c.status).collect();
        assert_eq!(statuses[3..], [429, 200]);
        assert_eq!(fake.messages().len(), 1);
    }

    #[test]
    fn buttons_carry_the_request() {
        let rows = serde_json::to_value(approval_buttons(RequestId(7))).unwrap();
        assert_eq!(rows[0]["type"], 1);
        assert_eq!(rows[0]["components"][0]["custom_id"], "gantry_approve:R-7");
        assert_eq!(rows[0]["components"][1]["custom_id"], "gantry_deny:R-7");
        let command = serde_json::to_value(gantry_command()).unwrap();
        assert_eq!(command["name"], COMMAND);
        assert_eq!(command["options"][0]["name"], TEXT_OPTION);
        assert_eq!(command["options"][0]["type"], 3);
    }
}
