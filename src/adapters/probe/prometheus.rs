//! Prometheus checks: one instant query (`GET <url>/api/v1/query`), its
//! value compared with the check's threshold. docs/prometheus.md has the
//! wire facts and the rules.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;

use super::{fail, pass, read_capped, timed_out, why};
use crate::config::{Comparison, Secret};
use crate::engine::ports::Probed;
use crate::names::escape_for_display;

/// Largest answer read; a query that returns more is too broad to judge.
pub const ANSWER_CAP: usize = 1024 * 1024;

/// Longest piece of server text (an error, a label set) put in a value.
const SHOWN_CAP: usize = 300;

/// A configured server.
pub(super) struct Server {
    /// Base URL without a trailing `/`.
    pub base: String,
    /// Sent as `Authorization: Bearer …`.
    pub token: Option<Secret>,
    /// Per-query timeout.
    pub timeout: Duration,
}

/// Queries `server` and judges the answer.
pub(super) async fn probe(
    client: &reqwest::Client,
    server: &Server,
    query: &str,
    comparison: Comparison,
    threshold: f64,
) -> Probed {
    let rule = Rule {
        query,
        comparison,
        threshold,
    };
    match tokio::time::timeout(server.timeout, ask(client, server, rule)).await {
        Ok(probed) => probed,
        Err(_) => fail(format!(
            "Prometheus {}; query {}",
            timed_out(server.timeout),
            shown(query)
        )),
    }
}

#[derive(Debug, Clone, Copy)]
struct Rule<'a> {
    query: &'a str,
    comparison: Comparison,
    threshold: f64,
}

async fn ask(client: &reqwest::Client, server: &Server, rule: Rule<'_>) -> Probed {
    let mut url = match reqwest::Url::parse(&format!("{}/api/v1/query", server.base)) {
        Ok(u) => u,
        Err(e) => return fail(format!("bad Prometheus URL: {e}")),
    };
    url.query_pairs_mut().append_pair("query", rule.query);
    let mut request = client.get(url);
    if let Some(token) = &server.token {
        match reqwest::header::HeaderValue::from_str(&format!("Bearer {}", token.expose())) {
            Ok(mut value) => {
                value.set_sensitive(true);
                request = request.header(reqwest::header::AUTHORIZATION, value);
            }
            Err(_) => return fail("the bearer token is not a valid header value".into()),
        }
    }
    let mut resp = match request.send().await {
        Ok(r) => r,
        Err(e) => return fail(format!("Prometheus {}", why(&e, server.timeout))),
    };
    let status = resp.status().as_u16();
    match status {
        401 if server.token.is_some() => {
            return fail("Prometheus: unauthorised (the bearer token was refused)".into())
        }
        401 => return fail("Prometheus: unauthorised (no bearer token is configured)".into()),
        403 => return fail("Prometheus: forbidden".into()),
        _ => {}
    }
    let body = match read_capped(&mut resp, ANSWER_CAP).await {
        Ok((_, true)) => {
            return fail(format!(
                "Prometheus's answer is over {} KiB; narrow the query {}",
                ANSWER_CAP / 1024,
                shown(rule.query)
            ))
        }
        Ok((body, false)) => body,
        Err(e) => return fail(format!("Prometheus {}", why(&e, server.timeout))),
    };
    judge(status, &body, rule)
}

/// The documented envelope: `status`, then `data` or `errorType`/`error`.
#[derive(Debug, Deserialize)]
struct Envelope {
    status: String,
    data: Option<Data>,
    #[serde(rename = "errorType")]
    error_type: Option<String>,
    error: Option<String>,
}

/// `data`: `resultType` names the shape of `result`.
#[derive(Debug, Deserialize)]
#[serde(tag = "resultType", content = "result", rename_all = "lowercase")]
enum Data {
    Vector(Vec<Series>),
    Scalar(Sample),
    Matrix(#[allow(dead_code)] serde::de::IgnoredAny),
    String(#[allow(dead_code)] serde::de::IgnoredAny),
}

/// `[<unix time>, "<value>"]`: the value is a string, as Go writes floats
/// (`"0.5"`, `"NaN"`, `"+Inf"`).
#[derive(Debug, Deserialize)]
struct Sample(#[allow(dead_code)] f64, String);

#[derive(Debug, Deserialize)]
struct Series {
    #[serde(default)]
    metric: BTreeMap<String, String>,
    value: Option<Sample>,
}

/// Judges an answer's status and body.
fn judge(status: u16, body: &[u8], rule: Rule<'_>) -> Probed {
    let envelope: Envelope = match serde_json::from_slice(body) {
        Ok(e) => e,
        Err(_) if !(200..300).contains(&status) => {
            return fail(format!("Prometheus answered HTTP {status}"))
        }
        Err(e) => return fail(format!("Prometheus's answer is not its JSON: {e}")),
    };
    if envelope.status != "success" {
        return fail(format!(
            "query {} failed: {}: {}",
            shown(rule.query),
            shown(envelope.error_type.as_deref().unwrap_or("unknown")),
            shown(envelope.error.as_deref().unwrap_or("(no error text)"))
        ));
    }
    let samples: Vec<(String, &str)> = match &envelope.data {
        Some(Data::Scalar(sample)) => vec![(String::new(), sample.1.as_str())],
        Some(Data::Vector(series)) => {
            let mut out = Vec::new();
            for s in series {
                let Some(sample) = &s.value else {
                    return fail(format!(
                        "query {} gives a sample that is not a number (a histogram?)",
                        shown(rule.query)
                    ));
                };
                out.push((labels(&s.metric), sample.1.as_str()));
            }
            out
        }
        Some(Data::Matrix(_)) => {
            return fail(format!(
            "query {} gives a range vector; use an instant vector or a scalar, e.g. rate(…[5m])",
            shown(rule.query)
        ))
        }
        Some(Data::String(_)) => {
            return fail(format!(
                "query {} gives a string, not a number",
                shown(rule.query)
            ))
        }
        None => return fail("Prometheus's answer has no data".into()),
    };
    compare(&samples, rule)
}

/// Compares the worst sample: the largest for `<`/`<=`, the smallest for
/// `>`/`>=`, the first that fails for `==`/`!=`. Every series must pass.
fn compare(samples: &[(String, &str)], rule: Rule<'_>) -> Probed {
    if samples.is_empty() {
        return fail(format!("no series for query {}", shown(rule.query)));
    }
    let mut parsed = Vec::with_capacity(samples.len());
    for (labels, text) in samples {
        let value: f64 = match text.parse() {
            Ok(v) => v,
            Err(_) => return fail(format!("`{}` is not a number", shown(text))),
        };
        if value.is_nan() {
            return fail(format!(
                "NaN{labels} never passes (0/0 when there is no traffic?); query {}",
                shown(rule.query)
            ));
        }
        parsed.push((labels.as_str(), value));
    }
    let worst = match rule.comparison {
        Comparison::Less | Comparison::LessOrEqual => {
            parsed.iter().max_by(|a, b| a.1.total_cmp(&b.1))
        }
        Comparison::Greater | Comparison::GreaterOrEqual => {
            parsed.iter().min_by(|a, b| a.1.total_cmp(&b.1))
        }
        Comparison::Equal | Comparison::NotEqual => parsed
            .iter()
            .find(|s| !rule.comparison.holds(s.1, rule.threshold))
            .or(parsed.first()),
    };
    // `parsed` has as many entries as `samples`, which is not empty.
    let Some((labels, value)) = worst else {
        return fail(format!("no series for query {}", shown(rule.query)));
    };
    let symbol = rule.comparison.symbol();
    let series = if parsed.len() > 1 {
        format!(" (worst of {} series: {labels})", parsed.len())
    } else {
        String::new()
    };
    let text = readable(*value);
    if rule.comparison.holds(*value, rule.threshold) {
        pass(format!("{text} {symbol} {}{series}", rule.threshold))
    } else {
        fail(format!("{text}, needs {symbol} {}{series}", rule.threshold))
    }
}

/// A value for people: four significant digits (`0.08393`, `1235`), as
/// Prometheus's own graphs show them; infinities as `+Inf`/`-Inf`.
fn readable(value: f64) -> String {
    if value.is_infinite() {
        return if value > 0.0 { "+Inf" } else { "-Inf" }.to_owned();
    }
    if value == 0.0 {
        return "0".to_owned();
    }
    let magnitude = value.abs().log10().floor() as i32;
    let decimals = (3 - magnitude).clamp(0, 12) as usize;
    let text = format!("{value:.decimals$}");
    if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.').to_owned()
    } else {
        text
    }
}

/// `{code="500",namespace="staging"}`, or nothing for no labels.
fn labels(metric: &BTreeMap<String, String>) -> String {
    if metric.is_empty() {
        return String::new();
    }
    let pairs: Vec<String> = metric.iter().map(|(k, v)| format!("{k}=\"{v}\"")).collect();
    shown(&format!("{{{}}}", pairs.join(",")))
}

/// Server or config text made safe and short for a value.
fn shown(text: &str) -> String {
    let escaped = escape_for_display(text);
    if escaped.chars().count() <= SHOWN_CAP {
        return escaped;
    }
    let cut: String = escaped.chars().take(SHOWN_CAP).collect();
    format!("{cut}…")
}

#[cfg(test)]
mod tests;
