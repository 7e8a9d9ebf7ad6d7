//! `promote [<app>] from <env> to <env>`: what Gantry last deployed
//! successfully in the source environment, pinned when the request is made;
//! a target with `require_verified` takes it only when it was verified,
//! and a target with `soak` only once it has run in the source that long.

use std::time::Duration;

use crate::config::{App, Environment, Zone};
use crate::engine::request::Pins;
use crate::engine::state::Request;
use crate::engine::Engine;
use crate::names::{Digest, EnvName};

impl Engine {
    /// Pins a promotion to the commit and digest of the newest successful
    /// deploy in `from`, which must be verified when `to` requires it.
    pub(in crate::engine) fn pin_promote(
        &self,
        app: &App,
        from: &EnvName,
        to: Option<&Environment>,
        previous: Option<Digest>,
    ) -> Result<Pins, String> {
        let source = self.last_good(app, from.as_str(), None).ok_or_else(|| {
            format!(
                "Gantry has no successful deploy of {} in {from} to promote",
                app.name
            )
        })?;
        if let Some(to) = to.filter(|to| to.require_verified && !source.is_verified()) {
            let digest = source.digest.as_ref().map_or("", |d| d.short());
            return Err(format!(
                "{} ({digest}) is what runs in {from} and it is not verified; {} takes only verified releases (require_verified)",
                source.id, to.name
            ));
        }
        if let Some(to) = to {
            self.check_soak(&source, from, to)?;
        }
        let sha = source.sha.ok_or("the source deploy has no commit")?;
        Ok(Pins {
            sha,
            digest: source.digest,
            previous,
            note: None,
        })
    }

    /// Refuses a promotion of `source` into `to` until it has run in
    /// `from` for `to`'s soak time, and been verified there where `from`
    /// verifies its releases; the refusal says when it becomes eligible.
    fn check_soak(&self, source: &Request, from: &EnvName, to: &Environment) -> Result<(), String> {
        let Some(soak) = to.soak else { return Ok(()) };
        let soak_text = humantime::format_duration(soak);
        let verifies = self
            .config
            .env(from.as_str())
            .is_some_and(|e| e.verify.is_some());
        if verifies && !source.is_verified() {
            return Err(format!(
                "{} has not been verified in {from}; {} takes releases that have run {soak_text} there and been verified (soak)",
                source.id, to.name
            ));
        }
        let now = self.now();
        let since = source.rolled_out_at.unwrap_or(source.updated_at);
        let eligible = since.saturating_add(i64::try_from(soak.as_secs()).unwrap_or(i64::MAX));
        if now >= eligible {
            return Ok(());
        }
        let ran = u64::try_from(now - since).unwrap_or(0);
        let left = u64::try_from(eligible - now).unwrap_or(0);
        Err(format!(
            "{} has run in {from} for {}; {} takes releases that have run there for {soak_text} (soak): eligible at {}, in {}",
            source.id,
            humantime::format_duration(Duration::from_secs(ran)),
            to.name,
            Zone::utc().describe(eligible, now),
            humantime::format_duration(Duration::from_secs(left)),
        ))
    }
}

#[cfg(test)]
mod tests {
    use crate::engine::testing::TestEngine;
    use crate::engine::State;

    #[tokio::test]
    async fn a_promotion_moves_the_commit_and_digest_that_run_in_the_source() {
        let t = TestEngine::start().await;
        let dev = t.say("console:alice", "deploy feat-x to dev").await;
        assert_eq!(dev.state, Some(State::Succeeded), "{}", dev.text);
        let waiting = t.say("console:alice", "promote from dev to staging").await;
        assert_eq!(
            waiting.state,
            Some(State::AwaitingApproval),
            "{}",
            waiting.text
        );
        let id = waiting.request.expect("a request");
        let done = t.say("console:carol", &format!("approve {id}")).await;
        assert_eq!(done.state, Some(State::Succeeded), "{}", done.text);
        let (source, promoted) = (t.request(&dev), t.request(&done));
        assert_eq!(promoted.sha, source.sha);
        assert_eq!(promoted.digest, source.digest);
        assert_eq!(t.image("staging"), t.image("dev"));
    }

    #[tokio::test]
    async fn a_soak_time_holds_a_promotion_back_until_the_release_has_run_that_long() {
        let t = TestEngine::with_config(|base| {
            base.replace(
                "namespace = \"staging\"\n",
                "namespace = \"staging\"\npromote_from = \"dev\"\nsoak = \"30m\"\n",
            )
        })
        .await;
        let dev = t.say("console:alice", "deploy feat-x to dev").await;
        assert_eq!(dev.state, Some(State::Succeeded), "{}", dev.text);
        t.set_time(t.now() + 10 * 60);
        let early = t.say("console:alice", "promote from dev to staging").await;
        assert_eq!(early.state, Some(State::Failed), "{}", early.text);
        let id = dev.request.expect("a request");
        assert!(
            early.text.contains(&format!(
                "{id} has run in dev for 10m; staging takes releases that have run there for 30m (soak): eligible at Tue 12:30 UTC, in 20m"
            )),
            "{}",
            early.text
        );
        t.set_time(t.now() + 20 * 60);
        let ready = t.say("console:alice", "promote from dev to staging").await;
        assert_eq!(ready.state, Some(State::AwaitingApproval), "{}", ready.text);
    }

    #[tokio::test]
    async fn promoting_from_where_gantry_never_deployed_fails_and_says_so() {
        let t = TestEngine::start().await;
        let reply = t.say("console:alice", "promote from dev to staging").await;
        assert_eq!(reply.state, Some(State::Failed), "{}", reply.text);
        assert!(
            reply
                .text
                .contains("Gantry has no successful deploy of web in dev to promote"),
            "{}",
            reply.text
        );
    }
}
