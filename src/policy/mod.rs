//! Who may do what, where, and with whose approval. Pure: the caller passes
//! the facts it gathered (locks, checks, what runs where) and the time.
//!
//! Deny by default: an identity that config does not name may only ask for
//! `help`, `status`, `envs` and `whoami`. Deny wins over everything except a
//! break-glass role overriding a freeze window, which the caller audits.

#[cfg(test)]
mod tests;

mod denial;

pub use denial::Denial;

use std::time::Duration;

use crate::command::{Command, GitRef};
use crate::config::{ApprovalRule, Config, Environment, Person};
use crate::names::RequestId;

/// A lock as policy sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockView {
    /// The person (or request) holding it.
    pub holder: String,
    /// The request that holds it, for deploy locks.
    pub request: Option<RequestId>,
    /// Why it is held.
    pub reason: String,
    /// Unix seconds when it was taken.
    pub since: i64,
}

/// What the caller knows about the world when it asks.
#[derive(Debug, Clone, Default)]
pub struct Facts {
    /// The lock on the target environment, if any.
    pub lock: Option<LockView>,
    /// Whether the commit's checks passed; `None` when not looked up.
    pub checks_passed: Option<bool>,
    /// Leave the CI rule out: the caller decides again once the checks are
    /// known (a cheap first pass before any outside call). When false, a
    /// required but unknown CI result denies.
    pub defer_checks: bool,
}

/// The approvals a request must collect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApprovalNeed {
    /// The rules, all required; never empty.
    pub rules: Vec<ApprovalRule>,
    /// Whether one person's approval counts for one rule only.
    pub one_rule_per_person: bool,
    /// Whether the requester may approve their own request.
    pub self_approval: bool,
    /// How long approvals are collected.
    pub expires: Duration,
}

/// The verdict.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Go ahead. `override_note` says when a break-glass role overrode a freeze.
    Allow {
        /// Set when a freeze was overridden; the caller must audit it.
        override_note: Option<String>,
    },
    /// Go ahead once these approvals are in.
    NeedsApproval {
        /// The approvals needed.
        need: ApprovalNeed,
        /// Set when a freeze was overridden; the caller must audit it.
        override_note: Option<String>,
    },
    /// No, and why.
    Deny(Denial),
}

/// Commands anyone may run, even an identity config does not know.
pub fn is_open(command: &Command) -> bool {
    matches!(
        command,
        Command::Help { .. } | Command::Status { .. } | Command::Envs | Command::Whoami
    )
}

/// Decides whether `person` may run `command` now (unix seconds).
pub fn decide(
    person: Option<&Person>,
    command: &Command,
    config: &Config,
    facts: &Facts,
    now: i64,
) -> Decision {
    if is_open(command) {
        return allow();
    }
    let Some(person) = person else {
        return Decision::Deny(Denial::UnknownPerson);
    };
    let admin = person.has_any_role(&config.admin_roles);
    match command {
        Command::Help { .. } | Command::Status { .. } | Command::Envs | Command::Whoami => allow(),
        Command::Approve { .. }
        | Command::Deny { .. }
        | Command::Cancel { .. }
        | Command::Complete { .. }
        | Command::RollbackRequest { .. }
        | Command::History { .. } => allow(),
        Command::Deploy { reference, env, .. } => match env_of(config, env.as_str()) {
            Ok(env) => deploy_like(person, env, config, facts, now, Some(reference), None),
            Err(deny) => deny,
        },
        Command::Promote { from, to, .. } => match env_of(config, to.as_str()) {
            Ok(env) => deploy_like(person, env, config, facts, now, None, Some(from.as_str())),
            Err(deny) => deny,
        },
        Command::Rollback { env, .. } => match env_of(config, env.as_str()) {
            Ok(env) => {
                // Restoring an earlier, once-approved digest needs no new
                // approvals and is allowed in a freeze; roles and locks still apply.
                may_request(person, env)
                    .or_else(|| locked(env, facts))
                    .unwrap_or_else(allow)
            }
            Err(deny) => deny,
        },
        Command::Build { .. } => {
            if person.roles.is_empty() {
                Decision::Deny(Denial::NoRole {
                    person: person.id.to_string(),
                })
            } else {
                allow()
            }
        }
        Command::Teardown { .. } => {
            let preview = config
                .envs()
                .iter()
                .find(|e| matches!(e.target, crate::config::Target::Preview { .. }));
            match preview {
                Some(env) => may_request(person, env).unwrap_or_else(allow),
                None => Decision::Deny(Denial::NoPreviewEnvironment),
            }
        }
        Command::Lock { env, .. } => match env_of(config, env.as_str()) {
            Ok(env) if admin => locked(env, facts).unwrap_or_else(allow),
            Ok(env) => may_request(person, env)
                .or_else(|| locked(env, facts))
                .unwrap_or_else(allow),
            Err(deny) => deny,
        },
        Command::Unlock { env } => match &facts.lock {
            None => Decision::Deny(Denial::NotLocked {
                env: env.to_string(),
            }),
            Some(lock) if admin || lock.holder == person.id.as_str() => allow(),
            Some(lock) => Decision::Deny(Denial::LockedByOther {
                env: env.to_string(),
                holder: lock.holder.clone(),
            }),
        },
    }
}

fn allow() -> Decision {
    Decision::Allow {
        override_note: None,
    }
}

fn env_of<'c>(config: &'c Config, name: &str) -> Result<&'c Environment, Decision> {
    config.env(name).ok_or_else(|| {
        Decision::Deny(Denial::UnknownEnvironment {
            name: name.to_owned(),
        })
    })
}

fn may_request(person: &Person, env: &Environment) -> Option<Decision> {
    if person.has_any_role(&env.requesters) {
        return None;
    }
    Some(Decision::Deny(Denial::NotRequester {
        person: person.id.to_string(),
        env: env.name.to_string(),
        roles: env
            .requesters
            .iter()
            .map(|r| r.as_str().to_owned())
            .collect(),
    }))
}

fn locked(env: &Environment, facts: &Facts) -> Option<Decision> {
    facts.lock.as_ref().map(|lock| {
        Decision::Deny(Denial::Locked {
            env: env.name.to_string(),
            holder: lock.holder.clone(),
            since: lock.since,
            reason: lock.reason.clone(),
        })
    })
}

fn deploy_like(
    person: &Person,
    env: &Environment,
    config: &Config,
    facts: &Facts,
    now: i64,
    reference: Option<&GitRef>,
    promoted_from: Option<&str>,
) -> Decision {
    if let Some(deny) = may_request(person, env) {
        return deny;
    }
    match (&env.promote_from, promoted_from, reference) {
        (Some(source), None, _) => {
            return Decision::Deny(Denial::PromotionsOnly {
                env: env.name.to_string(),
                source: source.to_string(),
            })
        }
        (Some(source), Some(from), _) if source.as_str() != from => {
            return Decision::Deny(Denial::WrongSource {
                env: env.name.to_string(),
                source: source.to_string(),
                from: from.to_owned(),
            })
        }
        (_, None, Some(reference)) => {
            if let Some(deny) = ref_allowed(env, reference) {
                return deny;
            }
        }
        _ => {}
    }
    if env.require_green_ci && !facts.defer_checks && facts.checks_passed != Some(true) {
        return Decision::Deny(Denial::ChecksNotPassed {
            env: env.name.to_string(),
        });
    }
    if let Some(deny) = locked(env, facts) {
        return deny;
    }
    let override_note = match check_freeze(Some(person), env, config, now) {
        Ok(note) => note,
        Err(frozen) => return Decision::Deny(frozen),
    };
    let approvals = &env.approvals;
    if approvals.rules.is_empty() {
        return Decision::Allow { override_note };
    }
    Decision::NeedsApproval {
        need: ApprovalNeed {
            rules: approvals.rules.clone(),
            one_rule_per_person: approvals.one_rule_per_person,
            self_approval: approvals.self_approval,
            expires: approvals.expires,
        },
        override_note,
    }
}

/// The freeze rule, the only one: whether a freeze window open at `now`
/// (unix seconds) stops `person` changing `env`. `Ok(None)` outside every
/// window; `Ok(Some(note))` when the person's break-glass role overrides
/// the open window, which the caller must audit; `Err` when the window
/// stops them (an unknown person has no role to break it with).
pub fn check_freeze(
    person: Option<&Person>,
    env: &Environment,
    config: &Config,
    now: i64,
) -> Result<Option<String>, Denial> {
    let Some(frozen) = env.frozen_at(now) else {
        return Ok(None);
    };
    match person {
        Some(person) if person.has_any_role(&config.break_glass_roles) => Ok(Some(format!(
            "{} overrode the freeze on {} ({}) with a break-glass role",
            person.id,
            env.name,
            frozen.window.reason()
        ))),
        _ => Err(Denial::Frozen {
            env: env.name.to_string(),
            reason: frozen.window.reason().to_string(),
            until: frozen.until_text(now),
        }),
    }
}

/// Checks a ref against the environment's branch patterns. A SHA or pull
/// request cannot be matched against branch names, so it is allowed only
/// where every branch is.
fn ref_allowed(env: &Environment, reference: &GitRef) -> Option<Decision> {
    if env.refs.is_empty() {
        return None;
    }
    let patterns: Vec<&str> = env.refs.iter().map(|p| p.as_str()).collect();
    match reference {
        GitRef::Name(name) if env.allows_ref(name) => None,
        GitRef::Name(name) => Some(Decision::Deny(Denial::RefNotAllowed {
            env: env.name.to_string(),
            patterns: patterns.iter().map(|p| (*p).to_owned()).collect(),
            name: name.to_string(),
        })),
        _ if patterns.contains(&"**") => None,
        other => Some(Decision::Deny(Denial::RefNotNamed {
            env: env.name.to_string(),
            patterns: patterns.iter().map(|p| (*p).to_owned()).collect(),
            shown: other.to_string(),
        })),
    }
}
