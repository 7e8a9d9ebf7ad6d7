//! The sandbox world: a Git host, registry, cluster and chat in one place.
//!
//! It implements the four ports directly so the engine can run end to end
//! with no account anywhere (`gantry run --sandbox`, engine tests). It keeps
//! real state — branches that can move, images that exist or not, Deployments
//! whose rollouts advance replica by replica or stall on a broken image —
//! and records every call so a test can assert what the engine asked for.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use crate::command::GitRef;
use crate::engine::ports::{
    preview_labels, BuildOutcome, BuildRun, Cluster, Deletion, DeploymentState, Forge, MessageRef,
    Notifier, PortError, PreviewNamespace, ProgressSink, Registry, RolloutOutcome, RolloutProgress,
    Stamp, Workload,
};
use crate::engine::state::Conversation;
use crate::names::{Digest, RequestId, Sha};

/// A Deployment in the sandbox cluster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SandboxDeployment {
    /// The container whose image is set.
    pub container: String,
    /// The image it runs.
    pub image: String,
    /// Replicas wanted.
    pub replicas: u32,
    /// Annotations Gantry stamped.
    pub annotations: BTreeMap<String, String>,
}

/// A Git host deployment record and its statuses.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SandboxGithubDeployment {
    /// Its id.
    pub id: u64,
    /// Repository.
    pub repo: String,
    /// Environment name.
    pub env: String,
    /// Commit.
    pub sha: Sha,
    /// The Gantry request.
    pub request: RequestId,
    /// Every state reported, in order.
    pub states: Vec<DeploymentState>,
}

/// A pull request comment and every version of its text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SandboxComment {
    /// Its id.
    pub id: u64,
    /// Repository.
    pub repo: String,
    /// Pull request number.
    pub number: u64,
    /// Every text it has had, oldest first.
    pub versions: Vec<String>,
}

/// A chat message and every version of its text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SandboxMessage {
    /// Where it was posted.
    pub conversation: Conversation,
    /// Its id.
    pub id: String,
    /// Every text it has had, oldest first.
    pub versions: Vec<String>,
    /// Reactions added by the bot.
    pub reactions: Vec<String>,
}

/// Everything the sandbox holds. Serializable so `gantry run` can keep one
/// world across invocations.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorldState {
    /// repo → branch or tag → commit.
    pub refs: BTreeMap<String, BTreeMap<String, Sha>>,
    /// repo → pull request number → head commit.
    pub pulls: BTreeMap<String, BTreeMap<u64, Sha>>,
    /// Commits whose checks fail.
    pub failing_checks: BTreeSet<Sha>,
    /// `image:tag` → manifest digest.
    pub images: BTreeMap<String, Digest>,
    /// Digests whose pods never become ready.
    pub broken: BTreeSet<Digest>,
    /// `context/namespace/name` → Deployment.
    pub deployments: BTreeMap<String, SandboxDeployment>,
    /// `context/namespace` → labels.
    pub namespaces: BTreeMap<String, BTreeMap<String, String>>,
    /// Git host deployment records.
    pub github_deployments: Vec<SandboxGithubDeployment>,
    /// Chat messages.
    pub messages: Vec<SandboxMessage>,
    /// Pull request comments.
    #[serde(default)]
    pub comments: Vec<SandboxComment>,
    /// GitOps commits: (config repository file, image, commit message).
    #[serde(default)]
    pub gitops_commits: Vec<(String, String, String)>,
    /// Every port call, as `port.operation args`.
    pub calls: Vec<String>,
    /// Counter for ids and moved commits.
    pub counter: u64,
}

/// The sandbox world behind a lock, with the pace of simulated rollouts.
#[derive(Debug, Default)]
pub struct World {
    state: Mutex<WorldState>,
    tick: Duration,
    echo: bool,
}

fn hash_hex(text: &str) -> String {
    hex::encode(Sha256::digest(text.as_bytes()))
}

fn key(parts: &[&str]) -> String {
    parts.join("/")
}

impl World {
    /// A world whose rollouts advance one replica per `tick`.
    pub fn new(state: WorldState, tick: Duration) -> World {
        World {
            state: Mutex::new(state),
            tick,
            echo: false,
        }
    }

    /// Prints every chat message version to stdout as it happens.
    pub fn echo_messages(mut self, on: bool) -> World {
        self.echo = on;
        self
    }

    /// Locks the state. A panic elsewhere cannot leave it half-written
    /// (every change is a single assignment), so a poisoned lock is usable.
    pub fn state(&self) -> MutexGuard<'_, WorldState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A copy of the whole state.
    pub fn snapshot(&self) -> WorldState {
        self.state().clone()
    }

    fn record(&self, call: String) {
        self.state().calls.push(call);
    }

    /// Creates or moves `name` in `repo` to a new commit and returns it.
    pub fn commit(&self, repo: &str, name: &str) -> Sha {
        let mut state = self.state();
        state.counter += 1;
        let hex = hash_hex(&format!("{repo}/{name}/{}", state.counter));
        let sha = Sha::new(&hex[..40]).unwrap_or_else(|_| unreachable!("40 hex digits"));
        state
            .refs
            .entry(repo.into())
            .or_default()
            .insert(name.into(), sha.clone());
        sha
    }

    /// Opens (or updates) pull request `number` with head `sha`.
    pub fn pull(&self, repo: &str, number: u64, sha: &Sha) {
        self.state()
            .pulls
            .entry(repo.into())
            .or_default()
            .insert(number, sha.clone());
    }

    /// Pushes an image tag and returns its digest.
    pub fn publish(&self, image: &str, tag: &str) -> Digest {
        let hex = hash_hex(&format!("{image}:{tag}"));
        let digest =
            Digest::new(&format!("sha256:{hex}")).unwrap_or_else(|_| unreachable!("64 hex digits"));
        self.state()
            .images
            .insert(format!("{image}:{tag}"), digest.clone());
        digest
    }

    /// Makes pods of this digest never become ready.
    pub fn break_image(&self, digest: &Digest) {
        self.state().broken.insert(digest.clone());
    }

    /// Adds a Deployment running `image`.
    pub fn deployment(
        &self,
        context: &str,
        namespace: &str,
        name: &str,
        container: &str,
        image: &str,
        replicas: u32,
    ) {
        self.state().deployments.insert(
            key(&[context, namespace, name]),
            SandboxDeployment {
                container: container.into(),
                image: image.into(),
                replicas,
                annotations: BTreeMap::new(),
            },
        );
    }

    /// The latest text of every message, in posting order.
    pub fn transcript(&self) -> Vec<String> {
        self.state()
            .messages
            .iter()
            .filter_map(|m| m.versions.last().cloned())
            .collect()
    }
}

#[async_trait]
impl Forge for World {
    async fn resolve(&self, repo: &str, reference: &GitRef) -> Result<Sha, PortError> {
        self.record(format!("forge.resolve {repo} {reference}"));
        let state = self.state();
        let refs = state.refs.get(repo);
        let known = || {
            refs.into_iter()
                .flat_map(|r| r.values())
                .chain(state.pulls.get(repo).into_iter().flat_map(|p| p.values()))
        };
        let found = match reference {
            GitRef::PullRequest(n) => state.pulls.get(repo).and_then(|p| p.get(n)).cloned(),
            GitRef::Name(name) => refs.and_then(|r| r.get(name)).cloned(),
            GitRef::FullSha(hex) => known().find(|s| s.as_str() == hex).cloned(),
            GitRef::ShortSha(hex) => {
                let matches: BTreeSet<&Sha> = known()
                    .filter(|s| s.as_str().starts_with(hex.as_str()))
                    .collect();
                if matches.len() > 1 {
                    return Err(PortError::Conflict(format!(
                        "`{hex}` is ambiguous in {repo}"
                    )));
                }
                matches.into_iter().next().cloned()
            }
        };
        found.ok_or_else(|| {
            PortError::NotFound(format!(
                "no branch, tag or commit named `{reference}` in {repo}"
            ))
        })
    }

    async fn checks_passed(&self, repo: &str, sha: &Sha) -> Result<bool, PortError> {
        self.record(format!("forge.checks {repo} {}", sha.short()));
        Ok(!self.state().failing_checks.contains(sha))
    }

    async fn start_build(
        &self,
        repo: &str,
        workflow: &str,
        reference: &str,
        _inputs: &BTreeMap<String, String>,
    ) -> Result<BuildRun, PortError> {
        self.record(format!("forge.build {repo} {workflow} {reference}"));
        let id = {
            let mut state = self.state();
            state.counter += 1;
            state.counter
        };
        Ok(BuildRun {
            id,
            url: format!("https://github.sandbox/{repo}/actions/runs/{id}"),
        })
    }

    async fn follow_build(&self, repo: &str, run: &BuildRun) -> Result<BuildOutcome, PortError> {
        self.record(format!("forge.follow_build {repo} {}", run.id));
        tokio::time::sleep(self.tick).await;
        Ok(BuildOutcome::Success)
    }

    async fn create_deployment(
        &self,
        repo: &str,
        env: &str,
        sha: &Sha,
        request: RequestId,
    ) -> Result<u64, PortError> {
        self.record(format!(
            "forge.create_deployment {repo} {env} {} {request}",
            sha.short()
        ));
        let mut state = self.state();
        state.counter += 1;
        let id = state.counter;
        state.github_deployments.push(SandboxGithubDeployment {
            id,
            repo: repo.into(),
            env: env.into(),
            sha: sha.clone(),
            request,
            states: Vec::new(),
        });
        Ok(id)
    }

    async fn set_deployment_state(
        &self,
        repo: &str,
        deployment: u64,
        state: DeploymentState,
        _log_url: &str,
    ) -> Result<(), PortError> {
        self.record(format!(
            "forge.deployment_state {repo} {deployment} {state:?}"
        ));
        let mut world = self.state();
        let record = world
            .github_deployments
            .iter_mut()
            .find(|d| d.id == deployment)
            .ok_or_else(|| PortError::NotFound(format!("deployment {deployment}")))?;
        record.states.push(state);
        Ok(())
    }

    async fn commit_image(
        &self,
        gitops: &crate::config::Gitops,
        _app: &crate::config::App,
        image: &str,
        message: &str,
        workload: &Workload,
    ) -> Result<crate::engine::ports::GitopsCommit, PortError> {
        let repo = match &gitops.source {
            crate::config::GitopsSource::Github(repo) => repo.to_string(),
            crate::config::GitopsSource::Git(url) => url.clone(),
        };
        let file = format!("{repo}:{}/{}", gitops.branch, gitops.path);
        self.record(format!("forge.commit_image {file} {image}"));
        let commit = {
            let mut state = self.state();
            state.counter += 1;
            state
                .gitops_commits
                .push((file, image.to_owned(), message.to_owned()));
            hash_hex(&format!("gitops/{}", state.counter))[..40].to_owned()
        };
        // The sandbox's Argo CD: the commit is synced to the cluster at once.
        let stamp = Stamp {
            request: RequestId(0),
            sha: None,
            requested_by: "argocd".into(),
        };
        self.set_image(workload, image, &stamp).await?;
        Ok(crate::engine::ports::GitopsCommit { commit, url: None })
    }

    async fn comment(&self, repo: &str, number: u64, body: &str) -> Result<u64, PortError> {
        self.record(format!("forge.comment {repo}#{number}"));
        let mut state = self.state();
        let known = state
            .pulls
            .get(repo)
            .is_some_and(|p| p.contains_key(&number));
        if !known {
            return Err(PortError::NotFound(format!("pull request {repo}#{number}")));
        }
        state.counter += 1;
        let id = state.counter;
        state.comments.push(SandboxComment {
            id,
            repo: repo.into(),
            number,
            versions: vec![body.into()],
        });
        Ok(id)
    }

    async fn edit_comment(&self, repo: &str, comment: u64, body: &str) -> Result<(), PortError> {
        self.record(format!("forge.edit_comment {repo} {comment}"));
        let mut state = self.state();
        let found = state
            .comments
            .iter_mut()
            .find(|c| c.id == comment && c.repo == repo)
            .ok_or_else(|| PortError::NotFound(format!("comment {comment} in {repo}")))?;
        found.versions.push(body.into());
        Ok(())
    }
}

#[async_trait]
impl Registry for World {
    async fn digest(&self, image: &str, tag: &str) -> Result<Digest, PortError> {
        self.record(format!("registry.digest {image}:{tag}"));
        self.state()
            .images
            .get(&format!("{image}:{tag}"))
            .cloned()
            .ok_or_else(|| {
                PortError::NotFound(format!("image {image}:{tag} not found — was it built?"))
            })
    }
}

#[async_trait]
impl Cluster for World {
    async fn current_images(
        &self,
        workload: &Workload,
    ) -> Result<Vec<(String, String)>, PortError> {
        self.record(format!(
            "cluster.current_images {}/{}",
            workload.context, workload.namespace
        ));
        let state = self.state();
        workload
            .deployments
            .iter()
            .map(|name| {
                state
                    .deployments
                    .get(&key(&[&workload.context, &workload.namespace, name]))
                    .map(|d| (name.clone(), d.image.clone()))
                    .ok_or_else(|| not_found(workload, name))
            })
            .collect()
    }

    async fn set_image(
        &self,
        workload: &Workload,
        image: &str,
        stamp: &Stamp,
    ) -> Result<(), PortError> {
        self.record(format!(
            "cluster.set_image {}/{} {image}",
            workload.context, workload.namespace
        ));
        let mut state = self.state();
        // Check every Deployment before changing any, so a bad one leaves no half-done deploy.
        for name in &workload.deployments {
            let found =
                state
                    .deployments
                    .get(&key(&[&workload.context, &workload.namespace, name]));
            match found {
                None => return Err(not_found(workload, name)),
                Some(d) if d.container != workload.container => {
                    return Err(PortError::NotFound(format!(
                        "Deployment {name} has no container `{}`",
                        workload.container
                    )))
                }
                Some(_) => {}
            }
        }
        for name in &workload.deployments {
            if let Some(d) =
                state
                    .deployments
                    .get_mut(&key(&[&workload.context, &workload.namespace, name]))
            {
                d.image = image.to_owned();
                d.annotations
                    .insert("gantry.dev/request".into(), stamp.request.to_string());
                d.annotations
                    .insert("gantry.dev/requested-by".into(), stamp.requested_by.clone());
                if let Some(sha) = &stamp.sha {
                    d.annotations
                        .insert("gantry.dev/sha".into(), sha.to_string());
                }
            }
        }
        Ok(())
    }

    async fn follow_rollout(
        &self,
        workload: &Workload,
        progress: ProgressSink<'_>,
    ) -> Result<RolloutOutcome, PortError> {
        self.record(format!(
            "cluster.follow_rollout {}/{}",
            workload.context, workload.namespace
        ));
        let (replicas, broken) = {
            let state = self.state();
            let mut replicas = 0;
            let mut broken = false;
            for name in &workload.deployments {
                let d = state
                    .deployments
                    .get(&key(&[&workload.context, &workload.namespace, name]))
                    .ok_or_else(|| not_found(workload, name))?;
                replicas += d.replicas;
                broken |= state.broken.iter().any(|b| d.image.ends_with(b.as_str()));
            }
            (replicas, broken)
        };
        progress(RolloutProgress {
            desired: replicas,
            updated: 0,
            ready: 0,
            available: 0,
        });
        if broken {
            tokio::time::sleep(self.tick).await;
            progress(RolloutProgress {
                desired: replicas,
                updated: 1,
                ready: 0,
                available: 0,
            });
            tokio::time::sleep(self.tick * 2).await;
            return Ok(RolloutOutcome::Failed(
                "ProgressDeadlineExceeded: the new pods never became ready".into(),
            ));
        }
        for done in 1..=replicas {
            tokio::time::sleep(self.tick).await;
            progress(RolloutProgress {
                desired: replicas,
                updated: done,
                ready: done,
                available: done,
            });
        }
        Ok(RolloutOutcome::Complete)
    }

    async fn ensure_namespace(
        &self,
        context: &str,
        namespace: &str,
        labels: &BTreeMap<String, String>,
    ) -> Result<(), PortError> {
        self.record(format!("cluster.ensure_namespace {context}/{namespace}"));
        self.state()
            .namespaces
            .entry(key(&[context, namespace]))
            .or_insert_with(|| labels.clone());
        Ok(())
    }

    async fn copy_workload(&self, workload: &Workload, source: &str) -> Result<(), PortError> {
        self.record(format!(
            "cluster.copy_workload {source} -> {}",
            workload.namespace
        ));
        let mut state = self.state();
        for name in &workload.deployments {
            let from = state
                .deployments
                .get(&key(&[&workload.context, source, name]))
                .cloned()
                .ok_or_else(|| {
                    PortError::NotFound(format!(
                        "Deployment {name} not found in namespace {source}"
                    ))
                })?;
            state
                .deployments
                .entry(key(&[&workload.context, &workload.namespace, name]))
                .or_insert(from);
        }
        Ok(())
    }

    async fn delete_namespace(
        &self,
        context: &str,
        namespace: &str,
    ) -> Result<Deletion, PortError> {
        self.record(format!("cluster.delete_namespace {context}/{namespace}"));
        let mut state = self.state();
        let prefix = format!("{}/", key(&[context, namespace]));
        state.deployments.retain(|k, _| !k.starts_with(&prefix));
        state
            .namespaces
            .remove(&key(&[context, namespace]))
            .map(|_| Deletion::Deleted)
            .ok_or_else(|| PortError::NotFound(format!("namespace {namespace}")))
    }

    async fn list_previews(&self, context: &str) -> Result<Vec<PreviewNamespace>, PortError> {
        self.record(format!("cluster.list_previews {context}"));
        let prefix = format!("{context}/");
        Ok(self
            .state()
            .namespaces
            .iter()
            .filter_map(|(k, labels)| {
                let name = k.strip_prefix(&prefix)?;
                let preview = labels.get(preview_labels::PREVIEW).map(String::as_str);
                (preview == Some("true")).then(|| PreviewNamespace {
                    name: name.to_owned(),
                    labels: labels.clone(),
                })
            })
            .collect())
    }
}

fn not_found(workload: &Workload, name: &str) -> PortError {
    PortError::NotFound(format!(
        "Deployment {name} not found in namespace {}",
        workload.namespace
    ))
}

#[async_trait]
impl Notifier for World {
    async fn post(&self, conversation: &Conversation, text: &str) -> Result<MessageRef, PortError> {
        let mut state = self.state();
        state.counter += 1;
        let id = format!("m{}", state.counter);
        state.messages.push(SandboxMessage {
            conversation: conversation.clone(),
            id: id.clone(),
            versions: vec![text.to_owned()],
            reactions: Vec::new(),
        });
        if self.echo {
            println!("{text}");
        }
        Ok(MessageRef {
            conversation: conversation.clone(),
            id,
        })
    }

    async fn edit(&self, message: &MessageRef, text: &str) -> Result<(), PortError> {
        let mut state = self.state();
        let found = state
            .messages
            .iter_mut()
            .find(|m| m.id == message.id)
            .ok_or_else(|| PortError::NotFound(format!("message {}", message.id)))?;
        if found.versions.last().map(String::as_str) != Some(text) {
            found.versions.push(text.to_owned());
            if self.echo {
                println!("  ↳ {text}");
            }
        }
        Ok(())
    }

    async fn react(&self, message: &MessageRef, emoji: &str) -> Result<(), PortError> {
        let mut state = self.state();
        let found = state
            .messages
            .iter_mut()
            .find(|m| m.id == message.id)
            .ok_or_else(|| PortError::NotFound(format!("message {}", message.id)))?;
        found.reactions.push(emoji.to_owned());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn comments_exist_only_on_known_pull_requests_and_keep_every_version() {
        let world = World::new(WorldState::default(), Duration::ZERO);
        let sha = world.commit("acme/web", "feat-x");
        assert!(world.comment("acme/web", 1, "hi").await.is_err());
        world.pull("acme/web", 1, &sha);
        let id = world.comment("acme/web", 1, "R-1 queued").await.unwrap();
        world
            .edit_comment("acme/web", id, "R-1 succeeded")
            .await
            .unwrap();
        let state = world.snapshot();
        assert_eq!(state.comments[0].versions, ["R-1 queued", "R-1 succeeded"]);
        assert!(world.edit_comment("acme/api", id, "x").await.is_err());
    }

    #[tokio::test]
    async fn short_shas_must_be_unambiguous_and_unknown_refs_are_named() {
        let world = World::new(WorldState::default(), Duration::ZERO);
        let sha = world.commit("acme/web", "main");
        let short = GitRef::parse(&sha.as_str()[..7]).unwrap();
        assert_eq!(world.resolve("acme/web", &short).await.unwrap(), sha);
        let missing = GitRef::parse("nope").unwrap();
        let err = world.resolve("acme/web", &missing).await.unwrap_err();
        assert_eq!(
            err.to_string(),
            "not found: no branch, tag or commit named `nope` in acme/web"
        );
    }
}
