//! Refs to commits, and whether a commit's CI passed.

use serde::Deserialize;

use super::api::encode_path;
use super::{sha, GithubForge};
use crate::command::GitRef;
use crate::engine::ports::PortError;
use crate::names::Sha;

#[derive(Deserialize)]
struct GitObject {
    sha: String,
    r#type: String,
}

#[derive(Deserialize)]
struct GitRefAnswer {
    object: GitObject,
}

#[derive(Deserialize)]
struct AnnotatedTag {
    object: GitObject,
}

#[derive(Deserialize)]
struct Commit {
    sha: String,
}

fn missing(repo: &str, reference: &GitRef) -> PortError {
    PortError::NotFound(format!(
        "no branch, tag or commit named `{reference}` in {repo}"
    ))
}

/// Resolves a ref to the full SHA of a commit, or says plainly that none exists.
pub(super) async fn resolve(
    forge: &GithubForge,
    repo: &str,
    reference: &GitRef,
) -> Result<Sha, PortError> {
    match reference {
        GitRef::PullRequest(number) => Ok(forge.pull_request(repo, *number).await?.head_sha),
        GitRef::Name(name) => match named(forge, repo, name).await? {
            Some(found) => Ok(found),
            None => Err(missing(repo, reference)),
        },
        GitRef::FullSha(hex) | GitRef::ShortSha(hex) => {
            if let Some(found) = commit(forge, repo, hex).await? {
                return Ok(found);
            }
            // Seven or more hex digits may also be a branch or tag name.
            match named(forge, repo, hex).await? {
                Some(found) => Ok(found),
                None => Err(missing(repo, reference)),
            }
        }
    }
}

/// `GET /repos/{repo}/commits/{sha}`: 404 or 422 when there is no such commit.
async fn commit(forge: &GithubForge, repo: &str, hex: &str) -> Result<Option<Sha>, PortError> {
    match forge
        .api()
        .get(repo, &format!("/repos/{repo}/commits/{hex}"))
        .await
    {
        Ok(answer) => {
            let found: Commit = answer.json("a commit")?;
            let full = sha(&found.sha)?;
            // Never let a lookup by SHA return some other commit.
            if full.as_str().starts_with(hex) {
                Ok(Some(full))
            } else {
                Err(PortError::Unavailable(format!(
                    "GitHub answered {} for commit {hex}",
                    full.as_str()
                )))
            }
        }
        Err(PortError::NotFound(_)) | Err(PortError::Invalid(_)) => Ok(None),
        Err(e) => Err(e),
    }
}

/// A branch first, then a tag (following annotated tags to their commit).
async fn named(forge: &GithubForge, repo: &str, name: &str) -> Result<Option<Sha>, PortError> {
    for kind in ["heads", "tags"] {
        let path = format!("/repos/{repo}/git/ref/{kind}/{}", encode_path(name));
        let answer = match forge.api().get(repo, &path).await {
            Ok(answer) => answer,
            Err(PortError::NotFound(_)) => continue,
            Err(e) => return Err(e),
        };
        let mut object = answer.json::<GitRefAnswer>("a git ref")?.object;
        // An annotated tag points at a tag object; a tag may even point at a tag.
        for _ in 0..4 {
            if object.r#type != "tag" {
                break;
            }
            let tag = forge
                .api()
                .get(repo, &format!("/repos/{repo}/git/tags/{}", object.sha))
                .await?;
            object = tag.json::<AnnotatedTag>("an annotated tag")?.object;
        }
        if object.r#type != "commit" {
            return Err(PortError::Invalid(format!(
                "`{name}` in {repo} points at a {}, not a commit",
                object.r#type
            )));
        }
        return sha(&object.sha).map(Some);
    }
    Ok(None)
}

/// What a commit's CI says.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Checks {
    /// Check runs and statuses seen.
    pub total: usize,
    /// Ones still running.
    pub pending: usize,
    /// Names of the ones that failed.
    pub failed: Vec<String>,
}

impl Checks {
    /// Green: something ran, nothing is pending and nothing failed. A commit
    /// with no CI at all is not green, so `require_green_ci` fails closed.
    pub fn passed(&self) -> bool {
        self.total > 0 && self.pending == 0 && self.failed.is_empty()
    }
}

#[derive(Deserialize)]
struct CheckRuns {
    check_runs: Vec<CheckRun>,
}

#[derive(Deserialize)]
struct CheckRun {
    name: String,
    status: String,
    #[serde(default)]
    conclusion: Option<String>,
}

#[derive(Deserialize)]
struct CombinedStatus {
    total_count: usize,
    statuses: Vec<Status>,
}

#[derive(Deserialize)]
struct Status {
    context: String,
    state: String,
}

/// Check runs (GitHub Actions and Apps) and commit statuses (older CI).
pub(crate) async fn checks(
    forge: &GithubForge,
    repo: &str,
    sha: &Sha,
) -> Result<Checks, PortError> {
    let sha = sha.as_str();
    let runs: CheckRuns = forge
        .api()
        .get(
            repo,
            &format!("/repos/{repo}/commits/{sha}/check-runs?per_page=100"),
        )
        .await?
        .json("the check runs")?;
    let combined: CombinedStatus = forge
        .api()
        .get(
            repo,
            &format!("/repos/{repo}/commits/{sha}/status?per_page=100"),
        )
        .await?
        .json("the combined status")?;
    let mut checks = Checks::default();
    for run in runs.check_runs {
        checks.total += 1;
        if run.status != "completed" {
            checks.pending += 1;
            continue;
        }
        let ok = matches!(
            run.conclusion.as_deref(),
            Some("success" | "neutral" | "skipped")
        );
        if !ok {
            checks.failed.push(run.name);
        }
    }
    // With no statuses GitHub reports the combined state `pending`; only
    // statuses that exist count.
    if combined.total_count > 0 {
        for status in combined.statuses {
            checks.total += 1;
            match status.state.as_str() {
                "success" => {}
                "pending" => checks.pending += 1,
                _ => checks.failed.push(status.context),
            }
        }
    }
    Ok(checks)
}
