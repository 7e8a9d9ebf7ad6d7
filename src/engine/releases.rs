//! What Gantry has deployed where: the successful deploys it recorded.

use super::state::{Action, Request, State};
use super::Engine;
use crate::config::App;
use crate::names::RequestId;

impl Engine {
    /// Successful deploys of `app` to `env`, newest first.
    pub(super) fn deploys(&self, app: &App, env: &str) -> Vec<Request> {
        let all: Vec<(u64, Request)> = self.store.requests().unwrap_or_default();
        let mut found: Vec<Request> = all
            .into_iter()
            .map(|(_, r)| r)
            .filter(|r| {
                r.state == State::Succeeded
                    && !r.dry_run
                    && r.app == app.name
                    && r.env.as_ref().is_some_and(|e| e.as_str() == env)
                    && matches!(
                        r.action,
                        Action::Deploy { .. } | Action::Promote { .. } | Action::Rollback
                    )
            })
            .collect();
        found.reverse();
        found
    }

    /// The newest successful deploy, skipping one request if asked.
    pub(super) fn last_good(
        &self,
        app: &App,
        env: &str,
        skip: Option<RequestId>,
    ) -> Option<Request> {
        self.deploys(app, env)
            .into_iter()
            .find(|r| Some(r.id) != skip)
    }
}
