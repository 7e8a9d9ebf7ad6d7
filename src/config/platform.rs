//! Checked platform and registry settings, and the secrets they need.

use std::path::PathBuf;
use std::time::Duration;

use super::model::Config;
use super::secret::SecretRef;

/// The chat and forge platforms that are enabled.
#[derive(Debug, Clone, Default)]
pub struct Platforms {
    /// Slack, when enabled.
    pub slack: Option<Slack>,
    /// Discord, when enabled.
    pub discord: Option<Discord>,
    /// GitHub, when enabled.
    pub github: Option<Github>,
}

/// Slack settings.
#[derive(Debug, Clone)]
pub struct Slack {
    /// Accepted workspace ids.
    pub team_ids: Vec<String>,
    /// Web API base URL.
    pub api_url: String,
    /// Request signing secret.
    pub signing_secret: SecretRef,
    /// Previous signing secret, during rotation.
    pub signing_secret_previous: Option<SecretRef>,
    /// Bot token.
    pub bot_token: SecretRef,
    /// App-level token when Socket Mode is on; `None` means Events over HTTP.
    pub socket_mode_token: Option<SecretRef>,
    /// Reaction name (without colons) that approves.
    pub approve_reaction: String,
    /// Reaction name (without colons) that denies.
    pub deny_reaction: String,
}

/// Discord settings.
#[derive(Debug, Clone)]
pub struct Discord {
    /// Application id.
    pub application_id: u64,
    /// Guilds whose commands are accepted.
    pub guild_ids: Vec<u64>,
    /// REST base URL.
    pub api_url: String,
    /// Interaction signature public key.
    pub public_key: SecretRef,
    /// Bot token.
    pub bot_token: SecretRef,
    /// Emoji that approves.
    pub approve_emoji: String,
    /// Emoji that denies.
    pub deny_emoji: String,
}

/// GitHub settings.
#[derive(Debug, Clone)]
pub struct Github {
    /// REST base URL.
    pub api_url: String,
    /// Webhook secret.
    pub webhook_secret: SecretRef,
    /// Previous webhook secret, during rotation.
    pub webhook_secret_previous: Option<SecretRef>,
    /// How Gantry authenticates to the API.
    pub auth: GithubAuth,
    /// Whether approving PR reviews count as approvals.
    pub review_approvals: bool,
    /// How often build runs and check runs are polled.
    pub poll_interval: Duration,
}

/// GitHub API credentials.
#[derive(Debug, Clone)]
pub enum GithubAuth {
    /// A personal or fine-grained token.
    Token(SecretRef),
    /// A GitHub App.
    App {
        /// The App id.
        app_id: u64,
        /// The App's PEM private key.
        private_key: SecretRef,
    },
}

/// Container registry access.
#[derive(Debug, Clone)]
pub struct Registry {
    /// User name and password, when not anonymous.
    pub credentials: Option<(SecretRef, SecretRef)>,
    /// Docker `config.json` to read auths from.
    pub docker_config: Option<PathBuf>,
    /// Hosts spoken to over plain HTTP.
    pub plain_http_hosts: Vec<String>,
    /// Where to reach a registry host (host → base URL), e.g. a mirror or
    /// a port-forward; images keep their names.
    pub endpoints: std::collections::BTreeMap<String, String>,
    /// Per-request timeout.
    pub timeout: Duration,
}

impl Config {
    /// Every secret that enabled platforms and the registry need, by dotted key.
    pub fn required_secrets<'s>(&'s self) -> Vec<(String, &'s SecretRef)> {
        let mut out: Vec<(String, &SecretRef)> = Vec::new();
        let mut add = |key: &str, secret: Option<&'s SecretRef>| {
            if let Some(s) = secret {
                out.push((key.to_owned(), s));
            }
        };
        if let Some(s) = &self.platforms.slack {
            add("platforms.slack.signing_secret", Some(&s.signing_secret));
            add(
                "platforms.slack.signing_secret_previous",
                s.signing_secret_previous.as_ref(),
            );
            add("platforms.slack.bot_token", Some(&s.bot_token));
            add("platforms.slack.app_token", s.socket_mode_token.as_ref());
        }
        if let Some(d) = &self.platforms.discord {
            add("platforms.discord.public_key", Some(&d.public_key));
            add("platforms.discord.bot_token", Some(&d.bot_token));
        }
        if let Some(g) = &self.platforms.github {
            add("platforms.github.webhook_secret", Some(&g.webhook_secret));
            add(
                "platforms.github.webhook_secret_previous",
                g.webhook_secret_previous.as_ref(),
            );
            match &g.auth {
                GithubAuth::Token(t) => add("platforms.github.token", Some(t)),
                GithubAuth::App { private_key, .. } => {
                    add("platforms.github.private_key", Some(private_key))
                }
            }
        }
        for env in &self.envs {
            if let crate::config::Strategy::Gitops(g) = &env.strategy {
                add(
                    &format!("environments.{}.gitops.token", env.name),
                    g.token.as_ref(),
                );
            }
        }
        if let Some((user, password)) = &self.registry.credentials {
            add("registry.username", Some(user));
            add("registry.password", Some(password));
        }
        for (name, p) in &self.prometheus {
            add(
                &format!("prometheus.{name}.bearer_token"),
                p.bearer_token.as_ref(),
            );
        }
        out
    }
}
