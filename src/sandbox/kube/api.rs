//! The HTTP side: paths, verbs, faults, `Status` errors and watch streams.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

use super::access::query_true;
use super::store::{field_supported, selected, Key, Kind, Selector};
use super::write::{self, PatchKind, Refusal};
use super::{Recorded, Shared};

/// What a path names.
pub(super) struct Target {
    pub(super) kind: Kind,
    pub(super) namespace: Option<String>,
    pub(super) name: Option<String>,
}

fn parse_path(path: &str) -> Option<Target> {
    let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
    let (group_version, rest) = match parts.as_slice() {
        ["api", "v1", rest @ ..] => ("v1".to_owned(), rest),
        ["apis", group, version, rest @ ..] => (format!("{group}/{version}"), rest),
        _ => return None,
    };
    let (kind, namespace, name) = match rest {
        ["namespaces"] => (Kind::Namespace, None, None),
        ["namespaces", name] => (Kind::Namespace, None, Some(*name)),
        ["namespaces", ns, plural] => (Kind::from_path(&group_version, plural)?, Some(*ns), None),
        ["namespaces", ns, plural, name] => (
            Kind::from_path(&group_version, plural)?,
            Some(*ns),
            Some(*name),
        ),
        [plural] => (Kind::from_path(&group_version, plural)?, None, None),
        _ => return None,
    };
    if kind.namespaced() != namespace.is_some() && name.is_some() {
        return None;
    }
    Some(Target {
        kind,
        namespace: namespace.map(str::to_owned),
        name: name.map(str::to_owned),
    })
}

/// A `Status` error answer.
pub(super) fn status(code: u16, reason: &str, message: &str, target: Option<&Target>) -> Response {
    let mut body = json!({"kind": "Status", "apiVersion": "v1", "metadata": {},
        "status": "Failure", "message": message, "reason": reason, "code": code});
    if let Some(t) = target {
        body["details"] = json!({"kind": t.kind.plural()});
        // The real server leaves out an empty (core) group.
        if !t.kind.group().is_empty() {
            body["details"]["group"] = json!(t.kind.group());
        }
        if let Some(name) = &t.name {
            body["details"]["name"] = json!(name);
        }
    }
    let code = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (
        code,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

fn refused(r: &Refusal, target: &Target) -> Response {
    status(r.code, r.reason, &r.message, Some(target))
}

fn ok(code: u16, object: &Value) -> Response {
    let code = StatusCode::from_u16(code).unwrap_or(StatusCode::OK);
    (
        code,
        [(header::CONTENT_TYPE, "application/json")],
        object.to_string(),
    )
        .into_response()
}

fn discovery(path: &str) -> Option<Value> {
    Some(match path {
        "/version" => json!({"major": "1", "minor": "32", "gitVersion": "v1.32.0-gantry-fake",
            "platform": "linux/amd64"}),
        "/api" => json!({"kind": "APIVersions", "versions": ["v1"],
            "serverAddressByClientCIDRs": []}),
        "/apis" => json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": [{"name": "apps",
            "versions": [{"groupVersion": "apps/v1", "version": "v1"}],
            "preferredVersion": {"groupVersion": "apps/v1", "version": "v1"}}]}),
        _ => return None,
    })
}

/// Serves every request: records it, applies faults, dispatches.
pub(super) async fn handle(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let query: BTreeMap<String, String> =
        serde_urlencoded::from_str::<Vec<(String, String)>>(uri.query().unwrap_or(""))
            .unwrap_or_default()
            .into_iter()
            .collect();
    let seq = record(&shared, &method, &uri, &headers, &body);
    let (answer, delay) = answer(&shared, &method, &uri, &headers, &body, &query);
    if let Some(r) = shared
        .lock()
        .requests
        .iter_mut()
        .rev()
        .find(|r| r.seq == seq)
    {
        r.status = Some(answer.status().as_u16());
    }
    shared.changed.notify_waiters();
    if let Some(delay) = delay {
        tokio::time::sleep(delay).await;
    }
    answer
}

/// Records a request, not yet answered, and returns its position.
fn record(shared: &Shared, method: &Method, uri: &Uri, headers: &HeaderMap, body: &Bytes) -> u64 {
    let mut inner = shared.lock();
    inner.received += 1;
    let seq = inner.received;
    inner.requests.push(Recorded {
        method: method.to_string(),
        path: uri.path().to_owned(),
        query: uri.query().unwrap_or("").to_owned(),
        headers: headers
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str().to_owned(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect(),
        body: String::from_utf8_lossy(body).into_owned(),
        status: None,
        seq,
    });
    seq
}

/// The answer, and how long a `slow` fault holds it back.
fn answer(
    shared: &Arc<Shared>,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &Bytes,
    query: &BTreeMap<String, String>,
) -> (Response, Option<Duration>) {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    if let Some(found) = discovery(uri.path()) {
        return (ok(200, &found), None);
    }
    let Some(target) = parse_path(uri.path()) else {
        let missing = "the server could not find the requested resource";
        return (status(404, "NotFound", missing, None), None);
    };
    let watching = query.get("watch").is_some_and(|w| query_true(w));
    let verb = match (method, &target.name) {
        (&Method::GET, Some(_)) => "get",
        (&Method::GET, None) if watching => "watch",
        (&Method::GET, None) => "list",
        (&Method::PATCH, Some(_)) => "patch",
        (&Method::POST, None) => "create",
        (&Method::DELETE, Some(_)) => "delete",
        _ => {
            let message = "the server does not allow this method on the requested resource";
            return (
                status(405, "MethodNotAllowed", message, Some(&target)),
                None,
            );
        }
    };
    let user =
        header("impersonate-user").unwrap_or_else(|| "system:serviceaccount:gantry:gantry".into());
    let delay = {
        let mut inner = shared.lock();
        let faults = &mut inner.faults;
        if let Some((left, seconds)) = faults.throttle.as_mut().filter(|(n, _)| *n > 0) {
            *left -= 1;
            let seconds = *seconds;
            let mut answer = status(
                429,
                "TooManyRequests",
                "the server has received too many requests and has asked us to try again later",
                Some(&target),
            );
            answer
                .headers_mut()
                .insert(header::RETRY_AFTER, seconds.into());
            return (answer, None);
        }
        if faults
            .forbidden
            .iter()
            .any(|(v, r)| v == verb && r == target.kind.plural())
        {
            let what = match &target.name {
                Some(name) => format!("{} \"{name}\"", target.kind.qualified()),
                None => target.kind.qualified(),
            };
            let place = target.namespace.as_ref().map_or_else(
                || " at the cluster scope".to_owned(),
                |ns| format!(" in the namespace \"{ns}\""),
            );
            let message = format!(
                "{what} is forbidden: User \"{user}\" cannot {verb} resource \"{}\" in API group \"{}\"{place}",
                target.kind.plural(), target.kind.group()
            );
            return (status(403, "Forbidden", &message, Some(&target)), None);
        }
        if verb == "patch" && faults.conflicts > 0 {
            faults.conflicts -= 1;
            let message = format!("Operation cannot be fulfilled on {} \"{}\": the object has been modified; please apply your changes to the latest version and try again", target.kind.qualified(), target.name.clone().unwrap_or_default());
            return (status(409, "Conflict", &message, Some(&target)), None);
        }
        let slowed = faults
            .slow
            .as_mut()
            .filter(|(v, _, n)| *n > 0 && verb != "watch" && (v == verb || v == "*"));
        match slowed {
            Some((_, delay, left)) => {
                *left -= 1;
                Some(*delay)
            }
            None => None,
        }
    };
    let answer = if verb == "watch" {
        super::watch::watch(shared, &target, query)
    } else {
        let content_type = header("content-type").unwrap_or_default();
        let manager = query.get("fieldManager").cloned().or_else(|| {
            header("user-agent").map(|a| a.split('/').next().unwrap_or("unknown").to_owned())
        });
        dispatch(
            shared,
            &target,
            verb,
            query,
            &content_type,
            manager.as_deref(),
            body,
        )
    };
    (answer, delay)
}

fn dispatch(
    shared: &Shared,
    target: &Target,
    verb: &str,
    query: &BTreeMap<String, String>,
    content_type: &str,
    manager: Option<&str>,
    body: &[u8],
) -> Response {
    let mut inner = shared.lock();
    let ns = target.namespace.as_deref().unwrap_or("");
    let key = |name: &str| Key::new(target.kind, ns, name);
    match (verb, &target.name) {
        ("get", Some(name)) => match inner.objects.get(&key(name)) {
            Some(found) => ok(200, found),
            None => status(
                404,
                "NotFound",
                &format!("{} \"{name}\" not found", target.kind.qualified()),
                Some(target),
            ),
        },
        ("list", _) => {
            let (labels, fields) = match selectors(query) {
                Ok(found) => found,
                Err(message) => return status(400, "BadRequest", &message, Some(target)),
            };
            let items: Vec<Value> = inner
                .objects
                .list(target.kind, target.namespace.as_deref())
                .into_iter()
                .filter(|(_, v)| selected(v, &labels, &fields))
                .map(|(_, mut v)| {
                    // The real server leaves kind and apiVersion out of list items.
                    if let Some(m) = v.as_object_mut() {
                        m.remove("kind");
                        m.remove("apiVersion");
                    }
                    v
                })
                .collect();
            let kind = match target.kind {
                Kind::Namespace => "NamespaceList",
                Kind::Deployment => "DeploymentList",
                Kind::ReplicaSet => "ReplicaSetList",
                Kind::Service => "ServiceList",
                Kind::Pod => "PodList",
            };
            let api_version = if target.kind.group() == "apps" {
                "apps/v1"
            } else {
                "v1"
            };
            ok(
                200,
                &json!({"kind": kind, "apiVersion": api_version,
                "metadata": {"resourceVersion": inner.objects.version().to_string()}, "items": items}),
            )
        }
        ("patch", Some(name)) => {
            let kind = match content_type.split(';').next().unwrap_or("").trim() {
                "application/strategic-merge-patch+json" => PatchKind::Strategic,
                "application/merge-patch+json" => PatchKind::Merge,
                "application/apply-patch+yaml" => PatchKind::Apply,
                other => return status(415, "UnsupportedMediaType", &format!("the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml, application/strategic-merge-patch+json; got {other}"), Some(target)),
            };
            let key = key(name);
            write::concurrent_change(&mut inner, &key);
            match write::patch(&mut inner, &key, kind, manager, body) {
                Ok((code, object)) => ok(code, &object),
                Err(r) => refused(&r, target),
            }
        }
        ("create", None) => {
            let name = serde_json::from_slice::<Value>(body)
                .ok()
                .and_then(|v| v["metadata"]["name"].as_str().map(str::to_owned));
            let Some(name) = name else {
                return status(
                    422,
                    "Invalid",
                    "metadata.name: Required value: name is required",
                    Some(target),
                );
            };
            match write::create(&mut inner, &key(&name), manager, body) {
                Ok(object) => ok(201, &object),
                Err(r) => refused(&r, target),
            }
        }
        ("delete", Some(name)) => match write::delete(&mut inner, &key(name), body) {
            Ok(object) => ok(200, &object),
            Err(r) => refused(&r, target),
        },
        _ => status(
            405,
            "MethodNotAllowed",
            "the server does not allow this method on the requested resource",
            Some(target),
        ),
    }
}

pub(super) fn selectors(query: &BTreeMap<String, String>) -> Result<(Selector, Selector), String> {
    let parse = |name: &str| {
        let text = query.get(name).map_or("", String::as_str);
        Selector::parse(text).ok_or_else(|| format!("unable to parse requirement: {name}={text}"))
    };
    let labels = parse("labelSelector")?;
    let fields = parse("fieldSelector")?;
    if let Some(bad) = fields.keys().find(|k| !field_supported(k)) {
        return Err(format!("field label not supported: {bad}"));
    }
    Ok((labels, fields))
}
