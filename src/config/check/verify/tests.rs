//! `[prometheus.*]` and `verify` tables: a good one, and each rule broken once.

use std::time::Duration;

use crate::config::{parse, Comparison, Config, ConfigError, ProbeSpec};

/// A small valid config with one Prometheus server and a verified staging.
/// Lines matter: cases point at them with a `# <-` marker.
const BASE: &str = r#"[roles]
developer = "Writes code"

[clusters.sandbox]
context = "sandbox"

[prometheus.main]
url = "http://prometheus.monitoring:9090/"

[apps.web]
repo = "acme/web"
image = "registry.local:5000/acme/web"
deployments = ["web"]

[environments.staging]
cluster = "sandbox"
namespace = "staging"
requesters = ["developer"]

[environments.staging.verify]
soak = "10m"

[[environments.staging.verify.checks]]
name = "health"
type = "http"
url = "https://{app}.{env}.example.com/healthz?ns={namespace}"
body_contains = "ok"

[[environments.staging.verify.checks]]
name = "errors"
type = "prometheus"
prometheus = "main"
query = 'sum(rate(http_requests_total{namespace="{namespace}",code=~"5.."}[1m])) / sum(rate(http_requests_total{namespace="{namespace}"}[1m]))'
comparison = "<"
threshold = 0.01

[environments.prod]
cluster = "sandbox"
namespace = "prod"
requesters = ["developer"]
promote_from = "staging"
"#;

fn edit(from: &str, to: &str) -> String {
    assert!(BASE.contains(from), "base has no {from:?}");
    BASE.replacen(from, to, 1)
}

/// The base with staging's verify table holding no checks.
fn without_checks() -> String {
    let start = BASE
        .find("\n[[environments.staging.verify.checks]]")
        .unwrap();
    let end = BASE.find("\n[environments.prod]").unwrap();
    format!("{}\n{}", &BASE[..start], &BASE[end..])
}

fn marked_line(doc: &str) -> usize {
    let lines: Vec<usize> = doc
        .lines()
        .enumerate()
        .filter(|(_, l)| l.contains("# <-"))
        .map(|(i, _)| i + 1)
        .collect();
    assert_eq!(lines.len(), 1, "exactly one marker expected in\n{doc}");
    lines[0]
}

fn good(doc: &str) -> Config {
    parse(doc, "gantry.toml").unwrap_or_else(|e| panic!("{e}"))
}

fn refused(doc: &str) -> ConfigError {
    match parse(doc, "gantry.toml") {
        Ok(_) => panic!("should be refused:\n{doc}"),
        Err(e) => e,
    }
}

#[test]
fn a_verified_environment_loads_with_defaults_filled_in() {
    let c = good(BASE);
    let main = &c.prometheus()["main"];
    assert_eq!(main.url, "http://prometheus.monitoring:9090");
    assert_eq!(main.timeout, Duration::from_secs(10));
    assert!(main.bearer_token.is_none());

    let staging = c.env("staging").unwrap();
    assert!(!staging.require_verified);
    let verify = staging.verify.as_ref().expect("staging verifies");
    assert_eq!(verify.soak, Duration::from_secs(600));
    let names: Vec<&str> = verify.checks.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["health", "errors"]);

    let health = &verify.checks[0];
    assert_eq!(health.interval, Duration::from_secs(30));
    assert_eq!(health.failures_tolerated, 0);
    match &health.probe {
        ProbeSpec::Http {
            url,
            expect_status,
            body_contains,
            timeout,
        } => {
            assert_eq!(
                url,
                "https://{app}.{env}.example.com/healthz?ns={namespace}"
            );
            assert_eq!(*expect_status, 200);
            assert_eq!(body_contains.as_deref(), Some("ok"));
            assert_eq!(*timeout, Duration::from_secs(5));
        }
        other => panic!("an http probe: {other:?}"),
    }
    match &verify.checks[1].probe {
        ProbeSpec::Prometheus {
            server,
            query,
            comparison,
            threshold,
        } => {
            assert_eq!(server, "main");
            assert!(query.contains(r#"{namespace="{namespace}",code=~"5.."}"#));
            assert_eq!(*comparison, Comparison::Less);
            assert_eq!(*threshold, 0.01);
        }
        other => panic!("a prometheus probe: {other:?}"),
    }
    assert!(c.env("prod").unwrap().verify.is_none());
}

#[test]
fn every_key_can_be_set() {
    let doc = edit(
        "url = \"http://prometheus.monitoring:9090/\"",
        "url = \"https://prometheus.example.com/prom\"\nbearer_token = { env = \"PROM_TOKEN\" }\ntimeout = \"3s\"",
    )
    .replacen(
        "body_contains = \"ok\"",
        "body_contains = \"ok\"\nexpect_status = 204\ntimeout = \"2s\"\ninterval = \"1m\"\nfailures_tolerated = 2",
        1,
    )
    .replacen("threshold = 0.01", "threshold = 3", 1)
    .replacen("comparison = \"<\"", "comparison = \">=\"", 1)
    .replacen(
        "promote_from = \"staging\"",
        "promote_from = \"staging\"\nrequire_verified = true",
        1,
    );
    let c = good(&doc);
    let main = &c.prometheus()["main"];
    assert_eq!(main.timeout, Duration::from_secs(3));
    assert_eq!(
        main.bearer_token.as_ref().map(|s| s.describe()),
        Some("env PROM_TOKEN".to_owned())
    );
    assert!(c.env("prod").unwrap().require_verified);
    assert!(c
        .required_secrets()
        .iter()
        .any(|(k, s)| k == "prometheus.main.bearer_token" && s.describe() == "env PROM_TOKEN"));
    let checks = &c.env("staging").unwrap().verify.as_ref().unwrap().checks;
    assert_eq!(checks[0].interval, Duration::from_secs(60));
    assert_eq!(checks[0].failures_tolerated, 2);
    assert!(matches!(
        checks[0].probe,
        ProbeSpec::Http { expect_status: 204, timeout, .. } if timeout == Duration::from_secs(2)
    ));
    assert!(matches!(
        checks[1].probe,
        ProbeSpec::Prometheus { comparison: Comparison::GreaterOrEqual, threshold, .. } if threshold == 3.0
    ));
}

#[test]
fn each_comparison_is_read() {
    for (text, want) in [
        ("<", Comparison::Less),
        ("<=", Comparison::LessOrEqual),
        (">", Comparison::Greater),
        (">=", Comparison::GreaterOrEqual),
        ("==", Comparison::Equal),
        ("!=", Comparison::NotEqual),
    ] {
        let doc = edit("comparison = \"<\"", &format!("comparison = \"{text}\""));
        let c = good(&doc);
        let check = &c.env("staging").unwrap().verify.as_ref().unwrap().checks[1];
        assert!(
            matches!(check.probe, ProbeSpec::Prometheus { comparison, .. } if comparison == want && comparison.symbol() == text),
            "{text}"
        );
    }
}

/// (case, document with a `# <-` marker on the expected line, key, message part)
fn cases() -> Vec<(&'static str, String, &'static str, &'static str)> {
    vec![
        // [prometheus.<name>]
        ("prometheus without url", edit("url = \"http://prometheus.monitoring:9090/\"\n", "timeout = \"5s\"\n").replacen("[prometheus.main]", "[prometheus.main] # <-", 1), "prometheus.main.url", "give the server's base URL"),
        ("prometheus url not http", edit("url = \"http://prometheus.monitoring:9090/\"", "url = \"ftp://prometheus:9090\" # <-"), "prometheus.main.url", "is not an http(s) URL"),
        ("prometheus token over plain http", edit("url = \"http://prometheus.monitoring:9090/\"", "url = \"http://prometheus.monitoring:9090/\" # <-\nbearer_token = { env = \"PROM_TOKEN\" }"), "prometheus.main.url", "would send credentials in the clear"),
        ("prometheus token inline", edit("url = \"http://prometheus.monitoring:9090/\"", "url = \"https://prometheus.example.com\"\nbearer_token = \"hunter2\" # <-"), "prometheus.main.bearer_token", "never written inline"),
        ("prometheus credentials in url", edit("url = \"http://prometheus.monitoring:9090/\"", "url = \"https://admin:hunter2@prometheus.example.com\" # <-"), "prometheus.main.url", "credentials in a URL are not allowed"),
        ("prometheus bad timeout", edit("url = \"http://prometheus.monitoring:9090/\"", "url = \"http://prometheus.monitoring:9090/\"\ntimeout = \"quick\" # <-"), "prometheus.main.timeout", "`quick` is not a duration"),
        ("prometheus unknown key", edit("url = \"http://prometheus.monitoring:9090/\"", "url = \"http://prometheus.monitoring:9090/\"\ntoken = { env = \"T\" } # <-"), "prometheus.main.token", "unknown field `token`"),
        ("prometheus bad name", edit("[prometheus.main]", "[prometheus.Main] # <-").replace("prometheus = \"main\"", "prometheus = \"Main\""), "prometheus.Main", "must use a-z, 0-9 and `-`"),
        // verify
        ("verify without soak", edit("soak = \"10m\"\n", "").replacen("[environments.staging.verify]", "[environments.staging.verify] # <-", 1), "environments.staging.verify.soak", "verify needs soak"),
        ("bad soak", edit("soak = \"10m\"", "soak = \"a while\" # <-"), "environments.staging.verify.soak", "`a while` is not a duration"),
        ("zero checks", without_checks().replacen("[environments.staging.verify]", "[environments.staging.verify] # <-", 1), "environments.staging.verify.checks", "verify has no checks"),
        ("soak shorter than an interval", edit("soak = \"10m\"", "soak = \"1m\" # <-").replacen("body_contains = \"ok\"", "body_contains = \"ok\"\ninterval = \"2m\"", 1), "environments.staging.verify.soak", "soak 1m is shorter than the interval 2m of check `health`"),
        ("unknown verify key", edit("soak = \"10m\"", "soak = \"10m\"\nsoak_time = \"1m\" # <-"), "environments.staging.verify.soak_time", "unknown field `soak_time`"),
        ("require_verified without promote_from", edit("requesters = [\"developer\"]\n\n[environments.staging.verify]", "requesters = [\"developer\"]\nrequire_verified = true # <-\n\n[environments.staging.verify]"), "environments.staging.require_verified", "has no promote_from"),
        ("require_verified from an unverified env", edit("promote_from = \"staging\"", "promote_from = \"dev\"\nrequire_verified = true # <-") + "\n[environments.dev]\ncluster = \"sandbox\"\nnamespace = \"dev\"\n", "environments.prod.require_verified", "dev (promote_from) has no verify table"),
        // checks, both types
        ("check without name", edit("name = \"health\"\n", "").replacen("[[environments.staging.verify.checks]]\ntype = \"http\"", "[[environments.staging.verify.checks]] # <-\ntype = \"http\"", 1), "environments.staging.verify.checks[0].name", "missing field `name`"),
        ("duplicate check name", edit("name = \"errors\"", "name = \"health\" # <-"), "environments.staging.verify.checks[1].name", "two checks are named `health`"),
        ("check name with a control character", edit("name = \"health\"", "name = \"heal\\u0007th\" # <-"), "environments.staging.verify.checks[0].name", "printable ASCII"),
        ("check name too long", edit("name = \"health\"", &format!("name = \"{}\" # <-", "h".repeat(65))), "environments.staging.verify.checks[0].name", "1 to 64"),
        ("unknown check type", edit("type = \"http\"", "type = \"tcp\" # <-"), "environments.staging.verify.checks[0].type", "unknown variant `tcp`"),
        ("bad interval", edit("type = \"http\"", "type = \"http\"\ninterval = \"0s\" # <-"), "environments.staging.verify.checks[0].interval", "longer than zero"),
        ("unknown check key", edit("type = \"http\"", "type = \"http\"\nretries = 3 # <-"), "environments.staging.verify.checks[0].retries", "unknown field `retries`"),
        // http checks
        ("http without url", edit("url = \"https://{app}.{env}.example.com/healthz?ns={namespace}\"\n", "").replacen("[[environments.staging.verify.checks]]\nname = \"health\"", "[[environments.staging.verify.checks]] # <-\nname = \"health\"", 1), "environments.staging.verify.checks[0].url", "an http check needs url"),
        ("http url unknown placeholder", edit("healthz?ns={namespace}\"", "healthz?ns={branch}\" # <-"), "environments.staging.verify.checks[0].url", "unknown placeholder `{branch}`; use {app}, {env} or {namespace}"),
        ("http url stray brace", edit("healthz?ns={namespace}\"", "healthz?ns={namespace\" # <-"), "environments.staging.verify.checks[0].url", "unbalanced"),
        ("http url not http", edit("url = \"https://{app}", "url = \"file://{app}").replacen("healthz?ns={namespace}\"", "healthz?ns={namespace}\" # <-", 1), "environments.staging.verify.checks[0].url", "is not an http(s) URL"),
        ("http url with credentials", edit("url = \"https://{app}", "url = \"https://user:hunter2@{app}").replacen("healthz?ns={namespace}\"", "healthz?ns={namespace}\" # <-", 1), "environments.staging.verify.checks[0].url", "credentials in a URL are not allowed"),
        ("http bad status", edit("body_contains = \"ok\"", "body_contains = \"ok\"\nexpect_status = 42 # <-"), "environments.staging.verify.checks[0].expect_status", "42 is not an HTTP status"),
        ("http empty body_contains", edit("body_contains = \"ok\"", "body_contains = \"\" # <-"), "environments.staging.verify.checks[0].body_contains", "body_contains is empty"),
        ("http with a query", edit("body_contains = \"ok\"", "body_contains = \"ok\"\nquery = \"up\" # <-"), "environments.staging.verify.checks[0].query", "query applies only to type = \"prometheus\" checks"),
        ("http with a threshold", edit("body_contains = \"ok\"", "body_contains = \"ok\"\nthreshold = 1 # <-"), "environments.staging.verify.checks[0].threshold", "threshold applies only to type = \"prometheus\" checks"),
        // prometheus checks
        ("prometheus with body_contains", edit("threshold = 0.01", "threshold = 0.01\nbody_contains = \"ok\" # <-"), "environments.staging.verify.checks[1].body_contains", "body_contains applies only to type = \"http\" checks"),
        ("prometheus with a url", edit("threshold = 0.01", "threshold = 0.01\nurl = \"http://x\" # <-"), "environments.staging.verify.checks[1].url", "url applies only to type = \"http\" checks"),
        ("prometheus with a timeout", edit("threshold = 0.01", "threshold = 0.01\ntimeout = \"1s\" # <-"), "environments.staging.verify.checks[1].timeout", "timeout applies only to type = \"http\" checks"),
        ("prometheus without server", edit("prometheus = \"main\"\n", "").replacen("[[environments.staging.verify.checks]]\nname = \"errors\"", "[[environments.staging.verify.checks]] # <-\nname = \"errors\"", 1), "environments.staging.verify.checks[1].prometheus", "a prometheus check needs prometheus"),
        ("unknown prometheus server", edit("prometheus = \"main\"", "prometheus = \"thanos\" # <-"), "environments.staging.verify.checks[1].prometheus", "unknown Prometheus server `thanos`; declare it as [prometheus.<name>] (declared: main)"),
        ("prometheus without query", edit("query = 'sum", "# query = 'sum").replacen("[[environments.staging.verify.checks]]\nname = \"errors\"", "[[environments.staging.verify.checks]] # <-\nname = \"errors\"", 1), "environments.staging.verify.checks[1].query", "a prometheus check needs query"),
        ("query unknown placeholder", edit("namespace=\"{namespace}\",code", "namespace=\"{ns}\",code").replacen("[1m]))'\n", "[1m]))' # <-\n", 1), "environments.staging.verify.checks[1].query", "unknown placeholder `{ns}`"),
        ("empty query", edit("query = 'sum", "query = ' ' # <-\n# 'sum"), "environments.staging.verify.checks[1].query", "query is empty"),
        ("prometheus without comparison", edit("comparison = \"<\"\n", "").replacen("[[environments.staging.verify.checks]]\nname = \"errors\"", "[[environments.staging.verify.checks]] # <-\nname = \"errors\"", 1), "environments.staging.verify.checks[1].comparison", "a prometheus check needs comparison"),
        ("bad comparison", edit("comparison = \"<\"", "comparison = \"lt\" # <-"), "environments.staging.verify.checks[1].comparison", "`lt` is not a comparison; use one of < <= > >= == !="),
        ("comparison written with =", edit("comparison = \"<\"", "comparison = \"=\" # <-"), "environments.staging.verify.checks[1].comparison", "use one of < <= > >= == !="),
        ("prometheus without threshold", edit("threshold = 0.01\n", "").replacen("[[environments.staging.verify.checks]]\nname = \"errors\"", "[[environments.staging.verify.checks]] # <-\nname = \"errors\"", 1), "environments.staging.verify.checks[1].threshold", "a prometheus check needs threshold"),
        ("threshold not a number", edit("threshold = 0.01", "threshold = \"0.01\" # <-"), "environments.staging.verify.checks[1].threshold", "invalid type"),
        ("threshold nan", edit("threshold = 0.01", "threshold = nan # <-"), "environments.staging.verify.checks[1].threshold", "finite number"),
    ]
}

#[test]
fn each_rule_names_file_line_and_key() {
    let mut failures = Vec::new();
    for (name, doc, key, part) in cases() {
        let line = marked_line(&doc);
        let err = refused(&doc);
        let want_prefix = format!("gantry.toml:{line}: {key}: ");
        let shown = err.to_string();
        if !shown.starts_with(&want_prefix) || !shown.contains(part) {
            failures.push(format!(
                "{name}:\n  want {want_prefix}…{part}…\n  got  {shown}"
            ));
        }
        assert!(
            !shown.contains("hunter2"),
            "{name}: a secret leaked: {shown}"
        );
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
