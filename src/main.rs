//! The `gantry` binary: wiring only.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    gantry::cli::run(gantry::cli::Cli::parse())
}
