//! `gantry demo`: the delivery story, played through the real server.
//!
//! It starts the sandbox servers (Kubernetes API, OCI registry, GitHub,
//! Slack and Discord APIs) and the real HTTP server, then sends signed Slack,
//! Discord and GitHub requests as the people in `config/gantry.toml` would,
//! prints the chat transcript with every edit of every progress message, and
//! checks each step against the story. It exits 0 only when every step did
//! what the story says.

use std::path::Path;
use std::process::ExitCode;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;

use super::{fail, grammar, ConfigArg};
use crate::config::Secret;
use crate::engine::{Engine, Request, State};
use crate::sandbox::discord::{FakeDiscord, Origin};
use crate::sandbox::slack::FakeSlack;
use crate::sandbox::stack::{SandboxOptions, SandboxServers};
use crate::server::assemble::assemble;
use crate::server::router;
use crate::server::verify::slack_signature;
use crate::store::Store;

mod verify;

/// File that marks a directory as the demo's own, safe to start afresh.
const MARKER: &str = ".gantry-demo";
/// Sandbox time the story starts at: Tuesday 2026-11-24 12:00 UTC, outside
/// every freeze window of the shipped config, so the story never depends on
/// the weekday it is run on.
const STORY_START: i64 = 1_795_521_600;
const TEAM: &str = "T0SANDBOX";
const DISCORD_GUILD: u64 = 200_000_000_000_000_000;
const REPO: &str = "acme/web";
const CHANNEL: &str = "C0DEPLOYS";

/// Arguments of `gantry demo`.
#[derive(Debug, clap::Args)]
pub struct DemoArgs {
    #[command(flatten)]
    config: ConfigArg,
    /// Where the demo's store is left for `gantry audit list/export`; a
    /// previous demo's directory is replaced, any other non-empty one refused.
    #[arg(long, default_value = "gantry-demo", value_name = "DIR")]
    data: std::path::PathBuf,
    /// Quick simulated rollouts (the whole story in a few seconds).
    #[arg(long)]
    fast: bool,
}

/// Plays the story and checks it.
pub fn run(args: &DemoArgs) -> ExitCode {
    crate::logging::init(crate::logging::LogFormat::Text);
    if let Err(e) = prepare(&args.data) {
        return fail(e);
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => return fail(format!("cannot start the runtime: {e}")),
    };
    match runtime.block_on(play(args)) {
        Ok(()) => {
            println!(
                "\ndemo: every step did what the story says. The store is in {}:",
                args.data.display()
            );
            println!(
                "  gantry audit list --data {}    gantry audit export --data {}",
                args.data.display(),
                args.data.display()
            );
            ExitCode::SUCCESS
        }
        Err(e) => fail(format!("demo failed: {e}")),
    }
}

fn prepare(dir: &Path) -> Result<(), String> {
    if dir.exists() {
        let empty = std::fs::read_dir(dir)
            .map(|mut d| d.next().is_none())
            .unwrap_or(false);
        if !empty && !dir.join(MARKER).exists() {
            return Err(format!(
                "{} exists and is not a previous demo's directory; give another --data",
                dir.display()
            ));
        }
        std::fs::remove_dir_all(dir).map_err(|e| format!("cannot clear {}: {e}", dir.display()))?;
    }
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    std::fs::write(dir.join(MARKER), "written by gantry demo\n").map_err(|e| e.to_string())
}

/// The people of the shipped config, by their Slack user ids.
/// The GitHub account id the sandbox gives a person.
fn github_id(person: &str) -> u64 {
    1_000 + person.bytes().map(u64::from).sum::<u64>()
}

fn slack_user(person: &str) -> &'static str {
    match person {
        "alice" => "UALICE01",
        "bob" => "UBOB0002",
        "carol" => "UCAROL03",
        "dave" => "UDAVE004",
        _ => "UERIN005",
    }
}

struct Story {
    engine: Engine,
    slack: FakeSlack,
    stack: SandboxServers,
    http: reqwest::Client,
    base: String,
    clock: Arc<AtomicI64>,
    signing: Secret,
    github_secret: Secret,
    events: u32,
    discord: FakeDiscord,
}

async fn play(args: &DemoArgs) -> Result<(), String> {
    let grammar = grammar().map_err(|_| "the built-in grammar is broken".to_owned())?;
    let tick = Duration::from_millis(if args.fast { 15 } else { 400 });
    let stack = crate::sandbox::stack::start(
        &args.config.config,
        &args.data.join(crate::sandbox::generated::SANDBOX_DIR),
        SandboxOptions::with_tick(tick).verified(),
    )
    .await?;
    if stack.prometheus.is_none() {
        println!("{}", crate::sandbox::stack::PROMETHEUS_MISSING);
    }
    let store = Store::open(&args.data).map_err(|e| e.to_string())?;
    let slack = stack
        .slack
        .clone()
        .ok_or("the config does not enable Slack; the demo needs it")?;
    let discord = stack
        .discord
        .clone()
        .ok_or("the config does not enable Discord; the demo needs it")?;
    let started = Instant::now();
    let clock = Arc::new(AtomicI64::new(STORY_START));
    let now = {
        let time = clock.clone();
        Arc::new(move || time.load(Ordering::SeqCst) + started.elapsed().as_secs() as i64)
    };
    // The same assembly as `gantry serve`, on the config the sandbox wrote;
    // only the clock is the story's.
    let gantry = assemble(stack.config.clone(), Arc::new(grammar), store, now.clone()).await?;
    let engine = gantry.engine.clone();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| e.to_string())?;
    let base = format!(
        "http://{}",
        listener.local_addr().map_err(|e| e.to_string())?
    );
    let state = gantry.state.clone();
    tokio::spawn(async move { axum::serve(listener, router(state)).await });
    discord.set_interactions_url(&format!("{base}/discord/interactions"));
    discord.set_clock(now);
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .map_err(|e| e.to_string())?;
    let signing = stack.secrets.slack_signing_secret.clone();
    let github_secret = stack.secrets.github_webhook_secret.clone();
    let mut story = Story {
        engine,
        slack,
        stack,
        http,
        base,
        clock,
        signing,
        github_secret,
        events: 0,
        discord,
    };
    println!(
        "Gantry demo: the real server on {} with sandbox Kubernetes, registry, GitHub, Slack, Discord and apps{}.",
        story.base,
        if story.stack.prometheus.is_some() {
            ", and a Prometheus scraping the apps"
        } else {
            ""
        }
    );
    println!("Sandbox time starts at Tuesday 2026-11-24 12:00 UTC.\n");
    story.play().await
}

impl Story {
    async fn play(&mut self) -> Result<(), String> {
        chapter("1. alice deploys a feature branch to dev");
        let r = self
            .command("alice", "deploy feat-x to dev", State::Succeeded)
            .await?;
        expect(
            r.sha.is_some() && r.digest.is_some(),
            "the request pinned a SHA and a digest",
        )?;
        self.shows(&r, &["deploying", "3/3 updated", "succeeded"])?;

        chapter("2. alice comments `/deploy preview` on pull request #1; closing it tears the preview down");
        let r = self.pr_comment("alice", 1, "/deploy preview").await?;
        let namespace = r.namespace.clone().unwrap_or_default();
        expect(
            self.stack.kube.namespace(&namespace).is_some(),
            &format!("the preview namespace {namespace} exists"),
        )?;
        self.pr_closed("alice", 1).await?;
        let mut gone = false;
        for _ in 0..500 {
            gone = self.stack.kube.namespace(&namespace).is_none();
            if gone {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        expect(
            gone,
            "closing the pull request removed the preview namespace",
        )?;

        chapter("3. alice promotes dev to staging; carol (qa) approves with a reaction; the release is verified");
        let r = self
            .command(
                "alice",
                "promote from dev to staging",
                State::AwaitingApproval,
            )
            .await?;
        self.react("carol", &r).await?;
        let staged = self.wait(r.id, State::Succeeded).await?;
        self.shows(
            &staged,
            &[
                "awaiting approval: qa 0/1",
                "approved: qa 1/1 carol",
                "verifying:",
                "succeeded",
                "verified:",
            ],
        )?;
        expect(
            staged.is_verified(),
            &format!("{} is verified in staging", staged.id),
        )?;

        chapter("4. alice promotes staging to prod: two release managers must approve (bob on Slack, dave on Discord)");
        let r = self
            .command(
                "alice",
                "promote from staging to prod",
                State::AwaitingApproval,
            )
            .await?;
        self.react("alice", &r).await?;
        self.wait_for_text("cannot approve it too").await?;
        self.react("bob", &r).await?;
        self.wait_approvals(&r, 1).await?;
        self.discord_approve("dave", &r).await?;
        let r = self.wait(r.id, State::Succeeded).await?;
        let people: Vec<&str> = r.approvals.iter().map(|a| a.person.as_str()).collect();
        expect(
            people == ["bob", "dave"],
            "prod was approved by bob and dave, not alice",
        )?;
        // The deployment's last status follows the request's own record.
        let request = json!(r.id.to_string());
        let recorded = self
            .stack
            .github
            .wait_until(Duration::from_secs(10), |hub| {
                hub.repo(REPO).is_some_and(|repo| {
                    repo.deployments.iter().any(|d| {
                        d.environment == "prod"
                            && d.payload["request"] == request
                            && d.statuses.iter().any(|s| s.0 == "in_progress")
                            && d.statuses.last().is_some_and(|s| s.0 == "success")
                    })
                })
            })
            .await;
        expect(
            recorded,
            "a GitHub deployment for prod went from in_progress to success",
        )?;

        self.faulty_release(&staged).await?;

        chapter("6. alice deploys a broken branch to dev: the rollout stalls and is rolled back");
        let r = self
            .command("alice", "deploy feat-broken to dev", State::RolledBack)
            .await?;
        self.shows(&r, &["rolled back"])?;
        expect(
            r.note.as_deref().is_some_and(|n| {
                n.contains("ProgressDeadlineExceeded") || n.contains("CrashLoopBackOff")
            }),
            "the failure names the cluster's reason",
        )?;
        let status = self.ask("bob", "status dev").await?;
        expect(
            status.contains("locked by alice"),
            "dev is locked after the rollback",
        )?;

        chapter("7. history, status and the audit trail");
        let history = self.ask("bob", "history prod").await?;
        expect(
            history.contains("request.succeeded"),
            "prod's history shows the promotion",
        )?;
        self.ask("bob", "status").await?;
        let report = self.engine.store().verify().map_err(|e| e.to_string())?;
        println!(
            "gantry audit verify: {} events, {}",
            report.events,
            if report.first_bad.is_none() {
                "the chain is intact"
            } else {
                "BROKEN"
            }
        );
        expect(report.first_bad.is_none(), "the audit chain verifies")
    }

    async fn post(&self, path: &str, content_type: &str, body: String) -> Result<String, String> {
        // Each post a second after the one before: Slack tells a new command
        // from a retry by its signed timestamp, and the story says some
        // commands twice.
        let ts = self.clock.fetch_add(1, Ordering::SeqCst) + 1;
        let answer = self
            .http
            .post(format!("{}{path}", self.base))
            .header("content-type", content_type)
            .header("x-slack-request-timestamp", ts.to_string())
            .header(
                "x-slack-signature",
                slack_signature(self.signing.expose(), ts, body.as_bytes()),
            )
            .body(body)
            .send()
            .await
            .map_err(|e| e.to_string())?;
        let status = answer.status();
        let text = answer.text().await.map_err(|e| e.to_string())?;
        if !status.is_success() {
            return Err(format!("{path} answered {status}: {text}"));
        }
        Ok(text)
    }

    async fn command(&self, who: &str, text: &str, until: State) -> Result<Request, String> {
        println!("{who} › /gantry {text}");
        let body = serde_urlencoded::to_string([
            ("team_id", TEAM),
            ("user_id", slack_user(who)),
            ("channel_id", CHANNEL),
            ("command", "/gantry"),
            ("text", text),
        ])
        .map_err(|e| e.to_string())?;
        let before = self.newest_id()?;
        let ack = self
            .post("/slack/commands", "application/x-www-form-urlencoded", body)
            .await?;
        let ack: serde_json::Value = serde_json::from_str(&ack).map_err(|e| e.to_string())?;
        println!(
            "gantry (only to {who}) › {}",
            ack["text"].as_str().unwrap_or_default()
        );
        let newest = self.next_after(before).await?;
        self.wait(newest, until).await
    }

    async fn react(&mut self, who: &str, request: &Request) -> Result<(), String> {
        let ts = self.message_of(request)?;
        self.events += 1;
        println!("{who} reacts :white_check_mark: on {}", request.id);
        let body = json!({ "type": "event_callback", "team_id": TEAM, "event_id": format!("EvDemo{}", self.events),
            "event": { "type": "reaction_added", "user": slack_user(who), "reaction": "white_check_mark",
                       "item": { "type": "message", "channel": CHANNEL, "ts": ts } } });
        self.post("/slack/events", "application/json", body.to_string())
            .await
            .map(drop)
    }

    /// `who` comments `body` on pull request `number` of acme/web; GitHub
    /// sends the signed `issue_comment` webhook.
    async fn pr_comment(&mut self, who: &str, number: u64, body: &str) -> Result<Request, String> {
        println!("{who} comments on {REPO}#{number}: {body}");
        let author = (who, github_id(who));
        let comment = self.stack.github.user_comment(REPO, number, who, body);
        let payload = self
            .stack
            .github
            .issue_comment_event(REPO, number, comment, "created", author);
        let before = self.newest_id()?;
        self.github("issue_comment", payload).await?;
        let id = self.next_after(before).await?;
        let request = self.wait(id, State::Succeeded).await?;
        self.print_pr_comments(number, comment).await?;
        Ok(request)
    }

    /// `who` closes pull request `number`; GitHub sends the webhook.
    async fn pr_closed(&mut self, who: &str, number: u64) -> Result<(), String> {
        println!("{who} closes the pull request {REPO}#{number}");
        self.stack.github.close_pull(REPO, number);
        let payload =
            self.stack
                .github
                .pull_request_event(REPO, number, "closed", (who, github_id(who)));
        self.github("pull_request", payload).await
    }

    async fn github(&mut self, event: &str, payload: serde_json::Value) -> Result<(), String> {
        self.events += 1;
        let body = payload.to_string();
        let answer = self
            .http
            .post(format!("{}/github/webhook", self.base))
            .header("content-type", "application/json")
            .header("x-github-event", event)
            .header(
                "x-github-delivery",
                format!("demo-delivery-{}", self.events),
            )
            .header(
                "x-hub-signature-256",
                crate::sandbox::github::webhook::signature(
                    self.github_secret.expose(),
                    body.as_bytes(),
                ),
            )
            .body(body)
            .send()
            .await
            .map_err(|e| e.to_string())?;
        if !answer.status().is_success() {
            return Err(format!("/github/webhook answered {}", answer.status()));
        }
        Ok(())
    }

    /// Prints Gantry's comments on pull request `number` (every version),
    /// once its last edit says how the request ended.
    async fn print_pr_comments(&self, number: u64, theirs: u64) -> Result<(), String> {
        let ours = || -> Vec<crate::sandbox::github::FakeComment> {
            self.stack
                .github
                .comments(REPO)
                .into_iter()
                .filter(|c| c.number == number && c.id != theirs)
                .collect()
        };
        let mut settled = false;
        for _ in 0..500 {
            settled = ours()
                .iter()
                .any(|c| c.versions.last().is_some_and(|v| v.contains("succeeded")));
            if settled {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        for comment in ours() {
            for (i, version) in comment.versions.iter().enumerate() {
                let mark = if i == 0 {
                    "gantry (PR comment) ›"
                } else {
                    "  ✎ edit ›"
                };
                println!("{mark} {}", version.replace('\n', "\n           "));
            }
        }
        println!();
        expect(settled, "Gantry's PR comment shows the deploy succeeded")
    }

    /// `who` types `/gantry approve R-n` in Discord.
    async fn discord_approve(&self, who: &str, request: &Request) -> Result<(), String> {
        let user = match who {
            "dave" => 100_000_000_000_000_004,
            _ => 100_000_000_000_000_002,
        };
        println!("{who} (on Discord) › /gantry approve {}", request.id);
        let sent = self
            .discord
            .command(
                Origin {
                    guild: DISCORD_GUILD,
                    channel: 300_000_000_000_000_001,
                    user,
                },
                &format!("approve {}", request.id),
            )
            .await;
        if sent.status != 200 {
            return Err(format!(
                "/discord/interactions answered {}: {}",
                sent.status, sent.body
            ));
        }
        Ok(())
    }

    fn message_of(&self, request: &Request) -> Result<String, String> {
        let stored = self
            .engine
            .store()
            .get_message(&request.id.to_string())
            .map_err(|e| e.to_string())?;
        stored
            .map(|m| m.message_id)
            .ok_or_else(|| format!("{} has no progress message", request.id))
    }

    fn newest_id(&self) -> Result<u64, String> {
        let all: Vec<(u64, Request)> = self.engine.store().requests().map_err(|e| e.to_string())?;
        Ok(all.last().map_or(0, |(id, _)| *id))
    }

    /// Waits for the first request made after request `before`.
    async fn next_after(&self, before: u64) -> Result<crate::names::RequestId, String> {
        for _ in 0..500 {
            if self.newest_id()? > before {
                return Ok(crate::names::RequestId(before + 1));
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        Err("no request was created".into())
    }

    /// Sends a command that answers with a message rather than a request.
    async fn ask(&self, who: &str, text: &str) -> Result<String, String> {
        println!("{who} › /gantry {text}");
        let seen = self.slack.messages().len();
        let body = serde_urlencoded::to_string([
            ("team_id", TEAM),
            ("user_id", slack_user(who)),
            ("channel_id", CHANNEL),
            ("command", "/gantry"),
            ("text", text),
        ])
        .map_err(|e| e.to_string())?;
        self.post("/slack/commands", "application/x-www-form-urlencoded", body)
            .await?;
        for _ in 0..500 {
            if let Some(m) = self.slack.messages().get(seen) {
                println!("gantry › {}\n", m.versions[0].replace('\n', "\n         "));
                return Ok(m.versions[0].clone());
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        Err(format!("no answer to `{text}`"))
    }

    async fn wait(&self, id: crate::names::RequestId, until: State) -> Result<Request, String> {
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut shown = 0;
        loop {
            let request: Option<Request> = self
                .engine
                .store()
                .get_request(id.0)
                .map_err(|e| e.to_string())?;
            shown = self.print_new_versions(&id.to_string(), shown);
            match request {
                Some(r) if r.state == until => {
                    // The state is recorded before its edit reaches chat:
                    // wait (bounded) for the message to say it.
                    for _ in 0..200 {
                        if self.latest_version(&id.to_string()).is_none_or(|v| {
                            v.contains(until.word()) || v.contains("preview removed")
                        }) {
                            break;
                        }
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                    self.print_new_versions(&id.to_string(), shown);
                    println!();
                    return Ok(r);
                }
                Some(r) if r.state.is_terminal() => {
                    return Err(format!(
                        "{id} ended {} instead of {}: {}",
                        r.state.word(),
                        until.word(),
                        r.note.unwrap_or_default()
                    ))
                }
                _ if Instant::now() > deadline => {
                    return Err(format!("{id} did not become {} in time", until.word()))
                }
                _ => tokio::time::sleep(Duration::from_millis(20)).await,
            }
        }
    }

    /// The newest text of a request's Slack message, if it has one there.
    fn latest_version(&self, id: &str) -> Option<String> {
        let prefix = format!("{id} ");
        let message = self
            .slack
            .messages()
            .into_iter()
            .find(|m| m.versions[0].starts_with(&prefix))?;
        message.versions.last().cloned()
    }

    fn print_new_versions(&self, id: &str, shown: usize) -> usize {
        let Some(message) = self
            .slack
            .messages()
            .into_iter()
            .find(|m| m.versions[0].starts_with(&format!("{id} ")))
        else {
            return shown;
        };
        for (i, version) in message.versions.iter().enumerate().skip(shown) {
            let mark = if i == 0 {
                "gantry ›"
            } else {
                "  ✎ edit ›"
            };
            println!(
                "{mark} {}",
                unescaped(version).replace('\n', "\n           ")
            );
        }
        message.versions.len()
    }

    async fn wait_for_text(&self, text: &str) -> Result<(), String> {
        for _ in 0..500 {
            if let Some(m) = self
                .slack
                .messages()
                .into_iter()
                .find(|m| m.versions[0].contains(text))
            {
                println!("gantry › {}", m.versions[0]);
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        Err(format!("no message says `{text}`"))
    }

    async fn wait_approvals(&self, request: &Request, count: usize) -> Result<(), String> {
        for _ in 0..500 {
            let now: Option<Request> = self
                .engine
                .store()
                .get_request(request.id.0)
                .map_err(|e| e.to_string())?;
            if now.is_some_and(|r| r.approvals.len() >= count) {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        Err(format!("{} never had {count} approval(s)", request.id))
    }

    fn shows(&self, request: &Request, steps: &[&str]) -> Result<(), String> {
        let message = self
            .slack
            .messages()
            .into_iter()
            .find(|m| m.versions[0].starts_with(&format!("{} ", request.id)));
        let versions = message.map(|m| m.versions.join("\n")).unwrap_or_default();
        for step in steps {
            expect(
                versions.contains(step),
                &format!("{}'s message showed `{step}`", request.id),
            )?;
        }
        Ok(())
    }
}

fn expect(ok: bool, what: &str) -> Result<(), String> {
    if ok {
        println!("✓ {what}");
        Ok(())
    } else {
        Err(format!("expected: {what}"))
    }
}

/// Slack's text as a person reads it (the API escapes `&`, `<` and `>`).
fn unescaped(text: &str) -> String {
    text.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

fn chapter(title: &str) {
    println!("── {title} ──");
}
