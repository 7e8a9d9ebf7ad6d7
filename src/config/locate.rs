//! Maps dotted key paths to source lines and byte offsets back to key paths.
//!
//! The document is parsed once more with spans (`toml::de::DeTable`), so an
//! error found after deserialising can still name the line it came from,
//! whether the key sits under a `[table]` header, in an inline table, as a
//! dotted key or inside an array of tables.

use std::fmt;

use toml::de::{DeTable, DeValue};
use toml::Spanned;

use crate::names::escape_for_display;

/// One step of a key path: a table key or an array index.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Seg {
    Key(String),
    Index(usize),
}

/// A dotted key path such as `environments.prod.freeze[1].end`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct KeyPath(Vec<Seg>);

impl KeyPath {
    /// The document root.
    pub(crate) fn root() -> KeyPath {
        KeyPath(Vec::new())
    }

    /// This path extended by a table key.
    pub(crate) fn key(&self, key: &str) -> KeyPath {
        let mut segs = self.0.clone();
        segs.push(Seg::Key(key.to_owned()));
        KeyPath(segs)
    }

    /// This path extended by an array index.
    pub(crate) fn index(&self, index: usize) -> KeyPath {
        let mut segs = self.0.clone();
        segs.push(Seg::Index(index));
        KeyPath(segs)
    }
}

fn is_bare_key(key: &str) -> bool {
    !key.is_empty()
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

impl fmt::Display for KeyPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, seg) in self.0.iter().enumerate() {
            match seg {
                Seg::Index(n) => write!(f, "[{n}]")?,
                Seg::Key(k) => {
                    if i > 0 {
                        f.write_str(".")?;
                    }
                    if is_bare_key(k) {
                        f.write_str(k)?;
                    } else {
                        let shown = escape_for_display(k).replace('"', "\\\"");
                        write!(f, "\"{shown}\"")?;
                    }
                }
            }
        }
        Ok(())
    }
}

/// The spanned document, for looking up lines and keys.
pub(crate) struct Locator<'a> {
    src: &'a str,
    doc: Spanned<DeTable<'a>>,
}

/// A node found while searching the tree for an offset.
struct Hit {
    path: KeyPath,
    width: usize,
}

impl<'a> Locator<'a> {
    /// Parses `src` with best-effort recovery; also returns the first syntax
    /// error as (byte span, message).
    pub(crate) fn new(src: &'a str) -> (Locator<'a>, Option<(Option<usize>, String)>) {
        let (doc, errors) = DeTable::parse_recoverable(src);
        let first = errors
            .first()
            .map(|e| (e.span().map(|s| s.start), e.message().to_owned()));
        (Locator { src, doc }, first)
    }

    /// The 1-based line holding byte `offset`.
    pub(crate) fn line_at(&self, offset: usize) -> usize {
        let end = offset.min(self.src.len());
        1 + self.src.as_bytes()[..end]
            .iter()
            .filter(|b| **b == b'\n')
            .count()
    }

    /// The line of the key at `path`; when the key is absent, the line of
    /// its nearest present parent (a table's header); 1 for the root.
    pub(crate) fn line_of(&self, path: &KeyPath) -> usize {
        let mut offset = None;
        let mut value: Option<&DeValue<'_>> = None;
        let mut table: Option<&DeTable<'_>> = Some(self.doc.get_ref());
        for seg in &path.0 {
            let next = match (seg, table, value) {
                (Seg::Key(k), Some(t), _) => {
                    t.get_key_value(k.as_str()).map(|(k, v)| (k.span(), v))
                }
                (Seg::Index(i), None, Some(DeValue::Array(a))) => a.get(*i).map(|v| (v.span(), v)),
                _ => None,
            };
            let Some((span, v)) = next else { break };
            offset = Some(span.start);
            value = Some(v.get_ref());
            table = match v.get_ref() {
                DeValue::Table(t) => Some(t),
                _ => None,
            };
        }
        offset.map_or(1, |o| self.line_at(o))
    }

    /// The dotted key for a syntax error at `offset`: from the tree when the
    /// parser kept the node, else read off the source (the nearest table
    /// header plus the key on the error's line).
    pub(crate) fn key_near(&self, offset: usize) -> String {
        let path = self.path_at(offset);
        if path != KeyPath::root() {
            return path.to_string();
        }
        let Some(before) = self.src.get(..offset) else {
            return String::new();
        };
        let start = before.rfind('\n').map_or(0, |i| i + 1);
        let line = self.src[start..].lines().next().unwrap_or_default().trim();
        let header = |l: &str| {
            l.starts_with('[').then(|| {
                l.trim_matches(|c| c == '[' || c == ' ')
                    .split(']')
                    .next()
                    .unwrap_or_default()
                    .trim()
                    .to_owned()
            })
        };
        if let Some(h) = header(line) {
            return escape_for_display(&h);
        }
        let table = self.src[..start]
            .lines()
            .rev()
            .find_map(|l| header(l.trim()))
            .unwrap_or_default();
        let key = line
            .split_once('=')
            .map(|(k, _)| k.trim())
            .unwrap_or_default();
        let plausible = |k: &str| {
            !k.is_empty()
                && k.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"_-.\" '".contains(&b))
        };
        let joined = match (table.is_empty(), plausible(key)) {
            (_, false) => table,
            (true, true) => key.to_owned(),
            (false, true) => format!("{table}.{key}"),
        };
        escape_for_display(&joined)
    }

    /// The key path of the smallest node whose key or value covers `offset`.
    pub(crate) fn path_at(&self, offset: usize) -> KeyPath {
        let mut best: Option<Hit> = None;
        search_table(self.doc.get_ref(), &KeyPath::root(), offset, &mut best);
        best.map(|h| h.path).unwrap_or_default()
    }
}

fn covers(span: &std::ops::Range<usize>, offset: usize) -> bool {
    (span.start <= offset && offset < span.end) || (span.is_empty() && span.start == offset)
}

fn consider(best: &mut Option<Hit>, path: &KeyPath, span: &std::ops::Range<usize>, offset: usize) {
    if !covers(span, offset) {
        return;
    }
    let width = span.len();
    // On equal widths the deeper path wins, as it is visited later.
    if best.as_ref().is_none_or(|b| width <= b.width) {
        *best = Some(Hit {
            path: path.clone(),
            width,
        });
    }
}

fn search_table(table: &DeTable<'_>, at: &KeyPath, offset: usize, best: &mut Option<Hit>) {
    for (key, value) in table.iter() {
        let path = at.key(key.get_ref());
        consider(best, &path, &key.span(), offset);
        search_value(value, &path, offset, best);
    }
}

fn search_value(
    value: &Spanned<DeValue<'_>>,
    path: &KeyPath,
    offset: usize,
    best: &mut Option<Hit>,
) {
    consider(best, path, &value.span(), offset);
    match value.get_ref() {
        DeValue::Table(t) => search_table(t, path, offset, best),
        DeValue::Array(a) => {
            for (i, item) in a.iter().enumerate() {
                search_value(item, &path.index(i), offset, best);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOC: &str = r#"# comment
[environments.dev]
namespace = "dev"
approvals = { count = 1, roles = ["qa"] }

[[environments.prod.freeze]]
start = "a"
[[environments.prod.freeze]]
days = ["fri"]

[environments.prod]
namespace = "prod"
gitops.path = "x"
list = [
  { a = 1 },
  { b = 2 },
]
"#;

    fn path(text: &str) -> KeyPath {
        let mut p = KeyPath::root();
        for part in text.split('.') {
            match part.split_once('[') {
                Some((k, i)) => p = p.key(k).index(i.trim_end_matches(']').parse().unwrap()),
                None => p = p.key(part),
            }
        }
        p
    }

    #[test]
    fn lines_of_keys() {
        let (loc, err) = Locator::new(DOC);
        assert!(err.is_none());
        let cases = [
            ("environments.dev", 2),
            ("environments.dev.namespace", 3),
            ("environments.dev.approvals.count", 4),
            ("environments.dev.approvals.roles[0]", 4),
            ("environments.dev.missing", 2),
            ("environments.prod.freeze[0]", 6),
            ("environments.prod.freeze[0].start", 7),
            ("environments.prod.freeze[1].days[0]", 9),
            ("environments.prod.freeze[1].end", 8),
            ("environments.prod.freeze[7]", 6),
            ("environments.prod", 11),
            ("environments.prod.gitops.path", 13),
            ("environments.prod.list[1].b", 16),
            ("environments.prod.list[1].c", 16),
            ("nothing.here", 1),
        ];
        for (p, line) in cases {
            assert_eq!(loc.line_of(&path(p)), line, "{p}");
            assert_eq!(path(p).to_string(), p);
        }
    }

    #[test]
    fn paths_at_offsets() {
        let (loc, _) = Locator::new(DOC);
        let at = |needle: &str| loc.path_at(DOC.find(needle).unwrap()).to_string();
        assert_eq!(at("\"dev\""), "environments.dev.namespace");
        assert_eq!(at("count"), "environments.dev.approvals.count");
        assert_eq!(at("\"fri\""), "environments.prod.freeze[1].days[0]");
        assert_eq!(at("b = 2"), "environments.prod.list[1].b");
        assert_eq!(at("[environments.dev]"), "environments.dev");
    }

    #[test]
    fn odd_keys_are_quoted_and_escaped() {
        let p = KeyPath::root().key("people").key("a.b\u{202e}");
        assert_eq!(p.to_string(), r#"people."a.b\u{202e}""#);
    }
}
