//! Branch patterns: `*` matches within one path segment, `**` across `/`,
//! `?` one character other than `/`; everything else is literal.

use std::fmt;

/// One compiled piece of a pattern.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Token {
    Literal(char),
    One,
    Star,
    DoubleStar,
}

/// A branch glob such as `release/*` or `**`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefPattern {
    text: String,
    tokens: Vec<Token>,
}

/// Why a branch pattern was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PatternError {
    /// The pattern was empty.
    #[error("branch pattern is empty")]
    Empty,
    /// The pattern holds a character that no branch name can contain.
    #[error("branch pattern `{pattern}` contains {found}, which no branch name can contain")]
    BadChar {
        /// The pattern, escaped for display.
        pattern: String,
        /// The character, described.
        found: String,
    },
    /// Three or more `*` in a row.
    #[error("branch pattern `{pattern}` has `***`; use `*` or `**`")]
    TooManyStars {
        /// The pattern, escaped for display.
        pattern: String,
    },
}

impl RefPattern {
    /// Compiles a pattern.
    pub fn new(text: &str) -> Result<RefPattern, PatternError> {
        if text.is_empty() {
            return Err(PatternError::Empty);
        }
        let shown = || crate::names::escape_for_display(text);
        let mut tokens = Vec::new();
        let chars: Vec<char> = text.chars().collect();
        let mut i = 0;
        while i < chars.len() {
            let c = chars[i];
            if c == '*' {
                let run = chars[i..].iter().take_while(|c| **c == '*').count();
                match run {
                    1 => tokens.push(Token::Star),
                    2 => tokens.push(Token::DoubleStar),
                    _ => return Err(PatternError::TooManyStars { pattern: shown() }),
                }
                i += run;
                continue;
            }
            // Characters git forbids in ref names (git-check-ref-format).
            if !c.is_ascii_graphic() || matches!(c, '~' | '^' | ':' | '\\' | '[') {
                return Err(PatternError::BadChar {
                    pattern: shown(),
                    found: crate::names::describe_char(c),
                });
            }
            tokens.push(if c == '?' {
                Token::One
            } else {
                Token::Literal(c)
            });
            i += 1;
        }
        Ok(RefPattern {
            text: text.to_owned(),
            tokens,
        })
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Whether `branch` matches the whole pattern.
    pub fn matches(&self, branch: &str) -> bool {
        let text: Vec<char> = branch.chars().collect();
        // reach[j]: the tokens seen so far can consume exactly text[..j].
        // Dynamic programming keeps matching linear in pattern x text.
        let mut reach = vec![false; text.len() + 1];
        reach[0] = true;
        for token in &self.tokens {
            let mut next = vec![false; text.len() + 1];
            match token {
                Token::Literal(c) => {
                    for j in 0..text.len() {
                        next[j + 1] = reach[j] && text[j] == *c;
                    }
                }
                Token::One => {
                    for j in 0..text.len() {
                        next[j + 1] = reach[j] && text[j] != '/';
                    }
                }
                Token::Star | Token::DoubleStar => {
                    let crosses = *token == Token::DoubleStar;
                    next[0] = reach[0];
                    for j in 1..=text.len() {
                        next[j] = reach[j] || (next[j - 1] && (crosses || text[j - 1] != '/'));
                    }
                }
            }
            reach = next;
        }
        reach[text.len()]
    }
}

impl fmt::Display for RefPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matching_table() {
        let cases = [
            ("*", "main", true),
            ("*", "feat/x", false),
            ("**", "feat/x/y", true),
            ("**", "", true),
            ("main", "main", true),
            ("main", "mainline", false),
            ("release/*", "release/1.2", true),
            ("release/*", "release/1.2/hotfix", false),
            ("release/**", "release/1.2/hotfix", true),
            ("release/**", "releases/1", false),
            ("feat-?", "feat-a", true),
            ("feat-?", "feat-ab", false),
            ("feat-?", "feat-/", false),
            ("*/fix-*", "alice/fix-login", true),
            ("*/fix-*", "alice/x/fix-login", false),
            ("**/fix-*", "alice/x/fix-login", true),
            ("v*.*", "v1.2", true),
            ("v*.*", "v12", false),
            ("hotfix/*", "hotfix/", true),
        ];
        for (pattern, branch, want) in cases {
            let p = RefPattern::new(pattern).unwrap();
            assert_eq!(p.matches(branch), want, "{pattern} vs {branch}");
        }
    }

    #[test]
    fn bad_patterns() {
        assert_eq!(RefPattern::new(""), Err(PatternError::Empty));
        for bad in [
            "a b",
            "a~1",
            "a^",
            "x:y",
            "***",
            "a\\b",
            "[ab]",
            "ma\u{0456}n",
        ] {
            assert!(RefPattern::new(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn long_inputs_stay_fast() {
        let p = RefPattern::new(&"*a".repeat(50)).unwrap();
        assert!(!p.matches(&"a".repeat(49)));
        assert!(p.matches(&"a".repeat(5000)));
    }
}
