//! The GitOps strategy's write side: put a new image digest into a config
//! repository, where Argo CD or Flux picks it up.
//!
//! [`GitopsWriter::commit_image`] reads the configured file, edits the one
//! value that names the image ([`yaml`] keeps the rest of the file as it
//! was), and commits it — through the GitHub contents API ([`contents`]) or
//! with plain `git` to any host ([`git`]). When the branch moved in between,
//! it reads again, re-applies the edit and retries. It does not follow the
//! rollout; the engine does that as for any deploy.

pub mod contents;
pub mod git;
pub mod yaml;

use std::sync::Arc;

use super::GithubForge;
use crate::config::{App, Gitops, GitopsFormat, GitopsSource};
use crate::engine::ports::PortError;

pub use git::GitTransport;

/// How many times an edit is re-applied after the branch moved.
pub const ATTEMPTS: u32 = 3;

/// A commit Gantry made (or found unnecessary) in a config repository.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GitopsChange {
    /// The commit on the watched branch that holds the image: Gantry's
    /// commit, the merge of its pull request, or the existing head when the
    /// file already named the image.
    pub commit: String,
    /// A link a person can open (commit or pull request), when the host has one.
    pub url: Option<String>,
    /// The pull request that carried the change, in pull-request mode.
    pub pull_request: Option<u64>,
    /// False when the file already held this image and nothing was committed.
    pub changed: bool,
}

/// Writes images into config repositories.
pub struct GitopsWriter {
    github: Option<Arc<GithubForge>>,
    git: GitTransport,
}

impl GitopsWriter {
    /// A writer; `github` is needed for `transport = "github"` sources.
    pub fn new(github: Option<Arc<GithubForge>>) -> GitopsWriter {
        GitopsWriter {
            github,
            git: GitTransport::default(),
        }
    }

    /// Replaces the plain-git transport (author, timeouts, test hooks).
    pub fn with_git(mut self, git: GitTransport) -> GitopsWriter {
        self.git = git;
        self
    }

    /// Commits `image` (`repo@sha256:…`) for `app` to the file `gitops`
    /// names, with `message`, directly or through a pull request that is
    /// merged once its checks pass.
    pub async fn commit_image(
        &self,
        gitops: &Gitops,
        app: &App,
        image: &str,
        message: &str,
    ) -> Result<GitopsChange, PortError> {
        commit_image(
            self.github.as_deref(),
            &self.git,
            gitops,
            app,
            image,
            message,
        )
        .await
    }
}

/// Commits `image` for `app` over the transport `gitops` names: the GitHub
/// contents API through `github`, or plain git through `git`.
pub async fn commit_image(
    github: Option<&GithubForge>,
    git: &GitTransport,
    gitops: &Gitops,
    app: &App,
    image: &str,
    message: &str,
) -> Result<GitopsChange, PortError> {
    if !image.contains("@sha256:") {
        return Err(PortError::Invalid(format!(
            "GitOps writes digests only, and `{image}` is not `repo@sha256:…`"
        )));
    }
    let edit = |text: &str| edit(text, &gitops.format, app, image);
    match &gitops.source {
        GitopsSource::Github(repo) => {
            let forge = github.ok_or_else(|| {
                PortError::Invalid(
                    "the GitOps repository is on GitHub but [platforms.github] is not set up"
                        .into(),
                )
            })?;
            contents::commit(forge, &repo.to_string(), gitops, &edit, message).await
        }
        GitopsSource::Git(url) => git.commit(url, gitops, &edit, message).await,
    }
}

/// The file after putting `image` in, per the configured format.
pub fn edit(
    text: &str,
    format: &GitopsFormat,
    app: &App,
    image: &str,
) -> Result<String, PortError> {
    let edited = match format {
        GitopsFormat::Kustomize => {
            let (name, digest) = image.split_once('@').unwrap_or((image, ""));
            yaml::set_kustomize_image(text, &app.image, name, digest)
        }
        GitopsFormat::Helm { key } => {
            yaml::set_helm_value(text, key, &yaml::helm_value(key, image))
        }
    };
    edited.map_err(|e| PortError::Invalid(format!("cannot set the image: {e}")))
}

/// The commit message Gantry writes: what, for which request, who asked and
/// who approved, so the config repository's history is an audit trail too.
pub fn commit_message(
    request: &str,
    app: &str,
    env: &str,
    image: &str,
    requester: &str,
    approvers: &[String],
) -> String {
    let short = image
        .split_once("@sha256:")
        .map_or(image.to_owned(), |(repo, hex)| {
            format!("{repo}@sha256:{}", &hex[..hex.len().min(12)])
        });
    let approved = if approvers.is_empty() {
        "policy (no approval needed)".to_owned()
    } else {
        approvers.join(", ")
    };
    format!(
        "Deploy {app} to {env}: {short} ({request})\n\nImage: {image}\nRequest: {request}\nRequested-by: {requester}\nApproved-by: {approved}\n"
    )
}
