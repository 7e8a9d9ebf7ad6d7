//! Dry runs, read as chat transcripts: a dry run makes every check a deploy
//! makes, takes no lock, reports the lock a deploy would meet, and never
//! stands in the way of a real deploy.

mod support;

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use gantry::engine::{Request, State};
use gantry::names::RequestId;
use gantry::sandbox::stack::SandboxOptions;
use support::{Harness, TICK};

/// What a dry run that meets a lock ends with, after the lock's own words.
const WOULD_WAIT: &str = "a deploy now would wait or be refused";

/// The requests that took a lock (by `lock.taken` audit events).
fn lock_takers(h: &Harness) -> Vec<Option<u64>> {
    let filter = gantry::store::ListFilter::default();
    h.store
        .list(&filter)
        .expect("audit readable")
        .into_iter()
        .filter(|e| e.action == "lock.taken")
        .map(|e| e.details["request"].as_u64())
        .collect()
}

/// Writes Gantry made to the Git host (method and path).
fn github_writes(h: &Harness) -> Vec<String> {
    h.sandbox
        .github
        .requests()
        .into_iter()
        .filter(|r| r.method != "GET")
        .map(|r| format!("{} {}", r.method, r.path))
        .collect()
}

/// Waits, bounded, until `done` holds for the store; the test's sync point.
async fn until(h: &Harness, what: &str, done: impl Fn(&Harness) -> bool) {
    let wait = async {
        while !done(h) {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(20), wait)
        .await
        .unwrap_or_else(|_| panic!("timed out waiting until {what}"));
}

fn requests(h: &Harness) -> Vec<Request> {
    h.store
        .requests::<Request>()
        .expect("store readable")
        .into_iter()
        .map(|(_, r)| r)
        .collect()
}

#[tokio::test]
async fn a_dry_run_checks_everything_and_takes_no_lock() {
    support::within(async {
        let h = Harness::new("engine.toml").await;
        let cluster = h.cluster_writes();
        let github = github_writes(&h);

        let dry = h.say("console:alice", "deploy main to dev --dry-run").await;
        assert_eq!(dry.state, Some(State::Succeeded), "{}", dry.text);
        assert!(
            dry.text.contains("dry run: every check passed"),
            "{}",
            dry.text
        );
        let id = dry.request.unwrap();
        let request = h.request(id);
        assert!(request.sha.is_some() && request.digest.is_some(), "pinned");

        assert!(h.store.locks().unwrap().is_empty());
        assert_eq!(lock_takers(&h), Vec::<Option<u64>>::new());
        let actions = h.actions(&id.to_string());
        assert!(
            actions.iter().all(|a| !a.starts_with("lock.")),
            "{actions:?}"
        );
        assert_eq!(h.cluster_writes(), cluster);
        assert_eq!(github_writes(&h), github);
    })
    .await;
}

#[tokio::test]
async fn two_dry_runs_at_once_both_get_through() {
    support::within(async {
        let h = Harness::new("engine.toml").await;
        let (a, b) = tokio::join!(
            h.say("console:alice", "deploy main to dev --dry-run"),
            h.say("console:alice", "deploy feat-x to dev --dry-run")
        );
        assert_eq!(a.state, Some(State::Succeeded), "{}", a.text);
        assert_eq!(b.state, Some(State::Succeeded), "{}", b.text);
        assert!(h.store.locks().unwrap().is_empty());
        assert!(lock_takers(&h).is_empty());
    })
    .await;
}

#[tokio::test]
async fn a_dry_run_reports_the_deploy_lock_a_real_deploy_holds_and_leaves_it_alone() {
    support::within(async {
        // A rollout step a second: the real deploy holds its lock for several
        // seconds, far longer than a dry run needs, even on a loaded machine.
        let options = SandboxOptions {
            tick: Duration::from_millis(1000),
            ..SandboxOptions::with_tick(TICK)
        };
        let h = Harness::with_options("engine.toml", options).await;
        let real = h.say("console:alice", "deploy feat-x to dev");
        let dry = async {
            until(&h, "the real deploy holds its lock", |h| {
                h.store.locks().unwrap().iter().any(|l| l.key == "web/dev")
            })
            .await;
            let holder = h.store.locks().unwrap().remove(0);
            let dry = h.say("console:alice", "deploy main to dev --dry-run").await;
            (holder, dry)
        };
        let (real, (holder, dry)) = tokio::join!(real, dry);

        let real_id = real.request.unwrap();
        assert_eq!(holder.request, Some(real_id.0));
        assert_eq!(dry.state, Some(State::Failed), "{}", dry.text);
        let expected =
            format!("dry run: dev is locked by alice ({real_id} is deploying); {WOULD_WAIT}");
        assert!(dry.text.contains(&expected), "{}", dry.text);
        let dry_id = dry.request.unwrap();
        assert_eq!(
            h.request(dry_id).note.as_deref(),
            Some(&expected["dry run: ".len()..])
        );

        assert_eq!(real.state, Some(State::Succeeded), "{}", real.text);
        assert_eq!(lock_takers(&h), vec![Some(real_id.0)]);
        assert!(
            h.store.locks().unwrap().is_empty(),
            "the deploy released it"
        );
    })
    .await;
}

#[tokio::test]
async fn a_dry_run_reports_a_lock_taken_by_hand() {
    support::within(async {
        let h = Harness::new("engine.toml").await;
        let locked = h
            .say("console:erin", "lock dev \"database migration\"")
            .await;
        assert!(locked.text.contains("dev is locked"), "{}", locked.text);
        let cluster = h.cluster_writes();

        let dry = h.say("console:alice", "deploy main to dev --dry-run").await;
        assert_eq!(dry.state, Some(State::Failed), "{}", dry.text);
        let expected = format!("dry run: dev is locked by erin: database migration; {WOULD_WAIT}");
        assert!(dry.text.contains(&expected), "{}", dry.text);
        // It still made every other check: the ref and the image were pinned.
        let request = h.request(dry.request.unwrap());
        assert!(request.sha.is_some() && request.digest.is_some(), "pinned");
        assert_eq!(h.cluster_writes(), cluster);
        let locks = h.store.locks().unwrap();
        assert_eq!(locks.len(), 1, "{locks:?}");
        assert_eq!(locks[0].key, "env/dev");

        // Other checks still come first: a ref that does not exist says so.
        let missing = h
            .say("console:alice", "deploy no-such-branch to dev --dry-run")
            .await;
        assert_eq!(missing.state, Some(State::Failed), "{}", missing.text);
        assert!(!missing.text.contains("locked"), "{}", missing.text);
    })
    .await;
}

#[tokio::test]
async fn a_real_deploy_among_dry_runs_is_never_refused_because_of_them() {
    support::within(async {
        let h = Harness::new("engine.toml").await;
        let stop = AtomicBool::new(false);
        // Dry runs back to back, two at a time, until the real deploy has ended.
        let storm = async {
            let mut replies = Vec::new();
            while !stop.load(Ordering::SeqCst) {
                let (a, b) = tokio::join!(
                    h.say("console:alice", "deploy main to dev --dry-run"),
                    h.say("console:alice", "deploy feat-x to dev --dry-run")
                );
                replies.extend([a, b]);
            }
            replies
        };
        let real = async {
            until(&h, "a dry run is in flight", |h| {
                requests(h)
                    .iter()
                    .any(|r| r.dry_run && !r.state.is_terminal())
            })
            .await;
            let real = h.say("console:alice", "deploy feat-x to dev").await;
            stop.store(true, Ordering::SeqCst);
            real
        };
        let (dry_runs, real) = tokio::join!(storm, real);

        assert_eq!(real.state, Some(State::Succeeded), "{}", real.text);
        let real_id: RequestId = real.request.unwrap();
        assert!(!dry_runs.is_empty());
        for dry in &dry_runs {
            // Each either passed, or met the real deploy's lock and said so.
            let met =
                format!("dry run: dev is locked by alice ({real_id} is deploying); {WOULD_WAIT}");
            assert!(
                dry.state == Some(State::Succeeded)
                    || (dry.state == Some(State::Failed) && dry.text.contains(&met)),
                "{}",
                dry.text
            );
        }
        assert_eq!(lock_takers(&h), vec![Some(real_id.0)]);
        assert!(h.store.locks().unwrap().is_empty());
    })
    .await;
}

#[tokio::test]
async fn a_dry_run_in_a_freeze_window_says_when_the_window_ends() {
    support::within(async {
        let h = Harness::new("engine.toml").await;
        let cluster = h.cluster_writes();
        h.set_time(support::FRIDAY_EVENING_IN_BERLIN);
        let dry = h.say("console:alice", "deploy main to dev --dry-run").await;
        assert_eq!(
            dry.text,
            "refused: dev is frozen: no deploys on Friday evening (frozen until Sat 00:00 Europe/Berlin)"
        );
        assert_eq!(dry.request, None, "nothing was created");
        // At Sat 00:00 in Berlin, as the refusal said, the window is over.
        h.set_time(support::FRIDAY_EVENING_IN_BERLIN + 5 * 3600 + 1800);
        let open = h.say("console:alice", "deploy main to dev --dry-run").await;
        assert_eq!(open.state, Some(State::Succeeded), "{}", open.text);
        assert!(
            open.text.contains("dry run: every check passed"),
            "{}",
            open.text
        );
        assert_eq!(h.cluster_writes(), cluster);
    })
    .await;
}
