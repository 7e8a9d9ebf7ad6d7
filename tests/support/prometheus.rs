//! A real Prometheus for tests: Debian's `prometheus` (2.42) on a free
//! 127.0.0.1 port with its own storage, scraping a small exporter whose
//! values the test sets.
//!
//! Without the binary a test fails under `CI=true`, saying what to install,
//! and is skipped with a printed reason elsewhere: [`TestPrometheus::start`]
//! returns `None`.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::routing::get;
use axum::Router;

use super::{binaries, serve_router, Watched};

/// What to install when Prometheus is missing.
pub const INSTALL: &str = "install prometheus (apt-get install -y prometheus)";

/// Gauges served in the Prometheus text format at `/metrics`.
#[derive(Clone, Default)]
pub struct Gauges(Arc<Mutex<BTreeMap<String, f64>>>);

impl Gauges {
    /// Sets gauge `series` (a metric name, perhaps with labels such as
    /// `ratio{namespace="dev"}`) to `value`.
    pub fn set(&self, name: &str, value: f64) {
        self.0.lock().unwrap().insert(name.to_owned(), value);
    }

    fn render(&self) -> String {
        let mut out = String::new();
        let mut typed = Vec::new();
        for (series, value) in self.0.lock().unwrap().iter() {
            let name = series.split('{').next().unwrap_or(series);
            if !typed.contains(&name) {
                out.push_str(&format!("# TYPE {name} gauge\n"));
                typed.push(name);
            }
            out.push_str(&format!("{series} {value}\n"));
        }
        out
    }
}

/// A `prometheus` process and the exporter it scrapes; killed when dropped.
pub struct TestPrometheus {
    child: Option<Child>,
    addr: SocketAddr,
    dir: tempfile::TempDir,
    /// The exporter's values.
    pub gauges: Gauges,
    _exporter: Watched,
}

impl TestPrometheus {
    /// Starts the exporter and Prometheus scraping it every second, and
    /// waits until Prometheus is ready; `None` when skipped.
    pub async fn start() -> Option<TestPrometheus> {
        let binary = binaries::require("prometheus", INSTALL)?;
        gantry::tls::install_crypto();
        let gauges = Gauges::default();
        let served = gauges.clone();
        let exporter = Router::new().route(
            "/metrics",
            get(move || {
                let body = served.render();
                async move { ([("content-type", "text/plain; version=0.0.4")], body) }
            }),
        );
        let (exporter_addr, exporter) = serve_router(exporter).await;
        let dir = tempfile::tempdir().expect("temp dir");
        // scrape_timeout may not exceed scrape_interval.
        let config = format!(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\n\
             scrape_configs:\n  - job_name: exporter\n    static_configs:\n      - targets: ['{exporter_addr}']\n"
        );
        let config_path = dir.path().join("prometheus.yml");
        std::fs::write(&config_path, config).expect("prometheus config");
        let mut prometheus = TestPrometheus {
            child: None,
            addr: exporter_addr,
            dir,
            gauges,
            _exporter: exporter,
        };
        // A port picked here can be taken before Prometheus binds it: try again then.
        for attempt in 0..5 {
            let addr: SocketAddr = format!("127.0.0.1:{}", binaries::free_port())
                .parse()
                .unwrap();
            let log = prometheus
                .dir
                .path()
                .join(format!("prometheus-{attempt}.log"));
            let child = Command::new(&binary)
                .arg(format!("--config.file={}", config_path.display()))
                .arg(format!(
                    "--storage.tsdb.path={}",
                    prometheus.dir.path().join("data").display()
                ))
                .arg(format!("--web.listen-address={addr}"))
                .arg("--log.level=warn")
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(std::fs::File::create(&log).expect("log file"))
                .spawn()
                .expect("prometheus starts");
            prometheus.child = Some(child);
            prometheus.addr = addr;
            if prometheus.wait_ready(&log).await {
                return Some(prometheus);
            }
            prometheus.stop();
        }
        panic!("prometheus did not start; see its log above");
    }

    /// Waits (bounded, 60 s) for `GET /-/ready` to answer 200; false if the
    /// process exited first.
    async fn wait_ready(&mut self, log: &std::path::Path) -> bool {
        let client = reqwest::Client::new();
        let url = format!("http://{}/-/ready", self.addr);
        for _ in 0..600 {
            if let Some(child) = self.child.as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    let err = std::fs::read_to_string(log).unwrap_or_default();
                    eprintln!("prometheus exited with {status}: {err}");
                    return false;
                }
            }
            if let Ok(resp) = client.get(&url).send().await {
                if resp.status() == 200 {
                    return true;
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!(
            "prometheus did not become ready on {} within 60 s",
            self.addr
        );
    }

    /// `http://127.0.0.1:port`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The sync point after a gauge changes: queries Prometheus (bounded,
    /// 60 s) until `query` gives one sample whose value satisfies `ready`,
    /// i.e. until Prometheus has scraped the new value.
    pub async fn wait_for_sample(&self, query: &str, ready: impl Fn(f64) -> bool) {
        let client = reqwest::Client::new();
        let url = format!("{}/api/v1/query", self.url());
        let mut last = String::from("no answer");
        for _ in 0..600 {
            if let Ok(resp) = client.get(&url).query(&[("query", query)]).send().await {
                let body: serde_json::Value = resp.json().await.unwrap_or_default();
                let value = body["data"]["result"][0]["value"][1]
                    .as_str()
                    .and_then(|v| v.parse::<f64>().ok());
                if value.is_some_and(&ready) {
                    return;
                }
                last = body.to_string();
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("Prometheus never showed the expected sample for {query} within 60 s; last answer: {last}");
    }

    /// Kills the process (SIGKILL) and reaps it.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for TestPrometheus {
    fn drop(&mut self) {
        self.stop();
    }
}
