//! Splits command text into words, keeping each word's position.
//!
//! Words are separated by whitespace. A double-quoted span (`"…"`, or the
//! curly `“…”` that chat clients substitute) is one word that is never read
//! as a flag, so a reason may say anything.

/// One word of the input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token<'a> {
    /// The word, without its quotes.
    pub text: &'a str,
    /// 1-based character column where the word starts.
    pub column: usize,
    /// True when the word was quoted.
    pub quoted: bool,
}

impl Token<'_> {
    /// True for `--something` written without quotes.
    pub fn is_flag(&self) -> bool {
        !self.quoted && self.text.starts_with("--")
    }
}

/// A quote that was opened and never closed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnclosedQuote {
    /// 1-based character column of the opening quote.
    pub column: usize,
}

/// Splits `text` into tokens.
pub fn tokenize(text: &str) -> Result<Vec<Token<'_>>, UnclosedQuote> {
    let mut tokens = Vec::new();
    let mut chars = text.char_indices().enumerate().peekable();
    while let Some((column, (start, c))) = chars.next() {
        if c.is_whitespace() {
            continue;
        }
        if c == '"' || c == '“' {
            let body_start = start + c.len_utf8();
            // A closing quote glued to more text ends the quoted word; the
            // rest becomes the next word.
            let close = chars
                .by_ref()
                .find(|(_, (_, d))| *d == '"' || *d == '”')
                .map(|(_, (i, _))| i)
                .ok_or(UnclosedQuote { column: column + 1 })?;
            tokens.push(Token {
                text: &text[body_start..close],
                column: column + 1,
                quoted: true,
            });
            continue;
        }
        let mut end = text.len();
        while let Some(&(_, (i, d))) = chars.peek() {
            if d.is_whitespace() {
                end = i;
                break;
            }
            chars.next();
        }
        tokens.push(Token {
            text: &text[start..end],
            column: column + 1,
            quoted: false,
        });
    }
    Ok(tokens)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(text: &str) -> Vec<(String, usize, bool)> {
        tokenize(text)
            .unwrap()
            .into_iter()
            .map(|t| (t.text.to_owned(), t.column, t.quoted))
            .collect()
    }

    #[test]
    fn splits_on_whitespace_with_columns() {
        assert_eq!(
            words("  deploy  feat-x\tto dev "),
            [
                ("deploy".into(), 3, false),
                ("feat-x".into(), 11, false),
                ("to".into(), 18, false),
                ("dev".into(), 21, false),
            ]
        );
    }

    #[test]
    fn quotes_make_one_word() {
        assert_eq!(
            words(r#"lock prod "db --migration" x"#),
            [
                ("lock".into(), 1, false),
                ("prod".into(), 6, false),
                ("db --migration".into(), 11, true),
                ("x".into(), 28, false),
            ]
        );
        assert_eq!(words("lock prod “freeze”")[2], ("freeze".into(), 11, true));
        assert_eq!(tokenize(r#"lock "oops"#), Err(UnclosedQuote { column: 6 }));
    }

    #[test]
    fn flags_are_unquoted_double_dash_words() {
        let tokens = tokenize(r#"--dry-run "--dry-run" -x"#).unwrap();
        let flags: Vec<bool> = tokens.iter().map(Token::is_flag).collect();
        assert_eq!(flags, [true, false, false]);
    }
}
