//! `lock <env> [reason]` and `unlock <env>`: environment locks taken and
//! released by hand, and deploy locks left behind by an interrupted request.

use serde_json::json;

use crate::command::Command;
use crate::config::Person;
use crate::engine::locks::{env_lock_key, policy_view};
use crate::engine::reply::Reply;
use crate::engine::state::{Request, State};
use crate::engine::{Engine, EngineError};
use crate::names::EnvName;
use crate::policy::{self, Decision, Facts};
use crate::store::LockRecord;

impl Engine {
    /// `lock <env> [reason]`: takes the environment's lock by hand.
    pub(in crate::engine) fn lock(
        &self,
        person: &Person,
        command: &Command,
        env: &EnvName,
        reason: Option<&str>,
    ) -> Result<Reply, EngineError> {
        let key = env_lock_key(env.as_str());
        let facts = Facts {
            lock: self.store.lock(&key)?.map(policy_view),
            checks_passed: None,
            defer_checks: false,
        };
        if let Decision::Deny(why) =
            policy::decide(Some(person), command, &self.config, &facts, self.now())
        {
            return Ok(Reply::refused(why));
        }
        let record = LockRecord {
            key,
            holder: person.id.to_string(),
            request: None,
            reason: reason.unwrap_or("locked by hand").to_owned(),
            since: self.now(),
        };
        Ok(match self.take_lock(&record, env.as_str())? {
            Ok(()) => Reply::text(format!(
                "{env} is locked by {}: {}",
                person.id, record.reason
            )),
            Err(holder) => Reply::refused(format!(
                "{env} is already locked by {}: {}",
                holder.holder, holder.reason
            )),
        })
    }

    /// `unlock <env>`: releases the environment's lock, or the deploy lock
    /// an interrupted request left behind.
    pub(in crate::engine) fn unlock(
        &self,
        person: &Person,
        command: &Command,
        env: &EnvName,
    ) -> Result<Reply, EngineError> {
        let key = env_lock_key(env.as_str());
        let (current, left_by) = match self.store.lock(&key)? {
            Some(lock) => (Some(lock), None),
            None => match self.left_behind(env)? {
                LeftBehind::Nothing => (None, None),
                LeftBehind::Running(id, state) => {
                    return Ok(Reply::refused(format!(
                        "{id} is {} in {env}; its lock goes when it ends (or `cancel {id}`)",
                        state.word()
                    )))
                }
                LeftBehind::Stale(lock, id) => (Some(lock), id),
            },
        };
        let facts = Facts {
            lock: current.clone().map(policy_view),
            checks_passed: None,
            defer_checks: false,
        };
        if let Decision::Deny(why) =
            policy::decide(Some(person), command, &self.config, &facts, self.now())
        {
            return Ok(Reply::refused(why));
        }
        let Some(current) = current else {
            return Ok(Reply::text(format!("{env} is not locked")));
        };
        if !self.store.unlock(&current.key, &current)? {
            return Ok(Reply::text(format!(
                "{env}'s lock changed meanwhile; look again with `status {env}`"
            )));
        }
        self.audit(
            person.id.as_str(),
            "lock.released",
            &current.key,
            Some(env.as_str()),
            json!({
                "held_by": current.holder,
                "reason": current.reason,
                "left_by": left_by.map(|id| id.to_string()),
            }),
        )?;
        Ok(Reply::text(match left_by {
            Some(id) => format!(
                "{env} is unlocked: released the lock {id} kept when it was interrupted \
                 (it was held by {}). {id} may have left the cluster half-changed: \
                 `status {env}` shows what runs",
                current.holder
            ),
            None => format!(
                "{env} is unlocked (it was locked by {}: {})",
                current.holder, current.reason
            ),
        }))
    }

    /// A deploy lock in `env` whose request no longer runs: it was
    /// interrupted by a restart (and keeps the lock until a person has
    /// looked at the cluster), or it ended without releasing it.
    fn left_behind(&self, env: &EnvName) -> Result<LeftBehind, EngineError> {
        for app in self.config.apps() {
            let Some(lock) = self.store.lock(&format!("{}/{}", app.name, env))? else {
                continue;
            };
            let request = match lock.request {
                Some(id) => self.store.get_request::<Request>(id)?,
                None => None,
            };
            return Ok(match request {
                Some(r) if !r.state.is_terminal() => LeftBehind::Running(r.id, r.state),
                Some(r) => LeftBehind::Stale(lock, Some(r.id)),
                None => LeftBehind::Stale(lock, None),
            });
        }
        Ok(LeftBehind::Nothing)
    }
}

/// What holds an environment when no one locked it by hand.
enum LeftBehind {
    /// Nothing.
    Nothing,
    /// A request that is still running.
    Running(crate::names::RequestId, State),
    /// A lock whose request ended (or is unknown), and that request.
    Stale(LockRecord, Option<crate::names::RequestId>),
}

#[cfg(test)]
mod tests {
    use crate::engine::testing::TestEngine;

    #[tokio::test]
    async fn a_lock_by_hand_holds_until_its_holder_or_an_admin_unlocks() {
        let t = TestEngine::start().await;
        let locked = t.say("console:alice", "lock dev migration").await;
        assert_eq!(locked.text, "dev is locked by alice: migration");
        let deploy = t.say("console:alice", "deploy main to dev").await;
        assert!(deploy.is_refused(), "{}", deploy.text);
        let again = t.say("console:alice", "lock dev").await;
        assert!(again.is_refused(), "{}", again.text);
        let other = t.say("console:bob", "unlock dev").await;
        assert!(other.is_refused(), "{}", other.text);
        let admin = t.say("console:erin", "unlock dev").await;
        assert_eq!(
            admin.text,
            "dev is unlocked (it was locked by alice: migration)"
        );
        let unlocked = t.say("console:erin", "unlock dev").await;
        assert!(unlocked.is_refused(), "{}", unlocked.text);
        assert!(
            unlocked.text.contains("dev is not locked"),
            "{}",
            unlocked.text
        );
    }
}
