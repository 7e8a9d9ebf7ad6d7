//! A fake GitHub REST API that octocrab talks to unmodified, for tests and
//! the sandbox.
//!
//! It keeps real state — repositories whose commits snapshot their files,
//! branches and tags (lightweight and annotated), pull requests whose head
//! follows their branch, check runs and commit statuses, workflows whose
//! dispatched runs complete after a set time, deployments and their
//! statuses, comments with every version and their reactions, the contents
//! API with its blob-SHA `409` — and speaks the documented paths, status
//! codes and JSON shapes. It records every request, serves faults on demand
//! (a `5xx`, or a secondary rate limit: `403` with `retry-after`), checks
//! credentials (a token, or a GitHub App's JWT and the installation tokens
//! it mints) and can send signed webhooks ([`webhook`]).

mod activity;
mod auth;
mod contents;
mod pulls;
mod routes;
pub mod state;
pub mod webhook;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::body::{to_bytes, Body};
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Router;
use serde_json::Value;

pub use state::{
    FakeApp, FakeComment, FakeCommit, FakeDeployment, FakeFault, FakePull, FakeRequest, FakeRun,
    FakeTag, FakeWorkflow, Hub,
};

use auth::{authorised, decode_segment};
use routes::{Call, Reply};
use state::FakeCheck;

/// A running fake GitHub.
#[derive(Clone)]
pub struct FakeGithub {
    hub: Arc<Mutex<Hub>>,
    /// Where it listens.
    pub addr: SocketAddr,
}

impl FakeGithub {
    /// Starts a fake on a free port of 127.0.0.1 that accepts `token`.
    pub async fn start(token: &str) -> std::io::Result<FakeGithub> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let fake = FakeGithub {
            hub: Arc::default(),
            addr,
        };
        fake.hub().tokens.insert(token.to_owned(), None);
        let app = Router::new().fallback(serve).with_state(fake.clone());
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(fake)
    }

    /// The API base URL, e.g. `http://127.0.0.1:4321`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The state, locked. A panic elsewhere cannot leave it half-written
    /// in a way that matters to a test, so a poisoned lock is used as is.
    pub fn hub(&self) -> MutexGuard<'_, Hub> {
        self.hub.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Commits `files` on `branch` (creating the repository and branch as
    /// needed) and returns the commit's SHA.
    pub fn commit(
        &self,
        repo: &str,
        branch: &str,
        message: &str,
        files: &[(&str, &str)],
    ) -> String {
        self.hub().commit(repo, branch, message, files)
    }

    /// Tags `sha`; an annotated tag gets its own tag object.
    pub fn tag(&self, repo: &str, name: &str, sha: &str, annotated: bool) {
        let mut hub = self.hub();
        let tag = if annotated {
            let object = hub.new_sha(&format!("tag/{name}"));
            FakeTag::Annotated {
                object,
                commit: sha.to_owned(),
            }
        } else {
            FakeTag::Light(sha.to_owned())
        };
        if let Some(r) = hub.repo_mut(repo) {
            r.tags.insert(name.to_owned(), tag);
        }
    }

    /// Opens pull request `number` from `head` into `base` by `author` (login, id).
    pub fn open_pull(&self, repo: &str, number: u64, head: &str, base: &str, author: (&str, u64)) {
        if let Some(r) = self.hub().repo_mut(repo) {
            r.pulls.insert(
                number,
                FakePull {
                    number,
                    title: format!("Change {head}"),
                    head: head.to_owned(),
                    base: base.to_owned(),
                    author: (author.0.to_owned(), author.1),
                    state: "open".into(),
                    merge_sha: None,
                },
            );
        }
    }

    /// Closes a pull request (without merging).
    pub fn close_pull(&self, repo: &str, number: u64) {
        if let Some(p) = self
            .hub()
            .repo_mut(repo)
            .and_then(|r| r.pulls.get_mut(&number))
        {
            p.state = "closed".into();
        }
    }

    /// Records a check run on `sha`; `conclusion` `None` = still running.
    pub fn check_run(&self, repo: &str, sha: &str, name: &str, conclusion: Option<&str>) {
        self.check(
            repo,
            sha,
            name,
            conclusion.map_or("in_progress", |_| "completed"),
            conclusion,
            false,
        );
    }

    /// Records a commit status (`pending`, `success`, `failure`, `error`).
    pub fn commit_status(&self, repo: &str, sha: &str, context: &str, state: &str) {
        self.check(repo, sha, context, state, None, true);
    }

    fn check(
        &self,
        repo: &str,
        sha: &str,
        name: &str,
        status: &str,
        conclusion: Option<&str>,
        legacy: bool,
    ) {
        let mut hub = self.hub();
        let id = hub.next_id();
        if let Some(r) = hub.repo_mut(repo) {
            r.checks
                .retain(|c| !(c.sha == sha && c.name == name && c.legacy == legacy));
            r.checks.push(FakeCheck {
                id,
                sha: sha.to_owned(),
                name: name.to_owned(),
                status: status.to_owned(),
                conclusion: conclusion.map(str::to_owned),
                legacy,
            });
        }
    }

    /// Declares workflow `file`: each dispatched run ends with `conclusion`
    /// (`success`, `failure`, `cancelled`) after `duration`.
    pub fn workflow(&self, repo: &str, file: &str, conclusion: &str, duration: Duration) {
        if let Some(r) = self.hub().repo_mut(repo) {
            r.workflows.insert(
                file.to_owned(),
                FakeWorkflow {
                    conclusion: conclusion.to_owned(),
                    duration,
                },
            );
        }
    }

    /// Turns on GitHub App auth: `app_id`, one installation, tokens living `ttl`.
    pub fn enable_app(&self, app_id: u64, installation: u64, ttl: Duration) {
        self.hub().app = Some(FakeApp {
            app_id,
            installation,
            token_ttl: ttl,
        });
    }

    /// A person's comment on pull request `number`; returns its id.
    pub fn user_comment(&self, repo: &str, number: u64, login: &str, body: &str) -> u64 {
        let mut hub = self.hub();
        let id = hub.next_id();
        if let Some(r) = hub.repo_mut(repo) {
            r.comments.push(FakeComment {
                id,
                number,
                author: login.to_owned(),
                versions: vec![body.to_owned()],
                reactions: Vec::new(),
            });
        }
        id
    }

    /// The next `count` requests whose path contains `path` get `fault`.
    pub fn fault(&self, path: &str, count: usize, fault: FakeFault) {
        let mut hub = self.hub();
        for _ in 0..count {
            hub.faults.push_back((path.to_owned(), fault.clone()));
        }
    }

    /// Just before the next contents write, someone else commits `content`
    /// to `path` on `branch`, so that write meets a moved file (409).
    pub fn race_next_write(&self, repo: &str, branch: &str, path: &str, content: &str) {
        self.hub().race_next_write =
            Some((repo.into(), branch.into(), path.into(), content.into()));
    }

    /// Every request so far.
    pub fn requests(&self) -> Vec<FakeRequest> {
        self.hub().requests.clone()
    }

    /// The tip of a branch.
    pub fn branch(&self, repo: &str, branch: &str) -> Option<String> {
        self.hub().repo(repo)?.branches.get(branch).cloned()
    }

    /// A commit by SHA.
    pub fn commit_of(&self, repo: &str, sha: &str) -> Option<FakeCommit> {
        self.hub().repo(repo)?.commits.get(sha).cloned()
    }

    /// A file at a branch's tip.
    pub fn file(&self, repo: &str, branch: &str, path: &str) -> Option<String> {
        let hub = self.hub();
        let r = hub.repo(repo)?;
        r.commits
            .get(r.branches.get(branch)?)?
            .files
            .get(path)
            .cloned()
    }

    /// Comments in a repository.
    pub fn comments(&self, repo: &str) -> Vec<FakeComment> {
        self.hub()
            .repo(repo)
            .map(|r| r.comments.clone())
            .unwrap_or_default()
    }

    /// Deployments in a repository.
    pub fn deployments(&self, repo: &str) -> Vec<FakeDeployment> {
        self.hub()
            .repo(repo)
            .map(|r| r.deployments.clone())
            .unwrap_or_default()
    }

    /// Pull requests in a repository.
    pub fn pulls(&self, repo: &str) -> Vec<FakePull> {
        self.hub()
            .repo(repo)
            .map(|r| r.pulls.values().cloned().collect())
            .unwrap_or_default()
    }

    /// Polls `done` every 10 ms until it holds or `limit` passes; returns
    /// whether it held. For tests that wait on work Gantry does in the background.
    pub async fn wait_until(&self, limit: Duration, done: impl Fn(&Hub) -> bool) -> bool {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            if done(&self.hub()) {
                return true;
            }
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

async fn serve(State(fake): State<FakeGithub>, request: Request<Body>) -> Response {
    let (parts, body) = request.into_parts();
    let bytes = to_bytes(body, 8 * 1024 * 1024).await.unwrap_or_default();
    let body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    let path = parts.uri.path().to_owned();
    let segments: Vec<String> = path
        .split('/')
        .filter(|s| !s.is_empty())
        .map(decode_segment)
        .collect();
    let query: BTreeMap<String, String> = parts
        .uri
        .query()
        .and_then(|q| serde_urlencoded::from_str(q).ok())
        .unwrap_or_default();
    let authorization = parts
        .headers
        .get("authorization")
        .and_then(|v| v.to_str().ok());
    let base = fake.url();
    let mut hub = fake.hub();
    let fault = hub
        .faults
        .iter()
        .position(|(p, _)| path.contains(p.as_str()))
        .and_then(|i| hub.faults.remove(i))
        .map(|(_, f)| f);
    let reply = match fault {
        Some(FakeFault::Status(status)) => Reply::error(status, "Server Error"),
        Some(FakeFault::RateLimit { retry_after }) => {
            let mut reply = Reply::error(
                403,
                "You have exceeded a secondary rate limit. Please wait a few minutes before you try again.",
            );
            reply.headers.push(("retry-after", retry_after.to_string()));
            reply
        }
        None if !authorised(&hub, &segments, authorization) => Reply::error(401, "Bad credentials"),
        None => {
            let call = Call {
                method: parts.method.as_str(),
                segments,
                query,
                body: &body,
                base: &base,
            };
            routes::route(&mut hub, &call)
        }
    };
    hub.requests.push(FakeRequest {
        method: parts.method.to_string(),
        path: parts
            .uri
            .path_and_query()
            .map_or(path.clone(), |p| p.to_string()),
        body,
        status: reply.status,
    });
    drop(hub);
    let status = StatusCode::from_u16(reply.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = match reply.body {
        Some(json) => (status, axum::Json(json)).into_response(),
        None => status.into_response(),
    };
    for (name, value) in reply.headers {
        if let Ok(value) = HeaderValue::from_str(&value) {
            response.headers_mut().insert(name, value);
        }
    }
    response.headers_mut().insert(
        "x-github-api-version-selected",
        HeaderValue::from_static("2022-11-28"),
    );
    response
}
