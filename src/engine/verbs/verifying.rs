//! `complete <request-id>` and `rollback <request-id>`, typed or clicked:
//! people ending a release's verification, one way or the other.

use crate::config::{Environment, Person};
use crate::engine::reply::Reply;
use crate::engine::state::{Request, State};
use crate::engine::{Control, Engine, EngineError};
use crate::names::RequestId;

impl Engine {
    /// `complete R-n`: ends a release's soak early; it goes ahead, not
    /// verified. An approver of the environment may (where the environment
    /// needs no approvals: the requester or an admin).
    pub(crate) async fn complete_verifying(
        &self,
        person: &Person,
        id: RequestId,
    ) -> Result<Reply, EngineError> {
        let (request, env) = match self.verifying_request(id)? {
            Ok(found) => found,
            Err(refused) => return Ok(refused),
        };
        let approvers = env.map(|e| e.approvals.roles()).unwrap_or_default();
        let allowed = if approvers.is_empty() {
            request.requester == person.id || person.has_any_role(self.config.admin_roles())
        } else {
            person.has_any_role(&approvers)
        };
        if !allowed {
            let who = if approvers.is_empty() {
                format!("{} or an admin", request.requester)
            } else {
                let roles: Vec<&str> = approvers.iter().map(|r| r.as_str()).collect();
                format!("an approver ({})", roles.join(", "))
            };
            return Ok(Reply::refused_for(
                &request,
                format!("only {who} may complete {id} before its soak ends"),
            ));
        }
        self.steer(
            &request,
            Control::Complete(person.id.clone()),
            "completing it early: it goes ahead, not verified",
        )
    }

    /// `rollback R-n`: stops a release's soak and rolls back to the last
    /// verified release. The environment's requesters, its approvers and
    /// admins may.
    pub(crate) async fn roll_back_verifying(
        &self,
        person: &Person,
        id: RequestId,
    ) -> Result<Reply, EngineError> {
        let (request, env) = match self.verifying_request(id)? {
            Ok(found) => found,
            Err(refused) => return Ok(refused),
        };
        let allowed = env.is_some_and(|e| {
            person.has_any_role(&e.requesters) || person.has_any_role(&e.approvals.roles())
        }) || person.has_any_role(self.config.admin_roles());
        if !allowed {
            return Ok(Reply::refused_for(
                &request,
                format!(
                    "{} may not roll back {id}: it takes a requester or approver of its environment, or an admin",
                    person.id
                ),
            ));
        }
        self.steer(
            &request,
            Control::RollBack(person.id.clone()),
            "rolling it back to the last verified release",
        )
    }

    /// The request `id` and its environment, when it is verifying; else the
    /// refusal to answer.
    fn verifying_request(
        &self,
        id: RequestId,
    ) -> Result<Result<(Request, Option<&Environment>), Reply>, EngineError> {
        let Some(request) = self.load(id)? else {
            return Ok(Err(Reply::refused(format!("there is no request {id}"))));
        };
        if request.state != State::Verifying {
            return Ok(Err(Reply::refused_for(
                &request,
                format!("{id} is not verifying (it is {})", request.state.word()),
            )));
        }
        let env = request
            .env
            .as_ref()
            .and_then(|e| self.config.env(e.as_str()));
        Ok(Ok((request, env)))
    }

    /// Hands `control` to the request's soak and says what happens next.
    fn steer(&self, request: &Request, control: Control, what: &str) -> Result<Reply, EngineError> {
        if self.control_soak(request.id, control) {
            Ok(Reply::for_request(
                request,
                format!("{}: {what}", request.id),
            ))
        } else {
            Ok(Reply::refused_for(
                request,
                format!("{} is verifying, but its checks do not run in this Gantry process; try again in a moment", request.id),
            ))
        }
    }
}
