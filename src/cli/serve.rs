//! `gantry serve`: the HTTP server with every inbound route.

use std::net::SocketAddr;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use sha2::{Digest as _, Sha256};

use super::{fail, grammar, ConfigArg, DataArg};
use crate::adapters::discord::gateway::GatewaySettings;
use crate::adapters::discord::DiscordNotifier;
use crate::adapters::slack::socket::{SocketMode, SocketSettings};
use crate::config::{Config, Secret};
use crate::engine::{system_clock, Engine, Ports};
use crate::sandbox::stack::{SandboxCredentials, SandboxDiscord, SandboxStack};
use crate::server::{router, DiscordInbound, GithubInbound, Metrics, ServerState, SlackInbound};
use crate::store::Store;

/// File in the data directory holding the secrets the sandbox generated.
pub const SANDBOX_SECRETS_FILE: &str = "sandbox-secrets.env";

/// Arguments of `gantry serve`.
#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    #[command(flatten)]
    config: ConfigArg,
    #[command(flatten)]
    data: DataArg,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8080", value_name = "ADDR")]
    listen: SocketAddr,
    /// Wire every port to the sandbox (Kubernetes API, registry, GitHub, Slack
    /// and Discord servers on 127.0.0.1) instead of the real systems in
    /// config; secrets that are not set are generated and written to
    /// DIR/sandbox-secrets.env for `gantry chat`.
    #[arg(long)]
    sandbox: bool,
    /// Milliseconds per simulated rollout step in the sandbox.
    #[arg(long, default_value_t = 300, value_name = "MS")]
    tick_ms: u64,
}

/// Starts the server and runs until SIGTERM or Ctrl-C.
pub fn run(args: &ServeArgs) -> ExitCode {
    let grammar = match grammar() {
        Ok(g) => g,
        Err(code) => return code,
    };
    let config = match crate::config::load(&args.config.config) {
        Ok(c) => Arc::new(c),
        Err(e) => return fail(e),
    };
    if let Err(e) = std::fs::create_dir_all(&args.data.data) {
        return fail(format!("cannot create {}: {e}", args.data.data.display()));
    }
    if args.sandbox {
        if let Err(e) = sandbox_secrets(&config, &args.data.data) {
            return fail(e);
        }
    }
    let slack = match slack_inbound(&config) {
        Ok(s) => s,
        Err(e) => return fail(e),
    };
    let mut discord = match discord_inbound(&config) {
        Ok(d) => d,
        Err(e) => return fail(e),
    };
    let github = match github_inbound(&config) {
        Ok(g) => g,
        Err(e) => return fail(e),
    };
    let store = match Store::open(&args.data.data) {
        Ok(s) => s,
        Err(e) => return fail(e),
    };
    let clock = system_clock();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => return fail(format!("cannot start the runtime: {e}")),
    };
    let served = runtime.block_on(async {
        let (ports, discord_rest, _sandbox) = if args.sandbox {
            let (ports, rest, stack) = sandbox_ports(&config, args).await?;
            (ports, rest, Some(stack))
        } else {
            let ports = crate::adapters::wiring::real_ports(&config)?;
            let rest = match &config.platforms().discord {
                Some(d) => {
                    let token = d
                        .bot_token
                        .resolve()
                        .map_err(|e| format!("platforms.discord.bot_token: {e}"))?;
                    Some(Arc::new(DiscordNotifier::new(
                        &d.api_url,
                        &token,
                        d.application_id,
                    )?))
                }
                None => None,
            };
            if let (Some(rest), Some(d)) = (&rest, &config.platforms().discord) {
                // Registering `/gantry` per guild is idempotent; Discord being
                // unreachable now must not keep Slack and GitHub down.
                if let Err(e) = rest.register_commands(&d.guild_ids).await {
                    eprintln!("warning: cannot register the Discord /gantry command yet: {e}");
                }
            }
            (ports, rest, None)
        };
        let gateway = gateway_settings(&config, discord_rest.as_deref())?;
        if let Some(discord) = &mut discord {
            discord.rest = discord_rest;
        }
        // The 👀 on a PR comment goes out the way the engine's GitHub messages do.
        let github = github.map(|(secrets, review_approvals)| GithubInbound {
            secrets,
            review_approvals,
            notifier: ports.notifier.clone(),
        });
        let engine = Engine::new(
            config.clone(),
            Arc::new(grammar),
            store,
            ports,
            clock.clone(),
        );
        if let Some(gateway) = gateway {
            // Reactions reach a bot only over the gateway.
            tokio::spawn(gateway.run(engine.clone()));
        }
        if let Some(socket) = socket_settings(&config, args.sandbox)? {
            // Slack delivers over a connection Gantry opens: no public URL.
            tokio::spawn(SocketMode::run(engine.clone(), socket));
        }
        let recovered = engine.recover().await.map_err(|e| e.to_string())?;
        eprintln!(
            "recovered: {} waiting, {} interrupted, {} expired",
            recovered.resumed.len(),
            recovered.interrupted.len(),
            recovered.expired.len()
        );
        let listener = tokio::net::TcpListener::bind(args.listen)
            .await
            .map_err(|e| format!("cannot listen on {}: {e}", args.listen))?;
        let address = listener.local_addr().map_err(|e| e.to_string())?;
        eprintln!("gantry listening on http://{address}");
        let sweeper = engine.clone();
        tokio::spawn(async move {
            // Preview namespaces whose TTL passed are deleted once a minute.
            let mut every = tokio::time::interval(Duration::from_secs(60));
            loop {
                every.tick().await;
                if let Ok(gone) = sweeper.sweep_previews().await {
                    for namespace in gone {
                        eprintln!("preview {namespace} expired and was deleted");
                    }
                }
            }
        });
        let state = Arc::new(ServerState {
            engine,
            slack,
            discord,
            github,
            metrics: Metrics::default(),
            clock,
        });
        axum::serve(listener, router(state))
            .with_graceful_shutdown(shutdown())
            .await
            .map_err(|e| format!("server failed: {e}"))
    });
    match served {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(e),
    }
}

async fn shutdown() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        if let Ok(mut signal) =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        {
            signal.recv().await;
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    eprintln!("shutting down: finishing acknowledgements; requests in flight resume as interrupted on the next start");
}

/// The sandbox: fake Kubernetes, GitHub, Slack and Discord APIs and an OCI
/// registry on 127.0.0.1, reached by the real adapters with the secrets from
/// the environment (generated when unset). Their addresses are written to
/// DIR/sandbox-endpoints.json for `gantry chat`. They start fresh each time.
async fn sandbox_ports(
    config: &Arc<Config>,
    args: &ServeArgs,
) -> Result<(Ports, Option<Arc<DiscordNotifier>>, SandboxStack), String> {
    let credentials = sandbox_credentials(config)?;
    let stack =
        crate::sandbox::stack::start(config, Duration::from_millis(args.tick_ms), &credentials)
            .await?;
    let slack_url = stack.slack.as_ref().map(|s| format!("http://{}", s.addr));
    eprintln!(
        "sandbox: Kubernetes API at {}, registry at {}, GitHub API at {}",
        stack.kube.url(),
        stack.registry.host(),
        stack.github.url()
    );
    if let Some(slack) = &slack_url {
        eprintln!("sandbox: Slack Web API at {slack}");
    }
    if let Some(discord) = &stack.discord {
        eprintln!("sandbox: Discord REST API at {}", discord.api_url());
    }
    let endpoints = serde_json::json!({
        "slack": slack_url,
        "kubernetes": stack.kube.url(),
        "registry": stack.registry.host(),
        "github": stack.github.url(),
    });
    let path = args.data.data.join(super::chat::ENDPOINTS_FILE);
    std::fs::write(&path, endpoints.to_string())
        .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    Ok((stack.ports.clone(), stack.discord_rest.clone(), stack))
}

/// The credentials the sandbox's fakes accept: the configured secrets,
/// which [`sandbox_secrets`] generated when they were unset.
fn sandbox_credentials(config: &Config) -> Result<SandboxCredentials, String> {
    let github_token = match config.platforms().github.as_ref().map(|g| &g.auth) {
        Some(crate::config::GithubAuth::Token(token)) => token
            .resolve()
            .map_err(|e| format!("platforms.github.token: {e}"))?,
        // The sandbox's GitHub accepts a token; App keys are for real GitHub.
        _ => Secret::new("sandbox-github-token".into()),
    };
    let slack_token = match &config.platforms().slack {
        Some(slack) => Some(
            slack
                .bot_token
                .resolve()
                .map_err(|e| format!("platforms.slack.bot_token: {e}"))?,
        ),
        None => None,
    };
    let discord = match &config.platforms().discord {
        Some(discord) => {
            let token = discord
                .bot_token
                .resolve()
                .map_err(|e| format!("platforms.discord.bot_token: {e}"))?;
            let key = std::env::var(crate::sandbox::discord::SIGNING_KEY_VAR)
                .ok()
                .and_then(|k| crate::sandbox::discord::signing_key(&k))
                .unwrap_or_else(|| {
                    let seed = format!("{}:{:?}", std::process::id(), std::time::SystemTime::now());
                    ed25519_dalek::SigningKey::from_bytes(&Sha256::digest(seed.as_bytes()).into())
                });
            Some(SandboxDiscord {
                token,
                application_id: discord.application_id,
                guild_ids: discord.guild_ids.clone(),
                key,
            })
        }
        None => None,
    };
    Ok(SandboxCredentials {
        github_token,
        slack_token,
        discord,
    })
}

/// The GitHub webhook secrets (current, then previous) and whether reviews
/// approve, or why Gantry must not start.
fn github_inbound(config: &Config) -> Result<Option<(Vec<Secret>, bool)>, String> {
    let Some(github) = &config.platforms().github else {
        return Ok(None);
    };
    let mut secrets = vec![github
        .webhook_secret
        .resolve()
        .map_err(|e| format!("platforms.github.webhook_secret: {e}"))?];
    if let Some(previous) = &github.webhook_secret_previous {
        secrets.push(
            previous
                .resolve()
                .map_err(|e| format!("platforms.github.webhook_secret_previous: {e}"))?,
        );
    }
    Ok(Some((secrets, github.review_approvals)))
}

/// The Socket Mode client's settings, when Slack has `socket_mode = true`
/// (outside the sandbox, whose chat reaches the HTTP routes).
fn socket_settings(config: &Config, sandbox: bool) -> Result<Option<SocketSettings>, String> {
    let Some(slack) = &config.platforms().slack else {
        return Ok(None);
    };
    let Some(token) = &slack.socket_mode_token else {
        return Ok(None);
    };
    if sandbox {
        eprintln!("sandbox: Slack Socket Mode is not used; chat reaches the HTTP routes");
        return Ok(None);
    }
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

/// The Slack routes' secrets, or why Gantry must not start.
fn slack_inbound(config: &Config) -> Result<Option<SlackInbound>, String> {
    let Some(slack) = &config.platforms().slack else {
        return Ok(None);
    };
    let mut secrets = vec![slack
        .signing_secret
        .resolve()
        .map_err(|e| format!("platforms.slack.signing_secret: {e}"))?];
    if let Some(previous) = &slack.signing_secret_previous {
        secrets.push(
            previous
                .resolve()
                .map_err(|e| format!("platforms.slack.signing_secret_previous: {e}"))?,
        );
    }
    Ok(Some(SlackInbound {
        secrets,
        team_ids: slack.team_ids.clone(),
        approve_reaction: slack.approve_reaction.clone(),
        deny_reaction: slack.deny_reaction.clone(),
    }))
}

/// In the sandbox, generates every secret an enabled platform needs but the
/// environment lacks, exports it to this process and writes it (mode 0600)
/// to the data directory, naming — never printing — what it generated.
fn sandbox_secrets(config: &Config, data: &Path) -> Result<(), String> {
    let mut lines = Vec::new();
    for (key, reference) in config.required_secrets() {
        if reference.resolve().is_ok() {
            continue;
        }
        let crate::config::SecretRef::Env(name) = reference else {
            return Err(format!("{key}: {} is not readable", reference.describe()));
        };
        let seed = format!(
            "{name}:{}:{:?}",
            std::process::id(),
            std::time::SystemTime::now()
        );
        let mut value = Secret::new(hex::encode(Sha256::digest(seed.as_bytes())));
        if key == "platforms.discord.public_key" {
            // Discord's is a public key: the random value becomes the
            // signing key (for the sandbox's Discord) and its public half
            // the configured key.
            let var = crate::sandbox::discord::SIGNING_KEY_VAR;
            let signing = crate::sandbox::discord::signing_key(value.expose())
                .ok_or("cannot derive the sandbox Discord key")?;
            std::env::set_var(var, value.expose());
            lines.push(format!("{var}={}", value.expose()));
            value = Secret::new(hex::encode(signing.verifying_key().to_bytes()));
        }
        // Set before any other thread exists: the runtime starts afterwards.
        std::env::set_var(name, value.expose());
        lines.push(format!("{name}={}", value.expose()));
        eprintln!(
            "sandbox: generated {name} ({key}); it is in {}",
            data.join(SANDBOX_SECRETS_FILE).display()
        );
    }
    if lines.is_empty() {
        return Ok(());
    }
    let path = data.join(SANDBOX_SECRETS_FILE);
    write_private(&path, &(lines.join("\n") + "\n"))
        .map_err(|e| format!("cannot write {}: {e}", path.display()))
}

fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options.open(path)?.write_all(text.as_bytes())
}

/// The Discord gateway client's settings, when Discord is enabled: the
/// REST client's base URL (Discord's, or the sandbox's fake) and the token.
fn gateway_settings(
    config: &Config,
    rest: Option<&DiscordNotifier>,
) -> Result<Option<GatewaySettings>, String> {
    let (Some(discord), Some(rest)) = (&config.platforms().discord, rest) else {
        return Ok(None);
    };
    let token = discord
        .bot_token
        .resolve()
        .map_err(|e| format!("platforms.discord.bot_token: {e}"))?;
    Ok(Some(GatewaySettings {
        api_url: rest.api_url().to_owned(),
        token,
        guild_ids: discord.guild_ids.clone(),
        approve_emoji: discord.approve_emoji.clone(),
        deny_emoji: discord.deny_emoji.clone(),
    }))
}

/// The Discord route's key, or why Gantry must not start. The REST client
/// that edits interaction responses is added once the runtime runs.
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
        application_id: discord.application_id,
        guild_ids: discord.guild_ids.clone(),
        rest: None,
    }))
}
