//! Checks `[prometheus.*]` and `[environments.*.verify]`.

use std::collections::BTreeMap;

use super::{list, Checked, Checker};
use crate::config::locate::KeyPath;
use crate::config::model::{Comparison, ProbeSpec, Prometheus, Verify, VerifyCheck};
use crate::config::probe_template::{check_probe_template, TemplateSyntax};
use crate::config::raw::{RawCheck, RawCheckKind, RawPrometheus, RawVerify};
use crate::config::template::is_dns_label;
use crate::names::escape_for_display as shown;

/// Longest check name: it is shown in chat beside its value.
pub(crate) const MAX_CHECK_NAME: usize = 64;

const COMPARISONS: [(&str, Comparison); 6] = [
    ("<", Comparison::Less),
    ("<=", Comparison::LessOrEqual),
    (">", Comparison::Greater),
    (">=", Comparison::GreaterOrEqual),
    ("==", Comparison::Equal),
    ("!=", Comparison::NotEqual),
];

/// Checks every `[prometheus.<name>]`.
pub(crate) fn prometheus_servers(
    ck: &Checker<'_>,
    raw: &BTreeMap<String, RawPrometheus>,
) -> Checked<BTreeMap<String, Prometheus>> {
    let mut out = BTreeMap::new();
    for (name, p) in raw {
        let path = KeyPath::root().key("prometheus").key(name);
        if !is_dns_label(name) {
            return Err(ck.err(
                &path,
                format!(
                    "Prometheus server name `{}` must use a-z, 0-9 and `-`",
                    shown(name)
                ),
            ));
        }
        let url_path = path.key("url");
        let Some(text) = &p.url else {
            return Err(ck.err(
                &url_path,
                "give the server's base URL, e.g. url = \"http://prometheus:9090\"",
            ));
        };
        // Like every URL credentials travel to: with a token, https or loopback only.
        let url = if p.bearer_token.is_some() {
            ck.secret_safe_url(&url_path, text)?
        } else {
            ck.url(&url_path, text)?
        };
        no_userinfo(ck, &url_path, &url)?;
        out.insert(
            name.clone(),
            Prometheus {
                name: name.clone(),
                url: url.trim_end_matches('/').to_owned(),
                bearer_token: p.bearer_token.clone(),
                timeout: ck.duration(&path.key("timeout"), &p.timeout)?,
            },
        );
    }
    Ok(out)
}

/// Checks an environment's `verify` table against the declared servers.
pub(crate) fn verify(
    ck: &Checker<'_>,
    path: &KeyPath,
    raw: &RawVerify,
    servers: &BTreeMap<String, Prometheus>,
) -> Checked<Verify> {
    let soak_path = path.key("soak");
    let Some(soak_text) = &raw.soak else {
        return Err(ck.err(
            &soak_path,
            "verify needs soak, how long every check must hold, e.g. soak = \"10m\"",
        ));
    };
    let soak = ck.duration(&soak_path, soak_text)?;
    if raw.checks.is_empty() {
        return Err(ck.err(
            &path.key("checks"),
            "verify has no checks; add a [[…verify.checks]] table",
        ));
    }
    let mut checks: Vec<VerifyCheck> = Vec::new();
    for (i, c) in raw.checks.iter().enumerate() {
        let cpath = path.key("checks").index(i);
        let check = verify_check(ck, &cpath, c, servers)?;
        if checks.iter().any(|other| other.name == check.name) {
            return Err(ck.err(
                &cpath.key("name"),
                format!("two checks are named `{}`", check.name),
            ));
        }
        if soak < check.interval {
            return Err(ck.err(
                &soak_path,
                format!(
                    "soak {} is shorter than the interval {} of check `{}`, which would never be probed",
                    humantime::format_duration(soak),
                    humantime::format_duration(check.interval),
                    check.name
                ),
            ));
        }
        checks.push(check);
    }
    Ok(Verify { soak, checks })
}

fn verify_check(
    ck: &Checker<'_>,
    path: &KeyPath,
    raw: &RawCheck,
    servers: &BTreeMap<String, Prometheus>,
) -> Checked<VerifyCheck> {
    let name = check_name(ck, &path.key("name"), &raw.name)?;
    let interval = ck.duration(&path.key("interval"), &raw.interval)?;
    let probe = match raw.kind {
        RawCheckKind::Http => http(ck, path, raw)?,
        RawCheckKind::Prometheus => prometheus(ck, path, raw, servers)?,
    };
    Ok(VerifyCheck {
        name,
        interval,
        failures_tolerated: raw.failures_tolerated,
        probe,
    })
}

fn check_name(ck: &Checker<'_>, path: &KeyPath, text: &str) -> Checked<String> {
    let printable = text.chars().all(|c| c.is_ascii_graphic() || c == ' ');
    if text.trim().is_empty() || text.trim() != text || text.len() > MAX_CHECK_NAME || !printable {
        return Err(ck.err(
            path,
            format!(
                "check name `{}` must be 1 to {MAX_CHECK_NAME} printable ASCII characters, without spaces at either end",
                shown(text)
            ),
        ));
    }
    Ok(text.to_owned())
}

/// Refuses keys of the other check type.
fn only_for(ck: &Checker<'_>, path: &KeyPath, kind: &str, keys: &[(&str, bool)]) -> Checked<()> {
    match keys.iter().find(|(_, set)| *set) {
        Some((key, _)) => Err(ck.err(
            &path.key(key),
            format!("{key} applies only to type = \"{kind}\" checks"),
        )),
        None => Ok(()),
    }
}

fn http(ck: &Checker<'_>, path: &KeyPath, raw: &RawCheck) -> Checked<ProbeSpec> {
    only_for(
        ck,
        path,
        "prometheus",
        &[
            ("prometheus", raw.prometheus.is_some()),
            ("query", raw.query.is_some()),
            ("comparison", raw.comparison.is_some()),
            ("threshold", raw.threshold.is_some()),
        ],
    )?;
    let url_path = path.key("url");
    let Some(text) = &raw.url else {
        return Err(ck.err(
            &url_path,
            "an http check needs url, e.g. url = \"https://{app}.example.com/healthz\"",
        ));
    };
    let url = ck.url(&url_path, text)?;
    check_probe_template(&url, TemplateSyntax::Url)
        .map_err(|e| ck.err(&url_path, e.to_string()))?;
    no_userinfo(ck, &url_path, &url)?;
    let expect_status = raw.expect_status.unwrap_or(200);
    if !(100..=599).contains(&expect_status) {
        return Err(ck.err(
            &path.key("expect_status"),
            format!("{expect_status} is not an HTTP status (100 to 599)"),
        ));
    }
    let body_contains = match &raw.body_contains {
        Some(text) if text.is_empty() => {
            return Err(ck.err(
                &path.key("body_contains"),
                "body_contains is empty; leave it out to check the status only",
            ))
        }
        Some(text) => Some(text.clone()),
        None => None,
    };
    Ok(ProbeSpec::Http {
        url,
        expect_status,
        body_contains,
        timeout: ck.duration(&path.key("timeout"), raw.timeout.as_deref().unwrap_or("5s"))?,
    })
}

fn prometheus(
    ck: &Checker<'_>,
    path: &KeyPath,
    raw: &RawCheck,
    servers: &BTreeMap<String, Prometheus>,
) -> Checked<ProbeSpec> {
    only_for(
        ck,
        path,
        "http",
        &[
            ("url", raw.url.is_some()),
            ("expect_status", raw.expect_status.is_some()),
            ("body_contains", raw.body_contains.is_some()),
            ("timeout", raw.timeout.is_some()),
        ],
    )?;
    let missing = |key: &str, example: &str| {
        ck.err(
            &path.key(key),
            format!("a prometheus check needs {key}, e.g. {example}"),
        )
    };
    let server = raw
        .prometheus
        .as_ref()
        .ok_or_else(|| missing("prometheus", "prometheus = \"main\""))?;
    if !servers.contains_key(server) {
        let known: Vec<&str> = servers.keys().map(String::as_str).collect();
        return Err(ck.err(
            &path.key("prometheus"),
            format!(
                "unknown Prometheus server `{}`; declare it as [prometheus.<name>] (declared: {})",
                shown(server),
                list(&known)
            ),
        ));
    }
    let query_path = path.key("query");
    let query = raw.query.as_ref().ok_or_else(|| {
        missing(
            "query",
            "query = \"sum(up{namespace=\\\"{namespace}\\\"})\"",
        )
    })?;
    let query = ck.text(&query_path, query, "query")?;
    check_probe_template(&query, TemplateSyntax::PromQl)
        .map_err(|e| ck.err(&query_path, e.to_string()))?;
    let comparison_text = raw
        .comparison
        .as_ref()
        .ok_or_else(|| missing("comparison", "comparison = \"<\""))?;
    let comparison = COMPARISONS
        .iter()
        .find(|(symbol, _)| symbol == comparison_text)
        .map(|(_, c)| *c)
        .ok_or_else(|| {
            let allowed: Vec<&str> = COMPARISONS.iter().map(|(s, _)| *s).collect();
            ck.err(
                &path.key("comparison"),
                format!(
                    "`{}` is not a comparison; use one of {}",
                    shown(comparison_text),
                    allowed.join(" ")
                ),
            )
        })?;
    let threshold = raw
        .threshold
        .ok_or_else(|| missing("threshold", "threshold = 0.01"))?;
    if !threshold.is_finite() {
        return Err(ck.err(&path.key("threshold"), "threshold must be a finite number"));
    }
    Ok(ProbeSpec::Prometheus {
        server: server.clone(),
        query,
        comparison,
        threshold,
    })
}

/// Refuses `user:password@` in a URL: secrets are never written inline.
fn no_userinfo(ck: &Checker<'_>, path: &KeyPath, url: &str) -> Checked<()> {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    if authority.contains('@') {
        return Err(ck.err(
            path,
            "credentials in a URL are not allowed; secrets come from the environment or a file",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests;
