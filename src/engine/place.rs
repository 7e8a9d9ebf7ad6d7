//! Putting an image in place: a patch of the Deployments (`rolling`) or a
//! commit to the config repository (`gitops`), and the workload that the
//! cluster is asked about.

use serde_json::json;

use super::ports::{Stamp, Workload};
use super::state::{Action, Request};
use super::{Engine, EngineError};
use crate::config::{App, Environment};

impl Engine {
    /// Puts `image` in place: a patch of the Deployments for `rolling`, a
    /// commit to the config repository for `gitops` (Argo CD or Flux then
    /// syncs it). The outcome is audited either way; the outer error is the
    /// store's, the inner one the outside system's.
    pub(super) async fn place_image(
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
}

/// The workload to follow after placing `image`: under GitOps the rollout
/// only starts once the sync has applied the commit, so until then it
/// waits for `image` instead of reporting the previous rollout's success.
pub(super) fn synced(workload: &Workload, env: &Environment, image: &str) -> Workload {
    let mut followed = workload.clone();
    if let crate::config::Strategy::Gitops(_) = env.strategy {
        followed.awaiting_image = Some(image.to_owned());
    }
    followed
}

/// Where an app runs in an environment.
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
