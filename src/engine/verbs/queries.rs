//! Answers that change nothing: `help`, `status`, `history`, `envs` and
//! `whoami`.

use std::fmt::Write;

use crate::command::CommandName;
use crate::config::{upcoming, Person, Target};
use crate::engine::locks::env_lock_key;
use crate::engine::place::workload;
use crate::engine::progress::headline;
use crate::engine::reply::Reply;
use crate::engine::state::Request;
use crate::engine::{Engine, EngineError};
use crate::names::{EnvName, Identity};

/// Entries `history` shows when no number is given.
const DEFAULT_HISTORY: usize = 10;

/// How far ahead `envs` lists freeze windows: seven days, in seconds.
const FREEZE_HORIZON: i64 = 7 * 86_400;

/// Freeze windows `envs` lists per environment before it counts the rest.
const FREEZES_SHOWN: usize = 5;

impl Engine {
    /// `help [<command>]`: the command list, or one command's usage.
    pub(in crate::engine) fn help(&self, topic: Option<CommandName>) -> Reply {
        match topic {
            Some(name) => Reply::text(self.grammar.help_for(self.grammar.spec(name))),
            None => Reply::text(self.grammar.help_list()),
        }
    }

    /// `status [<env>]`: what runs where, drift from Gantry's record, locks
    /// and open requests.
    pub(in crate::engine) async fn status(
        &self,
        only: Option<&EnvName>,
    ) -> Result<Reply, EngineError> {
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
                            "  {} runs {sha} ({digest}) since {}, by {}{}",
                            app.name,
                            r.id,
                            r.requester,
                            self.verified_words(app, env, &r)
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

    /// How a release in `env` stands with its verification, for `status`:
    /// nothing where the environment verifies nothing.
    fn verified_words(
        &self,
        app: &crate::config::App,
        env: &crate::config::Environment,
        release: &Request,
    ) -> String {
        if env.verify.is_none() {
            return String::new();
        }
        if release.is_verified() {
            return ", verified".to_owned();
        }
        let last = self
            .deploys(app, env.name.as_str())
            .into_iter()
            .find(|r| r.is_verified());
        match last {
            Some(v) => format!(
                ", not verified (last verified: {}, {})",
                v.id,
                v.digest.as_ref().map_or("?", |d| d.short())
            ),
            None => ", not verified (no verified release yet)".to_owned(),
        }
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
        let workload = workload(&self.config, app, env, last);
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

    /// `history <env> [<n>]`: the last audit events in an environment.
    pub(in crate::engine) fn history(
        &self,
        env: &EnvName,
        limit: Option<u32>,
    ) -> Result<Reply, EngineError> {
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

    /// `envs`: each environment, who may request it, its approvals, an
    /// open freeze window and until when, and the freeze windows of the
    /// next [`FREEZE_HORIZON`] seconds in their zones.
    pub(in crate::engine) fn envs(&self) -> Reply {
        let now = self.now();
        let mut out = String::from("environments:\n");
        for env in self.config.envs() {
            let place = match &env.target {
                Target::Namespace(ns) => format!("namespace {ns}"),
                Target::Preview { template, .. } => format!("previews in {}", template.as_str()),
            };
            let roles: Vec<&str> = env.requesters.iter().map(|r| r.as_str()).collect();
            let approvals = if env.approvals.rules.is_empty() {
                "no approvals".to_owned()
            } else {
                format!("approvals: {}", env.approvals.describe())
            };
            let from = env
                .promote_from
                .as_ref()
                .map(|f| format!(", promotions from {f} only"))
                .unwrap_or_default();
            let frozen = env
                .frozen_at(now)
                .map(|f| {
                    format!(
                        ", FROZEN: {} (until {})",
                        f.window.reason(),
                        f.until_text(now)
                    )
                })
                .unwrap_or_default();
            let _ = writeln!(
                out,
                "  {}: {place}; requested by {}; {approvals}{from}{frozen}",
                env.name,
                roles.join("/")
            );
            let soon = upcoming(&env.freezes, now, FREEZE_HORIZON);
            for u in soon.iter().take(FREEZES_SHOWN) {
                let _ = writeln!(
                    out,
                    "    freeze: {} ({})",
                    u.describe(now),
                    u.window.reason()
                );
            }
            if soon.len() > FREEZES_SHOWN {
                let _ = writeln!(
                    out,
                    "    and {} more freeze windows in the next 7 days",
                    soon.len() - FREEZES_SHOWN
                );
            }
        }
        Reply::text(out.trim_end().to_owned())
    }

    /// `whoami`: the person and roles an identity maps to.
    pub(in crate::engine) fn whoami(&self, identity: &Identity, person: Option<&Person>) -> Reply {
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
}

#[cfg(test)]
mod tests {
    use crate::engine::testing::{TestEngine, TUESDAY_NOON};
    use crate::names::EnvName;

    #[tokio::test]
    async fn whoami_names_the_person_or_says_config_does_not() {
        let t = TestEngine::start().await;
        let known = t.say("console:carol", "whoami").await;
        assert_eq!(
            known.text,
            "you are console:carol: carol (Carol), roles: qa"
        );
        let unknown = t.say("console:mallory", "whoami").await;
        assert!(
            unknown
                .text
                .starts_with("you are console:mallory, which config does not name"),
            "{}",
            unknown.text
        );
    }

    #[tokio::test]
    async fn envs_shows_each_environment_and_an_open_freeze() {
        let t = TestEngine::start().await;
        let before = t.say("console:alice", "envs").await;
        assert!(
            before
                .text
                .contains("  dev: namespace dev; requested by developer; no approvals"),
            "{}",
            before.text
        );
        assert!(!before.text.contains("FROZEN"), "{}", before.text);
        t.set_time(TUESDAY_NOON + 30 * 86_400);
        let during = t.say("console:alice", "envs").await;
        assert!(
            during.text.contains(", FROZEN: end-of-year freeze"),
            "{}",
            during.text
        );
    }

    #[tokio::test]
    async fn history_lists_the_last_events_in_an_environment() {
        let t = TestEngine::start().await;
        let dev = EnvName::new("dev").expect("a name");
        let quiet = t.engine.history(&dev, None).expect("the store answers");
        assert_eq!(quiet.text, "nothing has happened in dev yet");
        t.say("console:alice", "deploy main to dev").await;
        let busy = t.say("console:alice", "history dev 3").await;
        assert!(
            busy.text.starts_with("last 3 events in dev:"),
            "{}",
            busy.text
        );
        assert!(
            busy.text.contains("alice command.received history"),
            "{}",
            busy.text
        );
    }

    #[tokio::test]
    async fn status_shows_what_gantry_deployed_and_what_is_open() {
        let t = TestEngine::start().await;
        let deployed = t.say("console:alice", "deploy main to dev").await;
        let id = deployed.request.expect("a request");
        let waiting = t.say("console:alice", "deploy main to staging").await;
        let open = waiting.request.expect("a request");
        let status = t.say("console:alice", "status").await;
        assert!(
            status.text.contains(&format!("since {id}, by alice")),
            "{}",
            status.text
        );
        assert!(
            status.text.contains(&format!("open: {open} deploy main")),
            "{}",
            status.text
        );
    }
}
