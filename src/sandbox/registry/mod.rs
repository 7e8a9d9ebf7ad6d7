//! A container registry on 127.0.0.1 for the sandbox and tests: the subset
//! of the OCI distribution API that Gantry and its test harness use, with the
//! same paths, status codes, headers and error bodies as Debian's
//! `docker-registry` (distribution 2.8), including its `Accept` handling.
//!
//! It holds everything in memory, can demand basic auth or bearer tokens
//! from its own token realm (`/token`), can be told to fail the next
//! requests (503, 429 with `Retry-After`) or to leave out
//! `Docker-Content-Digest`, and records every request it receives. The same
//! adapter tests run against it and against the real registry, so it cannot
//! drift from the real protocol unnoticed. Not supported: chunked uploads
//! (`PATCH`), deletes, tag listing, cross-repository mounts.

mod access;
mod content;
mod handlers;
pub mod image;

use std::collections::{HashMap, HashSet, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub use image::{BuiltImage, ImageFormat};

use crate::names::Digest;

/// The service name the sandbox's token realm issues tokens for.
pub const SERVICE: &str = "gantry-sandbox";

/// What the sandbox registry asks of its clients.
#[derive(Debug, Clone)]
pub enum SandboxAuth {
    /// Nothing: anyone may pull and push.
    Anonymous,
    /// HTTP basic auth with these credentials.
    Basic {
        /// User name.
        username: String,
        /// Password.
        password: String,
    },
    /// Bearer tokens from `/token`, which takes these basic credentials.
    Bearer {
        /// User name.
        username: String,
        /// Password.
        password: String,
        /// How long each token lives.
        token_ttl: Duration,
    },
}

/// One request the sandbox registry received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recorded {
    /// `GET`, `HEAD`, `PUT`…
    pub method: String,
    /// The path, without the query.
    pub path: String,
    /// `basic` or `bearer` when an `Authorization` header came with it.
    pub auth: Option<&'static str>,
}

/// A failure the sandbox answers with instead of serving a request.
#[derive(Debug, Clone, Copy)]
struct Fault {
    status: u16,
    retry_after: Option<u64>,
}

#[derive(Debug, Default)]
struct Store {
    /// Digest → content, shared by all repositories.
    blobs: HashMap<Digest, Vec<u8>>,
    /// (repository, digest) of blobs pushed to a repository.
    links: HashSet<(String, Digest)>,
    /// Upload id → repository.
    uploads: HashMap<String, String>,
    /// (repository, digest) → (media type, bytes).
    manifests: HashMap<(String, Digest), (String, Vec<u8>)>,
    /// (repository, tag) → digest.
    tags: HashMap<(String, String), Digest>,
    /// Token → (scopes, valid until).
    tokens: HashMap<String, (String, Instant)>,
    token_grants: usize,
    requests: Vec<Recorded>,
    faults: VecDeque<Fault>,
    omit_digest: bool,
    counter: u64,
}

#[derive(Debug)]
struct Shared {
    auth: SandboxAuth,
    /// `http://127.0.0.1:port`, for `Location` headers and the token realm.
    base: String,
    store: Mutex<Store>,
}

impl Shared {
    fn store(&self) -> MutexGuard<'_, Store> {
        // Every change is a handful of inserts; a panic mid-way leaves
        // nothing a later request cannot read.
        self.store.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A running sandbox registry. Dropping it stops the server.
#[derive(Debug)]
pub struct SandboxRegistry {
    addr: SocketAddr,
    shared: Arc<Shared>,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

/// Starts a sandbox registry on a free port of 127.0.0.1.
pub async fn start(auth: SandboxAuth) -> std::io::Result<SandboxRegistry> {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
    let addr = listener.local_addr()?;
    let shared = Arc::new(Shared {
        auth,
        base: format!("http://{addr}"),
        store: Mutex::new(Store::default()),
    });
    let app = axum::Router::new()
        .fallback(handlers::handle)
        .with_state(shared.clone());
    let (tx, rx) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        let serve = axum::serve(listener, app).with_graceful_shutdown(async {
            let _ = rx.await;
        });
        // The listener is already bound, so serving only ends at shutdown.
        let _ = serve.await;
    });
    Ok(SandboxRegistry {
        addr,
        shared,
        shutdown: Some(tx),
        task: Some(task),
    })
}

impl SandboxRegistry {
    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `127.0.0.1:port`, as an image reference's registry host.
    pub fn host(&self) -> String {
        self.addr.to_string()
    }

    /// Every request received so far, oldest first.
    pub fn requests(&self) -> Vec<Recorded> {
        self.shared.store().requests.clone()
    }

    /// How many tokens the token realm has issued.
    pub fn token_grants(&self) -> usize {
        self.shared.store().token_grants
    }

    /// Answers the next `times` registry requests with `status` (and
    /// `Retry-After: secs` if given) instead of serving them.
    pub fn fail_next(&self, times: usize, status: u16, retry_after: Option<u64>) {
        let mut store = self.shared.store();
        for _ in 0..times {
            store.faults.push_back(Fault {
                status,
                retry_after,
            });
        }
    }

    /// Leaves `Docker-Content-Digest` out of manifest answers, as some
    /// registries do.
    pub fn omit_digest_header(&self, omit: bool) {
        self.shared.store().omit_digest = omit;
    }

    /// Stores an image (and, for an index, its images) under `tag`, as a
    /// push would, without going through HTTP; returns its digest.
    pub fn publish(
        &self,
        repository: &str,
        tag: &str,
        image: &BuiltImage,
    ) -> Result<Digest, String> {
        let mut store = self.shared.store();
        publish_into(&mut store, repository, Some(tag), image)
    }

    /// Stops serving and waits until the port is closed.
    pub async fn stop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for SandboxRegistry {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

fn publish_into(
    store: &mut Store,
    repository: &str,
    tag: Option<&str>,
    image: &BuiltImage,
) -> Result<Digest, String> {
    for child in &image.children {
        publish_into(store, repository, None, child)?;
    }
    for blob in &image.blobs {
        let digest = crate::adapters::registry::manifest::digest_of(blob);
        store.blobs.insert(digest.clone(), blob.clone());
        store.links.insert((repository.to_owned(), digest));
    }
    let reference = tag.map_or_else(|| image.digest().to_string(), str::to_owned);
    content::put_manifest(
        store,
        repository,
        &reference,
        image.media_type,
        &image.manifest,
    )
    .map_err(|e| format!("{} {}", e.code, e.message))
}
