//! Requests, locks, delivery ids and chat message references.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::{be_u64, decode, encode, io, Store, StoreError};

/// The `meta` key of the last request id handed out.
const LAST_REQUEST_ID: &str = "last_request_id";

/// The `meta` key of the last sequence number given to a release going live.
const RELEASE_SEQ: &str = "release_seq";

/// The `meta` key set once every release before it is in the `releases` tree.
const RELEASES_INDEXED: &str = "releases_indexed";

/// Who holds a lock, for what and since when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockRecord {
    /// What is locked, e.g. `api/prod`.
    pub key: String,
    /// The identity holding it, e.g. `slack:U024BE7LH`.
    pub holder: String,
    /// The request that took it, if a request did (a manual `lock` has none).
    pub request: Option<u64>,
    /// Why, as given by the holder or the engine.
    pub reason: String,
    /// When it was taken, unix seconds.
    pub since: i64,
}

/// Where a progress message lives, so a restart keeps editing the same one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageRef {
    /// The chat platform, e.g. `slack`.
    pub platform: String,
    /// The channel (or PR) the message is in.
    pub channel: String,
    /// The platform's id of the message.
    pub message_id: String,
}

/// `app NUL env NUL seq` (big-endian); names never hold NUL.
fn release_key(app: &str, env: &str, id: Option<u64>) -> Vec<u8> {
    let mut key = Vec::with_capacity(app.len() + env.len() + 10);
    key.extend_from_slice(app.as_bytes());
    key.push(0);
    key.extend_from_slice(env.as_bytes());
    key.push(0);
    if let Some(id) = id {
        key.extend_from_slice(&id.to_be_bytes());
    }
    key
}

impl Store {
    /// Hands out the next request id: 1, 2, 3, ... across restarts (after a flush).
    pub fn next_request_id(&self) -> Result<u64, StoreError> {
        let updated = self
            .inner
            .meta
            .update_and_fetch(LAST_REQUEST_ID, |old| {
                let last = old.and_then(be_u64).unwrap_or(0);
                Some(last.saturating_add(1).to_be_bytes().to_vec())
            })
            .map_err(|e| io("write", "meta", &e))?;
        updated
            .as_deref()
            .and_then(be_u64)
            .ok_or_else(|| StoreError::Decode {
                tree: "meta",
                key: LAST_REQUEST_ID.to_owned(),
                detail: "not an 8-byte counter".to_owned(),
            })
    }

    /// Stores (or replaces) request `id`.
    pub fn put_request<T: Serialize>(&self, id: u64, request: &T) -> Result<(), StoreError> {
        let bytes = encode("requests", request)?;
        self.inner
            .requests
            .insert(id.to_be_bytes(), bytes)
            .map(drop)
            .map_err(|e| io("write", "requests", &e))
    }

    /// Reads request `id`.
    pub fn get_request<T: DeserializeOwned>(&self, id: u64) -> Result<Option<T>, StoreError> {
        let bytes = self
            .inner
            .requests
            .get(id.to_be_bytes())
            .map_err(|e| io("read", "requests", &e))?;
        bytes
            .map(|b| decode("requests", || id.to_string(), &b))
            .transpose()
    }

    /// Notes that request `id`'s release went live for `app` in `env` (a
    /// deploy that succeeded, or an earlier release put back by a
    /// rollback), so [`Self::release_ids`] finds it without reading every
    /// request. Written before the request record that makes it so: a crash
    /// between the two leaves an entry the reader skips, never a missing one.
    pub fn put_release(&self, app: &str, env: &str, id: u64) -> Result<(), StoreError> {
        let seq = self
            .inner
            .meta
            .update_and_fetch(RELEASE_SEQ, |old| {
                let last = old.and_then(be_u64).unwrap_or(0);
                Some(last.saturating_add(1).to_be_bytes().to_vec())
            })
            .map_err(|e| io("write", "meta", &e))?
            .as_deref()
            .and_then(be_u64)
            .unwrap_or(0);
        self.inner
            .releases
            .insert(release_key(app, env, Some(seq)), &id.to_be_bytes())
            .map(drop)
            .map_err(|e| io("write", "releases", &e))
    }

    /// The releases noted by [`Self::put_release`] for `app` in `env`, the
    /// one that went live last first, each once.
    pub fn release_ids(&self, app: &str, env: &str) -> Result<Vec<u64>, StoreError> {
        let prefix = release_key(app, env, None);
        let mut ids: Vec<u64> = Vec::new();
        for entry in self.inner.releases.scan_prefix(&prefix).rev() {
            let (_, value) = entry.map_err(|e| io("read", "releases", &e))?;
            if let Some(id) = be_u64(&value) {
                if !ids.contains(&id) {
                    ids.push(id);
                }
            }
        }
        Ok(ids)
    }

    /// Whether the releases index holds every release (it is built once
    /// for a store made before it existed).
    pub fn releases_indexed(&self) -> Result<bool, StoreError> {
        self.inner
            .meta
            .get(RELEASES_INDEXED)
            .map(|v| v.is_some())
            .map_err(|e| io("read", "meta", &e))
    }

    /// Marks the releases index complete.
    pub fn mark_releases_indexed(&self) -> Result<(), StoreError> {
        self.inner
            .meta
            .insert(RELEASES_INDEXED, &[1u8])
            .map(drop)
            .map_err(|e| io("write", "meta", &e))
    }

    /// Every stored request, in id order.
    pub fn requests<T: DeserializeOwned>(&self) -> Result<Vec<(u64, T)>, StoreError> {
        let mut all = Vec::new();
        for entry in self.inner.requests.iter() {
            let (key, value) = entry.map_err(|e| io("read", "requests", &e))?;
            let id = be_u64(&key).ok_or_else(|| StoreError::Decode {
                tree: "requests",
                key: hex::encode(&key),
                detail: "not an 8-byte id".to_owned(),
            })?;
            all.push((id, decode("requests", || id.to_string(), &value)?));
        }
        Ok(all)
    }

    /// Takes `record.key` if nobody holds it; otherwise returns the current holder's record.
    pub fn try_lock(&self, record: &LockRecord) -> Result<Result<(), LockRecord>, StoreError> {
        let bytes = encode("locks", record)?;
        loop {
            let swapped = self
                .inner
                .locks
                .compare_and_swap(record.key.as_bytes(), None::<&[u8]>, Some(bytes.as_slice()))
                .map_err(|e| io("write", "locks", &e))?;
            match swapped {
                Ok(()) => return Ok(Ok(())),
                Err(conflict) => match conflict.current {
                    Some(current) => {
                        return Ok(Err(decode("locks", || record.key.clone(), &current)?))
                    }
                    // Released between our look and our swap: try again.
                    None => continue,
                },
            }
        }
    }

    /// Releases `key` only if it is still held with exactly `expected`; true if released.
    pub fn unlock(&self, key: &str, expected: &LockRecord) -> Result<bool, StoreError> {
        loop {
            let Some(current) = self
                .inner
                .locks
                .get(key)
                .map_err(|e| io("read", "locks", &e))?
            else {
                return Ok(false);
            };
            let record: LockRecord = decode("locks", || key.to_owned(), &current)?;
            if &record != expected {
                return Ok(false);
            }
            let swapped = self
                .inner
                .locks
                .compare_and_swap(key, Some(&current), None::<&[u8]>)
                .map_err(|e| io("write", "locks", &e))?;
            if swapped.is_ok() {
                return Ok(true);
            }
            // Changed between our read and our swap: look again.
        }
    }

    /// The record of lock `key`, if it is held.
    pub fn lock(&self, key: &str) -> Result<Option<LockRecord>, StoreError> {
        let bytes = self
            .inner
            .locks
            .get(key)
            .map_err(|e| io("read", "locks", &e))?;
        bytes
            .map(|b| decode("locks", || key.to_owned(), &b))
            .transpose()
    }

    /// Every held lock, in key order.
    pub fn locks(&self) -> Result<Vec<LockRecord>, StoreError> {
        let mut all = Vec::new();
        for entry in self.inner.locks.iter() {
            let (key, value) = entry.map_err(|e| io("read", "locks", &e))?;
            all.push(decode(
                "locks",
                || String::from_utf8_lossy(&key).into_owned(),
                &value,
            )?);
        }
        Ok(all)
    }

    /// Records a platform delivery id; true the first time it is seen, false for a repeat.
    pub fn first_seen(&self, delivery_id: &str, now: i64) -> Result<bool, StoreError> {
        let swapped = self
            .inner
            .deliveries
            .compare_and_swap(delivery_id, None::<&[u8]>, Some(&now.to_be_bytes()[..]))
            .map_err(|e| io("write", "deliveries", &e))?;
        Ok(swapped.is_ok())
    }

    /// Forgets delivery ids first seen before `older_than` (unix seconds); returns how many.
    pub fn expire_deliveries(&self, older_than: i64) -> Result<usize, StoreError> {
        let mut removed = 0;
        for entry in self.inner.deliveries.iter() {
            let (key, value) = entry.map_err(|e| io("read", "deliveries", &e))?;
            // A value that is not a timestamp cannot be trusted to be recent: drop it too.
            let seen = <[u8; 8]>::try_from(&value[..])
                .map(i64::from_be_bytes)
                .unwrap_or(i64::MIN);
            if seen < older_than {
                let swapped = self
                    .inner
                    .deliveries
                    .compare_and_swap(&key, Some(&value), None::<&[u8]>)
                    .map_err(|e| io("write", "deliveries", &e))?;
                removed += usize::from(swapped.is_ok());
            }
        }
        Ok(removed)
    }

    /// Remembers where the message for `key` (e.g. a request id) lives.
    pub fn put_message(&self, key: &str, message: &MessageRef) -> Result<(), StoreError> {
        let bytes = encode("messages", message)?;
        self.inner
            .messages
            .insert(key, bytes)
            .map(drop)
            .map_err(|e| io("write", "messages", &e))
    }

    /// Where the message for `key` lives, if one was recorded.
    pub fn get_message(&self, key: &str) -> Result<Option<MessageRef>, StoreError> {
        let bytes = self
            .inner
            .messages
            .get(key)
            .map_err(|e| io("read", "messages", &e))?;
        bytes
            .map(|b| decode("messages", || key.to_owned(), &b))
            .transpose()
    }

    /// Forgets the message for `key`; true if there was one.
    pub fn remove_message(&self, key: &str) -> Result<bool, StoreError> {
        let old = self
            .inner
            .messages
            .remove(key)
            .map_err(|e| io("write", "messages", &e))?;
        Ok(old.is_some())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        (dir, store)
    }

    #[test]
    fn releases_are_listed_by_when_they_went_live_for_exactly_their_app_and_environment() {
        let (_dir, store) = store();
        assert!(!store.releases_indexed().unwrap());
        for (app, env, id) in [
            ("web", "dev", 3),
            ("web", "dev", 12),
            ("web", "dev2", 5),
            ("api", "dev", 7),
            ("web", "dev", 260),
        ] {
            store.put_release(app, env, id).unwrap();
        }
        assert_eq!(store.release_ids("web", "dev").unwrap(), vec![260, 12, 3]);
        // A rollback puts 3 back: it went live last.
        store.put_release("web", "dev", 3).unwrap();
        assert_eq!(store.release_ids("web", "dev").unwrap(), vec![3, 260, 12]);
        assert_eq!(store.release_ids("web", "dev2").unwrap(), vec![5]);
        assert_eq!(store.release_ids("api", "dev").unwrap(), vec![7]);
        assert!(store.release_ids("we", "b").unwrap().is_empty());
        store.mark_releases_indexed().unwrap();
        assert!(store.releases_indexed().unwrap());
    }

    fn record(key: &str, holder: &str) -> LockRecord {
        LockRecord {
            key: key.into(),
            holder: holder.into(),
            request: Some(7),
            reason: "deploy".into(),
            since: 100,
        }
    }

    #[test]
    fn request_ids_start_at_one_and_increase() {
        let (_dir, store) = store();
        assert_eq!(
            (1..=3)
                .map(|_| store.next_request_id().unwrap())
                .collect::<Vec<_>>(),
            [1, 2, 3]
        );
    }

    #[test]
    fn requests_round_trip_in_id_order() {
        let (_dir, store) = store();
        store.put_request(300, &"c").unwrap();
        store.put_request(2, &"a").unwrap();
        store.put_request(256, &"b").unwrap();
        assert_eq!(
            store.get_request::<String>(2).unwrap().as_deref(),
            Some("a")
        );
        assert_eq!(store.get_request::<String>(3).unwrap(), None);
        let all: Vec<(u64, String)> = store.requests().unwrap();
        assert_eq!(all, [(2, "a".into()), (256, "b".into()), (300, "c".into())]);
        assert!(matches!(
            store.get_request::<u32>(2),
            Err(StoreError::Decode {
                tree: "requests",
                ..
            })
        ));
    }

    #[test]
    fn lock_is_exclusive_and_unlock_needs_the_exact_record() {
        let (_dir, store) = store();
        let mine = record("api/prod", "console:alice");
        assert_eq!(store.try_lock(&mine).unwrap(), Ok(()));
        assert_eq!(
            store.try_lock(&record("api/prod", "console:bob")).unwrap(),
            Err(mine.clone())
        );
        assert_eq!(store.lock("api/prod").unwrap(), Some(mine.clone()));
        let stale = LockRecord {
            since: 99,
            ..mine.clone()
        };
        assert!(!store.unlock("api/prod", &stale).unwrap());
        assert!(store.unlock("api/prod", &mine).unwrap());
        assert!(!store.unlock("api/prod", &mine).unwrap());
        assert_eq!(store.locks().unwrap(), []);
    }

    #[test]
    fn deliveries_are_seen_once_and_expire() {
        let (_dir, store) = store();
        assert!(store.first_seen("gh-1", 10).unwrap());
        assert!(!store.first_seen("gh-1", 11).unwrap());
        assert!(store.first_seen("gh-2", 20).unwrap());
        assert_eq!(store.expire_deliveries(15).unwrap(), 1);
        assert!(store.first_seen("gh-1", 30).unwrap());
        assert!(!store.first_seen("gh-2", 30).unwrap());
    }

    #[test]
    fn messages_round_trip() {
        let (_dir, store) = store();
        let message = MessageRef {
            platform: "slack".into(),
            channel: "C1".into(),
            message_id: "1.2".into(),
        };
        store.put_message("R-1", &message).unwrap();
        assert_eq!(store.get_message("R-1").unwrap(), Some(message));
        assert!(store.remove_message("R-1").unwrap());
        assert_eq!(store.get_message("R-1").unwrap(), None);
    }
}
