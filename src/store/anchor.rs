//! Export and anchoring: a chain head kept outside the store reveals a
//! restored older copy or a rewritten history.
//!
//! An export is JSON Lines: one [`AuditEvent`] per line, then a last line
//! `{"chain_head":{"seq":N,"hash":"…"}}`. That last line is the anchor.

use std::io::{BufRead, Write};

use serde::{Deserialize, Serialize};

use super::audit::AuditEvent;
use super::chain::GENESIS_HASH;
use super::{decode, io, Store, StoreError};

/// A point of the chain: event `seq` has `hash` (seq 0 is the empty chain).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Anchor {
    /// The event's seq; 0 before the first event.
    pub seq: u64,
    /// The event's hash, hex; [`GENESIS_HASH`] for seq 0.
    pub hash: String,
}

/// What [`Store::export`] wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportSummary {
    /// How many events were written.
    pub events: u64,
    /// The chain head written on the last line.
    pub head: Anchor,
}

/// The last line of an export.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct HeadLine {
    chain_head: Anchor,
}

impl Anchor {
    /// Reads the anchor from the last non-empty line of an export (or a file holding only that line).
    pub fn read(reader: impl BufRead) -> Result<Anchor, StoreError> {
        let mut last = None;
        for line in reader.lines() {
            let line = line.map_err(|e| StoreError::BadAnchor {
                detail: e.to_string(),
            })?;
            if !line.trim().is_empty() {
                last = Some(line);
            }
        }
        let line = last.ok_or_else(|| StoreError::BadAnchor {
            detail: "the file is empty".to_owned(),
        })?;
        let head: HeadLine = serde_json::from_str(&line).map_err(|e| StoreError::BadAnchor {
            detail: format!(
                "the last line is not {{\"chain_head\": {{\"seq\": N, \"hash\": \"…\"}}}}: {e}"
            ),
        })?;
        Ok(head.chain_head)
    }
}

impl Store {
    /// The newest event's seq and hash, as an anchor to keep elsewhere.
    pub fn chain_head(&self) -> Anchor {
        let head = self.head();
        Anchor {
            seq: head.next_seq.saturating_sub(1),
            hash: head.hash.clone(),
        }
    }

    /// Writes events with seq >= `since_seq` as JSON Lines, then the chain head line.
    pub fn export(
        &self,
        mut writer: impl Write,
        since_seq: u64,
    ) -> Result<ExportSummary, StoreError> {
        let failed = |e: std::io::Error| StoreError::Export {
            detail: e.to_string(),
        };
        let mut events = 0;
        let mut last = None;
        for entry in self.inner.audit.range(since_seq.to_be_bytes()..) {
            let (key, value) = entry.map_err(|e| io("read", "audit", &e))?;
            // Decoding (not copying bytes) keeps every line one well-formed event.
            let event: AuditEvent = decode("audit", || super::audit::seq_text(&key), &value)?;
            serde_json::to_writer(&mut writer, &event).map_err(|e| StoreError::Export {
                detail: e.to_string(),
            })?;
            writer.write_all(b"\n").map_err(failed)?;
            events += 1;
            last = Some(Anchor {
                seq: event.seq,
                hash: event.hash,
            });
        }
        let head = last.unwrap_or_else(|| self.chain_head());
        let line = HeadLine { chain_head: head };
        serde_json::to_writer(&mut writer, &line).map_err(|e| StoreError::Export {
            detail: e.to_string(),
        })?;
        writer.write_all(b"\n").map_err(failed)?;
        writer.flush().map_err(failed)?;
        Ok(ExportSummary {
            events,
            head: line.chain_head,
        })
    }

    /// Checks that the chain holds event `seq` with `hash`; a restored older copy or a rewrite fails.
    ///
    /// Compares the stored hash; run [`Store::verify`] as well to know that
    /// the events up to it still hash to it.
    pub fn verify_anchor(&self, seq: u64, hash: &str) -> Result<(), StoreError> {
        let found = if seq == 0 {
            Some(GENESIS_HASH.to_owned())
        } else {
            self.event(seq)?.map(|event| event.hash)
        };
        if found.as_deref() == Some(hash) {
            return Ok(());
        }
        Err(StoreError::AnchorMismatch {
            seq,
            expected: hash.to_owned(),
            found,
        })
    }
}
