//! Turning `deploy`, `promote`, `rollback`, `build` and `teardown` into a
//! request: pin the commit and digest once, ask policy, then run or wait.

use serde_json::json;

use super::progress::headline;
use super::recheck::Cleared;
use super::reply::Reply;
use super::state::{Action, ApprovalRule, Conversation, Event, Request, RuleNeed, State};
use super::{Engine, EngineError};
use crate::command::{Command, GitRef};
use crate::config::{App, Environment, Person, Target};
use crate::names::{Digest, Identity, RequestId, Sha};
use crate::policy::{self, Decision, Facts};

/// What a request is pinned to once resolved.
pub(super) struct Pins {
    pub sha: Sha,
    pub digest: Option<Digest>,
    pub previous: Option<Digest>,
    /// What the message should say about the choice, if anything.
    pub note: Option<String>,
}

impl Engine {
    /// Creates and drives a request for a change.
    pub(super) async fn request_change(
        &self,
        person: &Person,
        identity: &Identity,
        conversation: &Conversation,
        command: &Command,
    ) -> Result<Reply, EngineError> {
        let (app_name, env_name, action, dry_run) = match command {
            Command::Deploy {
                reference,
                app,
                env,
                dry_run,
            } => (
                app,
                Some(env),
                Action::Deploy {
                    reference: reference.text(),
                },
                *dry_run,
            ),
            Command::Promote {
                app,
                from,
                to,
                dry_run,
            } => (
                app,
                Some(to),
                Action::Promote { from: from.clone() },
                *dry_run,
            ),
            Command::Rollback {
                app, env, dry_run, ..
            } => (app, Some(env), Action::Rollback, *dry_run),
            Command::Build { reference, app } => (
                app,
                None,
                Action::Build {
                    reference: reference.text(),
                },
                false,
            ),
            Command::Teardown { branch } => (
                &None,
                None,
                Action::Teardown {
                    branch: branch.to_string(),
                },
                false,
            ),
            _ => return Ok(Reply::text("that command does not change anything")),
        };
        let Some(app) = self.pick_app(app_name.as_ref().map(|a| a.as_str())) else {
            let apps: Vec<&str> = self.config.apps().iter().map(|a| a.name.as_str()).collect();
            return Ok(Reply::text(format!(
                "name the app (`… of <app> …`); apps: {}",
                apps.join(", ")
            )));
        };
        let env = match (&action, env_name) {
            (Action::Teardown { .. }, _) => self
                .config
                .envs()
                .iter()
                .find(|e| matches!(e.target, Target::Preview { .. })),
            (_, Some(name)) => self.config.env(name.as_str()),
            (_, None) => None,
        };
        // A dry run is not refused by a lock: it makes every other check
        // first and then reports the lock a deploy would meet (`run_dry`).
        let lock = if dry_run {
            None
        } else {
            self.lock_view(app, env)?
        };
        let facts = Facts {
            lock,
            checks_passed: None,
            defer_checks: true,
        };
        // Cheap checks first: roles, promotion order, locks, freezes; CI
        // is judged once the ref is resolved.
        if let Decision::Deny(why) =
            policy::decide(Some(person), command, &self.config, &facts, self.now())
        {
            return Ok(Reply::refused(why));
        }
        let namespace = match env.map(|e| namespace_for(e, command, app)) {
            Some(Err(why)) => return Ok(Reply::refused(why)),
            Some(Ok(ns)) => Some(ns),
            None => None,
        };
        let now = self.now();
        let request = Request {
            id: RequestId(self.store.next_request_id()?),
            action,
            app: app.name.clone(),
            env: env.map(|e| e.name.clone()),
            namespace,
            requester: person.id.clone(),
            identity: identity.clone(),
            conversation: conversation.clone(),
            sha: None,
            digest: None,
            previous_digest: None,
            policy_version: self.config.version().to_owned(),
            rule: None,
            approvals: Vec::new(),
            state: State::Requested,
            dry_run,
            created_at: now,
            updated_at: now,
            note: None,
            deployment: None,
            verification: None,
            rolled_out_at: None,
        };
        self.store.put_request(request.id.0, &request)?;
        self.audit(
            person.id.as_str(),
            "request.created",
            &request.id.to_string(),
            request.env.as_ref().map(|e| e.as_str()),
            json!({ "command": command.to_string(), "identity": identity }),
        )?;
        self.show_progress(&request, None).await;
        let actor = person.id.as_str();
        let request = if matches!(request.action, Action::Teardown { .. }) {
            request
        } else {
            match self.pin(command, app, env).await {
                Ok(pins) => {
                    let event = Event::Resolved {
                        sha: pins.sha,
                        digest: pins.digest,
                        previous: pins.previous,
                        note: pins.note,
                    };
                    self.apply(&request, event, actor).await?
                }
                Err(reason) => {
                    let failed = self.apply(&request, Event::Fail { reason }, actor).await?;
                    return Ok(self.ended(&failed));
                }
            }
        };
        let checks_passed = match (env, &request.sha) {
            (Some(e), Some(sha)) if e.require_green_ci => Some(
                self.ports
                    .forge
                    .checks_passed(&app.repo.to_string(), sha)
                    .await
                    .unwrap_or(false),
            ),
            _ => None,
        };
        let facts = Facts {
            checks_passed,
            defer_checks: false,
            ..facts
        };
        match policy::decide(Some(person), command, &self.config, &facts, self.now()) {
            Decision::Deny(reason) => {
                let denied = self
                    .apply(
                        &request,
                        Event::Deny {
                            reason: reason.to_string(),
                        },
                        actor,
                    )
                    .await?;
                Ok(self.ended(&denied))
            }
            Decision::Allow { override_note } => {
                self.audit_override(&request, override_note.as_deref())?;
                let approved = self.apply(&request, Event::Allowed, actor).await?;
                self.execute(approved, Cleared::Now).await
            }
            Decision::NeedsApproval {
                need,
                override_note,
            } => {
                self.audit_override(&request, override_note.as_deref())?;
                let expires_at =
                    self.now() + i64::try_from(need.expires.as_secs()).unwrap_or(i64::MAX / 2);
                let rule = ApprovalRule {
                    rules: need
                        .rules
                        .into_iter()
                        .map(|r| RuleNeed {
                            name: r.name,
                            roles: r.roles,
                            count: r.count,
                        })
                        .collect(),
                    one_rule_per_person: need.one_rule_per_person,
                    self_approval: need.self_approval,
                    expires_at,
                };
                let waiting = self
                    .apply(&request, Event::NeedsApproval(rule), actor)
                    .await?;
                if waiting.state == State::Approved {
                    return self.execute(waiting, Cleared::Now).await;
                }
                Ok(Reply::for_request(
                    &waiting,
                    format!("{} waits for approval", headline(&waiting)),
                ))
            }
        }
    }

    /// Audits the note policy gives when a break-glass role overrode a
    /// freeze window.
    fn audit_override(&self, request: &Request, note: Option<&str>) -> Result<(), EngineError> {
        match note {
            Some(note) => self.audit(
                request.requester.as_str(),
                "policy.break_glass",
                &request.id.to_string(),
                request.env.as_ref().map(|e| e.as_str()),
                json!({ "note": note }),
            ),
            None => Ok(()),
        }
    }

    /// The named app, or the default one.
    pub(super) fn pick_app(&self, name: Option<&str>) -> Option<&App> {
        match name {
            Some(name) => self.config.app(name),
            None => self.config.default_app(),
        }
    }

    /// Resolves the commit and the image once; everything after is pinned.
    async fn pin(
        &self,
        command: &Command,
        app: &App,
        env: Option<&Environment>,
    ) -> Result<Pins, String> {
        let previous = match env {
            Some(env) => self
                .last_good(app, env.name.as_str(), None)
                .map(|r| r.digest)
                .unwrap_or_default(),
            None => None,
        };
        match command {
            Command::Deploy { reference, .. } => self.pin_deploy(app, reference, previous).await,
            Command::Build { reference, .. } => self.pin_build(app, reference).await,
            Command::Promote { from, .. } => self.pin_promote(app, from, env, previous),
            Command::Rollback { target, env, .. } => {
                self.pin_rollback(app, env, target.as_ref(), previous)
            }
            _ => Err("nothing to resolve".into()),
        }
    }
}

/// The namespace a command changes in an environment.
fn namespace_for(env: &Environment, command: &Command, app: &App) -> Result<String, String> {
    match &env.target {
        Target::Namespace(ns) => Ok(ns.clone()),
        Target::Preview { template, .. } => {
            let (branch, pr) = match command {
                Command::Deploy {
                    reference: GitRef::PullRequest(n),
                    ..
                } => (format!("pr-{n}"), Some(*n)),
                Command::Deploy { reference, .. } => (reference.text(), None),
                Command::Teardown { branch } => (branch.to_string(), None),
                _ => return Err(format!("{} takes deploys and teardowns only", env.name)),
            };
            template
                .render(&branch, pr, app.name.as_str())
                .map_err(|e| e.to_string())
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::namespace_for;
    use crate::command::{Grammar, Vocabulary};
    use crate::config::Config;

    fn config() -> Config {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/engine.toml");
        crate::config::load(&path).expect("the test config loads")
    }

    #[test]
    fn each_command_changes_its_environments_namespace_or_its_preview() {
        let config = config();
        let grammar = Grammar::builtin().expect("grammar");
        let names = Vocabulary::new(config.env_names(), config.app_names());
        let app = config.app("web").expect("web");
        for (text, env, namespace) in [
            ("deploy main to dev", "dev", Ok("dev")),
            ("promote from staging to prod", "prod", Ok("prod")),
            ("deploy feat-x to preview", "preview", Ok("preview-feat-x")),
            ("deploy #12 to preview", "preview", Ok("preview-pr-12")),
            ("teardown feat-x", "preview", Ok("preview-feat-x")),
            (
                "rollback in preview",
                "preview",
                Err("preview takes deploys and teardowns only"),
            ),
        ] {
            let command = grammar.parse(text, &names).expect(text);
            let env = config.env(env).expect(env);
            let found = namespace_for(env, &command, app);
            assert_eq!(
                found.as_deref(),
                namespace.map_err(|e: &str| e.to_owned()).as_deref(),
                "{text}"
            );
        }
    }
}
