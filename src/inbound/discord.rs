//! Discord's inbound payloads, decoded into [`Inbound`]s.
//!
//! - HTTP interactions: PING (type 1) is a handshake; the `/gantry`
//!   application command (type 2) carries the command in its `text`
//!   option; an Approve or Deny button click (type 3, `custom_id`
//!   `gantry_approve:R-7`) counts like a reaction, on the request the
//!   button was rendered for; a Roll back or Complete click
//!   (`gantry_rollback:R-7`, `gantry_complete:R-7`) runs as `rollback R-7`
//!   or `complete R-7` from the clicker. De-duplicated by the interaction id.
//! - Gateway dispatches: `MESSAGE_REACTION_ADD` of the approve emoji
//!   approves, of the deny emoji denies; `MESSAGE_REACTION_REMOVE` of the
//!   approve emoji withdraws. The gateway delivers each dispatch once per
//!   session (a resume replays only what was missed), so these carry no
//!   delivery id.
//!
//! Reactions and interactions from bots (Gantry among them) and from
//! servers not configured are not acted on.

use serde::Deserialize;
use serde_json::Value;

use super::{unique_keys, Answer, Click, CommandText, Control, Inbound, Rejected, What, Who};
use crate::chat::discord::{
    APPROVE_BUTTON, COMMAND, COMPLETE_BUTTON, DENY_BUTTON, ROLLBACK_BUTTON, TEXT_OPTION,
};
use crate::engine::{Conversation, Platform, Reaction};
use crate::names::{Identity, RequestId};

/// What decoding Discord needs from config.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The application id interactions must carry.
    pub application_id: u64,
    /// Guilds whose interactions and reactions count.
    pub guild_ids: Vec<u64>,
    /// Emoji that approves.
    pub approve_emoji: String,
    /// Emoji that denies.
    pub deny_emoji: String,
}

#[derive(Debug, Deserialize)]
struct User {
    id: String,
    #[serde(default)]
    bot: bool,
}

#[derive(Debug, Deserialize)]
struct Member {
    user: User,
}

/// The fields of an interaction Gantry reads; Discord sends more.
#[derive(Debug, Deserialize)]
struct Interaction {
    id: String,
    #[serde(rename = "type")]
    kind: u8,
    #[serde(default)]
    application_id: String,
    #[serde(default)]
    token: String,
    #[serde(default)]
    guild_id: Option<String>,
    #[serde(default)]
    channel_id: Option<String>,
    #[serde(default)]
    member: Option<Member>,
    #[serde(default)]
    data: Value,
    #[serde(default)]
    message: Value,
}

/// What an HTTP interaction is.
pub enum Decoded {
    /// PING: answer PONG.
    Ping,
    /// The `/gantry` command; its answer is deferred and then edited
    /// through the interaction's `token`.
    Command {
        /// What to dispatch (its answer is to be set by the transport).
        inbound: Inbound,
        /// The interaction token, for the deferred answer.
        token: String,
    },
    /// A button click.
    Button(Inbound),
}

/// An interaction body, as `POST /discord/interactions` receives it.
pub fn interaction(settings: &Settings, bytes: &[u8]) -> Result<Decoded, Rejected> {
    unique_keys(bytes, "the JSON body")?;
    let interaction = serde_json::from_slice::<Interaction>(bytes)
        .map_err(|_| Rejected::Malformed("not an interaction".into()))?;
    if interaction.kind == 1 {
        return Ok(Decoded::Ping);
    }
    if interaction.application_id != settings.application_id.to_string() {
        return Err(Rejected::Forbidden(
            "this interaction is for another application".into(),
        ));
    }
    let guild = interaction.guild_id.as_deref().unwrap_or_default();
    if !settings.guild_ids.iter().any(|g| g.to_string() == guild) {
        return Err(Rejected::Told(
            "unknown_guild",
            "refused: this Discord server is not configured for Gantry".into(),
        ));
    }
    let (Some(member), Some(channel)) = (&interaction.member, &interaction.channel_id) else {
        return Err(Rejected::Malformed("no member or channel".into()));
    };
    if member.user.bot {
        return Err(Rejected::Malformed("bots do not run commands".into()));
    }
    let who = format!("discord:{}", member.user.id)
        .parse::<Identity>()
        .map_err(|_| Rejected::Malformed("malformed user id".into()))?;
    let delivery = Some(format!("discord:{}", interaction.id));
    let place = conversation(channel.clone());
    match interaction.kind {
        2 => {
            if interaction.data["name"] != COMMAND {
                return Err(Rejected::Told(
                    "unknown_command",
                    "unknown command: use /gantry".into(),
                ));
            }
            let text = interaction.data["options"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|o| o["name"] == TEXT_OPTION)
                .and_then(|o| o["value"].as_str())
                .unwrap_or_default();
            Ok(Decoded::Command {
                inbound: Inbound {
                    delivery,
                    place,
                    answer: Answer::InBand,
                    what: What::Command {
                        who: Who::Known(who),
                        text: CommandText::Typed(text.to_owned()),
                    },
                },
                token: interaction.token,
            })
        }
        3 => {
            let custom_id = interaction.data["custom_id"].as_str().unwrap_or_default();
            let (click, id) = match custom_id.split_once(':') {
                Some((APPROVE_BUTTON, id)) => (Click::Reaction(Reaction::Approve), id),
                Some((DENY_BUTTON, id)) => (Click::Reaction(Reaction::Deny), id),
                Some((ROLLBACK_BUTTON, id)) => (Click::Control(Control::RollBack), id),
                Some((COMPLETE_BUTTON, id)) => (Click::Control(Control::Complete), id),
                _ => {
                    return Err(Rejected::Told(
                        "ignored",
                        "this button is not Gantry's".into(),
                    ))
                }
            };
            let Ok(id) = id.parse::<RequestId>() else {
                return Err(Rejected::Told(
                    "ignored",
                    "this button is not on a request's message".into(),
                ));
            };
            let Some(message) = interaction.message["id"].as_str() else {
                return Err(Rejected::Malformed("no message".into()));
            };
            let message = message.to_owned();
            let what = match click {
                Click::Reaction(reaction) => What::Reaction {
                    who,
                    message,
                    reaction,
                    button: Some(id),
                },
                Click::Control(control) => What::Control {
                    who,
                    message,
                    control,
                    request: id,
                },
            };
            Ok(Decoded::Button(Inbound {
                delivery,
                place,
                answer: Answer::InBand,
                what,
            }))
        }
        _ => Err(Rejected::Malformed("unsupported interaction type".into())),
    }
}

/// A gateway dispatch `t` with payload `d`, if it is a reaction that
/// counts; `me` is the bot's own user id, from READY.
pub fn gateway_dispatch(
    settings: &Settings,
    t: &str,
    d: &Value,
    me: Option<&str>,
) -> Option<Inbound> {
    let emoji = d["emoji"]["name"].as_str()?;
    let reaction = match t {
        "MESSAGE_REACTION_ADD" if emoji == settings.approve_emoji => Reaction::Approve,
        "MESSAGE_REACTION_ADD" if emoji == settings.deny_emoji => Reaction::Deny,
        "MESSAGE_REACTION_REMOVE" if emoji == settings.approve_emoji => Reaction::Revoke,
        _ => return None,
    };
    let guild: u64 = d["guild_id"].as_str()?.parse().ok()?;
    if !settings.guild_ids.contains(&guild) {
        return None;
    }
    let user = d["user_id"].as_str()?;
    if d["member"]["user"]["bot"].as_bool() == Some(true) || Some(user) == me {
        return None;
    }
    let who: Identity = format!("discord:{user}").parse().ok()?;
    Some(Inbound {
        delivery: None,
        place: conversation(d["channel_id"].as_str()?.to_owned()),
        answer: Answer::InBand,
        what: What::Reaction {
            who,
            message: d["message_id"].as_str()?.to_owned(),
            reaction,
            button: None,
        },
    })
}

fn conversation(channel: String) -> Conversation {
    Conversation {
        platform: Platform::Discord,
        channel,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn settings() -> Settings {
        Settings {
            application_id: 1,
            guild_ids: vec![7],
            approve_emoji: "✅".into(),
            deny_emoji: "❌".into(),
        }
    }

    fn reaction(user: &str, emoji: &str, guild: &str, bot: bool) -> Value {
        json!({
            "user_id": user, "channel_id": "5", "message_id": "6", "guild_id": guild,
            "emoji": { "id": null, "name": emoji },
            "member": { "user": { "id": user, "bot": bot } },
        })
    }

    fn meaning(t: &str, d: &Value) -> Option<Reaction> {
        match gateway_dispatch(&settings(), t, d, Some("9"))?.what {
            What::Reaction { reaction, .. } => Some(reaction),
            _ => None,
        }
    }

    #[test]
    fn reactions_are_interpreted() {
        let add = "MESSAGE_REACTION_ADD";
        let remove = "MESSAGE_REACTION_REMOVE";
        assert_eq!(
            meaning(add, &reaction("1", "✅", "7", false)),
            Some(Reaction::Approve)
        );
        assert_eq!(
            meaning(add, &reaction("1", "❌", "7", false)),
            Some(Reaction::Deny)
        );
        assert_eq!(
            meaning(remove, &reaction("1", "✅", "7", false)),
            Some(Reaction::Revoke)
        );
        assert_eq!(meaning(remove, &reaction("1", "❌", "7", false)), None);
        assert_eq!(meaning(add, &reaction("1", "👍", "7", false)), None);
        assert_eq!(
            meaning(add, &reaction("1", "✅", "8", false)),
            None,
            "other guild"
        );
        assert_eq!(meaning(add, &reaction("1", "✅", "7", true)), None, "a bot");
        assert_eq!(
            meaning(add, &reaction("9", "✅", "7", false)),
            None,
            "ourselves"
        );
        let counted =
            gateway_dispatch(&settings(), add, &reaction("1", "✅", "7", false), None).unwrap();
        let What::Reaction { who, message, .. } = counted.what else {
            panic!("a reaction");
        };
        assert_eq!(who.to_string(), "discord:1");
        assert_eq!(
            (counted.place.channel.as_str(), message.as_str()),
            ("5", "6")
        );
        assert_eq!(counted.delivery, None);
    }
}
