//! The real Slack notifier (slack-morphism) against the fake Slack Web API.

mod support;

use gantry::adapters::slack::{SlackNotifier, APPROVE_ACTION, DENY_ACTION};
use gantry::config::Secret;
use gantry::engine::ports::{Buttons, Notifier, PortError};
use gantry::engine::Conversation;
use gantry::names::RequestId;
use gantry::sandbox::slack::FakeSlack;

fn deploys() -> Conversation {
    Conversation {
        platform: gantry::engine::Platform::Slack,
        channel: "C0DEPLOYS".into(),
    }
}

#[tokio::test]
async fn posts_edits_and_reacts_with_buttons_only_while_asking() {
    support::within(async {
        let fake = FakeSlack::start("xoxb-test").await.unwrap();
        let slack = SlackNotifier::plain_http(&fake.api_url(), &Secret::new("xoxb-test".into()));
        let posted = slack
            .post_asking(
                &deploys(),
                "R-7 needs approval <!channel> & co",
                Buttons::Approval(RequestId(7)),
            )
            .await
            .unwrap();
        let messages = fake.messages();
        assert_eq!(messages.len(), 1);
        assert_eq!(messages[0].ts, posted.id);
        // Escaped: Slack renders `<!channel>` as a mention, `&lt;!channel&gt;` as text.
        assert_eq!(
            messages[0].versions[0],
            "R-7 needs approval &lt;!channel&gt; &amp; co"
        );
        let buttons = messages[0].blocks[1]["elements"].as_array().unwrap();
        assert_eq!(buttons[0]["action_id"], APPROVE_ACTION);
        assert_eq!(buttons[0]["value"], "R-7");
        assert_eq!(buttons[0]["style"], "primary");
        assert_eq!(buttons[1]["action_id"], DENY_ACTION);

        slack.edit(&posted, "R-7 deploying 2/3").await.unwrap();
        slack.react(&posted, ":rocket:").await.unwrap();
        let message = &fake.messages()[0];
        assert_eq!(
            message.versions,
            [
                "R-7 needs approval &lt;!channel&gt; &amp; co",
                "R-7 deploying 2/3"
            ]
        );
        assert_eq!(
            message.blocks,
            serde_json::json!([]),
            "buttons are gone once it stops asking"
        );
        assert_eq!(message.reactions, ["rocket"]);
        let methods: Vec<String> = fake.calls().into_iter().map(|c| c.method).collect();
        assert_eq!(
            methods,
            ["chat.postMessage", "chat.update", "reactions.add"]
        );
    })
    .await;
}

#[tokio::test]
async fn waits_out_rate_limits_and_names_auth_failures() {
    support::within(async {
        let fake = FakeSlack::start("xoxb-test").await.unwrap();
        let slack = SlackNotifier::plain_http(&fake.api_url(), &Secret::new("xoxb-test".into()));
        fake.rate_limit_next(1);
        let posted = slack.post(&deploys(), "hello").await.unwrap();
        assert_eq!(fake.calls().len(), 2, "one 429, then the retry");
        assert_eq!(fake.messages()[0].ts, posted.id);

        fake.rate_limit_next(5);
        let err = slack.post(&deploys(), "again").await.unwrap_err();
        assert!(matches!(err, PortError::RateLimited { .. }), "{err}");

        let wrong = SlackNotifier::plain_http(&fake.api_url(), &Secret::new("xoxb-wrong".into()));
        let err = wrong.post(&deploys(), "x").await.unwrap_err();
        assert_eq!(
            err,
            PortError::Unauthorised("Slack chat.postMessage: invalid_auth".into())
        );
        let missing = gantry::engine::ports::MessageRef {
            conversation: deploys(),
            id: "1.2".into(),
        };
        let err = slack.edit(&missing, "x").await.unwrap_err();
        assert_eq!(
            err,
            PortError::NotFound("Slack chat.update: message_not_found".into())
        );
    })
    .await;
}
