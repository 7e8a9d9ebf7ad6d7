//! A request's life as a pure state machine.
//!
//! `transition(request, event, now)` is the only way a request changes. It
//! does no I/O and reads no clock; the runner persists its result before it
//! acts on it. The rules that keep production safe live here, where they are
//! property-tested: no deploy without the approvals the policy required,
//! approvals bound to the pinned commit and digest, terminal states final,
//! and a dry run never deploys.

mod event;
mod request;
mod tally;

pub use event::{Event, TransitionError};
pub use request::{
    Action, Approval, ApprovalRule, CheckStanding, Conversation, Platform, Request, Verification,
};
pub use tally::{tally, RuleNeed, RuleStanding, Tally};

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::names::{Digest, Identity, PersonId, RoleName, Sha, MAX_REMARK_CHARS};

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
            note,
        } => {
            if state != S::Requested || request.sha.is_some() {
                return wrong("re-pin the commit");
            }
            next.sha = Some(sha.clone());
            next.digest = digest.clone();
            next.previous_digest = previous.clone();
            if note.is_some() {
                next.note = note.clone();
            }
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
            next.state = if rule.rules.is_empty() {
                S::Approved
            } else {
                S::AwaitingApproval
            };
        }
        Event::Approve {
            person,
            identity,
            roles,
            comment,
        } => {
            approve(&mut next, person, identity, roles, comment.as_deref(), now)?;
        }
        Event::Revoke { person } => {
            if !matches!(state, S::AwaitingApproval | S::Approved) {
                return wrong("withdraw an approval");
            }
            next.approvals.retain(|a| &a.person != person);
            if state == S::Approved && !next.approved(None) {
                next.state = S::AwaitingApproval;
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
            approver_roles,
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
                approver_roles,
                policy_version,
            )?;
            next.state = S::Deploying;
        }
        Event::DeploymentRecorded { id: deployment } => {
            if state != S::Deploying {
                return wrong("record a deployment");
            }
            next.deployment = Some(*deployment);
        }
        Event::RolledOut => {
            if state != S::Deploying {
                return wrong("finish a rollout");
            }
            next.state = S::Verifying;
            next.rolled_out_at = Some(now);
        }
        Event::Verified => match state {
            S::Verifying if request.verification.is_some() => return wrong("skip its checks"),
            S::Verifying | S::Building => next.state = S::Succeeded,
            S::Approved if request.dry_run || matches!(request.action, Action::Teardown { .. }) => {
                next.state = S::Succeeded
            }
            _ => return wrong("succeed"),
        },
        Event::VerifyStarted { soak_ms, checks } => {
            if state != S::Verifying || request.verification.is_some() {
                return wrong("start verifying");
            }
            next.verification = Some(Verification {
                soak_ms: *soak_ms,
                covered_ms: 0,
                checks: checks
                    .iter()
                    .map(|name| CheckStanding {
                        name: name.clone(),
                        probes: 0,
                        failures: 0,
                        failing_in_a_row: 0,
                        ok: false,
                        last: String::new(),
                    })
                    .collect(),
                verified_at: None,
                completed_by: None,
            });
        }
        Event::Probed {
            covered_ms,
            passed,
            failed,
        } => {
            let Some(v) = next.verification.as_mut().filter(|_| state == S::Verifying) else {
                return wrong("record probes");
            };
            v.covered_ms = v.covered_ms.max(*covered_ms).min(v.soak_ms);
            for (name, value, ok) in passed
                .iter()
                .map(|(n, x)| (n, x, true))
                .chain(failed.iter().map(|(n, x)| (n, x, false)))
            {
                let Some(check) = v.checks.iter_mut().find(|c| &c.name == name) else {
                    return Err(TransitionError::UnknownCheck(name.clone()));
                };
                check.probes += 1;
                check.ok = ok;
                check.last = value.clone();
                if ok {
                    check.failing_in_a_row = 0;
                } else {
                    check.failures += 1;
                    check.failing_in_a_row += 1;
                }
            }
        }
        Event::Proven => {
            let Some(v) = next.verification.as_mut().filter(|_| state == S::Verifying) else {
                return wrong("mark verified");
            };
            let all_held = v.checks.iter().all(|c| c.probes > 0 && c.ok);
            if v.covered_ms < v.soak_ms || !all_held {
                return Err(TransitionError::NotProven {
                    id,
                    left_ms: v.left_ms(),
                });
            }
            v.verified_at = Some(now);
            next.state = S::Succeeded;
        }
        Event::Completed { person } => {
            let Some(v) = next.verification.as_mut().filter(|_| state == S::Verifying) else {
                return wrong("complete a verification");
            };
            v.completed_by = Some(person.clone());
            next.state = S::Succeeded;
        }
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
/// given under and, with the roles approvers hold now, every rule is still
/// met. `DeployStarted`
/// makes them; a dry run asks them without starting anything.
pub fn check_start(
    request: &Request,
    head: &Sha,
    digest: Option<&Digest>,
    approver_roles: &BTreeMap<PersonId, Vec<RoleName>>,
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
        let tally = request.tally(Some(approver_roles));
        if !tally.met() {
            return Err(TransitionError::NotApproved {
                id: request.id,
                standing: tally.summary(),
            });
        }
    }
    Ok(())
}

fn approve(
    next: &mut Request,
    person: &PersonId,
    identity: &Identity,
    roles: &[RoleName],
    comment: Option<&str>,
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
    let relevant: Vec<RoleName> = rule
        .roles()
        .into_iter()
        .filter(|r| roles.contains(r))
        .collect();
    if relevant.is_empty() {
        let rules: Vec<String> = rule
            .rules
            .iter()
            .map(|r| {
                let roles: Vec<&str> = r.roles.iter().map(RoleName::as_str).collect();
                format!("{}: {}", r.name, roles.join(", "))
            })
            .collect();
        return refuse(format!(
            "{person} does not hold a role that may approve {id} ({})",
            rules.join("; ")
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
        roles: relevant,
        // The grammar refuses longer ones; this bounds what any caller records.
        comment: comment.map(|c| c.chars().take(MAX_REMARK_CHARS).collect()),
    });
    let tally = next.tally(None);
    if !tally.counts(person) {
        return refuse(format!(
            "{person}'s approval would not count: every rule they may approve for is already met ({})",
            tally.summary()
        ));
    }
    if tally.met() {
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
