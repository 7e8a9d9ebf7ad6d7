//! `gantry serve`: the HTTP server with every inbound route.

use std::net::SocketAddr;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use super::{fail, grammar, sandbox, ConfigArg, DataArg};
use crate::engine::system_clock;
use crate::server::assemble::{assemble, require_secrets};
use crate::server::router;
use crate::store::Store;

/// File in the data directory naming the address `serve` listens on, for
/// `gantry chat` and scripts.
pub const SERVER_FILE: &str = "server.json";

/// Arguments of `gantry serve`.
#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    #[command(flatten)]
    config: ConfigArg,
    #[command(flatten)]
    data: DataArg,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8080", value_name = "ADDR")]
    listen: SocketAddr,
    /// Start the sandbox servers first (as `gantry sandbox up` does, in
    /// DIR/sandbox) and serve with the config it writes there, built from
    /// --config.
    #[arg(long)]
    sandbox: bool,
    /// Milliseconds per simulated rollout step in the sandbox.
    #[arg(long, default_value_t = 300, value_name = "MS")]
    tick_ms: u64,
    /// How log lines on standard error look: `text`, or `json` (one object
    /// per line, with the request's span fields) for a log pipeline.
    #[arg(
        long,
        value_enum,
        default_value = "text",
        env = "GANTRY_LOG_FORMAT",
        value_name = "FORMAT"
    )]
    log_format: crate::logging::LogFormat,
}

/// Starts the server and runs until SIGTERM or Ctrl-C.
pub fn run(args: &ServeArgs) -> ExitCode {
    crate::logging::init(args.log_format);
    let grammar = match grammar() {
        Ok(g) => Arc::new(g),
        Err(code) => return code,
    };
    let data = &args.data.data;
    // Without the sandbox, a broken config or a missing secret stops
    // Gantry before anything starts.
    let config = if args.sandbox {
        None
    } else {
        match crate::config::load(&args.config.config) {
            Ok(c) => match require_secrets(&c) {
                Ok(()) => Some(Arc::new(c)),
                Err(e) => return fail(e),
            },
            Err(e) => return fail(e),
        }
    };
    if let Err(e) = std::fs::create_dir_all(data) {
        return fail(format!("cannot create {}: {e}", data.display()));
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => return fail(format!("cannot start the runtime: {e}")),
    };
    // Accepted work runs apart from the acknowledgements, at a lower
    // priority: see `work`.
    let threads = std::thread::available_parallelism().map_or(2, usize::from);
    let work = match crate::work::start(threads) {
        Ok(work) => work,
        Err(e) => return fail(e),
    };
    let served = runtime.block_on(async {
        let (config, _servers) = match (config, work.handle()) {
            (Some(config), _) => (config, None),
            (None, Some(work)) => {
                // The sandbox's servers stand for systems elsewhere: they
                // run beside the work, not beside the acknowledgements.
                let (base, dir, tick) = (args.config.config.clone(), data.to_owned(), args.tick_ms);
                let servers = work
                    .spawn(async move { sandbox::start_in(&base, &dir, tick).await })
                    .await
                    .map_err(|e| format!("the sandbox did not start: {e}"))??;
                (servers.config.clone(), Some(servers))
            }
            (None, None) => return Err("the work runtime is not running".to_owned()),
        };
        let store = Store::open(data).map_err(|e| e.to_string())?;
        let gantry = assemble(config, grammar, store, system_clock()).await?;
        let recovered = gantry.engine.recover().await.map_err(|e| e.to_string())?;
        tracing::info!(
            waiting = recovered.resumed.len(),
            interrupted = recovered.interrupted.len(),
            expired = recovered.expired.len(),
            verifying = recovered.verifying.len(),
            "recovered"
        );
        for id in recovered.verifying {
            let engine = gantry.engine.clone();
            crate::work::spawn(async move {
                if let Err(e) = engine.resume_verifying(id).await {
                    tracing::error!(request = %id, error = %e, "resuming a verification failed");
                }
            });
        }
        let listener = tokio::net::TcpListener::bind(args.listen)
            .await
            .map_err(|e| format!("cannot listen on {}: {e}", args.listen))?;
        let address = listener.local_addr().map_err(|e| e.to_string())?;
        write_server_file(data, address)?;
        eprintln!("gantry listening on http://{address}");
        let sweeper = gantry.engine.clone();
        tokio::spawn(async move {
            // Preview namespaces whose TTL passed are deleted once a minute.
            let mut every = tokio::time::interval(Duration::from_secs(60));
            loop {
                every.tick().await;
                if let Ok(gone) = sweeper.sweep_previews().await {
                    for namespace in gone {
                        tracing::info!(%namespace, "preview expired and was deleted");
                    }
                }
            }
        });
        axum::serve(listener, router(gantry.state))
            .with_graceful_shutdown(shutdown())
            .await
            .map_err(|e| format!("server failed: {e}"))
    });
    match served {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(e),
    }
}

/// Records where the server listens, for `gantry chat --data DIR`.
fn write_server_file(data: &Path, address: SocketAddr) -> Result<(), String> {
    let path = data.join(SERVER_FILE);
    let text = serde_json::json!({ "url": format!("http://{address}") }).to_string();
    std::fs::write(&path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))
}

/// Waits for Ctrl-C or SIGTERM.
pub(super) async fn shutdown() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        if let Ok(mut signal) =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        {
            signal.recv().await;
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    tracing::info!("shutting down: finishing acknowledgements; requests in flight resume as interrupted on the next start");
}
