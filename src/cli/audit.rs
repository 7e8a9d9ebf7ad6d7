//! `gantry audit verify | export | list`: read and check the audit trail.
//!
//! These commands never create a store: a wrong `--data` is an error that
//! names the directory. The store is locked while open, so they cannot run
//! beside a running bot on the same directory.

use std::fs::File;
use std::io::{BufReader, BufWriter, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, UNIX_EPOCH};

use super::{fail, DataArg};
use crate::store::{Anchor, AuditEvent, ListFilter, Store};

/// Arguments of `gantry audit`.
#[derive(Debug, clap::Args)]
pub struct AuditArgs {
    /// What to do with the audit trail.
    #[command(subcommand)]
    command: AuditCommand,
}

#[derive(Debug, clap::Subcommand)]
enum AuditCommand {
    /// Recompute the hash chain and name the first broken event.
    ///
    /// Every event's hash covers its content and the previous event's hash,
    /// so an edited, removed or reordered event breaks the chain from there
    /// on. Exits 0 when the chain is intact (and matches the anchor, if one
    /// is given), 1 otherwise.
    #[command(
        after_help = "Examples:\n  gantry audit verify --data /var/lib/gantry\n  gantry audit verify --anchor audit-2024-06.jsonl"
    )]
    Verify(VerifyArgs),
    /// Write events as JSON Lines, then a last line with the chain head.
    ///
    /// One event per line, oldest first; the last line is
    /// `{"chain_head":{"seq":N,"hash":"…"}}`. Keep exports outside the store:
    /// `gantry audit verify --anchor FILE` later proves that the store still
    /// holds that head, so a restored older copy is detected.
    #[command(
        after_help = "Examples:\n  gantry audit export --output audit.jsonl\n  gantry audit export --since 1200 | gzip > audit-from-1200.jsonl.gz"
    )]
    Export(ExportArgs),
    /// Show events newest first, as a table or as JSON Lines.
    ///
    /// Filters combine: `--env prod --actor slack:U024BE7LH` shows that
    /// person's events in prod. Times are RFC 3339, UTC.
    #[command(
        after_help = "Examples:\n  gantry audit list --env prod --limit 20\n  gantry audit list --actor github:octocat --json"
    )]
    List(ListArgs),
}

#[derive(Debug, clap::Args)]
struct VerifyArgs {
    #[command(flatten)]
    data: DataArg,
    /// An export (or its last line) whose chain head the store must still contain.
    #[arg(long, value_name = "FILE")]
    anchor: Option<PathBuf>,
}

#[derive(Debug, clap::Args)]
struct ExportArgs {
    #[command(flatten)]
    data: DataArg,
    /// Start at this seq (the chain head line is written in any case).
    #[arg(long, value_name = "SEQ", default_value_t = 1)]
    since: u64,
    /// Write to this file instead of standard output.
    #[arg(long, short = 'o', value_name = "FILE")]
    output: Option<PathBuf>,
}

#[derive(Debug, clap::Args)]
struct ListArgs {
    #[command(flatten)]
    data: DataArg,
    /// Only events for this environment.
    #[arg(long, value_name = "ENV")]
    env: Option<String>,
    /// Only events by this identity, e.g. `slack:U024BE7LH`.
    #[arg(long, value_name = "IDENTITY")]
    actor: Option<String>,
    /// Only events with this seq or a later one.
    #[arg(long, value_name = "SEQ")]
    since: Option<u64>,
    /// Show at most this many events.
    #[arg(long, short = 'n', value_name = "N", default_value_t = 50)]
    limit: usize,
    /// Print one JSON event per line instead of a table.
    #[arg(long)]
    json: bool,
}

/// Runs `gantry audit ...`.
pub fn run(args: &AuditArgs) -> ExitCode {
    match &args.command {
        AuditCommand::Verify(args) => verify(args),
        AuditCommand::Export(args) => export(args),
        AuditCommand::List(args) => list(args),
    }
}

fn verify(args: &VerifyArgs) -> ExitCode {
    let anchor = match &args.anchor {
        Some(path) => match File::open(path)
            .map_err(|e| e.to_string())
            .and_then(|f| Anchor::read(BufReader::new(f)).map_err(|e| e.to_string()))
        {
            Ok(anchor) => Some(anchor),
            Err(e) => return fail(format!("{}: {e}", path.display())),
        },
        None => None,
    };
    let store = match Store::open_existing(&args.data.data) {
        Ok(store) => store,
        Err(e) => return fail(e),
    };
    let report = match store.verify() {
        Ok(report) => report,
        Err(e) => return fail(e),
    };
    println!(
        "checked {} events in {}",
        report.events,
        args.data.data.display()
    );
    match &report.head {
        Some((seq, hash)) => println!("head: seq {seq} hash {hash}"),
        None => println!("head: none (the trail is empty)"),
    }
    if let Some((seq, why)) = &report.first_bad {
        return fail(format!("the audit chain is broken at seq {seq}: {why}"));
    }
    if let Some(anchor) = anchor {
        if let Err(e) = store.verify_anchor(anchor.seq, &anchor.hash) {
            return fail(e);
        }
        println!("anchor: seq {} matches", anchor.seq);
    }
    println!("the chain is intact");
    ExitCode::SUCCESS
}

fn export(args: &ExportArgs) -> ExitCode {
    let store = match Store::open_existing(&args.data.data) {
        Ok(store) => store,
        Err(e) => return fail(e),
    };
    let result = match &args.output {
        Some(path) => match File::create(path) {
            Ok(file) => store.export(BufWriter::new(file), args.since),
            Err(e) => return fail(format!("cannot create {}: {e}", path.display())),
        },
        None => store.export(BufWriter::new(std::io::stdout().lock()), args.since),
    };
    match result {
        Ok(summary) => {
            // The data may be on stdout: the summary goes to stderr.
            eprintln!(
                "exported {} events; chain head seq {} hash {}",
                summary.events, summary.head.seq, summary.head.hash
            );
            ExitCode::SUCCESS
        }
        Err(e) => fail(e),
    }
}

fn list(args: &ListArgs) -> ExitCode {
    let store = match Store::open_existing(&args.data.data) {
        Ok(store) => store,
        Err(e) => return fail(e),
    };
    let filter = ListFilter {
        env: args.env.clone(),
        actor: args.actor.clone(),
        since_seq: args.since,
        limit: Some(args.limit),
    };
    let events = match store.list(&filter) {
        Ok(events) => events,
        Err(e) => return fail(e),
    };
    let mut out = BufWriter::new(std::io::stdout().lock());
    let written = if args.json {
        write_json(&mut out, &events)
    } else {
        write_table(&mut out, &events)
    };
    match written.and_then(|()| out.flush()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(format!("cannot write the list: {e}")),
    }
}

fn write_json(out: &mut impl Write, events: &[AuditEvent]) -> std::io::Result<()> {
    for event in events {
        serde_json::to_writer(&mut *out, event)?;
        writeln!(out)?;
    }
    Ok(())
}

fn write_table(out: &mut impl Write, events: &[AuditEvent]) -> std::io::Result<()> {
    if events.is_empty() {
        return writeln!(out, "no events");
    }
    let rows: Vec<[String; 6]> = events
        .iter()
        .map(|e| {
            [
                e.seq.to_string(),
                rfc3339(e.time),
                printable(&e.actor),
                printable(&e.action),
                printable(&e.subject),
                e.env.as_deref().map_or_else(|| "-".to_owned(), printable),
            ]
        })
        .collect();
    let header = ["SEQ", "TIME", "ACTOR", "ACTION", "SUBJECT", "ENV"];
    let mut widths = header.map(|h| h.chars().count());
    for row in &rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let line = |cells: [&str; 6]| {
        let padded: Vec<String> = cells
            .iter()
            .zip(widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        padded.join("  ").trim_end().to_owned()
    };
    writeln!(out, "{}", line(header))?;
    for row in &rows {
        writeln!(out, "{}", line(row.each_ref().map(String::as_str)))?;
    }
    Ok(())
}

/// Unix milliseconds as RFC 3339 UTC, to the second.
fn rfc3339(millis: i64) -> String {
    match u64::try_from(millis) {
        Ok(ms) => {
            humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_millis(ms)).to_string()
        }
        // Before 1970: no event has that; show the raw value rather than guess.
        Err(_) => format!("{millis} ms"),
    }
}

/// Escapes control and bidi characters, so text from chat cannot drive or disguise the terminal.
fn printable(text: &str) -> String {
    let hidden = |c: char| {
        c.is_control()
            || matches!(c, '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{feff}')
    };
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if hidden(c) {
            out.extend(c.escape_unicode());
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_rfc3339_utc() {
        assert_eq!(rfc3339(1_700_000_000_999), "2023-11-14T22:13:20Z");
        assert_eq!(rfc3339(-5), "-5 ms");
    }

    #[test]
    fn control_characters_are_escaped() {
        assert_eq!(printable("deploy\u{1b}[2J\nx"), "deploy\\u{1b}[2J\\u{a}x");
        assert_eq!(printable("main\u{202e}dorp"), "main\\u{202e}dorp");
        assert_eq!(printable("feat-ü"), "feat-ü");
    }
}
