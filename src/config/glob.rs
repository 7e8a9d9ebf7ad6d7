//! Branch patterns. A glob: `*` matches within one path segment, `**`
//! across `/`, `?` one character other than `/`; everything else is literal.
//! Or a regular expression written `re:<pattern>`, which must match the
//! whole branch name. Both compile to one anchored `regex` (linear-time
//! matching) with a bounded size, checked when config loads.

use std::fmt;

use regex::{Regex, RegexBuilder};

/// The prefix that marks a regular expression in `refs`.
pub const REGEX_PREFIX: &str = "re:";

/// The most memory one compiled pattern may take, in bytes.
pub const SIZE_LIMIT: usize = 64 * 1024;

/// The longest pattern accepted, in bytes.
pub const MAX_PATTERN_LEN: usize = 512;

/// A branch glob such as `release/*` or `**`, or a `re:` pattern.
#[derive(Debug, Clone)]
pub struct RefPattern {
    text: String,
    regex: Regex,
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
    /// The pattern is longer than [`MAX_PATTERN_LEN`].
    #[error("branch pattern `{pattern}…` is longer than {limit} bytes")]
    TooLong {
        /// The pattern's start, escaped for display.
        pattern: String,
        /// The limit, bytes.
        limit: usize,
    },
    /// A `re:` pattern that is not a valid regular expression.
    #[error("branch pattern `{pattern}` is not a valid regular expression: {reason}")]
    BadRegex {
        /// The pattern, escaped for display.
        pattern: String,
        /// What the regex parser said.
        reason: String,
    },
    /// A pattern whose compiled form exceeds [`SIZE_LIMIT`].
    #[error("branch pattern `{pattern}` is too large once compiled (limit {limit} bytes); simplify it, e.g. fewer or smaller repetitions")]
    TooBig {
        /// The pattern, escaped for display.
        pattern: String,
        /// The limit, bytes.
        limit: usize,
    },
}

impl RefPattern {
    /// Compiles a glob, or a regular expression written `re:<pattern>`.
    pub fn new(text: &str) -> Result<RefPattern, PatternError> {
        let shown = || crate::names::escape_for_display(text);
        if text.len() > MAX_PATTERN_LEN {
            let mut end = 40;
            while !text.is_char_boundary(end) {
                end -= 1;
            }
            return Err(PatternError::TooLong {
                pattern: crate::names::escape_for_display(&text[..end]),
                limit: MAX_PATTERN_LEN,
            });
        }
        let body = match text.strip_prefix(REGEX_PREFIX) {
            Some("") => return Err(PatternError::Empty),
            Some(re) => re.to_owned(),
            None => glob_to_regex(text)?,
        };
        // Anchored on both ends: a pattern matches the whole branch name,
        // never a part of it.
        let anchored = format!(r"\A(?:{body})\z");
        let regex = RegexBuilder::new(&anchored)
            .size_limit(SIZE_LIMIT)
            .dfa_size_limit(SIZE_LIMIT)
            .build()
            .map_err(|e| match e {
                regex::Error::CompiledTooBig(limit) => PatternError::TooBig {
                    pattern: shown(),
                    limit,
                },
                other => PatternError::BadRegex {
                    pattern: shown(),
                    reason: last_line(&other.to_string()),
                },
            })?;
        Ok(RefPattern {
            text: text.to_owned(),
            regex,
        })
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Whether `branch` matches the whole pattern.
    pub fn matches(&self, branch: &str) -> bool {
        self.regex.is_match(branch)
    }
}

impl PartialEq for RefPattern {
    fn eq(&self, other: &RefPattern) -> bool {
        self.text == other.text
    }
}

impl Eq for RefPattern {}

impl fmt::Display for RefPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// The regex for a glob: `*` is `[^/]*`, `**` any text, `?` one character
/// other than `/`, the rest literal.
fn glob_to_regex(text: &str) -> Result<String, PatternError> {
    if text.is_empty() {
        return Err(PatternError::Empty);
    }
    let shown = || crate::names::escape_for_display(text);
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '*' {
            let run = chars[i..].iter().take_while(|c| **c == '*').count();
            match run {
                1 => out.push_str("[^/]*"),
                2 => out.push_str("(?s:.)*"),
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
        if c == '?' {
            out.push_str("[^/]");
        } else {
            out.push_str(&regex::escape(c.encode_utf8(&mut [0; 4])));
        }
        i += 1;
    }
    Ok(out)
}

/// The regex crate's own sentence: the last line of its message, which
/// otherwise draws the pattern over several lines.
fn last_line(message: &str) -> String {
    let line = message
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or(message)
        .trim();
    crate::names::escape_for_display(line.strip_prefix("error: ").unwrap_or(line))
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
            // Regex metacharacters in a glob are literal.
            ("v1.2", "v1x2", false),
            ("v1.2", "v1.2", true),
            ("a+b", "aab", false),
            ("a+b", "a+b", true),
            ("(x)|y", "y", false),
            ("(x)|y", "(x)|y", true),
            ("$HOME", "$HOME", true),
            ("fix-?", "fix-\u{e9}", true),
            ("**/fix-*", "fix-login", false),
            ("*", "main\nx", true),
        ];
        for (pattern, branch, want) in cases {
            let p = RefPattern::new(pattern).unwrap();
            assert_eq!(p.matches(branch), want, "{pattern} vs {branch}");
        }
    }

    #[test]
    fn regex_patterns_match_the_whole_name() {
        let p = RefPattern::new(r"re:^release/v[0-9]+\.[0-9]+$").unwrap();
        assert_eq!(p.as_str(), r"re:^release/v[0-9]+\.[0-9]+$");
        let cases = [
            ("release/v1.2", true),
            ("release/v10.20", true),
            ("release/v1.2.3", false),
            ("release/v1", false),
            ("release/v1x2", false),
            ("xrelease/v1.2", false),
        ];
        for (branch, want) in cases {
            assert_eq!(p.matches(branch), want, "{branch}");
        }
        // Anchored even when the pattern is not: no match inside a name.
        let unanchored = RefPattern::new("re:main|develop").unwrap();
        assert!(unanchored.matches("main"));
        assert!(unanchored.matches("develop"));
        assert!(!unanchored.matches("evil-main"));
        assert!(!unanchored.matches("develop-x"));
        // Multi-line mode cannot reopen the anchors.
        let multi = RefPattern::new("re:(?m)^main$").unwrap();
        assert!(!multi.matches("x\nmain"));
    }

    #[test]
    fn bad_patterns() {
        assert_eq!(RefPattern::new(""), Err(PatternError::Empty));
        assert_eq!(RefPattern::new("re:"), Err(PatternError::Empty));
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
        match RefPattern::new("re:release/(v[0-9]+") {
            Err(PatternError::BadRegex { pattern, reason }) => {
                assert_eq!(pattern, "re:release/(v[0-9]+");
                assert!(reason.contains("unclosed group"), "{reason}");
                assert!(!reason.contains('\n'), "{reason}");
            }
            other => panic!("{other:?}"),
        }
        match RefPattern::new(r"re:\w{200}") {
            Err(PatternError::TooBig { limit, .. }) => assert_eq!(limit, SIZE_LIMIT),
            other => panic!("{other:?}"),
        }
        match RefPattern::new(&format!("re:{}", "a".repeat(600))) {
            Err(PatternError::TooLong { limit, .. }) => assert_eq!(limit, MAX_PATTERN_LEN),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn long_inputs_stay_fast() {
        let p = RefPattern::new(&"*a".repeat(50)).unwrap();
        assert!(!p.matches(&"a".repeat(49)));
        assert!(p.matches(&"a".repeat(5000)));
        let r = RefPattern::new("re:(a|aa)*b").unwrap();
        assert!(!r.matches(&"a".repeat(5000)));
    }
}
