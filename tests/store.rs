//! The store on a real disk: each test opens its own temporary directory.

use std::collections::HashSet;
use std::path::Path;
use std::sync::{Arc, Barrier};

use gantry::store::{Anchor, ListFilter, LockRecord, NewEvent, Store, StoreError, GENESIS_HASH};
use serde_json::json;

fn event(i: u64, env: Option<&str>, actor: &str) -> NewEvent {
    NewEvent {
        time: 1_700_000_000_000 + i as i64,
        actor: actor.to_owned(),
        action: "deploy.started".to_owned(),
        subject: format!("R-{i}"),
        env: env.map(str::to_owned),
        details: json!({"sha": format!("{i:040x}"), "ratio": 0.1 + i as f64}),
    }
}

/// Appends `n` events cycling over dev/prod/none and two actors; flushes.
fn fill(store: &Store, n: u64) {
    for i in 0..n {
        let env = [Some("dev"), Some("prod"), None][(i % 3) as usize];
        let actor = ["slack:U1", "github:octocat"][(i % 2) as usize];
        store.append(event(i, env, actor)).unwrap();
    }
    store.flush().unwrap();
}

/// Opens the engine's files directly, waiting for a just-dropped store to let go of them.
fn raw_open(dir: &Path) -> sled::Db {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(2);
    loop {
        match sled::open(dir) {
            Ok(db) => return db,
            Err(e) if std::time::Instant::now() > deadline => panic!("open {}: {e}", dir.display()),
            Err(_) => std::thread::sleep(std::time::Duration::from_millis(10)),
        }
    }
}

/// Edits the engine's files directly, as an attacker or a failing disk would.
fn with_raw_tree(dir: &Path, tree: &str, edit: impl FnOnce(&sled::Tree)) {
    let db = raw_open(dir);
    edit(&db.open_tree(tree).unwrap());
    db.flush().unwrap();
}

#[test]
fn chain_verifies_and_links_each_event_to_the_previous() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let first = store.append(event(0, Some("prod"), "slack:U1")).unwrap();
    let second = store.append_durable(event(1, None, "slack:U1")).unwrap();
    assert_eq!((first.seq, first.prev_hash.as_str()), (1, GENESIS_HASH));
    assert_eq!((second.seq, &second.prev_hash), (2, &first.hash));
    fill(&store, 20);
    let report = store.verify().unwrap();
    assert_eq!(report.events, 22);
    assert_eq!(report.first_bad, None);
    assert_eq!(report.head, Some((22, store.chain_head().hash)));
}

#[test]
fn empty_store_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let report = store.verify().unwrap();
    assert_eq!(
        (report.events, report.head, report.first_bad),
        (0, None, None)
    );
    assert_eq!(
        store.chain_head(),
        Anchor {
            seq: 0,
            hash: GENESIS_HASH.to_owned()
        }
    );
}

#[test]
fn tampering_with_one_byte_names_that_seq() {
    let dir = tempfile::tempdir().unwrap();
    fill(&Store::open(dir.path()).unwrap(), 30);
    with_raw_tree(dir.path(), "audit", |audit| {
        let key = 17u64.to_be_bytes();
        let mut value = audit.get(key).unwrap().unwrap().to_vec();
        let at = value.windows(8).position(|w| w == b"slack:U1").unwrap();
        value[at + 7] = b'2';
        audit.insert(key, value).unwrap();
    });
    let store = Store::open(dir.path()).unwrap();
    let report = store.verify().unwrap();
    assert_eq!(report.events, 30);
    assert_eq!(report.first_bad, Some((17, "hash mismatch".to_owned())));
}

#[test]
fn undecodable_missing_and_relinked_events_are_named() {
    let dir = tempfile::tempdir().unwrap();
    fill(&Store::open(dir.path()).unwrap(), 10);
    with_raw_tree(dir.path(), "audit", |audit| {
        audit.insert(4u64.to_be_bytes(), &b"{not json"[..]).unwrap();
    });
    let (bad, why) = Store::open(dir.path())
        .unwrap()
        .verify()
        .unwrap()
        .first_bad
        .unwrap();
    assert_eq!(bad, 4);
    assert!(why.starts_with("undecodable"), "{why}");

    let dir = tempfile::tempdir().unwrap();
    fill(&Store::open(dir.path()).unwrap(), 10);
    with_raw_tree(dir.path(), "audit", |audit| {
        audit.remove(6u64.to_be_bytes()).unwrap();
    });
    let (bad, why) = Store::open(dir.path())
        .unwrap()
        .verify()
        .unwrap()
        .first_bad
        .unwrap();
    assert_eq!(bad, 6);
    assert!(why.starts_with("seq gap"), "{why}");
}

#[test]
fn unreadable_newest_event_refuses_appends() {
    let dir = tempfile::tempdir().unwrap();
    fill(&Store::open(dir.path()).unwrap(), 5);
    with_raw_tree(dir.path(), "audit", |audit| {
        audit.insert(5u64.to_be_bytes(), &b"\xff"[..]).unwrap();
    });
    let store = Store::open(dir.path()).unwrap();
    let err = store.append(event(9, None, "slack:U1")).unwrap_err();
    assert!(
        matches!(err, StoreError::ChainBroken { seq: 5, .. }),
        "{err}"
    );
    assert_eq!(store.verify().unwrap().first_bad.map(|b| b.0), Some(5));
}

#[test]
fn lock_race_has_exactly_one_winner() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let threads = 16;
    let barrier = Arc::new(Barrier::new(threads));
    let handles: Vec<_> = (0..threads)
        .map(|i| {
            let (store, barrier) = (store.clone(), barrier.clone());
            std::thread::spawn(move || {
                let record = LockRecord {
                    key: "api/prod".into(),
                    holder: format!("console:user{i}"),
                    request: Some(i as u64),
                    reason: "deploy".into(),
                    since: 1,
                };
                barrier.wait();
                store.try_lock(&record).unwrap().is_ok().then_some(record)
            })
        })
        .collect();
    let winners: Vec<LockRecord> = handles
        .into_iter()
        .filter_map(|h| h.join().unwrap())
        .collect();
    assert_eq!(winners.len(), 1);
    assert_eq!(store.lock("api/prod").unwrap().as_ref(), Some(&winners[0]));
    assert_eq!(store.locks().unwrap(), winners);
}

#[test]
fn deliveries_are_idempotent_across_threads_and_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let handles: Vec<_> = (0..8)
        .map(|_| {
            let store = store.clone();
            std::thread::spawn(move || store.first_seen("delivery-1", 100).unwrap())
        })
        .collect();
    let firsts = handles
        .into_iter()
        .filter(|_| true)
        .map(|h| h.join().unwrap())
        .filter(|&first| first)
        .count();
    assert_eq!(firsts, 1);
    store.flush().unwrap();
    drop(store);
    let store = Store::open(dir.path()).unwrap();
    assert!(!store.first_seen("delivery-1", 200).unwrap());
    assert_eq!(store.expire_deliveries(100).unwrap(), 0);
    assert_eq!(store.expire_deliveries(101).unwrap(), 1);
    assert!(store.first_seen("delivery-1", 300).unwrap());
}

#[test]
fn reopen_keeps_seq_head_request_ids_and_records() {
    let dir = tempfile::tempdir().unwrap();
    let head = {
        let store = Store::open(dir.path()).unwrap();
        fill(&store, 7);
        assert_eq!(store.next_request_id().unwrap(), 1);
        assert_eq!(store.next_request_id().unwrap(), 2);
        store
            .put_request(2, &json!({"state": "Deploying"}))
            .unwrap();
        store.flush().unwrap();
        store.chain_head()
    };
    let store = Store::open(dir.path()).unwrap();
    assert_eq!(store.chain_head(), head);
    assert_eq!(head.seq, 7);
    assert_eq!(store.next_request_id().unwrap(), 3);
    assert_eq!(
        store.requests::<serde_json::Value>().unwrap(),
        [(2, json!({"state": "Deploying"}))]
    );
    let next = store.append(event(8, None, "slack:U1")).unwrap();
    assert_eq!((next.seq, next.prev_hash), (8, head.hash));
    assert_eq!(store.verify().unwrap().first_bad, None);
}

#[test]
fn a_store_in_use_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let _store = Store::open(dir.path()).unwrap();
    let err = Store::open(dir.path()).unwrap_err();
    assert!(matches!(err, StoreError::InUse { .. }), "{err}");
}

#[test]
fn open_existing_does_not_create_a_store() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nothing-here");
    let err = Store::open_existing(&missing).unwrap_err();
    assert!(err.to_string().contains("nothing-here"), "{err}");
    assert!(!missing.exists());
    let empty = dir.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    assert!(matches!(
        Store::open_existing(&empty),
        Err(StoreError::Missing { .. })
    ));
    assert_eq!(std::fs::read_dir(&empty).unwrap().count(), 0);
}

#[test]
fn corrupt_store_is_reported_with_its_path_and_left_in_place() {
    for (file, at) in [("db", 4096), ("conf", 0)] {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("data");
        fill(&Store::open(&path).unwrap(), 2_000);
        let names = |path: &Path| {
            let mut names: Vec<_> = std::fs::read_dir(path)
                .unwrap()
                .map(|e| e.unwrap().file_name())
                .collect();
            names.sort();
            names
        };
        let before = names(&path);
        // Damage 64 bytes in every 64 KiB: stale log segments are never read,
        // so one spot may go unnoticed.
        let mut bytes = std::fs::read(path.join(file)).unwrap();
        for start in (at..bytes.len()).step_by(64 * 1024) {
            let end = (start + 64).min(bytes.len());
            for b in &mut bytes[start..end] {
                *b ^= 0x5a;
            }
        }
        std::fs::write(path.join(file), bytes).unwrap();
        for attempt in 0..2 {
            let err = Store::open(&path).unwrap_err();
            let message = err.to_string();
            assert!(
                matches!(err, StoreError::Corrupt { .. }),
                "{file} attempt {attempt}: {message}"
            );
            assert!(message.contains(&path.display().to_string()), "{message}");
            assert!(message.contains("not deleted or replaced"), "{message}");
        }
        // sled's recovery may rewrite part of its own log, but nothing is removed or added.
        assert_eq!(names(&path), before, "{file}");
    }
}

#[test]
fn a_chain_shorter_than_what_was_flushed_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    fill(&Store::open(dir.path()).unwrap(), 10);
    // What sled does, unannounced, when it finds a damaged log tail.
    with_raw_tree(dir.path(), "audit", |audit| {
        for seq in [9u64, 10] {
            audit.remove(seq.to_be_bytes()).unwrap();
        }
    });
    let err = Store::open(dir.path()).unwrap_err();
    let message = err.to_string();
    assert!(matches!(err, StoreError::Corrupt { .. }), "{message}");
    assert!(
        message.contains("ends at seq 8 but reached seq 10"),
        "{message}"
    );

    // Unflushed appends may be lost by a crash: the mark only covers flushed ones.
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    fill(&store, 3);
    store.append(event(4, None, "slack:U1")).unwrap();
    drop(store);
    with_raw_tree(dir.path(), "audit", |audit| {
        audit.remove(4u64.to_be_bytes()).unwrap();
    });
    assert_eq!(Store::open(dir.path()).unwrap().chain_head().seq, 3);
}

fn seqs(events: Vec<gantry::store::AuditEvent>) -> Vec<u64> {
    events.iter().map(|e| e.seq).collect()
}

/// Asserts what `fill(n)` indexes for `n` = 12, with seq 13 and on absent.
fn assert_indexed_like_fill_12(store: &Store) {
    assert_eq!(seqs(store.history("dev", 100).unwrap()), [10, 7, 4, 1]);
    assert_eq!(seqs(store.history("prod", 100).unwrap()), [11, 8, 5, 2]);
    assert_eq!(
        seqs(store.by_actor("github:octocat", 100).unwrap()),
        [12, 10, 8, 6, 4, 2]
    );
    assert_eq!(
        seqs(store.by_actor("slack:U1", 100).unwrap()),
        [11, 9, 7, 5, 3, 1]
    );
}

#[test]
fn events_written_but_not_indexed_before_a_crash_are_indexed_at_open() {
    // A crash after sled wrote some events but before the flush that writes
    // their index entries: build that state from a twin store.
    let twin = tempfile::tempdir().unwrap();
    fill(&Store::open(twin.path()).unwrap(), 12);
    let dir = tempfile::tempdir().unwrap();
    fill(&Store::open(dir.path()).unwrap(), 7);
    let events: Vec<_> = {
        let db = raw_open(twin.path());
        let audit = db.open_tree("audit").unwrap();
        audit
            .range(8u64.to_be_bytes()..)
            .map(Result::unwrap)
            .collect()
    };
    assert_eq!(events.len(), 5);
    with_raw_tree(dir.path(), "audit", |audit| {
        for (key, value) in events {
            audit.insert(key, value).unwrap();
        }
    });
    let store = Store::open(dir.path()).unwrap();
    assert_eq!(store.chain_head().seq, 12);
    assert_indexed_like_fill_12(&store);
    assert_eq!(store.verify().unwrap().first_bad, None);
    let next = store.append(event(12, Some("dev"), "slack:U1")).unwrap();
    assert_eq!(next.seq, 13);
    assert_eq!(seqs(store.history("dev", 2).unwrap()), [13, 10]);
}

#[test]
fn a_lost_or_damaged_index_is_built_again_from_the_chain() {
    let dir = tempfile::tempdir().unwrap();
    fill(&Store::open(dir.path()).unwrap(), 12);
    with_raw_tree(dir.path(), "audit_index", |index| index.clear().unwrap());
    assert_indexed_like_fill_12(&Store::open(dir.path()).unwrap());

    // The through-seq unreadable, and a chunk that lost seqs 1, 4 and 7.
    with_raw_tree(dir.path(), "audit_index", |index| {
        index.insert([0xff], &b"?"[..]).unwrap();
        let key = [&b"edev\0"[..], &10u64.to_be_bytes()].concat();
        assert!(index
            .insert(key, &10u64.to_be_bytes()[..])
            .unwrap()
            .is_some());
    });
    assert_indexed_like_fill_12(&Store::open(dir.path()).unwrap());
}

#[test]
fn an_index_ahead_of_a_shortened_chain_is_built_again() {
    let dir = tempfile::tempdir().unwrap();
    fill(&Store::open(dir.path()).unwrap(), 14);
    // The chain lost its tail and the operator accepted that (see
    // `a_chain_shorter_than_what_was_flushed_is_refused`).
    with_raw_tree(dir.path(), "audit", |audit| {
        for seq in [13u64, 14] {
            audit.remove(seq.to_be_bytes()).unwrap();
        }
    });
    std::fs::remove_file(dir.path().join("audit-head")).unwrap();
    let store = Store::open(dir.path()).unwrap();
    assert_indexed_like_fill_12(&store);
    // New events take seqs 13 and 14 again: only they are found under them.
    store
        .append(event(20, Some("prod"), "console:ops"))
        .unwrap();
    store.append(event(21, None, "github:octocat")).unwrap();
    store.flush().unwrap();
    assert_eq!(seqs(store.history("prod", 2).unwrap()), [13, 11]);
    assert_eq!(seqs(store.history("dev", 1).unwrap()), [10]);
    assert_eq!(seqs(store.by_actor("console:ops", 5).unwrap()), [13]);
    assert_eq!(seqs(store.by_actor("github:octocat", 2).unwrap()), [14, 12]);
    assert_eq!(seqs(store.by_actor("slack:U1", 1).unwrap()), [11]);
}

#[test]
fn a_store_of_the_first_layout_is_upgraded_at_open() {
    // Layout 1: no `layout` key, one index key per event in two trees.
    let twin = tempfile::tempdir().unwrap();
    fill(&Store::open(twin.path()).unwrap(), 12);
    let dir = tempfile::tempdir().unwrap();
    {
        let events: Vec<_> = {
            let db = raw_open(twin.path());
            let audit = db.open_tree("audit").unwrap();
            audit.iter().map(Result::unwrap).collect()
        };
        let db = raw_open(dir.path());
        let audit = db.open_tree("audit").unwrap();
        for (key, value) in events {
            audit.insert(key, value).unwrap();
        }
        let key = |name: &str, seq: u64| [name.as_bytes(), &[0], &seq.to_be_bytes()].concat();
        let env = db.open_tree("audit_by_env").unwrap();
        env.insert(key("prod", 11), &[]).unwrap();
        let actor = db.open_tree("audit_by_actor").unwrap();
        actor.insert(key("slack:U1", 11), &[]).unwrap();
        db.flush().unwrap();
    }
    let store = Store::open(dir.path()).unwrap();
    assert_indexed_like_fill_12(&store);
    assert_eq!(store.verify().unwrap().first_bad, None);
    drop(store);

    let db = raw_open(dir.path());
    let trees: Vec<_> = db.tree_names().iter().map(|n| n.to_vec()).collect();
    assert!(!trees.contains(&b"audit_by_env".to_vec()), "{trees:?}");
    assert!(!trees.contains(&b"audit_by_actor".to_vec()), "{trees:?}");
    let layout = db.open_tree("meta").unwrap().get("layout").unwrap();
    assert_eq!(layout.as_deref(), Some(&2u64.to_be_bytes()[..]));
}

#[test]
fn a_store_of_a_newer_layout_is_refused_and_kept() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("data");
    fill(&Store::open(&path).unwrap(), 3);
    with_raw_tree(&path, "meta", |meta| {
        meta.insert("layout", &3u64.to_be_bytes()[..]).unwrap();
    });
    let err = Store::open(&path).unwrap_err();
    let message = err.to_string();
    assert!(
        matches!(
            err,
            StoreError::Layout {
                found: 3,
                supported: 2,
                ..
            }
        ),
        "{message}"
    );
    assert!(message.contains(&path.display().to_string()), "{message}");
    // Nothing was changed: back at layout 2, the store opens with its chain.
    with_raw_tree(&path, "meta", |meta| {
        meta.insert("layout", &2u64.to_be_bytes()[..]).unwrap();
    });
    let store = Store::open(&path).unwrap();
    assert_eq!(store.chain_head().seq, 3);
    assert_eq!(store.verify().unwrap().first_bad, None);
}

#[test]
fn queries_see_events_appended_since_the_last_flush() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    fill(&store, 3);
    store.append(event(3, Some("prod"), "console:ops")).unwrap();
    assert_eq!(seqs(store.history("prod", 5).unwrap()), [4, 2]);
    store.append(event(4, Some("prod"), "console:ops")).unwrap();
    assert_eq!(seqs(store.by_actor("console:ops", 5).unwrap()), [5, 4]);
    assert_eq!(seqs(store.history("prod", 5).unwrap()), [5, 4, 2]);
    // More events than are ever kept waiting in memory, none flushed.
    for i in 0..5_000 {
        store
            .append(event(10 + i, Some("dev"), "console:bulk"))
            .unwrap();
    }
    assert_eq!(store.history("dev", 10_000).unwrap().len(), 5_001);
    assert_eq!(
        seqs(store.by_actor("console:bulk", 2).unwrap()),
        [5_005, 5_004]
    );
    store.flush().unwrap();
    drop(store);
    let store = Store::open(dir.path()).unwrap();
    assert_eq!(store.history("dev", 10_000).unwrap().len(), 5_001);
    assert_eq!(seqs(store.history("prod", 5).unwrap()), [5, 4, 2]);
}

#[test]
fn history_by_actor_and_list_filter_newest_first() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    fill(&store, 30);
    assert_eq!(seqs(store.history("prod", 3).unwrap()), [29, 26, 23]);
    assert_eq!(
        seqs(store.history("staging", 3).unwrap()),
        Vec::<u64>::new()
    );
    assert_eq!(seqs(store.by_actor("github:octocat", 2).unwrap()), [30, 28]);
    let filter = ListFilter {
        env: Some("dev".into()),
        actor: Some("slack:U1".into()),
        since_seq: Some(10),
        limit: None,
    };
    assert_eq!(seqs(store.list(&filter).unwrap()), [25, 19, 13]);
    let all = ListFilter {
        since_seq: Some(28),
        ..ListFilter::default()
    };
    assert_eq!(seqs(store.list(&all).unwrap()), [30, 29, 28]);
    assert_eq!(
        seqs(
            store
                .list(&ListFilter {
                    limit: Some(0),
                    ..all
                })
                .unwrap()
        ),
        Vec::<u64>::new()
    );
    assert!(matches!(
        store.history("pr\0d", 1),
        Err(StoreError::InvalidName { .. })
    ));
    assert!(store.append(event(1, None, "bad\0actor")).is_err());
}

#[test]
fn export_and_anchor_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    fill(&store, 10);
    let mut out = Vec::new();
    let summary = store.export(&mut out, 1).unwrap();
    assert_eq!(summary.events, 10);
    assert_eq!(summary.head, store.chain_head());
    let text = String::from_utf8(out.clone()).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 11);
    let third: gantry::store::AuditEvent = serde_json::from_str(lines[2]).unwrap();
    assert_eq!(third, store.event(3).unwrap().unwrap());
    let anchor = Anchor::read(&out[..]).unwrap();
    assert_eq!(anchor, summary.head);
    store.verify_anchor(anchor.seq, &anchor.hash).unwrap();

    // Later events do not disturb an older anchor.
    fill(&store, 5);
    store.verify_anchor(anchor.seq, &anchor.hash).unwrap();
    let mut partial = Vec::new();
    let since = store.export(&mut partial, 14).unwrap();
    assert_eq!((since.events, since.head.seq), (2, 15));

    // A store restored from an older copy lacks the anchored event.
    let older = tempfile::tempdir().unwrap();
    let older_store = Store::open(older.path()).unwrap();
    fill(&older_store, 9);
    let err = older_store
        .verify_anchor(anchor.seq, &anchor.hash)
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("older than or diverges from the anchor"),
        "{err}"
    );
    // A store that diverged has another hash at that seq.
    fill(&older_store, 1);
    let err = older_store
        .verify_anchor(anchor.seq, &"0".repeat(64))
        .unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::AnchorMismatch {
                seq: 10,
                found: Some(_),
                ..
            }
        ),
        "{err}"
    );
    assert!(Anchor::read(&b"{\"seq\":1}\n"[..]).is_err());
}

#[test]
fn concurrent_appends_form_one_chain() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let handles: Vec<_> = (0..4)
        .map(|t| {
            let store = store.clone();
            std::thread::spawn(move || {
                (0..50)
                    .map(|i| {
                        store
                            .append(event(i, Some("prod"), &format!("console:t{t}")))
                            .unwrap()
                            .seq
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let seqs: HashSet<u64> = handles
        .into_iter()
        .flat_map(|h| h.join().unwrap())
        .collect();
    assert_eq!(seqs, (1..=200).collect());
    let report = store.verify().unwrap();
    assert_eq!((report.events, report.first_bad), (200, None));
}
