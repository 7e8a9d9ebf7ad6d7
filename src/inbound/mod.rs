//! The front door's one dispatch: every transport (HTTP routes, Slack
//! Socket Mode, the Discord gateway) hands an authenticated command here,
//! with the platform's delivery id, and gets a typed answer back.
//!
//! The command and its delivery are recorded together
//! ([`Engine::accept_delivered`], flushed in one group commit): a repeat is
//! a [`Dispatched::Duplicate`], and a delivery whose command could not be
//! recorded is released again, so the platform's redelivery is taken. The work then runs in the background
//! within the engine's bound; whatever it answers outside a request's
//! progress message — a refusal above all — is posted where the command
//! came from.

use crate::command::Command;
use crate::engine::{Accepted, Conversation, Engine};
use crate::names::Identity;
use crate::store::{Store, StoreError};

/// What became of an inbound command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Dispatched {
    /// Recorded and started; the text acknowledges it (`on it: …`).
    Accepted(String),
    /// The platform delivered it before; nothing was done.
    Duplicate,
    /// Refused before anything was recorded (the sender started too much
    /// work lately); the text says why and when to try again.
    Refused(String),
    /// It could not be recorded, so nothing started; the text says why.
    Unavailable(String),
}

/// Records `command` from `identity` (with the platform's `delivery` id,
/// when it has one) and runs it in the background, reporting to
/// `conversation`.
pub async fn command(
    engine: &Engine,
    delivery: Option<&str>,
    identity: Identity,
    conversation: Conversation,
    command: Command,
) -> Dispatched {
    match engine
        .accept_delivered(delivery, &identity, &conversation, &command)
        .await
    {
        Ok(Accepted::New) => {}
        Ok(Accepted::Duplicate) => return Dispatched::Duplicate,
        Ok(Accepted::SlowDown(why)) => return Dispatched::Refused(why),
        Err(e) => return Dispatched::Unavailable(format!("cannot record the command: {e}")),
    }
    let text = format!("on it: {command}");
    let engine = engine.clone();
    tokio::spawn(async move {
        let reply = engine
            .run_accepted(&identity, &conversation, &command)
            .await;
        // A request reports in its progress message; anything else (status,
        // history, every refusal) is posted here.
        if reply.request.is_none() || reply.is_refused() {
            engine.say(&conversation, &reply.text).await;
        }
    });
    Dispatched::Accepted(text)
}

/// Whether an inbound event that is not a command (a reaction, a button,
/// a pull request closing) is seen for the first time.
#[derive(Debug)]
pub enum Once {
    /// First time: act on it.
    First,
    /// Seen before: answer `duplicate`, do nothing.
    Duplicate,
    /// The store could not record it.
    Unavailable(StoreError),
}

/// Records delivery `key` as seen at `now`, once.
pub fn once(store: &Store, key: &str, now: i64) -> Once {
    match store.first_seen(key, now) {
        Ok(true) => Once::First,
        Ok(false) => Once::Duplicate,
        Err(e) => Once::Unavailable(e),
    }
}
