//! The one dispatch every transport calls.
//!
//! A command is recorded together with its delivery
//! ([`Engine::accept_delivered`], flushed in one group commit): a repeat is
//! [`Dispatched::Duplicate`], and a delivery whose command could not be
//! recorded is released again, so the platform's redelivery is taken.
//! Anything else that acts (a reaction, a button, a review, a pull request
//! closing) is recorded as seen first. A refusal that is posted rather than
//! answered in band is recorded as seen too, so a redelivery does not post
//! it twice. The answer comes back at once. A command waits in the store's
//! queue for a worker (see [`super::front`]); other work is handed back as
//! a [`Work`] to spawn (or, to keep order, to await).

use super::front::{Answering, Front, Queued};
use super::{
    pulls, scope, Answer, CommandText, Dispatched, Idle, Inbound, Refusal, Started, What, Who, Work,
};
use crate::engine::{Accepted, Conversation, Engine, Reaction};
use crate::names::{Identity, RequestId};

/// An answer, and the work it started.
pub struct Dispatch {
    /// What to tell the platform now.
    pub answer: Dispatched,
    /// What runs after the answer, if anything was started.
    pub work: Option<Work>,
}

impl Dispatch {
    fn answer(answer: Dispatched) -> Dispatch {
        Dispatch { answer, work: None }
    }
}

/// Dispatches `inbound`, spawning its work; returns the answer.
pub async fn dispatch_spawned(front: &Front, inbound: Inbound) -> Dispatched {
    let Dispatch { answer, work } = dispatch(front, inbound).await;
    if let Some(work) = work {
        work.spawn();
    }
    answer
}

/// Dispatches `inbound`: de-duplicates, records, and answers; the work is
/// returned, not started.
pub async fn dispatch(front: &Front, inbound: Inbound) -> Dispatch {
    let engine = front.engine();
    let Inbound {
        delivery,
        place,
        answer,
        what,
    } = inbound;
    let delivery = delivery.as_deref();
    match what {
        What::Command { who, text } => command(front, delivery, place, answer, who, text).await,
        What::Reaction {
            who,
            message,
            reaction,
            button,
        } => once(engine, delivery, || {
            react(engine, place, who, message, reaction, button)
        }),
        What::Control {
            who,
            message,
            control,
            request,
        } => {
            if let Some(refused) = not_ours(engine, &place, &message, request) {
                return refused;
            }
            // The canonical text parses back to the same command.
            let text = CommandText::Typed(control.command(request).to_string());
            command(front, delivery, place, answer, Who::Known(who), text).await
        }
        What::Review { who, commit } => once(engine, delivery, || {
            pulls::review(engine, place, who, &commit)
        }),
        What::PullClosed { repo, number, head } => once(engine, delivery, || {
            pulls::closed(engine, &repo, number, &head)
        }),
    }
}

/// Acts the first time `delivery` is seen.
fn once(engine: &Engine, delivery: Option<&str>, act: impl FnOnce() -> Dispatch) -> Dispatch {
    match seen_before(engine, delivery) {
        Some(repeat) => Dispatch::answer(repeat),
        None => act(),
    }
}

/// Records `delivery` as seen: `None` the first time (or when there is no
/// delivery id), else the answer to give.
fn seen_before(engine: &Engine, delivery: Option<&str>) -> Option<Dispatched> {
    let key = delivery?;
    match engine.store().first_seen(key, engine.now()) {
        Ok(true) => None,
        Ok(false) => Some(Dispatched::Duplicate),
        Err(e) => Some(Dispatched::Unavailable(format!(
            "cannot record the delivery: {e}"
        ))),
    }
}

async fn command(
    front: &Front,
    delivery: Option<&str>,
    place: Conversation,
    answer: Answer,
    who: Who,
    text: CommandText,
) -> Dispatch {
    let engine = front.engine();
    let parsed = match &text {
        CommandText::Typed(text) => engine.parse(text).map(Some),
        CommandText::Comment { body, pull } => {
            engine
                .grammar()
                .parse_comment(body, *pull, engine.vocabulary())
        }
    };
    let command = match parsed {
        Ok(Some(command)) => command,
        Ok(None) => return Dispatch::answer(Dispatched::Ignored(Idle::NoCommand)),
        Err(e) => {
            return refuse(
                engine,
                delivery,
                place,
                &answer,
                Refusal::Parse,
                e.to_string(),
            )
        }
    };
    let identity = match who {
        Who::Known(identity) => identity,
        Who::Unknown(text) => {
            return refuse(
                engine,
                delivery,
                place,
                &answer,
                Refusal::UnknownIdentity,
                text,
            )
        }
    };
    let command = match scope::for_place(engine.config(), command, &place) {
        Ok(command) => command,
        Err(text) => {
            return refuse(
                engine,
                delivery,
                place,
                &answer,
                Refusal::WrongRepository,
                text,
            )
        }
    };
    // Durable before the acknowledgement, with its queue entry: a crash
    // after `on it` leaves the command in the audit trail and its entry in
    // the queue, which runs it when Gantry starts again.
    match engine.record_delivered(delivery, &identity, &place, &command) {
        Ok(Accepted::New) => {}
        Ok(Accepted::Duplicate) => return Dispatch::answer(Dispatched::Duplicate),
        Ok(Accepted::SlowDown(why)) => {
            return refuse(engine, delivery, place, &answer, Refusal::SlowDown, why)
        }
        Err(e) => {
            return Dispatch::answer(Dispatched::Unavailable(format!(
                "cannot record the command: {e}"
            )))
        }
    }
    let queued = Queued {
        identity,
        place,
        command: command.to_string(),
        answer: Answering::of(&answer),
    };
    let follow_up = match &answer {
        Answer::FollowUp(follow_up) => Some(follow_up.clone()),
        Answer::InBand | Answer::Posted { .. } => None,
    };
    let id = match front.enqueue(&queued, follow_up) {
        Ok(id) => id,
        Err(e) => {
            return Dispatch::answer(Dispatched::Unavailable(format!(
                "cannot queue the command: {e}"
            )))
        }
    };
    if let Err(e) = engine.store().flush_group().await {
        front.withdraw(id);
        return Dispatch::answer(Dispatched::Unavailable(format!(
            "cannot record the command: {e}"
        )));
    }
    front.release(id);
    Dispatch::answer(Dispatched::Accepted(Started::Command(command)))
}

/// Refuses before anything ran. In band, the text is the answer; posted,
/// it is said in the conversation once per delivery.
fn refuse(
    engine: &Engine,
    delivery: Option<&str>,
    place: Conversation,
    answer: &Answer,
    why: Refusal,
    text: String,
) -> Dispatch {
    let Answer::Posted { to } = answer else {
        return Dispatch::answer(Dispatched::Refused(why, text));
    };
    if let Some(repeat) = seen_before(engine, delivery) {
        return Dispatch::answer(repeat);
    }
    let text = match (to, why) {
        (Some(to), Refusal::Parse | Refusal::SlowDown) => format!("{to}: {text}"),
        _ => text,
    };
    let engine = engine.clone();
    let said = text.clone();
    Dispatch {
        answer: Dispatched::Refused(why, text),
        work: Some(Work::new(async move { engine.say(&place, &said).await })),
    }
}

/// A refusal unless `message` in `place` is request `id`'s own message:
/// a button rendered for one request does nothing on another's.
fn not_ours(
    engine: &Engine,
    place: &Conversation,
    message: &str,
    id: RequestId,
) -> Option<Dispatch> {
    let owner = engine.request_for_message(place.platform, &place.channel, message);
    (owner != Some(id)).then(|| {
        Dispatch::answer(Dispatched::Refused(
            Refusal::NotOurs,
            "this button is not on a request's message".into(),
        ))
    })
}

/// A reaction or a button on a message: counted by the engine; a
/// refusal is said in the conversation (a reaction has no other way to be
/// answered).
fn react(
    engine: &Engine,
    place: Conversation,
    who: Identity,
    message: String,
    reaction: Reaction,
    button: Option<RequestId>,
) -> Dispatch {
    if let Some(refused) = button.and_then(|id| not_ours(engine, &place, &message, id)) {
        return refused;
    }
    let engine = engine.clone();
    let work = async move {
        let reply = engine
            .react(&who, place.platform, &place.channel, &message, reaction)
            .await;
        if let Some(reply) = reply.filter(|r| r.is_refused()) {
            engine.say(&place, &reply.text).await;
        }
    };
    Dispatch {
        answer: Dispatched::Accepted(Started::Reaction),
        work: Some(Work::new(work)),
    }
}
