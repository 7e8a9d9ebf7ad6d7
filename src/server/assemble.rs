//! Putting a running Gantry together from a config: the inbound routes'
//! secrets, the ports from the one wiring, the engine, and the socket
//! transports. `gantry serve`, `gantry demo` and the tests assemble
//! through here, so what they run is what production runs.

use std::sync::Arc;

use crate::adapters::wiring::{self, Wired};
use crate::command::Grammar;
use crate::config::{Config, Secret, SecretRef};
use crate::engine::{Clock, Engine};
use crate::server::{DiscordInbound, GithubInbound, Metrics, ServerState, SlackInbound};
use crate::sockets::discord::GatewaySettings;
use crate::sockets::slack::{SocketMode, SocketSettings};
use crate::store::Store;

/// A Gantry ready to serve.
pub struct Assembled {
    /// The engine.
    pub engine: Engine,
    /// The HTTP routes' state.
    pub state: Arc<ServerState>,
    /// The ports and shared clients.
    pub wired: Wired,
}

/// Fails, naming the setting, when a secret an enabled platform needs
/// cannot be read. Run before anything else is started.
pub fn require_secrets(config: &Config) -> Result<(), String> {
    for (key, reference) in config.required_secrets() {
        reference.resolve().map_err(|e| format!("{key}: {e}"))?;
    }
    Ok(())
}

/// Builds everything from `config` and starts the socket transports (the
/// Discord gateway, Slack Socket Mode) when configured. Must run inside
/// the runtime.
pub async fn assemble(
    config: Arc<Config>,
    grammar: Arc<Grammar>,
    store: Store,
    clock: Clock,
) -> Result<Assembled, String> {
    require_secrets(&config)?;
    let slack = slack_inbound(&config)?;
    let mut discord = discord_inbound(&config)?;
    let github = github_inbound(&config)?;
    let wired = wiring::ports(&config)?;
    if let (Some(rest), Some(d)) = (&wired.discord, &config.platforms().discord) {
        // Registering `/gantry` per guild is idempotent; Discord being
        // unreachable now must not keep Slack and GitHub down.
        if let Err(e) = rest.register_commands(&d.guild_ids).await {
            tracing::warn!(error = %e, "cannot register the Discord /gantry command yet");
        }
    }
    if let Some(discord) = &mut discord {
        discord.rest = wired.discord.clone();
    }
    let github = github.map(|(secrets, review_approvals)| GithubInbound {
        secrets,
        settings: crate::inbound::github::Settings { review_approvals },
        // The 👀 on a PR comment goes out the way the engine's GitHub messages do.
        notifier: wired.ports.notifier.clone(),
    });
    let engine = Engine::new(
        config.clone(),
        grammar,
        store,
        wired.ports.clone(),
        clock.clone(),
    );
    let gateway = gateway_settings(&config, &wired)?;
    let socket = socket_settings(&config)?;
    let state = Arc::new(ServerState {
        front: crate::inbound::Front::start(engine.clone()),
        slack,
        discord,
        github,
        metrics: Metrics::default(),
        clock,
    });
    if let Some(gateway) = gateway {
        // Reactions reach a bot only over the gateway.
        tokio::spawn(gateway.run(state.clone()));
    }
    if let Some(socket) = socket {
        // Slack delivers over a connection Gantry opens: no public URL.
        // Its envelopes share the routes' metrics and clock.
        tokio::spawn(SocketMode::serve(state.clone(), socket));
    }
    Ok(Assembled {
        engine,
        state,
        wired,
    })
}

fn resolve_all(
    key: &str,
    current: &SecretRef,
    previous: Option<&SecretRef>,
) -> Result<Vec<Secret>, String> {
    let mut secrets = vec![current.resolve().map_err(|e| format!("{key}: {e}"))?];
    if let Some(previous) = previous {
        secrets.push(
            previous
                .resolve()
                .map_err(|e| format!("{key}_previous: {e}"))?,
        );
    }
    Ok(secrets)
}

/// The GitHub webhook secrets (current, then previous) and whether reviews
/// approve, or why Gantry must not start.
fn github_inbound(config: &Config) -> Result<Option<(Vec<Secret>, bool)>, String> {
    let Some(github) = &config.platforms().github else {
        return Ok(None);
    };
    let secrets = resolve_all(
        "platforms.github.webhook_secret",
        &github.webhook_secret,
        github.webhook_secret_previous.as_ref(),
    )?;
    Ok(Some((secrets, github.review_approvals)))
}

/// The Slack routes' secrets, or why Gantry must not start.
fn slack_inbound(config: &Config) -> Result<Option<SlackInbound>, String> {
    let Some(slack) = &config.platforms().slack else {
        return Ok(None);
    };
    let secrets = resolve_all(
        "platforms.slack.signing_secret",
        &slack.signing_secret,
        slack.signing_secret_previous.as_ref(),
    )?;
    Ok(Some(SlackInbound {
        secrets,
        settings: crate::inbound::slack::Settings {
            team_ids: slack.team_ids.clone(),
            approve_reaction: slack.approve_reaction.clone(),
            deny_reaction: slack.deny_reaction.clone(),
        },
    }))
}

/// The Discord route's key, or why Gantry must not start. The REST client
/// that edits interaction responses comes from the wiring.
fn discord_inbound(config: &Config) -> Result<Option<DiscordInbound>, String> {
    let Some(discord) = &config.platforms().discord else {
        return Ok(None);
    };
    let key = discord
        .public_key
        .resolve()
        .map_err(|e| format!("platforms.discord.public_key: {e}"))?;
    let public_key = crate::server::verify::discord_key(key.expose())
        .map_err(|e| format!("platforms.discord.public_key: {e}"))?;
    Ok(Some(DiscordInbound {
        public_key,
        settings: crate::inbound::discord::Settings {
            application_id: discord.application_id,
            guild_ids: discord.guild_ids.clone(),
            approve_emoji: discord.approve_emoji.clone(),
            deny_emoji: discord.deny_emoji.clone(),
        },
        rest: None,
    }))
}

/// The Socket Mode client's settings, when Slack has `socket_mode = true`.
fn socket_settings(config: &Config) -> Result<Option<SocketSettings>, String> {
    let Some(slack) = &config.platforms().slack else {
        return Ok(None);
    };
    let Some(token) = &slack.socket_mode_token else {
        return Ok(None);
    };
    let app_token = token
        .resolve()
        .map_err(|e| format!("platforms.slack.app_token: {e}"))?;
    Ok(Some(SocketSettings {
        api_url: slack.api_url.clone(),
        app_token,
        team_ids: slack.team_ids.clone(),
        approve_reaction: slack.approve_reaction.clone(),
        deny_reaction: slack.deny_reaction.clone(),
    }))
}

/// The Discord gateway client's settings, when Discord is enabled.
fn gateway_settings(config: &Config, wired: &Wired) -> Result<Option<GatewaySettings>, String> {
    let (Some(discord), Some(rest)) = (&config.platforms().discord, &wired.discord) else {
        return Ok(None);
    };
    let token = discord
        .bot_token
        .resolve()
        .map_err(|e| format!("platforms.discord.bot_token: {e}"))?;
    Ok(Some(GatewaySettings {
        api_url: rest.api_url().to_owned(),
        token,
        application_id: discord.application_id,
        guild_ids: discord.guild_ids.clone(),
        approve_emoji: discord.approve_emoji.clone(),
        deny_emoji: discord.deny_emoji.clone(),
    }))
}
