//! The sandbox as real servers on 127.0.0.1: a fake Kubernetes API server,
//! an OCI registry and a fake Slack Web API, each reached by Gantry's real
//! adapter over HTTP. The seed is the same as the in-process world's: every
//! app has `main`, `feat-x`, `feat-broken` (pods never ready),
//! `feat-unbuilt` (no image) and `release/1.0`, and every fixed namespace runs
//! each app's Deployments with three replicas of `main`.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use super::kube::{FakeKube, FakeOptions};
use super::registry::{
    start as start_registry, BuiltImage, ImageFormat, SandboxAuth, SandboxRegistry,
};
use super::seed::REPLICAS;
use super::slack::FakeSlack;
use super::world::World;
use crate::adapters::kube::KubeCluster;
use crate::adapters::notify::ByPlatform;
use crate::adapters::registry::manifest::Platform;
use crate::adapters::registry::{OciRegistry, RegistrySettings};
use crate::adapters::slack::SlackNotifier;
use crate::config::{Config, Target};
use crate::engine::Ports;

/// The running sandbox servers and the ports wired to them.
pub struct SandboxStack {
    /// The fake Kubernetes API server.
    pub kube: FakeKube,
    /// The OCI registry.
    pub registry: SandboxRegistry,
    /// The fake Slack Web API, when Slack is enabled.
    pub slack: Option<FakeSlack>,
    /// The in-process world, still behind the Git host port.
    pub world: Arc<World>,
    /// Ports: real registry, Kubernetes and Slack adapters pointed at the
    /// servers above; the Git host is the in-process world.
    pub ports: Ports,
}

/// Starts every sandbox server for `config`, seeds them and wires the ports.
/// `tick` is the pace of the simulated controller.
pub async fn start(
    config: &Config,
    tick: Duration,
    slack_token: Option<&crate::config::Secret>,
) -> Result<SandboxStack, String> {
    crate::tls::install_crypto();
    let world = Arc::new(World::new(super::seed(config), tick));
    let registry = start_registry(SandboxAuth::Anonymous)
        .await
        .map_err(|e| format!("cannot start the sandbox registry: {e}"))?;
    let kube = FakeKube::start(FakeOptions {
        tick,
        deadline_ticks: 10,
    })
    .await
    .map_err(|e| format!("cannot start the sandbox Kubernetes API: {e}"))?;
    let state = world.snapshot();
    let mut aliases = BTreeMap::new();
    for app in config.apps() {
        let (host, repository) = app
            .image
            .split_once('/')
            .unwrap_or(("docker.io", app.image.as_str()));
        aliases.insert(host.to_owned(), registry.host());
        let repo = app.repo.to_string();
        let mut main = None;
        for (name, sha) in state.refs.get(&repo).into_iter().flatten() {
            if name == "feat-unbuilt" {
                continue;
            }
            let image = BuiltImage::single(
                &format!("{repo}@{sha}"),
                &Platform::new("linux", "amd64", None),
                ImageFormat::Oci,
            );
            for tag in [
                app.tag_template.render(sha.as_str(), name),
                app.tag_template.render(sha.as_str(), ""),
            ] {
                let digest = registry.publish(repository, &tag, &image)?;
                match name.as_str() {
                    "main" => main = Some(digest.clone()),
                    "feat-broken" => kube.break_image(digest.as_str()),
                    _ => {}
                }
            }
        }
        let image = main.map_or_else(|| app.image.clone(), |d| format!("{}@{d}", app.image));
        for env in config.envs() {
            if let Target::Namespace(ns) = &env.target {
                kube.add_namespace(ns, &[]);
                for deployment in &app.deployments {
                    kube.add_deployment(ns, deployment, &app.container, &image, REPLICAS);
                }
                for service in &app.services {
                    kube.add_service(ns, service, 80);
                }
            }
        }
    }
    let oci = OciRegistry::new(RegistrySettings {
        host_aliases: aliases,
        timeout: Duration::from_secs(5),
        ..RegistrySettings::default()
    })
    .map_err(|e| e.to_string())?;
    let cluster = KubeCluster::for_url(kube.url()).map_err(|e| e.to_string())?;
    let mut notifier = ByPlatform::default()
        .with("console", world.clone())
        .with("github", world.clone())
        .with("discord", world.clone());
    let mut slack = None;
    if let (Some(_), Some(token)) = (&config.platforms().slack, slack_token) {
        let fake = FakeSlack::start(token.expose())
            .await
            .map_err(|e| format!("cannot start the sandbox Slack: {e}"))?;
        notifier = notifier.with(
            "slack",
            Arc::new(SlackNotifier::plain_http(&fake.api_url(), token)),
        );
        slack = Some(fake);
    }
    let ports = Ports {
        forge: world.clone(),
        registry: Arc::new(oci),
        cluster: Arc::new(cluster),
        notifier: Arc::new(notifier),
    };
    Ok(SandboxStack {
        kube,
        registry,
        slack,
        world,
        ports,
    })
}
