//! `gantry check-config [--config PATH]`.

use std::process::ExitCode;

use super::{fail, ConfigArg};

/// Arguments of `gantry check-config`.
#[derive(Debug, clap::Args)]
pub struct CheckConfigArgs {
    #[command(flatten)]
    config: ConfigArg,
}

/// Loads and validates the config, then prints its summary and the
/// secrets that enabled platforms need but this environment lacks.
pub fn run(args: &CheckConfigArgs) -> ExitCode {
    let config = match crate::config::load(&args.config.config) {
        Ok(c) => c,
        Err(e) => return fail(e),
    };
    println!(
        "{}: valid (version {})",
        config.path().display(),
        config.version()
    );
    print!("{}", config.summary());
    let missing: Vec<String> = config
        .required_secrets()
        .into_iter()
        .filter(|(_, secret)| secret.resolve().is_err())
        .map(|(key, secret)| format!("  {key}: {} is not set", secret.describe()))
        .collect();
    if missing.is_empty() {
        println!("secrets: every secret the enabled platforms need is available");
    } else {
        println!(
            "secrets: {} needed by enabled platforms are not available here:",
            missing.len()
        );
        for line in &missing {
            println!("{line}");
        }
    }
    ExitCode::SUCCESS
}
