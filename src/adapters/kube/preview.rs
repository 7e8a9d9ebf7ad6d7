//! Preview namespaces: create, fill from a source namespace, list, delete.
//!
//! Gantry only ever changes or deletes a namespace that carries its
//! `gantry.dev/preview=true` label, so a template that happens to render
//! `prod` can never take over or tear down a real environment.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Namespace, Service};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Status};
use kube::core::params::{DeleteParams, GetParams, ListParams, Patch, PatchParams, Preconditions};
use kube::core::{ObjectList, Request};
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::deploy::deployments;
use super::patch::{container_image, MANAGER, REQUEST, REQUESTED_BY, SHA};
use super::transport::{Failure, Op, Transport};
use crate::config::is_dns_label;
use crate::engine::ports::{preview_labels, Deletion, PortError, PreviewNamespace, Workload};

/// Longest namespace name and label value.
const MAX_LABEL: usize = 63;

fn namespaces() -> Request {
    Request::new("/api/v1/namespaces")
}

fn services(namespace: &str) -> Request {
    Request::new(format!("/api/v1/namespaces/{namespace}/services"))
}

fn build_error(e: kube::core::request::Error) -> PortError {
    PortError::Invalid(format!("cannot build the request: {e}"))
}

/// Refuses a namespace name that is not a DNS-1123 label.
pub fn check_namespace(name: &str) -> Result<(), PortError> {
    if is_dns_label(name) {
        Ok(())
    } else {
        Err(PortError::Invalid(format!(
            "`{name}` is not a valid namespace name (1-{MAX_LABEL} of a-z, 0-9 and `-`, \
             starting and ending with a letter or digit)"
        )))
    }
}

/// A label value Kubernetes accepts: at most 63 of `A-Za-z0-9-_.`,
/// alphanumeric at both ends; anything else becomes `-`.
pub fn label_value(text: &str) -> String {
    let mapped: String = text
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '-'
            }
        })
        .take(MAX_LABEL)
        .collect();
    mapped
        .trim_matches(|c: char| !c.is_ascii_alphanumeric())
        .to_owned()
}

/// Whether a label key is `[prefix/]name` with a DNS prefix and a valid name.
fn label_key_ok(key: &str) -> bool {
    let (prefix, name) = key.rsplit_once('/').unwrap_or(("", key));
    let prefix_ok =
        prefix.is_empty() || (prefix.len() <= 253 && prefix.split('.').all(is_dns_label));
    prefix_ok && !name.is_empty() && label_value(name) == name
}

fn checked_labels(
    labels: &BTreeMap<String, String>,
) -> Result<BTreeMap<String, String>, PortError> {
    let mut out = BTreeMap::new();
    for (key, value) in labels {
        if !label_key_ok(key) {
            return Err(PortError::Invalid(format!(
                "`{key}` is not a valid label key"
            )));
        }
        out.insert(key.clone(), label_value(value));
    }
    out.insert(preview_labels::PREVIEW.to_owned(), "true".to_owned());
    Ok(out)
}

fn is_preview(meta: &ObjectMeta) -> bool {
    meta.labels
        .as_ref()
        .and_then(|l| l.get(preview_labels::PREVIEW))
        .is_some_and(|v| v == "true")
}

fn apply_params() -> PatchParams {
    PatchParams::apply(MANAGER)
}

async fn get<T: DeserializeOwned>(
    t: &Transport,
    op: Op,
    collection: Request,
    name: &str,
) -> Result<Option<T>, PortError> {
    let request = collection
        .get(name, &GetParams::default())
        .map_err(build_error)?;
    match t.json(&op.named(name), request).await {
        Ok(found) => Ok(Some(found)),
        Err(PortError::NotFound(_)) => Ok(None),
        Err(e) => Err(e),
    }
}

async fn apply<T: Serialize>(
    t: &Transport,
    op: Op,
    collection: Request,
    name: &str,
    object: &T,
) -> Result<(), PortError> {
    let request = collection
        .patch(name, &apply_params(), &Patch::Apply(object))
        .map_err(build_error)?;
    t.call(&op.named(name), request).await.map(|_| ())
}

/// Creates the namespace with its labels, or refreshes the labels (and so
/// the expiry) of an existing preview.
pub async fn ensure_namespace(
    t: &Transport,
    name: &str,
    labels: &BTreeMap<String, String>,
) -> Result<(), PortError> {
    check_namespace(name)?;
    let labels = checked_labels(labels)?;
    let existing: Option<Namespace> =
        get(t, Op::cluster("get", "namespaces"), namespaces(), name).await?;
    if let Some(ns) = existing {
        if !is_preview(&ns.metadata) {
            return Err(PortError::Invalid(format!(
                "namespace {name} exists and is not a Gantry preview; refusing to use it"
            )));
        }
        if ns.metadata.deletion_timestamp.is_some() {
            return Err(PortError::Conflict(format!(
                "namespace {name} is being deleted; try again when it is gone"
            )));
        }
    }
    let object = Namespace {
        metadata: ObjectMeta {
            name: Some(name.to_owned()),
            labels: Some(labels),
            ..ObjectMeta::default()
        },
        ..Namespace::default()
    };
    apply(
        t,
        Op::cluster("patch", "namespaces"),
        namespaces(),
        name,
        &object,
    )
    .await
}

/// Metadata for a copy: name, labels and annotations only, without
/// Gantry's stamps or kubectl's last-applied record.
fn copied_meta(meta: &ObjectMeta, namespace: &str, source: &str) -> ObjectMeta {
    let mut annotations = meta.annotations.clone().unwrap_or_default();
    for stamp in [
        REQUEST,
        SHA,
        REQUESTED_BY,
        "kubectl.kubernetes.io/last-applied-configuration",
    ] {
        annotations.remove(stamp);
    }
    annotations.insert("gantry.dev/copied-from".to_owned(), source.to_owned());
    ObjectMeta {
        name: meta.name.clone(),
        namespace: Some(namespace.to_owned()),
        labels: meta.labels.clone(),
        annotations: Some(annotations),
        ..ObjectMeta::default()
    }
}

/// A Deployment as it should be created in a preview namespace.
pub fn copy_deployment(from: &Deployment, namespace: &str, source: &str) -> Deployment {
    Deployment {
        metadata: copied_meta(&from.metadata, namespace, source),
        spec: from.spec.clone(),
        status: None,
    }
}

/// A Service as it should be created in a preview namespace: cluster IPs
/// and node ports are the source cluster's to assign.
pub fn copy_service(from: &Service, namespace: &str, source: &str) -> Service {
    let mut spec = from.spec.clone().unwrap_or_default();
    spec.cluster_ip = None;
    spec.cluster_ips = None;
    spec.health_check_node_port = None;
    for port in spec.ports.iter_mut().flatten() {
        port.node_port = None;
    }
    Service {
        metadata: copied_meta(&from.metadata, namespace, source),
        spec: Some(spec),
        status: None,
    }
}

/// Copies the workload's Deployments and Services from `source` into its
/// namespace, leaving ones that already exist alone. Everything is read and
/// checked before anything is written.
pub async fn copy_workload(t: &Transport, w: &Workload, source: &str) -> Result<(), PortError> {
    check_namespace(&w.namespace)?;
    check_namespace(source)?;
    let dep_op = |verb, ns: &str| Op::namespaced(verb, "deployments.apps", ns);
    let svc_op = |verb, ns: &str| Op::namespaced(verb, "services", ns);
    let missing = |kind: &str, name: &str| {
        PortError::NotFound(format!("{kind} {name} not found in namespace {source}"))
    };
    let mut new_deployments = Vec::new();
    for name in &w.deployments {
        let there: Option<Deployment> = get(
            t,
            dep_op("get", &w.namespace),
            deployments(&w.namespace),
            name,
        )
        .await?;
        if there.is_some() {
            continue;
        }
        let from: Deployment = get(t, dep_op("get", source), deployments(source), name)
            .await?
            .ok_or_else(|| missing("Deployment", name))?;
        container_image(&from, &w.container).map_err(|found| {
            PortError::Invalid(format!(
                "Deployment {name} in namespace {source} has no container `{}` (it has: {})",
                w.container,
                found.join(", ")
            ))
        })?;
        new_deployments.push(copy_deployment(&from, &w.namespace, source));
    }
    let mut new_services = Vec::new();
    for name in &w.services {
        let there: Option<Service> =
            get(t, svc_op("get", &w.namespace), services(&w.namespace), name).await?;
        if there.is_some() {
            continue;
        }
        let from: Service = get(t, svc_op("get", source), services(source), name)
            .await?
            .ok_or_else(|| missing("Service", name))?;
        new_services.push(copy_service(&from, &w.namespace, source));
    }
    for d in &new_deployments {
        let name = d.metadata.name.as_deref().unwrap_or_default();
        apply(
            t,
            dep_op("patch", &w.namespace),
            deployments(&w.namespace),
            name,
            d,
        )
        .await?;
    }
    for s in &new_services {
        let name = s.metadata.name.as_deref().unwrap_or_default();
        apply(
            t,
            svc_op("patch", &w.namespace),
            services(&w.namespace),
            name,
            s,
        )
        .await?;
    }
    Ok(())
}

/// Whether a `Status` says that this very namespace does not exist (and
/// not, say, that a proxy in front of the API server knows no such path).
fn namespace_missing(status: Option<&Status>, name: &str) -> bool {
    status.is_some_and(|s| {
        let details = s.details.as_ref();
        s.code == Some(404)
            && s.reason.as_deref() == Some("NotFound")
            && details.is_some_and(|d| {
                d.kind.as_deref() == Some("namespaces") && d.name.as_deref() == Some(name)
            })
    })
}

/// Reads a namespace; `None` only when the API server says it is missing.
async fn read_namespace(t: &Transport, name: &str) -> Result<Option<Namespace>, PortError> {
    let op = Op::cluster("get", "namespaces").named(name);
    let request = namespaces()
        .get(name, &GetParams::default())
        .map_err(build_error)?;
    match t.call_with_status(&op, request).await {
        Ok(body) => serde_json::from_slice(&body).map(Some).map_err(|e| {
            PortError::Unavailable(format!("get namespaces/{name}: unreadable answer: {e}"))
        }),
        Err(f) if namespace_missing(f.status.as_deref(), name) => Ok(None),
        Err(f) => Err(f.error),
    }
}

/// Deletes a preview namespace (and with it everything in it). Refuses a
/// namespace without the preview label; the delete is preconditioned on the
/// uid that was checked. A namespace that is gone, or already terminating,
/// is [`Deletion::AlreadyGone`]: a second DELETE of a terminating namespace
/// would get 409 ("The system is ensuring all content is removed"), so none
/// is sent.
pub async fn delete_namespace(t: &Transport, name: &str) -> Result<Deletion, PortError> {
    check_namespace(name)?;
    let Some(found) = read_namespace(t, name).await? else {
        return Ok(Deletion::AlreadyGone);
    };
    if !is_preview(&found.metadata) {
        return Err(PortError::Invalid(format!(
            "namespace {name} is not a Gantry preview (no {}=true label); refusing to delete it",
            preview_labels::PREVIEW
        )));
    }
    if found.metadata.deletion_timestamp.is_some() {
        return Ok(Deletion::AlreadyGone);
    }
    let params = DeleteParams::background().preconditions(Preconditions {
        uid: found.metadata.uid.clone(),
        resource_version: None,
    });
    let request = namespaces().delete(name, &params).map_err(build_error)?;
    let op = Op::cluster("delete", "namespaces").named(name);
    match t.call_with_status(&op, request).await {
        Ok(_) => Ok(Deletion::Deleted),
        // Someone else deleted it between the read and the delete.
        Err(f) if namespace_missing(f.status.as_deref(), name) => Ok(Deletion::AlreadyGone),
        // Terminating by now, or replaced by a namespace with another uid:
        // look again rather than guess.
        Err(Failure {
            error: PortError::Conflict(why),
            ..
        }) => match read_namespace(t, name).await? {
            None => Ok(Deletion::AlreadyGone),
            Some(ns) if ns.metadata.deletion_timestamp.is_some() => Ok(Deletion::AlreadyGone),
            Some(_) => Err(PortError::Conflict(why)),
        },
        Err(f) => Err(f.error),
    }
}

/// Preview namespaces not already being deleted.
pub async fn list_previews(t: &Transport) -> Result<Vec<PreviewNamespace>, PortError> {
    let selector = format!("{}=true", preview_labels::PREVIEW);
    let request = namespaces()
        .list(&ListParams::default().labels(&selector))
        .map_err(build_error)?;
    let list: ObjectList<Namespace> = t.json(&Op::cluster("list", "namespaces"), request).await?;
    Ok(list
        .items
        .into_iter()
        .filter(|ns| ns.metadata.deletion_timestamp.is_none() && is_preview(&ns.metadata))
        .filter_map(|ns| {
            Some(PreviewNamespace {
                name: ns.metadata.name?,
                labels: ns.metadata.labels.unwrap_or_default(),
            })
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values_are_sanitised() {
        let cases = [
            ("feat/login", "feat-login"),
            ("-x-", "x"),
            ("1795521600", "1795521600"),
            ("ünï", "n"),
            ("///", ""),
        ];
        for (raw, want) in cases {
            assert_eq!(label_value(raw), want, "{raw}");
        }
        assert_eq!(label_value(&"a".repeat(80)).len(), 63);
    }

    #[test]
    fn label_keys_and_namespace_names_are_checked() {
        assert!(label_key_ok("gantry.dev/branch") && label_key_ok("app"));
        for bad in ["Gantry.dev/x", "gantry.dev/", "a b", "x/y/"] {
            assert!(!label_key_ok(bad), "{bad}");
        }
        let labels = BTreeMap::from([("gantry.dev/branch".to_owned(), "Feat/X".to_owned())]);
        let out = checked_labels(&labels).unwrap();
        assert_eq!(out["gantry.dev/branch"], "Feat-X");
        assert_eq!(out[preview_labels::PREVIEW], "true");
        assert!(check_namespace("preview-feat-x").is_ok());
        let err = check_namespace("Preview_X").unwrap_err();
        assert!(matches!(err, PortError::Invalid(_)), "{err}");
    }

    #[test]
    fn copies_drop_what_the_source_cluster_assigned() {
        let mut svc = Service::default();
        svc.metadata.name = Some("web".into());
        svc.metadata.namespace = Some("dev".into());
        svc.metadata.resource_version = Some("9".into());
        svc.metadata.uid = Some("u".into());
        svc.spec = Some(k8s_openapi::api::core::v1::ServiceSpec {
            cluster_ip: Some("10.0.0.1".into()),
            ..Default::default()
        });
        let copy = copy_service(&svc, "preview-x", "dev");
        assert_eq!(copy.metadata.namespace.as_deref(), Some("preview-x"));
        assert!(copy.metadata.resource_version.is_none() && copy.metadata.uid.is_none());
        assert!(copy.spec.unwrap().cluster_ip.is_none());
        let mut d = Deployment::default();
        d.metadata.name = Some("web".into());
        d.metadata.annotations = Some(BTreeMap::from([(REQUEST.to_owned(), "R-1".to_owned())]));
        let copy = copy_deployment(&d, "preview-x", "dev");
        let annotations = copy.metadata.annotations.unwrap();
        assert!(!annotations.contains_key(REQUEST));
        assert_eq!(annotations["gantry.dev/copied-from"], "dev");
    }
}
