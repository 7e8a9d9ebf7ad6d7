//! `gantry run [--sandbox] --as IDENTITY TEXT…`: one command through the engine.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use super::{fail, grammar, ConfigArg, DataArg};
use crate::engine::{system_clock, Conversation, Engine, Ports, State};
use crate::names::Identity;
use crate::sandbox::{World, WorldState};
use crate::store::Store;

/// File in the data directory that keeps the sandbox world between runs.
pub const WORLD_FILE: &str = "sandbox-world.json";

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
    /// Use the sandbox world (kept in DIR/sandbox-world.json) for the Git
    /// host, registry, cluster and chat instead of the real ones in config.
    #[arg(long)]
    sandbox: bool,
    /// Milliseconds per simulated rollout step in the sandbox.
    #[arg(long, default_value_t = 300, value_name = "MS")]
    tick_ms: u64,
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
    let grammar = match grammar() {
        Ok(g) => g,
        Err(code) => return code,
    };
    let config = match crate::config::load(&args.config.config) {
        Ok(c) => Arc::new(c),
        Err(e) => return fail(e),
    };
    if let Err(e) = std::fs::create_dir_all(&args.data.data) {
        return fail(format!("cannot create {}: {e}", args.data.data.display()));
    }
    let store = match Store::open(&args.data.data) {
        Ok(s) => s,
        Err(e) => return fail(e),
    };
    let world_path = args.data.data.join(WORLD_FILE);
    let world = if args.sandbox {
        let state = match load_world(&world_path) {
            Ok(Some(state)) => state,
            Ok(None) => crate::sandbox::seed(&config),
            Err(e) => return fail(e),
        };
        Some(Arc::new(
            World::new(state, Duration::from_millis(args.tick_ms)).echo_messages(true),
        ))
    } else {
        None
    };
    let ports = match &world {
        Some(world) => Ports {
            forge: world.clone(),
            registry: world.clone(),
            cluster: world.clone(),
            notifier: world.clone(),
        },
        None => match crate::adapters::wiring::real_ports(&config) {
            Ok(ports) => ports,
            Err(e) => return fail(e),
        },
    };
    let engine = Engine::new(config, Arc::new(grammar), store, ports, system_clock());
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => return fail(format!("cannot start the runtime: {e}")),
    };
    let conversation = Conversation {
        platform: "console".into(),
        channel: "console".into(),
    };
    let text = args.text.join(" ");
    let reply = runtime.block_on(async {
        let recovered = engine.recover().await;
        if let Ok(r) = &recovered {
            for id in &r.interrupted {
                println!("(recovered: {id} was interrupted by a restart)");
            }
        }
        let saved = save(&world_path, world.as_deref());
        let reply = engine.handle(&args.identity, &conversation, &text).await;
        recovered
            .map(|_| ())
            .map_err(|e| e.to_string())
            .and(saved)
            .map(|()| reply)
    });
    let saved = save(&world_path, world.as_deref());
    match (reply, saved) {
        (Ok(reply), Ok(())) => {
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
                None => !reply.text.starts_with("refused"),
            };
            if ok {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        (Err(e), _) | (_, Err(e)) => fail(e),
    }
}

fn save(path: &Path, world: Option<&World>) -> Result<(), String> {
    world.map_or(Ok(()), |w| save_world(path, &w.snapshot()))
}

pub(super) fn load_world(path: &Path) -> Result<Option<WorldState>, String> {
    match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(|e| {
            format!(
                "{} is not a sandbox world ({e}); delete it to start afresh",
                path.display()
            )
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(format!("cannot read {}: {e}", path.display())),
    }
}

pub(super) fn save_world(path: &Path, state: &WorldState) -> Result<(), String> {
    let temp: PathBuf = path.with_extension("json.tmp");
    let bytes = serde_json::to_vec_pretty(state).map_err(|e| e.to_string())?;
    std::fs::write(&temp, bytes)
        .and_then(|()| std::fs::rename(&temp, path))
        .map_err(|e| format!("cannot write {}: {e}", path.display()))
}
