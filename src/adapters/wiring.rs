//! The one place where the engine's ports are built: the real adapters,
//! each configured from its own section of the config, failing closed with
//! the setting named. `serve`, `run`, `demo`, the sandbox and the tests all
//! come through here; the sandbox differs only by the config it writes.

use std::sync::Arc;

use async_trait::async_trait;

use super::discord::DiscordNotifier;
use super::github::{GithubForge, GithubNotifier};
use super::kube::KubeCluster;
use super::notify::ByPlatform;
use super::registry::OciRegistry;
use super::slack::SlackNotifier;
use crate::config::{Config, GitopsSource, Strategy};
use crate::engine::ports::{MessageRef, Notifier, PortError};
use crate::engine::{Conversation, Platform, Ports};

/// The ports, plus the clients that inbound transports share with them.
#[derive(Clone)]
pub struct Wired {
    /// What the engine calls.
    pub ports: Ports,
    /// The Discord REST client (interaction answers, the gateway's address),
    /// when Discord is enabled.
    pub discord: Option<Arc<DiscordNotifier>>,
}

/// Builds the ports for `config`. Must run inside a Tokio runtime: some
/// clients start background work when they are built.
pub fn ports(config: &Config) -> Result<Wired, String> {
    if tokio::runtime::Handle::try_current().is_err() {
        return Err(
            "the adapters are built inside the runtime (a defect: wiring ran outside it)".into(),
        );
    }
    crate::tls::install_crypto();
    check_gitops(config, config.platforms().github.is_some())?;
    let forge = GithubForge::from_config(config)
        .map_err(|e| format!("the Git host: {e}"))?
        .shared();
    let registry = OciRegistry::from_config(config).map_err(|e| format!("the registry: {e}"))?;
    let cluster = KubeCluster::from_config(config);
    let mut notifier = ByPlatform::default()
        .with(Platform::Console, Arc::new(ConsoleNotifier))
        .with(
            Platform::Github,
            Arc::new(GithubNotifier::new(forge.clone())),
        );
    if let Some(slack) = &config.platforms().slack {
        let token = slack
            .bot_token
            .resolve()
            .map_err(|e| format!("platforms.slack.bot_token: {e}"))?;
        let client: Arc<dyn Notifier> = if slack.api_url.starts_with("http://") {
            // Config allows plain http only to loopback (a proxy or a test server).
            Arc::new(SlackNotifier::plain_http(&slack.api_url, &token))
        } else {
            Arc::new(SlackNotifier::https(&slack.api_url, &token)?)
        };
        notifier = notifier.with(Platform::Slack, client);
    }
    let mut discord_rest = None;
    if let Some(discord) = &config.platforms().discord {
        let token = discord
            .bot_token
            .resolve()
            .map_err(|e| format!("platforms.discord.bot_token: {e}"))?;
        let rest = Arc::new(DiscordNotifier::new(
            &discord.api_url,
            &token,
            discord.application_id,
        )?);
        notifier = notifier.with(Platform::Discord, rest.clone());
        discord_rest = Some(rest);
    }
    Ok(Wired {
        ports: Ports {
            forge,
            registry: Arc::new(registry),
            cluster: Arc::new(cluster),
            notifier: Arc::new(notifier),
            prober: Arc::new(
                super::probe::Probes::from_config(config)
                    .map_err(|e| format!("verification: {e}"))?,
            ),
        },
        discord: discord_rest,
    })
}

/// Every GitOps environment has a writer for its transport: the GitHub
/// contents API needs `[platforms.github]`; plain git needs nothing more.
fn check_gitops(config: &Config, github: bool) -> Result<(), String> {
    for env in config.envs() {
        let Strategy::Gitops(gitops) = &env.strategy else {
            continue;
        };
        if matches!(gitops.source, GitopsSource::Github(_)) && !github {
            return Err(format!(
                "environments.{}: strategy = \"gitops\" with transport = \"github\" needs [platforms.github]",
                env.name
            ));
        }
    }
    Ok(())
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
