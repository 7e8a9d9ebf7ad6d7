//! What every sandbox repository and namespace starts with.
//!
//! Each app's repository has `main`, `feat-x`, `feat-broken` (its image
//! never becomes ready), `bad-metrics` (its pods come up but answer a
//! fifth of their requests with 500), `feat-unbuilt` (no image was pushed) and
//! `release/1.0`, a tag `v1.0.0`, and pull requests #1 (`feat-x`) and #2
//! (`feat-broken`). Every fixed namespace runs each app's Deployments with
//! three replicas of the `main` image.

/// Branches every sandbox repository has.
pub const BRANCHES: &[&str] = &[
    "main",
    "feat-x",
    "feat-broken",
    "bad-metrics",
    "feat-unbuilt",
    "release/1.0",
];

/// Replicas of every sandbox Deployment.
pub const REPLICAS: u32 = 3;
