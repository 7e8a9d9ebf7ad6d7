//! The fake's pull requests: list, open, read, merge.

use serde_json::{json, Value};

use super::routes::{repository, user, Call, Reply};
use super::state::{FakePull, Hub};

/// A pull request object.
pub fn pull_json(hub: &Hub, base: &str, full: &str, number: u64) -> Option<Value> {
    let repo = hub.repo(full)?;
    let pull: &FakePull = repo.pulls.get(&number)?;
    let head_sha = repo.pull_head(pull);
    let base_sha = repo.branches.get(&pull.base).cloned().unwrap_or_default();
    let side = |label: &str, r: &str, sha: &str| {
        json!({
            "label": format!("{}:{r}", full.split('/').next().unwrap_or(full)),
            "ref": r,
            "sha": sha,
            "user": user(base, &pull.author.0, pull.author.1),
            "repo": repository(base, hub, full),
            "_label": label,
        })
    };
    let mut head = side("head", &pull.head, &head_sha);
    let mut base_side = side("base", &pull.base, &base_sha);
    for v in [&mut head, &mut base_side] {
        if let Some(o) = v.as_object_mut() {
            o.remove("_label");
        }
    }
    Some(json!({
        "url": format!("{base}/repos/{full}/pulls/{number}"),
        "id": 1_000_000 + number,
        "node_id": format!("PR_{number}"),
        "html_url": format!("{base}/{full}/pull/{number}"),
        "number": number,
        "state": pull.state,
        "locked": false,
        "title": pull.title,
        "user": user(base, &pull.author.0, pull.author.1),
        "body": null,
        "merged": pull.merge_sha.is_some(),
        "merged_at": pull.merge_sha.as_ref().map(|_| super::state::timestamp()),
        "merge_commit_sha": pull.merge_sha,
        "mergeable": pull.state == "open",
        "draft": false,
        "head": head,
        "base": base_side,
    }))
}

pub(super) fn list_pulls(hub: &Hub, call: &Call<'_>, full: &str) -> Reply {
    let Some(repo) = hub.repo(full) else {
        return Reply::not_found();
    };
    let state = call.query.get("state").map_or("open", String::as_str);
    let head = call
        .query
        .get("head")
        .map(|h| h.split_once(':').map_or(h.as_str(), |(_, b)| b));
    let list: Vec<Value> = repo
        .pulls
        .values()
        .filter(|p| state == "all" || p.state == state)
        .filter(|p| head.is_none_or(|h| p.head == h))
        .filter(|p| call.query.get("base").is_none_or(|b| &p.base == b))
        .filter_map(|p| pull_json(hub, call.base, full, p.number))
        .collect();
    Reply::json(200, Value::Array(list))
}

pub(super) fn create_pull(hub: &mut Hub, call: &Call<'_>, full: &str) -> Reply {
    let (Some(head), Some(base)) = (call.str("head"), call.str("base")) else {
        return Reply::error(422, "Validation Failed: head and base are required");
    };
    let title = call.str("title").unwrap_or("").to_owned();
    let number = hub.next_id();
    let Some(repo) = hub.repo_mut(full) else {
        return Reply::not_found();
    };
    if !repo.branches.contains_key(head) || !repo.branches.contains_key(base) {
        return Reply::error(422, "Validation Failed: head or base does not exist");
    }
    if repo
        .pulls
        .values()
        .any(|p| p.head == head && p.state == "open")
    {
        return Reply::error(422, &format!("A pull request already exists for {head}."));
    }
    repo.pulls.insert(
        number,
        FakePull {
            number,
            title,
            head: head.to_owned(),
            base: base.to_owned(),
            author: ("gantry[bot]".into(), 9_000_001),
            state: "open".into(),
            merge_sha: None,
        },
    );
    match pull_json(hub, call.base, full, number) {
        Some(pull) => Reply::json(201, pull),
        None => Reply::not_found(),
    }
}

pub(super) fn merge_pull(hub: &mut Hub, call: &Call<'_>, full: &str, n: &str) -> Reply {
    let Ok(number) = n.parse::<u64>() else {
        return Reply::not_found();
    };
    let Some(pull) = hub.repo(full).and_then(|r| r.pulls.get(&number)).cloned() else {
        return Reply::not_found();
    };
    if pull.state != "open" {
        return Reply::error(405, "Pull Request is not mergeable");
    }
    let head_sha = hub
        .repo(full)
        .map(|r| r.pull_head(&pull))
        .unwrap_or_default();
    if call.str("sha").is_some_and(|s| s != head_sha) {
        return Reply::error(
            409,
            "Head branch was modified. Review and try the merge again.",
        );
    }
    let files: Vec<(String, String)> = hub
        .repo(full)
        .and_then(|r| r.commits.get(&head_sha))
        .map(|c| {
            c.files
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect()
        })
        .unwrap_or_default();
    let pairs: Vec<(&str, &str)> = files
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let title = call
        .str("commit_title")
        .unwrap_or("Merge pull request")
        .to_owned();
    let sha = hub.commit(full, &pull.base, &title, &pairs);
    if let Some(p) = hub.repo_mut(full).and_then(|r| r.pulls.get_mut(&number)) {
        p.state = "closed".into();
        p.merge_sha = Some(sha.clone());
    }
    Reply::json(
        200,
        json!({ "sha": sha, "merged": true, "message": "Pull Request successfully merged" }),
    )
}
