//! `promote [<app>] from <env> to <env>`: what Gantry last deployed
//! successfully in the source environment, pinned when the request is made;
//! a target with `require_verified` takes it only when it was verified.

use crate::config::{App, Environment};
use crate::engine::request::Pins;
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
        let sha = source.sha.ok_or("the source deploy has no commit")?;
        Ok(Pins {
            sha,
            digest: source.digest,
            previous,
            note: None,
        })
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
