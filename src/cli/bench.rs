//! `gantry bench`: a load generator for the Slack command route.
//!
//! Sends N signed slash commands at a fixed rate to a running `gantry
//! serve` and reports acknowledgement latency (p50, p99, max), throughput
//! and the status codes seen. Each request carries a distinct `trigger_id`,
//! so none is refused as a replay.

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::fail;
use crate::server::verify::slack_signature;

/// Arguments of `gantry bench`.
#[derive(Debug, clap::Args)]
pub struct BenchArgs {
    /// The server's base URL.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    url: String,
    /// How many commands to send.
    #[arg(long, short = 'n', default_value_t = 5000)]
    requests: u32,
    /// Commands per second to send.
    #[arg(long, default_value_t = 1000)]
    rate: u32,
    /// Most requests in flight at once.
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    /// The command text sent.
    #[arg(long, default_value = "status dev")]
    text: String,
    /// Workspace and user the commands come from.
    #[arg(long, default_value = "T0SANDBOX")]
    team: String,
    /// See `--team`.
    #[arg(long, default_value = "UALICE01")]
    user: String,
    /// Environment variable holding the Slack signing secret.
    #[arg(long, default_value = "SLACK_SIGNING_SECRET")]
    secret_env: String,
    /// Send nothing: write the N signed commands to FILE, one per line as
    /// `timestamp TAB signature TAB body`, for `wrk -s benches/wrk/slack.lua`
    /// (signatures stay valid for 5 minutes).
    #[arg(long, value_name = "FILE")]
    emit: Option<std::path::PathBuf>,
}

/// Runs the load and prints the figures.
pub fn run(args: &BenchArgs) -> ExitCode {
    let Ok(secret) = std::env::var(&args.secret_env) else {
        return fail(format!(
            "{} is not set (for the sandbox, read it from DIR/sandbox-secrets.env)",
            args.secret_env
        ));
    };
    if args.rate == 0 || args.requests == 0 || args.concurrency == 0 {
        return fail("--requests, --rate and --concurrency must be at least 1");
    }
    if let Some(file) = &args.emit {
        return match emit(args, &secret, file) {
            Ok(()) => {
                println!(
                    "wrote {} signed commands to {}",
                    args.requests,
                    file.display()
                );
                ExitCode::SUCCESS
            }
            Err(e) => fail(format!("cannot write {}: {e}", file.display())),
        };
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => return fail(format!("cannot start the runtime: {e}")),
    };
    crate::tls::install_crypto();
    match runtime.block_on(load(args, secret)) {
        Ok(report) => {
            println!("{report}");
            ExitCode::SUCCESS
        }
        Err(e) => fail(e),
    }
}

/// One slash command's form body; `nonce` makes each one a new delivery.
fn body(args: &BenchArgs, nonce: &str) -> String {
    serde_urlencoded::to_string([
        ("team_id", args.team.as_str()),
        ("user_id", args.user.as_str()),
        ("channel_id", "CBENCH"),
        ("command", "/gantry"),
        ("text", args.text.as_str()),
        ("trigger_id", nonce),
    ])
    .unwrap_or_default()
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(0))
}

/// Writes the signed requests for an outside load generator.
fn emit(args: &BenchArgs, secret: &str, file: &std::path::Path) -> std::io::Result<()> {
    use std::io::Write;
    let ts = unix_now();
    let mut out = std::io::BufWriter::new(std::fs::File::create(file)?);
    for i in 0..args.requests {
        let body = body(args, &format!("wrk-{ts}-{i}"));
        let signature = slack_signature(secret, ts, body.as_bytes());
        writeln!(out, "{ts}\t{signature}\t{body}")?;
    }
    out.flush()
}

async fn load(args: &BenchArgs, secret: String) -> Result<String, String> {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .pool_max_idle_per_host(args.concurrency)
        .build()
        .map_err(|e| format!("cannot build the HTTP client: {e}"))?;
    let url = format!("{}/slack/commands", args.url.trim_end_matches('/'));
    let gate = Arc::new(tokio::sync::Semaphore::new(args.concurrency));
    let mut ticker = tokio::time::interval(Duration::from_secs_f64(1.0 / f64::from(args.rate)));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let secret = Arc::new(secret);
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(args.requests as usize);
    for i in 0..args.requests {
        ticker.tick().await;
        let permit = gate
            .clone()
            .acquire_owned()
            .await
            .map_err(|e| e.to_string())?;
        let body = body(args, &format!("bench-{i}-{}", started.elapsed().as_nanos()));
        let (client, url, secret) = (client.clone(), url.clone(), secret.clone());
        tasks.push(tokio::spawn(async move {
            let ts = unix_now();
            let signature = slack_signature(&secret, ts, body.as_bytes());
            let sent = Instant::now();
            let answer = client
                .post(url)
                .header("content-type", "application/x-www-form-urlencoded")
                .header("x-slack-request-timestamp", ts.to_string())
                .header("x-slack-signature", signature)
                .body(body)
                .send()
                .await;
            let status = match answer {
                Ok(r) => {
                    let code = r.status().as_u16();
                    let _ = r.bytes().await;
                    code.to_string()
                }
                Err(e) if e.is_timeout() => "timeout".to_owned(),
                Err(_) => "error".to_owned(),
            };
            drop(permit);
            (sent.elapsed(), status)
        }));
    }
    let mut latencies = Vec::with_capacity(tasks.len());
    let mut statuses: BTreeMap<String, u32> = BTreeMap::new();
    for task in tasks {
        let (latency, status) = task.await.map_err(|e| e.to_string())?;
        latencies.push(latency);
        *statuses.entry(status).or_default() += 1;
    }
    let elapsed = started.elapsed();
    latencies.sort();
    let at = |q: f64| latencies[((latencies.len() - 1) as f64 * q).round() as usize];
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let codes: Vec<String> = statuses.iter().map(|(s, n)| format!("{s}: {n}")).collect();
    Ok(format!(
        "sent {} commands at {}/s target in {:.2}s: {:.0} acks/s\nack latency ms: p50 {:.2}, p99 {:.2}, max {:.2}\nstatus: {}",
        latencies.len(),
        args.rate,
        elapsed.as_secs_f64(),
        latencies.len() as f64 / elapsed.as_secs_f64(),
        ms(at(0.50)),
        ms(at(0.99)),
        ms(latencies[latencies.len() - 1]),
        codes.join(", ")
    ))
}
