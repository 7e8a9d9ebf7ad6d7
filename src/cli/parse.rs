//! `gantry parse [--json] [--pr N] TEXT...`.

use std::process::ExitCode;

use super::{fail, grammar, ConfigArg};
use crate::command::Vocabulary;

/// Arguments of `gantry parse`.
#[derive(Debug, clap::Args)]
pub struct ParseArgs {
    #[command(flatten)]
    config: ConfigArg,
    /// Print the result (or the error) as JSON.
    #[arg(long)]
    json: bool,
    /// Read TEXT as a comment on this pull request (`/deploy <env>`, `/gantry …`).
    #[arg(long, value_name = "NUMBER")]
    pr: Option<u64>,
    /// The command text; several words are joined with spaces.
    #[arg(
        required = true,
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "TEXT"
    )]
    text: Vec<String>,
}

/// Parses the text and prints the command or the error.
pub fn run(args: &ParseArgs) -> ExitCode {
    let grammar = match grammar() {
        Ok(g) => g,
        Err(code) => return code,
    };
    let config = match crate::config::load(&args.config.config) {
        Ok(c) => c,
        Err(e) => return fail(e),
    };
    let vocabulary = Vocabulary::new(config.env_names(), config.app_names());
    let text = args.text.join(" ");
    let parsed = match args.pr {
        Some(pr) => grammar
            .parse_comment(&text, pr, &vocabulary)
            .and_then(|c| c.ok_or(crate::command::ParseError::NoCommandInComment)),
        None => grammar.parse(&text, &vocabulary),
    };
    match (parsed, args.json) {
        (Ok(command), true) => {
            println!("{}", serde_json::to_value(&command).unwrap_or_default());
            ExitCode::SUCCESS
        }
        (Ok(command), false) => {
            println!("{command}");
            if let Ok(serde_json::Value::Object(fields)) = serde_json::to_value(&command) {
                for (key, value) in fields {
                    let shown = value
                        .as_str()
                        .map_or_else(|| value.to_string(), str::to_owned);
                    println!("  {key}: {shown}");
                }
            }
            ExitCode::SUCCESS
        }
        (Err(e), true) => {
            println!("{}", serde_json::json!({ "error": e.to_string() }));
            ExitCode::FAILURE
        }
        (Err(e), false) => fail(e),
    }
}
