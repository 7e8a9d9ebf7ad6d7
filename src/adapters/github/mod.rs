//! GitHub through octocrab: the [`Forge`] port, PR comments as a chat
//! platform ([`GithubNotifier`]) and the GitOps writer ([`gitops`]).
//!
//! The base URL is configurable, so the same code talks to github.com,
//! GitHub Enterprise (`https://HOST/api/v3`) or the sandbox's fake GitHub.
//! The wire facts it relies on are listed in `docs/github.md`.

mod api;
mod auth;
mod build;
pub mod gitops;
mod notify;
mod refs;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use http::Method;
use serde::Deserialize;
use serde_json::{json, Value};

pub use api::RetryPolicy;
pub use notify::{github_escape, GithubNotifier};

use crate::command::GitRef;
use crate::config::{Config, GithubAuth, Secret};
use crate::engine::ports::{BuildOutcome, BuildRun, DeploymentState, Forge, PortError};
use crate::names::{RequestId, Sha};
use api::{Answer, Api};
use auth::Auth;

/// How often and how long builds and checks are followed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Polling {
    /// Pause between two looks.
    pub every: Duration,
    /// How long a dispatched run may take to appear in the run list.
    pub run_appears_within: Duration,
    /// How long a build may run.
    pub build_timeout: Duration,
    /// How long a GitOps pull request's checks may take.
    pub checks_timeout: Duration,
}

impl Default for Polling {
    fn default() -> Self {
        Polling {
            every: Duration::from_secs(5),
            run_appears_within: Duration::from_secs(60),
            build_timeout: Duration::from_secs(2 * 3600),
            checks_timeout: Duration::from_secs(3600),
        }
    }
}

/// The Git host, as GitHub's REST API.
pub struct GithubForge {
    api: Api,
    polling: Polling,
    /// The plain-git transport for GitOps repositories outside GitHub.
    git: gitops::GitTransport,
}

impl GithubForge {
    /// The forge for `[platforms.github]`, with its token or App credentials.
    pub fn from_config(config: &Config) -> Result<GithubForge, PortError> {
        let github = config.platforms().github.as_ref().ok_or_else(|| {
            PortError::Invalid("GitHub is not enabled in [platforms.github]".into())
        })?;
        let auth = match &github.auth {
            GithubAuth::Token(token) => {
                let token = token
                    .resolve()
                    .map_err(|e| PortError::Unauthorised(format!("platforms.github.token: {e}")))?;
                Auth::token(&github.api_url, &token)?
            }
            GithubAuth::App {
                app_id,
                private_key,
            } => {
                let key = private_key.resolve().map_err(|e| {
                    PortError::Unauthorised(format!("platforms.github.private_key: {e}"))
                })?;
                Auth::app(&github.api_url, *app_id, &key)?
            }
        };
        Ok(GithubForge::with_auth(auth).with_polling(Polling {
            every: github.poll_interval,
            ..Polling::default()
        }))
    }

    /// A forge at `api_url` with a token (tests and the sandbox).
    pub fn for_url(api_url: &str, token: &str) -> Result<GithubForge, PortError> {
        let auth = Auth::token(api_url, &Secret::new(token.to_owned()))?;
        Ok(GithubForge::with_auth(auth))
    }

    /// A forge at `api_url` acting as GitHub App `app_id` with its PEM key.
    pub fn for_app(
        api_url: &str,
        app_id: u64,
        private_key: &Secret,
    ) -> Result<GithubForge, PortError> {
        Ok(GithubForge::with_auth(Auth::app(
            api_url,
            app_id,
            private_key,
        )?))
    }

    fn with_auth(auth: Auth) -> GithubForge {
        GithubForge {
            api: Api::new(auth, RetryPolicy::default()),
            polling: Polling::default(),
            git: gitops::GitTransport::default(),
        }
    }

    /// Replaces the retry policy.
    pub fn with_retry(self, policy: RetryPolicy) -> GithubForge {
        let GithubForge { api, polling, git } = self;
        GithubForge {
            api: api.with_policy(policy),
            polling,
            git,
        }
    }

    /// Replaces the polling pace and limits.
    pub fn with_polling(mut self, polling: Polling) -> GithubForge {
        self.polling = polling;
        self
    }

    /// Wraps it for sharing between the engine, the notifier and GitOps.
    pub fn shared(self) -> Arc<GithubForge> {
        Arc::new(self)
    }

    /// Adds a reaction (`eyes`, `+1`, `rocket`, …) to an issue or PR comment.
    pub async fn react_to_comment(
        &self,
        repo: &str,
        comment: u64,
        content: &str,
    ) -> Result<(), PortError> {
        let body = json!({ "content": content });
        self.api
            .send(
                repo,
                Method::POST,
                &format!("/repos/{repo}/issues/comments/{comment}/reactions"),
                Some(&body),
            )
            .await
            .map(|_| ())
    }

    /// A pull request's head and state.
    pub async fn pull_request(&self, repo: &str, number: u64) -> Result<PullRequest, PortError> {
        let answer = self
            .api
            .get(repo, &format!("/repos/{repo}/pulls/{number}"))
            .await
            .map_err(|e| match e {
                PortError::NotFound(_) => {
                    PortError::NotFound(format!("no pull request #{number} in {repo}"))
                }
                other => other,
            })?;
        let raw: RawPull = answer.json("a pull request")?;
        Ok(PullRequest {
            number: raw.number,
            head_sha: sha(&raw.head.sha)?,
            head_ref: raw.head.r#ref,
            state: raw.state,
            merged: raw.merged.unwrap_or(false),
            html_url: raw.html_url.unwrap_or_default(),
        })
    }

    pub(crate) fn api(&self) -> &Api {
        &self.api
    }

    pub(crate) fn polling(&self) -> Polling {
        self.polling
    }
}

/// A pull request as Gantry needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PullRequest {
    /// Its number.
    pub number: u64,
    /// The head commit.
    pub head_sha: Sha,
    /// The head branch.
    pub head_ref: String,
    /// `open` or `closed`.
    pub state: String,
    /// Whether it was merged.
    pub merged: bool,
    /// A link a person can open.
    pub html_url: String,
}

#[derive(Deserialize)]
struct RawPull {
    number: u64,
    state: String,
    #[serde(default)]
    merged: Option<bool>,
    #[serde(default)]
    html_url: Option<String>,
    head: RawBranch,
}

#[derive(Deserialize)]
struct RawBranch {
    r#ref: String,
    sha: String,
}

/// A SHA that GitHub returned, checked.
pub(crate) fn sha(text: &str) -> Result<Sha, PortError> {
    Sha::new(text).map_err(|_| {
        PortError::Unavailable(format!(
            "GitHub returned `{text}` where a commit SHA belongs"
        ))
    })
}

/// The `id` of a created object.
fn created_id(answer: &Answer, what: &str) -> Result<u64, PortError> {
    #[derive(Deserialize)]
    struct Created {
        id: u64,
    }
    Ok(answer.json::<Created>(what)?.id)
}

fn state_word(state: DeploymentState) -> &'static str {
    match state {
        DeploymentState::Queued => "queued",
        DeploymentState::InProgress => "in_progress",
        DeploymentState::Success => "success",
        DeploymentState::Failure => "failure",
        DeploymentState::Inactive => "inactive",
    }
}

/// GitHub keeps at most this many characters of a status description.
const MAX_STATUS_DESCRIPTION: usize = 140;

/// `Gantry: in progress; approved: qa 1/1 carol …`, cut to what GitHub keeps.
fn status_description(state: DeploymentState, said: &str) -> String {
    let mut text = format!("Gantry: {}", state_word(state).replace('_', " "));
    if !said.is_empty() {
        text.push_str("; ");
        text.push_str(said);
    }
    if text.chars().count() > MAX_STATUS_DESCRIPTION {
        text = text.chars().take(MAX_STATUS_DESCRIPTION - 1).collect();
        text.push('…');
    }
    text
}

#[async_trait]
impl Forge for GithubForge {
    async fn resolve(&self, repo: &str, reference: &GitRef) -> Result<Sha, PortError> {
        refs::resolve(self, repo, reference).await
    }

    async fn checks_passed(&self, repo: &str, sha: &Sha) -> Result<bool, PortError> {
        refs::checks(self, repo, sha).await.map(|c| c.passed())
    }

    async fn start_build(
        &self,
        repo: &str,
        workflow: &str,
        reference: &str,
        inputs: &BTreeMap<String, String>,
    ) -> Result<BuildRun, PortError> {
        build::start(self, repo, workflow, reference, inputs).await
    }

    async fn follow_build(&self, repo: &str, run: &BuildRun) -> Result<BuildOutcome, PortError> {
        build::follow(self, repo, run).await
    }

    async fn create_deployment(
        &self,
        repo: &str,
        env: &str,
        sha: &Sha,
        request: RequestId,
    ) -> Result<u64, PortError> {
        // auto_merge off and no required contexts: Gantry deploys exactly
        // this commit and has already applied its own CI policy.
        let body = json!({
            "ref": sha.as_str(),
            "environment": env,
            "auto_merge": false,
            "required_contexts": [],
            "payload": { "request": request.to_string() },
            "description": format!("Gantry {request}"),
        });
        let answer = self
            .api
            .send(
                repo,
                Method::POST,
                &format!("/repos/{repo}/deployments"),
                Some(&body),
            )
            .await?;
        let id = created_id(&answer, "a new deployment")?;
        self.set_deployment_state(repo, id, DeploymentState::Queued, "", "")
            .await?;
        Ok(id)
    }

    async fn set_deployment_state(
        &self,
        repo: &str,
        deployment: u64,
        state: DeploymentState,
        log_url: &str,
        description: &str,
    ) -> Result<(), PortError> {
        let mut body = json!({
            "state": state_word(state),
            "description": status_description(state, description),
            "auto_inactive": true,
        });
        if !log_url.is_empty() {
            body["log_url"] = Value::from(log_url);
        }
        self.api
            .send(
                repo,
                Method::POST,
                &format!("/repos/{repo}/deployments/{deployment}/statuses"),
                Some(&body),
            )
            .await
            .map(|_| ())
    }

    async fn commit_image(
        &self,
        gitops: &crate::config::Gitops,
        app: &crate::config::App,
        image: &str,
        message: &str,
        _workload: &crate::engine::ports::Workload,
    ) -> Result<crate::engine::ports::GitopsCommit, PortError> {
        let change =
            gitops::commit_image(Some(self), &self.git, gitops, app, image, message).await?;
        Ok(crate::engine::ports::GitopsCommit {
            commit: change.commit,
            url: change.url,
        })
    }

    async fn comment(&self, repo: &str, number: u64, body: &str) -> Result<u64, PortError> {
        let answer = self
            .api
            .send(
                repo,
                Method::POST,
                &format!("/repos/{repo}/issues/{number}/comments"),
                Some(&json!({ "body": body })),
            )
            .await?;
        created_id(&answer, "a new comment")
    }

    async fn edit_comment(&self, repo: &str, comment: u64, body: &str) -> Result<(), PortError> {
        self.api
            .send(
                repo,
                Method::PATCH,
                &format!("/repos/{repo}/issues/comments/{comment}"),
                Some(&json!({ "body": body })),
            )
            .await
            .map(|_| ())
    }

    async fn ping(&self, repo: &str) -> Result<(), PortError> {
        self.api
            .get(repo, &format!("/repos/{repo}"))
            .await
            .map(drop)
    }
}
