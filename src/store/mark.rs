//! The flushed-head mark: a small file beside the engine's files that records
//! the newest audit seq known to be durable.
//!
//! sled recovers a damaged log tail by dropping it without a word, which
//! could hand back an older (even empty) chain. The mark turns that into an
//! error at open. It is written after the engine's flush, so it never runs
//! ahead of the data; after a crash it may lag behind, which is harmless.

use std::path::Path;

use super::{be_u64, io, Anchor, Store, StoreError};

/// The mark's file name inside the store's directory.
pub(super) const MARK_FILE: &str = "audit-head";

impl Store {
    /// Fails if the chain is shorter than the mark says it was; returns the marked seq.
    pub(super) fn check_mark(&self) -> Result<u64, StoreError> {
        let file = self.inner.path.join(MARK_FILE);
        let text = match std::fs::read(&file) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
            Err(e) => return Err(self.corrupt(format!("cannot read {}: {e}", file.display()))),
        };
        let mark: Anchor = serde_json::from_slice(&text)
            .map_err(|e| self.corrupt(format!("{} is unreadable: {e}", file.display())))?;
        let last = self
            .inner
            .audit
            .last()
            .map_err(|e| io("read", "audit", &e))?;
        let stored = last.and_then(|(key, _)| be_u64(&key)).unwrap_or(0);
        if stored < mark.seq {
            return Err(self.corrupt(format!(
                "its audit trail ends at seq {stored} but reached seq {} before (recorded in {}): \
                 data was lost or an older copy was put back; if that copy is wanted, remove that file",
                mark.seq,
                file.display()
            )));
        }
        Ok(mark.seq)
    }

    /// Records `head` as durable, if it is newer than the last mark.
    pub(super) fn write_mark(&self, head: &Anchor) -> Result<(), StoreError> {
        let mut marked = self
            .inner
            .marked
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if head.seq <= *marked {
            return Ok(());
        }
        write_atomically(&self.inner.path, head).map_err(|e| StoreError::Io {
            op: "write",
            tree: MARK_FILE,
            detail: e.to_string(),
        })?;
        *marked = head.seq;
        Ok(())
    }

    fn corrupt(&self, detail: String) -> StoreError {
        StoreError::Corrupt {
            path: self.inner.path.clone(),
            detail,
        }
    }
}

/// Replaces the mark file in one step, so a crash leaves the old or the new one.
fn write_atomically(dir: &Path, head: &Anchor) -> std::io::Result<()> {
    let tmp = dir.join(format!("{MARK_FILE}.tmp"));
    std::fs::write(&tmp, serde_json::to_vec(head)?)?;
    std::fs::rename(&tmp, dir.join(MARK_FILE))
}
