//! Shared harness for engine scenarios: a real store in a temporary
//! directory, the sandbox world behind the ports, and a clock the test owns.

#![allow(dead_code)]

pub mod http;
pub mod registry;

use std::path::Path;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use gantry::command::Grammar;
use gantry::engine::{Conversation, Engine, Ports, Reply, Request};
use gantry::names::RequestId;
use gantry::sandbox::World;
use gantry::store::Store;

/// 2026-11-24T12:00:00Z, a Tuesday outside every freeze window.
pub const TUESDAY_NOON: i64 = 1_795_521_600;

/// An engine over the sandbox world with a test-owned clock.
pub struct Harness {
    pub engine: Engine,
    pub world: Arc<World>,
    pub store: Store,
    pub clock: Arc<AtomicI64>,
    pub dir: tempfile::TempDir,
}

impl Harness {
    /// Builds a harness from a config file in `tests/data/`.
    pub fn new(config_file: &str) -> Harness {
        Harness::in_dir(config_file, tempfile::tempdir().expect("temp dir"))
    }

    /// Builds a harness over whatever store `dir` already holds.
    pub fn in_dir(config_file: &str, dir: tempfile::TempDir) -> Harness {
        Harness::build(config_file, dir, None)
    }

    /// Builds a harness whose cluster is `cluster` (e.g. `KubeCluster` in
    /// front of the fake API server); everything else is the world.
    pub fn with_cluster(config_file: &str, cluster: Arc<dyn gantry::engine::Cluster>) -> Harness {
        let mut h = Harness::new(config_file);
        let ports = Ports {
            forge: h.world.clone(),
            registry: h.world.clone(),
            cluster,
            notifier: h.world.clone(),
        };
        let time = h.clock.clone();
        h.engine = Engine::new(
            Arc::new(h.engine.config().clone()),
            Arc::new(Grammar::builtin().expect("grammar")),
            h.store.clone(),
            ports,
            Arc::new(move || time.load(Ordering::SeqCst)),
        );
        h
    }

    /// Builds a second engine over an already open store (a restart within
    /// one process: sled allows one opener), chat going to `notifier`.
    pub fn with_store(
        config_file: &str,
        store: Store,
        notifier: Arc<dyn gantry::engine::Notifier>,
    ) -> Harness {
        let mut harness = Harness::with_notifier(config_file, notifier.clone());
        let time = harness.clock.clone();
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/data")
            .join(config_file);
        let config = Arc::new(gantry::config::load(&path).expect("test config loads"));
        let ports = Ports {
            forge: harness.world.clone(),
            registry: harness.world.clone(),
            cluster: harness.world.clone(),
            notifier,
        };
        harness.engine = Engine::new(
            config,
            Arc::new(Grammar::builtin().expect("grammar")),
            store.clone(),
            ports,
            Arc::new(move || time.load(Ordering::SeqCst)),
        );
        harness.store = store;
        harness
    }

    /// Builds a harness whose chat goes to `notifier` instead of the world.
    pub fn with_notifier(
        config_file: &str,
        notifier: Arc<dyn gantry::engine::Notifier>,
    ) -> Harness {
        Harness::build(
            config_file,
            tempfile::tempdir().expect("temp dir"),
            Some(notifier),
        )
    }

    fn build(
        config_file: &str,
        dir: tempfile::TempDir,
        notifier: Option<Arc<dyn gantry::engine::Notifier>>,
    ) -> Harness {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/data")
            .join(config_file);
        let config = Arc::new(gantry::config::load(&path).expect("test config loads"));
        let world = Arc::new(World::new(
            gantry::sandbox::seed(&config),
            Duration::from_millis(1),
        ));
        let store = Store::open(dir.path()).expect("store opens");
        let clock = Arc::new(AtomicI64::new(TUESDAY_NOON));
        let ports = Ports {
            forge: world.clone(),
            registry: world.clone(),
            cluster: world.clone(),
            notifier: notifier.unwrap_or_else(|| world.clone()),
        };
        let time = clock.clone();
        let engine = Engine::new(
            config,
            Arc::new(Grammar::builtin().expect("grammar")),
            store.clone(),
            ports,
            Arc::new(move || time.load(Ordering::SeqCst)),
        );
        Harness {
            engine,
            world,
            store,
            clock,
            dir,
        }
    }

    /// `who` (an identity such as `console:alice`) types `text` in #deploys.
    pub async fn say(&self, who: &str, text: &str) -> Reply {
        let identity = who.parse().expect("identity");
        let conversation = Conversation {
            platform: "console".into(),
            channel: "deploys".into(),
        };
        let run = self.engine.handle(&identity, &conversation, text);
        tokio::time::timeout(Duration::from_secs(20), run)
            .await
            .expect("the engine answers in time")
    }

    /// Moves the clock.
    pub fn set_time(&self, unix_seconds: i64) {
        self.clock.store(unix_seconds, Ordering::SeqCst);
    }

    /// A request as stored.
    pub fn request(&self, id: RequestId) -> Request {
        self.store
            .get_request(id.0)
            .expect("store readable")
            .expect("request exists")
    }

    /// The image a Deployment runs in the sandbox cluster.
    pub fn image(&self, namespace: &str, deployment: &str) -> String {
        self.world.snapshot().deployments[&format!("sandbox/{namespace}/{deployment}")]
            .image
            .clone()
    }

    /// Every audit action recorded for a subject, oldest first.
    pub fn actions(&self, subject: &str) -> Vec<String> {
        let filter = gantry::store::ListFilter::default();
        let mut events = self.store.list(&filter).expect("audit readable");
        events.sort_by_key(|e| e.seq);
        events
            .into_iter()
            .filter(|e| e.subject == subject)
            .map(|e| e.action)
            .collect()
    }
}
