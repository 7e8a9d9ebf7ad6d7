//! Checked config: every name in here refers to something that exists.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use super::platform::{Discord, Github, GithubAuth, Platforms, Registry, Slack};

use super::freeze::FreezeWindow;
use super::glob::RefPattern;
use super::secret::SecretRef;
use super::template::{NamespaceTemplate, TagTemplate};
use crate::names::{AppName, EnvName, GithubAccount, Identity, PersonId, RoleName, RuleName};

/// How many commands that start work (deploy, promote, rollback, build,
/// teardown, dry runs included) one person may send per period.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StartLimit {
    /// Commands per period; 0 = no limit.
    pub count: u32,
    /// The period.
    pub per: std::time::Duration,
}

/// The validated configuration. Built only by [`super::load`] and [`super::parse`].
#[derive(Debug, Clone)]
pub struct Config {
    pub(crate) path: PathBuf,
    pub(crate) version: String,
    pub(crate) default_app: Option<AppName>,
    pub(crate) admin_roles: Vec<RoleName>,
    pub(crate) break_glass_roles: Vec<RoleName>,
    pub(crate) start_limit: StartLimit,
    pub(crate) roles: BTreeMap<RoleName, String>,
    pub(crate) platforms: Platforms,
    pub(crate) registry: Registry,
    pub(crate) clusters: BTreeMap<String, Cluster>,
    pub(crate) prometheus: BTreeMap<String, Prometheus>,
    /// In file order.
    pub(crate) apps: Vec<App>,
    /// In file order, which is usually the delivery chain's order.
    pub(crate) envs: Vec<Environment>,
    pub(crate) people: Vec<Person>,
    pub(crate) identities: HashMap<Identity, usize>,
}

/// A Kubernetes cluster.
#[derive(Debug, Clone)]
pub struct Cluster {
    /// The cluster's config name.
    pub name: String,
    /// Kubeconfig context; `None` = in-cluster or current context.
    pub context: Option<String>,
    /// Kubeconfig file; `None` = `$KUBECONFIG`, else `~/.kube/config`.
    pub kubeconfig: Option<std::path::PathBuf>,
    /// Whether requests impersonate the requesting person.
    pub impersonate: bool,
}

impl Cluster {
    /// The kubeconfig context Gantry uses: the configured one, else the
    /// cluster's name (which names the in-cluster or current context).
    pub fn kube_context(&self) -> String {
        self.context.clone().unwrap_or_else(|| self.name.clone())
    }
}

/// A GitHub repository, `owner/name`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepoName {
    /// The owner (user or organisation).
    pub owner: String,
    /// The repository name.
    pub name: String,
}

impl fmt::Display for RepoName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.owner, self.name)
    }
}

/// A deployable unit.
#[derive(Debug, Clone)]
pub struct App {
    /// The app's name.
    pub name: AppName,
    /// Its source repository.
    pub repo: RepoName,
    /// Image repository, without tag or digest.
    pub image: String,
    /// How build tags are named.
    pub tag_template: TagTemplate,
    /// Deployments running the image.
    pub deployments: Vec<String>,
    /// Container whose image is set.
    pub container: String,
    /// Services copied into preview namespaces.
    pub services: Vec<String>,
    /// Workflow file for `build`; `None` = `build` is not available.
    pub build_workflow: Option<String>,
    /// Inputs passed to the build workflow.
    pub build_inputs: BTreeMap<String, String>,
}

impl App {
    /// The registry that holds the image, as Docker reads a reference: the
    /// first path part when it looks like a host (has `.` or `:`, or is
    /// `localhost`), else Docker Hub.
    pub fn registry(&self) -> &str {
        match self.image.split_once('/') {
            Some((first, _))
                if first.contains('.') || first.contains(':') || first == "localhost" =>
            {
                first
            }
            _ => "docker.io",
        }
    }
}

/// Where an environment's workloads live.
#[derive(Debug, Clone)]
pub enum Target {
    /// One fixed namespace.
    Namespace(String),
    /// A namespace per branch or pull request.
    Preview {
        /// The namespace template.
        template: NamespaceTemplate,
        /// How long an idle preview lives.
        ttl: Duration,
        /// Namespace whose Services are copied, if any.
        source_namespace: Option<String>,
    },
}

/// How deploys reach the cluster.
#[derive(Debug, Clone)]
pub enum Strategy {
    /// Patch the Deployment's container image.
    Rolling,
    /// Commit the image to a config repository, then watch the rollout.
    Gitops(Gitops),
}

/// A GitOps target.
#[derive(Debug, Clone)]
pub struct Gitops {
    /// Where the config repository lives.
    pub source: GitopsSource,
    /// Branch to change.
    pub branch: String,
    /// File to edit, relative to the repository root.
    pub path: String,
    /// How the image is written into the file.
    pub format: GitopsFormat,
    /// Whether to open a pull request instead of committing.
    pub pull_request: bool,
    /// The token sent as HTTP Basic credentials to the git host (transport
    /// `git` over https), e.g. a GitHub, GitLab or Gitea access token.
    pub token: Option<SecretRef>,
}

/// The GitOps config repository.
#[derive(Debug, Clone)]
pub enum GitopsSource {
    /// A GitHub repository, changed through the API.
    Github(RepoName),
    /// A plain git URL.
    Git(String),
}

/// The file format GitOps edits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GitopsFormat {
    /// `kustomization.yaml` `images:` entry.
    Kustomize,
    /// A Helm values key such as `image.tag`.
    Helm {
        /// The dotted values key.
        key: String,
    },
}

/// One approval rule: `count` distinct people holding any of `roles`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApprovalRule {
    /// The rule's name, shown in the progress message (`qa 1/1 carol`).
    pub name: RuleName,
    /// Roles whose holders may approve for it.
    pub roles: Vec<RoleName>,
    /// Distinct people it needs; at least 1.
    pub count: u32,
}

/// An environment's approval policy: every rule must be met.
#[derive(Debug, Clone)]
pub struct Approvals {
    /// The rules, in file order; empty = no approvals needed.
    pub rules: Vec<ApprovalRule>,
    /// Whether one person's approval counts for one rule only (the first
    /// rule still short that they qualify for), rather than for every rule
    /// they qualify for.
    pub one_rule_per_person: bool,
    /// Whether the requester's own approval counts.
    pub self_approval: bool,
    /// How long a request waits for approvals.
    pub expires: Duration,
}

impl Approvals {
    /// Every role that may approve for some rule, each once, in rule order.
    pub fn roles(&self) -> Vec<RoleName> {
        let mut out: Vec<RoleName> = Vec::new();
        for role in self.rules.iter().flat_map(|r| &r.roles) {
            if !out.contains(role) {
                out.push(role.clone());
            }
        }
        out
    }

    /// The rules as one line: `qa 1 of [qa] · release 1 of [release-manager]`.
    pub fn describe(&self) -> String {
        let rules: Vec<String> = self
            .rules
            .iter()
            .map(|r| {
                let roles: Vec<&str> = r.roles.iter().map(RoleName::as_str).collect();
                format!("{} {} of [{}]", r.name, r.count, roles.join(", "))
            })
            .collect();
        rules.join(" · ")
    }
}

/// A deploy target and its policy.
#[derive(Debug, Clone)]
pub struct Environment {
    /// The environment's name.
    pub name: EnvName,
    /// The cluster it lives on.
    pub cluster: Cluster,
    /// Its namespace or preview template.
    pub target: Target,
    /// Roles that may request deploys.
    pub requesters: Vec<RoleName>,
    /// Branches that may be deployed.
    pub refs: Vec<RefPattern>,
    /// Whether CI must have passed.
    pub require_green_ci: bool,
    /// How deploys happen.
    pub strategy: Strategy,
    /// Whether a failed rollout is rolled back.
    pub auto_rollback: bool,
    /// How long a rollout may take.
    pub rollout_timeout: Duration,
    /// Environment promotions must come from.
    pub promote_from: Option<EnvName>,
    /// The approval rules.
    pub approvals: Approvals,
    /// Freeze windows.
    pub freezes: Vec<FreezeWindow>,
    /// Verification after each rollout; `None` = a release is done when it
    /// has rolled out.
    pub verify: Option<Verify>,
    /// Whether promotions into this environment take only verified releases.
    pub require_verified: bool,
    /// How long a release must have run in `promote_from` before it may
    /// be promoted here.
    pub soak: Option<Duration>,
}

impl Environment {
    /// Whether `branch` matches one of the allowed ref patterns.
    pub fn allows_ref(&self, branch: &str) -> bool {
        self.refs.iter().any(|p| p.matches(branch))
    }

    /// The first freeze window active at `unix_seconds`, if any.
    pub fn freeze_at(&self, unix_seconds: i64) -> Option<&FreezeWindow> {
        self.freezes.iter().find(|f| f.active_at(unix_seconds))
    }

    /// Whether the environment is frozen at `unix_seconds`, and until when.
    pub fn frozen_at(&self, unix_seconds: i64) -> Option<super::freeze::Frozen<'_>> {
        super::freeze::frozen_at(&self.freezes, unix_seconds)
    }
}

/// A person and how to recognise them.
#[derive(Debug, Clone)]
pub struct Person {
    /// The person's config key.
    pub id: PersonId,
    /// Display name.
    pub name: String,
    /// Roles held.
    pub roles: Vec<RoleName>,
    /// Platform identities.
    pub identities: Vec<Identity>,
    /// Kubernetes user for impersonation.
    pub kube_user: Option<String>,
}

impl Person {
    /// Whether the person holds any of `roles`.
    pub fn has_any_role(&self, roles: &[RoleName]) -> bool {
        self.roles.iter().any(|r| roles.contains(r))
    }
}

impl Config {
    /// Environments, in file order.
    pub fn envs(&self) -> &[Environment] {
        &self.envs
    }

    /// The environment named exactly `name`.
    pub fn env(&self, name: &str) -> Option<&Environment> {
        self.envs.iter().find(|e| e.name.as_str() == name)
    }

    /// The environment names, in file order.
    pub fn env_names(&self) -> impl Iterator<Item = EnvName> + '_ {
        self.envs.iter().map(|e| e.name.clone())
    }

    /// Apps, in file order.
    pub fn apps(&self) -> &[App] {
        &self.apps
    }

    /// The app named exactly `name`.
    pub fn app(&self, name: &str) -> Option<&App> {
        self.apps.iter().find(|a| a.name.as_str() == name)
    }

    /// The app names, in file order.
    pub fn app_names(&self) -> impl Iterator<Item = AppName> + '_ {
        self.apps.iter().map(|a| a.name.clone())
    }

    /// The app used when a command names none: `default_app`, else the only
    /// app; `None` when there are several and no default.
    pub fn default_app(&self) -> Option<&App> {
        match &self.default_app {
            Some(name) => self.app(name.as_str()),
            None if self.apps.len() == 1 => self.apps.first(),
            None => None,
        }
    }

    /// People, in file order.
    pub fn people(&self) -> &[Person] {
        &self.people
    }

    /// The person with config key `id`.
    pub fn person(&self, id: &str) -> Option<&Person> {
        self.people.iter().find(|p| p.id.as_str() == id)
    }

    /// The person an identity belongs to; GitHub logins compare case-insensitively.
    pub fn person_for(&self, identity: &Identity) -> Option<&Person> {
        let found = match identity {
            Identity::Github(GithubAccount::Login(login))
                if login.bytes().any(|b| b.is_ascii_uppercase()) =>
            {
                let lower = Identity::Github(GithubAccount::Login(login.to_ascii_lowercase()));
                self.identities.get(&lower)
            }
            _ => self.identities.get(identity),
        };
        found.and_then(|i| self.people.get(*i))
    }

    /// The person behind a GitHub account, by numeric id first, then by login.
    pub fn person_for_github(&self, id: u64, login: &str) -> Option<&Person> {
        self.person_for(&Identity::Github(GithubAccount::Id(id)))
            .or_else(|| self.person_for(&Identity::Github(GithubAccount::Login(login.to_owned()))))
    }

    /// Declared roles and their descriptions.
    pub fn roles(&self) -> &BTreeMap<RoleName, String> {
        &self.roles
    }

    /// Roles that may unlock any lock and cancel any request.
    pub fn admin_roles(&self) -> &[RoleName] {
        &self.admin_roles
    }

    /// Roles that may override a freeze window.
    pub fn break_glass_roles(&self) -> &[RoleName] {
        &self.break_glass_roles
    }

    /// How often one person may start work.
    pub fn start_limit(&self) -> StartLimit {
        self.start_limit
    }

    /// Clusters by name.
    pub fn clusters(&self) -> &BTreeMap<String, Cluster> {
        &self.clusters
    }

    /// Enabled platforms.
    pub fn platforms(&self) -> &Platforms {
        &self.platforms
    }

    /// Prometheus servers by name.
    pub fn prometheus(&self) -> &BTreeMap<String, Prometheus> {
        &self.prometheus
    }

    /// Registry access.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// A stable hex fingerprint of the file's bytes; approvals bind to it.
    pub fn version(&self) -> &str {
        &self.version
    }

    /// The file the config came from (the origin given to [`super::parse`]).
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// `[prometheus.<name>]`: a Prometheus server that checks query.
#[derive(Debug, Clone)]
pub struct Prometheus {
    /// The server's config name.
    pub name: String,
    /// Base URL, e.g. `http://prometheus:9090/` (queries go to `api/v1/query`).
    pub url: String,
    /// Sent as `Authorization: Bearer …` when set.
    pub bearer_token: Option<SecretRef>,
    /// Per-query timeout.
    pub timeout: Duration,
}

/// `[environments.<name>.verify]`: how a release is proven after its rollout.
#[derive(Debug, Clone)]
pub struct Verify {
    /// How long every check must stay green before the release is verified.
    pub soak: Duration,
    /// The checks, in file order; at least one.
    pub checks: Vec<VerifyCheck>,
}

/// One check of a verification.
#[derive(Debug, Clone)]
pub struct VerifyCheck {
    /// Its name, shown in chat and the audit trail.
    pub name: String,
    /// Time between two probes.
    pub interval: Duration,
    /// Failed probes in a row that are tolerated; one more fails the check.
    pub failures_tolerated: u32,
    /// What is probed.
    pub probe: ProbeSpec,
}

/// What a check probes.
#[derive(Debug, Clone)]
pub enum ProbeSpec {
    /// An HTTP GET.
    Http {
        /// URL template: `{app}`, `{env}`, `{namespace}`.
        url: String,
        /// The status that passes.
        expect_status: u16,
        /// Text the body must contain, when set.
        body_contains: Option<String>,
        /// Per-probe timeout.
        timeout: Duration,
    },
    /// A PromQL instant query.
    Prometheus {
        /// The `[prometheus.<name>]` server.
        server: String,
        /// The query template: `{app}`, `{env}`, `{namespace}`.
        query: String,
        /// How the value compares to the threshold to pass.
        comparison: Comparison,
        /// The threshold.
        threshold: f64,
    },
}

/// A comparison a Prometheus value must satisfy to pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Comparison {
    /// `<`
    Less,
    /// `<=`
    LessOrEqual,
    /// `>`
    Greater,
    /// `>=`
    GreaterOrEqual,
    /// `==`
    Equal,
    /// `!=`
    NotEqual,
}

impl Comparison {
    /// Whether `value` passes against `threshold`.
    pub fn holds(self, value: f64, threshold: f64) -> bool {
        match self {
            Comparison::Less => value < threshold,
            Comparison::LessOrEqual => value <= threshold,
            Comparison::Greater => value > threshold,
            Comparison::GreaterOrEqual => value >= threshold,
            Comparison::Equal => value == threshold,
            Comparison::NotEqual => value != threshold,
        }
    }

    /// The operator as written in config.
    pub fn symbol(self) -> &'static str {
        match self {
            Comparison::Less => "<",
            Comparison::LessOrEqual => "<=",
            Comparison::Greater => ">",
            Comparison::GreaterOrEqual => ">=",
            Comparison::Equal => "==",
            Comparison::NotEqual => "!=",
        }
    }
}
