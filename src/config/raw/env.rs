//! `[environments.*]` as written.

use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::Deserialize;

use crate::config::secret::SecretRef;

/// `[environments.<name>]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawEnvironment {
    /// Cluster name from `[clusters]`. Required.
    pub cluster: String,
    /// Namespace. Default: none; give this or `namespace_template`.
    pub namespace: Option<String>,
    /// Per-branch namespace: `{branch}`, `{pr}`, `{app}`. Default: none.
    pub namespace_template: Option<String>,
    /// Lifetime of a preview namespace. Default: `72h` (templates only).
    pub ttl: Option<String>,
    /// Namespace whose Services previews copy. Default: none (templates only).
    pub source_namespace: Option<String>,
    /// Roles that may request deploys. Default: none (nobody).
    #[serde(default)]
    pub requesters: Vec<String>,
    /// Branch globs that may be deployed. Default: `["**"]` (any).
    #[serde(default = "any_ref")]
    pub refs: Vec<String>,
    /// Require CI to have passed on the commit. Default: true.
    #[serde(default = "super::yes")]
    pub require_green_ci: bool,
    /// How deploys happen. Default: `rolling`.
    #[serde(default)]
    pub strategy: RawStrategy,
    /// Roll back a failed rollout. Default: true.
    #[serde(default = "super::yes")]
    pub auto_rollback: bool,
    /// How long a rollout may take. Default: `10m`.
    #[serde(default = "rollout_timeout")]
    pub rollout_timeout: String,
    /// Environment promotions must come from. Default: none.
    pub promote_from: Option<String>,
    /// Approval rules, all required. Default: no approvals needed.
    #[serde(default)]
    pub approvals: RawApprovals,
    /// Freeze windows. Default: none.
    #[serde(default)]
    pub freeze: Vec<RawFreeze>,
    /// IANA time zone of this environment's freeze windows, e.g.
    /// `Europe/Berlin`; a window's own `timezone` wins. Default: UTC.
    pub timezone: Option<String>,
    /// GitOps target; required with `strategy = "gitops"`. Default: none.
    pub gitops: Option<RawGitops>,
    /// Checks run after each rollout. Default: none (a release is done once
    /// it has rolled out).
    pub verify: Option<super::RawVerify>,
    /// Promotions into this environment take only verified releases.
    /// Default: false.
    #[serde(default)]
    pub require_verified: bool,
    /// How long a release must have run in `promote_from` before it may be
    /// promoted here. Default: none.
    pub soak: Option<String>,
}

/// `strategy`.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum RawStrategy {
    /// Patch the Deployment's image.
    #[default]
    Rolling,
    /// Commit the image to a config repository.
    Gitops,
}

/// `approvals`: one table (one rule, or `rules` beside the shared keys) or
/// a list of rules.
#[derive(Debug)]
pub(crate) enum RawApprovals {
    /// `approvals = { count = 2, roles = [...] }` or `approvals = { rules = [...], ... }`.
    Table(RawApprovalTable),
    /// `approvals = [{ name = "qa", roles = ["qa"], count = 1 }, ...]` or `[[…approvals]]`.
    List(Vec<RawApprovalRule>),
}

impl Default for RawApprovals {
    fn default() -> Self {
        RawApprovals::Table(RawApprovalTable::default())
    }
}

struct ApprovalsVisitor;

impl<'de> Visitor<'de> for ApprovalsVisitor {
    type Value = RawApprovals;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a table such as { count = 1, roles = [\"qa\"] } or a list of rules such as [{ name = \"qa\", roles = [\"qa\"], count = 1 }]")
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<RawApprovals, A::Error> {
        RawApprovalTable::deserialize(de::value::MapAccessDeserializer::new(map))
            .map(RawApprovals::Table)
    }

    fn visit_seq<A: de::SeqAccess<'de>>(self, seq: A) -> Result<RawApprovals, A::Error> {
        Vec::<RawApprovalRule>::deserialize(de::value::SeqAccessDeserializer::new(seq))
            .map(RawApprovals::List)
    }
}

impl<'de> Deserialize<'de> for RawApprovals {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<RawApprovals, D::Error> {
        deserializer.deserialize_any(ApprovalsVisitor)
    }
}

/// `approvals` as one table.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawApprovalTable {
    /// Distinct people who must approve (the one-rule form). Default: 0.
    pub count: Option<u32>,
    /// Roles whose holders may approve (the one-rule form). Default: none.
    pub roles: Option<Vec<String>>,
    /// The rules, all required (instead of `count` and `roles`). Default: none.
    pub rules: Option<Vec<RawApprovalRule>>,
    /// Whether one person's approval counts for one rule only. Default: true.
    #[serde(default = "super::yes")]
    pub one_rule_per_person: bool,
    /// Whether the requester's own approval counts. Default: false.
    #[serde(default)]
    pub self_approval: bool,
    /// How long a request waits for approvals. Default: `1h`.
    #[serde(default = "approval_expiry")]
    pub expires: String,
}

impl Default for RawApprovalTable {
    fn default() -> Self {
        RawApprovalTable {
            count: None,
            roles: None,
            rules: None,
            one_rule_per_person: true,
            self_approval: false,
            expires: approval_expiry(),
        }
    }
}

/// One rule of an `approvals` list.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawApprovalRule {
    /// The rule's name, shown in chat. Required.
    pub name: String,
    /// Roles whose holders may approve for it. Required.
    pub roles: Vec<String>,
    /// Distinct people it needs. Default: 1.
    #[serde(default = "one")]
    pub count: u32,
}

/// `[[environments.<name>.freeze]]`: `start`+`end`, or `days`+`from`+`to`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawFreeze {
    /// Fixed window start, RFC 3339; with a time zone set, also a
    /// wall-clock time without offset. Default: none.
    pub start: Option<RawInstant>,
    /// Fixed window end, as `start`. Default: none.
    pub end: Option<RawInstant>,
    /// Weekly window days. Default: none.
    pub days: Option<Vec<String>>,
    /// Weekly window start, `HH:MM` in the window's zone. Default: none.
    pub from: Option<String>,
    /// Weekly window end, `HH:MM` in the window's zone, up to `24:00`.
    /// Default: none.
    pub to: Option<String>,
    /// IANA time zone, e.g. `Europe/Berlin`. Default: the environment's
    /// `timezone`, else UTC.
    pub timezone: Option<String>,
    /// Why deploys are frozen. Required.
    pub reason: String,
}

/// `[environments.<name>.gitops]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawGitops {
    /// `github` (API commits and PRs) or `git` (plain git). Required.
    pub transport: RawTransport,
    /// Config repository `owner/name` (github transport). Default: none.
    pub repo: Option<String>,
    /// Git URL (git transport). Default: none.
    pub url: Option<String>,
    /// Branch to commit to. Default: `main`.
    #[serde(default = "main_branch")]
    pub branch: String,
    /// File to edit, relative to the repository root. Required.
    pub path: String,
    /// `kustomize` or `helm`. Required.
    pub format: RawFormat,
    /// Values key holding the tag (helm only), e.g. `image.tag`. Default: none.
    pub key: Option<String>,
    /// `commit` or `pull-request`. Default: `commit`.
    #[serde(default)]
    pub mode: RawMode,
    /// Access token for an https git URL (git transport). Default: none.
    pub token: Option<SecretRef>,
}

/// `gitops.transport`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum RawTransport {
    /// The GitHub API.
    Github,
    /// Plain git.
    Git,
}

/// `gitops.format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum RawFormat {
    /// `kustomization.yaml` `images:` entry.
    Kustomize,
    /// A Helm values file key.
    Helm,
}

/// `gitops.mode`.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum RawMode {
    /// Commit straight to the branch.
    #[default]
    Commit,
    /// Open a pull request.
    PullRequest,
}

/// A time written as a string or as a bare TOML datetime.
#[derive(Debug)]
pub(crate) struct RawInstant(pub String);

struct InstantVisitor;

impl<'de> Visitor<'de> for InstantVisitor {
    type Value = RawInstant;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("an RFC 3339 time such as 2026-12-20T00:00:00Z")
    }

    fn visit_str<E: de::Error>(self, text: &str) -> Result<RawInstant, E> {
        Ok(RawInstant(text.to_owned()))
    }

    // toml hands a bare datetime over as a one-entry map holding its text.
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RawInstant, A::Error> {
        let mut text = None;
        while let Some(key) = map.next_key::<String>()? {
            if key != "$__toml_private_datetime" || text.is_some() {
                return Err(de::Error::custom(
                    "expected an RFC 3339 time such as 2026-12-20T00:00:00Z",
                ));
            }
            text = Some(map.next_value::<String>()?);
        }
        text.map(RawInstant).ok_or_else(|| {
            de::Error::custom("expected an RFC 3339 time such as 2026-12-20T00:00:00Z")
        })
    }
}

impl<'de> Deserialize<'de> for RawInstant {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<RawInstant, D::Error> {
        deserializer.deserialize_any(InstantVisitor)
    }
}

fn any_ref() -> Vec<String> {
    vec!["**".into()]
}
fn rollout_timeout() -> String {
    "10m".into()
}
fn one() -> u32 {
    1
}
fn approval_expiry() -> String {
    "1h".into()
}
fn main_branch() -> String {
    "main".into()
}
