//! Identifier newtypes shared by config, grammar and engine.
//!
//! Names that config defines (environments, apps, roles, people) are checked
//! for syntax here; whether a name *exists* is the config's business. Only
//! plain ASCII is ever accepted, so Unicode look-alikes can never pass as a
//! configured name.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Why a name or identifier was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    /// The text was empty.
    #[error("{kind} name is empty")]
    Empty {
        /// What kind of name it was meant to be.
        kind: &'static str,
    },
    /// The text was longer than names may be.
    #[error("{kind} name `{text}` is longer than {max} characters")]
    TooLong {
        /// What kind of name it was meant to be.
        kind: &'static str,
        /// The offending text, escaped for display.
        text: String,
        /// The limit.
        max: usize,
    },
    /// The text holds a character that names may not contain.
    #[error("{kind} name `{text}` contains {found}; names use only a-z, 0-9, `-` and `_` and start with a letter or digit")]
    BadChar {
        /// What kind of name it was meant to be.
        kind: &'static str,
        /// The offending text, escaped for display.
        text: String,
        /// A description of the first bad character.
        found: String,
    },
    /// An identity string that is not `platform:id` in a known form.
    #[error("identity `{text}` is not valid: {why}")]
    BadIdentity {
        /// The offending text, escaped for display.
        text: String,
        /// What is wrong with it.
        why: String,
    },
    /// A commit SHA or image digest that is not in its full form.
    #[error("`{text}` is not valid: {why}")]
    BadHash {
        /// The offending text, escaped for display.
        text: String,
        /// What form was expected.
        why: &'static str,
    },
    /// A request id that is not `R-<number>`.
    #[error("`{text}` is not a request id; request ids look like R-42")]
    BadRequestId {
        /// The offending text, escaped for display.
        text: String,
    },
}

/// Longest name accepted for environments, apps, roles and people.
pub const MAX_NAME_LEN: usize = 63;

/// Longest free text (a denial reason, an approval comment, a lock reason)
/// accepted, in characters.
pub const MAX_REMARK_CHARS: usize = 200;

/// Whether `c` may not appear in free text: control characters, bidi
/// controls and zero-width characters, which could reorder or hide what
/// others read.
pub fn is_hidden_or_control(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{061c}'
                | '\u{200b}'..='\u{200f}'
                | '\u{202a}'..='\u{202e}'
                | '\u{2060}'..='\u{2064}'
                | '\u{2066}'..='\u{2069}'
                | '\u{feff}'
        )
}

/// Escapes text for safe display in messages: control characters, bidi
/// controls, zero-width characters and other non-ASCII are shown as
/// `\u{…}` so that look-alikes are visible and nothing reorders the line.
pub fn escape_for_display(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_ascii_graphic() || c == ' ' {
            out.push(c);
        } else {
            out.push_str(&format!("\\u{{{:04x}}}", c as u32));
        }
    }
    out
}

/// Describes one character for an error message, with its code point.
pub fn describe_char(c: char) -> String {
    if c.is_ascii_graphic() {
        format!("`{c}`")
    } else if c.is_ascii() {
        format!("the control or space character U+{:04X}", c as u32)
    } else {
        format!(
            "the non-ASCII character U+{:04X} (look-alike letters are not accepted)",
            c as u32
        )
    }
}

fn check_name(kind: &'static str, text: &str) -> Result<(), NameError> {
    if text.is_empty() {
        return Err(NameError::Empty { kind });
    }
    let shown = || escape_for_display(text);
    if text.len() > MAX_NAME_LEN {
        return Err(NameError::TooLong {
            kind,
            text: shown(),
            max: MAX_NAME_LEN,
        });
    }
    for (i, c) in text.chars().enumerate() {
        let ok = c.is_ascii_lowercase() || c.is_ascii_digit() || (i > 0 && (c == '-' || c == '_'));
        if !ok {
            return Err(NameError::BadChar {
                kind,
                text: shown(),
                found: describe_char(c),
            });
        }
    }
    Ok(())
}

macro_rules! config_name {
    ($(#[$doc:meta])* $name:ident, $kind:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            /// Checks the syntax of `text` and wraps it.
            pub fn new(text: &str) -> Result<Self, NameError> {
                check_name($kind, text)?;
                Ok(Self(text.to_owned()))
            }

            /// The name as text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl TryFrom<String> for $name {
            type Error = NameError;
            fn try_from(text: String) -> Result<Self, NameError> {
                check_name($kind, &text)?;
                Ok(Self(text))
            }
        }

        impl From<$name> for String {
            fn from(name: $name) -> String {
                name.0
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl std::borrow::Borrow<str> for $name {
            fn borrow(&self) -> &str {
                &self.0
            }
        }
    };
}

config_name!(
    /// The name of an environment (`dev`, `staging`, `prod`, …).
    EnvName,
    "environment"
);
config_name!(
    /// The name of an app, a deployable unit.
    AppName,
    "app"
);
config_name!(
    /// The name of a role (`developer`, `release-manager`, …).
    RoleName,
    "role"
);
config_name!(
    /// The config key of a person (`alice`).
    PersonId,
    "person"
);
config_name!(
    /// The name of one of an environment's approval rules (`qa`, `on-duty`, …).
    RuleName,
    "approval rule"
);

/// The id of a request, shown as `R-<n>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct RequestId(pub u64);

impl fmt::Display for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "R-{}", self.0)
    }
}

impl FromStr for RequestId {
    type Err = NameError;
    fn from_str(text: &str) -> Result<Self, NameError> {
        let bad = || NameError::BadRequestId {
            text: escape_for_display(text),
        };
        let digits = text
            .strip_prefix("R-")
            .or_else(|| text.strip_prefix("r-"))
            .ok_or_else(bad)?;
        if digits.is_empty() || digits.len() > 12 || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        digits.parse().map(RequestId).map_err(|_| bad())
    }
}

impl TryFrom<String> for RequestId {
    type Error = NameError;
    fn try_from(text: String) -> Result<Self, NameError> {
        text.parse()
    }
}

impl From<RequestId> for String {
    fn from(id: RequestId) -> String {
        id.to_string()
    }
}

/// A GitHub account as config names it: by login or by numeric id.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum GithubAccount {
    /// The numeric account id, which never changes.
    Id(u64),
    /// The login, compared case-insensitively as GitHub does.
    Login(String),
}

/// Who someone is on one platform: the platform's immutable id.
///
/// Text forms: `slack:T024BE7LD:U024BE7LH`, `discord:80351110224678912`,
/// `github:octocat` or `github:583231`, `console:alice`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum Identity {
    /// A Slack user in a workspace.
    Slack {
        /// Workspace (team) id, `T…`.
        team: String,
        /// User id, `U…` or `W…`.
        user: String,
    },
    /// A Discord user snowflake.
    Discord(u64),
    /// A GitHub account.
    Github(GithubAccount),
    /// A local operator on the console.
    Console(String),
}

fn is_slack_id(text: &str, prefixes: &[char]) -> bool {
    let mut chars = text.chars();
    matches!(chars.next(), Some(c) if prefixes.contains(&c))
        && text.len() >= 3
        && text.len() <= 20
        && chars.all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
}

fn is_github_login(text: &str) -> bool {
    // GitHub logins: 1-39 alphanumerics or single hyphens, not at either end.
    !text.is_empty()
        && text.len() <= 39
        && !text.starts_with('-')
        && !text.ends_with('-')
        && !text.contains("--")
        && text.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
}

impl FromStr for Identity {
    type Err = NameError;
    fn from_str(text: &str) -> Result<Self, NameError> {
        let bad = |why: &str| NameError::BadIdentity {
            text: escape_for_display(text),
            why: why.to_owned(),
        };
        let (platform, rest) = text
            .split_once(':')
            .ok_or_else(|| bad("expected `platform:id`, e.g. `github:octocat`"))?;
        match platform {
            "slack" => {
                let (team, user) = rest
                    .split_once(':')
                    .ok_or_else(|| bad("Slack identities are `slack:<team id>:<user id>`"))?;
                if !is_slack_id(team, &['T', 'E']) {
                    return Err(bad("Slack team ids look like T024BE7LD"));
                }
                if !is_slack_id(user, &['U', 'W']) {
                    return Err(bad("Slack user ids look like U024BE7LH"));
                }
                Ok(Identity::Slack {
                    team: team.to_owned(),
                    user: user.to_owned(),
                })
            }
            "discord" => {
                let ok = !rest.is_empty()
                    && rest.len() <= 20
                    && rest.bytes().all(|b| b.is_ascii_digit());
                rest.parse()
                    .ok()
                    .filter(|_| ok)
                    .map(Identity::Discord)
                    .ok_or_else(|| bad("Discord identities are numeric user ids"))
            }
            "github" => {
                if !rest.is_empty() && rest.bytes().all(|b| b.is_ascii_digit()) {
                    rest.parse()
                        .map(|id| Identity::Github(GithubAccount::Id(id)))
                        .map_err(|_| bad("GitHub account id is too large"))
                } else if is_github_login(rest) {
                    Ok(Identity::Github(GithubAccount::Login(
                        rest.to_ascii_lowercase(),
                    )))
                } else {
                    Err(bad("GitHub identities are a login or a numeric account id"))
                }
            }
            "console" => {
                check_name("console user", rest).map_err(|e| bad(&e.to_string()))?;
                Ok(Identity::Console(rest.to_owned()))
            }
            _ => Err(bad("platform must be slack, discord, github or console")),
        }
    }
}

impl fmt::Display for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Identity::Slack { team, user } => write!(f, "slack:{team}:{user}"),
            Identity::Discord(id) => write!(f, "discord:{id}"),
            Identity::Github(GithubAccount::Id(id)) => write!(f, "github:{id}"),
            Identity::Github(GithubAccount::Login(login)) => write!(f, "github:{login}"),
            Identity::Console(name) => write!(f, "console:{name}"),
        }
    }
}

impl TryFrom<String> for Identity {
    type Error = NameError;
    fn try_from(text: String) -> Result<Self, NameError> {
        text.parse()
    }
}

impl From<Identity> for String {
    fn from(identity: Identity) -> String {
        identity.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_accept_plain_ascii_only() {
        for good in ["dev", "prod-eu", "release_manager", "a1", "9lives"] {
            assert!(EnvName::new(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "Dev",
            "-dev",
            "d ev",
            "dеv",
            "dev\u{200b}",
            "ｄｅｖ",
            "dev.x",
        ] {
            assert!(EnvName::new(bad).is_err(), "{bad:?}");
        }
        let long = "a".repeat(64);
        assert!(matches!(
            EnvName::new(&long),
            Err(NameError::TooLong { .. })
        ));
    }

    #[test]
    fn look_alike_error_names_the_code_point() {
        let err = EnvName::new("dеv").unwrap_err().to_string();
        assert!(err.contains("U+0435"), "{err}");
        assert!(err.contains(r"d\u{0435}v"), "{err}");
    }

    #[test]
    fn request_ids_round_trip() {
        assert_eq!("R-1042".parse::<RequestId>().unwrap(), RequestId(1042));
        assert_eq!("r-7".parse::<RequestId>().unwrap().to_string(), "R-7");
        for bad in ["R-", "R-x", "1042", "R-1 ", "R--1", "R-9999999999999"] {
            assert!(bad.parse::<RequestId>().is_err(), "{bad}");
        }
    }

    #[test]
    fn identities_parse_and_print() {
        let cases = [
            "slack:T024BE7LD:U024BE7LH",
            "discord:80351110224678912",
            "github:octocat",
            "github:583231",
            "console:alice",
        ];
        for text in cases {
            let id: Identity = text.parse().unwrap();
            assert_eq!(id.to_string(), text);
        }
        assert_eq!(
            "github:OctoCat".parse::<Identity>().unwrap().to_string(),
            "github:octocat"
        );
        for bad in [
            "alice",
            "slack:U024BE7LH",
            "slack:t1:u1",
            "discord:abc",
            "github:-x",
            "github:a--b",
            "mastodon:x",
            "console:Alice",
        ] {
            assert!(bad.parse::<Identity>().is_err(), "{bad}");
        }
    }

    #[test]
    fn display_escaping_reveals_hidden_characters() {
        assert_eq!(escape_for_display("a\u{202e}b"), r"a\u{202e}b");
        assert_eq!(escape_for_display("x\ny"), r"x\u{000a}y");
        assert_eq!(escape_for_display("plain text"), "plain text");
    }
}

/// A full, resolved 40-digit commit SHA (lowercase hex).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Sha(String);

impl Sha {
    /// Checks that `text` is 40 lowercase hex digits.
    pub fn new(text: &str) -> Result<Sha, NameError> {
        let ok = text.len() == 40
            && text
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        if ok {
            Ok(Sha(text.to_owned()))
        } else {
            Err(NameError::BadHash {
                text: escape_for_display(text),
                why: "a commit SHA is 40 lowercase hex digits",
            })
        }
    }

    /// The SHA as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The first 7 digits, as people quote it.
    pub fn short(&self) -> &str {
        &self.0[..7]
    }
}

impl fmt::Display for Sha {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for Sha {
    type Error = NameError;
    fn try_from(text: String) -> Result<Self, NameError> {
        Sha::new(&text)
    }
}

impl From<Sha> for String {
    fn from(sha: Sha) -> String {
        sha.0
    }
}

/// A content digest of an image manifest: `sha256:` and 64 lowercase hex digits.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Digest(String);

impl Digest {
    /// Checks that `text` is `sha256:` followed by 64 lowercase hex digits.
    pub fn new(text: &str) -> Result<Digest, NameError> {
        let ok = text.strip_prefix("sha256:").is_some_and(|hex| {
            hex.len() == 64
                && hex
                    .bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        });
        if ok {
            Ok(Digest(text.to_owned()))
        } else {
            Err(NameError::BadHash {
                text: escape_for_display(text),
                why: "an image digest is `sha256:` and 64 lowercase hex digits",
            })
        }
    }

    /// The digest as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// `sha256:` and the first 12 digits, as people quote it.
    pub fn short(&self) -> &str {
        &self.0[..19]
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for Digest {
    type Error = NameError;
    fn try_from(text: String) -> Result<Self, NameError> {
        Digest::new(&text)
    }
}

impl From<Digest> for String {
    fn from(digest: Digest) -> String {
        digest.0
    }
}
