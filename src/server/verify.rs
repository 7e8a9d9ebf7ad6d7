//! Signature checks over the exact raw bytes of a request, before parsing.
//!
//! Pure: the caller passes the secrets and the time. Comparisons are
//! constant-time (`hmac`'s `verify_slice`). Two secrets may be active at
//! once, so a secret can be rotated without dropping requests.

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::config::Secret;

/// How far Slack's timestamp may be from now, either way.
pub const SLACK_MAX_SKEW_SECONDS: i64 = 300;

/// Why a request's signature was refused. Every variant is a 401.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// A header is missing.
    #[error("missing {0} header")]
    Missing(&'static str),
    /// A header is present but not in the expected form.
    #[error("malformed {0} header")]
    Malformed(&'static str),
    /// The timestamp is too old or in the future.
    #[error("stale or future timestamp")]
    Stale,
    /// No secret produces this signature.
    #[error("signature does not match")]
    Mismatch,
}

type HmacSha256 = Hmac<Sha256>;

/// Checks `hex` (lowercase or uppercase, exactly 64 digits) as an
/// HMAC-SHA256 of the parts, under any of the secrets.
fn matches_any(
    secrets: &[Secret],
    parts: &[&[u8]],
    hex_sig: &str,
    header: &'static str,
) -> Result<(), VerifyError> {
    if hex_sig.len() != 64 {
        return Err(VerifyError::Malformed(header));
    }
    let expected = hex::decode(hex_sig).map_err(|_| VerifyError::Malformed(header))?;
    for secret in secrets {
        let Ok(mut mac) = HmacSha256::new_from_slice(secret.expose().as_bytes()) else {
            continue;
        };
        for part in parts {
            mac.update(part);
        }
        if mac.verify_slice(&expected).is_ok() {
            return Ok(());
        }
    }
    Err(VerifyError::Mismatch)
}

/// Slack: `X-Slack-Signature: v0=<hex HMAC-SHA256 of "v0:{ts}:{body}">`,
/// with `X-Slack-Request-Timestamp` within five minutes of `now`.
pub fn slack(
    secrets: &[Secret],
    timestamp: Option<&str>,
    signature: Option<&str>,
    body: &[u8],
    now: i64,
) -> Result<(), VerifyError> {
    const TS: &str = "X-Slack-Request-Timestamp";
    const SIG: &str = "X-Slack-Signature";
    let timestamp = timestamp.ok_or(VerifyError::Missing(TS))?;
    let signature = signature.ok_or(VerifyError::Missing(SIG))?;
    let ts: i64 = (timestamp.len() <= 12 && timestamp.bytes().all(|b| b.is_ascii_digit()))
        .then(|| timestamp.parse().ok())
        .flatten()
        .ok_or(VerifyError::Malformed(TS))?;
    if (now - ts).abs() > SLACK_MAX_SKEW_SECONDS {
        return Err(VerifyError::Stale);
    }
    let hex_sig = signature
        .strip_prefix("v0=")
        .ok_or(VerifyError::Malformed(SIG))?;
    matches_any(
        secrets,
        &[b"v0:", timestamp.as_bytes(), b":", body],
        hex_sig,
        SIG,
    )
}

/// GitHub: `X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the body>`.
pub fn github(secrets: &[Secret], signature: Option<&str>, body: &[u8]) -> Result<(), VerifyError> {
    const SIG: &str = "X-Hub-Signature-256";
    let signature = signature.ok_or(VerifyError::Missing(SIG))?;
    let hex_sig = signature
        .strip_prefix("sha256=")
        .ok_or(VerifyError::Malformed(SIG))?;
    matches_any(secrets, &[body], hex_sig, SIG)
}

/// Signs like Slack does; for clients such as `gantry chat` and the tests.
pub fn slack_signature(secret: &str, timestamp: i64, body: &[u8]) -> String {
    let mut mac = HmacSha256::new_from_slice(secret.as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
    mac.update(format!("v0:{timestamp}:").as_bytes());
    mac.update(body);
    format!("v0={}", hex::encode(mac.finalize().into_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secrets() -> Vec<Secret> {
        vec![
            Secret::new("old-secret".into()),
            Secret::new("8f742231b10e8888abcd99yyyzzz85a5".into()),
        ]
    }

    #[test]
    fn slack_documented_example_verifies() {
        // The example from Slack's "Verifying requests from Slack" page.
        let body = b"token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c";
        let sig = "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503";
        assert_eq!(
            slack(
                &secrets(),
                Some("1531420618"),
                Some(sig),
                body,
                1_531_420_618 + 10
            ),
            Ok(())
        );
        assert_eq!(
            slack_signature("8f742231b10e8888abcd99yyyzzz85a5", 1_531_420_618, body),
            sig
        );
    }

    #[test]
    fn slack_refusals_are_specific() {
        let body = b"text=deploy";
        let now = 1_700_000_000;
        let good = slack_signature("old-secret", now, body);
        let ts = now.to_string();
        let s = secrets();
        assert_eq!(
            slack(&s, Some(&ts), Some(&good), body, now),
            Ok(()),
            "the previous secret still works"
        );
        assert_eq!(
            slack(&s, None, Some(&good), body, now),
            Err(VerifyError::Missing("X-Slack-Request-Timestamp"))
        );
        assert_eq!(
            slack(&s, Some(&ts), None, body, now),
            Err(VerifyError::Missing("X-Slack-Signature"))
        );
        assert_eq!(
            slack(&s, Some("12x"), Some(&good), body, now),
            Err(VerifyError::Malformed("X-Slack-Request-Timestamp"))
        );
        assert_eq!(
            slack(&s, Some(&ts), Some("v1=00"), body, now),
            Err(VerifyError::Malformed("X-Slack-Signature"))
        );
        assert_eq!(
            slack(&s, Some(&ts), Some("v0=zz"), body, now),
            Err(VerifyError::Malformed("X-Slack-Signature"))
        );
        let not_hex = format!("v0={}", "g".repeat(64));
        assert_eq!(
            slack(&s, Some(&ts), Some(&not_hex), body, now),
            Err(VerifyError::Malformed("X-Slack-Signature"))
        );
        assert_eq!(
            slack(&s, Some(&ts), Some(&good), b"text=deploy!", now),
            Err(VerifyError::Mismatch)
        );
        assert_eq!(
            slack(&s, Some(&ts), Some(&good), body, now + 301),
            Err(VerifyError::Stale)
        );
        assert_eq!(
            slack(&s, Some(&ts), Some(&good), body, now - 301),
            Err(VerifyError::Stale)
        );
        assert_eq!(
            slack(
                &s,
                Some(&ts),
                Some(&good.to_uppercase().replace("V0=", "v0=")),
                body,
                now
            ),
            Ok(())
        );
    }

    #[test]
    fn github_signature() {
        // GitHub's documented example: secret "It's a Secret to Everybody", body "Hello, World!".
        let secret = [Secret::new("It's a Secret to Everybody".into())];
        let sig = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";
        assert_eq!(github(&secret, Some(sig), b"Hello, World!"), Ok(()));
        assert_eq!(
            github(&secret, Some(sig), b"Hello, World?"),
            Err(VerifyError::Mismatch)
        );
        assert_eq!(
            github(&secret, None, b"x"),
            Err(VerifyError::Missing("X-Hub-Signature-256"))
        );
        assert_eq!(
            github(&secret, Some("sha1=abc"), b"x"),
            Err(VerifyError::Malformed("X-Hub-Signature-256"))
        );
    }
}
