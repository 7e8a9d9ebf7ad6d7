//! Who may use the sandbox registry: basic auth, or bearer tokens from its
//! own token realm (`GET /token?service=…&scope=…`).

use std::time::Instant;

use axum::http::header::CONTENT_TYPE;
use axum::http::{HeaderValue, StatusCode};
use axum::response::Response;
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use serde_json::{json, Value};

use super::handlers::{oci, page_not_found, respond, JSON};
use super::{SandboxAuth, Shared, Store, SERVICE};
use crate::adapters::registry::manifest::digest_of;

pub(super) fn basic(username: &str, password: &str) -> String {
    format!(
        "Basic {}",
        STANDARD.encode(format!("{username}:{password}"))
    )
}

/// Whether a token's scopes grant pull (and push) on `name`.
pub(super) fn covers(scopes: &str, name: &str, push: bool) -> bool {
    scopes.split(' ').any(|scope| {
        let Some((repo, actions)) = scope
            .strip_prefix("repository:")
            .and_then(|s| s.rsplit_once(':'))
        else {
            return false;
        };
        let has = |a: &str| actions.split(',').any(|x| x == a || x == "*");
        repo == name && has("pull") && (!push || has("push"))
    })
}

/// `None` when the request may go on, else the `401` to answer with.
pub(super) fn authorise(
    shared: &Shared,
    store: &Store,
    authorization: Option<&str>,
    name: Option<&str>,
    push: bool,
) -> Option<Response> {
    let challenge = match &shared.auth {
        SandboxAuth::Anonymous => return None,
        SandboxAuth::Basic { username, password } => {
            if authorization == Some(basic(username, password).as_str()) {
                return None;
            }
            format!("Basic realm=\"{SERVICE}\"")
        }
        SandboxAuth::Bearer { .. } => {
            let granted = authorization
                .and_then(|a| a.strip_prefix("Bearer "))
                .and_then(|t| store.tokens.get(t))
                .filter(|(_, until)| Instant::now() < *until);
            if let Some((scopes, _)) = granted {
                if name.is_none_or(|n| covers(scopes, n, push)) {
                    return None;
                }
            }
            let realm = format!(
                "Bearer realm=\"{}/token\",service=\"{SERVICE}\"",
                shared.base
            );
            match name {
                Some(n) => {
                    let actions = if push { "pull,push" } else { "pull" };
                    format!("{realm},scope=\"repository:{n}:{actions}\"")
                }
                None => realm,
            }
        }
    };
    let detail = match name {
        Some(n) => json!([{ "Type": "repository", "Class": "", "Name": n,
            "Action": if push { "push" } else { "pull" } }]),
        None => Value::Null,
    };
    let mut response = oci(
        StatusCode::UNAUTHORIZED,
        "UNAUTHORIZED",
        "authentication required",
    )
    .detail(detail)
    .into_response();
    if let Ok(v) = HeaderValue::from_str(&challenge) {
        response.headers_mut().insert("www-authenticate", v);
    }
    Some(response)
}

pub(super) fn percent_decode(text: &str) -> String {
    let b = text.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = || u8::from_str_radix(text.get(i + 1..i + 3)?, 16).ok();
        match (b[i], hex()) {
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (b'+', _) => {
                out.push(b' ');
                i += 1;
            }
            (c, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

pub(super) fn query_values(query: &str, key: &str) -> Vec<String> {
    query
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .filter(|(k, _)| percent_decode(k) == key)
        .map(|(_, v)| percent_decode(v))
        .collect()
}

pub(super) fn token(
    shared: &Shared,
    store: &mut Store,
    authorization: Option<&str>,
    query: &str,
) -> Response {
    let SandboxAuth::Bearer {
        username,
        password,
        token_ttl,
    } = &shared.auth
    else {
        return page_not_found();
    };
    let scopes = match authorization {
        // Anonymous callers get a token, but one that grants nothing.
        None => String::new(),
        Some(a) if a == basic(username, password) => query_values(query, "scope").join(" "),
        Some(_) => {
            let body = json!({ "details": "incorrect username or password" }).to_string();
            return respond(
                StatusCode::UNAUTHORIZED,
                &[(CONTENT_TYPE.as_str(), JSON)],
                body.into_bytes(),
            );
        }
    };
    store.counter += 1;
    let seed = format!("{} {}", shared.base, store.counter);
    let token = format!(
        "sandbox-{}-{}",
        store.counter,
        &digest_of(seed.as_bytes()).as_str()[7..23]
    );
    store
        .tokens
        .insert(token.clone(), (scopes, Instant::now() + *token_ttl));
    store.token_grants += 1;
    let body = json!({
        "token": token,
        "access_token": token,
        "expires_in": token_ttl.as_secs(),
        "issued_at": humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string(),
    });
    respond(
        StatusCode::OK,
        &[(CONTENT_TYPE.as_str(), JSON)],
        body.to_string().into_bytes(),
    )
}
