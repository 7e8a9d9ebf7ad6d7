//! HTTP verification checks against real local servers, through the
//! production prober built from a parsed config.

mod support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::Path;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use gantry::adapters::probe::Probes;
use gantry::config::{self, Config};
use gantry::engine::ports::ProbeVars;
use gantry::engine::{Probed, Prober};
use support::{serve_router, within};

/// A config whose `staging` environment verifies with one http check.
fn config_with_check(check: &str) -> Config {
    let text = format!(
        r#"[clusters.local]

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
name = "health"
type = "http"
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

/// Probes the staging check of a config with `check`'s keys.
async fn probe(check: &str) -> Probed {
    let config = config_with_check(check);
    let probes = Probes::from_config(&config).expect("the prober builds");
    let check = &config
        .env("staging")
        .unwrap()
        .verify
        .as_ref()
        .unwrap()
        .checks[0];
    probes.probe(check, &vars()).await
}

/// `/health` (recording each hit in `hits`), `/down` and `/apps/…`.
fn site(hits: Arc<Mutex<Vec<String>>>) -> Router {
    Router::new()
        .route(
            "/health",
            get(move || async move {
                hits.lock().unwrap().push("/health".into());
                "status: ok\n"
            }),
        )
        .route(
            "/down",
            get(|| async { (StatusCode::SERVICE_UNAVAILABLE, "maintenance") }),
        )
        .route(
            "/apps/{app}/{env}/{namespace}",
            get(
                |Path((app, env, ns)): Path<(String, String, String)>| async move {
                    format!("app={app} env={env} namespace={ns}")
                },
            ),
        )
}

#[tokio::test]
async fn a_200_passes_and_a_503_fails() {
    within(async {
        let (addr, _server) = serve_router(site(Arc::default())).await;
        let ok = probe(&format!("url = \"http://{addr}/health\"")).await;
        assert_eq!(
            ok,
            Probed {
                ok: true,
                value: "status 200".into()
            }
        );

        let down = probe(&format!("url = \"http://{addr}/down\"")).await;
        assert_eq!(
            down,
            Probed {
                ok: false,
                value: "status 503, expected 200".into()
            }
        );

        let expected = probe(&format!(
            "url = \"http://{addr}/down\"\nexpect_status = 503"
        ))
        .await;
        assert!(expected.ok, "{expected:?}");
    })
    .await;
}

#[tokio::test]
async fn body_contains_passes_and_fails() {
    within(async {
        let (addr, _server) = serve_router(site(Arc::default())).await;
        let has = probe(&format!(
            "url = \"http://{addr}/health\"\nbody_contains = \"ok\""
        ))
        .await;
        assert_eq!(
            has,
            Probed {
                ok: true,
                value: "status 200, body has \"ok\"".into()
            }
        );
        let lacks = probe(&format!(
            "url = \"http://{addr}/health\"\nbody_contains = \"ready\""
        ))
        .await;
        assert_eq!(
            lacks,
            Probed {
                ok: false,
                value: "status 200, body lacks \"ready\"".into()
            }
        );
    })
    .await;
}

#[tokio::test]
async fn the_url_is_filled_from_the_release() {
    within(async {
        let (addr, _server) = serve_router(site(Arc::default())).await;
        let p = probe(&format!(
            "url = \"http://{addr}/apps/{{app}}/{{env}}/{{namespace}}\"\nbody_contains = \"app=web env=staging namespace=staging\""
        ))
        .await;
        assert!(p.ok, "{p:?}");
    })
    .await;
}

#[tokio::test]
async fn a_redirect_to_another_host_is_not_followed() {
    within(async {
        let other_hits = Arc::new(Mutex::new(Vec::new()));
        let (other, _other_server) = serve_router(site(other_hits.clone())).await;
        let target = format!("http://localhost:{}/health", other.port());
        let redirecting = Router::new().route(
            "/moved",
            get(move || {
                let target = target.clone();
                async move { (StatusCode::FOUND, [(header::LOCATION, target)]) }
            }),
        );
        let (addr, _server) = serve_router(redirecting).await;
        let p = probe(&format!(
            "url = \"http://{addr}/moved\"\nbody_contains = \"ok\""
        ))
        .await;
        assert_eq!(
            p,
            Probed {
                ok: false,
                value: format!(
                    "status 302, expected 200: redirect to localhost:{} not followed",
                    other.port()
                ),
            }
        );
        assert!(
            other_hits.lock().unwrap().is_empty(),
            "the redirect target was requested: {:?}",
            other_hits.lock().unwrap()
        );
    })
    .await;
}

/// `head`, then an endless body of `x`s in 64 KiB chunks.
fn endless(head: &'static str) -> impl IntoResponse {
    let chunk = Bytes::from(vec![b'x'; 64 * 1024]);
    let first = futures::stream::once(async move { Ok::<_, std::io::Error>(Bytes::from(head)) });
    let rest = futures::stream::repeat_with(move || Ok::<_, std::io::Error>(chunk.clone()));
    Body::from_stream(futures::StreamExt::chain(first, rest))
}

#[tokio::test]
async fn an_endless_body_is_read_only_up_to_the_cap() {
    within(async {
        let router = Router::new()
            .route("/big-ok", get(|| async { endless("ok ") }))
            .route("/big", get(|| async { endless("") }));
        let (addr, _server) = serve_router(router).await;

        // The body never ends, so a probe that read it all would time out;
        // the timeout is far beyond what 64 KiB takes on a busy machine.
        let p = probe(&format!(
            "url = \"http://{addr}/big-ok\"\nbody_contains = \"ok\"\ntimeout = \"60s\""
        ))
        .await;
        assert_eq!(
            p,
            Probed {
                ok: true,
                value: "status 200, body has \"ok\"".into()
            }
        );

        let p = probe(&format!(
            "url = \"http://{addr}/big\"\nbody_contains = \"needle\"\ntimeout = \"60s\""
        ))
        .await;
        assert_eq!(
            p,
            Probed {
                ok: false,
                value: "status 200, body lacks \"needle\" in its first 64 KiB".into(),
            }
        );
    })
    .await;
}

#[tokio::test]
async fn a_slow_server_times_out() {
    within(async {
        let router = Router::new().route(
            "/slow",
            get(|| async {
                tokio::time::sleep(Duration::from_secs(300)).await;
                "late"
            }),
        );
        let (addr, _server) = serve_router(router).await;
        let p = probe(&format!("url = \"http://{addr}/slow\"\ntimeout = \"1s\"")).await;
        assert_eq!(
            p,
            Probed {
                ok: false,
                value: "timed out after 1s".into()
            }
        );
    })
    .await;
}

#[tokio::test]
async fn a_closed_port_is_unreachable() {
    within(async {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
        let addr = listener.local_addr().expect("its address");
        drop(listener);
        let p = probe(&format!("url = \"http://{addr}/health\"")).await;
        assert_eq!(
            p,
            Probed {
                ok: false,
                value: "unreachable: connection refused".into()
            }
        );
    })
    .await;
}
