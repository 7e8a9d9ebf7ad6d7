//! GitHub credentials: a token, or a GitHub App.
//!
//! With an App, Gantry signs a short JWT with the App's private key, asks
//! `GET /repos/{owner}/{repo}/installation` which installation covers the
//! repository, and from then on calls as that installation. octocrab mints
//! the installation token with `POST /app/installations/{id}/access_tokens`,
//! caches it, and mints a new one when less than 30 seconds of its life are
//! left (or when GitHub answers 401), so a token is refreshed before it
//! expires.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use http::Method;
use octocrab::models::{AppId, InstallationId};
use octocrab::Octocrab;
use serde::Deserialize;

use super::api::Api;
use crate::config::Secret;
use crate::engine::ports::PortError;

/// How Gantry authenticates, with the clients it has built.
pub(crate) enum Auth {
    /// One client with a personal or fine-grained token.
    Token(Arc<Octocrab>),
    /// The App's JWT client and one client per installation (by owner).
    App {
        app: Box<Octocrab>,
        installations: tokio::sync::Mutex<HashMap<String, Arc<Octocrab>>>,
    },
}

/// octocrab's builder before any credentials are set.
type Builder = octocrab::OctocrabBuilder<
    octocrab::NoSvc,
    octocrab::DefaultOctocrabBuilderConfig,
    octocrab::NoAuth,
    octocrab::NotLayerReady,
>;

fn builder(api_url: &str) -> Result<Builder, PortError> {
    crate::tls::install_crypto();
    Ok(Octocrab::builder()
        .base_uri(api_url.trim_end_matches('/'))
        .map_err(|e| PortError::Invalid(format!("`{api_url}` is not a GitHub API URL: {e}")))?
        .add_header(
            http::header::ACCEPT,
            "application/vnd.github+json".to_owned(),
        )
        .add_header(
            http::HeaderName::from_static("x-github-api-version"),
            "2022-11-28".to_owned(),
        )
        .set_connect_timeout(Some(Duration::from_secs(10)))
        .set_read_timeout(Some(Duration::from_secs(60))))
}

impl Auth {
    /// Calls with a token.
    pub fn token(api_url: &str, token: &Secret) -> Result<Auth, PortError> {
        let crab = builder(api_url)?
            .personal_token(token.expose().to_owned())
            .build()
            .map_err(|e| PortError::Unavailable(format!("cannot build the GitHub client: {e}")))?;
        Ok(Auth::Token(Arc::new(crab)))
    }

    /// Calls as a GitHub App's installations.
    pub fn app(api_url: &str, app_id: u64, private_key: &Secret) -> Result<Auth, PortError> {
        let key =
            octocrab::EncodingKey::from_rsa_pem(private_key.expose().as_bytes()).map_err(|e| {
                PortError::Invalid(format!(
                    "the GitHub App private key is not an RSA PEM key: {e}"
                ))
            })?;
        let app = builder(api_url)?
            .app(AppId(app_id), key)
            .build()
            .map_err(|e| PortError::Unavailable(format!("cannot build the GitHub client: {e}")))?;
        Ok(Auth::App {
            app: Box::new(app),
            installations: tokio::sync::Mutex::new(HashMap::new()),
        })
    }

    /// The client that may act on `repo` (`owner/name`). Shared, never
    /// cloned: a cloned octocrab client copies its token cache, and each
    /// copy would mint its own installation token.
    pub async fn client_for(&self, repo: &str, api: &Api) -> Result<Arc<Octocrab>, PortError> {
        let (app, installations) = match self {
            Auth::Token(crab) => return Ok(crab.clone()),
            Auth::App { app, installations } => (app, installations),
        };
        let owner = repo.split('/').next().unwrap_or(repo).to_owned();
        let mut known = installations.lock().await;
        if let Some(crab) = known.get(&owner) {
            return Ok(crab.clone());
        }
        #[derive(Deserialize)]
        struct Installation {
            id: u64,
        }
        let answer = api
            .send_with(
                app,
                Method::GET,
                &format!("/repos/{repo}/installation"),
                None,
            )
            .await
            .map_err(|e| match e {
                PortError::NotFound(_) => {
                    PortError::Unauthorised(format!("the GitHub App is not installed on {repo}"))
                }
                other => other,
            })?;
        let found: Installation = answer.json("the installation lookup")?;
        let crab = Arc::new(app.installation(InstallationId(found.id)).map_err(|e| {
            PortError::Unavailable(format!("cannot build the installation client: {e}"))
        })?);
        known.insert(owner, crab.clone());
        Ok(crab)
    }
}
