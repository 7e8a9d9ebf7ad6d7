//! The `gantry` command line: argument types and dispatch.
//!
//! Each sub-command lives in its own module and returns an exit code; user
//! errors are printed plainly, never as a panic or a backtrace.

mod audit;
mod bench;
mod chat;
mod check_config;
mod demo;
mod help;
mod image;
mod parse;
mod run;
mod sandbox;
mod serve;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Where the config is read from when `--config` is not given.
pub const DEFAULT_CONFIG: &str = "config/gantry.toml";

/// Gantry: deploy, approve, promote and roll back from chat.
#[derive(Debug, Parser)]
#[command(name = "gantry", version, disable_help_subcommand = true)]
#[command(
    about = "A ChatOps bot for delivery workflows: deploy, approve, promote and roll back from chat."
)]
#[command(
    after_help = "Start with `gantry help` for the chat commands and `gantry check-config` for your setup."
)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: CliCommand,
}

/// The config file option shared by sub-commands.
#[derive(Debug, Clone, clap::Args)]
pub struct ConfigArg {
    /// The config file.
    #[arg(long, short = 'c', env = "GANTRY_CONFIG", default_value = DEFAULT_CONFIG, value_name = "PATH")]
    pub config: PathBuf,
}

/// Where the sled store lives when `--data` is not given.
pub const DEFAULT_DATA: &str = "gantry-data";

/// The data directory option shared by sub-commands.
#[derive(Debug, Clone, clap::Args)]
pub struct DataArg {
    /// The directory of Gantry's store (requests, locks, audit trail).
    #[arg(long, short = 'd', env = "GANTRY_DATA", default_value = DEFAULT_DATA, value_name = "DIR")]
    pub data: PathBuf,
}

/// The sub-commands.
#[derive(Debug, Subcommand)]
pub enum CliCommand {
    /// Parse a chat command and print what Gantry understands, or why not.
    ///
    /// Environment and app names come from the config, exactly as the bot
    /// would see them. Exits 1 when the text does not parse.
    #[command(
        after_help = "Examples:\n  gantry parse 'deploy feat-x to dev'\n  gantry parse --json ship v1.2.0 of api to staging\n  gantry parse --pr 42 '/deploy staging'"
    )]
    Parse(parse::ParseArgs),
    /// Validate the config file and summarise it.
    ///
    /// Every error names the file, line and key. For each enabled platform
    /// it also lists which secrets are not available in this environment.
    CheckConfig(check_config::CheckConfigArgs),
    /// Explain the chat commands (generated from `commands/`).
    Help(help::HelpArgs),
    /// Send one chat command through the whole engine and print what chat would show.
    ///
    /// Requests persist in the data directory, so a deploy that waits for
    /// approval can be approved by a later `gantry run --as <approver>`.
    #[command(
        after_help = "Examples (with `gantry sandbox up` running in another terminal):\n  gantry run --sandbox --as console:alice 'deploy feat-x to dev'\n  gantry run --sandbox --as console:alice 'promote from staging to prod'\n  gantry run --sandbox --as console:bob 'approve R-2'"
    )]
    Run(run::RunArgs),
    /// Run the HTTP server: Slack, Discord and GitHub endpoints, health and metrics.
    ///
    /// Refuses to start when an enabled platform lacks its secret.
    #[command(after_help = "Example:\n  gantry serve --sandbox --listen 127.0.0.1:8080")]
    Serve(serve::ServeArgs),
    /// Send signed Slack commands to a running server and report ack latency.
    #[command(
        after_help = "Example:\n  SLACK_SIGNING_SECRET=… gantry bench --url http://127.0.0.1:8080 -n 10000 --rate 1000"
    )]
    Bench(bench::BenchArgs),
    /// Type commands at a running `gantry serve` on the sandbox as a Slack user.
    ///
    /// Shows the acknowledgement and then every message and edit in the
    /// sandbox Slack channel, live.
    #[command(
        after_help = "Example:\n  gantry serve --sandbox --listen 127.0.0.1:0 &\n  gantry chat --as slack:T0SANDBOX:UALICE01"
    )]
    Chat(chat::ChatArgs),
    /// Play the delivery story through the real server on the sandbox.
    ///
    /// Deploy, preview, promotion with approvals by reaction and button, a
    /// stalled rollout rolled back, history and the audit trail; exits 0
    /// only when every step did what the story says.
    #[command(
        after_help = "Examples:\n  gantry demo\n  gantry demo --fast --data /tmp/gantry-demo"
    )]
    Demo(demo::DemoArgs),
    /// Run the sandbox: fake Kubernetes, registry, GitHub, Slack and Discord
    /// servers on 127.0.0.1, and a config that points Gantry at them.
    Sandbox(sandbox::SandboxArgs),
    /// Read and check the hash-chained audit trail.
    Audit(audit::AuditArgs),
    /// Ask the container registry about an image: `gantry image digest <image-ref>`.
    ///
    /// Prints the manifest digest a deploy would pin, with the same client
    /// and credentials rules the bot uses.
    Image(image::ImageArgs),
}

/// Runs the parsed command line.
pub fn run(cli: Cli) -> ExitCode {
    match cli.command {
        CliCommand::Parse(args) => parse::run(&args),
        CliCommand::CheckConfig(args) => check_config::run(&args),
        CliCommand::Help(args) => help::run(&args),
        CliCommand::Run(args) => run::run(&args),
        CliCommand::Audit(args) => audit::run(&args),
        CliCommand::Image(args) => image::run(&args),
        CliCommand::Serve(args) => serve::run(&args),
        CliCommand::Bench(args) => bench::run(&args),
        CliCommand::Demo(args) => demo::run(&args),
        CliCommand::Chat(args) => chat::run(&args),
        CliCommand::Sandbox(args) => sandbox::run(&args),
    }
}

/// Prints a user-facing error and returns the failure exit code.
fn fail(message: impl std::fmt::Display) -> ExitCode {
    eprintln!("error: {message}");
    ExitCode::FAILURE
}

/// Compiles the built-in grammar; a failure here is a build defect.
fn grammar() -> Result<crate::command::Grammar, ExitCode> {
    crate::command::Grammar::builtin()
        .map_err(|e| fail(format!("the built-in grammar is broken: {e}")))
}
