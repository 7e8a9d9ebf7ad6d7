//! Building the engine's ports from config: the real adapters, each
//! configured from its own section, failing closed with the setting named.

use std::sync::Arc;

use async_trait::async_trait;

use super::discord::DiscordNotifier;
use super::github::{GithubForge, GithubNotifier};
use super::kube::KubeCluster;
use super::notify::ByPlatform;
use super::registry::OciRegistry;
use super::slack::SlackNotifier;
use crate::config::Config;
use crate::engine::ports::{MessageRef, Notifier, PortError};
use crate::engine::{Conversation, Ports};

/// The ports for production: GitHub, the registry, Kubernetes, and a
/// notifier per enabled chat platform (plus the console for `gantry run`).
pub fn real_ports(config: &Config) -> Result<Ports, String> {
    crate::tls::install_crypto();
    let forge =
        Arc::new(GithubForge::from_config(config).map_err(|e| format!("the Git host: {e}"))?);
    let registry = OciRegistry::from_config(config).map_err(|e| format!("the registry: {e}"))?;
    let cluster = KubeCluster::from_config(config);
    let mut notifier = ByPlatform::default()
        .with("console", Arc::new(ConsoleNotifier))
        .with("github", Arc::new(GithubNotifier::new(forge.clone())));
    if let Some(slack) = &config.platforms().slack {
        let token = slack
            .bot_token
            .resolve()
            .map_err(|e| format!("platforms.slack.bot_token: {e}"))?;
        notifier = notifier.with(
            "slack",
            Arc::new(SlackNotifier::https(&slack.api_url, &token)?),
        );
    }
    if let Some(discord) = &config.platforms().discord {
        let token = discord
            .bot_token
            .resolve()
            .map_err(|e| format!("platforms.discord.bot_token: {e}"))?;
        notifier = notifier.with(
            "discord",
            Arc::new(DiscordNotifier::new(
                &discord.api_url,
                &token,
                discord.application_id,
            )?),
        );
    }
    Ok(Ports {
        forge,
        registry: Arc::new(registry),
        cluster: Arc::new(cluster),
        notifier: Arc::new(notifier),
    })
}

/// Prints progress messages on standard output, each edit on its own line.
pub struct ConsoleNotifier;

#[async_trait]
impl Notifier for ConsoleNotifier {
    async fn post(&self, conversation: &Conversation, text: &str) -> Result<MessageRef, PortError> {
        println!("{text}");
        Ok(MessageRef {
            conversation: conversation.clone(),
            id: "console".into(),
        })
    }

    async fn edit(&self, _message: &MessageRef, text: &str) -> Result<(), PortError> {
        println!("  ↳ {text}");
        Ok(())
    }

    async fn react(&self, _message: &MessageRef, emoji: &str) -> Result<(), PortError> {
        println!("  (reacted {emoji})");
        Ok(())
    }
}

/// GitHub as the Git host, including GitOps writes: the forge for refs,
/// builds and deployments, and a GitOps writer over the same client.
pub struct GitHost {
    forge: Arc<GithubForge>,
    gitops: super::github::gitops::GitopsWriter,
}

impl GitHost {
    /// Wraps a forge.
    pub fn new(forge: Arc<GithubForge>) -> GitHost {
        GitHost {
            gitops: super::github::gitops::GitopsWriter::new(Some(forge.clone())),
            forge,
        }
    }
}

#[async_trait]
impl crate::engine::ports::Forge for GitHost {
    async fn resolve(
        &self,
        repo: &str,
        reference: &crate::command::GitRef,
    ) -> Result<crate::names::Sha, PortError> {
        self.forge.resolve(repo, reference).await
    }

    async fn checks_passed(&self, repo: &str, sha: &crate::names::Sha) -> Result<bool, PortError> {
        self.forge.checks_passed(repo, sha).await
    }

    async fn start_build(
        &self,
        repo: &str,
        workflow: &str,
        reference: &str,
        inputs: &std::collections::BTreeMap<String, String>,
    ) -> Result<crate::engine::ports::BuildRun, PortError> {
        self.forge
            .start_build(repo, workflow, reference, inputs)
            .await
    }

    async fn follow_build(
        &self,
        repo: &str,
        run: &crate::engine::ports::BuildRun,
    ) -> Result<crate::engine::ports::BuildOutcome, PortError> {
        self.forge.follow_build(repo, run).await
    }

    async fn create_deployment(
        &self,
        repo: &str,
        env: &str,
        sha: &crate::names::Sha,
        request: crate::names::RequestId,
    ) -> Result<u64, PortError> {
        self.forge.create_deployment(repo, env, sha, request).await
    }

    async fn set_deployment_state(
        &self,
        repo: &str,
        deployment: u64,
        state: crate::engine::ports::DeploymentState,
        log_url: &str,
    ) -> Result<(), PortError> {
        self.forge
            .set_deployment_state(repo, deployment, state, log_url)
            .await
    }

    async fn commit_image(
        &self,
        gitops: &crate::config::Gitops,
        app: &crate::config::App,
        image: &str,
        message: &str,
        _workload: &crate::engine::ports::Workload,
    ) -> Result<crate::engine::ports::GitopsCommit, PortError> {
        let change = self
            .gitops
            .commit_image(gitops, app, image, message)
            .await?;
        Ok(crate::engine::ports::GitopsCommit {
            commit: change.commit,
            url: change.url,
        })
    }

    async fn comment(&self, repo: &str, number: u64, body: &str) -> Result<u64, PortError> {
        self.forge.comment(repo, number, body).await
    }

    async fn edit_comment(&self, repo: &str, comment: u64, body: &str) -> Result<(), PortError> {
        self.forge.edit_comment(repo, comment, body).await
    }

    async fn ping(&self, repo: &str) -> Result<(), PortError> {
        self.forge.ping(repo).await
    }
}
