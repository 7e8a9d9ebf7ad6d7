//! An engine for the verbs' unit tests, wired as `gantry serve` wires it:
//! the sandbox servers started from `tests/data/engine.toml` (or an edited
//! copy), the ports built from the config they write, a store in a
//! temporary directory and a clock the test moves.

use std::path::Path;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use super::{Conversation, Engine, Platform, Reply, Request};
use crate::command::Grammar;
use crate::names::RequestId;
use crate::sandbox::stack::{SandboxOptions, SandboxServers};
use crate::store::{ListFilter, Store};

/// 2026-11-24T12:00:00Z, a Tuesday outside every freeze window.
pub(super) const TUESDAY_NOON: i64 = 1_795_521_600;

/// When the window [`with_freeze`] adds opens: 2026-11-25T00:00:00Z, the
/// day after [`TUESDAY_NOON`]; it lasts a day.
pub(super) const FREEZE_OPENS: i64 = 1_795_564_800;

/// `tests/data/engine.toml` with a freeze window on `env` from
/// [`FREEZE_OPENS`], for a day, whose reason is `test freeze`.
pub(super) fn with_freeze(env: &str) -> impl Fn(&str) -> String + '_ {
    move |base| {
        format!(
            "{base}\n[[environments.{env}.freeze]]\nstart = \"2026-11-25T00:00:00Z\"\n\
             end = \"2026-11-26T00:00:00Z\"\nreason = \"test freeze\"\n"
        )
    }
}

/// The engine, the sandbox it talks to and the clock it reads.
pub(super) struct TestEngine {
    pub engine: Engine,
    pub sandbox: SandboxServers,
    pub store: Store,
    clock: Arc<AtomicI64>,
    _dir: tempfile::TempDir,
}

impl TestEngine {
    /// An engine on `tests/data/engine.toml`.
    pub async fn start() -> TestEngine {
        TestEngine::with_config(|base| base.to_owned()).await
    }

    /// An engine on `tests/data/engine.toml` as `edit` changes it.
    pub async fn with_config(edit: impl Fn(&str) -> String) -> TestEngine {
        let dir = tempfile::tempdir().expect("temp dir");
        let base = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/engine.toml");
        let text = std::fs::read_to_string(&base).expect("the test config reads");
        let edited = dir.path().join("engine.toml");
        std::fs::write(&edited, edit(&text)).expect("the edited config is written");
        let options = SandboxOptions::with_tick(Duration::from_millis(2));
        let sandbox = crate::sandbox::stack::start(&edited, &dir.path().join("sandbox"), options)
            .await
            .expect("the sandbox starts");
        let store = Store::open(&dir.path().join("store")).expect("store opens");
        let clock = Arc::new(AtomicI64::new(TUESDAY_NOON));
        let wired = crate::adapters::wiring::ports(&sandbox.config).expect("the config wires");
        let time = clock.clone();
        let engine = Engine::new(
            sandbox.config.clone(),
            Arc::new(Grammar::builtin().expect("grammar")),
            store.clone(),
            wired.ports,
            Arc::new(move || time.load(Ordering::SeqCst)),
        );
        TestEngine {
            engine,
            sandbox,
            store,
            clock,
            _dir: dir,
        }
    }

    /// `who` (an identity such as `console:alice`) types `text`.
    pub async fn say(&self, who: &str, text: &str) -> Reply {
        let identity = who.parse().expect("identity");
        let conversation = Conversation {
            platform: Platform::Console,
            channel: "deploys".into(),
        };
        let run = self.engine.handle(&identity, &conversation, text);
        tokio::time::timeout(Duration::from_secs(30), run)
            .await
            .expect("the engine answers in time")
    }

    /// The request a reply concerns, as stored.
    pub fn request(&self, reply: &Reply) -> Request {
        let id: RequestId = reply.request.expect("the reply names a request");
        self.store
            .get_request(id.0)
            .expect("store readable")
            .expect("request exists")
    }

    /// Moves the clock.
    pub fn set_time(&self, unix_seconds: i64) {
        self.clock.store(unix_seconds, Ordering::SeqCst);
    }

    /// The time on the engine's clock.
    pub fn now(&self) -> i64 {
        self.clock.load(Ordering::SeqCst)
    }

    /// Every audit action recorded for a subject, oldest first.
    pub fn actions(&self, subject: &str) -> Vec<String> {
        let mut events = self
            .store
            .list(&ListFilter::default())
            .expect("audit readable");
        events.sort_by_key(|e| e.seq);
        events
            .into_iter()
            .filter(|e| e.subject == subject)
            .map(|e| e.action)
            .collect()
    }

    /// The image the app's Deployment runs in `namespace`.
    pub fn image(&self, namespace: &str) -> Option<String> {
        self.sandbox.kube.image(namespace, "web", "web")
    }
}
