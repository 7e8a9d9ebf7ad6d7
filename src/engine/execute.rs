//! Running an approved request: each action to the code that carries it
//! out, and the request's deploy lock released when it ends.

use super::recheck::Cleared;
use super::reply::Reply;
use super::state::{Action, Event, Request};
use super::{Engine, EngineError};

impl Engine {
    /// Runs an `Approved` request to its end; `cleared` says when policy
    /// made the decision that let it run.
    pub(super) async fn execute(
        &self,
        request: Request,
        cleared: Cleared,
    ) -> Result<Reply, EngineError> {
        let actor = request.requester.to_string();
        let Some(app) = self.config.app(request.app.as_str()).cloned() else {
            let failed = self
                .apply(
                    &request,
                    Event::Fail {
                        reason: "its app is no longer in config".into(),
                    },
                    &actor,
                )
                .await?;
            return Ok(self.ended(&failed));
        };
        let env = request
            .env
            .as_ref()
            .and_then(|e| self.config.env(e.as_str()))
            .cloned();
        let ended = match (request.action.clone(), env) {
            (Action::Build { reference }, _) => self.run_build(request, &app, &reference).await?,
            (Action::Teardown { .. }, Some(env)) => self.run_teardown(request, &env).await?,
            (_, Some(env)) => self.run_deploy(request, &app, &env, cleared).await?,
            (_, None) => {
                self.apply(
                    &request,
                    Event::Fail {
                        reason: "its environment is no longer in config".into(),
                    },
                    &actor,
                )
                .await?
            }
        };
        self.release_lock(&ended)?;
        Ok(self.ended(&ended))
    }
}
