//! Gantry's persistent state: requests, locks, delivery ids, chat message
//! references and the hash-chained audit trail.
//!
//! The storage engine (sled 0.34) stays entirely behind this module's API, so
//! a later change of engine touches only `src/store/`. Writes are durable only
//! after [`Store::flush`] (or [`Store::append_durable`]): callers flush before
//! they report that something happened.
//!
//! Trees and their keys:
//!
//! | tree | key | value |
//! |---|---|---|
//! | `requests` | request id, u64 big-endian | JSON of the engine's request |
//! | `locks` | lock key (UTF-8) | JSON [`LockRecord`] |
//! | `deliveries` | platform delivery id (UTF-8) | first-seen unix seconds, i64 big-endian |
//! | `messages` | caller's key (UTF-8) | JSON [`MessageRef`] |
//! | `meta` | name (UTF-8) | counters, the layout version (`layout.rs`) |
//! | `audit` | seq, u64 big-endian | JSON [`AuditEvent`] |
//! | `audit_index` | env or actor, newest seq | seqs of that env or actor (`index.rs`) |
//!
//! Beside the engine's files, `audit-head` records the newest flushed seq, so
//! that a store the engine silently shortened fails to open (see `mark.rs`).

mod anchor;
mod audit;
mod chain;
mod error;
mod index;
mod layout;
mod mark;
mod query;
mod queue;
mod records;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub use anchor::{Anchor, ExportSummary};
pub use audit::{AuditEvent, ListFilter, NewEvent, VerifyReport};
pub use chain::GENESIS_HASH;
pub use error::StoreError;
pub use records::{LockRecord, MessageRef};

use audit::Head;

/// Page cache the engine may use; sled's own default (1 GiB) would dwarf the bot.
const CACHE_BYTES: u64 = 64 * 1024 * 1024;

/// How long `open` waits for a lock held by a store that is shutting down.
const LOCK_WAIT: Duration = Duration::from_secs(1);

/// The name of the engine's main data file, used to tell a store from an empty directory.
const DATA_FILE: &str = "db";

/// An open store; cheap to clone, safe to share between threads.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

struct Inner {
    path: PathBuf,
    db: sled::Db,
    requests: sled::Tree,
    locks: sled::Tree,
    deliveries: sled::Tree,
    messages: sled::Tree,
    queue: sled::Tree,
    releases: sled::Tree,
    meta: sled::Tree,
    audit: sled::Tree,
    audit_index: sled::Tree,
    /// Next seq, head hash and unwritten index entries; holding it serialises appends.
    head: Mutex<Head>,
    /// The seq last recorded in the flushed-head mark.
    marked: Mutex<u64>,
    /// Group commit: tickets handed to writers waiting for durability, and
    /// (behind the lock) the newest ticket a finished flush covered.
    tickets: std::sync::atomic::AtomicU64,
    flushed: tokio::sync::Mutex<u64>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("path", &self.inner.path)
            .finish_non_exhaustive()
    }
}

impl Store {
    /// Opens the store in `dir`, creating it if the directory holds none.
    ///
    /// A damaged store is reported with its path and kept: it is never
    /// deleted or recreated (sled's own recovery may rewrite part of its log).
    /// A store of an older layout is upgraded; one of a newer layout is refused.
    pub fn open(dir: &Path) -> Result<Store, StoreError> {
        let db = open_engine(dir)?;
        let tree = |name: &'static str| db.open_tree(name).map_err(|e| open_error(dir, &e));
        // Before any other tree is opened (which may create it).
        let meta = tree("meta")?;
        let layout = layout::check(dir, &meta)?;
        let inner = Inner {
            path: dir.to_path_buf(),
            requests: tree("requests")?,
            locks: tree("locks")?,
            deliveries: tree("deliveries")?,
            messages: tree("messages")?,
            queue: tree("queue")?,
            releases: tree("releases")?,
            meta,
            audit: tree("audit")?,
            audit_index: tree(index::TREE)?,
            head: Mutex::new(Head::default()),
            marked: Mutex::new(0),
            tickets: std::sync::atomic::AtomicU64::new(0),
            flushed: tokio::sync::Mutex::new(0),
            db,
        };
        let store = Store {
            inner: Arc::new(inner),
        };
        let marked = store.check_mark()?;
        *store
            .inner
            .marked
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = marked;
        let head = store.recover_head()?;
        *store.head() = head;
        store.catch_up_index()?;
        store.finish_upgrade(layout)?;
        Ok(store)
    }

    /// Opens an existing store, failing with [`StoreError::Missing`] instead of creating one.
    ///
    /// For read-mostly tools (`gantry audit ...`), where a wrong `--data`
    /// must not leave an empty store behind.
    pub fn open_existing(dir: &Path) -> Result<Store, StoreError> {
        if !dir.join(DATA_FILE).is_file() {
            return Err(StoreError::Missing {
                path: dir.to_path_buf(),
            });
        }
        Store::open(dir)
    }

    /// The directory this store lives in.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// Makes every write so far durable.
    pub fn flush(&self) -> Result<(), StoreError> {
        let head = self.write_index()?;
        self.inner.db.flush().map_err(|e| io("flush", "*", &e))?;
        self.write_mark(&head)
    }

    /// Makes every write the caller made so far durable, sharing one flush
    /// with every other caller waiting at the same time (group commit):
    /// under load, thousands of writers pay for a handful of flushes.
    pub async fn flush_group(&self) -> Result<(), StoreError> {
        use std::sync::atomic::Ordering;
        // The caller's writes happened before it takes its ticket.
        let mine = self.inner.tickets.fetch_add(1, Ordering::SeqCst) + 1;
        let mut flushed = self.inner.flushed.lock().await;
        if *flushed >= mine {
            return Ok(());
        }
        // Every ticket taken so far belongs to a write made before this flush.
        let covered = self.inner.tickets.load(Ordering::SeqCst);
        self.flush_async().await?;
        *flushed = covered;
        Ok(())
    }

    /// Makes every write so far durable, without blocking the calling task.
    pub async fn flush_async(&self) -> Result<(), StoreError> {
        let head = self.write_index()?;
        self.inner
            .db
            .flush_async()
            .await
            .map_err(|e| io("flush", "*", &e))?;
        self.write_mark(&head)
    }

    /// The head state, recovering it if a thread panicked while holding it.
    fn head(&self) -> std::sync::MutexGuard<'_, Head> {
        // An append updates the head only after its event is written, so the
        // state left by a panicking holder is still accurate.
        self.inner
            .head
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Opens the engine, turning its errors (and its panics on damaged files) into [`StoreError`].
fn open_engine(dir: &Path) -> Result<sled::Db, StoreError> {
    let config = sled::Config::new().path(dir).cache_capacity(CACHE_BYTES);
    let deadline = Instant::now() + LOCK_WAIT;
    let mut pause = Duration::from_millis(5);
    loop {
        // sled 0.34 can panic instead of returning an error on some damaged files.
        let error = match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| config.open())) {
            Ok(Ok(db)) => return Ok(db),
            Ok(Err(e)) => open_error(dir, &e),
            Err(panic) => StoreError::Corrupt {
                path: dir.to_path_buf(),
                detail: panic_message(panic.as_ref()),
            },
        };
        // A store dropped in this process keeps its file lock until sled's
        // background threads let go of it (spacejam/sled#1234): wait a little.
        if !matches!(error, StoreError::InUse { .. }) || Instant::now() + pause > deadline {
            return Err(error);
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(100));
    }
}

/// Classifies an engine error seen while opening `dir`.
fn open_error(dir: &Path, e: &sled::Error) -> StoreError {
    let path = dir.to_path_buf();
    let detail = e.to_string();
    match e {
        sled::Error::Corruption { .. } => StoreError::Corrupt { path, detail },
        sled::Error::Io(io) if io.to_string().contains("could not acquire lock") => {
            StoreError::InUse {
                path,
                detail: io.to_string(),
            }
        }
        _ => StoreError::Open { path, detail },
    }
}

fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    let text = panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown failure".to_owned());
    format!("the storage engine failed while reading it: {text}")
}

/// An engine error during normal operation.
fn io(op: &'static str, tree: &'static str, e: &sled::Error) -> StoreError {
    StoreError::Io {
        op,
        tree,
        detail: e.to_string(),
    }
}

/// Decodes a JSON value stored in `tree` under a key shown as `key`.
fn decode<T: serde::de::DeserializeOwned>(
    tree: &'static str,
    key: impl FnOnce() -> String,
    bytes: &[u8],
) -> Result<T, StoreError> {
    serde_json::from_slice(bytes).map_err(|e| StoreError::Decode {
        tree,
        key: key(),
        detail: e.to_string(),
    })
}

/// Encodes a value as JSON for `tree`.
fn encode<T: serde::Serialize + ?Sized>(
    tree: &'static str,
    value: &T,
) -> Result<Vec<u8>, StoreError> {
    serde_json::to_vec(value).map_err(|e| StoreError::Encode {
        tree,
        detail: e.to_string(),
    })
}

/// Reads a big-endian u64 key; `None` if it has the wrong length.
fn be_u64(bytes: &[u8]) -> Option<u64> {
    <[u8; 8]>::try_from(bytes).ok().map(u64::from_be_bytes)
}
