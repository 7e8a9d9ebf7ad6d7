//! GitHub's webhook events, decoded into [`Inbound`]s.
//!
//! `X-GitHub-Event` names the event and `X-GitHub-Delivery` the delivery
//! (a GUID GitHub keeps across redeliveries):
//!
//! - `issue_comment` `created` on a pull request: a `/gantry <command>` or
//!   `/deploy <env>` line, run as the commenter; edited and deleted
//!   comments, comments on issues and comments by bots run nothing.
//!   Everything is answered in the pull request, addressed to the login.
//! - `pull_request` `closed` (merged or not): its previews are torn down.
//! - `pull_request_review` `submitted` with state `approved`: an approval
//!   of the requests waiting on the reviewed commit, only where
//!   `review_approvals = true`.
//! - `ping` is a handshake; anything else is not acted on.

use serde::Deserialize;
use serde_json::Value;

use super::{unique_keys, Answer, CommandText, Inbound, Rejected, What, Who};
use crate::config::Config;
use crate::engine::ports::MessageRef;
use crate::engine::{Conversation, Platform};
use crate::names::{GithubAccount, Identity};

/// What decoding GitHub needs from config.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Whether approving reviews count as approvals.
    pub review_approvals: bool,
}

/// What a webhook delivery is.
pub enum Decoded {
    /// `ping`: answer `pong`.
    Ping,
    /// A pull request comment that may hold a command; `comment` is the
    /// comment itself, to acknowledge with 👀 once a command is accepted.
    Comment {
        /// What to dispatch.
        inbound: Inbound,
        /// The comment.
        comment: MessageRef,
    },
    /// A pull request event that acts.
    Pull(Inbound),
}

#[derive(Deserialize)]
struct User {
    login: String,
    id: u64,
    #[serde(rename = "type", default)]
    kind: String,
}

#[derive(Deserialize)]
struct Repository {
    full_name: String,
}

#[derive(Deserialize)]
struct Issue {
    number: u64,
    #[serde(default)]
    pull_request: Option<Value>,
}

#[derive(Deserialize)]
struct Comment {
    id: u64,
    #[serde(default)]
    body: Option<String>,
    user: User,
}

#[derive(Deserialize)]
struct CommentEvent {
    action: String,
    issue: Issue,
    comment: Comment,
    repository: Repository,
}

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
struct PullEvent {
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
struct ReviewEvent {
    action: String,
    review: Review,
    pull_request: Pull,
    repository: Repository,
}

/// A signed delivery: its `event` and `delivery` headers and body. The
/// `config` says who is known (a commenter is matched by account id, then
/// by login).
pub fn webhook(
    config: &Config,
    settings: &Settings,
    event: Option<&str>,
    delivery: Option<&str>,
    bytes: &[u8],
) -> Result<Decoded, Rejected> {
    unique_keys(bytes, "the JSON body")?;
    let delivery = delivery.filter(|d| {
        !d.is_empty() && d.len() <= 64 && d.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
    });
    let (Some(delivery), Some(event)) = (delivery, event) else {
        return Err(Rejected::Malformed(
            "missing or malformed X-GitHub-Delivery or X-GitHub-Event".into(),
        ));
    };
    let delivery = format!("github:{delivery}");
    let payload = serde_json::from_slice::<Value>(bytes)
        .map_err(|_| Rejected::Malformed("malformed JSON".into()))?;
    let parse = |what: &str| Rejected::Malformed(format!("not a{what} payload"));
    match event {
        "ping" => Ok(Decoded::Ping),
        "issue_comment" => comment(
            config,
            serde_json::from_value(payload).map_err(|_| parse("n issue_comment"))?,
            delivery,
        ),
        "pull_request" => closed(
            serde_json::from_value(payload).map_err(|_| parse(" pull_request"))?,
            delivery,
        ),
        "pull_request_review" => review(
            config,
            settings,
            serde_json::from_value(payload).map_err(|_| parse(" pull_request_review"))?,
            delivery,
        ),
        _ => Err(Rejected::Ignored("ignored")),
    }
}

fn comment(config: &Config, event: CommentEvent, delivery: String) -> Result<Decoded, Rejected> {
    if event.action != "created" {
        return Err(Rejected::Ignored("ignored: only new comments run commands"));
    }
    if event.issue.pull_request.is_none() {
        return Err(Rejected::Ignored("ignored: not a pull request"));
    }
    let user = event.comment.user;
    if user.kind == "Bot" {
        return Err(Rejected::Ignored("ignored: comment by a bot"));
    }
    let place = conversation(&event.repository.full_name, event.issue.number);
    let who = match identity(config, &user) {
        Some(identity) => Who::Known(identity),
        None => Who::Unknown(format!(
            "{login} (GitHub account {id}) has no Gantry identity, so nothing was run. To get \
             access, ask a Gantry admin to add `github:{id}` to your entry under [people] in the \
             Gantry config.",
            login = user.login,
            id = user.id
        )),
    };
    let comment = MessageRef {
        conversation: place.clone(),
        id: event.comment.id.to_string(),
    };
    Ok(Decoded::Comment {
        inbound: Inbound {
            delivery: Some(delivery),
            place,
            answer: Answer::Posted {
                to: Some(user.login),
            },
            what: What::Command {
                who,
                text: CommandText::Comment {
                    body: event.comment.body.unwrap_or_default(),
                    pull: event.issue.number,
                },
            },
        },
        comment,
    })
}

fn closed(event: PullEvent, delivery: String) -> Result<Decoded, Rejected> {
    if event.action != "closed" {
        return Err(Rejected::Ignored("ignored"));
    }
    let number = event.pull_request.number;
    Ok(Decoded::Pull(Inbound {
        delivery: Some(delivery),
        place: conversation(&event.repository.full_name, number),
        answer: Answer::Posted { to: None },
        what: What::PullClosed {
            repo: event.repository.full_name,
            number,
            head: event.pull_request.head.r#ref,
        },
    }))
}

fn review(
    config: &Config,
    settings: &Settings,
    event: ReviewEvent,
    delivery: String,
) -> Result<Decoded, Rejected> {
    if !settings.review_approvals {
        return Err(Rejected::Ignored("ignored: reviews are not approvals here"));
    }
    if event.action != "submitted" || !event.review.state.eq_ignore_ascii_case("approved") {
        return Err(Rejected::Ignored("ignored"));
    }
    let Some(who) = identity(config, &event.review.user) else {
        return Err(Rejected::Ignored(
            "ignored: reviewer has no Gantry identity",
        ));
    };
    Ok(Decoded::Pull(Inbound {
        delivery: Some(delivery),
        place: conversation(&event.repository.full_name, event.pull_request.number),
        answer: Answer::Posted { to: None },
        what: What::Review {
            who,
            commit: event.review.commit_id,
        },
    }))
}

/// A pull request's conversation: `owner/repo#N`.
fn conversation(repo: &str, number: u64) -> Conversation {
    Conversation {
        platform: Platform::Github,
        channel: format!("{repo}#{number}"),
    }
}

/// The identity config knows the account by: its numeric id, else its login.
fn identity(config: &Config, user: &User) -> Option<Identity> {
    config.person_for_github(user.id, &user.login)?;
    let by_id = Identity::Github(GithubAccount::Id(user.id));
    Some(if config.person_for(&by_id).is_some() {
        by_id
    } else {
        Identity::Github(GithubAccount::Login(user.login.to_ascii_lowercase()))
    })
}
