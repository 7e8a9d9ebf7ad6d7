//! Pull request events: previews torn down on close, approving reviews.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;

use super::{answer, conversation, identity_for, GithubInbound, Repository, User};
use crate::command::{BranchName, Command};
use crate::config::Target;
use crate::engine::{Action, Request as GantryRequest, State as RequestState};
use crate::names::RequestId;
use crate::server::ServerState;

#[derive(Deserialize)]
struct PullHead {
    r#ref: String,
}

#[derive(Deserialize)]
struct Pull {
    number: u64,
    head: PullHead,
}

#[derive(Deserialize)]
pub(super) struct PullEvent {
    action: String,
    pull_request: Pull,
    repository: Repository,
}

#[derive(Deserialize)]
struct Review {
    state: String,
    commit_id: String,
    user: User,
}

#[derive(Deserialize)]
pub(super) struct ReviewEvent {
    action: String,
    review: Review,
    pull_request: Pull,
    repository: Repository,
}

/// On `closed`, tears down each preview Gantry deployed from this pull
/// request (`#N`, namespace branch `pr-N`) or from its head branch. Each
/// teardown runs as the person who deployed that preview, in the
/// conversation it was deployed from: they had the right to create it, while
/// whoever closed the pull request may have no Gantry identity at all.
pub(super) fn closed(state: &Arc<ServerState>, event: PullEvent) -> (&'static str, Response) {
    if event.action != "closed" {
        return ("ignored", answer(StatusCode::ACCEPTED, "ignored"));
    }
    let number = event.pull_request.number;
    let head = event.pull_request.head.r#ref;
    let repo = event.repository.full_name;
    let engine = state.engine.clone();
    let config = engine.config();
    let requests: Vec<(u64, GantryRequest)> = engine.store().requests().unwrap_or_default();
    let mut previews: BTreeMap<String, (u64, GantryRequest)> = BTreeMap::new();
    let mut removed: BTreeMap<String, u64> = BTreeMap::new();
    for (id, request) in requests {
        let from_repo = config
            .app(request.app.as_str())
            .is_some_and(|a| a.repo.to_string().eq_ignore_ascii_case(&repo));
        let preview = request
            .env
            .as_ref()
            .and_then(|e| config.env(e.as_str()))
            .is_some_and(|e| matches!(e.target, Target::Preview { .. }));
        match &request.action {
            Action::Deploy { reference } if from_repo && preview => {
                let branch = if *reference == format!("#{number}") {
                    format!("pr-{number}")
                } else if *reference == head {
                    head.clone()
                } else {
                    continue;
                };
                let never_ran = matches!(
                    request.state,
                    RequestState::Denied | RequestState::Expired | RequestState::Cancelled
                );
                if !never_ran && !request.dry_run {
                    previews.insert(branch, (id, request));
                }
            }
            Action::Teardown { branch } if request.state == RequestState::Succeeded => {
                removed.insert(branch.clone(), id);
            }
            _ => {}
        }
    }
    previews.retain(|branch, (id, _)| removed.get(branch).is_none_or(|gone| gone < id));
    if previews.is_empty() {
        return (
            "no_preview",
            answer(StatusCode::OK, "no preview to tear down"),
        );
    }
    let branches: Vec<String> = previews.keys().cloned().collect();
    tokio::spawn(async move {
        for (branch, (_, deployed)) in previews {
            let Ok(branch) = BranchName::parse(&branch) else {
                continue;
            };
            let command = Command::Teardown { branch };
            engine
                .run(&deployed.identity, &deployed.conversation, &command)
                .await;
        }
    });
    (
        "teardown",
        answer(
            StatusCode::OK,
            &format!("tearing down: {}", branches.join(", ")),
        ),
    )
}

/// An approving review approves the request waiting on that pull request,
/// if config says reviews count and the review is of the request's commit.
pub(super) fn review(
    state: &Arc<ServerState>,
    github: &GithubInbound,
    event: ReviewEvent,
) -> (&'static str, Response) {
    if !github.review_approvals {
        return (
            "ignored",
            answer(
                StatusCode::ACCEPTED,
                "ignored: reviews are not approvals here",
            ),
        );
    }
    if event.action != "submitted" || !event.review.state.eq_ignore_ascii_case("approved") {
        return ("ignored", answer(StatusCode::ACCEPTED, "ignored"));
    }
    let Some(identity) = identity_for(state, &event.review.user) else {
        return (
            "unknown_identity",
            answer(
                StatusCode::ACCEPTED,
                "ignored: reviewer has no Gantry identity",
            ),
        );
    };
    let place = conversation(&event.repository.full_name, event.pull_request.number);
    let requests: Vec<(u64, GantryRequest)> = state.engine.store().requests().unwrap_or_default();
    let waiting: Vec<RequestId> = requests
        .into_iter()
        .map(|(_, r)| r)
        .filter(|r| r.state == RequestState::AwaitingApproval && r.conversation == place)
        .filter(|r| {
            r.sha
                .as_ref()
                .is_some_and(|s| s.as_str() == event.review.commit_id)
        })
        .map(|r| r.id)
        .collect();
    if waiting.is_empty() {
        return (
            "ignored",
            answer(
                StatusCode::ACCEPTED,
                "ignored: no request waits on this commit",
            ),
        );
    }
    let engine = state.engine.clone();
    tokio::spawn(async move {
        for id in waiting {
            engine
                .run(&identity, &place, &Command::Approve { id })
                .await;
        }
    });
    ("approval", answer(StatusCode::OK, "approval recorded"))
}
