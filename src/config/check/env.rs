//! Checks `[environments.*]`: targets, strategy, approvals, freezes and their
//! time zones, promotion.

use std::collections::BTreeMap;

use super::{list, Checked, Checker};
use crate::config::freeze::{FreezeWindow, Zone};
use crate::config::glob::RefPattern;
use crate::config::locate::KeyPath;
use crate::config::model::{Cluster, Config, Environment, Person, Prometheus, Strategy, Target};
use crate::config::raw::{RawEnvironment, RawFreeze, RawStrategy};
use crate::config::template::{is_dns_label, NamespaceTemplate};
use crate::names::{escape_for_display as shown, EnvName};

const NAMESPACE_RULE: &str = "namespaces are DNS-1123 labels: at most 63 of a-z, 0-9 and `-`, starting and ending with a letter or digit";

/// Checks every environment, then the links between them; returns them in file order.
pub(crate) fn environments(
    ck: &Checker<'_>,
    raw: &BTreeMap<String, RawEnvironment>,
    clusters: &BTreeMap<String, Cluster>,
    people: &[Person],
    prometheus: &BTreeMap<String, Prometheus>,
) -> Checked<Vec<Environment>> {
    let base = KeyPath::root().key("environments");
    if raw.is_empty() {
        return Err(ck.err(
            &base,
            "no environments are configured; add an [environments.<name>] table",
        ));
    }
    let mut envs = Vec::new();
    for (name, env) in raw {
        envs.push(environment(
            ck,
            &base.key(name),
            name,
            env,
            clusters,
            people,
            prometheus,
        )?);
    }
    for env in &envs {
        let Some(from) = &env.promote_from else {
            continue;
        };
        let path = base.key(env.name.as_str()).key("promote_from");
        if from == &env.name {
            return Err(ck.err(
                &path,
                format!("environment `{from}` cannot promote from itself"),
            ));
        }
        if !envs.iter().any(|e| &e.name == from) {
            let known: Vec<&str> = envs.iter().map(|e| e.name.as_str()).collect();
            return Err(ck.err(
                &path,
                format!(
                    "unknown environment `{from}` (environments: {})",
                    list(&known)
                ),
            ));
        }
    }
    for env in envs.iter().filter(|e| e.require_verified) {
        let path = base.key(env.name.as_str()).key("require_verified");
        let Some(from) = &env.promote_from else {
            return Err(ck.err(
                &path,
                "require_verified applies to promotions, and this environment has no promote_from",
            ));
        };
        if envs.iter().any(|e| &e.name == from && e.verify.is_none()) {
            return Err(ck.err(
                &path,
                format!(
                    "require_verified = true, but {from} (promote_from) has no verify table, so none of its releases would ever be verified"
                ),
            ));
        }
    }
    super::flow::check(ck, &base, &envs)?;
    envs.sort_by_key(|e| ck.line_of(&base.key(e.name.as_str())));
    Ok(envs)
}

fn environment(
    ck: &Checker<'_>,
    path: &KeyPath,
    name: &str,
    raw: &RawEnvironment,
    clusters: &BTreeMap<String, Cluster>,
    people: &[Person],
    prometheus: &BTreeMap<String, Prometheus>,
) -> Checked<Environment> {
    let env = EnvName::new(name).map_err(|e| ck.err(path, e.to_string()))?;
    let cluster = clusters.get(&raw.cluster).cloned().ok_or_else(|| {
        let known: Vec<&str> = clusters.keys().map(String::as_str).collect();
        ck.err(
            &path.key("cluster"),
            format!(
                "unknown cluster `{}` (clusters: {})",
                shown(&raw.cluster),
                list(&known)
            ),
        )
    })?;
    let target = target(ck, path, raw)?;
    let requesters = ck.role_list(&path.key("requesters"), &raw.requesters)?;
    if raw.refs.is_empty() {
        return Err(ck.err(
            &path.key("refs"),
            "refs is empty, so nothing could be deployed; use [\"**\"] for any branch",
        ));
    }
    let mut refs = Vec::new();
    for (i, text) in raw.refs.iter().enumerate() {
        refs.push(
            RefPattern::new(text).map_err(|e| ck.err(&path.key("refs").index(i), e.to_string()))?,
        );
    }
    let strategy = match (raw.strategy, &raw.gitops) {
        (RawStrategy::Rolling, None) => Strategy::Rolling,
        (RawStrategy::Gitops, Some(g)) => {
            Strategy::Gitops(super::gitops::gitops(ck, &path.key("gitops"), g)?)
        }
        (RawStrategy::Gitops, None) => {
            return Err(ck.err(
                &path.key("gitops"),
                format!("strategy = \"gitops\" needs an [environments.{name}.gitops] table"),
            ))
        }
        (RawStrategy::Rolling, Some(_)) => {
            return Err(ck.err(
                &path.key("gitops"),
                "a gitops table needs strategy = \"gitops\"",
            ))
        }
    };
    let promote_from = match &raw.promote_from {
        Some(text) => {
            Some(EnvName::new(text).map_err(|e| ck.err(&path.key("promote_from"), e.to_string()))?)
        }
        None => None,
    };
    let env_zone = match &raw.timezone {
        Some(name) => Some(zone(ck, &path.key("timezone"), name)?),
        None => None,
    };
    let mut freezes = Vec::new();
    for (i, f) in raw.freeze.iter().enumerate() {
        freezes.push(freeze(
            ck,
            &path.key("freeze").index(i),
            f,
            env_zone.as_ref(),
        )?);
    }
    Ok(Environment {
        name: env,
        cluster,
        target,
        requesters,
        refs,
        require_green_ci: raw.require_green_ci,
        strategy,
        auto_rollback: raw.auto_rollback,
        rollout_timeout: ck.duration(&path.key("rollout_timeout"), &raw.rollout_timeout)?,
        promote_from,
        approvals: super::approvals::approvals(ck, &path.key("approvals"), &raw.approvals, people)?,
        freezes,
        verify: match &raw.verify {
            Some(v) => Some(super::verify::verify(
                ck,
                &path.key("verify"),
                v,
                prometheus,
            )?),
            None => None,
        },
        require_verified: raw.require_verified,
        soak: match &raw.soak {
            Some(text) => Some(ck.duration(&path.key("soak"), text)?),
            None => None,
        },
    })
}

fn namespace(ck: &Checker<'_>, path: &KeyPath, text: &str) -> Checked<String> {
    if !is_dns_label(text) {
        return Err(ck.err(
            path,
            format!(
                "`{}` is not a valid namespace; {NAMESPACE_RULE}",
                shown(text)
            ),
        ));
    }
    Ok(text.to_owned())
}

fn target(ck: &Checker<'_>, path: &KeyPath, raw: &RawEnvironment) -> Checked<Target> {
    match (&raw.namespace, &raw.namespace_template) {
        (Some(ns), None) => {
            for (key, set) in [
                ("ttl", raw.ttl.is_some()),
                ("source_namespace", raw.source_namespace.is_some()),
            ] {
                if set {
                    return Err(ck.err(
                        &path.key(key),
                        format!("{key} applies only with namespace_template"),
                    ));
                }
            }
            Ok(Target::Namespace(namespace(
                ck,
                &path.key("namespace"),
                ns,
            )?))
        }
        (None, Some(t)) => {
            let template = NamespaceTemplate::new(t)
                .map_err(|e| ck.err(&path.key("namespace_template"), e.to_string()))?;
            let ttl = ck.duration(&path.key("ttl"), raw.ttl.as_deref().unwrap_or("72h"))?;
            let source_namespace = match &raw.source_namespace {
                Some(ns) => Some(namespace(ck, &path.key("source_namespace"), ns)?),
                None => None,
            };
            Ok(Target::Preview {
                template,
                ttl,
                source_namespace,
            })
        }
        (Some(_), Some(_)) => Err(ck.err(
            &path.key("namespace_template"),
            "give either namespace or namespace_template, not both",
        )),
        (None, None) => Err(ck.err(
            &path.key("namespace"),
            "give namespace (or namespace_template for per-branch previews)",
        )),
    }
}

fn zone(ck: &Checker<'_>, path: &KeyPath, name: &str) -> Checked<Zone> {
    Zone::named(name).map_err(|e| ck.err(path, e.to_string()))
}

fn freeze(
    ck: &Checker<'_>,
    path: &KeyPath,
    raw: &RawFreeze,
    env_zone: Option<&Zone>,
) -> Checked<FreezeWindow> {
    let reason = ck.text(&path.key("reason"), &raw.reason, "reason")?;
    let own_zone = match &raw.timezone {
        Some(name) => Some(zone(ck, &path.key("timezone"), name)?),
        None => None,
    };
    let zone = own_zone.as_ref().or(env_zone);
    let fixed = raw.start.is_some() || raw.end.is_some();
    let weekly = raw.days.is_some() || raw.from.is_some() || raw.to.is_some();
    let missing = |key: &str| ck.err(&path.key(key), format!("missing `{key}`"));
    let result = match (fixed, weekly) {
        (true, false) => {
            let start = raw.start.as_ref().ok_or_else(|| missing("start"))?;
            let end = raw.end.as_ref().ok_or_else(|| missing("end"))?;
            FreezeWindow::fixed(&start.0, &end.0, &reason, zone)
        }
        (false, true) => {
            let days = raw.days.as_ref().ok_or_else(|| missing("days"))?;
            let from = raw.from.as_ref().ok_or_else(|| missing("from"))?;
            let to = raw.to.as_ref().ok_or_else(|| missing("to"))?;
            FreezeWindow::weekly(days, from, to, &reason, zone)
        }
        _ => {
            return Err(ck.err(
                path,
                "a freeze window has either start and end, or days, from and to",
            ));
        }
    };
    result.map_err(|e| {
        // Point at the offending day itself when it is one.
        let key = path.key(e.field);
        let key = match (e.field, &raw.days) {
            ("days", Some(days)) => days
                .iter()
                .position(|d| crate::config::freeze::Weekday::parse(d).is_none())
                .map_or(key.clone(), |i| key.index(i)),
            _ => key,
        };
        ck.err(&key, e.message)
    })
}

/// On clusters that impersonate, everyone who may request a deploy there needs a `kube_user`.
pub(crate) fn impersonation(ck: &Checker<'_>, config: &Config) -> Checked<()> {
    for env in config.envs().iter().filter(|e| e.cluster.impersonate) {
        for person in config.people().iter().filter(|p| p.kube_user.is_none()) {
            if person.has_any_role(&env.requesters) {
                let path = KeyPath::root()
                    .key("people")
                    .key(person.id.as_str())
                    .key("kube_user");
                return Err(ck.err(
                    &path,
                    format!(
                        "cluster `{}` impersonates requesters, and {} may deploy to {}, so set kube_user",
                        env.cluster.name, person.id, env.name
                    ),
                ));
            }
        }
    }
    Ok(())
}
