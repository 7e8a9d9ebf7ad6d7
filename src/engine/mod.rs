//! The delivery engine: requests walking a persisted state machine.
//!
//! [`Engine::handle`] takes one inbound command from a known platform
//! identity and drives it as far as it can go: to a reply, to a request
//! waiting for approvals, or through a whole rollout. Every change of a
//! request is written to the store with its audit event, durably, before the
//! side effect it announces starts; if that write fails, nothing starts.

mod dispatch;
mod dry_run;
mod execute;
mod locks;
mod place;
mod progress;
mod readiness;
mod recheck;
mod record;
mod recover;
mod refs;
mod releases;
mod reply;
mod request;
mod rollout;
mod soak;
mod verbs;

pub mod ports;
pub mod state;
pub mod throttle;

#[cfg(test)]
mod state_tests;
#[cfg(test)]
mod testing;

use std::sync::Arc;

pub use dispatch::Accepted;
pub use ports::{Buttons, Cluster, Forge, Notifier, PortError, Probed, Prober, Registry};
pub use readiness::{Check, PROBE_TIMEOUT};
pub use reply::{Outcome, Reply};
pub use soak::Control;
pub use state::{
    transition, Action, Approval, ApprovalRule, Conversation, Event, Platform, Request, State,
    TransitionError,
};
pub use verbs::approvals::Reaction;

use crate::command::{Grammar, Vocabulary};
use crate::config::Config;
use crate::store::{Store, StoreError};

/// The outside world, as the engine sees it.
#[derive(Clone)]
pub struct Ports {
    /// The Git host.
    pub forge: Arc<dyn Forge>,
    /// The container registry.
    pub registry: Arc<dyn Registry>,
    /// The cluster.
    pub cluster: Arc<dyn Cluster>,
    /// The chat platforms.
    pub notifier: Arc<dyn Notifier>,
    /// What verification checks probe: HTTP endpoints and Prometheus.
    pub prober: Arc<dyn Prober>,
}

/// A clock in unix seconds; injected so tests control time.
pub type Clock = Arc<dyn Fn() -> i64 + Send + Sync>;

/// The system clock.
pub fn system_clock() -> Clock {
    Arc::new(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
    })
}

/// An internal failure: the store, or a bug surfacing as a refused transition.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The store could not record something; nothing was started.
    #[error("could not record this in the audit trail ({0}); nothing was changed")]
    Store(#[from] StoreError),
    /// A state change the machine refused.
    #[error(transparent)]
    Transition(#[from] TransitionError),
}

/// The engine and everything it works with.
#[derive(Clone)]
pub struct Engine {
    config: Arc<Config>,
    grammar: Arc<Grammar>,
    vocabulary: Arc<Vocabulary>,
    store: Store,
    ports: Ports,
    clock: Clock,
    /// Commands that may run at once; the rest wait their turn, already
    /// recorded, so a burst of work never slows acknowledgements down.
    running: Arc<tokio::sync::Semaphore>,
    /// Who started work when, for the per-person start limit.
    starts: Arc<throttle::Starts>,
    /// Releases verifying in this process, for `complete` and `rollback R-n`.
    soaks: Arc<soak::Soaks>,
    /// What each request's progress message last said.
    shown: Arc<progress::Shown>,
}

/// How many accepted commands run at once (see [`Engine::run_accepted`]).
pub const MAX_RUNNING: usize = 64;

impl Engine {
    /// Builds an engine.
    pub fn new(
        config: Arc<Config>,
        grammar: Arc<Grammar>,
        store: Store,
        ports: Ports,
        clock: Clock,
    ) -> Engine {
        let vocabulary = Arc::new(Vocabulary::new(config.env_names(), config.app_names()));
        Engine {
            config,
            grammar,
            vocabulary,
            store,
            ports,
            clock,
            running: Arc::new(tokio::sync::Semaphore::new(MAX_RUNNING)),
            starts: Arc::default(),
            soaks: Arc::default(),
            shown: Arc::default(),
        }
    }

    /// The store this engine writes to.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The config this engine runs with.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The engine's clock, in unix seconds.
    pub fn now(&self) -> i64 {
        (self.clock)()
    }
}
