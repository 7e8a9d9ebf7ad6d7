//! Slack's Web API through slack-morphism: the progress message posted with
//! `chat.postMessage`, edited with `chat.update`, reactions with
//! `reactions.add`. Approval messages carry Approve / Deny buttons (Block
//! Kit). Text is escaped so that it can never mention or link anyone.
//!
//! Every call is a write, so only what certainly did not happen is sent
//! again under the shared [`Policy`]: a `429` (Slack documents rate-limited
//! calls as not processed; slack-morphism reads its `Retry-After` seconds) and
//! a connection that was never made. A timeout, a dropped connection or a
//! `5xx` may have posted the message, so the call fails instead.

use std::time::Duration;

use async_trait::async_trait;
use hyper_util::client::legacy::connect::HttpConnector;
use slack_morphism::errors::SlackClientError;
use slack_morphism::prelude::*;

use crate::adapters::retry::{self, Policy, Verdict};
use crate::chat::slack::escape as slack_escape;
use crate::config::Secret;
use crate::engine::ports::{Buttons, MessageRef, Notifier, PortError};
use crate::engine::Conversation;

/// The retry policy unless replaced: 3 attempts, waits from 1 s (a `429`
/// without `Retry-After`), a `Retry-After` of up to 30 s.
const POLICY: Policy = Policy {
    attempts: 3,
    base_delay: Duration::from_secs(1),
    max_delay: Duration::from_secs(4),
    max_retry_after: Duration::from_secs(30),
};
/// Timeout of one call.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);

pub use crate::chat::slack::{APPROVE_ACTION, COMPLETE_ACTION, DENY_ACTION, ROLLBACK_ACTION};

/// What a Slack connector must be for the notifier.
pub trait Connector: SlackClientHttpConnector + Send + Sync + 'static {}
impl<C: SlackClientHttpConnector + Send + Sync + 'static> Connector for C {}

/// Posts and edits progress messages in Slack.
pub struct SlackNotifier<C: Connector> {
    client: SlackClient<C>,
    token: SlackApiToken,
    policy: Policy,
}

impl SlackNotifier<SlackClientHyperConnector<HttpConnector>> {
    /// A client for a Web API served over plain HTTP (the sandbox's fake Slack).
    pub fn plain_http(api_url: &str, token: &Secret) -> Self {
        let mut http = HttpConnector::new();
        http.set_connect_timeout(Some(Duration::from_secs(5)));
        let connector =
            SlackClientHyperConnector::with_connector(http).with_slack_api_url(base(api_url));
        SlackNotifier::with(connector, token)
    }
}

impl SlackNotifier<SlackClientHyperHttpsConnector> {
    /// A client for Slack itself (or any HTTPS Web API URL), trusting the system's roots.
    pub fn https(api_url: &str, token: &Secret) -> Result<Self, String> {
        let connector = SlackClientHyperConnector::new()
            .map_err(|e| format!("cannot load the system's TLS roots for Slack: {e}"))?
            .with_slack_api_url(base(api_url));
        Ok(SlackNotifier::with(connector, token))
    }
}

impl<C: Connector> SlackNotifier<C> {
    fn with(connector: C, token: &Secret) -> Self {
        let token = SlackApiToken::new(SlackApiTokenValue::new(token.expose().to_owned()));
        SlackNotifier {
            client: SlackClient::new(connector),
            token,
            policy: POLICY,
        }
    }

    /// Replaces the retry policy.
    pub fn with_policy(mut self, policy: Policy) -> Self {
        self.policy = policy;
        self
    }
}

/// Calls Slack under the notifier's policy, with a timeout per attempt,
/// and maps the error to a port error.
macro_rules! with_retries {
    ($notifier:expr, $what:expr, |$session:ident| $call:expr) => {{
        let notifier = &$notifier;
        let what: &str = $what;
        let done = notifier
            .policy
            .run(|| async {
                let $session = notifier.client.open_session(&notifier.token);
                match tokio::time::timeout(CALL_TIMEOUT, $call).await {
                    Ok(Ok(value)) => Ok(value),
                    Ok(Err(e)) => Err(verdict(what, e)),
                    Err(_) => Err(Verdict::Unknown(PortError::Timeout(format!(
                        "Slack {what}: no answer within {}s",
                        CALL_TIMEOUT.as_secs()
                    )))),
                }
            })
            .await;
        done.map_err(|g| g.error)
    }};
}

/// What a failed call means: a `429` or a connection never made is retried;
/// a timeout, a dropped connection or a `5xx` leaves the write unknown.
fn verdict(what: &str, error: SlackClientError) -> Verdict<PortError> {
    let class = match &error {
        SlackClientError::RateLimitError(e) => match e.retry_after {
            Some(wait) => return Verdict::RetryAfter(port_error(what, error), wait),
            None => Verdict::Retry,
        },
        SlackClientError::HttpProtocolError(e)
            if e.cause.as_deref().is_some_and(|c| retry::never_sent(c)) =>
        {
            Verdict::Retry
        }
        SlackClientError::HttpProtocolError(_) | SlackClientError::EndOfStream(_) => {
            Verdict::Unknown
        }
        SlackClientError::HttpError(e) if e.status_code.is_server_error() => Verdict::Unknown,
        _ => Verdict::Fail,
    };
    class(port_error(what, error))
}

/// slack-morphism joins `{base}/{method}`, so the base must not end in `/`
/// (config writes it as Slack documents it, `https://slack.com/api/`).
fn base(api_url: &str) -> &str {
    api_url.trim_end_matches('/')
}

fn port_error(what: &str, error: SlackClientError) -> PortError {
    match error {
        SlackClientError::RateLimitError(e) => PortError::RateLimited {
            retry_after: e.retry_after.unwrap_or(Duration::from_secs(1)),
        },
        SlackClientError::ApiError(e)
            if matches!(
                e.code.as_str(),
                "invalid_auth" | "not_authed" | "token_revoked" | "account_inactive"
            ) =>
        {
            PortError::Unauthorised(format!("Slack {what}: {}", e.code))
        }
        SlackClientError::ApiError(e) if e.code.ends_with("_not_found") => {
            PortError::NotFound(format!("Slack {what}: {}", e.code))
        }
        SlackClientError::ApiError(e) => {
            PortError::Unavailable(format!("Slack {what}: {}", e.code))
        }
        other => PortError::Unavailable(format!("Slack {what}: {other}")),
    }
}

/// A message's text and, for `buttons`, a section with an actions block
/// (no blocks at all for [`Buttons::None`], which removes earlier buttons).
fn content(text: &str, buttons: Buttons) -> SlackMessageContent {
    let text = slack_escape(text);
    let content = SlackMessageContent::new().with_text(text.clone());
    let (id, [first, second]) = match buttons {
        Buttons::None => return content.with_blocks(vec![]),
        Buttons::Approval(id) => (
            id,
            [
                ("Approve", APPROVE_ACTION, SlackBlockButtonStyle::Primary),
                ("Deny", DENY_ACTION, SlackBlockButtonStyle::Danger),
            ],
        ),
        Buttons::Verifying(id) => (
            id,
            [
                ("Roll back", ROLLBACK_ACTION, SlackBlockButtonStyle::Danger),
                ("Complete", COMPLETE_ACTION, SlackBlockButtonStyle::Primary),
            ],
        ),
    };
    let button =
        |label: &str, action: &str, style: SlackBlockButtonStyle| -> SlackActionBlockElement {
            SlackBlockButtonElement::new(SlackBlockPlainTextOnly::from(label))
                .with_action_id(action.into())
                .with_value(id.to_string())
                .with_style(style)
                .into()
        };
    let blocks: Vec<SlackBlock> = vec![
        SlackSectionBlock::new()
            .with_text(SlackBlockText::Plain(SlackBlockPlainText::new(text)))
            .into(),
        SlackActionsBlock::new(vec![
            button(first.0, first.1, first.2),
            button(second.0, second.1, second.2),
        ])
        .into(),
    ];
    content.with_blocks(blocks)
}

#[async_trait]
impl<C: Connector> Notifier for SlackNotifier<C> {
    async fn post(&self, conversation: &Conversation, text: &str) -> Result<MessageRef, PortError> {
        self.post_with(conversation, text, Buttons::None).await
    }

    async fn edit(&self, message: &MessageRef, text: &str) -> Result<(), PortError> {
        self.edit_asking(message, text, Buttons::None).await
    }

    async fn react(&self, message: &MessageRef, emoji: &str) -> Result<(), PortError> {
        let request = SlackApiReactionsAddRequest::new(
            message.conversation.channel.clone().into(),
            SlackReactionName::new(emoji.trim_matches(':').to_owned()),
            message.id.clone().into(),
        );
        let done: Result<_, PortError> =
            with_retries!(self, "reactions.add", |s| s.reactions_add(&request));
        done.map(drop)
    }

    async fn post_asking(
        &self,
        conversation: &Conversation,
        text: &str,
        buttons: Buttons,
    ) -> Result<MessageRef, PortError> {
        self.post_with(conversation, text, buttons).await
    }

    async fn edit_asking(
        &self,
        message: &MessageRef,
        text: &str,
        buttons: Buttons,
    ) -> Result<(), PortError> {
        let request = SlackApiChatUpdateRequest::new(
            message.conversation.channel.clone().into(),
            content(text, buttons),
            message.id.clone().into(),
        );
        let done: Result<_, PortError> =
            with_retries!(self, "chat.update", |s| s.chat_update(&request));
        done.map(drop)
    }

    /// `auth.test`: Slack answers and the bot token is good.
    async fn ping(&self) -> Vec<(String, Result<(), PortError>)> {
        let session = self.client.open_session(&self.token);
        let answer = session
            .auth_test()
            .await
            .map(drop)
            .map_err(|e| port_error("auth.test", e));
        vec![("slack".to_owned(), answer)]
    }
}

impl<C: Connector> SlackNotifier<C> {
    async fn post_with(
        &self,
        conversation: &Conversation,
        text: &str,
        buttons: Buttons,
    ) -> Result<MessageRef, PortError> {
        let request = SlackApiChatPostMessageRequest::new(
            conversation.channel.clone().into(),
            content(text, buttons),
        );
        let posted: Result<_, PortError> =
            with_retries!(self, "chat.postMessage", |s| s.chat_post_message(&request));
        let posted = posted?;
        Ok(MessageRef {
            conversation: conversation.clone(),
            id: posted.ts.to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use slack_morphism::errors::{
        SlackClientApiError, SlackClientHttpError, SlackClientHttpProtocolError,
        SlackRateLimitError,
    };

    use super::*;

    fn class(error: SlackClientError) -> String {
        match verdict("chat.postMessage", error) {
            Verdict::Retry(_) => "retry".to_owned(),
            Verdict::RetryAfter(e, wait) => format!("retry after {}s: {e}", wait.as_secs()),
            Verdict::Fail(e) => format!("fail: {e}"),
            Verdict::Unknown(_) => "unknown".to_owned(),
        }
    }

    #[test]
    fn only_what_certainly_did_not_happen_is_retried() {
        let limited = SlackRateLimitError::new().with_retry_after(Duration::from_secs(3));
        assert_eq!(
            class(SlackClientError::RateLimitError(limited)),
            "retry after 3s: rate limited; retry after 3s"
        );
        assert_eq!(
            class(SlackClientError::RateLimitError(SlackRateLimitError::new())),
            "retry"
        );
        let refused = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
        let never_sent = SlackClientHttpProtocolError::new().with_cause(Box::new(refused));
        assert_eq!(
            class(SlackClientError::HttpProtocolError(never_sent)),
            "retry"
        );
        let reset = std::io::Error::from(std::io::ErrorKind::ConnectionReset);
        let dropped = SlackClientHttpProtocolError::new().with_cause(Box::new(reset));
        assert_eq!(
            class(SlackClientError::HttpProtocolError(dropped)),
            "unknown"
        );
        let bad_gateway = SlackClientHttpError::new(http::StatusCode::BAD_GATEWAY);
        assert_eq!(class(SlackClientError::HttpError(bad_gateway)), "unknown");
        let api = SlackClientApiError::new("channel_not_found".into());
        assert_eq!(
            class(SlackClientError::ApiError(api)),
            "fail: not found: Slack chat.postMessage: channel_not_found"
        );
    }
}
