//! The fake API server's objects: one resourceVersion counter for all of
//! them, a bounded history of watch events, and selectors.

use std::collections::{BTreeMap, VecDeque};

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::{Namespace, Pod, Service};
use serde_json::{json, Value};
use tokio::sync::broadcast;

/// Watch events kept for resuming watches; older versions get `410 Gone`.
const HISTORY: usize = 4096;

/// The resources the fake serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    /// `v1` Namespace (cluster-wide).
    Namespace,
    /// `apps/v1` Deployment.
    Deployment,
    /// `apps/v1` ReplicaSet.
    ReplicaSet,
    /// `v1` Service.
    Service,
    /// `v1` Pod.
    Pod,
}

impl Kind {
    /// The resource from an API path's group/version and plural.
    pub fn from_path(group_version: &str, plural: &str) -> Option<Kind> {
        Some(match (group_version, plural) {
            ("v1", "namespaces") => Kind::Namespace,
            ("v1", "services") => Kind::Service,
            ("v1", "pods") => Kind::Pod,
            ("apps/v1", "deployments") => Kind::Deployment,
            ("apps/v1", "replicasets") => Kind::ReplicaSet,
            _ => return None,
        })
    }

    /// The plural resource name.
    pub fn plural(self) -> &'static str {
        match self {
            Kind::Namespace => "namespaces",
            Kind::Deployment => "deployments",
            Kind::ReplicaSet => "replicasets",
            Kind::Service => "services",
            Kind::Pod => "pods",
        }
    }

    /// The API group (`""` for core).
    pub fn group(self) -> &'static str {
        match self {
            Kind::Deployment | Kind::ReplicaSet => "apps",
            _ => "",
        }
    }

    /// `plural.group`, as Kubernetes names resources in messages.
    pub fn qualified(self) -> String {
        match self.group() {
            "" => self.plural().to_owned(),
            group => format!("{}.{group}", self.plural()),
        }
    }

    fn api_version(self) -> &'static str {
        if self.group() == "apps" {
            "apps/v1"
        } else {
            "v1"
        }
    }

    fn name(self) -> &'static str {
        match self {
            Kind::Namespace => "Namespace",
            Kind::Deployment => "Deployment",
            Kind::ReplicaSet => "ReplicaSet",
            Kind::Service => "Service",
            Kind::Pod => "Pod",
        }
    }

    /// Whether objects live in a namespace.
    pub fn namespaced(self) -> bool {
        self != Kind::Namespace
    }

    /// Round-trips an object through its k8s-openapi type, so only the real
    /// schema is stored; the error is the type mismatch.
    pub fn normalise(self, object: Value) -> Result<Value, String> {
        fn through<T: serde::de::DeserializeOwned + serde::Serialize>(
            v: Value,
        ) -> Result<Value, String> {
            let typed: T = serde_json::from_value(v).map_err(|e| e.to_string())?;
            serde_json::to_value(typed).map_err(|e| e.to_string())
        }
        match self {
            Kind::Namespace => through::<Namespace>(object),
            Kind::Deployment => through::<Deployment>(object),
            Kind::ReplicaSet => through::<ReplicaSet>(object),
            Kind::Service => through::<Service>(object),
            Kind::Pod => through::<Pod>(object),
        }
    }
}

/// Where an object lives.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Key {
    /// Its resource.
    pub kind: Kind,
    /// Its namespace (`""` for namespaces themselves).
    pub namespace: String,
    /// Its name.
    pub name: String,
}

impl Key {
    /// A key.
    pub fn new(kind: Kind, namespace: &str, name: &str) -> Key {
        Key {
            kind,
            namespace: if kind.namespaced() {
                namespace.to_owned()
            } else {
                String::new()
            },
            name: name.to_owned(),
        }
    }
}

/// One change, as a watch sends it.
#[derive(Debug, Clone)]
pub struct Change {
    /// The resourceVersion it produced.
    pub version: u64,
    /// What changed.
    pub key: Key,
    /// `ADDED`, `MODIFIED` or `DELETED`.
    pub kind: &'static str,
    /// The object after the change (before it, for deletions).
    pub object: Value,
}

/// Every object, the version counter and the event history.
#[derive(Debug)]
pub struct Objects {
    version: u64,
    items: BTreeMap<Key, Value>,
    history: VecDeque<Change>,
    sender: broadcast::Sender<Change>,
}

/// An RFC 3339 timestamp of now, as Kubernetes writes them.
pub fn now() -> String {
    k8s_openapi::chrono::Utc::now().to_rfc3339_opts(k8s_openapi::chrono::SecondsFormat::Secs, true)
}

impl Objects {
    /// An empty store.
    pub fn new(sender: broadcast::Sender<Change>) -> Objects {
        Objects {
            version: 0,
            items: BTreeMap::new(),
            history: VecDeque::new(),
            sender,
        }
    }

    /// The newest resourceVersion.
    pub fn version(&self) -> u64 {
        self.version
    }

    /// The oldest version a watch can resume from.
    pub fn oldest(&self) -> u64 {
        self.history.front().map_or(self.version, |c| c.version - 1)
    }

    /// One object.
    pub fn get(&self, key: &Key) -> Option<&Value> {
        self.items.get(key)
    }

    /// Objects of a kind, optionally in one namespace.
    pub fn list(&self, kind: Kind, namespace: Option<&str>) -> Vec<(Key, Value)> {
        self.items
            .iter()
            .filter(|(k, _)| k.kind == kind && namespace.is_none_or(|ns| k.namespace == ns))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }

    /// Changes after `version`, oldest first.
    pub fn since(&self, version: u64) -> Vec<Change> {
        self.history
            .iter()
            .filter(|c| c.version > version)
            .cloned()
            .collect()
    }

    /// Stores an object: stamps version, uid and creation time, and tells watchers.
    pub fn put(&mut self, key: &Key, mut object: Value) -> Value {
        self.version += 1;
        let created = !self.items.contains_key(key);
        object["apiVersion"] = json!(key.kind.api_version());
        object["kind"] = json!(key.kind.name());
        let meta = &mut object["metadata"];
        if !meta.is_object() {
            *meta = json!({});
        }
        meta["name"] = json!(key.name);
        if key.kind.namespaced() {
            meta["namespace"] = json!(key.namespace);
        }
        meta["resourceVersion"] = json!(self.version.to_string());
        if created || meta.get("uid").is_none() {
            meta["uid"] = json!(format!("00000000-0000-4000-8000-{:012x}", self.version));
            meta["creationTimestamp"] = json!(now());
        }
        // Everything stored has the real schema, whoever wrote it.
        let object = key.kind.normalise(object.clone()).unwrap_or(object);
        self.items.insert(key.clone(), object.clone());
        self.record(
            key,
            if created { "ADDED" } else { "MODIFIED" },
            object.clone(),
        );
        object
    }

    /// Removes an object and tells watchers.
    pub fn delete(&mut self, key: &Key) -> Option<Value> {
        let mut object = self.items.remove(key)?;
        self.version += 1;
        object["metadata"]["resourceVersion"] = json!(self.version.to_string());
        self.record(key, "DELETED", object.clone());
        Some(object)
    }

    fn record(&mut self, key: &Key, kind: &'static str, object: Value) {
        let change = Change {
            version: self.version,
            key: key.clone(),
            kind,
            object,
        };
        if self.history.len() == HISTORY {
            self.history.pop_front();
        }
        self.history.push_back(change.clone());
        // Nobody listening is fine.
        let _ = self.sender.send(change);
    }
}

/// A parsed label or field selector: every term must hold.
#[derive(Debug, Clone, Default)]
pub struct Selector {
    terms: Vec<(String, Op)>,
}

#[derive(Debug, Clone)]
enum Op {
    Equals(String),
    NotEquals(String),
    Exists,
    Missing,
}

impl Selector {
    /// Parses `a=b,c!=d,e,!f`; `None` when a term is malformed.
    pub fn parse(text: &str) -> Option<Selector> {
        let mut terms = Vec::new();
        for term in text.split(',').map(str::trim).filter(|t| !t.is_empty()) {
            let parsed = if let Some((k, v)) = term.split_once("!=") {
                (k, Op::NotEquals(v.to_owned()))
            } else if let Some((k, v)) = term.split_once("==").or_else(|| term.split_once('=')) {
                (k, Op::Equals(v.to_owned()))
            } else if let Some(k) = term.strip_prefix('!') {
                (k, Op::Missing)
            } else {
                (term, Op::Exists)
            };
            if parsed.0.is_empty() || parsed.0.contains(' ') {
                return None;
            }
            terms.push((parsed.0.trim().to_owned(), parsed.1));
        }
        Some(Selector { terms })
    }

    /// Whether `lookup` satisfies every term.
    pub fn matches(&self, lookup: impl Fn(&str) -> Option<String>) -> bool {
        self.terms.iter().all(|(key, op)| {
            let value = lookup(key);
            match op {
                Op::Equals(v) => value.as_deref() == Some(v),
                Op::NotEquals(v) => value.as_deref() != Some(v),
                Op::Exists => value.is_some(),
                Op::Missing => value.is_none(),
            }
        })
    }

    /// The keys the selector looks at.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.terms.iter().map(|(k, _)| k.as_str())
    }
}

/// Whether an object matches a label selector and a field selector.
pub fn selected(object: &Value, labels: &Selector, fields: &Selector) -> bool {
    let meta = &object["metadata"];
    labels.matches(|k| meta["labels"][k].as_str().map(str::to_owned))
        && fields.matches(|k| match k {
            "metadata.name" => meta["name"].as_str().map(str::to_owned),
            "metadata.namespace" => meta["namespace"].as_str().map(str::to_owned),
            "status.phase" => object["status"]["phase"].as_str().map(str::to_owned),
            _ => None,
        })
}

/// Field selectors the fake understands, as the real API server's per-kind list.
pub fn field_supported(key: &str) -> bool {
    matches!(key, "metadata.name" | "metadata.namespace" | "status.phase")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selectors() {
        let object =
            json!({"metadata": {"name": "web", "labels": {"app": "web", "tier": "front"}}});
        let yes = ["app=web", "app==web,tier", "app!=api,!missing", ""];
        let no = ["app=api", "missing", "!tier"];
        for text in yes {
            let s = Selector::parse(text).unwrap();
            assert!(selected(&object, &s, &Selector::default()), "{text}");
        }
        for text in no {
            let s = Selector::parse(text).unwrap();
            assert!(!selected(&object, &s, &Selector::default()), "{text}");
        }
        let by_name = Selector::parse("metadata.name=web").unwrap();
        assert!(selected(&object, &Selector::default(), &by_name));
    }

    #[test]
    fn versions_history_and_normalising() {
        let (tx, _) = broadcast::channel(8);
        let mut objects = Objects::new(tx);
        let key = Key::new(Kind::Namespace, "ignored", "dev");
        let first = objects.put(&key, json!({"metadata": {}}));
        assert_eq!(first["metadata"]["resourceVersion"], "1");
        assert_eq!(first["kind"], "Namespace");
        objects.put(&key, first.clone());
        objects.delete(&key);
        let kinds: Vec<&str> = objects.since(0).iter().map(|c| c.kind).collect();
        assert_eq!(kinds, ["ADDED", "MODIFIED", "DELETED"]);
        assert_eq!(objects.since(2).len(), 1);
        let bad = json!({"spec": {"replicas": "three"}});
        assert!(Kind::Deployment.normalise(bad).is_err());
    }
}
