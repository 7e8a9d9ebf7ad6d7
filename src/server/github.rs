//! `POST /github/webhook`: GitHub webhooks.
//!
//! GitHub signs each delivery with `X-Hub-Signature-256` (HMAC-SHA256 of the
//! body), names it with `X-GitHub-Event` and `X-GitHub-Delivery`, and gives
//! up on an answer after 10 seconds. Gantry caps the body, verifies the
//! signature over the raw bytes before parsing, records the delivery id
//! (a repeat is `200 duplicate` and does nothing), answers at once and does
//! the work on a background task:
//!
//! - `issue_comment` `created` on a pull request: `/gantry <command>` or
//!   `/deploy <env>`, run as the commenter's GitHub identity, acknowledged
//!   with a 👀 reaction and answered in the pull request. Edited and deleted
//!   comments never run anything.
//! - `pull_request` `closed` (merged or not): the previews Gantry deployed
//!   for it are torn down.
//! - `pull_request_review` `submitted` + `approved`: an approval of the
//!   request waiting on that pull request's reviewed commit, only where
//!   `review_approvals = true`.
//! - `ping`: `200 pong`. Anything else: `202`, ignored.

use std::sync::Arc;
use std::time::Instant;

use axum::body::{to_bytes, Body};
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::Value;

use super::{verify, ServerState, MAX_BODY};
use crate::command::Command;
use crate::config::Secret;
use crate::engine::ports::{MessageRef, Notifier};
use crate::engine::Conversation;
use crate::names::{GithubAccount, Identity};

mod pulls;

const ROUTE: &str = "/github/webhook";

/// What the GitHub route needs.
pub struct GithubInbound {
    /// Current and previous webhook secrets.
    pub secrets: Vec<Secret>,
    /// Whether approving reviews count as approvals.
    pub review_approvals: bool,
    /// Where the 👀 acknowledgement goes: the notifier that speaks to GitHub.
    pub notifier: Arc<dyn Notifier>,
}

#[derive(Deserialize)]
pub(super) struct User {
    pub login: String,
    pub id: u64,
    #[serde(rename = "type", default)]
    pub kind: String,
}

#[derive(Deserialize)]
pub(super) struct Repository {
    pub full_name: String,
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

pub(super) fn answer(status: StatusCode, text: &str) -> Response {
    (status, text.to_owned()).into_response()
}

/// Handles one delivery.
pub(super) async fn webhook(
    State(state): State<Arc<ServerState>>,
    request: Request<Body>,
) -> Response {
    let started = Instant::now();
    let (outcome, response) = handle(&state, request).await;
    state.metrics.request(ROUTE, outcome, started.elapsed());
    response
}

async fn handle(state: &Arc<ServerState>, request: Request<Body>) -> (&'static str, Response) {
    let Some(github) = &state.github else {
        return (
            "disabled",
            answer(StatusCode::NOT_FOUND, "GitHub is not enabled"),
        );
    };
    let (parts, body) = request.into_parts();
    let Ok(bytes) = to_bytes(body, MAX_BODY).await else {
        return (
            "too_large",
            answer(StatusCode::PAYLOAD_TOO_LARGE, "body too large"),
        );
    };
    let header = |name: &str| parts.headers.get(name).and_then(|v| v.to_str().ok());
    if let Err(e) = verify::github(&github.secrets, header("x-hub-signature-256"), &bytes) {
        state.metrics.signature_failure(ROUTE);
        return (
            "unauthorized",
            answer(StatusCode::UNAUTHORIZED, &e.to_string()),
        );
    }
    if let Err(e) = crate::json_keys::check_unique_keys(&bytes) {
        let why = format!("{e} in the JSON body");
        return ("bad_request", answer(StatusCode::BAD_REQUEST, &why));
    }
    let delivery = header("x-github-delivery").filter(|d| {
        !d.is_empty() && d.len() <= 64 && d.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
    });
    let (Some(delivery), Some(event)) = (delivery, header("x-github-event")) else {
        return (
            "bad_request",
            answer(
                StatusCode::BAD_REQUEST,
                "missing or malformed X-GitHub-Delivery or X-GitHub-Event",
            ),
        );
    };
    let key = format!("github:{delivery}");
    let Ok(payload) = serde_json::from_slice::<Value>(&bytes) else {
        return (
            "bad_request",
            answer(StatusCode::BAD_REQUEST, "malformed JSON"),
        );
    };
    // Events that act without a command are recorded as seen first; a
    // command is recorded with its delivery when it is accepted.
    if matches!(event, "pull_request" | "pull_request_review") {
        if let Some(repeat) = super::repeat_answer(state, ROUTE, &key) {
            return repeat;
        }
    }
    match event {
        "ping" => ("ping", answer(StatusCode::OK, "pong")),
        "issue_comment" => match serde_json::from_value(payload) {
            Ok(event) => comment(state, github, event, &key).await,
            Err(_) => (
                "bad_request",
                answer(StatusCode::BAD_REQUEST, "not an issue_comment payload"),
            ),
        },
        "pull_request" => match serde_json::from_value(payload) {
            Ok(event) => pulls::closed(state, event),
            Err(_) => (
                "bad_request",
                answer(StatusCode::BAD_REQUEST, "not a pull_request payload"),
            ),
        },
        "pull_request_review" => match serde_json::from_value(payload) {
            Ok(event) => pulls::review(state, github, event),
            Err(_) => (
                "bad_request",
                answer(StatusCode::BAD_REQUEST, "not a pull_request_review payload"),
            ),
        },
        _ => ("ignored", answer(StatusCode::ACCEPTED, "ignored")),
    }
}

pub(super) fn conversation(repo: &str, number: u64) -> Conversation {
    Conversation {
        platform: crate::engine::Platform::Github,
        channel: format!("{repo}#{number}"),
    }
}

/// The identity config knows the account by: its numeric id, else its login.
pub(super) fn identity_for(state: &ServerState, user: &User) -> Option<Identity> {
    let config = state.engine.config();
    config.person_for_github(user.id, &user.login)?;
    let by_id = Identity::Github(GithubAccount::Id(user.id));
    Some(if config.person_for(&by_id).is_some() {
        by_id
    } else {
        Identity::Github(GithubAccount::Login(user.login.to_ascii_lowercase()))
    })
}

async fn comment(
    state: &Arc<ServerState>,
    github: &GithubInbound,
    event: CommentEvent,
    key: &str,
) -> (&'static str, Response) {
    if event.action != "created" {
        return (
            "ignored",
            answer(
                StatusCode::ACCEPTED,
                "ignored: only new comments run commands",
            ),
        );
    }
    if event.issue.pull_request.is_none() {
        return (
            "ignored",
            answer(StatusCode::ACCEPTED, "ignored: not a pull request"),
        );
    }
    if event.comment.user.kind == "Bot" {
        return (
            "ignored",
            answer(StatusCode::ACCEPTED, "ignored: comment by a bot"),
        );
    }
    let engine = state.engine.clone();
    let repo = event.repository.full_name;
    let number = event.issue.number;
    let place = conversation(&repo, number);
    let body = event.comment.body.unwrap_or_default();
    let user = event.comment.user;
    let parsed = engine
        .grammar()
        .parse_comment(&body, number, engine.vocabulary());
    let command = match parsed {
        Ok(None) => return ("no_command", answer(StatusCode::OK, "no command")),
        Ok(Some(command)) => command,
        Err(e) => {
            if let Some(repeat) = super::repeat_answer(state, ROUTE, key) {
                return repeat;
            }
            let text = format!("{}: {e}", user.login);
            tokio::spawn(async move { engine.say(&place, &text).await });
            return (
                "parse_error",
                answer(StatusCode::OK, "parse error; answered in the pull request"),
            );
        }
    };
    let Some(identity) = identity_for(state, &user) else {
        if let Some(repeat) = super::repeat_answer(state, ROUTE, key) {
            return repeat;
        }
        let text = format!(
            "{login} (GitHub account {id}) has no Gantry identity, so nothing was run. To get \
             access, ask a Gantry admin to add `github:{id}` to your entry under [people] in the \
             Gantry config.",
            login = user.login,
            id = user.id
        );
        tokio::spawn(async move { engine.say(&place, &text).await });
        return (
            "unknown_identity",
            answer(
                StatusCode::OK,
                "unknown identity; answered in the pull request",
            ),
        );
    };
    let command = match for_this_repo(state, command, &repo) {
        Ok(command) => command,
        Err(text) => {
            if let Some(repeat) = super::repeat_answer(state, ROUTE, key) {
                return repeat;
            }
            tokio::spawn(async move { engine.say(&place, &text).await });
            return (
                "wrong_repo",
                answer(StatusCode::OK, "refused; answered in the pull request"),
            );
        }
    };
    // Durable before the acknowledgement, together with the delivery id: a
    // crash after 200 leaves the command in the audit trail, and a delivery
    // that could not be recorded is taken when GitHub sends it again.
    match engine
        .accept_delivered(Some(key), &identity, &place, &command)
        .await
    {
        Ok(crate::engine::Accepted::New) => {}
        Ok(crate::engine::Accepted::Duplicate) => {
            state.metrics.duplicate(ROUTE);
            return ("duplicate", answer(StatusCode::OK, "duplicate"));
        }
        Ok(crate::engine::Accepted::SlowDown(why)) => {
            let text = format!("{}: {why}", user.login);
            tokio::spawn(async move { engine.say(&place, &text).await });
            return (
                "slow_down",
                answer(StatusCode::OK, "slow down; answered in the pull request"),
            );
        }
        Err(e) => {
            return (
                "store_error",
                answer(
                    StatusCode::SERVICE_UNAVAILABLE,
                    &format!("cannot record the command: {e}"),
                ),
            )
        }
    }
    let notifier = github.notifier.clone();
    let seen = MessageRef {
        conversation: place.clone(),
        id: event.comment.id.to_string(),
    };
    let text = command.to_string();
    tokio::spawn(async move {
        let _ = notifier.react(&seen, "eyes").await;
        let reply = engine.run_accepted(&identity, &place, &command).await;
        // A request reports in its own progress comment; anything else,
        // every refusal included, is answered here.
        if reply.request.is_none() || reply.is_refused() {
            engine.say(&place, &reply.text).await;
        }
    });
    (
        "accepted",
        answer(StatusCode::OK, &format!("accepted: {text}")),
    )
}

/// A command from a pull request acts on that pull request's repository:
/// with no app named, the app whose repository it is; a named app must be it.
fn for_this_repo(state: &ServerState, command: Command, repo: &str) -> Result<Command, String> {
    let config = state.engine.config();
    let ours: Vec<_> = config
        .apps()
        .iter()
        .filter(|a| a.repo.to_string().eq_ignore_ascii_case(repo))
        .collect();
    let Some(first) = ours.first() else {
        return Err(format!(
            "{repo} is not the repository of any app in the Gantry config"
        ));
    };
    let check =
        |app: &Option<crate::names::AppName>| -> Result<Option<crate::names::AppName>, String> {
            match app {
            None => Ok(Some(first.name.clone())),
            Some(name) if ours.iter().any(|a| &a.name == name) => Ok(Some(name.clone())),
            Some(name) => Err(format!("{name} is not built from {repo}; run its commands from its own repository or chat")),
        }
        };
    Ok(match command {
        Command::Deploy {
            reference,
            app,
            env,
            dry_run,
        } => Command::Deploy {
            reference,
            app: check(&app)?,
            env,
            dry_run,
        },
        Command::Build { reference, app } => Command::Build {
            reference,
            app: check(&app)?,
        },
        other => other,
    })
}
