//! Table tests and properties of the request state machine.

use std::collections::BTreeMap;

use proptest::prelude::*;

use super::state::*;
use crate::names::{
    AppName, Digest, EnvName, Identity, PersonId, RequestId, RoleName, RuleName, Sha,
};

fn sha(c: char) -> Sha {
    Sha::new(&c.to_string().repeat(40)).unwrap()
}

fn digest(c: char) -> Digest {
    Digest::new(&format!("sha256:{}", c.to_string().repeat(64))).unwrap()
}

fn person(name: &str) -> PersonId {
    PersonId::new(name).unwrap()
}

fn identity(name: &str) -> Identity {
    format!("console:{name}").parse().unwrap()
}

fn request() -> Request {
    Request {
        id: RequestId(1),
        action: Action::Deploy {
            reference: "main".into(),
        },
        app: AppName::new("web").unwrap(),
        env: Some(EnvName::new("prod").unwrap()),
        namespace: Some("prod".into()),
        requester: person("alice"),
        identity: identity("alice"),
        conversation: Conversation {
            platform: crate::engine::Platform::Console,
            channel: "tty".into(),
        },
        sha: None,
        digest: None,
        previous_digest: None,
        policy_version: "v1".into(),
        rule: None,
        approvals: Vec::new(),
        state: State::Requested,
        dry_run: false,
        created_at: 0,
        updated_at: 0,
        note: None,
        deployment: None,
        verification: None,
        rolled_out_at: None,
    }
}

fn role(name: &str) -> RoleName {
    RoleName::new(name).unwrap()
}

fn need(name: &str, roles: &[&str], count: u32) -> RuleNeed {
    RuleNeed {
        name: RuleName::new(name).unwrap(),
        roles: roles.iter().map(|r| role(r)).collect(),
        count,
    }
}

/// `count` release managers (no rule at all for 0).
fn rule(count: u32) -> ApprovalRule {
    ApprovalRule {
        rules: if count == 0 {
            Vec::new()
        } else {
            vec![need("release-manager", &["release-manager"], count)]
        },
        one_rule_per_person: true,
        self_approval: false,
        expires_at: 3600,
    }
}

/// One qa approver and one release approver, whom a qa person may also be.
fn qa_and_release() -> ApprovalRule {
    ApprovalRule {
        rules: vec![
            need("qa", &["qa"], 1),
            need("release", &["release-manager", "qa"], 1),
        ],
        ..rule(1)
    }
}

fn approve_as(name: &str, roles: &[&str]) -> Event {
    Event::Approve {
        person: person(name),
        identity: identity(name),
        roles: roles.iter().map(|r| role(r)).collect(),
        comment: None,
    }
}

fn approve(name: &str) -> Event {
    approve_as(name, &["release-manager"])
}

fn all(names: &[&str]) -> BTreeMap<PersonId, Vec<RoleName>> {
    names
        .iter()
        .map(|n| (person(n), vec![role("release-manager"), role("qa")]))
        .collect()
}

fn deploy_started(head: char, d: char, holders: &[&str]) -> Event {
    Event::DeployStarted {
        head: sha(head),
        digest: Some(digest(d)),
        approver_roles: all(holders),
        policy_version: "v1".into(),
    }
}

fn run(events: &[Event]) -> Result<Request, TransitionError> {
    let mut r = request();
    for (t, e) in events.iter().enumerate() {
        r = transition(&r, e, t as i64)?;
    }
    Ok(r)
}

fn resolved() -> Event {
    Event::Resolved {
        sha: sha('a'),
        digest: Some(digest('1')),
        previous: Some(digest('0')),
        note: None,
    }
}

#[test]
fn two_of_three_with_self_approval_refused() {
    let mut r = run(&[resolved(), Event::NeedsApproval(rule(2))]).unwrap();
    assert_eq!(r.state, State::AwaitingApproval);
    let err = transition(&r, &approve("alice"), 5).unwrap_err();
    assert!(err.to_string().contains("cannot approve it too"), "{err}");
    r = transition(&r, &approve("bob"), 6).unwrap();
    let err = transition(&r, &approve("bob"), 7).unwrap_err();
    assert!(err.to_string().contains("one person counts once"), "{err}");
    assert_eq!(r.state, State::AwaitingApproval);
    r = transition(&r, &approve("dave"), 8).unwrap();
    assert_eq!(r.state, State::Approved);
    let r = transition(&r, &deploy_started('a', '1', &["bob", "dave"]), 9).unwrap();
    assert_eq!(r.state, State::Deploying);
}

#[test]
fn a_moved_branch_or_image_aborts() {
    let r = run(&[resolved(), Event::NeedsApproval(rule(1)), approve("bob")]).unwrap();
    let err = transition(&r, &deploy_started('b', '1', &["bob"]), 9).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("approved aaaaaaa, head is now bbbbbbb: request again")
    );
    let err = transition(&r, &deploy_started('a', '2', &["bob"]), 9).unwrap_err();
    assert!(
        err.to_string()
            .starts_with("approved sha256:111111111111, image is now"),
        "{err}"
    );
}

#[test]
fn approver_who_lost_the_role_no_longer_counts() {
    let r = run(&[resolved(), Event::NeedsApproval(rule(1)), approve("bob")]).unwrap();
    let err = transition(&r, &deploy_started('a', '1', &[]), 9).unwrap_err();
    assert_eq!(
        err,
        TransitionError::NotApproved {
            id: RequestId(1),
            standing: "release-manager 0/1".into()
        }
    );
}

#[test]
fn changed_policy_voids_approvals() {
    let r = run(&[resolved(), Event::NeedsApproval(rule(1)), approve("bob")]).unwrap();
    let mut event = deploy_started('a', '1', &["bob"]);
    if let Event::DeployStarted { policy_version, .. } = &mut event {
        *policy_version = "v2".into();
    }
    let err = transition(&r, &event, 9).unwrap_err();
    assert!(err.to_string().contains("policy is now v2"), "{err}");
}

#[test]
fn expiry_and_late_approvals() {
    let r = run(&[resolved(), Event::NeedsApproval(rule(1))]).unwrap();
    assert!(
        transition(&r, &Event::Expire, 100).is_err(),
        "not yet expired"
    );
    let err = transition(&r, &approve("bob"), 3600).unwrap_err();
    assert!(err.to_string().contains("expired"), "{err}");
    let r = transition(&r, &Event::Expire, 3600).unwrap();
    assert_eq!(r.state, State::Expired);
}

#[test]
fn failed_rollout_rolls_back_and_ends() {
    let r = run(&[resolved(), Event::Allowed, deploy_started('a', '1', &[])]).unwrap();
    let r = transition(
        &r,
        &Event::RolledBack {
            reason: "ProgressDeadlineExceeded".into(),
        },
        9,
    )
    .unwrap();
    assert_eq!(r.state, State::RolledBack);
    assert!(transition(&r, &Event::Verified, 10).is_err());
}

#[test]
fn a_dry_run_is_verified_from_approved_and_never_deploys() {
    let dry = Request {
        dry_run: true,
        ..request()
    };
    let approved = transition(&dry, &resolved(), 0)
        .and_then(|r| transition(&r, &Event::Allowed, 1))
        .unwrap();
    let err = transition(&approved, &deploy_started('a', '1', &[]), 2).unwrap_err();
    assert!(
        err.to_string().contains("cannot deploy in a dry run"),
        "{err}"
    );
    let done = transition(&approved, &Event::Verified, 2).unwrap();
    assert_eq!(done.state, State::Succeeded);
    // A real request is not verified before it has deployed.
    let real = run(&[resolved(), Event::Allowed]).unwrap();
    assert!(transition(&real, &Event::Verified, 2).is_err());
}

#[test]
fn check_start_makes_the_checks_deploy_started_makes() {
    let r = run(&[resolved(), Event::NeedsApproval(rule(1)), approve("bob")]).unwrap();
    let bob = all(&["bob"]);
    assert_eq!(
        check_start(&r, &sha('a'), Some(&digest('1')), &bob, "v1"),
        Ok(())
    );
    let moved = check_start(&r, &sha('b'), Some(&digest('1')), &bob, "v1").unwrap_err();
    assert_eq!(
        moved,
        transition(&r, &deploy_started('b', '1', &["bob"]), 9).unwrap_err()
    );
    let unapproved = check_start(&r, &sha('a'), Some(&digest('1')), &all(&[]), "v1");
    assert!(
        matches!(unapproved, Err(TransitionError::NotApproved { .. })),
        "{unapproved:?}"
    );
    let policy = check_start(&r, &sha('a'), Some(&digest('1')), &bob, "v2").unwrap_err();
    assert!(policy.to_string().contains("policy is now v2"), "{policy}");
}

#[test]
fn every_rule_must_be_met_by_a_different_person() {
    let r = run(&[resolved(), Event::NeedsApproval(qa_and_release())]).unwrap();
    let r = transition(&r, &approve_as("carol", &["qa"]), 1).unwrap();
    assert_eq!(r.state, State::AwaitingApproval, "one rule of two");
    assert_eq!(r.tally(None).summary(), "qa 1/1 carol · release 0/1");
    let err = transition(&r, &approve_as("erin", &["developer"]), 2).unwrap_err();
    assert!(
        err.to_string().contains(
            "erin does not hold a role that may approve R-1 (qa: qa; release: release-manager, qa)"
        ),
        "{err}"
    );
    let r = transition(&r, &approve_as("dave", &["qa"]), 3).unwrap();
    assert_eq!(r.state, State::Approved);
    assert_eq!(r.tally(None).summary(), "qa 1/1 carol · release 1/1 dave");
    // Roles now, not when approving: dave lost qa, so release is short again.
    let mut now = all(&["carol"]);
    now.insert(person("dave"), Vec::new());
    let err = transition(
        &r,
        &Event::DeployStarted {
            head: sha('a'),
            digest: Some(digest('1')),
            approver_roles: now,
            policy_version: "v1".into(),
        },
        4,
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "R-1 does not have the approvals it needs now: qa 1/1 carol · release 0/1"
    );
}

#[test]
fn an_approval_that_no_rule_has_room_for_is_refused() {
    let only_qa = ApprovalRule {
        rules: vec![
            need("qa", &["qa"], 1),
            need("release", &["release-manager"], 1),
        ],
        ..rule(1)
    };
    let r = run(&[resolved(), Event::NeedsApproval(only_qa)]).unwrap();
    let r = transition(&r, &approve_as("carol", &["qa"]), 1).unwrap();
    let err = transition(&r, &approve_as("dave", &["qa"]), 2).unwrap_err();
    assert!(
        err.to_string().contains("dave's approval would not count"),
        "{err}"
    );
    assert_eq!(r.approvals.len(), 1, "the refused approval is not kept");
}

#[test]
fn one_person_meets_several_rules_only_when_the_environment_allows_it() {
    let shared = ApprovalRule {
        one_rule_per_person: false,
        ..qa_and_release()
    };
    let r = run(&[resolved(), Event::NeedsApproval(shared)]).unwrap();
    let r = transition(&r, &approve_as("carol", &["qa"]), 1).unwrap();
    assert_eq!(r.state, State::Approved);
    let strict = run(&[resolved(), Event::NeedsApproval(qa_and_release())]).unwrap();
    let strict = transition(&strict, &approve_as("carol", &["qa"]), 1).unwrap();
    assert_eq!(strict.state, State::AwaitingApproval);
}

#[test]
fn a_comment_is_kept_with_the_approval() {
    let r = run(&[resolved(), Event::NeedsApproval(rule(2))]).unwrap();
    let event = Event::Approve {
        person: person("bob"),
        identity: identity("bob"),
        roles: vec![role("release-manager"), role("developer")],
        comment: Some("tested on uat".into()),
    };
    let r = transition(&r, &event, 1).unwrap();
    assert_eq!(r.approvals[0].comment.as_deref(), Some("tested on uat"));
    assert_eq!(r.approvals[0].roles, [role("release-manager")]);
}

#[test]
fn a_request_stored_before_named_rules_reads_as_one_rule() {
    let stored = serde_json::json!({
        "count": 2, "roles": ["release-manager"], "self_approval": false, "expires_at": 10
    });
    let rule: ApprovalRule = serde_json::from_value(stored).unwrap();
    assert_eq!(
        rule.rules,
        [need("release-manager", &["release-manager"], 2)]
    );
    assert!(rule.one_rule_per_person);
    let back: ApprovalRule =
        serde_json::from_value(serde_json::to_value(qa_and_release()).unwrap()).unwrap();
    assert_eq!(back, qa_and_release());
}

#[test]
fn pins_are_set_once() {
    let r = run(&[resolved()]).unwrap();
    assert!(transition(&r, &resolved(), 1).is_err());
}

fn arb_event() -> impl Strategy<Value = Event> {
    let name = prop_oneof![Just("alice"), Just("bob"), Just("dave"), Just("carol")];
    let holders = proptest::collection::btree_map(
        prop_oneof![Just("alice"), Just("bob"), Just("dave")],
        proptest::sample::subsequence(vec!["qa", "release-manager"], 0..3),
        0..4,
    );
    let held = proptest::sample::subsequence(vec!["qa", "release-manager"], 0..3);
    prop_oneof![
        (
            prop_oneof![Just('a'), Just('b')],
            prop_oneof![Just('1'), Just('2')]
        )
            .prop_map(|(s, d)| Event::Resolved {
                sha: sha(s),
                digest: Some(digest(d)),
                previous: None,
                note: None,
            }),
        Just(Event::Allowed),
        (0u32..4, any::<bool>()).prop_map(|(n, own)| Event::NeedsApproval(ApprovalRule {
            self_approval: own,
            ..rule(n)
        })),
        (any::<bool>(), any::<bool>()).prop_map(|(own, one)| Event::NeedsApproval(ApprovalRule {
            self_approval: own,
            one_rule_per_person: one,
            ..qa_and_release()
        })),
        (name.clone(), held).prop_map(|(n, roles)| approve_as(n, &roles)),
        name.prop_map(|n| Event::Revoke { person: person(n) }),
        Just(Event::Deny {
            reason: "no".into()
        }),
        Just(Event::Cancel),
        Just(Event::Expire),
        Just(Event::BuildStarted),
        (
            prop_oneof![Just('a'), Just('b')],
            prop_oneof![Just('1'), Just('2')],
            holders
        )
            .prop_map(|(s, d, h)| {
                Event::DeployStarted {
                    head: sha(s),
                    digest: Some(digest(d)),
                    approver_roles: h
                        .into_iter()
                        .map(|(p, roles)| (person(p), roles.into_iter().map(role).collect()))
                        .collect(),
                    policy_version: "v1".into(),
                }
            }),
        Just(Event::RolledOut),
        Just(Event::Verified),
        Just(Event::Fail { reason: "x".into() }),
        Just(Event::RolledBack { reason: "x".into() }),
        Just(Event::VerifyStarted {
            soak_ms: 3000,
            checks: vec!["health".into(), "errors".into()]
        }),
        (0u64..4000, any::<bool>(), any::<bool>()).prop_map(|(covered_ms, health, errors)| {
            let mut passed = Vec::new();
            let mut failed = Vec::new();
            for (name, ok) in [("health", health), ("errors", errors)] {
                let seen = (name.to_owned(), "seen".to_owned());
                if ok {
                    passed.push(seen)
                } else {
                    failed.push(seen)
                }
            }
            Event::Probed {
                covered_ms,
                passed,
                failed,
            }
        }),
        Just(Event::Proven),
        Just(Event::Completed {
            person: person("carol")
        }),
    ]
}

proptest! {
    #[test]
    fn invariants_hold_for_any_event_sequence(
        dry_run in any::<bool>(),
        events in proptest::collection::vec((arb_event(), 0i64..5000), 0..40),
    ) {
        let mut r = Request { dry_run, ..request() };
        for (event, now) in &events {
            let before = r.clone();
            match transition(&r, event, *now) {
                Err(_) => {
                    // A refused event changes nothing; terminal states refuse everything.
                    prop_assert_eq!(&r, &before);
                }
                Ok(next) => {
                    prop_assert!(!before.state.is_terminal(), "left terminal state {:?}", before.state);
                    // A dry run changes nothing, so it never gets as far as deploying.
                    if next.dry_run {
                        prop_assert!(
                            !matches!(next.state, State::Deploying | State::Verifying | State::RolledBack),
                            "a dry run reached {:?}", next.state
                        );
                    }
                    if next.state == State::Deploying && before.state != State::Deploying {
                        let Event::DeployStarted { head, digest, approver_roles, .. } = event else {
                            panic!("entered Deploying on {event:?}");
                        };
                        prop_assert_eq!(Some(head), before.sha.as_ref());
                        prop_assert_eq!(digest, &before.digest);
                        // Every rule met, with the roles people hold now,
                        // each person for one rule when the rule says so.
                        let tally = before.tally(Some(approver_roles));
                        prop_assert!(tally.met());
                        if let Some(rule) = before.rule.as_ref().filter(|r| r.one_rule_per_person) {
                            let places: usize = rule.rules.iter().map(|r| r.count as usize).sum();
                            prop_assert!(tally.people() >= places);
                        }
                    }
                    for a in &next.approvals {
                        prop_assert_eq!(Some(&a.sha), next.sha.as_ref());
                        prop_assert_eq!(&a.digest, &next.digest);
                    }
                    if let Some(rule) = &next.rule {
                        if !rule.self_approval {
                            prop_assert!(next.approvals.iter().all(|a| a.person != next.requester));
                        }
                    }
                    // Verified only with every check green after the whole soak.
                    if next.is_verified() {
                        let v = next.verification.as_ref().unwrap();
                        prop_assert!(v.covered_ms >= v.soak_ms);
                        prop_assert!(v.checks.iter().all(|c| c.probes > 0 && c.ok));
                        prop_assert!(v.completed_by.is_none());
                    }
                    if before.sha.is_some() {
                        prop_assert_eq!(&next.sha, &before.sha);
                        prop_assert_eq!(&next.digest, &before.digest);
                    }
                    r = next;
                }
            }
        }
    }
}

fn verifying(checks: &[&str]) -> Request {
    run(&[
        resolved(),
        Event::Allowed,
        deploy_started('a', '1', &[]),
        Event::RolledOut,
        Event::VerifyStarted {
            soak_ms: 60_000,
            checks: checks.iter().map(|c| c.to_string()).collect(),
        },
    ])
    .unwrap()
}

fn probed(covered_ms: u64, passed: &[&str], failed: &[&str]) -> Event {
    let seen = |names: &[&str], what: &str| {
        names
            .iter()
            .map(|n| (n.to_string(), what.to_owned()))
            .collect()
    };
    Event::Probed {
        covered_ms,
        passed: seen(passed, "status 200"),
        failed: seen(failed, "status 503, expected 200"),
    }
}

#[test]
fn a_release_is_verified_only_when_every_check_held_for_the_whole_soak() {
    let r = verifying(&["health", "errors"]);
    assert_eq!(r.state, State::Verifying);
    // Nothing probed yet: not proven, however long it has been.
    let err = transition(&r, &Event::Proven, 10).unwrap_err();
    assert!(matches!(err, TransitionError::NotProven { .. }), "{err}");
    // Every check green but the soak not covered.
    let r = transition(&r, &probed(30_000, &["health", "errors"], &[]), 11).unwrap();
    let err = transition(&r, &Event::Proven, 12).unwrap_err();
    assert_eq!(
        err,
        TransitionError::NotProven {
            id: r.id,
            left_ms: 30_000
        }
    );
    // Covered, but one check's latest probe failed.
    let r = transition(&r, &probed(60_000, &["health"], &["errors"]), 13).unwrap();
    assert!(transition(&r, &Event::Proven, 14).is_err());
    let errors = &r.verification.as_ref().unwrap().checks[1];
    assert_eq!(
        (errors.probes, errors.failures, errors.failing_in_a_row),
        (2, 1, 1)
    );
    // Green again: verified.
    let r = transition(&r, &probed(60_000, &["errors"], &[]), 15).unwrap();
    let errors = &r.verification.as_ref().unwrap().checks[1];
    assert_eq!(errors.failing_in_a_row, 0);
    let done = transition(&r, &Event::Proven, 16).unwrap();
    assert_eq!(done.state, State::Succeeded);
    assert!(done.is_verified());
    assert_eq!(done.verification.unwrap().verified_at, Some(16));
}

#[test]
fn a_verification_cannot_be_skipped_or_fed_a_check_it_does_not_have() {
    let r = verifying(&["health"]);
    let err = transition(&r, &Event::Verified, 5).unwrap_err();
    assert!(err.to_string().contains("cannot skip its checks"), "{err}");
    let err = transition(&r, &probed(1_000, &["other"], &[]), 5).unwrap_err();
    assert_eq!(err, TransitionError::UnknownCheck("other".into()));
    let err = transition(
        &r,
        &Event::VerifyStarted {
            soak_ms: 1,
            checks: vec![],
        },
        5,
    )
    .unwrap_err();
    assert!(err.to_string().contains("start verifying"), "{err}");
    // Coverage never exceeds the soak, and never goes backwards.
    let r = transition(&r, &probed(90_000, &["health"], &[]), 6).unwrap();
    assert_eq!(r.verification.as_ref().unwrap().covered_ms, 60_000);
    let r = transition(&r, &probed(10, &["health"], &[]), 7).unwrap();
    assert_eq!(r.verification.as_ref().unwrap().covered_ms, 60_000);
}

#[test]
fn completing_early_goes_ahead_without_verifying_and_rollback_ends_it() {
    let r = verifying(&["health"]);
    let done = transition(
        &r,
        &Event::Completed {
            person: person("carol"),
        },
        9,
    )
    .unwrap();
    assert_eq!(done.state, State::Succeeded);
    assert!(!done.is_verified());
    assert_eq!(
        done.verification.unwrap().completed_by,
        Some(person("carol"))
    );
    let back = transition(
        &r,
        &Event::RolledBack {
            reason: "check health failed".into(),
        },
        9,
    )
    .unwrap();
    assert_eq!(back.state, State::RolledBack);
    assert!(!back.is_verified());
}

#[test]
fn a_request_without_verification_cannot_be_proven() {
    let r = run(&[
        resolved(),
        Event::Allowed,
        deploy_started('a', '1', &[]),
        Event::RolledOut,
    ])
    .unwrap();
    assert!(transition(&r, &Event::Proven, 5).is_err());
    assert!(transition(&r, &probed(1, &["x"], &[]), 5).is_err());
    let done = transition(&r, &Event::Verified, 5).unwrap();
    assert_eq!(done.state, State::Succeeded);
    assert!(!done.is_verified());
}
