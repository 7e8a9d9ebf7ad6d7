//! The container registry over the OCI distribution API (reqwest).
//!
//! Gantry never deploys a tag. It asks the registry which manifest a tag
//! points at (`HEAD /v2/<name>/manifests/<tag>`, reading
//! `Docker-Content-Digest`) and deploys `repo@sha256:…`. Anonymous access,
//! basic credentials and the bearer-token challenge flow are supported; 5xx,
//! 429, timeouts and refused connections are retried under the shared
//! [`Policy`](crate::adapters::retry::Policy). The wire details are in
//! `docs/registry.md`.

pub mod auth;
mod client;
pub mod manifest;
pub mod reference;

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use reqwest::{Method, Response, StatusCode};
use serde::Serialize;

pub use auth::{Credentials, DockerConfig};
pub use manifest::Platform;
pub use reference::{ImageRef, Reference, ReferenceError};

use crate::config::Config;
use crate::engine::ports::{PortError, Registry};
use crate::names::Digest;

/// Largest manifest Gantry reads (4 MiB, the limit registries apply).
const MAX_MANIFEST: usize = 4 * 1024 * 1024;

/// How the adapter reaches registries.
#[derive(Debug, Clone)]
pub struct RegistrySettings {
    /// Credentials for every registry. Default: none (then `docker_config`, else anonymous).
    pub credentials: Option<Credentials>,
    /// Auth entries by registry host, from a Docker `config.json`. Default: none.
    pub docker_config: Option<DockerConfig>,
    /// Hosts (`host:port`) spoken to over plain HTTP. Default: none (HTTPS everywhere).
    pub plain_http_hosts: Vec<String>,
    /// Where to reach a host: host → base URL (`http://127.0.0.1:5000`); the
    /// image keeps its name. Default: none.
    pub endpoints: std::collections::BTreeMap<String, String>,
    /// Timeout of each request. Default: 10 s.
    pub timeout: Duration,
    /// Attempts per request for 5xx, 429, timeouts and refused connections. Default: 3.
    pub attempts: u32,
    /// Ceiling of the jittered wait before the second attempt, doubled before
    /// each later one. Default: 250 ms.
    pub backoff: Duration,
    /// Longest `Retry-After` honoured; a longer one fails at once. Default: 30 s.
    pub max_retry_after: Duration,
}

impl Default for RegistrySettings {
    fn default() -> Self {
        RegistrySettings {
            credentials: None,
            docker_config: None,
            plain_http_hosts: Vec::new(),
            endpoints: std::collections::BTreeMap::new(),
            timeout: Duration::from_secs(10),
            attempts: 3,
            backoff: Duration::from_millis(250),
            max_retry_after: Duration::from_secs(30),
        }
    }
}

impl RegistrySettings {
    /// The shared retry policy these settings stand for.
    pub fn policy(&self) -> crate::adapters::retry::Policy {
        crate::adapters::retry::Policy {
            attempts: self.attempts,
            base_delay: self.backoff,
            max_retry_after: self.max_retry_after,
            ..crate::adapters::retry::Policy::default()
        }
    }
}

/// Why a manifest could not be resolved. Never holds a credential.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RegistryError {
    /// No manifest for the tag or digest (`404`, `MANIFEST_UNKNOWN`).
    #[error("image {image} not found — was it built?")]
    NotFound {
        /// `repo:tag` or `repo@digest`.
        image: String,
    },
    /// Credentials missing or refused (`401`, `403`, or by the token endpoint).
    #[error("registry auth failed for {repository}")]
    Unauthorised {
        /// The repository as written.
        repository: String,
    },
    /// `429` with a `Retry-After` longer than Gantry waits, or on every attempt.
    #[error("registry {host} is rate limiting requests for {repository}; retry after {}s", .retry_after.as_secs())]
    RateLimited {
        /// The registry host.
        host: String,
        /// The repository as written.
        repository: String,
        /// How long the registry asked to wait.
        retry_after: Duration,
    },
    /// No answer within the timeout, on every attempt.
    #[error("registry {host} did not answer for {repository} within {}s, {attempts} attempts", .timeout.as_secs_f32())]
    Timeout {
        /// The registry host.
        host: String,
        /// The repository as written.
        repository: String,
        /// Attempts made.
        attempts: u32,
        /// The timeout of each.
        timeout: Duration,
    },
    /// Refused connections or 5xx on every attempt.
    #[error("registry {host} is unavailable for {repository} after {attempts} attempts: {detail}")]
    Unavailable {
        /// The registry host.
        host: String,
        /// The repository as written.
        repository: String,
        /// Attempts made.
        attempts: u32,
        /// The last failure.
        detail: String,
    },
    /// An answer that breaks the protocol (bad digest, unexpected status).
    #[error("registry {host} gave an unexpected answer for {repository}: {detail}")]
    Protocol {
        /// The registry host.
        host: String,
        /// The repository as written.
        repository: String,
        /// What was wrong.
        detail: String,
    },
    /// The image reference is malformed.
    #[error(transparent)]
    BadReference(#[from] ReferenceError),
    /// The registry settings cannot be used (missing secret, unreadable Docker config).
    #[error("registry settings: {0}")]
    Settings(String),
}

impl From<RegistryError> for PortError {
    fn from(e: RegistryError) -> PortError {
        let text = e.to_string();
        match e {
            RegistryError::NotFound { .. } | RegistryError::BadReference(_) => {
                PortError::NotFound(text)
            }
            RegistryError::Unauthorised { .. } => PortError::Unauthorised(text),
            RegistryError::RateLimited { retry_after, .. } => {
                PortError::RateLimited { retry_after }
            }
            RegistryError::Timeout { .. } => PortError::Timeout(text),
            RegistryError::Unavailable { .. }
            | RegistryError::Protocol { .. }
            | RegistryError::Settings(_) => PortError::Unavailable(text),
        }
    }
}

/// What a reference resolves to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Resolved {
    /// The manifest digest a deploy pins.
    pub digest: Digest,
    /// The manifest's media type.
    pub media_type: String,
    /// For an index or manifest list, the platforms it holds; else empty.
    pub platforms: Vec<Platform>,
}

/// The registry adapter.
#[derive(Debug)]
pub struct OciRegistry {
    client: reqwest::Client,
    settings: RegistrySettings,
    tokens: auth::TokenCache,
    hosts: Mutex<HashMap<String, client::HostAuth>>,
}

impl OciRegistry {
    /// An adapter with these settings.
    pub fn new(settings: RegistrySettings) -> Result<OciRegistry, RegistryError> {
        crate::tls::install_crypto();
        let client = reqwest::Client::builder()
            .timeout(settings.timeout)
            .connect_timeout(settings.timeout)
            .user_agent(concat!("gantry/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| RegistryError::Settings(format!("cannot build the HTTP client: {e}")))?;
        Ok(OciRegistry {
            client,
            settings,
            tokens: auth::TokenCache::default(),
            hosts: Mutex::new(HashMap::new()),
        })
    }

    /// An adapter with the config's `[registry]` settings; secrets and the
    /// Docker config are read now, so a missing one stops start-up.
    pub fn from_config(config: &Config) -> Result<OciRegistry, RegistryError> {
        let raw = config.registry();
        let credentials = match &raw.credentials {
            Some((user, password)) => {
                let secret = |key: &str, s: &crate::config::SecretRef| {
                    s.resolve()
                        .map_err(|e| RegistryError::Settings(format!("registry.{key}: {e}")))
                };
                let user = secret("username", user)?;
                Some(Credentials::new(
                    user.expose(),
                    secret("password", password)?,
                ))
            }
            None => None,
        };
        let docker_config = match &raw.docker_config {
            Some(path) => {
                Some(DockerConfig::load(path).map_err(|e| RegistryError::Settings(e.to_string()))?)
            }
            None => None,
        };
        OciRegistry::new(RegistrySettings {
            credentials,
            docker_config,
            plain_http_hosts: raw.plain_http_hosts.clone(),
            endpoints: raw.endpoints.clone(),
            timeout: raw.timeout,
            ..RegistrySettings::default()
        })
    }

    /// The digest, media type and platforms `image` points at now.
    pub async fn resolve(&self, image: &ImageRef) -> Result<Resolved, RegistryError> {
        let url = format!(
            "{}/v2/{}/manifests/{}",
            self.base_url(image),
            image.repository(),
            image.reference()
        );
        let head = self.send(image, Method::HEAD, &url).await?;
        if head.status() == StatusCode::NOT_FOUND {
            return Err(not_found(image));
        }
        let mut reported = None;
        if head.status().is_success() {
            let digest = self.header_digest(image, &head)?;
            let media_type = content_type(&head);
            match (digest, media_type) {
                (Some(digest), Some(media_type))
                    if manifest::is_known(&media_type) && !manifest::is_index(&media_type) =>
                {
                    return Ok(Resolved {
                        digest,
                        media_type,
                        platforms: Vec::new(),
                    });
                }
                // An index needs its body for the platforms; a missing
                // digest header needs the body to hash.
                (digest, _) => reported = digest,
            }
        }
        let resp = self.send(image, Method::GET, &url).await?;
        let status = resp.status();
        let header_digest = self.header_digest(image, &resp)?;
        let media_type = content_type(&resp);
        let body = self.read_body(image, resp, MAX_MANIFEST).await?;
        if status == StatusCode::NOT_FOUND {
            return Err(not_found(image));
        }
        if !status.is_success() {
            return Err(self.protocol(image, format!("HTTP {status}{}", error_codes(&body))));
        }
        let computed = manifest::digest_of(&body);
        if let Some(claimed) = header_digest.or(reported) {
            if claimed != computed {
                return Err(self.protocol(
                    image,
                    format!(
                        "it reports digest {claimed} for a manifest whose digest is {computed}"
                    ),
                ));
            }
        }
        let media_type = media_type
            .filter(|m| manifest::is_known(m))
            .or_else(|| manifest::declared_media_type(&body))
            .ok_or_else(|| self.protocol(image, "the manifest has no media type".into()))?;
        let platforms = if manifest::is_index(&media_type) {
            manifest::platforms(&body).map_err(|e| self.protocol(image, e))?
        } else {
            Vec::new()
        };
        Ok(Resolved {
            digest: computed,
            media_type,
            platforms,
        })
    }

    /// The `Docker-Content-Digest` of an answer; it must be a sha256 digest
    /// and, for a digest reference, the one asked for.
    fn header_digest(
        &self,
        image: &ImageRef,
        resp: &Response,
    ) -> Result<Option<Digest>, RegistryError> {
        let Some(value) = resp.headers().get("docker-content-digest") else {
            return Ok(None);
        };
        let text = value.to_str().unwrap_or_default().trim();
        let digest = Digest::new(text).map_err(|_| {
            self.protocol(
                image,
                format!(
                    "Docker-Content-Digest `{}` is not a sha256 digest",
                    crate::names::escape_for_display(text)
                ),
            )
        })?;
        match image.reference() {
            Reference::Digest(asked) if *asked != digest => {
                Err(self.protocol(image, format!("asked for {asked}, it answered {digest}")))
            }
            _ => Ok(Some(digest)),
        }
    }

    fn protocol(&self, image: &ImageRef, detail: String) -> RegistryError {
        RegistryError::Protocol {
            host: image.api_host().to_owned(),
            repository: image.name().to_owned(),
            detail,
        }
    }
}

fn not_found(image: &ImageRef) -> RegistryError {
    RegistryError::NotFound {
        image: image.to_string(),
    }
}

/// The bare media type of an answer's `Content-Type`.
fn content_type(resp: &Response) -> Option<String> {
    let value = resp.headers().get(reqwest::header::CONTENT_TYPE)?;
    let bare = manifest::bare_media_type(value.to_str().ok()?);
    (!bare.is_empty()).then(|| bare.to_owned())
}

/// `: CODE message; …` from an OCI error body, or nothing.
fn error_codes(body: &[u8]) -> String {
    #[derive(serde::Deserialize)]
    struct Body {
        errors: Vec<Entry>,
    }
    #[derive(serde::Deserialize)]
    struct Entry {
        code: String,
        #[serde(default)]
        message: String,
    }
    let Ok(parsed) = serde_json::from_slice::<Body>(body) else {
        return String::new();
    };
    let parts: Vec<String> = parsed
        .errors
        .iter()
        .take(3)
        .map(|e| {
            crate::names::escape_for_display(
                &format!("{} {}", e.code, e.message)
                    .chars()
                    .take(200)
                    .collect::<String>(),
            )
        })
        .collect();
    if parts.is_empty() {
        String::new()
    } else {
        format!(": {}", parts.join("; "))
    }
}

#[async_trait]
impl Registry for OciRegistry {
    async fn digest(&self, image: &str, tag: &str) -> Result<Digest, PortError> {
        let reference = ImageRef::with_tag(image, tag).map_err(RegistryError::from)?;
        Ok(self.resolve(&reference).await?.digest)
    }

    /// `GET /v2/`, the API's version check: `200`, or `401` when it wants
    /// credentials, both mean the registry is there.
    async fn ping(&self, image: &str) -> Result<(), PortError> {
        let reference = ImageRef::with_tag(image, "latest").map_err(RegistryError::from)?;
        let url = format!("{}/v2/", self.base_url(&reference));
        let host = reference.registry().to_owned();
        let answer = self
            .client
            .get(&url)
            .send()
            .await
            .map_err(|e| PortError::Unavailable(format!("registry {host}: {e}")))?;
        match answer.status() {
            s if s.is_success() || s == reqwest::StatusCode::UNAUTHORIZED => Ok(()),
            s => Err(PortError::Unavailable(format!(
                "registry {host}: GET /v2/ answered {s}"
            ))),
        }
    }
}
