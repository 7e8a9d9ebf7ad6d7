//! The closed command grammar: text in, typed [`Command`] out.
//!
//! Pure: no I/O, no clock. The grammar is data (`commands/*.toml`, compiled
//! into the binary); the names of environments and apps come from config as
//! a [`Vocabulary`]. Anything the grammar does not declare is an error that
//! names the problem, its column and the closest command's usage.

mod comment;
mod error;
mod gitref;
mod grammar;
mod help;
mod nearest;
mod parse;
mod pattern;
mod tokenize;

#[cfg(test)]
mod tests;

use std::fmt;
use std::str::FromStr;

use serde::Serialize;

pub use comment::{extract_command, CommentCommand};
pub use error::ParseError;
pub use gitref::{check_ref_name, BranchName, GitRef, RefError, MAX_REF_LEN};
pub use grammar::{CommandSpec, Example, Grammar, GrammarError, Reject, BUILTIN_SOURCES};
pub use pattern::{Pattern, PatternError, SlotKind};

use crate::names::{AppName, EnvName, RequestId};

/// Longest command text accepted, in bytes, checked before anything else.
pub const MAX_COMMAND_LEN: usize = 512;

/// The names that `{env}` and `{app}` placeholders accept, from config.
#[derive(Debug, Clone, Default)]
pub struct Vocabulary {
    envs: Vec<EnvName>,
    apps: Vec<AppName>,
}

impl Vocabulary {
    /// Builds a vocabulary from configured names.
    pub fn new(
        envs: impl IntoIterator<Item = EnvName>,
        apps: impl IntoIterator<Item = AppName>,
    ) -> Vocabulary {
        let mut envs: Vec<EnvName> = envs.into_iter().collect();
        let mut apps: Vec<AppName> = apps.into_iter().collect();
        envs.sort();
        apps.sort();
        Vocabulary { envs, apps }
    }

    /// The environment named exactly `text`, if configured.
    pub fn env(&self, text: &str) -> Option<&EnvName> {
        self.envs.iter().find(|e| e.as_str() == text)
    }

    /// The app named exactly `text`, if configured.
    pub fn app(&self, text: &str) -> Option<&AppName> {
        self.apps.iter().find(|a| a.as_str() == text)
    }

    /// Every configured environment name, sorted.
    pub fn envs(&self) -> &[EnvName] {
        &self.envs
    }

    /// Every configured app name, sorted.
    pub fn apps(&self) -> &[AppName] {
        &self.apps
    }
}

/// Every command Gantry understands. Each has one file in `commands/`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CommandName {
    /// Deploy a ref to an environment.
    Deploy,
    /// Deploy what runs in one environment to the next.
    Promote,
    /// Put back the previous good deploy.
    Rollback,
    /// Build the image for a ref.
    Build,
    /// Approve a request.
    Approve,
    /// Deny a request.
    Deny,
    /// Cancel one's own request.
    Cancel,
    /// End a release's verification early; it goes ahead, not verified.
    Complete,
    /// Lock an environment by hand.
    Lock,
    /// Release a lock.
    Unlock,
    /// Show what runs where.
    Status,
    /// Show an environment's past.
    History,
    /// List environments.
    Envs,
    /// Show who Gantry thinks you are.
    Whoami,
    /// Tear down a preview environment.
    Teardown,
    /// Show help.
    Help,
}

impl CommandName {
    /// Every command, in help order.
    pub const ALL: [CommandName; 16] = [
        CommandName::Deploy,
        CommandName::Promote,
        CommandName::Rollback,
        CommandName::Build,
        CommandName::Approve,
        CommandName::Deny,
        CommandName::Cancel,
        CommandName::Complete,
        CommandName::Lock,
        CommandName::Unlock,
        CommandName::Status,
        CommandName::History,
        CommandName::Envs,
        CommandName::Whoami,
        CommandName::Teardown,
        CommandName::Help,
    ];

    /// The command's word.
    pub fn as_str(self) -> &'static str {
        match self {
            CommandName::Deploy => "deploy",
            CommandName::Promote => "promote",
            CommandName::Rollback => "rollback",
            CommandName::Build => "build",
            CommandName::Approve => "approve",
            CommandName::Deny => "deny",
            CommandName::Cancel => "cancel",
            CommandName::Complete => "complete",
            CommandName::Lock => "lock",
            CommandName::Unlock => "unlock",
            CommandName::Status => "status",
            CommandName::History => "history",
            CommandName::Envs => "envs",
            CommandName::Whoami => "whoami",
            CommandName::Teardown => "teardown",
            CommandName::Help => "help",
        }
    }
}

impl fmt::Display for CommandName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for CommandName {
    type Err = ();
    fn from_str(text: &str) -> Result<Self, ()> {
        CommandName::ALL
            .into_iter()
            .find(|c| c.as_str() == text)
            .ok_or(())
    }
}

/// Whether a command's slot must be filled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SlotNeed {
    /// Every pattern fills it.
    Required,
    /// Patterns may leave it out.
    Optional,
    /// Required, except in pull request patterns where it means the head.
    PullRequestHead,
}

/// One way a pattern may fill a command's slots: (slot name, kind, need).
pub type SlotShape = &'static [(&'static str, SlotKind, SlotNeed)];

/// The shapes each command's patterns take: every pattern alternative
/// fills the slots of one of them. Most commands have one shape; `rollback`
/// names either an environment or a verifying request.
pub fn slot_rules(name: CommandName) -> &'static [SlotShape] {
    use SlotKind as K;
    use SlotNeed::*;
    match name {
        CommandName::Deploy => &[&[
            ("ref", K::Ref, PullRequestHead),
            ("app", K::App, Optional),
            ("env", K::Env, Required),
        ]],
        CommandName::Promote => &[&[
            ("app", K::App, Optional),
            ("from", K::Env, Required),
            ("to", K::Env, Required),
        ]],
        CommandName::Rollback => &[
            &[
                ("app", K::App, Optional),
                ("env", K::Env, Required),
                ("target", K::Target, Optional),
            ],
            &[("id", K::Id, Required)],
        ],
        CommandName::Build => &[&[("ref", K::Ref, PullRequestHead), ("app", K::App, Optional)]],
        CommandName::Approve => &[&[("id", K::Id, Required), ("comment", K::Reason, Optional)]],
        CommandName::Cancel | CommandName::Complete => &[&[("id", K::Id, Required)]],
        CommandName::Deny => &[&[("id", K::Id, Required), ("reason", K::Reason, Optional)]],
        CommandName::Lock => &[&[("env", K::Env, Required), ("reason", K::Reason, Optional)]],
        CommandName::Unlock => &[&[("env", K::Env, Required)]],
        CommandName::Status => &[&[("env", K::Env, Optional)]],
        CommandName::History => &[&[("env", K::Env, Required), ("limit", K::N, Optional)]],
        CommandName::Envs | CommandName::Whoami => &[&[]],
        CommandName::Teardown => &[&[("branch", K::Branch, Required)]],
        CommandName::Help => &[&[("topic", K::Topic, Optional)]],
    }
}

/// The flags each command may declare.
pub fn flag_rules(name: CommandName) -> &'static [&'static str] {
    match name {
        CommandName::Deploy | CommandName::Promote | CommandName::Rollback => &["dry-run"],
        CommandName::Build
        | CommandName::Approve
        | CommandName::Deny
        | CommandName::Cancel
        | CommandName::Complete
        | CommandName::Lock
        | CommandName::Unlock
        | CommandName::Status
        | CommandName::History
        | CommandName::Envs
        | CommandName::Whoami
        | CommandName::Teardown
        | CommandName::Help => &[],
    }
}

/// What `rollback … to <target>` names.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum RollbackTarget {
    /// The deploy made by that request.
    Request(RequestId),
    /// The deploy of that commit (7 to 40 hex digits).
    Sha(String),
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// A parsed command. Serialized, it is what `gantry parse --json` prints.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "command", rename_all = "snake_case")]
pub enum Command {
    /// `deploy <ref> [of <app>] to <env> [--dry-run]`
    Deploy {
        /// What to deploy.
        #[serde(flatten)]
        reference: GitRef,
        /// Which app; the default app when absent.
        #[serde(skip_serializing_if = "Option::is_none")]
        app: Option<AppName>,
        /// Where to.
        env: EnvName,
        /// Check everything, change nothing.
        #[serde(skip_serializing_if = "is_false")]
        dry_run: bool,
    },
    /// `promote [<app>] from <env> to <env> [--dry-run]`
    Promote {
        /// Which app; the default app when absent.
        #[serde(skip_serializing_if = "Option::is_none")]
        app: Option<AppName>,
        /// The environment whose running digest is promoted.
        from: EnvName,
        /// The environment it goes to.
        to: EnvName,
        /// Check everything, change nothing.
        #[serde(skip_serializing_if = "is_false")]
        dry_run: bool,
    },
    /// `rollback [<app>] in <env> [to <request-id|sha>] [--dry-run]`
    Rollback {
        /// Which app; the default app when absent.
        #[serde(skip_serializing_if = "Option::is_none")]
        app: Option<AppName>,
        /// Where to roll back.
        env: EnvName,
        /// What to roll back to; the previous good deploy when absent.
        #[serde(skip_serializing_if = "Option::is_none")]
        target: Option<RollbackTarget>,
        /// Check everything, change nothing.
        #[serde(skip_serializing_if = "is_false")]
        dry_run: bool,
    },
    /// `rollback <request-id>`: stop a verifying request and put back the
    /// last verified release. Serialized as `rollback`, with an `id`.
    #[serde(rename = "rollback")]
    RollbackRequest {
        /// The verifying request.
        id: RequestId,
    },
    /// `build <ref> [of <app>]`
    Build {
        /// What to build.
        #[serde(flatten)]
        reference: GitRef,
        /// Which app; the default app when absent.
        #[serde(skip_serializing_if = "Option::is_none")]
        app: Option<AppName>,
    },
    /// `approve <request-id> [<comment>]`
    Approve {
        /// The request approved.
        id: RequestId,
        /// What the approver says with it.
        #[serde(skip_serializing_if = "Option::is_none")]
        comment: Option<String>,
    },
    /// `deny <request-id> [<reason>]`
    Deny {
        /// The request denied.
        id: RequestId,
        /// Why.
        #[serde(skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
    /// `cancel <request-id>`
    Cancel {
        /// The request cancelled.
        id: RequestId,
    },
    /// `complete <request-id>`: end a verification early; the release goes ahead, not verified.
    Complete {
        /// The verifying request.
        id: RequestId,
    },
    /// `lock <env> [<reason>]`
    Lock {
        /// The environment locked.
        env: EnvName,
        /// Why.
        #[serde(skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
    /// `unlock <env>`
    Unlock {
        /// The environment unlocked.
        env: EnvName,
    },
    /// `status [<env>]`
    Status {
        /// One environment, or all when absent.
        #[serde(skip_serializing_if = "Option::is_none")]
        env: Option<EnvName>,
    },
    /// `history <env> [<n>]`
    History {
        /// Whose history.
        env: EnvName,
        /// How many entries; a default when absent.
        #[serde(skip_serializing_if = "Option::is_none")]
        limit: Option<u32>,
    },
    /// `envs`
    Envs,
    /// `whoami`
    Whoami,
    /// `teardown <branch>`
    Teardown {
        /// The branch whose preview goes.
        branch: BranchName,
    },
    /// `help [<command>]`
    Help {
        /// One command, or the list when absent.
        #[serde(skip_serializing_if = "Option::is_none")]
        topic: Option<CommandName>,
    },
}

impl Command {
    /// Which command this is.
    pub fn name(&self) -> CommandName {
        match self {
            Command::Deploy { .. } => CommandName::Deploy,
            Command::Promote { .. } => CommandName::Promote,
            Command::Rollback { .. } | Command::RollbackRequest { .. } => CommandName::Rollback,
            Command::Build { .. } => CommandName::Build,
            Command::Approve { .. } => CommandName::Approve,
            Command::Deny { .. } => CommandName::Deny,
            Command::Cancel { .. } => CommandName::Cancel,
            Command::Complete { .. } => CommandName::Complete,
            Command::Lock { .. } => CommandName::Lock,
            Command::Unlock { .. } => CommandName::Unlock,
            Command::Status { .. } => CommandName::Status,
            Command::History { .. } => CommandName::History,
            Command::Envs => CommandName::Envs,
            Command::Whoami => CommandName::Whoami,
            Command::Teardown { .. } => CommandName::Teardown,
            Command::Help { .. } => CommandName::Help,
        }
    }
}

/// Writes ` of <app>` style optional parts.
fn optional(
    f: &mut fmt::Formatter<'_>,
    before: &str,
    value: Option<&dyn fmt::Display>,
) -> fmt::Result {
    match value {
        Some(v) => write!(f, "{before}{v}"),
        None => Ok(()),
    }
}

/// Quotes a reason so that it reads back as one word, whatever it holds.
fn quoted(reason: &str) -> String {
    format!("\"{}\"", reason.replace(['"', '“', '”'], "'"))
}

/// The canonical text of a command: parsing it gives the command back.
impl fmt::Display for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let dry = |f: &mut fmt::Formatter<'_>, on: bool| {
            if on {
                f.write_str(" --dry-run")
            } else {
                Ok(())
            }
        };
        match self {
            Command::Deploy {
                reference,
                app,
                env,
                dry_run,
            } => {
                write!(f, "deploy {reference}")?;
                optional(f, " of ", app.as_ref().map(|a| a as &dyn fmt::Display))?;
                write!(f, " to {env}")?;
                dry(f, *dry_run)
            }
            Command::Promote {
                app,
                from,
                to,
                dry_run,
            } => {
                f.write_str("promote")?;
                optional(f, " ", app.as_ref().map(|a| a as &dyn fmt::Display))?;
                write!(f, " from {from} to {to}")?;
                dry(f, *dry_run)
            }
            Command::Rollback {
                app,
                env,
                target,
                dry_run,
            } => {
                f.write_str("rollback")?;
                optional(f, " ", app.as_ref().map(|a| a as &dyn fmt::Display))?;
                write!(f, " in {env}")?;
                match target {
                    Some(RollbackTarget::Request(id)) => write!(f, " to {id}")?,
                    Some(RollbackTarget::Sha(sha)) => write!(f, " to {sha}")?,
                    None => {}
                }
                dry(f, *dry_run)
            }
            Command::RollbackRequest { id } => write!(f, "rollback {id}"),
            Command::Build { reference, app } => {
                write!(f, "build {reference}")?;
                optional(f, " of ", app.as_ref().map(|a| a as &dyn fmt::Display))
            }
            Command::Approve { id, comment } => {
                write!(f, "approve {id}")?;
                optional(
                    f,
                    " ",
                    comment
                        .as_deref()
                        .map(quoted)
                        .as_ref()
                        .map(|r| r as &dyn fmt::Display),
                )
            }
            Command::Deny { id, reason } => {
                write!(f, "deny {id}")?;
                optional(
                    f,
                    " ",
                    reason
                        .as_deref()
                        .map(quoted)
                        .as_ref()
                        .map(|r| r as &dyn fmt::Display),
                )
            }
            Command::Cancel { id } => write!(f, "cancel {id}"),
            Command::Complete { id } => write!(f, "complete {id}"),
            Command::Lock { env, reason } => {
                write!(f, "lock {env}")?;
                optional(
                    f,
                    " ",
                    reason
                        .as_deref()
                        .map(quoted)
                        .as_ref()
                        .map(|r| r as &dyn fmt::Display),
                )
            }
            Command::Unlock { env } => write!(f, "unlock {env}"),
            Command::Status { env } => {
                f.write_str("status")?;
                optional(f, " ", env.as_ref().map(|e| e as &dyn fmt::Display))
            }
            Command::History { env, limit } => {
                write!(f, "history {env}")?;
                optional(f, " ", limit.as_ref().map(|n| n as &dyn fmt::Display))
            }
            Command::Envs => f.write_str("envs"),
            Command::Whoami => f.write_str("whoami"),
            Command::Teardown { branch } => write!(f, "teardown {branch}"),
            Command::Help { topic } => {
                f.write_str("help")?;
                optional(f, " ", topic.as_ref().map(|t| t as &dyn fmt::Display))
            }
        }
    }
}
