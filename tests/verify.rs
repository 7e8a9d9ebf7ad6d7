//! Verification after a rollout, end to end on the production wiring: the
//! engine deploys to the sandbox cluster, probes a real HTTP server this
//! test controls for the soak time, marks the release verified, rolls a
//! failing release back to the last verified one, and resumes a soak after
//! a restart with the time it had left.

mod support;

use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::Arc;

use axum::extract::State as Axum;
use axum::http::StatusCode;
use axum::routing::get;
use gantry::engine::{Control, Request, State};
use gantry::names::{PersonId, RequestId};
use support::{serve_router, until, within, Harness, Watched};

/// A health endpoint whose status the test sets.
struct Health {
    status: Arc<AtomicU16>,
    url: String,
    _server: Watched,
}

impl Health {
    async fn start() -> Health {
        let status = Arc::new(AtomicU16::new(200));
        let router = axum::Router::new()
            .route(
                "/healthz/{namespace}",
                get(|Axum(s): Axum<Arc<AtomicU16>>| async move {
                    let code = StatusCode::from_u16(s.load(Ordering::SeqCst))
                        .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
                    (code, "ok")
                }),
            )
            .with_state(status.clone());
        let (addr, server) = serve_router(router).await;
        Health {
            status,
            url: format!("http://{addr}/healthz/{{namespace}}"),
            _server: server,
        }
    }

    fn answer(&self, code: u16) {
        self.status.store(code, Ordering::SeqCst);
    }
}

/// The engine scenarios' config with a verification on dev: one HTTP
/// check every 100 ms for `soak`, one failure tolerated.
fn config_with_checks(dir: &std::path::Path, url: &str, soak: &str) -> String {
    let base = std::fs::read_to_string(support::data("engine.toml")).expect("engine.toml");
    let text = format!(
        r#"{base}
[environments.dev.verify]
soak = "{soak}"

[[environments.dev.verify.checks]]
name = "health"
type = "http"
url = "{url}"
interval = "100ms"
failures_tolerated = 1
"#
    );
    let path = dir.join("verify.toml");
    std::fs::write(&path, text).expect("config written");
    path.to_str().expect("a UTF-8 path").to_owned()
}

async fn harness(health: &Health, soak: &str) -> (Harness, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = config_with_checks(dir.path(), &health.url, soak);
    (Harness::new(&config).await, dir)
}

/// Starts `text` in the background and waits until its request verifies.
async fn verifying(h: &Harness, text: &str) -> (RequestId, tokio::task::JoinHandle<()>) {
    let before = newest(h).map_or(0, |b| b.id.0);
    let engine = h.engine.clone();
    let text = text.to_owned();
    let task = tokio::spawn(async move {
        let identity = "console:alice".parse().expect("identity");
        let place = gantry::engine::Conversation {
            platform: gantry::engine::Platform::Console,
            channel: "deploys".into(),
        };
        engine.handle(&identity, &place, &text).await;
    });
    until("the request's checks have started", || {
        newest(h).is_some_and(|r| {
            r.id.0 > before && r.state == State::Verifying && r.verification.is_some()
        })
    })
    .await;
    (newest(h).expect("a request").id, task)
}

fn newest(h: &Harness) -> Option<Request> {
    let all: Vec<(u64, Request)> = h.store.requests().expect("store readable");
    all.into_iter().map(|(_, r)| r).max_by_key(|r| r.id.0)
}

fn probed_coverage(h: &Harness, id: RequestId) -> Vec<u64> {
    let filter = gantry::store::ListFilter::default();
    let mut events = h.store.list(&filter).expect("audit readable");
    events.sort_by_key(|e| e.seq);
    events
        .into_iter()
        .filter(|e| e.subject == id.to_string() && e.action == "request.probed")
        .filter_map(|e| e.details["event"]["covered_ms"].as_u64())
        .collect()
}

#[tokio::test]
async fn a_release_whose_checks_hold_for_the_soak_is_verified() {
    within(async {
        let health = Health::start().await;
        let (h, _dir) = harness(&health, "1s").await;
        let reply = h.say("console:alice", "deploy main to dev").await;
        assert_eq!(reply.state, Some(State::Succeeded), "{}", reply.text);
        assert!(
            reply.text.contains("verified: 1 check(s) held for 1s"),
            "{}",
            reply.text
        );
        let id = reply.request.expect("a request");
        let request = h.request(id);
        assert!(request.is_verified());
        let v = request.verification.expect("a verification");
        assert_eq!((v.soak_ms, v.covered_ms), (1000, 1000));
        assert!(v.checks[0].probes >= 2, "{v:?}");
        let actions = h.actions(&id.to_string());
        for step in [
            "request.verify_started",
            "request.probed",
            "request.verified",
        ] {
            assert!(actions.iter().any(|a| a == step), "{step} in {actions:?}");
        }
        // The GitHub deployment succeeds only once the release is verified.
        let states = h.deployment_states("acme/web", "dev");
        assert_eq!(
            states.last().and_then(|s| s.last()).map(String::as_str),
            Some("success")
        );
        let status = h.say("console:alice", "status dev").await;
        assert!(status.text.contains(", verified"), "{}", status.text);
    })
    .await;
}

#[tokio::test]
async fn a_failing_check_rolls_back_to_the_last_verified_release_not_the_one_before() {
    within(async {
        let health = Health::start().await;
        let (h, _dir) = harness(&health, "1s").await;
        let first = h.say("console:alice", "deploy main to dev").await;
        assert_eq!(first.state, Some(State::Succeeded), "{}", first.text);
        let verified = h.request(first.request.expect("a request"));
        assert!(verified.is_verified());

        // A second release goes ahead early without being verified.
        h.move_branch("acme/web", "main");
        let (second, task) = verifying(&h, "deploy main to dev").await;
        let carol = PersonId::new("carol").expect("a person id");
        assert!(h.engine.control_soak(second, Control::Complete(carol)));
        task.await.expect("the deploy ends");
        let completed: Vec<String> = h
            .store
            .list(&gantry::store::ListFilter::default())
            .expect("audit readable")
            .into_iter()
            .filter(|e| e.subject == second.to_string() && e.action == "request.completed")
            .map(|e| e.actor)
            .collect();
        assert_eq!(completed, ["carol"], "completing early is carol's, in the audit trail");
        let second = h.request(second);
        assert_eq!(second.state, State::Succeeded);
        assert!(!second.is_verified());
        assert_ne!(second.digest, verified.digest);

        // A third goes bad during its soak.
        h.move_branch("acme/web", "main");
        let (third, task) = verifying(&h, "deploy main to dev").await;
        let writes = h.cluster_writes().len();
        health.answer(503);
        let went_bad = std::time::Instant::now();
        until("the rollback writes to the cluster", || {
            h.cluster_writes().len() > writes
        })
        .await;
        // A figure for the README, not an assertion: from the check going
        // bad to the rollback's first cluster write.
        eprintln!(
            "check failing to rollback starting: {} ms (HTTP check every 100 ms, 1 failure tolerated)",
            went_bad.elapsed().as_millis()
        );
        task.await.expect("the deploy ends");
        let third = h.request(third);
        assert_eq!(third.state, State::RolledBack, "{:?}", third.note);
        let note = third.note.clone().unwrap_or_default();
        assert!(
            note.contains("check health failed: status 503, expected 200"),
            "{note}"
        );
        assert!(
            note.contains("2 failed probe(s) in a row, 1 tolerated"),
            "{note}"
        );
        let short = verified
            .digest
            .as_ref()
            .expect("a digest")
            .short()
            .to_owned();
        assert!(
            note.contains(&format!(
                "rolled back to {short}, the last verified release ({})",
                verified.id
            )),
            "{note}"
        );
        let running = h.image("dev", "web");
        assert!(
            running.ends_with(&verified.digest.expect("a digest").to_string()),
            "{running}"
        );
        // The failing values are in the audit trail.
        let actions = h.actions(&third.id.to_string());
        assert!(actions.iter().any(|a| a == "verify.failed"), "{actions:?}");
        let status = h.say("console:alice", "status dev").await;
        assert!(status.text.contains("locked by alice"), "{}", status.text);
    })
    .await;
}

#[tokio::test]
async fn with_no_verified_release_a_rollback_goes_to_the_one_before_and_says_so() {
    within(async {
        let health = Health::start().await;
        let (h, _dir) = harness(&health, "1s").await;
        let (first, task) = verifying(&h, "deploy main to dev").await;
        let carol = PersonId::new("carol").expect("a person id");
        assert!(h.engine.control_soak(first, Control::Complete(carol)));
        task.await.expect("the deploy ends");
        let first = h.request(first);
        h.move_branch("acme/web", "main");
        let (second, task) = verifying(&h, "deploy main to dev").await;
        health.answer(500);
        task.await.expect("the deploy ends");
        let second = h.request(second);
        assert_eq!(second.state, State::RolledBack, "{:?}", second.note);
        let note = second.note.unwrap_or_default();
        assert!(
            note.contains("the release before it (no release of web in dev is verified)"),
            "{note}"
        );
        let running = h.image("dev", "web");
        assert!(
            running.ends_with(&first.digest.expect("a digest").to_string()),
            "{running}"
        );
    })
    .await;
}

#[tokio::test]
async fn a_restart_in_the_middle_resumes_the_checks_with_the_time_left() {
    within(async {
        let health = Health::start().await;
        let (h, _dir) = harness(&health, "3s").await;
        let (id, task) = verifying(&h, "deploy main to dev").await;
        until("the checks have covered part of the soak", || {
            probed_coverage(&h, id).last().is_some_and(|c| *c >= 500)
        })
        .await;
        // Gantry stops: the soak's task is gone, the request is left verifying.
        task.abort();
        let _ = task.await;
        let before = h.request(id);
        assert_eq!(before.state, State::Verifying);
        let covered = before
            .verification
            .as_ref()
            .expect("a verification")
            .covered_ms;
        assert!(covered > 0 && covered < 3000, "{covered}");

        let again = h.restart();
        let recovered = again.engine.recover().await.expect("recovery");
        assert_eq!(recovered.verifying, vec![id]);
        assert!(recovered.interrupted.is_empty(), "{recovered:?}");
        assert_eq!(again.request(id).state, State::Verifying);
        let ended = again.engine.resume_verifying(id).await.expect("resumed");
        assert_eq!(ended, State::Succeeded);
        let after = again.request(id);
        assert!(after.is_verified());
        // The soak went on from where it stopped, to its end: never from
        // zero, never skipped.
        let coverage = probed_coverage(&again, id);
        let resumed: Vec<u64> = coverage
            .iter()
            .copied()
            .skip_while(|c| *c <= covered)
            .collect();
        assert!(!resumed.is_empty(), "{coverage:?}");
        assert!(resumed.windows(2).all(|w| w[0] <= w[1]), "{coverage:?}");
        assert!(resumed[0] > covered, "{coverage:?}");
        assert!(*resumed.last().expect("a round") >= 3000, "{coverage:?}");
        let v = after.verification.expect("a verification");
        assert_eq!((v.covered_ms, v.soak_ms), (3000, 3000));
        // The Git host's deployment, left in progress by the stop, ends too.
        let states = again.deployment_states("acme/web", "dev");
        assert_eq!(
            states.last().and_then(|s| s.last()).map(String::as_str),
            Some("success"),
            "{states:?}"
        );
        // The deploy lock went with the release.
        let next = again.say("console:alice", "lock dev testing").await;
        assert!(!next.is_refused(), "{}", next.text);
    })
    .await;
}

#[tokio::test]
async fn rollback_r_n_stops_a_soak_and_complete_takes_the_right_person() {
    within(async {
        let health = Health::start().await;
        let (h, _dir) = harness(&health, "30s").await;
        let (id, task) = verifying(&h, "deploy main to dev").await;
        // dev asks for no approvals: completing early takes its requester
        // or an admin; bob is neither.
        let refused = h.say("console:bob", &format!("complete {id}")).await;
        assert!(refused.is_refused(), "{}", refused.text);
        assert!(
            refused
                .text
                .contains(&format!("only alice or an admin may complete {id}")),
            "{}",
            refused.text
        );
        let refused = h.say("console:bob", &format!("rollback {id}")).await;
        assert!(refused.is_refused(), "{}", refused.text);
        assert!(
            refused.text.contains("may not roll back"),
            "{}",
            refused.text
        );
        // erin, an admin, rolls it back: nothing is verified, so the release
        // before it goes back; there is none, and the request says so.
        let answer = h.say("console:erin", &format!("rollback {id}")).await;
        assert!(!answer.is_refused(), "{}", answer.text);
        assert!(answer.text.contains("rolling it back"), "{}", answer.text);
        task.await.expect("the deploy ends");
        let ended = h.request(id);
        assert_eq!(ended.state, State::Failed, "{:?}", ended.note);
        let note = ended.note.unwrap_or_default();
        assert!(
            note.contains("erin rolled it back during its verification"),
            "{note}"
        );
        assert!(note.contains("nothing ran before it"), "{note}");
        let late = h.say("console:erin", &format!("complete {id}")).await;
        assert!(
            late.text
                .contains(&format!("{id} is not verifying (it is failed)")),
            "{}",
            late.text
        );
    })
    .await;
}

#[tokio::test]
async fn prod_takes_only_a_verified_release_from_staging_when_it_requires_one() {
    within(async {
        let health = Health::start().await;
        let dir = tempfile::tempdir().expect("temp dir");
        let base = std::fs::read_to_string(support::data("engine.toml")).expect("engine.toml");
        let base = base.replace(
            "promote_from = \"staging\"\n",
            "promote_from = \"staging\"\nrequire_verified = true\n",
        );
        let text = format!(
            r#"{base}
[environments.staging.verify]
soak = "1s"

[[environments.staging.verify.checks]]
name = "health"
type = "http"
url = "{url}"
interval = "100ms"
"#,
            url = health.url
        );
        let path = dir.path().join("require-verified.toml");
        std::fs::write(&path, text).expect("config written");
        let h = Harness::new(path.to_str().expect("a UTF-8 path")).await;

        // A staging release completed early is not verified: prod refuses it.
        let asked = h.say("console:alice", "deploy main to staging").await;
        let id = asked.request.expect("a request");
        let engine = h.engine.clone();
        let task = tokio::spawn(async move {
            let identity = "console:carol".parse().expect("identity");
            let place = gantry::engine::Conversation {
                platform: gantry::engine::Platform::Console,
                channel: "deploys".into(),
            };
            engine.handle(&identity, &place, &format!("approve {id}")).await;
        });
        until("staging's checks have started", || {
            h.request(id).verification.is_some()
        })
        .await;
        let carol = PersonId::new("carol").expect("a person id");
        assert!(h.engine.control_soak(id, Control::Complete(carol)));
        task.await.expect("the approval ends");
        assert_eq!(h.request(id).state, State::Succeeded);
        let refused = h.say("console:bob", "promote from staging to prod").await;
        assert_eq!(refused.state, Some(State::Failed), "{}", refused.text);
        assert!(
            refused.text.contains(&format!(
                "{id} ({}) is what runs in staging and it is not verified; prod takes only verified releases (require_verified)",
                h.request(id).digest.expect("a digest").short()
            )),
            "{}",
            refused.text
        );

        // A verified one goes on to ask prod's approvers.
        let asked = h.say("console:alice", "deploy release/1.0 to staging").await;
        let id = asked.request.expect("a request");
        let done = h.say("console:carol", &format!("approve {id}")).await;
        assert_eq!(done.state, Some(State::Succeeded), "{}", done.text);
        assert!(h.request(id).is_verified());
        let promoted = h.say("console:bob", "promote from staging to prod").await;
        assert_eq!(promoted.state, Some(State::AwaitingApproval), "{}", promoted.text);
    })
    .await;
}

#[tokio::test]
async fn a_rollback_by_hand_with_nothing_verified_says_it_goes_to_the_release_before() {
    within(async {
        let health = Health::start().await;
        let (h, _dir) = harness(&health, "30s").await;
        let carol = PersonId::new("carol").expect("a person id");
        let mut ids = Vec::new();
        for _ in 0..2 {
            let (id, task) = verifying(&h, "deploy main to dev").await;
            assert!(h.engine.control_soak(id, Control::Complete(carol.clone())));
            task.await.expect("the deploy ends");
            ids.push(id);
            h.move_branch("acme/web", "main");
        }
        let first = h.request(ids[0]);
        let (id, task) = verifying(&h, "rollback in dev").await;
        assert!(h.engine.control_soak(id, Control::Complete(carol)));
        task.await.expect("the rollback ends");
        let back = h.request(id);
        assert_eq!(back.state, State::Succeeded, "{:?}", back.note);
        assert_eq!(back.digest, first.digest);
        let words = format!(
            "back to {}, the release before (no release of web in dev is verified)",
            first.id
        );
        assert_eq!(back.note.as_deref(), Some(words.as_str()));
        let shown = h.say("console:alice", "status dev").await;
        assert!(
            shown.text.contains(&format!("since {id}")),
            "{}",
            shown.text
        );
    })
    .await;
}
