//! Policy decisions as a table over a small, complete config.

use super::*;
use crate::command::{Grammar, Vocabulary};
use crate::config::Config;

const CONFIG: &str = r#"
[gantry]
default_app = "web"
admin_roles = ["admin"]
break_glass_roles = ["sre"]

[roles]
developer = "writes code"
qa = "tests"
release-manager = "ships"
sre = "keeps it running"
admin = "runs Gantry"

[clusters.main]
context = "main"

[apps.web]
repo = "acme/web"
image = "registry.local/acme/web"
deployments = ["web"]
container = "web"

[environments.dev]
cluster = "main"
namespace = "dev"
requesters = ["developer"]
refs = ["**"]

[environments.staging]
cluster = "main"
namespace = "staging"
requesters = ["developer", "qa"]
refs = ["main", "release/*"]
require_green_ci = true
approvals = { count = 1, roles = ["qa"] }

[environments.prod]
cluster = "main"
namespace = "prod"
requesters = ["release-manager"]
promote_from = "staging"
approvals = { count = 2, roles = ["release-manager"], expires = "1h" }

[[environments.prod.freeze]]
start = "2026-12-20T00:00:00Z"
end = "2027-01-04T00:00:00Z"
reason = "end-of-year freeze"

[environments.preview]
cluster = "main"
namespace_template = "preview-{branch}"
ttl = "24h"
requesters = ["developer"]

[people.alice]
name = "Alice"
roles = ["developer", "release-manager"]
identities = ["console:alice"]

[people.bob]
name = "Bob"
roles = ["release-manager"]
identities = ["console:bob"]

[people.carol]
name = "Carol"
roles = ["qa"]
identities = ["console:carol"]

[people.dave]
name = "Dave"
roles = ["release-manager", "sre"]
identities = ["console:dave"]

[people.erin]
name = "Erin"
roles = ["admin"]
identities = ["console:erin"]
"#;

/// 2026-11-24T12:00:00Z, outside the freeze.
const NOW: i64 = 1_795_521_600;
/// 2026-12-24T12:00:00Z, inside the freeze.
const FROZEN: i64 = 1_798_113_600;

fn config() -> Config {
    crate::config::parse(CONFIG, "policy-test.toml").unwrap()
}

fn decide_for(who: Option<&str>, text: &str, facts: &Facts, now: i64) -> Decision {
    let config = config();
    let grammar = Grammar::builtin().unwrap();
    let vocabulary = Vocabulary::new(config.env_names(), config.app_names());
    let command = grammar.parse(text, &vocabulary).unwrap();
    let person = who.and_then(|w| config.person(w));
    decide(person, &command, &config, facts, now)
}

fn green() -> Facts {
    Facts {
        lock: None,
        checks_passed: Some(true),
        defer_checks: false,
    }
}

fn denied(decision: &Decision) -> String {
    match decision {
        Decision::Deny(why) => why.to_string(),
        other => panic!("expected a denial, got {other:?}"),
    }
}

#[test]
fn unknown_identities_get_only_open_commands() {
    for open in ["help", "status", "envs", "whoami", "status prod"] {
        assert_eq!(
            decide_for(None, open, &green(), NOW),
            Decision::Allow {
                override_note: None
            },
            "{open}"
        );
    }
    for closed in [
        "deploy main to dev",
        "approve R-1",
        "lock dev",
        "history dev",
        "build main",
    ] {
        let d = decide_for(None, closed, &green(), NOW);
        assert!(denied(&d).contains("does not know you"), "{closed}: {d:?}");
    }
}

#[test]
fn roles_refs_and_promotion_order() {
    let allow = Decision::Allow {
        override_note: None,
    };
    assert_eq!(
        decide_for(Some("alice"), "deploy feat-x to dev", &green(), NOW),
        allow
    );
    let d = decide_for(Some("carol"), "deploy feat-x to dev", &green(), NOW);
    assert!(denied(&d).contains("needs one of: developer"), "{d:?}");
    let d = decide_for(Some("alice"), "deploy feat-x to staging", &green(), NOW);
    assert!(
        denied(&d).contains("takes only refs matching main, release/*"),
        "{d:?}"
    );
    let d = decide_for(Some("alice"), "deploy 3f2c1ab to staging", &green(), NOW);
    assert!(denied(&d).contains("name the branch or tag"), "{d:?}");
    assert!(matches!(
        decide_for(
            Some("alice"),
            "deploy release/1.2 to staging",
            &green(),
            NOW
        ),
        Decision::NeedsApproval { .. }
    ));
    let d = decide_for(Some("alice"), "deploy main to prod", &green(), NOW);
    assert!(
        denied(&d).contains("takes only promotions from staging"),
        "{d:?}"
    );
    let d = decide_for(Some("alice"), "promote from dev to prod", &green(), NOW);
    assert!(
        denied(&d).contains("only from staging, not from dev"),
        "{d:?}"
    );
}

#[test]
fn prod_needs_two_release_managers() {
    match decide_for(Some("alice"), "promote from staging to prod", &green(), NOW) {
        Decision::NeedsApproval {
            need,
            override_note: None,
        } => {
            assert_eq!(need.rules.len(), 1, "the one-table form is one rule");
            assert_eq!(need.rules[0].count, 2);
            assert_eq!(need.rules[0].name.as_str(), "release-manager");
            assert_eq!(
                need.rules[0].roles,
                [crate::names::RoleName::new("release-manager").unwrap()]
            );
            assert!(need.one_rule_per_person);
            assert!(!need.self_approval);
            assert_eq!(need.expires, Duration::from_secs(3600));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn green_ci_is_required_where_configured() {
    let red = Facts {
        lock: None,
        checks_passed: Some(false),
        defer_checks: false,
    };
    let d = decide_for(Some("alice"), "deploy main to staging", &red, NOW);
    assert!(denied(&d).contains("checks have passed"), "{d:?}");
    // Callers branch on the reason, not on its words.
    assert_eq!(
        d,
        Decision::Deny(Denial::ChecksNotPassed {
            env: "staging".into()
        })
    );
    let unknown = Facts::default();
    assert!(matches!(
        decide_for(Some("alice"), "deploy main to staging", &unknown, NOW),
        Decision::Deny(_)
    ));
}

#[test]
fn deferred_checks_leave_ci_out_but_every_other_rule_in() {
    let deferred = Facts {
        defer_checks: true,
        ..Facts::default()
    };
    assert!(matches!(
        decide_for(Some("alice"), "deploy main to staging", &deferred, NOW),
        Decision::NeedsApproval { .. } | Decision::Allow { .. }
    ));
    // A lock is still found in the first pass, not hidden behind CI.
    let locked = Facts {
        lock: Some(LockView {
            holder: "bob".into(),
            request: None,
            reason: "release freeze".into(),
            since: 0,
        }),
        ..deferred
    };
    let d = decide_for(Some("alice"), "deploy main to staging", &locked, NOW);
    assert!(denied(&d).contains("locked by bob"), "{d:?}");
}

#[test]
fn freeze_denies_and_break_glass_overrides() {
    let d = decide_for(
        Some("alice"),
        "promote from staging to prod",
        &green(),
        FROZEN,
    );
    assert!(
        denied(&d).contains("prod is frozen: end-of-year freeze"),
        "{d:?}"
    );
    match decide_for(
        Some("dave"),
        "promote from staging to prod",
        &green(),
        FROZEN,
    ) {
        Decision::NeedsApproval {
            override_note: Some(note),
            ..
        } => {
            assert!(note.contains("dave overrode the freeze on prod"), "{note}");
        }
        other => panic!("{other:?}"),
    }
    // Rolling back is allowed during a freeze.
    assert_eq!(
        decide_for(Some("alice"), "rollback in prod", &green(), FROZEN),
        Decision::Allow {
            override_note: None
        }
    );
}

#[test]
fn the_freeze_rule_stops_everyone_but_a_break_glass_role_and_only_inside_a_window() {
    let config = config();
    let prod = config.env("prod").unwrap();
    let (alice, dave) = (config.person("alice"), config.person("dave"));
    assert_eq!(check_freeze(alice, prod, &config, NOW), Ok(None));
    assert_eq!(check_freeze(None, prod, &config, NOW), Ok(None));
    let denial = Denial::Frozen {
        env: "prod".into(),
        reason: "end-of-year freeze".into(),
        until: "Mon 2027-01-04 00:00 UTC".into(),
    };
    assert_eq!(
        denial.to_string(),
        "prod is frozen: end-of-year freeze (frozen until Mon 2027-01-04 00:00 UTC)"
    );
    let frozen = Err(denial);
    assert_eq!(check_freeze(alice, prod, &config, FROZEN), frozen);
    assert_eq!(check_freeze(None, prod, &config, FROZEN), frozen);
    let note = check_freeze(dave, prod, &config, FROZEN).unwrap().unwrap();
    assert!(note.contains("dave overrode the freeze on prod"), "{note}");
}

#[test]
fn locks_block_and_only_holder_or_admin_unlocks() {
    let lock = LockView {
        holder: "bob".into(),
        request: None,
        reason: "migration".into(),
        since: NOW - 60,
    };
    let facts = Facts {
        lock: Some(lock),
        checks_passed: Some(true),
        defer_checks: false,
    };
    let d = decide_for(Some("alice"), "deploy feat-x to dev", &facts, NOW);
    assert!(
        denied(&d).contains("dev is locked by bob since 2026-11-24T11:59:00Z: migration"),
        "{d:?}"
    );
    let d = decide_for(Some("alice"), "unlock dev", &facts, NOW);
    assert!(denied(&d).contains("only they or an admin"), "{d:?}");
    assert_eq!(
        decide_for(Some("bob"), "unlock dev", &facts, NOW),
        Decision::Allow {
            override_note: None
        }
    );
    assert_eq!(
        decide_for(Some("erin"), "unlock dev", &facts, NOW),
        Decision::Allow {
            override_note: None
        }
    );
    let d = decide_for(Some("alice"), "unlock dev", &green(), NOW);
    assert!(denied(&d).contains("dev is not locked"), "{d:?}");
}
