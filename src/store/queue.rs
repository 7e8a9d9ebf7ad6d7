//! Work accepted and not yet started, in the order it was accepted.
//!
//! A burst of commands waits here, on disk behind sled's bounded cache,
//! rather than as tasks in memory; and a restart starts what was waiting
//! instead of losing it. An entry is taken (removed) when its work starts:
//! work that was running when the process died is not started again (a
//! deploy's lock and state tell what became of it), work that was waiting
//! is.

use serde::de::DeserializeOwned;
use serde::Serialize;

use super::{be_u64, decode, encode, io, Store, StoreError};

impl Store {
    /// Appends `entry` to the queue; returns its position, which is larger
    /// than any before it, across restarts.
    pub fn enqueue<T: Serialize>(&self, entry: &T) -> Result<u64, StoreError> {
        let id = self
            .inner
            .db
            .generate_id()
            .map_err(|e| io("write", "queue", &e))?;
        let bytes = encode("queue", entry)?;
        self.inner
            .queue
            .insert(id.to_be_bytes(), bytes)
            .map_err(|e| io("write", "queue", &e))?;
        Ok(id)
    }

    /// Removes and returns the oldest entry, if any. Two takers never get
    /// the same entry. An entry that cannot be read back is removed and
    /// reported as an error, so that it cannot block the ones behind it.
    pub fn take_queued<T: DeserializeOwned>(&self) -> Result<Option<(u64, T)>, StoreError> {
        let Some((key, value)) = self
            .inner
            .queue
            .pop_min()
            .map_err(|e| io("write", "queue", &e))?
        else {
            return Ok(None);
        };
        let id = be_u64(&key).unwrap_or(0);
        let entry = decode("queue", || id.to_string(), &value)?;
        Ok(Some((id, entry)))
    }

    /// Removes entry `id` if it is still waiting (its command could not be
    /// recorded after all); true if it was.
    pub fn dequeue(&self, id: u64) -> Result<bool, StoreError> {
        let removed = self
            .inner
            .queue
            .remove(id.to_be_bytes())
            .map_err(|e| io("write", "queue", &e))?;
        Ok(removed.is_some())
    }

    /// How many entries wait.
    pub fn queued(&self) -> usize {
        self.inner.queue.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_come_out_oldest_first_once_and_survive_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = Store::open(dir.path()).unwrap();
            let a = store.enqueue(&"first").unwrap();
            let b = store.enqueue(&"second").unwrap();
            let c = store.enqueue(&"third").unwrap();
            assert!(a < b && b < c);
            assert!(store.dequeue(c).unwrap(), "a waiting entry can be withdrawn");
            assert!(!store.dequeue(c).unwrap());
            store.inner.db.flush().unwrap();
        }
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(store.queued(), 2);
        let later = store.enqueue(&"fourth").unwrap();
        let taken: Vec<String> = std::iter::from_fn(|| store.take_queued::<String>().unwrap())
            .map(|(_, s)| s)
            .collect();
        assert_eq!(taken, ["first", "second", "fourth"]);
        assert!(later > 0);
        assert_eq!(store.queued(), 0);
        assert!(store.take_queued::<String>().unwrap().is_none());
    }

    #[test]
    fn an_unreadable_entry_is_removed_and_reported() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        store.enqueue(&"text").unwrap();
        store.enqueue(&"more").unwrap();
        assert!(store.take_queued::<u64>().is_err());
        assert_eq!(store.queued(), 1, "the bad entry no longer blocks the queue");
        assert_eq!(
            store.take_queued::<String>().unwrap().map(|(_, s)| s),
            Some("more".to_owned())
        );
    }
}
