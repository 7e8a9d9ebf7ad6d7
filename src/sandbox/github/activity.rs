//! The fake's App, CI, Actions, deployment and comment endpoints.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::routes::{user, Call, Reply};
use super::state::{timestamp, unix_now, FakeComment, FakeDeployment, FakeRun, Hub};

/// `POST /app/installations/{id}/access_tokens` (JWT-authenticated).
pub fn mint_token(hub: &mut Hub, _call: &Call<'_>, id: &str) -> Reply {
    let Some(app) = hub.app.clone() else {
        return Reply::not_found();
    };
    if id != app.installation.to_string() {
        return Reply::not_found();
    }
    let n = hub.next_id();
    let token = format!("ghs_fake{n:012}");
    let expires = unix_now() + app.token_ttl.as_secs();
    hub.tokens.insert(token.clone(), Some(expires));
    hub.minted.push(token.clone());
    let at = std::time::UNIX_EPOCH + Duration::from_secs(expires);
    Reply::json(
        201,
        json!({
            "token": token,
            "expires_at": humantime::format_rfc3339_seconds(at).to_string(),
            "permissions": { "contents": "write", "deployments": "write", "issues": "write", "actions": "write" },
            "repository_selection": "all",
        }),
    )
}

/// `GET /repos/{repo}/installation` (JWT-authenticated).
pub fn installation(hub: &Hub, call: &Call<'_>, full: &str) -> Reply {
    let Some(app) = &hub.app else {
        return Reply::not_found();
    };
    let owner = full.split('/').next().unwrap_or(full);
    Reply::json(
        200,
        json!({
            "id": app.installation,
            "app_id": app.app_id,
            "account": user(call.base, owner, 1),
            "target_type": "Organization",
        }),
    )
}

/// `GET /repos/{repo}/commits/{sha}/check-runs`.
pub fn check_runs(hub: &Hub, full: &str, sha: &str) -> Reply {
    let runs: Vec<Value> = hub
        .repo(full)
        .map(|r| {
            r.checks
                .iter()
                .filter(|c| !c.legacy && c.sha == sha)
                .map(|c| {
                    json!({
                        "id": c.id,
                        "head_sha": c.sha,
                        "name": c.name,
                        "status": c.status,
                        "conclusion": c.conclusion,
                    })
                })
                .collect()
        })
        .unwrap_or_default();
    Reply::json(
        200,
        json!({ "total_count": runs.len(), "check_runs": runs }),
    )
}

/// `GET /repos/{repo}/commits/{sha}/status`: `pending` when there are none.
pub fn combined_status(hub: &Hub, call: &Call<'_>, full: &str, sha: &str) -> Reply {
    let statuses: Vec<(String, String)> = hub
        .repo(full)
        .map(|r| {
            r.checks
                .iter()
                .filter(|c| c.legacy && c.sha == sha)
                .map(|c| (c.name.clone(), c.status.clone()))
                .collect()
        })
        .unwrap_or_default();
    let state = if statuses.iter().any(|(_, s)| s == "failure" || s == "error") {
        "failure"
    } else if statuses.is_empty() || statuses.iter().any(|(_, s)| s == "pending") {
        "pending"
    } else {
        "success"
    };
    let list: Vec<Value> = statuses
        .iter()
        .map(|(context, state)| json!({ "context": context, "state": state }))
        .collect();
    Reply::json(
        200,
        json!({
            "state": state,
            "sha": sha,
            "total_count": list.len(),
            "statuses": list,
            "repository": { "full_name": full },
            "commit_url": format!("{}/repos/{full}/commits/{sha}", call.base),
        }),
    )
}

fn run_json(call: &Call<'_>, full: &str, run: &FakeRun) -> Value {
    let status = run.status();
    json!({
        "id": run.id,
        "name": run.workflow,
        "path": format!(".github/workflows/{}", run.workflow),
        "head_branch": run.branch,
        "head_sha": run.sha,
        "event": "workflow_dispatch",
        "status": status,
        "conclusion": (status == "completed").then(|| run.conclusion.clone()),
        "run_number": run.id,
        "created_at": run.created_at,
        "url": format!("{}/repos/{full}/actions/runs/{}", call.base, run.id),
        "html_url": format!("{}/{full}/actions/runs/{}", call.base, run.id),
    })
}

/// Actions, deployments and comments under `/repos/{repo}/…`.
pub fn route(hub: &mut Hub, call: &Call<'_>, full: &str, rest: &[&str]) -> Reply {
    match (call.method, rest) {
        ("POST", ["actions", "workflows", file, "dispatches"]) => dispatch(hub, call, full, file),
        ("GET", ["actions", "workflows", file, "runs"]) => {
            let runs: Vec<Value> = hub
                .repo(full)
                .map(|r| {
                    r.runs
                        .iter()
                        .rev()
                        .filter(|run| run.workflow == *file)
                        .filter(|run| call.query.get("branch").is_none_or(|b| &run.branch == b))
                        .map(|run| run_json(call, full, run))
                        .collect()
                })
                .unwrap_or_default();
            Reply::json(
                200,
                json!({ "total_count": runs.len(), "workflow_runs": runs }),
            )
        }
        ("GET", ["actions", "runs", id]) => {
            let found = hub
                .repo(full)
                .and_then(|r| r.runs.iter().find(|run| run.id.to_string() == *id))
                .map(|run| run_json(call, full, run));
            found.map_or_else(Reply::not_found, |run| Reply::json(200, run))
        }
        ("POST", ["deployments"]) => create_deployment(hub, call, full),
        ("POST", ["deployments", id, "statuses"]) => deployment_status(hub, call, full, id),
        ("GET", ["deployments"]) => {
            let list: Vec<Value> = hub
                .repo(full)
                .map(|r| {
                    r.deployments
                        .iter()
                        .map(|d| deployment_json(call, full, d))
                        .collect()
                })
                .unwrap_or_default();
            Reply::json(200, Value::Array(list))
        }
        ("POST", ["issues", n, "comments"]) => create_comment(hub, call, full, n),
        ("PATCH", ["issues", "comments", id]) => edit_comment(hub, call, full, id),
        ("POST", ["issues", "comments", id, "reactions"]) => react(hub, call, full, id),
        _ => Reply::not_found(),
    }
}

fn dispatch(hub: &mut Hub, call: &Call<'_>, full: &str, file: &str) -> Reply {
    let Some(branch) = call.str("ref").map(str::to_owned) else {
        return Reply::error(422, "Invalid request: \"ref\" wasn't supplied.");
    };
    let id = hub.next_id();
    let Some(repo) = hub.repo_mut(full) else {
        return Reply::not_found();
    };
    let Some(workflow) = repo.workflows.get(file).cloned() else {
        return Reply::not_found();
    };
    let Some(sha) = repo.branches.get(&branch).cloned() else {
        return Reply::error(422, &format!("No ref found for: {branch}"));
    };
    repo.runs.push(FakeRun {
        id,
        workflow: file.to_owned(),
        branch,
        sha,
        inputs: call.body.get("inputs").cloned().unwrap_or(Value::Null),
        started: Instant::now(),
        created_at: timestamp(),
        duration: workflow.duration,
        conclusion: workflow.conclusion,
    });
    Reply::empty(204)
}

fn deployment_json(call: &Call<'_>, full: &str, d: &FakeDeployment) -> Value {
    json!({
        "id": d.id,
        "node_id": format!("DE_{}", d.id),
        "url": format!("{}/repos/{full}/deployments/{}", call.base, d.id),
        "sha": d.sha,
        "ref": d.sha,
        "task": "deploy",
        "payload": d.payload,
        "environment": d.environment,
        "description": null,
        "creator": user(call.base, "gantry[bot]", 9_000_001),
        "created_at": timestamp(),
        "statuses_url": format!("{}/repos/{full}/deployments/{}/statuses", call.base, d.id),
    })
}

fn create_deployment(hub: &mut Hub, call: &Call<'_>, full: &str) -> Reply {
    let (Some(r), Some(env)) = (call.str("ref"), call.str("environment")) else {
        return Reply::error(422, "Invalid request: ref and environment are required");
    };
    let id = hub.next_id();
    let Some(repo) = hub.repo_mut(full) else {
        return Reply::not_found();
    };
    let Some(sha) = repo
        .find_commit(r)
        .map(|c| c.sha.clone())
        .or_else(|| repo.branches.get(r).cloned())
    else {
        return Reply::error(422, &format!("No ref found for: {r}"));
    };
    let deployment = FakeDeployment {
        id,
        sha,
        environment: env.to_owned(),
        payload: call.body.get("payload").cloned().unwrap_or(json!({})),
        statuses: Vec::new(),
    };
    let body = deployment_json(call, full, &deployment);
    repo.deployments.push(deployment);
    Reply::json(201, body)
}

fn deployment_status(hub: &mut Hub, call: &Call<'_>, full: &str, id: &str) -> Reply {
    const STATES: [&str; 7] = [
        "error",
        "failure",
        "inactive",
        "in_progress",
        "queued",
        "pending",
        "success",
    ];
    let Some(state) = call.str("state").filter(|s| STATES.contains(s)) else {
        return Reply::error(422, "Validation Failed: state is not included in the list");
    };
    let log_url = call.str("log_url").unwrap_or("").to_owned();
    let description = call.str("description").unwrap_or("").to_owned();
    if description.chars().count() > 140 {
        return Reply::error(
            422,
            "Validation Failed: description is too long (maximum is 140 characters)",
        );
    }
    let status_id = hub.next_id();
    let Some(repo) = hub.repo_mut(full) else {
        return Reply::not_found();
    };
    let Some(found) = repo.deployments.iter_mut().find(|d| d.id.to_string() == id) else {
        return Reply::not_found();
    };
    found
        .statuses
        .push((state.to_owned(), log_url.clone(), description.clone()));
    let env = found.environment.clone();
    let deployment = found.id;
    // auto_inactive (default true): a success makes earlier deployments to the env inactive.
    if state == "success" && call.body.get("auto_inactive").and_then(Value::as_bool) != Some(false)
    {
        for other in repo.deployments.iter_mut() {
            let last = other.statuses.last().map(|s| s.0.as_str());
            if other.id != deployment && other.environment == env && last == Some("success") {
                other
                    .statuses
                    .push(("inactive".into(), String::new(), String::new()));
            }
        }
    }
    Reply::json(
        201,
        json!({
            "id": status_id,
            "state": state,
            "log_url": log_url,
            "description": description,
            "environment": env,
            "deployment_url": format!("{}/repos/{full}/deployments/{id}", call.base),
            "created_at": timestamp(),
        }),
    )
}

fn comment_json(call: &Call<'_>, full: &str, c: &FakeComment) -> Value {
    json!({
        "id": c.id,
        "node_id": format!("IC_{}", c.id),
        "url": format!("{}/repos/{full}/issues/comments/{}", call.base, c.id),
        "html_url": format!("{}/{full}/pull/{}#issuecomment-{}", call.base, c.number, c.id),
        "issue_url": format!("{}/repos/{full}/issues/{}", call.base, c.number),
        "user": user(call.base, &c.author, 9_000_001),
        "body": c.versions.last(),
        "created_at": timestamp(),
        "updated_at": timestamp(),
        "author_association": "NONE",
    })
}

fn create_comment(hub: &mut Hub, call: &Call<'_>, full: &str, n: &str) -> Reply {
    let Some(body) = call.str("body").map(str::to_owned) else {
        return Reply::error(422, "Invalid request: \"body\" wasn't supplied.");
    };
    let id = hub.next_id();
    let Some(repo) = hub.repo_mut(full) else {
        return Reply::not_found();
    };
    let Some(number) = n.parse::<u64>().ok().filter(|n| repo.pulls.contains_key(n)) else {
        return Reply::not_found();
    };
    let comment = FakeComment {
        id,
        number,
        author: "gantry[bot]".into(),
        versions: vec![body],
        reactions: Vec::new(),
    };
    let json = comment_json(call, full, &comment);
    repo.comments.push(comment);
    Reply::json(201, json)
}

fn edit_comment(hub: &mut Hub, call: &Call<'_>, full: &str, id: &str) -> Reply {
    let Some(body) = call.str("body").map(str::to_owned) else {
        return Reply::error(422, "Invalid request: \"body\" wasn't supplied.");
    };
    let Some(found) = hub
        .repo_mut(full)
        .and_then(|r| r.comments.iter_mut().find(|c| c.id.to_string() == id))
    else {
        return Reply::not_found();
    };
    found.versions.push(body);
    let found = found.clone();
    Reply::json(200, comment_json(call, full, &found))
}

fn react(hub: &mut Hub, call: &Call<'_>, full: &str, id: &str) -> Reply {
    const CONTENTS: [&str; 8] = [
        "+1", "-1", "laugh", "confused", "heart", "hooray", "rocket", "eyes",
    ];
    let Some(content) = call.str("content").filter(|c| CONTENTS.contains(c)) else {
        return Reply::error(
            422,
            "Validation Failed: content is not included in the list",
        );
    };
    let reaction_id = hub.next_id();
    let Some(found) = hub
        .repo_mut(full)
        .and_then(|r| r.comments.iter_mut().find(|c| c.id.to_string() == id))
    else {
        return Reply::not_found();
    };
    // The same reaction twice answers 200 with the existing one.
    let status = if found.reactions.iter().any(|r| r == content) {
        200
    } else {
        found.reactions.push(content.to_owned());
        201
    };
    Reply::json(
        status,
        json!({
            "id": reaction_id,
            "node_id": format!("REA_{reaction_id}"),
            "user": user(call.base, "gantry[bot]", 9_000_001),
            "content": content,
            "created_at": timestamp(),
        }),
    )
}
