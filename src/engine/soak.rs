//! Verification after a rollout: the environment's checks, probed on their
//! intervals for the soak time. Every round is written down before the
//! next, so a restart resumes with the time left; a check that fails past
//! its tolerance ends the soak at once and the release is rolled back
//! (where the environment says so) to the last verified one.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::Instant;

use super::ports::{ProbeVars, Probed, Workload};
use super::state::{Event, Request, Verification};
use super::{Engine, EngineError};
use crate::config::{App, Environment, Verify};
use crate::names::{PersonId, RequestId};

/// What a person can do to a release while it is verifying.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Control {
    /// End the soak now; the release goes ahead without being verified.
    Complete(PersonId),
    /// Stop verifying and roll back to the last verified release.
    RollBack(PersonId),
}

/// The soaks running in this process, by request, each listening for a
/// [`Control`].
#[derive(Default)]
pub(super) struct Soaks {
    running: Mutex<HashMap<RequestId, mpsc::UnboundedSender<Control>>>,
}

impl Soaks {
    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<RequestId, mpsc::UnboundedSender<Control>>> {
        self.running.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Registers a soak; the guard unregisters it when the soak ends.
    fn register(self: &Arc<Self>, id: RequestId) -> (SoakGuard, mpsc::UnboundedReceiver<Control>) {
        let (tx, rx) = mpsc::unbounded_channel();
        self.map().insert(id, tx);
        (
            SoakGuard {
                soaks: self.clone(),
                id,
            },
            rx,
        )
    }

    /// Hands `control` to the soak of `id`; false when none runs here.
    pub(super) fn send(&self, id: RequestId, control: Control) -> bool {
        self.map()
            .get(&id)
            .is_some_and(|tx| tx.send(control).is_ok())
    }
}

struct SoakGuard {
    soaks: Arc<Soaks>,
    id: RequestId,
}

impl Drop for SoakGuard {
    fn drop(&mut self) {
        self.soaks.map().remove(&self.id);
    }
}

/// How a soak ended, before the engine acts on it.
enum Ended {
    /// Every check held for the whole soak.
    Proven(Request),
    /// Someone completed it early.
    Completed(Request, PersonId),
    /// A check failed past its tolerance.
    Failed(Request, String),
    /// Someone rolled it back.
    RolledBack(Request, PersonId),
}

impl Engine {
    /// Proves a rolled-out release: with no `[verify]` for the environment
    /// it is done at once; otherwise its checks run for the soak time (the
    /// time left, after a restart) and it ends verified, rolled back, or
    /// failed.
    pub(super) async fn verify_release(
        &self,
        verifying: Request,
        app: &App,
        env: &Environment,
        workload: &Workload,
    ) -> Result<Request, EngineError> {
        let actor = verifying.requester.to_string();
        let Some(plan) = env.verify.as_ref() else {
            return self.apply(&verifying, Event::Verified, &actor).await;
        };
        // Listening before the checks start, so a `complete` sent as soon as
        // the message says "verifying" finds the soak.
        let (guard, controls) = self.soaks.register(verifying.id);
        let request = if verifying.verification.is_none() {
            let started = Event::VerifyStarted {
                soak_ms: millis(plan.soak),
                checks: plan.checks.iter().map(|c| c.name.clone()).collect(),
            };
            self.apply(&verifying, started, "gantry").await?
        } else {
            verifying
        };
        let vars = ProbeVars {
            app: app.name.to_string(),
            env: env.name.to_string(),
            namespace: workload.namespace.clone(),
        };
        let ended = self.soak(request, plan, &vars, controls).await?;
        drop(guard);
        match ended {
            Ended::Proven(request) => self.apply(&request, Event::Proven, "gantry").await,
            Ended::Completed(request, person) => {
                // Audited as the person who completed it.
                let by = person.to_string();
                self.apply(&request, Event::Completed { person }, &by).await
            }
            Ended::Failed(request, why) => {
                self.verification_failed(request, app, env, workload, why, false)
                    .await
            }
            Ended::RolledBack(request, person) => {
                let why = format!("{person} rolled it back during its verification");
                self.verification_failed(request, app, env, workload, why, true)
                    .await
            }
        }
    }

    /// Probes each check when it is due until the soak is covered with
    /// every check passing, a check fails past its tolerance, or someone
    /// steps in.
    async fn soak(
        &self,
        mut request: Request,
        plan: &Verify,
        vars: &ProbeVars,
        mut controls: mpsc::UnboundedReceiver<Control>,
    ) -> Result<Ended, EngineError> {
        let covered_before = request.verification.as_ref().map_or(0, |v| v.covered_ms);
        let started = Instant::now();
        let mut due: Vec<Instant> = vec![started; plan.checks.len()];
        self.show_progress(&request, None).await;
        let mut listening = true;
        loop {
            let covered = covered_before.saturating_add(millis(started.elapsed()));
            let Some(soak_ms) = request.verification.as_ref().map(|v| v.soak_ms) else {
                let why = "its verification was never started (a defect)".to_owned();
                return Ok(Ended::Failed(request, why));
            };
            let left = soak_ms.saturating_sub(covered);
            let next_probe = due.iter().min().copied().unwrap_or(started);
            let soak_end = Instant::now() + Duration::from_millis(left);
            let wake = if left > 0 {
                next_probe.min(soak_end)
            } else {
                next_probe
            };
            tokio::select! {
                control = controls.recv(), if listening => match control {
                    Some(Control::Complete(person)) => return Ok(Ended::Completed(request, person)),
                    Some(Control::RollBack(person)) => return Ok(Ended::RolledBack(request, person)),
                    None => listening = false,
                },
                () = tokio::time::sleep_until(wake) => {}
            }
            let now = Instant::now();
            // Once the soak is covered, every check is probed again: the
            // verdict rests on fresh probes, taken after the whole soak.
            let soak_over = covered_before.saturating_add(millis(started.elapsed())) >= soak_ms;
            let round: Vec<usize> = (0..plan.checks.len())
                .filter(|i| soak_over || due[*i] <= now)
                .collect();
            if round.is_empty() {
                continue;
            }
            let probes = round.iter().map(|i| {
                let check = &plan.checks[*i];
                async move { (check, self.ports.prober.probe(check, vars).await) }
            });
            let results: Vec<(&crate::config::VerifyCheck, Probed)> =
                futures::future::join_all(probes).await;
            for i in &round {
                due[*i] = Instant::now() + plan.checks[*i].interval;
            }
            let (passed, failed): (Vec<_>, Vec<_>) = results.iter().partition(|(_, p)| p.ok);
            let named =
                |list: Vec<&(&crate::config::VerifyCheck, Probed)>| -> Vec<(String, String)> {
                    list.into_iter()
                        .map(|(c, p)| (c.name.clone(), p.value.clone()))
                        .collect()
                };
            let event = Event::Probed {
                covered_ms: covered_before.saturating_add(millis(started.elapsed())),
                passed: named(passed),
                failed: named(failed),
            };
            request = self.apply(&request, event, "gantry").await?;
            let standings = request
                .verification
                .as_ref()
                .map(|v| v.checks.as_slice())
                .unwrap_or_default();
            let broken = plan.checks.iter().find_map(|check| {
                let s = standings.iter().find(|s| s.name == check.name)?;
                (s.failing_in_a_row > check.failures_tolerated).then(|| {
                    format!(
                        "check {} failed: {} ({} failed probe(s) in a row, {} tolerated)",
                        check.name, s.last, s.failing_in_a_row, check.failures_tolerated
                    )
                })
            });
            if let Some(why) = broken {
                return Ok(Ended::Failed(request, why));
            }
            let proven = request
                .verification
                .as_ref()
                .is_some_and(|v| v.covered_ms >= v.soak_ms && all_passing(v));
            if proven {
                return Ok(Ended::Proven(request));
            }
        }
    }

    /// A release that did not hold: rolled back to the last verified
    /// release where the environment rolls back automatically (or someone
    /// asked), else failed where it stands.
    async fn verification_failed(
        &self,
        request: Request,
        app: &App,
        env: &Environment,
        workload: &Workload,
        why: String,
        asked: bool,
    ) -> Result<Request, EngineError> {
        self.audit(
            "gantry",
            "verify.failed",
            &request.id.to_string(),
            Some(env.name.as_str()),
            serde_json::json!({ "reason": why }),
        )?;
        self.store.flush_group().await?;
        if !env.auto_rollback && !asked {
            let actor = request.requester.to_string();
            return self
                .apply(&request, Event::Fail { reason: why }, &actor)
                .await;
        }
        let what = format!("rollback of {} after its verification", request.id);
        self.put_back(request, app, env, workload, why, &what).await
    }

    /// Asks the soak of `id` to end as `control` says; false when no soak
    /// of that request runs in this process.
    pub fn control_soak(&self, id: RequestId, control: Control) -> bool {
        self.soaks.send(id, control)
    }
}

fn all_passing(v: &Verification) -> bool {
    v.checks.iter().all(|c| c.probes > 0 && c.ok)
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// The verifying line of a progress message: `verifying: 2/2 checks ok,
/// 3m left`, then each check's latest probe.
pub(super) fn verifying_text(request: &Request) -> String {
    let Some(v) = &request.verification else {
        return "rolled out; checking what runs…".to_owned();
    };
    let left = Duration::from_secs(v.left_ms().div_ceil(1000));
    let mut text = format!(
        "verifying: {}/{} checks ok, {} left",
        v.passing(),
        v.checks.len(),
        humantime::format_duration(left)
    );
    for c in &v.checks {
        let (mark, seen) = match (c.probes, c.ok) {
            (0, _) => ("…", "not probed yet".to_owned()),
            (_, true) => ("✓", c.last.clone()),
            (_, false) => ("✗", c.last.clone()),
        };
        text.push_str(&format!("\n  {mark} {}: {seen}", c.name));
    }
    text
}

/// What a finished release's verification says, for its last message.
pub(super) fn verified_text(request: &Request) -> Option<String> {
    let v = request.verification.as_ref()?;
    if let Some(person) = &v.completed_by {
        return Some(format!(
            "not verified: {person} completed it early, {} before its soak ended",
            humantime::format_duration(Duration::from_secs(v.left_ms().div_ceil(1000)))
        ));
    }
    v.verified_at?;
    Some(format!(
        "verified: {} check(s) held for {}",
        v.checks.len(),
        humantime::format_duration(Duration::from_millis(v.soak_ms))
    ))
}
