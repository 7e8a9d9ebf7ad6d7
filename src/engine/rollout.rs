//! A deploy, promotion or rollback once approved: take the lock, re-check
//! what the approvals were bound to, put the image in place, follow the
//! rollout and verify what runs.

use std::sync::Mutex;

use super::place::{synced, workload};
use super::ports::{DeploymentState, RolloutOutcome, RolloutProgress, Stamp, Workload};
use super::recheck::{Checked, Cleared};
use super::state::{Action, Event, Request, State};
use super::{Engine, EngineError};
use crate::config::{App, Environment, Target};
use crate::names::Digest;

impl Engine {
    /// Deploys the request's pinned digest, or, for a dry run, makes every
    /// check a deploy would make and changes nothing.
    pub(super) async fn run_deploy(
        &self,
        request: Request,
        app: &App,
        env: &Environment,
        cleared: Cleared,
    ) -> Result<Request, EngineError> {
        let actor = request.requester.to_string();
        let fail = |reason: String| Event::Fail { reason };
        // A dry run takes no lock (see dry_run.rs).
        if !request.dry_run {
            if let Err(why) = self.lock_for_deploy(&request, env)? {
                return self.apply(&request, fail(why), &actor).await;
            }
        }
        let checked = match self.recheck(&request, app, env, cleared).await {
            Ok(checked) => checked,
            Err(why) => return self.apply(&request, fail(why), &actor).await,
        };
        if request.dry_run {
            return self.finish_dry(request, env).await;
        }
        let deploying = self.apply(&request, checked.started(), &actor).await?;
        let Checked { head, digest, .. } = checked;
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
        let deploying = match github {
            Some(id) => {
                self.apply(&deploying, Event::DeploymentRecorded { id }, "gantry")
                    .await?
            }
            None => deploying,
        };
        self.github_state(&repo, github, DeploymentState::InProgress, &deploying)
            .await;
        if let Target::Preview { .. } = env.target {
            if let Err(e) = self.prepare_preview(&deploying, env, &workload).await {
                self.github_state(&repo, github, DeploymentState::Failure, &deploying)
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
        self.github_state(&repo, github, state, &ended).await;
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
                        self.verify_release(verifying, app, env, workload).await
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
    pub(super) async fn follow(
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

    /// Reports a state on the Git host's deployment record, when one was
    /// made, with what approvers said; a failure there never stops a deploy.
    pub(super) async fn github_state(
        &self,
        repo: &str,
        deployment: Option<u64>,
        state: DeploymentState,
        request: &Request,
    ) {
        if let Some(id) = deployment {
            let _ = self
                .ports
                .forge
                .set_deployment_state(repo, id, state, "", &said_about(request))
                .await;
        }
    }
}

/// What people said about a request, for its deployment's status: the
/// denial with its reason, or the approvals with their comments.
pub(super) fn said_about(request: &Request) -> String {
    match (request.state, &request.note) {
        (State::Denied, Some(note)) => note.clone(),
        _ if request.rule.is_some() && !request.approvals.is_empty() => {
            format!("approved: {}", super::progress::standing(request))
        }
        _ => String::new(),
    }
}
