//! Gantry's RBAC from evidence: drive the real `KubeCluster` through every
//! path Gantry takes against the fake API server, collect what the API
//! server would authorise for each request (`Recorded::authorisations`),
//! and compare it with the ClusterRole in `config/kubernetes/rbac.yaml`
//! both ways: everything used is granted, and everything granted is used.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;

use gantry::adapters::kube::{KubeCluster, Limits};
use gantry::engine::ports::{
    preview_labels, Cluster, Deletion, RolloutOutcome, RolloutProgress, Stamp, Workload,
};
use gantry::names::{RequestId, Sha};
use gantry::sandbox::kube::{Authorisation, FakeKube, FakeOptions};
use k8s_openapi::api::rbac::v1::ClusterRole;
use serde::Deserialize;

/// `(API group, resource, verb)`, as a ClusterRole rule grants it.
type Rule = (String, String, String);
/// `(non-resource URL, verb)`.
type Url = (String, String);

/// Non-resource URLs every authenticated client may GET through the
/// default `system:public-info-viewer` ClusterRole, so Gantry's own role
/// need not grant them.
const PUBLIC_INFO: [&str; 5] = ["/healthz", "/livez", "/readyz", "/version", "/version/"];

/// The ClusterRole Gantry runs as.
const ROLE: &str = "gantry-deployer";

fn image(c: char) -> String {
    format!(
        "registry.local:5000/acme/web@sha256:{}",
        c.to_string().repeat(64)
    )
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

fn preview(branch: &str, expires: i64) -> BTreeMap<String, String> {
    BTreeMap::from([
        (preview_labels::BRANCH.to_owned(), branch.to_owned()),
        (preview_labels::EXPIRES.to_owned(), expires.to_string()),
    ])
}

async fn within<F: Future>(f: F) -> F::Output {
    tokio::time::timeout(Duration::from_secs(60), f)
        .await
        .expect("the test finishes in time")
}

/// A fake cluster with dev/web (3 replicas of image `a`) and its Service.
async fn cluster() -> (FakeKube, KubeCluster) {
    let options = FakeOptions {
        tick: Duration::from_millis(5),
        deadline_ticks: 10,
    };
    let fake = FakeKube::start(options).await.unwrap();
    fake.add_deployment("dev", "web", "web", &image('a'), 3);
    fake.add_service("dev", "web", 80);
    fake.clear_requests();
    let limits = Limits {
        request_timeout: Duration::from_secs(5),
        retries: 2,
        backoff: Duration::from_millis(20),
        max_retry_after: Duration::from_secs(2),
    };
    let adapter = KubeCluster::for_url(fake.url())
        .unwrap()
        .with_limits(limits);
    (fake, adapter)
}

async fn deploy(adapter: &KubeCluster, w: &Workload, to: char, request: u64) -> RolloutOutcome {
    adapter
        .set_image(w, &image(to), &stamp(request))
        .await
        .unwrap();
    let seen = Mutex::new(Vec::new());
    let sink = |p: RolloutProgress| seen.lock().unwrap().push(p);
    adapter.follow_rollout(w, &sink).await.unwrap()
}

/// Every path Gantry takes through the Cluster port, as its service account.
async fn every_path(fake: &FakeKube, adapter: &KubeCluster) {
    let dev = workload("dev");
    // Deploy, then roll back to the previous image.
    assert_eq!(
        deploy(adapter, &dev, 'b', 1).await,
        RolloutOutcome::Complete
    );
    assert_eq!(adapter.current_images(&dev).await.unwrap()[0].1, image('b'));
    assert_eq!(
        deploy(adapter, &dev, 'a', 2).await,
        RolloutOutcome::Complete
    );
    // A rollout that hits the progress deadline (the stuck pods are listed),
    // and the automatic rollback after it.
    fake.break_image(&"c".repeat(64));
    let stuck = deploy(adapter, &dev, 'c', 3).await;
    assert!(
        matches!(&stuck, RolloutOutcome::Failed(why) if why.contains("ProgressDeadlineExceeded")),
        "{stuck:?}"
    );
    assert_eq!(
        deploy(adapter, &dev, 'a', 3).await,
        RolloutOutcome::Complete
    );

    // A preview: create, fill, deploy into it, refresh its expiry.
    let ns = "preview-feat-x";
    adapter
        .ensure_namespace("sandbox", ns, &preview("feat-x", 1_800_000_000))
        .await
        .unwrap();
    let w = workload(ns);
    adapter.copy_workload(&w, "dev").await.unwrap();
    assert_eq!(deploy(adapter, &w, 'b', 4).await, RolloutOutcome::Complete);
    adapter
        .ensure_namespace("sandbox", ns, &preview("feat-x", 1_900_000_000))
        .await
        .unwrap();

    // Teardown, then the TTL sweep of an expired preview.
    assert_eq!(
        adapter.delete_namespace("sandbox", ns).await.unwrap(),
        Deletion::Deleted
    );
    adapter
        .ensure_namespace("sandbox", "preview-old", &preview("old", 1_000))
        .await
        .unwrap();
    let previews = adapter.list_previews("sandbox").await.unwrap();
    for expired in previews.iter().filter(|p| p.expired(5_000)) {
        assert_eq!(
            adapter
                .delete_namespace("sandbox", &expired.name)
                .await
                .unwrap(),
            Deletion::Deleted
        );
    }
    assert!(previews.iter().any(|p| p.name == "preview-old"));
    fake.wait_until(|f| f.namespace(ns).is_none() && f.namespace("preview-old").is_none())
        .await;
    // Deleting what is gone is a success that says so.
    assert_eq!(
        adapter.delete_namespace("sandbox", ns).await.unwrap(),
        Deletion::AlreadyGone
    );

    // `/readyz` asks the API server.
    adapter.ping("sandbox").await.unwrap();
}

/// What the fake API server would have authorised, split by kind of rule.
fn used(fake: &FakeKube) -> (BTreeSet<Rule>, BTreeSet<Url>) {
    let mut rules = BTreeSet::new();
    let mut urls = BTreeSet::new();
    for request in fake.requests() {
        for check in request.authorisations() {
            match check {
                Authorisation::Resource(a) => {
                    rules.insert((a.group, a.resource, a.verb));
                }
                Authorisation::NonResource { verb, path } => {
                    urls.insert((path, verb));
                }
            }
        }
    }
    (rules, urls)
}

/// What Gantry's ClusterRole grants, expanded rule by rule.
fn granted() -> (BTreeSet<Rule>, BTreeSet<Url>) {
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/kubernetes/rbac.yaml");
    let text = std::fs::read_to_string(&file).unwrap();
    let role = serde_yaml::Deserializer::from_str(&text)
        .map(|document| serde_yaml::Value::deserialize(document).unwrap())
        .filter(|v| v["kind"] == "ClusterRole" && v["metadata"]["name"] == ROLE)
        .map(|v| serde_yaml::from_value::<ClusterRole>(v).unwrap())
        .next()
        .unwrap_or_else(|| panic!("{} has no ClusterRole {ROLE}", file.display()));
    let mut rules = BTreeSet::new();
    let mut urls = BTreeSet::new();
    for rule in role.rules.unwrap_or_default() {
        let wild = |names: &[String]| names.iter().any(|n| n.contains('*'));
        assert!(!wild(&rule.verbs), "no wildcard verbs: {rule:?}");
        // A rule limited to names would be narrower than this comparison.
        assert!(rule.resource_names.is_none(), "{rule:?}");
        let groups = rule.api_groups.clone().unwrap_or_default();
        let resources = rule.resources.clone().unwrap_or_default();
        assert!(
            !wild(&groups) && !wild(&resources),
            "no wildcards: {rule:?}"
        );
        for group in &groups {
            for resource in &resources {
                for verb in &rule.verbs {
                    rules.insert((group.clone(), resource.clone(), verb.clone()));
                }
            }
        }
        for url in rule.non_resource_urls.iter().flatten() {
            for verb in &rule.verbs {
                urls.insert((url.clone(), verb.clone()));
            }
        }
    }
    (rules, urls)
}

fn listed<T: std::fmt::Debug>(items: &BTreeSet<T>) -> String {
    items
        .iter()
        .map(|i| format!("\n  {i:?}"))
        .collect::<String>()
}

#[tokio::test]
async fn the_cluster_role_grants_exactly_what_gantry_uses() {
    within(async {
        let (fake, adapter) = cluster().await;
        every_path(&fake, &adapter).await;
        let (used_rules, used_urls) = used(&fake);
        let (granted_rules, granted_urls) = granted();
        println!("evidence (group, resource, verb):{}", listed(&used_rules));
        println!("non-resource URLs (path, verb):{}", listed(&used_urls));

        let missing: BTreeSet<_> = used_rules.difference(&granted_rules).cloned().collect();
        let unused: BTreeSet<_> = granted_rules.difference(&used_rules).cloned().collect();
        assert!(
            missing.is_empty() && unused.is_empty(),
            "{ROLE} in rbac.yaml does not match what Gantry does.\n\
             Used but not granted (the cluster would answer 403):{}\n\
             Granted but never used (remove them):{}",
            listed(&missing),
            listed(&unused)
        );

        // Non-resource URLs are not resource rules: /version (ping) is
        // readable by every authenticated user through the default
        // system:public-info-viewer role; anything else must be granted.
        let public: BTreeSet<Url> = PUBLIC_INFO
            .iter()
            .map(|p| ((*p).to_owned(), "get".to_owned()))
            .collect();
        let needed: BTreeSet<_> = used_urls.difference(&public).cloned().collect();
        assert!(
            needed.is_subset(&granted_urls),
            "non-resource URLs used but not granted:{}",
            listed(&needed)
        );
        let unused_urls: BTreeSet<_> = granted_urls.difference(&needed).cloned().collect();
        assert!(
            unused_urls.is_empty(),
            "non-resource URLs granted but never needed:{}",
            listed(&unused_urls)
        );
        assert!(used_urls.contains(&("/version".to_owned(), "get".to_owned())));
    })
    .await;
}

#[tokio::test]
async fn server_side_apply_that_creates_needs_create_as_well_as_patch() {
    within(async {
        let (fake, adapter) = cluster().await;
        let labels = preview("feat-y", 1_800_000_000);
        adapter
            .ensure_namespace("sandbox", "preview-y", &labels)
            .await
            .unwrap();
        let (created, _) = used(&fake);
        let namespaces = |verb: &str| (String::new(), "namespaces".to_owned(), verb.to_owned());
        assert!(created.contains(&namespaces("patch")) && created.contains(&namespaces("create")));
        // Applying again to the existing namespace is only a patch.
        fake.clear_requests();
        adapter
            .ensure_namespace("sandbox", "preview-y", &labels)
            .await
            .unwrap();
        let (refreshed, _) = used(&fake);
        assert!(refreshed.contains(&namespaces("patch")));
        assert!(!refreshed.contains(&namespaces("create")), "{refreshed:?}");
    })
    .await;
}

#[tokio::test]
async fn impersonating_clusters_need_impersonate_on_each_kube_user() {
    within(async {
        let (fake, adapter) = cluster().await;
        let mut w = workload("dev");
        w.impersonate = Some("alice@example.com".into());
        assert_eq!(deploy(&adapter, &w, 'b', 5).await, RolloutOutcome::Complete);
        let requests = fake.requests();
        assert!(!requests.is_empty());
        let impersonate = Authorisation::Resource(gantry::sandbox::kube::Access {
            verb: "impersonate".into(),
            group: String::new(),
            resource: "users".into(),
            namespace: None,
            name: Some("alice@example.com".into()),
        });
        for r in &requests {
            assert_eq!(
                r.authorisations().first(),
                Some(&impersonate),
                "{}",
                r.line()
            );
        }
        // Granting `impersonate` on every user would let Gantry act as anyone,
        // so the shipped role leaves it to a per-cluster role that names each
        // kube_user (see rbac.yaml and docs/kubernetes.md).
        let (rules, _) = granted();
        assert!(
            rules.iter().all(|(_, _, verb)| verb != "impersonate"),
            "{rules:?}"
        );
    })
    .await;
}
