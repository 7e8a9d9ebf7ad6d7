//! The platforms' documented example payloads (`tests/data/slack/`,
//! `tests/data/discord/`, `tests/data/github/`; each directory's README
//! names the page a file follows and what was adjusted) decoded by the
//! public decoders, field by field: who, where, what and the delivery id.
//! Then the same payloads made wrong in one way each: a key twice, a
//! workspace, server or application Gantry is not configured for, a bot.

use std::path::{Path, PathBuf};

use serde_json::Value;

use gantry::config::Config;
use gantry::engine::{Platform, Reaction};
use gantry::inbound::{
    discord, github, slack, Answer, CommandText, Control, Inbound, Rejected, What, Who,
};
use gantry::names::RequestId;

fn path(file: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(file)
}

fn bytes(file: &str) -> Vec<u8> {
    std::fs::read(path(file)).unwrap_or_else(|e| panic!("tests/data/{file}: {e}"))
}

fn text(file: &str) -> String {
    String::from_utf8(bytes(file)).expect("UTF-8")
}

fn json(file: &str) -> Value {
    serde_json::from_slice(&bytes(file)).unwrap_or_else(|e| panic!("tests/data/{file}: {e}"))
}

fn config(file: &str) -> Config {
    gantry::config::load(&path(file)).expect("the test config loads")
}

/// Slack's decoding settings as `gantry serve` builds them from
/// `tests/data/engine.toml`.
fn slack_settings() -> slack::Settings {
    let config = config("engine.toml");
    let slack = config.platforms().slack.clone().expect("Slack is on");
    slack::Settings {
        team_ids: slack.team_ids,
        approve_reaction: slack.approve_reaction,
        deny_reaction: slack.deny_reaction,
    }
}

/// Discord's, from the same config.
fn discord_settings() -> discord::Settings {
    let config = config("engine.toml");
    let discord = config.platforms().discord.clone().expect("Discord is on");
    discord::Settings {
        application_id: discord.application_id,
        guild_ids: discord.guild_ids,
        approve_emoji: discord.approve_emoji,
        deny_emoji: discord.deny_emoji,
    }
}

/// The config `tests/github.rs` uses: acme/web, Carol known by login.
fn github_config() -> (Config, github::Settings) {
    let config = config("github.toml");
    let review_approvals = config
        .platforms()
        .github
        .as_ref()
        .expect("GitHub is on")
        .review_approvals;
    (config, github::Settings { review_approvals })
}

/// An [`Inbound`] as plain values, so one comparison checks every field.
#[derive(Debug, PartialEq)]
struct Seen {
    delivery: Option<String>,
    platform: Platform,
    channel: String,
    answer: Answered,
    what: Said,
}

#[derive(Debug, PartialEq)]
enum Answered {
    InBand,
    Posted(Option<String>),
    FollowUp,
}

#[derive(Debug, PartialEq)]
enum Said {
    Typed {
        who: String,
        text: String,
    },
    Reaction {
        who: String,
        message: String,
        reaction: Reaction,
        button: Option<RequestId>,
    },
    Control {
        who: String,
        message: String,
        control: Control,
        request: RequestId,
    },
    Review {
        who: String,
        commit: String,
    },
    PullClosed {
        repo: String,
        number: u64,
        head: String,
    },
    Other,
}

fn seen(inbound: Inbound) -> Seen {
    let who = |who: Who| match who {
        Who::Known(identity) => identity.to_string(),
        Who::Unknown(told) => format!("unknown: {told}"),
    };
    Seen {
        delivery: inbound.delivery,
        platform: inbound.place.platform,
        channel: inbound.place.channel,
        answer: match inbound.answer {
            Answer::InBand => Answered::InBand,
            Answer::Posted { to } => Answered::Posted(to),
            Answer::FollowUp(_) => Answered::FollowUp,
        },
        what: match inbound.what {
            What::Command {
                who: w,
                text: CommandText::Typed(text),
            } => Said::Typed { who: who(w), text },
            What::Command { .. } => Said::Other,
            What::Reaction {
                who,
                message,
                reaction,
                button,
            } => Said::Reaction {
                who: who.to_string(),
                message,
                reaction,
                button,
            },
            What::Control {
                who,
                message,
                control,
                request,
            } => Said::Control {
                who: who.to_string(),
                message,
                control,
                request,
            },
            What::Review { who, commit } => Said::Review {
                who: who.to_string(),
                commit,
            },
            What::PullClosed { repo, number, head } => Said::PullClosed { repo, number, head },
        },
    }
}

/// The same JSON with its top-level `key` written twice: serde would keep
/// one of them, so the decoders must refuse both.
fn key_twice(json: &str, key: &str) -> String {
    let value: Value = serde_json::from_str(json).expect("JSON");
    assert!(value.get(key).is_some(), "no {key} in {json}");
    let open = json.find('{').expect("an object");
    format!("{{\"{key}\": {},{}", value[key], &json[open + 1..])
}

fn malformed<T>(decoded: Result<T, Rejected>) -> String {
    match decoded {
        Err(Rejected::Malformed(why)) => why,
        Err(other) => panic!("expected Malformed, got {other:?}"),
        Ok(_) => panic!("expected Malformed, it decoded"),
    }
}

fn rejected<T>(decoded: Result<T, Rejected>) -> Rejected {
    match decoded {
        Err(rejected) => rejected,
        Ok(_) => panic!("expected a rejection, it decoded"),
    }
}

const ALICE_SLACK: &str = "slack:T0SANDBOX:UALICE01";
const ALICE_DISCORD: &str = "discord:100000000000000001";
const NOT_OUR_WORKSPACE: &str = "this Slack workspace is not configured for Gantry";

// Slack.

#[test]
fn slack_slash_command_form() {
    let inbound = slack::slash_command_form(
        &slack_settings(),
        &bytes("slack/slash_command.form"),
        "slack-command:v0=1".into(),
    )
    .expect("decodes");
    assert_eq!(
        seen(inbound),
        Seen {
            delivery: Some("slack-command:v0=1".into()),
            platform: Platform::Slack,
            channel: "C2147483705".into(),
            answer: Answered::InBand,
            what: Said::Typed {
                who: ALICE_SLACK.into(),
                text: "deploy main to dev".into(),
            },
        }
    );
}

#[test]
fn slack_slash_command_deploy_prefixes_its_text() {
    let form = text("slack/slash_command.form")
        .replace("command=/gantry", "command=/deploy")
        .replace("text=deploy%20main%20to%20dev", "text=main%20to%20dev");
    let inbound =
        slack::slash_command_form(&slack_settings(), form.as_bytes(), "d".into()).expect("decodes");
    assert_eq!(
        seen(inbound).what,
        Said::Typed {
            who: ALICE_SLACK.into(),
            text: "deploy main to dev".into(),
        }
    );
}

#[test]
fn slack_slash_command_from_another_workspace_is_forbidden() {
    let form = text("slack/slash_command.form").replace("T0SANDBOX", "T0ELSEWHERE");
    assert_eq!(
        rejected(slack::slash_command_form(
            &slack_settings(),
            form.as_bytes(),
            "d".into()
        )),
        Rejected::Forbidden(NOT_OUR_WORKSPACE.into())
    );
}

#[test]
fn slack_url_verification_answers_the_challenge() {
    let decoded = slack::event(&slack_settings(), &bytes("slack/url_verification.json"));
    let Ok(slack::Event::Challenge(challenge)) = decoded else {
        panic!("a challenge");
    };
    assert_eq!(
        challenge,
        "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P"
    );
}

fn slack_reaction(file: &str) -> Seen {
    match slack::event(&slack_settings(), &bytes(file)) {
        Ok(slack::Event::Inbound(inbound)) => seen(inbound),
        Ok(slack::Event::Challenge(_)) => panic!("not a challenge"),
        Err(e) => panic!("{file}: {e:?}"),
    }
}

fn reaction_on_docs_message(reaction: Reaction) -> Seen {
    Seen {
        delivery: Some("slack-event:Ev123ABC456".into()),
        platform: Platform::Slack,
        channel: "C123ABC456".into(),
        answer: Answered::InBand,
        what: Said::Reaction {
            who: ALICE_SLACK.into(),
            message: "1360782400.498405".into(),
            reaction,
            button: None,
        },
    }
}

#[test]
fn slack_reaction_added_approves() {
    assert_eq!(
        slack_reaction("slack/event_callback.reaction_added.json"),
        reaction_on_docs_message(Reaction::Approve)
    );
}

#[test]
fn slack_reaction_removed_withdraws() {
    assert_eq!(
        slack_reaction("slack/event_callback.reaction_removed.json"),
        reaction_on_docs_message(Reaction::Revoke)
    );
}

#[test]
fn slack_deny_reaction_denies_and_others_are_ignored() {
    let added = text("slack/event_callback.reaction_added.json");
    let deny = added.replace("\"white_check_mark\"", "\"x\"");
    match slack::event(&slack_settings(), deny.as_bytes()) {
        Ok(slack::Event::Inbound(inbound)) => {
            assert_eq!(seen(inbound), reaction_on_docs_message(Reaction::Deny))
        }
        _ => panic!("a reaction"),
    }
    let thumbs = added.replace("\"white_check_mark\"", "\"thumbsup\"");
    assert_eq!(
        rejected(slack::event(&slack_settings(), thumbs.as_bytes())),
        Rejected::Ignored("ignored")
    );
    let removed_deny =
        text("slack/event_callback.reaction_removed.json").replace("\"white_check_mark\"", "\"x\"");
    assert_eq!(
        rejected(slack::event(&slack_settings(), removed_deny.as_bytes())),
        Rejected::Ignored("ignored"),
        "taking a deny back means nothing"
    );
}

#[test]
fn slack_events_with_a_key_twice_or_from_another_workspace_are_refused() {
    let added = text("slack/event_callback.reaction_added.json");
    let why = malformed(slack::event(
        &slack_settings(),
        key_twice(&added, "team_id").as_bytes(),
    ));
    assert_eq!(why, "duplicate key \"team_id\" in the JSON body");
    let elsewhere = added.replace("T0SANDBOX", "T0ELSEWHERE");
    assert_eq!(
        rejected(slack::event(&slack_settings(), elsewhere.as_bytes())),
        Rejected::Forbidden(NOT_OUR_WORKSPACE.into())
    );
}

/// A `block_actions` payload as Slack posts it: a form whose one `payload`
/// field holds the JSON.
fn interaction_form(payload: &str) -> String {
    serde_urlencoded::to_string([("payload", payload)]).expect("encodes")
}

#[test]
fn slack_approve_button_click() {
    let form = interaction_form(&text("slack/block_actions.json"));
    let inbound = slack::interaction_form(&slack_settings(), form.as_bytes()).expect("decodes");
    assert_eq!(
        seen(inbound),
        Seen {
            delivery: Some(
                "slack-action:12321423423.333649436676.d8c1bb837935619ccad0f624c448ffb3:1548426417.840180"
                    .into()
            ),
            platform: Platform::Slack,
            channel: "CBR2V3XEX".into(),
            answer: Answered::InBand,
            what: Said::Reaction {
                who: ALICE_SLACK.into(),
                message: "1548261231.000200".into(),
                reaction: Reaction::Approve,
                button: None,
            },
        }
    );
}

#[test]
fn slack_complete_button_click_is_a_command_about_its_request() {
    let form = interaction_form(&text("slack/block_actions.complete.json"));
    let inbound = slack::interaction_form(&slack_settings(), form.as_bytes()).expect("decodes");
    assert_eq!(
        seen(inbound),
        Seen {
            delivery: Some(
                "slack-action:12321423423.333649436676.d8c1bb837935619ccad0f624c448ffb3:1548426417.840180"
                    .into()
            ),
            platform: Platform::Slack,
            channel: "CBR2V3XEX".into(),
            answer: Answered::InBand,
            what: Said::Control {
                who: ALICE_SLACK.into(),
                message: "1548261231.000200".into(),
                control: Control::Complete,
                request: RequestId(7),
            },
        }
    );
    assert_eq!(
        Control::Complete.command(RequestId(7)).to_string(),
        "complete R-7"
    );
    // A Roll back or Complete button always names its request.
    let payload = text("slack/block_actions.complete.json");
    for value in [r#""value": "R-x""#, r#""value": 7"#] {
        let form = interaction_form(&payload.replace(r#""value": "R-7""#, value));
        assert_eq!(
            rejected(slack::interaction_form(&slack_settings(), form.as_bytes())),
            Rejected::Ignored("ignored"),
            "{value}"
        );
    }
}

#[test]
fn slack_button_clicks_that_are_wrong_are_refused() {
    let payload = text("slack/block_actions.json");
    let twice = interaction_form(&key_twice(&payload, "type"));
    assert_eq!(
        malformed(slack::interaction_form(&slack_settings(), twice.as_bytes())),
        "duplicate key \"type\" in the payload field"
    );
    let elsewhere = interaction_form(&payload.replace("T0SANDBOX", "T0ELSEWHERE"));
    assert_eq!(
        rejected(slack::interaction_form(
            &slack_settings(),
            elsewhere.as_bytes()
        )),
        Rejected::Forbidden(NOT_OUR_WORKSPACE.into())
    );
    let docs_button = interaction_form(&payload.replace("\"gantry_approve\"", "\"WaXA\""));
    assert_eq!(
        rejected(slack::interaction_form(
            &slack_settings(),
            docs_button.as_bytes()
        )),
        Rejected::Ignored("ignored"),
        "a button that is not Gantry's"
    );
    let raw_json = payload.into_bytes();
    assert_eq!(
        malformed(slack::interaction_form(&slack_settings(), &raw_json)),
        "no payload field"
    );
}

fn socket(file: &str) -> slack::SocketMessage {
    slack::socket_message(&slack_settings(), &bytes(file)).expect("a Socket Mode message")
}

#[test]
fn slack_socket_hello_and_disconnect() {
    assert!(matches!(
        socket("slack/socket_hello.json"),
        slack::SocketMessage::Hello
    ));
    let slack::SocketMessage::Disconnect(reason) = socket("slack/socket_disconnect.json") else {
        panic!("a disconnect");
    };
    assert_eq!(reason, "refresh_requested");
}

/// An envelope's id, flag, route and what it holds.
fn envelope(message: slack::SocketMessage) -> (String, bool, &'static str, Result<Seen, Rejected>) {
    let slack::SocketMessage::Envelope {
        id,
        accepts_response_payload,
        route,
        inbound,
    } = message
    else {
        panic!("an envelope");
    };
    (id, accepts_response_payload, route, inbound.map(seen))
}

const ENVELOPE: &str = "dbdd0ef3-1543-4f94-bfb4-133d0e6c1545";

#[test]
fn slack_socket_slash_command_envelope() {
    let (id, accepts, route, inbound) = envelope(socket("slack/socket_slash_commands.json"));
    assert_eq!(
        (id.as_str(), accepts, route),
        (ENVELOPE, true, "socket_mode/slash_commands")
    );
    assert_eq!(
        inbound,
        Ok(Seen {
            delivery: Some(format!("slack-envelope:{ENVELOPE}")),
            platform: Platform::Slack,
            channel: "C123ABC456".into(),
            answer: Answered::InBand,
            what: Said::Typed {
                who: ALICE_SLACK.into(),
                text: "status".into(),
            },
        })
    );
}

#[test]
fn slack_socket_events_api_envelope() {
    let (id, accepts, route, inbound) = envelope(socket("slack/socket_events_api.json"));
    assert_eq!(
        (id.as_str(), accepts, route),
        (ENVELOPE, false, "socket_mode/events_api")
    );
    assert_eq!(inbound, Ok(reaction_on_docs_message(Reaction::Approve)));
}

#[test]
fn slack_socket_interactive_envelope() {
    let (id, accepts, route, inbound) = envelope(socket("slack/socket_interactive.json"));
    assert_eq!(
        (id.as_str(), accepts, route),
        (ENVELOPE, true, "socket_mode/interactive")
    );
    assert_eq!(
        inbound,
        Ok(Seen {
            delivery: Some(
                "slack-action:12321423423.333649436676.d8c1bb837935619ccad0f624c448ffb3:1548426417.840180"
                    .into()
            ),
            platform: Platform::Slack,
            channel: "C123ABC456".into(),
            answer: Answered::InBand,
            what: Said::Reaction {
                who: ALICE_SLACK.into(),
                message: "1548261231.000200".into(),
                reaction: Reaction::Deny,
                button: None,
            },
        })
    );
}

#[test]
fn slack_socket_messages_that_are_wrong_are_refused() {
    let settings = slack_settings();
    for file in [
        "slack/socket_hello.json",
        "slack/socket_slash_commands.json",
        "slack/socket_events_api.json",
        "slack/socket_interactive.json",
    ] {
        let twice = key_twice(&text(file), "type");
        assert_eq!(
            malformed(slack::socket_message(&settings, twice.as_bytes())),
            "duplicate key \"type\" in the Socket Mode message",
            "{file}"
        );
    }
    for file in [
        "slack/socket_slash_commands.json",
        "slack/socket_events_api.json",
        "slack/socket_interactive.json",
    ] {
        let elsewhere = text(file).replace("T0SANDBOX", "T0ELSEWHERE");
        let message = slack::socket_message(&settings, elsewhere.as_bytes()).expect("an envelope");
        let (id, _, _, inbound) = envelope(message);
        assert_eq!(id, ENVELOPE, "{file}: still acknowledged");
        assert_eq!(
            inbound,
            Err(Rejected::Forbidden(NOT_OUR_WORKSPACE.into())),
            "{file}"
        );
    }
}

// Discord.

#[test]
fn discord_ping() {
    let decoded =
        discord::interaction(&discord_settings(), &bytes("discord/interaction.ping.json"));
    assert!(matches!(decoded, Ok(discord::Decoded::Ping)));
}

#[test]
fn discord_application_command() {
    let decoded = discord::interaction(
        &discord_settings(),
        &bytes("discord/interaction.application_command.json"),
    );
    let Ok(discord::Decoded::Command { inbound, token }) = decoded else {
        panic!("a command");
    };
    assert_eq!(token, "A_UNIQUE_TOKEN");
    assert_eq!(
        seen(inbound),
        Seen {
            delivery: Some("discord:786008729715212338".into()),
            platform: Platform::Discord,
            channel: "645027906669510667".into(),
            answer: Answered::InBand,
            what: Said::Typed {
                who: ALICE_DISCORD.into(),
                text: "deploy main to dev".into(),
            },
        }
    );
}

#[test]
fn discord_approve_button_click() {
    let decoded = discord::interaction(
        &discord_settings(),
        &bytes("discord/interaction.message_component.json"),
    );
    let Ok(discord::Decoded::Button(inbound)) = decoded else {
        panic!("a button");
    };
    assert_eq!(
        seen(inbound),
        Seen {
            delivery: Some("discord:786008729715212339".into()),
            platform: Platform::Discord,
            channel: "645027906669510667".into(),
            answer: Answered::InBand,
            what: Said::Reaction {
                who: ALICE_DISCORD.into(),
                message: "334385199974967042".into(),
                reaction: Reaction::Approve,
                button: Some(RequestId(7)),
            },
        }
    );
}

#[test]
fn discord_rollback_button_click_is_a_command_about_its_request() {
    let decoded = discord::interaction(
        &discord_settings(),
        &bytes("discord/interaction.message_component.rollback.json"),
    );
    let Ok(discord::Decoded::Button(inbound)) = decoded else {
        panic!("a button");
    };
    assert_eq!(
        seen(inbound),
        Seen {
            delivery: Some("discord:786008729715212339".into()),
            platform: Platform::Discord,
            channel: "645027906669510667".into(),
            answer: Answered::InBand,
            what: Said::Control {
                who: ALICE_DISCORD.into(),
                message: "334385199974967042".into(),
                control: Control::RollBack,
                request: RequestId(7),
            },
        }
    );
    assert_eq!(
        Control::RollBack.command(RequestId(7)).to_string(),
        "rollback R-7"
    );
}

#[test]
fn discord_interactions_that_are_wrong_are_refused() {
    let settings = discord_settings();
    for file in [
        "discord/interaction.ping.json",
        "discord/interaction.application_command.json",
        "discord/interaction.message_component.json",
    ] {
        let twice = key_twice(&text(file), "type");
        assert_eq!(
            malformed(discord::interaction(&settings, twice.as_bytes())),
            "duplicate key \"type\" in the JSON body",
            "{file}"
        );
    }
    for file in [
        "discord/interaction.application_command.json",
        "discord/interaction.message_component.json",
    ] {
        let json = text(file);
        let elsewhere = json.replace("\"200000000000000000\"", "\"290926798626357999\"");
        assert_eq!(
            rejected(discord::interaction(&settings, elsewhere.as_bytes())),
            Rejected::Told(
                "unknown_guild",
                "refused: this Discord server is not configured for Gantry".into()
            ),
            "{file}"
        );
        let other_app = json.replace("\"100000000000000000\"", "\"1421512\"");
        assert_eq!(
            rejected(discord::interaction(&settings, other_app.as_bytes())),
            Rejected::Forbidden("this interaction is for another application".into()),
            "{file}"
        );
        let bot = json.replace(
            "\"public_flags\": 131141",
            "\"public_flags\": 131141, \"bot\": true",
        );
        assert_eq!(
            malformed(discord::interaction(&settings, bot.as_bytes())),
            "bots do not run commands",
            "{file}"
        );
    }
    let unknown_command = text("discord/interaction.application_command.json")
        .replace("\"name\": \"gantry\"", "\"name\": \"cardsearch\"");
    assert_eq!(
        rejected(discord::interaction(&settings, unknown_command.as_bytes())),
        Rejected::Told("unknown_command", "unknown command: use /gantry".into())
    );
}

/// A gateway dispatch's `t` and `d`, decoded with the bot's own id from READY.
fn dispatch(settings: &discord::Settings, payload: &Value) -> Option<Seen> {
    let ready = json("discord/gateway.ready.json");
    let me = ready["d"]["user"]["id"].as_str();
    assert_eq!(payload["op"], 0, "a dispatch");
    let t = payload["t"].as_str().expect("an event name");
    discord::gateway_dispatch(settings, t, &payload["d"], me).map(seen)
}

fn gateway_reaction(reaction: Reaction) -> Seen {
    Seen {
        delivery: None,
        platform: Platform::Discord,
        channel: "645027906669510667".into(),
        answer: Answered::InBand,
        what: Said::Reaction {
            who: ALICE_DISCORD.into(),
            message: "334385199974967042".into(),
            reaction,
            button: None,
        },
    }
}

#[test]
fn discord_gateway_reactions() {
    let settings = discord_settings();
    assert_eq!(
        dispatch(
            &settings,
            &json("discord/gateway.message_reaction_add.json")
        ),
        Some(gateway_reaction(Reaction::Approve))
    );
    assert_eq!(
        dispatch(
            &settings,
            &json("discord/gateway.message_reaction_remove.json")
        ),
        Some(gateway_reaction(Reaction::Revoke))
    );
    let deny = text("discord/gateway.message_reaction_add.json").replace('✅', "❌");
    assert_eq!(
        dispatch(&settings, &serde_json::from_str(&deny).unwrap()),
        Some(gateway_reaction(Reaction::Deny))
    );
}

#[test]
fn discord_hello_and_ready_are_not_reactions() {
    let settings = discord_settings();
    let hello = json("discord/gateway.hello.json");
    assert_eq!(hello["op"], 10);
    assert_eq!(hello["t"], Value::Null, "Hello is not a dispatch");
    assert_eq!(hello["d"]["heartbeat_interval"], 45000);
    let ready = json("discord/gateway.ready.json");
    assert_eq!(ready["t"], "READY");
    assert_eq!(dispatch(&settings, &ready), None);
}

#[test]
fn discord_gateway_reactions_that_do_not_count() {
    let settings = discord_settings();
    let add = text("discord/gateway.message_reaction_add.json");
    let parse = |json: &str| -> Value { serde_json::from_str(json).unwrap() };
    let elsewhere = add.replace("\"200000000000000000\"", "\"290926798626357999\"");
    assert_eq!(
        dispatch(&settings, &parse(&elsewhere)),
        None,
        "another server"
    );
    let bot = add.replace(
        "\"global_name\": null,",
        "\"global_name\": null, \"bot\": true,",
    );
    assert_eq!(dispatch(&settings, &parse(&bot)), None, "a bot");
    let ourselves = add.replace(
        "\"user_id\": \"100000000000000001\"",
        "\"user_id\": \"80351110224678912\"",
    );
    assert_eq!(
        dispatch(&settings, &parse(&ourselves)),
        None,
        "Gantry's own reaction (READY's user)"
    );
    let fire = add.replace('✅', "🔥");
    assert_eq!(dispatch(&settings, &parse(&fire)), None, "another emoji");
    let removed_deny = text("discord/gateway.message_reaction_remove.json").replace('✅', "❌");
    assert_eq!(
        dispatch(&settings, &parse(&removed_deny)),
        None,
        "taking a deny back means nothing"
    );
}

// GitHub.

/// GitHub's documented example delivery GUID.
const DELIVERY: &str = "72d3162e-cc78-11e3-81ab-4c9367dc0958";

fn webhook(event: &str, body: &[u8]) -> Result<github::Decoded, Rejected> {
    let (config, settings) = github_config();
    github::webhook(&config, &settings, Some(event), Some(DELIVERY), body)
}

fn pull(decoded: Result<github::Decoded, Rejected>) -> Seen {
    match decoded {
        Ok(github::Decoded::Pull(inbound)) => seen(inbound),
        Ok(_) => panic!("not a pull request event"),
        Err(e) => panic!("{e:?}"),
    }
}

#[test]
fn github_ping() {
    let decoded = webhook("ping", &bytes("github/ping.payload.json"));
    assert!(matches!(decoded, Ok(github::Decoded::Ping)));
}

#[test]
fn github_pull_request_closed() {
    assert_eq!(
        pull(webhook(
            "pull_request",
            &bytes("github/pull_request.closed.payload.json")
        )),
        Seen {
            delivery: Some(format!("github:{DELIVERY}")),
            platform: Platform::Github,
            channel: "Codertocat/Hello-World#2".into(),
            answer: Answered::Posted(None),
            what: Said::PullClosed {
                repo: "Codertocat/Hello-World".into(),
                number: 2,
                head: "changes".into(),
            },
        }
    );
}

#[test]
fn github_approving_review() {
    assert_eq!(
        pull(webhook(
            "pull_request_review",
            &bytes("github/pull_request_review.submitted.payload.json")
        )),
        Seen {
            delivery: Some(format!("github:{DELIVERY}")),
            platform: Platform::Github,
            channel: "acme/web#2".into(),
            answer: Answered::Posted(None),
            what: Said::Review {
                who: "github:carol-qa".into(),
                commit: "ec26c3e57ca3a959ca5aad62de7213c562f8c821".into(),
            },
        }
    );
}

#[test]
fn github_reviews_that_do_not_approve() {
    let review = json("github/pull_request_review.submitted.payload.json");
    let with = |edit: &dyn Fn(&mut Value)| -> Vec<u8> {
        let mut payload = review.clone();
        edit(&mut payload);
        serde_json::to_vec(&payload).unwrap()
    };
    let commented = with(&|p| p["review"]["state"] = "commented".into());
    assert_eq!(
        rejected(webhook("pull_request_review", &commented)),
        Rejected::Ignored("ignored")
    );
    let stranger = with(&|p| p["review"]["user"]["login"] = "Codertocat".into());
    assert_eq!(
        rejected(webhook("pull_request_review", &stranger)),
        Rejected::Ignored("ignored: reviewer has no Gantry identity")
    );
    let (config, _) = github_config();
    let off = github::Settings {
        review_approvals: false,
    };
    let body = bytes("github/pull_request_review.submitted.payload.json");
    assert_eq!(
        rejected(github::webhook(
            &config,
            &off,
            Some("pull_request_review"),
            Some(DELIVERY),
            &body
        )),
        Rejected::Ignored("ignored: reviews are not approvals here")
    );
}

#[test]
fn github_deliveries_that_are_wrong_are_refused() {
    for (event, file, key) in [
        ("ping", "github/ping.payload.json", "zen"),
        (
            "pull_request",
            "github/pull_request.closed.payload.json",
            "action",
        ),
        (
            "pull_request_review",
            "github/pull_request_review.submitted.payload.json",
            "action",
        ),
    ] {
        let twice = key_twice(&text(file), key);
        assert_eq!(
            malformed(webhook(event, twice.as_bytes())),
            format!("duplicate key \"{key}\" in the JSON body"),
            "{file}"
        );
        let (config, settings) = github_config();
        assert_eq!(
            malformed(github::webhook(
                &config,
                &settings,
                Some(event),
                None,
                &bytes(file)
            )),
            "missing or malformed X-GitHub-Delivery or X-GitHub-Event",
            "{file}"
        );
    }
}

#[test]
fn github_comment_by_a_bot_runs_nothing() {
    let mut comment = json("github/issue_comment.created.payload.json");
    // On a pull request, as the README in tests/data/github explains.
    comment["issue"]["pull_request"] = serde_json::json!({
        "url": "https://api.github.com/repos/Codertocat/Hello-World/pulls/1",
    });
    let body = serde_json::to_vec(&comment).unwrap();
    assert!(matches!(
        webhook("issue_comment", &body),
        Ok(github::Decoded::Comment { .. })
    ));
    comment["comment"]["user"]["type"] = "Bot".into();
    let body = serde_json::to_vec(&comment).unwrap();
    assert_eq!(
        rejected(webhook("issue_comment", &body)),
        Rejected::Ignored("ignored: comment by a bot")
    );
}
