//! The Kubernetes manifests in `config/kubernetes/` parse into the real API
//! types and say what the README promises: one replica on a persistent
//! volume, non-root, probes on Gantry's own health routes, least RBAC.

use std::path::Path;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Namespace, PersistentVolumeClaim, Service, ServiceAccount};
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding};
use serde::Deserialize;

#[derive(Default)]
struct Objects {
    deployments: Vec<Deployment>,
    roles: Vec<ClusterRole>,
    kinds: Vec<String>,
}

fn load() -> Objects {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/kubernetes");
    let mut objects = Objects::default();
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        for document in serde_yaml::Deserializer::from_str(&text) {
            let value = serde_yaml::Value::deserialize(document).unwrap();
            let kind = value["kind"].as_str().unwrap_or_default().to_owned();
            let at = format!("{} ({kind})", file.display());
            match kind.as_str() {
                "Deployment" => objects
                    .deployments
                    .push(serde_yaml::from_value(value).expect(&at)),
                "ClusterRole" => objects
                    .roles
                    .push(serde_yaml::from_value(value).expect(&at)),
                "ClusterRoleBinding" => {
                    drop(serde_yaml::from_value::<ClusterRoleBinding>(value).expect(&at))
                }
                "ServiceAccount" => {
                    drop(serde_yaml::from_value::<ServiceAccount>(value).expect(&at))
                }
                "Service" => drop(serde_yaml::from_value::<Service>(value).expect(&at)),
                "Namespace" => drop(serde_yaml::from_value::<Namespace>(value).expect(&at)),
                "PersistentVolumeClaim" => {
                    drop(serde_yaml::from_value::<PersistentVolumeClaim>(value).expect(&at))
                }
                other => panic!("{at}: unexpected kind `{other}`"),
            }
            objects.kinds.push(kind);
        }
    }
    objects
}

#[test]
fn manifests_parse_as_kubernetes_objects() {
    let objects = load();
    for kind in [
        "Namespace",
        "ServiceAccount",
        "ClusterRole",
        "ClusterRoleBinding",
        "PersistentVolumeClaim",
        "Deployment",
        "Service",
    ] {
        assert!(objects.kinds.iter().any(|k| k == kind), "{kind} missing");
    }
}

#[test]
fn the_deployment_is_single_writer_non_root_and_probed() {
    let objects = load();
    let spec = objects.deployments[0].spec.clone().unwrap();
    assert_eq!(spec.replicas, Some(1), "sled is single-writer");
    assert_eq!(spec.strategy.unwrap().type_.as_deref(), Some("Recreate"));
    let pod = spec.template.spec.unwrap();
    assert_eq!(pod.security_context.unwrap().run_as_non_root, Some(true));
    let container = &pod.containers[0];
    let probe_path = |p: &Option<k8s_openapi::api::core::v1::Probe>| {
        p.clone().unwrap().http_get.unwrap().path.unwrap()
    };
    assert_eq!(probe_path(&container.liveness_probe), "/healthz");
    assert_eq!(probe_path(&container.readiness_probe), "/readyz");
    let args = container.args.clone().unwrap();
    assert_eq!(args[0], "serve");
    assert!(args.contains(&"/var/lib/gantry".to_owned()));
    let mounts = container.volume_mounts.clone().unwrap();
    assert!(mounts.iter().any(|m| m.mount_path == "/var/lib/gantry"));
    assert_eq!(
        container
            .security_context
            .clone()
            .unwrap()
            .read_only_root_filesystem,
        Some(true)
    );
}

#[test]
fn rbac_never_grants_what_gantry_must_not_do() {
    let objects = load();
    let rules = objects.roles[0].rules.clone().unwrap();
    let grants = |resource: &str, verb: &str| {
        rules.iter().any(|r| {
            r.resources
                .as_ref()
                .is_some_and(|rs| rs.iter().any(|x| x == resource))
                && r.verbs.iter().any(|v| v == verb)
        })
    };
    // tests/rbac.rs checks the whole role against what Gantry sends; these
    // are the grants that must never creep in.
    for (resource, verb) in [
        ("deployments", "delete"),
        ("secrets", "get"),
        ("pods", "delete"),
        ("replicasets", "list"),
        ("users", "impersonate"),
        ("*", "*"),
    ] {
        assert!(
            !grants(resource, verb),
            "{resource} {verb} must not be granted"
        );
    }
}
