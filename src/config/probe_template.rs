//! Templates in verification checks: an HTTP check's URL and a Prometheus
//! check's query, filled with `{app}`, `{env}` and `{namespace}`.
//!
//! In a URL every brace belongs to a placeholder. In a PromQL query braces
//! also hold label matchers (`up{job="web"}`), so only a brace pair around a
//! bare word (`{namespace}`) is a placeholder: a label matcher always holds an
//! operator (`=`, `!=`, `=~`, `!~`), and `{}` is left alone.

use super::template::TemplateError;
use crate::names::escape_for_display;

/// The placeholders a probe template may use.
pub const PROBE_PLACEHOLDERS: [&str; 3] = ["app", "env", "namespace"];

const ALLOWED: &str = "{app}, {env} or {namespace}";

/// Which braces in a probe template are placeholders.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TemplateSyntax {
    /// A URL: every `{` opens a placeholder.
    Url,
    /// A PromQL query: only `{word}` is a placeholder.
    PromQl,
}

/// One piece of a parsed probe template.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece<'a> {
    Literal(&'a str),
    Slot(&'static str),
}

fn is_word(text: &str) -> bool {
    let mut chars = text.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn slot(name: &str) -> Result<&'static str, TemplateError> {
    PROBE_PLACEHOLDERS
        .iter()
        .find(|p| **p == name)
        .copied()
        .ok_or_else(|| TemplateError::UnknownPlaceholder {
            name: escape_for_display(name),
            allowed: ALLOWED,
        })
}

fn pieces(text: &str, syntax: TemplateSyntax) -> Result<Vec<Piece<'_>>, TemplateError> {
    let unbalanced = || TemplateError::Unbalanced {
        text: escape_for_display(text),
    };
    let mut out = Vec::new();
    let mut literal_start = 0;
    let mut i = 0;
    let bytes = text.as_bytes();
    while i < bytes.len() {
        match bytes[i] {
            b'{' => {
                let close = text[i + 1..].find('}').map(|c| i + 1 + c);
                let inner = close.map(|c| &text[i + 1..c]);
                match (inner, syntax) {
                    (Some(name), _) if is_word(name) => {
                        let found = slot(name)?;
                        if literal_start < i {
                            out.push(Piece::Literal(&text[literal_start..i]));
                        }
                        out.push(Piece::Slot(found));
                        // `close` is Some here: `inner` came from it.
                        i = close.unwrap_or(i) + 1;
                        literal_start = i;
                        continue;
                    }
                    (_, TemplateSyntax::Url) => return Err(unbalanced()),
                    (_, TemplateSyntax::PromQl) => {}
                }
            }
            b'}' if syntax == TemplateSyntax::Url => return Err(unbalanced()),
            _ => {}
        }
        i += 1;
    }
    if literal_start < text.len() {
        out.push(Piece::Literal(&text[literal_start..]));
    }
    Ok(out)
}

/// Checks a probe template as written in config.
pub fn check_probe_template(text: &str, syntax: TemplateSyntax) -> Result<(), TemplateError> {
    pieces(text, syntax).map(|_| ())
}

/// Fills a probe template: each placeholder becomes `value(name)`, where
/// `name` is one of [`PROBE_PLACEHOLDERS`]; the caller encodes the value for
/// where it goes.
pub fn fill_probe_template(
    text: &str,
    syntax: TemplateSyntax,
    value: impl Fn(&str) -> String,
) -> Result<String, TemplateError> {
    let mut out = String::with_capacity(text.len());
    for piece in pieces(text, syntax)? {
        match piece {
            Piece::Literal(l) => out.push_str(l),
            Piece::Slot(name) => out.push_str(&value(name)),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fill(text: &str, syntax: TemplateSyntax) -> Result<String, String> {
        fill_probe_template(text, syntax, |name| format!("<{name}>")).map_err(|e| e.to_string())
    }

    #[test]
    fn promql_braces_are_label_matchers_unless_they_hold_a_word() {
        let query = r#"sum(rate(http_requests_total{namespace="{namespace}",code=~"5.."}[1m])) / sum(rate(http_requests_total{namespace="{namespace}"}[1m]))"#;
        assert_eq!(
            fill(query, TemplateSyntax::PromQl).unwrap(),
            r#"sum(rate(http_requests_total{namespace="<namespace>",code=~"5.."}[1m])) / sum(rate(http_requests_total{namespace="<namespace>"}[1m]))"#
        );
        let cases = [
            ("up{}", Ok("up{}")),
            ("up{job=\"{app}\"}", Ok("up{job=\"<app>\"}")),
            ("{env}{app}", Ok("<env><app>")),
            ("sum(", Ok("sum(")),
            ("up{job=\"x\"", Ok("up{job=\"x\"")),
            (
                "up{job=\"{branch}\"}",
                Err("unknown placeholder `{branch}`; use {app}, {env} or {namespace}"),
            ),
        ];
        for (text, want) in cases {
            let want = want.map(str::to_owned).map_err(str::to_owned);
            assert_eq!(fill(text, TemplateSyntax::PromQl), want, "{text}");
        }
    }

    #[test]
    fn url_braces_are_all_placeholders() {
        let cases = [
            (
                "https://{app}.{env}.example.com/health?ns={namespace}",
                Ok("https://<app>.<env>.example.com/health?ns=<namespace>"),
            ),
            ("http://h/plain", Ok("http://h/plain")),
            ("http://h/{sha}", Err("unknown placeholder `{sha}`")),
            ("http://h/{app", Err("unbalanced")),
            ("http://h/app}", Err("unbalanced")),
            ("http://h/{}", Err("unbalanced")),
            ("http://h/{a b}", Err("unbalanced")),
        ];
        for (text, want) in cases {
            match (fill(text, TemplateSyntax::Url), want) {
                (Ok(got), Ok(want)) => assert_eq!(got, want, "{text}"),
                (Err(got), Err(part)) => assert!(got.contains(part), "{text}: {got}"),
                (got, want) => panic!("{text}: got {got:?}, want {want:?}"),
            }
        }
    }
}
