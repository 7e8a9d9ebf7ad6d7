//! Writes: PATCH (three content types), POST and DELETE, with the API
//! server's checks — namespace exists and is not terminating, the
//! `resourceVersion` and `uid` preconditions, the schema — and its
//! bookkeeping: `generation` on spec changes and `managedFields`.

use serde_json::{json, Value};

use super::merge::{merge, record_manager};
use super::store::{now, Key, Kind};
use super::{ImageChange, Inner};

/// The patch content types the server accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatchKind {
    /// `application/strategic-merge-patch+json`
    Strategic,
    /// `application/merge-patch+json`
    Merge,
    /// `application/apply-patch+yaml` (server-side apply)
    Apply,
}

/// A refused request, as a `Status`.
#[derive(Debug, Clone)]
pub struct Refusal {
    /// HTTP status code.
    pub code: u16,
    /// The Status reason, e.g. `Conflict`.
    pub reason: &'static str,
    /// The message.
    pub message: String,
}

impl Refusal {
    /// A refusal.
    pub fn new(code: u16, reason: &'static str, message: String) -> Refusal {
        Refusal {
            code,
            reason,
            message,
        }
    }
}

fn quoted(key: &Key) -> String {
    format!("{} \"{}\"", key.kind.qualified(), key.name)
}

/// A strategic-merge patch that sets one container's image.
pub fn image_patch(container: &str, image: &str) -> Value {
    json!({"spec": {"template": {"spec": {"containers": [{"name": container, "image": image}]}}}})
}

/// Applies another party's queued image change to `key`, if one waits.
pub fn concurrent_change(inner: &mut Inner, key: &Key) {
    let waiting = inner
        .faults
        .before_patch
        .iter()
        .position(|c: &ImageChange| {
            key.kind == Kind::Deployment && c.namespace == key.namespace && c.deployment == key.name
        });
    if let Some(i) = waiting {
        let c = inner.faults.before_patch.remove(i);
        let body = image_patch(&c.container, &c.image).to_string().into_bytes();
        let _ = patch(inner, key, PatchKind::Strategic, Some(&c.manager), &body);
    }
}

fn check_namespace(inner: &Inner, key: &Key, creating: bool) -> Result<(), Refusal> {
    if !key.kind.namespaced() {
        return Ok(());
    }
    let ns = inner
        .objects
        .get(&Key::new(Kind::Namespace, "", &key.namespace));
    match ns {
        None => Err(Refusal::new(404, "NotFound", format!("namespaces \"{}\" not found", key.namespace))),
        Some(ns) if creating && !ns["metadata"]["deletionTimestamp"].is_null() => Err(Refusal::new(
            403,
            "Forbidden",
            format!(
                "{} is forbidden: unable to create new content in namespace {} because it is being terminated",
                quoted(key),
                key.namespace
            ),
        )),
        Some(_) => Ok(()),
    }
}

/// Handles a PATCH; the answer is the status code and the stored object.
pub fn patch(
    inner: &mut Inner,
    key: &Key,
    kind: PatchKind,
    manager: Option<&str>,
    body: &[u8],
) -> Result<(u16, Value), Refusal> {
    let mut patch: Value = serde_json::from_slice(body)
        .map_err(|e| Refusal::new(400, "BadRequest", format!("error decoding patch: {e}")))?;
    if !patch.is_object() {
        return Err(Refusal::new(
            400,
            "BadRequest",
            "the patch is not a JSON object".into(),
        ));
    }
    if kind == PatchKind::Apply && manager.is_none() {
        return Err(Refusal::new(422, "Invalid",
            "PatchOptions.meta.k8s.io \"\" is invalid: fieldManager: Required value: is required for apply patch".into()));
    }
    let existing = inner.objects.get(key).cloned();
    check_namespace(inner, key, existing.is_none())?;
    let precondition = patch["metadata"]["resourceVersion"]
        .as_str()
        .map(str::to_owned);
    if let Some(meta) = patch.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.remove("resourceVersion");
    }
    // Status is a subresource: the main resource ignores it.
    if let Some(map) = patch.as_object_mut() {
        map.remove("status");
    }
    let (mut object, created) = match existing {
        Some(found) => {
            let current = found["metadata"]["resourceVersion"]
                .as_str()
                .unwrap_or_default();
            if precondition.as_deref().is_some_and(|v| v != current) {
                return Err(Refusal::new(409, "Conflict", format!(
                    "Operation cannot be fulfilled on {}: the object has been modified; please apply your changes to the latest version and try again",
                    quoted(key)
                )));
            }
            (found, false)
        }
        None if kind == PatchKind::Apply => (json!({}), true),
        None => {
            return Err(Refusal::new(
                404,
                "NotFound",
                format!("{} not found", quoted(key)),
            ))
        }
    };
    if let Some(name) = patch["metadata"]["name"].as_str() {
        if name != key.name {
            return Err(Refusal::new(
                400,
                "BadRequest",
                format!(
                    "the name of the object ({name}) does not match the name on the URL ({})",
                    key.name
                ),
            ));
        }
    }
    let before_spec = object["spec"].clone();
    merge(&mut object, &patch, kind != PatchKind::Merge);
    let normal = key
        .kind
        .normalise(object.clone())
        .map_err(|e| Refusal::new(422, "Invalid", format!("{} is invalid: {e}", quoted(key))))?;
    object = normal;
    if matches!(key.kind, Kind::Deployment | Kind::ReplicaSet) {
        let generation = object["metadata"]["generation"].as_i64().unwrap_or(0);
        if created || before_spec != object["spec"] {
            object["metadata"]["generation"] = json!(generation + 1);
        }
        if object["spec"]["replicas"].is_null() {
            object["spec"]["replicas"] = json!(1);
        }
    }
    let operation = if kind == PatchKind::Apply {
        "Apply"
    } else {
        "Update"
    };
    object["apiVersion"] = json!(if key.kind.group() == "apps" {
        "apps/v1"
    } else {
        "v1"
    });
    record_manager(&mut object, manager.unwrap_or("unknown"), operation, &patch);
    let stored = inner.objects.put(key, object);
    Ok((if created { 201 } else { 200 }, stored))
}

/// Handles a POST of a new object.
pub fn create(
    inner: &mut Inner,
    key: &Key,
    manager: Option<&str>,
    body: &[u8],
) -> Result<Value, Refusal> {
    if inner.objects.get(key).is_some() {
        return Err(Refusal::new(
            409,
            "AlreadyExists",
            format!("{} already exists", quoted(key)),
        ));
    }
    let (_, stored) = patch(
        inner,
        key,
        PatchKind::Apply,
        Some(manager.unwrap_or("unknown")),
        body,
    )?;
    Ok(stored)
}

/// Handles a DELETE; namespaces go to `Terminating` and the controller
/// removes them with everything in them. A missing object is a 404; a
/// namespace already terminating is a 409, as the real server answers.
pub fn delete(inner: &mut Inner, key: &Key, body: &[u8]) -> Result<Value, Refusal> {
    let Some(mut found) = inner.objects.get(key).cloned() else {
        return Err(Refusal::new(
            404,
            "NotFound",
            format!("{} not found", quoted(key)),
        ));
    };
    let options: Value = if body.is_empty() {
        json!({})
    } else {
        serde_json::from_slice(body).map_err(|e| {
            Refusal::new(
                400,
                "BadRequest",
                format!("error decoding DeleteOptions: {e}"),
            )
        })?
    };
    let want_uid = options["preconditions"]["uid"].as_str();
    let uid = found["metadata"]["uid"].as_str().unwrap_or_default();
    if want_uid.is_some_and(|w| w != uid) {
        return Err(Refusal::new(
            409,
            "Conflict",
            format!(
                "Precondition failed: UID in precondition: {}, UID in object meta: {uid}",
                want_uid.unwrap_or_default()
            ),
        ));
    }
    if key.kind == Kind::Namespace {
        if found["metadata"]["deletionTimestamp"].is_null() {
            found["metadata"]["deletionTimestamp"] = json!(now());
            found["spec"] = json!({"finalizers": ["kubernetes"]});
            found["status"] = json!({"phase": "Terminating"});
            return Ok(inner.objects.put(key, found));
        }
        // What the real namespace registry answers while finalisers run.
        return Err(Refusal::new(
            409,
            "Conflict",
            format!(
                "Operation cannot be fulfilled on {}: The system is ensuring all content is \
                 removed from this namespace.  Upon completion, this namespace will \
                 automatically be purged by the system.",
                quoted(key)
            ),
        ));
    }
    inner
        .objects
        .delete(key)
        .ok_or_else(|| Refusal::new(404, "NotFound", format!("{} not found", quoted(key))))
}
