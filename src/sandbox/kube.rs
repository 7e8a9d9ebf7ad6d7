//! A Kubernetes API server for tests and the sandbox.
//!
//! [`FakeKube`] serves, on 127.0.0.1, the part of the Kubernetes REST API
//! that Gantry uses — `apps/v1` Deployments and ReplicaSets, `v1`
//! Namespaces, Services and Pods: GET, LIST, PATCH (strategic merge, JSON
//! merge and server-side apply), POST, DELETE and `?watch=true` streams — so
//! the unmodified `kube` client talks to it over real HTTP. Objects are
//! `k8s-openapi` types, so their JSON is the real schema. A controller task
//! rolls Deployments out replica by replica; a scenario can break images,
//! inject 409s, 403s, 429s, slow answers and dropped watches; every request
//! is recorded with its answer's status, and [`Recorded::authorisations`]
//! says what RBAC must grant for it. `docs/kubernetes.md` lists what it speaks.

mod access;
mod api;
mod controller;
mod faults;
mod merge;
mod running;
mod store;
mod watch;
mod write;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Namespace, Pod, Service};
use serde::de::DeserializeOwned;
use serde_json::{json, Value};
use tokio::sync::{broadcast, Notify};
use tokio::task::JoinHandle;

pub use access::{Access, Authorisation};
pub use controller::Breakage;
use controller::Controller;
use faults::{Faults, ImageChange};
pub use running::{ClusterView, Running};
use store::{Change, Key, Kind, Objects};
use write::PatchKind;

/// The pace of the simulated controller.
#[derive(Debug, Clone, Copy)]
pub struct FakeOptions {
    /// Time between controller steps.
    pub tick: Duration,
    /// Steps without progress before `ProgressDeadlineExceeded`.
    pub deadline_ticks: u64,
}

impl Default for FakeOptions {
    fn default() -> FakeOptions {
        FakeOptions {
            tick: Duration::from_millis(10),
            deadline_ticks: 10,
        }
    }
}

/// One request as the server received it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recorded {
    /// `GET`, `PATCH`, …
    pub method: String,
    /// The path, e.g. `/apis/apps/v1/namespaces/dev/deployments/web`.
    pub path: String,
    /// The raw query string.
    pub query: String,
    /// Headers, names lowercased.
    pub headers: BTreeMap<String, String>,
    /// The body, as text.
    pub body: String,
    /// The answer's status code; `None` until the server has answered.
    pub status: Option<u16>,
    /// Position among every request since start, to find it again when the
    /// answer is known (`clear_requests` does not reset it).
    seq: u64,
}

impl Recorded {
    /// A query parameter's value.
    pub fn param(&self, name: &str) -> Option<String> {
        serde_urlencoded::from_str::<Vec<(String, String)>>(&self.query)
            .ok()?
            .into_iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v)
    }

    /// A header's value.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .get(&name.to_ascii_lowercase())
            .map(String::as_str)
    }

    /// Whether this was a watch.
    pub fn is_watch(&self) -> bool {
        self.param("watch").as_deref() == Some("true")
    }

    /// What the API server's authorisation filter checks for this request:
    /// its verb, group, resource and namespace, or a non-resource URL.
    pub fn authorisation(&self) -> Authorisation {
        access::request(self)
    }

    /// Every check the API server makes for this request, in order:
    /// impersonation (`Impersonate-*` headers), the request's own, and
    /// `create` when a server-side apply created the object.
    pub fn authorisations(&self) -> Vec<Authorisation> {
        let mut checks = access::impersonation(self);
        let own = self.authorisation();
        let created = match (&own, access::applied_create(self)) {
            (Authorisation::Resource(a), true) => Some(Authorisation::Resource(Access {
                verb: "create".to_owned(),
                ..a.clone()
            })),
            _ => None,
        };
        checks.push(own);
        checks.extend(created);
        checks
    }

    /// `METHOD path`, for compact assertions.
    pub fn line(&self) -> String {
        let kind = if self.is_watch() { " (watch)" } else { "" };
        format!("{} {}{kind}", self.method, self.path)
    }
}

struct Inner {
    objects: Objects,
    controller: Controller,
    faults: Faults,
    requests: Vec<Recorded>,
    /// Requests received since start.
    received: u64,
}

struct Shared {
    inner: Mutex<Inner>,
    changes: broadcast::Sender<Change>,
    changed: Notify,
    options: FakeOptions,
}

impl Shared {
    /// Locks the state; every change is made whole under the lock, so a
    /// poisoned lock still holds consistent state.
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn tick(&self) {
        {
            let mut inner = self.lock();
            let Inner {
                objects,
                controller,
                faults,
                ..
            } = &mut *inner;
            controller.tick(
                objects,
                &|i| faults.breakage(i),
                self.options.deadline_ticks,
            );
        }
        self.changed.notify_waiters();
    }
}

/// A running fake API server; dropping it stops the server and controller.
pub struct FakeKube {
    url: String,
    shared: Arc<Shared>,
    tasks: Vec<JoinHandle<()>>,
}

impl Drop for FakeKube {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

impl FakeKube {
    /// Starts the server on 127.0.0.1 and its controller.
    pub async fn start(options: FakeOptions) -> std::io::Result<FakeKube> {
        let (changes, _) = broadcast::channel(1024);
        let shared = Arc::new(Shared {
            inner: Mutex::new(Inner {
                objects: Objects::new(changes.clone()),
                controller: Controller::default(),
                faults: Faults::default(),
                requests: Vec::new(),
                received: 0,
            }),
            changes,
            changed: Notify::new(),
            options,
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}", listener.local_addr()?);
        let router = axum::Router::new()
            .fallback(api::handle)
            .with_state(shared.clone());
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        let ticking = shared.clone();
        let controller = tokio::spawn(async move {
            // The first step comes one tick after start, not at once, so a
            // scenario set up right after start sees no step it did not wait for.
            let tick = ticking.options.tick;
            let mut every = tokio::time::interval_at(tokio::time::Instant::now() + tick, tick);
            every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                every.tick().await;
                ticking.tick();
            }
        });
        Ok(FakeKube {
            url,
            shared,
            tasks: vec![server, controller],
        })
    }

    /// The server's base URL, `http://127.0.0.1:<port>`.
    pub fn url(&self) -> &str {
        &self.url
    }

    fn write(&self, key: &Key, kind: PatchKind, manager: &str, body: &Value) {
        let bytes = body.to_string().into_bytes();
        let mut inner = self.shared.lock();
        // Scenario set-up that does not fit the schema is a bug in the test.
        let _ = write::patch(&mut inner, key, kind, Some(manager), &bytes);
        drop(inner);
        self.shared.changed.notify_waiters();
    }

    /// Adds a namespace with labels.
    pub fn add_namespace(&self, name: &str, labels: &[(&str, &str)]) {
        let labels: BTreeMap<&str, &str> = labels.iter().copied().collect();
        let body = json!({"apiVersion": "v1", "kind": "Namespace",
            "metadata": {"name": name, "labels": labels}});
        self.write(
            &Key::new(Kind::Namespace, "", name),
            PatchKind::Apply,
            "kubectl",
            &body,
        );
    }

    /// Adds a Deployment (label `app=<name>`) running `image`, already rolled out.
    pub fn add_deployment(
        &self,
        namespace: &str,
        name: &str,
        container: &str,
        image: &str,
        replicas: u32,
    ) {
        if self.namespace(namespace).is_none() {
            self.add_namespace(namespace, &[]);
        }
        let body = json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": name, "labels": {"app": name}},
            "spec": {"replicas": replicas, "progressDeadlineSeconds": 600,
                "selector": {"matchLabels": {"app": name}},
                "strategy": {"type": "RollingUpdate",
                    "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}},
                "template": {"metadata": {"labels": {"app": name}},
                    "spec": {"containers": [{"name": container, "image": image,
                        "ports": [{"containerPort": 8080}]}]}}}});
        let key = Key::new(Kind::Deployment, namespace, name);
        self.write(&key, PatchKind::Apply, "kubectl", &body);
        let mut inner = self.shared.lock();
        let Inner {
            objects,
            controller,
            ..
        } = &mut *inner;
        controller.settle(objects, &key);
    }

    /// Adds a ClusterIP Service for `app=<name>` on `port`.
    pub fn add_service(&self, namespace: &str, name: &str, port: u16) {
        let body = json!({"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": name, "labels": {"app": name}},
            "spec": {"selector": {"app": name}, "clusterIP": "10.96.0.10",
                "ports": [{"port": port, "targetPort": 8080, "protocol": "TCP"}]}});
        self.write(
            &Key::new(Kind::Service, namespace, name),
            PatchKind::Apply,
            "kubectl",
            &body,
        );
    }

    fn get<T: DeserializeOwned>(&self, key: &Key) -> Option<T> {
        let value = self.shared.lock().objects.get(key).cloned()?;
        serde_json::from_value(value).ok()
    }

    /// A Deployment as stored.
    pub fn deployment(&self, namespace: &str, name: &str) -> Option<Deployment> {
        self.get(&Key::new(Kind::Deployment, namespace, name))
    }

    /// The image of a Deployment's container.
    pub fn image(&self, namespace: &str, name: &str, container: &str) -> Option<String> {
        let d = self.deployment(namespace, name)?;
        let spec = d.spec?.template.spec?;
        spec.containers
            .into_iter()
            .find(|c| c.name == container)?
            .image
    }

    /// A namespace as stored.
    pub fn namespace(&self, name: &str) -> Option<Namespace> {
        self.get(&Key::new(Kind::Namespace, "", name))
    }

    /// A Service as stored.
    pub fn service(&self, namespace: &str, name: &str) -> Option<Service> {
        self.get(&Key::new(Kind::Service, namespace, name))
    }

    /// The pods in a namespace.
    pub fn pods(&self, namespace: &str) -> Vec<Pod> {
        let listed = self.shared.lock().objects.list(Kind::Pod, Some(namespace));
        listed
            .into_iter()
            .filter_map(|(_, v)| serde_json::from_value(v).ok())
            .collect()
    }

    /// Every request received so far, oldest first.
    pub fn requests(&self) -> Vec<Recorded> {
        self.shared.lock().requests.clone()
    }

    /// Forgets the requests received so far.
    pub fn clear_requests(&self) {
        self.shared.lock().requests.clear();
    }

    /// Waits until `done` holds; it is re-checked after every change.
    pub async fn wait_until(&self, done: impl Fn(&FakeKube) -> bool) {
        loop {
            let changed = self.shared.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            if done(self) {
                return;
            }
            changed.await;
        }
    }
}
