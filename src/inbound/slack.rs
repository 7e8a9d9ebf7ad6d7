//! Slack's inbound payloads, decoded into [`Inbound`]s.
//!
//! - Slash commands: a form (`team_id`, `user_id`, `channel_id`,
//!   `command`, `text`, …) over HTTP, the same fields as JSON in a Socket
//!   Mode `slash_commands` envelope. `/deploy X` means `deploy X`; under
//!   `/gantry` the text is the command. Answered in band (ephemeral).
//! - Events API (`event_callback`): `reaction_added` of the approve
//!   reaction approves, of the deny reaction denies, `reaction_removed` of
//!   the approve reaction withdraws; de-duplicated by `event_id` (Slack
//!   retries with the same id). `url_verification` is a handshake.
//! - Interactivity (`block_actions`): the Approve and Deny buttons, and
//!   Roll back and Complete, whose `value` is the request id and which run
//!   as `rollback R-7` / `complete R-7` from the clicker; de-duplicated by
//!   `trigger_id` and `action_ts`. Over HTTP it is a form whose one
//!   `payload` field holds the JSON.
//! - Socket Mode envelopes: `{type, envelope_id, payload}` whose payload is
//!   one of the above.
//!
//! Every JSON body is checked for repeated keys first.

use serde::Deserialize;
use serde_json::Value;

use super::{unique_keys, Answer, Click, CommandText, Control, Inbound, Rejected, What, Who};
use crate::chat::slack::{APPROVE_ACTION, COMPLETE_ACTION, DENY_ACTION, ROLLBACK_ACTION};
use crate::engine::{Conversation, Platform, Reaction};
use crate::names::{Identity, RequestId};

/// What decoding Slack needs from config.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Workspaces whose requests are accepted.
    pub team_ids: Vec<String>,
    /// Reaction name that approves.
    pub approve_reaction: String,
    /// Reaction name that denies.
    pub deny_reaction: String,
}

const UNKNOWN_TEAM: &str = "this Slack workspace is not configured for Gantry";

/// The fields of a slash command Gantry reads; Slack sends more.
#[derive(Debug, Deserialize)]
struct SlashCommand {
    team_id: String,
    user_id: String,
    channel_id: String,
    /// `/gantry`, or `/deploy` when the app also has that command.
    #[serde(default)]
    command: String,
    #[serde(default)]
    text: String,
}

/// A slash command's form body, as `POST /slack/commands` receives it;
/// `delivery` names this request (Slack gives slash commands no id).
pub fn slash_command_form(
    settings: &Settings,
    bytes: &[u8],
    delivery: String,
) -> Result<Inbound, Rejected> {
    if std::str::from_utf8(bytes).is_err() {
        return Err(Rejected::Malformed("body is not UTF-8".into()));
    }
    let form = serde_urlencoded::from_bytes::<SlashCommand>(bytes)
        .map_err(|_| Rejected::Malformed("not a slash command form".into()))?;
    slash_command(settings, form, delivery)
}

fn slash_command(
    settings: &Settings,
    form: SlashCommand,
    delivery: String,
) -> Result<Inbound, Rejected> {
    let who = identity(settings, &form.team_id, &form.user_id)?;
    let text = match form.command.as_str() {
        "/deploy" => format!("deploy {}", form.text.trim_start()),
        _ => form.text,
    };
    Ok(Inbound {
        delivery: Some(delivery),
        place: conversation(form.channel_id),
        answer: Answer::InBand,
        what: What::Command {
            who: Who::Known(who),
            text: CommandText::Typed(text),
        },
    })
}

/// What an Events API body is.
pub enum Event {
    /// `url_verification`: answer with this challenge.
    Challenge(String),
    /// Something to dispatch.
    Inbound(Inbound),
}

#[derive(Debug, Deserialize)]
struct Envelope {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    challenge: String,
    #[serde(default)]
    team_id: String,
    #[serde(default)]
    event_id: String,
    #[serde(default)]
    event: Value,
}

/// An Events API body, as `POST /slack/events` receives it.
pub fn event(settings: &Settings, bytes: &[u8]) -> Result<Event, Rejected> {
    unique_keys(bytes, "the JSON body")?;
    let envelope = serde_json::from_slice::<Envelope>(bytes)
        .map_err(|_| Rejected::Malformed("not an Events API payload".into()))?;
    match envelope.kind.as_str() {
        "url_verification" => return Ok(Event::Challenge(envelope.challenge)),
        "event_callback" => {}
        _ => return Err(Rejected::Ignored("ignored")),
    }
    if !settings.team_ids.contains(&envelope.team_id) {
        return Err(Rejected::Forbidden(UNKNOWN_TEAM.into()));
    }
    let event = &envelope.event;
    let kind = event["type"].as_str().unwrap_or_default();
    let name = event["reaction"].as_str().unwrap_or_default();
    let reaction = match kind {
        "reaction_added" if name == settings.approve_reaction => Reaction::Approve,
        "reaction_added" if name == settings.deny_reaction => Reaction::Deny,
        "reaction_removed" if name == settings.approve_reaction => Reaction::Revoke,
        _ => return Err(Rejected::Ignored("ignored")),
    };
    let (Some(user), Some(channel), Some(ts)) = (
        event["user"].as_str(),
        event["item"]["channel"].as_str(),
        event["item"]["ts"].as_str(),
    ) else {
        return Err(Rejected::Ignored("ignored"));
    };
    let who =
        identity(settings, &envelope.team_id, user).map_err(|_| Rejected::Ignored("ignored"))?;
    let delivery = format!("slack-event:{}", envelope.event_id);
    Ok(Event::Inbound(on_message(
        delivery, who, channel, ts, reaction,
    )))
}

#[derive(Debug, Deserialize)]
struct InteractionForm {
    payload: String,
}

/// An interactivity form, as `POST /slack/interactions` receives it.
pub fn interaction_form(settings: &Settings, bytes: &[u8]) -> Result<Inbound, Rejected> {
    let form = serde_urlencoded::from_bytes::<InteractionForm>(bytes)
        .map_err(|_| Rejected::Malformed("no payload field".into()))?;
    unique_keys(form.payload.as_bytes(), "the payload field")?;
    let payload = serde_json::from_str::<Value>(&form.payload)
        .map_err(|_| Rejected::Malformed("payload is not JSON".into()))?;
    interaction(settings, &payload)
}

/// An interactivity payload (`block_actions`), however it arrived.
fn interaction(settings: &Settings, payload: &Value) -> Result<Inbound, Rejected> {
    if payload["type"] != "block_actions" {
        return Err(Rejected::Ignored("ignored"));
    }
    let team = payload["team"]["id"].as_str().unwrap_or_default();
    if !settings.team_ids.iter().any(|t| t == team) {
        return Err(Rejected::Forbidden(UNKNOWN_TEAM.into()));
    }
    let action = &payload["actions"][0];
    let click = match action["action_id"].as_str() {
        Some(APPROVE_ACTION) => Click::Reaction(Reaction::Approve),
        Some(DENY_ACTION) => Click::Reaction(Reaction::Deny),
        Some(ROLLBACK_ACTION) => Click::Control(Control::RollBack),
        Some(COMPLETE_ACTION) => Click::Control(Control::Complete),
        _ => return Err(Rejected::Ignored("ignored")),
    };
    let (Some(channel), Some(ts)) = (
        payload["channel"]["id"].as_str(),
        payload["message"]["ts"].as_str(),
    ) else {
        return Err(Rejected::Malformed("no channel or message".into()));
    };
    let user = payload["user"]["id"].as_str().unwrap_or_default();
    let who = identity(settings, team, user)?;
    let delivery = format!(
        "slack-action:{}:{}",
        payload["trigger_id"].as_str().unwrap_or_default(),
        action["action_ts"].as_str().unwrap_or_default()
    );
    let control = match click {
        Click::Reaction(reaction) => return Ok(on_message(delivery, who, channel, ts, reaction)),
        Click::Control(control) => control,
    };
    let Some(request) = action["value"]
        .as_str()
        .and_then(|v| v.parse::<RequestId>().ok())
    else {
        return Err(Rejected::Ignored("ignored"));
    };
    Ok(Inbound {
        delivery: Some(delivery),
        place: conversation(channel.to_owned()),
        answer: Answer::InBand,
        what: What::Control {
            who,
            message: ts.to_owned(),
            control,
            request,
        },
    })
}

/// A reaction or click by `who` on message `ts` in `channel`.
fn on_message(
    delivery: String,
    who: Identity,
    channel: &str,
    ts: &str,
    reaction: Reaction,
) -> Inbound {
    Inbound {
        delivery: Some(delivery),
        place: conversation(channel.to_owned()),
        answer: Answer::InBand,
        what: What::Reaction {
            who,
            message: ts.to_owned(),
            reaction,
            button: None,
        },
    }
}

/// A Socket Mode message.
pub enum SocketMessage {
    /// `hello`: the connection is ready.
    Hello,
    /// `disconnect`: Slack asks for a new connection, for this reason.
    Disconnect(String),
    /// An envelope to acknowledge with `id`, when the payload is a slash
    /// command with the in-band answer if `accepts_response_payload`.
    Envelope {
        /// `envelope_id`.
        id: String,
        /// Whether the acknowledgement may carry a response payload.
        accepts_response_payload: bool,
        /// The route it stands for in `/metrics`.
        route: &'static str,
        /// What it holds, or why it is not acted on.
        inbound: Result<Inbound, Rejected>,
    },
    /// Anything else; nothing to acknowledge.
    Other,
}

/// A Socket Mode message's text. The connection is authenticated by the
/// app token, so there is no signature; the payloads are decoded as their
/// HTTP routes' are, with the same team checks and delivery ids (a
/// slash command's is its envelope id).
pub fn socket_message(settings: &Settings, bytes: &[u8]) -> Result<SocketMessage, Rejected> {
    unique_keys(bytes, "the Socket Mode message")?;
    let message = serde_json::from_slice::<Value>(bytes)
        .map_err(|_| Rejected::Malformed("a Socket Mode message that is not JSON".into()))?;
    let kind = message["type"].as_str().unwrap_or_default();
    match kind {
        "hello" => return Ok(SocketMessage::Hello),
        "disconnect" => {
            let reason = message["reason"].as_str().unwrap_or("no reason");
            return Ok(SocketMessage::Disconnect(reason.to_owned()));
        }
        _ => {}
    }
    let Some(id) = message["envelope_id"].as_str() else {
        return Ok(SocketMessage::Other);
    };
    let payload = message["payload"].clone();
    let (route, inbound) = match kind {
        "slash_commands" => (
            "socket_mode/slash_commands",
            serde_json::from_value::<SlashCommand>(payload)
                .map_err(|_| Rejected::Malformed("not a slash command".into()))
                .and_then(|form| slash_command(settings, form, format!("slack-envelope:{id}"))),
        ),
        "events_api" => (
            "socket_mode/events_api",
            serde_json::to_vec(&payload)
                .map_err(|_| Rejected::Malformed("not an Events API payload".into()))
                .and_then(|bytes| event(settings, &bytes))
                .and_then(|event| match event {
                    Event::Inbound(inbound) => Ok(inbound),
                    Event::Challenge(_) => Err(Rejected::Ignored("ignored")),
                }),
        ),
        "interactive" => ("socket_mode/interactive", interaction(settings, &payload)),
        _ => ("socket_mode/other", Err(Rejected::Ignored("ignored"))),
    };
    Ok(SocketMessage::Envelope {
        id: id.to_owned(),
        accepts_response_payload: message["accepts_response_payload"] == true,
        route,
        inbound,
    })
}

fn identity(settings: &Settings, team: &str, user: &str) -> Result<Identity, Rejected> {
    if !settings.team_ids.iter().any(|t| t == team) {
        return Err(Rejected::Forbidden(UNKNOWN_TEAM.into()));
    }
    format!("slack:{team}:{user}")
        .parse::<Identity>()
        .map_err(|_| Rejected::Malformed("malformed team or user id".into()))
}

fn conversation(channel: String) -> Conversation {
    Conversation {
        platform: Platform::Slack,
        channel,
    }
}
