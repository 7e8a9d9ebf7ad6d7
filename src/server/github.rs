//! `POST /github/webhook`: GitHub webhooks.
//!
//! GitHub signs each delivery with `X-Hub-Signature-256` (HMAC-SHA256 of the
//! body), names it with `X-GitHub-Event` and `X-GitHub-Delivery`, and gives
//! up on an answer after 10 seconds. The route caps the body, verifies the
//! signature over the raw bytes before anything reads them, decodes
//! (`inbound::github`), dispatches and answers at once: `200 accepted: …`
//! for a command (and a 👀 on its comment), `200 duplicate` for a
//! delivery seen before, `503` when it could not be recorded (GitHub's
//! redelivery is then taken), `202` for what is not acted on.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use super::{read_body, rejected, timed, verify, Answered, ServerState};
use crate::config::Secret;
use crate::engine::ports::Notifier;
use crate::inbound::{self, github, Dispatched, Idle, Started};

const ROUTE: &str = "/github/webhook";

/// What the GitHub route needs.
pub struct GithubInbound {
    /// Current and previous webhook secrets.
    pub secrets: Vec<Secret>,
    /// What decoding needs.
    pub settings: github::Settings,
    /// Where the 👀 acknowledgement goes: the notifier that speaks to GitHub.
    pub notifier: Arc<dyn Notifier>,
}

fn answer(status: StatusCode, text: &str) -> Response {
    (status, text.to_owned()).into_response()
}

/// Handles one delivery.
pub(super) async fn webhook(
    State(state): State<Arc<ServerState>>,
    request: Request<Body>,
) -> Response {
    timed(&state, ROUTE, handle(&state, request)).await
}

async fn handle(state: &ServerState, request: Request<Body>) -> Answered {
    let Some(github) = &state.github else {
        return Err((
            "disabled",
            answer(StatusCode::NOT_FOUND, "GitHub is not enabled"),
        ));
    };
    let (parts, bytes) = read_body(request).await?;
    let header = |name: &str| parts.headers.get(name).and_then(|v| v.to_str().ok());
    if let Err(e) = verify::github(&github.secrets, header("x-hub-signature-256"), &bytes) {
        state.metrics.signature_failure(ROUTE);
        return Err((
            "unauthorized",
            answer(StatusCode::UNAUTHORIZED, &e.to_string()),
        ));
    }
    let decoded = github::webhook(
        state.front.engine().config(),
        &github.settings,
        header("x-github-event"),
        header("x-github-delivery"),
        &bytes,
    )
    .map_err(rejected)?;
    let (inbound, comment) = match decoded {
        github::Decoded::Ping => return Ok(("ping", answer(StatusCode::OK, "pong"))),
        github::Decoded::Comment { inbound, comment } => (inbound, Some(comment)),
        github::Decoded::Pull(inbound) => (inbound, None),
    };
    let dispatched = inbound::dispatch_spawned(&state.front, inbound).await;
    let response = match &dispatched {
        Dispatched::Accepted(Started::Command(command)) => {
            if let Some(comment) = comment {
                let notifier = github.notifier.clone();
                tokio::spawn(async move { notifier.react(&comment, "eyes").await });
            }
            answer(StatusCode::OK, &format!("accepted: {command}"))
        }
        Dispatched::Accepted(started) => answer(StatusCode::OK, &started.to_string()),
        Dispatched::Refused(..) => answer(StatusCode::OK, "refused; answered in the pull request"),
        Dispatched::Ignored(idle @ Idle::NoWaitingRequest) => {
            answer(StatusCode::ACCEPTED, &idle.to_string())
        }
        Dispatched::Ignored(idle) => answer(StatusCode::OK, &idle.to_string()),
        Dispatched::Duplicate => {
            state.metrics.duplicate(ROUTE);
            answer(StatusCode::OK, "duplicate")
        }
        Dispatched::Unavailable(why) => answer(StatusCode::SERVICE_UNAVAILABLE, why),
    };
    Ok((dispatched.label(), response))
}
