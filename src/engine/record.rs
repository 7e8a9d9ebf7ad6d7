//! Writing things down: every request change and audit event, durably.

use serde_json::{json, Value};

use super::state::{transition, Event, Request};
use super::{Engine, EngineError};
use crate::names::RequestId;
use crate::store::NewEvent;

impl Engine {
    /// Appends an audit event. It becomes durable at the next group flush,
    /// which `apply` and `run` await before any side effect and before
    /// any reply.
    pub(super) fn audit(
        &self,
        actor: &str,
        action: &str,
        subject: &str,
        env: Option<&str>,
        details: Value,
    ) -> Result<(), EngineError> {
        self.store
            .append(self.new_event(actor, action, subject, env, details))?;
        Ok(())
    }

    /// An audit event stamped with the engine's clock (milliseconds).
    pub(super) fn new_event(
        &self,
        actor: &str,
        action: &str,
        subject: &str,
        env: Option<&str>,
        details: Value,
    ) -> NewEvent {
        NewEvent {
            time: self.now().saturating_mul(1000),
            actor: actor.to_owned(),
            action: action.to_owned(),
            subject: subject.to_owned(),
            env: env.map(str::to_owned),
            details,
        }
    }

    /// Applies an event to a request, writes the request and its audit
    /// event durably, then updates the request's progress message.
    pub(super) async fn apply(
        &self,
        request: &Request,
        event: Event,
        actor: &str,
    ) -> Result<Request, EngineError> {
        let next = transition(request, &event, self.now())?;
        self.save(&next, actor, &event)?;
        self.store.flush_group().await?;
        self.show_progress(&next, None).await;
        Ok(next)
    }

    /// Writes a request and the audit event that explains its change.
    pub(super) fn save(
        &self,
        request: &Request,
        actor: &str,
        event: &Event,
    ) -> Result<(), EngineError> {
        self.note_release(request)?;
        self.store.put_request(request.id.0, request)?;
        let details = json!({
            "event": event,
            "state": request.state,
            "sha": request.sha,
            "digest": request.digest,
        });
        self.audit(
            actor,
            &format!("request.{}", event_name(event)),
            &request.id.to_string(),
            request.env.as_ref().map(|e| e.as_str()),
            details,
        )
    }

    /// Loads a request by id.
    pub(super) fn load(&self, id: RequestId) -> Result<Option<Request>, EngineError> {
        Ok(self.store.get_request(id.0)?)
    }
}

fn event_name(event: &Event) -> &'static str {
    match event {
        Event::Resolved { .. } => "resolved",
        Event::Allowed => "allowed",
        Event::NeedsApproval(_) => "needs_approval",
        Event::Approve { .. } => "approved",
        Event::Revoke { .. } => "revoked",
        Event::Deny { .. } => "denied",
        Event::Cancel => "cancelled",
        Event::Expire => "expired",
        Event::BuildStarted => "build_started",
        Event::DeployStarted { .. } => "deploy_started",
        Event::DeploymentRecorded { .. } => "deployment_recorded",
        Event::RolledOut => "rolled_out",
        Event::Verified => "succeeded",
        Event::VerifyStarted { .. } => "verify_started",
        Event::Probed { .. } => "probed",
        Event::Proven => "verified",
        Event::Completed { .. } => "completed",
        Event::Fail { .. } => "failed",
        Event::RolledBack { .. } => "rolled_back",
        Event::Interrupt { .. } => "interrupted",
    }
}
