//! Slack over Socket Mode: the real client opens a connection through the
//! fake Slack's `apps.connections.open`, receives envelopes on the fake's
//! WebSocket server and acknowledges them; commands and reactions are
//! handled as the HTTP routes handle them.

mod support;

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use gantry::config::Secret;
use gantry::engine::{Request, State};
use gantry::sandbox::slack::FakeSlack;
use gantry::server::ServerState;
use gantry::sockets::slack::{SocketMode, SocketSettings};
use serde_json::{json, Value};
use support::{until, Harness};

const TEAM: &str = "T0SANDBOX";
const APP_TOKEN: &str = "xapp-1-A0GANTRY-socket";
const LIMIT: Duration = Duration::from_secs(60);

struct Chat {
    h: Harness,
    slack: FakeSlack,
    /// The state the client shares, as `gantry serve` shares the routes'.
    state: Arc<ServerState>,
    /// The Socket Mode client; the test fails if it stopped.
    _client: support::Watched,
}

async fn within<F: Future<Output = ()>>(test: F) {
    tokio::time::timeout(LIMIT, test)
        .await
        .expect("the test took too long");
}

async fn start() -> Chat {
    // The sandbox's Slack, reached by the production wiring's Slack client;
    // the test runs the Socket Mode client against it.
    let h = Harness::new("engine.toml").await;
    let slack = h.slack();
    slack.set_app_token(APP_TOKEN);
    let settings = SocketSettings {
        api_url: slack.api_url(),
        app_token: Secret::new(APP_TOKEN.into()),
        team_ids: vec![TEAM.into()],
        approve_reaction: "white_check_mark".into(),
        deny_reaction: "x".into(),
    };
    let state = h.slack_server(Vec::new());
    let client = support::Watched::spawn(
        "Socket Mode client",
        SocketMode::serve(state.clone(), settings),
    );
    let fake = slack.clone();
    until("a Socket Mode connection", || fake.socket_sessions() == 1).await;
    Chat {
        h,
        slack,
        state,
        _client: client,
    }
}

fn command(id: &str, user: &str, text: &str) -> Value {
    json!({
        "envelope_id": id, "type": "slash_commands", "accepts_response_payload": true,
        "payload": {
            "token": "unused", "team_id": TEAM, "team_domain": "sandbox", "channel_id": "C0DEPLOYS",
            "channel_name": "deploys", "user_id": user, "user_name": user.to_lowercase(),
            "command": "/gantry", "text": text, "api_app_id": "A0GANTRY",
            "response_url": "https://hooks.slack.com/commands/T0SANDBOX/1/x", "trigger_id": format!("trigger-{id}"),
        }
    })
}

fn reaction(id: &str, user: &str, ts: &str) -> Value {
    json!({
        "envelope_id": id, "type": "events_api", "accepts_response_payload": false, "retry_attempt": 0,
        "payload": {
            "token": "unused", "team_id": TEAM, "api_app_id": "A0GANTRY", "type": "event_callback",
            "event_id": format!("Ev{id}"), "event_time": 1_795_521_600,
            "event": { "type": "reaction_added", "user": user, "reaction": "white_check_mark", "item_user": "UGANTRY00",
                       "item": { "type": "message", "channel": "C0DEPLOYS", "ts": ts }, "event_ts": "1795521600.000100" }
        }
    })
}

impl Chat {
    /// Waits (bounded) for the `n`th acknowledgement of envelope `id`.
    async fn ack(&self, id: &str, n: usize) -> Value {
        let acks = || -> Vec<Value> {
            self.slack
                .socket_received()
                .into_iter()
                .filter(|a| a["envelope_id"] == id)
                .collect()
        };
        until(&format!("ack {n} of {id}"), || acks().len() >= n).await;
        acks()[n - 1].clone()
    }

    /// Waits (bounded) until the newest request reaches `state`.
    async fn newest_reaches(&self, state: State) -> Request {
        let store = self.h.store.clone();
        until(&format!("the newest request becomes {state:?}"), || {
            let requests: Vec<(u64, Request)> = store.requests().unwrap();
            requests.last().is_some_and(|(_, r)| r.state == state)
        })
        .await;
        let requests: Vec<(u64, Request)> = store.requests().unwrap();
        requests.last().unwrap().1.clone()
    }

    fn message_about(&self, what: &str) -> String {
        self.slack
            .messages()
            .into_iter()
            .rev()
            .find(|m| m.versions[0].contains(what))
            .expect("a message")
            .ts
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn envelopes_run_commands_and_approvals_once_each() {
    within(async {
        let chat = start().await;
        assert_eq!(
            chat.slack
                .push_envelope(command("e1", "UALICE01", "deploy main to dev")),
            1
        );
        let ack = chat.ack("e1", 1).await;
        assert_eq!(ack["payload"]["response_type"], "ephemeral", "{ack}");
        // The acknowledgement counts in the shared /metrics.
        let metrics = chat.state.metrics.render(&BTreeMap::new(), 0);
        assert!(metrics.contains("socket_mode/slash_commands"), "{metrics}");
        assert!(
            ack["payload"]["text"]
                .as_str()
                .unwrap()
                .contains("on it: deploy main to dev"),
            "{ack}"
        );
        let dev = chat.newest_reaches(State::Succeeded).await;
        // The request is recorded as succeeded before its last edit reaches Slack.
        let progress = chat.message_about("to dev");
        let fake = chat.slack.clone();
        until("the progress message's final edit", || {
            fake.messages()
                .into_iter()
                .find(|m| m.ts == progress)
                .and_then(|m| m.versions.last().cloned())
                .is_some_and(|v| v.contains("succeeded"))
        })
        .await;

        // Slack redelivers the same envelope: acknowledged, acted on once.
        chat.slack
            .push_envelope(command("e1", "UALICE01", "deploy main to dev"));
        let again = chat.ack("e1", 2).await;
        assert_eq!(again, json!({ "envelope_id": "e1" }));
        let requests: Vec<(u64, Request)> = chat.h.store.requests().unwrap();
        assert_eq!(requests.len(), 1);
        assert_eq!(requests[0].1.id, dev.id);

        chat.slack
            .push_envelope(command("e2", "UALICE01", "deploy main to staging"));
        let waiting = chat.newest_reaches(State::AwaitingApproval).await;
        let staging = chat.message_about("to staging");
        chat.slack
            .push_envelope(reaction("e3", "UCAROL03", &staging));
        chat.slack
            .push_envelope(reaction("e3", "UCAROL03", &staging));
        assert_eq!(chat.ack("e3", 2).await, json!({ "envelope_id": "e3" }));
        let done = chat.newest_reaches(State::Succeeded).await;
        assert_eq!(done.id, waiting.id);
        let approvers: Vec<&str> = done.approvals.iter().map(|a| a.person.as_str()).collect();
        assert_eq!(approvers, ["carol"]);
        let actions = chat.h.actions(&waiting.id.to_string());
        assert_eq!(
            actions.iter().filter(|a| *a == "request.approved").count(),
            1,
            "{actions:?}"
        );
        assert_eq!(chat.slack.connections_opened(), 1);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_disconnect_makes_the_client_reconnect_and_keep_working() {
    within(async {
        let chat = start().await;
        assert_eq!(chat.slack.socket_disconnect("refresh_requested"), 1);
        let fake = chat.slack.clone();
        until("a second apps.connections.open", || {
            fake.connections_opened() == 2
        })
        .await;
        until("the new connection", || fake.socket_sessions() == 1).await;

        chat.slack
            .push_envelope(command("e9", "UALICE01", "deploy main to dev"));
        let ack = chat.ack("e9", 1).await;
        assert!(
            ack["payload"]["text"]
                .as_str()
                .unwrap()
                .contains("on it: deploy main to dev"),
            "{ack}"
        );
        chat.newest_reaches(State::Succeeded).await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_dropped_in_the_middle_of_an_approval_loses_nothing_and_counts_it_once() {
    within(async {
        let chat = start().await;
        chat.slack
            .push_envelope(command("e4", "UALICE01", "deploy main to staging"));
        let waiting = chat.newest_reaches(State::AwaitingApproval).await;
        let staging = chat.message_about("to staging");
        // The approval goes out and the connection drops at once: whether or
        // not Gantry saw it, or acknowledged it, is a race.
        chat.slack
            .push_envelope(reaction("e5", "UCAROL03", &staging));
        assert_eq!(chat.slack.socket_drop(), 1);
        let fake = chat.slack.clone();
        until("a new connection", || fake.connections_opened() == 2).await;
        until("the new connection's session", || {
            fake.socket_sessions() == 1
        })
        .await;
        // Whatever was not acknowledged came again; it is acknowledged now.
        chat.ack("e5", 1).await;
        let done = chat.newest_reaches(State::Succeeded).await;
        assert_eq!(done.id, waiting.id);
        let approvers: Vec<&str> = done.approvals.iter().map(|a| a.person.as_str()).collect();
        assert_eq!(approvers, ["carol"], "counted once");
        let approvals = chat
            .h
            .actions(&waiting.id.to_string())
            .into_iter()
            .filter(|a| a == "request.approved")
            .count();
        assert_eq!(approvals, 1);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_envelope_with_a_key_twice_is_dropped_unacknowledged_and_not_recorded() {
    within(async {
        let chat = start().await;
        let envelope = command("e7", "UALICE01", "deploy main to dev").to_string();
        // serde_json would read the last `text`; other parsers the first.
        let smuggled = envelope.replacen(
            r#""text":"deploy main to dev""#,
            r#""text":"help","text":"deploy main to dev""#,
            1,
        );
        assert_ne!(smuggled, envelope);
        assert_eq!(chat.slack.push_text(&smuggled), 1);
        // Envelopes are handled in order: once the next one is acknowledged,
        // the smuggled one was handled too.
        chat.slack.push_envelope(command("e8", "UALICE01", "help"));
        chat.ack("e8", 1).await;
        let acks = chat.slack.socket_received();
        assert!(
            acks.iter().all(|a| a["envelope_id"] != "e7"),
            "not acknowledged: {acks:?}"
        );
        assert!(chat.h.store.requests::<Request>().unwrap().is_empty());

        // Not recorded as seen: Slack's redelivery, correct this time, runs.
        chat.slack
            .push_envelope(command("e7", "UALICE01", "deploy main to dev"));
        let ack = chat.ack("e7", 1).await;
        assert!(
            ack["payload"]["text"]
                .as_str()
                .unwrap()
                .contains("on it: deploy main to dev"),
            "{ack}"
        );
        chat.newest_reaches(State::Succeeded).await;
    })
    .await;
}
