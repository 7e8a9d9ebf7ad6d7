//! The store's typed errors.

use std::path::PathBuf;

/// Everything that can go wrong in the store; each variant names what it was doing.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The storage engine found damaged data while opening the directory.
    #[error(
        "the store at {path} is damaged ({detail}); it was kept, not deleted or replaced; \
         restore a backup or move it aside, then start again"
    )]
    Corrupt {
        /// The store's directory.
        path: PathBuf,
        /// What the storage engine reported.
        detail: String,
    },
    /// Another process (usually a running `gantry`) holds the store open.
    #[error("the store at {path} is in use by another process (is gantry running?): {detail}")]
    InUse {
        /// The store's directory.
        path: PathBuf,
        /// What the operating system reported.
        detail: String,
    },
    /// The directory could not be opened for another reason (permissions, disk, version).
    #[error(
        "cannot open the store at {path}: {detail}; it was kept, not deleted or replaced; \
         check its permissions and free space, or restore a backup"
    )]
    Open {
        /// The store's directory.
        path: PathBuf,
        /// What the storage engine reported.
        detail: String,
    },
    /// The store was written in a layout this Gantry does not know, by a newer Gantry.
    #[error(
        "the store at {path} has layout version {found}, but this Gantry reads versions up to \
         {supported}; it was kept as is; run the Gantry that wrote it, or a newer one"
    )]
    Layout {
        /// The store's directory.
        path: PathBuf,
        /// The version the store records.
        found: u64,
        /// The newest version this Gantry reads.
        supported: u64,
    },
    /// The directory holds no store and the caller asked not to create one.
    #[error("there is no store at {path} (give the right directory with --data)")]
    Missing {
        /// The directory that was asked for.
        path: PathBuf,
    },
    /// A read or write failed after the store was open.
    #[error("store {op} failed in tree `{tree}`: {detail}")]
    Io {
        /// What was being done (`read`, `write`, `flush`, ...).
        op: &'static str,
        /// Which tree.
        tree: &'static str,
        /// What the storage engine reported.
        detail: String,
    },
    /// A stored value could not be decoded.
    #[error("undecodable record in tree `{tree}` at key {key}: {detail}")]
    Decode {
        /// Which tree.
        tree: &'static str,
        /// The key, printable (numbers in decimal, text as is).
        key: String,
        /// Why it could not be decoded.
        detail: String,
    },
    /// A value could not be encoded for storage.
    #[error("cannot encode a record for tree `{tree}`: {detail}")]
    Encode {
        /// Which tree.
        tree: &'static str,
        /// Why it could not be encoded.
        detail: String,
    },
    /// A name used as an index key contains a NUL byte, which separates index keys.
    #[error("the {field} {value:?} contains a NUL byte and cannot be indexed")]
    InvalidName {
        /// Which field (`actor`, `env`).
        field: &'static str,
        /// The offending value.
        value: String,
    },
    /// The last audit event could not be read at open, so nothing can be chained after it.
    #[error("the audit chain is broken at seq {seq} ({reason}); no event can be appended; run `gantry audit verify`")]
    ChainBroken {
        /// The seq of the unreadable event.
        seq: u64,
        /// Why it is unreadable.
        reason: String,
    },
    /// An audit event already exists at the seq this store was about to write.
    #[error("audit seq {seq} is already taken; another writer is using this store")]
    SeqTaken {
        /// The seq that was found occupied.
        seq: u64,
    },
    /// The chain does not contain the anchored event: the store was restored from an older copy or altered.
    #[error(
        "store is older than or diverges from the anchor: anchor seq {seq} hash {expected}, \
         store has {}",
        found.as_deref().unwrap_or("no such event")
    )]
    AnchorMismatch {
        /// The anchored seq.
        seq: u64,
        /// The anchored hash.
        expected: String,
        /// The hash the store holds at that seq, if any.
        found: Option<String>,
    },
    /// An anchor (the last line of an export) could not be read.
    #[error("cannot read the chain anchor: {detail}")]
    BadAnchor {
        /// What was wrong with it.
        detail: String,
    },
    /// Writing an export failed.
    #[error("cannot write the audit export: {detail}")]
    Export {
        /// What the writer reported.
        detail: String,
    },
}
