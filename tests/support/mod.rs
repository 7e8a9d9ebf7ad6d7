//! Shared harness for engine scenarios: the sandbox servers (fake
//! Kubernetes API, registry, GitHub, Slack, Discord) started from a config
//! in `tests/data/`, the config they write, the ports built from it by the
//! production wiring, a real store in a temporary directory, and a clock
//! the test owns.

#![allow(dead_code)]

pub mod binaries;
pub mod http;
pub mod prometheus;
pub mod registry;

use std::future::Future;
use std::path::Path;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use gantry::adapters::wiring;
use gantry::command::Grammar;
use gantry::engine::{Conversation, Engine, Platform, Reply, Request};
use gantry::names::RequestId;
use gantry::sandbox::discord::FakeDiscord;
use gantry::sandbox::slack::FakeSlack;
use gantry::sandbox::stack::{SandboxOptions, SandboxServers};
use gantry::store::Store;

/// 2026-11-24T12:00:00Z, a Tuesday outside every freeze window.
pub const TUESDAY_NOON: i64 = 1_795_521_600;

/// 2026-11-27T17:30:00Z, Friday 18:30 in Berlin (CET): inside the dev
/// freeze window of `tests/data/engine.toml`, which ends at Sat 00:00
/// Europe/Berlin.
pub const FRIDAY_EVENING_IN_BERLIN: i64 = TUESDAY_NOON + 3 * 86_400 + 5 * 3600 + 1800;

/// The sandbox pace in tests: fast rollouts, builds and syncs.
pub const TICK: Duration = Duration::from_millis(2);

/// The longest one test may run: a test that hangs fails with a message
/// instead of stalling the suite.
pub const TEST_LIMIT: Duration = Duration::from_secs(120);

/// Runs a test's body within [`TEST_LIMIT`].
pub async fn within<T>(test: impl Future<Output = T>) -> T {
    tokio::time::timeout(TEST_LIMIT, test)
        .await
        .expect("the test finishes within its time limit")
}

/// Waits (bounded, 10 s) until `ready` holds, looking again every 10 ms;
/// the sync point for state a fake or the store only shows when asked.
pub async fn until(what: &str, mut ready: impl FnMut() -> bool) {
    for _ in 0..1000 {
        if ready() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("never happened: {what}");
}

/// An engine on the production wiring, pointed at the sandbox servers.
pub struct Harness {
    pub engine: Engine,
    pub sandbox: Arc<SandboxServers>,
    pub store: Store,
    pub clock: Arc<AtomicI64>,
    pub dir: Arc<tempfile::TempDir>,
    /// The engine's notifier, for inbound routes a test builds.
    pub notifier: Arc<dyn gantry::engine::Notifier>,
    /// The wiring's Discord REST client, when the config enables Discord.
    pub discord_rest: Option<Arc<gantry::adapters::discord::DiscordNotifier>>,
}

/// The path of a config in `tests/data/`.
pub fn data(config_file: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(config_file)
}

impl Harness {
    /// Starts the sandbox for a config file in `tests/data/`.
    pub async fn new(config_file: &str) -> Harness {
        Harness::with_options(config_file, SandboxOptions::with_tick(TICK)).await
    }

    /// Starts the sandbox over whatever store `dir/store` already holds.
    pub async fn in_dir(config_file: &str, dir: tempfile::TempDir) -> Harness {
        Harness::start(config_file, SandboxOptions::with_tick(TICK), dir).await
    }

    /// The same, with the sandbox's pace and deadlines chosen.
    pub async fn with_options(config_file: &str, options: SandboxOptions) -> Harness {
        Harness::start(config_file, options, tempfile::tempdir().expect("temp dir")).await
    }

    async fn start(config_file: &str, options: SandboxOptions, dir: tempfile::TempDir) -> Harness {
        let dir = Arc::new(dir);
        let sandbox =
            gantry::sandbox::stack::start(&data(config_file), &dir.path().join("sandbox"), options)
                .await
                .expect("the sandbox starts");
        let store = Store::open(&dir.path().join("store")).expect("store opens");
        let clock = Arc::new(AtomicI64::new(TUESDAY_NOON));
        Harness::build(Arc::new(sandbox), store, clock, dir)
    }

    /// A second engine over the same store, sandbox and clock: a restart
    /// within one process (sled allows one opener).
    pub fn restart(&self) -> Harness {
        Harness::build(
            self.sandbox.clone(),
            self.store.clone(),
            self.clock.clone(),
            self.dir.clone(),
        )
    }

    fn build(
        sandbox: Arc<SandboxServers>,
        store: Store,
        clock: Arc<AtomicI64>,
        dir: Arc<tempfile::TempDir>,
    ) -> Harness {
        let wired = wiring::ports(&sandbox.config).expect("the sandbox config wires");
        let time = clock.clone();
        let notifier = wired.ports.notifier.clone();
        let discord_rest = wired.discord.clone();
        let engine = Engine::new(
            sandbox.config.clone(),
            Arc::new(Grammar::builtin().expect("grammar")),
            store.clone(),
            wired.ports,
            Arc::new(move || time.load(Ordering::SeqCst)),
        );
        Harness {
            engine,
            sandbox,
            store,
            clock,
            dir,
            notifier,
            discord_rest,
        }
    }

    /// The engine's clock, for inbound state built by a test.
    pub fn clock_fn(&self) -> gantry::engine::Clock {
        let time = self.clock.clone();
        Arc::new(move || time.load(Ordering::SeqCst))
    }

    /// The server's state for Slack alone, over this engine: the sandbox
    /// workspace, the usual reactions, requests signed with `secrets` (none
    /// for a Socket Mode client, which needs no signature).
    pub fn slack_server(
        &self,
        secrets: Vec<gantry::config::Secret>,
    ) -> Arc<gantry::server::ServerState> {
        Arc::new(gantry::server::ServerState {
            front: gantry::inbound::Front::start(self.engine.clone()),
            slack: Some(gantry::server::SlackInbound {
                secrets,
                settings: gantry::inbound::slack::Settings {
                    team_ids: vec!["T0SANDBOX".into()],
                    approve_reaction: "white_check_mark".into(),
                    deny_reaction: "x".into(),
                },
            }),
            discord: None,
            github: None,
            metrics: gantry::server::Metrics::default(),
            clock: self.clock_fn(),
        })
    }

    /// The sandbox Slack (the config must enable Slack).
    pub fn slack(&self) -> FakeSlack {
        self.sandbox
            .slack
            .clone()
            .expect("the config enables Slack")
    }

    /// The sandbox Discord (the config must enable Discord).
    pub fn discord(&self) -> FakeDiscord {
        self.sandbox
            .discord
            .clone()
            .expect("the config enables Discord")
    }

    /// `who` (an identity such as `console:alice`) types `text` in #deploys.
    pub async fn say(&self, who: &str, text: &str) -> Reply {
        self.say_in(Platform::Console, "deploys", who, text).await
    }

    /// `who` types `text` in the sandbox Slack's #deploys, where the
    /// progress message then goes.
    pub async fn say_in_slack(&self, who: &str, text: &str) -> Reply {
        self.say_in(Platform::Slack, "C0DEPLOYS", who, text).await
    }

    async fn say_in(&self, platform: Platform, channel: &str, who: &str, text: &str) -> Reply {
        let identity = who.parse().expect("identity");
        let conversation = Conversation {
            platform,
            channel: channel.into(),
        };
        let run = self.engine.handle(&identity, &conversation, text);
        tokio::time::timeout(Duration::from_secs(30), run)
            .await
            .expect("the engine answers in time")
    }

    /// Leaves, in `dir/store`, a store whose newest audit event cannot be
    /// read back: nothing can be appended, as with a full disk.
    pub fn break_audit(dir: &Path) {
        let path = dir.join("store");
        {
            let store = Store::open(&path).expect("store opens");
            store
                .append_durable(gantry::store::NewEvent {
                    time: 0,
                    actor: "gantry".into(),
                    action: "test.setup".into(),
                    subject: "-".into(),
                    env: None,
                    details: serde_json::json!({}),
                })
                .expect("the first event is written");
        }
        let db = sled::open(&path).expect("sled opens");
        db.open_tree("audit")
            .expect("the audit tree")
            .insert(1u64.to_be_bytes(), &b"{broken"[..])
            .expect("the event is overwritten");
        db.flush().expect("flushed");
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

    /// The image a Deployment's container (named like the Deployment) runs
    /// in the sandbox cluster.
    pub fn image(&self, namespace: &str, deployment: &str) -> String {
        self.sandbox
            .kube
            .image(namespace, deployment, deployment)
            .unwrap_or_else(|| panic!("no Deployment {namespace}/{deployment}"))
    }

    /// The Kubernetes API writes received so far (method and path).
    pub fn cluster_writes(&self) -> Vec<String> {
        self.sandbox
            .kube
            .requests()
            .into_iter()
            .filter(|r| r.method != "GET")
            .map(|r| format!("{} {}", r.method, r.path))
            .collect()
    }

    /// Waits (bounded) until namespace `name` is gone from the cluster; a
    /// deleted namespace terminates first, as on a real cluster.
    pub async fn namespace_gone(&self, name: &str) -> bool {
        tokio::time::timeout(
            Duration::from_secs(10),
            self.sandbox
                .kube
                .wait_until(|k| k.namespace(name).is_none()),
        )
        .await
        .is_ok()
    }

    /// Requests received by the fake Kubernetes API, GitHub and registry.
    pub fn outside_calls(&self) -> usize {
        self.sandbox.kube.requests().len()
            + self.sandbox.github.requests().len()
            + self.sandbox.registry.requests().len()
    }

    /// Pushes a new commit to `branch` of `repo` with its image built, as
    /// CI would; answers the new head.
    pub fn move_branch(&self, repo: &str, branch: &str) -> gantry::names::Sha {
        let sha = self
            .sandbox
            .github
            .commit(repo, branch, "moved on", &[("moved.txt", "yes\n")]);
        for app in self
            .sandbox
            .config
            .apps()
            .iter()
            .filter(|a| a.repo.to_string() == repo)
        {
            gantry::sandbox::git_host::publish(&self.sandbox.registry, app, branch, &sha)
                .expect("the image is pushed");
        }
        gantry::names::Sha::new(&sha).expect("a full SHA")
    }

    /// The states GitHub deployments of `repo` to `env` went through.
    pub fn deployment_states(&self, repo: &str, env: &str) -> Vec<Vec<String>> {
        self.sandbox
            .github
            .deployments(repo)
            .into_iter()
            .filter(|d| d.environment == env)
            .map(|d| d.statuses.into_iter().map(|(state, ..)| state).collect())
            .collect()
    }

    /// The (state, description) of every status GitHub deployments of
    /// `repo` to `env` were given, one list per deployment.
    pub fn deployment_descriptions(&self, repo: &str, env: &str) -> Vec<Vec<(String, String)>> {
        self.sandbox
            .github
            .deployments(repo)
            .into_iter()
            .filter(|d| d.environment == env)
            .map(|d| {
                d.statuses
                    .into_iter()
                    .map(|(state, _, description)| (state, description))
                    .collect()
            })
            .collect()
    }

    /// The details of every `action` audit event for a subject, oldest first.
    pub fn audit_details(&self, subject: &str, action: &str) -> Vec<serde_json::Value> {
        let filter = gantry::store::ListFilter::default();
        let mut events = self.store.list(&filter).expect("audit readable");
        events.sort_by_key(|e| e.seq);
        events
            .into_iter()
            .filter(|e| e.subject == subject && e.action == action)
            .map(|e| e.details)
            .collect()
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

/// A server or client task a test runs beside itself. The test fails if
/// the task has ended (returned, failed or panicked) by the time the test
/// lets go of it, so a server that died cannot pass as one that was idle.
pub struct Watched {
    name: &'static str,
    task: tokio::task::JoinHandle<()>,
}

impl Watched {
    /// Spawns `task`, named `name` in the failure.
    pub fn spawn<F>(name: &'static str, task: F) -> Watched
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        let task = tokio::spawn(async move {
            task.await;
        });
        Watched { name, task }
    }

    /// Whether the task is still running.
    pub fn running(&self) -> bool {
        !self.task.is_finished()
    }
}

impl Drop for Watched {
    fn drop(&mut self) {
        let ended = self.task.is_finished();
        self.task.abort();
        if ended && !std::thread::panicking() {
            panic!("the {} task ended before the test did", self.name);
        }
    }
}

/// Serves `router` on a free loopback port, watched: the test fails if the
/// server stops while the test runs.
pub async fn serve_router(router: axum::Router) -> (std::net::SocketAddr, Watched) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a free port");
    let addr = listener.local_addr().expect("the port");
    let server = Watched::spawn("server", async move {
        let _ = axum::serve(listener, router).await;
    });
    (addr, server)
}
