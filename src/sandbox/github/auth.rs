//! Credentials the fake accepts: tokens, and a GitHub App's JWT.

use base64::Engine as _;
use serde_json::Value;

use super::state::{unix_now, Hub};

/// Whether `authorization` is an accepted credential for `path`.
pub(super) fn authorised(hub: &Hub, path: &[String], authorization: Option<&str>) -> bool {
    let Some(credential) = authorization.and_then(|a| {
        a.strip_prefix("Bearer ")
            .or_else(|| a.strip_prefix("token "))
    }) else {
        return false;
    };
    let wants_app = matches!(path.first().map(String::as_str), Some("app"))
        || (path.len() == 4 && path[0] == "repos" && path[3] == "installation");
    if wants_app {
        return hub
            .app
            .as_ref()
            .is_some_and(|app| jwt_is_for(credential, app.app_id));
    }
    match hub.tokens.get(credential) {
        Some(None) => true,
        Some(Some(expires)) => *expires > unix_now(),
        None => false,
    }
}

/// A JWT whose claims name `app_id` as issuer and have not expired. (The
/// fake does not check the RS256 signature; GitHub does.)
fn jwt_is_for(token: &str, app_id: u64) -> bool {
    let parts: Vec<&str> = token.split('.').collect();
    let [_, claims, _] = parts.as_slice() else {
        return false;
    };
    let Ok(bytes) = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(claims) else {
        return false;
    };
    let Ok(claims) = serde_json::from_slice::<Value>(&bytes) else {
        return false;
    };
    let iss = match &claims["iss"] {
        Value::String(s) => s.parse().ok(),
        other => other.as_u64(),
    };
    iss == Some(app_id) && claims["exp"].as_u64().is_some_and(|exp| exp > unix_now())
}

pub(super) fn decode_segment(segment: &str) -> String {
    let bytes = segment.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let Ok(b) = u8::from_str_radix(&segment[i + 1..i + 3], 16) {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}
