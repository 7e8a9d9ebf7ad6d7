//! The real octocrab adapter and the real webhook route against the fake
//! GitHub: PR comment commands end to end, exactly-once deliveries, bad
//! signatures, preview teardown on close, builds, refs, checks, faults and
//! App auth.
//!
//! The webhook route is served here in-process: the real router and
//! `ServerState`, an engine whose Forge and GitHub notifier are the real
//! adapters pointed at the fake, on 127.0.0.1:0, fed signed deliveries.

mod support;

use std::future::Future;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use gantry::adapters::github::{GithubForge, Polling, RetryPolicy};
use gantry::command::GitRef;
use gantry::config::Secret;
use gantry::engine::ports::{BuildRun, Forge, PortError};
use gantry::engine::{system_clock, Conversation, Engine, State};
use gantry::names::Sha;
use gantry::sandbox::github::webhook::{deliver, ping, Delivered};
use gantry::sandbox::github::{FakeFault, FakeGithub};
use gantry::server::{router, GithubInbound, Metrics, ServerState};
use serde_json::Value;

const SECRET: &str = "webhook-secret";
const REPO: &str = "acme/web";
const IMAGE: &str = "registry.local:5000/acme/web";
const ALICE: (&str, u64) = ("alice-gh", 1001);
const CAROL: (&str, u64) = ("carol-qa", 2002);

/// Every test runs under this limit.
async fn within<F: Future>(test: F) -> F::Output {
    tokio::time::timeout(Duration::from_secs(60), test)
        .await
        .expect("the test finished in time")
}

fn fast() -> Polling {
    Polling {
        every: Duration::from_millis(20),
        run_appears_within: Duration::from_secs(5),
        build_timeout: Duration::from_secs(10),
        checks_timeout: Duration::from_secs(5),
    }
}

fn quick_retries() -> RetryPolicy {
    RetryPolicy {
        attempts: 3,
        backoff: Duration::from_millis(10),
        max_wait: Duration::from_secs(2),
        timeout: Duration::from_secs(5),
    }
}

struct Setup {
    fake: FakeGithub,
    h: support::Harness,
    engine: Engine,
    /// The adapter on its own, for tests of the GitHub client itself.
    forge: Arc<GithubForge>,
    webhook: String,
    head: String,
    /// The webhook server; the test fails if it stopped.
    _server: support::Watched,
}

/// The sandbox for `tests/data/github.toml` with pull request #7 from
/// `feat-gh` (built, no CI yet), an engine on the production wiring, and
/// the webhook route in front of it.
async fn start() -> Setup {
    start_with(support::Harness::new("github.toml").await).await
}

async fn start_with(h: support::Harness) -> Setup {
    let fake = h.sandbox.github.clone();
    let head = fake.commit(REPO, "feat-gh", "feature gh", &[("app.txt", "x\n")]);
    let app = &h.sandbox.config.apps()[0];
    gantry::sandbox::git_host::publish(&h.sandbox.registry, app, "feat-gh", &head).unwrap();
    fake.open_pull(REPO, 7, "feat-gh", "main", ALICE);
    let forge = GithubForge::for_url(&fake.url(), h.sandbox.secrets.github_token.expose())
        .unwrap()
        .with_polling(fast())
        .with_retry(quick_retries())
        .shared();
    let engine = h.engine.clone();
    let state = Arc::new(ServerState {
        front: gantry::inbound::Front::start(engine.clone()),
        slack: None,
        discord: None,
        github: Some(GithubInbound {
            secrets: vec![Secret::new("old-secret".into()), Secret::new(SECRET.into())],
            settings: gantry::inbound::github::Settings {
                review_approvals: true,
            },
            notifier: h.notifier.clone(),
        }),
        metrics: Metrics::default(),
        clock: system_clock(),
    });
    let (addr, server) = support::serve_router(router(state)).await;
    let webhook = format!("http://{addr}/github/webhook");
    Setup {
        fake,
        h,
        engine,
        forge,
        webhook,
        head,
        _server: server,
    }
}

impl Setup {
    async fn send(&self, event: &str, delivery: &str, payload: &Value) -> Delivered {
        let body = serde_json::to_vec(payload).unwrap();
        deliver(&self.webhook, Some(SECRET), event, delivery, &body)
            .await
            .unwrap()
    }

    /// Alice (or `who`) comments `body` on PR #7; returns the delivery's answer.
    async fn comment(&self, who: (&str, u64), body: &str, delivery: &str) -> Delivered {
        let id = self.fake.user_comment(REPO, 7, who.0, body);
        let payload = self.fake.issue_comment_event(REPO, 7, id, "created", who);
        self.send("issue_comment", delivery, &payload).await
    }

    /// Gantry's own comments on PR #7.
    fn gantry_comments(&self) -> Vec<gantry::sandbox::github::FakeComment> {
        self.fake
            .comments(REPO)
            .into_iter()
            .filter(|c| c.author == "gantry[bot]")
            .collect()
    }

    async fn wait_for_comment(&self, needle: &str) -> bool {
        self.fake
            .wait_until(Duration::from_secs(20), |hub| {
                hub.repo(REPO).is_some_and(|r| {
                    r.comments.iter().any(|c| {
                        c.author == "gantry[bot]"
                            && c.versions.last().is_some_and(|v| v.contains(needle))
                    })
                })
            })
            .await
    }

    async fn wait_for_deploy_end(&self) -> bool {
        self.fake
            .wait_until(Duration::from_secs(20), |hub| {
                hub.repo(REPO).is_some_and(|r| {
                    r.deployments.iter().any(|d| {
                        d.statuses
                            .last()
                            .is_some_and(|s| s.0 == "success" || s.0 == "failure")
                    })
                })
            })
            .await
    }
}

#[tokio::test]
async fn a_signed_pr_comment_deploys_the_pr_head_to_dev_end_to_end() {
    within(async {
        let s = start().await;
        let answer = s.comment(ALICE, "LGTM\n\n/deploy dev\n", "d-1").await;
        assert_eq!(answer.status, 200, "{}", answer.body);
        assert_eq!(answer.body, "accepted: deploy #7 of web to dev");
        assert!(s.wait_for_deploy_end().await, "the deployment ends");
        assert!(s.wait_for_comment("succeeded").await);

        let deployments = s.fake.deployments(REPO);
        assert_eq!(deployments.len(), 1);
        let d = &deployments[0];
        assert_eq!(d.environment, "dev");
        assert_eq!(d.sha, s.head, "the PR head at the time of the comment");
        assert_eq!(d.payload["request"], "R-1");
        let states: Vec<&str> = d.statuses.iter().map(|s| s.0.as_str()).collect();
        assert_eq!(states, ["queued", "in_progress", "success"]);

        // One progress comment, edited in place as the deploy moved.
        let ours = s.gantry_comments();
        assert_eq!(ours.len(), 1, "{ours:#?}");
        assert!(ours[0].versions.len() >= 3, "{:#?}", ours[0].versions);
        assert!(ours[0].versions[0].starts_with("R-1 deploy #7"));
        // What the pull request shows, step by step; how many rollout steps
        // the watch reports depends on the machine's pace, so those are left out.
        let mut read: Vec<&str> = ours[0]
            .versions
            .iter()
            .map(String::as_str)
            .filter(|v| !v.contains(" updated, "))
            .collect();
        read.dedup();
        insta::assert_snapshot!("github_progress_comment", read.join("\n---\n"));
        let person = s
            .fake
            .comments(REPO)
            .into_iter()
            .find(|c| c.author == "alice-gh")
            .unwrap();
        assert_eq!(person.reactions, ["eyes"], "acknowledged with 👀");
        let request = s
            .engine
            .store()
            .get_request::<gantry::engine::Request>(1)
            .unwrap()
            .unwrap();
        assert_eq!(
            s.h.image("dev", "web"),
            format!("{IMAGE}@{}", request.digest.as_ref().unwrap())
        );
        assert_eq!(request.state, State::Succeeded);
        assert_eq!(request.identity.to_string(), "github:1001");
    })
    .await;
}

#[tokio::test]
async fn the_same_delivery_twice_acts_once() {
    within(async {
        let s = start().await;
        let id = s.fake.user_comment(REPO, 7, ALICE.0, "/deploy dev");
        let payload = s.fake.issue_comment_event(REPO, 7, id, "created", ALICE);
        let first = s.send("issue_comment", "same-delivery", &payload).await;
        let second = s.send("issue_comment", "same-delivery", &payload).await;
        assert_eq!(first.status, 200);
        assert_eq!((second.status, second.body.as_str()), (200, "duplicate"));
        assert!(s.wait_for_deploy_end().await);
        assert_eq!(s.fake.deployments(REPO).len(), 1);
        assert_eq!(s.engine.store().requests::<Value>().unwrap().len(), 1);
    })
    .await;
}

#[tokio::test]
async fn a_key_twice_is_refused_unrecorded_and_the_redelivery_counts() {
    within(async {
        let s = start().await;
        let id = s.fake.user_comment(REPO, 7, ALICE.0, "/deploy dev");
        let payload = s.fake.issue_comment_event(REPO, 7, id, "created", ALICE);
        let body = serde_json::to_string(&payload).unwrap();
        // serde_json would read the last `action`; other parsers the first.
        let smuggled = body.replacen(
            r#"{"action":"created""#,
            r#"{"action":"edited","action":"created""#,
            1,
        );
        assert_ne!(smuggled, body);
        let refused = deliver(
            &s.webhook,
            Some(SECRET),
            "issue_comment",
            "dup-1",
            smuggled.as_bytes(),
        )
        .await
        .unwrap();
        assert_eq!(
            (refused.status, refused.body.as_str()),
            (400, r#"duplicate key "action" in the JSON body"#)
        );
        let nested = body.replacen(
            r#""login":"alice-gh""#,
            r#""login":"carol-qa","login":"alice-gh""#,
            1,
        );
        assert_ne!(nested, body);
        let refused = deliver(
            &s.webhook,
            Some(SECRET),
            "issue_comment",
            "dup-1",
            nested.as_bytes(),
        )
        .await
        .unwrap();
        assert_eq!(refused.status, 400, "{}", refused.body);
        assert!(
            refused.body.starts_with(r#"duplicate key "login" at /"#),
            "{}",
            refused.body
        );
        tokio::task::yield_now().await;
        assert!(s.engine.store().requests::<Value>().unwrap().is_empty());
        assert!(s.fake.requests().is_empty(), "{:#?}", s.fake.requests());

        // Neither refusal recorded the delivery: GitHub's redelivery of the
        // correct body under the same id is acted on.
        let redelivered = s.send("issue_comment", "dup-1", &payload).await;
        assert_eq!(
            (redelivered.status, redelivered.body.as_str()),
            (200, "accepted: deploy #7 of web to dev")
        );
        assert!(s.wait_for_deploy_end().await);
        assert_eq!(s.engine.store().requests::<Value>().unwrap().len(), 1);
    })
    .await;
}

#[tokio::test]
async fn edited_and_deleted_comments_and_plain_issues_do_nothing() {
    within(async {
        let s = start().await;
        let id = s.fake.user_comment(REPO, 7, ALICE.0, "/deploy dev");
        for (n, action) in ["edited", "deleted"].iter().enumerate() {
            let payload = s.fake.issue_comment_event(REPO, 7, id, action, ALICE);
            let answer = s.send("issue_comment", &format!("e-{n}"), &payload).await;
            assert_eq!(answer.status, 202, "{action}: {}", answer.body);
        }
        // GitHub's recorded examples: an edit, and a comment on an issue.
        for (n, file) in ["issue_comment.edited", "issue_comment.created"]
            .iter()
            .enumerate()
        {
            let text = std::fs::read_to_string(
                Path::new(env!("CARGO_MANIFEST_DIR"))
                    .join(format!("tests/data/github/{file}.payload.json")),
            )
            .unwrap();
            let body = text.replace(
                "You are totally right!",
                "/deploy dev\\nYou are totally right!",
            );
            let answer = deliver(
                &s.webhook,
                Some(SECRET),
                "issue_comment",
                &format!("r-{n}"),
                body.as_bytes(),
            )
            .await
            .unwrap();
            assert_eq!(answer.status, 202, "{file}: {}", answer.body);
        }
        tokio::task::yield_now().await;
        assert!(s.engine.store().requests::<Value>().unwrap().is_empty());
        assert!(s.fake.requests().is_empty(), "{:#?}", s.fake.requests());
    })
    .await;
}

#[tokio::test]
async fn bad_missing_and_malformed_signatures_are_401_and_leave_no_trace() {
    within(async {
        let s = start().await;
        let id = s.fake.user_comment(REPO, 7, ALICE.0, "/deploy dev");
        let body =
            serde_json::to_vec(&s.fake.issue_comment_event(REPO, 7, id, "created", ALICE)).unwrap();
        let wrong = deliver(
            &s.webhook,
            Some("not-the-secret"),
            "issue_comment",
            "sig-1",
            &body,
        )
        .await
        .unwrap();
        assert_eq!(wrong.status, 401);
        let missing = deliver(&s.webhook, None, "issue_comment", "sig-1", &body)
            .await
            .unwrap();
        assert_eq!(missing.status, 401);
        let client = reqwest::Client::new();
        for bad in ["sha256=zz", "sha1=abc", "sha256=", "sha256=00"] {
            let status = client
                .post(&s.webhook)
                .header("x-github-event", "issue_comment")
                .header("x-github-delivery", "sig-1")
                .header("x-hub-signature-256", bad)
                .body(body.clone())
                .send()
                .await
                .unwrap()
                .status();
            assert_eq!(status, 401, "{bad}");
        }
        assert!(s.engine.store().requests::<Value>().unwrap().is_empty());
        // The refused deliveries were not recorded: the real one still counts.
        let good = deliver(&s.webhook, Some(SECRET), "issue_comment", "sig-1", &body)
            .await
            .unwrap();
        assert_eq!(good.status, 200, "{}", good.body);
        // The previous secret is accepted during rotation.
        let old = deliver(&s.webhook, Some("old-secret"), "ping", "sig-2", b"{}")
            .await
            .unwrap();
        assert_eq!((old.status, old.body.as_str()), (200, "pong"));
    })
    .await;
}

#[tokio::test]
async fn ping_unknown_events_and_malformed_json() {
    within(async {
        let s = start().await;
        let pong = s.send("ping", "p-1", &ping()).await;
        assert_eq!((pong.status, pong.body.as_str()), (200, "pong"));
        let star = s
            .send("star", "p-2", &serde_json::json!({ "action": "created" }))
            .await;
        assert_eq!(star.status, 202);
        let broken = deliver(
            &s.webhook,
            Some(SECRET),
            "issue_comment",
            "p-3",
            b"{\"action\":",
        )
        .await
        .unwrap();
        assert_eq!(broken.status, 400);
        assert!(
            broken.body.starts_with("malformed JSON (EOF while parsing"),
            "{}",
            broken.body
        );
        let wrong_shape = s
            .send(
                "issue_comment",
                "p-4",
                &serde_json::json!({ "action": "created" }),
            )
            .await;
        assert_eq!(wrong_shape.status, 400);
        let oversize = vec![b' '; 300 * 1024];
        let big = deliver(&s.webhook, Some(SECRET), "ping", "p-5", &oversize)
            .await
            .unwrap();
        assert_eq!(big.status, 413);
    })
    .await;
}

#[tokio::test]
async fn a_commenter_with_no_gantry_identity_is_told_how_to_get_access() {
    within(async {
        let s = start().await;
        let answer = s.comment(("mallory", 666), "/deploy dev", "u-1").await;
        assert_eq!(answer.status, 200);
        assert!(s.wait_for_comment("has no Gantry identity").await);
        let reply = s.gantry_comments()[0].versions[0].clone();
        assert!(reply.contains("`github:666`"), "{reply}");
        assert!(s.fake.deployments(REPO).is_empty());
        assert!(s.engine.store().requests::<Value>().unwrap().is_empty());
    })
    .await;
}

#[tokio::test]
async fn commands_in_code_blocks_are_not_run_and_parse_errors_are_answered() {
    within(async {
        let s = start().await;
        let quoted = s
            .comment(ALICE, "Try:\n```\n/deploy dev\n```\n> /deploy dev", "c-1")
            .await;
        assert_eq!((quoted.status, quoted.body.as_str()), (200, "no command"));
        let typo = s.comment(ALICE, "/deploy nowhere", "c-2").await;
        assert_eq!(typo.status, 200);
        assert!(s.wait_for_comment("alice-gh").await);
        assert!(s.engine.store().requests::<Value>().unwrap().is_empty());
    })
    .await;
}

#[tokio::test]
async fn closing_the_pr_tears_down_its_preview() {
    within(async {
        let s = start().await;
        s.comment(ALICE, "/deploy preview", "t-1").await;
        assert!(s.wait_for_deploy_end().await);
        assert!(s.h.sandbox.kube.namespace("preview-pr-7").is_some());
        s.fake.close_pull(REPO, 7);
        let payload = s
            .fake
            .pull_request_event(REPO, 7, "closed", ("someone-else", 77));
        let answer = s.send("pull_request", "t-2", &payload).await;
        assert_eq!(
            (answer.status, answer.body.as_str()),
            (200, "tearing down: pr-7")
        );
        assert!(
            s.h.namespace_gone("preview-pr-7").await,
            "the preview namespace is deleted"
        );
        assert!(s.wait_for_comment("preview removed").await);
        // A second close (a re-delivery with a new id) finds nothing left to remove.
        let again = s.send("pull_request", "t-3", &payload).await;
        assert_eq!(again.body, "no preview to tear down");
    })
    .await;
}

#[tokio::test]
async fn an_approving_review_of_the_pinned_commit_approves() {
    within(async {
        let s = start().await;
        s.fake.check_run(REPO, &s.head, "ci", Some("success"));
        s.comment(ALICE, "/gantry deploy #7 to staging", "a-1")
            .await;
        assert!(s.wait_for_comment("awaiting approval").await);
        let stale = s
            .fake
            .review_event(REPO, 7, CAROL, "approved", &"0".repeat(40));
        assert_eq!(
            s.send("pull_request_review", "a-2", &stale).await.status,
            202
        );
        let review = s.fake.review_event(REPO, 7, CAROL, "approved", &s.head);
        let answer = s.send("pull_request_review", "a-3", &review).await;
        assert_eq!(answer.status, 200, "{}", answer.body);
        assert!(s.wait_for_deploy_end().await);
        let request = s
            .engine
            .store()
            .get_request::<gantry::engine::Request>(1)
            .unwrap()
            .unwrap();
        assert_eq!(request.state, State::Succeeded);
        assert_eq!(request.approvals[0].person.as_str(), "carol");
    })
    .await;
}

async fn build(s: &Setup) -> gantry::engine::Reply {
    let who = "console:alice".parse().unwrap();
    let place = Conversation {
        platform: gantry::engine::Platform::Console,
        channel: "deploys".into(),
    };
    s.engine.handle(&who, &place, "build feat-x").await
}

#[tokio::test]
async fn build_follows_a_dispatched_run_to_success() {
    within(async {
        let s = start().await;
        let reply = build(&s).await;
        assert_eq!(reply.state, Some(State::Succeeded), "{}", reply.text);
        let runs = s.fake.hub().repo(REPO).unwrap().runs.clone();
        assert_eq!(runs.len(), 1);
        assert_eq!(runs[0].branch, "feat-x");
        assert_eq!(runs[0].inputs, serde_json::json!({ "push": "true" }));
        let dispatched = s
            .fake
            .requests()
            .into_iter()
            .filter(|r| r.path.ends_with("/dispatches"))
            .count();
        assert_eq!(dispatched, 1);
    })
    .await;
}

#[tokio::test]
async fn build_follows_a_dispatched_run_to_failure_and_links_it() {
    within(async {
        let s = start().await;
        s.fake
            .workflow(REPO, "build.yml", "failure", Duration::from_millis(60));
        let reply = build(&s).await;
        assert_eq!(reply.state, Some(State::Failed), "{}", reply.text);
        let run = s.fake.hub().repo(REPO).unwrap().runs[0].id;
        let link = format!("{}/{REPO}/actions/runs/{run}", s.fake.url());
        assert!(reply.text.contains(&link), "{}", reply.text);
    })
    .await;
}

#[tokio::test]
async fn refs_resolve_to_full_shas_and_missing_ones_are_named() {
    within(async {
        let s = start().await;
        let main = s.fake.branch(REPO, "main").unwrap();
        s.fake.tag(REPO, "v1.0.0", &main, false);
        s.fake.tag(REPO, "v1.1.0", &s.head, true);
        let release = s.fake.commit(REPO, "release/1.0", "release", &[("v", "1")]);
        let resolve = |text: &str| {
            let forge = s.forge.clone();
            let reference = GitRef::parse(text).unwrap();
            async move { forge.resolve(REPO, &reference).await }
        };
        let sha = |hex: &str| Sha::new(hex).unwrap();
        assert_eq!(resolve("main").await.unwrap(), sha(&main));
        assert_eq!(resolve("release/1.0").await.unwrap(), sha(&release));
        assert_eq!(resolve("v1.0.0").await.unwrap(), sha(&main));
        assert_eq!(
            resolve("v1.1.0").await.unwrap(),
            sha(&s.head),
            "annotated tag"
        );
        assert_eq!(resolve(&s.head[..8]).await.unwrap(), sha(&s.head));
        assert_eq!(resolve(&s.head).await.unwrap(), sha(&s.head));
        assert_eq!(resolve("#7").await.unwrap(), sha(&s.head));
        let missing = resolve("nope").await.unwrap_err();
        assert_eq!(
            missing.to_string(),
            "not found: no branch, tag or commit named `nope` in acme/web"
        );
        let no_pr = resolve("#99").await.unwrap_err();
        assert_eq!(
            no_pr.to_string(),
            "not found: no pull request #99 in acme/web"
        );
        assert!(matches!(
            resolve("deadbeef00").await,
            Err(PortError::NotFound(_))
        ));
    })
    .await;
}

#[tokio::test]
async fn checks_pass_only_when_something_ran_and_all_of_it_is_green() {
    within(async {
        let s = start().await;
        let head = Sha::new(&s.head).unwrap();
        assert!(
            !s.forge.checks_passed(REPO, &head).await.unwrap(),
            "no CI at all"
        );
        s.fake.check_run(REPO, &s.head, "test", Some("success"));
        assert!(s.forge.checks_passed(REPO, &head).await.unwrap());
        s.fake.commit_status(REPO, &s.head, "legacy-ci", "pending");
        assert!(
            !s.forge.checks_passed(REPO, &head).await.unwrap(),
            "pending status"
        );
        s.fake.commit_status(REPO, &s.head, "legacy-ci", "success");
        s.fake.check_run(REPO, &s.head, "lint", None);
        assert!(
            !s.forge.checks_passed(REPO, &head).await.unwrap(),
            "running check"
        );
        s.fake.check_run(REPO, &s.head, "lint", Some("failure"));
        assert!(
            !s.forge.checks_passed(REPO, &head).await.unwrap(),
            "failed check"
        );
        s.fake.check_run(REPO, &s.head, "lint", Some("skipped"));
        assert!(s.forge.checks_passed(REPO, &head).await.unwrap());
    })
    .await;
}

#[tokio::test]
async fn server_errors_and_rate_limits_are_retried_within_bounds() {
    within(async {
        let s = start().await;
        let main = GitRef::parse("main").unwrap();
        s.fake.fault("/git/ref/heads/main", 2, FakeFault::Status(502));
        assert!(s.forge.resolve(REPO, &main).await.is_ok(), "two 502s, then an answer");
        s.fake.fault("/git/ref/heads/main", 5, FakeFault::Status(503));
        let down = s.forge.resolve(REPO, &main).await.unwrap_err();
        assert!(
            matches!(&down, PortError::Unavailable(why) if why.contains("503") && why.contains("after 3 attempts")),
            "{down}"
        );
        s.fake.hub().faults.clear();
        s.fake.fault("/git/ref/heads/main", 1, FakeFault::RateLimit { retry_after: 1 });
        let started = Instant::now();
        assert!(s.forge.resolve(REPO, &main).await.is_ok());
        assert!(started.elapsed() >= Duration::from_secs(1), "Retry-After was honoured");
        s.fake.fault("/git/ref/heads/main", 1, FakeFault::RateLimit { retry_after: 3600 });
        let limited = s.forge.resolve(REPO, &main).await.unwrap_err();
        assert_eq!(limited, PortError::RateLimited { retry_after: Duration::from_secs(3600) });
        // A failed POST is not repeated: it may have been carried out.
        s.fake.hub().faults.clear();
        s.fake.fault("/comments", 1, FakeFault::Status(500));
        assert!(s.forge.comment(REPO, 7, "hello").await.is_err());
        let posts = s.fake.requests().iter().filter(|r| r.method == "POST").count();
        assert_eq!(posts, 1);
    })
    .await;
}

#[tokio::test]
async fn an_unresolvable_ref_never_deploys() {
    within(async {
        let s = start().await;
        s.fake.fault("/pulls/7", 50, FakeFault::Status(502));
        s.comment(ALICE, "/deploy dev", "f-1").await;
        assert!(s.wait_for_comment("failed").await);
        assert!(s.fake.deployments(REPO).is_empty());
        assert!(
            s.h.cluster_writes().is_empty(),
            "{:?}",
            s.h.cluster_writes()
        );
        let build_run = BuildRun {
            id: 424242,
            url: "x".into(),
        };
        assert!(matches!(
            s.forge.follow_build(REPO, &build_run).await,
            Err(PortError::NotFound(_))
        ));
    })
    .await;
}

#[tokio::test]
async fn a_github_app_mints_installation_tokens_and_refreshes_them_before_expiry() {
    within(async {
        let s = start().await;
        let key = std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/github-test-app-key.pem"),
        )
        .unwrap();
        let key = Secret::new(key);
        s.fake.enable_app(4242, 77, Duration::from_secs(3600));
        let app = GithubForge::for_app(&s.fake.url(), 4242, &key).unwrap();
        let main = GitRef::parse("main").unwrap();
        app.resolve(REPO, &main).await.unwrap();
        app.resolve(REPO, &main).await.unwrap();
        assert_eq!(s.fake.hub().minted.len(), 1, "a live token is reused");
        // Tokens with less than 30 s left are replaced before use.
        s.fake.enable_app(4242, 77, Duration::from_secs(10));
        let short = GithubForge::for_app(&s.fake.url(), 4242, &key).unwrap();
        short.resolve(REPO, &main).await.unwrap();
        short.resolve(REPO, &main).await.unwrap();
        assert_eq!(s.fake.hub().minted.len(), 3);
        let wrong = GithubForge::for_app(&s.fake.url(), 1, &key).unwrap();
        assert!(matches!(
            wrong.resolve(REPO, &main).await,
            Err(PortError::Unauthorised(_))
        ));
    })
    .await;
}

/// Every key of `ours` exists in `recorded` with a compatible JSON type.
fn same_shape(ours: &Value, recorded: &Value, at: &str, skip: &[&str], errors: &mut Vec<String>) {
    match (ours, recorded) {
        (Value::Object(a), Value::Object(b)) => {
            for (key, value) in a {
                let here = format!("{at}.{key}");
                if skip.contains(&here.as_str()) {
                    continue;
                }
                match b.get(key) {
                    Some(other) => same_shape(value, other, &here, skip, errors),
                    None => errors.push(format!("{here} is not in the recorded payload")),
                }
            }
        }
        (Value::Null, _) | (_, Value::Null) => {}
        (Value::Array(a), Value::Array(b)) => {
            if let (Some(x), Some(y)) = (a.first(), b.first()) {
                same_shape(x, y, &format!("{at}[]"), skip, errors);
            }
        }
        (a, b) if std::mem::discriminant(a) == std::mem::discriminant(b) => {}
        (a, b) => errors.push(format!("{at}: {a} vs recorded {b}")),
    }
}

fn recorded(name: &str) -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join(format!("tests/data/github/{name}.payload.json"));
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[tokio::test]
async fn the_fakes_webhooks_have_the_shape_of_githubs_recorded_payloads() {
    within(async {
        let s = start().await;
        let id = s.fake.user_comment(REPO, 7, ALICE.0, "/deploy dev");
        let mut errors = Vec::new();
        // The recorded comment is on an issue; on a PR GitHub adds `issue.pull_request`.
        let comment = s.fake.issue_comment_event(REPO, 7, id, "created", ALICE);
        same_shape(
            &comment,
            &recorded("issue_comment.created"),
            "",
            &[".issue.pull_request"],
            &mut errors,
        );
        let edited = s.fake.issue_comment_event(REPO, 7, id, "edited", ALICE);
        same_shape(
            &edited,
            &recorded("issue_comment.edited"),
            "",
            &[".issue.pull_request"],
            &mut errors,
        );
        let closed = s.fake.pull_request_event(REPO, 7, "closed", ALICE);
        same_shape(
            &closed,
            &recorded("pull_request.closed"),
            "",
            &[],
            &mut errors,
        );
        assert!(errors.is_empty(), "{errors:#?}");
    })
    .await;
}

#[tokio::test]
async fn a_delivery_whose_command_cannot_be_recorded_may_come_again() {
    within(async {
        let dir = tempfile::tempdir().unwrap();
        support::Harness::break_audit(dir.path());
        let s = start_with(support::Harness::in_dir("github.toml", dir).await).await;
        let answer = s.comment(ALICE, "/deploy dev", "full-1").await;
        assert_eq!(answer.status, 503, "{}", answer.body);
        assert!(
            answer.body.contains("cannot record the command"),
            "{}",
            answer.body
        );
        assert!(s.engine.store().requests::<Value>().unwrap().is_empty());
        // Not recorded as seen: GitHub's redelivery is taken, not answered
        // `duplicate`.
        assert!(
            s.engine.store().first_seen("github:full-1", 0).unwrap(),
            "the failed delivery was recorded as seen"
        );
    })
    .await;
}
