//! Why text did not parse, in words a person can act on.

use crate::names::escape_for_display;

/// A parse failure. Every variant says what is wrong and, where one
/// command is clearly meant, how that command is used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// Longer than [`super::MAX_COMMAND_LEN`].
    #[error("command is {len} bytes long; the limit is {max}")]
    TooLong {
        /// Its length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// Nothing but whitespace.
    #[error("no command given; say `help` to see the commands")]
    Empty,
    /// A quote was opened and not closed.
    #[error("the quote opened at column {column} is never closed")]
    UnclosedQuote {
        /// Where it opened.
        column: usize,
    },
    /// The first word starts no command.
    #[error("unknown command `{word}`{}; say `help` to see the commands", suggestion_text(.suggestion))]
    UnknownCommand {
        /// The word, escaped for display.
        word: String,
        /// Usage of the closest command, if one is close.
        suggestion: Option<String>,
    },
    /// A flag the command does not declare.
    #[error("`{command}` has no flag `{flag}` (column {column}); usage: {usage}")]
    UnknownFlag {
        /// The command.
        command: String,
        /// The flag, escaped for display.
        flag: String,
        /// Where it stands.
        column: usize,
        /// The command's usage.
        usage: String,
    },
    /// The words do not fit any of the command's patterns.
    #[error("{problem}; usage: {usage}")]
    Shape {
        /// What is missing, extra or unexpected, with its column.
        problem: String,
        /// The command's usage.
        usage: String,
    },
    /// The words fit, but a value is not acceptable.
    #[error("{problem} (column {column}); usage: {usage}")]
    BadValue {
        /// What is wrong with the value.
        problem: String,
        /// Where the value stands.
        column: usize,
        /// The command's usage.
        usage: String,
    },
    /// A pull request comment without any command line.
    #[error("the comment has no line starting with `/gantry` or `/deploy` (code blocks and quotes do not count)")]
    NoCommandInComment,
    /// A pull request comment with more than one command line.
    #[error("one command per comment, please: found `{first}` and `{second}`")]
    SeveralCommands {
        /// The first command line, escaped.
        first: String,
        /// The second command line, escaped.
        second: String,
    },
}

fn suggestion_text(suggestion: &Option<String>) -> String {
    match suggestion {
        Some(usage) => format!("; did you mean `{usage}`?"),
        None => String::new(),
    }
}

/// Quotes a word of user text for an error message.
pub(super) fn shown(text: &str) -> String {
    const MAX_SHOWN: usize = 40;
    let escaped = escape_for_display(text);
    if escaped.chars().count() > MAX_SHOWN {
        let cut: String = escaped.chars().take(MAX_SHOWN).collect();
        format!("{cut}…")
    } else {
        escaped
    }
}
