//! YAML lines: indentation, `key: value`, values with their quoting and comments.

pub(super) struct Line<'a> {
    /// Without its line ending.
    pub text: &'a str,
    /// The line ending (`\n`, `\r\n` or nothing on the last line).
    pub ending: &'a str,
    pub indent: usize,
}

impl Line<'_> {
    pub fn content(&self) -> &str {
        &self.text[self.indent..]
    }

    /// Blank, a comment, or a document marker: not part of any mapping.
    pub fn is_filler(&self) -> bool {
        let c = self.content().trim_end();
        c.is_empty() || c.starts_with('#') || c == "---" || c == "..."
    }
}

pub(super) fn lines(text: &str) -> Vec<Line<'_>> {
    text.split_inclusive('\n')
        .map(|raw| {
            let (body, ending) = match raw.strip_suffix("\r\n") {
                Some(b) => (b, "\r\n"),
                None => match raw.strip_suffix('\n') {
                    Some(b) => (b, "\n"),
                    None => (raw, ""),
                },
            };
            let indent = body.len() - body.trim_start_matches(' ').len();
            Line {
                text: body,
                ending,
                indent,
            }
        })
        .collect()
}

/// A `key: value` inside `content`: the key (unquoted), and the byte offset
/// in `content` just after its colon.
pub(super) fn key_of(content: &str) -> Option<(String, usize)> {
    let (key, after) = if let Some(rest) = content.strip_prefix('"') {
        let end = rest.find('"')?;
        (rest[..end].to_owned(), end + 2)
    } else if let Some(rest) = content.strip_prefix('\'') {
        let end = rest.find('\'')?;
        (rest[..end].to_owned(), end + 2)
    } else {
        let bytes = content.as_bytes();
        let colon = (0..bytes.len())
            .find(|&i| bytes[i] == b':' && (i + 1 == bytes.len() || bytes[i + 1] == b' '))?;
        (content[..colon].trim_end().to_owned(), colon)
    };
    if content.as_bytes().get(after) != Some(&b':') {
        return None;
    }
    Some((key, after + 1))
}

/// The value after a colon: (start, end) offsets within `rest`, comment excluded.
pub(super) fn value_span(rest: &str) -> (usize, usize) {
    let start = rest.len() - rest.trim_start_matches(' ').len();
    let value = &rest[start..];
    let end = match value.chars().next() {
        Some(q @ ('"' | '\'')) => {
            let mut escaped = false;
            let mut close = value.len();
            for (i, c) in value.char_indices().skip(1) {
                if q == '"' && c == '\\' && !escaped {
                    escaped = true;
                    continue;
                }
                if c == q && !escaped {
                    close = i + 1;
                    break;
                }
                escaped = false;
            }
            close
        }
        _ => value.find(" #").unwrap_or(value.len()),
    };
    (start, start + value[..end].trim_end().len())
}

/// The scalar value of a `key: value` content, unquoted.
pub(super) fn scalar(content: &str, after_colon: usize) -> String {
    let rest = &content[after_colon..];
    let (s, e) = value_span(rest);
    unquote(&rest[s..e])
}

pub(super) fn unquote(value: &str) -> String {
    let v = value.trim();
    if v.len() >= 2
        && ((v.starts_with('"') && v.ends_with('"')) || (v.starts_with('\'') && v.ends_with('\'')))
    {
        v[1..v.len() - 1].to_owned()
    } else {
        v.to_owned()
    }
}

/// Writes `value` in the quoting style of `old` (plain when it was plain and
/// the new value is safe plain).
pub(super) fn styled(old: &str, value: &str) -> String {
    let plain_ok = !value.is_empty()
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-._/:@+".contains(c))
        && !value.contains(": ");
    if old.starts_with('\'') {
        format!("'{}'", value.replace('\'', "''"))
    } else if old.starts_with('"') || !plain_ok {
        format!("\"{}\"", value.replace('\\', "\\\\").replace('"', "\\\""))
    } else {
        value.to_owned()
    }
}

/// `line` with the value after the colon at `colon_end` (offset in the
/// whole line) replaced, keeping any trailing comment.
pub(super) fn replace_value(line: &str, colon_end: usize, value: &str) -> String {
    let rest = &line[colon_end..];
    let (s, e) = value_span(rest);
    let old = &rest[s..e];
    if old.starts_with('&') || old.starts_with('*') || old.starts_with('|') || old.starts_with('>')
    {
        return line.to_owned();
    }
    let tail = &rest[e..];
    let tail = if tail.is_empty() || tail.starts_with(' ') {
        tail.to_owned()
    } else {
        format!(" {tail}")
    };
    format!("{} {}{}", &line[..colon_end], styled(old, value), tail)
}

pub(super) fn join(out: &[String], endings: &[&str]) -> String {
    out.iter()
        .zip(endings)
        .map(|(l, e)| format!("{l}{e}"))
        .collect()
}
