//! Where accepted commands wait for a place to run: in the store.
//!
//! The dispatch records a command and its queue entry, makes both durable
//! in one flush, and only then hands the entry's position to the workers;
//! a fixed number of workers (on the work runtime) take positions in
//! order and run their entries. Only positions wait in memory. So a burst costs disk, not memory,
//! and entries still waiting when the process stops are run when it starts
//! again. A deferred answer (a Discord interaction's original response) is
//! a handle in memory only; after a restart its command answers in the
//! channel instead.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use super::{Answer, FollowUp};
use crate::engine::{Conversation, Engine};
use crate::names::Identity;

/// How many commands run at once. Commands beyond this wait in the store.
pub const WORKERS: usize = 64;

/// One waiting command, as stored.
#[derive(Debug, Serialize, Deserialize)]
pub(super) struct Queued {
    /// Who sent it.
    pub identity: Identity,
    /// Where it came from.
    pub place: Conversation,
    /// Its canonical text, parsed again when it runs.
    pub command: String,
    /// How its answer goes.
    pub answer: Answering,
}

/// [`Answer`] as stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(super) enum Answering {
    /// Answered in band; later words are said in the conversation.
    InBand,
    /// Everything said in the conversation.
    Posted,
    /// A deferred answer, edited when the work replies.
    FollowUp,
}

impl Answering {
    pub(super) fn of(answer: &Answer) -> Answering {
        match answer {
            Answer::InBand => Answering::InBand,
            Answer::Posted { .. } => Answering::Posted,
            Answer::FollowUp(_) => Answering::FollowUp,
        }
    }
}

/// The front door's state: the engine, and the workers that run the
/// commands waiting in its store.
pub struct Front {
    engine: Engine,
    /// Positions of durable entries, in the order they became durable.
    ready: mpsc::UnboundedSender<u64>,
    follow_ups: Mutex<HashMap<u64, Arc<dyn FollowUp>>>,
}

impl Front {
    /// Starts [`WORKERS`] workers for `engine`'s queue; they first run what
    /// was waiting when the process last stopped.
    pub fn start(engine: Engine) -> Arc<Front> {
        let (ready, positions) = mpsc::unbounded_channel();
        let waiting = engine.store().queued_ids().unwrap_or_else(|e| {
            tracing::error!(error = %e, "cannot read the commands that were waiting");
            Vec::new()
        });
        if !waiting.is_empty() {
            tracing::info!(
                waiting = waiting.len(),
                "running the commands that were waiting"
            );
        }
        for id in waiting {
            let _ = ready.send(id);
        }
        let front = Arc::new(Front {
            engine,
            ready,
            follow_ups: Mutex::new(HashMap::new()),
        });
        let positions = Arc::new(tokio::sync::Mutex::new(positions));
        for _ in 0..WORKERS {
            let (front, positions) = (front.clone(), positions.clone());
            crate::work::spawn(async move { front.work(&positions).await });
        }
        front
    }

    /// The engine commands run on.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// Queues `queued`, not yet durable; `follow_up` is kept for it until
    /// it runs. Then [`Front::release`] once the store has flushed it.
    pub(super) fn enqueue(
        &self,
        queued: &Queued,
        follow_up: Option<Arc<dyn FollowUp>>,
    ) -> Result<u64, crate::store::StoreError> {
        let id = self.engine.store().enqueue(queued)?;
        if let Some(follow_up) = follow_up {
            self.follow_ups_lock().insert(id, follow_up);
        }
        Ok(id)
    }

    /// Entry `id` is durable: a worker may take it.
    pub(super) fn release(&self, id: u64) {
        // The workers hold the receiver for as long as the process runs.
        let _ = self.ready.send(id);
    }

    /// Entry `id` will not run after all (its command was not made
    /// durable): it is removed.
    pub(super) fn withdraw(&self, id: u64) {
        self.follow_ups_lock().remove(&id);
        let _ = self.engine.store().take_queued::<Queued>(id);
    }

    fn follow_ups_lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Arc<dyn FollowUp>>> {
        // Plain data: usable even if a holder panicked.
        self.follow_ups
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// One worker: runs entries as they are released.
    async fn work(&self, positions: &tokio::sync::Mutex<mpsc::UnboundedReceiver<u64>>) {
        loop {
            let Some(id) = positions.lock().await.recv().await else {
                return;
            };
            match self.engine.store().take_queued::<Queued>(id) {
                Ok(Some(queued)) => self.run(id, queued).await,
                Ok(None) => {}
                Err(e) => {
                    tracing::error!(error = %e, "a queued command cannot be read; it is dropped");
                }
            }
        }
    }

    async fn run(&self, id: u64, queued: Queued) {
        let follow_up = self.follow_ups_lock().remove(&id);
        let Queued {
            identity,
            place,
            command,
            answer,
        } = queued;
        let command = match self.engine.parse(&command) {
            Ok(command) => command,
            Err(e) => {
                // The grammar changed across a restart.
                let text = format!("`{command}` was accepted but can no longer be run: {e}");
                self.engine.say(&place, &text).await;
                return;
            }
        };
        if let Some(follow_up) = &follow_up {
            follow_up.update(&format!("on it: {command}")).await;
        }
        let reply = self.engine.run_accepted(&identity, &place, &command).await;
        match (answer, follow_up) {
            // The channel's progress message holds the outcome too, so a
            // follow-up that fails loses nothing.
            (Answering::FollowUp, Some(follow_up)) => follow_up.update(&reply.text).await,
            // A request reports in its progress message; anything else
            // (status, history, every refusal) is said where the command
            // came from.
            _ => {
                if reply.request.is_none() || reply.is_refused() {
                    self.engine.say(&place, &reply.text).await;
                }
            }
        }
    }
}
