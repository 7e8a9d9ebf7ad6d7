//! Help text, generated from the grammar files and nothing else.

use std::fmt::Write;

use super::grammar::{CommandSpec, Grammar};
use super::pattern::Pattern;

impl Grammar {
    /// The command list: every usage line with its summary.
    pub fn help_list(&self) -> String {
        let mut out = String::from("Commands (say `help <command>` for more):\n");
        for spec in self.commands() {
            for pattern in &spec.patterns {
                let _ = writeln!(out, "  {}", pattern.usage());
            }
            let _ = writeln!(out, "      {}", spec.summary);
        }
        out
    }

    /// Everything about one command: usage, aliases, text and examples.
    pub fn help_for(&self, spec: &CommandSpec) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "{} — {}", spec.name, spec.summary);
        let _ = writeln!(out, "\nUsage:");
        for pattern in &spec.patterns {
            let _ = writeln!(out, "  {}", pattern.usage());
        }
        if !spec.pull_request_patterns.is_empty() {
            let _ = writeln!(out, "\nIn a pull request comment, also:");
            for pattern in &spec.pull_request_patterns {
                let _ = writeln!(out, "  /gantry {}", pattern.usage());
            }
            if spec.name == super::CommandName::Deploy {
                let _ = writeln!(out, "  /deploy <env> [--dry-run]");
            }
        }
        if !spec.aliases.is_empty() {
            let _ = writeln!(out, "\nAliases: {}", spec.aliases.join(", "));
        }
        let _ = writeln!(out, "\n{}", spec.help);
        if !spec.examples.is_empty() {
            let _ = writeln!(out, "\nExamples:");
            for example in &spec.examples {
                let place = match example.pull_request {
                    Some(pr) => format!("   (comment on pull request #{pr})"),
                    None => String::new(),
                };
                let _ = writeln!(out, "  {}{place}", example.text);
            }
        }
        out
    }

    /// The command reference in Markdown, as the README carries it.
    pub fn help_markdown(&self) -> String {
        let mut out = String::from("| command | what it does |\n|---|---|\n");
        for spec in self.commands() {
            let usages: Vec<String> = spec
                .patterns
                .iter()
                .map(Pattern::usage)
                .chain(
                    spec.pull_request_patterns
                        .iter()
                        .map(|p| format!("/gantry {}", p.usage())),
                )
                .map(|u| format!("`{}`", u.replace('|', "\\|")))
                .collect();
            let aliases = if spec.aliases.is_empty() {
                String::new()
            } else {
                format!(" (alias: {})", spec.aliases.join(", "))
            };
            let _ = writeln!(
                out,
                "| {} | {}{aliases} |",
                usages.join("<br>"),
                spec.summary
            );
        }
        out
    }
}
