//! What happens to a request, and why the machine may refuse it.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{ApprovalRule, State};
use crate::names::{Digest, Identity, PersonId, RequestId, RoleName, Sha};

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
        /// What the request's message should say about what was picked
        /// (a rollback with no verified release to go back to).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        note: Option<String>,
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
        /// The roles they hold right now.
        roles: Vec<RoleName>,
        /// What they said with it, if anything.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        comment: Option<String>,
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
        /// The roles each approver holds now; someone absent holds none.
        approver_roles: BTreeMap<PersonId, Vec<RoleName>>,
        /// The config fingerprint now.
        policy_version: String,
    },
    /// The Git host recorded the deployment (while `Deploying`), so its
    /// status can be set when the request ends, after a restart too.
    DeploymentRecorded {
        /// The Git host's id for it.
        id: u64,
    },
    /// The rollout completed; checking what runs.
    RolledOut,
    /// What runs is what was deployed; with no verification configured,
    /// the request is done.
    Verified,
    /// The verification's checks start (only while `Verifying`, once).
    VerifyStarted {
        /// Soak time, in milliseconds.
        soak_ms: u64,
        /// The checks' names, in config order.
        checks: Vec<String>,
    },
    /// A round of probes: what each probed check saw, and how much of the
    /// soak is covered now.
    Probed {
        /// Soak covered so far, in milliseconds.
        covered_ms: u64,
        /// Checks whose probe passed, with what they saw.
        passed: Vec<(String, String)>,
        /// Checks whose probe failed, with what they saw.
        failed: Vec<(String, String)>,
    },
    /// Every check held for the whole soak: the release is verified.
    Proven,
    /// An approver ended the soak early: the release goes ahead, not
    /// verified.
    Completed {
        /// Who.
        person: PersonId,
    },
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
    /// A probe result for a check the verification does not have.
    #[error("the verification has no check named {0}")]
    UnknownCheck(String),
    /// Marked verified before every check held for the whole soak.
    #[error("{id} is not proven: its checks must hold for {left_ms} ms more")]
    NotProven {
        /// The request.
        id: RequestId,
        /// Soak time left.
        left_ms: u64,
    },
    /// Not every rule is met by valid approvals at the moment of acting.
    #[error("{id} does not have the approvals it needs now: {standing}")]
    NotApproved {
        /// The request.
        id: RequestId,
        /// How its rules stand now, as [`super::Tally::summary`] says.
        standing: String,
    },
}
