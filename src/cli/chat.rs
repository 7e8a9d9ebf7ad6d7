//! `gantry chat --as IDENTITY`: type commands at a running `gantry serve
//! --sandbox` as a Slack user would, and watch Gantry's answers and live
//! edits in the sandbox Slack.

use std::collections::BTreeMap;
use std::io::BufRead;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::fail;
use crate::names::Identity;
use crate::sandbox::generated::{read_endpoints, SANDBOX_DIR, SECRETS_ENV_FILE};
use crate::server::verify::slack_signature;

/// Arguments of `gantry chat`.
#[derive(Debug, clap::Args)]
pub struct ChatArgs {
    /// Who you are: a Slack identity from config, e.g. `slack:T0SANDBOX:UALICE01`.
    #[arg(long = "as", value_name = "IDENTITY")]
    identity: Identity,
    /// The running server. Default: the address `gantry serve` wrote in
    /// the data directory (DIR/server.json).
    #[arg(long)]
    url: Option<String>,
    /// The server's data directory (its address, and the sandbox's secrets
    /// and Slack address under DIR/sandbox).
    #[arg(long, short = 'd', env = "GANTRY_DATA", default_value = super::DEFAULT_DATA, value_name = "DIR")]
    data: PathBuf,
    /// The Slack channel id to talk in.
    #[arg(long, default_value = "C0SANDBOX")]
    channel: String,
    /// How long to keep showing edits after each command.
    #[arg(long, default_value = "5s", value_parser = humantime::parse_duration)]
    watch: Duration,
}

/// Reads commands from standard input, one per line, until end of input.
pub fn run(args: &ChatArgs) -> ExitCode {
    let Identity::Slack { team, user } = &args.identity else {
        return fail("gantry chat speaks as a Slack user: give --as slack:<team>:<user>");
    };
    let secret = match read_secret(&args.data) {
        Ok(s) => s,
        Err(e) => return fail(e),
    };
    let sandbox = args.data.join(SANDBOX_DIR);
    let slack = read_endpoints(&sandbox).ok().and_then(|e| e.slack);
    let Some(slack) = slack else {
        return fail(format!(
            "no sandbox Slack found in {}; start `gantry serve --sandbox --data {}` (or `gantry sandbox up`) first",
            sandbox.display(),
            args.data.display()
        ));
    };
    let url = match args.url.clone().map_or_else(|| server_url(&args.data), Ok) {
        Ok(url) => url,
        Err(e) => return fail(e),
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => return fail(format!("cannot start the runtime: {e}")),
    };
    crate::tls::install_crypto();
    let http = match reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
    {
        Ok(c) => c,
        Err(e) => return fail(e),
    };
    println!(
        "talking to {} as {} in {} — type a command (e.g. `deploy feat-x to dev`), Ctrl-D to leave",
        url, args.identity, args.channel
    );
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    for line in std::io::stdin().lock().lines() {
        let Ok(line) = line else { break };
        let text = line.trim();
        if text.is_empty() {
            continue;
        }
        let outcome = runtime.block_on(async {
            let ack = send(&http, &url, &secret, team, user, &args.channel, text).await?;
            println!("(only to you) {ack}");
            watch(&http, &slack, &args.channel, args.watch, &mut seen).await
        });
        if let Err(e) = outcome {
            eprintln!("error: {e}");
        }
    }
    ExitCode::SUCCESS
}

fn read_secret(data: &std::path::Path) -> Result<String, String> {
    if let Ok(secret) = std::env::var("SLACK_SIGNING_SECRET") {
        return Ok(secret);
    }
    let path = data.join(SANDBOX_DIR).join(SECRETS_ENV_FILE);
    let text = std::fs::read_to_string(&path).map_err(|e| {
        format!(
            "SLACK_SIGNING_SECRET is not set and {} cannot be read: {e}",
            path.display()
        )
    })?;
    text.lines()
        .find_map(|l| l.strip_prefix("SLACK_SIGNING_SECRET=").map(str::to_owned))
        .ok_or_else(|| format!("{} has no SLACK_SIGNING_SECRET", path.display()))
}

/// The address `gantry serve` wrote in the data directory.
fn server_url(data: &std::path::Path) -> Result<String, String> {
    let path = data.join(super::serve::SERVER_FILE);
    let text = std::fs::read_to_string(&path).map_err(|e| {
        format!(
            "no server address in {} ({e}); start `gantry serve --data {}` or give --url",
            path.display(),
            data.display()
        )
    })?;
    serde_json::from_str::<serde_json::Value>(&text)
        .ok()
        .and_then(|v| v["url"].as_str().map(str::to_owned))
        .ok_or_else(|| format!("{} holds no server address; give --url", path.display()))
}

async fn send(
    http: &reqwest::Client,
    url: &str,
    secret: &str,
    team: &str,
    user: &str,
    channel: &str,
    text: &str,
) -> Result<String, String> {
    let body = serde_urlencoded::to_string([
        ("team_id", team),
        ("user_id", user),
        ("channel_id", channel),
        ("command", "/gantry"),
        ("text", text),
    ])
    .map_err(|e| e.to_string())?;
    let ts = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    let answer = http
        .post(format!("{}/slack/commands", url.trim_end_matches('/')))
        .header("content-type", "application/x-www-form-urlencoded")
        .header("x-slack-request-timestamp", ts.to_string())
        .header(
            "x-slack-signature",
            slack_signature(secret, ts, body.as_bytes()),
        )
        .body(body)
        .send()
        .await
        .map_err(|e| format!("cannot reach {url}: {e}"))?;
    let status = answer.status();
    let text = answer.text().await.map_err(|e| e.to_string())?;
    if !status.is_success() {
        return Err(format!("{status}: {text}"));
    }
    let json: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
    Ok(json["text"]
        .as_str()
        .unwrap_or(&text)
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&"))
}

/// Prints every new message and edit in the channel for `period`.
async fn watch(
    http: &reqwest::Client,
    slack: &str,
    channel: &str,
    period: Duration,
    seen: &mut BTreeMap<String, usize>,
) -> Result<(), String> {
    let until = Instant::now() + period;
    while Instant::now() < until {
        let all: Vec<serde_json::Value> = http
            .get(format!(
                "{}/_sandbox/messages",
                slack.trim_end_matches('/').trim_end_matches("/api")
            ))
            .send()
            .await
            .map_err(|e| e.to_string())?
            .json()
            .await
            .map_err(|e| e.to_string())?;
        for message in all.iter().filter(|m| m["channel"] == channel) {
            let ts = message["ts"].as_str().unwrap_or_default().to_owned();
            let versions: Vec<&str> = message["versions"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|v| v.as_str())
                .collect();
            let shown = seen.entry(ts).or_default();
            for (i, version) in versions.iter().enumerate().skip(*shown) {
                let text = version
                    .replace("&lt;", "<")
                    .replace("&gt;", ">")
                    .replace("&amp;", "&");
                let mark = if i == 0 {
                    "gantry ›"
                } else {
                    "  ✎ edit ›"
                };
                println!("{mark} {}", text.replace('\n', "\n           "));
            }
            *shown = versions.len();
        }
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    Ok(())
}
