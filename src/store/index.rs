//! The audit index: which events concern an environment, which an actor.
//!
//! An append only notes its entries in memory, beside the chain head. They
//! reach the tree as one sled batch at every flush, before every indexed
//! query, and whenever [`PENDING_EVENTS`] events are waiting. In one batch the
//! entries for a name share one key (a chunk), so a group commit of 1,000
//! events over 4 environments and 50 actors writes 54 index keys, not 2,000.
//!
//! Tree `audit_index`:
//!
//! | key | value |
//! |---|---|
//! | kind (`e` env, `a` actor), name, 0x00, the chunk's newest seq big-endian | the chunk's seqs, ascending, 8 bytes big-endian each |
//! | 0xff | the seq through which every event is indexed, big-endian |
//!
//! Chunk keys start with `e` or `a`, so the through-seq's key sorts after
//! them all. The through-seq is written in the same batch as the chunks it
//! covers, and sled recovers a batch whole or not at all, so after a crash
//! `open` knows which events lack entries and indexes them again from the
//! chain, the source of truth.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::audit::Head;
use super::{be_u64, io, Anchor, Store, StoreError};

/// The index tree's name.
pub(super) const TREE: &str = "audit_index";

/// The key of the seq through which every event is indexed.
const THROUGH_KEY: [u8; 1] = [0xff];

/// At most this many seqs share a key, so a query decodes little to find the newest.
const CHUNK_SEQS: usize = 1_024;

/// Entries are written once this many events wait, which bounds their memory
/// and the work `open` redoes after a crash.
pub(super) const PENDING_EVENTS: usize = 4_096;

/// What an index entry is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum IndexKind {
    /// The event's environment.
    Env,
    /// The event's actor.
    Actor,
}

/// Index entries not written to the tree yet.
#[derive(Debug, Clone, Default)]
pub(super) struct Pending {
    /// Seqs, ascending, per key prefix (kind, name, 0x00).
    seqs: BTreeMap<Vec<u8>, Vec<u64>>,
    /// How many events the entries come from.
    events: usize,
    /// Reused to build prefixes, so a name seen before costs no allocation.
    scratch: Vec<u8>,
}

impl Pending {
    /// Notes the entries of event `seq`; seqs must come in ascending order.
    pub(super) fn add(&mut self, seq: u64, env: Option<&str>, actor: &str) {
        let names = [(IndexKind::Actor, Some(actor)), (IndexKind::Env, env)];
        for (kind, name) in names {
            let Some(name) = name else { continue };
            write_prefix(&mut self.scratch, kind, name);
            match self.seqs.get_mut(self.scratch.as_slice()) {
                Some(seqs) => seqs.push(seq),
                None => {
                    self.seqs.insert(self.scratch.clone(), vec![seq]);
                }
            }
        }
        self.events += 1;
    }

    /// How many events wait.
    pub(super) fn events(&self) -> usize {
        self.events
    }

    /// The batch that writes these entries and marks every event through `through` indexed.
    fn batch(&self, through: u64) -> sled::Batch {
        let mut batch = sled::Batch::default();
        for (prefix, seqs) in &self.seqs {
            for chunk in seqs.chunks(CHUNK_SEQS) {
                let Some(&newest) = chunk.last() else {
                    continue;
                };
                let value: Vec<u8> = chunk.iter().flat_map(|seq| seq.to_be_bytes()).collect();
                batch.insert(chunk_key(prefix, newest), value);
            }
        }
        batch.insert(&THROUGH_KEY[..], &through.to_be_bytes()[..]);
        batch
    }

    fn clear(&mut self) {
        self.seqs.clear();
        self.events = 0;
    }
}

/// The fields of a stored event the index needs.
#[derive(Deserialize)]
struct Names {
    actor: String,
    env: Option<String>,
}

impl Store {
    /// Writes the waiting index entries (durable with the next flush); returns the chain head.
    pub(super) fn write_index(&self) -> Result<Anchor, StoreError> {
        let mut head = self.head();
        self.write_pending(&mut head)?;
        Ok(Anchor {
            seq: head.next_seq.saturating_sub(1),
            hash: head.hash.clone(),
        })
    }

    /// Writes the index entries waiting in `head`, whose lock the caller holds.
    pub(super) fn write_pending(&self, head: &mut Head) -> Result<(), StoreError> {
        if head.pending.events() == 0 {
            return Ok(());
        }
        let through = head.next_seq.saturating_sub(1);
        self.inner
            .audit_index
            .apply_batch(head.pending.batch(through))
            .map_err(|e| io("write", TREE, &e))?;
        // Cleared only once written: after a failed write the entries stay
        // waiting, and the next flush tries again.
        head.pending.clear();
        Ok(())
    }

    /// Indexes the events stored after the through-seq (those a crash left
    /// unindexed), or every event when the index is new, damaged or ahead of
    /// the chain.
    ///
    /// Called by `open`, before any append.
    pub(super) fn catch_up_index(&self) -> Result<(), StoreError> {
        let tree = &self.inner.audit_index;
        let stored = tree
            .get(THROUGH_KEY)
            .map_err(|e| io("read", TREE, &e))?
            .and_then(|bytes| be_u64(&bytes));
        let newest = self
            .inner
            .audit
            .last()
            .map_err(|e| io("read", "audit", &e))?
            .map_or(Some(0), |(key, _)| be_u64(&key));
        let from = match stored {
            Some(through) if newest.is_none_or(|newest| through <= newest) => through,
            // No through-seq: the index is new, or damaged. A through-seq past
            // the end of the chain: its tail was lost, and the events that take
            // those seqs again would share keys with stale chunks. Either way,
            // build the index again from the whole chain.
            _ => {
                tree.clear().map_err(|e| io("write", TREE, &e))?;
                0
            }
        };
        let mut last = from;
        let mut pending = Pending::default();
        for entry in self
            .inner
            .audit
            .range(from.saturating_add(1).to_be_bytes()..)
        {
            let (key, value) = entry.map_err(|e| io("read", "audit", &e))?;
            let Some(seq) = be_u64(&key).filter(|&seq| seq > from) else {
                continue;
            };
            // An undecodable event has no names to index; `verify` reports it.
            if let Ok(names) = serde_json::from_slice::<Names>(&value) {
                pending.add(seq, names.env.as_deref(), &names.actor);
            }
            last = seq;
            if pending.events() >= PENDING_EVENTS {
                self.apply_catch_up(&mut pending, last)?;
            }
        }
        if stored != Some(last) {
            self.apply_catch_up(&mut pending, last)?;
        }
        Ok(())
    }

    fn apply_catch_up(&self, pending: &mut Pending, through: u64) -> Result<(), StoreError> {
        self.inner
            .audit_index
            .apply_batch(pending.batch(through))
            .map_err(|e| io("write", TREE, &e))?;
        pending.clear();
        Ok(())
    }
}

/// Kind, name, 0x00: every key for that name starts so.
pub(super) fn prefix(kind: IndexKind, name: &str) -> Vec<u8> {
    let mut key = Vec::with_capacity(name.len() + 10);
    write_prefix(&mut key, kind, name);
    key
}

fn write_prefix(key: &mut Vec<u8>, kind: IndexKind, name: &str) {
    key.clear();
    key.push(match kind {
        IndexKind::Env => b'e',
        IndexKind::Actor => b'a',
    });
    key.extend_from_slice(name.as_bytes());
    key.push(0);
}

/// The key of a chunk for `prefix` whose newest seq is `newest`.
pub(super) fn chunk_key(prefix: &[u8], newest: u64) -> Vec<u8> {
    let mut key = Vec::with_capacity(prefix.len() + 8);
    key.extend_from_slice(prefix);
    key.extend_from_slice(&newest.to_be_bytes());
    key
}

/// A chunk's seqs, ascending (a damaged tail shorter than 8 bytes is ignored).
pub(super) fn chunk_seqs(value: &[u8]) -> impl DoubleEndedIterator<Item = u64> + '_ {
    value.chunks_exact(8).filter_map(be_u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunk_keys_sort_by_kind_name_then_newest_seq() {
        let prod = prefix(IndexKind::Env, "prod");
        assert!(chunk_key(&prod, 2) < chunk_key(&prod, 256));
        assert!(chunk_key(&prod, u64::MAX) < chunk_key(&prefix(IndexKind::Env, "prod-eu"), 0));
        assert_eq!(
            chunk_key(&prefix(IndexKind::Actor, "a"), 1),
            b"aa\0\0\0\0\0\0\0\0\x01"
        );
        assert!(chunk_key(&prefix(IndexKind::Env, "\u{10ffff}"), u64::MAX) < THROUGH_KEY.to_vec());
    }

    #[test]
    fn a_batch_has_one_chunk_per_name_and_caps_its_size() {
        let mut pending = Pending::default();
        let total = CHUNK_SEQS as u64 + 2;
        for seq in 1..=total {
            pending.add(seq, (seq % 2 == 0).then_some("prod"), "slack:U1");
        }
        assert_eq!(pending.events(), CHUNK_SEQS + 2);
        let actor = &pending.seqs[&prefix(IndexKind::Actor, "slack:U1")];
        assert_eq!(actor.len(), CHUNK_SEQS + 2);
        let env = &pending.seqs[&prefix(IndexKind::Env, "prod")];
        assert_eq!(env.first(), Some(&2));
        assert_eq!(env.len(), (CHUNK_SEQS + 2) / 2);

        let db = sled::Config::new().temporary(true).open().unwrap();
        db.apply_batch(pending.batch(total)).unwrap();
        let keys: Vec<Vec<u8>> = db.iter().keys().map(|k| k.unwrap().to_vec()).collect();
        let actor = prefix(IndexKind::Actor, "slack:U1");
        assert_eq!(
            keys,
            [
                chunk_key(&actor, CHUNK_SEQS as u64),
                chunk_key(&actor, total),
                chunk_key(&prefix(IndexKind::Env, "prod"), total),
                THROUGH_KEY.to_vec(),
            ]
        );
        let tail: Vec<u64> =
            chunk_seqs(&db.get(chunk_key(&actor, total)).unwrap().unwrap()).collect();
        assert_eq!(tail, [total - 1, total]);
        assert_eq!(
            db.get(THROUGH_KEY).unwrap().as_deref().and_then(be_u64),
            Some(total)
        );
    }
}
