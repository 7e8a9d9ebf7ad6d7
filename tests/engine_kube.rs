//! The engine on the production wiring, watched from the Kubernetes side:
//! what the real `KubeCluster` sent the fake API server for a deploy, a
//! stuck rollout and a preview.

mod support;

use std::time::Duration;

use gantry::engine::State;
use gantry::sandbox::stack::SandboxOptions;
use support::Harness;

async fn harness() -> Harness {
    let h = Harness::with_options(
        "engine.toml",
        SandboxOptions::with_tick(Duration::from_millis(5)),
    )
    .await;
    h.sandbox.kube.clear_requests();
    h
}

#[tokio::test]
async fn a_deploy_runs_through_the_engine_on_kubernetes() {
    support::within(async {
        let h = harness().await;
        let fake = &h.sandbox.kube;
        let before = fake.image("dev", "web", "web").unwrap();
        let reply = h
            .say_in_slack("console:alice", "deploy feat-x to dev")
            .await;
        assert_eq!(reply.state, Some(State::Succeeded), "{}", reply.text);
        let now = fake.image("dev", "web", "web").unwrap();
        assert_ne!(now, before);
        assert!(
            now.starts_with("registry.local:5000/acme/web@sha256:"),
            "{now}"
        );
        let id = reply.request.unwrap();
        let notes = fake
            .deployment("dev", "web")
            .unwrap()
            .metadata
            .annotations
            .unwrap();
        assert_eq!(notes["gantry.dev/request"], id.to_string());
        assert_eq!(notes["gantry.dev/requested-by"], "alice");
        // The progress message moved with the rollout.
        let versions: Vec<String> = h
            .slack()
            .messages()
            .iter()
            .flat_map(|m| m.versions.clone())
            .collect();
        assert!(
            versions.iter().any(|v| v.contains("3/3 updated")),
            "{versions:#?}"
        );
        // GET, PATCH, LIST, WATCH to deploy and follow; GET to verify.
        let sent: Vec<String> = fake.requests().iter().map(|r| r.line()).collect();
        assert_eq!(sent.len(), 5, "{sent:#?}");
    })
    .await;
}

#[tokio::test]
async fn a_stuck_rollout_is_rolled_back_by_the_engine() {
    support::within(async {
        let h = harness().await;
        let fake = &h.sandbox.kube;
        // Gantry's own history is what a rollback returns to.
        let main = h.say("console:alice", "deploy main to dev").await;
        assert_eq!(main.state, Some(State::Succeeded), "{}", main.text);
        let good = fake.image("dev", "web", "web").unwrap();
        let reply = h.say("console:alice", "deploy feat-broken to dev").await;
        assert_eq!(reply.state, Some(State::RolledBack), "{}", reply.text);
        assert!(
            reply.text.contains("ProgressDeadlineExceeded"),
            "{}",
            reply.text
        );
        assert!(reply.text.contains("CrashLoopBackOff"), "{}", reply.text);
        assert_eq!(fake.image("dev", "web", "web").unwrap(), good);
    })
    .await;
}

#[tokio::test]
async fn a_preview_is_created_on_kubernetes_and_torn_down() {
    let h = harness().await;
    let fake = &h.sandbox.kube;
    let reply = h.say("console:alice", "deploy feat-x to preview").await;
    assert_eq!(reply.state, Some(State::Succeeded), "{}", reply.text);
    let ns = fake.namespace("preview-feat-x").unwrap();
    assert_eq!(ns.metadata.labels.unwrap()["gantry.dev/preview"], "true");
    let image = fake.image("preview-feat-x", "web", "web").unwrap();
    assert_ne!(image, fake.image("dev", "web", "web").unwrap());
    let gone = h.say("console:alice", "teardown feat-x").await;
    assert_eq!(gone.state, Some(State::Succeeded), "{}", gone.text);
    tokio::time::timeout(
        Duration::from_secs(10),
        fake.wait_until(|f| f.namespace("preview-feat-x").is_none()),
    )
    .await
    .expect("the namespace goes away");
}
