//! A request's life as a pure state machine.
//!
//! `transition(request, event, now)` is the only way a request changes. It
//! does no I/O and reads no clock; the runner persists its result before it
//! acts on it. The rules that keep production safe live here, where they are
//! property-tested: no deploy without the approvals the policy required,
//! approvals bound to the pinned commit and digest, terminal states final,
//! and a dry run never deploys.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::names::{AppName, Digest, EnvName, Identity, PersonId, RequestId, RoleName, Sha};

/// Where a request stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    /// Received; ref and image being resolved, policy being checked.
    Requested,
    /// Waiting for approvals.
    AwaitingApproval,
    /// Cleared to run.
    Approved,
    /// A build is running.
    Building,
    /// The new image is being rolled out.
    Deploying,
    /// Rolled out; checking what runs is what was deployed.
    Verifying,
    /// Done, as asked.
    Succeeded,
    /// Refused by policy or by an approver.
    Denied,
    /// Not approved in time.
    Expired,
    /// Withdrawn before it ran.
    Cancelled,
    /// Went wrong; nothing was rolled back.
    Failed,
    /// Went wrong and the previous image was put back.
    RolledBack,
    /// Gantry stopped while it was under way; see its audit trail.
    Interrupted,
}

impl State {
    /// True for the states a request never leaves.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            State::Succeeded
                | State::Denied
                | State::Expired
                | State::Cancelled
                | State::Failed
                | State::RolledBack
                | State::Interrupted
        )
    }

    /// A short word for chat and logs.
    pub fn word(self) -> &'static str {
        match self {
            State::Requested => "requested",
            State::AwaitingApproval => "awaiting approval",
            State::Approved => "approved",
            State::Building => "building",
            State::Deploying => "deploying",
            State::Verifying => "verifying",
            State::Succeeded => "succeeded",
            State::Denied => "denied",
            State::Expired => "expired",
            State::Cancelled => "cancelled",
            State::Failed => "failed",
            State::RolledBack => "rolled back",
            State::Interrupted => "interrupted",
        }
    }
}

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

/// The approvals a request needs, fixed when it is made.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApprovalRule {
    /// Distinct people needed.
    pub count: u32,
    /// Roles that may approve.
    pub roles: Vec<RoleName>,
    /// Whether the requester may approve their own request.
    pub self_approval: bool,
    /// Unix seconds after which approvals are no longer collected.
    pub expires_at: i64,
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
}

/// Something that happened to a request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// The ref and image were resolved (only while `Requested`).
    Resolved {
        /// The commit.
        sha: Sha,
        /// The image digest (absent for builds and teardowns).
        digest: Option<Digest>,
        /// What runs now.
        previous: Option<Digest>,
    },
    /// Policy allows it without approval.
    Allowed,
    /// Policy wants approvals.
    NeedsApproval(ApprovalRule),
    /// Someone approves.
    Approve {
        /// Who.
        person: PersonId,
        /// From where.
        identity: Identity,
        /// Whether they hold one of the rule's roles right now.
        holds_role: bool,
    },
    /// Someone withdraws their approval before the request runs.
    Revoke {
        /// Who.
        person: PersonId,
    },
    /// Policy or an approver refuses.
    Deny {
        /// Why.
        reason: String,
    },
    /// The requester or an admin withdraws the request.
    Cancel,
    /// The approval window closed.
    Expire,
    /// A build started.
    BuildStarted,
    /// The deploy starts, after re-checking everything against the world.
    DeployStarted {
        /// The commit the ref points at now.
        head: Sha,
        /// The digest the image tag points at now.
        digest: Option<Digest>,
        /// Approvers who still hold an approving role now.
        approvers_with_role: BTreeSet<PersonId>,
        /// The config fingerprint now.
        policy_version: String,
    },
    /// The rollout completed; checking what runs.
    RolledOut,
    /// What runs is what was deployed.
    Verified,
    /// It went wrong.
    Fail {
        /// What went wrong.
        reason: String,
    },
    /// The rollout failed and the previous image was put back.
    RolledBack {
        /// Why the rollout failed.
        reason: String,
    },
    /// Gantry restarted while the request was under way.
    Interrupt {
        /// What was under way.
        reason: String,
    },
}

/// Why an event cannot apply. The request is unchanged.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransitionError {
    /// The request has ended.
    #[error("{id} has already ended ({})", .state.word())]
    Ended {
        /// The request.
        id: RequestId,
        /// Its final state.
        state: State,
    },
    /// The event makes no sense in this state.
    #[error("{id} is {}; cannot {what} now", .state.word())]
    WrongState {
        /// The request.
        id: RequestId,
        /// Its state.
        state: State,
        /// What was attempted.
        what: &'static str,
    },
    /// An approval that policy refuses.
    #[error("{0}")]
    ApprovalRefused(String),
    /// The commit or image moved since the request was approved.
    #[error("approved {approved}, {what} is now {now}: request again")]
    Moved {
        /// What moved: `head` or `image`.
        what: &'static str,
        /// What was approved.
        approved: String,
        /// What it is now.
        now: String,
    },
    /// Not enough valid approvals at the moment of acting.
    #[error("{id} has {have} valid approval(s) of {need} needed")]
    NotApproved {
        /// The request.
        id: RequestId,
        /// Valid approvals now.
        have: usize,
        /// Approvals needed.
        need: u32,
    },
}

impl Request {
    /// Approvals that still count: bound to the pinned commit and digest,
    /// from people who still hold a role, never the requester unless allowed.
    pub fn valid_approvals(&self, approvers_with_role: &BTreeSet<PersonId>) -> usize {
        let Some(rule) = &self.rule else { return 0 };
        let mut people = BTreeSet::new();
        for a in &self.approvals {
            let bound = Some(&a.sha) == self.sha.as_ref()
                && a.digest == self.digest
                && a.policy_version == self.policy_version;
            let allowed = rule.self_approval || a.person != self.requester;
            if bound && allowed && approvers_with_role.contains(&a.person) {
                people.insert(&a.person);
            }
        }
        people.len()
    }

    /// True once the commit is resolved, or when the action has none to pin.
    pub fn is_pinned(&self) -> bool {
        self.sha.is_some() || matches!(self.action, Action::Teardown { .. })
    }

    fn needed(&self) -> u32 {
        self.rule.as_ref().map_or(0, |r| r.count)
    }
}

/// Applies `event` to `request` at time `now` (unix seconds).
pub fn transition(request: &Request, event: &Event, now: i64) -> Result<Request, TransitionError> {
    use State as S;
    let id = request.id;
    let state = request.state;
    if state.is_terminal() {
        return Err(TransitionError::Ended { id, state });
    }
    let wrong = |what| Err(TransitionError::WrongState { id, state, what });
    let mut next = request.clone();
    next.updated_at = now;
    match event {
        Event::Resolved {
            sha,
            digest,
            previous,
        } => {
            if state != S::Requested || request.sha.is_some() {
                return wrong("re-pin the commit");
            }
            next.sha = Some(sha.clone());
            next.digest = digest.clone();
            next.previous_digest = previous.clone();
        }
        Event::Allowed => {
            if state != S::Requested || !request.is_pinned() {
                return wrong("approve by policy");
            }
            next.rule = None;
            next.state = S::Approved;
        }
        Event::NeedsApproval(rule) => {
            if state != S::Requested || !request.is_pinned() {
                return wrong("ask for approval");
            }
            next.rule = Some(rule.clone());
            next.state = if rule.count == 0 {
                S::Approved
            } else {
                S::AwaitingApproval
            };
        }
        Event::Approve {
            person,
            identity,
            holds_role,
        } => {
            approve(&mut next, person, identity, *holds_role, now)?;
        }
        Event::Revoke { person } => {
            if !matches!(state, S::AwaitingApproval | S::Approved) {
                return wrong("withdraw an approval");
            }
            next.approvals.retain(|a| &a.person != person);
            if state == S::Approved && next.rule.is_some() {
                let everyone: BTreeSet<PersonId> =
                    next.approvals.iter().map(|a| a.person.clone()).collect();
                if next.valid_approvals(&everyone) < next.needed() as usize {
                    next.state = S::AwaitingApproval;
                }
            }
        }
        Event::Deny { reason } => {
            if !matches!(state, S::Requested | S::AwaitingApproval | S::Approved) {
                return wrong("deny");
            }
            next.state = S::Denied;
            next.note = Some(reason.clone());
        }
        Event::Cancel => {
            if !matches!(
                state,
                S::Requested | S::AwaitingApproval | S::Approved | S::Building
            ) {
                return wrong("cancel");
            }
            next.state = S::Cancelled;
        }
        Event::Expire => {
            let expired = request.rule.as_ref().is_some_and(|r| now >= r.expires_at);
            if state != S::AwaitingApproval || !expired {
                return wrong("expire");
            }
            next.state = S::Expired;
        }
        Event::BuildStarted => {
            if state != S::Approved || !matches!(request.action, Action::Build { .. }) {
                return wrong("start a build");
            }
            next.state = S::Building;
        }
        Event::DeployStarted {
            head,
            digest,
            approvers_with_role,
            policy_version,
        } => {
            if state != S::Approved {
                return wrong("start deploying");
            }
            if request.dry_run {
                return wrong("deploy in a dry run");
            }
            check_start(
                request,
                head,
                digest.as_ref(),
                approvers_with_role,
                policy_version,
            )?;
            next.state = S::Deploying;
        }
        Event::RolledOut => {
            if state != S::Deploying {
                return wrong("finish a rollout");
            }
            next.state = S::Verifying;
        }
        Event::Verified => match state {
            S::Verifying | S::Building => next.state = S::Succeeded,
            S::Approved if request.dry_run || matches!(request.action, Action::Teardown { .. }) => {
                next.state = S::Succeeded
            }
            _ => return wrong("succeed"),
        },
        Event::Fail { reason } => {
            next.state = S::Failed;
            next.note = Some(reason.clone());
        }
        Event::RolledBack { reason } => {
            if !matches!(state, S::Deploying | S::Verifying) {
                return wrong("record a rollback");
            }
            next.state = S::RolledBack;
            next.note = Some(reason.clone());
        }
        Event::Interrupt { reason } => {
            next.state = S::Interrupted;
            next.note = Some(reason.clone());
        }
    }
    Ok(next)
}

/// The checks an `Approved` request must pass to start deploying, given
/// what the world says now: the pinned commit and digest have not moved,
/// and, when approvals were needed, the policy version is the one they were
/// given under and enough approvers still hold a role. `DeployStarted`
/// makes them; a dry run asks them without starting anything.
pub fn check_start(
    request: &Request,
    head: &Sha,
    digest: Option<&Digest>,
    approvers_with_role: &BTreeSet<PersonId>,
    policy_version: &str,
) -> Result<(), TransitionError> {
    check_pins(request, head, digest)?;
    if request.rule.is_some() {
        if policy_version != request.policy_version {
            return Err(TransitionError::Moved {
                what: "policy",
                approved: request.policy_version.clone(),
                now: policy_version.to_owned(),
            });
        }
        let have = request.valid_approvals(approvers_with_role);
        if have < request.needed() as usize {
            return Err(TransitionError::NotApproved {
                id: request.id,
                have,
                need: request.needed(),
            });
        }
    }
    Ok(())
}

fn approve(
    next: &mut Request,
    person: &PersonId,
    identity: &Identity,
    holds_role: bool,
    now: i64,
) -> Result<(), TransitionError> {
    let id = next.id;
    let state = next.state;
    if state != State::AwaitingApproval {
        return Err(TransitionError::WrongState {
            id,
            state,
            what: "approve",
        });
    }
    let refuse = |why: String| Err(TransitionError::ApprovalRefused(why));
    let Some(rule) = next.rule.clone() else {
        return refuse(format!("{id} needs no approval"));
    };
    if now >= rule.expires_at {
        return refuse(format!("{id} has expired; request again"));
    }
    if person == &next.requester && !rule.self_approval {
        return refuse(format!("{person} asked for {id} and cannot approve it too"));
    }
    if !holds_role {
        let roles: Vec<&str> = rule.roles.iter().map(RoleName::as_str).collect();
        return refuse(format!(
            "{person} does not hold a role that may approve {id} ({})",
            roles.join(", ")
        ));
    }
    if next.approvals.iter().any(|a| &a.person == person) {
        return refuse(format!(
            "{person} has already approved {id}; one person counts once"
        ));
    }
    let Some(sha) = next.sha.clone() else {
        return refuse(format!("{id} has no resolved commit yet"));
    };
    next.approvals.push(Approval {
        person: person.clone(),
        identity: identity.clone(),
        at: now,
        sha,
        digest: next.digest.clone(),
        policy_version: next.policy_version.clone(),
    });
    if next.approvals.len() >= rule.count as usize {
        next.state = State::Approved;
    }
    Ok(())
}

fn check_pins(
    request: &Request,
    head: &Sha,
    digest: Option<&Digest>,
) -> Result<(), TransitionError> {
    let pinned = request.sha.as_ref();
    if pinned != Some(head) {
        return Err(TransitionError::Moved {
            what: "head",
            approved: pinned.map_or("nothing".into(), |s| s.short().to_owned()),
            now: head.short().to_owned(),
        });
    }
    if request.digest.as_ref() != digest {
        return Err(TransitionError::Moved {
            what: "image",
            approved: request
                .digest
                .as_ref()
                .map_or("nothing".into(), |d| d.short().to_owned()),
            now: digest.map_or("nothing".into(), |d| d.short().to_owned()),
        });
    }
    Ok(())
}
