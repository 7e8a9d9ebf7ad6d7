//! The config file as written: strict serde types, checked later by `check`.
//!
//! Every struct refuses unknown keys. Each field's comment states its default;
//! "required" means the key must be present.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::config::secret::SecretRef;

mod env;
mod verify;

pub(crate) use env::*;
pub(crate) use verify::*;

/// The whole file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawConfig {
    /// Bot-wide settings. Default: all defaults.
    #[serde(default)]
    pub gantry: RawGantry,
    /// Role name → description. Default: none.
    #[serde(default)]
    pub roles: BTreeMap<String, String>,
    /// Chat and forge platforms. Default: none.
    #[serde(default)]
    pub platforms: RawPlatforms,
    /// Container registry access. Default: anonymous, 10 s timeout.
    #[serde(default)]
    pub registry: RawRegistry,
    /// Kubernetes clusters by name. Default: none.
    #[serde(default)]
    pub clusters: BTreeMap<String, RawCluster>,
    /// Prometheus servers that verification checks query, by name. Default: none.
    #[serde(default)]
    pub prometheus: BTreeMap<String, RawPrometheus>,
    /// Apps by name. Required: at least one.
    #[serde(default)]
    pub apps: BTreeMap<String, RawApp>,
    /// Environments by name. Required: at least one.
    #[serde(default)]
    pub environments: BTreeMap<String, RawEnvironment>,
    /// People by id. Default: none.
    #[serde(default)]
    pub people: BTreeMap<String, RawPerson>,
}

/// `[gantry]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawGantry {
    /// App used when a command names none. Default: the only app if there is
    /// exactly one; otherwise commands must name the app.
    pub default_app: Option<String>,
    /// Roles that may unlock any lock and cancel any request. Default: none.
    #[serde(default)]
    pub admin_roles: Vec<String>,
    /// Roles that may override a freeze window (audited). Default: none.
    #[serde(default)]
    pub break_glass_roles: Vec<String>,
    /// How many commands that start work one person may send per period.
    /// Default: `{ count = 20, per = "1m" }`.
    #[serde(default)]
    pub start_limit: RawStartLimit,
}

/// `[gantry] start_limit`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawStartLimit {
    /// Commands per period; 0 = no limit. Default: 20.
    #[serde(default = "start_count")]
    pub count: u32,
    /// The period. Default: `1m`.
    #[serde(default = "start_period")]
    pub per: String,
}

impl Default for RawStartLimit {
    fn default() -> Self {
        RawStartLimit {
            count: start_count(),
            per: start_period(),
        }
    }
}

fn start_count() -> u32 {
    20
}
fn start_period() -> String {
    "1m".into()
}

/// `[platforms]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawPlatforms {
    /// Slack. Default: absent (off).
    pub slack: Option<RawSlack>,
    /// Discord. Default: absent (off).
    pub discord: Option<RawDiscord>,
    /// GitHub. Default: absent (off).
    pub github: Option<RawGithub>,
}

/// `[platforms.slack]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawSlack {
    /// Whether Slack is used. Default: true.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Accepted workspace (team) ids. Required, non-empty.
    pub team_ids: Vec<String>,
    /// Web API base URL. Default: `https://slack.com/api/`.
    #[serde(default = "slack_api")]
    pub api_url: String,
    /// Request signing secret. Required.
    pub signing_secret: SecretRef,
    /// The previous signing secret, accepted during rotation. Default: none.
    pub signing_secret_previous: Option<SecretRef>,
    /// Bot token (`xoxb-…`). Required.
    pub bot_token: SecretRef,
    /// Use Socket Mode instead of a public URL. Default: false.
    #[serde(default)]
    pub socket_mode: bool,
    /// App-level token (`xapp-…`). Default: none; required when `socket_mode`.
    pub app_token: Option<SecretRef>,
    /// Reaction name that approves. Default: `white_check_mark`.
    #[serde(default = "slack_approve")]
    pub approve_reaction: String,
    /// Reaction name that denies. Default: `x`.
    #[serde(default = "slack_deny")]
    pub deny_reaction: String,
}

/// `[platforms.discord]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawDiscord {
    /// Whether Discord is used. Default: true.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// The application's numeric id. Required.
    pub application_id: String,
    /// Guilds (servers) whose commands are accepted. Required, non-empty.
    pub guild_ids: Vec<String>,
    /// REST base URL. Default: `https://discord.com`.
    #[serde(default = "discord_api")]
    pub api_url: String,
    /// Ed25519 public key for interaction signatures. Required.
    pub public_key: SecretRef,
    /// Bot token. Required.
    pub bot_token: SecretRef,
    /// Emoji that approves. Default: ✅.
    #[serde(default = "discord_approve")]
    pub approve_emoji: String,
    /// Emoji that denies. Default: ❌.
    #[serde(default = "discord_deny")]
    pub deny_emoji: String,
}

/// `[platforms.github]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawGithub {
    /// Whether GitHub webhooks and comments are used. Default: true.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// REST base URL. Default: `https://api.github.com`.
    #[serde(default = "github_api")]
    pub api_url: String,
    /// Webhook secret for `X-Hub-Signature-256`. Required.
    pub webhook_secret: SecretRef,
    /// The previous webhook secret, accepted during rotation. Default: none.
    pub webhook_secret_previous: Option<SecretRef>,
    /// A token. Default: none; give this or `app_id` + `private_key`.
    pub token: Option<SecretRef>,
    /// GitHub App id. Default: none.
    pub app_id: Option<u64>,
    /// GitHub App private key (PEM). Default: none.
    pub private_key: Option<SecretRef>,
    /// Count approving PR reviews as approvals. Default: false.
    #[serde(default)]
    pub review_approvals: bool,
    /// How often build runs and checks are polled. Default: `5s`.
    #[serde(default = "github_poll")]
    pub poll_interval: String,
}

/// `[registry]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRegistry {
    /// User name. Default: none (anonymous, or `docker_config`).
    pub username: Option<SecretRef>,
    /// Password or token. Default: none; required with `username`.
    pub password: Option<SecretRef>,
    /// Path of a Docker `config.json` with registry auths. Default: none.
    pub docker_config: Option<String>,
    /// Registry hosts (`host:port`) spoken to over plain HTTP. Default: none.
    #[serde(default)]
    pub plain_http_hosts: Vec<String>,
    /// Where to reach a registry host: host → base URL. Default: none.
    #[serde(default)]
    pub endpoints: std::collections::BTreeMap<String, String>,
    /// Timeout of each registry request. Default: `10s`.
    #[serde(default = "registry_timeout")]
    pub timeout: String,
}

impl Default for RawRegistry {
    fn default() -> Self {
        RawRegistry {
            username: None,
            password: None,
            docker_config: None,
            plain_http_hosts: Vec::new(),
            endpoints: std::collections::BTreeMap::new(),
            timeout: registry_timeout(),
        }
    }
}

/// `[clusters.<name>]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawCluster {
    /// Kubeconfig context. Default: in-cluster config, else the current context.
    pub context: Option<String>,
    /// Kubeconfig file. Default: `$KUBECONFIG`, else `~/.kube/config`.
    pub kubeconfig: Option<String>,
    /// Send `Impersonate-User` for the requesting person. Default: false.
    #[serde(default)]
    pub impersonate: bool,
}

/// `[apps.<name>]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawApp {
    /// GitHub repository, `owner/name`. Required.
    pub repo: String,
    /// Image repository without tag or digest. Required.
    pub image: String,
    /// Tag of a build: `{sha}`, `{short_sha}`, `{branch}`. Default: `{sha}`.
    #[serde(default = "tag_template")]
    pub tag_template: String,
    /// Kubernetes Deployments running the image. Required, non-empty.
    pub deployments: Vec<String>,
    /// Container whose image is set. Default: the app's name.
    pub container: Option<String>,
    /// Services copied into preview namespaces. Default: none.
    #[serde(default)]
    pub services: Vec<String>,
    /// Workflow file run by `build`. Default: none (`build` is refused).
    pub build_workflow: Option<String>,
    /// Inputs passed to the build workflow. Default: none.
    #[serde(default)]
    pub build_inputs: BTreeMap<String, String>,
}

/// `[people.<id>]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawPerson {
    /// Display name. Required.
    pub name: String,
    /// Roles held. Default: none.
    #[serde(default)]
    pub roles: Vec<String>,
    /// Platform identities. Default: none.
    #[serde(default)]
    pub identities: Vec<String>,
    /// Kubernetes user for impersonation. Default: none.
    pub kube_user: Option<String>,
}

fn yes() -> bool {
    true
}
fn slack_api() -> String {
    "https://slack.com/api/".into()
}
fn slack_approve() -> String {
    "white_check_mark".into()
}
fn slack_deny() -> String {
    "x".into()
}
fn discord_api() -> String {
    "https://discord.com".into()
}
fn discord_approve() -> String {
    "✅".into()
}
fn discord_deny() -> String {
    "❌".into()
}
fn github_api() -> String {
    "https://api.github.com".into()
}
fn github_poll() -> String {
    "5s".into()
}
fn registry_timeout() -> String {
    "10s".into()
}
fn tag_template() -> String {
    "{sha}".into()
}
