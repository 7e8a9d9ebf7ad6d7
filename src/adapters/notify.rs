//! One notifier per platform behind a single port: each conversation's
//! messages go to the platform it came from.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;

use crate::engine::ports::{Buttons, MessageRef, Notifier, PortError};
use crate::engine::{Conversation, Platform};

/// Routes every call by `conversation.platform`.
#[derive(Default, Clone)]
pub struct ByPlatform {
    routes: BTreeMap<Platform, Arc<dyn Notifier>>,
}

impl ByPlatform {
    /// Sends `platform`'s conversations to `notifier`.
    pub fn with(mut self, platform: Platform, notifier: Arc<dyn Notifier>) -> Self {
        self.routes.insert(platform, notifier);
        self
    }

    fn route(&self, conversation: &Conversation) -> Result<&Arc<dyn Notifier>, PortError> {
        self.routes.get(&conversation.platform).ok_or_else(|| {
            PortError::Unavailable(format!(
                "no notifier for platform `{}`",
                conversation.platform
            ))
        })
    }
}

#[async_trait]
impl Notifier for ByPlatform {
    async fn post(&self, conversation: &Conversation, text: &str) -> Result<MessageRef, PortError> {
        self.route(conversation)?.post(conversation, text).await
    }

    async fn edit(&self, message: &MessageRef, text: &str) -> Result<(), PortError> {
        self.route(&message.conversation)?.edit(message, text).await
    }

    async fn react(&self, message: &MessageRef, emoji: &str) -> Result<(), PortError> {
        self.route(&message.conversation)?
            .react(message, emoji)
            .await
    }

    async fn post_asking(
        &self,
        conversation: &Conversation,
        text: &str,
        buttons: Buttons,
    ) -> Result<MessageRef, PortError> {
        self.route(conversation)?
            .post_asking(conversation, text, buttons)
            .await
    }

    async fn edit_asking(
        &self,
        message: &MessageRef,
        text: &str,
        buttons: Buttons,
    ) -> Result<(), PortError> {
        self.route(&message.conversation)?
            .edit_asking(message, text, buttons)
            .await
    }

    async fn ping(&self) -> Vec<(String, Result<(), PortError>)> {
        let mut answers = Vec::new();
        for notifier in self.routes.values() {
            answers.extend(notifier.ping().await);
        }
        answers
    }
}
