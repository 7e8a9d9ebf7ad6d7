//! What the sandbox hands to Gantry: a config file (the base config with
//! every outside URL pointed at a sandbox server), a kubeconfig, and the
//! generated secrets as files (mode 0600) that the config references. With
//! these, `gantry serve --config DIR/gantry.toml` is the production code
//! path against the sandbox.

use std::path::{Path, PathBuf};
use std::time::Duration;

use ed25519_dalek::SigningKey;
use sha2::{Digest as _, Sha256};
use toml::{Table, Value};

use crate::config::{Config, Secret};

/// The config file the sandbox writes in its directory.
pub const CONFIG_FILE: &str = "gantry.toml";
/// The kubeconfig file, beside it.
pub const KUBECONFIG_FILE: &str = "kubeconfig";
/// The secrets as `NAME=value` lines, for tools and shells (`set -a; . FILE`).
pub const SECRETS_ENV_FILE: &str = "secrets.env";
/// The servers' addresses, as JSON.
pub const ENDPOINTS_FILE: &str = "endpoints.json";
/// The sub-directory of a data directory where the sandbox lives.
pub const SANDBOX_DIR: &str = "sandbox";

/// The secrets the sandbox's fakes accept, generated afresh at each start.
#[derive(Clone)]
pub struct SandboxSecrets {
    /// GitHub API token.
    pub github_token: Secret,
    /// GitHub webhook secret (the fake signs its webhooks with it).
    pub github_webhook_secret: Secret,
    /// Slack request signing secret.
    pub slack_signing_secret: Secret,
    /// Slack bot token.
    pub slack_bot_token: Secret,
    /// Discord bot token.
    pub discord_bot_token: Secret,
    /// The key the fake Discord signs interactions with; its public half is
    /// the configured `public_key`.
    pub discord_key: SigningKey,
}

impl SandboxSecrets {
    /// Fresh random-looking secrets (SHA-256 of the process, time and name).
    pub fn generate() -> SandboxSecrets {
        let seed = format!("{}:{:?}", std::process::id(), std::time::SystemTime::now());
        let make = |name: &str| hex::encode(Sha256::digest(format!("{seed}:{name}").as_bytes()));
        SandboxSecrets {
            github_token: Secret::new(format!("ghp_{}", &make("github")[..36])),
            github_webhook_secret: Secret::new(make("github-webhook")),
            slack_signing_secret: Secret::new(make("slack-signing")),
            slack_bot_token: Secret::new(format!("xoxb-{}", &make("slack-bot")[..32])),
            discord_bot_token: Secret::new(make("discord-bot")),
            discord_key: SigningKey::from_bytes(&Sha256::digest(make("discord-key")).into()),
        }
    }

    /// (file name, environment variable, value) of each secret.
    fn entries(&self) -> Vec<(&'static str, &'static str, String)> {
        vec![
            (
                "github-token",
                "GITHUB_TOKEN",
                self.github_token.expose().to_owned(),
            ),
            (
                "github-webhook-secret",
                "GITHUB_WEBHOOK_SECRET",
                self.github_webhook_secret.expose().to_owned(),
            ),
            (
                "slack-signing-secret",
                "SLACK_SIGNING_SECRET",
                self.slack_signing_secret.expose().to_owned(),
            ),
            (
                "slack-bot-token",
                "SLACK_BOT_TOKEN",
                self.slack_bot_token.expose().to_owned(),
            ),
            (
                "discord-bot-token",
                "DISCORD_BOT_TOKEN",
                self.discord_bot_token.expose().to_owned(),
            ),
            (
                "discord-public-key",
                "DISCORD_PUBLIC_KEY",
                hex::encode(self.discord_key.verifying_key().to_bytes()),
            ),
            (
                "discord-signing-key",
                super::discord::SIGNING_KEY_VAR,
                hex::encode(self.discord_key.to_bytes()),
            ),
        ]
    }
}

/// Where the sandbox's servers listen.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Endpoints {
    /// The Kubernetes API server.
    pub kubernetes: String,
    /// The OCI registry's base URL; `None` when the base config's registry is kept.
    pub registry: Option<String>,
    /// The GitHub REST API.
    pub github: String,
    /// The Slack Web API, when Slack is enabled.
    pub slack: Option<String>,
    /// The Discord REST API, when Discord is enabled.
    pub discord: Option<String>,
    /// How often GitHub is polled for builds and checks.
    #[serde(with = "humantime_serde_like")]
    pub poll: Duration,
    /// The plain-git config repositories, by environment.
    #[serde(default)]
    pub git: std::collections::BTreeMap<String, String>,
    /// The apps' health and metrics server.
    #[serde(default)]
    pub apps: Option<String>,
    /// The sandbox Prometheus, when one runs.
    #[serde(default)]
    pub prometheus: Option<String>,
}

/// Durations in the endpoints file as humantime text.
mod humantime_serde_like {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&humantime::format_duration(*d).to_string())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let text = String::deserialize(d)?;
        humantime::parse_duration(&text).map_err(serde::de::Error::custom)
    }
}

/// Reads the endpoints a sandbox wrote in `dir`.
pub fn read_endpoints(dir: &Path) -> Result<Endpoints, String> {
    let path = dir.join(ENDPOINTS_FILE);
    let text = std::fs::read_to_string(&path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    serde_json::from_str(&text)
        .map_err(|e| format!("{} is not a sandbox endpoints file: {e}", path.display()))
}

/// Writes the config, kubeconfig, secrets and endpoints into `dir`
/// (absolute) and answers the config's path; with `verify`, staging's
/// releases are verified against the sandbox's apps (see [`super::verification`]).
pub fn write(
    dir: &Path,
    base_text: &str,
    base: &Config,
    endpoints: &Endpoints,
    secrets: &SandboxSecrets,
    verify: bool,
) -> Result<PathBuf, String> {
    let secrets_dir = dir.join("secrets");
    std::fs::create_dir_all(&secrets_dir)
        .map_err(|e| format!("cannot create {}: {e}", secrets_dir.display()))?;
    let mut env_lines = Vec::new();
    for (file, var, value) in secrets.entries() {
        let path = secrets_dir.join(file);
        write_private(&path, &value)?;
        env_lines.push(format!("{var}={value}"));
    }
    write_private(&dir.join(SECRETS_ENV_FILE), &(env_lines.join("\n") + "\n"))?;
    let kubeconfig = dir.join(KUBECONFIG_FILE);
    write_file(&kubeconfig, &kubeconfig_text(base, &endpoints.kubernetes))?;
    let mut doc: Table = toml::from_str(base_text).map_err(|e| e.to_string())?;
    point_at_sandbox(&mut doc, base, endpoints, &secrets_dir, &kubeconfig);
    if verify {
        super::verification::add(&mut doc, base, endpoints);
    }
    let text = format!(
        "# Written by the Gantry sandbox: {} pointed at the sandbox servers.\n\
         # Secrets are files in {}; they change at every sandbox start.\n\n{}",
        base.path().display(),
        secrets_dir.display(),
        toml::to_string(&doc).map_err(|e| e.to_string())?
    );
    let path = dir.join(CONFIG_FILE);
    write_file(&path, &text)?;
    let json = serde_json::to_string_pretty(endpoints).map_err(|e| e.to_string())?;
    write_file(&dir.join(ENDPOINTS_FILE), &json)?;
    Ok(path)
}

fn point_at_sandbox(
    doc: &mut Table,
    base: &Config,
    endpoints: &Endpoints,
    secrets: &Path,
    kubeconfig: &Path,
) {
    let file = |name: &str| {
        let mut t = Table::new();
        t.insert(
            "file".into(),
            Value::String(secrets.join(name).display().to_string()),
        );
        Value::Table(t)
    };
    if let Some(github) = section(doc, &["platforms", "github"]) {
        github.insert("api_url".into(), endpoints.github.clone().into());
        github.insert("token".into(), file("github-token"));
        github.insert("webhook_secret".into(), file("github-webhook-secret"));
        github.insert(
            "poll_interval".into(),
            humantime::format_duration(endpoints.poll)
                .to_string()
                .into(),
        );
        for key in ["app_id", "private_key", "webhook_secret_previous"] {
            github.remove(key);
        }
    }
    if let (Some(slack), Some(url)) = (section(doc, &["platforms", "slack"]), &endpoints.slack) {
        slack.insert("api_url".into(), url.clone().into());
        slack.insert("signing_secret".into(), file("slack-signing-secret"));
        slack.insert("bot_token".into(), file("slack-bot-token"));
        // Chat reaches the sandbox through the HTTP routes.
        slack.insert("socket_mode".into(), false.into());
        for key in ["signing_secret_previous", "app_token"] {
            slack.remove(key);
        }
    }
    if let (Some(discord), Some(url)) =
        (section(doc, &["platforms", "discord"]), &endpoints.discord)
    {
        discord.insert("api_url".into(), url.clone().into());
        discord.insert("public_key".into(), file("discord-public-key"));
        discord.insert("bot_token".into(), file("discord-bot-token"));
    }
    if let (Some(url), Some(registry)) = (&endpoints.registry, section(doc, &["registry"])) {
        let mut map = Table::new();
        for app in base.apps() {
            map.insert(app.registry().to_owned(), url.clone().into());
        }
        registry.insert("endpoints".into(), Value::Table(map));
        // The sandbox registry serves anyone.
        for key in ["username", "password", "docker_config"] {
            registry.remove(key);
        }
    }
    for (env, url) in &endpoints.git {
        if let Some(gitops) = section(doc, &["environments", env, "gitops"]) {
            gitops.insert("url".into(), url.clone().into());
            gitops.remove("token");
        }
    }
    if let Some(Value::Table(clusters)) = doc.get_mut("clusters") {
        for (_, cluster) in clusters.iter_mut() {
            if let Value::Table(c) = cluster {
                c.insert("kubeconfig".into(), kubeconfig.display().to_string().into());
            }
        }
    }
}

/// The table at `path`, created when missing (only `[registry]` may be).
fn section<'d>(doc: &'d mut Table, path: &[&str]) -> Option<&'d mut Table> {
    let mut table = doc;
    for (i, key) in path.iter().enumerate() {
        if !table.contains_key(*key) {
            if i + 1 < path.len() || *key != "registry" {
                return None;
            }
            table.insert((*key).into(), Value::Table(Table::new()));
        }
        table = match table.get_mut(*key) {
            Some(Value::Table(t)) => t,
            _ => return None,
        };
    }
    Some(table)
}

/// A kubeconfig with one context per configured cluster context, all at
/// the sandbox's API server. JSON is YAML, so kube reads it as written.
fn kubeconfig_text(base: &Config, server: &str) -> String {
    let mut names: Vec<String> = base.clusters().values().map(|c| c.kube_context()).collect();
    names.sort();
    names.dedup();
    let contexts: Vec<_> = names
        .iter()
        .map(|n| serde_json::json!({ "name": n, "context": { "cluster": "sandbox", "user": "sandbox" } }))
        .collect();
    let doc = serde_json::json!({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{ "name": "sandbox", "cluster": { "server": server } }],
        "users": [{ "name": "sandbox", "user": {} }],
        "contexts": contexts,
        "current-context": names.first().cloned().unwrap_or_else(|| "sandbox".into()),
    });
    serde_json::to_string_pretty(&doc).unwrap_or_default()
}

fn write_file(path: &Path, text: &str) -> Result<(), String> {
    std::fs::write(path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))
}

/// Writes `text` readable by its owner only.
pub fn write_private(path: &Path, text: &str) -> Result<(), String> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options
        .open(path)
        .and_then(|mut f| f.write_all(text.as_bytes()))
        .map_err(|e| format!("cannot write {}: {e}", path.display()))
}
