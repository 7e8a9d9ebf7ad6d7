//! Prometheus verification checks against a real Prometheus scraping an
//! exporter the test controls, through the production prober built from a
//! parsed config.

mod support;

use std::sync::{Arc, Mutex};

use axum::http::HeaderMap;
use axum::routing::get;
use axum::Router;
use gantry::adapters::probe::Probes;
use gantry::config::{self, Config};
use gantry::engine::ports::ProbeVars;
use gantry::engine::{Probed, Prober};
use support::prometheus::TestPrometheus;
use support::{serve_router, within};

const TOKEN: &str = "prom-token-7f3a9c";

/// A config with `[prometheus.main]` at `url` (plus `server` keys) and a
/// `staging` check on it with `check`'s keys.
fn config_with_check(url: &str, server: &str, check: &str) -> Config {
    let text = format!(
        r#"[clusters.local]

[prometheus.main]
url = "{url}"
timeout = "10s"
{server}

[apps.web]
repo = "acme/web"
image = "registry.local:5000/acme/web"
deployments = ["web"]

[environments.staging]
cluster = "local"
namespace = "staging"

[environments.staging.verify]
soak = "1m"

[[environments.staging.verify.checks]]
name = "errors"
type = "prometheus"
prometheus = "main"
interval = "5s"
{check}
"#
    );
    config::parse(&text, "verify.toml").unwrap_or_else(|e| panic!("{e}\n{text}"))
}

fn vars() -> ProbeVars {
    ProbeVars {
        app: "web".into(),
        env: "staging".into(),
        namespace: "staging".into(),
    }
}

/// The prober and the staging check, from a config.
fn prober(config: &Config) -> (Probes, gantry::config::VerifyCheck) {
    let probes = Probes::from_config(config).expect("the prober builds");
    let check = config
        .env("staging")
        .unwrap()
        .verify
        .as_ref()
        .unwrap()
        .checks[0]
        .clone();
    (probes, check)
}

#[tokio::test]
async fn a_check_passes_then_fails_once_prometheus_has_scraped_the_change() {
    within(async {
        let Some(prometheus) = TestPrometheus::start().await else {
            return;
        };
        let gauge = r#"web_error_ratio{namespace="staging"}"#;
        prometheus.gauges.set(gauge, 0.001);
        prometheus.wait_for_sample(gauge, |v| v == 0.001).await;
        let config = config_with_check(
            &prometheus.url(),
            "",
            "query = 'web_error_ratio{namespace=\"{namespace}\"}'\ncomparison = \"<\"\nthreshold = 0.01",
        );
        let (probes, check) = prober(&config);
        assert_eq!(
            probes.probe(&check, &vars()).await,
            Probed { ok: true, value: "0.001 < 0.01".into() }
        );

        prometheus.gauges.set(gauge, 0.2);
        prometheus.wait_for_sample(gauge, |v| v == 0.2).await;
        assert_eq!(
            probes.probe(&check, &vars()).await,
            Probed { ok: false, value: "0.2, needs < 0.01".into() }
        );
    })
    .await;
}

#[tokio::test]
async fn no_series_a_parse_error_and_a_closed_port_fail() {
    within(async {
        let Some(prometheus) = TestPrometheus::start().await else {
            return;
        };
        let query = r#"web_requests_total{namespace="{namespace}"}"#;
        let config = config_with_check(
            &prometheus.url(),
            "",
            &format!("query = '{query}'\ncomparison = \"<\"\nthreshold = 1"),
        );
        let (probes, check) = prober(&config);
        assert_eq!(
            probes.probe(&check, &vars()).await,
            Probed {
                ok: false,
                value: r#"no series for query web_requests_total{namespace="staging"}"#.into(),
            }
        );

        let config = config_with_check(
            &prometheus.url(),
            "",
            "query = 'sum('\ncomparison = \"<\"\nthreshold = 1",
        );
        let (probes, check) = prober(&config);
        let p = probes.probe(&check, &vars()).await;
        assert!(!p.ok);
        assert!(
            p.value.starts_with("query sum( failed: bad_data: ") && p.value.contains("parse error"),
            "{p:?}"
        );

        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
        let closed = listener.local_addr().expect("its address");
        drop(listener);
        let config = config_with_check(
            &format!("http://{closed}"),
            "",
            "query = 'vector(0)'\ncomparison = \"<\"\nthreshold = 1",
        );
        let (probes, check) = prober(&config);
        assert_eq!(
            probes.probe(&check, &vars()).await,
            Probed {
                ok: false,
                value: "Prometheus unreachable: connection refused".into(),
            }
        );
    })
    .await;
}

/// A stand-in for an authenticating proxy: records the Authorization header
/// and answers canned JSON, echoing the header back in an error answer.
fn proxy(seen: Arc<Mutex<Vec<String>>>) -> Router {
    Router::new().route(
        "/prom/api/v1/query",
        get(move |headers: HeaderMap, axum::extract::RawQuery(query): axum::extract::RawQuery| async move {
            let auth = headers
                .get("authorization")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_owned();
            seen.lock().unwrap().push(auth.clone());
            if auth != format!("Bearer {TOKEN}") {
                return (axum::http::StatusCode::UNAUTHORIZED, "no".to_owned());
            }
            let body = if query.unwrap_or_default().contains("echo") {
                serde_json::json!({"status": "error", "errorType": "bad_data", "error": format!("cannot parse, you sent {auth}")})
            } else {
                serde_json::json!({"status": "success", "data": {"resultType": "vector", "result": [
                    {"metric": {"code": "500"}, "value": [1_796_215_675.615, "0.002"]},
                    {"metric": {"code": "503"}, "value": [1_796_215_675.615, "0.004"]}
                ]}})
            };
            (axum::http::StatusCode::OK, body.to_string())
        }),
    )
}

#[tokio::test]
async fn the_bearer_token_is_sent_and_never_shown() {
    within(async {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let (addr, _server) = serve_router(proxy(seen.clone())).await;
        let dir = tempfile::tempdir().expect("temp dir");
        let token_file = dir.path().join("token");
        std::fs::write(&token_file, format!("{TOKEN}\n")).expect("token file");
        let server = format!("bearer_token = {{ file = \"{}\" }}", token_file.display());
        let url = format!("http://{addr}/prom/");

        let config = config_with_check(
            &url,
            &server,
            "query = 'errors'\ncomparison = \"<\"\nthreshold = 0.01",
        );
        let (probes, check) = prober(&config);
        let p = probes.probe(&check, &vars()).await;
        assert_eq!(
            p,
            Probed {
                ok: true,
                value: r#"0.004 < 0.01 (worst of 2 series: {code="503"})"#.into(),
            }
        );
        assert_eq!(seen.lock().unwrap().as_slice(), [format!("Bearer {TOKEN}")]);

        let config = config_with_check(
            &url,
            &server,
            "query = 'echo'\ncomparison = \"<\"\nthreshold = 0.01",
        );
        let (probes, check) = prober(&config);
        let p = probes.probe(&check, &vars()).await;
        assert!(!p.ok);
        assert_eq!(
            p.value,
            "query echo failed: bad_data: cannot parse, you sent Bearer [redacted]"
        );

        // Without the token the proxy refuses.
        let config = config_with_check(
            &url,
            "",
            "query = 'errors'\ncomparison = \"<\"\nthreshold = 0.01",
        );
        let (probes, check) = prober(&config);
        let p = probes.probe(&check, &vars()).await;
        assert_eq!(
            p,
            Probed {
                ok: false,
                value: "Prometheus: unauthorised (no bearer token is configured)".into(),
            }
        );
        for shown in [format!("{p:?}"), format!("{:?}", config.prometheus())] {
            assert!(!shown.contains(TOKEN), "the token leaked: {shown}");
        }
    })
    .await;
}
