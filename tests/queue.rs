//! Accepted commands wait in the store, not in memory: one that was still
//! waiting when Gantry stopped runs when it starts again, as the person
//! who sent it, answered where it came from.

mod support;

use gantry::inbound::Front;
use serde_json::json;
use support::{until, within, Harness};

#[tokio::test]
async fn a_command_left_waiting_runs_at_the_next_start() {
    within(a_command_left_waiting_runs()).await;
}

async fn a_command_left_waiting_runs() {
    let h = Harness::new("engine.toml").await;
    // The stored shape of a queue entry: what a previous process left.
    let entry = json!({
        "identity": "slack:T0SANDBOX:UALICE01",
        "place": { "platform": "slack", "channel": "C0DEPLOYS" },
        "command": "whoami",
        "answer": "in_band",
    });
    h.store.enqueue(&entry).unwrap();
    assert_eq!(h.store.queued(), 1);

    let _front = Front::start(h.engine.clone());

    let slack = h.slack();
    until("the waiting whoami is answered in #deploys", || {
        slack.messages().iter().any(|m| {
            m.channel == "C0DEPLOYS"
                && m.versions
                    .iter()
                    .any(|v| v.starts_with("you are slack:T0SANDBOX:UALICE01: alice"))
        })
    })
    .await;
    assert_eq!(h.store.queued(), 0, "the entry was taken");
}

#[tokio::test]
async fn an_entry_the_grammar_no_longer_reads_is_answered_not_run() {
    within(an_unreadable_entry_is_answered()).await;
}

async fn an_unreadable_entry_is_answered() {
    let h = Harness::new("engine.toml").await;
    let entry = json!({
        "identity": "slack:T0SANDBOX:UALICE01",
        "place": { "platform": "slack", "channel": "C0DEPLOYS" },
        "command": "launch the rockets",
        "answer": "in_band",
    });
    h.store.enqueue(&entry).unwrap();
    let _front = Front::start(h.engine.clone());
    let slack = h.slack();
    until("the person is told the command cannot run", || {
        slack.messages().iter().any(|m| {
            m.versions.iter().any(|v| {
                v.starts_with("`launch the rockets` was accepted but can no longer be run")
            })
        })
    })
    .await;
    assert_eq!(h.store.queued(), 0);
    let requests: Vec<(u64, gantry::engine::Request)> = h.store.requests().unwrap();
    assert!(requests.is_empty(), "nothing was started");
}
