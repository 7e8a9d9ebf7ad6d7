//! What runs in the fake cluster, as the pods would see it: each
//! Deployment, whether it is available, and the images of its ready pods.
//! The sandbox's apps ([`crate::sandbox::apps`]) answer from this.

use std::sync::Arc;

use super::controller::{images, ready};
use super::store::{Kind, Objects};
use super::{FakeKube, Shared};

/// One Deployment and what serves for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Running {
    /// Its namespace.
    pub namespace: String,
    /// Its name.
    pub name: String,
    /// Whether its `Available` condition is True.
    pub available: bool,
    /// The container images of each ready pod it selects, one entry per pod.
    pub ready_pods: Vec<Vec<String>>,
}

/// A read-only handle on the fake cluster's objects, cheap to clone.
#[derive(Clone)]
pub struct ClusterView {
    shared: Arc<Shared>,
}

impl FakeKube {
    /// A handle that reads what runs, for servers that stand for the pods.
    pub fn view(&self) -> ClusterView {
        ClusterView {
            shared: self.shared.clone(),
        }
    }
}

impl ClusterView {
    /// Every Deployment, by namespace then name.
    pub fn running(&self) -> Vec<Running> {
        let inner = self.shared.lock();
        running(&inner.objects)
    }

    /// One Deployment, if it exists.
    pub fn deployment(&self, namespace: &str, name: &str) -> Option<Running> {
        self.running()
            .into_iter()
            .find(|r| r.namespace == namespace && r.name == name)
    }
}

fn running(objects: &Objects) -> Vec<Running> {
    objects
        .list(Kind::Deployment, None)
        .into_iter()
        .map(|(key, d)| {
            let available = d["status"]["conditions"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|c| c["type"] == "Available" && c["status"] == "True");
            let selector = d["spec"]["selector"]["matchLabels"]
                .as_object()
                .cloned()
                .unwrap_or_default();
            let ready_pods = objects
                .list(Kind::Pod, Some(&key.namespace))
                .into_iter()
                .map(|(_, p)| p)
                .filter(|p| {
                    !selector.is_empty()
                        && selector
                            .iter()
                            .all(|(k, v)| p["metadata"]["labels"][k.as_str()] == *v)
                })
                .filter(ready)
                .map(|p| images(&p))
                .collect();
            Running {
                namespace: key.namespace,
                name: key.name,
                available,
                ready_pods,
            }
        })
        .collect()
}
