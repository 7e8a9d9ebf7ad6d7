//! Configuration: `config/gantry.toml` loaded, checked once, and exposed as
//! types in which every environment, app, role and person exists.
//!
//! Loading is strict: unknown keys are errors, and every error names the
//! file, the line and the dotted key, e.g.
//! `config/gantry.toml:57: environments.prod.approvals.count: …`.
//!
//! With several apps and no `default_app`, commands must name the app.

mod check;
mod freeze;
mod glob;
mod locate;
mod model;
mod platform;
mod probe_template;
mod raw;
mod secret;
mod summary;
mod template;
#[cfg(test)]
mod tests;

use std::io::Read;
use std::path::{Path, PathBuf};

pub use freeze::{
    frozen_at, upcoming, FreezeError, FreezeSchedule, FreezeWindow, Frozen, Occurrence, Upcoming,
    Weekday, Zone, ZoneError,
};
pub use glob::{PatternError, RefPattern};
pub use model::{
    App, ApprovalRule, Approvals, Cluster, Comparison, Config, Discord, Environment, Github,
    GithubAuth, Gitops, GitopsFormat, GitopsSource, Person, Platforms, ProbeSpec, Prometheus,
    Registry, RepoName, Slack, StartLimit, Strategy, Target, Verify, VerifyCheck,
};
pub use probe_template::{
    check_probe_template, fill_probe_template, TemplateSyntax, PROBE_PLACEHOLDERS,
};
pub use secret::{Secret, SecretError, SecretRef};
pub use template::{
    is_dns_label, is_dns_subdomain, NamespaceTemplate, RenderError, TagTemplate, TemplateError,
};

use crate::names::escape_for_display;

/// Largest config file accepted (1 MiB).
pub const MAX_CONFIG_BYTES: u64 = 1024 * 1024;

/// Why the config could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("{}: cannot read config: {source}", path.display())]
    Io {
        /// The path that was read.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The file is not valid: syntax, an unknown key, or a rule it breaks.
    #[error("{file}:{line}: {}{message}", key_prefix(key))]
    Invalid {
        /// The file, as given to [`load`] or [`parse`].
        file: String,
        /// 1-based line of the key (or of its table's header if absent).
        line: usize,
        /// Dotted key path such as `environments.prod.approvals.count`; empty for the whole file.
        key: String,
        /// What is wrong.
        message: String,
    },
}

fn key_prefix(key: &str) -> String {
    if key.is_empty() {
        String::new()
    } else {
        format!("{key}: ")
    }
}

impl ConfigError {
    /// The file the error is about.
    pub fn file(&self) -> String {
        match self {
            ConfigError::Io { path, .. } => path.display().to_string(),
            ConfigError::Invalid { file, .. } => file.clone(),
        }
    }

    /// The 1-based line, for errors in the content.
    pub fn line(&self) -> Option<usize> {
        match self {
            ConfigError::Io { .. } => None,
            ConfigError::Invalid { line, .. } => Some(*line),
        }
    }

    /// The dotted key, for errors in the content.
    pub fn key(&self) -> Option<&str> {
        match self {
            ConfigError::Io { .. } => None,
            ConfigError::Invalid { key, .. } => Some(key),
        }
    }

    /// What is wrong, without the location.
    pub fn message(&self) -> String {
        match self {
            ConfigError::Io { source, .. } => format!("cannot read config: {source}"),
            ConfigError::Invalid { message, .. } => message.clone(),
        }
    }
}

/// Reads and checks the config file at `path`.
pub fn load(path: &Path) -> Result<Config, ConfigError> {
    let origin = path.display().to_string();
    let io = |source| ConfigError::Io {
        path: path.to_owned(),
        source,
    };
    let file = std::fs::File::open(path).map_err(io)?;
    let mut bytes = Vec::new();
    file.take(MAX_CONFIG_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(io)?;
    if bytes.len() as u64 > MAX_CONFIG_BYTES {
        return Err(invalid(
            &origin,
            1,
            "",
            format!("the file is larger than {MAX_CONFIG_BYTES} bytes"),
        ));
    }
    match String::from_utf8(bytes) {
        Ok(text) => parse(&text, &origin),
        Err(e) => {
            let valid = e.utf8_error().valid_up_to();
            let line = 1 + e.as_bytes()[..valid]
                .iter()
                .filter(|b| **b == b'\n')
                .count();
            Err(invalid(
                &origin,
                line,
                "",
                "the file is not valid UTF-8".to_owned(),
            ))
        }
    }
}

/// Checks config text; `origin` names it in messages (usually the file name).
pub fn parse(text: &str, origin: &str) -> Result<Config, ConfigError> {
    let (locator, syntax) = locate::Locator::new(text);
    if let Some((offset, message)) = syntax {
        let offset = offset.unwrap_or(0);
        let key = locator.key_near(offset);
        return Err(invalid(
            origin,
            locator.line_at(offset),
            &key,
            escape_for_display(&message),
        ));
    }
    let raw: raw::RawConfig = toml::from_str(text).map_err(|e| {
        let offset = e.span().map_or(0, |s| s.start);
        let mut path = locator.path_at(offset);
        // serde reports a missing field at its table; name the field itself.
        if let Some(field) = e
            .message()
            .strip_prefix("missing field `")
            .and_then(|m| m.strip_suffix('`'))
        {
            path = path.key(field);
        }
        invalid(
            origin,
            locator.line_at(offset),
            &path.to_string(),
            escape_for_display(e.message()),
        )
    })?;
    let version = format!("{:016x}", fnv1a64(text.as_bytes()));
    check::check(raw, &locator, origin, version)
}

fn invalid(file: &str, line: usize, key: &str, message: String) -> ConfigError {
    ConfigError::Invalid {
        file: file.to_owned(),
        line,
        key: key.to_owned(),
        message,
    }
}

/// FNV-1a, 64 bit: a stable fingerprint, not a security boundary.
pub(crate) fn fnv1a64(bytes: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        hash ^= u64::from(*b);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash
}
