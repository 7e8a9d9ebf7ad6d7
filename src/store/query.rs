//! Reading the audit trail: by environment, by actor, by seq.

use super::audit::{check_name, index_key, seq_text, AuditEvent, ListFilter};
use super::{be_u64, decode, io, Store, StoreError};

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
            (Some(env), _) => Some((&self.inner.audit_by_env, "audit_by_env", "env", env)),
            (None, Some(actor)) => {
                Some((&self.inner.audit_by_actor, "audit_by_actor", "actor", actor))
            }
            (None, None) => None,
        };
        if let Some((tree, tree_name, field, name)) = indexed {
            check_name(field, name)?;
            let (from, to) = (index_key(name, since), index_key(name, u64::MAX));
            for entry in tree.range(from..=to).rev() {
                let (key, _) = entry.map_err(|e| io("read", tree_name, &e))?;
                let Some(seq) = key.len().checked_sub(8).and_then(|at| be_u64(&key[at..])) else {
                    continue;
                };
                // An entry without its event cannot come from `append`; skip it.
                if let Some(event) = self.event(seq)?.filter(|e| keep(e)) {
                    found.push(event);
                    if found.len() == limit {
                        break;
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
