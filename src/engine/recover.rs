//! Start-up: find every request that was in flight and settle it.

use super::place::workload;
use super::ports::DeploymentState;
use super::state::{Event, Request, State};
use super::{Engine, EngineError};
use crate::names::RequestId;

/// What recovery did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Recovery {
    /// Requests still waiting for approval, left waiting.
    pub resumed: Vec<String>,
    /// Requests that were under way, now `Interrupted`.
    pub interrupted: Vec<String>,
    /// Requests whose approval window had closed.
    pub expired: Vec<String>,
    /// Releases that were verifying: their checks resume, with the soak
    /// time left, through [`Engine::resume_verifying`].
    pub verifying: Vec<RequestId>,
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
                State::Verifying if request.verification.is_some() => {
                    done.verifying.push(request.id);
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
    /// Resumes the checks of a release that was verifying when Gantry
    /// stopped, with the soak time its checks had not covered yet, and
    /// ends it as a soak started now would: verified, rolled back or failed.
    pub async fn resume_verifying(&self, id: RequestId) -> Result<State, EngineError> {
        let Some(request) = self.load(id)? else {
            return Ok(State::Interrupted);
        };
        if request.state != State::Verifying {
            return Ok(request.state);
        }
        let app = self.config.app(request.app.as_str()).cloned();
        let env = request
            .env
            .as_ref()
            .and_then(|e| self.config.env(e.as_str()))
            .cloned();
        let (Some(app), Some(env)) = (app, env) else {
            let reason = "Gantry restarted while this was verifying, and its app or environment is no longer in config".to_owned();
            let ended = self
                .apply(&request, Event::Interrupt { reason }, "gantry")
                .await?;
            return Ok(ended.state);
        };
        self.show_progress(&request, Some("checks resumed after a restart"))
            .await;
        let workload = workload(&self.config, &app, &env, &request);
        let ended = self.verify_release(request, &app, &env, &workload).await?;
        self.release_lock(&ended)?;
        // The Git host's deployment, left in progress by the stop, ends too.
        let outcome = if ended.state == State::Succeeded {
            DeploymentState::Success
        } else {
            DeploymentState::Failure
        };
        self.github_state(&app.repo.to_string(), ended.deployment, outcome, &ended)
            .await;
        Ok(ended.state)
    }
}
