//! `teardown <branch>`: deleting a preview namespace; and the sweep that
//! deletes previews whose TTL has passed.

use crate::config::Environment;
use crate::engine::ports::Deletion;
use crate::engine::state::{Event, Request};
use crate::engine::{Engine, EngineError};

/// The note a teardown carries when its namespace was gone already.
pub(in crate::engine) const ALREADY_GONE: &str = "already gone";

impl Engine {
    /// Deletes the request's preview namespace.
    pub(in crate::engine) async fn run_teardown(
        &self,
        request: Request,
        env: &Environment,
    ) -> Result<Request, EngineError> {
        let actor = request.requester.to_string();
        let namespace = request.namespace.clone().unwrap_or_default();
        let context = env.cluster.kube_context();
        match self
            .ports
            .cluster
            .delete_namespace(&context, &namespace)
            .await
        {
            Ok(Deletion::Deleted) => self.apply(&request, Event::Verified, &actor).await,
            // Already gone (a TTL sweep, a PR close or a person got there
            // first) is done too, and says so.
            Ok(Deletion::AlreadyGone) => {
                self.audit(
                    &actor,
                    "preview.already_gone",
                    &namespace,
                    request.env.as_ref().map(|e| e.as_str()),
                    serde_json::json!({ "request": request.id.to_string() }),
                )?;
                let mut noted = request.clone();
                noted.note = Some(ALREADY_GONE.to_owned());
                self.apply(&noted, Event::Verified, &actor).await
            }
            Err(e) => {
                self.apply(
                    &request,
                    Event::Fail {
                        reason: format!("deleting {namespace} failed: {e}"),
                    },
                    &actor,
                )
                .await
            }
        }
    }

    /// Deletes every preview namespace whose TTL has passed, in every
    /// cluster that hosts previews; returns the namespaces deleted.
    pub async fn sweep_previews(&self) -> Result<Vec<String>, EngineError> {
        let now = self.now();
        let mut deleted = Vec::new();
        for env in self.config.envs() {
            if !matches!(env.target, crate::config::Target::Preview { .. }) {
                continue;
            }
            let context = env.cluster.kube_context();
            let previews = match self.ports.cluster.list_previews(&context).await {
                Ok(p) => p,
                Err(e) => {
                    self.audit(
                        "gantry",
                        "preview.sweep_failed",
                        &context,
                        Some(env.name.as_str()),
                        serde_json::json!({ "error": e.to_string() }),
                    )?;
                    continue;
                }
            };
            for preview in previews.into_iter().filter(|p| p.expired(now)) {
                let outcome = self
                    .ports
                    .cluster
                    .delete_namespace(&context, &preview.name)
                    .await;
                let details = serde_json::json!({
                    "labels": preview.labels,
                    "already_gone": matches!(outcome, Ok(Deletion::AlreadyGone)),
                    "error": outcome.as_ref().err().map(ToString::to_string),
                });
                self.audit(
                    "gantry",
                    "preview.expired",
                    &preview.name,
                    Some(env.name.as_str()),
                    details,
                )?;
                if matches!(outcome, Ok(Deletion::Deleted)) {
                    deleted.push(preview.name);
                }
            }
        }
        self.store.flush_group().await?;
        Ok(deleted)
    }
}

#[cfg(test)]
mod tests {
    use crate::engine::testing::TestEngine;
    use crate::engine::State;

    #[tokio::test]
    async fn a_teardown_removes_the_preview_and_only_preview_requesters_may_ask() {
        let t = TestEngine::start().await;
        let up = t.say("console:alice", "deploy feat-x to preview").await;
        assert_eq!(up.state, Some(State::Succeeded), "{}", up.text);
        let refused = t.say("console:bob", "teardown feat-x").await;
        assert!(refused.is_refused(), "{}", refused.text);
        assert!(
            refused
                .text
                .contains("bob may not request changes to preview"),
            "{}",
            refused.text
        );
        assert!(t.sandbox.kube.namespace("preview-feat-x").is_some());
        let down = t.say("console:alice", "teardown feat-x").await;
        assert_eq!(down.state, Some(State::Succeeded), "{}", down.text);
        assert!(down.text.contains("preview removed"), "{}", down.text);
    }

    #[tokio::test]
    async fn the_sweep_deletes_a_preview_only_once_its_ttl_has_passed() {
        let t = TestEngine::start().await;
        let up = t.say("console:alice", "deploy feat-x to preview").await;
        assert_eq!(up.state, Some(State::Succeeded), "{}", up.text);
        let early = t.engine.sweep_previews().await.expect("the sweep runs");
        assert!(early.is_empty(), "{early:?}");
        t.set_time(t.now() + 25 * 3600);
        let late = t.engine.sweep_previews().await.expect("the sweep runs");
        assert_eq!(late, vec!["preview-feat-x".to_owned()]);
        assert!(t
            .actions("preview-feat-x")
            .contains(&"preview.expired".to_owned()));
    }
}
