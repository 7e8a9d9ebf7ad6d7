//! The sandbox as real servers on 127.0.0.1 — a fake Kubernetes API server,
//! an OCI registry, a fake GitHub and fake Slack and Discord APIs — plus the
//! config that points Gantry's production wiring at them. Nothing here
//! builds a port: whoever runs Gantry on the sandbox loads the written
//! config and goes through [`crate::adapters::wiring::ports`] like
//! production does.
//!
//! Every app's repository has `main`, `feat-x`, `feat-broken` (pods never
//! ready), `bad-metrics` (pods ready, a fifth of their requests fail),
//! `feat-unbuilt` (no image until someone runs `build`) and
//! `release/1.0`, and every fixed namespace runs each app's Deployments
//! with three replicas of `main` — GitOps namespaces run `release/1.0`, as
//! their config repositories say, so that deploying `main` there commits. Next to GitHub run the sandbox's CI runner
//! and Argo CD sync ([`super::git_host`]). The pods themselves answer on
//! one apps server ([`super::apps`]: health and metrics), which a real
//! Prometheus scrapes when verification is on and the binary is installed.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use super::apps::FakeApps;
use super::discord::FakeDiscord;
use super::generated::{self, SandboxSecrets};
use super::git_host;
use super::github::FakeGithub;
use super::kube::{FakeKube, FakeOptions};
use super::prometheus::SandboxPrometheus;
use super::registry::{start as start_registry, SandboxAuth, SandboxRegistry};
use super::seed::REPLICAS;
use super::slack::FakeSlack;
use crate::config::{Config, GitopsSource, Strategy, Target};

/// The running sandbox servers and the config written for them.
pub struct SandboxServers {
    /// The fake Kubernetes API server.
    pub kube: FakeKube,
    /// The OCI registry.
    pub registry: Arc<SandboxRegistry>,
    /// The fake GitHub: app repositories, pull requests, checks, builds,
    /// deployments, comments and GitOps config repositories.
    pub github: FakeGithub,
    /// The fake Slack Web API, when the base config enables Slack.
    pub slack: Option<FakeSlack>,
    /// The fake Discord, when the base config enables Discord.
    pub discord: Option<FakeDiscord>,
    /// The apps' pods: health and metrics endpoints.
    pub apps: FakeApps,
    /// The Prometheus scraping the apps, when verification is on and the
    /// binary was found.
    pub prometheus: Option<SandboxPrometheus>,
    /// The secrets the fakes accept, also written under the sandbox directory.
    pub secrets: SandboxSecrets,
    /// The directory holding the written config, kubeconfig and secrets.
    pub dir: PathBuf,
    /// The written config file (`DIR/gantry.toml`).
    pub config_path: PathBuf,
    /// That config, loaded and checked like any other.
    pub config: Arc<Config>,
}

/// The line the sandbox prints when verification is on and no Prometheus
/// can run.
pub const PROMETHEUS_MISSING: &str = "sandbox: prometheus not found; install Debian's prometheus package to see metric checks; the staging error-rate check is left out";

/// Post-deploy verification in the written config.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Verification {
    /// None added: the base config's environments as they are.
    #[default]
    Off,
    /// Staging is verified by the apps' health check and, when `prometheus`
    /// names the binary, by an error-rate check on a sandbox Prometheus.
    On {
        /// The `prometheus` binary; `None` leaves the metric check out.
        prometheus: Option<PathBuf>,
    },
}

/// How the sandbox behaves.
#[derive(Debug, Clone)]
pub struct SandboxOptions {
    /// The pace of the simulated controller, builds and syncs.
    pub tick: Duration,
    /// Ticks before a stuck rollout passes its progress deadline.
    pub deadline_ticks: u64,
    /// Leave `[registry]` and the images as the base config has them (a
    /// test pointing them at a real registry); the sandbox's own registry
    /// then holds nothing.
    pub external_registry: bool,
    /// Whether staging's releases are verified after their rollout.
    pub verification: Verification,
}

impl SandboxOptions {
    /// Options with the given tick, a deadline of ten ticks and no
    /// verification.
    pub fn with_tick(tick: Duration) -> SandboxOptions {
        SandboxOptions {
            tick,
            deadline_ticks: 10,
            external_registry: false,
            verification: Verification::Off,
        }
    }

    /// These options with staging verified, on the `prometheus` found on
    /// `PATH` if any: what people running the sandbox get.
    pub fn verified(self) -> SandboxOptions {
        SandboxOptions {
            verification: Verification::On {
                prometheus: super::prometheus::find(),
            },
            ..self
        }
    }
}

/// Starts every sandbox server for the config at `base`, seeds them, and
/// writes `dir/gantry.toml` (the base config pointed at the servers), its
/// kubeconfig and its secrets. Returns once everything answers.
pub async fn start(
    base: &Path,
    dir: &Path,
    options: SandboxOptions,
) -> Result<SandboxServers, String> {
    crate::tls::install_crypto();
    let base_config = crate::config::load(base).map_err(|e| e.to_string())?;
    let base_text = std::fs::read_to_string(base)
        .map_err(|e| format!("cannot read {}: {e}", base.display()))?;
    let secrets = SandboxSecrets::generate();
    let tick = options.tick;
    let registry = Arc::new(
        start_registry(SandboxAuth::Anonymous)
            .await
            .map_err(|e| format!("cannot start the sandbox registry: {e}"))?,
    );
    let kube = FakeKube::start(FakeOptions {
        tick,
        deadline_ticks: options.deadline_ticks,
    })
    .await
    .map_err(|e| format!("cannot start the sandbox Kubernetes API: {e}"))?;
    let github = FakeGithub::start(secrets.github_token.expose())
        .await
        .map_err(|e| format!("cannot start the sandbox GitHub: {e}"))?;
    let slack = match &base_config.platforms().slack {
        Some(_) => Some(
            FakeSlack::start(secrets.slack_bot_token.expose())
                .await
                .map_err(|e| format!("cannot start the sandbox Slack: {e}"))?,
        ),
        None => None,
    };
    let discord = match &base_config.platforms().discord {
        Some(d) => Some(
            FakeDiscord::start(
                secrets.discord_bot_token.expose(),
                d.application_id,
                secrets.discord_key.clone(),
            )
            .await
            .map_err(|e| format!("cannot start the sandbox Discord: {e}"))?,
        ),
        None => None,
    };
    let apps = FakeApps::start(kube.view())
        .await
        .map_err(|e| format!("cannot start the sandbox apps: {e}"))?;
    let publish = (!options.external_registry).then_some(registry.as_ref());
    let seeded = seed(&base_config, &kube, &apps, publish, &github, tick)?;
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let dir = dir
        .canonicalize()
        .map_err(|e| format!("cannot resolve {}: {e}", dir.display()))?;
    let prometheus = match &options.verification {
        Verification::On {
            prometheus: Some(binary),
        } => Some(SandboxPrometheus::start(binary, &dir, apps.addr()).await?),
        _ => None,
    };
    let git = git_repositories(&base_config, &dir.join("git"), &seeded)?;
    let endpoints = generated::Endpoints {
        kubernetes: kube.url().to_owned(),
        registry: (!options.external_registry).then(|| format!("http://{}", registry.host())),
        github: github.url(),
        slack: slack.as_ref().map(FakeSlack::api_url),
        discord: discord.as_ref().map(FakeDiscord::api_url),
        poll: tick.max(Duration::from_millis(10)),
        git,
        apps: Some(apps.url()),
        prometheus: prometheus.as_ref().map(|p| p.url().to_owned()),
    };
    let verify = options.verification != Verification::Off;
    let config_path =
        generated::write(&dir, &base_text, &base_config, &endpoints, &secrets, verify)?;
    let config =
        Arc::new(crate::config::load(&config_path).map_err(|e| {
            format!("the sandbox wrote a config that does not load (a defect): {e}")
        })?);
    // The simulated CI runner and Argo CD; Argo's own Kubernetes client.
    let argo =
        crate::adapters::kube::KubeCluster::for_url(kube.url()).map_err(|e| e.to_string())?;
    git_host::spawn(
        config.clone(),
        github.clone(),
        registry.clone(),
        Arc::new(argo),
        tick,
    );
    Ok(SandboxServers {
        kube,
        registry,
        github,
        slack,
        discord,
        apps,
        prometheus,
        secrets,
        dir,
        config_path,
        config,
    })
}

/// A real bare repository per GitOps environment on plain git, holding
/// the file its sync watches; answers environment → `file://` URL.
fn git_repositories(
    config: &Config,
    dir: &Path,
    seeded: &Seeded,
) -> Result<BTreeMap<String, String>, String> {
    let mut urls = BTreeMap::new();
    for env in config.envs() {
        let Strategy::Gitops(gitops) = &env.strategy else {
            continue;
        };
        if !matches!(gitops.source, GitopsSource::Git(_)) {
            continue;
        }
        let text = git_host::pinned_file(config, env, gitops, &|app| seeded.image(env, app));
        let url =
            super::git_repo::create(dir, env.name.as_str(), &gitops.branch, &gitops.path, &text)?;
        urls.insert(env.name.to_string(), url);
    }
    Ok(urls)
}

/// The images the sandbox starts with, by app name.
struct Seeded {
    /// `main`'s image: what every rolling environment runs.
    main: BTreeMap<String, String>,
    /// `release/1.0`'s image: what GitOps environments run, so that
    /// deploying `main` there changes their config repository.
    release: BTreeMap<String, String>,
}

impl Seeded {
    fn image(&self, env: &crate::config::Environment, app: &crate::config::App) -> String {
        let gitops = matches!(env.strategy, Strategy::Gitops(_));
        gitops
            .then(|| self.release.get(app.name.as_str()))
            .flatten()
            .or_else(|| self.main.get(app.name.as_str()))
            .cloned()
            .unwrap_or_else(|| app.image.clone())
    }
}

/// Seeds GitHub, the registry and the cluster from the base config.
fn seed(
    config: &Config,
    kube: &FakeKube,
    apps: &FakeApps,
    registry: Option<&SandboxRegistry>,
    github: &FakeGithub,
    tick: Duration,
) -> Result<Seeded, String> {
    let refs = git_host::seed_repositories(github, config, tick);
    let mut seeded = Seeded {
        main: BTreeMap::new(),
        release: BTreeMap::new(),
    };
    for app in config.apps() {
        let repo = app.repo.to_string();
        for r in refs.iter().filter(|r| r.repo == repo) {
            let Some(registry) = registry.filter(|_| r.name != "feat-unbuilt") else {
                continue;
            };
            let digest = git_host::publish(registry, app, &r.name, &r.sha)?;
            let image = format!("{}@{digest}", app.image);
            match r.name.as_str() {
                "main" => {
                    seeded.main.insert(app.name.to_string(), image);
                }
                "release/1.0" => {
                    seeded.release.insert(app.name.to_string(), image);
                }
                "feat-broken" => kube.break_image(digest.as_str()),
                "bad-metrics" => apps.mark_faulty(digest.as_str()),
                _ => {}
            }
        }
    }
    for app in config.apps() {
        for env in config.envs() {
            if let Target::Namespace(ns) = &env.target {
                let image = seeded.image(env, app);
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
    git_host::seed_config_repositories(github, config, |env, app| seeded.image(env, app));
    Ok(seeded)
}
