//! Snapshots of what people read: Gantry's replies to commands, a deploy's
//! progress message through its states, and the messages it renders with
//! Approve and Deny, or Roll back and Complete, on Slack (Block Kit) and
//! Discord (components).
//!
//! Everything here is deterministic: the clock is the harness's fixed one,
//! request ids count from R-1 in a fresh store, and the sandbox's commits
//! and images are derived from their names. A changed snapshot fails the
//! test (under `CI` insta never writes one); review it with `cargo insta`
//! or `INSTA_UPDATE=always` and commit the new `.snap` file.

mod support;

use gantry::adapters::discord::{approval_buttons, gantry_command, verifying_buttons};
use gantry::adapters::slack::SlackNotifier;
use gantry::config::Secret;
use gantry::engine::ports::{Buttons, Notifier};
use gantry::engine::{Conversation, Platform, State};
use gantry::names::RequestId;
use gantry::sandbox::slack::FakeSlack;
use support::{within, Harness};

const ALICE: &str = "console:alice";

#[tokio::test]
async fn help() {
    within(async {
        let h = Harness::new("engine.toml").await;
        insta::assert_snapshot!(h.say(ALICE, "help").await.text);
    })
    .await;
}

#[tokio::test]
async fn whoami() {
    within(async {
        let h = Harness::new("engine.toml").await;
        insta::assert_snapshot!("whoami_known", h.say(ALICE, "whoami").await.text);
        insta::assert_snapshot!(
            "whoami_slack",
            h.say("slack:T0SANDBOX:UBOB0002", "whoami").await.text
        );
        insta::assert_snapshot!(
            "whoami_unknown",
            h.say("slack:T0SANDBOX:UNOBODY9", "whoami").await.text
        );
    })
    .await;
}

#[tokio::test]
async fn envs() {
    within(async {
        let h = Harness::new("engine.toml").await;
        insta::assert_snapshot!(h.say(ALICE, "envs").await.text);
        h.set_time(support::FRIDAY_EVENING_IN_BERLIN);
        insta::assert_snapshot!("envs_frozen", h.say(ALICE, "envs").await.text);
    })
    .await;
}

#[tokio::test]
async fn status_before_and_after_a_deploy() {
    within(async {
        let h = Harness::new("engine.toml").await;
        insta::assert_snapshot!("status_empty", h.say("console:bob", "status").await.text);
        let dev = h.say(ALICE, "deploy main to dev").await;
        assert_eq!(dev.state, Some(State::Succeeded), "{}", dev.text);
        insta::assert_snapshot!("status_dev", h.say("console:bob", "status dev").await.text);
    })
    .await;
}

#[tokio::test]
async fn parse_errors_name_the_nearest_command() {
    within(async {
        let h = Harness::new("engine.toml").await;
        insta::assert_snapshot!(
            "parse_error_typo",
            h.say(ALICE, "deploy main too dev").await.text
        );
        insta::assert_snapshot!("parse_error_unknown", h.say(ALICE, "frobnicate").await.text);
        insta::assert_snapshot!(
            "parse_error_flag",
            h.say(ALICE, "deploy main to dev --force").await.text
        );
    })
    .await;
}

#[tokio::test]
async fn refusals_say_why() {
    within(async {
        let h = Harness::new("engine.toml").await;
        let asked = h.say(ALICE, "deploy main to staging").await;
        assert_eq!(asked.state, Some(State::AwaitingApproval), "{}", asked.text);
        insta::assert_snapshot!("awaiting_approval", asked.text);
        let id = asked.request.expect("a request");
        insta::assert_snapshot!(
            "refused_self_approval",
            h.say(ALICE, &format!("approve {id}")).await.text
        );
        insta::assert_snapshot!(
            "refused_no_role",
            h.say("console:bob", &format!("approve {id}")).await.text
        );
        insta::assert_snapshot!(
            "refused_unknown_person",
            h.say("console:mallory", "deploy main to dev").await.text
        );
    })
    .await;
}

/// The progress message in the sandbox Slack's #deploys: every text it
/// had, oldest first, and the buttons of the latest.
struct Progress {
    /// The texts people read, the rollout's figures left out.
    versions: String,
    /// The rollout's figures (`3/3 updated, 3 available`), as reported.
    figures: Vec<String>,
    blocks: serde_json::Value,
}

fn progress(h: &Harness) -> Progress {
    let messages = h.slack().messages();
    assert_eq!(messages.len(), 1, "one progress message: {messages:#?}");
    let message = &messages[0];
    // How many rollout steps the watch sees depends on the machine's pace,
    // so the figures are checked apart from the snapshot.
    let (figures, versions): (Vec<String>, Vec<String>) = message
        .versions
        .iter()
        .cloned()
        .partition(|v| v.contains(" updated, "));
    let mut versions = versions;
    // An edit that changes nothing is not something people read twice.
    versions.dedup();
    let figures = figures
        .iter()
        .filter_map(|v| v.rsplit_once(" — ").map(|(_, f)| f.to_owned()))
        .collect();
    Progress {
        versions: versions.join("\n---\n"),
        figures,
        blocks: message.blocks.clone(),
    }
}

#[tokio::test]
async fn a_deploys_progress_message_through_its_states() {
    within(async {
        let h = Harness::new("engine.toml").await;
        let dev = h
            .say_in_slack("slack:T0SANDBOX:UALICE01", "deploy main to dev")
            .await;
        assert_eq!(dev.state, Some(State::Succeeded), "{}", dev.text);
        insta::assert_snapshot!("deploy_reply", dev.text);
        let progress = progress(&h);
        insta::assert_snapshot!("deploy_progress", progress.versions);
        assert_eq!(
            progress.figures.last().map(String::as_str),
            Some("3/3 updated, 3 available"),
            "{:?}",
            progress.figures
        );
        assert_eq!(
            progress.blocks,
            serde_json::json!([]),
            "no buttons on a deploy that needs none"
        );
    })
    .await;
}

#[tokio::test]
async fn an_approval_request_in_slack_has_approve_and_deny_buttons() {
    within(async {
        let h = Harness::new("engine.toml").await;
        let asked = h
            .say_in_slack("slack:T0SANDBOX:UALICE01", "deploy main to staging")
            .await;
        assert_eq!(asked.state, Some(State::AwaitingApproval), "{}", asked.text);
        let progress = progress(&h);
        insta::assert_snapshot!("slack_awaiting_text", progress.versions);
        insta::assert_snapshot!(
            "slack_awaiting_blocks",
            serde_json::to_string_pretty(&progress.blocks).unwrap()
        );
    })
    .await;
}

#[tokio::test]
async fn slack_notifier_escapes_and_renders_blocks() {
    within(async {
        let fake = FakeSlack::start("xoxb-test").await.unwrap();
        let slack = SlackNotifier::plain_http(&fake.api_url(), &Secret::new("xoxb-test".into()));
        let deploys = Conversation {
            platform: Platform::Slack,
            channel: "C0DEPLOYS".into(),
        };
        slack
            .post_asking(
                &deploys,
                "R-7 deploy <main> & co to prod, asked by <!channel>",
                Buttons::Approval(RequestId(7)),
            )
            .await
            .unwrap();
        let message = &fake.messages()[0];
        insta::assert_snapshot!(
            "slack_blocks_escaped",
            serde_json::to_string_pretty(&message.blocks).unwrap()
        );
        // Verifying: Roll back (danger) and Complete (primary), valued R-7.
        slack
            .post_asking(
                &deploys,
                "R-7 verifying web in prod",
                Buttons::Verifying(RequestId(7)),
            )
            .await
            .unwrap();
        let message = &fake.messages()[1];
        insta::assert_snapshot!(
            "slack_verifying_blocks",
            serde_json::to_string_pretty(&message.blocks).unwrap()
        );
    })
    .await;
}

#[test]
fn discord_components_and_command() {
    insta::assert_snapshot!(
        "discord_approval_buttons",
        serde_json::to_string_pretty(&approval_buttons(RequestId(7))).unwrap()
    );
    insta::assert_snapshot!(
        "discord_verifying_buttons",
        serde_json::to_string_pretty(&verifying_buttons(RequestId(7))).unwrap()
    );
    insta::assert_snapshot!(
        "discord_gantry_command",
        serde_json::to_string_pretty(&gantry_command()).unwrap()
    );
}
