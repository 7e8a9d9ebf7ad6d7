//! Loading and compiling the command grammar in `commands/*.toml`.
//!
//! Each file declares one command: its patterns, aliases, help text and
//! examples. The built-in grammar is compiled into the binary from the
//! repository's `commands/` directory, so the binary needs no data files.

use std::collections::HashMap;

use serde::Deserialize;

use super::pattern::{overlaps, Element, Pattern, SlotKind};
use super::{slot_rules, CommandName, SlotNeed, SlotShape};

/// The grammar files shipped in `commands/`, compiled in.
pub const BUILTIN_SOURCES: &[(&str, &str)] = &[
    (
        "commands/deploy.toml",
        include_str!("../../commands/deploy.toml"),
    ),
    (
        "commands/promote.toml",
        include_str!("../../commands/promote.toml"),
    ),
    (
        "commands/rollback.toml",
        include_str!("../../commands/rollback.toml"),
    ),
    (
        "commands/build.toml",
        include_str!("../../commands/build.toml"),
    ),
    (
        "commands/approve.toml",
        include_str!("../../commands/approve.toml"),
    ),
    (
        "commands/deny.toml",
        include_str!("../../commands/deny.toml"),
    ),
    (
        "commands/cancel.toml",
        include_str!("../../commands/cancel.toml"),
    ),
    (
        "commands/lock.toml",
        include_str!("../../commands/lock.toml"),
    ),
    (
        "commands/unlock.toml",
        include_str!("../../commands/unlock.toml"),
    ),
    (
        "commands/status.toml",
        include_str!("../../commands/status.toml"),
    ),
    (
        "commands/history.toml",
        include_str!("../../commands/history.toml"),
    ),
    (
        "commands/envs.toml",
        include_str!("../../commands/envs.toml"),
    ),
    (
        "commands/whoami.toml",
        include_str!("../../commands/whoami.toml"),
    ),
    (
        "commands/teardown.toml",
        include_str!("../../commands/teardown.toml"),
    ),
    (
        "commands/complete.toml",
        include_str!("../../commands/complete.toml"),
    ),
    (
        "commands/help.toml",
        include_str!("../../commands/help.toml"),
    ),
];

/// One grammar file as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct CommandFile {
    /// The command's name; must be one Gantry knows.
    command: String,
    /// One line for the command list.
    summary: String,
    /// Other first words that mean this command. Default: none.
    #[serde(default)]
    aliases: Vec<String>,
    /// The patterns that chat text may match.
    patterns: Vec<String>,
    /// Extra patterns valid only in pull request comments, where a missing
    /// `{ref}` means the pull request's head. Default: none.
    #[serde(default)]
    pull_request_patterns: Vec<String>,
    /// The help text, shown by `help <command>`.
    help: String,
    /// Inputs and the parse they must give; each runs as a test.
    #[serde(default)]
    examples: Vec<Example>,
    /// Inputs that must be refused, and a part of the error they must give.
    #[serde(default)]
    rejects: Vec<Reject>,
}

/// An example input and its expected parse.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Example {
    /// What the person types.
    pub text: String,
    /// When set, the text is a comment on this pull request.
    #[serde(default)]
    pub pull_request: Option<u64>,
    /// The parse, as `gantry parse --json` prints it.
    pub expect: toml::Table,
}

/// An input that must be refused.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Reject {
    /// What the person types.
    pub text: String,
    /// A part of the error message it must produce.
    pub error: String,
}

/// A compiled command.
#[derive(Debug, Clone)]
pub struct CommandSpec {
    /// Which command.
    pub name: CommandName,
    /// The file it came from.
    pub file: String,
    /// One line for the command list.
    pub summary: String,
    /// Other first words for it.
    pub aliases: Vec<String>,
    /// Chat patterns.
    pub patterns: Vec<Pattern>,
    /// Pull-request-only patterns.
    pub pull_request_patterns: Vec<Pattern>,
    /// Long help.
    pub help: String,
    /// Examples that double as tests.
    pub examples: Vec<Example>,
    /// Inputs that must be refused.
    pub rejects: Vec<Reject>,
}

impl CommandSpec {
    /// Every flag this command declares.
    pub fn flags(&self) -> impl Iterator<Item = &str> {
        self.patterns
            .iter()
            .chain(&self.pull_request_patterns)
            .flat_map(|p| p.flags.iter().map(String::as_str))
    }

    /// Usage lines for chat, one per pattern.
    pub fn usage(&self) -> String {
        let lines: Vec<String> = self.patterns.iter().map(Pattern::usage).collect();
        lines.join(" | ")
    }
}

/// Why the grammar does not load.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}: {why}")]
pub struct GrammarError {
    /// The grammar file at fault (or `commands/` for the set as a whole).
    pub file: String,
    /// What is wrong, with the line where known.
    pub why: String,
}

/// The compiled grammar: every command, and the words that start them.
#[derive(Debug, Clone)]
pub struct Grammar {
    pub(super) commands: Vec<CommandSpec>,
    pub(super) words: HashMap<String, CommandName>,
}

impl Grammar {
    /// Compiles the grammar built into the binary.
    pub fn builtin() -> Result<Grammar, GrammarError> {
        Grammar::compile(BUILTIN_SOURCES)
    }

    /// Compiles grammar files given as (file name, contents) pairs.
    pub fn compile(sources: &[(&str, &str)]) -> Result<Grammar, GrammarError> {
        let mut commands: Vec<CommandSpec> = Vec::new();
        let mut words = HashMap::new();
        for (file, text) in sources {
            let spec = compile_file(file, text)?;
            if let Some(twin) = commands.iter().find(|c| c.name == spec.name) {
                return Err(fail(
                    file,
                    format!("`{}` is also declared in {}", spec.name, twin.file),
                ));
            }
            for word in
                std::iter::once(spec.name.as_str()).chain(spec.aliases.iter().map(String::as_str))
            {
                if let Some(other) = words.insert(word.to_owned(), spec.name) {
                    return Err(fail(
                        file,
                        format!("the word `{word}` already starts `{other}`"),
                    ));
                }
            }
            commands.push(spec);
        }
        for name in CommandName::ALL {
            if !commands.iter().any(|c| c.name == name) {
                return Err(fail(
                    "commands/",
                    format!("no grammar file declares `{name}`"),
                ));
            }
        }
        commands.sort_by_key(|c| c.name);
        check_overlaps(&commands)?;
        Ok(Grammar { commands, words })
    }

    /// The compiled commands, in the order of [`CommandName::ALL`].
    pub fn commands(&self) -> &[CommandSpec] {
        &self.commands
    }

    /// The spec of one command.
    pub fn spec(&self, name: CommandName) -> &CommandSpec {
        // Invariant: `compile` refuses a grammar that lacks any command.
        let index = self
            .commands
            .iter()
            .position(|c| c.name == name)
            .unwrap_or(0);
        &self.commands[index]
    }

    /// The command a first word (name or alias) starts, if any.
    pub fn command_for_word(&self, word: &str) -> Option<CommandName> {
        if word.len() > 32 {
            return None;
        }
        self.words.get(&word.to_ascii_lowercase()).copied()
    }
}

fn fail(file: &str, why: String) -> GrammarError {
    GrammarError {
        file: file.to_owned(),
        why,
    }
}

fn compile_file(file: &str, text: &str) -> Result<CommandSpec, GrammarError> {
    let raw: CommandFile = toml::from_str(text).map_err(|e| {
        let line = e
            .span()
            .map(|s| text[..s.start.min(text.len())].matches('\n').count() + 1);
        let at = line.map(|l| format!("line {l}: ")).unwrap_or_default();
        fail(file, format!("{at}{}", e.message()))
    })?;
    let name: CommandName = raw
        .command
        .parse()
        .map_err(|_| fail(file, format!("unknown command `{}`", raw.command)))?;
    let compile_all = |sources: &[String]| -> Result<Vec<Pattern>, GrammarError> {
        sources
            .iter()
            .map(|s| Pattern::compile(s).map_err(|e| fail(file, e.to_string())))
            .collect()
    };
    let patterns = compile_all(&raw.patterns)?;
    let pull_request_patterns = compile_all(&raw.pull_request_patterns)?;
    if patterns.is_empty() {
        return Err(fail(file, "no patterns".into()));
    }
    for pattern in &patterns {
        check_slots(name, pattern, false).map_err(|why| fail(file, why))?;
    }
    for pattern in &pull_request_patterns {
        check_slots(name, pattern, true).map_err(|why| fail(file, why))?;
    }
    for alias in &raw.aliases {
        if alias.is_empty() || !alias.bytes().all(|b| b.is_ascii_lowercase()) {
            return Err(fail(
                file,
                format!("alias `{alias}` must be lowercase letters"),
            ));
        }
    }
    Ok(CommandSpec {
        name,
        file: file.to_owned(),
        summary: raw.summary,
        aliases: raw.aliases,
        patterns,
        pull_request_patterns,
        help: raw.help.trim_end().to_owned(),
        examples: raw.examples,
        rejects: raw.rejects,
    })
}

/// Checks that a pattern starts with its command's name, fills every slot
/// of one of the command's shapes with the right kind, and declares no others.
fn check_slots(name: CommandName, pattern: &Pattern, in_pull_request: bool) -> Result<(), String> {
    let src = &pattern.source;
    for alt in &pattern.alternatives {
        match alt.first() {
            Some(Element::Word(w)) if w == name.as_str() => {}
            _ => return Err(format!("pattern `{src}` must start with `{name}`")),
        }
        // The first shape's complaint is the one reported when none fits.
        let mut checks = slot_rules(name)
            .iter()
            .map(|shape| check_shape(name, src, alt, shape, in_pull_request));
        let first = checks.next().unwrap_or(Ok(()));
        if first.is_err() && !checks.any(|c| c.is_ok()) {
            return first;
        }
    }
    let allowed = super::flag_rules(name);
    if let Some(flag) = pattern
        .flags
        .iter()
        .find(|f| !allowed.contains(&f.as_str()))
    {
        return Err(format!("pattern `{src}`: `{name}` has no flag `--{flag}`"));
    }
    if pattern.alternatives.iter().flatten().any(|e| {
        matches!(
            e,
            Element::Slot {
                kind: SlotKind::Reason,
                ..
            }
        )
    }) && !pattern.flags.is_empty()
    {
        return Err(format!(
            "pattern `{src}`: a `{{reason}}` tail cannot be combined with flags"
        ));
    }
    Ok(())
}

/// Checks one alternative against one shape of its command's slots.
fn check_shape(
    name: CommandName,
    src: &str,
    alt: &[Element],
    rules: SlotShape,
    in_pull_request: bool,
) -> Result<(), String> {
    for element in alt {
        if let Element::Slot { name: slot, kind } = element {
            match rules.iter().find(|r| r.0 == slot) {
                Some(&(_, want, _)) if want == *kind => {}
                Some(&(_, want, _)) => {
                    return Err(format!(
                        "pattern `{src}`: slot `{slot}` must be a {}",
                        want.name()
                    ))
                }
                None => return Err(format!("pattern `{src}`: `{name}` has no slot `{slot}`")),
            }
        }
    }
    for &(slot, _, need) in rules {
        let present = alt
            .iter()
            .any(|e| matches!(e, Element::Slot { name, .. } if name == slot));
        let may_miss = match need {
            SlotNeed::Optional => true,
            SlotNeed::Required => false,
            SlotNeed::PullRequestHead => in_pull_request,
        };
        if !present && !may_miss {
            return Err(format!(
                "pattern `{src}` lacks the required slot `{{{slot}}}`"
            ));
        }
    }
    Ok(())
}

/// Refuses a grammar in which one input could match two alternatives.
fn check_overlaps(commands: &[CommandSpec]) -> Result<(), GrammarError> {
    for pull_request in [false, true] {
        let mut all: Vec<(&CommandSpec, &Pattern, &[Element])> = Vec::new();
        for spec in commands {
            let pattern_sets = if pull_request {
                vec![&spec.patterns, &spec.pull_request_patterns]
            } else {
                vec![&spec.patterns]
            };
            for pattern in pattern_sets.into_iter().flatten() {
                for alt in &pattern.alternatives {
                    all.push((spec, pattern, alt));
                }
            }
        }
        for (i, (spec_a, pat_a, alt_a)) in all.iter().enumerate() {
            for (spec_b, pat_b, alt_b) in &all[i + 1..] {
                if spec_a.name == spec_b.name && overlaps(alt_a, alt_b) {
                    let place = if pull_request {
                        " in pull request comments"
                    } else {
                        ""
                    };
                    return Err(fail(
                        &spec_a.file,
                        format!(
                            "patterns `{}` and `{}` overlap{place}: one input could match both",
                            pat_a.source, pat_b.source
                        ),
                    ));
                }
            }
        }
    }
    Ok(())
}
