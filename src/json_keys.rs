//! Strict JSON for everything inbound: an object may not hold the same key
//! twice.
//!
//! serde_json keeps the last of two equal keys (`{"action":"edited",
//! "action":"created"}` reads as `created`) while other parsers keep the
//! first, so what a sender signed and what Gantry acts on could differ.
//! [`check_unique_keys`] walks the raw bytes once, before any field is read,
//! and refuses such a document. It is pure (no I/O) so that the HTTP routes
//! and the WebSocket transports can share it.

use std::borrow::Cow;
use std::collections::HashSet;
use std::fmt;

use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};

/// Deepest nesting of objects and arrays accepted; deeper is refused so
/// that the walk cannot exhaust the stack.
pub const MAX_DEPTH: usize = 64;

/// Longest key or path quoted in an error message, in characters.
const SHOWN: usize = 80;

/// The message of the error that stops serde_json once a refusal is found;
/// the refusal itself is kept beside it, typed.
const STOP: &str = "refused";

/// Why a JSON document was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JsonError {
    /// An object holds the same key twice, after escapes are decoded
    /// (`"a"` and `"\u0061"` are the same key).
    #[error("duplicate key {}{}", quoted(key), at(path))]
    DuplicateKey {
        /// The key, decoded.
        key: String,
        /// JSON Pointer (RFC 6901) of the object holding it; empty for the
        /// top level.
        path: String,
    },
    /// Objects and arrays nested deeper than `limit`.
    #[error("nesting deeper than {limit} levels{}", at(path))]
    TooDeep {
        /// The deepest nesting accepted, [`MAX_DEPTH`].
        limit: usize,
        /// JSON Pointer of the first object or array too deep.
        path: String,
    },
    /// Not exactly one well-formed JSON value.
    #[error("malformed JSON ({0})")]
    Invalid(String),
}

/// Checks that `bytes` is one JSON value in which no object has a key twice
/// and nothing nests deeper than [`MAX_DEPTH`]. Linear in the length of
/// the input; keys without escapes are compared in place.
pub fn check_unique_keys(bytes: &[u8]) -> Result<(), JsonError> {
    let mut state = Walker::default();
    let mut json = serde_json::Deserializer::from_slice(bytes);
    let walked = Walk(&mut state)
        .deserialize(&mut json)
        .and_then(|()| json.end());
    match (walked, state.found) {
        (Ok(()), _) => Ok(()),
        (Err(_), Some(found)) => Err(found.into_error()),
        (Err(e), None) => Err(JsonError::Invalid(e.to_string())),
    }
}

/// What the walk carries from one level to the next.
#[derive(Default)]
struct Walker<'de> {
    depth: usize,
    /// Key sets of objects already walked, emptied, for reuse: one set per
    /// level is ever allocated. The hasher is std's keyed SipHash, so keys
    /// chosen to collide cannot make the walk quadratic.
    spare: Vec<HashSet<Cow<'de, str>>>,
    /// The refusal, once found; serde_json is stopped with [`STOP`].
    found: Option<Found>,
}

impl Walker<'_> {
    fn refuse<E: de::Error>(&mut self, what: Refusal) -> E {
        self.found = Some(Found {
            what,
            outside_in: Vec::new(),
        });
        E::custom(STOP)
    }

    fn enter<E: de::Error>(&mut self) -> Result<(), E> {
        if self.depth >= MAX_DEPTH {
            return Err(self.refuse(Refusal::TooDeep));
        }
        self.depth += 1;
        Ok(())
    }

    /// Called while the stop unwinds through a level: records where it was.
    fn through(&mut self, step: Step) {
        if let Some(found) = &mut self.found {
            found.outside_in.push(step);
        }
    }
}

enum Refusal {
    Duplicate(String),
    TooDeep,
}

enum Step {
    Key(String),
    Index(usize),
}

struct Found {
    what: Refusal,
    /// Where, innermost step first (it is built while unwinding).
    outside_in: Vec<Step>,
}

impl Found {
    fn into_error(self) -> JsonError {
        let mut path = String::new();
        for step in self.outside_in.iter().rev() {
            path.push('/');
            match step {
                Step::Key(key) => path.push_str(&key.replace('~', "~0").replace('/', "~1")),
                Step::Index(i) => path.push_str(&i.to_string()),
            }
        }
        match self.what {
            Refusal::Duplicate(key) => JsonError::DuplicateKey { key, path },
            Refusal::TooDeep => JsonError::TooDeep {
                limit: MAX_DEPTH,
                path,
            },
        }
    }
}

/// Walks one value of any kind, like `serde::de::IgnoredAny`, but keeping
/// the keys of each object.
struct Walk<'w, 'de>(&'w mut Walker<'de>);

impl<'de> DeserializeSeed<'de> for Walk<'_, 'de> {
    type Value = ();

    fn deserialize<D: de::Deserializer<'de>>(self, json: D) -> Result<(), D::Error> {
        json.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Walk<'_, 'de> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }

    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }

    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }

    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }

    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }

    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut items: A) -> Result<(), A::Error> {
        let walker = self.0;
        walker.enter()?;
        let mut index = 0;
        loop {
            match items.next_element_seed(Walk(walker)) {
                Ok(Some(())) => index += 1,
                Ok(None) => break,
                Err(e) => {
                    walker.through(Step::Index(index));
                    return Err(e);
                }
            }
        }
        walker.depth -= 1;
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut entries: A) -> Result<(), A::Error> {
        let walker = self.0;
        walker.enter()?;
        let mut keys = walker.spare.pop().unwrap_or_default();
        while let Some(key) = entries.next_key_seed(Key)? {
            if keys.contains(&key) {
                return Err(walker.refuse(Refusal::Duplicate(key.into_owned())));
            }
            if let Err(e) = entries.next_value_seed(Walk(walker)) {
                walker.through(Step::Key(key.into_owned()));
                return Err(e);
            }
            keys.insert(key);
        }
        keys.clear();
        walker.spare.push(keys);
        walker.depth -= 1;
        Ok(())
    }
}

/// An object's key, decoded; borrowed from the input when it has no escapes.
struct Key;

impl<'de> DeserializeSeed<'de> for Key {
    type Value = Cow<'de, str>;

    fn deserialize<D: de::Deserializer<'de>>(self, json: D) -> Result<Self::Value, D::Error> {
        json.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for Key {
    type Value = Cow<'de, str>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an object key")
    }

    fn visit_borrowed_str<E>(self, key: &'de str) -> Result<Self::Value, E> {
        Ok(Cow::Borrowed(key))
    }

    fn visit_str<E>(self, key: &str) -> Result<Self::Value, E> {
        Ok(Cow::Owned(key.to_owned()))
    }

    fn visit_string<E>(self, key: String) -> Result<Self::Value, E> {
        Ok(Cow::Owned(key))
    }
}

/// At most [`SHOWN`] characters of `text`, marked when cut.
fn clip(text: &str) -> Cow<'_, str> {
    match text.char_indices().nth(SHOWN) {
        None => Cow::Borrowed(text),
        Some((end, _)) => Cow::Owned(format!("{}…", &text[..end])),
    }
}

/// A key in quotes, escaped so that it cannot break a message's line.
fn quoted(key: &str) -> String {
    format!("{:?}", clip(key))
}

fn at(path: &str) -> String {
    if path.is_empty() {
        String::new()
    } else {
        format!(" at {}", clip(path).escape_debug())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn duplicate(key: &str, path: &str) -> Result<(), JsonError> {
        Err(JsonError::DuplicateKey {
            key: key.into(),
            path: path.into(),
        })
    }

    #[test]
    fn duplicate_keys_are_found_wherever_they_are() {
        let cases: &[(&str, &str, Result<(), JsonError>)] = &[
            ("empty object", "{}", Ok(())),
            ("empty array", "[]", Ok(())),
            ("a scalar", "\"x\"", Ok(())),
            (
                "distinct keys",
                r#"{"a":1,"b":[true,null,1.5,"s"]}"#,
                Ok(()),
            ),
            (
                "flat duplicate",
                r#"{"action":"edited","action":"created"}"#,
                duplicate("action", ""),
            ),
            (
                "nested duplicate",
                r#"{"comment":{"user":{"id":1,"id":2}}}"#,
                duplicate("id", "/comment/user"),
            ),
            (
                "duplicate in an object inside an array",
                r#"{"options":[{"name":"text"},{"value":"a","value":"b"}]}"#,
                duplicate("value", "/options/1"),
            ),
            (
                "same key in sibling objects",
                r#"{"a":{"k":1},"b":{"k":2},"c":[{"k":3},{"k":4}]}"#,
                Ok(()),
            ),
            ("same key at two levels", r#"{"k":{"k":{"k":1}}}"#, Ok(())),
            (
                "escaped key decoding to the same string",
                r#"{"a":1,"\u0061":2}"#,
                duplicate("a", ""),
            ),
            (
                "escaped slash",
                r#"{"x":{"a/b":1,"a\/b":2}}"#,
                duplicate("a/b", "/x"),
            ),
            (
                "path segments escaped as JSON Pointer",
                r#"{"a/b":{"~":{"k":1,"k":2}}}"#,
                duplicate("k", "/a~1b/~0"),
            ),
            (
                "duplicate after a deep sibling",
                r#"{"k":[[[{"k":1}]]],"k":0}"#,
                duplicate("k", ""),
            ),
            ("keys differing only in case", r#"{"a":1,"A":2}"#, Ok(())),
        ];
        for (case, json, expected) in cases {
            assert_eq!(&check_unique_keys(json.as_bytes()), expected, "{case}");
        }
    }

    #[test]
    fn nesting_is_bounded() {
        let nested = |n: usize| format!("{}{}", "[".repeat(n), "]".repeat(n));
        assert_eq!(check_unique_keys(nested(MAX_DEPTH).as_bytes()), Ok(()));
        let too_deep = check_unique_keys(nested(MAX_DEPTH + 1).as_bytes());
        let Err(JsonError::TooDeep { limit, path }) = &too_deep else {
            panic!("{too_deep:?}");
        };
        assert_eq!(*limit, MAX_DEPTH);
        assert_eq!(path, &"/0".repeat(MAX_DEPTH));
        let objects = format!("{}1{}", r#"{"a":"#.repeat(100), "}".repeat(100));
        assert!(matches!(
            check_unique_keys(objects.as_bytes()),
            Err(JsonError::TooDeep { .. })
        ));
        // Far past serde_json's own limit of 128, and no stack overflow.
        let absurd = "[".repeat(100_000);
        assert!(matches!(
            check_unique_keys(absurd.as_bytes()),
            Err(JsonError::TooDeep { .. })
        ));
    }

    #[test]
    fn malformed_json_is_invalid() {
        for json in [
            "",
            "{",
            r#"{"action":"#,
            r#"{"a":1,}"#,
            r#"{"a":1} {"a":2}"#,
            r#"{a:1}"#,
            r#"{"\ud800":1}"#,
            "[1,2",
        ] {
            let checked = check_unique_keys(json.as_bytes());
            assert!(
                matches!(checked, Err(JsonError::Invalid(_))),
                "{json}: {checked:?}"
            );
        }
        assert!(matches!(
            check_unique_keys(b"{\"a\":\"\xff\"}"),
            Err(JsonError::Invalid(_))
        ));
    }

    #[test]
    fn messages_say_plainly_what_was_wrong() {
        let message = |json: &str| check_unique_keys(json.as_bytes()).unwrap_err().to_string();
        assert_eq!(
            message(r#"{"action":"edited","action":"created"}"#),
            r#"duplicate key "action""#
        );
        assert_eq!(
            message(r#"{"event":{"reaction":"x","reaction":"y"}}"#),
            r#"duplicate key "reaction" at /event"#
        );
        assert_eq!(
            message(r#"{"a\nb":1,"a\nb":2}"#),
            r#"duplicate key "a\nb""#,
            "a key cannot break the line"
        );
        let long = "k".repeat(1000);
        let shown = message(&format!(r#"{{"{long}":1,"{long}":2}}"#));
        assert_eq!(shown, format!("duplicate key \"{}…\"", "k".repeat(SHOWN)));
        assert_eq!(
            message(&"[".repeat(100)),
            format!(
                "nesting deeper than 64 levels at {}…",
                "/0".repeat(SHOWN / 2)
            )
        );
        assert!(message("{").starts_with("malformed JSON (EOF while parsing"));
    }

    #[test]
    fn large_documents_are_walked_once() {
        let keys: Vec<String> = (0..20_000).map(|i| format!("\"k{i}\":{i}")).collect();
        let flat = format!("{{{}}}", keys.join(","));
        assert_eq!(check_unique_keys(flat.as_bytes()), Ok(()));
        let late = format!("{{{},\"k7\":0}}", keys.join(","));
        assert_eq!(check_unique_keys(late.as_bytes()), duplicate("k7", ""));
        let siblings = format!("[{}]", vec![r#"{"a":1,"b":2}"#; 20_000].join(","));
        assert_eq!(check_unique_keys(siblings.as_bytes()), Ok(()));
    }
}
