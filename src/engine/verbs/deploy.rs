//! `deploy <ref> [of <app>] to <env>`: the ref's commit and the image built
//! from it, pinned when the request is made; a preview namespace made ready
//! before a deploy into it.

use crate::command::GitRef;
use crate::config::{App, Environment, Target};
use crate::engine::ports::Workload;
use crate::engine::refs::Unresolved;
use crate::engine::request::Pins;
use crate::engine::state::{Action, Request};
use crate::engine::Engine;
use crate::names::Digest;

impl Engine {
    /// Pins a deploy: the commit the ref points at and the image built
    /// from it.
    pub(in crate::engine) async fn pin_deploy(
        &self,
        app: &App,
        reference: &GitRef,
        previous: Option<Digest>,
    ) -> Result<Pins, String> {
        let (sha, digest) = self
            .resolve_image(app, reference)
            .await
            .map_err(|e| match e {
                Unresolved::Ref(e) => e.to_string(),
                Unresolved::Image(e) => format!("{e}; try `build {reference}`"),
            })?;
        Ok(Pins {
            sha,
            digest: Some(digest),
            previous,
            note: None,
        })
    }

    /// Makes a preview namespace ready for a deploy: creates it, labelled
    /// with the request, the branch or pull request and its expiry, and
    /// copies the app into it from the source namespace, if one is set.
    pub(in crate::engine) async fn prepare_preview(
        &self,
        request: &Request,
        env: &Environment,
        workload: &Workload,
    ) -> Result<(), String> {
        use crate::engine::ports::preview_labels as label;
        let ttl = match &env.target {
            Target::Preview { ttl, .. } => i64::try_from(ttl.as_secs()).unwrap_or(i64::MAX / 2),
            Target::Namespace(_) => 0,
        };
        let mut labels: std::collections::BTreeMap<String, String> = [
            (label::PREVIEW.to_owned(), "true".to_owned()),
            (label::REQUEST.to_owned(), request.id.to_string()),
            (label::EXPIRES.to_owned(), (self.now() + ttl).to_string()),
        ]
        .into_iter()
        .collect();
        if let Action::Deploy { reference } = &request.action {
            match reference.strip_prefix('#') {
                Some(pr) => labels.insert(label::PR.to_owned(), pr.to_owned()),
                None => labels.insert(label::BRANCH.to_owned(), reference.clone()),
            };
        }
        self.ports
            .cluster
            .ensure_namespace(&workload.context, &workload.namespace, &labels)
            .await
            .map_err(|e| format!("creating namespace {} failed: {e}", workload.namespace))?;
        let Target::Preview {
            source_namespace: Some(source),
            ..
        } = &env.target
        else {
            return Ok(());
        };
        self.ports
            .cluster
            .copy_workload(workload, source)
            .await
            .map_err(|e| format!("copying the app from {source} failed: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use crate::engine::testing::TestEngine;
    use crate::engine::State;

    #[tokio::test]
    async fn a_deploy_runs_the_image_built_from_the_commit_its_ref_points_at() {
        let t = TestEngine::start().await;
        let head = t
            .sandbox
            .github
            .branch("acme/web", "feat-x")
            .expect("feat-x");
        let reply = t.say("console:alice", "deploy feat-x to dev").await;
        assert_eq!(reply.state, Some(State::Succeeded), "{}", reply.text);
        let request = t.request(&reply);
        assert_eq!(
            request.sha.as_ref().map(|s| s.as_str()),
            Some(head.as_str())
        );
        let digest = request.digest.expect("a digest is pinned");
        let image = t.image("dev").expect("dev runs web");
        assert!(image.ends_with(&format!("@{digest}")), "{image}");
    }

    #[tokio::test]
    async fn a_deploy_to_a_preview_makes_its_namespace_from_the_source() {
        let t = TestEngine::start().await;
        let reply = t.say("console:alice", "deploy feat-x to preview").await;
        assert_eq!(reply.state, Some(State::Succeeded), "{}", reply.text);
        let namespace = t
            .sandbox
            .kube
            .namespace("preview-feat-x")
            .expect("the preview namespace exists");
        let labels = namespace.metadata.labels.unwrap_or_default();
        assert_eq!(
            labels.get("gantry.dev/preview").map(String::as_str),
            Some("true")
        );
        assert_eq!(
            labels.get("gantry.dev/branch").map(String::as_str),
            Some("feat-x")
        );
        assert!(t.image("preview-feat-x").is_some(), "web was copied in");
    }
}
