//! Locks: one per (app, environment) that a deploy takes, and one per
//! environment taken by hand or after a rollback.

use serde_json::json;

use super::state::Request;
use super::{Engine, EngineError};
use crate::config::{App, Environment};
use crate::names::RequestId;
use crate::policy::LockView;
use crate::store::LockRecord;

impl Engine {
    /// Releases the deploy lock a request holds, if it still holds it.
    pub(super) fn release_lock(&self, request: &Request) -> Result<(), EngineError> {
        let Some(key) = deploy_lock_key(request) else {
            return Ok(());
        };
        if let Some(current) = self.store.lock(&key)? {
            if current.request == Some(request.id.0) && self.store.unlock(&key, &current)? {
                self.audit(
                    request.requester.as_str(),
                    "lock.released",
                    &key,
                    request.env.as_ref().map(|e| e.as_str()),
                    json!({ "request": request.id }),
                )?;
            }
        }
        Ok(())
    }

    /// Takes the deploy lock for `request`, which is about to act in
    /// `env`. `Err` says, as a person reads it, what stops it: another
    /// request's deploy lock or a lock on the whole environment (the deploy
    /// lock, taken by then, goes when the request ends).
    pub(super) fn lock_for_deploy(
        &self,
        request: &Request,
        env: &Environment,
    ) -> Result<Result<(), String>, EngineError> {
        let Some(key) = deploy_lock_key(request) else {
            return Ok(Err("no environment".into()));
        };
        let record = LockRecord {
            key,
            holder: request.requester.to_string(),
            request: Some(request.id.0),
            reason: format!("{} is deploying", request.id),
            since: self.now(),
        };
        let env = env.name.as_str();
        if let Err(holder) = self.take_lock(&record, env)? {
            return Ok(Err(describe_deploy_lock(env, &holder)));
        }
        if let Some(lock) = self.store.lock(&env_lock_key(env))? {
            return Ok(Err(describe_env_lock(env, &lock)));
        }
        Ok(Ok(()))
    }

    /// Takes a lock, auditing it; returns the current holder on failure.
    pub(super) fn take_lock(
        &self,
        record: &LockRecord,
        env: &str,
    ) -> Result<Result<(), LockRecord>, EngineError> {
        let taken = self.store.try_lock(record)?;
        if taken.is_ok() {
            self.audit(
                &record.holder,
                "lock.taken",
                &record.key,
                Some(env),
                json!({ "reason": record.reason, "request": record.request }),
            )?;
        }
        Ok(taken)
    }

    /// The lock that would stop a change to (app, env): an environment-wide
    /// lock first, then another request's deploy lock.
    pub(super) fn lock_view(
        &self,
        app: &App,
        env: Option<&Environment>,
    ) -> Result<Option<LockView>, EngineError> {
        let Some(env) = env else { return Ok(None) };
        let keys = [
            env_lock_key(env.name.as_str()),
            format!("{}/{}", app.name, env.name),
        ];
        for key in keys {
            if let Some(lock) = self.store.lock(&key)? {
                return Ok(Some(policy_view(lock)));
            }
        }
        Ok(None)
    }
}

/// A lock as policy sees it.
pub(super) fn policy_view(lock: LockRecord) -> LockView {
    LockView {
        holder: lock.holder,
        request: lock.request.map(RequestId),
        reason: lock.reason,
        since: lock.since,
    }
}

/// The key of the lock a deploy to (app, env) takes.
pub(super) fn deploy_lock_key(request: &Request) -> Option<String> {
    request
        .env
        .as_ref()
        .map(|env| format!("{}/{}", request.app, env))
}

/// The key of an environment-wide lock taken by hand or after a rollback.
pub(super) fn env_lock_key(env: &str) -> String {
    format!("env/{env}")
}

/// A deploy lock as a deploy refused by it is told: `dev is locked by
/// alice (R-7 is deploying)`.
pub(super) fn describe_deploy_lock(env: &str, lock: &LockRecord) -> String {
    format!("{env} is locked by {} ({})", lock.holder, lock.reason)
}

/// An environment lock as a deploy refused by it is told: `dev is locked
/// by erin: database migration`.
pub(super) fn describe_env_lock(env: &str, lock: &LockRecord) -> String {
    format!("{env} is locked by {}: {}", lock.holder, lock.reason)
}
