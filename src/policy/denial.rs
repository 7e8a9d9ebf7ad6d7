//! Why policy says no: a closed set of reasons, each with the sentence a
//! person reads. Callers branch on the variant, never on the words.

use std::time::Duration;

/// A policy denial's reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Denial {
    /// The identity is in no `[people]` entry.
    UnknownPerson,
    /// The person holds no role at all (builds need one).
    NoRole {
        /// Who.
        person: String,
    },
    /// `teardown` with no preview environment in config.
    NoPreviewEnvironment,
    /// `unlock` of an environment that is not locked.
    NotLocked {
        /// The environment.
        env: String,
    },
    /// `unlock` by someone who neither holds the lock nor is an admin.
    LockedByOther {
        /// The environment.
        env: String,
        /// Who holds it.
        holder: String,
    },
    /// An environment name config does not have.
    UnknownEnvironment {
        /// The name given.
        name: String,
    },
    /// The person may not request changes to the environment.
    NotRequester {
        /// Who.
        person: String,
        /// The environment.
        env: String,
        /// Roles that may.
        roles: Vec<String>,
    },
    /// The environment is locked.
    Locked {
        /// The environment.
        env: String,
        /// Who holds the lock.
        holder: String,
        /// Since when, unix seconds.
        since: i64,
        /// Why.
        reason: String,
    },
    /// The environment takes only promotions, and this is a deploy.
    PromotionsOnly {
        /// The environment.
        env: String,
        /// Where its promotions come from.
        source: String,
    },
    /// A promotion from the wrong environment.
    WrongSource {
        /// The environment.
        env: String,
        /// Where its promotions come from.
        source: String,
        /// Where this one came from.
        from: String,
    },
    /// The commit's checks have not passed.
    ChecksNotPassed {
        /// The environment.
        env: String,
    },
    /// A freeze window is on.
    Frozen {
        /// The environment.
        env: String,
        /// The window's reason.
        reason: String,
        /// When deploys open again, in the window's zone (`Mon 09:00
        /// Europe/Berlin`), or `no end in sight`.
        until: String,
    },
    /// The ref's name matches none of the environment's patterns.
    RefNotAllowed {
        /// The environment.
        env: String,
        /// Its patterns.
        patterns: Vec<String>,
        /// The ref given.
        name: String,
    },
    /// The environment takes named refs only, and this is a SHA or PR.
    RefNotNamed {
        /// The environment.
        env: String,
        /// Its patterns.
        patterns: Vec<String>,
        /// The ref as given.
        shown: String,
    },
}

impl std::fmt::Display for Denial {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Denial::UnknownPerson => f.write_str(
                "Gantry does not know you yet; ask an admin to add your identity (see `whoami`) to config",
            ),
            Denial::NoRole { person } => {
                write!(f, "{person} holds no role, so cannot start builds")
            }
            Denial::NoPreviewEnvironment => {
                f.write_str("no environment in config makes previews")
            }
            Denial::NotLocked { env } => write!(f, "{env} is not locked"),
            Denial::LockedByOther { env, holder } => write!(
                f,
                "{env} is locked by {holder}; only they or an admin can unlock it"
            ),
            Denial::UnknownEnvironment { name } => {
                write!(f, "there is no environment `{name}`")
            }
            Denial::NotRequester { person, env, roles } => write!(
                f,
                "{person} may not request changes to {env}; that needs one of: {}",
                roles.join(", ")
            ),
            Denial::Locked {
                env,
                holder,
                since,
                reason,
            } => write!(
                f,
                "{env} is locked by {holder} since {}: {reason}",
                humantime::format_rfc3339_seconds(
                    std::time::UNIX_EPOCH + Duration::from_secs(since.max(&0).unsigned_abs())
                )
            ),
            Denial::PromotionsOnly { env, source } => write!(
                f,
                "{env} takes only promotions from {source}: `promote from {source} to {env}`"
            ),
            Denial::WrongSource { env, source, from } => write!(
                f,
                "{env} takes promotions only from {source}, not from {from}"
            ),
            Denial::ChecksNotPassed { env } => write!(
                f,
                "{env} needs a commit whose checks have passed; they have not"
            ),
            Denial::Frozen { env, reason, until } => {
                write!(f, "{env} is frozen: {reason} (frozen until {until})")
            }
            Denial::RefNotAllowed {
                env,
                patterns,
                name,
            } => write!(
                f,
                "{env} takes only refs matching {}; `{name}` does not match",
                patterns.join(", ")
            ),
            Denial::RefNotNamed {
                env,
                patterns,
                shown,
            } => write!(
                f,
                "{env} takes only refs matching {}; name the branch or tag instead of `{shown}`",
                patterns.join(", ")
            ),
        }
    }
}
