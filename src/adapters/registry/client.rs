//! One registry exchange: the request, one answered auth challenge, and
//! retries of transient failures under the shared
//! [`Policy`](crate::adapters::retry::Policy). Every request is a read
//! (`HEAD`, `GET`, a token `GET`), so refused or dropped connections,
//! timeouts, `5xx` and `429` are all safe to send again.

use std::time::{Duration, Instant};

use reqwest::header::{HeaderValue, ACCEPT, AUTHORIZATION, WWW_AUTHENTICATE};
use reqwest::{Method, RequestBuilder, Response, StatusCode, Url};

use super::auth::{Challenge, Credentials};
use super::{manifest, ImageRef, OciRegistry, RegistryError};
use crate::adapters::retry::{self, GaveUp, Verdict};

/// Largest token endpoint answer read (64 KiB).
const MAX_TOKEN_ANSWER: usize = 64 * 1024;

/// How a registry host asked to be authenticated, so later requests can
/// answer up front instead of collecting a `401` first.
#[derive(Debug, Clone)]
pub(super) enum HostAuth {
    /// HTTP basic.
    Basic,
    /// Bearer tokens from this realm and service.
    Bearer {
        realm: String,
        service: Option<String>,
    },
}

fn token_key(realm: &str, service: Option<&str>, scope: &str) -> String {
    format!("{realm} {} {scope}", service.unwrap_or_default())
}

/// An `Authorization` value, marked sensitive so no debug output shows it.
fn secret_header(value: &str) -> Option<HeaderValue> {
    let mut v = HeaderValue::from_str(value).ok()?;
    v.set_sensitive(true);
    Some(v)
}

/// The innermost cause of a transport error, e.g. `Connection refused (os error 111)`.
fn transport_detail(e: &reqwest::Error) -> String {
    let mut cause: &dyn std::error::Error = e;
    while let Some(next) = cause.source() {
        cause = next;
    }
    cause.to_string()
}

/// Why one attempt of a request failed, before it becomes a [`RegistryError`].
enum Trouble {
    /// `429`, with the wait asked for.
    RateLimited(Option<Duration>),
    /// A `5xx`, with the error codes of its body.
    Server(StatusCode, String),
    /// No answer within the timeout.
    Timeout,
    /// The connection failed or broke off.
    Transport(String),
    /// The request could not be built.
    Protocol(String),
}

impl OciRegistry {
    fn is_plain(&self, authority: &str) -> bool {
        self.settings
            .plain_http_hosts
            .iter()
            .any(|h| h == authority)
    }

    /// `http://host` for hosts configured as plain HTTP, else `https://host`.
    pub(super) fn base_url(&self, image: &ImageRef) -> String {
        let host = image.api_host();
        if let Some(endpoint) = self.settings.endpoints.get(host) {
            return endpoint.clone();
        }
        let scheme = if self.is_plain(host) { "http" } else { "https" };
        format!("{scheme}://{host}")
    }

    fn credentials_for(&self, registry: &str) -> Option<&Credentials> {
        self.settings
            .credentials
            .as_ref()
            .or_else(|| self.settings.docker_config.as_ref()?.find(registry))
    }

    fn unauthorised(image: &ImageRef) -> RegistryError {
        RegistryError::Unauthorised {
            repository: image.name().to_owned(),
        }
    }

    fn host_auth(&self) -> std::sync::MutexGuard<'_, std::collections::HashMap<String, HostAuth>> {
        // Single inserts only, so a poisoned lock holds nothing half-written.
        self.hosts.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// What to send before any challenge, from what the host asked last time.
    fn auth_up_front(&self, image: &ImageRef, scope: &str) -> Option<String> {
        let known = self.host_auth().get(image.api_host()).cloned()?;
        match known {
            HostAuth::Basic => self
                .credentials_for(image.registry())
                .map(Credentials::basic),
            HostAuth::Bearer { realm, service } => self
                .tokens
                .get(
                    &token_key(&realm, service.as_deref(), scope),
                    Instant::now(),
                )
                .map(|t| format!("Bearer {}", t.expose())),
        }
    }

    /// Sends a manifest request about `image`: with the auth the host asked
    /// for before, answering one fresh challenge, retrying transient failures.
    pub(super) async fn send(
        &self,
        image: &ImageRef,
        method: Method,
        url: &str,
    ) -> Result<Response, RegistryError> {
        let scope = format!("repository:{}:pull", image.repository());
        let mut auth = self.auth_up_front(image, &scope);
        let mut challenged = false;
        loop {
            let header = match &auth {
                Some(a) => Some(secret_header(a).ok_or_else(|| Self::unauthorised(image))?),
                None => None,
            };
            let resp = self
                .execute(image, || {
                    let request = self
                        .client
                        .request(method.clone(), url)
                        .header(ACCEPT, manifest::ACCEPT);
                    match &header {
                        Some(h) => request.header(AUTHORIZATION, h.clone()),
                        None => request,
                    }
                })
                .await?;
            match resp.status() {
                StatusCode::UNAUTHORIZED if !challenged => {
                    challenged = true;
                    let offered = resp
                        .headers()
                        .get(WWW_AUTHENTICATE)
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or_default();
                    let challenge =
                        Challenge::parse(offered).ok_or_else(|| Self::unauthorised(image))?;
                    auth = Some(self.answer(image, &challenge, &scope).await?);
                }
                StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => {
                    return Err(Self::unauthorised(image))
                }
                _ => return Ok(resp),
            }
        }
    }

    /// The `Authorization` value that answers `challenge`.
    async fn answer(
        &self,
        image: &ImageRef,
        challenge: &Challenge,
        scope: &str,
    ) -> Result<String, RegistryError> {
        let host = image.api_host().to_owned();
        match challenge {
            Challenge::Basic { .. } => {
                let credentials = self
                    .credentials_for(image.registry())
                    .ok_or_else(|| Self::unauthorised(image))?;
                self.host_auth().insert(host, HostAuth::Basic);
                Ok(credentials.basic())
            }
            Challenge::Bearer {
                realm,
                service,
                scope: asked,
            } => {
                let key = token_key(realm, service.as_deref(), scope);
                // A token that was sent and refused is not used again.
                self.tokens.forget(&key);
                let wanted = asked.as_deref().unwrap_or(scope);
                let (token, lifetime) = self
                    .fetch_token(image, realm, service.as_deref(), wanted)
                    .await?;
                let value = format!("Bearer {}", token.expose());
                self.tokens.put(key, token, lifetime, Instant::now());
                self.host_auth().insert(
                    host,
                    HostAuth::Bearer {
                        realm: realm.clone(),
                        service: service.clone(),
                    },
                );
                Ok(value)
            }
        }
    }

    /// Asks the realm for a token, with the registry's credentials if any.
    async fn fetch_token(
        &self,
        image: &ImageRef,
        realm: &str,
        service: Option<&str>,
        scope: &str,
    ) -> Result<(crate::config::Secret, Duration), RegistryError> {
        let mut url = Url::parse(realm)
            .map_err(|_| self.protocol(image, "the token realm is not a URL".into()))?;
        let credentials = self.credentials_for(image.registry());
        let authority = url.authority().to_owned();
        let secure =
            url.scheme() == "https" || (url.scheme() == "http" && self.is_plain(&authority));
        if credentials.is_some() && !secure {
            return Err(self.protocol(
                image,
                format!(
                    "refusing to send credentials to the token realm {authority} over plain HTTP"
                ),
            ));
        }
        {
            let mut query = url.query_pairs_mut();
            if let Some(service) = service {
                query.append_pair("service", service);
            }
            query.append_pair("scope", scope);
        }
        let header = match credentials {
            Some(c) => Some(secret_header(&c.basic()).ok_or_else(|| Self::unauthorised(image))?),
            None => None,
        };
        let resp = self
            .execute(image, || {
                let request = self.client.get(url.clone());
                match &header {
                    Some(h) => request.header(AUTHORIZATION, h.clone()),
                    None => request,
                }
            })
            .await?;
        let status = resp.status();
        if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
            return Err(Self::unauthorised(image));
        }
        let body = self.read_body(image, resp, MAX_TOKEN_ANSWER).await?;
        if !status.is_success() {
            return Err(self.protocol(image, format!("the token endpoint answered HTTP {status}")));
        }
        serde_json::from_slice::<super::auth::TokenResponse>(&body)
            .ok()
            .and_then(super::auth::TokenResponse::into_token)
            .ok_or_else(|| self.protocol(image, "the token endpoint sent no token".into()))
    }

    /// Sends the request `build` makes, again after a backoff for refused
    /// connections, timeouts, 5xx and 429, up to the configured attempts.
    async fn execute(
        &self,
        image: &ImageRef,
        build: impl Fn() -> RequestBuilder,
    ) -> Result<Response, RegistryError> {
        let build = &build;
        let policy = self.settings.policy();
        let sent = policy
            .run(|| async move {
                match build().send().await {
                    Ok(resp) if resp.status() == StatusCode::TOO_MANY_REQUESTS => {
                        let wait = retry::retry_after(resp.headers());
                        let trouble = Trouble::RateLimited(wait);
                        Err(match wait {
                            Some(wait) => Verdict::RetryAfter(trouble, wait),
                            None => Verdict::Retry(trouble),
                        })
                    }
                    Ok(resp) if resp.status().is_server_error() => {
                        let status = resp.status();
                        let body = self
                            .read_body(image, resp, 64 * 1024)
                            .await
                            .unwrap_or_default();
                        let codes = super::error_codes(&body);
                        Err(Verdict::Retry(Trouble::Server(status, codes)))
                    }
                    Ok(resp) => Ok(resp),
                    Err(e) if e.is_builder() => {
                        Err(Verdict::Fail(Trouble::Protocol(transport_detail(&e))))
                    }
                    Err(e) if e.is_timeout() => Err(Verdict::Retry(Trouble::Timeout)),
                    Err(e) => Err(Verdict::Retry(Trouble::Transport(transport_detail(&e)))),
                }
            })
            .await;
        sent.map_err(|g| self.gave_up(image, g))
    }

    /// The error for a request the policy gave up on.
    fn gave_up(&self, image: &ImageRef, g: GaveUp<Trouble>) -> RegistryError {
        let host = image.api_host().to_owned();
        let repository = image.name().to_owned();
        let attempts = g.attempts;
        match g.error {
            Trouble::RateLimited(wait) => RegistryError::RateLimited {
                host,
                repository,
                retry_after: wait.unwrap_or_else(|| self.settings.policy().ceiling(attempts)),
            },
            Trouble::Server(status, codes) => RegistryError::Unavailable {
                host,
                repository,
                attempts,
                detail: format!("HTTP {status}{codes}"),
            },
            Trouble::Timeout => RegistryError::Timeout {
                host,
                repository,
                attempts,
                timeout: self.settings.timeout,
            },
            Trouble::Transport(detail) => RegistryError::Unavailable {
                host,
                repository,
                attempts,
                detail,
            },
            Trouble::Protocol(detail) => self.protocol(image, detail),
        }
    }

    /// Reads at most `cap` bytes of an answer's body.
    pub(super) async fn read_body(
        &self,
        image: &ImageRef,
        mut resp: Response,
        cap: usize,
    ) -> Result<Vec<u8>, RegistryError> {
        let mut body = Vec::new();
        loop {
            let chunk = resp.chunk().await.map_err(|e| RegistryError::Unavailable {
                host: image.api_host().to_owned(),
                repository: image.name().to_owned(),
                attempts: 1,
                detail: format!("the answer broke off: {}", transport_detail(&e)),
            })?;
            let Some(chunk) = chunk else { break };
            if body.len() + chunk.len() > cap {
                return Err(self.protocol(image, format!("the answer is larger than {cap} bytes")));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    }
}
