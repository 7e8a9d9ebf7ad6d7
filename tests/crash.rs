//! A `gantry` process killed with SIGKILL in the middle of a rollout loses
//! nothing it acknowledged: after a restart the request shows as
//! interrupted, its lock is still held by it, and the audit chain verifies.

#[path = "support/process.rs"]
mod process;

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::sync::mpsc;
use std::time::Duration;

use process::{gantry, run, SandboxProcess};

#[test]
fn sigkill_mid_rollout_is_recovered_as_interrupted() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_str().unwrap();
    // Slow rollouts, so the kill lands in the middle of one.
    let _sandbox = SandboxProcess::start(dir.path(), 5000);
    let mut child = gantry()
        .args([
            "run",
            "--sandbox",
            "--data",
            data,
            "--as",
            "console:alice",
            "deploy",
            "feat-x",
            "to",
            "dev",
        ])
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
    // Wait until the image is set and the rollout is being followed, then
    // kill the process outright.
    loop {
        let line = seen
            .recv_timeout(Duration::from_secs(60))
            .expect("the deploy reaches the rollout");
        if line.contains("0/3 updated") {
            break;
        }
    }
    child.kill().unwrap();
    child.wait().unwrap();

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
