//! Git refs as users type them: branch or tag names, SHAs and `#123`.
//!
//! Names must pass git's ref-name rules (`git check-ref-format --branch`)
//! and Gantry is stricter still: only ASCII letters, digits and `._/-+@=,#`,
//! at most 200 bytes, and never a leading `-`, so a ref can never be
//! mistaken for an option or shell syntax by any program it is handed to.

use std::fmt;

use serde::ser::SerializeStruct;
use serde::{Serialize, Serializer};

use crate::names::{describe_char, escape_for_display};

/// Longest ref name Gantry accepts.
pub const MAX_REF_LEN: usize = 200;

/// A ref as the user wrote it, classified but not yet resolved.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum GitRef {
    /// A branch or tag name; the forge decides which.
    Name(String),
    /// 7 to 39 lowercase hex digits: an abbreviated commit SHA.
    ShortSha(String),
    /// 40 lowercase hex digits: a full commit SHA.
    FullSha(String),
    /// `#123`: the head commit of pull request 123.
    PullRequest(u64),
}

/// Why text is not an acceptable ref.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{shown}` is not a valid git ref: {why}")]
pub struct RefError {
    /// The text, escaped for display.
    pub shown: String,
    /// Which rule it breaks.
    pub why: String,
}

impl GitRef {
    /// Classifies and checks `text`.
    pub fn parse(text: &str) -> Result<GitRef, RefError> {
        if let Some(number) = text.strip_prefix('#') {
            return parse_pull_number(text, number).map(GitRef::PullRequest);
        }
        check_ref_name(text)?;
        let hex = text
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        Ok(match text.len() {
            40 if hex => GitRef::FullSha(text.to_owned()),
            7..=39 if hex => GitRef::ShortSha(text.to_owned()),
            _ => GitRef::Name(text.to_owned()),
        })
    }

    /// The ref as the user typed it.
    pub fn text(&self) -> String {
        match self {
            GitRef::Name(s) | GitRef::ShortSha(s) | GitRef::FullSha(s) => s.clone(),
            GitRef::PullRequest(n) => format!("#{n}"),
        }
    }

    /// A short word for what kind of ref this is.
    pub fn kind(&self) -> &'static str {
        match self {
            GitRef::Name(_) => "name",
            GitRef::ShortSha(_) => "short_sha",
            GitRef::FullSha(_) => "full_sha",
            GitRef::PullRequest(_) => "pull_request",
        }
    }
}

impl fmt::Display for GitRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text())
    }
}

/// Serialized as two fields, `ref` and `ref_kind`, for flattening into a command.
impl Serialize for GitRef {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut s = serializer.serialize_struct("GitRef", 2)?;
        s.serialize_field("ref", &self.text())?;
        s.serialize_field("ref_kind", self.kind())?;
        s.end()
    }
}

fn parse_pull_number(text: &str, number: &str) -> Result<u64, RefError> {
    let ok = !number.is_empty()
        && number.len() <= 10
        && number.bytes().all(|b| b.is_ascii_digit())
        && !number.starts_with('0');
    number.parse().ok().filter(|_| ok).ok_or_else(|| RefError {
        shown: escape_for_display(text),
        why: "a pull request is `#` followed by its number, e.g. `#123`".into(),
    })
}

/// A branch name, as `teardown` takes it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct BranchName(String);

impl BranchName {
    /// Checks `text` against the ref-name rules.
    pub fn parse(text: &str) -> Result<BranchName, RefError> {
        check_ref_name(text)?;
        Ok(BranchName(text.to_owned()))
    }

    /// The branch name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for BranchName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Punctuation Gantry accepts in ref names, beyond letters and digits. Git
/// allows more (`$`, `;`, backticks, …) but no real branch needs them, and
/// refusing them keeps refs inert wherever they are shown or passed on.
const REF_PUNCTUATION: &str = "._/-+@=,#";

fn is_ref_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || REF_PUNCTUATION.contains(c)
}

/// Applies git's ref-name rules (see `git help check-ref-format`) plus
/// Gantry's stricter ones. Returns the first rule broken.
pub fn check_ref_name(text: &str) -> Result<(), RefError> {
    let fail = |why: String| RefError {
        shown: escape_for_display(text),
        why,
    };
    if text.is_empty() {
        return Err(fail("it is empty".into()));
    }
    if text.len() > MAX_REF_LEN {
        return Err(fail(format!("it is longer than {MAX_REF_LEN} bytes")));
    }
    if let Some(c) = text.chars().find(|c| !c.is_ascii_graphic()) {
        return Err(fail(format!(
            "it contains {}; refs are printable ASCII without spaces",
            describe_char(c)
        )));
    }
    if text.starts_with('-') {
        return Err(fail(
            "it starts with `-`, which would read as an option".into(),
        ));
    }
    if let Some(c) = text.chars().find(|c| "~^:?*[\\".contains(*c)) {
        return Err(fail(format!("git does not allow `{c}` in ref names")));
    }
    if text == "@" {
        return Err(fail("`@` alone is not a ref name".into()));
    }
    if text.contains("@{") {
        return Err(fail("git does not allow `@{` in ref names".into()));
    }
    if let Some(c) = text.chars().find(|c| !is_ref_char(*c)) {
        return Err(fail(format!(
            "`{c}` is not accepted in refs; use letters, digits and {REF_PUNCTUATION}"
        )));
    }
    if text.contains("..") {
        return Err(fail("git does not allow `..` in ref names".into()));
    }
    if text.starts_with('/') || text.ends_with('/') || text.contains("//") {
        return Err(fail(
            "a ref may not start or end with `/` or contain `//`".into(),
        ));
    }
    if text.ends_with('.') {
        return Err(fail("a ref may not end with `.`".into()));
    }
    for part in text.split('/') {
        if part.starts_with('.') {
            return Err(fail(format!("the part `{part}` starts with `.`")));
        }
        if part.ends_with(".lock") {
            return Err(fail(format!("the part `{part}` ends with `.lock`")));
        }
    }
    if text == "HEAD" {
        return Err(fail(
            "`HEAD` is not a branch or tag; name the branch".into(),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_refs() {
        let cases = [
            ("feat-x", "name"),
            ("release/2026.11", "name"),
            ("v1.2.3", "name"),
            ("abc1234", "short_sha"),
            ("0123456789abcdef0123456789abcdef01234567", "full_sha"),
            ("ABC1234", "name"),
            ("abc123", "name"),
            ("#123", "pull_request"),
        ];
        for (text, kind) in cases {
            let r = GitRef::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"));
            assert_eq!(r.kind(), kind, "{text}");
            assert_eq!(r.text(), text);
        }
    }

    #[test]
    fn rejects_what_git_rejects_and_more() {
        let cases = [
            ("", "empty"),
            ("-rf", "starts with `-`"),
            ("--upload-pack=x", "starts with `-`"),
            ("a..b", "`..`"),
            ("a b", "U+0020"),
            ("feat\u{200b}x", "U+200B"),
            ("fеat", "U+0435"),
            ("a~1", "`~`"),
            ("a^", "`^`"),
            ("a:b", "`:`"),
            ("a?", "`?`"),
            ("a*", "`*`"),
            ("a[b", "`[`"),
            ("a\\b", "`\\`"),
            ("@", "`@` alone"),
            ("a@{1}", "`@{`"),
            ("/a", "start or end with `/`"),
            ("a/", "start or end with `/`"),
            ("a//b", "`//`"),
            ("a.", "end with `.`"),
            (".a", "starts with `.`"),
            ("a/.b", "starts with `.`"),
            ("a.lock", "ends with `.lock`"),
            ("a.lock/b", "ends with `.lock`"),
            ("$(reboot)", "`$` is not accepted"),
            ("a;b", "`;` is not accepted"),
            ("a`b", "is not accepted"),
            ("HEAD", "HEAD"),
            ("#", "pull request"),
            ("#0", "pull request"),
            ("#12a", "pull request"),
            ("#-1", "pull request"),
        ];
        for (text, why) in cases {
            match GitRef::parse(text) {
                Ok(r) => panic!("{text:?} accepted as {r:?}"),
                Err(e) => assert!(e.to_string().contains(why), "{text:?}: {e}"),
            }
        }
        let long = "a".repeat(MAX_REF_LEN + 1);
        assert!(GitRef::parse(&long).is_err());
    }

    #[test]
    fn serializes_as_ref_and_kind() {
        let json = serde_json::to_string(&GitRef::parse("#42").unwrap()).unwrap();
        assert_eq!(json, r##"{"ref":"#42","ref_kind":"pull_request"}"##);
    }
}
