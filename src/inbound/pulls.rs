//! What pull request events do: previews torn down on close, approving
//! reviews counted as approvals.

use std::collections::BTreeMap;

use super::{Dispatch, Dispatched, Idle, Started, Work};
use crate::command::{BranchName, Command};
use crate::config::Target;
use crate::engine::{Action, Conversation, Engine, Request, State};
use crate::names::{Identity, RequestId};

/// Tears down each preview Gantry deployed from pull request `number` of
/// `repo` (`#N`, namespace branch `pr-N`) or from its `head` branch. Each
/// teardown runs as the person who deployed that preview, in the
/// conversation it was deployed from: they had the right to create it,
/// while whoever closed the pull request may have no Gantry identity.
pub(super) fn closed(engine: &Engine, repo: &str, number: u64, head: &str) -> Dispatch {
    let config = engine.config();
    let requests: Vec<(u64, Request)> = engine.store().requests().unwrap_or_default();
    let mut previews: BTreeMap<String, (u64, Request)> = BTreeMap::new();
    let mut removed: BTreeMap<String, u64> = BTreeMap::new();
    for (id, request) in requests {
        let from_repo = config
            .app(request.app.as_str())
            .is_some_and(|a| a.repo.to_string().eq_ignore_ascii_case(repo));
        let preview = request
            .env
            .as_ref()
            .and_then(|e| config.env(e.as_str()))
            .is_some_and(|e| matches!(e.target, Target::Preview { .. }));
        match &request.action {
            Action::Deploy { reference } if from_repo && preview => {
                let branch = if *reference == format!("#{number}") {
                    format!("pr-{number}")
                } else if reference == head {
                    head.to_owned()
                } else {
                    continue;
                };
                let never_ran = matches!(
                    request.state,
                    State::Denied | State::Expired | State::Cancelled
                );
                if !never_ran && !request.dry_run {
                    previews.insert(branch, (id, request));
                }
            }
            Action::Teardown { branch } if request.state == State::Succeeded => {
                removed.insert(branch.clone(), id);
            }
            _ => {}
        }
    }
    previews.retain(|branch, (id, _)| removed.get(branch).is_none_or(|gone| gone < id));
    if previews.is_empty() {
        return Dispatch {
            answer: Dispatched::Ignored(Idle::NoPreview),
            work: None,
        };
    }
    let branches: Vec<String> = previews.keys().cloned().collect();
    let engine = engine.clone();
    let work = async move {
        for (branch, (_, deployed)) in previews {
            let Ok(branch) = BranchName::parse(&branch) else {
                continue;
            };
            let command = Command::Teardown { branch };
            engine
                .run(&deployed.identity, &deployed.conversation, &command)
                .await;
        }
    };
    Dispatch {
        answer: Dispatched::Accepted(Started::Teardown(branches)),
        work: Some(Work::new(work)),
    }
}

/// An approving review by `who` of `commit` approves each request waiting
/// in `place` (the pull request) on that commit.
pub(super) fn review(
    engine: &Engine,
    place: Conversation,
    who: Identity,
    commit: &str,
) -> Dispatch {
    let requests: Vec<(u64, Request)> = engine.store().requests().unwrap_or_default();
    let waiting: Vec<RequestId> = requests
        .into_iter()
        .map(|(_, r)| r)
        .filter(|r| r.state == State::AwaitingApproval && r.conversation == place)
        .filter(|r| r.sha.as_ref().is_some_and(|s| s.as_str() == commit))
        .map(|r| r.id)
        .collect();
    if waiting.is_empty() {
        return Dispatch {
            answer: Dispatched::Ignored(Idle::NoWaitingRequest),
            work: None,
        };
    }
    let engine = engine.clone();
    let work = async move {
        for id in waiting {
            engine
                .run(&who, &place, &Command::Approve { id, comment: None })
                .await;
        }
    };
    Dispatch {
        answer: Dispatched::Accepted(Started::Approval),
        work: Some(Work::new(work)),
    }
}
