//! What the fake GitHub holds: repositories with real history (commits
//! that snapshot their files), pull requests, CI results, workflow runs,
//! deployments and comments, plus the faults a test asked for.

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant, SystemTime};

use serde_json::Value;
use sha2::{Digest as _, Sha256};

/// A commit: its parent, message and the whole file tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FakeCommit {
    /// Full SHA.
    pub sha: String,
    /// Parent SHA, none for the first commit.
    pub parent: Option<String>,
    /// Commit message.
    pub message: String,
    /// Path → content.
    pub files: BTreeMap<String, String>,
}

/// A tag: lightweight (straight to a commit) or annotated (a tag object).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FakeTag {
    /// Points at a commit.
    Light(String),
    /// A tag object with its own SHA, pointing at a commit.
    Annotated {
        /// The tag object's SHA.
        object: String,
        /// The commit.
        commit: String,
    },
}

/// A pull request; its head follows its branch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FakePull {
    /// Number.
    pub number: u64,
    /// Title.
    pub title: String,
    /// Head branch.
    pub head: String,
    /// Base branch.
    pub base: String,
    /// Author (login, id).
    pub author: (String, u64),
    /// `open` or `closed`.
    pub state: String,
    /// The merge commit, once merged.
    pub merge_sha: Option<String>,
}

/// A check run or a commit status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FakeCheck {
    /// Id.
    pub id: u64,
    /// Commit.
    pub sha: String,
    /// Name (check run) or context (status).
    pub name: String,
    /// `queued`, `in_progress`, `completed` (check runs) or `pending`,
    /// `success`, `failure`, `error` (statuses).
    pub status: String,
    /// `success`, `failure`, … once completed (check runs).
    pub conclusion: Option<String>,
    /// True for a commit status, false for a check run.
    pub legacy: bool,
}

/// How a workflow's dispatched runs end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FakeWorkflow {
    /// Conclusion of each run.
    pub conclusion: String,
    /// How long each run takes.
    pub duration: Duration,
}

/// A workflow run.
#[derive(Debug, Clone, PartialEq)]
pub struct FakeRun {
    /// Id.
    pub id: u64,
    /// Workflow file.
    pub workflow: String,
    /// Branch or tag it ran on.
    pub branch: String,
    /// Commit.
    pub sha: String,
    /// Inputs it was dispatched with.
    pub inputs: Value,
    /// When it started.
    pub started: Instant,
    /// `created_at`, RFC 3339.
    pub created_at: String,
    /// How long it takes.
    pub duration: Duration,
    /// How it ends.
    pub conclusion: String,
}

impl FakeRun {
    /// `queued`, `in_progress` or `completed`, by elapsed time.
    pub fn status(&self) -> &'static str {
        if self.started.elapsed() >= self.duration {
            "completed"
        } else {
            "in_progress"
        }
    }
}

/// A deployment and its statuses.
#[derive(Debug, Clone, PartialEq)]
pub struct FakeDeployment {
    /// Id.
    pub id: u64,
    /// Commit.
    pub sha: String,
    /// Environment name.
    pub environment: String,
    /// The payload Gantry sent.
    pub payload: Value,
    /// Every status posted: (state, log_url, description).
    pub statuses: Vec<(String, String, String)>,
}

/// An issue or pull request comment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FakeComment {
    /// Id.
    pub id: u64,
    /// Issue or pull request number.
    pub number: u64,
    /// Author login.
    pub author: String,
    /// Every body it has had, oldest first.
    pub versions: Vec<String>,
    /// Reaction contents added to it.
    pub reactions: Vec<String>,
}

/// One repository.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FakeRepo {
    /// Repository id.
    pub id: u64,
    /// Default branch.
    pub default_branch: String,
    /// Branch → commit.
    pub branches: BTreeMap<String, String>,
    /// Tag → target.
    pub tags: BTreeMap<String, FakeTag>,
    /// Commits by SHA.
    pub commits: BTreeMap<String, FakeCommit>,
    /// Pull requests by number.
    pub pulls: BTreeMap<u64, FakePull>,
    /// Check runs and statuses.
    pub checks: Vec<FakeCheck>,
    /// Workflows by file name.
    pub workflows: BTreeMap<String, FakeWorkflow>,
    /// Workflow runs.
    pub runs: Vec<FakeRun>,
    /// Deployments.
    pub deployments: Vec<FakeDeployment>,
    /// Comments.
    pub comments: Vec<FakeComment>,
}

/// A fault served instead of the next matching answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FakeFault {
    /// This status with a GitHub error body.
    Status(u16),
    /// A secondary rate limit: 403 with `retry-after`.
    RateLimit {
        /// Seconds to wait.
        retry_after: u64,
    },
}

/// One recorded request.
#[derive(Debug, Clone, PartialEq)]
pub struct FakeRequest {
    /// Method.
    pub method: String,
    /// Path and query.
    pub path: String,
    /// JSON body, `Null` when none.
    pub body: Value,
    /// The status answered.
    pub status: u16,
}

/// The App, when App auth is on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FakeApp {
    /// App id.
    pub app_id: u64,
    /// The one installation.
    pub installation: u64,
    /// How long minted tokens live.
    pub token_ttl: Duration,
}

/// Everything.
#[derive(Debug, Default)]
pub struct Hub {
    /// `owner/name` → repository.
    pub repos: BTreeMap<String, FakeRepo>,
    /// Tokens accepted, with their expiry (unix seconds; `None` = never).
    pub tokens: BTreeMap<String, Option<u64>>,
    /// App auth.
    pub app: Option<FakeApp>,
    /// Installation tokens minted, in order.
    pub minted: Vec<String>,
    /// Faults for the next requests whose path contains the key.
    pub faults: VecDeque<(String, FakeFault)>,
    /// A change committed just before the next contents write, to make it conflict.
    pub race_next_write: Option<(String, String, String, String)>,
    /// Every request.
    pub requests: Vec<FakeRequest>,
    /// Ids, numbers and SHAs.
    pub counter: u64,
}

/// Unix seconds now.
pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// RFC 3339 time now.
pub fn timestamp() -> String {
    humantime::format_rfc3339_seconds(SystemTime::now()).to_string()
}

impl Hub {
    /// A fresh id.
    pub fn next_id(&mut self) -> u64 {
        self.counter += 1;
        self.counter
    }

    /// A fresh 40-hex SHA derived from `seed`.
    pub fn new_sha(&mut self, seed: &str) -> String {
        let n = self.next_id();
        hex::encode(Sha256::digest(format!("{seed}/{n}").as_bytes()))[..40].to_owned()
    }

    /// Commits `files` (merged into the branch's tree) on `branch` of `repo`.
    pub fn commit(
        &mut self,
        repo: &str,
        branch: &str,
        message: &str,
        files: &[(&str, &str)],
    ) -> String {
        let sha = self.new_sha(&format!("{repo}/{branch}/{message}"));
        let id = self.next_id();
        let entry = self
            .repos
            .entry(repo.to_owned())
            .or_insert_with(|| FakeRepo {
                id,
                default_branch: branch.to_owned(),
                ..FakeRepo::default()
            });
        let parent = entry.branches.get(branch).cloned();
        let mut tree = parent
            .as_ref()
            .and_then(|p| entry.commits.get(p))
            .map(|c| c.files.clone())
            .unwrap_or_default();
        for (path, content) in files {
            tree.insert((*path).to_owned(), (*content).to_owned());
        }
        entry.commits.insert(
            sha.clone(),
            FakeCommit {
                sha: sha.clone(),
                parent,
                message: message.to_owned(),
                files: tree,
            },
        );
        entry.branches.insert(branch.to_owned(), sha.clone());
        sha
    }

    /// The repository, if it exists.
    pub fn repo(&self, repo: &str) -> Option<&FakeRepo> {
        self.repos.get(repo)
    }

    /// The repository, mutably.
    pub fn repo_mut(&mut self, repo: &str) -> Option<&mut FakeRepo> {
        self.repos.get_mut(repo)
    }
}

/// A blob SHA for file content (stable, opaque; GitHub's is SHA-1 of the blob).
pub fn blob_sha(content: &str) -> String {
    hex::encode(Sha256::digest(
        format!("blob {}\0{content}", content.len()).as_bytes(),
    ))[..40]
        .to_owned()
}

impl FakeRepo {
    /// A commit by full SHA or unique prefix of at least 7 digits.
    pub fn find_commit(&self, hex: &str) -> Option<&FakeCommit> {
        if hex.len() == 40 {
            return self.commits.get(hex);
        }
        if hex.len() < 7 {
            return None;
        }
        let mut found = self.commits.values().filter(|c| c.sha.starts_with(hex));
        let first = found.next()?;
        found.next().is_none().then_some(first)
    }

    /// The head commit of a pull request (its branch tip, or the merge).
    pub fn pull_head(&self, pull: &FakePull) -> String {
        self.branches.get(&pull.head).cloned().unwrap_or_default()
    }
}
