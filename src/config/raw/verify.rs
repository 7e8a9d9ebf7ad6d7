//! `[prometheus.*]` and `[environments.*.verify]` as written.

use serde::Deserialize;

use crate::config::secret::SecretRef;

/// `[prometheus.<name>]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawPrometheus {
    /// Base URL, http(s); queries go to `<url>/api/v1/query`. Required.
    pub url: Option<String>,
    /// Token sent as `Authorization: Bearer …`. Default: none.
    pub bearer_token: Option<SecretRef>,
    /// Timeout of each query. Default: `10s`.
    #[serde(default = "prometheus_timeout")]
    pub timeout: String,
}

/// `[environments.<name>.verify]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawVerify {
    /// How long every check must hold after a rollout. Required.
    pub soak: Option<String>,
    /// The checks. Required: at least one.
    #[serde(default)]
    pub checks: Vec<RawCheck>,
}

/// `[[environments.<name>.verify.checks]]`; which keys apply depends on `type`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawCheck {
    /// Name shown in chat and the audit trail, unique in the environment. Required.
    pub name: String,
    /// `http` or `prometheus`. Required.
    #[serde(rename = "type")]
    pub kind: RawCheckKind,
    /// Time between two probes. Default: `30s`.
    #[serde(default = "check_interval")]
    pub interval: String,
    /// Failed probes in a row that are tolerated. Default: 0.
    #[serde(default)]
    pub failures_tolerated: u32,
    /// URL to GET, with `{app}`, `{env}`, `{namespace}` (http). Required for http.
    pub url: Option<String>,
    /// The status that passes (http). Default: 200.
    pub expect_status: Option<u16>,
    /// Text the body must contain (http). Default: none.
    pub body_contains: Option<String>,
    /// Timeout of each probe (http). Default: `5s`.
    pub timeout: Option<String>,
    /// The `[prometheus.<name>]` to ask (prometheus). Required for prometheus.
    pub prometheus: Option<String>,
    /// PromQL instant query with `{app}`, `{env}`, `{namespace}`
    /// (prometheus). Required for prometheus.
    pub query: Option<String>,
    /// `<`, `<=`, `>`, `>=`, `==` or `!=` (prometheus). Required for prometheus.
    pub comparison: Option<String>,
    /// The number the value is compared with (prometheus). Required for prometheus.
    pub threshold: Option<f64>,
}

/// A check's `type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum RawCheckKind {
    /// An HTTP GET.
    Http,
    /// A Prometheus instant query.
    Prometheus,
}

fn prometheus_timeout() -> String {
    "10s".into()
}
fn check_interval() -> String {
    "30s".into()
}
