//! The one re-check before a deploy, promotion or rollback acts, dry runs
//! included: what its approvals were bound to, read again from the world.
//! Approvals bind to the pinned commit and digest and to the policy
//! version; between the approval and the deploy a branch may move, an
//! image tag may be pushed again, an approver may lose their role or the
//! config may change, so each is looked at here, once, right before acting.
//!
//! Freeze windows are policy's to decide, and it decides when the request
//! is made. A request that runs straight away runs on that decision; one
//! that waited for approvals is asked again, by the same rule, because a
//! window may have opened while it waited.

use std::collections::BTreeMap;

use super::refs::Unresolved;
use super::state::{check_start, Action, Event, Request};
use super::Engine;
use crate::command::GitRef;
use crate::config::{App, Environment};
use crate::names::{Digest, PersonId, RoleName, Sha};
use crate::policy;

/// When policy made the decision, freeze windows included, that lets a
/// request run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Cleared {
    /// Just now, as the request was made: the decision stands as made.
    Now,
    /// When the request was made, before it waited for approvals: a freeze
    /// window may have opened since.
    AfterApprovals,
}

/// What the world said when the re-check passed: the fields of the
/// `DeployStarted` event that starts the deploy.
pub(super) struct Checked {
    /// The commit the ref points at now (the pinned one).
    pub head: Sha,
    /// The digest the image points at now (the pinned one).
    pub digest: Option<Digest>,
    approver_roles: BTreeMap<PersonId, Vec<RoleName>>,
    policy_version: String,
}

impl Checked {
    /// The event that starts the deploy. The state machine compares the
    /// same facts again as its own invariant; having just passed them
    /// here, the request starts.
    pub(super) fn started(&self) -> Event {
        Event::DeployStarted {
            head: self.head.clone(),
            digest: self.digest.clone(),
            approver_roles: self.approver_roles.clone(),
            policy_version: self.policy_version.clone(),
        }
    }
}

impl Engine {
    /// Re-checks everything `request`'s approvals were bound to: the commit
    /// its ref and the digest its image point at now, which approving roles
    /// its approvers hold now, and the policy version; and, when it
    /// waited for approvals, whether a freeze window opened meanwhile. `Err`
    /// says, as a person reads it, why it may not act.
    pub(super) async fn recheck(
        &self,
        request: &Request,
        app: &App,
        env: &Environment,
        cleared: Cleared,
    ) -> Result<Checked, String> {
        let (head, digest) = self.read_pins(request, app).await?;
        if cleared == Cleared::AfterApprovals {
            if let Some(why) = self.frozen_since_cleared(request, env) {
                return Err(why);
            }
        }
        let checked = Checked {
            head,
            digest,
            approver_roles: self.approver_roles(request),
            policy_version: self.config.version().to_owned(),
        };
        check_start(
            request,
            &checked.head,
            checked.digest.as_ref(),
            &checked.approver_roles,
            &checked.policy_version,
        )
        .map_err(|refused| refused.to_string())?;
        Ok(checked)
    }

    /// Why `request`, cleared by policy before it waited for approvals, may
    /// not go ahead in a freeze window open now: policy's freeze rule asked
    /// again, since time has passed. Only deploys and promotions wait for
    /// approvals; rollbacks, which policy lets through a freeze, never do.
    fn frozen_since_cleared(&self, request: &Request, env: &Environment) -> Option<String> {
        let person = self.config.person(request.requester.as_str());
        policy::check_freeze(person, env, &self.config, self.now())
            .err()
            .map(|frozen| frozen.to_string())
    }

    /// The commit and digest the request's ref and image point at now.
    async fn read_pins(
        &self,
        request: &Request,
        app: &App,
    ) -> Result<(Sha, Option<Digest>), String> {
        match &request.action {
            Action::Deploy { reference } => {
                let reference = GitRef::parse(reference).map_err(|e| e.to_string())?;
                let (head, digest) = self
                    .resolve_image(app, &reference)
                    .await
                    .map_err(|(Unresolved::Ref(e) | Unresolved::Image(e))| e.to_string())?;
                Ok((head, Some(digest)))
            }
            // Promotions and rollbacks move a digest Gantry already deployed;
            // it is re-read from the pinned record, which cannot change.
            _ => {
                let sha = request
                    .sha
                    .clone()
                    .ok_or("the request has no pinned commit")?;
                Ok((sha, request.digest.clone()))
            }
        }
    }

    /// The roles the request's approvers hold now that its rules admit;
    /// someone no longer in config holds none.
    fn approver_roles(&self, request: &Request) -> BTreeMap<PersonId, Vec<RoleName>> {
        let Some(rule) = &request.rule else {
            return BTreeMap::new();
        };
        let admitted = rule.roles();
        request
            .approvals
            .iter()
            .filter_map(|a| {
                let person = self.config.person(a.person.as_str())?;
                let roles: Vec<RoleName> = person
                    .roles
                    .iter()
                    .filter(|r| admitted.contains(r))
                    .cloned()
                    .collect();
                Some((a.person.clone(), roles))
            })
            .collect()
    }
}
