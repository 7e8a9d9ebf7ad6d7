//! `rollback [<app>] in <env> [to <request-id|sha>]`: an earlier successful
//! deploy (the last verified one unless named), pinned when the request is
//! made; the automatic rollback after a failed rollout or verification, to
//! the last verified release; and the environment lock every rollback
//! leaves behind.

use serde_json::json;

use crate::command::RollbackTarget;
use crate::config::{App, Environment};
use crate::engine::locks::env_lock_key;
use crate::engine::place::synced;
use crate::engine::ports::{RolloutOutcome, Stamp, Workload};
use crate::engine::request::Pins;
use crate::engine::state::{Event, Request, State};
use crate::engine::{Engine, EngineError};
use crate::names::{Digest, EnvName};
use crate::store::LockRecord;

/// The release a rollback puts back.
pub(in crate::engine) struct Restore {
    /// Its digest.
    pub digest: Digest,
    /// The request that deployed it, when Gantry knows it.
    pub release: Option<crate::names::RequestId>,
    /// How the message names it.
    pub words: String,
}

impl Engine {
    /// Pins a rollback to the deploy it restores: the one named by request
    /// id or commit, or else the last verified deploy before the current
    /// one, or else the newest successful one before it.
    pub(in crate::engine) fn pin_rollback(
        &self,
        app: &App,
        env: &EnvName,
        target: Option<&RollbackTarget>,
        previous: Option<Digest>,
    ) -> Result<Pins, String> {
        let current = self.last_good(app, env.as_str(), None);
        let verifies = self
            .config
            .env(env.as_str())
            .is_some_and(|e| e.verify.is_some());
        let mut note = None;
        let wanted = match target {
            Some(RollbackTarget::Request(id)) => self
                .load(*id)
                .ok()
                .flatten()
                .filter(|r| {
                    r.state == State::Succeeded && r.env.as_ref() == Some(env) && r.app == app.name
                })
                .ok_or_else(|| {
                    format!("{id} is not a successful deploy of {} to {env}", app.name)
                })?,
            Some(RollbackTarget::Sha(sha)) => self
                .deploys(app, env.as_str())
                .into_iter()
                .find(|r| {
                    r.sha
                        .as_ref()
                        .is_some_and(|s| s.as_str().starts_with(sha.as_str()))
                })
                .ok_or_else(|| format!("no successful deploy of {sha} to {env}"))?,
            None => {
                // The last verified release before the current one, else
                // the newest successful one before it.
                let skip = current.as_ref().map(|c| c.id);
                let earlier: Vec<Request> = self
                    .deploys(app, env.as_str())
                    .into_iter()
                    .filter(|r| Some(r.id) != skip)
                    .collect();
                match earlier.iter().find(|r| r.is_verified()).cloned() {
                    Some(verified) => verified,
                    None => {
                        let before = earlier.into_iter().next().ok_or_else(|| {
                            format!(
                                "there is no earlier successful deploy in {env} to roll back to"
                            )
                        })?;
                        if verifies {
                            note = Some(format!(
                                "back to {}, the release before (no release of {} in {env} is verified)",
                                before.id, app.name
                            ));
                        }
                        before
                    }
                }
            }
        };
        let sha = wanted.sha.ok_or("that deploy has no commit")?;
        Ok(Pins {
            sha,
            digest: wanted.digest,
            previous,
            note,
        })
    }

    /// After a failed rollout: records why, then, where the environment
    /// rolls back automatically, puts back the last verified release (else
    /// what ran before) and locks the environment.
    pub(in crate::engine) async fn recover_rollout(
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
        if !env.auto_rollback {
            return self
                .apply(&deploying, Event::Fail { reason: why }, &actor)
                .await;
        }
        let what = format!("automatic rollback of {}", deploying.id);
        self.put_back(deploying, app, env, workload, why, &what)
            .await
    }

    /// The release a failed or rolled-back request goes back to: the last
    /// verified release of the app in the environment, else what ran
    /// before it; with the words that say which.
    pub(in crate::engine) fn rollback_target(
        &self,
        app: &App,
        env: &Environment,
        request: &Request,
    ) -> Option<Restore> {
        let earlier: Vec<Request> = self
            .deploys(app, env.name.as_str())
            .into_iter()
            .filter(|r| r.id != request.id)
            .collect();
        if let Some((digest, id)) = earlier
            .iter()
            .filter(|r| r.is_verified())
            .find_map(|r| Some((r.digest.clone()?, r.id)))
        {
            let words = format!("{}, the last verified release ({id})", digest.short());
            return Some(Restore {
                digest,
                release: Some(id),
                words,
            });
        }
        let previous = request.previous_digest.clone()?;
        let words = if env.verify.is_some() {
            format!(
                "{}, the release before it (no release of {} in {} is verified)",
                previous.short(),
                app.name,
                env.name
            )
        } else {
            previous.short().to_owned()
        };
        let release = earlier
            .iter()
            .find(|r| r.digest.as_ref() == Some(&previous))
            .map(|r| r.id);
        Some(Restore {
            digest: previous,
            release,
            words,
        })
    }

    /// Puts back [`Self::rollback_target`] after `why`, follows the rollout
    /// and locks the environment; `what` names the rollback in the lock.
    pub(in crate::engine) async fn put_back(
        &self,
        deploying: Request,
        app: &App,
        env: &Environment,
        workload: &Workload,
        why: String,
        what: &str,
    ) -> Result<Request, EngineError> {
        let actor = deploying.requester.to_string();
        let Some(Restore {
            digest: previous,
            release,
            words,
        }) = self.rollback_target(app, env, &deploying)
        else {
            let reason = format!("{why}; nothing ran before it, so nothing was rolled back");
            return self.apply(&deploying, Event::Fail { reason }, &actor).await;
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
                    &format!("{why}; rolling back to {words}: "),
                )
                .await
            }
            Err(e) => Err(e),
        };
        match restored {
            Ok(RolloutOutcome::Complete) => {
                let reason = format!("{why}; rolled back to {words}");
                // What runs now is that release again.
                if let Some(release) = release {
                    self.store
                        .put_release(app.name.as_str(), env.name.as_str(), release.0)?;
                }
                let ended = self
                    .apply(&deploying, Event::RolledBack { reason }, &actor)
                    .await?;
                self.lock_after_rollback(&ended, env, what)?;
                Ok(ended)
            }
            Ok(RolloutOutcome::Failed(e2)) => {
                self.rollback_failed(&deploying, why, e2.to_string(), &actor)
                    .await
            }
            Err(e2) => {
                self.rollback_failed(&deploying, why, e2.to_string(), &actor)
                    .await
            }
        }
    }

    /// Locks the environment after a rollback until someone unlocks it.
    pub(in crate::engine) fn lock_after_rollback(
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

    /// The automatic rollback did not restore the previous release either:
    /// the request fails, saying both.
    async fn rollback_failed(
        &self,
        deploying: &Request,
        why: String,
        rollback: String,
        actor: &str,
    ) -> Result<Request, EngineError> {
        let reason = format!("{why}; the rollback failed too: {rollback}");
        self.apply(deploying, Event::Fail { reason }, actor).await
    }
}

#[cfg(test)]
mod tests {
    use crate::engine::testing::{with_freeze, TestEngine, FREEZE_OPENS};
    use crate::engine::State;

    #[tokio::test]
    async fn a_rollback_to_a_named_request_restores_its_digest_and_locks_the_environment() {
        let t = TestEngine::start().await;
        let first = t.say("console:alice", "deploy main to dev").await;
        let first_image = t.image("dev");
        let second = t.say("console:alice", "deploy feat-x to dev").await;
        assert_eq!(second.state, Some(State::Succeeded), "{}", second.text);
        assert_ne!(t.image("dev"), first_image);
        let id = first.request.expect("a request");
        let back = t
            .say("console:alice", &format!("rollback in dev to {id}"))
            .await;
        assert_eq!(back.state, Some(State::Succeeded), "{}", back.text);
        assert_eq!(t.request(&back).digest, t.request(&first).digest);
        assert_eq!(t.image("dev"), first_image);
        let again = t.say("console:alice", "deploy feat-x to dev").await;
        assert!(again.is_refused(), "{}", again.text);
        assert!(
            again.text.contains("dev is locked by alice"),
            "{}",
            again.text
        );
    }

    #[tokio::test]
    async fn a_rollback_with_nothing_earlier_fails_and_says_so() {
        let t = TestEngine::start().await;
        let reply = t.say("console:alice", "rollback in dev").await;
        assert_eq!(reply.state, Some(State::Failed), "{}", reply.text);
        assert!(
            reply
                .text
                .contains("there is no earlier successful deploy in dev to roll back to"),
            "{}",
            reply.text
        );
    }

    #[tokio::test]
    async fn a_rollback_goes_ahead_in_a_freeze_as_policy_allows() {
        let t = TestEngine::with_config(with_freeze("dev")).await;
        let first = t.say("console:alice", "deploy main to dev").await;
        let first_image = t.image("dev");
        t.say("console:alice", "deploy feat-x to dev").await;
        t.set_time(FREEZE_OPENS + 3600);
        let deploy = t.say("console:alice", "deploy main to dev").await;
        assert!(deploy.is_refused(), "{}", deploy.text);
        assert!(
            deploy.text.contains("dev is frozen: test freeze"),
            "{}",
            deploy.text
        );
        let back = t.say("console:alice", "rollback in dev").await;
        assert_eq!(back.state, Some(State::Succeeded), "{}", back.text);
        assert_eq!(t.request(&back).digest, t.request(&first).digest);
        assert_eq!(t.image("dev"), first_image);
    }
}
