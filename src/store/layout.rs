//! The store's layout version, kept in `meta`, so that a store written in a
//! layout this Gantry does not know is refused instead of misread.
//!
//! - 1 (no `layout` key): one index key per event and name, in the trees
//!   `audit_by_env` and `audit_by_actor`.
//! - 2: one `audit_index` tree of chunks (`index.rs`).
//!
//! A layout-1 store is upgraded at open: its index is built again from the
//! chain, then the old trees are dropped and the version recorded. A crash
//! during that is harmless: the next open carries on where it stopped.

use std::path::Path;

use super::{be_u64, io, Store, StoreError};

/// The layout this Gantry writes.
pub(super) const LAYOUT: u64 = 2;

/// The `meta` key of the layout version, u64 big-endian.
const LAYOUT_KEY: &str = "layout";

/// The index trees of layout 1.
const OLD_TREES: [&str; 2] = ["audit_by_env", "audit_by_actor"];

/// Reads the layout of the store in `dir`, refusing one newer than [`LAYOUT`].
pub(super) fn check(dir: &Path, meta: &sled::Tree) -> Result<u64, StoreError> {
    let stored = meta.get(LAYOUT_KEY).map_err(|e| io("read", "meta", &e))?;
    let Some(bytes) = stored else {
        return Ok(1);
    };
    let found = be_u64(&bytes).ok_or_else(|| StoreError::Corrupt {
        path: dir.to_path_buf(),
        detail: format!("its layout version is unreadable ({})", hex::encode(&bytes)),
    })?;
    if found > LAYOUT {
        return Err(StoreError::Layout {
            path: dir.to_path_buf(),
            found,
            supported: LAYOUT,
        });
    }
    Ok(found)
}

impl Store {
    /// Ends the upgrade from layout `from`, once the index has caught up with the chain.
    pub(super) fn finish_upgrade(&self, from: u64) -> Result<(), StoreError> {
        if from == LAYOUT {
            return Ok(());
        }
        for name in OLD_TREES {
            self.inner
                .db
                .drop_tree(name)
                .map_err(|e| io("drop", name, &e))?;
        }
        self.inner
            .meta
            .insert(LAYOUT_KEY, &LAYOUT.to_be_bytes()[..])
            .map_err(|e| io("write", "meta", &e))?;
        self.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layouts_up_to_this_one_open_and_newer_ones_are_refused() {
        let db = sled::Config::new().temporary(true).open().unwrap();
        let meta = db.open_tree("meta").unwrap();
        let dir = Path::new("/data/gantry");
        assert_eq!(check(dir, &meta).unwrap(), 1);
        meta.insert(LAYOUT_KEY, &LAYOUT.to_be_bytes()[..]).unwrap();
        assert_eq!(check(dir, &meta).unwrap(), LAYOUT);
        meta.insert(LAYOUT_KEY, &(LAYOUT + 1).to_be_bytes()[..])
            .unwrap();
        let err = check(dir, &meta).unwrap_err();
        assert!(matches!(err, StoreError::Layout { found: 3, .. }), "{err}");
        meta.insert(LAYOUT_KEY, &b"2"[..]).unwrap();
        let err = check(dir, &meta).unwrap_err();
        assert!(matches!(err, StoreError::Corrupt { .. }), "{err}");
        assert!(err.to_string().contains("/data/gantry"), "{err}");
    }
}
