//! Command patterns such as `deploy {ref} [of {app}] to {env} [--dry-run]`.
//!
//! A pattern is words, typed placeholders (`{env}`, or `{from:env}` to name
//! the slot), optional groups in `[…]` and flags (`--dry-run`, always
//! optional). Optional groups are expanded at compile time into plain
//! alternatives, so matching never backtracks.

use std::fmt;

/// Most optional groups one pattern may hold (2^n alternatives).
const MAX_OPTIONAL_GROUPS: usize = 5;

/// What a placeholder accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SlotKind {
    /// A branch, tag, SHA or `#123`.
    Ref,
    /// A branch name.
    Branch,
    /// A configured environment name.
    Env,
    /// A configured app name.
    App,
    /// A request id, `R-42`.
    Id,
    /// A small count, 1 to 1000.
    N,
    /// Free text to the end of the line.
    Reason,
    /// A request id or a commit SHA.
    Target,
    /// A command name, for `help`.
    Topic,
}

impl SlotKind {
    fn from_name(name: &str) -> Option<SlotKind> {
        Some(match name {
            "ref" => SlotKind::Ref,
            "branch" => SlotKind::Branch,
            "env" => SlotKind::Env,
            "app" => SlotKind::App,
            "id" => SlotKind::Id,
            "n" => SlotKind::N,
            "reason" => SlotKind::Reason,
            "target" => SlotKind::Target,
            "topic" => SlotKind::Topic,
            _ => return None,
        })
    }

    /// The placeholder's name in usage text.
    pub fn name(self) -> &'static str {
        match self {
            SlotKind::Ref => "ref",
            SlotKind::Branch => "branch",
            SlotKind::Env => "env",
            SlotKind::App => "app",
            SlotKind::Id => "request-id",
            SlotKind::N => "n",
            SlotKind::Reason => "reason",
            SlotKind::Target => "request-id|sha",
            SlotKind::Topic => "command",
        }
    }
}

/// One element of an expanded pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Element {
    /// A keyword, matched ASCII case-insensitively.
    Word(String),
    /// A typed placeholder filling the named slot.
    Slot {
        /// The slot's name (`from` in `{from:env}`, else the kind's name).
        name: String,
        /// What it accepts.
        kind: SlotKind,
    },
}

/// A pattern as written, kept for usage text, plus its expansions.
#[derive(Debug, Clone)]
pub struct Pattern {
    /// The source text, as in the grammar file.
    pub source: String,
    /// Every alternative the optional groups allow.
    pub alternatives: Vec<Vec<Element>>,
    /// Flags the pattern declares, without the leading `--`.
    pub flags: Vec<String>,
}

/// Why a pattern does not compile.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("pattern `{pattern}`: {why}")]
pub struct PatternError {
    /// The pattern text.
    pub pattern: String,
    /// What is wrong.
    pub why: String,
}

#[derive(Debug)]
enum Node {
    Word(String),
    Slot(String, SlotKind),
    Flag(String),
    Optional(Vec<Node>),
}

impl Pattern {
    /// Compiles a pattern's source text.
    pub fn compile(source: &str) -> Result<Pattern, PatternError> {
        let fail = |why: String| PatternError {
            pattern: source.to_owned(),
            why,
        };
        let spaced = source.replace('[', " [ ").replace(']', " ] ");
        let mut tokens = spaced.split_whitespace().peekable();
        let mut groups = 0;
        let nodes = parse_nodes(&mut tokens, 0, &mut groups).map_err(fail)?;
        if tokens.next().is_some() {
            return Err(fail("unbalanced `]`".into()));
        }
        if groups > MAX_OPTIONAL_GROUPS {
            return Err(fail(format!(
                "more than {MAX_OPTIONAL_GROUPS} optional groups"
            )));
        }
        match nodes.first() {
            Some(Node::Word(_)) => {}
            _ => return Err(fail("a pattern starts with its command word".into())),
        }
        let mut flags = Vec::new();
        collect_flags(&nodes, false, &mut flags).map_err(fail)?;
        let mut alternatives = expand(&nodes);
        alternatives.dedup();
        for alt in &alternatives {
            check_alternative(alt).map_err(fail)?;
        }
        Ok(Pattern {
            source: source.to_owned(),
            alternatives,
            flags,
        })
    }

    /// The pattern as usage text: `deploy <ref> [of <app>] to <env> [--dry-run]`.
    pub fn usage(&self) -> String {
        let mut out = String::new();
        let mut chars = self.source.chars().peekable();
        while let Some(c) = chars.next() {
            if c == '{' {
                let inner: String = chars.by_ref().take_while(|&c| c != '}').collect();
                let kind = inner.rsplit(':').next().unwrap_or_default();
                let shown = SlotKind::from_name(kind).map_or(kind, |k| k.name());
                out.push('<');
                out.push_str(shown);
                out.push('>');
            } else {
                out.push(c);
            }
        }
        out
    }
}

impl fmt::Display for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.usage())
    }
}

fn parse_nodes<'a, I>(
    tokens: &mut std::iter::Peekable<I>,
    depth: usize,
    groups: &mut usize,
) -> Result<Vec<Node>, String>
where
    I: Iterator<Item = &'a str>,
{
    let mut nodes = Vec::new();
    while let Some(&token) = tokens.peek() {
        if token == "]" {
            if depth == 0 {
                return Err("unbalanced `]`".into());
            }
            tokens.next();
            return Ok(nodes);
        }
        tokens.next();
        nodes.push(match token {
            "[" => {
                *groups += 1;
                let inner = parse_nodes(tokens, depth + 1, groups)?;
                if inner.is_empty() {
                    return Err("empty optional group `[]`".into());
                }
                Node::Optional(inner)
            }
            _ => parse_atom(token)?,
        });
    }
    if depth > 0 {
        return Err("unclosed `[`".into());
    }
    Ok(nodes)
}

fn parse_atom(token: &str) -> Result<Node, String> {
    if let Some(inner) = token.strip_prefix('{') {
        let inner = inner
            .strip_suffix('}')
            .ok_or_else(|| format!("placeholder `{token}` is not closed with `}}`"))?;
        let (name, kind) = inner.split_once(':').unwrap_or((inner, inner));
        let kind = SlotKind::from_name(kind).ok_or_else(|| {
            format!("unknown placeholder type `{kind}`; known: ref, branch, env, app, id, n, reason, target, topic")
        })?;
        if name.is_empty() || !name.bytes().all(|b| b.is_ascii_lowercase() || b == b'_') {
            return Err(format!("slot name `{name}` must be lowercase letters"));
        }
        return Ok(Node::Slot(name.to_owned(), kind));
    }
    if let Some(flag) = token.strip_prefix("--") {
        if flag.is_empty() || !flag.bytes().all(|b| b.is_ascii_lowercase() || b == b'-') {
            return Err(format!("flag `{token}` must be `--` and lowercase letters"));
        }
        return Ok(Node::Flag(flag.to_owned()));
    }
    let plain = token
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'/');
    if !plain || token.starts_with('-') {
        return Err(format!("`{token}` is not a plain lowercase keyword"));
    }
    Ok(Node::Word(token.to_owned()))
}

fn collect_flags(nodes: &[Node], optional: bool, flags: &mut Vec<String>) -> Result<(), String> {
    for node in nodes {
        match node {
            Node::Flag(flag) if !optional => {
                return Err(format!(
                    "flag `--{flag}` must be optional: write `[--{flag}]`"
                ))
            }
            Node::Flag(flag) => flags.push(flag.clone()),
            Node::Optional(inner) => collect_flags(inner, true, flags)?,
            Node::Word(_) | Node::Slot(..) => {}
        }
    }
    Ok(())
}

/// Expands optional groups into every alternative. Flags are left out: they
/// are taken from the input before matching, wherever they stand.
fn expand(nodes: &[Node]) -> Vec<Vec<Element>> {
    let mut alternatives: Vec<Vec<Element>> = vec![Vec::new()];
    for node in nodes {
        match node {
            Node::Word(word) => alternatives
                .iter_mut()
                .for_each(|alt| alt.push(Element::Word(word.clone()))),
            Node::Slot(name, kind) => alternatives.iter_mut().for_each(|alt| {
                alt.push(Element::Slot {
                    name: name.clone(),
                    kind: *kind,
                })
            }),
            Node::Flag(_) => {}
            Node::Optional(inner) => {
                let tails = expand(inner);
                let mut next = Vec::new();
                for alt in &alternatives {
                    next.push(alt.clone());
                    for tail in &tails {
                        let mut grown = alt.clone();
                        grown.extend(tail.iter().cloned());
                        next.push(grown);
                    }
                }
                alternatives = next;
            }
        }
    }
    alternatives
}

fn check_alternative(alt: &[Element]) -> Result<(), String> {
    let mut seen: Vec<&str> = Vec::new();
    for (i, element) in alt.iter().enumerate() {
        if let Element::Slot { name, kind } = element {
            if *kind == SlotKind::Reason && i + 1 != alt.len() {
                return Err("`{reason}` takes the rest of the line, so it must come last".into());
            }
            if seen.contains(&name.as_str()) {
                return Err(format!(
                    "slot `{name}` appears twice; name them, e.g. `{{from:env}}`"
                ));
            }
            seen.push(name);
        }
    }
    Ok(())
}

/// True when some input could match both alternatives, which would make the
/// grammar ambiguous. Placeholders are assumed to accept any word.
pub fn overlaps(a: &[Element], b: &[Element]) -> bool {
    match (a.split_first(), b.split_first()) {
        (None, None) => true,
        // One side is exhausted while the other still needs at least one word.
        (Some(_), None) | (None, Some(_)) => false,
        (Some((x, xs)), Some((y, ys))) => {
            let x_tail = is_tail(x);
            let y_tail = is_tail(y);
            if x_tail || y_tail {
                // A tail takes one or more words: it can absorb the other side's rest.
                return true;
            }
            let compatible = match (x, y) {
                (Element::Word(p), Element::Word(q)) => p == q,
                _ => true,
            };
            compatible && overlaps(xs, ys)
        }
    }
}

fn is_tail(element: &Element) -> bool {
    matches!(
        element,
        Element::Slot {
            kind: SlotKind::Reason,
            ..
        }
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(alt: &[Element]) -> String {
        alt.iter()
            .map(|e| match e {
                Element::Word(w) => w.clone(),
                Element::Slot { name, .. } => format!("{{{name}}}"),
            })
            .collect::<Vec<_>>()
            .join(" ")
    }

    #[test]
    fn expands_optional_groups() {
        let p = Pattern::compile("deploy {ref} [of {app}] to {env} [--dry-run]").unwrap();
        let alts: Vec<String> = p.alternatives.iter().map(|a| words(a)).collect();
        assert_eq!(
            alts,
            ["deploy {ref} to {env}", "deploy {ref} of {app} to {env}"]
        );
        assert_eq!(p.flags, ["dry-run"]);
        assert_eq!(p.usage(), "deploy <ref> [of <app>] to <env> [--dry-run]");
    }

    #[test]
    fn named_slots_show_their_type() {
        let p = Pattern::compile("promote [{app}] from {from:env} to {to:env}").unwrap();
        assert_eq!(p.usage(), "promote [<app>] from <env> to <env>");
        assert_eq!(p.alternatives.len(), 2);
    }

    #[test]
    fn rejects_bad_patterns() {
        let cases = [
            ("deploy {ref", "not closed"),
            ("deploy {sha}", "unknown placeholder type `sha`"),
            ("deploy [of {app}", "unclosed `[`"),
            ("deploy of]", "unbalanced `]`"),
            ("{ref} deploy", "starts with its command word"),
            ("deploy --force", "must be optional"),
            ("lock {reason} {env}", "must come last"),
            ("promote {env} to {env}", "appears twice"),
            ("deploy []", "empty optional group"),
            ("Deploy", "plain lowercase keyword"),
            ("a [b] [c] [d] [e] [f] [g]", "optional groups"),
        ];
        for (source, why) in cases {
            let err = Pattern::compile(source).unwrap_err().to_string();
            assert!(err.contains(why), "{source}: {err}");
        }
    }

    #[test]
    fn overlap_detection() {
        let alt = |s: &str| Pattern::compile(s).unwrap().alternatives.remove(0);
        assert!(overlaps(&alt("status {env}"), &alt("status {app}")));
        assert!(overlaps(
            &alt("deny {id} {reason}"),
            &alt("deny {id} now please")
        ));
        assert!(!overlaps(
            &alt("deploy {ref} to {env}"),
            &alt("deploy {ref} of {app} to {env}")
        ));
        assert!(!overlaps(&alt("lock {env}"), &alt("lock {env} {reason}")));
        assert!(!overlaps(&alt("envs"), &alt("whoami")));
    }
}
