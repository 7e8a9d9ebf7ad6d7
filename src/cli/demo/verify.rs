//! The demo's verification chapter: a release reaches staging and is
//! completed early (it goes ahead, not verified); then a faulty release
//! reaches staging by promotion, its error rate fails the soak, and Gantry
//! rolls staging back to the last verified release, past the unverified one.

use std::time::{Duration, Instant};

use super::{chapter, expect, Story};
use crate::engine::{Request, State};
use crate::sandbox::stack::PROMETHEUS_MISSING;
use crate::sandbox::verification::{ERROR_RATE_CHECK, HEALTH_CHECK};

/// When the watched soak went wrong, as its records and messages show it.
#[derive(Default)]
struct Timeline {
    first_failure: Option<Instant>,
    past_tolerance: Option<Instant>,
    rolling_back: Option<Instant>,
}

impl Story {
    /// (a) is `verified`, chapter 3's release; (b) `main` reaches staging
    /// and carol completes it early; (c) `bad-metrics` fails its error-rate
    /// check and staging goes back to (a), not to (b).
    pub(super) async fn faulty_release(&mut self, verified: &Request) -> Result<(), String> {
        chapter("5. staging verifies every release: one is completed early (not verified); a faulty one fails its error rate during the soak and Gantry rolls back to the last verified release");
        if self.stack.prometheus.is_none() {
            println!("{PROMETHEUS_MISSING}");
            println!(
                "skipped: without Prometheus staging is verified by its {HEALTH_CHECK} check only, which a release that errs but stays up passes\n"
            );
            return Ok(());
        }
        let early = self.completed_early().await?;
        self.command("alice", "deploy bad-metrics to dev", State::Succeeded)
            .await?;
        // Named with its app: Slack would take the same words at the same
        // second for a retry of chapter 3's command.
        let r = self
            .command(
                "alice",
                "promote web from dev to staging",
                State::AwaitingApproval,
            )
            .await?;
        self.react("carol", &r).await?;
        let timeline = self.watch_soak(&r).await?;
        let r = self.wait(r.id, State::RolledBack).await?;
        self.shows(&r, &["verifying:", "rolling back to"])?;
        let standing = r
            .verification
            .as_ref()
            .and_then(|v| v.checks.iter().find(|c| c.name == ERROR_RATE_CHECK))
            .cloned()
            .ok_or("the faulty release has no error-rate standing")?;
        println!(
            "the {ERROR_RATE_CHECK} check's last value: {} ({} failed probe(s) in a row)",
            standing.last, standing.failing_in_a_row
        );
        expect(
            !standing.ok,
            "the error-rate check failed on the faulty release",
        )?;
        let back = verified
            .digest
            .as_ref()
            .ok_or("the verified release has no digest")?;
        let running = self
            .stack
            .kube
            .image("staging", "web", "web")
            .unwrap_or_default();
        println!("staging runs {running} again");
        expect(
            running.ends_with(&format!("@{back}")),
            &format!(
                "staging went back to {} ({}), the last verified release",
                back.short(),
                verified.id
            ),
        )?;
        expect(
            r.note.as_deref().is_some_and(|n| {
                n.contains(&format!("the last verified release ({})", verified.id))
            }),
            "the rollback names the last verified release",
        )?;
        expect(
            early.digest.as_ref() != Some(back),
            &format!(
                "it skipped {}, the release just before it, which was not verified",
                early.id
            ),
        )?;
        if let (Some(first), Some(past), Some(back)) = (
            timeline.first_failure,
            timeline.past_tolerance,
            timeline.rolling_back,
        ) {
            println!(
                "from the first failing probe to the rollback starting: {} ms; from the check failing past its tolerance: {} ms (probes every 1s, 1 failure tolerated)",
                back.saturating_duration_since(first).as_millis(),
                back.saturating_duration_since(past).as_millis()
            );
        }
        let status = self.ask("bob", "status staging").await?;
        expect(
            status.contains(&format!("since {}", verified.id)) && status.contains(", verified"),
            &format!("status says staging runs {}, verified", verified.id),
        )
    }

    /// (b): `main` goes to dev and on to staging, carol approves, and, while its checks
    /// run, completes it early: it goes ahead without being verified.
    async fn completed_early(&mut self) -> Result<Request, String> {
        self.command("alice", "deploy main to dev", State::Succeeded)
            .await?;
        let r = self
            .command(
                "alice",
                "promote from dev to staging",
                State::AwaitingApproval,
            )
            .await?;
        self.react("carol", &r).await?;
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let now: Option<Request> = self
                .engine
                .store()
                .get_request(r.id.0)
                .map_err(|e| e.to_string())?;
            if now.is_some_and(|n| n.state == State::Verifying && n.verification.is_some()) {
                break;
            }
            if Instant::now() > deadline {
                return Err(format!("{} did not start verifying in time", r.id));
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        // Its answer is the release's own message, which the wait shows.
        self.tell("carol", &format!("complete {}", r.id)).await?;
        let r = self.wait(r.id, State::Succeeded).await?;
        self.shows(
            &r,
            &["verifying:", "not verified: carol completed it early"],
        )?;
        expect(
            !r.is_verified(),
            &format!("{} went ahead without being verified", r.id),
        )?;
        Ok(r)
    }

    /// `who` types `text` in the channel; what follows shows in messages.
    async fn tell(&self, who: &str, text: &str) -> Result<(), String> {
        println!("{who} › /gantry {text}");
        let body = serde_urlencoded::to_string([
            ("team_id", super::TEAM),
            ("user_id", super::slack_user(who)),
            ("channel_id", super::CHANNEL),
            ("command", "/gantry"),
            ("text", text),
        ])
        .map_err(|e| e.to_string())?;
        self.post("/slack/commands", "application/x-www-form-urlencoded", body)
            .await
            .map(drop)
    }

    /// Follows `request`'s verification (bounded) and notes when its
    /// error-rate check first failed, when it failed past its tolerance and
    /// when the message first said it was rolling back.
    async fn watch_soak(&self, request: &Request) -> Result<Timeline, String> {
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut seen = Timeline::default();
        while Instant::now() < deadline {
            let now: Option<Request> = self
                .engine
                .store()
                .get_request(request.id.0)
                .map_err(|e| e.to_string())?;
            let Some(now) = now else {
                return Err(format!("{} is gone", request.id));
            };
            let failing = now
                .verification
                .as_ref()
                .and_then(|v| v.checks.iter().find(|c| c.name == ERROR_RATE_CHECK))
                .map_or(0, |c| c.failing_in_a_row);
            let at = Instant::now();
            if failing > 0 {
                seen.first_failure.get_or_insert(at);
            }
            if failing > 1 {
                seen.past_tolerance.get_or_insert(at);
            }
            let message = self.latest_version(&request.id.to_string());
            if message.is_some_and(|m| m.contains("rolling back to")) {
                seen.rolling_back.get_or_insert(at);
            }
            if now.state.is_terminal() || seen.rolling_back.is_some() {
                return Ok(seen);
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        Err(format!("{} was not rolled back in time", request.id))
    }
}
