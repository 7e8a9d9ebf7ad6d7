//! Following a rollout with a watch, never by polling.
//!
//! One LIST gives the Deployments and a resourceVersion; one WATCH from that
//! version streams every change. A watch that drops is reopened from the last
//! version seen, so no change is missed; a `410 Gone` (the version is too old)
//! starts over with a fresh LIST. Reopening lasts as long as the rollout is
//! followed; the pauses between quiet reopens are the shared policy's
//! jittered backoff, from 100 ms up to 5 s.

use std::collections::BTreeMap;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Pod;
use kube::core::params::{ListParams, WatchParams};
use kube::core::{ObjectList, Request, WatchEvent};

use super::deploy::deployments;
use super::rollout::{assess, progress, stuck_pods, total, Assessment};
use super::transport::{status_error, Op, Transport};
use crate::adapters::retry::Policy;
use crate::engine::ports::{PortError, ProgressSink, RolloutOutcome, RolloutProgress, Workload};

/// How long one watch request asks the server to stay open.
const WATCH_SECONDS: u32 = 290;
/// Pauses before reopening a watch that closed with no events (only the
/// delays are used: reopening ends with the rollout).
const REOPEN: Policy = Policy {
    attempts: u32::MAX,
    base_delay: Duration::from_millis(100),
    max_delay: Duration::from_secs(5),
    max_retry_after: Duration::ZERO,
};

/// What Gantry knows of the rollout so far.
struct Tracker {
    deployments: BTreeMap<String, Deployment>,
    version: String,
    shown: Option<RolloutProgress>,
    /// Under GitOps: the container and the image the sync must apply first.
    awaiting: Option<(String, String)>,
}

/// Where the whole workload stands.
enum Verdict {
    Running,
    Complete,
    Failed(String),
}

impl Tracker {
    /// Where the rollout stands; reports the figures when they moved.
    fn check(&mut self, sink: ProgressSink<'_>) -> Verdict {
        if !self.unsynced().is_empty() {
            return Verdict::Running;
        }
        let mut complete = true;
        for (name, d) in &self.deployments {
            match assess(d) {
                Assessment::Failed(why) => {
                    return Verdict::Failed(format!("Deployment {name}: {why}"))
                }
                Assessment::Complete => {}
                Assessment::Unobserved | Assessment::Progressing(_) => complete = false,
            }
        }
        let figures = total(self.deployments.values().map(progress));
        if self.shown.as_ref() != Some(&figures) {
            sink(figures.clone());
            self.shown = Some(figures);
        }
        if complete {
            Verdict::Complete
        } else {
            Verdict::Running
        }
    }

    /// Deployments whose template does not yet name the awaited image.
    fn unsynced(&self) -> Vec<&str> {
        let Some((container, image)) = &self.awaiting else {
            return Vec::new();
        };
        self.deployments
            .iter()
            .filter(|(_, d)| template_image(d, container) != Some(image.as_str()))
            .map(|(name, _)| name.as_str())
            .collect()
    }

    fn waiting_for(&self) -> String {
        let unsynced = self.unsynced();
        if let (false, Some((_, image))) = (unsynced.is_empty(), &self.awaiting) {
            return format!(
                "{}: the GitOps sync has not applied {image} yet",
                unsynced.join(", ")
            );
        }
        let waits: Vec<String> = self
            .deployments
            .iter()
            .filter_map(|(name, d)| match assess(d) {
                Assessment::Progressing(why) => Some(format!("{name}: {why}")),
                Assessment::Unobserved => Some(format!("{name}: change not yet observed")),
                _ => None,
            })
            .collect();
        waits.join("; ")
    }
}

/// The image `container` runs in the Deployment's pod template.
fn template_image<'d>(d: &'d Deployment, container: &str) -> Option<&'d str> {
    d.spec
        .as_ref()?
        .template
        .spec
        .as_ref()?
        .containers
        .iter()
        .find(|c| c.name == container)?
        .image
        .as_deref()
}

fn selector(w: &Workload) -> Option<String> {
    match w.deployments.as_slice() {
        [only] => Some(format!("metadata.name={only}")),
        _ => None,
    }
}

async fn relist(t: &Transport, w: &Workload, tracker: &mut Tracker) -> Result<(), PortError> {
    let mut params = ListParams::default();
    if let Some(fields) = selector(w) {
        params = params.fields(&fields);
    }
    let request = deployments(&w.namespace)
        .list(&params)
        .map_err(|e| PortError::Invalid(e.to_string()))?;
    let op = Op::namespaced("list", "deployments.apps", &w.namespace);
    let list: ObjectList<Deployment> = t.json(&op, request).await?;
    let mut found: BTreeMap<String, Deployment> = list
        .items
        .into_iter()
        .filter_map(|d| Some((d.metadata.name.clone()?, d)))
        .collect();
    tracker.deployments.clear();
    for name in &w.deployments {
        let d = found.remove(name).ok_or_else(|| {
            PortError::NotFound(format!(
                "Deployment {name} not found in namespace {}",
                w.namespace
            ))
        })?;
        tracker.deployments.insert(name.clone(), d);
    }
    tracker.version = list.metadata.resource_version.unwrap_or_default();
    Ok(())
}

/// Follows the rollout until it completes, fails, or `limit` passes.
pub async fn follow(
    t: &Transport,
    w: &Workload,
    sink: ProgressSink<'_>,
    limit: Duration,
) -> Result<RolloutOutcome, PortError> {
    let mut tracker = Tracker {
        deployments: BTreeMap::new(),
        version: String::new(),
        shown: None,
        awaiting: w
            .awaiting_image
            .clone()
            .map(|image| (w.container.clone(), image)),
    };
    let watched = tokio::time::timeout(limit, watch(t, w, sink, &mut tracker)).await;
    let why = match watched {
        Ok(Err(e)) => return Err(e),
        Ok(Ok(None)) => return Ok(RolloutOutcome::Complete),
        Ok(Ok(Some(why))) => why,
        Err(_) => format!(
            "the rollout did not finish within {} (Gantry's limit): {}",
            humantime::format_duration(limit),
            tracker.waiting_for()
        ),
    };
    let pods = match stuck(t, w, &tracker).await {
        Ok(pods) if !pods.is_empty() => format!("; {}", pods.join("; ")),
        _ => String::new(),
    };
    Ok(RolloutOutcome::Failed(format!("{why}{pods}")))
}

/// Watches until the rollout ends: `None` = complete, `Some(why)` = failed.
async fn watch(
    t: &Transport,
    w: &Workload,
    sink: ProgressSink<'_>,
    tracker: &mut Tracker,
) -> Result<Option<String>, PortError> {
    relist(t, w, tracker).await?;
    let op = Op::namespaced("watch", "deployments.apps", &w.namespace);
    // Reopens since the last event heard.
    let mut quiet = 0;
    loop {
        match tracker.check(sink) {
            Verdict::Failed(why) => return Ok(Some(why)),
            Verdict::Complete => return Ok(None),
            Verdict::Running => {}
        }
        let mut params = WatchParams::default().timeout(WATCH_SECONDS);
        if let Some(fields) = selector(w) {
            params = params.fields(&fields);
        }
        let request = deployments(&w.namespace)
            .watch(&params, &tracker.version)
            .map_err(|e| PortError::Invalid(e.to_string()))?;
        let mut events = match t.watch::<Deployment>(&op, request).await {
            Ok(events) => Box::pin(events),
            // The API server or the network is briefly away: try again.
            Err(PortError::Unavailable(_) | PortError::Timeout(_)) => {
                quiet += 1;
                tokio::time::sleep(REOPEN.delay(quiet)).await;
                continue;
            }
            Err(e) => return Err(e),
        };
        let mut heard = false;
        while let Some(event) = events.next().await {
            let changed = match event {
                Ok(WatchEvent::Added(d) | WatchEvent::Modified(d)) => {
                    heard = true;
                    seen(tracker, &d);
                    let name = d.metadata.name.clone().unwrap_or_default();
                    tracker
                        .deployments
                        .get_mut(&name)
                        .map(|slot| *slot = d)
                        .is_some()
                }
                Ok(WatchEvent::Deleted(d)) => {
                    seen(tracker, &d);
                    let name = d.metadata.name.clone().unwrap_or_default();
                    if tracker.deployments.contains_key(&name) {
                        return Ok(Some(format!(
                            "Deployment {name} was deleted during the rollout"
                        )));
                    }
                    false
                }
                Ok(WatchEvent::Bookmark(b)) => {
                    tracker.version = b.metadata.resource_version;
                    false
                }
                Ok(WatchEvent::Error(e)) if e.code == 410 => {
                    relist(t, w, tracker).await?;
                    break;
                }
                Ok(WatchEvent::Error(e)) => {
                    return Err(status_error(&op, e.code, &e.message, "Gantry", None))
                }
                // The connection dropped: reopen from the last version seen.
                Err(_) => break,
            };
            if changed {
                match tracker.check(sink) {
                    Verdict::Failed(why) => return Ok(Some(why)),
                    Verdict::Complete => return Ok(None),
                    Verdict::Running => {}
                }
            }
        }
        if heard {
            quiet = 0;
        } else {
            quiet += 1;
            tokio::time::sleep(REOPEN.delay(quiet)).await;
        }
    }
}

fn seen(tracker: &mut Tracker, d: &Deployment) {
    if let Some(version) = &d.metadata.resource_version {
        tracker.version.clone_from(version);
    }
}

/// Pods of unfinished Deployments that crash-loop or cannot pull their image.
async fn stuck(t: &Transport, w: &Workload, tracker: &Tracker) -> Result<Vec<String>, PortError> {
    let mut found = Vec::new();
    for d in tracker.deployments.values() {
        if assess(d) == Assessment::Complete {
            continue;
        }
        let labels = d
            .spec
            .as_ref()
            .and_then(|s| s.selector.match_labels.as_ref())
            .map(|m| {
                m.iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect::<Vec<_>>()
                    .join(",")
            })
            .unwrap_or_default();
        let request = Request::new(format!("/api/v1/namespaces/{}/pods", w.namespace))
            .list(&ListParams::default().labels(&labels))
            .map_err(|e| PortError::Invalid(e.to_string()))?;
        let op = Op::namespaced("list", "pods", &w.namespace);
        let pods: ObjectList<Pod> = t.json(&op, request).await?;
        found.extend(stuck_pods(&pods.items));
    }
    Ok(found)
}
