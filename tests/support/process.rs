//! The `gantry` binary as a user runs it: a sandbox started with `gantry
//! sandbox up` in its own process, and commands run against the config it
//! writes — the production code path, no `--sandbox` shortcut.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// The `gantry` binary, run from the repository root.
pub fn gantry() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_gantry"));
    command
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env_remove("GANTRY_CONFIG")
        .env_remove("GANTRY_DATA");
    command
}

/// Runs `gantry ARGS` to the end; fails the test when it panicked.
pub fn run(args: &[&str]) -> Output {
    let out = gantry().args(args).output().expect("gantry runs");
    no_panic(&out);
    out
}

/// Fails when the binary's stderr shows a panic.
pub fn no_panic(out: &Output) {
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("panicked"), "gantry panicked:\n{err}");
}

/// Starts `gantry serve --config CONFIG --data DATA` on a free port and
/// answers the process and its address; a panic on its stderr fails the
/// test, then or later.
pub fn serve(config: &str, data: &str) -> (Child, std::net::SocketAddr) {
    let mut child = gantry()
        .args([
            "serve",
            "--config",
            config,
            "--listen",
            "127.0.0.1:0",
            "--data",
            data,
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("gantry serve starts");
    let mut lines = BufReader::new(child.stderr.take().expect("stderr piped")).lines();
    let mut seen = Vec::new();
    let addr = loop {
        let line = lines
            .next()
            .unwrap_or_else(|| panic!("serve printed no address: {seen:#?}"))
            .expect("stderr readable");
        assert!(!line.contains("panicked"), "{line}");
        if let Some(url) = line.strip_prefix("gantry listening on http://") {
            break url.parse().expect("an address");
        }
        seen.push(line);
    };
    std::thread::spawn(move || {
        for line in lines.map_while(Result::ok) {
            assert!(!line.contains("panicked"), "gantry serve panicked: {line}");
        }
    });
    (child, addr)
}

/// A running `gantry sandbox up`, stopped when dropped.
pub struct SandboxProcess {
    child: Child,
    /// The data directory given to it.
    pub data: PathBuf,
    /// The config it wrote, `DATA/sandbox/gantry.toml`.
    pub config: PathBuf,
}

impl SandboxProcess {
    /// Starts the sandbox for the shipped config in `data`, with `tick_ms`
    /// per simulated step, and waits until it says it is up.
    pub fn start(data: &Path, tick_ms: u64) -> SandboxProcess {
        SandboxProcess::start_for("config/gantry.toml", data, tick_ms)
    }

    /// The same for another base config.
    pub fn start_for(base: &str, data: &Path, tick_ms: u64) -> SandboxProcess {
        let mut child = gantry()
            .args(["sandbox", "up", "--config", base, "--data"])
            .arg(data)
            .args(["--tick-ms", &tick_ms.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("gantry sandbox up starts");
        let stderr = child.stderr.take().expect("stderr piped");
        let (lines, seen) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if lines.send(line).is_err() {
                    break;
                }
            }
        });
        let mut log = Vec::new();
        loop {
            match seen.recv_timeout(Duration::from_secs(60)) {
                Ok(line) if line.starts_with("sandbox: up") => break,
                Ok(line) => log.push(line),
                Err(_) => panic!("the sandbox did not come up:\n{}", log.join("\n")),
            }
        }
        SandboxProcess {
            child,
            data: data.to_owned(),
            config: data.join("sandbox/gantry.toml"),
        }
    }

    /// The written config's path, as text.
    pub fn config(&self) -> &str {
        self.config.to_str().expect("a UTF-8 path")
    }
}

impl Drop for SandboxProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
