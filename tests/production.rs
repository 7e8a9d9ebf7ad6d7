//! Production mode, as a user runs it: `gantry sandbox up` in one process
//! writes a config that points at its servers, and every other command runs
//! the `gantry` binary with `--config` on that file — no `--sandbox`
//! anywhere on the path under test. Any panic on the binary's stderr fails
//! the test.

#[path = "support/http.rs"]
mod http;
#[path = "support/process.rs"]
mod process;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Output};

use base64::Engine as _;
use gantry::server::verify::slack_signature;
use http::send;
use process::{run, SandboxProcess};

/// Two GitOps environments beside the shipped ones: plain git (commit
/// mode) and GitHub in pull-request mode.
const EXTRA_ENVIRONMENTS: &str = r#"
[environments.perf-git]
cluster = "sandbox"
namespace = "perf-git"
requesters = ["developer", "sre"]
require_green_ci = false
strategy = "gitops"
auto_rollback = false
rollout_timeout = "2m"

[environments.perf-git.gitops]
transport = "git"
url = "https://git.example.com/deploy-config.git"
branch = "main"
path = "perf-git/kustomization.yaml"
format = "kustomize"

[environments.perf-pr]
cluster = "sandbox"
namespace = "perf-pr"
requesters = ["developer", "sre"]
require_green_ci = false
strategy = "gitops"
auto_rollback = false
rollout_timeout = "2m"

[environments.perf-pr.gitops]
transport = "github"
repo = "acme/deploy-config"
branch = "main"
path = "perf-pr/kustomization.yaml"
format = "kustomize"
mode = "pull-request"
"#;

/// The shipped config plus [`EXTRA_ENVIRONMENTS`], written into `dir`.
fn base_config(dir: &Path) -> PathBuf {
    let shipped =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("config/gantry.toml"))
            .unwrap();
    let path = dir.join("base.toml");
    std::fs::write(&path, format!("{shipped}\n{EXTRA_ENVIRONMENTS}")).unwrap();
    path
}

struct Sandbox {
    process: SandboxProcess,
    dir: tempfile::TempDir,
}

impl Sandbox {
    fn start(tick_ms: u64) -> Sandbox {
        let dir = tempfile::tempdir().unwrap();
        let base = base_config(dir.path());
        let process =
            SandboxProcess::start_for(base.to_str().unwrap(), &dir.path().join("data"), tick_ms);
        Sandbox { process, dir }
    }

    fn config(&self) -> &str {
        self.process.config()
    }

    fn data(&self) -> String {
        self.dir.path().join("data").display().to_string()
    }

    fn secret(&self, name: &str) -> String {
        std::fs::read_to_string(self.dir.path().join("data/sandbox/secrets").join(name)).unwrap()
    }

    fn endpoint(&self, name: &str) -> String {
        let text =
            std::fs::read_to_string(self.dir.path().join("data/sandbox/endpoints.json")).unwrap();
        let value: serde_json::Value = serde_json::from_str(&text).unwrap();
        value[name].as_str().unwrap().to_owned()
    }

    /// `gantry run --config CONFIG --data DATA --as WHO TEXT…`.
    fn say(&self, who: &str, text: &str) -> Output {
        let data = self.data();
        let mut args = vec![
            "run",
            "--config",
            self.config(),
            "--data",
            &data,
            "--as",
            who,
        ];
        args.extend(text.split(' '));
        run(&args)
    }

    /// A GET to the sandbox GitHub with the token Gantry was given.
    fn github_get(&self, path: &str) -> serde_json::Value {
        let addr: SocketAddr = self.endpoint("github")["http://".len()..].parse().unwrap();
        let headers = [
            (
                "Authorization",
                format!("Bearer {}", self.secret("github-token")),
            ),
            ("User-Agent", "gantry-test".to_owned()),
        ];
        let answer = send(addr, "GET", path, &headers, b"");
        assert_eq!(answer.status, 200, "{path}: {}", answer.body);
        serde_json::from_str(&answer.body).unwrap()
    }

    /// A file of the config repository on GitHub, decoded.
    fn config_file(&self, path: &str) -> String {
        let file = self.github_get(&format!(
            "/repos/acme/deploy-config/contents/{path}?ref=main"
        ));
        let encoded: String = file["content"]
            .as_str()
            .unwrap()
            .split_whitespace()
            .collect();
        String::from_utf8(
            base64::engine::general_purpose::STANDARD
                .decode(encoded)
                .unwrap(),
        )
        .unwrap()
    }
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The digest a request pinned, from its final progress line.
fn digest_of(out: &Output) -> String {
    let shown = text(out);
    let at = shown.find("sha256:").expect("a digest in the output");
    shown[at..at + 7 + 12].to_owned()
}

#[test]
fn check_config_passes_on_the_config_the_sandbox_wrote() {
    let sandbox = Sandbox::start(5);
    let out = run(&["check-config", "--config", sandbox.config()]);
    assert!(out.status.success(), "{}", text(&out));
}

#[test]
fn gitops_deploys_commit_the_digest_over_the_contents_api_plain_git_and_pull_requests() {
    let sandbox = Sandbox::start(5);
    // GitHub contents API, commit mode (the shipped perf environment).
    let perf = sandbox.say("console:alice", "deploy main to perf");
    assert!(perf.status.success(), "{}", text(&perf));
    assert!(
        text(&perf).contains("succeeded: web runs sha256:"),
        "{}",
        text(&perf)
    );
    let short = digest_of(&perf);
    let file = sandbox.config_file("perf/kustomization.yaml");
    assert!(
        file.contains(&format!("digest: {short}")),
        "{short}\n{file}"
    );
    let head = sandbox.github_get("/repos/acme/deploy-config/commits/main");
    let message = head["commit"]["message"].as_str().unwrap();
    assert!(message.starts_with("R-1: deploy web in perf"), "{message}");

    // Plain git to a real bare repository, commit mode.
    let git = sandbox.say("console:alice", "deploy main to perf-git");
    assert!(git.status.success(), "{}", text(&git));
    let url = std::fs::read_to_string(sandbox.config()).unwrap();
    let bare = url
        .lines()
        .find_map(|l| l.trim().strip_prefix("url = \"file://"))
        .and_then(|l| l.strip_suffix('"'))
        .expect("the sandbox pointed perf-git at its repository")
        .to_owned();
    let log = std::process::Command::new("git")
        .args(["--git-dir", &bare, "log", "-1", "--format=%B", "main"])
        .output()
        .unwrap();
    let log = String::from_utf8_lossy(&log.stdout);
    assert!(log.starts_with("R-2: deploy web in perf-git"), "{log}");
    let show = std::process::Command::new("git")
        .args([
            "--git-dir",
            &bare,
            "show",
            "main:perf-git/kustomization.yaml",
        ])
        .output()
        .unwrap();
    let pinned = String::from_utf8_lossy(&show.stdout);
    assert!(
        pinned.contains(&format!("digest: {}", digest_of(&git))),
        "{pinned}"
    );

    // GitHub, pull-request mode: a pull request, merged.
    let pr = sandbox.say("console:alice", "deploy feat-x to perf-pr");
    assert!(pr.status.success(), "{}", text(&pr));
    let pulls = sandbox.github_get("/repos/acme/deploy-config/pulls?state=closed");
    let merged = pulls
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["title"].as_str().is_some_and(|t| t.starts_with("R-3:")))
        .expect("R-3's pull request");
    assert!(merged["merged_at"].is_string(), "{merged}");
    let file = sandbox.config_file("perf-pr/kustomization.yaml");
    assert!(
        file.contains(&format!("digest: {}", digest_of(&pr))),
        "{file}"
    );
}

#[test]
fn rolling_deploys_rollback_build_and_a_preview_with_its_teardown() {
    let sandbox = Sandbox::start(5);
    let first = sandbox.say("console:alice", "deploy main to dev");
    assert!(first.status.success(), "{}", text(&first));
    let second = sandbox.say("console:alice", "deploy feat-x to dev");
    assert!(second.status.success(), "{}", text(&second));
    let back = sandbox.say("console:alice", "rollback in dev");
    assert!(back.status.success(), "{}", text(&back));
    assert!(
        text(&back).contains(&digest_of(&first)),
        "back to main's digest:\n{}",
        text(&back)
    );
    let build = sandbox.say("console:alice", "build feat-unbuilt");
    assert!(build.status.success(), "{}", text(&build));
    assert!(text(&build).contains("build succeeded"), "{}", text(&build));

    let preview = sandbox.say("console:alice", "deploy feat-x to preview");
    assert!(preview.status.success(), "{}", text(&preview));
    let status = sandbox.say("console:alice", "status preview");
    assert!(
        text(&status).contains("preview-feat-x"),
        "{}",
        text(&status)
    );
    let gone = sandbox.say("console:alice", "teardown feat-x");
    assert!(gone.status.success(), "{}", text(&gone));
    assert!(text(&gone).contains("preview removed"), "{}", text(&gone));

    // The registry as the bot sees it, and the audit trail of all this.
    let main = sandbox.github_get("/repos/acme/web/git/ref/heads/main");
    let sha = main["object"]["sha"].as_str().unwrap();
    let image = format!("registry.local:5000/acme/web:{sha}");
    let digest = run(&["image", "digest", "--config", sandbox.config(), &image]);
    assert!(digest.status.success(), "{}", text(&digest));
    assert!(
        text(&digest).starts_with(&digest_of(&first)),
        "{}",
        text(&digest)
    );
    let data = sandbox.data();
    let verify = run(&["audit", "verify", "--data", &data]);
    assert!(verify.status.success(), "{}", text(&verify));
    let export = run(&["audit", "export", "--data", &data]);
    assert!(export.status.success(), "{}", text(&export));
    let exported = String::from_utf8_lossy(&export.stdout);
    for action in [
        "request.succeeded",
        "cluster.image_set",
        "request.build_started",
    ] {
        assert!(exported.contains(action), "{action} missing");
    }
}

/// `gantry serve --config CONFIG` on a free port; its address.
fn serve(sandbox: &Sandbox) -> (Child, SocketAddr) {
    serve_with(sandbox.config(), &sandbox.data())
}

fn serve_with(config: &str, data: &str) -> (Child, SocketAddr) {
    process::serve(config, data)
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

#[test]
fn serve_answers_every_inbound_route_signed_with_the_sandbox_secrets() {
    let sandbox = Sandbox::start(5);
    let (mut child, addr) = serve(&sandbox);
    assert_eq!(send(addr, "GET", "/healthz", &[], b"").body, "ok");
    let ready = send(addr, "GET", "/readyz", &[], b"");
    assert_eq!(ready.status, 200, "{}", ready.body);

    // Slack: a slash command, the Events API handshake, a button.
    let slack = sandbox.secret("slack-signing-secret");
    let signed = |path: &str, content_type: &str, body: &[u8]| {
        let ts = now();
        let headers = [
            ("Content-Type", content_type.to_owned()),
            ("X-Slack-Request-Timestamp", ts.to_string()),
            ("X-Slack-Signature", slack_signature(&slack, ts, body)),
        ];
        send(addr, "POST", path, &headers, body)
    };
    let command = serde_urlencoded::to_string([
        ("team_id", "T0SANDBOX"),
        ("user_id", "UALICE01"),
        ("channel_id", "C0DEPLOYS"),
        ("command", "/gantry"),
        ("text", "whoami"),
        (
            "response_url",
            "https://hooks.slack.com/commands/T0SANDBOX/1/x",
        ),
    ])
    .unwrap();
    let ack = signed(
        "/slack/commands",
        "application/x-www-form-urlencoded",
        command.as_bytes(),
    );
    assert_eq!(ack.status, 200, "{}", ack.body);
    let challenge = br#"{"type":"url_verification","token":"x","challenge":"c-123"}"#;
    let events = signed("/slack/events", "application/json", challenge);
    assert_eq!(events.status, 200, "{}", events.body);
    assert!(events.body.contains("c-123"), "{}", events.body);
    let unsigned = send(addr, "POST", "/slack/events", &[], challenge);
    assert_eq!(unsigned.status, 401, "{}", unsigned.body);
    let payload = serde_json::json!({
        "type": "block_actions",
        "team": { "id": "T0SANDBOX" },
        "user": { "id": "UALICE01" },
        "channel": { "id": "C0DEPLOYS" },
        "message": { "ts": "1.000001" },
        "actions": [{ "action_id": "gantry_approve", "value": "R-404" }],
    });
    let form = serde_urlencoded::to_string([("payload", payload.to_string())]).unwrap();
    let button = signed(
        "/slack/interactions",
        "application/x-www-form-urlencoded",
        form.as_bytes(),
    );
    assert_eq!(button.status, 200, "{}", button.body);

    // Discord: the PING every interactions endpoint must answer.
    let key =
        gantry::sandbox::discord::signing_key(&sandbox.secret("discord-signing-key")).unwrap();
    let ping =
        br#"{"type":1,"id":"1","application_id":"100000000000000000","token":"t","version":1}"#;
    let ts = now();
    let signature = gantry::server::verify::discord_signature(&key, ts, ping);
    let pong = send(
        addr,
        "POST",
        "/discord/interactions",
        &[
            ("Content-Type", "application/json".to_owned()),
            ("X-Signature-Ed25519", signature),
            ("X-Signature-Timestamp", ts.to_string()),
        ],
        ping,
    );
    assert_eq!(pong.status, 200, "{}", pong.body);
    assert!(pong.body.contains("\"type\":1"), "{}", pong.body);

    // GitHub: the ping sent when a webhook is created.
    let hook = br#"{"zen":"Keep it logically awesome.","hook_id":1}"#;
    let secret = sandbox.secret("github-webhook-secret");
    let answer = send(
        addr,
        "POST",
        "/github/webhook",
        &[
            ("Content-Type", "application/json".to_owned()),
            ("X-GitHub-Event", "ping".to_owned()),
            ("X-GitHub-Delivery", "prod-1".to_owned()),
            (
                "X-Hub-Signature-256",
                gantry::sandbox::github::webhook::signature(&secret, hook),
            ),
        ],
        hook,
    );
    assert_eq!(answer.status, 200, "{}", answer.body);
    let metrics = send(addr, "GET", "/metrics", &[], b"").body;
    assert!(metrics.contains("gantry_"), "{metrics}");
    let _ = child.kill();
    let _ = child.wait();
}

#[test]
fn a_config_whose_servers_are_gone_is_valid_but_not_ready_and_deploys_fail_naming_the_upstream() {
    let sandbox = Sandbox::start(5);
    let config = sandbox.config().to_owned();
    let data = sandbox.data();
    // Stop the sandbox: every URL in the config now points at nothing.
    let Sandbox { process, dir: _dir } = sandbox;
    drop(process);
    let check = run(&["check-config", "--config", &config]);
    assert!(check.status.success(), "syntax is fine: {}", text(&check));
    let deploy = run(&[
        "run",
        "--config",
        &config,
        "--data",
        &data,
        "--as",
        "console:alice",
        "deploy",
        "main",
        "to",
        "dev",
    ]);
    assert_eq!(deploy.status.code(), Some(1), "{}", text(&deploy));
    let shown = text(&deploy);
    assert!(shown.contains("unavailable"), "{shown}");
    assert!(
        shown.contains("GitHub") || shown.contains("github"),
        "{shown}"
    );
    assert!(!shown.contains("cluster.image_set"), "{shown}");
    let list = run(&["audit", "list", "--data", &data, "--json"]);
    let events = String::from_utf8_lossy(&list.stdout);
    assert!(
        !events.contains("cluster.image_set"),
        "no cluster write: {events}"
    );

    // serve starts (the config is valid) and /readyz names every upstream.
    let (mut child, addr) = serve_with(&config, &data);
    let ready = send(addr, "GET", "/readyz", &[], b"");
    assert_eq!(ready.status, 503, "{}", ready.body);
    for upstream in [
        "FAIL git host",
        "FAIL registry registry.local:5000",
        "FAIL kubernetes sandbox",
        "FAIL slack",
        "FAIL discord",
    ] {
        assert!(
            ready.body.lines().any(|l| l.starts_with(upstream)),
            "`{upstream}` missing:\n{}",
            ready.body
        );
    }
    let _ = child.kill();
    let _ = child.wait();
}

#[test]
fn a_wrong_token_is_unauthorised_naming_the_service_never_the_token() {
    let sandbox = Sandbox::start(5);
    let secrets = sandbox.dir.path().join("data/sandbox/secrets");
    let wrong_github = "ghp_not-the-right-token-0123456789";
    let wrong_slack = "xoxb-not-the-right-token-9876543210";
    std::fs::write(secrets.join("github-token"), wrong_github).unwrap();
    std::fs::write(secrets.join("slack-bot-token"), wrong_slack).unwrap();
    let deploy = sandbox.say("console:alice", "deploy main to dev");
    assert_eq!(deploy.status.code(), Some(1), "{}", text(&deploy));
    let shown = text(&deploy);
    assert!(shown.contains("unauthorised"), "{shown}");
    assert!(shown.contains("GitHub"), "{shown}");
    assert!(!shown.contains(wrong_github), "{shown}");
    let (mut child, addr) = serve(&sandbox);
    let ready = send(addr, "GET", "/readyz", &[], b"");
    assert_eq!(ready.status, 503, "{}", ready.body);
    for service in ["FAIL git host: unauthorised", "FAIL slack: unauthorised"] {
        assert!(
            ready.body.lines().any(|l| l.starts_with(service)),
            "`{service}` missing:\n{}",
            ready.body
        );
    }
    assert!(!ready.body.contains(wrong_github) && !ready.body.contains(wrong_slack));
    let _ = child.kill();
    let _ = child.wait();
}

#[test]
fn serve_logs_json_lines_with_structured_fields() {
    use std::io::{BufRead, BufReader};
    let sandbox = Sandbox::start(5);
    let mut child = process::gantry()
        .env("GANTRY_LOG_FORMAT", "json")
        .args([
            "serve",
            "--config",
            sandbox.config(),
            "--listen",
            "127.0.0.1:0",
            "--data",
        ])
        .arg(sandbox.data())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut logged = Vec::new();
    for line in BufReader::new(child.stderr.take().unwrap()).lines() {
        let line = line.unwrap();
        assert!(!line.contains("panicked"), "{line}");
        if line.starts_with("gantry listening on http://") {
            break;
        }
        logged.push(line);
    }
    let _ = child.kill();
    let _ = child.wait();
    let recovered = logged
        .iter()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|v| v["fields"]["message"] == "recovered")
        .unwrap_or_else(|| panic!("no JSON `recovered` line in {logged:#?}"));
    assert_eq!(recovered["level"], "INFO", "{recovered}");
    assert_eq!(recovered["fields"]["interrupted"], 0, "{recovered}");
    assert!(recovered["timestamp"].is_string(), "{recovered}");
}
