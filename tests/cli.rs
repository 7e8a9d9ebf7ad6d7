//! The `gantry` binary as a person uses it: real process, real files.

use std::path::PathBuf;
use std::process::{Command, Output};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn gantry(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_gantry"))
        .args(args)
        .current_dir(root())
        .env_remove("GANTRY_CONFIG")
        .output()
        .expect("run gantry")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn parse_prints_json() {
    let out = gantry(&["parse", "--json", "deploy feat-x to dev"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let value: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(
        value,
        serde_json::json!({"command": "deploy", "ref": "feat-x", "ref_kind": "name", "env": "dev"})
    );
}

#[test]
fn parse_joins_words_and_accepts_flags_after_text() {
    let out = gantry(&[
        "parse",
        "ship",
        "v1.2.0",
        "of",
        "api",
        "to",
        "staging",
        "--dry-run",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(
        text.starts_with("deploy v1.2.0 of api to staging --dry-run\n"),
        "{text}"
    );
    assert!(text.contains("  env: staging\n"), "{text}");
}

#[test]
fn parse_error_exits_non_zero_with_usage() {
    let out = gantry(&["parse", "deplyo feat-x to dev"]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("did you mean `deploy <ref> [of <app>] to <env> [--dry-run]`?"),
        "{err}"
    );
    let out = gantry(&["parse", "--json", "deploy feat-x to prd"]);
    assert_eq!(out.status.code(), Some(1));
    let value: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    let message = value["error"].as_str().unwrap();
    assert!(message.contains("did you mean `prod`?"), "{message}");
}

#[test]
fn parse_pull_request_comments() {
    let out = gantry(&["parse", "--json", "--pr", "42", "Ship it!\n/deploy staging"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let value: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(value["ref"], "#42");
    assert_eq!(value["env"], "staging");
    let out = gantry(&["parse", "--pr", "42", "```\n/deploy prod\n```"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("has no line starting with `/gantry`"));
}

#[test]
fn parse_refuses_oversized_input() {
    let big = format!("deploy {} to dev", "x".repeat(10 * 1024));
    let out = gantry(&["parse", &big]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("the limit is 512"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn parse_with_a_missing_config_names_the_path() {
    let out = gantry(&["parse", "--config", "/nonexistent/gantry.toml", "status"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("/nonexistent/gantry.toml"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn help_lists_and_explains_commands() {
    let out = gantry(&["help"]);
    assert!(out.status.success());
    let list = stdout(&out);
    for word in [
        "deploy <ref>",
        "promote [<app>] from <env> to <env>",
        "teardown <branch>",
        "whoami",
    ] {
        assert!(list.contains(word), "{word} missing from:\n{list}");
    }
    let out = gantry(&["help", "ship"]);
    assert!(out.status.success());
    let one = stdout(&out);
    assert!(one.starts_with("deploy — "), "{one}");
    assert!(one.contains("Aliases: ship"), "{one}");
    assert!(one.contains("/deploy <env> [--dry-run]"), "{one}");
    let out = gantry(&["help", "nope"]);
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn every_subcommand_has_help() {
    for sub in ["parse", "check-config", "help"] {
        let out = gantry(&[sub, "--help"]);
        assert!(out.status.success(), "{sub}");
        assert!(stdout(&out).contains("Usage: gantry"), "{sub}");
    }
}

#[test]
fn readme_command_reference_is_current() {
    let out = gantry(&["help", "--markdown"]);
    let table = stdout(&out);
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    let start = readme
        .find("<!-- commands:start -->")
        .expect("start marker")
        + "<!-- commands:start -->\n".len();
    let end = readme.find("<!-- commands:end -->").expect("end marker");
    assert_eq!(
        &readme[start..end],
        table,
        "README command reference is stale: regenerate it with `gantry help --markdown`"
    );
}
