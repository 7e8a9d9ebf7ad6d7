//! Start-up: find every request that was in flight and settle it.

use super::state::{Event, Request, State};
use super::{Engine, EngineError};

/// What recovery did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Recovery {
    /// Requests still waiting for approval, left waiting.
    pub resumed: Vec<String>,
    /// Requests that were under way, now `Interrupted`.
    pub interrupted: Vec<String>,
    /// Requests whose approval window had closed.
    pub expired: Vec<String>,
}

impl Engine {
    /// Settles requests left in flight by a stop or a crash: those waiting
    /// for approval keep waiting (or expire); everything else becomes
    /// `Interrupted`, and its conversation is told. A request interrupted
    /// mid-rollout keeps its lock so nobody deploys over an unknown state.
    pub async fn recover(&self) -> Result<Recovery, EngineError> {
        let mut done = Recovery::default();
        let requests: Vec<(u64, Request)> = self.store.requests()?;
        for (_, request) in requests.into_iter().filter(|(_, r)| !r.state.is_terminal()) {
            let id = request.id.to_string();
            match request.state {
                State::AwaitingApproval
                    if request
                        .rule
                        .as_ref()
                        .is_some_and(|r| self.now() >= r.expires_at) =>
                {
                    self.apply(&request, Event::Expire, "gantry").await?;
                    done.expired.push(id);
                }
                State::AwaitingApproval => {
                    self.show_progress(&request, Some("still waiting after a restart"))
                        .await;
                    done.resumed.push(id);
                }
                state => {
                    let changing = matches!(state, State::Deploying | State::Verifying);
                    let reason = if changing {
                        format!(
                            "Gantry restarted while this was {}; the rollout's outcome is unknown — check it with `status {env}`, then `unlock {env}` (the requester or an admin)",
                            state.word(),
                            env = request.env.as_ref().map_or("the environment", |e| e.as_str())
                        )
                    } else {
                        format!("Gantry restarted while this was {}; nothing was changed — request again", state.word())
                    };
                    let ended = self
                        .apply(&request, Event::Interrupt { reason }, "gantry")
                        .await?;
                    if !changing {
                        self.release_lock(&ended)?;
                    }
                    done.interrupted.push(id);
                }
            }
        }
        self.store.flush_group().await?;
        Ok(done)
    }
}

impl Engine {
    /// Deletes every preview namespace whose TTL has passed, in every
    /// cluster that hosts previews; returns the namespaces deleted.
    pub async fn sweep_previews(&self) -> Result<Vec<String>, EngineError> {
        let now = self.now();
        let mut deleted = Vec::new();
        for env in self.config.envs() {
            if !matches!(env.target, crate::config::Target::Preview { .. }) {
                continue;
            }
            let context = env.cluster.kube_context();
            let previews = match self.ports.cluster.list_previews(&context).await {
                Ok(p) => p,
                Err(e) => {
                    self.audit(
                        "gantry",
                        "preview.sweep_failed",
                        &context,
                        Some(env.name.as_str()),
                        serde_json::json!({ "error": e.to_string() }),
                    )?;
                    continue;
                }
            };
            for preview in previews.into_iter().filter(|p| p.expired(now)) {
                let outcome = self
                    .ports
                    .cluster
                    .delete_namespace(&context, &preview.name)
                    .await;
                let details = serde_json::json!({
                    "labels": preview.labels,
                    "already_gone": matches!(outcome, Ok(super::ports::Deletion::AlreadyGone)),
                    "error": outcome.as_ref().err().map(ToString::to_string),
                });
                self.audit(
                    "gantry",
                    "preview.expired",
                    &preview.name,
                    Some(env.name.as_str()),
                    details,
                )?;
                if matches!(outcome, Ok(super::ports::Deletion::Deleted)) {
                    deleted.push(preview.name);
                }
            }
        }
        self.store.flush_group().await?;
        Ok(deleted)
    }
}
