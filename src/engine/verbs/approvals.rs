//! `approve`, `deny`, `cancel` and approval reactions: people acting on a
//! request.

use crate::config::Person;
use crate::engine::ports::DeploymentState;
use crate::engine::progress::headline;
use crate::engine::recheck::Cleared;
use crate::engine::reply::Reply;
use crate::engine::rollout::said_about;
use crate::engine::state::{transition, Action, Event, Request, State};
use crate::engine::{Engine, EngineError};
use crate::names::{Identity, RequestId};

impl Engine {
    /// Counts an approval, with what the approver said; runs the request
    /// once every rule is met.
    pub(in crate::engine) async fn approve(
        &self,
        person: &Person,
        identity: &Identity,
        id: RequestId,
        comment: Option<&str>,
    ) -> Result<Reply, EngineError> {
        let Some(request) = self.load(id)? else {
            return Ok(Reply::text(format!("there is no request {id}")));
        };
        let now = self.now();
        if request.state == State::AwaitingApproval
            && request.rule.as_ref().is_some_and(|r| now >= r.expires_at)
        {
            let expired = self
                .apply(&request, Event::Expire, person.id.as_str())
                .await?;
            return Ok(self.ended(&expired));
        }
        let event = Event::Approve {
            person: person.id.clone(),
            identity: identity.clone(),
            roles: person.roles.clone(),
            comment: comment.map(str::to_owned),
        };
        if let Err(refused) = transition(&request, &event, now) {
            self.audit(
                person.id.as_str(),
                "approval.refused",
                &id.to_string(),
                request.env.as_ref().map(|e| e.as_str()),
                serde_json::json!({ "reason": refused.to_string(), "identity": identity }),
            )?;
            return Ok(Reply::refused_for(&request, refused));
        }
        let next = self.apply(&request, event, person.id.as_str()).await?;
        if next.state == State::Approved {
            // Policy decided, freeze windows included, when the request was
            // made; time has passed since.
            return self.execute(next, Cleared::AfterApprovals).await;
        }
        let tally = next.tally(None);
        let rules: Vec<&str> = tally
            .rules_of(&person.id)
            .into_iter()
            .map(|r| r.as_str())
            .collect();
        Ok(Reply::for_request(
            &next,
            format!(
                "{} approved {id} for {}: {}",
                person.id,
                rules.join(", "),
                tally.summary()
            ),
        ))
    }

    /// Denies a waiting request; only someone who could approve for one of
    /// its rules, or an admin.
    pub(in crate::engine) async fn deny(
        &self,
        person: &Person,
        id: RequestId,
        reason: Option<&str>,
    ) -> Result<Reply, EngineError> {
        let Some(request) = self.load(id)? else {
            return Ok(Reply::text(format!("there is no request {id}")));
        };
        let may = request
            .rule
            .as_ref()
            .is_some_and(|r| r.admits(&person.roles))
            || person.has_any_role(self.config.admin_roles());
        if !may {
            return Ok(Reply::refused_for(
                &request,
                format!("{} may not deny {id}", person.id),
            ));
        }
        let reason = format!(
            "denied by {}{}",
            person.id,
            reason.map(|r| format!(": {r}")).unwrap_or_default()
        );
        match transition(
            &request,
            &Event::Deny {
                reason: reason.clone(),
            },
            self.now(),
        ) {
            Ok(_) => {
                let denied = self
                    .apply(&request, Event::Deny { reason }, person.id.as_str())
                    .await?;
                self.release_lock(&denied)?;
                self.record_denial(&denied).await?;
                Ok(self.ended(&denied))
            }
            Err(refused) => Ok(Reply::refused_for(&request, refused)),
        }
    }

    /// Records a denied deploy or promotion on the Git host as a deployment
    /// whose status is `failure` and says who denied it and why, so the
    /// repository's deployments show the refusal beside the releases. A
    /// failure there is audited and changes nothing else.
    async fn record_denial(&self, denied: &Request) -> Result<(), EngineError> {
        if denied.dry_run
            || !matches!(
                denied.action,
                Action::Deploy { .. } | Action::Promote { .. }
            )
        {
            return Ok(());
        }
        let (Some(env), Some(sha)) = (&denied.env, &denied.sha) else {
            return Ok(());
        };
        let Some(app) = self.config.app(denied.app.as_str()) else {
            return Ok(());
        };
        let repo = app.repo.to_string();
        let forge = &self.ports.forge;
        let recorded = match forge
            .create_deployment(&repo, env.as_str(), sha, denied.id)
            .await
        {
            Ok(id) => forge
                .set_deployment_state(&repo, id, DeploymentState::Failure, "", &said_about(denied))
                .await
                .map(|()| id),
            Err(e) => Err(e),
        };
        let details = match recorded {
            Ok(id) => serde_json::json!({ "deployment": id, "state": "failure" }),
            Err(e) => serde_json::json!({ "error": e.to_string() }),
        };
        self.audit(
            "gantry",
            "github.denial_recorded",
            &denied.id.to_string(),
            Some(env.as_str()),
            details,
        )
    }

    /// Cancels a request that has not started changing anything.
    pub(in crate::engine) async fn cancel(
        &self,
        person: &Person,
        id: RequestId,
    ) -> Result<Reply, EngineError> {
        let Some(request) = self.load(id)? else {
            return Ok(Reply::text(format!("there is no request {id}")));
        };
        if request.requester != person.id && !person.has_any_role(self.config.admin_roles()) {
            return Ok(Reply::refused_for(
                &request,
                format!(
                    "only {} or an admin may cancel {}",
                    request.requester,
                    headline(&request)
                ),
            ));
        }
        match transition(&request, &Event::Cancel, self.now()) {
            Ok(_) => {
                let cancelled = self
                    .apply(&request, Event::Cancel, person.id.as_str())
                    .await?;
                self.release_lock(&cancelled)?;
                Ok(self.ended(&cancelled))
            }
            Err(refused) => Ok(Reply::refused_for(&request, refused)),
        }
    }
}

/// What a reaction on a progress message means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reaction {
    /// The approve emoji was added.
    Approve,
    /// The deny emoji was added.
    Deny,
    /// The approve emoji was removed: the approval is withdrawn, if the
    /// request has not started.
    Revoke,
}

impl Engine {
    /// Handles a reaction by `identity` on message `message_id` in
    /// `channel`. Reactions on messages that are not a request's progress
    /// message are ignored (`None`).
    pub async fn react(
        &self,
        identity: &Identity,
        platform: crate::engine::state::Platform,
        channel: &str,
        message_id: &str,
        reaction: Reaction,
    ) -> Option<Reply> {
        let id = self.request_for_message(platform, channel, message_id)?;
        let Some(person) = self.config.person_for(identity) else {
            return Some(Reply::refused(format!(
                "{identity} is not known to Gantry, so its reaction does not count"
            )));
        };
        let command = match reaction {
            Reaction::Approve => crate::command::Command::Approve { id, comment: None },
            Reaction::Deny => crate::command::Command::Deny {
                id,
                reason: Some("denied by reaction".into()),
            },
            Reaction::Revoke => {
                return Some(self.revoke(person, id).await.unwrap_or_else(Reply::refused));
            }
        };
        let conversation = crate::engine::state::Conversation {
            platform,
            channel: channel.into(),
        };
        Some(self.run(identity, &conversation, &command).await)
    }

    /// Withdraws `person`'s approval of a request that has not started.
    async fn revoke(&self, person: &Person, id: RequestId) -> Result<Reply, EngineError> {
        let Some(request) = self.load(id)? else {
            return Ok(Reply::text(format!("there is no request {id}")));
        };
        if !request.approvals.iter().any(|a| a.person == person.id) {
            return Ok(Reply::for_request(
                &request,
                format!("{} had not approved {id}", person.id),
            ));
        }
        let event = Event::Revoke {
            person: person.id.clone(),
        };
        match transition(&request, &event, self.now()) {
            Ok(_) => {
                let next = self.apply(&request, event, person.id.as_str()).await?;
                Ok(Reply::for_request(
                    &next,
                    format!("{} withdrew their approval of {id}", person.id),
                ))
            }
            Err(refused) => Ok(Reply::refused_for(
                &request,
                format!("too late to withdraw: {refused}"),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::engine::testing::{with_freeze, TestEngine, FREEZE_OPENS};
    use crate::engine::{Reply, State};
    use crate::names::RequestId;

    /// alice asks for `deploy main to staging`, which waits for one qa approval.
    async fn waiting(t: &TestEngine) -> (Reply, RequestId) {
        let reply = t.say("console:alice", "deploy main to staging").await;
        assert_eq!(reply.state, Some(State::AwaitingApproval), "{}", reply.text);
        let id = reply.request.expect("a request");
        (reply, id)
    }

    #[tokio::test]
    async fn an_approval_from_a_role_that_may_give_it_runs_the_request() {
        let t = TestEngine::start().await;
        let (_, id) = waiting(&t).await;
        let wrong = t.say("console:bob", &format!("approve {id}")).await;
        assert!(wrong.is_refused(), "{}", wrong.text);
        assert_eq!(wrong.state, Some(State::AwaitingApproval));
        assert!(t
            .actions(&id.to_string())
            .contains(&"approval.refused".to_owned()));
        let right = t.say("console:carol", &format!("approve {id}")).await;
        assert_eq!(right.state, Some(State::Succeeded), "{}", right.text);
    }

    #[tokio::test]
    async fn only_an_approver_or_an_admin_may_deny() {
        let t = TestEngine::start().await;
        let (_, id) = waiting(&t).await;
        let refused = t.say("console:bob", &format!("deny {id}")).await;
        assert!(refused.is_refused(), "{}", refused.text);
        assert!(
            refused.text.contains("bob may not deny"),
            "{}",
            refused.text
        );
        let denied = t.say("console:carol", &format!("deny {id} flaky")).await;
        assert_eq!(denied.state, Some(State::Denied), "{}", denied.text);
        assert_eq!(
            t.request(&denied).note.as_deref(),
            Some("denied by carol: flaky")
        );
    }

    #[tokio::test]
    async fn only_the_requester_or_an_admin_may_cancel() {
        let t = TestEngine::start().await;
        let (_, id) = waiting(&t).await;
        let refused = t.say("console:bob", &format!("cancel {id}")).await;
        assert!(refused.is_refused(), "{}", refused.text);
        assert!(
            refused.text.contains("only alice or an admin may cancel"),
            "{}",
            refused.text
        );
        let cancelled = t.say("console:erin", &format!("cancel {id}")).await;
        assert_eq!(
            cancelled.state,
            Some(State::Cancelled),
            "{}",
            cancelled.text
        );
    }

    #[tokio::test]
    async fn withdrawing_an_approval_never_given_changes_nothing() {
        let t = TestEngine::start().await;
        let (_, id) = waiting(&t).await;
        let carol = t.engine.config.person("carol").expect("carol").clone();
        let reply = t
            .engine
            .revoke(&carol, id)
            .await
            .expect("the store answers");
        assert_eq!(reply.text, format!("carol had not approved {id}"));
        assert_eq!(reply.state, Some(State::AwaitingApproval));
    }

    #[tokio::test]
    async fn an_approval_given_once_a_freeze_has_opened_does_not_start_the_deploy() {
        let t = TestEngine::with_config(with_freeze("staging")).await;
        // Asked ten minutes before the window opens, approved ten minutes in.
        t.set_time(FREEZE_OPENS - 600);
        let (_, id) = waiting(&t).await;
        let before = t.image("staging");
        t.set_time(FREEZE_OPENS + 600);
        let approved = t.say("console:carol", &format!("approve {id}")).await;
        assert_eq!(approved.state, Some(State::Failed), "{}", approved.text);
        assert!(
            approved.text.contains("staging is frozen: test freeze"),
            "{}",
            approved.text
        );
        assert_eq!(t.image("staging"), before, "nothing was deployed");
    }

    #[tokio::test]
    async fn a_break_glass_requester_still_deploys_once_a_freeze_has_opened() {
        let t = TestEngine::with_config(with_freeze("staging")).await;
        t.set_time(FREEZE_OPENS - 600);
        let waiting = t.say("console:dave", "deploy main to staging").await;
        assert_eq!(
            waiting.state,
            Some(State::AwaitingApproval),
            "{}",
            waiting.text
        );
        let id = waiting.request.expect("a request");
        t.set_time(FREEZE_OPENS + 600);
        let approved = t.say("console:carol", &format!("approve {id}")).await;
        assert_eq!(approved.state, Some(State::Succeeded), "{}", approved.text);
    }
}
