//! Patch semantics and field ownership, as far as Gantry relies on them.
//!
//! Strategic merge: maps merge, `null` deletes a key, and lists of objects
//! that all carry a `name` (containers, ports, env) merge by that name;
//! other lists are replaced. JSON merge patch is the same without the
//! by-name lists. Server-side apply is merged the same way (the fake does not
//! compute apply conflicts). Every write records which fields its field
//! manager set, in `managedFields` (`FieldsV1`), taking them from others.

use serde_json::{json, Map, Value};

/// Merges `patch` into `target`; `by_name` turns on strategic list merging.
pub fn merge(target: &mut Value, patch: &Value, by_name: bool) {
    let (Some(t), Some(p)) = (target.as_object_mut(), patch.as_object()) else {
        *target = patch.clone();
        return;
    };
    for (key, value) in p {
        if key.starts_with('$') {
            continue;
        }
        if value.is_null() {
            t.remove(key);
            continue;
        }
        match t.get_mut(key) {
            Some(existing) if existing.is_object() && value.is_object() => {
                merge(existing, value, by_name);
            }
            Some(existing) if by_name && named_list(existing) && named_list(value) => {
                merge_named(existing, value);
            }
            _ => {
                let mut fresh = Value::Null;
                merge(&mut fresh, &strip_nulls(value), by_name);
                t.insert(key.clone(), fresh);
            }
        }
    }
}

fn strip_nulls(value: &Value) -> Value {
    match value {
        Value::Object(m) => Value::Object(
            m.iter()
                .filter(|(k, v)| !v.is_null() && !k.starts_with('$'))
                .map(|(k, v)| (k.clone(), strip_nulls(v)))
                .collect(),
        ),
        other => other.clone(),
    }
}

fn named_list(value: &Value) -> bool {
    value.as_array().is_some_and(|items| {
        !items.is_empty()
            && items
                .iter()
                .all(|i| i.get("name").is_some_and(Value::is_string))
    })
}

fn merge_named(target: &mut Value, patch: &Value) {
    let (Some(items), Some(changes)) = (target.as_array_mut(), patch.as_array()) else {
        return;
    };
    for change in changes {
        let found = items
            .iter_mut()
            .find(|i| i.get("name") == change.get("name"));
        match found {
            Some(item) => merge(item, change, true),
            None => items.push(strip_nulls(change)),
        }
    }
}

/// The `FieldsV1` set a patch touches: `f:<field>` for fields, `k:{"name":…}`
/// for elements of lists merged by name, `{}` for leaves.
pub fn fields_of(patch: &Value) -> Value {
    let Some(map) = patch.as_object() else {
        return json!({});
    };
    let mut out = Map::new();
    for (key, value) in map {
        if key.starts_with('$') || matches!(key.as_str(), "apiVersion" | "kind" | "status") {
            continue;
        }
        let owned = if named_list(value) {
            let mut elements = Map::new();
            for item in value.as_array().into_iter().flatten() {
                let id = json!({ "name": item["name"] });
                let mut fields = fields_of(item);
                if let Some(f) = fields.as_object_mut() {
                    f.insert(".".into(), json!({}));
                }
                elements.insert(format!("k:{id}"), fields);
            }
            Value::Object(elements)
        } else if value.is_object() {
            fields_of(value)
        } else {
            json!({})
        };
        out.insert(format!("f:{key}"), owned);
    }
    if let Some(meta) = out.get_mut("f:metadata").and_then(Value::as_object_mut) {
        for identity in ["f:name", "f:namespace", "f:resourceVersion", "f:uid"] {
            meta.remove(identity);
        }
    }
    Value::Object(out)
}

/// Adds the fields of `more` to `set`.
pub fn union(set: &mut Value, more: &Value) {
    merge(set, more, false);
}

/// Removes the fields of `taken` from `set`, pruning subtrees left empty.
pub fn subtract(set: &mut Value, taken: &Value) {
    let (Some(s), Some(t)) = (set.as_object_mut(), taken.as_object()) else {
        return;
    };
    for (key, sub) in t {
        let leaf = sub.as_object().is_some_and(Map::is_empty);
        if leaf {
            s.remove(key);
            continue;
        }
        if let Some(child) = s.get_mut(key) {
            let had = child.as_object().is_some_and(|m| !m.is_empty());
            subtract(child, sub);
            let now_empty = child.as_object().is_some_and(Map::is_empty);
            if had && now_empty {
                s.remove(key);
            }
        }
    }
}

/// Records that `manager` set the fields of `patch`, taking them from every
/// other manager; the writer's entry moves to the end (newest).
pub fn record_manager(object: &mut Value, manager: &str, operation: &str, patch: &Value) {
    let touched = fields_of(patch);
    let api_version = object["apiVersion"].clone();
    let mut entries: Vec<Value> = object["metadata"]["managedFields"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let mut mine = json!({});
    entries.retain_mut(|entry| {
        let same = entry["manager"] == manager && entry["operation"] == operation;
        if same {
            mine = entry["fieldsV1"].clone();
            return false;
        }
        if let Some(fields) = entry.get_mut("fieldsV1") {
            subtract(fields, &touched);
            return fields.as_object().is_some_and(|m| !m.is_empty());
        }
        true
    });
    union(&mut mine, &touched);
    entries.push(json!({
        "manager": manager,
        "operation": operation,
        "apiVersion": api_version,
        "time": super::store::now(),
        "fieldsType": "FieldsV1",
        "fieldsV1": mine,
    }));
    object["metadata"]["managedFields"] = Value::Array(entries);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strategic_merge_by_name() {
        let mut d = json!({"metadata": {"annotations": {"a": "1", "b": "2"}},
            "spec": {"template": {"spec": {"containers": [
                {"name": "web", "image": "web:1", "ports": [{"containerPort": 80}]},
                {"name": "sidecar", "image": "envoy:1"}]}}}});
        let patch = json!({"metadata": {"annotations": {"a": null, "c": "3"}},
            "spec": {"template": {"spec": {"containers": [{"name": "web", "image": "web:2"}]}}}});
        merge(&mut d, &patch, true);
        assert_eq!(d["metadata"]["annotations"], json!({"b": "2", "c": "3"}));
        let containers = &d["spec"]["template"]["spec"]["containers"];
        assert_eq!(containers[0]["image"], "web:2");
        assert_eq!(containers[0]["ports"][0]["containerPort"], 80);
        assert_eq!(containers[1]["image"], "envoy:1");
        // A JSON merge patch replaces the list.
        merge(&mut d, &patch, false);
        let containers = d["spec"]["template"]["spec"]["containers"]
            .as_array()
            .unwrap();
        assert_eq!(containers.len(), 1);
    }

    #[test]
    fn managers_own_what_they_set() {
        let mut d = json!({"apiVersion": "apps/v1", "metadata": {}});
        let image = |i: &str| json!({"spec": {"template": {"spec": {"containers": [{"name": "web", "image": i}]}}}});
        let mut first = image("web:1");
        first["spec"]["replicas"] = json!(3);
        record_manager(&mut d, "helm", "Update", &first);
        record_manager(&mut d, "kubectl-set", "Update", &image("web:2"));
        let entries = d["metadata"]["managedFields"].as_array().unwrap();
        let path = "/fieldsV1/f:spec/f:template/f:spec/f:containers/k:{\"name\":\"web\"}/f:image";
        assert_eq!(entries.len(), 2, "{entries:?}");
        assert!(entries[1].pointer(path).is_some());
        assert!(entries[0].pointer(path).is_none());
        assert!(entries[0].pointer("/fieldsV1/f:spec/f:replicas").is_some());
        assert_eq!(entries[1]["manager"], "kubectl-set");
    }
}
