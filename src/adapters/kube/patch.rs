//! What Gantry writes to a Deployment, and how it tells who else wrote.
//!
//! A deploy is a strategic-merge patch that sets one container's image and
//! stamps three annotations. It carries the `resourceVersion` Gantry read, so
//! the API server refuses it (409) if anyone changed the Deployment since:
//! Gantry then re-reads and re-checks instead of overwriting.

use k8s_openapi::api::apps::v1::Deployment;
use serde_json::{json, Value};

use crate::engine::ports::Stamp;

/// Annotation: the Gantry request that last set the image.
pub const REQUEST: &str = "gantry.dev/request";
/// Annotation: the commit that image was built from.
pub const SHA: &str = "gantry.dev/sha";
/// Annotation: the person who asked.
pub const REQUESTED_BY: &str = "gantry.dev/requested-by";
/// Gantry's field manager name.
pub const MANAGER: &str = "gantry";

/// Checks that an image is pinned by digest: `repo@sha256:<64 hex>`.
pub fn check_image(image: &str) -> Result<(), String> {
    let Some((repo, digest)) = image.split_once('@') else {
        return Err(format!(
            "image `{image}` is not pinned by digest (repo@sha256:…)"
        ));
    };
    let hex = digest.strip_prefix("sha256:").unwrap_or("");
    let hex_ok = hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit());
    if repo.is_empty() || !hex_ok {
        return Err(format!("image `{image}` is not pinned by a sha256 digest"));
    }
    Ok(())
}

/// The image `container` runs in a Deployment, or the containers it has.
pub fn container_image(deployment: &Deployment, container: &str) -> Result<String, Vec<String>> {
    let containers = deployment
        .spec
        .as_ref()
        .and_then(|s| s.template.spec.as_ref())
        .map(|p| p.containers.as_slice())
        .unwrap_or_default();
    containers
        .iter()
        .find(|c| c.name == container)
        .map(|c| c.image.clone().unwrap_or_default())
        .ok_or_else(|| containers.iter().map(|c| c.name.clone()).collect())
}

/// The strategic-merge patch that sets the image and stamps the request.
pub fn image_patch(resource_version: &str, container: &str, image: &str, stamp: &Stamp) -> Value {
    // A rollback has no commit of its own: drop the failed deploy's SHA.
    let sha = stamp.sha.as_ref().map(ToString::to_string);
    json!({
        "metadata": {
            "resourceVersion": resource_version,
            "annotations": {
                REQUEST: stamp.request.to_string(),
                SHA: sha,
                REQUESTED_BY: stamp.requested_by,
            },
        },
        "spec": {"template": {"spec": {"containers": [{"name": container, "image": image}]}}},
    })
}

/// Whether a Deployment already carries this request's stamp and image.
pub fn stamped(deployment: &Deployment, container: &str, image: &str, stamp: &Stamp) -> bool {
    let request = deployment
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(REQUEST));
    request == Some(&stamp.request.to_string())
        && container_image(deployment, container).as_deref() == Ok(image)
}

/// Who last set `container`'s image: the field manager that owns
/// `spec.template.spec.containers[name=container].image`, most recent first,
/// plus Gantry's own stamp when that manager is Gantry.
pub fn who_set_image(deployment: &Deployment, container: &str) -> String {
    let key = format!("k:{}", json!({ "name": container }));
    let owner = deployment
        .metadata
        .managed_fields
        .iter()
        .flatten()
        .filter(|m| {
            m.fields_v1.as_ref().is_some_and(|f| {
                f.0.pointer(&format!(
                    "/f:spec/f:template/f:spec/f:containers/{}/f:image",
                    key.replace('~', "~0").replace('/', "~1")
                ))
                .is_some()
            })
        })
        .max_by_key(|m| m.time.as_ref().map(|t| t.0))
        .and_then(|m| m.manager.clone());
    let annotations = deployment.metadata.annotations.as_ref();
    let stamp = |k: &str| annotations.and_then(|a| a.get(k)).cloned();
    match owner {
        Some(manager) if manager == MANAGER => match (stamp(REQUESTED_BY), stamp(REQUEST)) {
            (Some(who), Some(request)) => format!("Gantry {request} for {who}"),
            _ => "Gantry".to_owned(),
        },
        Some(manager) => format!("field manager `{manager}`"),
        None => "an unknown writer".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::names::RequestId;
    use k8s_openapi::api::apps::v1::DeploymentSpec;
    use k8s_openapi::api::core::v1::{Container, PodSpec, PodTemplateSpec};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{FieldsV1, ManagedFieldsEntry, Time};
    use std::collections::BTreeMap;

    fn deployment(image: &str) -> Deployment {
        Deployment {
            spec: Some(DeploymentSpec {
                template: PodTemplateSpec {
                    spec: Some(PodSpec {
                        containers: vec![
                            Container {
                                name: "sidecar".into(),
                                image: Some("envoy:1".into()),
                                ..Container::default()
                            },
                            Container {
                                name: "web".into(),
                                image: Some(image.into()),
                                ..Container::default()
                            },
                        ],
                        ..PodSpec::default()
                    }),
                    ..PodTemplateSpec::default()
                },
                ..DeploymentSpec::default()
            }),
            ..Deployment::default()
        }
    }

    fn stamp() -> Stamp {
        Stamp {
            request: RequestId(7),
            sha: None,
            requested_by: "alice".into(),
        }
    }

    #[test]
    fn images_must_be_pinned_by_digest() {
        let hex = "a".repeat(64);
        assert!(check_image(&format!("reg/web@sha256:{hex}")).is_ok());
        for bad in [
            "reg/web:latest".to_owned(),
            format!("@sha256:{hex}"),
            "reg/web@sha256:abc".to_owned(),
            format!("reg/web@sha512:{hex}"),
        ] {
            assert!(check_image(&bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn finds_the_container_or_lists_the_others() {
        let d = deployment("web:1");
        assert_eq!(container_image(&d, "web"), Ok("web:1".into()));
        assert_eq!(
            container_image(&d, "api"),
            Err(vec!["sidecar".to_owned(), "web".to_owned()])
        );
    }

    #[test]
    fn the_patch_carries_the_version_the_image_and_the_stamp() {
        let p = image_patch("41", "web", "reg/web@sha256:ab", &stamp());
        assert_eq!(p["metadata"]["resourceVersion"], "41");
        assert_eq!(p["metadata"]["annotations"][REQUEST], "R-7");
        assert_eq!(p["metadata"]["annotations"][SHA], Value::Null);
        assert_eq!(
            p["spec"]["template"]["spec"]["containers"],
            json!([{"name": "web", "image": "reg/web@sha256:ab"}])
        );
    }

    #[test]
    fn names_who_set_the_image() {
        let mut d = deployment("web:2");
        let owns = |manager: &str, secs: i64| ManagedFieldsEntry {
            manager: Some(manager.into()),
            operation: Some("Update".into()),
            time: Some(Time(
                k8s_openapi::chrono::DateTime::from_timestamp(secs, 0).unwrap(),
            )),
            fields_v1: Some(FieldsV1(json!({"f:spec": {"f:template": {"f:spec": {
                "f:containers": {"k:{\"name\":\"web\"}": {"f:image": {}}}}}}}))),
            ..ManagedFieldsEntry::default()
        };
        d.metadata.managed_fields = Some(vec![owns("helm", 10), owns("kubectl-set", 20)]);
        assert_eq!(who_set_image(&d, "web"), "field manager `kubectl-set`");
        assert_eq!(who_set_image(&d, "sidecar"), "an unknown writer");
        d.metadata.managed_fields = Some(vec![owns(MANAGER, 30)]);
        d.metadata.annotations = Some(BTreeMap::from([
            (REQUEST.to_owned(), "R-9".to_owned()),
            (REQUESTED_BY.to_owned(), "bob".to_owned()),
        ]));
        assert_eq!(who_set_image(&d, "web"), "Gantry R-9 for bob");
        assert!(!stamped(&d, "web", "web:2", &stamp()));
    }
}
