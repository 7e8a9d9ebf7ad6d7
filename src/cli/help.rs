//! `gantry help [COMMAND]`.

use std::process::ExitCode;

use super::{fail, grammar};

/// Arguments of `gantry help`.
#[derive(Debug, clap::Args)]
pub struct HelpArgs {
    /// A chat command (or alias) to explain; all of them when absent.
    pub command: Option<String>,
    /// Print the command reference as a Markdown table, as in the README.
    #[arg(long, conflicts_with = "command")]
    pub markdown: bool,
}

/// Prints help generated from the grammar files.
pub fn run(args: &HelpArgs) -> ExitCode {
    let grammar = match grammar() {
        Ok(g) => g,
        Err(code) => return code,
    };
    if args.markdown {
        print!("{}", grammar.help_markdown());
        return ExitCode::SUCCESS;
    }
    let Some(word) = &args.command else {
        print!("{}", grammar.help_list());
        return ExitCode::SUCCESS;
    };
    match grammar.command_for_word(word) {
        Some(name) => {
            print!("{}", grammar.help_for(grammar.spec(name)));
            ExitCode::SUCCESS
        }
        None => fail(format!(
            "there is no command `{}`; `gantry help` lists them",
            crate::names::escape_for_display(word)
        )),
    }
}
