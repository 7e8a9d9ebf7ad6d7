//! Reading and setting a workload's image.
//!
//! Every Deployment is read and checked before any is written, so a missing
//! Deployment or container leaves nothing half-done. Each write carries the
//! `resourceVersion` that was read; on 409, and after a write whose outcome
//! is unknown (timed out, connection dropped, `5xx`), Gantry re-reads, and
//! if the image itself moved it stops and names who moved it. It never
//! forces.

use k8s_openapi::api::apps::v1::Deployment;
use kube::core::params::{GetParams, Patch, PatchParams};
use kube::core::Request;

use super::patch::{check_image, container_image, image_patch, stamped, who_set_image, MANAGER};
use super::transport::{Op, Transport};
use crate::engine::ports::{PortError, Stamp, Workload};

/// How often a write is retried after a conflict that left the image alone.
const CONFLICT_RETRIES: u32 = 3;

/// Writes that lost only to status updates (a rollout in progress bumps
/// `resourceVersion` but not `metadata.generation`) are retried up to this
/// many times on top of [`CONFLICT_RETRIES`].
const STATUS_RETRIES: u32 = 50;

/// The Deployments collection of a namespace.
pub fn deployments(namespace: &str) -> Request {
    Request::new(format!("/apis/apps/v1/namespaces/{namespace}/deployments"))
}

fn op(verb: &'static str, namespace: &str, name: &str) -> Op {
    Op::namespaced(verb, "deployments.apps", namespace).named(name)
}

fn build_error(e: kube::core::request::Error) -> PortError {
    PortError::Invalid(format!("cannot build the request: {e}"))
}

/// Reads one Deployment; a missing one is named with its namespace.
pub async fn read(t: &Transport, namespace: &str, name: &str) -> Result<Deployment, PortError> {
    let request = deployments(namespace)
        .get(name, &GetParams::default())
        .map_err(build_error)?;
    t.json(&op("get", namespace, name), request)
        .await
        .map_err(|e| match e {
            PortError::NotFound(_) => PortError::NotFound(format!(
                "Deployment {name} not found in namespace {namespace}"
            )),
            other => other,
        })
}

fn no_container(w: &Workload, name: &str, found: &[String]) -> PortError {
    PortError::Invalid(format!(
        "Deployment {name} in namespace {} has no container `{}` (it has: {})",
        w.namespace,
        w.container,
        found.join(", ")
    ))
}

/// The image each of the workload's Deployments runs now.
pub async fn current_images(
    t: &Transport,
    w: &Workload,
) -> Result<Vec<(String, String)>, PortError> {
    let mut images = Vec::new();
    for name in &w.deployments {
        let d = read(t, &w.namespace, name).await?;
        let image = container_image(&d, &w.container).map_err(|f| no_container(w, name, &f))?;
        images.push((name.clone(), image));
    }
    Ok(images)
}

/// Sets the image on every Deployment of the workload.
pub async fn set_image(
    t: &Transport,
    w: &Workload,
    image: &str,
    stamp: &Stamp,
) -> Result<(), PortError> {
    check_image(image).map_err(PortError::Invalid)?;
    let mut checked = Vec::new();
    for name in &w.deployments {
        let d = read(t, &w.namespace, name).await?;
        let before = container_image(&d, &w.container).map_err(|f| no_container(w, name, &f))?;
        checked.push((name, d, before));
    }
    for (name, d, before) in checked {
        write_one(t, w, name, d, &before, image, stamp).await?;
    }
    Ok(())
}

async fn write_one(
    t: &Transport,
    w: &Workload,
    name: &str,
    mut current: Deployment,
    before: &str,
    image: &str,
    stamp: &Stamp,
) -> Result<(), PortError> {
    let ns = &w.namespace;
    let params = PatchParams {
        field_manager: Some(MANAGER.to_owned()),
        ..PatchParams::default()
    };
    let mut last = None;
    let (mut spec_changes, mut status_changes) = (0, 0);
    while spec_changes <= CONFLICT_RETRIES && status_changes <= STATUS_RETRIES {
        let generation = current.metadata.generation;
        let version = current
            .metadata
            .resource_version
            .clone()
            .unwrap_or_default();
        let body = image_patch(&version, &w.container, image, stamp);
        let request = deployments(ns)
            .patch(name, &params, &Patch::Strategic(body))
            .map_err(build_error)?;
        match t.call_with_status(&op("patch", ns, name), request).await {
            Ok(_) => return Ok(()),
            // Someone wrote first, or the write may have happened: look before deciding.
            Err(f) if f.outcome_unknown || matches!(f.error, PortError::Conflict(_)) => {
                last = Some(f.error);
            }
            Err(f) => return Err(f.error),
        }
        current = read(t, ns, name).await?;
        if stamped(&current, &w.container, image, stamp) {
            return Ok(());
        }
        let now = container_image(&current, &w.container).map_err(|f| no_container(w, name, &f))?;
        if now != before {
            return Err(PortError::Conflict(format!(
                "Deployment {name} in namespace {ns} was changed by {} while Gantry was \
                 deploying: its image is now {now} (was {before}); not overwriting it",
                who_set_image(&current, &w.container)
            )));
        }
        // The image is still the one read: another field changed (or the lost
        // write did not happen), so the write is retried on the new version.
        // Only spec changes count towards "kept changing"; a controller
        // updating the status of a rollout is no reason to give up.
        if current.metadata.generation == generation {
            status_changes += 1;
        } else {
            spec_changes += 1;
        }
    }
    let why = last.map_or_else(String::new, |e| format!(": {e}"));
    Err(PortError::Conflict(format!(
        "Deployment {name} in namespace {ns} kept changing; gave up after {} attempts{why}",
        spec_changes + status_changes
    )))
}
