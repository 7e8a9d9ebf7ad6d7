//! The verification the sandbox adds to the config it writes, so that a
//! release to staging is proven after its rollout against the sandbox's
//! apps ([`super::apps`]): a health check on the app's pods and, when a
//! sandbox Prometheus runs, an error-rate check on what it scraped.
//!
//! The windows are sized for a demo. The apps are scraped every second and
//! the error ratio is taken over [`WINDOW`]: a faulty image (a fifth of its
//! requests fail) pushes the ratio past [`THRESHOLD`] once it has served
//! about a quarter of the window, so two failed probes a second apart end
//! the soak within about four seconds, well inside [`SOAK`]. Right after a
//! rollout the window still holds the previous image's samples: they
//! dilute a faulty release's errors (hence a short window), and a good
//! release after a faulty one would inherit errors for one window, which is
//! why the soak is longer than the window plus the tolerated failure. A
//! good release after a good one reads exactly 0.
//!
//! The base config stays the source: an environment that already has a
//! `[verify]` keeps it, and every `[prometheus.<name>]` it declares is
//! pointed at the sandbox Prometheus like any other outside URL.

use toml::{Table, Value};

use super::generated::Endpoints;
use crate::config::Config;

/// The environment whose releases the sandbox verifies.
pub const ENV: &str = "staging";
/// How long its checks must hold.
pub const SOAK: &str = "8s";
/// The `[prometheus.<name>]` the sandbox adds.
pub const PROMETHEUS: &str = "sandbox";
/// The health check's name.
pub const HEALTH_CHECK: &str = "health";
/// The error-rate check's name.
pub const ERROR_RATE_CHECK: &str = "error-rate";
/// The range the error ratio is computed over.
pub const WINDOW: &str = "5s";
/// The error ratio a release must stay below.
pub const THRESHOLD: f64 = 0.05;

/// The share of the namespace's requests answered 5xx over [`WINDOW`].
pub fn error_ratio_query() -> String {
    format!(
        "sum(rate(http_requests_total{{namespace=\"{{namespace}}\",code=~\"5..\"}}[{WINDOW}])) \
         / sum(rate(http_requests_total{{namespace=\"{{namespace}}\"}}[{WINDOW}]))"
    )
}

/// Adds `[prometheus.sandbox]` (when one runs) and staging's verification
/// to `doc`, the config being written.
pub fn add(doc: &mut Table, base: &Config, endpoints: &Endpoints) {
    let Some(apps) = &endpoints.apps else {
        return;
    };
    if let Some(url) = &endpoints.prometheus {
        let servers = doc
            .entry("prometheus")
            .or_insert_with(|| Value::Table(Table::new()));
        if let Value::Table(servers) = servers {
            for (_, server) in servers.iter_mut() {
                if let Value::Table(server) = server {
                    server.insert("url".into(), url.clone().into());
                    server.remove("bearer_token");
                }
            }
            servers.insert(
                PROMETHEUS.into(),
                Value::Table(table(&[("url", url.as_str().into())])),
            );
        }
    }
    let Some(Value::Table(env)) = doc.get_mut("environments").and_then(|e| e.get_mut(ENV)) else {
        return;
    };
    if env.contains_key("verify") {
        return;
    }
    let mut checks = vec![Value::Table(table(&[
        ("name", HEALTH_CHECK.into()),
        ("type", "http".into()),
        (
            "url",
            format!("{apps}/apps/{{namespace}}/{}/healthz", deployment(base)).into(),
        ),
        ("expect_status", 200.into()),
        ("body_contains", "ok".into()),
        ("interval", "1s".into()),
        ("timeout", "2s".into()),
        ("failures_tolerated", 1.into()),
    ]))];
    if endpoints.prometheus.is_some() {
        checks.push(Value::Table(table(&[
            ("name", ERROR_RATE_CHECK.into()),
            ("type", "prometheus".into()),
            ("prometheus", PROMETHEUS.into()),
            ("query", error_ratio_query().into()),
            ("comparison", "<".into()),
            ("threshold", THRESHOLD.into()),
            ("interval", "1s".into()),
            ("failures_tolerated", 1.into()),
        ])));
    }
    let verify = table(&[("soak", SOAK.into()), ("checks", Value::Array(checks))]);
    env.insert("verify".into(), Value::Table(verify));
}

/// The Deployment part of the health URL: `{app}` when every app runs a
/// Deployment of its own name (the check then follows whichever app was
/// deployed), else the first app's first Deployment.
fn deployment(base: &Config) -> String {
    let own = base
        .apps()
        .iter()
        .all(|a| a.deployments.iter().any(|d| d == a.name.as_str()));
    if own {
        return "{app}".to_owned();
    }
    base.apps()
        .iter()
        .find_map(|a| a.deployments.first().cloned())
        .unwrap_or_else(|| "{app}".to_owned())
}

fn table(entries: &[(&str, Value)]) -> Table {
    entries
        .iter()
        .map(|(k, v)| ((*k).to_owned(), v.clone()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn endpoints(prometheus: Option<&str>) -> Endpoints {
        Endpoints {
            kubernetes: "http://127.0.0.1:1".into(),
            registry: None,
            github: "http://127.0.0.1:2".into(),
            slack: None,
            discord: None,
            poll: std::time::Duration::from_millis(10),
            git: Default::default(),
            apps: Some("http://127.0.0.1:3".into()),
            prometheus: prometheus.map(str::to_owned),
        }
    }

    fn written(prometheus: Option<&str>) -> Table {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/config/gantry.toml");
        let base = crate::config::load(std::path::Path::new(path)).expect("the shipped config");
        let mut doc: Table = toml::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        add(&mut doc, &base, &endpoints(prometheus));
        doc
    }

    fn checks(doc: &Table) -> Vec<Table> {
        doc["environments"][ENV]["verify"]["checks"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c.as_table().unwrap().clone())
            .collect()
    }

    #[test]
    fn staging_gets_the_health_check_and_the_error_rate_check_on_the_sandbox_prometheus() {
        let doc = written(Some("http://127.0.0.1:4/"));
        assert_eq!(
            doc["prometheus"][PROMETHEUS]["url"].as_str(),
            Some("http://127.0.0.1:4/")
        );
        assert_eq!(
            doc["environments"][ENV]["verify"]["soak"].as_str(),
            Some(SOAK)
        );
        let checks = checks(&doc);
        assert_eq!(checks.len(), 2);
        assert_eq!(checks[0]["name"].as_str(), Some(HEALTH_CHECK));
        assert_eq!(
            checks[0]["url"].as_str(),
            Some("http://127.0.0.1:3/apps/{namespace}/{app}/healthz")
        );
        assert_eq!(checks[1]["prometheus"].as_str(), Some(PROMETHEUS));
        assert_eq!(
            checks[1]["query"].as_str(),
            Some(
                "sum(rate(http_requests_total{namespace=\"{namespace}\",code=~\"5..\"}[5s])) \
                 / sum(rate(http_requests_total{namespace=\"{namespace}\"}[5s]))"
            )
        );
        assert_eq!(checks[1]["comparison"].as_str(), Some("<"));
        assert_eq!(checks[1]["threshold"].as_float(), Some(THRESHOLD));
        // No other environment is verified.
        assert!(!doc["environments"]["prod"]
            .as_table()
            .unwrap()
            .contains_key("verify"));
    }

    #[test]
    fn without_prometheus_only_the_health_check_is_written() {
        let doc = written(None);
        assert!(!doc.contains_key("prometheus"));
        let names: Vec<_> = checks(&doc)
            .iter()
            .map(|c| c["name"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(names, [HEALTH_CHECK]);
    }
}
