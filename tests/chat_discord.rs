//! The whole Discord flow over real HTTP: signed interactions from the fake
//! Discord into the real server's `/discord/interactions`, progress
//! messages through the real serenity client into the fake Discord's REST
//! API, approvals by Approve / Deny buttons.

mod support;

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use ed25519_dalek::SigningKey;
use gantry::adapters::discord::DiscordNotifier;

use gantry::config::Secret;
use gantry::engine::{Request, State};
use gantry::sandbox::discord::{command_payload, shown, FakeDiscord, FakeMessage, Origin};
use gantry::server::verify::discord_key;
use gantry::server::{router, DiscordInbound, Metrics, ServerState};
use serde_json::{json, Value};
use support::Harness;

const APP: u64 = 100_000_000_000_000_000;
const GUILD: u64 = 200_000_000_000_000_000;
const CHANNEL: u64 = 300_000_000_000_000_001;
const ALICE: u64 = 100_000_000_000_000_001;
const BOB: u64 = 100_000_000_000_000_002;
const CAROL: u64 = 100_000_000_000_000_003;
const DAVE: u64 = 100_000_000_000_000_004;

struct Chat {
    h: Harness,
    discord: FakeDiscord,
    rest: Arc<DiscordNotifier>,
    addr: SocketAddr,
    /// The server; the test fails if it stopped.
    _server: support::Watched,
}

fn from(user: u64) -> Origin {
    Origin {
        guild: GUILD,
        channel: CHANNEL,
        user,
    }
}

async fn start() -> Chat {
    // The sandbox's Discord, reached by the production wiring's client.
    let h = Harness::new("engine.toml").await;
    let discord = h.discord();
    let rest = h.discord_rest.clone().expect("the config enables Discord");
    let time = h.clock.clone();
    discord.set_clock(Arc::new(move || time.load(Ordering::SeqCst)));
    let time = h.clock.clone();
    let state = Arc::new(ServerState {
        front: gantry::inbound::Front::start(h.engine.clone()),
        slack: None,
        discord: Some(DiscordInbound {
            public_key: discord_key(&discord.public_key_hex()).unwrap(),
            settings: gantry::inbound::discord::Settings {
                application_id: APP,
                guild_ids: vec![GUILD],
                approve_emoji: "✅".into(),
                deny_emoji: "❌".into(),
            },
            rest: Some(rest.clone()),
        }),
        github: None,
        metrics: Metrics::default(),
        clock: Arc::new(move || time.load(Ordering::SeqCst)),
    });
    let (addr, server) = support::serve_router(router(state)).await;
    discord.set_interactions_url(&format!("http://{addr}/discord/interactions"));
    Chat {
        h,
        discord,
        rest,
        addr,
        _server: server,
    }
}

impl Chat {
    /// Waits (bounded) until the newest request reaches `state`.
    async fn newest_reaches(&self, state: State) -> Request {
        let newest = || self.h.store.requests::<Request>().unwrap().pop();
        support::until(&format!("the newest request becomes {state:?}"), || {
            newest().is_some_and(|(_, r)| r.state == state)
        })
        .await;
        newest().expect("a request").1
    }

    /// Waits (bounded) until `check` holds.
    async fn until(&self, what: &str, check: impl Fn(&Chat) -> bool) {
        for _ in 0..1000 {
            if check(self) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("{what} never happened: {:#?}", self.discord.messages());
    }

    /// The progress message about `what`, once it carries the buttons
    /// (the message may be posted before the request starts waiting).
    async fn asking_about(&self, what: &str) -> FakeMessage {
        self.until("the approval buttons", |c| {
            c.discord
                .messages()
                .iter()
                .any(|m| shown(&m.versions[0]).contains(what) && m.components[0].is_object())
        })
        .await;
        self.message_about(what)
    }

    /// The progress message whose first version mentions `what`.
    fn message_about(&self, what: &str) -> FakeMessage {
        self.discord
            .messages()
            .into_iter()
            .rev()
            .find(|m| shown(&m.versions[0]).contains(what))
            .unwrap_or_else(|| panic!("no message about {what}: {:#?}", self.discord.messages()))
    }

    fn approve_id(message: &FakeMessage) -> String {
        message.components[0]["components"][0]["custom_id"]
            .as_str()
            .expect("an Approve button")
            .to_owned()
    }

    async fn raw(&self, headers: &[(&str, String)], body: &[u8]) -> u16 {
        let headers: Vec<(String, String)> = headers
            .iter()
            .map(|(n, v)| ((*n).to_owned(), v.clone()))
            .collect();
        self.discord.send_raw(&headers, body.to_vec()).await.status
    }
}

fn now(chat: &Chat) -> i64 {
    chat.h.clock.load(Ordering::SeqCst)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ping_is_answered_and_every_bad_signature_is_refused() {
    support::within(async {
        let chat = start().await;
        let pong = chat.discord.ping().await;
        assert_eq!(
            (pong.status, pong.json.clone()),
            (200, json!({ "type": 1 }))
        );

        let body = command_payload(APP, 1, "t1", from(ALICE), "deploy main to dev")
            .to_string()
            .into_bytes();
        let ts = now(&chat);
        let good = chat.discord.sign(ts, &body);
        let other = SigningKey::from_bytes(&[9; 32]);
        let forged = gantry::server::verify::discord_signature(&other, ts, &body);
        let stale = chat.discord.sign(ts - 301, &body);
        let sig = |s: &str| ("X-Signature-Ed25519", s.to_owned());
        let at = |t: i64| ("X-Signature-Timestamp", t.to_string());
        type Case<'a> = (&'a str, Vec<(&'a str, String)>, Vec<u8>);
        let refused: Vec<Case> = vec![
            ("no headers", vec![], body.clone()),
            ("no timestamp", vec![sig(&good)], body.clone()),
            ("no signature", vec![at(ts)], body.clone()),
            ("not hex", vec![sig(&"zz".repeat(64)), at(ts)], body.clone()),
            ("too short", vec![sig(&good[..100]), at(ts)], body.clone()),
            (
                "too long",
                vec![sig(&format!("{good}ab")), at(ts)],
                body.clone(),
            ),
            ("another key", vec![sig(&forged), at(ts)], body.clone()),
            (
                "random bytes",
                vec![sig(&"5a".repeat(64)), at(ts)],
                body.clone(),
            ),
            (
                "body changed",
                vec![sig(&good), at(ts)],
                [&body[..], b" "].concat(),
            ),
            (
                "timestamp changed",
                vec![sig(&good), at(ts + 1)],
                body.clone(),
            ),
            ("stale", vec![sig(&stale), at(ts - 301)], body.clone()),
            (
                "timestamp not a number",
                vec![sig(&good), ("X-Signature-Timestamp", "soon".into())],
                body.clone(),
            ),
        ];
        for (case, headers, body) in refused {
            assert_eq!(chat.raw(&headers, &body).await, 401, "{case}");
        }
        let huge = vec![b' '; 300 * 1024];
        let headers = [sig(&chat.discord.sign(ts, &huge)), at(ts)];
        assert_eq!(chat.raw(&headers, &huge).await, 413, "oversize");
        assert!(
            chat.h.store.requests::<Request>().unwrap().is_empty(),
            "nothing refused ran"
        );
        assert!(chat.discord.messages().is_empty());
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replays_unknown_guilds_and_parse_errors() {
    support::within(async {
        let chat = start().await;
        // A replayed interaction (same id) acts once.
        let payload = command_payload(APP, 77, "tok-77", from(ALICE), "deploy main to dev");
        let first = chat.discord.send(&payload).await;
        assert_eq!((first.status, first.json["type"].clone()), (200, json!(5)));
        let again = chat.discord.send(&payload).await;
        assert_eq!((again.status, again.body.as_str()), (200, "duplicate"));
        chat.newest_reaches(State::Succeeded).await;
        assert_eq!(chat.h.store.requests::<Request>().unwrap().len(), 1);

        // Another guild is refused, with a reply only its user sees.
        let stranger = Origin {
            guild: 999,
            ..from(ALICE)
        };
        let refused = chat.discord.command(stranger, "deploy main to dev").await;
        assert_eq!(refused.json["type"], 4);
        assert_eq!(refused.json["data"]["flags"], 64);
        assert!(refused.json["data"]["content"]
            .as_str()
            .unwrap()
            .contains("not configured"));

        // Unparsable text gets the parse error, ephemeral, mentioning no one.
        let bad = chat
            .discord
            .command(from(ALICE), "deploy main to moon @everyone")
            .await;
        assert_eq!(bad.status, 200);
        assert_eq!(bad.json["type"], 4, "{}", bad.body);
        assert_eq!(bad.json["data"]["flags"], 64);
        assert_eq!(bad.json["data"]["allowed_mentions"], json!({ "parse": [] }));
        let content = bad.json["data"]["content"].as_str().unwrap();
        assert!(!content.contains("@everyone"), "{content}");
        assert!(
            shown(content).contains("unexpected `@everyone`") && content.contains("usage: deploy"),
            "the error names the bad word and the usage: {content}"
        );
        assert_eq!(chat.h.store.requests::<Request>().unwrap().len(), 1);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deploy_to_dev_is_deferred_then_edited_to_succeeded() {
    support::within(async {
        let chat = start().await;
        chat.rest.register_commands(&[GUILD]).await.unwrap();
        let command = &chat.discord.commands(GUILD)[0];
        assert_eq!(command["name"], "gantry");
        assert_eq!(command["options"][0]["name"], "text");

        let ack = chat
            .discord
            .command(from(ALICE), "deploy main to dev")
            .await;
        assert_eq!((ack.status, ack.json.clone()), (200, json!({ "type": 5 })));
        assert!(ack.elapsed < Duration::from_secs(3), "{:?}", ack.elapsed);
        let request = chat.newest_reaches(State::Succeeded).await;
        chat.until("the original response shows the reply", |c| {
            c.discord.originals()[&ack.token].versions.len() >= 3
        })
        .await;

        // The request is recorded as succeeded before its last edit reaches Discord.
        chat.until("the final edit", |c| {
            c.message_about("to dev")
                .versions
                .last()
                .is_some_and(|v| shown(v).contains("succeeded"))
        })
        .await;

        let original = &chat.discord.originals()[&ack.token];
        assert_eq!(original.flags & 128, 0, "no longer thinking");
        assert_eq!(shown(&original.versions[1]), "on it: deploy main to dev");
        let progress = chat.message_about("to dev");
        assert_eq!(progress.channel, CHANNEL.to_string());
        let versions: Vec<String> = progress.versions.iter().map(|v| shown(v)).collect();
        assert!(
            versions.last().unwrap().contains("succeeded"),
            "{versions:#?}"
        );
        assert!(
            versions.iter().any(|v| v.contains("deploying")),
            "{versions:#?}"
        );
        assert_eq!(progress.components, json!([]), "no buttons on a deploy");
        for m in chat
            .discord
            .messages()
            .iter()
            .chain(chat.discord.originals().values())
        {
            for allowed in m
                .allowed_mentions
                .iter()
                .skip(usize::from(m.id == ack.token))
            {
                assert_eq!(allowed["parse"], json!([]), "{m:?}");
            }
        }
        let actions = chat.h.actions(&request.id.to_string());
        for step in [
            "request.created",
            "request.resolved",
            "request.allowed",
            "request.deploy_started",
            "request.rolled_out",
            "request.succeeded",
        ] {
            assert!(actions.iter().any(|a| a == step), "{step}: {actions:?}");
        }
        assert!(chat.h.store.verify().unwrap().first_bad.is_none());
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_approval_comment_and_a_denial_reason_by_slash_command_are_shown_and_kept() {
    support::within(async {
        let chat = start().await;
        chat.discord
            .command(from(ALICE), "deploy main to staging")
            .await;
        let staged = chat.newest_reaches(State::AwaitingApproval).await;
        chat.discord
            .command(
                from(CAROL),
                &format!("approve {} smoke tests green", staged.id),
            )
            .await;
        chat.until("carol's approval with its comment", |c| {
            c.h.request(staged.id).state == State::Succeeded
        })
        .await;
        assert_eq!(
            chat.h.request(staged.id).approvals[0].comment.as_deref(),
            Some("smoke tests green")
        );

        chat.discord
            .command(from(ALICE), "promote from staging to prod")
            .await;
        let asked = chat.newest_reaches(State::AwaitingApproval).await;
        chat.discord
            .command(
                from(DAVE),
                &format!("deny {} @everyone wait for the fix", asked.id),
            )
            .await;
        let denied = chat.newest_reaches(State::Denied).await;
        assert_eq!(
            denied.note.as_deref(),
            Some("denied by dave: @everyone wait for the fix")
        );
        chat.until("the denial with its reason, which pings nobody", |c| {
            c.message_about("to prod")
                .versions
                .last()
                .is_some_and(|v| v.contains("denied by dave: @\u{200B}everyone wait for the fix"))
        })
        .await;
        let subject = denied.id.to_string();
        chat.until("the denial is recorded on GitHub", |c| {
            c.h.actions(&subject)
                .iter()
                .any(|a| a == "github.denial_recorded")
        })
        .await;
        let statuses = chat.h.deployment_descriptions("acme/web", "prod");
        assert_eq!(
            statuses.last().and_then(|d| d.last()).map(|s| s.1.as_str()),
            Some("Gantry: failure; denied by dave: @everyone wait for the fix")
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn promotion_to_prod_is_approved_by_two_release_managers_with_buttons() {
    support::within(async {
        let chat = start().await;
        chat.discord
            .command(from(ALICE), "deploy main to staging")
            .await;
        chat.newest_reaches(State::AwaitingApproval).await;
        let staging = chat.asking_about("to staging").await;
        let approve = Chat::approve_id(&staging);
        assert_eq!(
            chat.discord
                .click(from(CAROL), &staging.id, &approve)
                .await
                .json,
            json!({ "type": 6 })
        );
        chat.newest_reaches(State::Succeeded).await;

        chat.discord
            .command(from(ALICE), "promote from staging to prod")
            .await;
        let request = chat.newest_reaches(State::AwaitingApproval).await;
        let prod = chat.asking_about("to prod").await;
        let approve = Chat::approve_id(&prod);
        assert_eq!(approve, format!("gantry_approve:{}", request.id));
        assert_eq!(
            prod.components[0]["components"][1]["custom_id"],
            format!("gantry_deny:{}", request.id)
        );
        // alice asked, so her click is refused, with a reply in the channel.
        chat.discord.click(from(ALICE), &prod.id, &approve).await;
        chat.until("alice's refusal", |c| {
            c.discord
                .messages()
                .iter()
                .any(|m| m.versions[0].contains("cannot approve it too"))
        })
        .await;
        // bob approves; a replay of his click counts once.
        let payload = gantry::sandbox::discord::button_payload(
            APP,
            4242,
            "tok-bob",
            from(BOB),
            &json!({ "id": prod.id, "channel_id": CHANNEL.to_string() }),
            &approve,
        );
        assert_eq!(chat.discord.send(&payload).await.json["type"], 6);
        assert_eq!(chat.discord.send(&payload).await.body, "duplicate");
        chat.until("bob's approval", |c| {
            c.h.request(request.id).approvals.len() == 1
        })
        .await;
        assert_eq!(chat.h.request(request.id).state, State::AwaitingApproval);
        // dave's click makes two.
        chat.discord.click(from(DAVE), &prod.id, &approve).await;
        let done = chat.newest_reaches(State::Succeeded).await;
        let approvers: Vec<&str> = done.approvals.iter().map(|a| a.person.as_str()).collect();
        assert_eq!(approvers, ["bob", "dave"]);
        assert_eq!(chat.h.image("prod", "web"), chat.h.image("staging", "web"));

        chat.until("the final edit", |c| {
            c.message_about("to prod")
                .versions
                .last()
                .is_some_and(|v| v.contains("succeeded"))
        })
        .await;
        let message = chat.message_about("to prod");
        let versions = message
            .versions
            .iter()
            .map(|v| shown(v))
            .collect::<Vec<_>>()
            .join("\n---\n");
        for step in [
            "awaiting approval: release-manager 0/2",
            "release-manager 1/2 bob;",
            "approved: release-manager 2/2 bob, dave",
            "deploying",
            "succeeded: web runs",
        ] {
            assert!(
                versions.contains(step),
                "`{step}` missing from:\n{versions}"
            );
        }
        assert_eq!(
            message.components,
            json!([]),
            "the buttons are gone once it is approved"
        );
        assert!(chat.h.store.verify().unwrap().first_bad.is_none());
        let actions = chat.h.actions(&request.id.to_string());
        assert_eq!(
            actions.iter().filter(|a| *a == "request.approved").count(),
            2,
            "{actions:?}"
        );
        assert!(
            actions.iter().any(|a| a == "request.succeeded"),
            "{actions:?}"
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limits_delay_messages_but_never_repeat_a_deploy() {
    support::within(async {
        let chat = start().await;
        // The fake's 429 is Discord's: headers and body.
        chat.discord.rate_limit_next(1, 0.25);
        let client = reqwest::Client::new();
        let answer = client
            .post(format!(
                "{}/api/v10/channels/{CHANNEL}/messages",
                chat.discord.api_url()
            ))
            .header(
                "Authorization",
                format!("Bot {}", chat.h.sandbox.secrets.discord_bot_token.expose()),
            )
            .json(&json!({ "content": "hi" }))
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 429);
        for name in [
            "retry-after",
            "x-ratelimit-limit",
            "x-ratelimit-remaining",
            "x-ratelimit-reset-after",
            "x-ratelimit-bucket",
        ] {
            assert!(answer.headers().contains_key(name), "{name}");
        }
        let body: Value = answer.json().await.unwrap();
        assert_eq!(body["message"], "You are being rate limited.");
        assert_eq!(body["retry_after"], 0.25);
        assert_eq!(body["global"], false);

        // Buckets, when enforced: five calls per route in five seconds.
        chat.discord.enforce_buckets(true);
        let mut statuses = Vec::new();
        for _ in 0..6 {
            let answer = client
                .post(format!(
                    "{}/api/v10/channels/{CHANNEL}/messages",
                    chat.discord.api_url()
                ))
                .header(
                    "Authorization",
                    format!("Bot {}", chat.h.sandbox.secrets.discord_bot_token.expose()),
                )
                .json(&json!({ "content": "hi" }))
                .send()
                .await
                .unwrap();
            let remaining = answer.headers()["x-ratelimit-remaining"].clone();
            statuses.push((
                answer.status().as_u16(),
                remaining.to_str().unwrap().to_owned(),
            ));
        }
        let expected: Vec<(u16, String)> = [
            (200, "4"),
            (200, "3"),
            (200, "2"),
            (200, "1"),
            (200, "0"),
            (429, "0"),
        ]
        .iter()
        .map(|(s, r)| (*s, (*r).to_owned()))
        .collect();
        assert_eq!(statuses, expected);
        chat.discord.enforce_buckets(false);
        let before = chat.discord.messages().len();

        chat.discord.rate_limit_next(2, 0.25);
        let ack = chat
            .discord
            .command(from(ALICE), "deploy main to dev")
            .await;
        assert_eq!(ack.json["type"], 5);
        let request = chat.newest_reaches(State::Succeeded).await;
        chat.until("the progress message ends succeeded", |c| {
            c.discord
                .messages()
                .iter()
                .any(|m| m.versions.last().is_some_and(|v| v.contains("succeeded")))
        })
        .await;
        let limited = chat
            .discord
            .calls()
            .iter()
            .filter(|c| c.status == 429)
            .count();
        assert_eq!(limited, 4, "two probes and two answered to Gantry");
        assert!(chat.discord.messages().len() > before);
        assert_eq!(chat.h.store.requests::<Request>().unwrap().len(), 1);
        let actions = chat.h.actions(&request.id.to_string());
        assert_eq!(
            actions.iter().filter(|a| *a == "request.succeeded").count(),
            1,
            "{actions:?}"
        );
        assert_eq!(
            chat.discord
                .messages()
                .iter()
                .filter(|m| m.versions[0].contains("to dev"))
                .count(),
            1,
            "one progress message"
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_bot_token_is_unauthorised_and_reported() {
    support::within(async {
        let chat = start().await;
        let wrong = DiscordNotifier::new(
            &chat.discord.api_url(),
            &Secret::new("not-the-token".into()),
            APP,
        )
        .unwrap();
        let conversation = gantry::engine::Conversation {
            platform: gantry::engine::Platform::Discord,
            channel: CHANNEL.to_string(),
        };
        use gantry::engine::Notifier as _;
        let err = wrong.post(&conversation, "hello").await.unwrap_err();
        assert!(
            matches!(err, gantry::engine::PortError::Unauthorised(_)),
            "{err:?}"
        );
        let _ = chat.addr;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interaction_with_a_key_twice_is_refused_and_not_recorded() {
    support::within(async {
        let chat = start().await;
        let payload = command_payload(APP, 88, "tok-88", from(ALICE), "deploy main to dev");
        let body = payload.to_string();
        // serde_json would read the last `value`; other parsers the first.
        let smuggled = body.replacen(
            r#""value":"deploy main to dev""#,
            r#""value":"status","value":"deploy main to dev""#,
            1,
        );
        assert_ne!(smuggled, body);
        let ts = now(&chat);
        let headers = [
            (
                "X-Signature-Ed25519".to_owned(),
                chat.discord.sign(ts, smuggled.as_bytes()),
            ),
            ("X-Signature-Timestamp".to_owned(), ts.to_string()),
        ];
        let refused = chat.discord.send_raw(&headers, smuggled.into_bytes()).await;
        assert_eq!(
            (refused.status, refused.body.as_str()),
            (
                400,
                r#"duplicate key "value" at /data/options/0 in the JSON body"#
            )
        );
        assert!(chat.h.store.requests::<Request>().unwrap().is_empty());

        // Not recorded: the same interaction id with a correct body is acted on.
        let accepted = chat.discord.send(&payload).await;
        assert_eq!(
            (accepted.status, accepted.json["type"].clone()),
            (200, json!(5)),
            "{}",
            accepted.body
        );
        chat.newest_reaches(State::Succeeded).await;
        assert_eq!(chat.h.store.requests::<Request>().unwrap().len(), 1);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deploy_in_a_freeze_window_is_refused_saying_when_the_window_ends() {
    support::within(async {
        let chat = start().await;
        // Friday 18:30 in Berlin: inside dev's 18:00-24:00 Europe/Berlin window.
        chat.h.set_time(support::FRIDAY_EVENING_IN_BERLIN);
        let ack = chat
            .discord
            .command(from(ALICE), "deploy main to dev")
            .await;
        assert_eq!((ack.status, ack.json.clone()), (200, json!({ "type": 5 })));
        // The deferred answer is edited to "on it", then to the refusal.
        chat.until("the refusal", |c| {
            c.discord.originals()[&ack.token].versions.len() >= 3
        })
        .await;
        let original = &chat.discord.originals()[&ack.token];
        let versions: Vec<String> = original.versions.iter().map(|v| shown(v)).collect();
        assert_eq!(
            versions[1..],
            [
                "on it: deploy main to dev",
                "refused: dev is frozen: no deploys on Friday evening (frozen until Sat 00:00 Europe/Berlin)",
            ],
            "{versions:#?}"
        );
        assert!(
            chat.h.store.requests::<Request>().unwrap().is_empty(),
            "a refused deploy creates no request"
        );
    })
    .await;
}
