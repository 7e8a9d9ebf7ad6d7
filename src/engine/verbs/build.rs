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
            .ports
            .forge
            .resolve(&app.repo.to_string(), reference)
            .await
            .map_err(|e| e.to_string())?;
        Ok(Pins {
            sha,
            digest: None,
            previous: None,
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
