//! The fake's REST surface: one dispatcher over method and path segments,
//! and the repository, git data, contents and pull request endpoints.

use std::collections::BTreeMap;

use serde_json::{json, Value};

use super::state::{FakeTag, Hub};
use super::{activity, contents, pulls};

/// An answer: status, JSON body (`None` = empty), extra headers.
pub struct Reply {
    pub status: u16,
    pub body: Option<Value>,
    pub headers: Vec<(&'static str, String)>,
}

impl Reply {
    pub fn json(status: u16, body: Value) -> Reply {
        Reply {
            status,
            body: Some(body),
            headers: Vec::new(),
        }
    }

    pub fn empty(status: u16) -> Reply {
        Reply {
            status,
            body: None,
            headers: Vec::new(),
        }
    }

    /// GitHub's error shape.
    pub fn error(status: u16, message: &str) -> Reply {
        Reply::json(
            status,
            json!({
                "message": message,
                "documentation_url": "https://docs.github.com/rest",
                "status": status.to_string(),
            }),
        )
    }

    pub fn not_found() -> Reply {
        Reply::error(404, "Not Found")
    }
}

/// What a handler gets.
pub struct Call<'a> {
    pub method: &'a str,
    pub segments: Vec<String>,
    pub query: BTreeMap<String, String>,
    pub body: &'a Value,
    /// The fake's base URL, for `url` and `html_url` fields.
    pub base: &'a str,
}

impl Call<'_> {
    pub fn str(&self, key: &str) -> Option<&str> {
        self.body.get(key).and_then(Value::as_str)
    }
}

/// A user object as GitHub embeds it.
pub fn user(base: &str, login: &str, id: u64) -> Value {
    json!({
        "login": login,
        "id": id,
        "node_id": format!("U_{id}"),
        "avatar_url": format!("{base}/avatars/{login}"),
        "url": format!("{base}/users/{login}"),
        "html_url": format!("{base}/{login}"),
        "type": if login.ends_with("[bot]") { "Bot" } else { "User" },
        "site_admin": false,
    })
}

/// A repository object.
pub fn repository(base: &str, hub: &Hub, full: &str) -> Value {
    let (owner, name) = full.split_once('/').unwrap_or((full, ""));
    let repo = hub.repo(full);
    json!({
        "id": repo.map_or(0, |r| r.id),
        "node_id": format!("R_{full}"),
        "name": name,
        "full_name": full,
        "private": false,
        "owner": user(base, owner, 1),
        "html_url": format!("{base}/{full}"),
        "url": format!("{base}/repos/{full}"),
        "default_branch": repo.map_or("main", |r| r.default_branch.as_str()),
    })
}

/// Routes one request; the caller has checked credentials.
pub fn route(hub: &mut Hub, call: &Call<'_>) -> Reply {
    let s: Vec<&str> = call.segments.iter().map(String::as_str).collect();
    if let ["app", "installations", id, "access_tokens"] = s.as_slice() {
        return activity::mint_token(hub, call, id);
    }
    let ["repos", owner, name, rest @ ..] = s.as_slice() else {
        return Reply::not_found();
    };
    let full = format!("{owner}/{name}");
    if hub.repo(&full).is_none() {
        return Reply::not_found();
    }
    match (call.method, rest) {
        ("GET", []) => Reply::json(200, repository(call.base, hub, &full)),
        ("GET", ["installation"]) => activity::installation(hub, call, &full),
        ("GET", ["commits", r]) => commit(hub, call, &full, r),
        ("GET", ["commits", sha, "check-runs"]) => activity::check_runs(hub, &full, sha),
        ("GET", ["commits", sha, "status"]) => activity::combined_status(hub, call, &full, sha),
        ("GET", ["git", "ref", kind @ ("heads" | "tags"), name @ ..]) => {
            git_ref(hub, call, &full, kind, &name.join("/"))
        }
        ("GET", ["git", "tags", sha]) => annotated_tag(hub, call, &full, sha),
        ("POST", ["git", "refs"]) => create_ref(hub, call, &full),
        ("PATCH", ["git", "refs", "heads", name @ ..]) => {
            move_ref(hub, call, &full, &name.join("/"))
        }
        ("DELETE", ["git", "refs", "heads", name @ ..]) => {
            let gone = hub
                .repo_mut(&full)
                .and_then(|r| r.branches.remove(&name.join("/")));
            if gone.is_some() {
                Reply::empty(204)
            } else {
                Reply::error(422, "Reference does not exist")
            }
        }
        ("GET", ["contents", path @ ..]) => contents::get_file(hub, call, &full, &path.join("/")),
        ("PUT", ["contents", path @ ..]) => contents::put_file(hub, call, &full, &path.join("/")),
        ("GET", ["pulls"]) => pulls::list_pulls(hub, call, &full),
        ("POST", ["pulls"]) => pulls::create_pull(hub, call, &full),
        ("GET", ["pulls", n]) => match n
            .parse()
            .ok()
            .and_then(|n| pulls::pull_json(hub, call.base, &full, n))
        {
            Some(pull) => Reply::json(200, pull),
            None => Reply::not_found(),
        },
        ("PUT", ["pulls", n, "merge"]) => pulls::merge_pull(hub, call, &full, n),
        _ => activity::route(hub, call, &full, rest),
    }
}

fn commit(hub: &Hub, call: &Call<'_>, full: &str, r: &str) -> Reply {
    let Some(repo) = hub.repo(full) else {
        return Reply::not_found();
    };
    let sha = repo
        .find_commit(r)
        .map(|c| c.sha.clone())
        .or_else(|| repo.branches.get(r).cloned());
    match sha.and_then(|s| repo.commits.get(&s)) {
        Some(c) => Reply::json(
            200,
            json!({
                "sha": c.sha,
                "node_id": format!("C_{}", c.sha),
                "url": format!("{}/repos/{full}/commits/{}", call.base, c.sha),
                "html_url": format!("{}/{full}/commit/{}", call.base, c.sha),
                "commit": { "message": c.message, "tree": { "sha": c.sha } },
                "parents": c.parent.iter().map(|p| json!({ "sha": p })).collect::<Vec<_>>(),
            }),
        ),
        None => Reply::error(422, &format!("No commit found for SHA: {r}")),
    }
}

fn ref_json(call: &Call<'_>, full: &str, name: &str, sha: &str, kind: &str) -> Value {
    json!({
        "ref": format!("refs/{name}"),
        "node_id": format!("REF_{name}"),
        "url": format!("{}/repos/{full}/git/refs/{name}", call.base),
        "object": {
            "type": kind,
            "sha": sha,
            "url": format!("{}/repos/{full}/git/{kind}s/{sha}", call.base),
        },
    })
}

fn git_ref(hub: &Hub, call: &Call<'_>, full: &str, kind: &str, name: &str) -> Reply {
    let Some(repo) = hub.repo(full) else {
        return Reply::not_found();
    };
    let found = match kind {
        "heads" => repo.branches.get(name).map(|s| (s.clone(), "commit")),
        _ => repo.tags.get(name).map(|t| match t {
            FakeTag::Light(sha) => (sha.clone(), "commit"),
            FakeTag::Annotated { object, .. } => (object.clone(), "tag"),
        }),
    };
    match found {
        Some((sha, object)) => Reply::json(
            200,
            ref_json(call, full, &format!("{kind}/{name}"), &sha, object),
        ),
        None => Reply::not_found(),
    }
}

fn annotated_tag(hub: &Hub, call: &Call<'_>, full: &str, sha: &str) -> Reply {
    let found = hub.repo(full).and_then(|r| {
        r.tags.iter().find_map(|(name, t)| match t {
            FakeTag::Annotated { object, commit } if object == sha => {
                Some((name.clone(), commit.clone()))
            }
            _ => None,
        })
    });
    match found {
        Some((tag, commit)) => Reply::json(
            200,
            json!({
                "sha": sha,
                "tag": tag,
                "message": format!("Release {tag}"),
                "object": {
                    "type": "commit",
                    "sha": commit,
                    "url": format!("{}/repos/{full}/git/commits/{commit}", call.base),
                },
            }),
        ),
        None => Reply::not_found(),
    }
}

fn create_ref(hub: &mut Hub, call: &Call<'_>, full: &str) -> Reply {
    let (Some(name), Some(sha)) = (call.str("ref"), call.str("sha")) else {
        return Reply::error(422, "Invalid request: ref and sha are required");
    };
    let Some(branch) = name.strip_prefix("refs/heads/") else {
        return Reply::error(422, "Reference name must start with refs/heads/ here");
    };
    let Some(repo) = hub.repo_mut(full) else {
        return Reply::not_found();
    };
    if repo.branches.contains_key(branch) {
        return Reply::error(422, "Reference already exists");
    }
    if !repo.commits.contains_key(sha) {
        return Reply::error(422, "Object does not exist");
    }
    repo.branches.insert(branch.to_owned(), sha.to_owned());
    Reply::json(
        201,
        ref_json(call, full, &format!("heads/{branch}"), sha, "commit"),
    )
}

fn move_ref(hub: &mut Hub, call: &Call<'_>, full: &str, branch: &str) -> Reply {
    let Some(sha) = call.str("sha") else {
        return Reply::error(422, "Invalid request: sha is required");
    };
    let Some(repo) = hub.repo_mut(full) else {
        return Reply::not_found();
    };
    if !repo.branches.contains_key(branch) || !repo.commits.contains_key(sha) {
        return Reply::error(422, "Reference does not exist");
    }
    repo.branches.insert(branch.to_owned(), sha.to_owned());
    Reply::json(
        200,
        ref_json(call, full, &format!("heads/{branch}"), sha, "commit"),
    )
}
