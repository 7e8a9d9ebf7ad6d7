//! The [`Cluster`] port over the Kubernetes API, with the `kube` client.
//!
//! One client per (cluster context, impersonated user), built on first use
//! from the kubeconfig context named in config, or by `Config::infer` (the
//! in-cluster service account or `KUBECONFIG`) when config names none. When
//! an environment's cluster impersonates requesters, every call carries
//! `Impersonate-User: <kube_user>`, so the cluster's RBAC judges the person
//! who asked, not only Gantry. `docs/kubernetes.md` lists the wire facts.

mod deploy;
mod follow;
pub mod patch;
mod preview;
pub mod rollout;
mod transport;

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use async_trait::async_trait;
use kube::config::KubeConfigOptions;

pub use preview::{check_namespace, label_value};
pub use transport::Limits;
use transport::Transport;

use crate::config::Config;
use crate::engine::ports::{
    Cluster, Deletion, PortError, PreviewNamespace, ProgressSink, RolloutOutcome, Stamp, Workload,
};

/// Where the clients connect.
#[derive(Debug, Clone)]
enum Sources {
    /// Every context is this API server (tests and the sandbox).
    Url(http::Uri),
    /// Context name as the engine passes it → where its config comes from.
    Contexts(BTreeMap<String, ContextSource>),
}

/// Where one cluster's client config comes from.
#[derive(Debug, Clone)]
struct ContextSource {
    /// The kubeconfig context; `None` = in-cluster config, else the current one.
    context: Option<String>,
    /// The kubeconfig file; `None` = `$KUBECONFIG`, else `~/.kube/config`.
    kubeconfig: Option<std::path::PathBuf>,
}

/// Gantry's Kubernetes adapter.
pub struct KubeCluster {
    sources: Sources,
    limits: Limits,
    rollout_timeout: Duration,
    clients: tokio::sync::Mutex<HashMap<(String, Option<String>), Transport>>,
}

impl KubeCluster {
    /// An adapter for the clusters in config; clients are built on first use.
    pub fn from_config(config: &Config) -> KubeCluster {
        let contexts = config
            .clusters()
            .values()
            .map(|c| {
                let source = ContextSource {
                    context: c.context.clone(),
                    kubeconfig: c.kubeconfig.clone(),
                };
                (c.kube_context(), source)
            })
            .collect();
        KubeCluster::new(Sources::Contexts(contexts))
    }

    /// An adapter whose every context is the API server at `url`.
    pub fn for_url(url: &str) -> Result<KubeCluster, PortError> {
        let uri = url
            .parse()
            .map_err(|e| PortError::Invalid(format!("`{url}` is not a URL: {e}")))?;
        Ok(KubeCluster::new(Sources::Url(uri)))
    }

    fn new(sources: Sources) -> KubeCluster {
        crate::tls::install_crypto();
        KubeCluster {
            sources,
            limits: Limits::default(),
            rollout_timeout: Duration::from_secs(600),
            clients: tokio::sync::Mutex::new(HashMap::new()),
        }
    }

    /// Replaces the request timeout and retry limits.
    pub fn with_limits(mut self, limits: Limits) -> KubeCluster {
        self.limits = limits;
        self
    }

    /// The rollout limit for workloads that do not bring their own.
    pub fn with_rollout_timeout(mut self, limit: Duration) -> KubeCluster {
        self.rollout_timeout = limit;
        self
    }

    async fn transport(&self, context: &str, user: Option<&str>) -> Result<Transport, PortError> {
        if user == Some("") {
            return Err(PortError::Invalid(format!(
                "cluster context {context} impersonates requesters, and this requester has no \
                 kube_user in config"
            )));
        }
        let key = (context.to_owned(), user.map(str::to_owned));
        let mut clients = self.clients.lock().await;
        if let Some(found) = clients.get(&key) {
            return Ok(found.clone());
        }
        let mut config = self.kube_config(context).await?;
        config.auth_info.impersonate = key.1.clone();
        let client = kube::Client::try_from(config).map_err(|e| {
            PortError::Unavailable(format!("cannot build a client for {context}: {e}"))
        })?;
        let actor = user.unwrap_or("Gantry's service account").to_owned();
        let transport = Transport::new(client, self.limits, actor);
        clients.insert(key, transport.clone());
        Ok(transport)
    }

    async fn kube_config(&self, context: &str) -> Result<kube::Config, PortError> {
        let unusable = |e: String| {
            PortError::Unavailable(format!(
                "cannot load the Kubernetes config for {context}: {e}"
            ))
        };
        match &self.sources {
            Sources::Url(uri) => Ok(kube::Config::new(uri.clone())),
            Sources::Contexts(contexts) => match contexts.get(context) {
                None => Err(PortError::Invalid(format!(
                    "no cluster in config has context {context}"
                ))),
                Some(ContextSource {
                    context: None,
                    kubeconfig: None,
                }) => kube::Config::infer()
                    .await
                    .map_err(|e| unusable(e.to_string())),
                Some(source) => {
                    let options = KubeConfigOptions {
                        context: source.context.clone(),
                        ..KubeConfigOptions::default()
                    };
                    match &source.kubeconfig {
                        Some(path) => {
                            let file = kube::config::Kubeconfig::read_from(path).map_err(|e| {
                                unusable(format!("cannot read {}: {e}", path.display()))
                            })?;
                            kube::Config::from_custom_kubeconfig(file, &options).await
                        }
                        None => kube::Config::from_kubeconfig(&options).await,
                    }
                    .map_err(|e| unusable(e.to_string()))
                }
            },
        }
    }

    async fn for_workload(&self, w: &Workload) -> Result<Transport, PortError> {
        preview::check_namespace(&w.namespace)?;
        self.transport(&w.context, w.impersonate.as_deref()).await
    }
}

#[async_trait]
impl Cluster for KubeCluster {
    async fn current_images(
        &self,
        workload: &Workload,
    ) -> Result<Vec<(String, String)>, PortError> {
        let t = self.for_workload(workload).await?;
        deploy::current_images(&t, workload).await
    }

    async fn set_image(
        &self,
        workload: &Workload,
        image: &str,
        stamp: &Stamp,
    ) -> Result<(), PortError> {
        let t = self.for_workload(workload).await?;
        deploy::set_image(&t, workload, image, stamp).await
    }

    async fn follow_rollout(
        &self,
        workload: &Workload,
        progress: ProgressSink<'_>,
    ) -> Result<RolloutOutcome, PortError> {
        let t = self.for_workload(workload).await?;
        let limit = if workload.rollout_timeout.is_zero() {
            self.rollout_timeout
        } else {
            workload.rollout_timeout
        };
        follow::follow(&t, workload, progress, limit).await
    }

    async fn ensure_namespace(
        &self,
        context: &str,
        namespace: &str,
        labels: &BTreeMap<String, String>,
    ) -> Result<(), PortError> {
        let t = self.transport(context, None).await?;
        preview::ensure_namespace(&t, namespace, labels).await
    }

    async fn copy_workload(&self, workload: &Workload, source: &str) -> Result<(), PortError> {
        let t = self.for_workload(workload).await?;
        preview::copy_workload(&t, workload, source).await
    }

    async fn delete_namespace(
        &self,
        context: &str,
        namespace: &str,
    ) -> Result<Deletion, PortError> {
        let t = self.transport(context, None).await?;
        preview::delete_namespace(&t, namespace).await
    }

    async fn list_previews(&self, context: &str) -> Result<Vec<PreviewNamespace>, PortError> {
        let t = self.transport(context, None).await?;
        preview::list_previews(&t).await
    }

    async fn ping(&self, context: &str) -> Result<(), PortError> {
        let t = self.transport(context, None).await?;
        let request = http::Request::get("/version")
            .body(Vec::new())
            .map_err(|e| PortError::Invalid(e.to_string()))?;
        t.call(&transport::Op::cluster("get", "version"), request)
            .await
            .map(drop)
    }
}
