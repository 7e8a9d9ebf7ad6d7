//! `gantry serve --sandbox` driven over real HTTP as Discord would drive it:
//! the sandbox generates the application's key pair, and an interaction
//! signed with the generated signing key is accepted.

mod support;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use gantry::sandbox::discord::{command_payload, signing_key, Origin, SIGNING_KEY_VAR};
use gantry::server::verify::discord_signature;
use support::http::send;

struct Server {
    child: Child,
    addr: SocketAddr,
    stderr: Vec<String>,
    dir: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start() -> Server {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_gantry"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env_remove("GANTRY_CONFIG")
        .env_remove("DISCORD_PUBLIC_KEY")
        .env_remove(SIGNING_KEY_VAR)
        .args([
            "serve",
            "--sandbox",
            "--listen",
            "127.0.0.1:0",
            "--tick-ms",
            "5",
            "--data",
        ])
        .arg(dir.path())
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let mut stderr = Vec::new();
    let addr = loop {
        let line = lines.next().expect("gantry prints its address").unwrap();
        if let Some(url) = line.strip_prefix("gantry listening on http://") {
            break url.parse().unwrap();
        }
        stderr.push(line);
    };
    std::thread::spawn(move || for _ in lines {});
    Server {
        child,
        addr,
        stderr,
        dir,
    }
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

#[test]
fn the_sandbox_key_pair_signs_interactions_the_server_accepts() {
    let server = start();
    assert!(
        server
            .stderr
            .iter()
            .any(|l| l.starts_with("sandbox: Discord REST API at")),
        "{:?}",
        server.stderr
    );
    let secrets = std::fs::read_to_string(server.dir.path().join("sandbox/secrets.env")).unwrap();
    let seed = secrets
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{SIGNING_KEY_VAR}=")))
        .expect("the signing key is written beside the public key");
    let public = secrets
        .lines()
        .find_map(|l| l.strip_prefix("DISCORD_PUBLIC_KEY="))
        .expect("the public key is written");
    let key = signing_key(seed).unwrap();
    assert_eq!(hex::encode(key.verifying_key().to_bytes()), public);

    let from = Origin {
        guild: 200_000_000_000_000_000,
        channel: 300_000_000_000_000_001,
        user: 100_000_000_000_000_004,
    };
    let body = command_payload(
        100_000_000_000_000_000,
        1,
        "tok",
        from,
        "deploy feat-x to dev",
    )
    .to_string()
    .into_bytes();
    let post = |body: &[u8], signature: String, ts: i64| {
        let headers = [
            ("Content-Type", "application/json".to_owned()),
            ("X-Signature-Ed25519", signature),
            ("X-Signature-Timestamp", ts.to_string()),
        ];
        send(server.addr, "POST", "/discord/interactions", &headers, body)
    };
    let ts = now();
    let ping =
        br#"{"id":"2","application_id":"100000000000000000","type":1,"token":"t","version":1}"#;
    let pong = post(ping, discord_signature(&key, ts, ping), ts);
    assert_eq!((pong.status, pong.body.as_str()), (200, r#"{"type":1}"#));
    let forged = post(&body, "00".repeat(64), ts);
    assert_eq!(forged.status, 401);

    let started = Instant::now();
    let ack = post(&body, discord_signature(&key, ts, &body), ts);
    assert!(started.elapsed() < Duration::from_secs(3));
    assert_eq!((ack.status, ack.body.as_str()), (200, r#"{"type":5}"#));
    let deadline = Instant::now() + Duration::from_secs(20);
    let needle = "gantry_requests{state=\"succeeded\"} 1";
    let metrics = loop {
        let metrics = send(server.addr, "GET", "/metrics", &[], b"").body;
        if metrics.contains(needle) || Instant::now() > deadline {
            break metrics;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(metrics.contains(needle), "{metrics}");
}
