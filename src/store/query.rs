//! Reading the audit trail: by environment, by actor, by seq.

use super::audit::{check_name, seq_text, AuditEvent, ListFilter};
use super::index::{chunk_key, chunk_seqs, prefix, IndexKind, TREE};
use super::{decode, io, Store, StoreError};

impl Store {
    /// The newest events for `env`, newest first.
    pub fn history(&self, env: &str, limit: usize) -> Result<Vec<AuditEvent>, StoreError> {
        self.list(&ListFilter {
            env: Some(env.to_owned()),
            limit: Some(limit),
            ..ListFilter::default()
        })
    }

    /// The newest events by `actor`, newest first.
    pub fn by_actor(&self, actor: &str, limit: usize) -> Result<Vec<AuditEvent>, StoreError> {
        self.list(&ListFilter {
            actor: Some(actor.to_owned()),
            limit: Some(limit),
            ..ListFilter::default()
        })
    }

    /// The events matching `filter`, newest first.
    pub fn list(&self, filter: &ListFilter) -> Result<Vec<AuditEvent>, StoreError> {
        let since = filter.since_seq.unwrap_or(0);
        let limit = filter.limit.unwrap_or(usize::MAX);
        let mut found = Vec::new();
        if limit == 0 {
            return Ok(found);
        }
        let keep = |event: &AuditEvent| {
            filter.actor.as_ref().is_none_or(|a| *a == event.actor)
                && filter
                    .env
                    .as_ref()
                    .is_none_or(|e| event.env.as_ref() == Some(e))
        };
        let indexed = match (&filter.env, &filter.actor) {
            (Some(env), _) => Some((IndexKind::Env, "env", env)),
            (None, Some(actor)) => Some((IndexKind::Actor, "actor", actor)),
            (None, None) => None,
        };
        if let Some((kind, field, name)) = indexed {
            check_name(field, name)?;
            // Entries of unflushed events wait in memory until written.
            self.write_index()?;
            let prefix = prefix(kind, name);
            let (from, to) = (chunk_key(&prefix, since), chunk_key(&prefix, u64::MAX));
            let mut older_than = None;
            'chunks: for entry in self.inner.audit_index.range(from..=to).rev() {
                let (_, value) = entry.map_err(|e| io("read", TREE, &e))?;
                for seq in chunk_seqs(&value).rev() {
                    // Chunks hold disjoint runs of seqs, so these come newest
                    // first; were a damaged index to repeat one, it is shown once.
                    if seq < since || older_than.is_some_and(|older: u64| seq >= older) {
                        continue;
                    }
                    older_than = Some(seq);
                    // An entry whose event is missing or differs cannot come from `append`; skip it.
                    if let Some(event) = self.event(seq)?.filter(|e| keep(e)) {
                        found.push(event);
                        if found.len() == limit {
                            break 'chunks;
                        }
                    }
                }
            }
        } else {
            for entry in self.inner.audit.range(since.to_be_bytes()..).rev() {
                let (key, value) = entry.map_err(|e| io("read", "audit", &e))?;
                found.push(decode("audit", || seq_text(&key), &value)?);
                if found.len() == limit {
                    break;
                }
            }
        }
        Ok(found)
    }

    /// Event `seq`, if stored.
    pub fn event(&self, seq: u64) -> Result<Option<AuditEvent>, StoreError> {
        let bytes = self
            .inner
            .audit
            .get(seq.to_be_bytes())
            .map_err(|e| io("read", "audit", &e))?;
        bytes
            .map(|b| decode("audit", || seq.to_string(), &b))
            .transpose()
    }
}
