//! Verification through Slack against a real Prometheus: signed slash
//! commands into the real server, progress messages through the real Slack
//! client into the sandbox Slack, and an error-ratio check that Prometheus
//! answers from what it scraped off an exporter this test controls.

mod support;

use std::net::SocketAddr;
use std::sync::atomic::Ordering;

use gantry::chat::slack::COMPLETE_ACTION;
use gantry::config::Secret;
use gantry::engine::{Conversation, Platform, Request, State};
use gantry::names::RequestId;
use gantry::sandbox::slack::FakeSlack;
use gantry::server::router;
use gantry::server::verify::slack_signature;
use support::http::{send, Answer};
use support::prometheus::TestPrometheus;
use support::{until, within, Harness};

const SIGNING: &str = "verify-chat-signing-secret";
const TEAM: &str = "T0SANDBOX";
const ALICE: &str = "UALICE01";
const RATIO: &str = r#"error_ratio{namespace="dev"}"#;

struct Chat {
    h: Harness,
    slack: FakeSlack,
    addr: SocketAddr,
    prometheus: TestPrometheus,
    _dir: tempfile::TempDir,
    _server: support::Watched,
}

/// The engine scenarios' config with Prometheus and an error-ratio check on
/// dev: probed every 200 ms for a 2 s soak, one failure tolerated.
fn config(dir: &std::path::Path, prometheus: &str, soak: &str) -> String {
    let base = std::fs::read_to_string(support::data("engine.toml")).expect("engine.toml");
    let text = format!(
        r#"{base}
[prometheus.metrics]
url = "{prometheus}/"

[environments.dev.verify]
soak = "{soak}"

[[environments.dev.verify.checks]]
name = "error-rate"
type = "prometheus"
prometheus = "metrics"
query = 'error_ratio{{namespace="{{namespace}}"}}'
comparison = "<"
threshold = 0.01
interval = "200ms"
failures_tolerated = 1
"#
    );
    let path = dir.join("verify-chat.toml");
    std::fs::write(&path, text).expect("config written");
    path.to_str().expect("a UTF-8 path").to_owned()
}

async fn start(soak: &str) -> Option<Chat> {
    let prometheus = TestPrometheus::start().await?;
    prometheus.gauges.set(RATIO, 0.001);
    prometheus.wait_for_sample(RATIO, |v| v < 0.01).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let h = Harness::new(&config(dir.path(), &prometheus.url(), soak)).await;
    let slack = h.slack();
    let state = h.slack_server(vec![Secret::new(SIGNING.into())]);
    let (addr, server) = support::serve_router(router(state)).await;
    Some(Chat {
        h,
        slack,
        addr,
        prometheus,
        _dir: dir,
        _server: server,
    })
}

impl Chat {
    /// `/gantry <text>` from alice in #deploys, signed.
    async fn command(&self, text: &str) -> Answer {
        let body = serde_urlencoded::to_string([
            ("team_id", TEAM),
            ("user_id", ALICE),
            ("channel_id", "C0DEPLOYS"),
            ("command", "/gantry"),
            ("text", text),
        ])
        .expect("a form");
        self.post("/slack/commands", body.into_bytes()).await
    }

    /// alice clicks the button `action` of request `id` on its message.
    async fn click(&self, id: RequestId, action: &str) -> Answer {
        let head = format!("{id} ");
        let ts = self
            .slack
            .messages()
            .into_iter()
            .find(|m| m.versions[0].starts_with(&head))
            .expect("the request's message")
            .ts;
        let payload = serde_json::json!({
            "type": "block_actions", "trigger_id": "trigger-alice", "team": { "id": TEAM },
            "user": { "id": ALICE }, "channel": { "id": "C0DEPLOYS" }, "message": { "ts": ts },
            "actions": [{ "action_id": action, "value": id.to_string(), "type": "button", "action_ts": "1795521601.1" }]
        });
        let body = serde_urlencoded::to_string([("payload", payload.to_string())]).expect("a form");
        self.post("/slack/interactions", body.into_bytes()).await
    }

    /// A signed form post to the server.
    async fn post(&self, path: &'static str, body: Vec<u8>) -> Answer {
        // A slash command is told apart from a redelivery by its signed
        // timestamp: the same text again is sent a second later.
        let ts = self.h.clock.fetch_add(1, Ordering::SeqCst) + 1;
        let headers = vec![
            (
                "Content-Type",
                "application/x-www-form-urlencoded".to_owned(),
            ),
            ("X-Slack-Request-Timestamp", ts.to_string()),
            ("X-Slack-Signature", slack_signature(SIGNING, ts, &body)),
        ];
        let addr = self.addr;
        let answer = tokio::task::spawn_blocking(move || send(addr, "POST", path, &headers, &body))
            .await
            .expect("the request task");
        assert_eq!(answer.status, 200, "{}", answer.body);
        answer
    }

    fn newest(&self) -> Option<Request> {
        let all: Vec<(u64, Request)> = self.h.store.requests().expect("store readable");
        all.into_iter().map(|(_, r)| r).max_by_key(|r| r.id.0)
    }

    /// Waits until a request newer than `after` is verifying with its
    /// checks started.
    async fn verifying_after(&self, after: u64) -> RequestId {
        until("a new request's checks have started", || {
            self.newest().is_some_and(|r| {
                r.id.0 > after && r.state == State::Verifying && r.verification.is_some()
            })
        })
        .await;
        self.newest().expect("a request").id
    }

    async fn ends(&self, id: RequestId) -> Request {
        until(&format!("{id} ends"), || {
            self.h.request(id).state.is_terminal()
        })
        .await;
        self.h.request(id)
    }

    /// Waits until the progress message of `id` last says `text`.
    async fn shows(&self, id: RequestId, text: &str) {
        until(&format!("{id}'s message says {text}"), || {
            self.versions(id).last().is_some_and(|v| v.contains(text))
        })
        .await;
    }

    /// Every version of the progress message of `id` in the sandbox Slack.
    fn versions(&self, id: RequestId) -> Vec<String> {
        let head = format!("{id} ");
        self.slack
            .messages()
            .into_iter()
            .find(|m| m.versions[0].starts_with(&head))
            .map(|m| m.versions)
            .unwrap_or_default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn releases_are_verified_from_prometheus_and_a_bad_one_goes_back_to_the_verified_one() {
    within(async {
        let Some(chat) = start("2s").await else {
            return;
        };
        // 1. A good release holds for the soak: verified.
        chat.command("deploy main to dev").await;
        let first = chat.verifying_after(0).await;
        let first = chat.ends(first).await;
        assert_eq!(first.state, State::Succeeded, "{:?}", first.note);
        assert!(first.is_verified());
        let shown = chat.versions(first.id);
        assert!(
            shown.iter().any(|v| v.contains("verifying: 1/1 checks ok")),
            "{shown:#?}"
        );
        assert!(
            shown
                .iter()
                .any(|v| v.contains("✓ error-rate: 0.001 &lt; 0.01")),
            "{shown:#?}"
        );
        chat.shows(first.id, "verified: 1 check(s) held for 2s")
            .await;

        // 2. A second release is completed early with its Complete button: it
        // goes ahead, not verified.
        chat.h.move_branch("acme/web", "main");
        chat.command("deploy main to dev").await;
        let second = chat.verifying_after(first.id.0).await;
        chat.shows(second, "verifying:").await;
        chat.click(second, COMPLETE_ACTION).await;
        let second = chat.ends(second).await;
        assert_eq!(second.state, State::Succeeded, "{:?}", second.note);
        assert!(!second.is_verified());
        chat.shows(second.id, "not verified: alice completed it early")
            .await;

        // 3. A third release raises the error ratio during its soak.
        chat.h.move_branch("acme/web", "main");
        chat.command("deploy main to dev").await;
        let third = chat.verifying_after(second.id.0).await;
        chat.prometheus.gauges.set(RATIO, 0.2);
        let third = chat.ends(third).await;
        assert_eq!(third.state, State::RolledBack, "{:?}", third.note);
        let note = third.note.clone().unwrap_or_default();
        assert!(note.contains("check error-rate failed: 0.2"), "{note}");
        let digest = first.digest.clone().expect("a digest");
        assert!(
            note.contains(&format!(
                "rolled back to {}, the last verified release ({})",
                digest.short(),
                first.id
            )),
            "{note}"
        );
        assert!(chat.h.image("dev", "web").ends_with(&digest.to_string()));
        chat.shows(third.id, "rolled back: check error-rate failed: 0.2")
            .await;
        // What runs is the verified release again.
        chat.command("status dev").await;
        until("status says the verified release runs", || {
            chat.slack
                .messages()
                .iter()
                .any(|m| m.versions[0].contains(&format!("since {}, by alice, verified", first.id)))
        })
        .await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_while_verifying_resumes_the_prometheus_check_with_the_time_left() {
    within(async {
        let Some(chat) = start("3s").await else {
            return;
        };
        // The release runs in a task this test can stop, as a stop of
        // Gantry would; its progress goes to Slack.
        let engine = chat.h.engine.clone();
        let task = tokio::spawn(async move {
            let identity = format!("slack:{TEAM}:{ALICE}").parse().expect("identity");
            let place = Conversation {
                platform: Platform::Slack,
                channel: "C0DEPLOYS".into(),
            };
            engine.handle(&identity, &place, "deploy main to dev").await;
        });
        let id = chat.verifying_after(0).await;
        until("the checks have covered part of the soak", || {
            chat.h
                .request(id)
                .verification
                .is_some_and(|v| v.covered_ms >= 400)
        })
        .await;
        task.abort();
        let _ = task.await;
        let covered = chat
            .h
            .request(id)
            .verification
            .expect("a verification")
            .covered_ms;
        assert!(covered < 3000, "{covered}");

        let again = chat.h.restart();
        let recovered = again.engine.recover().await.expect("recovery");
        assert_eq!(recovered.verifying, vec![id]);
        let probes_before = again
            .request(id)
            .verification
            .expect("a verification")
            .checks[0]
            .probes;
        assert_eq!(
            again.engine.resume_verifying(id).await.expect("resumed"),
            State::Succeeded
        );
        let after = again.request(id);
        assert!(after.is_verified());
        let v = after.verification.expect("a verification");
        assert_eq!((v.covered_ms, v.soak_ms), (3000, 3000));
        // Probed again after the restart, for the time that was left.
        assert!(v.checks[0].probes > probes_before, "{v:?}");
        let shown = chat.versions(id);
        assert!(
            shown
                .iter()
                .any(|s| s.contains("checks resumed after a restart")),
            "{shown:#?}"
        );
    })
    .await;
}
