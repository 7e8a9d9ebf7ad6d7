//! The sandbox's apps: one HTTP server on 127.0.0.1 that stands for every
//! pod the fake cluster runs, so that verification checks have something
//! real to probe.
//!
//! - `GET /apps/{namespace}/{deployment}/healthz` answers 200 `ok` while
//!   that Deployment exists and is available, 503 otherwise.
//! - `GET /metrics` is Prometheus text exposition: an
//!   `http_requests_total{namespace, app, code}` counter per Deployment and
//!   code (`200`, `500`). Each ready pod serves [`REQUESTS_PER_POD`] requests
//!   a second; pods running an image marked faulty answer
//!   [`FAULTY_ERROR_SHARE`] of them with 500, others none.
//!
//! The counters are integrated from the time elapsed between two reads,
//! at the rate the pods serve at the later read; nothing runs between reads.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use tokio::task::JoinHandle;

use super::kube::{ClusterView, Running};

/// Requests a second each ready pod serves.
pub const REQUESTS_PER_POD: f64 = 10.0;
/// The share of requests a pod on a faulty image answers with 500.
pub const FAULTY_ERROR_SHARE: f64 = 0.2;

/// A running apps server; dropping it stops it.
pub struct FakeApps {
    addr: SocketAddr,
    shared: Arc<Shared>,
    task: JoinHandle<()>,
}

impl Drop for FakeApps {
    fn drop(&mut self) {
        self.task.abort();
    }
}

struct Shared {
    cluster: ClusterView,
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    /// Image text (a digest) whose pods answer some requests with 500.
    faulty: Vec<String>,
    /// Requests served so far, by (namespace, Deployment).
    tallies: BTreeMap<(String, String), Tally>,
}

/// Requests one Deployment has served up to `at`.
#[derive(Debug, Clone, Copy)]
struct Tally {
    ok: f64,
    errors: f64,
    at: Instant,
}

impl Shared {
    /// Every change is whole under the lock, so a poisoned one is consistent.
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl FakeApps {
    /// Starts the server on a free port of 127.0.0.1, reading `cluster`.
    pub async fn start(cluster: ClusterView) -> std::io::Result<FakeApps> {
        let shared = Arc::new(Shared {
            cluster,
            inner: Mutex::new(Inner::default()),
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let router = axum::Router::new()
            .route("/apps/{namespace}/{deployment}/healthz", get(healthz))
            .route("/metrics", get(metrics))
            .with_state(shared.clone());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        Ok(FakeApps { addr, shared, task })
    }

    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The address it listens on (what Prometheus scrapes).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Pods whose image contains `text` (a digest) answer
    /// [`FAULTY_ERROR_SHARE`] of their requests with 500 from now on.
    pub fn mark_faulty(&self, text: &str) {
        self.shared.lock().faulty.push(text.to_owned());
    }

    /// The exposition text `/metrics` answers now.
    pub fn metrics(&self) -> String {
        self.shared.exposition(Instant::now())
    }
}

impl Shared {
    fn exposition(&self, now: Instant) -> String {
        let running = self.cluster.running();
        let mut inner = self.lock();
        let Inner { faulty, tallies } = &mut *inner;
        advance(tallies, &running, faulty, now);
        render(tallies)
    }
}

/// Brings every Deployment's tally up to `now` at the rates its ready pods
/// serve; a Deployment that is gone loses its series, a new one starts at 0.
fn advance(
    tallies: &mut BTreeMap<(String, String), Tally>,
    running: &[Running],
    faulty: &[String],
    now: Instant,
) {
    let mut next = BTreeMap::new();
    for r in running {
        let key = (r.namespace.clone(), r.name.clone());
        let mut tally = tallies.get(&key).copied().unwrap_or(Tally {
            ok: 0.0,
            errors: 0.0,
            at: now,
        });
        let seconds = now.saturating_duration_since(tally.at).as_secs_f64();
        for images in &r.ready_pods {
            let bad = images
                .iter()
                .any(|i| faulty.iter().any(|f| i.contains(f.as_str())));
            let share = if bad { FAULTY_ERROR_SHARE } else { 0.0 };
            tally.ok += seconds * REQUESTS_PER_POD * (1.0 - share);
            tally.errors += seconds * REQUESTS_PER_POD * share;
        }
        tally.at = tally.at.max(now);
        next.insert(key, tally);
    }
    *tallies = next;
}

fn render(tallies: &BTreeMap<(String, String), Tally>) -> String {
    let mut text = String::from(
        "# HELP http_requests_total HTTP requests served, by namespace, app and status code.\n\
         # TYPE http_requests_total counter\n",
    );
    for ((namespace, app), tally) in tallies {
        for (code, count) in [("200", tally.ok), ("500", tally.errors)] {
            text.push_str(&format!(
                "http_requests_total{{namespace=\"{}\",app=\"{}\",code=\"{code}\"}} {}\n",
                escape(namespace),
                escape(app),
                count.floor()
            ));
        }
    }
    text
}

/// A label value as the exposition format writes it.
fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

async fn healthz(
    State(shared): State<Arc<Shared>>,
    Path((namespace, deployment)): Path<(String, String)>,
) -> impl IntoResponse {
    match shared.cluster.deployment(&namespace, &deployment) {
        Some(r) if r.available => (StatusCode::OK, "ok".to_owned()),
        Some(_) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("deployment {namespace}/{deployment} is not available\n"),
        ),
        None => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("no deployment {namespace}/{deployment}\n"),
        ),
    }
}

async fn metrics(State(shared): State<Arc<Shared>>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        shared.exposition(Instant::now()),
    )
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn web(images: &[&str], available: bool) -> Running {
        Running {
            namespace: "staging".into(),
            name: "web".into(),
            available,
            ready_pods: images.iter().map(|i| vec![(*i).to_owned()]).collect(),
        }
    }

    fn counts(tallies: &BTreeMap<(String, String), Tally>) -> (f64, f64) {
        let t = tallies[&("staging".to_owned(), "web".to_owned())];
        (t.ok, t.errors)
    }

    #[test]
    fn counters_grow_with_time_at_the_pods_rate_and_a_faulty_image_errs_a_fifth() {
        let start = Instant::now();
        let faulty = vec!["sha256:bad".to_owned()];
        let mut tallies = BTreeMap::new();
        let good = [web(&["web@sha256:good"; 3], true)];
        advance(&mut tallies, &good, &faulty, start);
        assert_eq!(counts(&tallies), (0.0, 0.0));
        advance(
            &mut tallies,
            &good,
            &faulty,
            start + Duration::from_secs(10),
        );
        assert_eq!(counts(&tallies), (300.0, 0.0));
        // Mid-rollout: one pod of three runs the faulty image.
        let mixed = [web(
            &["web@sha256:good", "web@sha256:good", "web@sha256:bad"],
            true,
        )];
        advance(
            &mut tallies,
            &mixed,
            &faulty,
            start + Duration::from_secs(20),
        );
        let (ok, errors) = counts(&tallies);
        assert!((ok - 580.0).abs() < 1e-6 && (errors - 20.0).abs() < 1e-6);
        let bad = [web(&["web@sha256:bad"; 3], true)];
        advance(&mut tallies, &bad, &faulty, start + Duration::from_secs(30));
        let (ok, errors) = counts(&tallies);
        assert!((ok - 820.0).abs() < 1e-6 && (errors - 80.0).abs() < 1e-6);
        // Time never runs backwards for a counter.
        advance(&mut tallies, &bad, &faulty, start + Duration::from_secs(5));
        assert_eq!(counts(&tallies), (ok, errors));
    }

    #[test]
    fn the_exposition_has_help_type_and_both_codes_for_every_deployment() {
        let start = Instant::now();
        let mut tallies = BTreeMap::new();
        let good = [web(&["web@sha256:good"; 3], true)];
        advance(&mut tallies, &good, &[], start);
        advance(
            &mut tallies,
            &good,
            &[],
            start + Duration::from_millis(1500),
        );
        assert_eq!(
            render(&tallies),
            "# HELP http_requests_total HTTP requests served, by namespace, app and status code.\n\
             # TYPE http_requests_total counter\n\
             http_requests_total{namespace=\"staging\",app=\"web\",code=\"200\"} 45\n\
             http_requests_total{namespace=\"staging\",app=\"web\",code=\"500\"} 0\n"
        );
        // A Deployment that is gone has no series any more.
        advance(&mut tallies, &[], &[], start + Duration::from_secs(2));
        assert!(!render(&tallies).contains("http_requests_total{"));
    }
}
