//! Pull request comments as a chat platform: a request started from a PR
//! comment reports in one comment of Gantry's, edited in place.
//!
//! A conversation is `{ platform: "github", channel: "owner/repo#123" }`; a
//! message id is the comment's id.

use std::sync::Arc;

use async_trait::async_trait;

use super::GithubForge;
use crate::engine::ports::{Forge, MessageRef, Notifier, PortError};
use crate::engine::{Conversation, Platform};

/// Posts, edits and reacts to pull request comments.
pub struct GithubNotifier {
    forge: Arc<GithubForge>,
}

impl GithubNotifier {
    /// A notifier that speaks through `forge`.
    pub fn new(forge: Arc<GithubForge>) -> GithubNotifier {
        GithubNotifier { forge }
    }
}

/// `owner/repo#123` → (`owner/repo`, 123).
pub fn split_channel(conversation: &Conversation) -> Result<(&str, u64), PortError> {
    let bad = || {
        PortError::Invalid(format!(
            "`{}` is not a pull request conversation (owner/repo#number)",
            conversation.channel
        ))
    };
    if conversation.platform != Platform::Github {
        return Err(PortError::Invalid(format!(
            "the GitHub notifier cannot post to {}",
            conversation.platform
        )));
    }
    let (repo, number) = conversation.channel.rsplit_once('#').ok_or_else(bad)?;
    let number = number.parse().map_err(|_| bad())?;
    if repo.split('/').count() != 2 {
        return Err(bad());
    }
    Ok((repo, number))
}

/// Makes text safe to echo in a comment: an `@` cannot mention anyone (a
/// word joiner follows it, which GitHub does not link).
pub fn github_escape(text: &str) -> String {
    text.replace('@', "@\u{2060}")
}

/// GitHub's reaction contents, from the names chat platforms use.
fn reaction(emoji: &str) -> Result<&'static str, PortError> {
    Ok(match emoji.trim_matches(':') {
        "eyes" | "👀" => "eyes",
        "+1" | "thumbsup" | "white_check_mark" | "✅" | "👍" => "+1",
        "-1" | "thumbsdown" | "x" | "❌" | "👎" => "-1",
        "rocket" | "🚀" => "rocket",
        "tada" | "hooray" | "🎉" => "hooray",
        "heart" | "❤️" => "heart",
        "confused" | "😕" => "confused",
        "laugh" | "smile" | "😄" => "laugh",
        other => {
            return Err(PortError::Invalid(format!(
                "GitHub has no reaction `{other}`"
            )))
        }
    })
}

fn comment_id(message: &MessageRef) -> Result<u64, PortError> {
    message
        .id
        .parse()
        .map_err(|_| PortError::Invalid(format!("`{}` is not a comment id", message.id)))
}

#[async_trait]
impl Notifier for GithubNotifier {
    async fn post(&self, conversation: &Conversation, text: &str) -> Result<MessageRef, PortError> {
        let (repo, number) = split_channel(conversation)?;
        let id = self
            .forge
            .comment(repo, number, &github_escape(text))
            .await?;
        Ok(MessageRef {
            conversation: conversation.clone(),
            id: id.to_string(),
        })
    }

    async fn edit(&self, message: &MessageRef, text: &str) -> Result<(), PortError> {
        let (repo, _) = split_channel(&message.conversation)?;
        self.forge
            .edit_comment(repo, comment_id(message)?, &github_escape(text))
            .await
    }

    async fn react(&self, message: &MessageRef, emoji: &str) -> Result<(), PortError> {
        let (repo, _) = split_channel(&message.conversation)?;
        self.forge
            .react_to_comment(repo, comment_id(message)?, reaction(emoji)?)
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channels_name_a_pull_request() {
        let conv = |c: &str| Conversation {
            platform: crate::engine::Platform::Github,
            channel: c.into(),
        };
        assert_eq!(
            split_channel(&conv("acme/web#12")).unwrap(),
            ("acme/web", 12)
        );
        for bad in ["acme/web", "acme#12", "acme/web#x", "a/b/c#1"] {
            assert!(split_channel(&conv(bad)).is_err(), "{bad}");
        }
        let slack = Conversation {
            platform: crate::engine::Platform::Slack,
            channel: "acme/web#12".into(),
        };
        assert!(split_channel(&slack).is_err());
    }

    #[test]
    fn mentions_are_defused_and_reactions_mapped() {
        assert_eq!(github_escape("hi @team"), "hi @\u{2060}team");
        assert_eq!(reaction("eyes").unwrap(), "eyes");
        assert_eq!(reaction(":white_check_mark:").unwrap(), "+1");
        assert!(reaction("party_parrot").is_err());
    }
}
