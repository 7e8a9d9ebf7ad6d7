//! `build <ref> [of <app>]`: the ref's commit, pinned when the request is
//! made, and a run of the app's build workflow followed to its end.

use crate::command::GitRef;
use crate::config::App;
use crate::engine::ports::BuildOutcome;
use crate::engine::request::Pins;
use crate::engine::state::{Event, Request};
use crate::engine::{Engine, EngineError};

impl Engine {
    /// Pins a build to the commit the ref points at; there is no image yet.
    pub(in crate::engine) async fn pin_build(
        &self,
        app: &App,
        reference: &GitRef,
    ) -> Result<Pins, String> {
        let sha = self
            .resolve_ref(app, reference)
            .await
            .map_err(|e| e.to_string())?;
        Ok(Pins {
            sha,
            digest: None,
            previous: None,
            note: None,
        })
    }

    /// Starts the app's build workflow for the ref and follows it.
    pub(in crate::engine) async fn run_build(
        &self,
        request: Request,
        app: &App,
        reference: &str,
    ) -> Result<Request, EngineError> {
        let actor = request.requester.to_string();
        let Some(workflow) = &app.build_workflow else {
            let why = format!("{} has no build workflow in config", app.name);
            return self
                .apply(&request, Event::Fail { reason: why }, &actor)
                .await;
        };
        let building = self.apply(&request, Event::BuildStarted, &actor).await?;
        let repo = app.repo.to_string();
        let run = match self
            .ports
            .forge
            .start_build(&repo, workflow, reference, &app.build_inputs)
            .await
        {
            Ok(run) => run,
            Err(e) => {
                return self
                    .apply(
                        &building,
                        Event::Fail {
                            reason: format!("starting the build failed: {e}"),
                        },
                        &actor,
                    )
                    .await
            }
        };
        self.show_progress(&building, Some(&run.url)).await;
        match self.ports.forge.follow_build(&repo, &run).await {
            Ok(BuildOutcome::Success) => self.apply(&building, Event::Verified, &actor).await,
            Ok(other) => {
                self.apply(
                    &building,
                    Event::Fail {
                        reason: format!("build {other:?}: {}", run.url),
                    },
                    &actor,
                )
                .await
            }
            Err(e) => {
                self.apply(
                    &building,
                    Event::Fail {
                        reason: format!("{e}: {}", run.url),
                    },
                    &actor,
                )
                .await
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::engine::testing::TestEngine;
    use crate::engine::State;

    #[tokio::test]
    async fn a_build_runs_the_workflow_and_its_image_can_then_be_deployed() {
        let t = TestEngine::start().await;
        let unbuilt = t.say("console:alice", "deploy feat-unbuilt to dev").await;
        assert_eq!(unbuilt.state, Some(State::Failed), "{}", unbuilt.text);
        let built = t.say("console:alice", "build feat-unbuilt").await;
        assert_eq!(built.state, Some(State::Succeeded), "{}", built.text);
        assert!(built.text.contains("build succeeded"), "{}", built.text);
        let deployed = t.say("console:alice", "deploy feat-unbuilt to dev").await;
        assert_eq!(deployed.state, Some(State::Succeeded), "{}", deployed.text);
    }

    #[tokio::test]
    async fn an_app_without_a_build_workflow_fails_to_build_and_says_why() {
        let t =
            TestEngine::with_config(|base| base.replace("build_workflow = \"build.yml\"\n", ""))
                .await;
        let reply = t.say("console:alice", "build main").await;
        assert_eq!(reply.state, Some(State::Failed), "{}", reply.text);
        assert!(
            reply.text.contains("web has no build workflow in config"),
            "{}",
            reply.text
        );
    }
}
