//! What Gantry answers: a reply and the kind of answer it is.

use super::state::{Request, State};
use crate::names::RequestId;

/// What Gantry answers the person who typed the command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// The answer.
    pub text: String,
    /// The request it concerns, if any.
    pub request: Option<RequestId>,
    /// The request's state when the reply was made.
    pub state: Option<State>,
    /// What kind of answer it is; callers branch on this, never on the text.
    pub outcome: Outcome,
}

/// What a reply says happened to the command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Answered (help, status, an unlock, …), or a request's progress.
    Answered,
    /// Refused: nothing was changed, and the text says why.
    Refused,
}

impl Reply {
    /// A plain answer.
    pub fn text(text: impl Into<String>) -> Reply {
        Reply {
            text: text.into(),
            request: None,
            state: None,
            outcome: Outcome::Answered,
        }
    }

    /// A refusal: `refused: <why>`.
    pub fn refused(why: impl std::fmt::Display) -> Reply {
        Reply {
            outcome: Outcome::Refused,
            ..Reply::text(format!("refused: {why}"))
        }
    }

    /// A refusal concerning a request that stays as it was.
    pub fn refused_for(request: &Request, why: impl std::fmt::Display) -> Reply {
        Reply {
            outcome: Outcome::Refused,
            ..Reply::for_request(request, format!("refused: {why}"))
        }
    }

    /// An answer about a request.
    pub fn for_request(request: &Request, text: String) -> Reply {
        Reply {
            text,
            request: Some(request.id),
            state: Some(request.state),
            outcome: Outcome::Answered,
        }
    }

    /// Whether the command was refused.
    pub fn is_refused(&self) -> bool {
        self.outcome == Outcome::Refused
    }
}
