//! Matching words against the compiled grammar and building a [`Command`].

use super::error::{shown, ParseError};
use super::gitref::{BranchName, GitRef};
use super::grammar::{CommandSpec, Grammar};
use super::nearest::nearest;
use super::pattern::{Element, SlotKind};
use super::tokenize::{tokenize, Token};
use super::{Command, CommandName, RollbackTarget, Vocabulary, MAX_COMMAND_LEN};
use crate::names::{is_hidden_or_control, AppName, EnvName, RequestId, MAX_REMARK_CHARS};

/// Largest `{n}` accepted.
const MAX_COUNT: u32 = 1000;

/// A filled slot.
#[derive(Debug, Clone)]
enum Value {
    Ref(GitRef),
    Branch(BranchName),
    Env(EnvName),
    App(AppName),
    Id(RequestId),
    Count(u32),
    Text(String),
    Target(RollbackTarget),
    Topic(CommandName),
}

impl Grammar {
    /// Parses chat text into a command.
    pub fn parse(&self, text: &str, vocabulary: &Vocabulary) -> Result<Command, ParseError> {
        self.parse_with(text, vocabulary, None)
    }

    /// Parses a command from a pull request comment line (without its
    /// `/gantry` prefix); pull-request-only patterns are allowed and a
    /// missing ref means the head of pull request `number`.
    pub fn parse_for_pull_request(
        &self,
        text: &str,
        number: u64,
        vocabulary: &Vocabulary,
    ) -> Result<Command, ParseError> {
        self.parse_with(text, vocabulary, Some(number))
    }

    fn parse_with(
        &self,
        text: &str,
        vocabulary: &Vocabulary,
        pull_request: Option<u64>,
    ) -> Result<Command, ParseError> {
        if text.len() > MAX_COMMAND_LEN {
            return Err(ParseError::TooLong {
                len: text.len(),
                max: MAX_COMMAND_LEN,
            });
        }
        let tokens = tokenize(text).map_err(|e| ParseError::UnclosedQuote { column: e.column })?;
        let (first, rest) = tokens.split_first().ok_or(ParseError::Empty)?;
        let name = self.command_for_word(first.text).filter(|_| !first.quoted);
        let Some(name) = name else {
            let words = self.words.keys().map(String::as_str);
            let suggestion = nearest(first.text, words)
                .and_then(|w| self.command_for_word(w))
                .map(|c| self.spec(c).usage());
            return Err(ParseError::UnknownCommand {
                word: shown(first.text),
                suggestion,
            });
        };
        let spec = self.spec(name);
        let (flags, words) = split_flags(spec, rest)?;
        let mut patterns: Vec<&super::Pattern> = spec.patterns.iter().collect();
        if pull_request.is_some() {
            patterns.extend(&spec.pull_request_patterns);
        }
        // Patterns never overlap, so at most one alternative fits.
        let fitting = patterns.iter().find_map(|p| {
            p.alternatives
                .iter()
                .find(|a| fits(&a[1..], &words))
                .map(|a| (p, a))
        });
        let Some((pattern, alt)) = fitting else {
            let alternatives = patterns.iter().flat_map(|p| p.alternatives.iter());
            return Err(ParseError::Shape {
                problem: diagnose(alternatives.map(|a| &a[1..]), &words, first),
                usage: spec.usage(),
            });
        };
        if let Some((flag, column)) = flags
            .iter()
            .find(|(f, _)| !pattern.flags.iter().any(|p| p == f))
        {
            return Err(ParseError::BadValue {
                problem: format!("`--{flag}` does not go with `{}`", pattern.usage()),
                column: *column,
                usage: spec.usage(),
            });
        }
        let slots = fill(spec, &alt[1..], &words, vocabulary, self)?;
        build(name, slots, &flags, pull_request).ok_or_else(|| ParseError::Shape {
            problem: format!(
                "{} leaves a required slot unfilled (a grammar bug)",
                spec.file
            ),
            usage: spec.usage(),
        })
    }
}

/// A flag given, without its `--`, and its column.
type Flag<'a> = (&'a str, usize);

/// Takes flags out of the words; refuses undeclared or repeated ones.
fn split_flags<'t, 'a>(
    spec: &CommandSpec,
    tokens: &'t [Token<'a>],
) -> Result<(Vec<Flag<'a>>, Vec<&'t Token<'a>>), ParseError> {
    let mut flags = Vec::new();
    let mut words = Vec::new();
    for token in tokens {
        if !token.is_flag() {
            words.push(token);
            continue;
        }
        let flag = &token.text[2..];
        let unknown = || ParseError::UnknownFlag {
            command: spec.name.to_string(),
            flag: shown(token.text),
            column: token.column,
            usage: spec.usage(),
        };
        if !spec.flags().any(|f| f == flag) {
            return Err(unknown());
        }
        if flags.iter().any(|(f, _)| *f == flag) {
            return Err(ParseError::BadValue {
                problem: format!("`--{flag}` is given twice"),
                column: token.column,
                usage: spec.usage(),
            });
        }
        flags.push((flag, token.column));
    }
    Ok((flags, words))
}

/// Whether a word may stand for an element. A request id slot takes only
/// words shaped like one (`R-…`; the digits are checked when it is filled),
/// so that `rollback R-7` and `rollback prod` find different patterns.
fn element_fits(element: &Element, token: &Token<'_>) -> bool {
    match element {
        Element::Word(w) => !token.quoted && token.text.eq_ignore_ascii_case(w),
        Element::Slot {
            kind: SlotKind::Id, ..
        } => looks_like_id(token.text),
        Element::Slot { .. } => true,
    }
}

/// Free text (a reason or a comment): at most [`MAX_REMARK_CHARS`]
/// characters, with no control, bidi or zero-width characters.
fn remark(text: &str) -> Result<String, String> {
    if let Some(c) = text.chars().find(|c| is_hidden_or_control(*c)) {
        return Err(format!(
            "free text may not hold control, bidi or zero-width characters, and this holds U+{:04X}",
            c as u32
        ));
    }
    let len = text.chars().count();
    if len > MAX_REMARK_CHARS {
        return Err(format!(
            "free text is at most {MAX_REMARK_CHARS} characters, and this has {len}"
        ));
    }
    Ok(text.to_owned())
}

fn looks_like_id(text: &str) -> bool {
    text.get(..2).is_some_and(|p| p.eq_ignore_ascii_case("R-"))
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

/// True when the words have the alternative's shape: keywords in place and
/// the right number of words.
fn fits(alt: &[Element], words: &[&Token<'_>]) -> bool {
    let tail = alt.last().is_some_and(is_tail);
    let fixed = if tail { alt.len() - 1 } else { alt.len() };
    let count_ok = if tail {
        words.len() > fixed
    } else {
        words.len() == fixed
    };
    count_ok
        && alt[..fixed]
            .iter()
            .zip(words)
            .all(|(e, t)| element_fits(e, t))
}

/// Explains why no alternative fits, from the one that fits longest.
fn diagnose<'e>(
    alternatives: impl Iterator<Item = &'e [Element]>,
    words: &[&Token<'_>],
    command: &Token<'_>,
) -> String {
    let prefix = |alt: &[Element]| {
        alt.iter()
            .zip(words)
            .take_while(|(e, t)| is_tail(e) || element_fits(e, t))
            .count()
    };
    let best = alternatives.max_by_key(|alt| {
        let closeness = usize::MAX - alt.len().abs_diff(words.len());
        (prefix(alt), closeness)
    });
    let Some(alt) = best else {
        return "this command takes no words here".into();
    };
    let k = prefix(alt);
    let previous = if k == 0 { command } else { words[k - 1] };
    match (alt.get(k), words.get(k)) {
        (Some(element), None) => format!(
            "missing {} after `{}`",
            describe(element),
            shown(previous.text)
        ),
        (Some(element), Some(token)) => {
            let hint = match element {
                Element::Slot {
                    kind: SlotKind::Id, ..
                } => "; request ids look like R-42",
                _ => "",
            };
            format!(
                "expected {} at column {}, found `{}`{hint}",
                describe(element),
                token.column,
                shown(token.text)
            )
        }
        (None, Some(token)) => format!(
            "unexpected `{}` at column {}",
            shown(token.text),
            token.column
        ),
        (None, None) => "the words do not fit this command".into(),
    }
}

fn describe(element: &Element) -> String {
    match element {
        Element::Word(w) => format!("`{w}`"),
        Element::Slot { kind, .. } => format!("<{}>", kind.name()),
    }
}

fn fill(
    spec: &CommandSpec,
    alt: &[Element],
    words: &[&Token<'_>],
    vocabulary: &Vocabulary,
    grammar: &Grammar,
) -> Result<Vec<(String, Value)>, ParseError> {
    let mut slots = Vec::new();
    for (i, element) in alt.iter().enumerate() {
        let Element::Slot { name, kind } = element else {
            continue;
        };
        let token = words[i];
        let bad = |problem: String| ParseError::BadValue {
            problem,
            column: token.column,
            usage: spec.usage(),
        };
        let value = match kind {
            SlotKind::Reason => {
                let rest: Vec<&str> = words[i..].iter().map(|t| t.text).collect();
                Value::Text(remark(&rest.join(" ")).map_err(bad)?)
            }
            SlotKind::Ref => Value::Ref(GitRef::parse(token.text).map_err(|e| bad(e.to_string()))?),
            SlotKind::Branch => {
                Value::Branch(BranchName::parse(token.text).map_err(|e| bad(e.to_string()))?)
            }
            SlotKind::Env => Value::Env(
                known(
                    token.text,
                    "environment",
                    vocabulary.envs(),
                    vocabulary.env(token.text),
                )
                .map_err(bad)?,
            ),
            SlotKind::App => Value::App(
                known(
                    token.text,
                    "app",
                    vocabulary.apps(),
                    vocabulary.app(token.text),
                )
                .map_err(bad)?,
            ),
            SlotKind::Id => Value::Id(
                token
                    .text
                    .parse()
                    .map_err(|e: crate::names::NameError| bad(e.to_string()))?,
            ),
            SlotKind::N => Value::Count(count(token.text).map_err(bad)?),
            SlotKind::Target => Value::Target(target(token.text).map_err(bad)?),
            SlotKind::Topic => Value::Topic(
                grammar
                    .command_for_word(token.text)
                    .ok_or_else(|| bad(format!("there is no command `{}`", shown(token.text))))?,
            ),
        };
        slots.push((name.clone(), value));
    }
    Ok(slots)
}

fn known<T: Clone + AsRef<str>>(
    text: &str,
    kind: &str,
    all: &[T],
    found: Option<&T>,
) -> Result<T, String> {
    if let Some(name) = found {
        return Ok(name.clone());
    }
    let names: Vec<&str> = all.iter().map(AsRef::as_ref).collect();
    let hint = if !text.is_ascii() {
        " (it contains non-ASCII characters; names are plain ASCII)".to_owned()
    } else {
        nearest(text, names.iter().copied())
            .map(|n| format!("; did you mean `{n}`?"))
            .unwrap_or_default()
    };
    Err(format!(
        "unknown {kind} `{}`{hint} (known: {})",
        shown(text),
        names.join(", ")
    ))
}

fn count(text: &str) -> Result<u32, String> {
    let value = (text.len() <= 4 && text.bytes().all(|b| b.is_ascii_digit()))
        .then(|| text.parse::<u32>().ok())
        .flatten()
        .filter(|n| (1..=MAX_COUNT).contains(n));
    value.ok_or_else(|| format!("`{}` is not a number from 1 to {MAX_COUNT}", shown(text)))
}

fn target(text: &str) -> Result<RollbackTarget, String> {
    if text.starts_with("R-") || text.starts_with("r-") {
        return text
            .parse()
            .map(RollbackTarget::Request)
            .map_err(|e: crate::names::NameError| e.to_string());
    }
    let hex = text
        .bytes()
        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    if hex && (7..=40).contains(&text.len()) {
        return Ok(RollbackTarget::Sha(text.to_owned()));
    }
    Err(format!(
        "`{}` is neither a request id (R-42) nor a commit SHA (7 to 40 lowercase hex digits)",
        shown(text)
    ))
}

/// Builds the command from its filled slots. The grammar check at compile
/// time guarantees every required slot is present with the right kind, so
/// `None` here means a grammar bug, reported as such by the caller.
fn build(
    name: CommandName,
    slots: Vec<(String, Value)>,
    flags: &[Flag<'_>],
    pull_request: Option<u64>,
) -> Option<Command> {
    let mut slots = Slots(slots);
    let dry_run = flags.iter().any(|(f, _)| *f == "dry-run");
    let head = pull_request.map(GitRef::PullRequest);
    Some(match name {
        CommandName::Deploy => Command::Deploy {
            reference: slots.git_ref("ref").or(head)?,
            app: slots.app("app"),
            env: slots.env("env")?,
            dry_run,
        },
        CommandName::Promote => Command::Promote {
            app: slots.app("app"),
            from: slots.env("from")?,
            to: slots.env("to")?,
            dry_run,
        },
        CommandName::Rollback => match slots.id("id") {
            Some(id) => Command::RollbackRequest { id },
            None => Command::Rollback {
                app: slots.app("app"),
                env: slots.env("env")?,
                target: slots.target("target"),
                dry_run,
            },
        },
        CommandName::Build => Command::Build {
            reference: slots.git_ref("ref").or(head)?,
            app: slots.app("app"),
        },
        CommandName::Approve => Command::Approve {
            id: slots.id("id")?,
            comment: slots.text("comment"),
        },
        CommandName::Deny => Command::Deny {
            id: slots.id("id")?,
            reason: slots.text("reason"),
        },
        CommandName::Cancel => Command::Cancel {
            id: slots.id("id")?,
        },
        CommandName::Complete => Command::Complete {
            id: slots.id("id")?,
        },
        CommandName::Lock => Command::Lock {
            env: slots.env("env")?,
            reason: slots.text("reason"),
        },
        CommandName::Unlock => Command::Unlock {
            env: slots.env("env")?,
        },
        CommandName::Status => Command::Status {
            env: slots.env("env"),
        },
        CommandName::History => Command::History {
            env: slots.env("env")?,
            limit: slots.count("limit"),
        },
        CommandName::Envs => Command::Envs,
        CommandName::Whoami => Command::Whoami,
        CommandName::Teardown => Command::Teardown {
            branch: slots.branch("branch")?,
        },
        CommandName::Help => Command::Help {
            topic: slots.topic("topic"),
        },
    })
}

/// Filled slots, taken out by name and kind.
struct Slots(Vec<(String, Value)>);

macro_rules! slot_getter {
    ($fn:ident, $variant:ident, $ty:ty) => {
        fn $fn(&mut self, name: &str) -> Option<$ty> {
            match self.take(name)? {
                Value::$variant(v) => Some(v),
                _ => None,
            }
        }
    };
}

impl Slots {
    fn take(&mut self, name: &str) -> Option<Value> {
        let index = self.0.iter().position(|(n, _)| n == name)?;
        Some(self.0.swap_remove(index).1)
    }

    slot_getter!(git_ref, Ref, GitRef);
    slot_getter!(branch, Branch, BranchName);
    slot_getter!(env, Env, EnvName);
    slot_getter!(app, App, AppName);
    slot_getter!(id, Id, RequestId);
    slot_getter!(count, Count, u32);
    slot_getter!(text, Text, String);
    slot_getter!(target, Target, RollbackTarget);
    slot_getter!(topic, Topic, CommandName);
}
