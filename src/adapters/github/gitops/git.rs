//! The plain-git transport: clone, edit, commit, push, with the `git`
//! program run directly (never through a shell), for config repositories on
//! any host.
//!
//! A push rejected because the branch moved (`non-fast-forward`, `fetch
//! first`) is answered by fetching the branch, resetting to it, re-applying
//! the edit and pushing again, a bounded number of times.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use super::{GitopsChange, ATTEMPTS};
use crate::config::{Gitops, Secret};
use crate::engine::ports::PortError;

/// Called before each push with the attempt number (1, 2, …).
pub type PushHook = Arc<dyn Fn(u32) + Send + Sync>;

/// How Gantry runs `git`.
#[derive(Clone)]
pub struct GitTransport {
    program: PathBuf,
    author_name: String,
    author_email: String,
    timeout: Duration,
    before_push: Option<PushHook>,
    /// `Authorization` header value for https git hosts, when a token is set.
    authorization: Option<Secret>,
}

impl Default for GitTransport {
    fn default() -> Self {
        GitTransport {
            program: PathBuf::from("git"),
            author_name: "Gantry".into(),
            author_email: "gantry@localhost".into(),
            timeout: Duration::from_secs(120),
            before_push: None,
            authorization: None,
        }
    }
}

/// A scratch directory removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new() -> Result<Scratch, PortError> {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let dir = std::env::temp_dir().join(format!(
            "gantry-gitops-{}-{}-{nanos}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir)
            .map_err(|e| PortError::Unavailable(format!("cannot create {}: {e}", dir.display())))?;
        Ok(Scratch(dir))
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

struct Output {
    ok: bool,
    stdout: String,
    stderr: String,
}

impl GitTransport {
    /// Commits as `name <email>`.
    pub fn author(mut self, name: &str, email: &str) -> GitTransport {
        self.author_name = name.to_owned();
        self.author_email = email.to_owned();
        self
    }

    /// Limits each git command to `timeout`.
    pub fn timeout(mut self, timeout: Duration) -> GitTransport {
        self.timeout = timeout;
        self
    }

    /// Runs `hook` before each push; tests use it to move the branch at
    /// exactly the wrong moment.
    pub fn before_push(mut self, hook: PushHook) -> GitTransport {
        self.before_push = Some(hook);
        self
    }

    async fn git(&self, dir: Option<&Path>, args: &[&str]) -> Result<Output, PortError> {
        let mut command = tokio::process::Command::new(&self.program);
        if let Some(dir) = dir {
            command.current_dir(dir);
        }
        command
            .args(args)
            .env("GIT_TERMINAL_PROMPT", "0")
            .env("GIT_SSH_COMMAND", "ssh -o BatchMode=yes")
            .env("GIT_ALLOW_PROTOCOL", "https:http:ssh:git:file")
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("LC_ALL", "C")
            .env_remove("GIT_CONFIG_COUNT")
            .stdin(std::process::Stdio::null())
            .kill_on_drop(true);
        if let Some(header) = &self.authorization {
            // Through the environment, which only this user can read, never
            // on the command line, which every user can.
            command
                .env("GIT_CONFIG_COUNT", "1")
                .env("GIT_CONFIG_KEY_0", "http.extraHeader")
                .env("GIT_CONFIG_VALUE_0", header.expose());
        }
        let run = command.output();
        let output = tokio::time::timeout(self.timeout, run)
            .await
            .map_err(|_| {
                PortError::Timeout(format!(
                    "git {} took longer than {}s",
                    args.first().unwrap_or(&""),
                    self.timeout.as_secs()
                ))
            })?
            .map_err(|e| PortError::Unavailable(format!("cannot run git: {e}")))?;
        Ok(Output {
            ok: output.status.success(),
            stdout: String::from_utf8_lossy(&output.stdout).trim().to_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).trim().to_owned(),
        })
    }

    async fn must(&self, dir: Option<&Path>, args: &[&str]) -> Result<String, PortError> {
        let out = self.git(dir, args).await?;
        if out.ok {
            Ok(out.stdout)
        } else {
            Err(PortError::Unavailable(format!(
                "git {} failed: {}",
                args.first().unwrap_or(&""),
                last_lines(&out.stderr)
            )))
        }
    }

    /// Clones `url`, applies `edit` to `gitops.path` on `gitops.branch`,
    /// commits with `message` and pushes.
    pub async fn commit(
        &self,
        url: &str,
        gitops: &Gitops,
        edit: &(dyn Fn(&str) -> Result<String, PortError> + Sync),
        message: &str,
    ) -> Result<GitopsChange, PortError> {
        if url.starts_with('-') || gitops.branch.starts_with('-') {
            return Err(PortError::Invalid(
                "a git URL or branch may not start with `-`".into(),
            ));
        }
        let this = match &gitops.token {
            Some(token) => {
                let token = token
                    .resolve()
                    .map_err(|e| PortError::Unauthorised(format!("the GitOps git token: {e}")))?;
                self.with_token(&token)
            }
            None => self.clone(),
        };
        this.commit_with(url, gitops, edit, message).await
    }

    /// A transport that sends `token` as HTTP Basic credentials
    /// (`x-access-token:<token>`, which GitHub, GitLab and Gitea accept).
    pub fn with_token(&self, token: &Secret) -> GitTransport {
        use base64::Engine as _;
        let basic = base64::engine::general_purpose::STANDARD
            .encode(format!("x-access-token:{}", token.expose()));
        GitTransport {
            authorization: Some(Secret::new(format!("Authorization: Basic {basic}"))),
            ..self.clone()
        }
    }

    async fn commit_with(
        &self,
        url: &str,
        gitops: &Gitops,
        edit: &(dyn Fn(&str) -> Result<String, PortError> + Sync),
        message: &str,
    ) -> Result<GitopsChange, PortError> {
        let scratch = Scratch::new()?;
        let dir = scratch.0.join("repo");
        let dir_text = dir.to_string_lossy().into_owned();
        let branch = gitops.branch.as_str();
        self.must(
            None,
            &[
                "clone",
                "--quiet",
                "--no-tags",
                "--single-branch",
                "--depth",
                "20",
                "--branch",
                branch,
                "--",
                url,
                &dir_text,
            ],
        )
        .await?;
        let author_name = format!("user.name={}", self.author_name);
        let author_email = format!("user.email={}", self.author_email);
        let target = format!("HEAD:refs/heads/{branch}");
        for attempt in 1..=ATTEMPTS {
            let file = inside(&dir, &gitops.path)?;
            let text = std::fs::read_to_string(&file).map_err(|e| {
                PortError::NotFound(format!("cannot read {} on {branch}: {e}", gitops.path))
            })?;
            let new = edit(&text)?;
            if new == text {
                let head = self.must(Some(&dir), &["rev-parse", "HEAD"]).await?;
                return Ok(GitopsChange {
                    commit: head,
                    url: None,
                    pull_request: None,
                    changed: false,
                });
            }
            std::fs::write(&file, new.as_bytes()).map_err(|e| {
                PortError::Unavailable(format!("cannot write {}: {e}", gitops.path))
            })?;
            self.must(Some(&dir), &["add", "--", &gitops.path]).await?;
            self.must(
                Some(&dir),
                &[
                    "-c",
                    &author_name,
                    "-c",
                    &author_email,
                    "-c",
                    "core.hooksPath=/dev/null",
                    "-c",
                    "commit.gpgSign=false",
                    "commit",
                    "--quiet",
                    "--no-verify",
                    "-m",
                    message,
                ],
            )
            .await?;
            if let Some(hook) = &self.before_push {
                hook(attempt);
            }
            let pushed = self
                .git(Some(&dir), &["push", "--porcelain", "origin", &target])
                .await?;
            if pushed.ok {
                let head = self.must(Some(&dir), &["rev-parse", "HEAD"]).await?;
                return Ok(GitopsChange {
                    commit: head,
                    url: None,
                    pull_request: None,
                    changed: true,
                });
            }
            let said = format!("{}\n{}", pushed.stdout, pushed.stderr);
            let moved = [
                "non-fast-forward",
                "fetch first",
                "[rejected]",
                "stale info",
            ]
            .iter()
            .any(|m| said.contains(m));
            if !moved {
                return Err(PortError::Unavailable(format!(
                    "git push to {branch} failed: {}",
                    last_lines(&said)
                )));
            }
            // Someone pushed first: start again from their commit.
            self.must(
                Some(&dir),
                &["fetch", "--quiet", "--no-tags", "origin", branch],
            )
            .await?;
            self.must(Some(&dir), &["reset", "--quiet", "--hard", "FETCH_HEAD"])
                .await?;
        }
        Err(PortError::Conflict(format!(
            "{branch} kept moving; gave up after {ATTEMPTS} pushes"
        )))
    }
}

/// `path` inside the checkout, refusing anything (a symlink, say) that
/// leads out of it.
fn inside(dir: &Path, path: &str) -> Result<PathBuf, PortError> {
    let file = dir.join(path);
    let real = std::fs::canonicalize(&file).map_err(|e| {
        PortError::NotFound(format!("no file {path} in the config repository: {e}"))
    })?;
    let root = std::fs::canonicalize(dir)
        .map_err(|e| PortError::Unavailable(format!("checkout vanished: {e}")))?;
    if !real.starts_with(&root) || real.starts_with(root.join(".git")) {
        return Err(PortError::Invalid(format!(
            "{path} leads outside the config repository"
        )));
    }
    Ok(real)
}

fn last_lines(text: &str) -> String {
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    lines[lines.len().saturating_sub(3)..].join(" / ")
}
