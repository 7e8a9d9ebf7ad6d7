//! What Gantry's chat messages are made of on each platform, shared by
//! what sends them (the notifiers) and what reads them back (the inbound
//! decoders): the ids of the controls it renders, and the escaping that
//! keeps any text from mentioning people or forming links.

/// Slack.
pub mod slack {
    /// Action id of the Approve button on a progress message.
    pub const APPROVE_ACTION: &str = "gantry_approve";
    /// Action id of the Deny button.
    pub const DENY_ACTION: &str = "gantry_deny";
    /// Action id of the Roll back button on a verifying request's message.
    pub const ROLLBACK_ACTION: &str = "gantry_rollback";
    /// Action id of the Complete button on a verifying request's message.
    pub const COMPLETE_ACTION: &str = "gantry_complete";

    /// Escapes text for Slack so that it cannot mention anyone or form
    /// links: `&`, `<` and `>` become entities, as Slack's formatting rules
    /// require.
    pub fn escape(text: &str) -> String {
        text.replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
    }
}

/// Discord.
pub mod discord {
    /// Custom id prefix of the Approve button: `gantry_approve:R-7`.
    pub const APPROVE_BUTTON: &str = "gantry_approve";
    /// Custom id prefix of the Deny button: `gantry_deny:R-7`.
    pub const DENY_BUTTON: &str = "gantry_deny";
    /// Custom id prefix of the Roll back button: `gantry_rollback:R-7`.
    pub const ROLLBACK_BUTTON: &str = "gantry_rollback";
    /// Custom id prefix of the Complete button: `gantry_complete:R-7`.
    pub const COMPLETE_BUTTON: &str = "gantry_complete";
    /// The application command Gantry registers in each guild.
    pub const COMMAND: &str = "gantry";
    /// Its one string option, the command text.
    pub const TEXT_OPTION: &str = "text";

    /// Neutralises mentions: a zero-width space after every `@` stops
    /// `@everyone`, `@here`, `<@id>` and `<@&role>` from pinging anyone.
    pub fn escape(text: &str) -> String {
        text.replace('@', "@\u{200B}")
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn slack_text_cannot_mention_or_link() {
        assert_eq!(
            super::slack::escape("<!here> & <@U1|x>"),
            "&lt;!here&gt; &amp; &lt;@U1|x&gt;"
        );
    }

    #[test]
    fn discord_text_cannot_ping() {
        assert_eq!(super::discord::escape("@everyone"), "@\u{200B}everyone");
    }
}
