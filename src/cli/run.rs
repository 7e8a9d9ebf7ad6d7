//! `gantry run [--sandbox] --as IDENTITY TEXT…`: one command through the engine.

use std::process::ExitCode;
use std::sync::Arc;

use super::{fail, grammar, sandbox, ConfigArg, DataArg};
use crate::adapters::wiring;
use crate::engine::{system_clock, Conversation, Engine, State};
use crate::names::Identity;
use crate::server::assemble::require_secrets;
use crate::store::Store;

/// Arguments of `gantry run`.
#[derive(Debug, clap::Args)]
pub struct RunArgs {
    #[command(flatten)]
    config: ConfigArg,
    #[command(flatten)]
    data: DataArg,
    /// Who is typing, as a platform identity (`console:alice`, `slack:T…:U…`).
    #[arg(long = "as", value_name = "IDENTITY")]
    identity: Identity,
    /// Use the config of the sandbox running for the data directory
    /// (`gantry sandbox up --data DIR`, i.e. DIR/sandbox/gantry.toml)
    /// instead of --config.
    #[arg(long)]
    sandbox: bool,
    /// The command, as typed in chat.
    #[arg(
        required = true,
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "TEXT"
    )]
    text: Vec<String>,
}

/// Runs one command and prints the progress messages and the reply.
pub fn run(args: &RunArgs) -> ExitCode {
    crate::logging::init(crate::logging::LogFormat::Text);
    let grammar = match grammar() {
        Ok(g) => g,
        Err(code) => return code,
    };
    let path = if args.sandbox {
        match sandbox::running_config(&args.data.data) {
            Ok(p) => p,
            Err(e) => return fail(e),
        }
    } else {
        args.config.config.clone()
    };
    let config = match crate::config::load(&path) {
        Ok(c) => Arc::new(c),
        Err(e) => return fail(e),
    };
    if let Err(e) = require_secrets(&config) {
        return fail(e);
    }
    if let Err(e) = std::fs::create_dir_all(&args.data.data) {
        return fail(format!("cannot create {}: {e}", args.data.data.display()));
    }
    let store = match Store::open(&args.data.data) {
        Ok(s) => s,
        Err(e) => return fail(e),
    };
    // Clients are built inside the runtime: some need a reactor.
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => return fail(format!("cannot start the runtime: {e}")),
    };
    let conversation = Conversation {
        platform: crate::engine::Platform::Console,
        channel: "console".into(),
    };
    let text = args.text.join(" ");
    let reply = runtime.block_on(async {
        let wired = wiring::ports(&config)?;
        let engine = Engine::new(
            config,
            Arc::new(grammar),
            store,
            wired.ports,
            system_clock(),
        );
        let recovered = engine.recover().await.map_err(|e| e.to_string())?;
        for id in &recovered.interrupted {
            println!("(recovered: {id} was interrupted by a restart)");
        }
        for id in &recovered.verifying {
            println!("(recovered: {id} is still verifying; `gantry serve` resumes its checks)");
        }
        Ok::<_, String>(engine.handle(&args.identity, &conversation, &text).await)
    });
    match reply {
        Ok(reply) => {
            // A request's reply repeats its progress message, already shown.
            let shown = reply
                .request
                .is_some_and(|id| reply.text.starts_with(&format!("{id} ")));
            if !shown {
                println!("{}", reply.text);
            }
            let ok = match reply.state {
                Some(state) => matches!(
                    state,
                    State::Succeeded | State::AwaitingApproval | State::Approved
                ),
                None => !reply.is_refused(),
            };
            if ok {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Err(e) => fail(e),
    }
}
