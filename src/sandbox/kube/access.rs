//! What RBAC authorises for a recorded request, worked out the way the API
//! server's `RequestInfoFactory` (k8s.io/apiserver `endpoints/request`) and
//! its handlers do, so a test can compare what Gantry sent with a role.
//!
//! One request can need more than one check: `Impersonate-*` headers are
//! authorised first (verb `impersonate`), and a server-side apply that
//! creates its object is also authorised for `create` by the PATCH handler
//! (`createAuthorizerAttributes` in `handlers/patch.go`).

use super::Recorded;

/// One resource check: what a role's `rules[]` must grant.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Access {
    /// `get`, `list`, `watch`, `create`, `update`, `patch`, `delete`,
    /// `deletecollection` or `impersonate`.
    pub verb: String,
    /// The API group, `""` for the core group.
    pub group: String,
    /// The plural resource, with `/subresource` when there is one
    /// (`deployments/scale`), as a rule's `resources` names it.
    pub resource: String,
    /// The namespace; `None` at the cluster scope. As in Kubernetes, a
    /// request on one Namespace object carries that namespace's name.
    pub namespace: Option<String>,
    /// The object's name, for requests on one object (a rule's
    /// `resourceNames`); a list by `metadata.name=` field selector has one too.
    pub name: Option<String>,
}

/// One check the API server makes for a request.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Authorisation {
    /// A request on an API resource, judged by `rules[].resources`.
    Resource(Access),
    /// Any other path (`/version`, `/healthz`, discovery), judged by
    /// `rules[].nonResourceURLs`; the verb is the lowercased HTTP method.
    NonResource {
        /// `get`, `post`, …
        verb: String,
        /// The URL path.
        path: String,
    },
}

/// Subresources of a Namespace object, which keep `namespaces` the resource.
const NAMESPACE_SUBRESOURCES: [&str; 2] = ["status", "finalize"];

/// How the API server reads a boolean query parameter: anything but `0`
/// and `false` (any case) is true.
pub(super) fn query_true(value: &str) -> bool {
    value != "0" && !value.eq_ignore_ascii_case("false")
}

/// The request's own check, as the authorisation filter makes it.
pub(super) fn request(r: &Recorded) -> Authorisation {
    let non_resource = || Authorisation::NonResource {
        verb: r.method.to_ascii_lowercase(),
        path: r.path.clone(),
    };
    let parts: Vec<&str> = r.path.split('/').filter(|p| !p.is_empty()).collect();
    // `/api/{version}/…` has no group; `/apis/{group}/{version}/…`.
    let (group, rest) = match parts.as_slice() {
        ["api", _version, rest @ ..] if !rest.is_empty() => ("", rest),
        ["apis", group, _version, rest @ ..] if !rest.is_empty() => (*group, rest),
        _ => return non_resource(),
    };
    let (mut verb, rest) = match rest {
        ["watch", rest @ ..] if !rest.is_empty() => ("watch", rest),
        _ => (
            match r.method.as_str() {
                "POST" => "create",
                "GET" | "HEAD" => "get",
                "PUT" => "update",
                "PATCH" => "patch",
                "DELETE" => "delete",
                _ => "",
            },
            rest,
        ),
    };
    let (namespace, parts) = match rest {
        ["namespaces", ns, tail @ ..] => {
            let own = tail
                .first()
                .is_none_or(|t| NAMESPACE_SUBRESOURCES.contains(t));
            (Some((*ns).to_owned()), if own { rest } else { tail })
        }
        _ => (None, rest),
    };
    let resource = parts.first().copied().unwrap_or_default();
    let mut name = parts.get(1).map(|n| (*n).to_owned());
    let subresource = parts.get(2).copied();
    if name.is_none() && verb == "get" {
        verb = if r.param("watch").is_some_and(|w| query_true(&w)) {
            "watch"
        } else {
            "list"
        };
        name = r.param("fieldSelector").and_then(|f| exact_name(&f));
    }
    if name.is_none() && verb == "delete" {
        verb = "deletecollection";
    }
    Authorisation::Resource(Access {
        verb: verb.to_owned(),
        group: group.to_owned(),
        resource: match subresource {
            Some(sub) => format!("{resource}/{sub}"),
            None => resource.to_owned(),
        },
        namespace,
        name,
    })
}

/// The name a field selector pins with `metadata.name=`, as RBAC sees it.
fn exact_name(selector: &str) -> Option<String> {
    selector.split(',').find_map(|term| {
        let value = term
            .strip_prefix("metadata.name==")
            .or_else(|| term.strip_prefix("metadata.name="))?;
        (!value.is_empty() && !value.contains(['/', '%'])).then(|| value.to_owned())
    })
}

/// The checks `Impersonate-*` headers need, before the request's own.
pub(super) fn impersonation(r: &Recorded) -> Vec<Authorisation> {
    let check = |group: &str, resource: String, namespace: Option<&str>, name: &str| {
        Authorisation::Resource(Access {
            verb: "impersonate".to_owned(),
            group: group.to_owned(),
            resource,
            namespace: namespace.map(str::to_owned),
            name: Some(name.to_owned()),
        })
    };
    let mut checks = Vec::new();
    if let Some(user) = r.header("impersonate-user") {
        let account: Vec<&str> = user.splitn(4, ':').collect();
        checks.push(match account.as_slice() {
            ["system", "serviceaccount", ns, name] => {
                check("", "serviceaccounts".into(), Some(ns), name)
            }
            _ => check("", "users".into(), None, user),
        });
    }
    for (header, value) in &r.headers {
        if header == "impersonate-group" {
            checks.push(check("", "groups".into(), None, value));
        } else if header == "impersonate-uid" {
            checks.push(check("authentication.k8s.io", "uids".into(), None, value));
        } else if let Some(key) = header.strip_prefix("impersonate-extra-") {
            let resource = format!("userextras/{key}");
            checks.push(check("authentication.k8s.io", resource, None, value));
        }
    }
    checks
}

/// Whether the request was a server-side apply that created its object:
/// the PATCH handler then also checks `create`.
pub(super) fn applied_create(r: &Recorded) -> bool {
    let apply = r
        .header("content-type")
        .and_then(|t| t.split(';').next())
        .is_some_and(|t| t.trim() == "application/apply-patch+yaml");
    r.method == "PATCH" && apply && r.status == Some(201)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn recorded(method: &str, target: &str) -> Recorded {
        let (path, query) = target.split_once('?').unwrap_or((target, ""));
        Recorded {
            method: method.into(),
            path: path.into(),
            query: query.into(),
            headers: BTreeMap::new(),
            body: String::new(),
            status: Some(200),
            seq: 0,
        }
    }

    fn access(
        verb: &str,
        group: &str,
        resource: &str,
        ns: Option<&str>,
        name: Option<&str>,
    ) -> Access {
        Access {
            verb: verb.into(),
            group: group.into(),
            resource: resource.into(),
            namespace: ns.map(str::to_owned),
            name: name.map(str::to_owned),
        }
    }

    #[test]
    fn resource_requests_name_verb_group_resource_and_namespace() {
        let deployments = "/apis/apps/v1/namespaces/dev/deployments";
        let cases = [
            (
                "GET",
                format!("{deployments}/web"),
                access("get", "apps", "deployments", Some("dev"), Some("web")),
            ),
            (
                "PATCH",
                format!("{deployments}/web?fieldManager=gantry"),
                access("patch", "apps", "deployments", Some("dev"), Some("web")),
            ),
            (
                "PUT",
                format!("{deployments}/web"),
                access("update", "apps", "deployments", Some("dev"), Some("web")),
            ),
            (
                "GET",
                deployments.to_owned(),
                access("list", "apps", "deployments", Some("dev"), None),
            ),
            (
                "GET",
                format!("{deployments}?fieldSelector=metadata.name%3Dweb"),
                access("list", "apps", "deployments", Some("dev"), Some("web")),
            ),
            (
                "GET",
                format!("{deployments}?watch=true&resourceVersion=7"),
                access("watch", "apps", "deployments", Some("dev"), None),
            ),
            (
                "GET",
                format!("{deployments}?watch=1"),
                access("watch", "apps", "deployments", Some("dev"), None),
            ),
            (
                "GET",
                format!("{deployments}?watch=false"),
                access("list", "apps", "deployments", Some("dev"), None),
            ),
            (
                "GET",
                "/apis/apps/v1/watch/namespaces/dev/deployments".into(),
                access("watch", "apps", "deployments", Some("dev"), None),
            ),
            (
                "POST",
                deployments.to_owned(),
                access("create", "apps", "deployments", Some("dev"), None),
            ),
            (
                "DELETE",
                format!("{deployments}/web"),
                access("delete", "apps", "deployments", Some("dev"), Some("web")),
            ),
            (
                "DELETE",
                deployments.to_owned(),
                access("deletecollection", "apps", "deployments", Some("dev"), None),
            ),
            (
                "PATCH",
                format!("{deployments}/web/scale"),
                access(
                    "patch",
                    "apps",
                    "deployments/scale",
                    Some("dev"),
                    Some("web"),
                ),
            ),
            (
                "GET",
                format!("{deployments}/web/status"),
                access(
                    "get",
                    "apps",
                    "deployments/status",
                    Some("dev"),
                    Some("web"),
                ),
            ),
            (
                "GET",
                "/apis/apps/v1/deployments".into(),
                access("list", "apps", "deployments", None, None),
            ),
            (
                "GET",
                "/api/v1/namespaces/dev/pods?labelSelector=app%3Dweb".into(),
                access("list", "", "pods", Some("dev"), None),
            ),
            (
                "GET",
                "/api/v1/namespaces/dev/pods/web-1/log".into(),
                access("get", "", "pods/log", Some("dev"), Some("web-1")),
            ),
            (
                "PATCH",
                "/api/v1/namespaces/preview-x/services/web".into(),
                access("patch", "", "services", Some("preview-x"), Some("web")),
            ),
            (
                "GET",
                "/api/v1/namespaces?labelSelector=gantry.dev%2Fpreview%3Dtrue".into(),
                access("list", "", "namespaces", None, None),
            ),
            // A request on one Namespace carries its name as the namespace.
            (
                "GET",
                "/api/v1/namespaces/preview-x".into(),
                access(
                    "get",
                    "",
                    "namespaces",
                    Some("preview-x"),
                    Some("preview-x"),
                ),
            ),
            (
                "DELETE",
                "/api/v1/namespaces/preview-x".into(),
                access(
                    "delete",
                    "",
                    "namespaces",
                    Some("preview-x"),
                    Some("preview-x"),
                ),
            ),
            (
                "PUT",
                "/api/v1/namespaces/preview-x/finalize".into(),
                access(
                    "update",
                    "",
                    "namespaces/finalize",
                    Some("preview-x"),
                    Some("preview-x"),
                ),
            ),
            (
                "GET",
                "/apis/rbac.authorization.k8s.io/v1/clusterroles/view".into(),
                access(
                    "get",
                    "rbac.authorization.k8s.io",
                    "clusterroles",
                    None,
                    Some("view"),
                ),
            ),
        ];
        for (method, target, want) in cases {
            let got = request(&recorded(method, &target));
            assert_eq!(got, Authorisation::Resource(want), "{method} {target}");
        }
    }

    #[test]
    fn other_paths_are_non_resource_urls() {
        for (method, path) in [
            ("GET", "/version"),
            ("GET", "/api"),
            ("GET", "/api/v1"),
            ("GET", "/apis"),
            ("GET", "/apis/apps/v1"),
            ("GET", "/healthz"),
            ("POST", "/openapi/v3"),
        ] {
            let want = Authorisation::NonResource {
                verb: method.to_ascii_lowercase(),
                path: path.into(),
            };
            assert_eq!(request(&recorded(method, path)), want, "{method} {path}");
        }
    }

    #[test]
    fn impersonation_and_apply_creates_add_checks() {
        let mut r = recorded("PATCH", "/api/v1/namespaces/preview-x?fieldManager=gantry");
        r.headers
            .insert("content-type".into(), "application/apply-patch+yaml".into());
        r.status = Some(201);
        assert!(applied_create(&r));
        r.status = Some(200);
        assert!(
            !applied_create(&r),
            "an apply to an existing object is only a patch"
        );
        r.headers
            .insert("content-type".into(), "application/merge-patch+json".into());
        r.status = Some(201);
        assert!(!applied_create(&r));

        r.headers
            .insert("impersonate-user".into(), "alice@example.com".into());
        r.headers.insert("impersonate-group".into(), "devs".into());
        let checks = impersonation(&r);
        assert_eq!(
            checks,
            [
                Authorisation::Resource(access(
                    "impersonate",
                    "",
                    "users",
                    None,
                    Some("alice@example.com")
                )),
                Authorisation::Resource(access("impersonate", "", "groups", None, Some("devs"))),
            ]
        );
        r.headers.clear();
        r.headers.insert(
            "impersonate-user".into(),
            "system:serviceaccount:ci:deployer".into(),
        );
        assert_eq!(
            impersonation(&r),
            [Authorisation::Resource(access(
                "impersonate",
                "",
                "serviceaccounts",
                Some("ci"),
                Some("deployer")
            ))]
        );
    }
}
