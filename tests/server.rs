//! `gantry serve` on the production code path, pointed at a running `gantry
//! sandbox up`, driven over real HTTP as Slack would drive it: signed slash
//! commands, replays, bad signatures, oversize bodies, and `gantry chat`.

mod support;

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};

#[path = "support/process.rs"]
mod process;
use process::{gantry, SandboxProcess};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use gantry::server::verify::slack_signature;
use support::http::{send, Answer};

/// `gantry serve` as a user runs it against the sandbox: `gantry sandbox
/// up` in one process, `gantry serve --config DIR/sandbox/gantry.toml` in
/// another — the production code path.
struct Server {
    child: Child,
    addr: SocketAddr,
    secret: String,
    _sandbox: SandboxProcess,
    _dir: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start() -> Server {
    let dir = tempfile::tempdir().unwrap();
    let sandbox = SandboxProcess::start(dir.path(), 5);
    let secret =
        std::fs::read_to_string(dir.path().join("sandbox/secrets/slack-signing-secret")).unwrap();
    let (child, addr) = process::serve(sandbox.config(), dir.path().to_str().unwrap());
    Server {
        child,
        addr,
        secret,
        _sandbox: sandbox,
        _dir: dir,
    }
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn form(team: &str, user: &str, text: &str) -> Vec<u8> {
    form_for("/gantry", team, user, text)
}

fn form_for(command: &str, team: &str, user: &str, text: &str) -> Vec<u8> {
    serde_urlencoded::to_string([
        ("token", "unused"),
        ("team_id", team),
        ("team_domain", "sandbox"),
        ("channel_id", "C0DEPLOYS"),
        ("channel_name", "deploys"),
        ("user_id", user),
        ("user_name", "someone"),
        ("command", command),
        ("text", text),
        (
            "response_url",
            "https://hooks.slack.com/commands/T0SANDBOX/1/x",
        ),
        ("trigger_id", "1.2.3"),
    ])
    .unwrap()
    .into_bytes()
}

fn post_signed(server: &Server, body: &[u8], ts: i64) -> Answer {
    let headers = [
        (
            "Content-Type",
            "application/x-www-form-urlencoded".to_owned(),
        ),
        ("X-Slack-Request-Timestamp", ts.to_string()),
        (
            "X-Slack-Signature",
            slack_signature(&server.secret, ts, body),
        ),
    ];
    send(server.addr, "POST", "/slack/commands", &headers, body)
}

/// Waits (bounded) until /metrics shows `needle`.
fn wait_for_metric(server: &Server, needle: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let metrics = send(server.addr, "GET", "/metrics", &[], b"").body;
        if metrics.contains(needle) || Instant::now() > deadline {
            return metrics;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_signed_slash_command_is_acked_and_runs_once() {
    let server = start();
    let body = form("T0SANDBOX", "UALICE01", "deploy feat-x to dev");
    let ts = now();
    let started = Instant::now();
    let ack = post_signed(&server, &body, ts);
    let ack_time = started.elapsed();
    assert_eq!(ack.status, 200, "{}", ack.body);
    let json: serde_json::Value = serde_json::from_str(&ack.body).unwrap();
    assert_eq!(json["response_type"], "ephemeral");
    assert_eq!(json["text"], "on it: deploy feat-x to dev");
    assert!(
        ack_time < Duration::from_secs(3),
        "Slack needs an answer within 3 s"
    );

    let metrics = wait_for_metric(&server, "gantry_requests{state=\"succeeded\"} 1");
    assert!(
        metrics.contains("gantry_requests{state=\"succeeded\"} 1"),
        "{metrics}"
    );

    // The same delivery again: acknowledged as a duplicate, nothing runs twice.
    let again = post_signed(&server, &body, ts);
    assert_eq!((again.status, again.body.as_str()), (200, "duplicate"));
    let metrics = send(server.addr, "GET", "/metrics", &[], b"").body;
    assert!(
        metrics.contains("gantry_duplicates_total{route=\"/slack/commands\"} 1"),
        "{metrics}"
    );
    assert!(!metrics.contains("state=\"requested\""), "{metrics}");
    assert!(
        metrics.contains("gantry_requests{state=\"succeeded\"} 1"),
        "{metrics}"
    );
}

#[test]
fn the_deploy_slash_command_is_deploy_plus_its_text() {
    let server = start();
    let body = form_for("/deploy", "T0SANDBOX", "UALICE01", "feat-x to dev");
    let ack = post_signed(&server, &body, now());
    assert_eq!(ack.status, 200, "{}", ack.body);
    let json: serde_json::Value = serde_json::from_str(&ack.body).unwrap();
    assert_eq!(json["text"], "on it: deploy feat-x to dev");
    // Its parse errors show the deploy usage.
    let body = form_for("/deploy", "T0SANDBOX", "UALICE01", "feat-x");
    let ack = post_signed(&server, &body, now());
    let json: serde_json::Value = serde_json::from_str(&ack.body).unwrap();
    let text = json["text"].as_str().unwrap();
    assert!(text.starts_with("missing `to` after `feat-x`"), "{text}");
    assert!(text.contains("usage: deploy &lt;ref&gt;"), "{text}");
}

#[test]
fn bad_signatures_bodies_and_teams_are_refused() {
    let server = start();
    let body = form("T0SANDBOX", "UALICE01", "status");
    let ts = now();
    let good = slack_signature(&server.secret, ts, &body);
    type Case<'a> = (Vec<(&'a str, String)>, u16, &'a str);
    let cases: Vec<Case> = vec![
        (vec![], 401, "missing X-Slack-Request-Timestamp header"),
        (
            vec![("X-Slack-Request-Timestamp", ts.to_string())],
            401,
            "missing X-Slack-Signature header",
        ),
        (
            vec![
                ("X-Slack-Request-Timestamp", ts.to_string()),
                ("X-Slack-Signature", "v0=123".into()),
            ],
            401,
            "malformed X-Slack-Signature header",
        ),
        (
            vec![
                ("X-Slack-Request-Timestamp", ts.to_string()),
                ("X-Slack-Signature", slack_signature("wrong", ts, &body)),
            ],
            401,
            "signature does not match",
        ),
        (
            vec![
                ("X-Slack-Request-Timestamp", (ts - 400).to_string()),
                (
                    "X-Slack-Signature",
                    slack_signature(&server.secret, ts - 400, &body),
                ),
            ],
            401,
            "stale or future timestamp",
        ),
        (
            vec![
                ("X-Slack-Request-Timestamp", (ts + 400).to_string()),
                (
                    "X-Slack-Signature",
                    slack_signature(&server.secret, ts + 400, &body),
                ),
            ],
            401,
            "stale or future timestamp",
        ),
        (
            vec![
                ("X-Slack-Request-Timestamp", "not-a-number".into()),
                ("X-Slack-Signature", good.clone()),
            ],
            401,
            "malformed X-Slack-Request-Timestamp header",
        ),
    ];
    for (headers, status, text) in cases {
        let answer = send(server.addr, "POST", "/slack/commands", &headers, &body);
        assert_eq!(
            (answer.status, answer.body.as_str()),
            (status, text),
            "{headers:?}"
        );
    }
    let huge = vec![b'a'; 300 * 1024];
    assert_eq!(post_signed(&server, &huge, ts).status, 413);
    let not_utf8 = b"text=\xff\xfe".to_vec();
    assert_eq!(post_signed(&server, &not_utf8, ts).status, 400);
    let stranger = post_signed(&server, &form("T0STRANGE", "UALICE01", "status"), ts);
    assert_eq!(stranger.status, 403, "{}", stranger.body);

    let typo = post_signed(
        &server,
        &form("T0SANDBOX", "UALICE01", "deplyo feat-x to <!channel>"),
        ts,
    );
    assert_eq!(typo.status, 200);
    let json: serde_json::Value = serde_json::from_str(&typo.body).unwrap();
    let text = json["text"].as_str().unwrap();
    assert!(
        text.starts_with("unknown command `deplyo`; did you mean `deploy &lt;ref&gt;"),
        "{text}"
    );

    let metrics = send(server.addr, "GET", "/metrics", &[], b"").body;
    assert!(
        metrics.contains("gantry_signature_failures_total{route=\"/slack/commands\"} 7"),
        "{metrics}"
    );
}

#[test]
fn gantry_chat_talks_to_the_sandbox_and_shows_the_answers() {
    let server = start();
    // No --url: chat finds the server in the data directory serve wrote.
    let mut chat = gantry()
        .args([
            "chat",
            "--as",
            "slack:T0SANDBOX:UALICE01",
            "--watch",
            "2s",
            "--data",
        ])
        .arg(server._dir.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    chat.stdin
        .take()
        .unwrap()
        .write_all(b"deploy feat-x to dev\nstatus dev\n")
        .unwrap();
    let out = chat.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains("(only to you) on it: deploy feat-x to dev"),
        "{text}"
    );
    assert!(text.contains("✎ edit › R-1 deploy feat-x"), "{text}");
    assert!(text.contains("succeeded: web runs sha256:"), "{text}");
    assert!(text.contains("web runs"), "{text}");
}

#[test]
fn health_readiness_and_graceful_stop() {
    let mut server = start();
    assert_eq!(send(server.addr, "GET", "/healthz", &[], b"").body, "ok");
    let ready = send(server.addr, "GET", "/readyz", &[], b"");
    assert_eq!(ready.status, 200, "{}", ready.body);
    // In sandbox mode every probe goes to a sandbox server.
    for line in [
        "ok   git host",
        "ok   kubernetes sandbox",
        "ok   slack",
        "ok   discord",
    ] {
        assert!(
            ready.body.lines().any(|l| l == line),
            "`{line}` missing:\n{}",
            ready.body
        );
    }
    let pid = server.child.id().to_string();
    let status = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    assert!(status.success());
    let exit = server.child.wait().unwrap();
    assert!(exit.success(), "SIGTERM stops gantry cleanly: {exit:?}");
}
