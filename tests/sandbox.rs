//! The sandbox stack that `gantry serve --sandbox` and `gantry demo` run:
//! the engine over the real GitHub, registry and Kubernetes adapters, each
//! talking HTTP to its sandbox server, with the sandbox's CI runner and
//! Argo CD sync working next to the fake GitHub.

mod support;

use std::sync::Arc;
use std::time::Duration;

use gantry::engine::{Conversation, Engine, Reply, State};
use gantry::sandbox::github::FakeFault;
use gantry::sandbox::stack::{SandboxOptions, SandboxServers};
use gantry::server::{router, Metrics, ServerState};
use support::Harness;

/// 2026-11-24T12:00:00Z, a Tuesday outside every freeze window.
const TUESDAY_NOON: i64 = 1_795_521_600;
const CONFIG_REPO: &str = "acme/deploy-config";
const KUSTOMIZATION: &str = "perf/kustomization.yaml";

struct Sandbox {
    engine: Engine,
    stack: Arc<SandboxServers>,
    _h: Harness,
}

/// The sandbox for the shipped config, and an engine on the production
/// wiring pointed at it.
async fn sandbox() -> Sandbox {
    let h = Harness::with_options(
        "../../config/gantry.toml",
        SandboxOptions::with_tick(Duration::from_millis(10)),
    )
    .await;
    Sandbox {
        engine: h.engine.clone(),
        stack: h.sandbox.clone(),
        _h: h,
    }
}

impl Sandbox {
    async fn say(&self, who: &str, text: &str) -> Reply {
        let conversation = Conversation {
            platform: gantry::engine::Platform::Console,
            channel: "deploys".into(),
        };
        let identity = who.parse().unwrap();
        let run = self.engine.handle(&identity, &conversation, text);
        tokio::time::timeout(Duration::from_secs(60), run)
            .await
            .expect("the engine answers in time")
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gitops_deploy_is_committed_synced_and_only_then_verified() {
    support::within(async {
        let s = sandbox().await;
        let before = s
            .stack
            .github
            .file(CONFIG_REPO, "main", KUSTOMIZATION)
            .expect("the config repository is seeded");
        let running = s.stack.kube.image("perf", "web", "web").unwrap();
        let (_, digest) = running.split_once('@').unwrap();
        assert!(
            before.contains(&format!("digest: {digest}")),
            "{before}\n{running}"
        );

        let reply = s.say("console:alice", "deploy main to perf").await;
        assert_eq!(reply.state, Some(State::Succeeded), "{}", reply.text);
        let request = s
            .engine
            .store()
            .requests::<gantry::engine::Request>()
            .unwrap();
        let deployed = &request.last().unwrap().1;
        let image = format!(
            "registry.local:5000/acme/web@{}",
            deployed.digest.as_ref().unwrap()
        );
        assert_ne!(image, running);

        // Gantry wrote the digest into the config repository…
        let after = s
            .stack
            .github
            .file(CONFIG_REPO, "main", KUSTOMIZATION)
            .unwrap();
        assert!(
            after.contains(&format!("digest: {}", deployed.digest.as_ref().unwrap())),
            "{after}"
        );
        let tip = s.stack.github.branch(CONFIG_REPO, "main").unwrap();
        let commit = s.stack.github.commit_of(CONFIG_REPO, &tip).unwrap();
        assert!(
            commit
                .message
                .starts_with(&format!("{}: deploy web in perf", deployed.id)),
            "{}",
            commit.message
        );
        assert!(
            commit.message.contains("Requested-by: alice"),
            "{}",
            commit.message
        );
        // …the sync applied it, and the cluster runs it, stamped by the sync.
        assert_eq!(s.stack.kube.image("perf", "web", "web"), Some(image));
        let notes = s
            .stack
            .kube
            .deployment("perf", "web")
            .unwrap()
            .metadata
            .annotations
            .unwrap();
        assert_eq!(notes["gantry.dev/requested-by"], "argocd");
        // Gantry itself never patched the Deployment in perf.
        let perf = s.engine.store().history("perf", 1000).unwrap();
        let actions: Vec<&str> = perf.iter().map(|e| e.action.as_str()).collect();
        assert!(actions.contains(&"gitops.committed"), "{actions:?}");
        assert!(!actions.contains(&"cluster.image_set"), "{actions:?}");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_build_pushes_the_image_a_deploy_then_finds() {
    support::within(async {
        let s = sandbox().await;
        let missing = s.say("console:alice", "deploy feat-unbuilt to dev").await;
        assert_eq!(missing.state, Some(State::Failed), "{}", missing.text);
        assert!(missing.text.contains("was it built?"), "{}", missing.text);

        let build = s.say("console:alice", "build feat-unbuilt").await;
        assert_eq!(build.state, Some(State::Succeeded), "{}", build.text);
        let runs = s.stack.github.hub().repo("acme/web").unwrap().runs.clone();
        assert_eq!(runs.len(), 1);
        assert_eq!(runs[0].branch, "feat-unbuilt");

        // The sandbox's CI pushes the image once the run has completed.
        let mut deployed = None;
        for _ in 0..100 {
            let reply = s.say("console:alice", "deploy feat-unbuilt to dev").await;
            if reply.state == Some(State::Succeeded) {
                deployed = Some(reply);
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let deployed = deployed.expect("the built image is deployed");
        let sha = &runs[0].sha;
        assert!(deployed.text.contains(&sha[..7]), "{}", deployed.text);
    })
    .await;
}

/// `GET /readyz` on the real router in front of `engine`.
async fn readyz(engine: &Engine) -> (u16, String) {
    let state = Arc::new(ServerState {
        front: gantry::inbound::Front::start(engine.clone()),
        slack: None,
        discord: None,
        github: None,
        metrics: Metrics::default(),
        clock: Arc::new(|| TUESDAY_NOON),
    });
    let (addr, _server) = support::serve_router(router(state)).await;
    let answer = reqwest::get(format!("http://{addr}/readyz")).await.unwrap();
    let status = answer.status().as_u16();
    (status, answer.text().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_asks_every_outside_system_and_names_the_one_that_fails() {
    support::within(async {
        let s = sandbox().await;
        let (status, body) = readyz(&s.engine).await;
        assert_eq!(status, 200, "{body}");
        for line in [
            "ready",
            "ok   store",
            "ok   git host",
            "ok   registry registry.local:5000",
            "ok   kubernetes sandbox",
            "ok   slack",
            "ok   discord",
        ] {
            assert!(body.lines().any(|l| l == line), "`{line}` missing:\n{body}");
        }
        // Each probe reached its server through the real adapter.
        let slack_calls = s.stack.slack.as_ref().unwrap().calls();
        assert!(
            slack_calls.iter().any(|c| c.method == "auth.test"),
            "{slack_calls:?}"
        );
        assert!(s.stack.kube.requests().iter().any(|r| r.path == "/version"));

        // The registry fails and GitHub no longer knows the repository.
        s.stack.registry.fail_next(1, 503, None);
        s.stack
            .github
            .fault("/repos/acme/web", 1, FakeFault::Status(404));
        let (status, body) = readyz(&s.engine).await;
        assert_eq!(status, 503, "{body}");
        assert_eq!(body.lines().next(), Some("not ready"), "{body}");
        assert!(
            body.contains("FAIL registry registry.local:5000: unavailable: registry registry.local:5000: GET /v2/ answered 503"),
            "{body}"
        );
        assert!(body.contains("FAIL git host: not found"), "{body}");
        assert!(
            body.lines().any(|l| l == "ok   kubernetes sandbox"),
            "{body}"
        );
        // Once they answer again, so does readiness.
        let (status, body) = readyz(&s.engine).await;
        assert_eq!(status, 200, "{body}");
    })
    .await;
}

/// The watch the in-process servers run under: a task that ended fails
/// the test that held it.
#[tokio::test]
#[should_panic(expected = "the server task ended before the test did")]
async fn a_server_that_died_fails_its_test() {
    let server = support::Watched::spawn("server", async {});
    support::until("the task ends", || !server.running()).await;
    drop(server);
}
