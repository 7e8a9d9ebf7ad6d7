//! `gantry sandbox up`: the sandbox servers in the foreground, and the
//! config that points Gantry at them.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use super::{fail, ConfigArg, DataArg};
use crate::sandbox::generated::{self, CONFIG_FILE, SANDBOX_DIR};
use crate::sandbox::stack::{self, SandboxOptions, SandboxServers};

/// Arguments of `gantry sandbox`.
#[derive(Debug, clap::Args)]
pub struct SandboxArgs {
    /// What to do.
    #[command(subcommand)]
    command: SandboxCommand,
}

/// The sandbox's sub-commands.
#[derive(Debug, clap::Subcommand)]
enum SandboxCommand {
    /// Start the fake Kubernetes API, registry, GitHub, Slack and Discord
    /// servers, the apps' health and metrics server and (when installed) a
    /// Prometheus scraping it, and write DIR/sandbox/gantry.toml pointing at
    /// them; runs until Ctrl-C or SIGTERM.
    ///
    /// Staging's releases are verified for 8s after their rollout: the
    /// apps' health check and, with Prometheus, their error ratio.
    ///
    /// The written config is --config with every outside URL replaced by a
    /// sandbox server's and every secret by a generated one (files under
    /// DIR/sandbox/secrets, also as NAME=value lines in
    /// DIR/sandbox/secrets.env). Every other command then runs on the
    /// production code path against it.
    #[command(
        after_help = "Example:\n  gantry sandbox up --data gantry-data &\n  gantry serve --config gantry-data/sandbox/gantry.toml --data gantry-data\n  gantry run --config gantry-data/sandbox/gantry.toml --data gantry-data --as console:alice 'deploy main to perf'"
    )]
    Up(UpArgs),
}

/// Arguments of `gantry sandbox up`.
#[derive(Debug, clap::Args)]
struct UpArgs {
    #[command(flatten)]
    config: ConfigArg,
    #[command(flatten)]
    data: DataArg,
    /// Milliseconds per simulated rollout step.
    #[arg(long, default_value_t = 300, value_name = "MS")]
    tick_ms: u64,
}

/// Runs a `gantry sandbox` command.
pub fn run(args: &SandboxArgs) -> ExitCode {
    match &args.command {
        SandboxCommand::Up(up) => run_up(up),
    }
}

fn run_up(args: &UpArgs) -> ExitCode {
    crate::logging::init(crate::logging::LogFormat::Text);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => return fail(format!("cannot start the runtime: {e}")),
    };
    let outcome = runtime.block_on(async {
        let servers = start_in(&args.config.config, &args.data.data, args.tick_ms).await?;
        eprintln!("sandbox: up; Ctrl-C stops it");
        super::serve::shutdown().await;
        drop(servers);
        Ok::<(), String>(())
    });
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(e),
    }
}

/// Starts the sandbox in DIR/sandbox for the config at `base` and says
/// where everything is.
pub(super) async fn start_in(
    base: &Path,
    data: &Path,
    tick_ms: u64,
) -> Result<SandboxServers, String> {
    let dir = data.join(SANDBOX_DIR);
    let options = SandboxOptions::with_tick(Duration::from_millis(tick_ms)).verified();
    let servers = stack::start(base, &dir, options).await?;
    eprintln!(
        "sandbox: Kubernetes API at {}, registry at {}, GitHub API at {}",
        servers.kube.url(),
        servers.registry.host(),
        servers.github.url()
    );
    if let Some(slack) = &servers.slack {
        eprintln!("sandbox: Slack Web API at {}", slack.api_url());
    }
    if let Some(discord) = &servers.discord {
        eprintln!("sandbox: Discord REST API at {}", discord.api_url());
    }
    eprintln!(
        "sandbox: the apps' health and metrics at {}",
        servers.apps.url()
    );
    match &servers.prometheus {
        Some(prometheus) => eprintln!("sandbox: Prometheus at {}", prometheus.url()),
        None => eprintln!("{}", stack::PROMETHEUS_MISSING),
    }
    eprintln!(
        "sandbox: config for Gantry in {} (secrets in {})",
        servers.config_path.display(),
        servers.dir.join("secrets").display()
    );
    Ok(servers)
}

/// The config of the sandbox running for data directory `data`, or why
/// there is none.
pub(super) fn running_config(data: &Path) -> Result<PathBuf, String> {
    let dir = data.join(SANDBOX_DIR);
    let config = dir.join(CONFIG_FILE);
    let start = format!(
        "start one with `gantry sandbox up --data {}` (in another terminal) and try again",
        data.display()
    );
    let endpoints = generated::read_endpoints(&dir)
        .map_err(|_| format!("no sandbox has run for {}: {start}", data.display()))?;
    let answers = endpoints
        .kubernetes
        .strip_prefix("http://")
        .and_then(|a| a.parse::<std::net::SocketAddr>().ok())
        .is_some_and(|addr| {
            std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(1)).is_ok()
        });
    if !answers {
        return Err(format!(
            "the sandbox for {} is not running (nothing answers at {}): {start}",
            data.display(),
            endpoints.kubernetes
        ));
    }
    Ok(config)
}
