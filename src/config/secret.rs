//! Secrets: where config says to find them, and a type that never prints them.
//!
//! Config never holds a secret value, only a reference: `{ env = "NAME" }` or
//! `{ file = "PATH" }`. A relative `file` path is taken relative to the
//! working directory of the process.

use std::ffi::OsString;
use std::fmt;
use std::io::Read;
use std::path::{Path, PathBuf};

use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::Deserialize;

/// Largest secret file Gantry reads (64 KiB); keys and tokens are far smaller.
const MAX_SECRET_FILE: u64 = 64 * 1024;

/// Where a secret comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretRef {
    /// An environment variable of this name.
    Env(String),
    /// A file at this path; its trailing newline is dropped.
    File(PathBuf),
}

/// A secret value; `Debug` and `Display` print `***`. No `PartialEq`: compare
/// MACs in constant time instead.
#[derive(Clone)]
pub struct Secret(String);

/// Why a secret could not be read. Never holds the value.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    /// The environment variable is not set.
    #[error("environment variable {name} is not set")]
    EnvMissing {
        /// The variable's name.
        name: String,
    },
    /// The environment variable is not valid UTF-8.
    #[error("environment variable {name} is not valid UTF-8")]
    EnvNotUnicode {
        /// The variable's name.
        name: String,
    },
    /// The file could not be read.
    #[error("cannot read secret file {}: {source}", path.display())]
    File {
        /// The file's path.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The file is larger than any secret should be.
    #[error("secret file {} is larger than {limit} bytes", path.display())]
    FileTooLarge {
        /// The file's path.
        path: PathBuf,
        /// The limit in bytes.
        limit: u64,
    },
    /// The file is not valid UTF-8.
    #[error("secret file {} is not valid UTF-8", path.display())]
    FileNotUnicode {
        /// The file's path.
        path: PathBuf,
    },
    /// The secret is empty, which would make signatures trivially forgeable.
    #[error("{source_name} is empty")]
    Empty {
        /// Where it came from, as [`SecretRef::describe`] puts it.
        source_name: String,
    },
}

impl Secret {
    /// Wraps a value.
    pub fn new(value: String) -> Secret {
        Secret(value)
    }

    /// The value itself; call only where it is handed to a signer or client.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl SecretRef {
    /// Where the secret comes from, e.g. `env SLACK_SIGNING_SECRET`.
    pub fn describe(&self) -> String {
        match self {
            SecretRef::Env(name) => format!("env {name}"),
            SecretRef::File(path) => format!("file {}", path.display()),
        }
    }

    /// Reads the secret from the process environment or the file system.
    pub fn resolve(&self) -> Result<Secret, SecretError> {
        self.resolve_with(|name| std::env::var_os(name))
    }

    /// Like [`SecretRef::resolve`], with environment look-ups done by `env`.
    pub fn resolve_with(
        &self,
        env: impl Fn(&str) -> Option<OsString>,
    ) -> Result<Secret, SecretError> {
        let value = match self {
            SecretRef::Env(name) => env(name)
                .ok_or_else(|| SecretError::EnvMissing { name: name.clone() })?
                .into_string()
                .map_err(|_| SecretError::EnvNotUnicode { name: name.clone() })?,
            SecretRef::File(path) => read_file(path)?,
        };
        let value = value.trim_end_matches(['\n', '\r']).to_owned();
        if value.is_empty() {
            return Err(SecretError::Empty {
                source_name: self.describe(),
            });
        }
        Ok(Secret(value))
    }
}

fn read_file(path: &Path) -> Result<String, SecretError> {
    let io = |source| SecretError::File {
        path: path.to_owned(),
        source,
    };
    let file = std::fs::File::open(path).map_err(io)?;
    let mut bytes = Vec::new();
    file.take(MAX_SECRET_FILE + 1)
        .read_to_end(&mut bytes)
        .map_err(io)?;
    if bytes.len() as u64 > MAX_SECRET_FILE {
        return Err(SecretError::FileTooLarge {
            path: path.to_owned(),
            limit: MAX_SECRET_FILE,
        });
    }
    String::from_utf8(bytes).map_err(|_| SecretError::FileNotUnicode {
        path: path.to_owned(),
    })
}

const INLINE: &str = "secrets are never written inline in config; \
    use { env = \"VARIABLE\" } or { file = \"PATH\" }";

fn is_env_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    matches!(bytes.next(), Some(b) if b.is_ascii_alphabetic() || b == b'_')
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
        && name.len() <= 128
}

struct SecretRefVisitor;

impl<'de> Visitor<'de> for SecretRefVisitor {
    type Value = SecretRef;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("{ env = \"VARIABLE\" } or { file = \"PATH\" }")
    }

    fn visit_str<E: de::Error>(self, _: &str) -> Result<SecretRef, E> {
        Err(E::custom(INLINE))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<SecretRef, A::Error> {
        let mut found: Option<SecretRef> = None;
        while let Some(key) = map.next_key::<String>()? {
            let value = match key.as_str() {
                "env" => {
                    let name: String = map.next_value()?;
                    if !is_env_name(&name) {
                        return Err(de::Error::custom(format!(
                            "`{}` is not an environment variable name",
                            crate::names::escape_for_display(&name)
                        )));
                    }
                    SecretRef::Env(name)
                }
                "file" => {
                    let path: String = map.next_value()?;
                    if path.is_empty() || path.chars().any(char::is_control) {
                        return Err(de::Error::custom(
                            "secret file path is empty or holds control characters",
                        ));
                    }
                    SecretRef::File(PathBuf::from(path))
                }
                "value" | "secret" | "token" => return Err(de::Error::custom(INLINE)),
                other => return Err(de::Error::unknown_field(other, &["env", "file"])),
            };
            if found.replace(value).is_some() {
                return Err(de::Error::custom("give exactly one of `env` or `file`"));
            }
        }
        found.ok_or_else(|| de::Error::custom("give exactly one of `env` or `file`"))
    }
}

impl<'de> Deserialize<'de> for SecretRef {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<SecretRef, D::Error> {
        deserializer.deserialize_any(SecretRefVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize)]
    struct Holder {
        s: SecretRef,
    }

    fn parse(text: &str) -> Result<SecretRef, String> {
        toml::from_str::<Holder>(text)
            .map(|h| h.s)
            .map_err(|e| e.message().to_owned())
    }

    #[test]
    fn references_parse() {
        assert_eq!(
            parse(r#"s = { env = "A_B" }"#),
            Ok(SecretRef::Env("A_B".into()))
        );
        assert_eq!(
            parse(r#"s = { file = "/run/s" }"#),
            Ok(SecretRef::File("/run/s".into()))
        );
        let cases = [
            (r#"s = "hunter2""#, "never written inline"),
            (r#"s = { value = "hunter2" }"#, "never written inline"),
            (r#"s = { env = "A", file = "b" }"#, "exactly one"),
            (r#"s = {}"#, "exactly one"),
            (r#"s = { env = "A B" }"#, "not an environment variable name"),
            (r#"s = { envv = "A" }"#, "unknown field `envv`"),
            (r#"s = 3"#, "invalid type"),
        ];
        for (text, want) in cases {
            let err = parse(text).unwrap_err();
            assert!(err.contains(want), "{text}: {err}");
            assert!(!err.contains("hunter2"), "{err}");
        }
    }

    #[test]
    fn secrets_are_redacted() {
        let s = Secret::new("hunter2".into());
        assert_eq!(format!("{s} {s:?}"), "*** ***");
        assert_eq!(s.expose(), "hunter2");
    }

    #[test]
    fn resolve_from_env_and_file() {
        let env = |n: &str| (n == "SET").then(|| OsString::from("tok\n"));
        let r = SecretRef::Env("SET".into()).resolve_with(env).unwrap();
        assert_eq!(r.expose(), "tok");
        let err = SecretRef::Env("UNSET".into())
            .resolve_with(env)
            .unwrap_err();
        assert_eq!(err.to_string(), "environment variable UNSET is not set");
        let empty = |_: &str| Some(OsString::from("\n"));
        let err = SecretRef::Env("E".into()).resolve_with(empty).unwrap_err();
        assert_eq!(err.to_string(), "env E is empty");

        let dir = std::env::temp_dir().join(format!("gantry-secret-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("token");
        std::fs::write(&path, "s3cret\r\n").unwrap();
        let r = SecretRef::File(path.clone()).resolve_with(env).unwrap();
        assert_eq!(r.expose(), "s3cret");
        std::fs::write(&path, vec![b'x'; 70_000]).unwrap();
        let err = SecretRef::File(path.clone()).resolve_with(env).unwrap_err();
        assert!(matches!(err, SecretError::FileTooLarge { .. }), "{err}");
        let missing = dir.join("missing");
        let err = SecretRef::File(missing).resolve_with(env).unwrap_err();
        assert!(err.to_string().contains("missing"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
