//! The real servers Debian ships that tests start (docker-registry,
//! htpasswd, prometheus): found on the machine, or, when missing, a test
//! failure under `CI=true` saying what to install and a printed skip
//! elsewhere.

use std::path::PathBuf;

/// `name` in `/usr/bin`, `/usr/sbin` or on `PATH`.
pub fn find(name: &str) -> Option<PathBuf> {
    let on_path = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .unwrap_or_default();
    [PathBuf::from("/usr/bin"), PathBuf::from("/usr/sbin")]
        .into_iter()
        .chain(on_path)
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}

/// `name`, or: fails under CI, else prints why the test is skipped.
pub fn require(name: &str, install: &str) -> Option<PathBuf> {
    find(name).or_else(|| {
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!("{name} is not installed: {install}");
        }
        eprintln!("skipping: {name} is not installed; {install}");
        None
    })
}

/// A port free on 127.0.0.1 right now (another process may take it first).
pub fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
    listener.local_addr().expect("local addr").port()
}
