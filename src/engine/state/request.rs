//! A request and what it is pinned to: the record the state machine
//! changes and the store keeps.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::tally::{tally, RuleNeed, Tally};
use super::State;
use crate::names::{
    AppName, Digest, EnvName, Identity, PersonId, RequestId, RoleName, RuleName, Sha,
};

/// What the request asks for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum Action {
    /// Deploy a ref.
    Deploy {
        /// The ref as typed.
        reference: String,
    },
    /// Deploy what runs in another environment.
    Promote {
        /// The source environment.
        from: EnvName,
    },
    /// Put back an earlier digest.
    Rollback,
    /// Build the image for a ref.
    Build {
        /// The ref as typed.
        reference: String,
    },
    /// Remove a preview environment.
    Teardown {
        /// The preview's branch.
        branch: String,
    },
}

/// The approvals a request needs, fixed when it is made: every rule met.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "StoredRule")]
pub struct ApprovalRule {
    /// The rules, in config order; all required.
    pub rules: Vec<RuleNeed>,
    /// Whether one person's approval counts for one rule only.
    pub one_rule_per_person: bool,
    /// Whether the requester may approve their own request.
    pub self_approval: bool,
    /// Unix seconds after which approvals are no longer collected.
    pub expires_at: i64,
}

impl ApprovalRule {
    /// Every role that may approve for some rule.
    pub fn roles(&self) -> Vec<RoleName> {
        let mut out: Vec<RoleName> = Vec::new();
        for role in self.rules.iter().flat_map(|r| &r.roles) {
            if !out.contains(role) {
                out.push(role.clone());
            }
        }
        out
    }

    /// Whether someone holding `roles` may approve for some rule.
    pub fn admits(&self, roles: &[RoleName]) -> bool {
        self.rules.iter().any(|r| r.admits(roles))
    }
}

/// An [`ApprovalRule`] as stored: requests written before rules had names
/// hold one `count` of `roles`.
#[derive(Deserialize)]
struct StoredRule {
    #[serde(default)]
    rules: Option<Vec<RuleNeed>>,
    #[serde(default)]
    count: u32,
    #[serde(default)]
    roles: Vec<RoleName>,
    #[serde(default = "yes")]
    one_rule_per_person: bool,
    self_approval: bool,
    expires_at: i64,
}

fn yes() -> bool {
    true
}

impl From<StoredRule> for ApprovalRule {
    fn from(stored: StoredRule) -> ApprovalRule {
        let rules = stored.rules.unwrap_or_else(|| {
            let joined: Vec<&str> = stored.roles.iter().map(RoleName::as_str).collect();
            let name = RuleName::new(&joined.join("-"))
                .or_else(|_| RuleName::new("approvals"))
                .ok();
            match name {
                Some(name) if stored.count > 0 => vec![RuleNeed {
                    name,
                    roles: stored.roles.clone(),
                    count: stored.count,
                }],
                _ => Vec::new(),
            }
        });
        ApprovalRule {
            rules,
            one_rule_per_person: stored.one_rule_per_person,
            self_approval: stored.self_approval,
            expires_at: stored.expires_at,
        }
    }
}

/// One person's approval, bound to what they saw.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Approval {
    /// Who approved.
    pub person: PersonId,
    /// From where.
    pub identity: Identity,
    /// Unix seconds.
    pub at: i64,
    /// The commit they approved.
    pub sha: Sha,
    /// The image digest they approved.
    pub digest: Option<Digest>,
    /// The policy version in force.
    pub policy_version: String,
    /// The roles they held that the request's rules admit, when approving.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub roles: Vec<RoleName>,
    /// What they said with it (`approve R-7 tested on uat`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
}

/// Where a command came from and its answers go.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Platform {
    /// A Slack workspace.
    Slack,
    /// A Discord server.
    Discord,
    /// A GitHub pull request.
    Github,
    /// The command line (`gantry run`).
    Console,
}

impl Platform {
    /// The name stored and shown: `slack`, `discord`, `github`, `console`.
    pub fn as_str(self) -> &'static str {
        match self {
            Platform::Slack => "slack",
            Platform::Discord => "discord",
            Platform::Github => "github",
            Platform::Console => "console",
        }
    }
}

impl std::fmt::Display for Platform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where a request's progress is reported.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Conversation {
    /// The platform it is on.
    pub platform: Platform,
    /// Channel id, or `owner/repo#123` for a pull request.
    pub channel: String,
}

/// A request and everything it is pinned to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Request {
    /// `R-<n>`.
    pub id: RequestId,
    /// What it asks for.
    pub action: Action,
    /// Which app.
    pub app: AppName,
    /// Where to; absent for builds.
    pub env: Option<EnvName>,
    /// The namespace it changes, resolved when the request is made.
    pub namespace: Option<String>,
    /// The person who asked.
    pub requester: PersonId,
    /// The identity they asked from.
    pub identity: Identity,
    /// Where progress goes.
    pub conversation: Conversation,
    /// The commit, resolved once.
    pub sha: Option<Sha>,
    /// The image digest, resolved once.
    pub digest: Option<Digest>,
    /// What ran before, for rolling back.
    pub previous_digest: Option<Digest>,
    /// The config fingerprint when the request was made.
    pub policy_version: String,
    /// The approvals it needs, if any.
    pub rule: Option<ApprovalRule>,
    /// The approvals it has.
    pub approvals: Vec<Approval>,
    /// Where it stands.
    pub state: State,
    /// Check only, change nothing.
    pub dry_run: bool,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds of the last change.
    pub updated_at: i64,
    /// Why it ended as it did, when that needs saying.
    pub note: Option<String>,
    /// The Git host's deployment record for it, once made.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deployment: Option<u64>,
    /// Its verification after the rollout, once that has started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verification: Option<Verification>,
    /// When its rollout completed: how long a release has run is counted
    /// from here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rolled_out_at: Option<i64>,
}

/// A release's verification: how much of its soak its checks have covered
/// and how each check stands. Written after every round of probes, so a
/// restart resumes with the time left.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Verification {
    /// How long the checks must stay green, in milliseconds.
    pub soak_ms: u64,
    /// How much of it the checks have covered so far, in milliseconds.
    pub covered_ms: u64,
    /// Each check, in config order.
    pub checks: Vec<CheckStanding>,
    /// When every check held for the whole soak: the release is verified.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verified_at: Option<i64>,
    /// Who ended the soak early with `complete`: the release went ahead
    /// without being verified.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completed_by: Option<PersonId>,
}

impl Verification {
    /// Soak time still to cover, in milliseconds.
    pub fn left_ms(&self) -> u64 {
        self.soak_ms.saturating_sub(self.covered_ms)
    }

    /// Checks whose latest probe passed.
    pub fn passing(&self) -> usize {
        self.checks.iter().filter(|c| c.probes > 0 && c.ok).count()
    }
}

/// One check's standing during a verification.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckStanding {
    /// The check's name.
    pub name: String,
    /// Probes made.
    pub probes: u32,
    /// Probes that failed.
    pub failures: u32,
    /// Failed probes since the last pass.
    pub failing_in_a_row: u32,
    /// Whether the latest probe passed.
    pub ok: bool,
    /// What the latest probe saw.
    pub last: String,
}

impl Request {
    /// How the approvals stand against the rules: only approvals bound to
    /// the pinned commit, digest and policy version count, never the
    /// requester's unless allowed. `roles_now` gives the roles each approver
    /// holds now (someone absent holds none); `None` takes the roles they
    /// held when approving.
    pub fn tally(&self, roles_now: Option<&BTreeMap<PersonId, Vec<RoleName>>>) -> Tally {
        let Some(rule) = &self.rule else {
            return Tally::default();
        };
        let mut approvers: Vec<(PersonId, Vec<RoleName>)> = Vec::new();
        for a in &self.approvals {
            let bound = Some(&a.sha) == self.sha.as_ref()
                && a.digest == self.digest
                && a.policy_version == self.policy_version;
            let allowed = rule.self_approval || a.person != self.requester;
            if !bound || !allowed || approvers.iter().any(|(p, _)| p == &a.person) {
                continue;
            }
            let roles = match roles_now {
                Some(now) => now.get(&a.person).cloned().unwrap_or_default(),
                None => a.roles.clone(),
            };
            approvers.push((a.person.clone(), roles));
        }
        tally(rule, &approvers)
    }

    /// Whether every rule is met (true without a rule).
    pub fn approved(&self, roles_now: Option<&BTreeMap<PersonId, Vec<RoleName>>>) -> bool {
        self.rule.is_none() || self.tally(roles_now).met()
    }

    /// Whether this release was proven by its verification.
    pub fn is_verified(&self) -> bool {
        self.verification
            .as_ref()
            .is_some_and(|v| v.verified_at.is_some())
    }

    /// True once the commit is resolved, or when the action has none to pin.
    pub fn is_pinned(&self) -> bool {
        self.sha.is_some() || matches!(self.action, Action::Teardown { .. })
    }
}
