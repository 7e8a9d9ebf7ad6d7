//! Whether Gantry can do its work now: the store answers, and every outside
//! system the config names answers with Gantry's credentials. `/readyz`
//! reports it.

use std::collections::BTreeSet;
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use super::{Engine, PortError};

/// How long one outside system may take to answer a readiness check.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(3);

/// One thing checked and, when it failed, why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    /// What was checked, e.g. `kubernetes sandbox` or `registry ghcr.io`.
    pub name: String,
    /// `None` when it answered.
    pub problem: Option<String>,
}

type Probe<'a> = Pin<Box<dyn Future<Output = Vec<(String, Result<(), PortError>)>> + Send + 'a>>;

fn one<'a>(
    name: String,
    probe: impl Future<Output = Result<(), PortError>> + Send + 'a,
) -> (String, Probe<'a>) {
    let label = name.clone();
    (label, Box::pin(async move { vec![(name, probe.await)] }))
}

impl Engine {
    /// Checks the store, the Git host (reading the first app's repository),
    /// each registry and cluster context the config uses, and each chat
    /// platform, all at once, each bounded by [`PROBE_TIMEOUT`].
    pub async fn readiness(&self) -> Vec<Check> {
        let mut checks = vec![Check {
            name: "store".into(),
            problem: self
                .store
                .lock("readiness-probe")
                .err()
                .map(|e| e.to_string()),
        }];
        let ports = &self.ports;
        let mut probes: Vec<(String, Probe<'_>)> = Vec::new();
        if let Some(app) = self.config.apps().first() {
            let repo = app.repo.to_string();
            probes.push(one("git host".into(), async move {
                ports.forge.ping(&repo).await
            }));
        }
        let mut registries = BTreeSet::new();
        for app in self.config.apps() {
            let host = app.registry();
            if registries.insert(host.to_owned()) {
                let image = app.image.clone();
                probes.push(one(format!("registry {host}"), async move {
                    ports.registry.ping(&image).await
                }));
            }
        }
        let mut contexts = BTreeSet::new();
        for env in self.config.envs() {
            let context = env.cluster.kube_context();
            if contexts.insert(context.clone()) {
                probes.push(one(format!("kubernetes {context}"), async move {
                    ports.cluster.ping(&context).await
                }));
            }
        }
        probes.push(("chat".into(), Box::pin(ports.notifier.ping())));
        let answers =
            futures::future::join_all(probes.into_iter().map(|(label, probe)| async move {
                (label, tokio::time::timeout(PROBE_TIMEOUT, probe).await)
            }))
            .await;
        for (label, answer) in answers {
            match answer {
                Ok(results) => checks.extend(results.into_iter().map(|(name, result)| Check {
                    name,
                    problem: result.err().map(|e| e.to_string()),
                })),
                Err(_) => checks.push(Check {
                    name: label,
                    problem: Some(format!(
                        "no answer within {}",
                        humantime::format_duration(PROBE_TIMEOUT)
                    )),
                }),
            }
        }
        checks
    }
}
