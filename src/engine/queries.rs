//! Answers that change nothing but locks: `help`, `status`, `history`,
//! `envs`, `whoami`, `lock` and `unlock`.

use std::fmt::Write;

use serde_json::json;

use super::handle::Reply;
use super::progress::headline;
use super::record::env_lock_key;
use super::state::{Request, State};
use super::{Engine, EngineError};
use crate::command::{Command, CommandName};
use crate::config::{Person, Target};
use crate::names::{EnvName, Identity};
use crate::policy::{self, Decision, Facts, LockView};
use crate::store::LockRecord;

/// Entries `history` shows when no number is given.
const DEFAULT_HISTORY: usize = 10;

impl Engine {
    pub(super) fn help(&self, topic: Option<CommandName>) -> Reply {
        match topic {
            Some(name) => Reply::text(self.grammar.help_for(self.grammar.spec(name))),
            None => Reply::text(self.grammar.help_list()),
        }
    }

    pub(super) async fn status(&self, only: Option<&EnvName>) -> Result<Reply, EngineError> {
        let mut out = String::new();
        let requests: Vec<(u64, Request)> = self.store.requests()?;
        for env in self
            .config
            .envs()
            .iter()
            .filter(|e| only.is_none_or(|o| o == &e.name))
        {
            let _ = writeln!(out, "{}:", env.name);
            if let Target::Preview { .. } = env.target {
                // Previews come and go: show the ones that exist now.
                let context = env.cluster.kube_context();
                match self.ports.cluster.list_previews(&context).await {
                    Ok(previews) if previews.is_empty() => {
                        let _ = writeln!(out, "  no preview environments");
                    }
                    Ok(previews) => {
                        for p in previews {
                            let _ = writeln!(
                                out,
                                "  {} (expires at unix time {})",
                                p.name,
                                p.expires_at().unwrap_or_default()
                            );
                        }
                    }
                    Err(e) => {
                        let _ = writeln!(out, "  (cannot list previews: {e})");
                    }
                }
                continue;
            }
            for app in self.config.apps() {
                match self.last_good(app, env.name.as_str(), None) {
                    Some(r) => {
                        let sha = r.sha.as_ref().map_or("?", |s| s.short());
                        let digest = r.digest.as_ref().map_or("?", |d| d.short());
                        let _ = writeln!(
                            out,
                            "  {} runs {sha} ({digest}) since {}, by {}",
                            app.name, r.id, r.requester
                        );
                        if let Some(drift) = self.drift(app, env, &r).await {
                            let _ = writeln!(out, "  {drift}");
                        }
                    }
                    None => {
                        let _ = writeln!(out, "  {} has no deploy by Gantry yet", app.name);
                    }
                }
            }
            for lock in self.store.locks()?.iter().filter(|l| {
                l.key == env_lock_key(env.name.as_str())
                    || l.key.ends_with(&format!("/{}", env.name))
            }) {
                let _ = writeln!(out, "  locked by {}: {}", lock.holder, lock.reason);
            }
            for (_, r) in requests
                .iter()
                .filter(|(_, r)| !r.state.is_terminal() && r.env.as_ref() == Some(&env.name))
            {
                let _ = writeln!(out, "  open: {} — {}", headline(r), r.state.word());
            }
        }
        Ok(Reply::text(out.trim_end().to_owned()))
    }

    /// Compares what the cluster runs with Gantry's last deploy; says so
    /// when they differ or when the cluster cannot be read.
    async fn drift(
        &self,
        app: &crate::config::App,
        env: &crate::config::Environment,
        last: &Request,
    ) -> Option<String> {
        let crate::config::Target::Namespace(_) = env.target else {
            return None;
        };
        let digest = last.digest.as_ref()?;
        let workload = super::execute::workload(&self.config, app, env, last);
        match self.ports.cluster.current_images(&workload).await {
            Ok(images) => {
                let other: Vec<String> = images
                    .into_iter()
                    .filter(|(_, image)| !image.ends_with(&format!("@{digest}")))
                    .map(|(name, image)| format!("{name} runs {image}"))
                    .collect();
                (!other.is_empty()).then(|| {
                    format!(
                        "DRIFT: the cluster differs from Gantry's record: {}",
                        other.join("; ")
                    )
                })
            }
            Err(e) => Some(format!("(cannot read the cluster: {e})")),
        }
    }

    pub(super) fn history(&self, env: &EnvName, limit: Option<u32>) -> Result<Reply, EngineError> {
        let limit = limit.map_or(DEFAULT_HISTORY, |n| n as usize);
        let events = self.store.history(env.as_str(), limit)?;
        if events.is_empty() {
            return Ok(Reply::text(format!("nothing has happened in {env} yet")));
        }
        let mut out = format!("last {} events in {env}:\n", events.len());
        for e in events {
            let when = humantime::format_rfc3339_seconds(
                std::time::UNIX_EPOCH + std::time::Duration::from_millis(e.time.max(0) as u64),
            );
            let _ = writeln!(
                out,
                "  #{} {when} {} {} {}",
                e.seq, e.actor, e.action, e.subject
            );
        }
        Ok(Reply::text(out.trim_end().to_owned()))
    }

    pub(super) fn envs(&self) -> Reply {
        let mut out = String::from("environments:\n");
        for env in self.config.envs() {
            let place = match &env.target {
                Target::Namespace(ns) => format!("namespace {ns}"),
                Target::Preview { template, .. } => format!("previews in {}", template.as_str()),
            };
            let roles: Vec<&str> = env.requesters.iter().map(|r| r.as_str()).collect();
            let approvals = if env.approvals.count == 0 {
                "no approvals".to_owned()
            } else {
                let by: Vec<&str> = env.approvals.roles.iter().map(|r| r.as_str()).collect();
                format!("{} approval(s) from {}", env.approvals.count, by.join("/"))
            };
            let from = env
                .promote_from
                .as_ref()
                .map(|f| format!(", promotions from {f} only"))
                .unwrap_or_default();
            let frozen = env
                .freeze_at(self.now())
                .map(|w| format!(", FROZEN: {}", w.reason()))
                .unwrap_or_default();
            let _ = writeln!(
                out,
                "  {}: {place}; requested by {}; {approvals}{from}{frozen}",
                env.name,
                roles.join("/")
            );
        }
        Reply::text(out.trim_end().to_owned())
    }

    pub(super) fn whoami(&self, identity: &Identity, person: Option<&Person>) -> Reply {
        match person {
            Some(p) => {
                let roles: Vec<&str> = p.roles.iter().map(|r| r.as_str()).collect();
                Reply::text(format!("you are {identity}: {} ({}), roles: {}", p.id, p.name, roles.join(", ")))
            }
            None => Reply::text(format!(
                "you are {identity}, which config does not name; ask an admin to add it to a person in config"
            )),
        }
    }

    pub(super) fn lock(
        &self,
        person: &Person,
        command: &Command,
        env: &EnvName,
        reason: Option<&str>,
    ) -> Result<Reply, EngineError> {
        let key = env_lock_key(env.as_str());
        let facts = Facts {
            lock: self.store.lock(&key)?.map(view),
            checks_passed: None,
            defer_checks: false,
        };
        if let Decision::Deny(why) =
            policy::decide(Some(person), command, &self.config, &facts, self.now())
        {
            return Ok(Reply::refused(why));
        }
        let record = LockRecord {
            key,
            holder: person.id.to_string(),
            request: None,
            reason: reason.unwrap_or("locked by hand").to_owned(),
            since: self.now(),
        };
        Ok(match self.take_lock(&record, env.as_str())? {
            Ok(()) => Reply::text(format!(
                "{env} is locked by {}: {}",
                person.id, record.reason
            )),
            Err(holder) => Reply::refused(format!(
                "{env} is already locked by {}: {}",
                holder.holder, holder.reason
            )),
        })
    }

    pub(super) fn unlock(
        &self,
        person: &Person,
        command: &Command,
        env: &EnvName,
    ) -> Result<Reply, EngineError> {
        let key = env_lock_key(env.as_str());
        let (current, left_by) = match self.store.lock(&key)? {
            Some(lock) => (Some(lock), None),
            None => match self.left_behind(env)? {
                LeftBehind::Nothing => (None, None),
                LeftBehind::Running(id, state) => {
                    return Ok(Reply::refused(format!(
                        "{id} is {} in {env}; its lock goes when it ends (or `cancel {id}`)",
                        state.word()
                    )))
                }
                LeftBehind::Stale(lock, id) => (Some(lock), id),
            },
        };
        let facts = Facts {
            lock: current.clone().map(view),
            checks_passed: None,
            defer_checks: false,
        };
        if let Decision::Deny(why) =
            policy::decide(Some(person), command, &self.config, &facts, self.now())
        {
            return Ok(Reply::refused(why));
        }
        let Some(current) = current else {
            return Ok(Reply::text(format!("{env} is not locked")));
        };
        if !self.store.unlock(&current.key, &current)? {
            return Ok(Reply::text(format!(
                "{env}'s lock changed meanwhile; look again with `status {env}`"
            )));
        }
        self.audit(
            person.id.as_str(),
            "lock.released",
            &current.key,
            Some(env.as_str()),
            json!({
                "held_by": current.holder,
                "reason": current.reason,
                "left_by": left_by.map(|id| id.to_string()),
            }),
        )?;
        Ok(Reply::text(match left_by {
            Some(id) => format!(
                "{env} is unlocked: released the lock {id} kept when it was interrupted \
                 (it was held by {}). {id} may have left the cluster half-changed: \
                 `status {env}` shows what runs",
                current.holder
            ),
            None => format!(
                "{env} is unlocked (it was locked by {}: {})",
                current.holder, current.reason
            ),
        }))
    }

    /// A deploy lock in `env` whose request no longer runs: it was
    /// interrupted by a restart (and keeps the lock until a person has
    /// looked at the cluster), or it ended without releasing it.
    fn left_behind(&self, env: &EnvName) -> Result<LeftBehind, EngineError> {
        for app in self.config.apps() {
            let Some(lock) = self.store.lock(&format!("{}/{}", app.name, env))? else {
                continue;
            };
            let request = match lock.request {
                Some(id) => self.store.get_request::<Request>(id)?,
                None => None,
            };
            return Ok(match request {
                Some(r) if !r.state.is_terminal() => LeftBehind::Running(r.id, r.state),
                Some(r) => LeftBehind::Stale(lock, Some(r.id)),
                None => LeftBehind::Stale(lock, None),
            });
        }
        Ok(LeftBehind::Nothing)
    }
}

/// What holds an environment when no one locked it by hand.
enum LeftBehind {
    /// Nothing.
    Nothing,
    /// A request that is still running.
    Running(crate::names::RequestId, State),
    /// A lock whose request ended (or is unknown), and that request.
    Stale(LockRecord, Option<crate::names::RequestId>),
}

fn view(lock: LockRecord) -> LockView {
    LockView {
        holder: lock.holder,
        request: lock.request.map(crate::names::RequestId),
        reason: lock.reason,
        since: lock.since,
    }
}
