//! Whole-config tests: the shipped file, look-ups, and inputs that must not panic.

use std::ffi::OsString;

use proptest::prelude::{prop_assert, proptest, ProptestConfig};

use super::*;
use crate::names::Identity;

const SHIPPED: &str = include_str!("../../config/gantry.toml");

fn shipped() -> Config {
    match parse(SHIPPED, "config/gantry.toml") {
        Ok(c) => c,
        Err(e) => panic!("the shipped config must load: {e}"),
    }
}

fn id(text: &str) -> Identity {
    text.parse().unwrap()
}

#[test]
fn shipped_config_loads_with_the_delivery_chain() {
    let c = shipped();
    let envs: Vec<&str> = c.envs().iter().map(|e| e.name.as_str()).collect();
    assert_eq!(
        envs,
        ["dev", "integration", "perf", "staging", "prod", "preview"]
    );
    let apps: Vec<&str> = c.apps().iter().map(|a| a.name.as_str()).collect();
    assert_eq!(apps, ["web", "api"]);
    assert_eq!(c.default_app().map(|a| a.name.as_str()), Some("web"));
    assert_eq!(c.env_names().count(), 6);
    assert_eq!(c.app_names().count(), 2);

    let prod = c.env("prod").unwrap();
    assert_eq!(
        prod.promote_from.as_ref().map(|e| e.as_str()),
        Some("staging")
    );
    assert_eq!(prod.approvals.rules.len(), 1);
    assert_eq!(prod.approvals.rules[0].count, 2);
    assert!(!prod.approvals.self_approval);
    assert_eq!(prod.freezes.len(), 3);
    assert!(prod.allows_ref("release/2.1"));
    assert!(!prod.allows_ref("feat/x"));
    // 2026-12-25 is inside the end-of-year freeze; 2026-12-16 (a Wednesday) is not.
    assert_eq!(
        prod.freeze_at(1_798_156_800).map(|f| f.reason()),
        Some("end-of-year freeze")
    );
    assert!(prod.freeze_at(1_797_379_200 + 12 * 3600).is_none());

    let staging = c.env("staging").unwrap();
    assert_eq!(staging.approvals.rules[0].count, 1);
    assert_eq!(staging.approvals.roles()[0].as_str(), "qa");
    assert!(matches!(
        c.env("perf").unwrap().strategy,
        Strategy::Gitops(_)
    ));
    match &c.env("preview").unwrap().target {
        Target::Preview { template, .. } => {
            assert_eq!(
                template.render("Feat/X", None, "web").unwrap(),
                "preview-feat-x"
            );
        }
        other => panic!("preview should use a template: {other:?}"),
    }
    assert!(c.env("Prod").is_none());
    assert!(
        c.env("prоd").is_none(),
        "Cyrillic look-alike must not match"
    );
    assert!(
        c.platforms().slack.is_some()
            && c.platforms().discord.is_some()
            && c.platforms().github.is_some()
    );
}

#[test]
fn identities_map_to_people() {
    let c = shipped();
    let who = |text: &str| c.person_for(&id(text)).map(|p| p.id.as_str().to_owned());
    assert_eq!(who("slack:T0SANDBOX:UALICE01").as_deref(), Some("alice"));
    assert_eq!(who("discord:100000000000000004").as_deref(), Some("dave"));
    assert_eq!(who("github:Carol").as_deref(), Some("carol"));
    assert_eq!(who("console:erin").as_deref(), Some("erin"));
    assert_eq!(who("slack:T0OTHER:UALICE01"), None);
    assert_eq!(who("github:mallory"), None);
    let upper = Identity::Github(crate::names::GithubAccount::Login("BOB".into()));
    assert_eq!(c.person_for(&upper).map(|p| p.id.as_str()), Some("bob"));
    assert_eq!(
        c.person_for_github(999, "Alice").map(|p| p.id.as_str()),
        Some("alice")
    );

    let by_id = SHIPPED.replace("\"github:bob\"", "\"github:4242\"");
    let c = parse(&by_id, "x.toml").unwrap();
    assert_eq!(
        c.person_for_github(4242, "renamed").map(|p| p.id.as_str()),
        Some("bob")
    );
}

#[test]
fn roles_and_secrets_are_listed() {
    let c = shipped();
    assert_eq!(c.admin_roles()[0].as_str(), "admin");
    assert_eq!(c.break_glass_roles()[0].as_str(), "sre");
    assert_eq!(c.roles().len(), 5);
    let dave = c.person("dave").unwrap();
    assert!(dave.has_any_role(c.break_glass_roles()));
    let secrets: Vec<(String, String)> = c
        .required_secrets()
        .into_iter()
        .map(|(k, s)| (k, s.describe()))
        .collect();
    let want = [
        ("platforms.slack.signing_secret", "env SLACK_SIGNING_SECRET"),
        ("platforms.slack.bot_token", "env SLACK_BOT_TOKEN"),
        ("platforms.discord.public_key", "env DISCORD_PUBLIC_KEY"),
        ("platforms.discord.bot_token", "env DISCORD_BOT_TOKEN"),
        (
            "platforms.github.webhook_secret",
            "env GITHUB_WEBHOOK_SECRET",
        ),
        ("platforms.github.token", "env GITHUB_TOKEN"),
    ];
    let want: Vec<(String, String)> = want
        .iter()
        .map(|(k, d)| (k.to_string(), d.to_string()))
        .collect();
    assert_eq!(secrets, want);
    let socket = SHIPPED.replace("socket_mode = false", "socket_mode = true");
    let c = parse(&socket, "x.toml").unwrap();
    assert!(c
        .required_secrets()
        .iter()
        .any(|(k, _)| k == "platforms.slack.app_token"));
    let off = SHIPPED.replace("[platforms.discord]\n# Whether Discord commands and reactions are accepted. Default: true.\nenabled = true", "[platforms.discord]\nenabled = false");
    let c = parse(&off, "x.toml").unwrap();
    assert!(c.platforms().discord.is_none());
    assert!(!c
        .required_secrets()
        .iter()
        .any(|(k, _)| k.starts_with("platforms.discord")));
    let missing = c.required_secrets()[0]
        .1
        .resolve_with(|_| None::<OsString>)
        .unwrap_err();
    assert_eq!(
        missing.to_string(),
        "environment variable SLACK_SIGNING_SECRET is not set"
    );
}

#[test]
fn version_is_a_stable_fingerprint() {
    let a = shipped();
    assert_eq!(a.version(), shipped().version());
    assert_eq!(a.version().len(), 16);
    let b = parse(&format!("{SHIPPED}\n# edited\n"), "config/gantry.toml").unwrap();
    assert_ne!(a.version(), b.version());
    assert_eq!(a.path(), std::path::Path::new("config/gantry.toml"));
    // FNV-1a 64 reference values.
    assert_eq!(fnv1a64(b""), 0xcbf2_9ce4_8422_2325);
    assert_eq!(fnv1a64(b"a"), 0xaf63_dc4c_8601_ec8c);
}

#[test]
fn summary_lists_apps_envs_people_and_platforms() {
    let s = shipped().summary();
    for needle in [
        "web (default): repo acme/web, image registry.local:5000/acme/web:{sha}",
        "prod: namespace prod on cluster sandbox, rolling",
        "approvals: release-manager 2 of [release-manager], all required, no self-approval, expires after 4h",
        "promoted from staging; freeze windows: 3",
        "perf: namespace perf on cluster sandbox, gitops (commit to acme/deploy-config@main:perf/kustomization.yaml as kustomize)",
        "preview: namespaces preview-{branch} (ttl 3days)",
        "people: 5",
        "platforms: slack, discord, github",
    ] {
        assert!(s.contains(needle), "missing {needle:?} in\n{s}");
    }
}

#[test]
fn one_app_is_the_default_and_several_need_naming() {
    let one = SHIPPED.replace("default_app = \"web\"", "");
    let c = parse(&one, "x.toml").unwrap();
    assert!(c.default_app().is_none(), "two apps and no default_app");
    assert!(c.summary().contains("commands must name the app"));
}

#[test]
fn garbage_inputs_are_errors_not_panics() {
    let deep_arrays = format!("x = {}{}", "[".repeat(5000), "]".repeat(5000));
    let deep_tables = format!("x = {}1{}", "{a=".repeat(3000), "}".repeat(3000));
    let deep_keys = format!("{} = 1", vec!["a"; 20_000].join("."));
    let deep_header = format!("[{}]", vec!["a"; 20_000].join("."));
    let cases: Vec<String> = vec![
        String::new(),
        "\u{0}\u{1}\u{2}".into(),
        "\u{feff}[gantry]".into(),
        "[[[".into(),
        "= 1".into(),
        "a = 99999999999999999999999999".into(),
        "[environments.dev.approvals]\ncount = 99999999999999999999".into(),
        "[environments.dev.approvals]\ncount = -1".into(),
        "[environments.dev]\nrollout_timeout = \"99999999999999999999999h\"".into(),
        "[environments]\ndev = 3".into(),
        "environments = [1, 2]".into(),
        "[people.x]\nidentities = [\"github:\"]".into(),
        "[environments.dev]\nfreeze = [{ start = 1979-05-27, end = 1979-05-28, reason = \"r\" }]"
            .into(),
        "a = \"\u{202e}\"\n[\"\u{202e}\"]".into(),
        deep_arrays,
        deep_tables,
        deep_keys,
        deep_header,
    ];
    for text in &cases {
        let err = parse(text, "g.toml").err();
        let shown = err.map(|e| e.to_string()).unwrap_or_default();
        assert!(shown.starts_with("g.toml:"), "{shown}");
        assert!(
            !shown.contains('\u{202e}'),
            "bidi control must be escaped: {shown}"
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn arbitrary_text_never_panics(text in ".{0,400}") {
        let _ = parse(&text, "p.toml");
    }

    #[test]
    fn shipped_file_with_a_line_replaced_never_panics(line in 0usize..400, junk in "[ -~]{0,40}") {
        let mut lines: Vec<&str> = SHIPPED.lines().collect();
        if line < lines.len() {
            lines[line] = &junk;
        }
        if let Err(e) = parse(&lines.join("\n"), "p.toml") {
            prop_assert!(e.line().is_some_and(|l| l >= 1 && l <= lines.len().max(1)), "{}", e);
        }
    }
}

#[test]
fn an_apps_registry_is_read_as_docker_reads_an_image_reference() {
    let mut app = shipped().app("web").unwrap().clone();
    assert_eq!(app.registry(), "registry.local:5000");
    for (image, registry) in [
        ("ghcr.io/acme/web", "ghcr.io"),
        ("localhost/web", "localhost"),
        ("acme/web", "docker.io"),
        ("web", "docker.io"),
    ] {
        app.image = image.into();
        assert_eq!(app.registry(), registry, "{image}");
    }
    let mut cluster = Cluster {
        name: "prod-eu".into(),
        context: None,
        kubeconfig: None,
        impersonate: false,
    };
    assert_eq!(cluster.kube_context(), "prod-eu");
    cluster.context = Some("gke_acme_europe-west1_prod".into());
    assert_eq!(cluster.kube_context(), "gke_acme_europe-west1_prod");
}

/// The shipped file with its commented verification example switched on:
/// `[prometheus.*]` and `verify` tables, and `require_verified`; not the
/// token, which needs an https URL.
fn shipped_with_verification() -> String {
    let header = |rest: &str| {
        (rest.starts_with("[prometheus.") || rest.starts_with("[environments.staging.verify"))
            || rest.starts_with("[[environments.staging.verify")
    };
    let is_key = |rest: &str| {
        rest.split_once(" = ").is_some_and(|(k, _)| {
            !k.is_empty() && k.bytes().all(|b| b.is_ascii_lowercase() || b == b'_')
        })
    };
    let mut out = String::new();
    let mut in_example = false;
    for line in SHIPPED.lines() {
        let rest = line.strip_prefix("# ");
        match rest {
            Some(r) if header(r) && r.ends_with(']') && !r.contains(' ') => {
                in_example = true;
                out.push_str(r);
            }
            Some(r) if in_example && is_key(r) && !r.starts_with("bearer_token") => out.push_str(r),
            Some("require_verified = true") => out.push_str("require_verified = true"),
            _ if line.starts_with('#') => out.push_str(line),
            _ => {
                in_example = false;
                out.push_str(line);
            }
        }
        out.push('\n');
    }
    out
}

#[test]
fn the_shipped_verification_example_loads() {
    let c = shipped();
    assert!(c.prometheus().is_empty());
    assert!(c
        .envs()
        .iter()
        .all(|e| e.verify.is_none() && !e.require_verified));

    let text = shipped_with_verification();
    let c = parse(&text, "config/gantry.toml").unwrap_or_else(|e| panic!("{e}\n{text}"));
    let main = &c.prometheus()["main"];
    assert_eq!(main.url, "http://prometheus.monitoring:9090");
    assert!(main.bearer_token.is_none());
    let verify = c
        .env("staging")
        .unwrap()
        .verify
        .as_ref()
        .expect("staging verifies");
    assert_eq!(verify.soak, std::time::Duration::from_secs(600));
    let names: Vec<&str> = verify.checks.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["health", "error ratio"]);
    match &verify.checks[1].probe {
        ProbeSpec::Prometheus {
            query,
            comparison,
            threshold,
            ..
        } => {
            assert!(query.contains(r#"code=~"5.."}[1m]))"#), "{query}");
            assert_eq!((*comparison, *threshold), (Comparison::Less, 0.01));
        }
        other => panic!("a prometheus check: {other:?}"),
    }
    assert!(c.env("prod").unwrap().require_verified);
}
