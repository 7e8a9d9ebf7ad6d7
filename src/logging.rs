//! Where the server's logs go: standard error, as readable lines or as
//! JSON (one object per line, for a log pipeline). Spans carry the request
//! id, actor and environment; fields are structured, never formatted into
//! the message.

/// How log lines look.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// `2026-12-02T05:00:00Z  INFO discord gateway ready`.
    Text,
    /// One JSON object per line.
    Json,
}

/// Installs the subscriber once; later calls (tests, a second command in
/// one process) keep the first.
pub fn init(format: LogFormat) {
    let builder = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_max_level(tracing::Level::INFO)
        .with_target(false);
    let _ = match format {
        LogFormat::Text => builder.with_ansi(false).try_init(),
        LogFormat::Json => builder.json().with_current_span(true).try_init(),
    };
}
