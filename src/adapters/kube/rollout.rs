//! kubectl's rollout-status rules as pure functions over a Deployment and
//! its Pods.
//!
//! `kube::runtime::wait::conditions::is_deployment_completed` ignores
//! `observedGeneration`, so right after a patch it can report the previous
//! rollout's success; these rules do not.

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Pod;

use crate::engine::ports::RolloutProgress;

/// Where one Deployment's rollout stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Assessment {
    /// The controller has not yet seen the latest spec.
    Unobserved,
    /// Rolling out: the figures, and what it waits for.
    Progressing(String),
    /// Every replica runs the new template, ready and available, none old.
    Complete,
    /// The controller gave up, with its reason and message.
    Failed(String),
}

/// Assesses a Deployment the way `kubectl rollout status` does, stricter
/// in one point: ready replicas must match too.
pub fn assess(deployment: &Deployment) -> Assessment {
    let generation = deployment.metadata.generation.unwrap_or(0);
    let Some(status) = &deployment.status else {
        return Assessment::Unobserved;
    };
    if status.observed_generation.unwrap_or(0) < generation {
        return Assessment::Unobserved;
    }
    let progressing = status
        .conditions
        .iter()
        .flatten()
        .find(|c| c.type_ == "Progressing");
    if let Some(c) = progressing {
        if c.status == "False" && c.reason.as_deref() == Some("ProgressDeadlineExceeded") {
            let message = c.message.as_deref().unwrap_or("no message");
            return Assessment::Failed(format!("ProgressDeadlineExceeded: {message}"));
        }
    }
    let desired = desired(deployment);
    let updated = status.updated_replicas.unwrap_or(0);
    let total = status.replicas.unwrap_or(0);
    let ready = status.ready_replicas.unwrap_or(0);
    let available = status.available_replicas.unwrap_or(0);
    let waiting = if updated < desired {
        format!("{updated} of {desired} new replicas updated")
    } else if total > updated {
        format!("{} old replicas pending termination", total - updated)
    } else if available < updated {
        format!("{available} of {updated} updated replicas available")
    } else if ready < updated {
        format!("{ready} of {updated} updated replicas ready")
    } else {
        return Assessment::Complete;
    };
    Assessment::Progressing(waiting)
}

fn desired(deployment: &Deployment) -> i32 {
    deployment
        .spec
        .as_ref()
        .and_then(|s| s.replicas)
        .unwrap_or(1)
}

fn count(n: i32) -> u32 {
    u32::try_from(n).unwrap_or(0)
}

/// The figures for the progress message. Ready and available count new
/// replicas only: old ones still serving are subtracted.
pub fn progress(deployment: &Deployment) -> RolloutProgress {
    let desired = count(desired(deployment));
    let Some(status) = &deployment.status else {
        return RolloutProgress {
            desired,
            updated: 0,
            ready: 0,
            available: 0,
        };
    };
    let fresh =
        status.observed_generation.unwrap_or(0) >= deployment.metadata.generation.unwrap_or(0);
    let updated = if fresh {
        count(status.updated_replicas.unwrap_or(0))
    } else {
        0
    };
    let old = count(status.replicas.unwrap_or(0)).saturating_sub(updated);
    RolloutProgress {
        desired,
        updated,
        ready: count(status.ready_replicas.unwrap_or(0))
            .saturating_sub(old)
            .min(updated),
        available: count(status.available_replicas.unwrap_or(0))
            .saturating_sub(old)
            .min(updated),
    }
}

/// Adds up the figures of several Deployments.
pub fn total(parts: impl IntoIterator<Item = RolloutProgress>) -> RolloutProgress {
    parts.into_iter().fold(
        RolloutProgress {
            desired: 0,
            updated: 0,
            ready: 0,
            available: 0,
        },
        |a, b| RolloutProgress {
            desired: a.desired + b.desired,
            updated: a.updated + b.updated,
            ready: a.ready + b.ready,
            available: a.available + b.available,
        },
    )
}

/// Container states that mean a pod will not come up by itself.
const STUCK: &[&str] = &[
    "CrashLoopBackOff",
    "ImagePullBackOff",
    "ErrImagePull",
    "InvalidImageName",
    "CreateContainerConfigError",
    "CreateContainerError",
    "RunContainerError",
];

/// Pods that crash-loop or cannot pull their image, as `pod: reason (message)`.
pub fn stuck_pods(pods: &[Pod]) -> Vec<String> {
    let mut found = Vec::new();
    for pod in pods {
        let name = pod.metadata.name.as_deref().unwrap_or("?");
        let statuses = pod
            .status
            .iter()
            .flat_map(|s| s.container_statuses.iter().flatten());
        for status in statuses {
            let waiting = status.state.as_ref().and_then(|s| s.waiting.as_ref());
            let Some(w) = waiting else { continue };
            let reason = w.reason.as_deref().unwrap_or("");
            if STUCK.contains(&reason) {
                let message = w.message.as_deref().unwrap_or("");
                let detail = if message.is_empty() {
                    String::new()
                } else {
                    format!(" ({message})")
                };
                found.push(format!("pod {name}: {reason}{detail}"));
            }
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::apps::v1::{DeploymentCondition, DeploymentSpec, DeploymentStatus};
    use k8s_openapi::api::core::v1::{
        ContainerState, ContainerStateWaiting, ContainerStatus, PodStatus,
    };

    /// generation, observed, replicas wanted, (total, updated, ready, available), condition.
    fn deployment(
        generation: i64,
        observed: i64,
        desired: i32,
        counts: (i32, i32, i32, i32),
        condition: Option<(&str, &str)>,
    ) -> Deployment {
        let (total, updated, ready, available) = counts;
        let mut d = Deployment::default();
        d.metadata.generation = Some(generation);
        d.spec = Some(DeploymentSpec {
            replicas: Some(desired),
            ..DeploymentSpec::default()
        });
        d.status = Some(DeploymentStatus {
            observed_generation: Some(observed),
            replicas: Some(total),
            updated_replicas: Some(updated),
            ready_replicas: Some(ready),
            available_replicas: Some(available),
            conditions: condition.map(|(status, reason)| {
                vec![DeploymentCondition {
                    type_: "Progressing".into(),
                    status: status.into(),
                    reason: Some(reason.into()),
                    message: Some("ReplicaSet \"web-1\" has timed out progressing.".into()),
                    ..DeploymentCondition::default()
                }]
            }),
            ..DeploymentStatus::default()
        });
        d
    }

    #[test]
    fn kubectl_rules() {
        use Assessment::*;
        let cases = [
            // A stale success right after a patch is not success.
            (deployment(2, 1, 3, (3, 3, 3, 3), None), Unobserved),
            (
                deployment(2, 2, 3, (3, 1, 3, 3), None),
                Progressing("1 of 3 new replicas updated".into()),
            ),
            (
                deployment(2, 2, 3, (4, 3, 3, 3), None),
                Progressing("1 old replicas pending termination".into()),
            ),
            (
                deployment(2, 2, 3, (3, 3, 2, 2), None),
                Progressing("2 of 3 updated replicas available".into()),
            ),
            (
                deployment(2, 2, 3, (3, 3, 2, 3), None),
                Progressing("2 of 3 updated replicas ready".into()),
            ),
            (
                deployment(
                    2,
                    3,
                    3,
                    (3, 3, 3, 3),
                    Some(("True", "NewReplicaSetAvailable")),
                ),
                Complete,
            ),
            (
                deployment(
                    2,
                    2,
                    3,
                    (4, 1, 3, 3),
                    Some(("False", "ProgressDeadlineExceeded")),
                ),
                Failed(
                    "ProgressDeadlineExceeded: ReplicaSet \"web-1\" has timed out progressing."
                        .into(),
                ),
            ),
            // A deadline from an older generation does not fail the new one.
            (
                deployment(
                    3,
                    2,
                    3,
                    (4, 1, 3, 3),
                    Some(("False", "ProgressDeadlineExceeded")),
                ),
                Unobserved,
            ),
            (Deployment::default(), Unobserved),
        ];
        for (i, (d, want)) in cases.into_iter().enumerate() {
            assert_eq!(assess(&d), want, "case {i}");
        }
    }

    #[test]
    fn progress_counts_new_replicas_only() {
        let p = progress(&deployment(2, 2, 3, (4, 1, 3, 3), None));
        assert_eq!((p.desired, p.updated, p.ready, p.available), (3, 1, 0, 0));
        let p = progress(&deployment(2, 2, 3, (4, 2, 4, 4), None));
        assert_eq!((p.updated, p.ready, p.available), (2, 2, 2));
        let stale = progress(&deployment(3, 2, 3, (3, 3, 3, 3), None));
        assert_eq!((stale.updated, stale.available), (0, 0));
        let sum = total([p.clone(), p]);
        assert_eq!((sum.desired, sum.updated), (6, 4));
    }

    #[test]
    fn stuck_pods_name_their_reason() {
        let pod = |name: &str, reason: &str| {
            let mut p = Pod::default();
            p.metadata.name = Some(name.into());
            p.status = Some(PodStatus {
                container_statuses: Some(vec![ContainerStatus {
                    name: "web".into(),
                    state: Some(ContainerState {
                        waiting: Some(ContainerStateWaiting {
                            reason: Some(reason.into()),
                            message: Some("back-off 10s".into()),
                        }),
                        ..ContainerState::default()
                    }),
                    ..ContainerStatus::default()
                }]),
                ..PodStatus::default()
            });
            p
        };
        let pods = [
            pod("web-a", "CrashLoopBackOff"),
            pod("web-b", "ContainerCreating"),
            pod("web-c", "ImagePullBackOff"),
        ];
        assert_eq!(
            stuck_pods(&pods),
            [
                "pod web-a: CrashLoopBackOff (back-off 10s)",
                "pod web-c: ImagePullBackOff (back-off 10s)"
            ]
        );
    }
}
