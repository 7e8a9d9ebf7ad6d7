//! Running an approved request: lock, re-check, change the world, follow it.

use std::collections::BTreeSet;
use std::sync::Mutex;

use serde_json::json;

use super::handle::Reply;
use super::ports::{Deletion, DeploymentState, RolloutOutcome, RolloutProgress, Stamp, Workload};
use super::record::{deploy_lock_key, describe_deploy_lock, describe_env_lock, env_lock_key};
use super::state::{Action, Event, Request, State};
use super::{Engine, EngineError};
use crate::command::GitRef;
use crate::config::{App, Environment, Target};
use crate::names::{Digest, PersonId};
use crate::store::LockRecord;

impl Engine {
    /// Runs an `Approved` request to its end.
    pub(super) async fn execute(&self, request: Request) -> Result<Reply, EngineError> {
        let actor = request.requester.to_string();
        let Some(app) = self.config.app(request.app.as_str()).cloned() else {
            let failed = self
                .apply(
                    &request,
                    Event::Fail {
                        reason: "its app is no longer in config".into(),
                    },
                    &actor,
                )
                .await?;
            return Ok(self.ended(&failed));
        };
        let env = request
            .env
            .as_ref()
            .and_then(|e| self.config.env(e.as_str()))
            .cloned();
        let ended = match (request.action.clone(), env) {
            (Action::Build { reference }, _) => self.run_build(request, &app, &reference).await?,
            (Action::Teardown { .. }, Some(env)) => self.run_teardown(request, &env).await?,
            (_, Some(env)) => self.run_deploy(request, &app, &env).await?,
            (_, None) => {
                self.apply(
                    &request,
                    Event::Fail {
                        reason: "its environment is no longer in config".into(),
                    },
                    &actor,
                )
                .await?
            }
        };
        self.release_lock(&ended)?;
        Ok(self.ended(&ended))
    }

    async fn run_deploy(
        &self,
        request: Request,
        app: &App,
        env: &Environment,
    ) -> Result<Request, EngineError> {
        if request.dry_run {
            return self.run_dry(request, app, env).await;
        }
        let actor = request.requester.to_string();
        let fail = |reason: String| Event::Fail { reason };
        let Some(key) = deploy_lock_key(&request) else {
            return self
                .apply(&request, fail("no environment".into()), &actor)
                .await;
        };
        let record = LockRecord {
            key,
            holder: actor.clone(),
            request: Some(request.id.0),
            reason: format!("{} is deploying", request.id),
            since: self.now(),
        };
        if let Err(holder) = self.take_lock(&record, env.name.as_str())? {
            let why = describe_deploy_lock(env.name.as_str(), &holder);
            return self.apply(&request, fail(why), &actor).await;
        }
        if let Some(lock) = self.store.lock(&env_lock_key(env.name.as_str()))? {
            let why = describe_env_lock(env.name.as_str(), &lock);
            return self.apply(&request, fail(why), &actor).await;
        }
        // Re-check everything the approvals were bound to, right before acting.
        let (head, digest) = match self.recheck(&request, app).await {
            Ok(found) => found,
            Err(why) => return self.apply(&request, fail(why), &actor).await,
        };
        if let Some(why) = self.frozen(&request, env) {
            return self.apply(&request, fail(why), &actor).await;
        }
        let event = Event::DeployStarted {
            head: head.clone(),
            digest: digest.clone(),
            approvers_with_role: self.approvers_with_role(&request),
            policy_version: self.config.version().to_owned(),
        };
        let deploying = match super::state::transition(&request, &event, self.now()) {
            Ok(_) => self.apply(&request, event, &actor).await?,
            Err(refused) => {
                return self
                    .apply(&request, fail(refused.to_string()), &actor)
                    .await
            }
        };
        let Some(digest) = digest else {
            return self
                .apply(
                    &deploying,
                    fail("no image digest was resolved".into()),
                    &actor,
                )
                .await;
        };
        let workload = workload(&self.config, app, env, &deploying);
        let repo = app.repo.to_string();
        let github = self
            .ports
            .forge
            .create_deployment(&repo, env.name.as_str(), &head, deploying.id)
            .await
            .ok();
        self.github_state(&repo, github, DeploymentState::InProgress)
            .await;
        if let Target::Preview { .. } = env.target {
            if let Err(e) = self.prepare_preview(&deploying, env, &workload).await {
                self.github_state(&repo, github, DeploymentState::Failure)
                    .await;
                return self.apply(&deploying, fail(e), &actor).await;
            }
        }
        let ended = self
            .roll_out(deploying, app, env, &workload, &digest)
            .await?;
        if ended.state == State::Succeeded && ended.action == Action::Rollback {
            self.lock_after_rollback(&ended, env, &ended.id.to_string())?;
        }
        let state = if ended.state == State::Succeeded {
            DeploymentState::Success
        } else {
            DeploymentState::Failure
        };
        self.github_state(&repo, github, state).await;
        Ok(ended)
    }

    /// Sets the image, follows the rollout, verifies, and rolls back on failure.
    async fn roll_out(
        &self,
        deploying: Request,
        app: &App,
        env: &Environment,
        workload: &Workload,
        digest: &Digest,
    ) -> Result<Request, EngineError> {
        let actor = deploying.requester.to_string();
        let image = format!("{}@{}", app.image, digest);
        let stamp = Stamp {
            request: deploying.id,
            sha: deploying.sha.clone(),
            requested_by: actor.clone(),
        };
        if let Err(e) = self
            .place_image(&deploying, app, env, workload, &image, &stamp)
            .await?
        {
            return self
                .apply(
                    &deploying,
                    Event::Fail {
                        reason: format!("setting the image failed: {e}"),
                    },
                    &actor,
                )
                .await;
        }
        let outcome = self
            .follow(&deploying, &synced(workload, env, &image), "")
            .await;
        match outcome {
            Ok(RolloutOutcome::Complete) => {
                let verifying = self.apply(&deploying, Event::RolledOut, &actor).await?;
                match self.ports.cluster.current_images(workload).await {
                    Ok(images) if images.iter().all(|(_, i)| i == &image) => {
                        self.apply(&verifying, Event::Verified, &actor).await
                    }
                    Ok(images) => {
                        let why =
                            format!("after the rollout the cluster runs {images:?}, not {image}");
                        self.apply(&verifying, Event::Fail { reason: why }, &actor)
                            .await
                    }
                    Err(e) => {
                        self.apply(
                            &verifying,
                            Event::Fail {
                                reason: format!("cannot verify: {e}"),
                            },
                            &actor,
                        )
                        .await
                    }
                }
            }
            Ok(RolloutOutcome::Failed(why)) => {
                self.recover_rollout(deploying, app, env, workload, why)
                    .await
            }
            Err(e) => {
                self.recover_rollout(deploying, app, env, workload, e.to_string())
                    .await
            }
        }
    }

    /// Follows a rollout, editing the progress message as it moves; `label`
    /// prefixes the figures (e.g. while rolling back).
    async fn follow(
        &self,
        request: &Request,
        workload: &Workload,
        label: &str,
    ) -> Result<RolloutOutcome, super::PortError> {
        let latest: Mutex<Option<RolloutProgress>> = Mutex::new(None);
        let sink = |p: RolloutProgress| {
            *latest.lock().unwrap_or_else(|e| e.into_inner()) = Some(p);
        };
        let follow = self.ports.cluster.follow_rollout(workload, &sink);
        tokio::pin!(follow);
        let mut shown: Option<RolloutProgress> = None;
        loop {
            tokio::select! {
                outcome = &mut follow => {
                    self.show_latest(request, &latest, &mut shown, label).await;
                    return outcome;
                }
                () = tokio::time::sleep(std::time::Duration::from_millis(50)) => {
                    self.show_latest(request, &latest, &mut shown, label).await;
                }
            }
        }
    }

    /// Edits the progress message with the newest rollout figures; edits
    /// between two looks are coalesced, the latest state wins.
    async fn show_latest(
        &self,
        request: &Request,
        latest: &Mutex<Option<RolloutProgress>>,
        shown: &mut Option<RolloutProgress>,
        label: &str,
    ) {
        let now = latest.lock().unwrap_or_else(|e| e.into_inner()).clone();
        if now.is_some() && &now != shown {
            if let Some(p) = &now {
                let detail = format!(
                    "{label}{}/{} updated, {} available",
                    p.updated, p.desired, p.available
                );
                self.show_progress(request, Some(&detail)).await;
            }
            *shown = now;
        }
    }

    async fn recover_rollout(
        &self,
        deploying: Request,
        app: &App,
        env: &Environment,
        workload: &Workload,
        why: String,
    ) -> Result<Request, EngineError> {
        let actor = deploying.requester.to_string();
        self.audit(
            &actor,
            "rollout.failed",
            &deploying.id.to_string(),
            Some(env.name.as_str()),
            json!({ "reason": why }),
        )?;
        self.store.flush_group().await?;
        let previous = deploying.previous_digest.clone();
        let Some(previous) = previous.filter(|_| env.auto_rollback) else {
            return self
                .apply(&deploying, Event::Fail { reason: why }, &actor)
                .await;
        };
        let image = format!("{}@{}", app.image, previous);
        let stamp = Stamp {
            request: deploying.id,
            sha: None,
            requested_by: actor.clone(),
        };
        let restored = match self
            .place_image(&deploying, app, env, workload, &image, &stamp)
            .await?
        {
            Ok(()) => {
                self.follow(
                    &deploying,
                    &synced(workload, env, &image),
                    &format!("{why}; rolling back to {}: ", previous.short()),
                )
                .await
            }
            Err(e) => Err(e),
        };
        match restored {
            Ok(RolloutOutcome::Complete) => {
                let reason = format!("{why}; rolled back to {}", previous.short());
                let ended = self
                    .apply(&deploying, Event::RolledBack { reason }, &actor)
                    .await?;
                self.lock_after_rollback(
                    &ended,
                    env,
                    &format!("automatic rollback of {}", ended.id),
                )?;
                Ok(ended)
            }
            Ok(RolloutOutcome::Failed(e2)) => {
                self.apply(
                    &deploying,
                    Event::Fail {
                        reason: format!("{why}; the rollback failed too: {e2}"),
                    },
                    &actor,
                )
                .await
            }
            Err(e2) => {
                self.apply(
                    &deploying,
                    Event::Fail {
                        reason: format!("{why}; the rollback failed too: {e2}"),
                    },
                    &actor,
                )
                .await
            }
        }
    }

    /// Puts `image` in place: a patch of the Deployments for `rolling`, a
    /// commit to the config repository for `gitops` (Argo CD or Flux then
    /// syncs it). The outcome is audited either way; the outer error is the
    /// store's, the inner one the outside system's.
    async fn place_image(
        &self,
        request: &Request,
        app: &App,
        env: &Environment,
        workload: &Workload,
        image: &str,
        stamp: &Stamp,
    ) -> Result<Result<(), super::PortError>, EngineError> {
        let actor = request.requester.as_str();
        let subject = request.id.to_string();
        let placed =
            match &env.strategy {
                crate::config::Strategy::Rolling => self
                    .ports
                    .cluster
                    .set_image(workload, image, stamp)
                    .await
                    .map(|()| ("cluster.image_set", json!({ "image": image }))),
                crate::config::Strategy::Gitops(gitops) => {
                    let approvers: Vec<String> = request
                        .approvals
                        .iter()
                        .map(|a| a.person.to_string())
                        .collect();
                    let message =
                        format!(
                    "{subject}: {} {} in {} to {image}\n\nRequested-by: {}\nApproved-by: {}",
                    if request.action == Action::Rollback { "roll back" } else { "deploy" },
                    app.name,
                    env.name,
                    request.requester,
                    if approvers.is_empty() { "policy".to_owned() } else { approvers.join(", ") }
                );
                    self.ports
                        .forge
                        .commit_image(gitops, app, image, &message, workload)
                        .await
                        .map(|c| {
                            (
                                "gitops.committed",
                                json!({ "image": image, "commit": c.commit, "url": c.url }),
                            )
                        })
                }
            };
        let Ok((action, details)) = &placed else {
            return Ok(placed.map(drop));
        };
        self.audit(
            actor,
            action,
            &subject,
            Some(env.name.as_str()),
            details.clone(),
        )?;
        // The side effect has happened: make its record durable now, not
        // after a rollout that may outlive this process.
        self.store.flush_group().await?;
        Ok(Ok(()))
    }

    /// Locks the environment after a rollback until someone unlocks it.
    pub(super) fn lock_after_rollback(
        &self,
        request: &Request,
        env: &Environment,
        what: &str,
    ) -> Result<(), EngineError> {
        let record = LockRecord {
            key: env_lock_key(env.name.as_str()),
            holder: request.requester.to_string(),
            request: None,
            reason: format!(
                "rolled back by {} ({what}); unlock when it is safe to deploy",
                request.requester
            ),
            since: self.now(),
        };
        let _ = self.take_lock(&record, env.name.as_str())?;
        Ok(())
    }

    /// Why `request` may not go ahead in a freeze window open now, unless
    /// its requester holds a break-glass role.
    pub(super) fn frozen(&self, request: &Request, env: &Environment) -> Option<String> {
        let window = env.freeze_at(self.now())?;
        let person = self.config.person(request.requester.as_str());
        let glass = person.is_some_and(|p| p.has_any_role(self.config.break_glass_roles()));
        (!glass).then(|| format!("{} is frozen: {}", env.name, window.reason()))
    }

    /// The commit and digest the request's ref and image point at now.
    pub(super) async fn recheck(
        &self,
        request: &Request,
        app: &App,
    ) -> Result<(crate::names::Sha, Option<Digest>), String> {
        match &request.action {
            Action::Deploy { reference } => {
                let reference = GitRef::parse(reference).map_err(|e| e.to_string())?;
                let head = self
                    .ports
                    .forge
                    .resolve(&app.repo.to_string(), &reference)
                    .await
                    .map_err(|e| e.to_string())?;
                let branch = match &reference {
                    GitRef::Name(name) => name.clone(),
                    _ => String::new(),
                };
                let tag = app.tag_template.render(head.as_str(), &branch);
                let digest = self
                    .ports
                    .registry
                    .digest(&app.image, &tag)
                    .await
                    .map_err(|e| e.to_string())?;
                Ok((head, Some(digest)))
            }
            // Promotions and rollbacks move a digest Gantry already deployed;
            // it is re-read from the pinned record, which cannot change.
            _ => {
                let sha = request
                    .sha
                    .clone()
                    .ok_or("the request has no pinned commit")?;
                Ok((sha, request.digest.clone()))
            }
        }
    }

    /// The request's approvers who hold one of its rule's roles now.
    pub(super) fn approvers_with_role(&self, request: &Request) -> BTreeSet<PersonId> {
        let Some(rule) = &request.rule else {
            return BTreeSet::new();
        };
        request
            .approvals
            .iter()
            .filter(|a| {
                self.config
                    .person(a.person.as_str())
                    .is_some_and(|p| p.has_any_role(&rule.roles))
            })
            .map(|a| a.person.clone())
            .collect()
    }

    async fn github_state(&self, repo: &str, deployment: Option<u64>, state: DeploymentState) {
        if let Some(id) = deployment {
            let _ = self
                .ports
                .forge
                .set_deployment_state(repo, id, state, "")
                .await;
        }
    }

    async fn prepare_preview(
        &self,
        request: &Request,
        env: &Environment,
        workload: &Workload,
    ) -> Result<(), String> {
        use super::ports::preview_labels as label;
        let ttl = match &env.target {
            Target::Preview { ttl, .. } => i64::try_from(ttl.as_secs()).unwrap_or(i64::MAX / 2),
            Target::Namespace(_) => 0,
        };
        let mut labels: std::collections::BTreeMap<String, String> = [
            (label::PREVIEW.to_owned(), "true".to_owned()),
            (label::REQUEST.to_owned(), request.id.to_string()),
            (label::EXPIRES.to_owned(), (self.now() + ttl).to_string()),
        ]
        .into_iter()
        .collect();
        if let Action::Deploy { reference } = &request.action {
            match reference.strip_prefix('#') {
                Some(pr) => labels.insert(label::PR.to_owned(), pr.to_owned()),
                None => labels.insert(label::BRANCH.to_owned(), reference.clone()),
            };
        }
        self.ports
            .cluster
            .ensure_namespace(&workload.context, &workload.namespace, &labels)
            .await
            .map_err(|e| format!("creating namespace {} failed: {e}", workload.namespace))?;
        let Target::Preview {
            source_namespace: Some(source),
            ..
        } = &env.target
        else {
            return Ok(());
        };
        self.ports
            .cluster
            .copy_workload(workload, source)
            .await
            .map_err(|e| format!("copying the app from {source} failed: {e}"))
    }

    async fn run_build(
        &self,
        request: Request,
        app: &App,
        reference: &str,
    ) -> Result<Request, EngineError> {
        let actor = request.requester.to_string();
        let Some(workflow) = &app.build_workflow else {
            let why = format!("{} has no build workflow in config", app.name);
            return self
                .apply(&request, Event::Fail { reason: why }, &actor)
                .await;
        };
        let building = self.apply(&request, Event::BuildStarted, &actor).await?;
        let repo = app.repo.to_string();
        let run = match self
            .ports
            .forge
            .start_build(&repo, workflow, reference, &app.build_inputs)
            .await
        {
            Ok(run) => run,
            Err(e) => {
                return self
                    .apply(
                        &building,
                        Event::Fail {
                            reason: format!("starting the build failed: {e}"),
                        },
                        &actor,
                    )
                    .await
            }
        };
        self.show_progress(&building, Some(&run.url)).await;
        match self.ports.forge.follow_build(&repo, &run).await {
            Ok(super::ports::BuildOutcome::Success) => {
                self.apply(&building, Event::Verified, &actor).await
            }
            Ok(other) => {
                self.apply(
                    &building,
                    Event::Fail {
                        reason: format!("build {other:?}: {}", run.url),
                    },
                    &actor,
                )
                .await
            }
            Err(e) => {
                self.apply(
                    &building,
                    Event::Fail {
                        reason: format!("{e}: {}", run.url),
                    },
                    &actor,
                )
                .await
            }
        }
    }

    async fn run_teardown(
        &self,
        request: Request,
        env: &Environment,
    ) -> Result<Request, EngineError> {
        let actor = request.requester.to_string();
        let namespace = request.namespace.clone().unwrap_or_default();
        let context = env.cluster.kube_context();
        match self
            .ports
            .cluster
            .delete_namespace(&context, &namespace)
            .await
        {
            Ok(Deletion::Deleted) => self.apply(&request, Event::Verified, &actor).await,
            // Already gone (a TTL sweep, a PR close or a person got there
            // first) is done too, and says so.
            Ok(Deletion::AlreadyGone) => {
                self.audit(
                    &actor,
                    "preview.already_gone",
                    &namespace,
                    request.env.as_ref().map(|e| e.as_str()),
                    serde_json::json!({ "request": request.id.to_string() }),
                )?;
                let mut noted = request.clone();
                noted.note = Some(ALREADY_GONE.to_owned());
                self.apply(&noted, Event::Verified, &actor).await
            }
            Err(e) => {
                self.apply(
                    &request,
                    Event::Fail {
                        reason: format!("deleting {namespace} failed: {e}"),
                    },
                    &actor,
                )
                .await
            }
        }
    }
}

/// The note a teardown carries when its namespace was gone already.
pub(super) const ALREADY_GONE: &str = "already gone";

/// Where an app runs in an environment.
/// The workload to follow after placing `image`: under GitOps the rollout
/// only starts once the sync has applied the commit, so until then it
/// waits for `image` instead of reporting the previous rollout's success.
fn synced(workload: &Workload, env: &Environment, image: &str) -> Workload {
    let mut followed = workload.clone();
    if let crate::config::Strategy::Gitops(_) = env.strategy {
        followed.awaiting_image = Some(image.to_owned());
    }
    followed
}

pub(super) fn workload(
    config: &crate::config::Config,
    app: &App,
    env: &Environment,
    request: &Request,
) -> Workload {
    // Fails closed: a requester with no kube_user (config validation should
    // prevent it) impersonates "", which the cluster adapter refuses.
    let impersonate = env.cluster.impersonate.then(|| {
        config
            .person(request.requester.as_str())
            .and_then(|p| p.kube_user.clone())
            .unwrap_or_default()
    });
    Workload {
        context: env.cluster.kube_context(),
        namespace: request.namespace.clone().unwrap_or_default(),
        deployments: app.deployments.clone(),
        container: app.container.clone(),
        services: app.services.clone(),
        impersonate,
        rollout_timeout: env.rollout_timeout,
        awaiting_image: None,
    }
}
