//! The `gantry` binary: wiring only.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    gantry::tls::install_crypto();
    gantry::cli::run(gantry::cli::Cli::parse())
}
