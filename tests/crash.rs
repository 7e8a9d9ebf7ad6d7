//! A `gantry` process killed with SIGKILL in the middle of a rollout loses
//! nothing it acknowledged: after a restart the request shows as
//! interrupted, its lock is still held by it, and the audit chain verifies.

#[path = "support/http.rs"]
mod http;
#[path = "support/process.rs"]
mod process;

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::sync::mpsc;
use std::time::Duration;

use process::{gantry, run, SandboxProcess};

/// Runs `gantry run --sandbox --as console:alice TEXT` and kills it with
/// SIGKILL once the image is set and the rollout is being followed.
fn kill_mid_rollout(data: &str, text: &str) {
    kill_when(data, "console:alice", text, "0/3 updated");
}

/// `gantry run --sandbox --data DATA --as WHO TEXT…`, its stdout.
fn say(data: &str, who: &str, text: &str) -> String {
    let out = run(&[
        &["run", "--sandbox", "--data", data, "--as", who][..],
        &text.split(' ').collect::<Vec<_>>()[..],
    ]
    .concat());
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn an_interrupted_deploy_lock_is_released_by_its_holder_or_an_admin() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_str().unwrap();
    let _sandbox = SandboxProcess::start(dir.path(), 5000);
    kill_mid_rollout(data, "deploy feat-x to dev");
    let status = say(data, "console:alice", "status dev");
    assert!(status.contains("R-1 was interrupted"), "{status}");
    assert!(
        status.contains("locked by alice: R-1 is deploying"),
        "{status}"
    );

    // Neither a stranger to the lock nor a plain release manager frees it.
    let bob = say(data, "console:bob", "unlock dev");
    assert!(
        bob.contains("refused: dev is locked by alice; only they or an admin can unlock it"),
        "{bob}"
    );
    // An admin does, after looking at the cluster; the reply says what to check.
    let erin = say(data, "console:erin", "unlock dev");
    assert!(
        erin.contains("dev is unlocked: released the lock R-1 kept when it was interrupted"),
        "{erin}"
    );
    assert!(erin.contains("`status dev`"), "{erin}");
    let free = say(data, "console:alice", "deploy main to dev --dry-run");
    assert!(free.contains("dry run: every check passed"), "{free}");

    // The holder frees their own interrupted deploy too.
    kill_mid_rollout(data, "deploy feat-x to dev");
    let again = say(data, "console:alice", "deploy main to dev --dry-run");
    assert!(again.contains("dev is locked by alice"), "{again}");
    let alice = say(data, "console:alice", "unlock dev");
    assert!(alice.contains("released the lock R-3 kept"), "{alice}");
    let nothing = say(data, "console:alice", "unlock dev");
    assert!(nothing.contains("dev is not locked"), "{nothing}");

    let list = run(&["audit", "list", "--data", data, "--json", "--limit", "1000"]);
    let events = String::from_utf8_lossy(&list.stdout);
    // Newest first: R-3's release, then R-1's.
    let released: Vec<&str> = events
        .lines()
        .filter(|l| l.contains("\"lock.released\"") && l.contains("\"left_by\":\"R-"))
        .collect();
    assert_eq!(released.len(), 2, "{events}");
    for (line, request, actor) in [(released[0], "R-3", "alice"), (released[1], "R-1", "erin")] {
        assert!(
            line.contains(&format!("\"left_by\":\"{request}\"")),
            "{line}"
        );
        assert!(line.contains(&format!("\"actor\":\"{actor}\"")), "{line}");
    }
    assert!(run(&["audit", "verify", "--data", data]).status.success());
}

#[test]
fn sigkill_mid_rollout_is_recovered_as_interrupted() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_str().unwrap();
    // Slow rollouts, so the kill lands in the middle of one.
    let _sandbox = SandboxProcess::start(dir.path(), 5000);
    kill_mid_rollout(data, "deploy feat-x to dev");

    let after = run(&[
        "run",
        "--sandbox",
        "--data",
        data,
        "--as",
        "console:alice",
        "status",
        "dev",
    ]);
    let text = String::from_utf8_lossy(&after.stdout);
    assert!(
        text.contains("(recovered: R-1 was interrupted by a restart)"),
        "{text}"
    );
    assert!(
        text.contains("locked by alice: R-1 is deploying"),
        "the lock stays with the interrupted request: {text}"
    );

    let again = run(&[
        "run",
        "--sandbox",
        "--data",
        data,
        "--as",
        "console:alice",
        "deploy",
        "main",
        "to",
        "dev",
    ]);
    assert_eq!(again.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&again.stdout).contains("dev is locked by alice"));

    let verify = run(&["audit", "verify", "--data", data]);
    assert!(
        verify.status.success(),
        "{}",
        String::from_utf8_lossy(&verify.stdout)
    );
    let list = run(&["audit", "list", "--data", data, "--json"]);
    let events = String::from_utf8_lossy(&list.stdout);
    for action in [
        "request.deploy_started",
        "cluster.image_set",
        "request.interrupted",
    ] {
        assert!(events.contains(action), "{action} missing:\n{events}");
    }
}

#[test]
fn tampering_with_one_stored_event_is_found_by_audit_verify() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_str().unwrap();
    let _sandbox = SandboxProcess::start(dir.path(), 1);
    let out = run(&[
        "run",
        "--sandbox",
        "--data",
        data,
        "--as",
        "console:alice",
        "deploy",
        "main",
        "to",
        "dev",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    // Change one byte of event 3 as stored on disk.
    {
        let db = sled::open(dir.path()).unwrap();
        let audit = db.open_tree("audit").unwrap();
        let key = 3u64.to_be_bytes();
        let mut value = audit.get(key).unwrap().unwrap().to_vec();
        let at = value.windows(5).position(|w| w == b"alice").unwrap();
        value[at + 4] = b'f';
        audit.insert(key, value).unwrap();
        db.flush().unwrap();
    }
    let verify = run(&["audit", "verify", "--data", data]);
    assert_eq!(verify.status.code(), Some(1));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&verify.stdout),
        String::from_utf8_lossy(&verify.stderr)
    );
    assert!(text.contains("seq 3"), "{text}");
}

/// Runs `gantry run --sandbox --as WHO TEXT` and kills it with SIGKILL as
/// soon as a line of its output contains `marker`.
fn kill_when(data: &str, who: &str, text: &str, marker: &str) {
    let mut child = gantry()
        .args(["run", "--sandbox", "--data", data, "--as", who])
        .args(text.split(' '))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (lines, seen) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if lines.send(line).is_err() {
                break;
            }
        }
    });
    loop {
        let line = seen
            .recv_timeout(Duration::from_secs(60))
            .unwrap_or_else(|_| panic!("`{text}` never printed `{marker}`"));
        if line.contains(marker) {
            break;
        }
    }
    child.kill().unwrap();
    child.wait().unwrap();
}

#[test]
fn sigkill_while_verifying_is_resumed_by_gantry_serve_with_the_time_left() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_str().unwrap();
    let sandbox = SandboxProcess::start(dir.path(), 10);
    let dev = say(data, "console:alice", "deploy feat-x to dev");
    assert!(dev.contains("succeeded"), "{dev}");
    let asked = say(data, "console:alice", "promote from dev to staging");
    assert!(
        asked.contains("R-2") && asked.contains("awaiting approval"),
        "{asked}"
    );
    // carol's approval starts the release; Gantry dies once its checks have
    // passed a round, in the middle of staging's soak.
    kill_when(data, "console:carol", "approve R-2", "checks ok, ");
    let status = say(data, "console:alice", "status staging");
    assert!(
        status.contains("(recovered: R-2 is still verifying; `gantry serve` resumes its checks)"),
        "{status}"
    );
    assert!(status.contains("open: R-2"), "{status}");

    // `gantry serve` resumes the soak and ends it verified.
    let (mut server, addr) = process::serve(sandbox.config(), data);
    let mut verified = false;
    for _ in 0..1200 {
        let metrics = http::send(addr, "GET", "/metrics", &[], b"");
        if metrics.status == 200
            && metrics
                .body
                .contains("gantry_requests{state=\"succeeded\"} 2")
        {
            verified = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = server.kill();
    let _ = server.wait();
    assert!(verified, "R-2 did not end succeeded after the restart");

    let status = say(data, "console:alice", "status staging");
    assert!(status.contains("since R-2, by alice, verified"), "{status}");
    let list = run(&["audit", "list", "--data", data, "--json"]);
    let events: Vec<serde_json::Value> = String::from_utf8_lossy(&list.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .filter(|e: &serde_json::Value| e["subject"] == "R-2")
        .collect();
    let covered: Vec<u64> = events
        .iter()
        .rev()
        .filter(|e| e["action"] == "request.probed")
        .filter_map(|e| e["details"]["event"]["covered_ms"].as_u64())
        .collect();
    // Rounds before the kill and after the restart, covering the soak
    // once: never from zero again, never skipped.
    assert!(covered.len() >= 3, "{covered:?}");
    assert!(covered.windows(2).all(|w| w[0] <= w[1]), "{covered:?}");
    assert!(*covered.last().unwrap() >= 8000, "{covered:?}");
    assert!(
        events.iter().any(|e| e["action"] == "request.verified"),
        "{events:#?}"
    );
    let verify = run(&["audit", "verify", "--data", data]);
    assert!(verify.status.success());
}
