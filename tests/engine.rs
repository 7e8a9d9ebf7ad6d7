//! Engine scenarios, read as chat transcripts: people type commands, Gantry
//! answers, and the store, the audit trail and the sandbox servers (reached
//! through the production wiring) show what happened.

mod support;

use gantry::engine::State;
use gantry::names::RequestId;
use support::{Harness, TUESDAY_NOON};

/// Deploys main to dev, then main to staging with carol's approval, so that
/// staging has something to promote.
async fn staging_runs_main(h: &Harness) -> RequestId {
    let dev = h.say("console:alice", "deploy main to dev").await;
    assert_eq!(dev.state, Some(State::Succeeded), "{}", dev.text);
    let staging = h.say("console:alice", "deploy main to staging").await;
    assert_eq!(
        staging.state,
        Some(State::AwaitingApproval),
        "{}",
        staging.text
    );
    let id = staging.request.unwrap();
    let approved = h.say("console:carol", &format!("approve {id}")).await;
    assert_eq!(approved.state, Some(State::Succeeded), "{}", approved.text);
    id
}

#[tokio::test]
async fn prod_needs_two_release_managers_and_counts_each_person_once() {
    support::within(async {
        let h = Harness::new("engine.toml").await;
        staging_runs_main(&h).await;
        let staging_image = h.image("staging", "web");

        let asked = h
            .say_in_slack("slack:T0SANDBOX:UALICE01", "promote from staging to prod")
            .await;
        assert_eq!(asked.state, Some(State::AwaitingApproval), "{}", asked.text);
        let id = asked.request.unwrap();
        let progress = h.slack().messages().pop().unwrap().versions;
        assert!(
            progress
                .last()
                .unwrap()
                .contains("awaiting approval: release-manager 0/2"),
            "{progress:#?}"
        );

        // The requester's own approval is refused, from any platform.
        let own = h.say("console:alice", &format!("approve {id}")).await;
        assert!(own.text.contains("alice asked for"), "{}", own.text);
        // Bob approves from Slack, then again from Discord: he counts once.
        let bob = h
            .say("slack:T0SANDBOX:UBOB0002", &format!("approve {id}"))
            .await;
        assert!(
            bob.text.contains("bob approved R-") && bob.text.contains("release-manager 1/2 bob"),
            "{}",
            bob.text
        );
        let again = h
            .say("discord:100000000000000002", &format!("approve {id}"))
            .await;
        assert!(
            again.text.contains("one person counts once"),
            "{}",
            again.text
        );
        // Carol is not a release manager.
        let carol = h.say("console:carol", &format!("approve {id}")).await;
        assert!(
            carol.text.contains("does not hold a role"),
            "{}",
            carol.text
        );
        assert_eq!(h.request(id).state, State::AwaitingApproval);

        let dave = h
            .say("discord:100000000000000004", &format!("approve {id}"))
            .await;
        assert_eq!(dave.state, Some(State::Succeeded), "{}", dave.text);
        // Prod runs exactly the digest that ran in staging.
        assert_eq!(h.image("prod", "web"), staging_image);
        let request = h.request(id);
        let approvers: Vec<&str> = request
            .approvals
            .iter()
            .map(|a| a.person.as_str())
            .collect();
        assert_eq!(approvers, ["bob", "dave"]);
        assert!(request
            .approvals
            .iter()
            .all(|a| Some(&a.sha) == request.sha.as_ref()));

        let actions = h.actions(&id.to_string());
        for wanted in [
            "request.created",
            "request.resolved",
            "request.needs_approval",
            "approval.refused",
            "request.approved",
            "request.deploy_started",
            "request.succeeded",
        ] {
            assert!(
                actions.iter().any(|a| a == wanted),
                "{wanted} missing from {actions:?}"
            );
        }
        assert_eq!(
            h.deployment_states("acme/web", "prod"),
            [["queued", "in_progress", "success"]]
        );
        assert!(h.store.verify().unwrap().first_bad.is_none());
    })
    .await;
}

#[tokio::test]
async fn a_branch_that_moves_after_approval_aborts() {
    support::within(async {
        let h = Harness::new("engine.toml").await;
        let asked = h
            .say("console:alice", "deploy release/1.0 to staging")
            .await;
        let id = asked.request.unwrap();
        let pinned = h.request(id).sha.unwrap();
        let before = h.image("staging", "web");
        let writes = h.cluster_writes().len();
        let moved = h.move_branch("acme/web", "release/1.0");

        let approved = h.say("console:carol", &format!("approve {id}")).await;
        assert_eq!(approved.state, Some(State::Failed), "{}", approved.text);
        let expected = format!(
            "approved {}, head is now {}: request again",
            pinned.short(),
            moved.short()
        );
        assert!(approved.text.contains(&expected), "{}", approved.text);
        assert_eq!(h.image("staging", "web"), before, "nothing was deployed");
        assert_eq!(h.cluster_writes().len(), writes, "{:?}", h.cluster_writes());
        // The lock was released, so a new request can go ahead.
        assert!(h.store.locks().unwrap().is_empty());
    })
    .await;
}

#[tokio::test]
async fn a_freeze_blocks_and_break_glass_is_audited() {
    support::within(async {
        let h = Harness::new("engine.toml").await;
        staging_runs_main(&h).await;
        h.set_time(TUESDAY_NOON + 30 * 86_400); // 2026-12-24, inside the freeze
        let blocked = h.say("console:alice", "promote from staging to prod").await;
        assert!(
            blocked.text.contains("prod is frozen: end-of-year freeze"),
            "{}",
            blocked.text
        );
        assert_eq!(blocked.request, None, "nothing was created");

        let glass = h.say("console:dave", "promote from staging to prod").await;
        let id = glass.request.unwrap();
        assert!(h
            .actions(&id.to_string())
            .contains(&"policy.break_glass".to_owned()));
        h.say("console:bob", &format!("approve {id}")).await;
        h.say("console:alice", &format!("approve {id}")).await;
        assert_eq!(h.request(id).state, State::Succeeded);
    })
    .await;
}

#[tokio::test]
async fn two_deploys_racing_for_one_environment_let_exactly_one_through() {
    support::within(async {
        let h = Harness::new("engine.toml").await;
        let (a, b) = tokio::join!(
            h.say("console:alice", "deploy feat-x to dev"),
            h.say("console:alice", "deploy main to dev")
        );
        let won = [&a, &b]
            .iter()
            .filter(|r| r.state == Some(State::Succeeded))
            .count();
        assert_eq!(won, 1, "{} / {}", a.text, b.text);
        let loser = if a.state == Some(State::Succeeded) {
            &b
        } else {
            &a
        };
        // Refused before a request was made, or failed to take the lock: either
        // way it names the holder and changed nothing.
        assert!(
            matches!(loser.state, None | Some(State::Failed)),
            "{}",
            loser.text
        );
        assert!(
            loser.text.contains("dev is locked by alice"),
            "{}",
            loser.text
        );
        let patches = h
            .cluster_writes()
            .into_iter()
            .filter(|w| w.starts_with("PATCH /apis/apps/v1/namespaces/dev/deployments/web"))
            .count();
        assert_eq!(patches, 1, "{:?}", h.cluster_writes());
        assert!(
            h.store.locks().unwrap().is_empty(),
            "the winner released its lock"
        );
    })
    .await;
}

#[tokio::test]
async fn a_stalled_rollout_rolls_back_and_locks_the_environment() {
    support::within(async {
        let h = Harness::new("engine.toml").await;
        h.say("console:alice", "deploy main to dev").await;
        let good = h.image("dev", "web");
        let broken = h.say("console:alice", "deploy feat-broken to dev").await;
        assert_eq!(broken.state, Some(State::RolledBack), "{}", broken.text);
        assert!(
            broken.text.contains("ProgressDeadlineExceeded"),
            "{}",
            broken.text
        );
        assert_eq!(h.image("dev", "web"), good);
        let next = h.say("console:alice", "deploy feat-x to dev").await;
        assert!(
            next.text.contains("dev is locked by alice"),
            "{}",
            next.text
        );
        // Only the holder or an admin unlocks.
        let carol = h.say("console:carol", "unlock dev").await;
        assert!(
            carol.text.contains("only they or an admin"),
            "{}",
            carol.text
        );
        let erin = h.say("console:erin", "unlock dev").await;
        assert!(erin.text.contains("dev is unlocked"), "{}", erin.text);
        let after = h.say("console:alice", "deploy feat-x to dev").await;
        assert_eq!(after.state, Some(State::Succeeded), "{}", after.text);
    })
    .await;
}

#[tokio::test]
async fn rollback_restores_the_previous_digest_and_locks() {
    support::within(async {
        let h = Harness::new("engine.toml").await;
        h.say("console:alice", "deploy main to dev").await;
        let first = h.image("dev", "web");
        h.say("console:alice", "deploy feat-x to dev").await;
        assert_ne!(h.image("dev", "web"), first);
        let back = h.say("console:alice", "rollback in dev").await;
        assert_eq!(back.state, Some(State::Succeeded), "{}", back.text);
        assert_eq!(h.image("dev", "web"), first);
        let status = h.say("console:bob", "status dev").await;
        assert!(
            status
                .text
                .contains("locked by alice: rolled back by alice"),
            "{}",
            status.text
        );
    })
    .await;
}

#[tokio::test]
async fn unknown_people_may_only_look() {
    support::within(async {
        let h = Harness::new("engine.toml").await;
        let who = "slack:T0SANDBOX:UNOBODY1";
        for open in ["help", "status", "envs", "whoami"] {
            let reply = h.say(who, open).await;
            assert!(!reply.text.starts_with("refused"), "{open}: {}", reply.text);
        }
        // `status` may read the cluster; a refused deploy makes no outside call.
        let before = h.outside_calls();
        let deploy = h.say(who, "deploy main to dev").await;
        assert!(deploy.text.contains("does not know you"), "{}", deploy.text);
        assert_eq!(
            h.outside_calls(),
            before,
            "no outside call for an unknown person"
        );
        assert!(h.actions("deploy").contains(&"command.received".to_owned()));
    })
    .await;
}

#[tokio::test]
async fn approvals_expire_and_denials_end_requests() {
    support::within(async {
        let h = Harness::new("engine.toml").await;
        let asked = h.say("console:alice", "deploy main to staging").await;
        let id = asked.request.unwrap();
        h.set_time(TUESDAY_NOON + 3601);
        let late = h.say("console:carol", &format!("approve {id}")).await;
        assert_eq!(late.state, Some(State::Expired), "{}", late.text);

        let again = h.say("console:alice", "deploy main to staging").await;
        let id = again.request.unwrap();
        let denied = h
            .say("console:carol", &format!("deny {id} tests are red"))
            .await;
        assert_eq!(denied.state, Some(State::Denied), "{}", denied.text);
        assert!(
            denied.text.contains("denied by carol: tests are red"),
            "{}",
            denied.text
        );
        let after = h.say("console:carol", &format!("approve {id}")).await;
        assert!(after.text.contains("has already ended"), "{}", after.text);
    })
    .await;
}

#[tokio::test]
async fn a_missing_image_fails_before_any_cluster_write() {
    support::within(async {
        let h = Harness::new("engine.toml").await;
        let reply = h.say("console:alice", "deploy feat-unbuilt to dev").await;
        assert_eq!(reply.state, Some(State::Failed), "{}", reply.text);
        assert!(
            reply.text.contains("not found — was it built?"),
            "{}",
            reply.text
        );
        assert!(
            reply.text.contains("try `build feat-unbuilt`"),
            "{}",
            reply.text
        );
        let nope = h.say("console:alice", "deploy no-such-branch to dev").await;
        assert!(
            nope.text
                .contains("no branch, tag or commit named `no-such-branch`"),
            "{}",
            nope.text
        );
        assert!(h.cluster_writes().is_empty(), "{:?}", h.cluster_writes());
    })
    .await;
}

#[tokio::test]
async fn previews_are_created_and_torn_down() {
    support::within(async {
        let h = Harness::new("engine.toml").await;
        let reply = h.say("console:alice", "deploy feat-x to preview").await;
        assert_eq!(reply.state, Some(State::Succeeded), "{}", reply.text);
        assert!(h.sandbox.kube.namespace("preview-feat-x").is_some());
        assert!(h.image("preview-feat-x", "web").contains("@sha256:"));
        let gone = h.say("console:alice", "teardown feat-x").await;
        assert_eq!(gone.state, Some(State::Succeeded), "{}", gone.text);
        assert!(h.namespace_gone("preview-feat-x").await);
    })
    .await;
}

#[tokio::test]
async fn waiting_requests_survive_a_restart_and_others_are_interrupted() {
    support::within(async {
        let h = Harness::new("engine.toml").await;
        let waiting = h
            .say("console:alice", "deploy main to staging")
            .await
            .request
            .unwrap();
        // Forge a request caught mid-rollout, as a crash would leave it.
        let mut stuck = h.request(waiting);
        stuck.id = RequestId(99);
        stuck.state = State::Deploying;
        h.store.put_request(99, &stuck).unwrap();
        let recovery = h.engine.recover().await.unwrap();
        assert_eq!(recovery.resumed, [waiting.to_string()]);
        assert_eq!(recovery.interrupted, ["R-99"]);
        assert_eq!(h.request(RequestId(99)).state, State::Interrupted);
        let approved = h.say("console:carol", &format!("approve {waiting}")).await;
        assert_eq!(approved.state, Some(State::Succeeded), "{}", approved.text);
    })
    .await;
}

#[tokio::test]
async fn nothing_starts_when_the_audit_trail_cannot_be_written() {
    support::within(async {
        let dir = tempfile::tempdir().unwrap();
        // A store whose newest audit event cannot be read back.
        Harness::break_audit(dir.path());
        let h = Harness::in_dir("engine.toml", dir).await;
        let reply = h.say("console:alice", "deploy main to dev").await;
        assert!(
            reply
                .text
                .starts_with("refused: could not record this in the audit trail"),
            "{}",
            reply.text
        );
        assert_eq!(reply.request, None);
        assert_eq!(h.outside_calls(), 0, "no outside call was made");
        assert!(h
            .store
            .requests::<gantry::engine::Request>()
            .unwrap()
            .is_empty());
    })
    .await;
}

#[tokio::test]
async fn previews_are_labelled_and_swept_when_their_ttl_passes() {
    support::within(async {
        let h = Harness::new("engine.toml").await;
        h.say("console:alice", "deploy feat-x to preview").await;
        let labels = h
            .sandbox
            .kube
            .namespace("preview-feat-x")
            .unwrap()
            .metadata
            .labels
            .unwrap();
        assert_eq!(labels["gantry.dev/preview"], "true");
        assert_eq!(labels["gantry.dev/branch"], "feat-x");
        assert_eq!(
            labels["gantry.dev/expires"],
            (TUESDAY_NOON + 24 * 3600).to_string()
        );
        assert!(
            h.engine.sweep_previews().await.unwrap().is_empty(),
            "not yet expired"
        );
        h.set_time(TUESDAY_NOON + 24 * 3600 + 1);
        assert_eq!(h.engine.sweep_previews().await.unwrap(), ["preview-feat-x"]);
        assert!(h.namespace_gone("preview-feat-x").await);
        assert!(h
            .actions("preview-feat-x")
            .contains(&"preview.expired".to_owned()));
    })
    .await;
}

#[tokio::test]
async fn status_flags_drift_between_the_cluster_and_gantrys_record() {
    support::within(async {
        let h = Harness::new("engine.toml").await;
        h.say("console:alice", "deploy main to dev").await;
        let clean = h.say("console:bob", "status dev").await;
        assert!(!clean.text.contains("DRIFT"), "{}", clean.text);
        // Someone edits the Deployment by hand.
        h.sandbox.kube.add_deployment(
            "dev",
            "web",
            "web",
            "registry.local:5000/acme/web@sha256:hand-edited",
            3,
        );
        let drifted = h.say("console:bob", "status dev").await;
        assert!(drifted.text.contains("DRIFT: the cluster differs from Gantry's record: web runs registry.local:5000/acme/web@sha256:hand-edited"), "{}", drifted.text);
    })
    .await;
}

#[tokio::test]
async fn a_gitops_environment_gets_a_commit_instead_of_a_patch() {
    support::within(async {
        let h = Harness::new("engine.toml").await;
        let reply = h.say("console:alice", "deploy feat-x to perf").await;
        assert_eq!(reply.state, Some(State::Succeeded), "{}", reply.text);
        let id = reply.request.unwrap();
        let github = &h.sandbox.github;
        let tip = github.branch("acme/deploy-config", "main").unwrap();
        let message = github
            .commit_of("acme/deploy-config", &tip)
            .unwrap()
            .message;
        let file = github
            .file("acme/deploy-config", "main", "perf/kustomization.yaml")
            .unwrap();
        let running = h.image("perf", "web");
        let (_, digest) = running.split_once('@').unwrap();
        assert!(
            file.contains(&format!("digest: {digest}")),
            "the cluster runs what was committed: {file}"
        );
        assert!(
            message.starts_with(&format!("{id}: deploy web in perf to ")),
            "{message}"
        );
        assert!(message.contains("Requested-by: alice"), "{message}");
        // The only change to perf's Deployment is the sandbox Argo CD's sync:
        // the engine itself never patched it.
        let notes = h
            .sandbox
            .kube
            .deployment("perf", "web")
            .unwrap()
            .metadata
            .annotations
            .unwrap();
        assert_eq!(notes["gantry.dev/requested-by"], "argocd");
        assert!(!h
            .actions(&id.to_string())
            .contains(&"cluster.image_set".to_owned()));
        assert!(h
            .actions(&id.to_string())
            .contains(&"gitops.committed".to_owned()));
    })
    .await;
}

#[tokio::test]
async fn tearing_down_a_preview_that_is_already_gone_succeeds_and_says_so() {
    support::within(async {
        let h = Harness::new("engine.toml").await;
        h.say("console:alice", "deploy feat-x to preview").await;
        h.set_time(TUESDAY_NOON + 24 * 3600 + 1);
        assert_eq!(h.engine.sweep_previews().await.unwrap(), ["preview-feat-x"]);
        assert!(h.namespace_gone("preview-feat-x").await);
        let gone = h.say("console:alice", "teardown feat-x").await;
        assert_eq!(gone.state, Some(State::Succeeded), "{}", gone.text);
        assert!(
            gone.text.contains("preview-feat-x was already gone"),
            "{}",
            gone.text
        );
        assert!(h
            .actions("preview-feat-x")
            .contains(&"preview.already_gone".to_owned()));
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ttl_sweep_and_a_teardown_racing_end_in_one_deletion_and_no_failure() {
    support::within(async {
        let h = Harness::new("engine.toml").await;
        h.say("console:alice", "deploy feat-x to preview").await;
        h.set_time(TUESDAY_NOON + 24 * 3600 + 1);
        let (swept, torn) = tokio::join!(
            h.engine.sweep_previews(),
            h.say("console:alice", "teardown feat-x")
        );
        let swept = swept.expect("the sweep does not fail");
        assert_eq!(torn.state, Some(State::Succeeded), "{}", torn.text);
        let teardown_deleted = !h
            .actions("preview-feat-x")
            .contains(&"preview.already_gone".to_owned());
        assert_eq!(
            swept.len() + usize::from(teardown_deleted),
            1,
            "exactly one of them deleted it: swept {swept:?}, teardown: {}",
            torn.text
        );
        let deletes = h
            .cluster_writes()
            .into_iter()
            .filter(|w| w == "DELETE /api/v1/namespaces/preview-feat-x")
            .count();
        assert!(deletes >= 1, "{:?}", h.cluster_writes());
    })
    .await;
}

#[tokio::test]
async fn one_person_starting_too_much_work_is_told_to_slow_down() {
    support::within(async {
        let base = std::fs::read_to_string(support::data("engine.toml")).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("limited.toml");
        std::fs::write(
            &path,
            base.replacen(
                "[gantry]\n",
                "[gantry]\nstart_limit = { count = 2, per = \"1m\" }\n",
                1,
            ),
        )
        .unwrap();
        let h = Harness::new(path.to_str().unwrap()).await;
        for _ in 0..2 {
            let ok = h.say("console:alice", "deploy main to dev --dry-run").await;
            assert_eq!(ok.state, Some(State::Succeeded), "{}", ok.text);
        }
        let third = h.say("console:alice", "deploy main to dev --dry-run").await;
        assert!(third.is_refused(), "{}", third.text);
        assert_eq!(
            third.text,
            "refused: slow down: alice may start 2 commands per 1m; try again in 60s"
        );
        assert_eq!(third.request, None, "nothing was recorded as a request");
        // Looking is not starting work, and others are not held back.
        assert!(!h.say("console:alice", "status dev").await.is_refused());
        let other = h.say("console:dave", "status").await;
        assert!(!other.is_refused(), "{}", other.text);
        h.set_time(TUESDAY_NOON + 60);
        let later = h.say("console:alice", "deploy main to dev --dry-run").await;
        assert_eq!(later.state, Some(State::Succeeded), "{}", later.text);
    })
    .await;
}
