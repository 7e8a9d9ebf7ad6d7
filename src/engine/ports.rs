//! The ports through which the engine reaches the outside world.
//!
//! The engine never sees a concrete client: the Git host, the registry, the
//! cluster and the chat platforms each sit behind one trait here, and their
//! failures arrive as one typed [`PortError`].

use std::collections::BTreeMap;
use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::command::GitRef;
use crate::engine::state::Conversation;
use crate::names::{Digest, RequestId, Sha};

/// How an outside call failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PortError {
    /// The thing asked for does not exist.
    #[error("not found: {0}")]
    NotFound(String),
    /// Credentials were refused.
    #[error("unauthorised: {0}")]
    Unauthorised(String),
    /// Someone else changed it first.
    #[error("conflict: {0}")]
    Conflict(String),
    /// Too many requests; try again after the given time.
    #[error("rate limited; retry after {}s", .retry_after.as_secs())]
    RateLimited {
        /// How long the other side asked us to wait.
        retry_after: Duration,
    },
    /// No answer in time; the outcome is unknown.
    #[error("timed out: {0}")]
    Timeout(String),
    /// The other side is down or answered nonsense.
    #[error("unavailable: {0}")]
    Unavailable(String),
    /// The call cannot be made as asked (a bad name, a missing container);
    /// it was refused before anything was written.
    #[error("invalid: {0}")]
    Invalid(String),
}

/// A build run started on the Git host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BuildRun {
    /// The host's id for the run.
    pub id: u64,
    /// A link a person can open.
    pub url: String,
}

/// A GitOps change, as committed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GitopsCommit {
    /// The commit on the watched branch that holds the image.
    pub commit: String,
    /// A link a person can open, when the host has one.
    pub url: Option<String>,
}

/// How a build ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum BuildOutcome {
    /// The build succeeded.
    Success,
    /// The build failed.
    Failure,
    /// The build was cancelled.
    Cancelled,
}

/// The state reported on a Git host deployment record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeploymentState {
    /// Accepted, not started.
    Queued,
    /// Rolling out.
    InProgress,
    /// Done.
    Success,
    /// Went wrong.
    Failure,
    /// Superseded.
    Inactive,
}

/// The Git host: refs, checks, builds, deployment records, comments.
#[async_trait]
pub trait Forge: Send + Sync {
    /// Resolves a branch, tag, SHA or `#123` in `repo` to a full commit SHA.
    async fn resolve(&self, repo: &str, reference: &GitRef) -> Result<Sha, PortError>;
    /// Whether the commit's required checks passed.
    async fn checks_passed(&self, repo: &str, sha: &Sha) -> Result<bool, PortError>;
    /// Starts the build workflow for a ref.
    async fn start_build(
        &self,
        repo: &str,
        workflow: &str,
        reference: &str,
        inputs: &BTreeMap<String, String>,
    ) -> Result<BuildRun, PortError>;
    /// Waits for a build run to end.
    async fn follow_build(&self, repo: &str, run: &BuildRun) -> Result<BuildOutcome, PortError>;
    /// Records a deployment of `sha` to `env`; returns its id.
    async fn create_deployment(
        &self,
        repo: &str,
        env: &str,
        sha: &Sha,
        request: RequestId,
    ) -> Result<u64, PortError>;
    /// Reports a deployment's state, with what people said about it
    /// (approvals and their comments, a denial's reason); `description`
    /// may be empty.
    async fn set_deployment_state(
        &self,
        repo: &str,
        deployment: u64,
        state: DeploymentState,
        log_url: &str,
        description: &str,
    ) -> Result<(), PortError>;
    /// GitOps: commits `image` for `app` to the config repository and file
    /// that `gitops` names, with `message`; Argo CD or Flux then syncs
    /// `workload`, whose rollout the engine follows as usual.
    async fn commit_image(
        &self,
        gitops: &crate::config::Gitops,
        app: &crate::config::App,
        image: &str,
        message: &str,
        workload: &Workload,
    ) -> Result<GitopsCommit, PortError>;
    /// Comments on pull request `number`; returns the comment's id.
    async fn comment(&self, repo: &str, number: u64, body: &str) -> Result<u64, PortError>;
    /// Replaces a comment's text.
    async fn edit_comment(&self, repo: &str, comment: u64, body: &str) -> Result<(), PortError>;
    /// Whether the Git host answers and lets Gantry read `repo` (for
    /// `/readyz`). By default: yes (an in-process host is always there).
    async fn ping(&self, repo: &str) -> Result<(), PortError> {
        let _ = repo;
        Ok(())
    }
}

/// The container registry.
#[async_trait]
pub trait Registry: Send + Sync {
    /// The manifest digest that `image:tag` points at.
    async fn digest(&self, image: &str, tag: &str) -> Result<Digest, PortError>;
    /// Whether the registry that holds `image` answers (for `/readyz`).
    async fn ping(&self, image: &str) -> Result<(), PortError> {
        let _ = image;
        Ok(())
    }
}

/// Where in a cluster an app runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Workload {
    /// Kubernetes context name from config.
    pub context: String,
    /// Namespace.
    pub namespace: String,
    /// Deployment names.
    pub deployments: Vec<String>,
    /// Container to set the image of.
    pub container: String,
    /// Services copied into preview namespaces.
    #[serde(default)]
    pub services: Vec<String>,
    /// The Kubernetes user to impersonate (the requester's `kube_user`), when
    /// the cluster impersonates requesters; `None` = act as Gantry itself.
    #[serde(default)]
    pub impersonate: Option<String>,
    /// Gantry's own limit for a rollout; zero = the adapter's default.
    #[serde(default)]
    pub rollout_timeout: Duration,
    /// For a GitOps deploy: the image a sync (Argo CD, Flux) must first put
    /// into the Deployments. Until it does, the rollout has not started, so
    /// it cannot count as complete.
    #[serde(default)]
    pub awaiting_image: Option<String>,
}

/// Who and what a cluster change is for, stamped on the objects.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stamp {
    /// The request.
    pub request: RequestId,
    /// The commit.
    pub sha: Option<Sha>,
    /// The person who asked.
    pub requested_by: String,
}

/// A rollout's progress, for the progress message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RolloutProgress {
    /// Replicas wanted.
    pub desired: u32,
    /// Replicas on the new image.
    pub updated: u32,
    /// New replicas ready.
    pub ready: u32,
    /// New replicas available.
    pub available: u32,
}

/// How a rollout ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum RolloutOutcome {
    /// Every replica runs the new image and is available.
    Complete,
    /// The rollout stopped making progress, with the cluster's reason.
    Failed(String),
}

/// Labels Gantry puts on preview namespaces.
pub mod preview_labels {
    /// `true` on every preview namespace; nothing else is ever torn down.
    pub const PREVIEW: &str = "gantry.dev/preview";
    /// The branch, sanitised to a label value.
    pub const BRANCH: &str = "gantry.dev/branch";
    /// The pull request number, if any.
    pub const PR: &str = "gantry.dev/pr";
    /// Unix seconds after which the TTL sweep deletes the namespace.
    pub const EXPIRES: &str = "gantry.dev/expires";
    /// The request that last deployed into it.
    pub const REQUEST: &str = "gantry.dev/request";
}

/// A preview namespace found in a cluster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PreviewNamespace {
    /// Its name.
    pub name: String,
    /// Its labels.
    pub labels: BTreeMap<String, String>,
}

impl PreviewNamespace {
    /// When it expires (unix seconds), from its `gantry.dev/expires` label.
    pub fn expires_at(&self) -> Option<i64> {
        self.labels.get(preview_labels::EXPIRES)?.parse().ok()
    }

    /// Whether its TTL has passed at `now` (unix seconds).
    pub fn expired(&self, now: i64) -> bool {
        self.expires_at().is_some_and(|at| at <= now)
    }
}

/// What deleting a namespace did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Deletion {
    /// This call started the deletion.
    Deleted,
    /// The namespace was already gone, or already being deleted.
    AlreadyGone,
}

/// A sink for progress while a rollout runs.
pub type ProgressSink<'a> = &'a (dyn Fn(RolloutProgress) + Send + Sync);

/// The cluster.
#[async_trait]
pub trait Cluster: Send + Sync {
    /// The image each Deployment's container runs now.
    async fn current_images(&self, workload: &Workload)
        -> Result<Vec<(String, String)>, PortError>;
    /// Sets the container image (always `repo@sha256:…`) on every Deployment.
    async fn set_image(
        &self,
        workload: &Workload,
        image: &str,
        stamp: &Stamp,
    ) -> Result<(), PortError>;
    /// Follows the rollout until it completes or fails.
    async fn follow_rollout(
        &self,
        workload: &Workload,
        progress: ProgressSink<'_>,
    ) -> Result<RolloutOutcome, PortError>;
    /// Creates a preview namespace with labels, if missing.
    async fn ensure_namespace(
        &self,
        context: &str,
        namespace: &str,
        labels: &BTreeMap<String, String>,
    ) -> Result<(), PortError>;
    /// Copies the workload's Deployments from `source` into its namespace
    /// (for previews), leaving ones that already exist alone.
    async fn copy_workload(&self, workload: &Workload, source: &str) -> Result<(), PortError>;
    /// Deletes a preview namespace; one already gone or already being
    /// deleted is [`Deletion::AlreadyGone`], not an error.
    async fn delete_namespace(&self, context: &str, namespace: &str)
        -> Result<Deletion, PortError>;
    /// The preview namespaces in a cluster (for the TTL sweep), leaving out
    /// ones already being deleted.
    async fn list_previews(&self, context: &str) -> Result<Vec<PreviewNamespace>, PortError>;
    /// Whether the API server of `context` answers (for `/readyz`).
    async fn ping(&self, context: &str) -> Result<(), PortError> {
        let _ = context;
        Ok(())
    }
}

/// A message posted by the notifier, so it can be edited later.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageRef {
    /// Where it was posted.
    pub conversation: Conversation,
    /// The platform's id for the message.
    pub id: String,
}

/// The buttons a progress message carries, each for its request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Buttons {
    /// None.
    None,
    /// Approve and Deny, while the request waits for approval.
    Approval(RequestId),
    /// Roll back and Complete, while the request's release is verified.
    Verifying(RequestId),
}

/// The chat platforms.
#[async_trait]
pub trait Notifier: Send + Sync {
    /// Posts a new message.
    async fn post(&self, conversation: &Conversation, text: &str) -> Result<MessageRef, PortError>;
    /// Replaces a message's text.
    async fn edit(&self, message: &MessageRef, text: &str) -> Result<(), PortError>;
    /// Adds a reaction to a message.
    async fn react(&self, message: &MessageRef, emoji: &str) -> Result<(), PortError>;
    /// Posts a message with `buttons`, on platforms that have buttons; by
    /// default it is a plain post.
    async fn post_asking(
        &self,
        conversation: &Conversation,
        text: &str,
        buttons: Buttons,
    ) -> Result<MessageRef, PortError> {
        let _ = buttons;
        self.post(conversation, text).await
    }
    /// Replaces a message's text and its buttons with `buttons` (none for
    /// [`Buttons::None`]). By default it is a plain edit.
    async fn edit_asking(
        &self,
        message: &MessageRef,
        text: &str,
        buttons: Buttons,
    ) -> Result<(), PortError> {
        let _ = buttons;
        self.edit(message, text).await
    }
    /// Whether each chat platform behind it answers with Gantry's
    /// credentials, by platform name (for `/readyz`). By default: none to ask.
    async fn ping(&self) -> Vec<(String, Result<(), PortError>)> {
        Vec::new()
    }
}

/// What one probe of a verification check saw.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Probed {
    /// Whether the probe passed.
    pub ok: bool,
    /// What was seen, for chat and the audit trail: `status 200`,
    /// `0.0032 < 0.01`, `no series for query …`, `unreachable: …`.
    pub value: String,
}

/// The values a check's URL or query template may use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeVars {
    /// `{app}`
    pub app: String,
    /// `{env}`
    pub env: String,
    /// `{namespace}`
    pub namespace: String,
}

/// The things verification checks look at: HTTP endpoints and Prometheus.
/// A probe never errors: whatever goes wrong (unreachable, timeout, a bad
/// query, no series) is a failed probe that says why.
#[async_trait]
pub trait Prober: Send + Sync {
    /// Probes `check` once, its templates filled from `vars`.
    async fn probe(&self, check: &crate::config::VerifyCheck, vars: &ProbeVars) -> Probed;
}
