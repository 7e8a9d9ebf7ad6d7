//! The sandbox world every newcomer starts with, built from the config.
//!
//! Each app's repository has `main`, `feat-x`, `feat-broken` (its image
//! never becomes ready), `feat-unbuilt` (no image was pushed) and
//! `release/1.0`, a tag `v1.0.0`, and pull requests #1 (`feat-x`) and #2
//! (`feat-broken`). Every fixed namespace runs each app's Deployments with
//! three replicas of the `main` image.

use std::time::Duration;

use super::world::{World, WorldState};
use crate::config::{Config, Target};

/// Branches every sandbox repository has.
pub const BRANCHES: &[&str] = &[
    "main",
    "feat-x",
    "feat-broken",
    "feat-unbuilt",
    "release/1.0",
];

/// Replicas of every sandbox Deployment.
pub const REPLICAS: u32 = 3;

/// Builds the starting world for `config`.
pub fn seed(config: &Config) -> WorldState {
    let world = World::new(WorldState::default(), Duration::ZERO);
    for app in config.apps() {
        let repo = app.repo.to_string();
        let mut main_digest = None;
        for branch in BRANCHES {
            let sha = world.commit(&repo, branch);
            if *branch == "feat-unbuilt" {
                continue;
            }
            let digest = world.publish(&app.image, &app.tag_template.render(sha.as_str(), branch));
            // Tags by SHA alone (no branch) must resolve too, for `deploy <sha>` and `#123`.
            world.publish(&app.image, &app.tag_template.render(sha.as_str(), ""));
            match *branch {
                "main" => main_digest = Some(digest),
                "feat-broken" => world.break_image(&digest),
                "feat-x" => world.pull(&repo, 1, &sha),
                _ => {}
            }
            if *branch == "feat-broken" {
                world.pull(&repo, 2, &sha);
            }
        }
        let tag_sha = world.commit(&repo, "v1.0.0");
        world.publish(
            &app.image,
            &app.tag_template.render(tag_sha.as_str(), "v1.0.0"),
        );
        world.publish(&app.image, &app.tag_template.render(tag_sha.as_str(), ""));
        let image = main_digest.map_or_else(|| app.image.clone(), |d| format!("{}@{d}", app.image));
        for env in config.envs() {
            if let Target::Namespace(ns) = &env.target {
                let context = env.cluster.kube_context();
                for deployment in &app.deployments {
                    world.deployment(&context, ns, deployment, &app.container, &image, REPLICAS);
                }
            }
        }
    }
    let mut state = world.snapshot();
    state.calls.clear();
    state
}
