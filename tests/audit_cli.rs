//! `gantry audit verify | export | list` as an operator runs them.

use std::path::Path;
use std::process::{Command, Output};

use gantry::store::{NewEvent, Store};
use serde_json::json;

fn gantry(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_gantry"))
        .args(args)
        .env_remove("GANTRY_DATA")
        .output()
        .expect("run gantry")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
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

/// A store of `n` events (prod, dev, none in turn), closed again.
fn store_with(dir: &Path, n: u64) {
    let store = Store::open(dir).unwrap();
    for i in 0..n {
        store
            .append(NewEvent {
                time: 1_700_000_000_000 + i as i64 * 60_000,
                actor: ["slack:U024BE7LH", "github:octocat"][(i % 2) as usize].to_owned(),
                action: "deploy.started".to_owned(),
                subject: format!("R-{i}\u{1b}[2J"),
                env: [Some("prod"), Some("dev"), None][(i % 3) as usize].map(str::to_owned),
                details: json!({"sha": "4b825dc642cb6eb9a060e54bf8d69288fbee4904"}),
            })
            .unwrap();
    }
    store.flush().unwrap();
}

#[test]
fn verify_reports_an_intact_chain_and_names_a_broken_event() {
    let dir = tempfile::tempdir().unwrap();
    store_with(dir.path(), 6);
    let data = dir.path().to_str().unwrap();
    let out = gantry(&["audit", "verify", "--data", data]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(stdout.contains("checked 6 events"), "{stdout}");
    assert!(stdout.contains("head: seq 6 hash "), "{stdout}");

    {
        let db = raw_open(dir.path());
        let audit = db.open_tree("audit").unwrap();
        let key = 4u64.to_be_bytes();
        let edited = text(&audit.get(key).unwrap().unwrap()).replace("octocat", "octocap");
        audit.insert(key, edited.as_bytes()).unwrap();
        db.flush().unwrap();
    }
    let out = gantry(&["audit", "verify", "--data", data]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("broken at seq 4: hash mismatch"),
        "{stderr}"
    );
}

#[test]
fn export_anchor_detects_an_older_copy() {
    let dir = tempfile::tempdir().unwrap();
    let (newer, older) = (dir.path().join("newer"), dir.path().join("older"));
    store_with(&newer, 5);
    store_with(&older, 3);
    let export = dir.path().join("audit.jsonl");
    let out = gantry(&[
        "audit",
        "export",
        "-d",
        newer.to_str().unwrap(),
        "--output",
        export.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let lines = std::fs::read_to_string(&export).unwrap();
    assert_eq!(lines.lines().count(), 6);
    assert!(lines
        .lines()
        .last()
        .unwrap()
        .starts_with(r#"{"chain_head":{"seq":5,"hash":""#));

    let anchor = export.to_str().unwrap();
    let out = gantry(&[
        "audit",
        "verify",
        "-d",
        newer.to_str().unwrap(),
        "--anchor",
        anchor,
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("anchor: seq 5 matches"));
    let out = gantry(&[
        "audit",
        "verify",
        "-d",
        older.to_str().unwrap(),
        "--anchor",
        anchor,
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("older than or diverges from the anchor"));

    let out = gantry(&[
        "audit",
        "export",
        "-d",
        newer.to_str().unwrap(),
        "--since",
        "5",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout).lines().count(), 2);
}

#[test]
fn list_prints_a_table_newest_first_with_escaped_text() {
    let dir = tempfile::tempdir().unwrap();
    store_with(dir.path(), 7);
    let data = dir.path().to_str().unwrap();
    let out = gantry(&["audit", "list", "-d", data, "--env", "prod", "--limit", "2"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let table = text(&out.stdout);
    let rows: Vec<&str> = table.lines().collect();
    assert_eq!(rows.len(), 3, "{table}");
    assert!(rows[0].starts_with("SEQ  TIME"), "{table}");
    assert!(
        rows[1].starts_with("7    2023-11-14T22:19:20Z  slack:U024BE7LH"),
        "{table}"
    );
    assert!(rows[1].contains(r"R-6\u{1b}[2J"), "{table}");
    assert!(rows[2].starts_with("4 "), "{table}");

    let out = gantry(&[
        "audit",
        "list",
        "-d",
        data,
        "--actor",
        "github:octocat",
        "--json",
    ]);
    let seqs: Vec<u64> = text(&out.stdout)
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["seq"]
                .as_u64()
                .unwrap()
        })
        .collect();
    assert_eq!(seqs, [6, 4, 2]);
}

#[test]
fn a_missing_data_directory_is_named_and_not_created() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no-store-here");
    for sub in ["verify", "export", "list"] {
        let out = gantry(&["audit", sub, "--data", missing.to_str().unwrap()]);
        assert_eq!(out.status.code(), Some(1), "{sub}");
        assert!(text(&out.stderr).contains("no-store-here"), "{sub}");
        assert!(!missing.exists(), "{sub}");
    }
}

#[test]
fn a_store_written_in_a_newer_layout_is_refused_by_its_path() {
    let dir = tempfile::tempdir().unwrap();
    store_with(dir.path(), 2);
    {
        let db = raw_open(dir.path());
        let meta = db.open_tree("meta").unwrap();
        meta.insert("layout", &3u64.to_be_bytes()[..]).unwrap();
        db.flush().unwrap();
    }
    let data = dir.path().to_str().unwrap();
    for sub in ["verify", "export", "list"] {
        let out = gantry(&["audit", sub, "--data", data]);
        assert_eq!(out.status.code(), Some(1), "{sub}");
        let stderr = text(&out.stderr);
        assert!(stderr.contains(data), "{sub}: {stderr}");
        assert!(stderr.contains("layout version 3"), "{sub}: {stderr}");
    }
}
