//! The shipped release-chain example, driven through: dev -> qa -> uat ->
//! live, where live needs a dev approver, a qa approver and the on-duty
//! approver, three different people, from more than one platform.

mod support;

use gantry::engine::State;
use support::Harness;

const EXAMPLE: &str = "../../config/examples/release-chain.toml";

#[tokio::test]
async fn a_release_goes_live_only_once_every_rule_is_met_by_a_different_person() {
    support::within(async {
        let h = Harness::new(EXAMPLE).await;
        for step in [
            "deploy main to dev",
            "promote from dev to qa",
            "promote from qa to uat",
        ] {
            let done = h.say("console:alice", step).await;
            assert_eq!(done.state, Some(State::Succeeded), "{step}: {}", done.text);
        }
        let live_before = h.image("live", "web");
        let asked = h
            .say_in_slack("slack:T0SANDBOX:UALICE01", "promote from uat to live")
            .await;
        assert_eq!(asked.state, Some(State::AwaitingApproval), "{}", asked.text);
        let id = asked.request.unwrap();
        let progress = || h.slack().messages().pop().unwrap().versions;
        assert!(
            progress()
                .last()
                .unwrap()
                .contains("awaiting approval: dev 0/1 · qa 0/1 · on-duty 0/1;"),
            "{:#?}",
            progress()
        );

        // alice is a dev approver, but she asked: not from any platform.
        let own = h
            .say("discord:100000000000000001", &format!("approve {id}"))
            .await;
        assert!(
            own.text
                .contains(&format!("alice asked for {id} and cannot approve it too")),
            "{}",
            own.text
        );

        // dave may approve for qa and for on-duty; he counts for the first
        // rule still short that he qualifies for.
        let dave = h.say("console:dave", &format!("approve {id}")).await;
        assert!(
            dave.text.contains("dave approved") && dave.text.contains("for qa: dev 0/1 · qa 1/1 dave · on-duty 0/1"),
            "{}",
            dave.text
        );
        // carol, from Discord, may approve only for qa: dave moves on to
        // on-duty to make room.
        let carol = h
            .say(
                "discord:100000000000000003",
                &format!("approve {id} regression suite green"),
            )
            .await;
        assert_eq!(carol.state, Some(State::AwaitingApproval), "{}", carol.text);
        assert!(
            carol
                .text
                .contains("for qa: dev 0/1 · qa 1/1 carol · on-duty 1/1 dave"),
            "{}",
            carol.text
        );
        assert!(
            progress().last().unwrap().contains(
                "dev 0/1 · qa 1/1 carol “regression suite green” · on-duty 1/1 dave;"
            ),
            "{:#?}",
            progress()
        );
        assert_eq!(h.image("live", "web"), live_before, "nothing went live yet");

        // bob's approval meets the last rule; only now does live change.
        let bob = h
            .say("slack:T0SANDBOX:UBOB0002", &format!("approve {id}"))
            .await;
        assert_eq!(bob.state, Some(State::Succeeded), "{}", bob.text);
        assert_eq!(h.image("live", "web"), h.image("uat", "web"));
        let done = h.request(id);
        let from: Vec<String> = done
            .approvals
            .iter()
            .map(|a| format!("{} {}", a.person, a.identity))
            .collect();
        assert_eq!(
            from,
            [
                "dave console:dave",
                "carol discord:100000000000000003",
                "bob slack:T0SANDBOX:UBOB0002"
            ]
        );
        let statuses = h.deployment_descriptions("acme/web", "live");
        assert_eq!(
            statuses.last().unwrap()[1].1,
            "Gantry: in progress; approved: dev 1/1 bob · qa 1/1 carol “regression suite green” · on-duty 1/1 dave",
            "{statuses:?}"
        );
        let deploy_started = h.actions(&id.to_string());
        let approvals = deploy_started
            .iter()
            .filter(|a| *a == "request.approved")
            .count();
        let started = deploy_started
            .iter()
            .position(|a| a == "request.deploy_started")
            .expect("the deploy started");
        let last_approval = deploy_started
            .iter()
            .rposition(|a| a == "request.approved")
            .unwrap();
        assert_eq!(approvals, 3);
        assert!(last_approval < started, "{deploy_started:?}");
    })
    .await;
}
