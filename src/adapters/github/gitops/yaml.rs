//! Line-based edits of the two YAML shapes GitOps needs, keeping every
//! other byte of the file (comments, order, quoting, blank lines) as it was.
//!
//! - a `kustomization.yaml` `images:` entry (`name`, `newName`, `digest`);
//! - a Helm values key given as a dotted path (`image.tag`).
//!
//! Only block-style YAML is edited; flow style (`images: [{…}]`) and
//! anchors at the edited place are refused rather than rewritten.

/// Why an edit could not be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum YamlError {
    /// The values key is not in the file.
    #[error("the key `{0}` is not in the file")]
    MissingKey(String),
    /// The file has a shape this editor does not rewrite.
    #[error("line {line}: {why}")]
    Unsupported {
        /// 1-based line number.
        line: usize,
        /// What is unsupported.
        why: String,
    },
}

mod lines;

use lines::{join, key_of, lines, replace_value, scalar, styled, value_span, Line};

/// One item of a block list: where it starts and the indent of its keys.
struct Item {
    start: usize,
    end: usize,
    key_indent: usize,
}

/// Sets the image in a kustomization: the `images:` entry whose `name` (or
/// `newName`) is `image` gets `newName: new_name` and `digest: digest`, and
/// loses any `newTag` (a digest wins over a tag, and a stale tag misleads).
/// A missing entry, or a missing `images:` list, is added at its end.
pub fn set_kustomize_image(
    text: &str,
    image: &str,
    new_name: &str,
    digest: &str,
) -> Result<String, YamlError> {
    let all = lines(text);
    let mut out: Vec<String> = all.iter().map(|l| l.text.to_owned()).collect();
    let mut endings: Vec<&str> = all.iter().map(|l| l.ending).collect();
    let nl = if text.contains("\r\n") { "\r\n" } else { "\n" };
    let header = all
        .iter()
        .position(|l| l.indent == 0 && key_of(l.content()).is_some_and(|(k, _)| k == "images"));
    let Some(header) = header else {
        // No images list: add one at the end of the file.
        if let Some(last) = endings.last_mut() {
            if last.is_empty() {
                *last = nl;
            }
        }
        out.push("images:".into());
        endings.push(nl);
        for line in new_item(0, image, new_name, digest) {
            out.push(line);
            endings.push(nl);
        }
        return Ok(join(&out, &endings));
    };
    let (_, after) = key_of(all[header].content()).unwrap_or_default();
    let inline = scalar(all[header].content(), after);
    if !inline.is_empty() && inline != "[]" {
        return Err(YamlError::Unsupported {
            line: header + 1,
            why: "a flow-style `images:` list is not edited; write it as a block list".into(),
        });
    }
    // The list: lines after the header up to the next top-level key.
    let mut end = header + 1;
    while end < all.len() {
        let l = &all[end];
        if !l.is_filler() && l.indent == 0 && !l.content().starts_with("- ") && l.content() != "-" {
            break;
        }
        end += 1;
    }
    let items = list_items(&all, header + 1, end);
    let found = items.iter().find(|item| {
        fields(&all, item)
            .iter()
            .any(|(k, v, _)| (k == "name" || k == "newName") && v == image)
    });
    let Some(item) = found else {
        let indent = items.first().map_or(0, |i| all[i.start].indent);
        let at = (header + 1..end)
            .rev()
            .find(|&i| !all[i].is_filler())
            .map_or(header + 1, |i| i + 1);
        if inline == "[]" {
            out[header] = "images:".into();
        }
        let added: Vec<String> = new_item(indent, image, new_name, digest);
        if at > 0 && endings[at - 1].is_empty() {
            endings[at - 1] = nl;
        }
        for (n, line) in added.into_iter().enumerate() {
            out.insert(at + n, line);
            endings.insert(at + n, nl);
        }
        return Ok(join(&out, &endings));
    };
    let found_fields = fields(&all, item);
    let field = |name: &str| found_fields.iter().find(|(k, _, _)| k == name);
    let name_line = field("name").map_or(item.start, |f| f.2 .0);
    let last_line = found_fields
        .iter()
        .map(|f| f.2 .0)
        .max()
        .unwrap_or(item.start);
    let pad = " ".repeat(item.key_indent);
    let mut inserts: Vec<(usize, String)> = Vec::new();
    match field("newName") {
        Some((_, _, (line, colon))) => {
            out[*line] = replace_value(all[*line].text, *colon, new_name)
        }
        None if new_name != image => {
            inserts.push((name_line + 1, format!("{pad}newName: {new_name}")))
        }
        None => {}
    }
    match field("digest") {
        Some((_, _, (line, colon))) => out[*line] = replace_value(all[*line].text, *colon, digest),
        None => inserts.push((last_line + 1, format!("{pad}digest: {digest}"))),
    }
    let drop_tag = field("newTag").map(|f| f.2 .0);
    if drop_tag == Some(item.start) {
        return Err(YamlError::Unsupported {
            line: item.start + 1,
            why: "`newTag` on the item's first line; put `name` first".into(),
        });
    }
    // Apply from the bottom up so indices stay valid.
    let mut edits: Vec<(usize, Option<String>)> =
        inserts.into_iter().map(|(i, l)| (i, Some(l))).collect();
    if let Some(t) = drop_tag {
        edits.push((t, None));
    }
    edits.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.is_none().cmp(&b.1.is_none())));
    for (at, line) in edits {
        match line {
            Some(line) => {
                if at > 0 && endings[at - 1].is_empty() {
                    endings[at - 1] = nl;
                }
                out.insert(at, line);
                endings.insert(at, nl);
            }
            None => {
                out.remove(at);
                let ending = endings.remove(at);
                if ending.is_empty() && at > 0 {
                    endings[at - 1] = "";
                }
            }
        }
    }
    Ok(join(&out, &endings))
}

fn new_item(indent: usize, image: &str, new_name: &str, digest: &str) -> Vec<String> {
    let pad = " ".repeat(indent);
    let mut item = vec![format!("{pad}- name: {}", styled("", image))];
    if new_name != image {
        item.push(format!("{pad}  newName: {}", styled("", new_name)));
    }
    item.push(format!("{pad}  digest: {}", styled("", digest)));
    item
}

fn list_items(all: &[Line<'_>], from: usize, to: usize) -> Vec<Item> {
    let mut items: Vec<Item> = Vec::new();
    let mut dash_indent: Option<usize> = None;
    for (i, l) in all.iter().enumerate().take(to).skip(from) {
        if l.is_filler() {
            continue;
        }
        let is_dash = l.content().starts_with("- ") || l.content() == "-";
        if is_dash && dash_indent.is_none_or(|d| d == l.indent) {
            dash_indent = Some(l.indent);
            let after_dash = l.content()[1..].len() - l.content()[1..].trim_start().len() + 1;
            if let Some(prev) = items.last_mut() {
                prev.end = i;
            }
            items.push(Item {
                start: i,
                end: to,
                key_indent: l.indent + after_dash,
            });
        }
    }
    items
}

/// An item's `key: value` fields: (key, unquoted value, (line, colon end in line)).
fn fields(all: &[Line<'_>], item: &Item) -> Vec<(String, String, (usize, usize))> {
    let mut found = Vec::new();
    for (i, l) in all.iter().enumerate().take(item.end).skip(item.start) {
        if l.is_filler() {
            continue;
        }
        let offset = if i == item.start {
            item.key_indent
        } else {
            l.indent
        };
        if i != item.start && l.indent != item.key_indent {
            continue;
        }
        let Some(content) = l.text.get(offset..) else {
            continue;
        };
        if let Some((key, after)) = key_of(content) {
            let value = scalar(content, after);
            found.push((key, value, (i, offset + after)));
        }
    }
    found
}

/// Sets the Helm values key `dotted` (e.g. `image.tag`) to `value`. Every
/// part of the path must exist and the last must hold a scalar.
pub fn set_helm_value(text: &str, dotted: &str, value: &str) -> Result<String, YamlError> {
    let all = lines(text);
    let mut from = 0;
    let mut to = all.len();
    let mut parent_indent: Option<usize> = None;
    let parts: Vec<&str> = dotted.split('.').collect();
    for (depth, part) in parts.iter().enumerate() {
        let child_indent = (from..to)
            .map(|i| &all[i])
            .find(|l| !l.is_filler())
            .map(|l| l.indent)
            .filter(|&ind| parent_indent.is_none_or(|p| ind > p))
            .ok_or_else(|| YamlError::MissingKey(dotted.to_owned()))?;
        let hit = (from..to).find(|&i| {
            let l = &all[i];
            !l.is_filler()
                && l.indent == child_indent
                && key_of(l.content()).is_some_and(|(k, _)| k == *part)
        });
        let Some(hit) = hit else {
            return Err(YamlError::MissingKey(dotted.to_owned()));
        };
        let (_, after) = key_of(all[hit].content()).unwrap_or_default();
        let here = scalar(all[hit].content(), after);
        if depth + 1 == parts.len() {
            let raw = &all[hit].content()[after..];
            let (s, e) = value_span(raw);
            let old = &raw[s..e];
            if old.is_empty() || old.starts_with(['&', '*', '|', '>', '{', '[']) {
                return Err(YamlError::Unsupported {
                    line: hit + 1,
                    why: format!("`{dotted}` does not hold a plain value"),
                });
            }
            let mut out: Vec<String> = all.iter().map(|l| l.text.to_owned()).collect();
            out[hit] = replace_value(all[hit].text, all[hit].indent + after, value);
            let endings: Vec<&str> = all.iter().map(|l| l.ending).collect();
            return Ok(join(&out, &endings));
        }
        if !here.is_empty() {
            return Err(YamlError::Unsupported {
                line: hit + 1,
                why: format!("`{part}` holds a value, not a map"),
            });
        }
        // The block under this key: deeper lines up to the next sibling or parent.
        let mut end = hit + 1;
        while end < to && (all[end].is_filler() || all[end].indent > child_indent) {
            end += 1;
        }
        from = hit + 1;
        to = end;
        parent_indent = Some(child_indent);
    }
    Err(YamlError::MissingKey(dotted.to_owned()))
}

/// The value written for a Helm key: keys ending in `digest` or `tag` get
/// the digest (`sha256:…`), any other key the whole reference (`repo@sha256:…`).
pub fn helm_value(key: &str, image: &str) -> String {
    let last = key.rsplit('.').next().unwrap_or(key).to_ascii_lowercase();
    match image.split_once('@') {
        Some((_, digest)) if last.ends_with("digest") || last.ends_with("tag") => digest.to_owned(),
        _ => image.to_owned(),
    }
}
