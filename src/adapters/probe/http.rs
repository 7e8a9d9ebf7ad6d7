//! HTTP checks: one GET, its status, and optionally a text in the first
//! [`BODY_CAP`] bytes of its body.

use std::time::Duration;

use super::{fail, pass, read_capped, timed_out, why};
use crate::engine::ports::Probed;
use crate::names::escape_for_display as shown;

/// How much of a body is read to look for `body_contains`; the rest is
/// never read.
pub const BODY_CAP: usize = 64 * 1024;

/// What passes.
#[derive(Debug, Clone, Copy)]
pub(super) struct Want<'a> {
    /// The status.
    pub status: u16,
    /// Text the capped body must contain.
    pub body_contains: Option<&'a str>,
}

/// GETs `url` (redirects are the client's to refuse) within `timeout`.
pub(super) async fn probe(
    client: &reqwest::Client,
    url: &str,
    want: Want<'_>,
    timeout: Duration,
) -> Probed {
    let url = match reqwest::Url::parse(url) {
        Ok(u) => u,
        Err(e) => return fail(format!("bad URL `{}`: {e}", shown(url))),
    };
    // One deadline for connecting, the answer and the body.
    match tokio::time::timeout(timeout, look(client, url, want, timeout)).await {
        Ok(probed) => probed,
        Err(_) => fail(timed_out(timeout)),
    }
}

async fn look(
    client: &reqwest::Client,
    url: reqwest::Url,
    want: Want<'_>,
    timeout: Duration,
) -> Probed {
    let mut resp = match client.get(url.clone()).send().await {
        Ok(r) => r,
        Err(e) => return fail(why(&e, timeout)),
    };
    let status = resp.status().as_u16();
    if status != want.status {
        let mut value = format!("status {status}, expected {}", want.status);
        if resp.status().is_redirection() {
            if let Some(host) = redirect_host(&url, resp.headers()) {
                value.push_str(&format!(": redirect to {host} not followed"));
            }
        }
        return fail(value);
    }
    let Some(needle) = want.body_contains else {
        return pass(format!("status {status}"));
    };
    let (body, truncated) = match read_capped(&mut resp, BODY_CAP).await {
        Ok(read) => read,
        Err(e) => return fail(why(&e, timeout)),
    };
    drop(resp);
    if contains(&body, needle.as_bytes()) {
        pass(format!("status {status}, body has \"{}\"", shown(needle)))
    } else if truncated {
        fail(format!(
            "status {status}, body lacks \"{}\" in its first {} KiB",
            shown(needle),
            BODY_CAP / 1024
        ))
    } else {
        fail(format!("status {status}, body lacks \"{}\"", shown(needle)))
    }
}

/// The `host[:port]` a redirect points at, its `Location` resolved
/// against the request's URL.
fn redirect_host(url: &reqwest::Url, headers: &reqwest::header::HeaderMap) -> Option<String> {
    let location = headers.get(reqwest::header::LOCATION)?.to_str().ok()?;
    let target = url.join(location).ok()?;
    let host = target.host_str()?;
    Some(match target.port() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_owned(),
    })
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || haystack.windows(needle.len()).any(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redirects_name_their_host() {
        let url = reqwest::Url::parse("http://127.0.0.1:8080/health").unwrap();
        let mut headers = reqwest::header::HeaderMap::new();
        headers.insert("location", "http://evil.example:9999/x".parse().unwrap());
        assert_eq!(
            redirect_host(&url, &headers).as_deref(),
            Some("evil.example:9999")
        );
        headers.insert("location", "/elsewhere".parse().unwrap());
        assert_eq!(
            redirect_host(&url, &headers).as_deref(),
            Some("127.0.0.1:8080")
        );
    }

    #[test]
    fn contains_finds_bytes() {
        assert!(contains(b"status: ok\n", b"ok"));
        assert!(!contains(b"status: o", b"ok"));
    }
}
