//! A real Prometheus (Debian's `prometheus` binary) scraping the sandbox's
//! apps every second, so that metric checks query what a production
//! Prometheus would answer.
//!
//! It runs with a generated `prometheus.yml` and its TSDB under the sandbox
//! directory, on a free port of 127.0.0.1, without a shell. A keeper thread
//! owns the process: dropping [`SandboxPrometheus`] kills it and waits for
//! it, and on Linux the process is also killed when the keeper thread dies
//! (the parent-death signal), so it never outlives the sandbox.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The job name the apps are scraped under.
pub const JOB: &str = "sandbox-apps";
/// How long Prometheus may take to answer ready and scrape once.
const READY_WITHIN: Duration = Duration::from_secs(60);
/// Ports tried before giving up (another process may take a free port
/// between our look and Prometheus's bind).
const ATTEMPTS: usize = 3;

/// The `prometheus` binary on `PATH`, if there is one.
pub fn find() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join("prometheus"))
        .find(|candidate| is_executable(candidate))
}

fn is_executable(path: &Path) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        path.metadata()
            .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    }
    #[cfg(not(unix))]
    {
        path.is_file()
    }
}

/// The `prometheus.yml` that scrapes `target` every second.
pub fn config_text(target: SocketAddr) -> String {
    format!(
        "# Written by the Gantry sandbox: the sandbox's apps, scraped every second.\n\
         global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\n\
         scrape_configs:\n  - job_name: {JOB}\n    static_configs:\n      - targets: ['{target}']\n"
    )
}

/// A running sandbox Prometheus; dropping it stops the process.
pub struct SandboxPrometheus {
    url: String,
    stop: Option<std::sync::mpsc::Sender<()>>,
    keeper: Option<std::thread::JoinHandle<()>>,
    exited: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl Drop for SandboxPrometheus {
    fn drop(&mut self) {
        // Closing the channel tells the keeper to kill and reap the process.
        self.stop.take();
        if let Some(keeper) = self.keeper.take() {
            let _ = keeper.join();
        }
    }
}

impl SandboxPrometheus {
    /// Starts `binary` in `dir/prometheus` scraping `target` and returns
    /// once it answers ready and has scraped the target once.
    pub async fn start(
        binary: &Path,
        dir: &Path,
        target: SocketAddr,
    ) -> Result<SandboxPrometheus, String> {
        let home = dir.join("prometheus");
        // A fresh TSDB at each start, like every other sandbox server's state.
        let data = home.join("data");
        if data.exists() {
            std::fs::remove_dir_all(&data)
                .map_err(|e| format!("cannot clear {}: {e}", data.display()))?;
        }
        std::fs::create_dir_all(&data)
            .map_err(|e| format!("cannot create {}: {e}", data.display()))?;
        let config = home.join("prometheus.yml");
        std::fs::write(&config, config_text(target))
            .map_err(|e| format!("cannot write {}: {e}", config.display()))?;
        let log = home.join("prometheus.log");
        let mut last = String::new();
        for _ in 0..ATTEMPTS {
            let port = free_port()?;
            let args = vec![
                format!("--config.file={}", config.display()),
                format!("--storage.tsdb.path={}", data.display()),
                format!("--web.listen-address=127.0.0.1:{port}"),
                "--storage.tsdb.retention.time=1d".to_owned(),
            ];
            let url = format!("http://127.0.0.1:{port}/");
            // A failed attempt is dropped, which stops its process.
            let running = spawn(binary, &args, &log, url)?;
            match ready(&running).await {
                Ok(()) => return Ok(running),
                Err(e) => last = e,
            }
        }
        Err(format!(
            "the sandbox Prometheus did not come up: {last} (its log: {})",
            log.display()
        ))
    }

    /// Its base URL, `http://127.0.0.1:<port>/`.
    pub fn url(&self) -> &str {
        &self.url
    }

    fn has_exited(&self) -> bool {
        self.exited.load(std::sync::atomic::Ordering::SeqCst)
    }
}

/// Spawns the process from a keeper thread that lives as long as it does.
fn spawn(
    binary: &Path,
    args: &[String],
    log: &Path,
    url: String,
) -> Result<SandboxPrometheus, String> {
    let out =
        std::fs::File::create(log).map_err(|e| format!("cannot write {}: {e}", log.display()))?;
    let err = out
        .try_clone()
        .map_err(|e| format!("cannot write {}: {e}", log.display()))?;
    let mut command = Command::new(binary);
    command
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::from(out))
        .stderr(Stdio::from(err));
    die_with_parent(&mut command);
    let (stop, stopped) = std::sync::mpsc::channel::<()>();
    let (started, spawned) = std::sync::mpsc::channel::<Result<(), String>>();
    let exited = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flag = exited.clone();
    let keeper = std::thread::Builder::new()
        .name("sandbox-prometheus".into())
        .spawn(move || {
            let mut child: Child = match command.spawn() {
                Ok(child) => child,
                Err(e) => {
                    let _ = started.send(Err(e.to_string()));
                    return;
                }
            };
            let _ = started.send(Ok(()));
            // Wakes to notice an early exit; ends when the channel closes.
            while let Err(std::sync::mpsc::RecvTimeoutError::Timeout) =
                stopped.recv_timeout(Duration::from_millis(100))
            {
                if matches!(child.try_wait(), Ok(Some(_))) {
                    flag.store(true, std::sync::atomic::Ordering::SeqCst);
                }
            }
            let _ = child.kill();
            let _ = child.wait();
        })
        .map_err(|e| format!("cannot start a thread for Prometheus: {e}"))?;
    match spawned.recv() {
        Ok(Ok(())) => Ok(SandboxPrometheus {
            url,
            stop: Some(stop),
            keeper: Some(keeper),
            exited,
        }),
        Ok(Err(e)) => Err(format!("cannot run {}: {e}", binary.display())),
        Err(_) => Err(format!("cannot run {}", binary.display())),
    }
}

/// On Linux the kernel kills the process when the keeper thread dies, so
/// a sandbox that is killed outright leaves no Prometheus behind.
#[cfg(target_os = "linux")]
fn die_with_parent(command: &mut Command) {
    use std::os::unix::process::CommandExt;
    // SAFETY: the closure runs in the child between fork and exec and
    // only calls prctl, which is async-signal-safe and touches no memory.
    unsafe {
        command.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

#[cfg(not(target_os = "linux"))]
fn die_with_parent(_command: &mut Command) {}

fn free_port() -> Result<u16, String> {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| format!("cannot find a free port: {e}"))
}

/// Waits (bounded) for `/-/ready` to answer 200 and for the apps to have
/// been scraped twice, so that the first `rate()` a check asks for has data.
async fn ready(running: &SandboxPrometheus) -> Result<(), String> {
    let url = running.url();
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(2))
        .build()
        .map_err(|e| e.to_string())?;
    let deadline = Instant::now() + READY_WITHIN;
    let scrapes = format!("count_over_time(up{{job=\"{JOB}\"}}[1m])");
    let query = reqwest::Url::parse_with_params(
        &format!("{url}api/v1/query"),
        [("query", scrapes.as_str())],
    )
    .map_err(|e| e.to_string())?;
    let mut seen = "no answer".to_owned();
    while Instant::now() < deadline {
        if running.has_exited() {
            return Err("it exited".to_owned());
        }
        match http.get(format!("{url}-/ready")).send().await {
            Ok(answer) if answer.status().is_success() => {
                if scraped(&http, query.clone()).await >= 2.0 {
                    return Ok(());
                }
                seen = "ready, the apps not scraped twice yet".to_owned();
            }
            Ok(answer) => seen = format!("/-/ready answered {}", answer.status()),
            Err(e) => seen = e.to_string(),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Err(format!("not ready within {READY_WITHIN:?}: {seen}"))
}

/// The value of an instant query's first sample; 0 without one.
async fn scraped(http: &reqwest::Client, query: reqwest::Url) -> f64 {
    let Ok(answer) = http.get(query).send().await else {
        return 0.0;
    };
    let Ok(body) = answer.json::<serde_json::Value>().await else {
        return 0.0;
    };
    body["data"]["result"][0]["value"][1]
        .as_str()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}
#[cfg(test)]
mod tests {
    #[test]
    fn the_config_scrapes_the_apps_every_second() {
        let text = super::config_text("127.0.0.1:4321".parse().unwrap());
        assert!(
            text.contains("  scrape_interval: 1s\n  scrape_timeout: 1s\n"),
            "{text}"
        );
        assert!(text.contains("- job_name: sandbox-apps\n"), "{text}");
        assert!(text.contains("- targets: ['127.0.0.1:4321']\n"), "{text}");
    }
}
