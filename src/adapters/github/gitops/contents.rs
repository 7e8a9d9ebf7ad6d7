//! The GitHub transport: the contents API, and pull requests in
//! pull-request mode.
//!
//! `GET /repos/{repo}/contents/{path}?ref={branch}` gives the file (base64)
//! and its blob SHA; `PUT` of the same path with that `sha` commits the new
//! content, and answers `409` when the file changed meanwhile, after which
//! Gantry reads again and re-applies its edit.

use std::time::Duration;

use base64::Engine as _;
use http::Method;
use serde::Deserialize;
use serde_json::json;

use super::{GitopsChange, ATTEMPTS};
use crate::adapters::github::api::{encode, encode_path};
use crate::adapters::github::{refs, GithubForge};
use crate::config::Gitops;
use crate::engine::ports::PortError;
use crate::names::Sha;

#[derive(Deserialize)]
struct File {
    sha: String,
    #[serde(default)]
    content: String,
    #[serde(default)]
    encoding: String,
}

#[derive(Deserialize)]
struct Written {
    commit: WrittenCommit,
}

#[derive(Deserialize)]
struct WrittenCommit {
    sha: String,
    #[serde(default)]
    html_url: Option<String>,
}

#[derive(Deserialize)]
struct Ref {
    object: RefObject,
}

#[derive(Deserialize)]
struct RefObject {
    sha: String,
}

#[derive(Deserialize)]
struct Pull {
    number: u64,
    html_url: String,
    head: PullHead,
}

#[derive(Deserialize)]
struct PullHead {
    sha: String,
}

#[derive(Deserialize)]
struct Merged {
    sha: String,
}

/// Commits the edit to `gitops.branch`, directly or through a pull request.
pub async fn commit(
    forge: &GithubForge,
    repo: &str,
    gitops: &Gitops,
    edit: &(dyn Fn(&str) -> Result<String, PortError> + Sync),
    message: &str,
) -> Result<GitopsChange, PortError> {
    if !gitops.pull_request {
        return put(forge, repo, &gitops.path, &gitops.branch, edit, message).await;
    }
    let base = head(forge, repo, &gitops.branch).await?;
    let work = work_branch(message);
    create_branch(forge, repo, &work, &base).await?;
    let change = put(forge, repo, &gitops.path, &work, edit, message).await?;
    if !change.changed {
        let _ = delete_branch(forge, repo, &work).await;
        return Ok(GitopsChange {
            commit: base,
            ..change
        });
    }
    let pull = open_pull(forge, repo, &work, &gitops.branch, message).await?;
    wait_for_checks(forge, repo, &pull).await?;
    let title = message.lines().next().unwrap_or("Deploy");
    let merged: Merged = forge
        .api()
        .send(
            repo,
            Method::PUT,
            &format!("/repos/{repo}/pulls/{}/merge", pull.number),
            Some(&json!({ "merge_method": "merge", "sha": pull.head.sha, "commit_title": title })),
        )
        .await
        .map_err(|e| match e {
            PortError::Unauthorised(why) | PortError::Unavailable(why)
                if why.contains("405") || why.contains("not mergeable") =>
            {
                PortError::Conflict(format!("{} cannot be merged: {why}", pull.html_url))
            }
            other => other,
        })?
        .json("a merge")?;
    let _ = delete_branch(forge, repo, &work).await;
    Ok(GitopsChange {
        commit: merged.sha,
        url: Some(pull.html_url),
        pull_request: Some(pull.number),
        changed: true,
    })
}

/// Reads, edits and writes the file on `branch`, re-reading after a 409.
async fn put(
    forge: &GithubForge,
    repo: &str,
    path: &str,
    branch: &str,
    edit: &(dyn Fn(&str) -> Result<String, PortError> + Sync),
    message: &str,
) -> Result<GitopsChange, PortError> {
    let url = format!("/repos/{repo}/contents/{}", encode_path(path));
    for _ in 0..ATTEMPTS {
        let file: File = forge
            .api()
            .get(repo, &format!("{url}?ref={}", encode(branch)))
            .await
            .map_err(|e| match e {
                PortError::NotFound(_) => {
                    PortError::NotFound(format!("no file {path} on {branch} in {repo}"))
                }
                other => other,
            })?
            .json("a file")?;
        if file.encoding != "base64" {
            return Err(PortError::Invalid(format!(
                "{path} in {repo} came as `{}`; it is too large for the contents API",
                file.encoding
            )));
        }
        let packed: String = file.content.split_whitespace().collect();
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(packed)
            .map_err(|e| PortError::Unavailable(format!("{path} is not valid base64: {e}")))?;
        let text = String::from_utf8(bytes)
            .map_err(|_| PortError::Invalid(format!("{path} in {repo} is not UTF-8 text")))?;
        let new = edit(&text)?;
        if new == text {
            return Ok(GitopsChange {
                commit: head(forge, repo, branch).await?,
                url: None,
                pull_request: None,
                changed: false,
            });
        }
        let body = json!({
            "message": message,
            "content": base64::engine::general_purpose::STANDARD.encode(new.as_bytes()),
            "sha": file.sha,
            "branch": branch,
        });
        match forge.api().send(repo, Method::PUT, &url, Some(&body)).await {
            Ok(answer) => {
                let written: Written = answer.json("a contents update")?;
                return Ok(GitopsChange {
                    commit: written.commit.sha,
                    url: written.commit.html_url,
                    pull_request: None,
                    changed: true,
                });
            }
            // The file changed since it was read: read it again.
            Err(PortError::Conflict(_)) => continue,
            Err(e) => return Err(e),
        }
    }
    Err(PortError::Conflict(format!(
        "{path} on {branch} in {repo} kept changing; gave up after {ATTEMPTS} attempts"
    )))
}

async fn head(forge: &GithubForge, repo: &str, branch: &str) -> Result<String, PortError> {
    let found: Ref = forge
        .api()
        .get(
            repo,
            &format!("/repos/{repo}/git/ref/heads/{}", encode_path(branch)),
        )
        .await?
        .json("a branch")?;
    Ok(found.object.sha)
}

/// `gantry/<digest prefix>`: one branch per image, reused if it exists.
fn work_branch(message: &str) -> String {
    let hex: String = message
        .split("sha256:")
        .nth(1)
        .unwrap_or("")
        .chars()
        .take_while(char::is_ascii_hexdigit)
        .take(12)
        .collect();
    format!(
        "gantry/deploy-{}",
        if hex.is_empty() { "image" } else { &hex }
    )
}

async fn create_branch(
    forge: &GithubForge,
    repo: &str,
    name: &str,
    sha: &str,
) -> Result<(), PortError> {
    let body = json!({ "ref": format!("refs/heads/{name}"), "sha": sha });
    match forge
        .api()
        .send(
            repo,
            Method::POST,
            &format!("/repos/{repo}/git/refs"),
            Some(&body),
        )
        .await
    {
        Ok(_) => Ok(()),
        // "Reference already exists": Gantry's own branch from an earlier try; reset it.
        Err(PortError::Invalid(_)) => forge
            .api()
            .send(
                repo,
                Method::PATCH,
                &format!("/repos/{repo}/git/refs/heads/{}", encode_path(name)),
                Some(&json!({ "sha": sha, "force": true })),
            )
            .await
            .map(|_| ()),
        Err(e) => Err(e),
    }
}

async fn delete_branch(forge: &GithubForge, repo: &str, name: &str) -> Result<(), PortError> {
    forge
        .api()
        .send(
            repo,
            Method::DELETE,
            &format!("/repos/{repo}/git/refs/heads/{}", encode_path(name)),
            None,
        )
        .await
        .map(|_| ())
}

async fn open_pull(
    forge: &GithubForge,
    repo: &str,
    head: &str,
    base: &str,
    message: &str,
) -> Result<Pull, PortError> {
    let title = message.lines().next().unwrap_or("Deploy");
    let body = json!({ "title": title, "head": head, "base": base, "body": message });
    match forge
        .api()
        .send(
            repo,
            Method::POST,
            &format!("/repos/{repo}/pulls"),
            Some(&body),
        )
        .await
    {
        Ok(answer) => answer.json("a new pull request"),
        // "A pull request already exists": use it.
        Err(PortError::Invalid(_)) => {
            let owner = repo.split('/').next().unwrap_or(repo);
            let path = format!(
                "/repos/{repo}/pulls?state=open&head={}&base={}",
                encode(&format!("{owner}:{head}")),
                encode(base)
            );
            let open: Vec<Pull> = forge.api().get(repo, &path).await?.json("pull requests")?;
            open.into_iter().next().ok_or_else(|| {
                PortError::Conflict(format!("cannot open a pull request from {head}"))
            })
        }
        Err(e) => Err(e),
    }
}

/// Waits until the pull request's head is green. A repository with no CI
/// at all is merged after a short grace period.
async fn wait_for_checks(forge: &GithubForge, repo: &str, pull: &Pull) -> Result<(), PortError> {
    let polling = forge.polling();
    let sha = Sha::new(&pull.head.sha)
        .map_err(|_| PortError::Unavailable(format!("bad head SHA on {}", pull.html_url)))?;
    let started = tokio::time::Instant::now();
    let grace = polling
        .every
        .saturating_mul(3)
        .max(Duration::from_millis(1));
    loop {
        let checks = refs::checks(forge, repo, &sha).await?;
        if !checks.failed.is_empty() {
            return Err(PortError::Invalid(format!(
                "checks failed on {}: {}; it was left open",
                pull.html_url,
                checks.failed.join(", ")
            )));
        }
        if checks.passed() || (checks.total == 0 && started.elapsed() >= grace) {
            return Ok(());
        }
        if started.elapsed() >= polling.checks_timeout {
            return Err(PortError::Timeout(format!(
                "checks on {} did not finish within {}s",
                pull.html_url,
                polling.checks_timeout.as_secs()
            )));
        }
        tokio::time::sleep(polling.every).await;
    }
}
