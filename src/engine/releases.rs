//! What Gantry has deployed where: the successful deploys it recorded,
//! found through the store's releases index rather than by reading every
//! request.

use super::state::{Action, Request, State};
use super::{Engine, EngineError};
use crate::config::App;
use crate::names::RequestId;

impl Engine {
    /// Successful deploys of `app` to `env`, newest first.
    pub(super) fn deploys(&self, app: &App, env: &str) -> Vec<Request> {
        if !self.store.releases_indexed().unwrap_or(false) {
            let _ = self.index_releases();
        }
        let ids = self
            .store
            .release_ids(app.name.as_str(), env)
            .unwrap_or_default();
        ids.into_iter()
            .filter_map(|id| self.store.get_request::<Request>(id).ok().flatten())
            .filter(|r| {
                is_release(r)
                    && r.app == app.name
                    && r.env.as_ref().is_some_and(|e| e.as_str() == env)
            })
            .collect()
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

    /// Notes `request` in the releases index when it is one; called before
    /// the request record is written.
    pub(super) fn note_release(&self, request: &Request) -> Result<(), EngineError> {
        if let (true, Some(env)) = (is_release(request), &request.env) {
            self.store
                .put_release(request.app.as_str(), env.as_str(), request.id.0)?;
        }
        Ok(())
    }

    /// Builds the releases index of a store written before it existed: one
    /// pass over the requests, once.
    fn index_releases(&self) -> Result<(), EngineError> {
        let all: Vec<(u64, Request)> = self.store.requests()?;
        for (_, request) in &all {
            self.note_release(request)?;
        }
        self.store.mark_releases_indexed()?;
        Ok(())
    }
}

/// A request that put a release in place: a deploy, promotion or rollback
/// that succeeded for real.
fn is_release(r: &Request) -> bool {
    r.state == State::Succeeded
        && !r.dry_run
        && matches!(
            r.action,
            Action::Deploy { .. } | Action::Promote { .. } | Action::Rollback
        )
}

#[cfg(test)]
mod tests {
    use crate::engine::testing::TestEngine;
    use crate::engine::State;

    #[tokio::test]
    async fn a_store_from_before_the_index_finds_its_releases_once_indexed() {
        let t = TestEngine::start().await;
        let first = t.say("console:alice", "deploy main to dev").await;
        assert_eq!(first.state, Some(State::Succeeded), "{}", first.text);
        let app = t.engine.config.app("web").expect("web").clone();
        assert_eq!(
            t.engine.last_good(&app, "dev", None).map(|r| r.id),
            first.request
        );
        // A release recorded the way a store before the index held it: the
        // request alone, and no marker.
        let mut older = t.request(&first);
        older.id = crate::names::RequestId(first.request.expect("an id").0 + 100);
        t.store.put_request(older.id.0, &older).expect("written");
        let fresh = tempfile::tempdir().expect("temp dir");
        let copy = crate::store::Store::open(fresh.path()).expect("store opens");
        for (id, request) in t
            .store
            .requests::<crate::engine::Request>()
            .expect("readable")
        {
            copy.put_request(id, &request).expect("copied");
        }
        assert!(!copy.releases_indexed().expect("readable"));
        let engine = crate::engine::Engine::new(
            t.engine.config.clone(),
            t.engine.grammar.clone(),
            copy.clone(),
            t.engine.ports.clone(),
            t.engine.clock.clone(),
        );
        let found: Vec<u64> = engine.deploys(&app, "dev").iter().map(|r| r.id.0).collect();
        assert_eq!(found, vec![older.id.0, first.request.expect("an id").0]);
        assert!(copy.releases_indexed().expect("readable"));
    }
}
