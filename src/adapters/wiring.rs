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
