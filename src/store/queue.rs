//! Work accepted and not yet started, in the order it was accepted.
//!
//! A burst of commands waits here, on disk behind sled's bounded cache,
//! rather than as tasks in memory; and a restart starts what was waiting
//! instead of losing it. An entry is taken (removed) when its work starts:
//! work that was running when the process died is not started again (a
//! deploy's lock and state tell what became of it), work that was waiting
//! is. The store keeps the entries; the order they run in is the
//! caller's (it hands out positions only once an entry is durable).

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

    /// Removes and returns entry `id`, if it still waits. Two takers never
    /// get the same entry. An entry that cannot be read back is removed
    /// all the same, and reported.
    pub fn take_queued<T: DeserializeOwned>(&self, id: u64) -> Result<Option<T>, StoreError> {
        let Some(value) = self
            .inner
            .queue
            .remove(id.to_be_bytes())
            .map_err(|e| io("write", "queue", &e))?
        else {
            return Ok(None);
        };
        decode("queue", || id.to_string(), &value).map(Some)
    }

    /// The entries waiting, oldest first.
    pub fn queued_ids(&self) -> Result<Vec<u64>, StoreError> {
        self.inner
            .queue
            .iter()
            .keys()
            .map(|key| {
                key.map_err(|e| io("read", "queue", &e))
                    .map(|key| be_u64(&key).unwrap_or(0))
            })
            .collect()
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
    fn entries_are_taken_once_and_survive_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b, c);
        {
            let store = Store::open(dir.path()).unwrap();
            a = store.enqueue(&"first").unwrap();
            b = store.enqueue(&"second").unwrap();
            c = store.enqueue(&"third").unwrap();
            assert!(a < b && b < c);
            assert_eq!(
                store.take_queued::<String>(c).unwrap().as_deref(),
                Some("third")
            );
            assert_eq!(store.take_queued::<String>(c).unwrap(), None, "taken once");
            store.inner.db.flush().unwrap();
        }
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(store.queued(), 2);
        let d = store.enqueue(&"fourth").unwrap();
        assert!(d > c, "positions grow across restarts");
        assert_eq!(store.queued_ids().unwrap(), [a, b, d]);
        let taken: Vec<String> = [a, b, d]
            .iter()
            .filter_map(|id| store.take_queued::<String>(*id).unwrap())
            .collect();
        assert_eq!(taken, ["first", "second", "fourth"]);
        assert_eq!(store.queued(), 0);
    }

    #[test]
    fn an_unreadable_entry_is_removed_and_reported() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let bad = store.enqueue(&"text").unwrap();
        assert!(store.take_queued::<u64>(bad).is_err());
        assert_eq!(store.queued(), 0, "the bad entry is gone");
    }
}
