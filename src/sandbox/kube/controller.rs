//! The Deployment controller and namespace finaliser, one step per tick.
//!
//! A Deployment whose template changed gets a new ReplicaSet (named by the
//! template's hash, as `pod-template-hash`); each tick does one thing: the
//! controller observes the new generation, or starts one new pod (surge 1,
//! unavailable 0), or makes a started pod ready and removes an old one. A pod
//! whose image the scenario marks broken never becomes ready and shows
//! `CrashLoopBackOff` or `ImagePullBackOff`; after `deadline_ticks` without
//! progress the `Progressing` condition turns False with
//! `ProgressDeadlineExceeded`.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::Deployment;
use serde_json::{json, Value};
use sha2::{Digest as _, Sha256};

use super::store::{now, Key, Kind, Objects, Selector};

/// Why a broken image's pods do not come up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Breakage {
    /// The container starts and exits.
    CrashLoop,
    /// The image cannot be pulled.
    ImagePull,
}

/// The controller's memory between ticks.
#[derive(Debug, Default)]
pub struct Controller {
    /// Ticks so far.
    pub ticks: u64,
    /// Deployment → the tick of its last progress.
    progress: BTreeMap<Key, u64>,
    /// Counter for pod names.
    pods: u64,
}

/// Characters Kubernetes uses in generated names.
const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";

fn safe(bytes: &[u8], len: usize) -> String {
    bytes
        .iter()
        .take(len)
        .map(|b| ALPHABET[usize::from(*b) % ALPHABET.len()] as char)
        .collect()
}

fn template_hash(template: &Value) -> String {
    safe(&Sha256::digest(template.to_string().as_bytes()), 10)
}

/// Whether a pod's `Ready` condition is `True`.
pub(super) fn ready(pod: &Value) -> bool {
    pod["status"]["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|c| c["type"] == "Ready" && c["status"] == "True")
}

/// The images of a pod's containers.
pub(super) fn images(pod: &Value) -> Vec<String> {
    pod["spec"]["containers"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| c["image"].as_str().map(str::to_owned))
        .collect()
}

/// What a container state looks like for a pod.
fn pod_status(pod: &Value, broken: Option<Breakage>, up: bool) -> Value {
    let statuses: Vec<Value> = pod["spec"]["containers"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|c| {
            let image = c["image"].clone();
            let state = match (broken, up) {
                (Some(Breakage::CrashLoop), _) => json!({"waiting": {"reason": "CrashLoopBackOff",
                    "message": format!("back-off 10s restarting failed container={} pod={}",
                        c["name"].as_str().unwrap_or(""), pod["metadata"]["name"].as_str().unwrap_or(""))}}),
                (Some(Breakage::ImagePull), _) => json!({"waiting": {"reason": "ImagePullBackOff",
                    "message": format!("Back-off pulling image {image}")}}),
                (None, true) => json!({"running": {"startedAt": now()}}),
                (None, false) => json!({"waiting": {"reason": "ContainerCreating"}}),
            };
            let restarts = if broken == Some(Breakage::CrashLoop) { 3 } else { 0 };
            json!({"name": c["name"], "image": image, "imageID": "", "ready": up,
                "restartCount": restarts, "started": up, "state": state})
        })
        .collect();
    let flag = if up { "True" } else { "False" };
    let phase = if broken == Some(Breakage::ImagePull) || (!up && broken.is_none()) {
        "Pending"
    } else {
        "Running"
    };
    json!({"phase": phase, "conditions": [{"type": "Ready", "status": flag},
        {"type": "ContainersReady", "status": flag}], "containerStatuses": statuses})
}

impl Controller {
    /// One tick over every Deployment and terminating namespace.
    pub fn tick(
        &mut self,
        objects: &mut Objects,
        broken: &dyn Fn(&str) -> Option<Breakage>,
        deadline: u64,
    ) {
        self.ticks += 1;
        for (key, _) in objects.list(Kind::Deployment, None) {
            self.step(objects, &key, broken, deadline);
        }
        finalise_namespaces(objects);
    }

    /// Runs ticks for one Deployment until it is still (seeding).
    pub fn settle(&mut self, objects: &mut Objects, key: &Key) {
        for _ in 0..1000 {
            let before = objects.version();
            self.step(objects, key, &|_| None, u64::MAX);
            if objects.version() == before {
                return;
            }
        }
    }

    fn step(
        &mut self,
        objects: &mut Objects,
        key: &Key,
        broken: &dyn Fn(&str) -> Option<Breakage>,
        deadline: u64,
    ) {
        let Some(object) = objects.get(key).cloned() else {
            return;
        };
        let Ok(d) = serde_json::from_value::<Deployment>(object.clone()) else {
            return;
        };
        let ns = key.namespace.as_str();
        let spec = d.spec.clone().unwrap_or_default();
        let desired = usize::try_from(spec.replicas.unwrap_or(1)).unwrap_or(0);
        let template = object["spec"]["template"].clone();
        let hash = template_hash(&template);
        let rs_name = format!("{}-{hash}", key.name);
        let selector = spec.selector.match_labels.clone().unwrap_or_default();
        let labels = Selector::parse(
            &selector
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(","),
        )
        .unwrap_or_default();
        let pods: Vec<(Key, Value)> = objects
            .list(Kind::Pod, Some(ns))
            .into_iter()
            .filter(|(_, p)| {
                labels.matches(|k| p["metadata"]["labels"][k].as_str().map(str::to_owned))
            })
            .collect();
        let is_new = |p: &Value| p["metadata"]["labels"]["pod-template-hash"] == hash.as_str();
        let (current, old): (Vec<_>, Vec<_>) = pods.iter().partition(|(_, p)| is_new(p));
        let generation = d.metadata.generation.unwrap_or(1);
        let status = d.status.clone().unwrap_or_default();
        let observed = status.observed_generation.unwrap_or(0) >= generation;
        let deadline_hit = observed
            && status.conditions.iter().flatten().any(|c| {
                c.type_ == "Progressing" && c.reason.as_deref() == Some("ProgressDeadlineExceeded")
            });
        let last = *self.progress.entry(key.clone()).or_insert(self.ticks);
        let mut progressed = false;
        if !observed {
            self.ensure_replicaset(objects, key, &rs_name, &hash, &template);
            progressed = true;
        } else if !deadline_hit {
            let waiting = current.iter().find(|(_, p)| !ready(p));
            if let Some((pod_key, pod)) = waiting {
                let fault = images(pod).iter().find_map(|i| broken(i));
                if fault.is_none() {
                    let mut pod = pod.clone();
                    pod["status"] = pod_status(&pod, None, true);
                    objects.put(pod_key, pod);
                    if pods.len() > desired {
                        remove_one(objects, &old);
                    }
                    progressed = true;
                }
            } else if current.len() < desired {
                self.start_pod(objects, ns, &rs_name, &hash, &template, broken);
                progressed = true;
            } else if !old.is_empty() {
                remove_one(objects, &old);
                progressed = true;
            } else if current.len() > desired {
                remove_one(objects, &current);
                progressed = true;
            }
        }
        if progressed {
            self.progress.insert(key.clone(), self.ticks);
        }
        let pods: Vec<Value> = objects
            .list(Kind::Pod, Some(ns))
            .into_iter()
            .map(|(_, p)| p)
            .filter(|p| labels.matches(|k| p["metadata"]["labels"][k].as_str().map(str::to_owned)))
            .collect();
        let updated = pods.iter().filter(|p| is_new(p)).count();
        let up = pods.iter().filter(|p| ready(p)).count();
        let complete = updated == desired && pods.len() == desired && up == desired;
        let stalled = deadline_hit
            || (self.ticks.saturating_sub(last) >= deadline && !complete && !progressed);
        let (flag, reason, message) = if complete {
            (
                "True",
                "NewReplicaSetAvailable",
                format!("ReplicaSet \"{rs_name}\" has successfully progressed."),
            )
        } else if stalled {
            (
                "False",
                "ProgressDeadlineExceeded",
                format!("ReplicaSet \"{rs_name}\" has timed out progressing."),
            )
        } else {
            (
                "True",
                "ReplicaSetUpdated",
                format!("ReplicaSet \"{rs_name}\" is progressing."),
            )
        };
        let available = if up >= desired {
            ("True", "MinimumReplicasAvailable")
        } else {
            ("False", "MinimumReplicasUnavailable")
        };
        let count = |n: usize| i64::try_from(n).unwrap_or(i64::MAX);
        let new_status = json!({
            "observedGeneration": generation,
            "replicas": count(pods.len()),
            "updatedReplicas": count(updated),
            "readyReplicas": count(up),
            "availableReplicas": count(up),
            "unavailableReplicas": count(desired.saturating_sub(up)),
            "conditions": [
                {"type": "Available", "status": available.0, "reason": available.1,
                 "message": "Deployment has minimum availability."},
                {"type": "Progressing", "status": flag, "reason": reason, "message": message},
            ],
        });
        if object["status"] == new_status {
            return;
        }
        let mut object = object;
        object["status"] = new_status;
        objects.put(key, object);
    }

    fn ensure_replicaset(
        &mut self,
        objects: &mut Objects,
        owner: &Key,
        name: &str,
        hash: &str,
        template: &Value,
    ) {
        let key = Key::new(Kind::ReplicaSet, &owner.namespace, name);
        if objects.get(&key).is_some() {
            return;
        }
        let mut labels = template["metadata"]["labels"].clone();
        labels["pod-template-hash"] = json!(hash);
        let mut pod_template = template.clone();
        pod_template["metadata"]["labels"] = labels.clone();
        objects.put(
            &key,
            json!({
                "metadata": {"labels": labels, "ownerReferences": [{"apiVersion": "apps/v1",
                    "kind": "Deployment", "name": owner.name, "uid": "", "controller": true}]},
                "spec": {"selector": {"matchLabels": labels}, "template": pod_template},
            }),
        );
    }

    fn start_pod(
        &mut self,
        objects: &mut Objects,
        ns: &str,
        rs: &str,
        hash: &str,
        template: &Value,
        broken: &dyn Fn(&str) -> Option<Breakage>,
    ) {
        self.pods += 1;
        let name = format!("{rs}-{}", safe(&Sha256::digest(self.pods.to_be_bytes()), 5));
        let mut labels = template["metadata"]["labels"].clone();
        labels["pod-template-hash"] = json!(hash);
        let mut pod = json!({
            "metadata": {"name": name, "labels": labels, "ownerReferences": [{"apiVersion": "apps/v1",
                "kind": "ReplicaSet", "name": rs, "uid": "", "controller": true}]},
            "spec": template["spec"].clone(),
        });
        let fault = images(&pod).iter().find_map(|i| broken(i));
        pod["status"] = pod_status(&pod, fault, false);
        objects.put(&Key::new(Kind::Pod, ns, &name), pod);
    }
}

/// Removes one pod, a not-ready one first.
fn remove_one(objects: &mut Objects, pods: &[&(Key, Value)]) {
    let victim = pods
        .iter()
        .find(|(_, p)| !ready(p))
        .or_else(|| pods.first());
    if let Some((key, _)) = victim {
        objects.delete(key);
    }
}

/// Deletes what is in terminating namespaces, then the namespaces.
fn finalise_namespaces(objects: &mut Objects) {
    for (key, ns) in objects.list(Kind::Namespace, None) {
        if ns["metadata"]["deletionTimestamp"].is_null() {
            continue;
        }
        for kind in [Kind::Pod, Kind::ReplicaSet, Kind::Deployment, Kind::Service] {
            for (inner, _) in objects.list(kind, Some(&key.name)) {
                objects.delete(&inner);
            }
        }
        objects.delete(&key);
    }
}
