//! One inbound command in, one reply out: the dispatch over every command.

use serde_json::json;

use super::reply::Reply;
use super::state::Conversation;
use super::Engine;
use crate::command::Command;
use crate::names::Identity;

/// Whether [`Engine::accept_delivered`] recorded the command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Accepted {
    /// Recorded, with its delivery: run it.
    New,
    /// The platform delivered this before: nothing was recorded or run.
    Duplicate,
    /// The person started too much work lately: nothing was recorded or
    /// run; the text says when to try again.
    SlowDown(String),
}

impl Engine {
    /// The command grammar (for inbound routes that parse their own way, such as PR comments).
    pub fn grammar(&self) -> &crate::command::Grammar {
        &self.grammar
    }

    /// The configured environment and app names the grammar checks against.
    pub fn vocabulary(&self) -> &crate::command::Vocabulary {
        &self.vocabulary
    }

    /// Parses chat text with the grammar and the configured names.
    pub fn parse(&self, text: &str) -> Result<Command, crate::command::ParseError> {
        self.grammar.parse(text, &self.vocabulary)
    }

    /// Parses `text` and runs it as `identity`, reporting to `conversation`.
    pub async fn handle(
        &self,
        identity: &Identity,
        conversation: &Conversation,
        text: &str,
    ) -> Reply {
        match self.grammar.parse(text, &self.vocabulary) {
            Ok(command) => self.run(identity, conversation, &command).await,
            Err(e) => Reply::text(e.to_string()),
        }
    }

    /// Runs a parsed command as `identity`.
    pub async fn run(
        &self,
        identity: &Identity,
        conversation: &Conversation,
        command: &Command,
    ) -> Reply {
        match self
            .accept_delivered(None, identity, conversation, command)
            .await
        {
            Ok(Accepted::New | Accepted::Duplicate) => {}
            Ok(Accepted::SlowDown(why)) => return Reply::refused(why),
            Err(e) => return Reply::refused(e),
        }
        self.run_accepted(identity, conversation, command).await
    }

    /// Records, durably, that `identity` sent `command`: the acknowledgement
    /// a chat platform gets may follow this, and the work may not begin
    /// without it. With the platform's delivery id (`delivery`), the
    /// delivery is recorded with the command and made durable in the same
    /// flush; a delivery whose command could not be recorded is released,
    /// so it may come again.
    pub async fn accept_delivered(
        &self,
        delivery: Option<&str>,
        identity: &Identity,
        conversation: &Conversation,
        command: &Command,
    ) -> Result<Accepted, super::EngineError> {
        let accepted = self.record_delivered(delivery, identity, conversation, command)?;
        if accepted == Accepted::New {
            self.store.flush_group().await?;
        }
        Ok(accepted)
    }

    /// [`Engine::accept_delivered`] without the flush: the caller writes
    /// what belongs with the command (its queue entry) and then makes both
    /// durable with one [`Store::flush_group`](crate::store::Store::flush_group).
    pub fn record_delivered(
        &self,
        delivery: Option<&str>,
        identity: &Identity,
        conversation: &Conversation,
        command: &Command,
    ) -> Result<Accepted, super::EngineError> {
        let person = self.config.person_for(identity);
        if let (Some(p), true) = (person, super::throttle::starts_work(command)) {
            let limit = self.config.start_limit();
            if let Err(wait) = self.starts.take(p.id.as_str(), self.now(), limit) {
                return Ok(Accepted::SlowDown(format!(
                    "slow down: {} may start {} commands per {}; try again in {wait}s",
                    p.id,
                    limit.count,
                    humantime::format_duration(limit.per)
                )));
            }
        }
        let actor = person.map_or_else(|| identity.to_string(), |p| p.id.to_string());
        let event = self.new_event(
            &actor,
            "command.received",
            command.name().as_str(),
            command_env(command).as_deref(),
            json!({ "identity": identity, "text": command.to_string(), "conversation": conversation }),
        );
        match delivery {
            None => {
                self.store.append(event)?;
            }
            Some(id) => {
                if self
                    .store
                    .append_delivered(event, id, self.now())?
                    .is_none()
                {
                    return Ok(Accepted::Duplicate);
                }
            }
        }
        Ok(Accepted::New)
    }

    /// Runs a command that [`Engine::accept_delivered`] has recorded, once one of
    /// [`super::MAX_RUNNING`] places is free.
    pub async fn run_accepted(
        &self,
        identity: &Identity,
        conversation: &Conversation,
        command: &Command,
    ) -> Reply {
        use tracing::Instrument as _;
        let person = self.config.person_for(identity);
        let actor = person.map_or_else(|| identity.to_string(), |p| p.id.to_string());
        let env = command_env(command);
        let span = tracing::info_span!(
            "command",
            command = command.name().as_str(),
            actor = %actor,
            env = env.as_deref().unwrap_or("-"),
        );
        self.run_in_span(identity, conversation, command, person, actor, env)
            .instrument(span)
            .await
    }

    async fn run_in_span(
        &self,
        identity: &Identity,
        conversation: &Conversation,
        command: &Command,
        person: Option<&crate::config::Person>,
        actor: String,
        env: Option<String>,
    ) -> Reply {
        // The semaphore is never closed, so a place always comes.
        let _place = self.running.acquire().await.ok();
        let outcome = match (command, person) {
            (Command::Help { topic }, _) => Ok(self.help(*topic)),
            (Command::Status { env }, _) => self.status(env.as_ref()).await,
            (Command::Envs, _) => Ok(self.envs()),
            (Command::Whoami, _) => Ok(self.whoami(identity, person)),
            (_, None) => Ok(self.unknown_person(identity, command)),
            (Command::History { env, limit }, Some(_)) => self.history(env, *limit),
            (Command::Deploy { .. }, Some(p))
            | (Command::Promote { .. }, Some(p))
            | (Command::Rollback { .. }, Some(p))
            | (Command::Build { .. }, Some(p))
            | (Command::Teardown { .. }, Some(p)) => {
                self.request_change(p, identity, conversation, command)
                    .await
            }
            (Command::Approve { id, comment }, Some(p)) => {
                self.approve(p, identity, *id, comment.as_deref()).await
            }
            (Command::Deny { id, reason }, Some(p)) => self.deny(p, *id, reason.as_deref()).await,
            (Command::Cancel { id }, Some(p)) => self.cancel(p, *id).await,
            (Command::Complete { id }, Some(p)) => self.complete_verifying(p, *id).await,
            (Command::RollbackRequest { id }, Some(p)) => self.roll_back_verifying(p, *id).await,
            (Command::Lock { env, reason }, Some(p)) => {
                self.lock(p, command, env, reason.as_deref())
            }
            (Command::Unlock { env }, Some(p)) => self.unlock(p, command, env),
        };
        let reply = outcome.unwrap_or_else(|e| {
            let _ = self.audit(
                &actor,
                "command.failed",
                command.name().as_str(),
                env.as_deref(),
                json!({ "error": e.to_string() }),
            );
            Reply::refused(e)
        });
        // Requests and refusals are worth a line; answers to questions
        // (help, status, whoami) would flood the log under load.
        if reply.request.is_some() || reply.is_refused() {
            tracing::info!(
                request = reply.request.map(|r| r.to_string()),
                state = reply.state.map(|s| s.word()),
                refused = reply.is_refused(),
                "answered"
            );
        }
        // Everything the reply reports is durable before it is sent.
        match self.store.flush_group().await {
            Ok(()) => reply,
            Err(e) => Reply {
                text: format!("{}\n(warning: {})", reply.text, super::EngineError::from(e)),
                ..reply
            },
        }
    }

    fn unknown_person(&self, identity: &Identity, command: &Command) -> Reply {
        let decision =
            crate::policy::decide(None, command, &self.config, &Default::default(), self.now());
        match decision {
            crate::policy::Decision::Deny(why) => {
                Reply::refused(format!("{why} (you are {identity})"))
            }
            _ => Reply::refused("unknown identity"),
        }
    }
}

fn command_env(command: &Command) -> Option<String> {
    match command {
        Command::Deploy { env, .. }
        | Command::Rollback { env, .. }
        | Command::Lock { env, .. }
        | Command::Unlock { env }
        | Command::History { env, .. } => Some(env.to_string()),
        Command::Promote { to, .. } => Some(to.to_string()),
        Command::Status { env } => env.as_ref().map(ToString::to_string),
        Command::Build { .. }
        | Command::Approve { .. }
        | Command::Deny { .. }
        | Command::Cancel { .. }
        | Command::Complete { .. }
        | Command::RollbackRequest { .. }
        | Command::Envs
        | Command::Whoami
        | Command::Teardown { .. }
        | Command::Help { .. } => None,
    }
}
