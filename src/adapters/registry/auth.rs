//! Registry auth: credentials, `WWW-Authenticate` challenges, bearer tokens
//! cached until they expire, and Docker `config.json` auth entries.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use serde::Deserialize;

use super::reference::DOCKER_HUB;
use crate::config::Secret;

/// Largest Docker config file read (1 MiB).
const MAX_DOCKER_CONFIG: u64 = 1024 * 1024;

/// A user name and password (or access token) for one registry.
#[derive(Clone)]
pub struct Credentials {
    /// The user name.
    pub username: String,
    /// The password or token; never printed.
    pub password: Secret,
}

impl Credentials {
    /// Credentials from a user name and a password.
    pub fn new(username: impl Into<String>, password: Secret) -> Credentials {
        Credentials {
            username: username.into(),
            password,
        }
    }

    /// The `Authorization` value for HTTP basic auth.
    pub fn basic(&self) -> String {
        let raw = format!("{}:{}", self.username, self.password.expose());
        format!("Basic {}", STANDARD.encode(raw))
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Credentials({}, ***)", self.username)
    }
}

/// What a registry's `401` asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Challenge {
    /// HTTP basic auth.
    Basic {
        /// The realm.
        realm: String,
    },
    /// A bearer token from `realm`, for `service` and `scope`.
    Bearer {
        /// The token endpoint's URL.
        realm: String,
        /// The service the token is for.
        service: Option<String>,
        /// The access asked for, e.g. `repository:acme/web:pull`.
        scope: Option<String>,
    },
}

type Params = Vec<(String, String)>;

/// Splits a `WWW-Authenticate` value into challenges and their parameters
/// (RFC 7235: `scheme k=v, k="quoted, value", Other k=v`).
fn challenges(header: &str) -> Vec<(String, Params)> {
    let b = header.as_bytes();
    let sep = |c: u8| matches!(c, b' ' | b'\t' | b',');
    let token_end = |mut i: usize| {
        while i < b.len() && !matches!(b[i], b' ' | b'\t' | b',' | b'=' | b'"') {
            i += 1;
        }
        i
    };
    let skip_blank = |mut i: usize| {
        while i < b.len() && matches!(b[i], b' ' | b'\t') {
            i += 1;
        }
        i
    };
    let mut out = Vec::new();
    let mut i = 0;
    loop {
        while i < b.len() && sep(b[i]) {
            i += 1;
        }
        if i >= b.len() {
            break;
        }
        let end = token_end(i);
        if end == i {
            i += 1;
            continue;
        }
        let scheme = header[i..end].to_ascii_lowercase();
        i = end;
        let mut params = Vec::new();
        loop {
            let mut j = i;
            while j < b.len() && sep(b[j]) {
                j += 1;
            }
            let key_end = token_end(j);
            let eq = skip_blank(key_end);
            if key_end == j || eq >= b.len() || b[eq] != b'=' {
                break;
            }
            let key = header[j..key_end].to_ascii_lowercase();
            let mut k = skip_blank(eq + 1);
            let mut value = Vec::new();
            if k < b.len() && b[k] == b'"' {
                k += 1;
                while k < b.len() && b[k] != b'"' {
                    if b[k] == b'\\' && k + 1 < b.len() {
                        k += 1;
                    }
                    value.push(b[k]);
                    k += 1;
                }
                k += 1;
            } else {
                while k < b.len() && !sep(b[k]) {
                    value.push(b[k]);
                    k += 1;
                }
            }
            params.push((key, String::from_utf8_lossy(&value).into_owned()));
            i = k.min(b.len());
        }
        out.push((scheme, params));
    }
    out
}

impl Challenge {
    /// The challenge Gantry answers from a `WWW-Authenticate` value: bearer
    /// if offered, else basic; `None` for anything else.
    pub fn parse(header: &str) -> Option<Challenge> {
        let all = challenges(header);
        let param = |params: &Params, key: &str| {
            params
                .iter()
                .find(|(k, _)| k == key)
                .map(|(_, v)| v.clone())
        };
        let bearer = all.iter().find(|(s, _)| s == "bearer").and_then(|(_, p)| {
            Some(Challenge::Bearer {
                realm: param(p, "realm").filter(|r| !r.is_empty())?,
                service: param(p, "service"),
                scope: param(p, "scope"),
            })
        });
        bearer.or_else(|| {
            all.iter()
                .find(|(s, _)| s == "basic")
                .map(|(_, p)| Challenge::Basic {
                    realm: param(p, "realm").unwrap_or_default(),
                })
        })
    }
}

/// A token endpoint's answer (Docker token spec; OAuth2 `access_token` too).
#[derive(Deserialize)]
pub struct TokenResponse {
    token: Option<String>,
    access_token: Option<String>,
    expires_in: Option<u64>,
}

impl TokenResponse {
    /// The token and how long it lives (60 s when the endpoint does not say).
    pub fn into_token(self) -> Option<(Secret, Duration)> {
        let token = self.token.or(self.access_token).filter(|t| !t.is_empty())?;
        let lifetime = Duration::from_secs(self.expires_in.unwrap_or(60));
        Some((Secret::new(token), lifetime))
    }
}

/// Bearer tokens by realm, service and scope, each until shortly before it expires.
#[derive(Debug, Default)]
pub struct TokenCache {
    entries: Mutex<HashMap<String, (Secret, Instant)>>,
}

impl TokenCache {
    fn entries(&self) -> std::sync::MutexGuard<'_, HashMap<String, (Secret, Instant)>> {
        // A map insert cannot be left half-done, so a poisoned lock is still usable.
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The cached token for `key`, if it is still good at `now`.
    pub fn get(&self, key: &str, now: Instant) -> Option<Secret> {
        let mut entries = self.entries();
        match entries.get(key) {
            Some((token, until)) if now < *until => Some(token.clone()),
            Some(_) => {
                entries.remove(key);
                None
            }
            None => None,
        }
    }

    /// Keeps `token` for `lifetime` from `now`, less a margin (a tenth, at
    /// most 10 s) so that it is not sent in its last moments.
    pub fn put(&self, key: String, token: Secret, lifetime: Duration, now: Instant) {
        let margin = (lifetime / 10).min(Duration::from_secs(10));
        self.entries()
            .insert(key, (token, now + lifetime.saturating_sub(margin)));
    }

    /// Drops the token for `key` (the registry refused it).
    pub fn forget(&self, key: &str) {
        self.entries().remove(key);
    }
}

/// Why a Docker `config.json` could not be used. Never holds a secret.
#[derive(Debug, thiserror::Error)]
#[error("Docker config {}: {why}", path.display())]
pub struct DockerConfigError {
    /// The file.
    pub path: PathBuf,
    /// What is wrong.
    pub why: String,
}

/// The `auths` entries of a Docker `config.json`, by registry host.
#[derive(Debug, Clone, Default)]
pub struct DockerConfig {
    auths: BTreeMap<String, Credentials>,
}

#[derive(Deserialize)]
struct RawDockerConfig {
    #[serde(default)]
    auths: BTreeMap<String, RawAuth>,
}

#[derive(Deserialize)]
struct RawAuth {
    auth: Option<String>,
    username: Option<String>,
    password: Option<String>,
}

/// `https://index.docker.io/v1/` → `docker.io`; `http://h:5000/x` → `h:5000`.
fn normalise_host(key: &str) -> String {
    let rest = key
        .strip_prefix("https://")
        .or_else(|| key.strip_prefix("http://"))
        .unwrap_or(key);
    let host = rest.split('/').next().unwrap_or_default();
    match host {
        "index.docker.io" | "registry-1.docker.io" => DOCKER_HUB.to_owned(),
        other => other.to_owned(),
    }
}

impl DockerConfig {
    /// Reads a `config.json`.
    pub fn load(path: &Path) -> Result<DockerConfig, DockerConfigError> {
        let err = |why: String| DockerConfigError {
            path: path.to_owned(),
            why,
        };
        let file = std::fs::File::open(path).map_err(|e| err(e.to_string()))?;
        let mut text = String::new();
        file.take(MAX_DOCKER_CONFIG + 1)
            .read_to_string(&mut text)
            .map_err(|e| err(e.to_string()))?;
        if text.len() as u64 > MAX_DOCKER_CONFIG {
            return Err(err(format!("larger than {MAX_DOCKER_CONFIG} bytes")));
        }
        DockerConfig::parse(&text).map_err(err)
    }

    /// Parses a `config.json`'s text. Entries with neither `auth` nor
    /// `username`/`password` (credential helpers, identity tokens) are skipped.
    pub fn parse(text: &str) -> Result<DockerConfig, String> {
        // serde's messages can quote the offending value, which may be a secret.
        let raw: RawDockerConfig = serde_json::from_str(text).map_err(|e| {
            format!(
                "not a Docker config (line {}, column {})",
                e.line(),
                e.column()
            )
        })?;
        let mut auths = BTreeMap::new();
        for (key, entry) in raw.auths {
            let host = normalise_host(&key);
            let bad = || format!("the `auth` of {host} is not base64 of `user:password`");
            let found = match (entry.auth.filter(|a| !a.is_empty()), entry.username) {
                (Some(auth), _) => {
                    let bytes = STANDARD.decode(auth.trim()).map_err(|_| bad())?;
                    let text = String::from_utf8(bytes).map_err(|_| bad())?;
                    let (user, pass) = text.split_once(':').ok_or_else(bad)?;
                    Some(Credentials::new(user, Secret::new(pass.to_owned())))
                }
                (None, Some(user)) => entry
                    .password
                    .map(|p| Credentials::new(user, Secret::new(p))),
                (None, None) => None,
            };
            if let Some(c) = found {
                auths.insert(host, c);
            }
        }
        Ok(DockerConfig { auths })
    }

    /// The credentials for a registry (`host[:port]`, `docker.io` for Docker Hub).
    pub fn find(&self, registry: &str) -> Option<&Credentials> {
        self.auths.get(&normalise_host(registry))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenges_parse() {
        let cases = [
            (
                r#"Bearer realm="https://auth.example/token",service="registry.example",scope="repository:acme/web:pull""#,
                Some(Challenge::Bearer {
                    realm: "https://auth.example/token".into(),
                    service: Some("registry.example".into()),
                    scope: Some("repository:acme/web:pull".into()),
                }),
            ),
            (
                r#"Basic realm="test-realm""#,
                Some(Challenge::Basic {
                    realm: "test-realm".into(),
                }),
            ),
            (
                r#"Basic realm="x", Bearer realm="https://t/token", scope="repository:a/b:pull,push""#,
                Some(Challenge::Bearer {
                    realm: "https://t/token".into(),
                    service: None,
                    scope: Some("repository:a/b:pull,push".into()),
                }),
            ),
            (
                r#"bearer REALM=https://t/token , service = "s\"q""#,
                Some(Challenge::Bearer {
                    realm: "https://t/token".into(),
                    service: Some("s\"q".into()),
                    scope: None,
                }),
            ),
            ("Basic", Some(Challenge::Basic { realm: "".into() })),
            (r#"Bearer service="s""#, None),
            ("Negotiate abc==", None),
            ("", None),
            (r#"="",,,=Bearer"#, None),
        ];
        for (header, want) in cases {
            assert_eq!(Challenge::parse(header), want, "{header}");
        }
    }

    #[test]
    fn tokens_expire() {
        let cache = TokenCache::default();
        let t0 = Instant::now();
        cache.put(
            "k".into(),
            Secret::new("tok".into()),
            Duration::from_secs(60),
            t0,
        );
        let at = |s| t0 + Duration::from_secs(s);
        assert_eq!(cache.get("k", at(53)).unwrap().expose(), "tok");
        assert!(cache.get("k", at(54)).is_none(), "renewed 6 s early");
        assert!(cache.get("k", at(1)).is_none(), "dropped once expired");
        cache.put(
            "k".into(),
            Secret::new("t2".into()),
            Duration::from_secs(300),
            t0,
        );
        assert!(cache.get("k", at(289)).is_some());
        assert!(cache.get("k", at(290)).is_none(), "at most 10 s early");
        cache.put(
            "k".into(),
            Secret::new("t3".into()),
            Duration::from_secs(300),
            t0,
        );
        cache.forget("k");
        assert!(cache.get("k", t0).is_none());
        assert!(cache.get("other", t0).is_none());
    }

    #[test]
    fn token_responses() {
        let r: TokenResponse = serde_json::from_str(r#"{"token":"a","expires_in":300}"#).unwrap();
        let (t, life) = r.into_token().unwrap();
        assert_eq!((t.expose(), life), ("a", Duration::from_secs(300)));
        let r: TokenResponse = serde_json::from_str(r#"{"access_token":"b"}"#).unwrap();
        let (t, life) = r.into_token().unwrap();
        assert_eq!((t.expose(), life), ("b", Duration::from_secs(60)));
        let r: TokenResponse = serde_json::from_str(r#"{"token":""}"#).unwrap();
        assert!(r.into_token().is_none());
    }

    #[test]
    fn docker_config_auths() {
        let auth = STANDARD.encode("alice:pa:ss");
        let text = format!(
            r#"{{"auths":{{
                "127.0.0.1:5000":{{"auth":"{auth}"}},
                "https://index.docker.io/v1/":{{"username":"bob","password":"hub"}},
                "https://ghcr.io":{{"auth":"{auth}"}},
                "helper.example":{{}}
              }},"credsStore":"desktop"}}"#
        );
        let config = DockerConfig::parse(&text).unwrap();
        let c = config.find("127.0.0.1:5000").unwrap();
        assert_eq!(
            (c.username.as_str(), c.password.expose()),
            ("alice", "pa:ss")
        );
        assert_eq!(config.find("docker.io").unwrap().username, "bob");
        assert_eq!(config.find("ghcr.io").unwrap().username, "alice");
        assert!(config.find("helper.example").is_none());
        assert!(config.find("127.0.0.1:5001").is_none());
        assert!(!format!("{config:?}").contains("pa:ss"));

        let bad = DockerConfig::parse(r#"{"auths":{"h":{"auth":"!!hunter2"}}}"#).unwrap_err();
        assert!(
            bad.contains("not base64") && !bad.contains("hunter2"),
            "{bad}"
        );
        let bad = DockerConfig::parse(r#"{"auths":"hunter2"}"#).unwrap_err();
        assert!(!bad.contains("hunter2"), "{bad}");
        let no_colon = STANDARD.encode("hunter2");
        let bad = DockerConfig::parse(&format!(r#"{{"auths":{{"h":{{"auth":"{no_colon}"}}}}}}"#));
        assert!(bad.is_err());
    }

    #[test]
    fn credentials_are_redacted() {
        let c = Credentials::new("alice", Secret::new("hunter2".into()));
        assert_eq!(format!("{c:?}"), "Credentials(alice, ***)");
        assert_eq!(
            c.basic(),
            format!("Basic {}", STANDARD.encode("alice:hunter2"))
        );
    }
}
