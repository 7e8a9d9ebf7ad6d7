//! The sandbox stack that `gantry serve --sandbox` and `gantry demo` run:
//! the engine over the real GitHub, registry and Kubernetes adapters, each
//! talking HTTP to its sandbox server, with the sandbox's CI runner and
//! Argo CD sync working next to the fake GitHub.

mod support;

use std::sync::Arc;
use std::time::Duration;

use gantry::engine::{Conversation, Engine, Reply, State};
use gantry::sandbox::github::FakeFault;
use gantry::sandbox::stack::{SandboxOptions, SandboxServers, Verification};
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

/// Polls `probe` every 50 ms until it answers `Some`, for at most 30 s.
async fn eventually<T, F: std::future::Future<Output = Option<T>>>(
    what: &str,
    mut probe: impl FnMut() -> F,
) -> T {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(value) = probe().await {
            return value;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting until {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// `GET url`: status and body.
async fn get(url: &str) -> (u16, String) {
    let answer = reqwest::get(url).await.unwrap();
    let status = answer.status().as_u16();
    (status, answer.text().await.unwrap())
}

/// The `http_requests_total` counters of `namespace`'s web: (200s, 500s).
async fn requests_of(apps: &str, namespace: &str) -> (f64, f64) {
    let (status, text) = get(&format!("{apps}/metrics")).await;
    assert_eq!(status, 200, "{text}");
    let count = |code: &str| {
        let series = format!(
            "http_requests_total{{namespace=\"{namespace}\",app=\"web\",code=\"{code}\"}} "
        );
        text.lines()
            .find_map(|l| l.strip_prefix(&series))
            .unwrap_or_else(|| panic!("no {series}in:\n{text}"))
            .parse::<f64>()
            .unwrap()
    };
    (count("200"), count("500"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_apps_answer_health_and_metrics_for_what_the_cluster_runs() {
    support::within(async {
        let s = sandbox().await;
        let apps = s.stack.apps.url();
        assert_eq!(
            get(&format!("{apps}/apps/dev/web/healthz")).await,
            (200, "ok".to_owned())
        );
        let (status, body) = get(&format!("{apps}/apps/dev/nothing/healthz")).await;
        assert_eq!(
            (status, body.as_str()),
            (503, "no deployment dev/nothing\n")
        );
        let (_, text) = get(&format!("{apps}/metrics")).await;
        assert!(
            text.starts_with("# HELP http_requests_total ")
                && text.contains("\n# TYPE http_requests_total counter\n"),
            "{text}"
        );

        // The counters grow as time passes, without errors on `main`.
        let (ok, _) = requests_of(&apps, "dev").await;
        let grown = eventually("dev's requests grow", || {
            let apps = apps.clone();
            async move { Some(requests_of(&apps, "dev").await).filter(|(now, _)| *now > ok) }
        })
        .await;
        assert_eq!(grown.1, 0.0, "main answers no 500s");

        // `bad-metrics` runs, and a fifth of its requests fail.
        let reply = s.say("console:alice", "deploy bad-metrics to dev").await;
        assert_eq!(reply.state, Some(State::Succeeded), "{}", reply.text);
        assert_eq!(
            get(&format!("{apps}/apps/dev/web/healthz")).await.0,
            200,
            "the faulty release is up: only its metrics tell"
        );
        let before = requests_of(&apps, "dev").await;
        let after = eventually("dev serves 60 more requests", || {
            let apps = apps.clone();
            async move {
                Some(requests_of(&apps, "dev").await)
                    .filter(|(ok, errors)| ok + errors >= before.0 + before.1 + 60.0)
            }
        })
        .await;
        let errors = after.1 - before.1;
        let share = errors / (after.0 + after.1 - before.0 - before.1);
        assert!(
            (0.15..=0.25).contains(&share),
            "{share}: {before:?} → {after:?}"
        );
        // Other namespaces still run `main`, without errors.
        assert_eq!(requests_of(&apps, "staging").await.1, 0.0);
    })
    .await;
}

/// The value of an instant query's only sample, if it has one.
async fn query(prometheus: &str, promql: &str) -> Option<f64> {
    let url =
        reqwest::Url::parse_with_params(&format!("{prometheus}api/v1/query"), [("query", promql)])
            .unwrap();
    let answer: serde_json::Value = reqwest::get(url).await.ok()?.json().await.ok()?;
    answer["data"]["result"][0]["value"][1]
        .as_str()?
        .parse()
        .ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sandbox_prometheus_scrapes_the_apps_and_stops_with_its_owner() {
    support::within(async {
        let binary = gantry::sandbox::prometheus::find().expect(
            "the `prometheus` binary is on PATH (Debian's prometheus package; .ci/run installs it)",
        );
        let s = sandbox().await;
        let dir = tempfile::tempdir().unwrap();
        let prometheus = gantry::sandbox::prometheus::SandboxPrometheus::start(
            &binary,
            dir.path(),
            s.stack.apps.addr(),
        )
        .await
        .unwrap();
        let url = prometheus.url().to_owned();
        assert!(
            url.starts_with("http://127.0.0.1:") && url.ends_with('/'),
            "{url}"
        );
        let ratio =
            gantry::sandbox::verification::error_ratio_query().replace("{namespace}", "dev");
        let good = eventually("the error ratio of dev has a value", || {
            let (url, ratio) = (url.clone(), ratio.clone());
            async move { query(&url, &ratio).await }
        })
        .await;
        assert_eq!(good, 0.0, "main answers no 500s");

        let reply = s.say("console:alice", "deploy bad-metrics to dev").await;
        assert_eq!(reply.state, Some(State::Succeeded), "{}", reply.text);
        let bad = eventually("the error ratio of dev passes the threshold", || {
            let (url, ratio) = (url.clone(), ratio.clone());
            async move {
                query(&url, &ratio)
                    .await
                    .filter(|v| *v > gantry::sandbox::verification::THRESHOLD)
            }
        })
        .await;
        assert!(bad <= 0.25, "{bad}");

        // Dropping it stops the process: nothing answers on its port.
        drop(prometheus);
        let ready = reqwest::get(format!("{url}-/ready")).await;
        assert!(ready.is_err(), "{ready:?}");
    })
    .await;
}

/// The checks the written config gives staging, by name, on the real prober.
async fn staging_checks(stack: &SandboxServers) -> Vec<(String, gantry::engine::Probed)> {
    use gantry::engine::Prober as _;
    let staging = stack
        .config
        .envs()
        .iter()
        .find(|e| e.name.as_str() == "staging")
        .expect("the shipped config has staging");
    let verify = staging.verify.as_ref().expect("staging is verified");
    let probes = gantry::adapters::probe::Probes::from_config(&stack.config).unwrap();
    let vars = gantry::engine::ports::ProbeVars {
        app: "web".into(),
        env: "staging".into(),
        namespace: "staging".into(),
    };
    let mut seen = Vec::new();
    for check in &verify.checks {
        seen.push((check.name.clone(), probes.probe(check, &vars).await));
    }
    seen
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_written_config_verifies_staging_on_the_apps_and_the_sandbox_prometheus() {
    support::within(async {
        let options = SandboxOptions::with_tick(Duration::from_millis(10)).verified();
        assert!(
            matches!(
                &options.verification,
                Verification::On {
                    prometheus: Some(_)
                }
            ),
            "the `prometheus` binary is on PATH (Debian's prometheus package; .ci/run installs it)"
        );
        let h = Harness::with_options("../../config/gantry.toml", options).await;
        let prometheus = h.sandbox.prometheus.as_ref().expect("Prometheus runs");
        let endpoints = gantry::sandbox::generated::read_endpoints(&h.sandbox.dir).unwrap();
        assert_eq!(endpoints.prometheus.as_deref(), Some(prometheus.url()));
        assert_eq!(endpoints.apps, Some(h.sandbox.apps.url()));
        let seen = staging_checks(&h.sandbox).await;
        let names: Vec<&str> = seen.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["health", "error-rate"]);
        for (name, probed) in &seen {
            assert!(probed.ok, "{name}: {}", probed.value);
        }
        assert_eq!(seen[1].1.value, "0 < 0.05");

        // Without the binary, the sandbox runs without Prometheus and
        // staging keeps its health check only.
        let without = SandboxOptions {
            verification: Verification::On { prometheus: None },
            ..SandboxOptions::with_tick(Duration::from_millis(10))
        };
        let h = Harness::with_options("../../config/gantry.toml", without).await;
        assert!(h.sandbox.prometheus.is_none());
        assert!(h.sandbox.config.prometheus().is_empty());
        let seen = staging_checks(&h.sandbox).await;
        let names: Vec<&str> = seen.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["health"]);
        assert!(seen[0].1.ok, "{}", seen[0].1.value);
    })
    .await;
}
