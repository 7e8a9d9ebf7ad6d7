//! Running an approved dry run: every check a deploy makes right before it
//! acts, and nothing else. A dry run takes no lock, so any number of them
//! run side by side and none stands in a real deploy's way; it reports the
//! lock a deploy would meet instead.

use super::locks::{deploy_lock_key, describe_deploy_lock, describe_env_lock, env_lock_key};
use super::state::{Event, Request};
use super::{Engine, EngineError};
use crate::config::Environment;

/// What a dry run that meets a lock adds to the lock's description.
pub(super) const WOULD_MEET_LOCK: &str = "a deploy now would wait or be refused";

impl Engine {
    /// Ends a dry run whose re-check (ref, image, freeze windows,
    /// approvals) has passed: looks for a lock without taking one, and ends
    /// `Succeeded` when a deploy would go ahead now, `Failed` naming the
    /// lock it would meet when it would not.
    pub(super) async fn finish_dry(
        &self,
        request: Request,
        env: &Environment,
    ) -> Result<Request, EngineError> {
        let actor = request.requester.to_string();
        if let Some(lock) = self.lock_met(&request, env)? {
            let reason = format!("{lock}; {WOULD_MEET_LOCK}");
            return self.apply(&request, Event::Fail { reason }, &actor).await;
        }
        self.apply(&request, Event::Verified, &actor).await
    }

    /// The lock a deploy of `request` would meet now, described as that
    /// deploy would be told: the environment's lock (taken by hand or
    /// after a rollback) first, then the (app, env) deploy lock another
    /// request holds.
    fn lock_met(
        &self,
        request: &Request,
        env: &Environment,
    ) -> Result<Option<String>, EngineError> {
        let env_name = env.name.as_str();
        if let Some(lock) = self.store.lock(&env_lock_key(env_name))? {
            return Ok(Some(describe_env_lock(env_name, &lock)));
        }
        let Some(key) = deploy_lock_key(request) else {
            return Ok(None);
        };
        Ok(self
            .store
            .lock(&key)?
            .filter(|lock| lock.request != Some(request.id.0))
            .map(|lock| describe_deploy_lock(env_name, &lock)))
    }
}
