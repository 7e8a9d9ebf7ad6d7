//! The audit trail: a hash chain of events (encoding in `chain.rs`),
//! indexed by environment and by actor (`index.rs`).
//!
//! An append writes its event and notes its index entries, which are written
//! with the next flush. `open` reads only the newest event, then indexes the
//! events a crash left without entries.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::chain::{event_hash, hash_bytes, seal, GENESIS_HASH};
use super::index::{Pending, PENDING_EVENTS};
use super::{be_u64, io, Store, StoreError};

/// An event to append; the store assigns its seq and hashes.
#[derive(Debug, Clone, PartialEq)]
pub struct NewEvent {
    /// When it happened, unix milliseconds.
    pub time: i64,
    /// Who did it, e.g. `slack:U024BE7LH` or `gantry`.
    pub actor: String,
    /// What was done, e.g. `deploy.started`.
    pub action: String,
    /// What it was done to, e.g. `R-12`.
    pub subject: String,
    /// The environment concerned, if any.
    pub env: Option<String>,
    /// Anything else worth keeping (SHA, digest, reason); never secrets.
    pub details: Value,
}

/// A stored, hash-chained audit event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditEvent {
    /// Position in the chain, from 1, without gaps.
    pub seq: u64,
    /// When it happened, unix milliseconds.
    pub time: i64,
    /// Who did it.
    pub actor: String,
    /// What was done.
    pub action: String,
    /// What it was done to.
    pub subject: String,
    /// The environment concerned, if any.
    pub env: Option<String>,
    /// Anything else worth keeping.
    pub details: Value,
    /// The previous event's hash (hex); [`GENESIS_HASH`] for seq 1.
    pub prev_hash: String,
    /// `sha256(prev_hash bytes || canonical bytes)`, hex.
    pub hash: String,
}

/// Which events [`Store::list`] returns: all filters must match; newest first.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListFilter {
    /// Only events for this environment.
    pub env: Option<String>,
    /// Only events by this actor.
    pub actor: Option<String>,
    /// Only events with this seq or a later one.
    pub since_seq: Option<u64>,
    /// At most this many events (no limit when `None`).
    pub limit: Option<usize>,
}

/// What [`Store::verify`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyReport {
    /// How many events the store holds.
    pub events: u64,
    /// The newest readable event's seq and hash.
    pub head: Option<(u64, String)>,
    /// The first event that breaks the chain, and why.
    pub first_bad: Option<(u64, String)>,
}

/// The end of the chain, kept in memory; its mutex serialises appends.
#[derive(Debug, Clone)]
pub(super) struct Head {
    /// The seq the next event gets.
    pub(super) next_seq: u64,
    /// The newest event's hash (hex).
    pub(super) hash: String,
    /// Set when the newest event cannot be read: appending is refused.
    pub(super) broken: Option<(u64, String)>,
    /// Index entries of events appended since the index was last written.
    pub(super) pending: Pending,
}

impl Default for Head {
    fn default() -> Self {
        Head {
            next_seq: 1,
            hash: GENESIS_HASH.to_owned(),
            broken: None,
            pending: Pending::default(),
        }
    }
}

impl Store {
    /// Appends an event (written, not yet durable: see [`Store::append_durable`]).
    pub fn append(&self, event: NewEvent) -> Result<AuditEvent, StoreError> {
        match self.append_inner(event, None)? {
            Some(stored) => Ok(stored),
            None => unreachable!("only a delivery can be a repeat"),
        }
    }

    /// Appends an event and records `delivery` (a platform's delivery id,
    /// first seen at `now`) with it: the delivery counts as seen when the
    /// event is stored, and is released when the event cannot be. `None`
    /// when the delivery was seen before (nothing is written).
    pub fn append_delivered(
        &self,
        event: NewEvent,
        delivery: &str,
        now: i64,
    ) -> Result<Option<AuditEvent>, StoreError> {
        self.append_inner(event, Some((delivery, now)))
    }

    fn append_inner(
        &self,
        event: NewEvent,
        delivery: Option<(&str, i64)>,
    ) -> Result<Option<AuditEvent>, StoreError> {
        check_name("actor", &event.actor)?;
        if let Some(env) = &event.env {
            check_name("env", env)?;
        }
        let mut head = self.head();
        if let Some((seq, reason)) = &head.broken {
            return Err(StoreError::ChainBroken {
                seq: *seq,
                reason: reason.clone(),
            });
        }
        let seq = head.next_seq;
        let NewEvent {
            time,
            actor,
            action,
            subject,
            env,
            details,
        } = event;
        let mut stored = AuditEvent {
            seq,
            time,
            actor,
            action,
            subject,
            env,
            details,
            prev_hash: head.hash.clone(),
            hash: String::new(),
        };
        let bytes = seal(&mut stored).map_err(|reason| StoreError::ChainBroken { seq, reason })?;
        match self.write_event(seq, &bytes, delivery)? {
            Written::Stored => {}
            Written::SeqTaken => return Err(StoreError::SeqTaken { seq }),
            Written::Repeat => return Ok(None),
        }
        head.next_seq = seq + 1;
        head.hash.clone_from(&stored.hash);
        // Noted under the lock, so entries wait in seq order.
        head.pending.add(seq, stored.env.as_deref(), &stored.actor);
        if head.pending.events() >= PENDING_EVENTS {
            self.write_pending(&mut head)?;
        }
        drop(head);
        Ok(Some(stored))
    }

    /// Writes event `seq`, and the delivery when there is one. The delivery
    /// is claimed first (a compare-and-swap, so a repeat writes nothing) and
    /// released again when the event cannot be written, so a delivery whose
    /// command was not recorded may come again. Both writes reach the disk
    /// in the same flush, in this order. (A sled transaction over the two
    /// trees would make them one write, at half the acknowledgement rate;
    /// what is left is a crash between two in-memory writes while another
    /// thread's flush runs, which can keep the claim without the event.)
    fn write_event(
        &self,
        seq: u64,
        bytes: &[u8],
        delivery: Option<(&str, i64)>,
    ) -> Result<Written, StoreError> {
        let key = seq.to_be_bytes();
        if let Some((id, now)) = delivery {
            let claimed = self
                .inner
                .deliveries
                .compare_and_swap(id, None::<&[u8]>, Some(&now.to_be_bytes()[..]))
                .map_err(|e| io("write", "deliveries", &e))?;
            if claimed.is_err() {
                return Ok(Written::Repeat);
            }
        }
        let release = || {
            if let Some((id, _)) = delivery {
                // Best effort: if even this fails the store is failing as a
                // whole, and the caller reports that error.
                let _ = self.inner.deliveries.remove(id);
            }
        };
        match self
            .inner
            .audit
            .compare_and_swap(key, None::<&[u8]>, Some(bytes))
        {
            Ok(Ok(())) => Ok(Written::Stored),
            Ok(Err(_)) => {
                release();
                Ok(Written::SeqTaken)
            }
            Err(e) => {
                release();
                Err(io("write", "audit", &e))
            }
        }
    }

    /// Appends an event and flushes: call before a side effect starts and when it ends.
    pub fn append_durable(&self, event: NewEvent) -> Result<AuditEvent, StoreError> {
        let stored = self.append(event)?;
        self.flush()?;
        Ok(stored)
    }

    /// Recomputes the whole chain and names the first event that breaks it.
    pub fn verify(&self) -> Result<VerifyReport, StoreError> {
        let mut report = VerifyReport {
            events: 0,
            head: None,
            first_bad: None,
        };
        let mut expected_seq = 1u64;
        let mut prev = GENESIS_HASH.to_owned();
        let flag = |report: &mut VerifyReport, seq: u64, why: String| {
            report.first_bad.get_or_insert((seq, why));
        };
        for entry in self.inner.audit.iter() {
            let (key, value) = entry.map_err(|e| io("read", "audit", &e))?;
            report.events += 1;
            let Some(seq) = be_u64(&key) else {
                flag(
                    &mut report,
                    expected_seq,
                    format!("undecodable key {}", hex::encode(&key)),
                );
                continue;
            };
            if seq != expected_seq {
                flag(
                    &mut report,
                    expected_seq,
                    format!("seq gap: the next stored event is {seq}"),
                );
            }
            expected_seq = seq.saturating_add(1);
            let event: AuditEvent = match serde_json::from_slice(&value) {
                Ok(event) => event,
                Err(e) => {
                    flag(&mut report, seq, format!("undecodable: {e}"));
                    continue;
                }
            };
            if event.seq != seq {
                flag(
                    &mut report,
                    seq,
                    format!("seq mismatch: stored under {seq}, says {}", event.seq),
                );
            }
            if event.prev_hash != prev {
                flag(&mut report, seq, "prev_hash mismatch".to_owned());
            }
            match event_hash(&event) {
                Ok(hash) if hash == event.hash => {}
                Ok(_) => flag(&mut report, seq, "hash mismatch".to_owned()),
                Err(why) => flag(&mut report, seq, why),
            }
            prev.clone_from(&event.hash);
            report.head = Some((seq, event.hash));
        }
        Ok(report)
    }

    /// Reads the newest event to find where the chain continues.
    pub(super) fn recover_head(&self) -> Result<Head, StoreError> {
        let Some((key, value)) = self
            .inner
            .audit
            .last()
            .map_err(|e| io("read", "audit", &e))?
        else {
            return Ok(Head::default());
        };
        let broken = |seq: u64, reason: String| Head {
            next_seq: seq.saturating_add(1),
            hash: String::new(),
            broken: Some((seq, reason)),
            pending: Pending::default(),
        };
        let Some(seq) = be_u64(&key) else {
            return Ok(broken(0, format!("undecodable key {}", hex::encode(&key))));
        };
        let event: AuditEvent = match serde_json::from_slice(&value) {
            Ok(event) => event,
            Err(e) => return Ok(broken(seq, format!("undecodable: {e}"))),
        };
        if event.seq != seq || hash_bytes(&event.hash).is_err() {
            return Ok(broken(
                seq,
                "the newest event does not match its key or hash".to_owned(),
            ));
        }
        Ok(Head {
            next_seq: seq + 1,
            hash: event.hash,
            broken: None,
            pending: Pending::default(),
        })
    }
}

/// Rejects names that would make index keys ambiguous.
pub(super) fn check_name(field: &'static str, value: &str) -> Result<(), StoreError> {
    if value.contains('\0') {
        return Err(StoreError::InvalidName {
            field,
            value: value.to_owned(),
        });
    }
    Ok(())
}

pub(super) fn seq_text(key: &[u8]) -> String {
    be_u64(key).map_or_else(|| hex::encode(key), |seq| seq.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(action: &str) -> NewEvent {
        NewEvent {
            time: 1,
            actor: "alice".into(),
            action: action.into(),
            subject: "deploy".into(),
            env: Some("dev".into()),
            details: serde_json::json!({}),
        }
    }

    #[test]
    fn a_delivered_event_is_stored_once_with_its_delivery() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let first = store
            .append_delivered(event("command.received"), "slack:1:v0=ab", 10)
            .unwrap();
        assert_eq!(first.map(|e| e.seq), Some(1));
        // The repeat writes nothing: no event, and the chain goes on at 2.
        let again = store
            .append_delivered(event("command.received"), "slack:1:v0=ab", 11)
            .unwrap();
        assert!(again.is_none());
        assert!(!store.first_seen("slack:1:v0=ab", 12).unwrap());
        assert_eq!(store.append(event("other")).unwrap().seq, 2);
        assert!(store.verify().unwrap().first_bad.is_none());
    }

    #[test]
    fn names_with_nul_are_refused() {
        assert!(matches!(
            check_name("actor", "a\0b"),
            Err(StoreError::InvalidName { field: "actor", .. })
        ));
    }
}

/// What writing one event found.
#[derive(Debug)]
enum Written {
    /// The event (and its delivery) is stored.
    Stored,
    /// Another writer holds this seq.
    SeqTaken,
    /// The delivery was seen before; nothing was written.
    Repeat,
}
