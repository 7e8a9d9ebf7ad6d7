//! The one progress message per request, posted once and edited in place.

use super::ports::{Buttons, MessageRef};
use super::reply::Reply;
use super::state::{Action, Request, State};
use super::Engine;
use crate::store::MessageRef as StoredMessage;

impl Engine {
    /// The reply for a request that has come to rest: its progress text.
    pub(super) fn ended(&self, request: &Request) -> Reply {
        Reply::for_request(
            request,
            progress_text(request, None, &self.approve_hint(request)),
        )
    }

    /// How people approve in the request's own platform, for its message.
    pub(super) fn approve_hint(&self, request: &Request) -> String {
        let platforms = self.config.platforms();
        match request.conversation.platform {
            super::state::Platform::Slack => {
                let emoji = platforms
                    .slack
                    .as_ref()
                    .map_or("white_check_mark", |s| s.approve_reaction.as_str());
                format!(
                    "say `approve {}`, react :{emoji}: or click Approve",
                    request.id
                )
            }
            super::state::Platform::Discord => {
                format!("say `/gantry approve {}` or click Approve", request.id)
            }
            super::state::Platform::Github => format!("comment `/gantry approve {}`", request.id),
            super::state::Platform::Console => format!("say `approve {}`", request.id),
        }
    }

    /// Posts or edits the request's progress message. A chat failure is
    /// recorded in the audit trail but never stops or repeats a deploy.
    pub(super) async fn show_progress(&self, request: &Request, detail: Option<&str>) {
        let text = progress_text(request, detail, &self.approve_hint(request));
        let key = request.id.to_string();
        if !self.shown.changes(request, &text) {
            // The same words again (a verification round that saw what the
            // last one did): no edit, which spares the platform's rate limit.
            return;
        }
        let buttons = buttons_for(request);
        let stored = self.store.get_message(&key).ok().flatten();
        let notifier = &self.ports.notifier;
        let result = match stored {
            Some(m) => {
                let message = MessageRef {
                    conversation: request.conversation.clone(),
                    id: m.message_id,
                };
                notifier.edit_asking(&message, &text, buttons).await
            }
            None => {
                let posted = match buttons {
                    Buttons::None => notifier.post(&request.conversation, &text).await,
                    _ => {
                        notifier
                            .post_asking(&request.conversation, &text, buttons)
                            .await
                    }
                };
                match posted {
                    Ok(posted) => self.remember_message(request, &posted.id).map_err(|e| {
                        super::ports::PortError::Unavailable(format!(
                            "cannot remember the message: {e}"
                        ))
                    }),
                    Err(e) => Err(e),
                }
            }
        };
        if let Err(e) = result {
            // Not shown: the next edit must be sent even if it says the same.
            self.shown.forget(request);
            let _ = self.audit(
                "gantry",
                "chat.failed",
                &key,
                request.env.as_ref().map(|e| e.as_str()),
                serde_json::json!({ "error": e.to_string() }),
            );
        }
    }

    /// Posts a one-off message (an answer that has no request message to
    /// live in, such as a refused reaction). Failures are audited.
    pub async fn say(&self, conversation: &crate::engine::Conversation, text: &str) {
        if let Err(e) = self.ports.notifier.post(conversation, text).await {
            let _ = self.audit(
                "gantry",
                "chat.failed",
                &conversation.channel,
                None,
                serde_json::json!({ "error": e.to_string() }),
            );
        }
    }

    /// Records where a request's progress message is, both ways: by request
    /// (to keep editing it after a restart) and by message (so a reaction on
    /// it finds its request).
    fn remember_message(
        &self,
        request: &Request,
        message_id: &str,
    ) -> Result<(), crate::store::StoreError> {
        let conversation = &request.conversation;
        let record = StoredMessage {
            platform: conversation.platform.as_str().to_owned(),
            channel: conversation.channel.clone(),
            message_id: message_id.to_owned(),
        };
        self.store.put_message(&request.id.to_string(), &record)?;
        let owner = StoredMessage {
            message_id: request.id.to_string(),
            ..record
        };
        self.store.put_message(
            &owner_key(conversation.platform, &conversation.channel, message_id),
            &owner,
        )
    }

    /// The request whose progress message this is, if any.
    pub fn request_for_message(
        &self,
        platform: super::state::Platform,
        channel: &str,
        message_id: &str,
    ) -> Option<crate::names::RequestId> {
        let owner = self
            .store
            .get_message(&owner_key(platform, channel, message_id))
            .ok()
            .flatten()?;
        owner.message_id.parse().ok()
    }
}

/// The buttons a request's progress message carries in its state.
pub(super) fn buttons_for(request: &Request) -> Buttons {
    match request.state {
        State::AwaitingApproval => Buttons::Approval(request.id),
        State::Verifying => Buttons::Verifying(request.id),
        _ => Buttons::None,
    }
}

fn owner_key(platform: super::state::Platform, channel: &str, message_id: &str) -> String {
    format!("owner/{platform}/{channel}/{message_id}")
}

/// What the request is, in one line: `R-4 deploy feat-x (3f2c1ab) of web to dev`.
pub(super) fn headline(request: &Request) -> String {
    let sha = request
        .sha
        .as_ref()
        .map(|s| format!(" ({})", s.short()))
        .unwrap_or_default();
    let env = request
        .env
        .as_ref()
        .map(|e| format!(" to {e}"))
        .unwrap_or_default();
    let what = match &request.action {
        Action::Deploy { reference } => format!("deploy {reference}{sha} of {}{env}", request.app),
        Action::Promote { from } => format!("promote {}{sha} from {from}{env}", request.app),
        Action::Rollback => format!(
            "rollback {}{sha} in {}",
            request.app,
            request.env.as_ref().map_or("?", |e| e.as_str())
        ),
        Action::Build { reference } => format!("build {reference}{sha} of {}", request.app),
        Action::Teardown { branch } => format!("teardown preview of {branch}"),
    };
    let dry = if request.dry_run { " (dry run)" } else { "" };
    format!("{} {what}{dry}, asked by {}", request.id, request.requester)
}

/// The full message text for a request's current state.
pub(super) fn progress_text(request: &Request, detail: Option<&str>, approve_hint: &str) -> String {
    let digest = request
        .digest
        .as_ref()
        .map(|d| d.short().to_owned())
        .unwrap_or_default();
    let state = match request.state {
        State::Requested => "resolving the ref and the image…".to_owned(),
        State::AwaitingApproval => awaiting(request, approve_hint),
        State::Approved => approved_line(request),
        State::Building => "building…".to_owned(),
        State::Deploying => format!("deploying {digest}…"),
        State::Verifying => super::soak::verifying_text(request),
        State::Succeeded if request.dry_run => {
            "dry run: every check passed; nothing was changed".to_owned()
        }
        // What a deploy would meet now, not a failure of the dry run itself.
        State::Failed if request.dry_run => {
            format!("dry run: {}", request.note.as_deref().unwrap_or(""))
        }
        State::Succeeded => match &request.action {
            Action::Build { .. } => "build succeeded".to_owned(),
            Action::Teardown { .. }
                if request.note.as_deref() == Some(super::verbs::teardown::ALREADY_GONE) =>
            {
                format!(
                    "{} was already gone; nothing to remove",
                    request.namespace.as_deref().unwrap_or("the preview")
                )
            }
            Action::Teardown { .. } => "preview removed".to_owned(),
            action => {
                let mut text = format!("succeeded: {} runs {digest}", request.app);
                // A rollback says which release it went back to, when that
                // needs saying.
                if let (Action::Rollback, Some(note)) = (action, &request.note) {
                    text.push_str(&format!("; {note}"));
                }
                if let Some(proof) = super::soak::verified_text(request) {
                    text.push_str(&format!("; {proof}"));
                }
                text
            }
        },
        other => format!(
            "{}: {}",
            other.word(),
            request.note.as_deref().unwrap_or("")
        ),
    };
    let detail = detail.map(|d| format!(" — {d}")).unwrap_or_default();
    format!("{}\n  {state}{detail}", headline(request))
}

fn awaiting(request: &Request, hint: &str) -> String {
    let Some(rule) = &request.rule else {
        return "awaiting approval".into();
    };
    format!(
        "awaiting approval: {}; {hint}; expires {}",
        standing(request),
        humantime::format_rfc3339_seconds(
            std::time::UNIX_EPOCH + std::time::Duration::from_secs(rule.expires_at.max(0) as u64)
        )
    )
}

/// Each rule and who counts for it, with what they said:
/// `qa 1/1 carol “tested on uat” · release 0/1`.
pub(super) fn standing(request: &Request) -> String {
    let tally = request.tally(None);
    let rules: Vec<String> = tally
        .rules
        .iter()
        .map(|r| {
            let mut text = format!("{} {}/{}", r.name, r.people.len(), r.count);
            for (i, person) in r.people.iter().enumerate() {
                text.push_str(if i == 0 { " " } else { ", " });
                text.push_str(person.as_str());
                let comment = request
                    .approvals
                    .iter()
                    .find(|a| &a.person == person)
                    .and_then(|a| a.comment.as_deref());
                if let Some(comment) = comment {
                    text.push_str(&format!(" “{comment}”"));
                }
            }
            text
        })
        .collect();
    rules.join(" · ")
}

fn approved_line(request: &Request) -> String {
    if request.approvals.is_empty() || request.rule.is_none() {
        "approved by policy".into()
    } else {
        format!("approved: {}", standing(request))
    }
}

/// The last text shown for each request still under way, so an edit that
/// would change nothing is not sent.
#[derive(Default)]
pub(super) struct Shown {
    texts: std::sync::Mutex<std::collections::HashMap<u64, String>>,
}

impl Shown {
    /// Whether `text` differs from what `request` last showed; remembers it
    /// while the request is under way.
    fn changes(&self, request: &Request, text: &str) -> bool {
        let mut texts = self.texts.lock().unwrap_or_else(|e| e.into_inner());
        if request.state.is_terminal() {
            return texts.remove(&request.id.0).as_deref() != Some(text);
        }
        if texts.get(&request.id.0).map(String::as_str) == Some(text) {
            return false;
        }
        texts.insert(request.id.0, text.to_owned());
        true
    }

    /// Forgets what `request` showed (its last edit did not arrive).
    fn forget(&self, request: &Request) {
        let mut texts = self.texts.lock().unwrap_or_else(|e| e.into_inner());
        texts.remove(&request.id.0);
    }
}
