//! The whole Slack flow over real HTTP: signed slash commands into the real
//! server, progress messages through the real Slack client into the fake
//! Slack Web API, approvals by reaction and by button through the Events
//! and interactivity routes.

mod support;

use std::net::SocketAddr;
use std::sync::atomic::Ordering;

use gantry::adapters::slack::{APPROVE_ACTION, COMPLETE_ACTION};
use gantry::config::Secret;
use gantry::engine::{Request, State};
use gantry::sandbox::slack::FakeSlack;
use gantry::server::router;
use gantry::server::verify::slack_signature;
use serde_json::json;
use support::http::{send, Answer};
use support::Harness;

const SIGNING: &str = "chat-test-signing-secret";
const TEAM: &str = "T0SANDBOX";

struct Chat {
    h: Harness,
    slack: FakeSlack,
    addr: SocketAddr,
    /// The server; the test fails if it stopped.
    _server: support::Watched,
}

async fn start() -> Chat {
    // The sandbox's Slack, reached by the production wiring's Slack client.
    let h = Harness::new("engine.toml").await;
    let slack = h.slack();
    let state = h.slack_server(vec![Secret::new(SIGNING.into())]);
    let (addr, server) = support::serve_router(router(state)).await;
    Chat {
        h,
        slack,
        addr,
        _server: server,
    }
}

impl Chat {
    async fn post(&self, path: &'static str, content_type: &'static str, body: Vec<u8>) -> Answer {
        let ts = self.h.clock.load(Ordering::SeqCst);
        let headers = vec![
            ("Content-Type", content_type.to_owned()),
            ("X-Slack-Request-Timestamp", ts.to_string()),
            ("X-Slack-Signature", slack_signature(SIGNING, ts, &body)),
        ];
        let addr = self.addr;
        tokio::task::spawn_blocking(move || send(addr, "POST", path, &headers, &body))
            .await
            .unwrap()
    }

    /// The first refusal posted in a channel, once it is there.
    async fn posted_refusal(&self) -> gantry::sandbox::slack::FakeMessage {
        let refusal = || {
            self.slack
                .messages()
                .into_iter()
                .find(|m| m.versions[0].starts_with("refused:"))
        };
        support::until("the refusal is posted in the channel", || {
            refusal().is_some()
        })
        .await;
        refusal().expect("the refusal is posted in the channel")
    }

    async fn command(&self, user: &str, text: &str) -> Answer {
        let body = serde_urlencoded::to_string([
            ("team_id", TEAM),
            ("user_id", user),
            ("channel_id", "C0DEPLOYS"),
            ("command", "/gantry"),
            ("text", text),
        ])
        .unwrap();
        self.post(
            "/slack/commands",
            "application/x-www-form-urlencoded",
            body.into_bytes(),
        )
        .await
    }

    async fn react(&self, user: &str, ts: &str, event_id: &str) -> Answer {
        let body = json!({
            "token": "unused", "team_id": TEAM, "api_app_id": "A0GANTRY", "type": "event_callback",
            "event_id": event_id, "event_time": 1_795_521_600,
            "event": { "type": "reaction_added", "user": user, "reaction": "white_check_mark", "item_user": "UGANTRY00",
                       "item": { "type": "message", "channel": "C0DEPLOYS", "ts": ts }, "event_ts": "1795521600.000100" }
        });
        self.post(
            "/slack/events",
            "application/json",
            body.to_string().into_bytes(),
        )
        .await
    }

    async fn click(&self, user: &str, ts: &str, value: &str) -> Answer {
        self.press(user, ts, APPROVE_ACTION, value, "1795521601.1")
            .await
    }

    /// A click on button `action` (valued `value`) of message `ts`; the
    /// trigger and `action_ts` make its delivery id.
    async fn press(
        &self,
        user: &str,
        ts: &str,
        action: &str,
        value: &str,
        action_ts: &str,
    ) -> Answer {
        let payload = json!({
            "type": "block_actions", "trigger_id": format!("trigger-{user}"), "team": { "id": TEAM }, "user": { "id": user },
            "channel": { "id": "C0DEPLOYS" }, "message": { "ts": ts },
            "actions": [{ "action_id": action, "value": value, "type": "button", "action_ts": action_ts }]
        });
        let body = serde_urlencoded::to_string([("payload", payload.to_string())]).unwrap();
        self.post(
            "/slack/interactions",
            "application/x-www-form-urlencoded",
            body.into_bytes(),
        )
        .await
    }

    /// Waits (bounded) until the newest request reaches `state`.
    async fn newest_reaches(&self, state: State) -> Request {
        let newest = || self.h.store.requests::<Request>().unwrap().pop();
        support::until(&format!("the newest request becomes {state:?}"), || {
            newest().is_some_and(|(_, r)| r.state == state)
        })
        .await;
        newest().expect("a request").1
    }

    /// The ts of the progress message whose first version mentions `what`.
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
async fn slack_commands_reactions_and_buttons_drive_a_release_to_prod() {
    support::within(async {
        let chat = start().await;
        let ack = chat.command("UALICE01", "deploy main to dev").await;
        assert_eq!(ack.status, 200);
        assert!(
            ack.body.contains("on it: deploy main to dev"),
            "{}",
            ack.body
        );
        chat.newest_reaches(State::Succeeded).await;

        chat.command("UALICE01", "deploy main to staging").await;
        chat.newest_reaches(State::AwaitingApproval).await;
        let staging = chat.message_about("to staging");
        assert_eq!(chat.react("UCAROL03", &staging, "Ev01").await.status, 200);
        chat.newest_reaches(State::Succeeded).await;

        chat.command("UALICE01", "promote from staging to prod")
            .await;
        let request = chat.newest_reaches(State::AwaitingApproval).await;
        let prod = chat.message_about("to prod");
        // alice's own reaction is refused, with a reply in the channel.
        chat.react("UALICE01", &prod, "Ev02").await;
        // bob approves by reaction; Slack retries the same event: it counts once.
        chat.react("UBOB0002", &prod, "Ev03").await;
        let retry = chat.react("UBOB0002", &prod, "Ev03").await;
        assert_eq!((retry.status, retry.body.as_str()), (200, "duplicate"));
        support::until("bob's approval and the refusal of alice's", || {
            chat.h.request(request.id).approvals.len() == 1
                && chat
                    .slack
                    .messages()
                    .iter()
                    .any(|m| m.versions[0].contains("cannot approve it too"))
        })
        .await;
        assert_eq!(chat.h.request(request.id).state, State::AwaitingApproval);
        // dave clicks the Approve button.
        assert_eq!(
            chat.click("UDAVE004", &prod, &request.id.to_string())
                .await
                .status,
            200
        );
        let done = chat.newest_reaches(State::Succeeded).await;
        let approvers: Vec<&str> = done.approvals.iter().map(|a| a.person.as_str()).collect();
        assert_eq!(approvers, ["bob", "dave"]);
        assert_eq!(chat.h.image("prod", "web"), chat.h.image("staging", "web"));

        // The request is recorded as succeeded before its last edit reaches Slack.
        let progress = || {
            chat.slack
                .messages()
                .into_iter()
                .find(|m| m.ts == prod)
                .unwrap()
        };
        support::until("the progress message reaches `succeeded`", || {
            progress()
                .versions
                .last()
                .is_some_and(|v| v.contains("succeeded"))
        })
        .await;
        let message = progress();
        let versions = message.versions.join("\n---\n");
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
            message.blocks,
            json!([]),
            "the buttons are gone once it is approved"
        );
        let refusal = chat
            .slack
            .messages()
            .into_iter()
            .find(|m| m.versions[0].contains("cannot approve it too"))
            .unwrap();
        assert!(
            refusal.versions[0].contains("alice asked for"),
            "{:?}",
            refusal.versions
        );
        assert!(chat.h.store.verify().unwrap().first_bad.is_none());
        let actions = chat.h.actions(&request.id.to_string());
        assert!(
            actions.iter().filter(|a| *a == "request.approved").count() == 2,
            "{actions:?}"
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_restart_gantry_keeps_editing_the_same_message() {
    support::within(async {
        let chat = start().await;
        chat.command("UALICE01", "deploy main to staging").await;
        let waiting = chat.newest_reaches(State::AwaitingApproval).await;
        let before: Vec<String> = chat.slack.messages().iter().map(|m| m.ts.clone()).collect();

        // A new engine over the same store and the same Slack: a restart.
        let again = chat.h.restart();
        let recovered = again.engine.recover().await.unwrap();
        assert_eq!(recovered.resumed, [waiting.id.to_string()]);
        again
            .say(
                "slack:T0SANDBOX:UCAROL03",
                &format!("approve {}", waiting.id),
            )
            .await;
        assert_eq!(again.request(waiting.id).state, State::Succeeded);

        let messages = chat.slack.messages();
        let after: Vec<String> = messages.iter().map(|m| m.ts.clone()).collect();
        assert_eq!(after, before, "no new message was posted for the request");
        let versions = &messages
            .iter()
            .find(|m| m.ts == before[0])
            .unwrap()
            .versions;
        let text = versions.join("\n");
        for step in [
            "awaiting approval",
            "still waiting after a restart",
            "approved: qa 1/1 carol",
            "succeeded",
        ] {
            assert!(text.contains(step), "`{step}` missing:\n{text}");
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_approval_comment_and_a_denial_reason_reach_the_message_the_audit_and_github() {
    support::within(async {
        let chat = start().await;
        chat.command("UALICE01", "deploy main to staging").await;
        let staged = chat.newest_reaches(State::AwaitingApproval).await;
        chat.command(
            "UCAROL03",
            &format!("approve {} tested on uat, fine", staged.id),
        )
        .await;
        let staged = chat.newest_reaches(State::Succeeded).await;
        assert_eq!(
            staged.approvals[0].comment.as_deref(),
            Some("tested on uat, fine")
        );
        let approved = chat
            .h
            .audit_details(&staged.id.to_string(), "request.approved");
        assert_eq!(approved.len(), 1, "{approved:?}");
        assert_eq!(approved[0]["event"]["comment"], "tested on uat, fine");
        let statuses = chat.h.deployment_descriptions("acme/web", "staging");
        assert_eq!(
            statuses.last().unwrap()[1],
            (
                "in_progress".to_owned(),
                "Gantry: in progress; approved: qa 1/1 carol “tested on uat, fine”".to_owned()
            ),
            "{statuses:?}"
        );

        let prod_before = chat.h.cluster_writes().len();
        chat.command("UALICE01", "promote from staging to prod")
            .await;
        let asked = chat.newest_reaches(State::AwaitingApproval).await;
        let prod = chat.message_about(&format!("{} promote", asked.id));
        chat.command(
            "UBOB0002",
            &format!("deny {} not during the incident", asked.id),
        )
        .await;
        let denied = chat.newest_reaches(State::Denied).await;
        assert_eq!(
            denied.note.as_deref(),
            Some("denied by bob: not during the incident")
        );
        let denials = chat
            .h
            .audit_details(&denied.id.to_string(), "request.denied");
        assert_eq!(
            denials[0]["event"]["reason"],
            "denied by bob: not during the incident"
        );
        support::until("the message says who denied it and why", || {
            chat.slack.messages().into_iter().any(|m| {
                m.ts == prod
                    && m.versions.last().is_some_and(|v| {
                        v.contains("denied: denied by bob: not during the incident")
                    })
            })
        })
        .await;
        // The refusal is on the repository's deployments too (recorded
        // after the request ended), and nothing ran.
        let subject = denied.id.to_string();
        support::until("the denial is recorded on GitHub", || {
            chat.h
                .actions(&subject)
                .iter()
                .any(|a| a == "github.denial_recorded")
        })
        .await;
        assert_eq!(
            chat.h.deployment_descriptions("acme/web", "prod"),
            [vec![
                ("queued".to_owned(), "Gantry: queued".to_owned()),
                (
                    "failure".to_owned(),
                    "Gantry: failure; denied by bob: not during the incident".to_owned()
                ),
            ]]
        );
        assert_eq!(
            chat.h.cluster_writes().len(),
            prod_before,
            "nothing was written to the cluster"
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_approval_by_slash_command_is_answered_in_the_channel() {
    support::within(async {
        let chat = start().await;
        chat.command("UALICE01", "deploy main to staging").await;
        let request = chat.newest_reaches(State::AwaitingApproval).await;
        let ack = chat
            .command("UALICE01", &format!("approve {}", request.id))
            .await;
        assert!(
            ack.body.contains(&format!("on it: approve {}", request.id)),
            "{}",
            ack.body
        );
        // The refusal reaches the channel the command came from, not only the
        // audit trail.
        let answered = chat.posted_refusal().await;
        assert_eq!(answered.channel, "C0DEPLOYS");
        assert!(
            answered.versions[0].contains("alice asked for"),
            "{:?}",
            answered.versions
        );
        assert_eq!(chat.h.request(request.id).state, State::AwaitingApproval);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_complete_click_runs_as_the_clickers_command_on_its_own_requests_message_only() {
    support::within(async {
        let chat = start().await;
        chat.command("UALICE01", "deploy main to dev").await;
        let dev = chat.newest_reaches(State::Succeeded).await;
        let dev_message = chat.message_about("to dev");
        chat.command("UALICE01", "deploy main to staging").await;
        let staging = chat.newest_reaches(State::AwaitingApproval).await;
        let staging_message = chat.message_about("to staging");

        // carol clicks Complete on staging's message: `complete R-2` from her,
        // which the engine refuses, in the channel, as staging is not verifying.
        let id = staging.id.to_string();
        let ack = chat
            .press(
                "UCAROL03",
                &staging_message,
                COMPLETE_ACTION,
                &id,
                "1795521601.1",
            )
            .await;
        assert_eq!(ack.status, 200);
        let refusal = format!("refused: {id} is not verifying (it is awaiting approval)");
        let answered = || {
            chat.slack
                .messages()
                .into_iter()
                .find(|m| m.versions[0] == refusal)
        };
        support::until("the engine's answer is posted in the channel", || {
            answered().is_some()
        })
        .await;
        assert_eq!(answered().unwrap().channel, "C0DEPLOYS");
        assert_eq!(chat.h.actions("complete"), ["command.received"]);
        let received = chat
            .h
            .store
            .list(&gantry::store::ListFilter::default())
            .unwrap()
            .into_iter()
            .find(|e| e.action == "command.received" && e.subject == "complete")
            .unwrap();
        assert_eq!(received.actor, "carol");
        assert_eq!(received.details["text"], format!("complete {id}"));

        // The same button on dev's message is not ours: nothing is recorded.
        let ack = chat
            .press(
                "UCAROL03",
                &dev_message,
                COMPLETE_ACTION,
                &id,
                "1795521602.1",
            )
            .await;
        assert_eq!(ack.status, 200);
        let addr = chat.addr;
        let metrics = tokio::task::spawn_blocking(move || send(addr, "GET", "/metrics", &[], b""))
            .await
            .unwrap();
        assert!(
            metrics
                .body
                .contains(r#"route="/slack/interactions",outcome="ignored"} 1"#),
            "{}",
            metrics.body
        );
        assert_eq!(chat.h.actions("complete"), ["command.received"]);
        assert_eq!(chat.h.request(staging.id).state, State::AwaitingApproval);
        assert_eq!(chat.h.request(dev.id).state, State::Succeeded);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_twice_in_an_event_or_a_button_payload_is_refused_and_not_recorded() {
    support::within(async {
        let chat = start().await;
        chat.command("UALICE01", "deploy main to staging").await;
        let waiting = chat.newest_reaches(State::AwaitingApproval).await;
        let staging = chat.message_about("to staging");

        // serde_json would read the last `reaction`; other parsers the first.
        let event = |reactions: &str| {
            format!(
                r#"{{"token":"unused","team_id":"{TEAM}","api_app_id":"A0GANTRY","type":"event_callback","event_id":"Ev09","event_time":1795521600,"event":{{"type":"reaction_added","user":"UCAROL03",{reactions},"item_user":"UGANTRY00","item":{{"type":"message","channel":"C0DEPLOYS","ts":"{staging}"}},"event_ts":"1795521600.000100"}}}}"#
            )
        };
        let twice = event(r#""reaction":"eyes","reaction":"white_check_mark""#);
        let refused = chat
            .post("/slack/events", "application/json", twice.into_bytes())
            .await;
        assert_eq!(
            (refused.status, refused.body.as_str()),
            (
                400,
                r#"duplicate key "reaction" at /event in the JSON body"#
            )
        );

        let payload = format!(
            r#"{{"type":"block_actions","trigger_id":"trigger-UDAVE004","team":{{"id":"{TEAM}"}},"user":{{"id":"UDAVE004"}},"channel":{{"id":"C0DEPLOYS"}},"message":{{"ts":"{staging}"}},"actions":[{{"action_id":"gantry_deny","action_id":"{APPROVE_ACTION}","type":"button","action_ts":"1795521601.1"}}]}}"#
        );
        let form = serde_urlencoded::to_string([("payload", payload)]).unwrap();
        let refused = chat
            .post(
                "/slack/interactions",
                "application/x-www-form-urlencoded",
                form.into_bytes(),
            )
            .await;
        assert_eq!(
            (refused.status, refused.body.as_str()),
            (
                400,
                r#"duplicate key "action_id" at /actions/0 in the payload field"#
            )
        );
        assert_eq!(chat.h.request(waiting.id).state, State::AwaitingApproval);
        assert!(chat.h.request(waiting.id).approvals.is_empty());

        // The refused event was not recorded: Slack's retry with a correct body
        // (same event_id) is acted on, not answered `duplicate`.
        let retried = chat
            .post(
                "/slack/events",
                "application/json",
                event(r#""reaction":"white_check_mark""#).into_bytes(),
            )
            .await;
        assert_eq!((retried.status, retried.body.as_str()), (200, ""));
        let done = chat.newest_reaches(State::Succeeded).await;
        assert_eq!(done.id, waiting.id);
        let approvers: Vec<&str> = done.approvals.iter().map(|a| a.person.as_str()).collect();
        assert_eq!(approvers, ["carol"]);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deploy_in_a_freeze_window_is_refused_saying_when_the_window_ends() {
    support::within(async {
        let chat = start().await;
        // Friday 18:30 in Berlin (17:30 UTC): dev's window runs 18:00 to
        // 24:00 on Berlin's clock, so a UTC reading would let this through.
        chat.h.set_time(support::FRIDAY_EVENING_IN_BERLIN);
        let ack = chat.command("UALICE01", "deploy main to dev").await;
        let answered = chat.posted_refusal().await;
        assert_eq!(answered.channel, "C0DEPLOYS");
        assert_eq!(
            answered.versions[0],
            "refused: dev is frozen: no deploys on Friday evening (frozen until Sat 00:00 Europe/Berlin)",
            "ack: {}",
            ack.body
        );
        assert!(
            chat.h.store.requests::<Request>().unwrap().is_empty(),
            "a refused deploy creates no request"
        );
        // Two hours earlier, 16:30 in Berlin, dev is open.
        chat.h
            .set_time(support::FRIDAY_EVENING_IN_BERLIN - 2 * 3600);
        chat.command("UALICE01", "deploy main to dev").await;
        chat.newest_reaches(State::Succeeded).await;
    })
    .await;
}
