//! Signature checks over the exact raw bytes of a request, before parsing.
//!
//! Pure: the caller passes the secrets and the time. Comparisons are
//! constant-time (`hmac`'s `verify_slice`). Two secrets may be active at
//! once, so a secret can be rotated without dropping requests. Discord
//! signs with Ed25519 instead, checked with `ed25519-dalek`'s strict verify.

use ed25519_dalek::{Signature, Signer as _, SigningKey, VerifyingKey};
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::config::Secret;

/// How far Slack's timestamp may be from now, either way.
pub const SLACK_MAX_SKEW_SECONDS: i64 = 300;

/// How far Discord's `X-Signature-Timestamp` may be from now, either way.
pub const DISCORD_MAX_SKEW_SECONDS: i64 = 300;

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

/// Checks a unix-seconds timestamp header: digits only (at most 12), and
/// within `max_skew` seconds of `now` in either direction.
fn check_fresh(
    timestamp: &str,
    header: &'static str,
    max_skew: i64,
    now: i64,
) -> Result<(), VerifyError> {
    let ts: i64 = (timestamp.len() <= 12 && timestamp.bytes().all(|b| b.is_ascii_digit()))
        .then(|| timestamp.parse().ok())
        .flatten()
        .ok_or(VerifyError::Malformed(header))?;
    if (now - ts).abs() > max_skew {
        return Err(VerifyError::Stale);
    }
    Ok(())
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
    check_fresh(timestamp, TS, SLACK_MAX_SKEW_SECONDS, now)?;
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

/// Parses a Discord application's public key (64 hex digits).
pub fn discord_key(hex_key: &str) -> Result<VerifyingKey, String> {
    let bytes: [u8; 32] = hex::decode(hex_key.trim())
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or("a Discord public key is 64 hex digits")?;
    VerifyingKey::from_bytes(&bytes).map_err(|_| "not a valid Ed25519 public key".to_owned())
}

/// Discord: `X-Signature-Ed25519: <hex Ed25519 signature of timestamp + body>`
/// under the application's public key, with `X-Signature-Timestamp` (unix
/// seconds) within five minutes of `now`.
pub fn discord(
    key: &VerifyingKey,
    timestamp: Option<&str>,
    signature: Option<&str>,
    body: &[u8],
    now: i64,
) -> Result<(), VerifyError> {
    const TS: &str = "X-Signature-Timestamp";
    const SIG: &str = "X-Signature-Ed25519";
    let timestamp = timestamp.ok_or(VerifyError::Missing(TS))?;
    let signature = signature.ok_or(VerifyError::Missing(SIG))?;
    check_fresh(timestamp, TS, DISCORD_MAX_SKEW_SECONDS, now)?;
    ed25519_matches(key, &[timestamp.as_bytes(), body], signature, SIG)
}

/// Checks `hex_sig` (128 hex digits) as an Ed25519 signature of the
/// concatenated parts.
fn ed25519_matches(
    key: &VerifyingKey,
    parts: &[&[u8]],
    hex_sig: &str,
    header: &'static str,
) -> Result<(), VerifyError> {
    let bytes: [u8; 64] = (hex_sig.len() == 128)
        .then(|| hex::decode(hex_sig).ok())
        .flatten()
        .and_then(|b| b.try_into().ok())
        .ok_or(VerifyError::Malformed(header))?;
    let signature = Signature::from_bytes(&bytes);
    let message = parts.concat();
    key.verify_strict(&message, &signature)
        .map_err(|_| VerifyError::Mismatch)
}

/// Signs like Discord does; for the fake Discord and the tests.
pub fn discord_signature(key: &SigningKey, timestamp: i64, body: &[u8]) -> String {
    let mut message = timestamp.to_string().into_bytes();
    message.extend_from_slice(body);
    hex::encode(key.sign(&message).to_bytes())
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

    /// RFC 8032 section 7.1, tests 1 and 2.
    #[test]
    fn ed25519_known_answers() {
        let vectors = [
            (
                "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
                "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a",
                "",
                "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b",
            ),
            (
                "4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb",
                "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c",
                "72",
                "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00",
            ),
        ];
        for (secret, public, message, signature) in vectors {
            let seed: [u8; 32] = hex::decode(secret).unwrap().try_into().unwrap();
            let signing = SigningKey::from_bytes(&seed);
            let key = discord_key(public).unwrap();
            assert_eq!(signing.verifying_key(), key);
            let message = hex::decode(message).unwrap();
            assert_eq!(hex::encode(signing.sign(&message).to_bytes()), signature);
            assert_eq!(ed25519_matches(&key, &[&message], signature, "h"), Ok(()));
            let upper = signature.to_uppercase();
            assert_eq!(ed25519_matches(&key, &[&message], &upper, "h"), Ok(()));
            assert_eq!(
                ed25519_matches(&key, &[&message, b"x"], signature, "h"),
                Err(VerifyError::Mismatch)
            );
        }
    }

    #[test]
    fn discord_refusals_are_specific() {
        const TS: &str = "X-Signature-Timestamp";
        const SIG: &str = "X-Signature-Ed25519";
        let signing = SigningKey::from_bytes(&[7; 32]);
        let key = signing.verifying_key();
        let other = SigningKey::from_bytes(&[8; 32]);
        let body = br#"{"type":1}"#;
        let now = 1_700_000_000;
        let ts = now.to_string();
        let good = discord_signature(&signing, now, body);
        assert_eq!(discord(&key, Some(&ts), Some(&good), body, now), Ok(()));
        assert_eq!(
            discord(&key, None, Some(&good), body, now),
            Err(VerifyError::Missing(TS))
        );
        assert_eq!(
            discord(&key, Some(&ts), None, body, now),
            Err(VerifyError::Missing(SIG))
        );
        assert_eq!(
            discord(&key, Some("-5"), Some(&good), body, now),
            Err(VerifyError::Malformed(TS))
        );
        for bad in [
            "",
            "00",
            &"z".repeat(128),
            &good[..126],
            &format!("{good}00"),
        ] {
            assert_eq!(
                discord(&key, Some(&ts), Some(bad), body, now),
                Err(VerifyError::Malformed(SIG)),
                "{bad}"
            );
        }
        let forged = discord_signature(&other, now, body);
        assert_eq!(
            discord(&key, Some(&ts), Some(&forged), body, now),
            Err(VerifyError::Mismatch)
        );
        assert_eq!(
            discord(&key, Some(&ts), Some(&good), br#"{"type":2}"#, now),
            Err(VerifyError::Mismatch)
        );
        let moved = (now + 1).to_string();
        assert_eq!(
            discord(&key, Some(&moved), Some(&good), body, now),
            Err(VerifyError::Mismatch),
            "the timestamp is signed too"
        );
        assert_eq!(
            discord(&key, Some(&ts), Some(&good), body, now + 301),
            Err(VerifyError::Stale)
        );
        assert_eq!(
            discord(&key, Some(&ts), Some(&good), body, now - 301),
            Err(VerifyError::Stale)
        );
        assert!(discord_key("zz").is_err());
        assert!(discord_key(&"ab".repeat(31)).is_err());
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
