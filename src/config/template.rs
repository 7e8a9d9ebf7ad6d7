//! Name templates (preview namespaces, image tags) and Kubernetes name rules.

use std::fmt;

use crate::names::escape_for_display;

/// Longest DNS-1123 label, the limit for namespaces and container names.
pub const MAX_LABEL: usize = 63;

/// Whether `text` is a DNS-1123 label: 1-63 of `a-z0-9-`, alphanumeric at both ends.
pub fn is_dns_label(text: &str) -> bool {
    let b = text.as_bytes();
    !b.is_empty()
        && b.len() <= MAX_LABEL
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
        && b[0] != b'-'
        && b[b.len() - 1] != b'-'
}

/// Whether `text` is a DNS-1123 subdomain (Deployment names): labels joined by `.`, at most 253.
pub fn is_dns_subdomain(text: &str) -> bool {
    text.len() <= 253 && text.split('.').all(is_dns_label)
}

/// A problem with a template as written in config.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    /// A `{placeholder}` that the template does not support.
    #[error("unknown placeholder `{{{name}}}`; use {allowed}")]
    UnknownPlaceholder {
        /// The placeholder, escaped for display.
        name: String,
        /// The supported placeholders.
        allowed: &'static str,
    },
    /// A `{` without `}` or a stray `}`.
    #[error("unbalanced `{{` or `}}` in `{text}`")]
    Unbalanced {
        /// The template, escaped for display.
        text: String,
    },
    /// Literal text that cannot be part of a valid name.
    #[error("`{text}` cannot form a valid name: {why}")]
    BadLiteral {
        /// The template, escaped for display.
        text: String,
        /// What is wrong.
        why: &'static str,
    },
    /// The template has none of the placeholders it needs.
    #[error("`{text}` must use {needed}")]
    MissingPlaceholder {
        /// The template, escaped for display.
        text: String,
        /// What it needs.
        needed: &'static str,
    },
}

/// A problem rendering a template for one request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RenderError {
    /// The template uses `{pr}` but the request has no pull request.
    #[error("the namespace template uses {{pr}}, but this deploy is not from a pull request")]
    NoPullRequest,
    /// Nothing usable is left after sanitising.
    #[error("the namespace template gives an empty name for this branch")]
    Empty,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Literal(String),
    Slot(&'static str),
}

fn split(
    text: &str,
    slots: &[&'static str],
    allowed: &'static str,
) -> Result<Vec<Part>, TemplateError> {
    let mut parts = Vec::new();
    let mut rest = text;
    while !rest.is_empty() {
        let open = rest.find('{');
        let close = rest.find('}');
        match (open, close) {
            (None, None) => {
                parts.push(Part::Literal(rest.to_owned()));
                break;
            }
            (Some(o), Some(c)) if o < c => {
                if o > 0 {
                    parts.push(Part::Literal(rest[..o].to_owned()));
                }
                let name = &rest[o + 1..c];
                let slot = slots.iter().find(|s| **s == name).ok_or_else(|| {
                    TemplateError::UnknownPlaceholder {
                        name: escape_for_display(name),
                        allowed,
                    }
                })?;
                parts.push(Part::Slot(slot));
                rest = &rest[c + 1..];
            }
            _ => {
                return Err(TemplateError::Unbalanced {
                    text: escape_for_display(text),
                })
            }
        }
    }
    Ok(parts)
}

/// A namespace template for preview environments, e.g. `preview-{branch}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamespaceTemplate {
    text: String,
    parts: Vec<Part>,
}

impl NamespaceTemplate {
    /// Parses a template with placeholders `{branch}`, `{pr}` and `{app}`.
    pub fn new(text: &str) -> Result<NamespaceTemplate, TemplateError> {
        let parts = split(text, &["branch", "pr", "app"], "{branch}, {pr} or {app}")?;
        let bad = |why| TemplateError::BadLiteral {
            text: escape_for_display(text),
            why,
        };
        let mut literal_len = 0;
        for (i, part) in parts.iter().enumerate() {
            let Part::Literal(lit) = part else { continue };
            literal_len += lit.len();
            if !lit
                .bytes()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-')
            {
                return Err(bad("literal text may only use a-z, 0-9 and `-`"));
            }
            if (i == 0 && lit.starts_with('-')) || (i == parts.len() - 1 && lit.ends_with('-')) {
                return Err(bad("a namespace cannot start or end with `-`"));
            }
        }
        if literal_len > 40 {
            return Err(bad(
                "literal text is longer than 40 characters, leaving no room for the branch",
            ));
        }
        if !parts
            .iter()
            .any(|p| matches!(p, Part::Slot("branch" | "pr")))
        {
            return Err(TemplateError::MissingPlaceholder {
                text: escape_for_display(text),
                needed: "{branch} or {pr}, so that each preview gets its own namespace",
            });
        }
        Ok(NamespaceTemplate {
            text: text.to_owned(),
            parts,
        })
    }

    /// The template as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The namespace for a branch (and pull request) of an app, as a DNS-1123 label.
    ///
    /// Letters are lowercased, anything else but digits becomes `-`, runs of
    /// `-` collapse and are trimmed; a name over 63 characters is cut and ends
    /// with a hash of the full name, so two long branches never share one.
    pub fn render(&self, branch: &str, pr: Option<u64>, app: &str) -> Result<String, RenderError> {
        let mut raw = String::new();
        for part in &self.parts {
            match part {
                Part::Literal(lit) => raw.push_str(lit),
                Part::Slot("pr") => {
                    raw.push_str(&pr.ok_or(RenderError::NoPullRequest)?.to_string())
                }
                Part::Slot("app") => raw.push_str(app),
                Part::Slot(_) => raw.push_str(branch),
            }
        }
        let name = sanitize_label(&raw);
        if name.is_empty() {
            return Err(RenderError::Empty);
        }
        if name.len() <= MAX_LABEL {
            return Ok(name);
        }
        let hash = format!("{:016x}", super::fnv1a64(name.as_bytes()));
        let keep = name[..MAX_LABEL - 9].trim_end_matches('-');
        Ok(format!("{keep}-{}", &hash[..8]))
    }
}

/// Lowercases, maps non-alphanumerics to `-`, collapses and trims dashes.
fn sanitize_label(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        let c = c.to_ascii_lowercase();
        let c = if c.is_ascii_lowercase() || c.is_ascii_digit() {
            c
        } else {
            '-'
        };
        if !(c == '-' && (out.is_empty() || out.ends_with('-'))) {
            out.push(c);
        }
    }
    out.trim_end_matches('-').to_owned()
}

impl fmt::Display for NamespaceTemplate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// An image tag template, e.g. `{sha}` or `main-{short_sha}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TagTemplate {
    text: String,
    parts: Vec<Part>,
}

fn is_tag_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-')
}

impl TagTemplate {
    /// Parses a template with placeholders `{sha}`, `{short_sha}` and `{branch}`.
    pub fn new(text: &str) -> Result<TagTemplate, TemplateError> {
        let parts = split(
            text,
            &["sha", "short_sha", "branch"],
            "{sha}, {short_sha} or {branch}",
        )?;
        let bad = |why| TemplateError::BadLiteral {
            text: escape_for_display(text),
            why,
        };
        for (i, part) in parts.iter().enumerate() {
            let Part::Literal(lit) = part else { continue };
            if !lit.bytes().all(is_tag_char) {
                return Err(bad(
                    "image tags may only use A-Z, a-z, 0-9, `_`, `.` and `-`",
                ));
            }
            if i == 0 && (lit.starts_with('.') || lit.starts_with('-')) {
                return Err(bad("an image tag cannot start with `.` or `-`"));
            }
        }
        if !parts.iter().any(|p| matches!(p, Part::Slot(_))) {
            return Err(TemplateError::MissingPlaceholder {
                text: escape_for_display(text),
                needed: "{sha}, {short_sha} or {branch}, so that each build gets its own tag",
            });
        }
        Ok(TagTemplate {
            text: text.to_owned(),
            parts,
        })
    }

    /// The template as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The tag for a commit on a branch: `{short_sha}` is the first 7
    /// characters; characters a tag cannot hold become `-`; at most 128.
    pub fn render(&self, sha: &str, branch: &str) -> String {
        let mut out = String::new();
        for part in &self.parts {
            match part {
                Part::Literal(lit) => out.push_str(lit),
                Part::Slot("sha") => out.push_str(sha),
                Part::Slot("short_sha") => out.extend(sha.chars().take(7)),
                Part::Slot(_) => out.extend(branch.chars().map(|c| {
                    if c.is_ascii() && is_tag_char(c as u8) {
                        c
                    } else {
                        '-'
                    }
                })),
            }
        }
        out.chars().take(128).collect()
    }
}

impl fmt::Display for TagTemplate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dns_rules() {
        for good in ["dev", "a", "preview-1", "0abc", &"a".repeat(63)] {
            assert!(is_dns_label(good), "{good}");
        }
        for bad in ["", "-a", "a-", "Dev", "a_b", "a.b", &"a".repeat(64), "dеv"] {
            assert!(!is_dns_label(bad), "{bad}");
        }
        assert!(is_dns_subdomain("web.v2"));
        assert!(!is_dns_subdomain("web..v2"));
        assert!(!is_dns_subdomain("web."));
    }

    #[test]
    fn namespace_templates_parse() {
        assert!(NamespaceTemplate::new("preview-{branch}").is_ok());
        assert!(NamespaceTemplate::new("{app}-pr-{pr}").is_ok());
        let cases = [
            ("preview-{sha}", "unknown placeholder `{sha}`"),
            ("preview-{branch", "unbalanced"),
            ("preview}-{branch}", "unbalanced"),
            ("Preview-{branch}", "a-z, 0-9"),
            ("preview_{branch}", "a-z, 0-9"),
            ("-{branch}", "start or end"),
            ("{branch}-", "start or end"),
            ("preview-{app}", "must use {branch} or {pr}"),
            ("preview", "must use"),
        ];
        for (text, want) in cases {
            let err = NamespaceTemplate::new(text).unwrap_err().to_string();
            assert!(err.contains(want), "{text}: {err}");
        }
    }

    #[test]
    fn namespace_rendering() {
        let t = NamespaceTemplate::new("preview-{branch}").unwrap();
        let cases = [
            ("feat-x", "preview-feat-x"),
            ("Feat/Login_Page", "preview-feat-login-page"),
            ("feat//x..y", "preview-feat-x-y"),
            ("trailing/", "preview-trailing"),
            ("ünïcode", "preview-n-code"),
        ];
        for (branch, want) in cases {
            assert_eq!(t.render(branch, None, "web").unwrap(), want, "{branch}");
        }
        let a = t
            .render(&format!("feature/{}-a", "x".repeat(80)), None, "web")
            .unwrap();
        let b = t
            .render(&format!("feature/{}-b", "x".repeat(80)), None, "web")
            .unwrap();
        assert_ne!(a, b);
        for name in [&a, &b] {
            assert!(is_dns_label(name) && name.len() <= 63, "{name}");
        }
        let pr = NamespaceTemplate::new("{app}-pr-{pr}").unwrap();
        assert_eq!(pr.render("x", Some(42), "web_ui").unwrap(), "web-ui-pr-42");
        assert_eq!(pr.render("x", None, "web"), Err(RenderError::NoPullRequest));
        let bare = NamespaceTemplate::new("{branch}").unwrap();
        assert_eq!(bare.render("///", None, "web"), Err(RenderError::Empty));
    }

    #[test]
    fn tag_templates() {
        let t = TagTemplate::new("{branch}-{short_sha}").unwrap();
        assert_eq!(t.render("0123456789abcdef", "feat/x"), "feat-x-0123456");
        assert_eq!(
            TagTemplate::new("{sha}").unwrap().render("abc", "main"),
            "abc"
        );
        for bad in ["{sha", "{tag}", "v:{sha}", ".{sha}", "latest", ""] {
            assert!(TagTemplate::new(bad).is_err(), "{bad}");
        }
    }
}
