//! Builds: `workflow_dispatch`, then finding and following the run.
//!
//! A dispatch answers `204 No Content` without the run it created, so
//! Gantry lists the workflow's `workflow_dispatch` runs on that branch
//! before dispatching and takes the first run that was not there before.

use std::collections::{BTreeMap, BTreeSet};

use http::Method;
use serde::Deserialize;
use serde_json::json;

use super::api::encode;
use super::GithubForge;
use crate::command::GitRef;
use crate::engine::ports::{BuildOutcome, BuildRun, PortError};

#[derive(Debug, Deserialize)]
struct Runs {
    workflow_runs: Vec<Run>,
}

#[derive(Debug, Deserialize)]
struct Run {
    id: u64,
    status: Option<String>,
    conclusion: Option<String>,
    html_url: String,
}

/// The branch or tag to dispatch on: workflows run on refs, not commits.
async fn dispatch_ref(
    forge: &GithubForge,
    repo: &str,
    reference: &str,
) -> Result<String, PortError> {
    match GitRef::parse(reference).map_err(|e| PortError::Invalid(e.to_string()))? {
        GitRef::PullRequest(number) => Ok(forge.pull_request(repo, number).await?.head_ref),
        GitRef::Name(name) => Ok(name),
        GitRef::ShortSha(_) | GitRef::FullSha(_) => Err(PortError::Invalid(format!(
            "a workflow runs on a branch or tag, not on commit `{reference}`; build the branch instead"
        ))),
    }
}

async fn runs(
    forge: &GithubForge,
    repo: &str,
    workflow: &str,
    branch: &str,
) -> Result<Vec<Run>, PortError> {
    let path = format!(
        "/repos/{repo}/actions/workflows/{}/runs?event=workflow_dispatch&branch={}&per_page=50",
        encode(workflow),
        encode(branch)
    );
    let found: Runs = forge
        .api()
        .get(repo, &path)
        .await?
        .json("the workflow runs")?;
    Ok(found.workflow_runs)
}

/// Dispatches the workflow and returns the run it created.
pub(super) async fn start(
    forge: &GithubForge,
    repo: &str,
    workflow: &str,
    reference: &str,
    inputs: &BTreeMap<String, String>,
) -> Result<BuildRun, PortError> {
    let branch = dispatch_ref(forge, repo, reference).await?;
    let before: BTreeSet<u64> = runs(forge, repo, workflow, &branch)
        .await?
        .into_iter()
        .map(|r| r.id)
        .collect();
    let body = json!({ "ref": branch, "inputs": inputs });
    let path = format!(
        "/repos/{repo}/actions/workflows/{}/dispatches",
        encode(workflow)
    );
    let answer = forge
        .api()
        .send(repo, Method::POST, &path, Some(&body))
        .await
        .map_err(|e| match e {
            PortError::NotFound(_) => {
                PortError::NotFound(format!("no workflow `{workflow}` in {repo}"))
            }
            PortError::Invalid(why) => PortError::Invalid(format!(
                "GitHub refused to run {workflow} on {branch}: {why}"
            )),
            other => other,
        })?;
    // Newer GitHub versions may answer 200 with the run (`return_run_details`).
    if answer.status == http::StatusCode::OK {
        #[derive(Deserialize)]
        struct Details {
            workflow_run_id: u64,
            html_url: String,
        }
        if let Ok(details) = answer.json::<Details>("a dispatch") {
            return Ok(BuildRun {
                id: details.workflow_run_id,
                url: details.html_url,
            });
        }
    }
    let polling = forge.polling();
    let deadline = tokio::time::Instant::now() + polling.run_appears_within;
    loop {
        let mut fresh: Vec<Run> = runs(forge, repo, workflow, &branch)
            .await?
            .into_iter()
            .filter(|r| !before.contains(&r.id))
            .collect();
        fresh.sort_by_key(|r| r.id);
        if let Some(run) = fresh.into_iter().next() {
            return Ok(BuildRun {
                id: run.id,
                url: run.html_url,
            });
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(PortError::Timeout(format!(
                "{workflow} was dispatched on {branch} but no run appeared within {}s",
                polling.run_appears_within.as_secs()
            )));
        }
        tokio::time::sleep(polling.every).await;
    }
}

/// Polls the run until it completes.
pub(super) async fn follow(
    forge: &GithubForge,
    repo: &str,
    run: &BuildRun,
) -> Result<BuildOutcome, PortError> {
    let polling = forge.polling();
    let deadline = tokio::time::Instant::now() + polling.build_timeout;
    let path = format!("/repos/{repo}/actions/runs/{}", run.id);
    loop {
        let now: Run = forge.api().get(repo, &path).await?.json("a workflow run")?;
        if now.status.as_deref() == Some("completed") {
            return Ok(match now.conclusion.as_deref() {
                Some("success") => BuildOutcome::Success,
                Some("cancelled") => BuildOutcome::Cancelled,
                _ => BuildOutcome::Failure,
            });
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(PortError::Timeout(format!(
                "the build did not finish within {}s: {}",
                polling.build_timeout.as_secs(),
                run.url
            )));
        }
        tokio::time::sleep(polling.every).await;
    }
}
