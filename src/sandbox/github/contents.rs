//! The fake's contents API: files at a branch, base64, blob SHAs and 409s.

use base64::Engine as _;
use serde_json::{json, Value};

use super::routes::{Call, Reply};
use super::state::{blob_sha, Hub};

fn branch_of(hub: &Hub, full: &str, call: &Call<'_>) -> Option<String> {
    call.query
        .get("ref")
        .cloned()
        .or_else(|| hub.repo(full).map(|r| r.default_branch.clone()))
}

fn file_json(call: &Call<'_>, full: &str, path: &str, content: &str) -> Value {
    let encoded = base64::engine::general_purpose::STANDARD.encode(content.as_bytes());
    // GitHub wraps the base64 at 60 characters with newlines.
    let wrapped: Vec<String> = encoded
        .as_bytes()
        .chunks(60)
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect();
    json!({
        "type": "file",
        "encoding": "base64",
        "size": content.len(),
        "name": path.rsplit('/').next().unwrap_or(path),
        "path": path,
        "content": wrapped.join("\n") + "\n",
        "sha": blob_sha(content),
        "url": format!("{}/repos/{full}/contents/{path}", call.base),
        "html_url": format!("{}/{full}/blob/main/{path}", call.base),
    })
}

pub(super) fn get_file(hub: &Hub, call: &Call<'_>, full: &str, path: &str) -> Reply {
    let Some(repo) = hub.repo(full) else {
        return Reply::not_found();
    };
    let Some(branch) = branch_of(hub, full, call) else {
        return Reply::not_found();
    };
    let tip = repo
        .branches
        .get(&branch)
        .or_else(|| repo.find_commit(&branch).map(|c| &c.sha));
    let content = tip
        .and_then(|sha| repo.commits.get(sha))
        .and_then(|c| c.files.get(path));
    match content {
        Some(content) => Reply::json(200, file_json(call, full, path, content)),
        None => Reply::not_found(),
    }
}

pub(super) fn put_file(hub: &mut Hub, call: &Call<'_>, full: &str, path: &str) -> Reply {
    let (Some(message), Some(content)) = (call.str("message"), call.str("content")) else {
        return Reply::error(422, "Invalid request: message and content are required");
    };
    let Ok(bytes) = base64::engine::general_purpose::STANDARD.decode(content) else {
        return Reply::error(422, "content is not valid Base64");
    };
    let Ok(text) = String::from_utf8(bytes) else {
        return Reply::error(422, "the fake stores text files only");
    };
    let branch = call
        .str("branch")
        .map(str::to_owned)
        .or_else(|| hub.repo(full).map(|r| r.default_branch.clone()))
        .unwrap_or_default();
    if let Some((repo, b, p, c)) = hub.race_next_write.take() {
        hub.commit(&repo, &b, "a concurrent change", &[(&p, &c)]);
    }
    let current = hub
        .repo(full)
        .and_then(|r| r.branches.get(&branch).and_then(|s| r.commits.get(s)))
        .map(|c| c.files.get(path).cloned());
    let Some(current) = current else {
        return Reply::error(422, &format!("Branch {branch} not found"));
    };
    match (current.as_deref(), call.str("sha")) {
        (Some(_), None) => return Reply::error(422, "Invalid request: \"sha\" wasn't supplied."),
        (Some(old), Some(sha)) if blob_sha(old) != sha => {
            return Reply::error(409, &format!("{path} does not match {sha}"))
        }
        _ => {}
    }
    let sha = hub.commit(full, &branch, message, &[(path, &text)]);
    Reply::json(
        if current.is_some() { 200 } else { 201 },
        json!({
            "content": file_json(call, full, path, &text),
            "commit": {
                "sha": sha,
                "message": message,
                "url": format!("{}/repos/{full}/git/commits/{sha}", call.base),
                "html_url": format!("{}/{full}/commit/{sha}", call.base),
            },
        }),
    )
}
