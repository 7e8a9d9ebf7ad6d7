//! `complete <request-id>` and `rollback <request-id>`, typed or clicked:
//! people ending a release's verification, one way or the other.

use crate::config::Person;
use crate::engine::reply::Reply;
use crate::engine::state::State;
use crate::engine::{Engine, EngineError};
use crate::names::{Identity, RequestId};

impl Engine {
    /// Ends the verification of `id` early and marks the release verified.
    pub(crate) async fn complete_verifying(
        &self,
        person: &Person,
        identity: &Identity,
        id: RequestId,
    ) -> Result<Reply, EngineError> {
        let _ = (person, identity);
        self.verification_control(id)
    }

    /// Stops the verification of `id` and rolls back to the last verified
    /// release.
    pub(crate) async fn roll_back_verifying(
        &self,
        person: &Person,
        identity: &Identity,
        id: RequestId,
    ) -> Result<Reply, EngineError> {
        let _ = (person, identity);
        self.verification_control(id)
    }

    /// What both controls answer until the verifying loop drives them.
    fn verification_control(&self, id: RequestId) -> Result<Reply, EngineError> {
        let Some(request) = self.load(id)? else {
            return Ok(Reply::text(format!("there is no request {id}")));
        };
        if request.state != State::Verifying {
            return Ok(Reply::refused_for(
                &request,
                format!("{id} is not verifying"),
            ));
        }
        Ok(Reply::refused_for(
            &request,
            format!("{id}: verification control is not available yet"),
        ))
    }
}
