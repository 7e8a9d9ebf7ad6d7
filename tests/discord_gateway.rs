//! Approvals by reaction over Discord's gateway: the real gateway client
//! connected to the fake Discord's WebSocket gateway, progress messages
//! through the real serenity client into the fake's REST API.

mod support;

use std::future::Future;
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use gantry::config::Secret;
use gantry::engine::{Conversation, Request, State};
use gantry::names::Identity;
use gantry::sandbox::discord::{shown, FakeDiscord, FakeMessage, Origin};
use gantry::server::{Metrics, ServerState};
use gantry::sockets::discord::{GatewaySettings, INTENTS};
use serde_json::json;
use support::Harness;
use tokio_tungstenite::tungstenite::Message;

const TOKEN: &str = "discord-test-bot-token";
const APP: u64 = 100_000_000_000_000_000;
const GUILD: u64 = 200_000_000_000_000_000;
const CHANNEL: u64 = 300_000_000_000_000_001;
const ALICE: u64 = 100_000_000_000_000_001;
const BOB: u64 = 100_000_000_000_000_002;
const CAROL: u64 = 100_000_000_000_000_003;
const DAVE: u64 = 100_000_000_000_000_004;
const SOME_BOT: u64 = 100_000_000_000_000_099;
const LIMIT: Duration = Duration::from_secs(60);

struct Chat {
    h: Harness,
    discord: FakeDiscord,
    /// The gateway client; the test fails if it stopped.
    _client: support::Watched,
}

fn from(user: u64) -> Origin {
    Origin {
        guild: GUILD,
        channel: CHANNEL,
        user,
    }
}

fn settings(discord: &FakeDiscord, token: &str) -> GatewaySettings {
    GatewaySettings {
        api_url: discord.api_url(),
        token: Secret::new(token.into()),
        application_id: APP,
        guild_ids: vec![GUILD],
        approve_emoji: "✅".into(),
        deny_emoji: "❌".into(),
    }
}

/// The state the gateway shares with the HTTP routes in `serve`.
fn state(h: &Harness) -> std::sync::Arc<ServerState> {
    let time = h.clock.clone();
    std::sync::Arc::new(ServerState {
        front: gantry::inbound::Front::start(h.engine.clone()),
        slack: None,
        discord: None,
        github: None,
        metrics: Metrics::default(),
        clock: std::sync::Arc::new(move || time.load(std::sync::atomic::Ordering::SeqCst)),
    })
}

async fn within<F: Future<Output = ()>>(test: F) {
    tokio::time::timeout(LIMIT, test)
        .await
        .expect("the test finished in time");
}

async fn start() -> Chat {
    // The sandbox's Discord; the engine's messages reach it through the
    // production wiring, and the test runs the gateway client against it.
    let h = Harness::new("engine.toml").await;
    let discord = h.discord();
    discord.set_heartbeat_interval(200);
    let token = h.sandbox.secrets.discord_bot_token.expose().to_owned();
    let client =
        support::Watched::spawn("gateway client", settings(&discord, &token).run(state(&h)));
    let chat = Chat {
        h,
        discord,
        _client: client,
    };
    chat.until("the gateway session", |c| c.discord.gateway_sessions() == 1)
        .await;
    chat
}

impl Chat {
    async fn until(&self, what: &str, check: impl Fn(&Chat) -> bool) {
        for _ in 0..1000 {
            if check(self) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("{what} never happened: {:#?}", self.discord.messages());
    }

    async fn newest_reaches(&self, state: State) -> Request {
        self.until(&format!("the newest request becoming {state:?}"), |c| {
            c.h.store
                .requests::<Request>()
                .unwrap()
                .last()
                .is_some_and(|(_, r)| r.state == state)
        })
        .await;
        self.h.store.requests::<Request>().unwrap().pop().unwrap().1
    }

    /// Sends chat text as `user`, in the background, as a command would.
    fn say(&self, user: u64, text: &str) {
        let engine = self.h.engine.clone();
        let identity: Identity = format!("discord:{user}").parse().unwrap();
        let text = text.to_owned();
        tokio::spawn(async move {
            let conversation = Conversation {
                platform: gantry::engine::Platform::Discord,
                channel: CHANNEL.to_string(),
            };
            engine.handle(&identity, &conversation, &text).await
        });
    }

    async fn asking_about(&self, what: &str) -> FakeMessage {
        self.until("the approval message", |c| {
            c.discord
                .messages()
                .iter()
                .any(|m| shown(&m.versions[0]).contains(what) && m.components[0].is_object())
        })
        .await;
        self.discord
            .messages()
            .into_iter()
            .rev()
            .find(|m| shown(&m.versions[0]).contains(what))
            .unwrap()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn promotion_to_prod_is_approved_by_reactions() {
    within(async {
        let chat = start().await;
        let identify = &chat.discord.gateway_received()[0];
        assert_eq!(identify["op"], 2);
        assert_eq!(
            identify["d"]["token"],
            chat.h.sandbox.secrets.discord_bot_token.expose()
        );
        assert_eq!(identify["d"]["intents"], json!(INTENTS));
        assert_eq!(INTENTS, 1 | (1 << 10));
        assert_eq!(identify["d"]["properties"]["browser"], "gantry");

        chat.say(ALICE, "deploy main to staging");
        chat.newest_reaches(State::AwaitingApproval).await;
        let staging = chat.asking_about("to staging").await;
        assert_eq!(
            chat.discord
                .reaction_add(from(CAROL), &staging.id, "✅", false),
            1
        );
        chat.newest_reaches(State::Succeeded).await;

        chat.say(ALICE, "promote from staging to prod");
        let request = chat.newest_reaches(State::AwaitingApproval).await;
        let prod = chat.asking_about("to prod").await;
        let posted = chat.discord.messages().len();
        // A bot's reaction, another emoji and a reaction on a message that
        // is not Gantry's change nothing.
        chat.discord.reaction_add(
            Origin {
                user: SOME_BOT,
                ..from(BOB)
            },
            &prod.id,
            "✅",
            true,
        );
        chat.discord.reaction_add(from(BOB), &prod.id, "👍", false);
        chat.discord
            .reaction_add(from(BOB), "1300000000000009999", "✅", false);
        // alice asked, so her ✅ is refused, in the channel.
        chat.discord
            .reaction_add(from(ALICE), &prod.id, "✅", false);
        chat.until("alice's refusal", |c| {
            c.discord
                .messages()
                .iter()
                .any(|m| shown(&m.versions[0]).contains("cannot approve it too"))
        })
        .await;
        assert_eq!(
            chat.discord.messages().len(),
            posted + 1,
            "only the refusal"
        );
        assert!(chat.h.request(request.id).approvals.is_empty());

        // bob approves, then takes it back by removing his ✅.
        chat.discord.reaction_add(from(BOB), &prod.id, "✅", false);
        chat.until("bob's approval", |c| {
            c.h.request(request.id).approvals.len() == 1
        })
        .await;
        chat.discord.reaction_remove(from(BOB), &prod.id, "✅");
        chat.until("bob's withdrawal", |c| {
            c.h.request(request.id).approvals.is_empty()
        })
        .await;
        assert_eq!(chat.h.request(request.id).state, State::AwaitingApproval);

        // bob's ✅ again and dave's make two.
        chat.discord.reaction_add(from(BOB), &prod.id, "✅", false);
        chat.until("bob's approval", |c| {
            c.h.request(request.id).approvals.len() == 1
        })
        .await;
        chat.discord.reaction_add(from(DAVE), &prod.id, "✅", false);
        let done = chat.newest_reaches(State::Succeeded).await;
        let approvers: Vec<&str> = done.approvals.iter().map(|a| a.person.as_str()).collect();
        assert_eq!(approvers, ["bob", "dave"]);
        assert_eq!(chat.h.image("prod", "web"), chat.h.image("staging", "web"));
        let actions = chat.h.actions(&request.id.to_string());
        for step in ["approval.refused", "request.succeeded"] {
            assert!(actions.iter().any(|a| a == step), "{step}: {actions:?}");
        }

        // Heartbeats carry the last sequence number the client saw.
        chat.until("a heartbeat with the latest sequence", |c| {
            c.discord
                .gateway_received()
                .iter()
                .any(|p| p["op"] == 1 && p["d"].as_u64() == Some(10))
        })
        .await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deny_by_reaction_and_identify_again_after_the_session_timed_out() {
    within(async {
        let chat = start().await;
        // 4009 ends the session: the client must identify afresh.
        chat.discord.close_gateway(4009, "Session timed out");
        chat.until("a second identify", |c| {
            c.discord
                .gateway_received()
                .iter()
                .filter(|p| p["op"] == 2)
                .count()
                == 2
        })
        .await;
        chat.until("the new session", |c| c.discord.gateway_sessions() == 1)
            .await;

        chat.say(ALICE, "deploy main to staging");
        chat.newest_reaches(State::AwaitingApproval).await;
        let staging = chat.asking_about("to staging").await;
        chat.discord
            .reaction_add(from(CAROL), &staging.id, "❌", false);
        let denied = chat.newest_reaches(State::Denied).await;
        assert!(denied.approvals.is_empty());
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reaction_sent_while_the_connection_is_down_is_acted_on_once_after_resume() {
    within(async {
        let chat = start().await;
        chat.say(ALICE, "deploy main to staging");
        chat.newest_reaches(State::AwaitingApproval).await;
        let staging = chat.asking_about("to staging").await;
        // The connection drops (a resumable close), and carol's ✅ comes
        // while Gantry is reconnecting: Discord keeps it for the session.
        chat.discord.close_gateway(4000, "Unknown error");
        assert_eq!(
            chat.discord
                .reaction_add(from(CAROL), &staging.id, "✅", false),
            0,
            "no connection is open when the reaction is sent"
        );
        chat.until("a RESUME", |c| {
            c.discord.gateway_received().iter().any(|p| p["op"] == 6)
        })
        .await;
        let approved = chat.newest_reaches(State::Succeeded).await;
        assert_eq!(approved.approvals.len(), 1, "counted once");
        let received = chat.discord.gateway_received();
        let resume = received.iter().find(|p| p["op"] == 6).unwrap();
        assert_eq!(resume["d"]["session_id"], "fake-session-1");
        assert!(resume["d"]["seq"].as_u64().is_some(), "{resume}");
        assert_eq!(
            received.iter().filter(|p| p["op"] == 2).count(),
            1,
            "resumed, not identified again"
        );
        let approvals = chat
            .h
            .actions(&approved.id.to_string())
            .into_iter()
            .filter(|a| a == "request.approved")
            .count();
        assert_eq!(approvals, 1);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_token_is_refused() {
    within(async {
        let discord =
            FakeDiscord::start(TOKEN, APP, ed25519_dalek::SigningKey::from_bytes(&[42; 32]))
                .await
                .unwrap();
        // The gateway itself closes 4004 on a bad Identify.
        let (mut ws, _) = tokio_tungstenite::connect_async(discord.gateway_url())
            .await
            .unwrap();
        let hello = ws.next().await.unwrap().unwrap();
        let hello: serde_json::Value = serde_json::from_str(hello.to_text().unwrap()).unwrap();
        assert_eq!(hello["op"], 10);
        assert!(hello["d"]["heartbeat_interval"].as_u64().is_some());
        let identify = json!({ "op": 2, "d": { "token": "wrong", "intents": INTENTS } });
        ws.send(Message::text(identify.to_string())).await.unwrap();
        let closed = loop {
            match ws.next().await {
                Some(Ok(Message::Close(frame))) => break frame.unwrap(),
                Some(Ok(_)) => continue,
                other => panic!("expected a close frame: {other:?}"),
            }
        };
        assert_eq!(u16::from(closed.code), 4004);
        assert_eq!(closed.reason.as_str(), "Authentication failed");

        // The client with a wrong token stops instead of retrying forever.
        let h = Harness::new("engine.toml").await;
        tokio::time::timeout(
            Duration::from_secs(10),
            settings(&discord, "wrong").run(state(&h)),
        )
        .await
        .expect("the client gives up");
        assert_eq!(discord.gateway_sessions(), 0);
    })
    .await;
}
