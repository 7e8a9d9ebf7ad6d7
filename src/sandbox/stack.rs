//! The sandbox as real servers on 127.0.0.1: a fake Kubernetes API server,
//! an OCI registry, a fake GitHub and fake Slack and Discord APIs, each
//! reached by Gantry's real adapter over HTTP. Every app's repository has
//! `main`, `feat-x`, `feat-broken` (pods never ready), `feat-unbuilt` (no
//! image until someone runs `build`) and `release/1.0`, and every fixed
//! namespace runs each app's Deployments with three replicas of `main`.
//! Next to GitHub run the sandbox's CI runner and Argo CD sync
//! ([`super::git_host`]).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use super::discord::FakeDiscord;
use super::git_host;
use super::github::FakeGithub;
use super::kube::{FakeKube, FakeOptions};
use super::registry::{start as start_registry, SandboxAuth, SandboxRegistry};
use super::seed::REPLICAS;
use super::slack::FakeSlack;
use crate::adapters::discord::DiscordNotifier;
use crate::adapters::github::{GithubForge, GithubNotifier, Polling};
use crate::adapters::kube::KubeCluster;
use crate::adapters::notify::ByPlatform;
use crate::adapters::registry::{OciRegistry, RegistrySettings};
use crate::adapters::slack::SlackNotifier;
use crate::adapters::wiring::{ConsoleNotifier, GitHost};
use crate::config::{Config, Secret, Target};
use crate::engine::Ports;

/// The credentials the sandbox's fakes accept, and Discord's application.
pub struct SandboxCredentials {
    /// The GitHub token.
    pub github_token: Secret,
    /// The Slack bot token; `None` = no Slack.
    pub slack_token: Option<Secret>,
    /// Discord, when enabled.
    pub discord: Option<SandboxDiscord>,
}

/// The sandbox Discord's application.
pub struct SandboxDiscord {
    /// The bot token.
    pub token: Secret,
    /// Application id.
    pub application_id: u64,
    /// Guilds `/gantry` is registered in.
    pub guild_ids: Vec<u64>,
    /// The key the fake signs interactions with.
    pub key: ed25519_dalek::SigningKey,
}

/// The running sandbox servers and the ports wired to them.
pub struct SandboxStack {
    /// The fake Kubernetes API server.
    pub kube: FakeKube,
    /// The OCI registry.
    pub registry: Arc<SandboxRegistry>,
    /// The fake GitHub: app repositories, pull requests, checks, builds,
    /// deployments, comments and GitOps config repositories.
    pub github: FakeGithub,
    /// The fake Slack Web API, when Slack is enabled.
    pub slack: Option<FakeSlack>,
    /// The fake Discord, when Discord is enabled.
    pub discord: Option<FakeDiscord>,
    /// The Discord REST client pointed at it.
    pub discord_rest: Option<Arc<DiscordNotifier>>,
    /// Ports: the real registry, Kubernetes, GitHub, Slack and Discord
    /// adapters pointed at the servers above.
    pub ports: Ports,
}

/// Starts every sandbox server for `config`, seeds them and wires the ports.
/// `tick` is the pace of the simulated controller, builds and syncs.
pub async fn start(
    config: &Arc<Config>,
    tick: Duration,
    credentials: &SandboxCredentials,
) -> Result<SandboxStack, String> {
    crate::tls::install_crypto();
    let registry = Arc::new(
        start_registry(SandboxAuth::Anonymous)
            .await
            .map_err(|e| format!("cannot start the sandbox registry: {e}"))?,
    );
    let kube = FakeKube::start(FakeOptions {
        tick,
        deadline_ticks: 10,
    })
    .await
    .map_err(|e| format!("cannot start the sandbox Kubernetes API: {e}"))?;
    let github = FakeGithub::start(credentials.github_token.expose())
        .await
        .map_err(|e| format!("cannot start the sandbox GitHub: {e}"))?;
    let refs = git_host::seed_repositories(&github, config, tick);
    let mut aliases = BTreeMap::new();
    let mut running = BTreeMap::new();
    for app in config.apps() {
        let host = app.registry();
        aliases.insert(host.to_owned(), registry.host());
        let repo = app.repo.to_string();
        for seeded in refs.iter().filter(|r| r.repo == repo) {
            if seeded.name == "feat-unbuilt" {
                continue;
            }
            let digest = git_host::publish(&registry, app, &seeded.name, &seeded.sha)?;
            match seeded.name.as_str() {
                "main" => {
                    running.insert(app.name.to_string(), format!("{}@{digest}", app.image));
                }
                "feat-broken" => kube.break_image(digest.as_str()),
                _ => {}
            }
        }
        let image = running
            .get(app.name.as_str())
            .cloned()
            .unwrap_or_else(|| app.image.clone());
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
    git_host::seed_config_repositories(&github, config, |app| {
        running
            .get(app.name.as_str())
            .cloned()
            .unwrap_or_else(|| app.image.clone())
    });
    let oci = OciRegistry::new(RegistrySettings {
        host_aliases: aliases,
        timeout: Duration::from_secs(5),
        ..RegistrySettings::default()
    })
    .map_err(|e| e.to_string())?;
    let cluster: Arc<dyn crate::engine::Cluster> =
        Arc::new(KubeCluster::for_url(kube.url()).map_err(|e| e.to_string())?);
    let forge = GithubForge::for_url(&github.url(), credentials.github_token.expose())
        .map_err(|e| e.to_string())?
        .with_polling(Polling {
            every: tick.max(Duration::from_millis(10)),
            run_appears_within: Duration::from_secs(10),
            build_timeout: tick * 50 + Duration::from_secs(10),
            checks_timeout: Duration::from_secs(10),
        })
        .shared();
    let mut notifier = ByPlatform::default()
        .with("console", Arc::new(ConsoleNotifier))
        .with("github", Arc::new(GithubNotifier::new(forge.clone())));
    let mut slack = None;
    if let (Some(_), Some(token)) = (&config.platforms().slack, &credentials.slack_token) {
        let fake = FakeSlack::start(token.expose())
            .await
            .map_err(|e| format!("cannot start the sandbox Slack: {e}"))?;
        notifier = notifier.with(
            "slack",
            Arc::new(SlackNotifier::plain_http(&fake.api_url(), token)),
        );
        slack = Some(fake);
    }
    let (mut discord, mut discord_rest) = (None, None);
    if let (Some(_), Some(d)) = (&config.platforms().discord, &credentials.discord) {
        let fake = FakeDiscord::start(d.token.expose(), d.application_id, d.key.clone())
            .await
            .map_err(|e| format!("cannot start the sandbox Discord: {e}"))?;
        let rest = Arc::new(DiscordNotifier::new(
            &fake.api_url(),
            &d.token,
            d.application_id,
        )?);
        rest.register_commands(&d.guild_ids)
            .await
            .map_err(|e| format!("cannot register the sandbox Discord command: {e}"))?;
        notifier = notifier.with("discord", rest.clone());
        discord = Some(fake);
        discord_rest = Some(rest);
    }
    git_host::spawn(
        config.clone(),
        github.clone(),
        registry.clone(),
        cluster.clone(),
        tick,
    );
    let ports = Ports {
        forge: Arc::new(GitHost::new(forge)),
        registry: Arc::new(oci),
        cluster,
        notifier: Arc::new(notifier),
    };
    Ok(SandboxStack {
        kube,
        registry,
        github,
        slack,
        discord,
        discord_rest,
        ports,
    })
}
