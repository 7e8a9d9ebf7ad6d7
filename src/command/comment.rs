//! Finding the command in a pull request comment.
//!
//! A command is a line that starts with `/gantry ` (the full grammar) or
//! `/deploy ` (short for `/gantry deploy`). Lines inside fenced or indented
//! code blocks and quoted lines (`> …`) are not commands, so quoting or
//! documenting a command never runs it. One command per comment.

use super::error::{shown, ParseError};
use super::{Command, Grammar, Vocabulary};

/// The command line found in a comment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommentCommand {
    /// The text to parse, with `/gantry` removed (`/deploy x` becomes `deploy x`).
    pub text: String,
    /// 1-based line number in the comment.
    pub line: usize,
}

/// Finds the one command line in a comment body, if any.
pub fn extract_command(body: &str) -> Result<Option<CommentCommand>, ParseError> {
    let mut fence: Option<(char, usize)> = None;
    let mut found: Option<CommentCommand> = None;
    for (index, raw) in body.lines().enumerate() {
        let indent = raw.len() - raw.trim_start_matches(' ').len();
        let line = raw.trim_start_matches(' ');
        if let Some((marker, len)) = fence {
            let closing = line.chars().take_while(|&c| c == marker).count();
            if indent < 4 && closing >= len && line[closing..].trim().is_empty() {
                fence = None;
            }
            continue;
        }
        if indent < 4 {
            if let Some(opened) = fence_opening(line) {
                fence = Some(opened);
                continue;
            }
        }
        if indent >= 4 || raw.starts_with('\t') || line.starts_with('>') {
            continue;
        }
        let Some(text) = command_text(line.trim_end()) else {
            continue;
        };
        let here = CommentCommand {
            text,
            line: index + 1,
        };
        if let Some(first) = found {
            return Err(ParseError::SeveralCommands {
                first: shown(&first.text),
                second: shown(&here.text),
            });
        }
        found = Some(here);
    }
    Ok(found)
}

fn fence_opening(line: &str) -> Option<(char, usize)> {
    let marker = line.chars().next().filter(|c| *c == '`' || *c == '~')?;
    let len = line.chars().take_while(|&c| c == marker).count();
    (len >= 3).then_some((marker, len))
}

fn command_text(line: &str) -> Option<String> {
    let word_end = line.find(char::is_whitespace).unwrap_or(line.len());
    let (word, rest) = line.split_at(word_end);
    match word {
        "/gantry" => Some(rest.trim().to_owned()),
        "/deploy" => Some(format!("deploy {}", rest.trim()).trim_end().to_owned()),
        _ => None,
    }
}

impl Grammar {
    /// Parses the command in a comment on pull request `number`, if it has one.
    pub fn parse_comment(
        &self,
        body: &str,
        number: u64,
        vocabulary: &Vocabulary,
    ) -> Result<Option<Command>, ParseError> {
        match extract_command(body)? {
            Some(found) => self
                .parse_for_pull_request(&found.text, number, vocabulary)
                .map(Some),
            None => Ok(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(body: &str) -> Option<String> {
        extract_command(body).unwrap().map(|c| c.text)
    }

    #[test]
    fn finds_command_lines() {
        assert_eq!(text("/deploy dev"), Some("deploy dev".into()));
        assert_eq!(text("/deploy"), Some("deploy".into()));
        assert_eq!(
            text("LGTM\n\n/gantry promote dev to staging\nthanks"),
            Some("promote dev to staging".into())
        );
        assert_eq!(text("  /gantry status"), Some("status".into()));
        assert_eq!(text("/gantry"), Some(String::new()));
    }

    #[test]
    fn ignores_code_quotes_and_prose() {
        for body in [
            "```\n/deploy prod\n```",
            "~~~~\n/deploy prod\n~~~~",
            "```sh\n/deploy prod\n```\n",
            "> /deploy prod",
            ">/deploy prod",
            "    /deploy prod",
            "\t/deploy prod",
            "`/deploy prod`",
            "please /deploy prod",
            "/deployprod",
            "/gantryx status",
        ] {
            assert_eq!(text(body), None, "{body:?}");
        }
        // A command after a closed fence still counts.
        assert_eq!(text("```\nx\n```\n/deploy dev"), Some("deploy dev".into()));
        // An unclosed fence hides the rest of the comment.
        assert_eq!(text("```\n/deploy dev"), None);
    }

    #[test]
    fn refuses_two_commands() {
        let err = extract_command("/deploy dev\n/deploy prod").unwrap_err();
        assert!(err.to_string().contains("one command per comment"), "{err}");
    }
}
