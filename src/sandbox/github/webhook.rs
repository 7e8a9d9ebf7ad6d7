//! Webhooks from the fake GitHub: payloads in the shape of GitHub's
//! recorded examples (`tests/data/github/`), signed with
//! `X-Hub-Signature-256` and posted like GitHub's `Hookshot` does.

use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;

use super::pulls::pull_json;
use super::routes::{repository, user};
use super::state::timestamp;
use super::FakeGithub;

/// `sha256=<hex HMAC-SHA256 of body>`, as GitHub signs deliveries.
pub fn signature(secret: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// What Gantry answered a delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivered {
    /// HTTP status.
    pub status: u16,
    /// Response body.
    pub body: String,
}

/// Posts `body` as event `event` with delivery id `delivery`, signed with
/// `secret` (`None` = unsigned), to `url`.
pub async fn deliver(
    url: &str,
    secret: Option<&str>,
    event: &str,
    delivery: &str,
    body: &[u8],
) -> Result<Delivered, String> {
    let client = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(10))
        .build()
        .map_err(|e| e.to_string())?;
    let mut request = client
        .post(url)
        .header("content-type", "application/json")
        .header("user-agent", "GitHub-Hookshot/fake")
        .header("x-github-event", event)
        .header("x-github-delivery", delivery)
        .header("x-github-hook-id", "1")
        .body(body.to_vec());
    if let Some(secret) = secret {
        request = request.header("x-hub-signature-256", signature(secret, body));
    }
    let response = request.send().await.map_err(|e| e.to_string())?;
    let status = response.status().as_u16();
    let body = response.text().await.map_err(|e| e.to_string())?;
    Ok(Delivered { status, body })
}

impl FakeGithub {
    /// An `issue_comment` payload for comment `comment` on pull request
    /// `number` (which must exist), with `action` (`created`, `edited`,
    /// `deleted`) and the comment's latest body.
    pub fn issue_comment_event(
        &self,
        repo: &str,
        number: u64,
        comment: u64,
        action: &str,
        author: (&str, u64),
    ) -> Value {
        let base = self.url();
        let hub = self.hub();
        let body = hub
            .repo(repo)
            .and_then(|r| r.comments.iter().find(|c| c.id == comment))
            .and_then(|c| c.versions.last().cloned())
            .unwrap_or_default();
        let title = hub
            .repo(repo)
            .and_then(|r| r.pulls.get(&number))
            .map(|p| p.title.clone())
            .unwrap_or_default();
        let pr_author = hub
            .repo(repo)
            .and_then(|r| r.pulls.get(&number))
            .map_or(("someone".to_owned(), 1), |p| p.author.clone());
        let mut payload = json!({
            "action": action,
            "issue": {
                "url": format!("{base}/repos/{repo}/issues/{number}"),
                "repository_url": format!("{base}/repos/{repo}"),
                "html_url": format!("{base}/{repo}/pull/{number}"),
                "id": 2_000_000 + number,
                "node_id": format!("I_{number}"),
                "number": number,
                "title": title,
                "user": user(&base, &pr_author.0, pr_author.1),
                "labels": [],
                "state": "open",
                "locked": false,
                "assignee": null,
                "assignees": [],
                "comments": 1,
                "created_at": timestamp(),
                "updated_at": timestamp(),
                "closed_at": null,
                "author_association": "CONTRIBUTOR",
                "body": null,
                "pull_request": {
                    "url": format!("{base}/repos/{repo}/pulls/{number}"),
                    "html_url": format!("{base}/{repo}/pull/{number}"),
                    "diff_url": format!("{base}/{repo}/pull/{number}.diff"),
                    "patch_url": format!("{base}/{repo}/pull/{number}.patch"),
                    "merged_at": null,
                },
            },
            "comment": {
                "url": format!("{base}/repos/{repo}/issues/comments/{comment}"),
                "html_url": format!("{base}/{repo}/pull/{number}#issuecomment-{comment}"),
                "issue_url": format!("{base}/repos/{repo}/issues/{number}"),
                "id": comment,
                "node_id": format!("IC_{comment}"),
                "user": user(&base, author.0, author.1),
                "created_at": timestamp(),
                "updated_at": timestamp(),
                "author_association": "CONTRIBUTOR",
                "body": body,
            },
            "repository": repository(&base, &hub, repo),
            "sender": user(&base, author.0, author.1),
        });
        if action == "edited" {
            payload["changes"] = json!({ "body": { "from": body } });
        }
        payload
    }

    /// A `pull_request` payload with `action` (`closed`, `opened`, …) for
    /// pull request `number` as it is now, sent by `sender`.
    pub fn pull_request_event(
        &self,
        repo: &str,
        number: u64,
        action: &str,
        sender: (&str, u64),
    ) -> Value {
        let base = self.url();
        let hub = self.hub();
        json!({
            "action": action,
            "number": number,
            "pull_request": pull_json(&hub, &base, repo, number).unwrap_or(Value::Null),
            "repository": repository(&base, &hub, repo),
            "sender": user(&base, sender.0, sender.1),
        })
    }

    /// A `pull_request_review` `submitted` payload with review `state`
    /// (`approved`, `changes_requested`, `commented`) on `commit`.
    pub fn review_event(
        &self,
        repo: &str,
        number: u64,
        reviewer: (&str, u64),
        state: &str,
        commit: &str,
    ) -> Value {
        let base = self.url();
        let hub = self.hub();
        json!({
            "action": "submitted",
            "review": {
                "id": 3_000_000 + number,
                "user": user(&base, reviewer.0, reviewer.1),
                "body": null,
                "commit_id": commit,
                "submitted_at": timestamp(),
                "state": state,
                "html_url": format!("{base}/{repo}/pull/{number}#pullrequestreview-1"),
            },
            "pull_request": pull_json(&hub, &base, repo, number).unwrap_or(Value::Null),
            "repository": repository(&base, &hub, repo),
            "sender": user(&base, reviewer.0, reviewer.1),
        })
    }
}

/// A `ping` payload, as GitHub sends when a hook is created.
pub fn ping() -> Value {
    json!({
        "zen": "Design for failure.",
        "hook_id": 1,
        "hook": { "type": "Repository", "id": 1, "active": true, "events": ["issue_comment", "pull_request"] },
    })
}
