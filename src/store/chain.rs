//! The audit chain's hash and its canonical event encoding.
//!
//! Each event's `hash` is `sha256(prev || canonical)`, where `prev` is the 32
//! raw bytes of the previous event's hash (32 zero bytes before the first
//! event) and `canonical` is this UTF-8 JSON text, with no whitespace:
//!
//! ```text
//! {"seq":N,"time":N,"actor":"…","action":"…","subject":"…","env":"…"|null,"details":D}
//! ```
//!
//! Fields come in exactly that order. `D` is `details` with every object's
//! keys sorted by their UTF-8 bytes at every depth, arrays in their own
//! order, strings escaped as serde_json escapes them and numbers written as
//! serde_json writes them. The encoding does not depend on how a map
//! remembers its keys, so `details` can be rebuilt from the stored JSON and
//! hashed again by `verify`.

use serde_json::Value;
use sha2::{Digest, Sha256};

use super::audit::AuditEvent;

/// The `prev_hash` of the first event: 64 zeros.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// The hash an event must carry, from its `prev_hash` and canonical bytes.
pub(super) fn event_hash(event: &AuditEvent) -> Result<String, String> {
    hash_canonical(&event.prev_hash, &canonical_bytes(event))
}

/// Sets `event.hash` and returns the bytes to store: the JSON of the whole
/// event, as `serde_json` writes an [`AuditEvent`].
///
/// The canonical bytes are that JSON without its last two fields (the
/// details of a `serde_json` map are already sorted by key), so they are
/// built once and serve both the hash and the stored value.
pub(super) fn seal(event: &mut AuditEvent) -> Result<Vec<u8>, String> {
    let mut bytes = canonical_bytes(event);
    event.hash = hash_canonical(&event.prev_hash, &bytes)?;
    // Drop the closing brace, then add the two hash fields.
    bytes.pop();
    bytes.extend_from_slice(b",\"prev_hash\":");
    write_string(&mut bytes, &event.prev_hash);
    bytes.extend_from_slice(b",\"hash\":");
    write_string(&mut bytes, &event.hash);
    bytes.push(b'}');
    Ok(bytes)
}

/// `sha256(prev || canonical)` in hex, `prev` given in hex.
fn hash_canonical(prev_hash: &str, canonical: &[u8]) -> Result<String, String> {
    let prev = hash_bytes(prev_hash)?;
    let mut hasher = Sha256::new();
    hasher.update(prev);
    hasher.update(canonical);
    Ok(hex::encode(hasher.finalize()))
}

/// Decodes a 64-digit hex hash.
pub(super) fn hash_bytes(hash: &str) -> Result<[u8; 32], String> {
    let mut bytes = [0u8; 32];
    hex::decode_to_slice(hash, &mut bytes).map_err(|e| format!("bad hash {hash:?}: {e}"))?;
    Ok(bytes)
}

/// The canonical encoding described in the module docs.
fn canonical_bytes(event: &AuditEvent) -> Vec<u8> {
    let mut out = Vec::with_capacity(384);
    out.extend_from_slice(b"{\"seq\":");
    write_display(&mut out, event.seq);
    out.extend_from_slice(b",\"time\":");
    write_display(&mut out, event.time);
    for (name, text) in [
        (&b",\"actor\":"[..], &event.actor),
        (b",\"action\":", &event.action),
        (b",\"subject\":", &event.subject),
    ] {
        out.extend_from_slice(name);
        write_string(&mut out, text);
    }
    out.extend_from_slice(b",\"env\":");
    match &event.env {
        Some(env) => write_string(&mut out, env),
        None => out.extend_from_slice(b"null"),
    }
    out.extend_from_slice(b",\"details\":");
    write_canonical(&mut out, &event.details);
    out.push(b'}');
    out
}

/// Writes a number as its `Display` (which is how `serde_json` writes it), without allocating.
fn write_display(out: &mut Vec<u8>, value: impl std::fmt::Display) {
    use std::io::Write;
    // Writing into a Vec cannot fail.
    let _ = write!(out, "{value}");
}

fn write_canonical(out: &mut Vec<u8>, value: &Value) {
    match value {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(b) => out.extend_from_slice(if *b { b"true" } else { b"false" }),
        Value::Number(n) => write_display(out, n),
        Value::String(s) => write_string(out, s),
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_canonical(out, item);
            }
            out.push(b']');
        }
        Value::Object(map) => {
            let mut entries: Vec<_> = map.iter().collect();
            entries.sort_unstable_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
            out.push(b'{');
            for (i, (key, item)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_string(out, key);
                out.push(b':');
                write_canonical(out, item);
            }
            out.push(b'}');
        }
    }
}

fn write_string(out: &mut Vec<u8>, text: &str) {
    // Serialising a str into a Vec cannot fail; were it to, the hash would
    // differ and `verify` would say so rather than pass silently.
    let _ = serde_json::to_writer(&mut *out, text);
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn event(details: Value) -> AuditEvent {
        AuditEvent {
            seq: 1,
            time: 1_700_000_000_000,
            actor: "slack:U1".into(),
            action: "deploy.started".into(),
            subject: "R-1".into(),
            env: Some("prod".into()),
            details,
            prev_hash: GENESIS_HASH.into(),
            hash: String::new(),
        }
    }

    #[test]
    fn canonical_bytes_have_fixed_order_and_sorted_details() {
        let e = event(json!({"z": [2, {"b": 1, "a": "\"x\""}], "a": null, "m": 1.5}));
        assert_eq!(
            String::from_utf8(canonical_bytes(&e)).unwrap(),
            r#"{"seq":1,"time":1700000000000,"actor":"slack:U1","action":"deploy.started","subject":"R-1","env":"prod","details":{"a":null,"m":1.5,"z":[2,{"a":"\"x\"","b":1}]}}"#
        );
        let none = AuditEvent {
            env: None,
            ..event(json!({}))
        };
        assert!(String::from_utf8(canonical_bytes(&none))
            .unwrap()
            .ends_with(r#""env":null,"details":{}}"#));
    }

    #[test]
    fn hash_is_pinned() {
        // Changing the encoding breaks every stored chain: this value must not move.
        let e = event(json!({"sha": "abc", "replicas": 3}));
        assert_eq!(event_hash(&e).unwrap(), PINNED_HASH);
    }

    /// Also computed outside Rust: sha256 of 32 zero bytes then the canonical text.
    const PINNED_HASH: &str = "9e81ff969a78cff92c7d98447fa25150dac74241f298cdc18e18e7d45681bec6";

    #[test]
    fn sealed_bytes_are_the_events_json() {
        let mut events = vec![
            event(json!({"z": [2, {"b": 1, "a": "\"x\"\n"}], "a": null, "m": 1.5, "é": "ü"})),
            event(json!({"ratio": 0.1 + 0.2, "tiny": 5e-324, "big": u64::MAX, "neg": -1})),
            AuditEvent {
                env: None,
                actor: "a\"b\\c\u{1}".into(),
                ..event(json!([]))
            },
        ];
        for e in &mut events {
            let bytes = seal(e).unwrap();
            assert_eq!(e.hash, event_hash(e).unwrap());
            assert_eq!(bytes, serde_json::to_vec(e).unwrap());
        }
    }

    #[test]
    fn details_survive_storage_unchanged() {
        let e = event(json!({"ratio": 0.1 + 0.2, "tiny": 5e-324, "big": u64::MAX, "neg": -1}));
        let back: AuditEvent = serde_json::from_slice(&serde_json::to_vec(&e).unwrap()).unwrap();
        assert_eq!(canonical_bytes(&back), canonical_bytes(&e));
    }
}
