//! What a request's approvals were bound to, read again right before it
//! acts: the commit and digest its ref and image point at now, the freeze
//! windows, and who still holds an approving role.

use std::collections::BTreeSet;

use super::refs::Unresolved;
use super::state::{Action, Request};
use super::Engine;
use crate::command::GitRef;
use crate::config::{App, Environment};
use crate::names::{Digest, PersonId};

impl Engine {
    /// Why `request` may not go ahead in a freeze window open now, unless
    /// its requester holds a break-glass role.
    pub(super) fn frozen(&self, request: &Request, env: &Environment) -> Option<String> {
        let window = env.freeze_at(self.now())?;
        let person = self.config.person(request.requester.as_str());
        let glass = person.is_some_and(|p| p.has_any_role(self.config.break_glass_roles()));
        (!glass).then(|| format!("{} is frozen: {}", env.name, window.reason()))
    }

    /// The commit and digest the request's ref and image point at now.
    pub(super) async fn recheck(
        &self,
        request: &Request,
        app: &App,
    ) -> Result<(crate::names::Sha, Option<Digest>), String> {
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

    /// The request's approvers who hold one of its rule's roles now.
    pub(super) fn approvers_with_role(&self, request: &Request) -> BTreeSet<PersonId> {
        let Some(rule) = &request.rule else {
            return BTreeSet::new();
        };
        request
            .approvals
            .iter()
            .filter(|a| {
                self.config
                    .person(a.person.as_str())
                    .is_some_and(|p| p.has_any_role(&rule.roles))
            })
            .map(|a| a.person.clone())
            .collect()
    }
}
