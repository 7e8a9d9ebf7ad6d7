//! `KubeCluster` against the fake Kubernetes API server over real HTTP: the
//! unmodified `kube` client, the real wire format, and every request the
//! adapter sent recorded and asserted.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use gantry::adapters::kube::{KubeCluster, Limits};
use gantry::engine::ports::{
    preview_labels, Cluster, Deletion, PortError, RolloutOutcome, RolloutProgress, Stamp, Workload,
};
use gantry::names::{RequestId, Sha};
use gantry::sandbox::kube::{FakeKube, FakeOptions, Recorded};

const REPO: &str = "registry.local:5000/acme/web";
const DEPLOYMENTS: &str = "/apis/apps/v1/namespaces/dev/deployments";

/// `REPO@sha256:` and 64 copies of `c`.
fn image(c: char) -> String {
    format!("{REPO}@sha256:{}", c.to_string().repeat(64))
}

fn stamp(request: u64) -> Stamp {
    Stamp {
        request: RequestId(request),
        sha: Some(Sha::new(&"5".repeat(40)).unwrap()),
        requested_by: "alice".into(),
    }
}

fn workload(namespace: &str) -> Workload {
    Workload {
        context: "sandbox".into(),
        namespace: namespace.into(),
        deployments: vec!["web".into()],
        container: "web".into(),
        services: vec!["web".into()],
        impersonate: None,
        rollout_timeout: Duration::from_secs(20),
        awaiting_image: None,
    }
}

fn limits() -> Limits {
    Limits {
        request_timeout: Duration::from_millis(500),
        retries: 2,
        backoff: Duration::from_millis(20),
        max_retry_after: Duration::from_secs(2),
    }
}

/// A fake cluster with dev/web (3 replicas of image `a`) and its Service.
async fn cluster() -> (FakeKube, KubeCluster) {
    cluster_at(Duration::from_millis(5)).await
}

/// [`cluster`] whose controller takes one step every `tick`.
async fn cluster_at(tick: Duration) -> (FakeKube, KubeCluster) {
    let options = FakeOptions {
        tick,
        deadline_ticks: 10,
    };
    let fake = FakeKube::start(options).await.unwrap();
    fake.add_deployment("dev", "web", "web", &image('a'), 3);
    fake.add_service("dev", "web", 80);
    fake.clear_requests();
    let adapter = KubeCluster::for_url(fake.url())
        .unwrap()
        .with_limits(limits());
    (fake, adapter)
}

/// Every test ends within this.
async fn within<F: Future>(f: F) -> F::Output {
    tokio::time::timeout(Duration::from_secs(30), f)
        .await
        .expect("the test finishes in time")
}

fn lines(requests: &[Recorded]) -> Vec<String> {
    requests.iter().map(Recorded::line).collect()
}

fn patches(fake: &FakeKube) -> Vec<Recorded> {
    fake.requests()
        .into_iter()
        .filter(|r| r.method == "PATCH")
        .collect()
}

async fn follow(adapter: &KubeCluster, w: &Workload) -> (RolloutOutcome, Vec<RolloutProgress>) {
    let seen = Mutex::new(Vec::new());
    let sink = |p: RolloutProgress| seen.lock().unwrap().push(p);
    let outcome = adapter.follow_rollout(w, &sink).await.unwrap();
    (outcome, seen.into_inner().unwrap())
}

#[tokio::test]
async fn a_rolling_deploy_reports_progress_to_completion() {
    within(async {
        // Slow enough steps that the watch sees the rollout move even when
        // the machine is busy; how far it got before the first look varies.
        let (fake, adapter) = cluster_at(Duration::from_millis(60)).await;
        let w = workload("dev");
        adapter.set_image(&w, &image('b'), &stamp(1)).await.unwrap();
        let (outcome, seen) = follow(&adapter, &w).await;
        assert_eq!(outcome, RolloutOutcome::Complete);
        let figures: Vec<(u32, u32, u32)> = seen
            .iter()
            .map(|p| (p.desired, p.updated, p.available))
            .collect();
        assert!(
            figures.first().is_some_and(|f| f.2 < 3),
            "the figures start before the end: {figures:?}"
        );
        assert_eq!(figures.last(), Some(&(3, 3, 3)), "{figures:?}");
        assert!(figures.len() >= 2, "replica by replica: {figures:?}");
        assert!(
            figures.windows(2).all(|w| w[0].1 <= w[1].1 && w[0] != w[1]),
            "each report moved forward: {figures:?}"
        );

        let d = fake.deployment("dev", "web").unwrap();
        let notes = d.metadata.annotations.unwrap();
        assert_eq!(notes["gantry.dev/request"], "R-1");
        assert_eq!(notes["gantry.dev/requested-by"], "alice");
        assert_eq!(notes["gantry.dev/sha"], "5".repeat(40));
        assert_eq!(fake.image("dev", "web", "web"), Some(image('b')));
        let images = adapter.current_images(&w).await.unwrap();
        assert_eq!(images, [("web".to_owned(), image('b'))]);

        // Exactly what one deploy of a 3-replica Deployment costs.
        let sent = fake.requests();
        assert_eq!(
            lines(&sent),
            [
                format!("GET {DEPLOYMENTS}/web"),
                format!("PATCH {DEPLOYMENTS}/web"),
                format!("GET {DEPLOYMENTS}"),
                format!("GET {DEPLOYMENTS} (watch)"),
                format!("GET {DEPLOYMENTS}/web"),
            ]
        );
        let patch = &sent[1];
        assert_eq!(
            patch.header("content-type"),
            Some("application/strategic-merge-patch+json")
        );
        assert_eq!(patch.param("fieldManager").as_deref(), Some("gantry"));
        let body: serde_json::Value = serde_json::from_str(&patch.body).unwrap();
        let version = body["metadata"]["resourceVersion"].as_str().unwrap();
        assert!(!version.is_empty());
        assert_eq!(
            body["spec"]["template"]["spec"]["containers"],
            serde_json::json!([{"name": "web", "image": image('b')}])
        );
        assert_eq!(
            sent[2].param("fieldSelector").as_deref(),
            Some("metadata.name=web")
        );
        assert!(sent[3]
            .param("resourceVersion")
            .is_some_and(|v| !v.is_empty()));
        // The managed fields name Gantry as the image's owner now.
        let owner = fake
            .deployment("dev", "web")
            .unwrap()
            .metadata
            .managed_fields
            .unwrap();
        assert_eq!(owner.last().unwrap().manager.as_deref(), Some("gantry"));
    })
    .await;
}

#[tokio::test]
async fn a_stuck_rollout_fails_with_the_pod_reason_and_rolls_back() {
    within(async {
        let (fake, adapter) = cluster().await;
        fake.break_image(&"b".repeat(64));
        let w = workload("dev");
        adapter.set_image(&w, &image('b'), &stamp(2)).await.unwrap();
        let (outcome, _) = follow(&adapter, &w).await;
        let RolloutOutcome::Failed(why) = outcome else {
            panic!("expected a failure, got {outcome:?}");
        };
        assert!(why.contains("ProgressDeadlineExceeded"), "{why}");
        assert!(why.contains("CrashLoopBackOff"), "{why}");
        assert!(why.contains("has timed out progressing"), "{why}");

        // Roll back the way the engine does: re-apply the previous digest.
        let back = Stamp {
            sha: None,
            ..stamp(2)
        };
        adapter.set_image(&w, &image('a'), &back).await.unwrap();
        let (outcome, _) = follow(&adapter, &w).await;
        assert_eq!(outcome, RolloutOutcome::Complete);
        assert_eq!(fake.image("dev", "web", "web"), Some(image('a')));
        let notes = fake
            .deployment("dev", "web")
            .unwrap()
            .metadata
            .annotations
            .unwrap();
        assert!(!notes.contains_key("gantry.dev/sha"), "{notes:?}");
        let pods = fake.pods("dev");
        assert_eq!(pods.len(), 3);
        assert!(pods.iter().all(|p| {
            let image = &p.spec.as_ref().unwrap().containers[0].image;
            image.as_deref() == Some(image_a().as_str())
        }));
    })
    .await;
}

fn image_a() -> String {
    image('a')
}

#[tokio::test]
async fn an_image_that_cannot_be_pulled_is_named() {
    within(async {
        let (fake, adapter) = cluster().await;
        fake.unpullable_image(&"d".repeat(64));
        let w = workload("dev");
        adapter.set_image(&w, &image('d'), &stamp(3)).await.unwrap();
        let (outcome, _) = follow(&adapter, &w).await;
        let RolloutOutcome::Failed(why) = outcome else {
            panic!("expected a failure, got {outcome:?}");
        };
        assert!(why.contains("ImagePullBackOff"), "{why}");
    })
    .await;
}

#[tokio::test]
async fn a_concurrent_image_change_aborts_without_overwriting() {
    within(async {
        let (fake, adapter) = cluster().await;
        fake.change_before_next_patch("dev", "web", "web", &image('c'), "kubectl-set");
        let w = workload("dev");
        let err = adapter
            .set_image(&w, &image('b'), &stamp(4))
            .await
            .unwrap_err();
        let PortError::Conflict(why) = &err else {
            panic!("expected a conflict, got {err:?}");
        };
        assert!(why.contains("kubectl-set"), "{why}");
        assert!(why.contains(&image('c')), "{why}");
        assert!(why.contains("not overwriting"), "{why}");
        assert_eq!(fake.image("dev", "web", "web"), Some(image('c')));
        assert_eq!(patches(&fake).len(), 1, "no second write");
    })
    .await;
}

#[tokio::test]
async fn a_conflict_that_left_the_image_alone_is_retried_on_the_new_version() {
    within(async {
        let (fake, adapter) = cluster().await;
        fake.inject_conflicts(1);
        let w = workload("dev");
        adapter.set_image(&w, &image('b'), &stamp(5)).await.unwrap();
        assert_eq!(fake.image("dev", "web", "web"), Some(image('b')));
        assert_eq!(patches(&fake).len(), 2);
    })
    .await;
}

#[tokio::test]
async fn a_rollout_updating_the_status_does_not_starve_the_write() {
    within(async {
        let (fake, adapter) = cluster().await;
        // More conflicts than spec changes are allowed: each only moved
        // the resourceVersion (a controller writing status), never the
        // generation, so each is retried on the new version.
        fake.inject_conflicts(8);
        let w = workload("dev");
        adapter.set_image(&w, &image('b'), &stamp(5)).await.unwrap();
        assert_eq!(fake.image("dev", "web", "web"), Some(image('b')));
        assert_eq!(patches(&fake).len(), 9);
    })
    .await;
}

#[tokio::test]
async fn a_lost_answer_is_read_back_before_deciding() {
    within(async {
        let (fake, adapter) = cluster().await;
        // The write happens, but its answer arrives after the client gave up.
        fake.slow("patch", Duration::from_secs(2), 1);
        let w = workload("dev");
        adapter.set_image(&w, &image('b'), &stamp(6)).await.unwrap();
        assert_eq!(
            lines(&fake.requests()),
            [
                format!("GET {DEPLOYMENTS}/web"),
                format!("PATCH {DEPLOYMENTS}/web"),
                format!("GET {DEPLOYMENTS}/web"),
            ]
        );
        let notes = fake
            .deployment("dev", "web")
            .unwrap()
            .metadata
            .annotations
            .unwrap();
        assert_eq!(notes["gantry.dev/request"], "R-6");
    })
    .await;
}

#[tokio::test]
async fn a_dropped_watch_resumes_from_the_last_version() {
    within(async {
        let (fake, adapter) = cluster().await;
        fake.drop_watches_after(2);
        let w = workload("dev");
        adapter.set_image(&w, &image('b'), &stamp(7)).await.unwrap();
        let (outcome, seen) = follow(&adapter, &w).await;
        assert_eq!(outcome, RolloutOutcome::Complete);
        assert_eq!(seen.last().map(|p| p.available), Some(3));
        let watches: Vec<u64> = fake
            .requests()
            .iter()
            .filter(|r| r.is_watch())
            .map(|r| r.param("resourceVersion").unwrap().parse().unwrap())
            .collect();
        assert!(watches.len() >= 2, "{watches:?}");
        assert!(watches.windows(2).all(|v| v[0] < v[1]), "{watches:?}");
        // Resuming never re-lists.
        let lists = fake
            .requests()
            .iter()
            .filter(|r| r.method == "GET" && r.path == DEPLOYMENTS && !r.is_watch())
            .count();
        assert_eq!(lists, 1);
    })
    .await;
}

#[tokio::test]
async fn rbac_refusals_fail_fast_naming_verb_resource_and_namespace() {
    within(async {
        let (fake, adapter) = cluster().await;
        fake.forbid("patch", "deployments");
        let mut w = workload("dev");
        w.impersonate = Some("alice@example.com".into());
        let err = adapter
            .set_image(&w, &image('b'), &stamp(8))
            .await
            .unwrap_err();
        let text = err.to_string();
        assert!(matches!(err, PortError::Unauthorised(_)), "{text}");
        for part in [
            "alice@example.com",
            "patch deployments.apps/web",
            "namespace dev",
        ] {
            assert!(text.contains(part), "{part} missing: {text}");
        }
        assert_eq!(patches(&fake).len(), 1, "no retries after 403");
    })
    .await;
}

#[tokio::test]
async fn bad_input_fails_before_any_write() {
    within(async {
        let (fake, adapter) = cluster().await;
        let mut missing = workload("dev");
        missing.deployments.push("api".into());
        let err = adapter
            .set_image(&missing, &image('b'), &stamp(9))
            .await
            .unwrap_err();
        assert_eq!(
            err,
            PortError::NotFound("Deployment api not found in namespace dev".into())
        );
        let mut container = workload("dev");
        container.container = "app".into();
        let err = adapter
            .set_image(&container, &image('b'), &stamp(9))
            .await
            .unwrap_err();
        assert!(
            matches!(&err, PortError::Invalid(m) if m.contains("no container `app` (it has: web)")),
            "{err}"
        );
        let err = adapter
            .set_image(&workload("dev"), &format!("{REPO}:latest"), &stamp(9))
            .await
            .unwrap_err();
        assert!(
            matches!(&err, PortError::Invalid(m) if m.contains("not pinned by digest")),
            "{err}"
        );
        let err = adapter
            .set_image(&workload("Preview_X"), &image('b'), &stamp(9))
            .await
            .unwrap_err();
        assert!(
            matches!(&err, PortError::Invalid(m) if m.contains("not a valid namespace")),
            "{err}"
        );
        let labels = BTreeMap::new();
        let err = adapter
            .ensure_namespace("sandbox", &"x".repeat(64), &labels)
            .await
            .unwrap_err();
        assert!(matches!(err, PortError::Invalid(_)), "{err}");
        assert!(patches(&fake).is_empty());
        assert_eq!(fake.image("dev", "web", "web"), Some(image('a')));
    })
    .await;
}

#[tokio::test]
async fn rate_limits_honour_retry_after() {
    within(async {
        let (fake, adapter) = cluster().await;
        fake.throttle(1, 1);
        let started = Instant::now();
        let images = adapter.current_images(&workload("dev")).await.unwrap();
        assert_eq!(images[0].1, image('a'));
        assert!(started.elapsed() >= Duration::from_secs(1));
        assert_eq!(fake.requests().len(), 2);
    })
    .await;
}

fn preview_labels_for(branch: &str, expires: i64) -> BTreeMap<String, String> {
    BTreeMap::from([
        (preview_labels::PREVIEW.to_owned(), "true".to_owned()),
        (preview_labels::BRANCH.to_owned(), branch.to_owned()),
        (preview_labels::PR.to_owned(), "12".to_owned()),
        (preview_labels::EXPIRES.to_owned(), expires.to_string()),
    ])
}

#[tokio::test]
async fn a_preview_is_created_deployed_and_torn_down() {
    within(async {
        let (fake, adapter) = cluster().await;
        let ns = "preview-feat-x";
        let labels = preview_labels_for("feat/X", 1_800_000_000);
        adapter
            .ensure_namespace("sandbox", ns, &labels)
            .await
            .unwrap();
        let made = fake.namespace(ns).unwrap().metadata.labels.unwrap();
        assert_eq!(made["gantry.dev/preview"], "true");
        assert_eq!(made["gantry.dev/branch"], "feat-X");
        assert_eq!(made["gantry.dev/pr"], "12");

        let w = workload(ns);
        adapter.copy_workload(&w, "dev").await.unwrap();
        let svc = fake.service(ns, "web").unwrap();
        assert_ne!(svc.spec.unwrap().cluster_ip.as_deref(), Some("10.96.0.10"));
        adapter
            .set_image(&w, &image('b'), &stamp(10))
            .await
            .unwrap();
        let (outcome, _) = follow(&adapter, &w).await;
        assert_eq!(outcome, RolloutOutcome::Complete);
        assert_eq!(fake.image(ns, "web", "web"), Some(image('b')));
        assert_eq!(fake.image("dev", "web", "web"), Some(image('a')));
        // A second copy leaves what exists alone.
        adapter.copy_workload(&w, "dev").await.unwrap();
        assert_eq!(fake.image(ns, "web", "web"), Some(image('b')));

        // Gantry never takes over or deletes a namespace it did not make.
        let err = adapter
            .delete_namespace("sandbox", "dev")
            .await
            .unwrap_err();
        assert!(
            matches!(&err, PortError::Invalid(m) if m.contains("not a Gantry preview")),
            "{err}"
        );
        let err = adapter
            .ensure_namespace("sandbox", "dev", &labels)
            .await
            .unwrap_err();
        assert!(matches!(err, PortError::Invalid(_)), "{err}");
        assert!(fake.namespace("dev").is_some());

        let first = adapter.delete_namespace("sandbox", ns).await.unwrap();
        assert_eq!(first, Deletion::Deleted);
        fake.wait_until(|f| f.namespace(ns).is_none()).await;
        assert!(fake.deployment(ns, "web").is_none() && fake.service(ns, "web").is_none());
        let again = adapter.delete_namespace("sandbox", ns).await.unwrap();
        assert_eq!(again, Deletion::AlreadyGone);
    })
    .await;
}

#[tokio::test]
async fn deleting_a_namespace_twice_is_deleted_then_already_gone() {
    within(async {
        // Slow enough that the namespace is still terminating when asked again.
        let (fake, adapter) = cluster_at(Duration::from_secs(3600)).await;
        let ns = "preview-twice";
        let labels = preview_labels_for("twice", 1_800_000_000);
        adapter
            .ensure_namespace("sandbox", ns, &labels)
            .await
            .unwrap();
        fake.clear_requests();
        let first = adapter.delete_namespace("sandbox", ns).await.unwrap();
        assert_eq!(first, Deletion::Deleted);
        let terminating = fake.namespace(ns).unwrap();
        assert!(terminating.metadata.deletion_timestamp.is_some());
        let again = adapter.delete_namespace("sandbox", ns).await.unwrap();
        assert_eq!(again, Deletion::AlreadyGone);
        // A terminating namespace is not deleted again (the server would say 409).
        let path = format!("/api/v1/namespaces/{ns}");
        assert_eq!(
            lines(&fake.requests()),
            [
                format!("GET {path}"),
                format!("DELETE {path}"),
                format!("GET {path}"),
            ]
        );
        let gone = adapter
            .delete_namespace("sandbox", "preview-never-made")
            .await
            .unwrap();
        assert_eq!(gone, Deletion::AlreadyGone);
    })
    .await;
}

#[tokio::test]
async fn namespace_deletes_answer_as_the_real_api_server_does() {
    within(async {
        let (fake, _) = cluster_at(Duration::from_secs(3600)).await;
        fake.add_namespace("preview-x", &[("gantry.dev/preview", "true")]);
        let client = reqwest::Client::new();
        let delete = |name: &str| {
            client
                .delete(format!("{}/api/v1/namespaces/{name}", fake.url()))
                .send()
        };
        let missing = delete("nope").await.unwrap();
        assert_eq!(missing.status().as_u16(), 404);
        let body: serde_json::Value = missing.json().await.unwrap();
        assert_eq!(
            body,
            serde_json::json!({"kind": "Status", "apiVersion": "v1", "metadata": {},
                "status": "Failure", "message": "namespaces \"nope\" not found",
                "reason": "NotFound", "details": {"name": "nope", "kind": "namespaces"},
                "code": 404})
        );
        let first = delete("preview-x").await.unwrap();
        assert_eq!(first.status().as_u16(), 200);
        let body: serde_json::Value = first.json().await.unwrap();
        assert_eq!(body["status"]["phase"], "Terminating");
        let second = delete("preview-x").await.unwrap();
        assert_eq!(second.status().as_u16(), 409);
        let body: serde_json::Value = second.json().await.unwrap();
        assert_eq!(body["reason"], "Conflict");
        assert_eq!(
            body["details"],
            serde_json::json!({"name": "preview-x", "kind": "namespaces"})
        );
        let message = body["message"].as_str().unwrap();
        assert!(
            message.starts_with("Operation cannot be fulfilled on namespaces \"preview-x\": The system is ensuring all content is removed from this namespace."),
            "{message}"
        );
    })
    .await;
}

#[tokio::test]
async fn the_ttl_sweep_deletes_expired_previews_only() {
    within(async {
        let (fake, adapter) = cluster().await;
        adapter
            .ensure_namespace("sandbox", "preview-old", &preview_labels_for("old", 1_000))
            .await
            .unwrap();
        adapter
            .ensure_namespace("sandbox", "preview-new", &preview_labels_for("new", 9_000))
            .await
            .unwrap();
        let now = 5_000;
        let previews = adapter.list_previews("sandbox").await.unwrap();
        let names: Vec<&str> = previews.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(
            names,
            ["preview-new", "preview-old"],
            "dev is not a preview"
        );
        for expired in previews.iter().filter(|p| p.expired(now)) {
            adapter
                .delete_namespace("sandbox", &expired.name)
                .await
                .unwrap();
        }
        // Being deleted is already gone for the sweep.
        let left = adapter.list_previews("sandbox").await.unwrap();
        assert_eq!(left.len(), 1);
        assert_eq!(left[0].name, "preview-new");
        fake.wait_until(|f| f.namespace("preview-old").is_none())
            .await;
        assert!(fake.namespace("preview-new").is_some());
        let list = fake
            .requests()
            .into_iter()
            .find(|r| r.path == "/api/v1/namespaces")
            .unwrap();
        assert_eq!(
            list.param("labelSelector").as_deref(),
            Some("gantry.dev/preview=true")
        );
    })
    .await;
}

#[tokio::test]
async fn impersonation_headers_are_sent_only_when_enabled() {
    within(async {
        let (fake, adapter) = cluster().await;
        let mut w = workload("dev");
        w.impersonate = Some("alice@example.com".into());
        adapter
            .set_image(&w, &image('b'), &stamp(11))
            .await
            .unwrap();
        follow(&adapter, &w).await;
        let sent = fake.requests();
        assert!(sent.len() >= 4);
        for r in &sent {
            assert_eq!(
                r.header("impersonate-user"),
                Some("alice@example.com"),
                "{}",
                r.line()
            );
        }
        fake.clear_requests();
        adapter.current_images(&workload("dev")).await.unwrap();
        assert!(fake
            .requests()
            .iter()
            .all(|r| r.header("impersonate-user").is_none()));
        // A requester without a kube_user on an impersonating cluster is refused.
        w.impersonate = Some(String::new());
        let err = adapter.current_images(&w).await.unwrap_err();
        assert!(matches!(err, PortError::Invalid(_)), "{err}");
    })
    .await;
}

#[tokio::test]
async fn a_gitops_rollout_waits_for_the_sync_to_apply_the_image() {
    within(async {
        let (fake, adapter) = cluster().await;
        // Nothing applies the committed image: the finished rollout of the
        // old image must not count, and the timeout names the sync.
        let mut w = workload("dev");
        w.rollout_timeout = Duration::from_millis(300);
        w.awaiting_image = Some(image('b'));
        let (outcome, seen) = follow(&adapter, &w).await;
        let RolloutOutcome::Failed(why) = outcome else {
            panic!("the old rollout counted as the new one: {outcome:?}");
        };
        assert!(
            why.contains("web: the GitOps sync has not applied"),
            "{why}"
        );
        assert!(seen.is_empty(), "no figures of the old rollout: {seen:?}");

        // The sync applies it while Gantry watches: then it completes.
        w.rollout_timeout = Duration::from_secs(20);
        let sync = KubeCluster::for_url(fake.url()).unwrap();
        fake.clear_requests();
        let syncing = async {
            // Once Gantry's watch is open, so that it sees the sync happen.
            fake.wait_until(|k| {
                k.requests().iter().any(|r| {
                    r.is_watch() && r.path.contains("/namespaces/dev/") && r.status.is_some()
                })
            })
            .await;
            sync.set_image(&workload("dev"), &image('b'), &stamp(0))
                .await
                .unwrap();
        };
        let ((outcome, seen), ()) = tokio::join!(follow(&adapter, &w), syncing);
        assert_eq!(outcome, RolloutOutcome::Complete);
        assert_eq!(seen.last().map(|p| p.updated), Some(3), "{seen:?}");
        assert_eq!(fake.image("dev", "web", "web"), Some(image('b')));
    })
    .await;
}
