//! Verification probes: HTTP checks and Prometheus queries.
//!
//! A probe never errors: whatever goes wrong is a failed [`Probed`] whose
//! value says why. Redirects are never followed, every probe has its own
//! timeout, and bodies are read only up to a cap. A Prometheus server's
//! bearer token travels in a sensitive header and is scrubbed from every
//! value, in case a server or proxy echoes it back.

mod http;
mod prometheus;

use std::collections::BTreeMap;
use std::error::Error as _;
use std::time::Duration;

use async_trait::async_trait;

use crate::config::{fill_probe_template, Config, ProbeSpec, Secret, TemplateSyntax, VerifyCheck};
use crate::engine::ports::{ProbeVars, Probed, Prober};

/// The real prober: one HTTP client (redirects off) and the configured
/// Prometheus servers, their tokens read at start-up.
pub struct Probes {
    client: reqwest::Client,
    servers: BTreeMap<String, prometheus::Server>,
}

impl Probes {
    /// Builds the client and reads every `[prometheus.<name>]` bearer token
    /// now, so a missing one stops start-up naming the key.
    pub fn from_config(config: &Config) -> Result<Probes, String> {
        crate::tls::install_crypto();
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("gantry/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| format!("cannot build the HTTP client: {e}"))?;
        let mut servers = BTreeMap::new();
        for (name, p) in config.prometheus() {
            let token = match &p.bearer_token {
                Some(secret) => Some(
                    secret
                        .resolve()
                        .map_err(|e| format!("prometheus.{name}.bearer_token: {e}"))?,
                ),
                None => None,
            };
            servers.insert(
                name.clone(),
                prometheus::Server {
                    base: p.url.trim_end_matches('/').to_owned(),
                    token,
                    timeout: p.timeout,
                },
            );
        }
        Ok(Probes { client, servers })
    }
}

#[async_trait]
impl Prober for Probes {
    async fn probe(&self, check: &VerifyCheck, vars: &ProbeVars) -> Probed {
        let probed = match &check.probe {
            ProbeSpec::Http {
                url,
                expect_status,
                body_contains,
                timeout,
            } => match fill(url, TemplateSyntax::Url, vars) {
                Ok(url) => {
                    let want = http::Want {
                        status: *expect_status,
                        body_contains: body_contains.as_deref(),
                    };
                    http::probe(&self.client, &url, want, *timeout).await
                }
                Err(why) => fail(why),
            },
            ProbeSpec::Prometheus {
                server,
                query,
                comparison,
                threshold,
            } => match (
                self.servers.get(server),
                fill(query, TemplateSyntax::PromQl, vars),
            ) {
                (Some(s), Ok(query)) => {
                    let probed =
                        prometheus::probe(&self.client, s, &query, *comparison, *threshold).await;
                    redact(probed, s.token.as_ref())
                }
                (None, _) => fail(format!("no Prometheus server `{server}` is configured")),
                (_, Err(why)) => fail(why),
            },
        };
        tracing::debug!(check = %check.name, ok = probed.ok, value = %probed.value, "probed");
        probed
    }
}

/// Fills a template; URL values are percent-encoded, query values go in
/// as they are (they are validated names).
fn fill(text: &str, syntax: TemplateSyntax, vars: &ProbeVars) -> Result<String, String> {
    fill_probe_template(text, syntax, |name| {
        let value = match name {
            "app" => &vars.app,
            "env" => &vars.env,
            _ => &vars.namespace,
        };
        match syntax {
            TemplateSyntax::Url => percent_encode(value),
            TemplateSyntax::PromQl => value.clone(),
        }
    })
    .map_err(|e| format!("bad template: {e}"))
}

/// Percent-encodes all but RFC 3986's unreserved characters.
fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

pub(crate) fn pass(value: String) -> Probed {
    Probed { ok: true, value }
}

pub(crate) fn fail(value: String) -> Probed {
    Probed { ok: false, value }
}

/// Scrubs `token` from a value.
fn redact(mut probed: Probed, token: Option<&Secret>) -> Probed {
    if let Some(token) = token.map(Secret::expose).filter(|t| !t.is_empty()) {
        if probed.value.contains(token) {
            probed.value = probed.value.replace(token, "[redacted]");
        }
    }
    probed
}

/// Reads at most `cap` bytes of a body, chunk by chunk; answers the bytes
/// and whether more followed (the rest is never read).
async fn read_capped(
    resp: &mut reqwest::Response,
    cap: usize,
) -> Result<(Vec<u8>, bool), reqwest::Error> {
    let mut body = Vec::new();
    while let Some(chunk) = resp.chunk().await? {
        let room = cap - body.len();
        if chunk.len() > room {
            body.extend_from_slice(&chunk[..room]);
            return Ok((body, true));
        }
        body.extend_from_slice(&chunk);
    }
    Ok((body, false))
}

/// `timed out after 5s`.
fn timed_out(timeout: Duration) -> String {
    format!("timed out after {}", humantime::format_duration(timeout))
}

/// Why a request failed, from its innermost cause: `unreachable:
/// connection refused`. The URL is left out (reqwest's own text has it).
fn why(e: &reqwest::Error, timeout: Duration) -> String {
    if e.is_timeout() {
        return timed_out(timeout);
    }
    let mut cause = String::new();
    let mut io_kind = None;
    let mut source = e.source();
    while let Some(s) = source {
        if let Some(io) = s.downcast_ref::<std::io::Error>() {
            io_kind = Some(io.kind());
        }
        cause = s.to_string();
        source = s.source();
    }
    let cause = match io_kind {
        Some(std::io::ErrorKind::ConnectionRefused) => "connection refused".to_owned(),
        Some(std::io::ErrorKind::ConnectionReset) => "connection reset".to_owned(),
        Some(std::io::ErrorKind::TimedOut) => return timed_out(timeout),
        _ if cause.is_empty() => e.to_string(),
        _ => cause,
    };
    let cause = crate::names::escape_for_display(&cause);
    if e.is_connect() {
        format!("unreachable: {cause}")
    } else if e.is_body() || e.is_decode() {
        format!("answer broken off: {cause}")
    } else {
        format!("request failed: {cause}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_fill_and_urls_are_encoded() {
        let vars = ProbeVars {
            app: "web".into(),
            env: "staging".into(),
            namespace: "a b/c".into(),
        };
        assert_eq!(
            fill(
                "https://{app}.{env}.example.com/h?ns={namespace}",
                TemplateSyntax::Url,
                &vars
            )
            .unwrap(),
            "https://web.staging.example.com/h?ns=a%20b%2Fc"
        );
        assert_eq!(
            fill(
                "up{namespace=\"{namespace}\"}",
                TemplateSyntax::PromQl,
                &vars
            )
            .unwrap(),
            "up{namespace=\"a b/c\"}"
        );
    }

    #[test]
    fn the_token_is_scrubbed() {
        let token = Secret::new("s3cret-token".into());
        let probed = redact(fail("echo: Bearer s3cret-token".into()), Some(&token));
        assert_eq!(probed.value, "echo: Bearer [redacted]");
    }
}
