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
fn run_and_serve_name_a_missing_secret_before_doing_anything() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    for args in [
        &["run", "--as", "console:alice", "status"][..],
        &["serve", "--listen", "127.0.0.1:0"][..],
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_gantry"))
            .args(args)
            .arg("--data")
            .arg(&data)
            .current_dir(root())
            .env_remove("GANTRY_CONFIG")
            .env_remove("SLACK_SIGNING_SECRET")
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1), "{args:?}: {}", stderr(&out));
        assert_eq!(
            stderr(&out).trim(),
            "error: platforms.slack.signing_secret: environment variable SLACK_SIGNING_SECRET is not set",
            "{args:?}"
        );
        assert!(!data.exists(), "{args:?} created its data directory first");
    }
}

#[test]
fn every_subcommand_has_help() {
    for sub in [
        "parse",
        "check-config",
        "help",
        "sandbox",
        "run",
        "serve",
        "image",
        "chat",
    ] {
        let out = gantry(&[sub, "--help"]);
        assert!(out.status.success(), "{sub}");
        assert!(stdout(&out).contains("Usage: gantry"), "{sub}");
    }
}

#[test]
fn the_release_chain_example_checks_and_lists_its_approval_rules() {
    let out = gantry(&[
        "check-config",
        "--config",
        "config/examples/release-chain.toml",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let summary = stdout(&out);
    assert!(
        summary.starts_with("config/examples/release-chain.toml: valid"),
        "{summary}"
    );
    for needle in [
        "qa: namespace qa on cluster sandbox",
        "uat: namespace uat on cluster sandbox",
        "approvals: dev 1 of [dev-approver] · qa 1 of [qa-approver] · on-duty 1 of [on-duty], all required, no self-approval, expires after 4h",
    ] {
        assert!(summary.contains(needle), "missing {needle:?} in\n{summary}");
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

#[test]
fn bench_emits_signed_distinct_commands_for_an_outside_load_generator() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("requests.tsv");
    let out = Command::new(env!("CARGO_BIN_EXE_gantry"))
        .env("BENCH_SECRET", "s3cret")
        .args([
            "bench",
            "--secret-env",
            "BENCH_SECRET",
            "-n",
            "3",
            "--text",
            "whoami",
            "--emit",
        ])
        .arg(&file)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(&file).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3);
    let secret = [gantry::config::Secret::new("s3cret".into())];
    let mut bodies = std::collections::BTreeSet::new();
    for line in lines {
        let [ts, signature, body] = line.split('\t').collect::<Vec<_>>()[..] else {
            panic!("three fields: {line}");
        };
        let now: i64 = ts.parse().unwrap();
        gantry::server::verify::slack(&secret, Some(ts), Some(signature), body.as_bytes(), now)
            .expect("a valid Slack signature");
        assert!(body.contains("text=whoami"), "{body}");
        bodies.insert(body.to_owned());
    }
    assert_eq!(bodies.len(), 3, "each one a new delivery");
}
