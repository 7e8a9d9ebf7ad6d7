//! The front door: everything that comes in, from every transport.
//!
//! A transport (an HTTP route, Slack's Socket Mode, Discord's gateway)
//! authenticates what arrives, hands the bytes to its platform's decoder
//! ([`slack`], [`discord`], [`github`]), which makes one closed [`Inbound`]
//! of them, and gives that to the one [`dispatch`]: it de-duplicates by the
//! platform's delivery id, records a command in the audit trail before
//! anything else, and answers with a typed [`Dispatched`] at once, while
//! the work runs within the engine's bound. The transport then renders the
//! answer its platform's way.
//!
//! Nothing here knows HTTP or WebSockets, and nothing here calls the
//! server, the sockets or the outbound adapters: they call this.

pub mod discord;
mod dispatch;
mod front;
pub mod github;
mod pulls;
mod scope;
pub mod slack;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use async_trait::async_trait;

pub use dispatch::{dispatch, dispatch_spawned, Dispatch};
pub use front::{Front, WORKERS};

use crate::command::Command;
use crate::engine::{Conversation, Reaction};
use crate::names::{Identity, RequestId};

/// One thing that came in: where from, how to answer, and what it is.
pub struct Inbound {
    /// The platform's id for this delivery, prefixed by its transport
    /// (`github:<X-GitHub-Delivery>`, `slack-event:<event_id>`); `None`
    /// when the transport itself delivers once (the Discord gateway).
    pub delivery: Option<String>,
    /// The conversation it came from, where answers go.
    pub place: Conversation,
    /// How the person is answered.
    pub answer: Answer,
    /// What it is.
    pub what: What,
}

/// How the person who sent something is answered.
#[derive(Clone)]
pub enum Answer {
    /// In the transport's acknowledgement (an ephemeral Slack reply); what
    /// the work says later, when it is not in a progress message, is
    /// posted in the conversation.
    InBand,
    /// Everything is posted in the conversation (a pull request comment),
    /// addressed to `to` when given.
    Posted {
        /// The name to address, e.g. a GitHub login.
        to: Option<String>,
    },
    /// The acknowledgement defers; `on it` and the work's reply then
    /// replace it (a Discord interaction's original response).
    FollowUp(Arc<dyn FollowUp>),
}

/// A deferred answer the work edits later.
#[async_trait]
pub trait FollowUp: Send + Sync {
    /// Replaces the deferred answer's text; a failure is not fatal (the
    /// progress message holds the outcome).
    async fn update(&self, text: &str);
}

/// What came in.
pub enum What {
    /// A person typed a command.
    Command {
        /// Who typed it.
        who: Who,
        /// The text.
        text: CommandText,
    },
    /// A reaction added or removed, or a button clicked, on a message.
    Reaction {
        /// Who reacted.
        who: Identity,
        /// The platform's id of the message.
        message: String,
        /// What it means.
        reaction: Reaction,
        /// For a button: the request it was rendered for, which must be the
        /// message's request.
        button: Option<RequestId>,
    },
    /// A button that stands for a command about its request, clicked: run
    /// as if the clicker had typed the command, once the button is found
    /// on that request's message.
    Control {
        /// Who clicked.
        who: Identity,
        /// The platform's id of the message the button is on.
        message: String,
        /// Which button.
        control: Control,
        /// The request it was rendered for.
        request: RequestId,
    },
    /// An approving review of `commit` on the pull request in `place`.
    Review {
        /// The reviewer.
        who: Identity,
        /// The reviewed commit.
        commit: String,
    },
    /// A pull request was closed (merged or not).
    PullClosed {
        /// `owner/repo`.
        repo: String,
        /// Its number.
        number: u64,
        /// Its head branch.
        head: String,
    },
}

/// The buttons of a verifying request's message, each a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Control {
    /// Roll back: `rollback R-7`.
    RollBack,
    /// Complete: `complete R-7`.
    Complete,
}

impl Control {
    /// The command a click on the button for `request` means.
    pub fn command(self, request: RequestId) -> Command {
        match self {
            Control::RollBack => Command::RollbackRequest { id: request },
            Control::Complete => Command::Complete { id: request },
        }
    }
}

/// What a click on one of Gantry's buttons means, for the decoders.
enum Click {
    /// Approve or Deny: counted like a reaction.
    Reaction(Reaction),
    /// Roll back or Complete: a command.
    Control(Control),
}

/// Who sent a command.
pub enum Who {
    /// An identity Gantry may know.
    Known(Identity),
    /// Someone Gantry has no identity for; the text tells them how to get
    /// one, if the message holds a command at all.
    Unknown(String),
}

/// The text of a command.
pub enum CommandText {
    /// Typed in chat: the whole text is the command.
    Typed(String),
    /// A pull request comment, in which a `/gantry` or `/deploy` line may be
    /// the command, for pull request `pull`.
    Comment {
        /// The comment's body.
        body: String,
        /// The pull request's number.
        pull: u64,
    },
}

/// Why something was refused before anything was run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The text is not a command.
    Parse,
    /// Gantry knows no one by the sender's account.
    UnknownIdentity,
    /// A pull request's command names an app of another repository.
    WrongRepository,
    /// The sender started too much work lately.
    SlowDown,
    /// A button that is not on its request's message.
    NotOurs,
}

impl Refusal {
    /// The outcome label in `/metrics`.
    pub fn label(self) -> &'static str {
        match self {
            Refusal::Parse => "parse_error",
            Refusal::UnknownIdentity => "unknown_identity",
            Refusal::WrongRepository => "wrong_repo",
            Refusal::SlowDown => "slow_down",
            Refusal::NotOurs => "ignored",
        }
    }
}

/// What a dispatch started.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Started {
    /// A command, recorded.
    Command(Command),
    /// A reaction or button, being counted.
    Reaction,
    /// Teardowns of these preview branches.
    Teardown(Vec<String>),
    /// Approvals by a review.
    Approval,
}

impl std::fmt::Display for Started {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Started::Command(command) => write!(f, "on it: {command}"),
            Started::Reaction => f.write_str("counted"),
            Started::Teardown(branches) => write!(f, "tearing down: {}", branches.join(", ")),
            Started::Approval => f.write_str("approval recorded"),
        }
    }
}

/// Why a dispatch had nothing to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Idle {
    /// A comment without a command line.
    NoCommand,
    /// A closed pull request without previews.
    NoPreview,
    /// A review of a commit no request waits on.
    NoWaitingRequest,
}

impl Idle {
    /// The outcome label in `/metrics`.
    pub fn label(self) -> &'static str {
        match self {
            Idle::NoCommand => "no_command",
            Idle::NoPreview => "no_preview",
            Idle::NoWaitingRequest => "ignored",
        }
    }
}

impl std::fmt::Display for Idle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Idle::NoCommand => "no command",
            Idle::NoPreview => "no preview to tear down",
            Idle::NoWaitingRequest => "ignored: no request waits on this commit",
        })
    }
}

/// What became of something that came in; the transport renders it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Dispatched {
    /// Recorded and started.
    Accepted(Started),
    /// Refused before anything ran; the text says why (and, for
    /// [`Answer::Posted`], has been posted).
    Refused(Refusal, String),
    /// Nothing to do.
    Ignored(Idle),
    /// The platform delivered it before; nothing was done.
    Duplicate,
    /// It could not be recorded, so nothing started; the platform may
    /// deliver it again.
    Unavailable(String),
}

impl Dispatched {
    /// The outcome label in `/metrics`.
    pub fn label(&self) -> &'static str {
        match self {
            Dispatched::Accepted(_) => "accepted",
            Dispatched::Refused(why, _) => why.label(),
            Dispatched::Ignored(idle) => idle.label(),
            Dispatched::Duplicate => "duplicate",
            Dispatched::Unavailable(_) => "store_error",
        }
    }

    /// The text a person reads in an in-band answer.
    pub fn text(&self) -> String {
        match self {
            Dispatched::Accepted(started) => started.to_string(),
            Dispatched::Refused(_, text) | Dispatched::Unavailable(text) => text.clone(),
            Dispatched::Ignored(idle) => idle.to_string(),
            Dispatched::Duplicate => "duplicate".into(),
        }
    }
}

/// Why a decoder would not make an [`Inbound`] of what arrived.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rejected {
    /// Not what the platform sends (HTTP 400).
    Malformed(String),
    /// From a workspace or application Gantry is not configured for (HTTP
    /// 403).
    Forbidden(String),
    /// Not acted on; the person is told why in band (a Discord ephemeral
    /// reply).
    Told(&'static str, String),
    /// Well formed but not for Gantry to act on (HTTP 200 or 202).
    Ignored(&'static str),
}

impl Rejected {
    /// The outcome label in `/metrics`.
    pub fn label(&self) -> &'static str {
        match self {
            Rejected::Malformed(_) => "bad_request",
            Rejected::Forbidden(_) => "forbidden",
            Rejected::Told(label, _) => label,
            Rejected::Ignored(label) => label,
        }
    }
}

/// The work a dispatch started: the transport spawns it, or (the gateway,
/// which keeps reactions in order) awaits it.
pub struct Work(Pin<Box<dyn Future<Output = ()> + Send>>);

impl Work {
    fn new(work: impl Future<Output = ()> + Send + 'static) -> Work {
        Work(Box::pin(work))
    }

    /// Runs it on a task of its own, on the work runtime when there is
    /// one (see [`crate::work`]).
    pub fn spawn(self) {
        crate::work::spawn(self.0);
    }

    /// Runs it here.
    pub async fn run(self) {
        self.0.await;
    }
}

/// Checks that JSON has no key twice in one object: serde would keep the
/// last, so a signed `{"action":"edited",…,"action":"created"}` would act as
/// `created`. Every inbound JSON body goes through this first.
pub(crate) fn unique_keys(bytes: &[u8], what: &str) -> Result<(), Rejected> {
    crate::json_keys::check_unique_keys(bytes)
        .map_err(|e| Rejected::Malformed(format!("{e} in {what}")))
}
