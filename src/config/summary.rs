//! A human-readable summary for `gantry check-config`.

use std::fmt::Write as _;

use super::model::{Approvals, Config, GitopsFormat, GitopsSource, Strategy, Target};
use crate::names::RoleName;

fn roles(list: &[RoleName]) -> String {
    if list.is_empty() {
        "nobody".to_owned()
    } else {
        list.iter()
            .map(RoleName::as_str)
            .collect::<Vec<_>>()
            .join(", ")
    }
}

fn approvals(a: &Approvals) -> String {
    if a.rules.is_empty() {
        return "none".to_owned();
    }
    let own = if a.self_approval {
        "self-approval allowed"
    } else {
        "no self-approval"
    };
    let per_person = if a.rules.len() > 1 && !a.one_rule_per_person {
        ", one person may count for several rules"
    } else {
        ""
    };
    let expires = humantime::format_duration(a.expires);
    format!(
        "{}, all required, {own}{per_person}, expires after {expires}",
        a.describe()
    )
}

impl Config {
    /// A multi-line summary: apps, environments and their policy, people,
    /// platforms. The caller prints the path and version.
    pub fn summary(&self) -> String {
        let mut out = String::new();
        // Writing to a String cannot fail; the results are ignored for that reason.
        let default = self.default_app().map(|a| a.name.as_str());
        let _ = writeln!(out, "apps:");
        for app in self.apps() {
            let mark = if Some(app.name.as_str()) == default {
                " (default)"
            } else {
                ""
            };
            let _ = writeln!(
                out,
                "  {}{mark}: repo {}, image {}:{}, deployments {}, container {}",
                app.name,
                app.repo,
                app.image,
                app.tag_template,
                app.deployments.join(", "),
                app.container
            );
        }
        if default.is_none() && self.apps().len() > 1 {
            let _ = writeln!(out, "  (no default_app: commands must name the app)");
        }
        let _ = writeln!(out, "environments:");
        for env in self.envs() {
            let target = match &env.target {
                Target::Namespace(ns) => format!("namespace {ns}"),
                Target::Preview { template, ttl, .. } => {
                    format!(
                        "namespaces {template} (ttl {})",
                        humantime::format_duration(*ttl)
                    )
                }
            };
            let strategy = match &env.strategy {
                Strategy::Rolling => "rolling".to_owned(),
                Strategy::Gitops(g) => {
                    let repo = match &g.source {
                        GitopsSource::Github(r) => r.to_string(),
                        GitopsSource::Git(url) => url.clone(),
                    };
                    let format = match &g.format {
                        GitopsFormat::Kustomize => "kustomize".to_owned(),
                        GitopsFormat::Helm { key } => format!("helm {key}"),
                    };
                    let how = if g.pull_request {
                        "pull request"
                    } else {
                        "commit"
                    };
                    format!(
                        "gitops ({how} to {repo}@{}:{} as {format})",
                        g.branch, g.path
                    )
                }
            };
            let _ = writeln!(
                out,
                "  {}: {target} on cluster {}, {strategy}",
                env.name, env.cluster.name
            );
            let refs: Vec<&str> = env.refs.iter().map(|r| r.as_str()).collect();
            let _ = writeln!(
                out,
                "    requesters: {}; refs: {}",
                roles(&env.requesters),
                refs.join(", ")
            );
            let ci = if env.require_green_ci {
                "required"
            } else {
                "not required"
            };
            let rollback = if env.auto_rollback { "on" } else { "off" };
            let _ = writeln!(out, "    approvals: {}", approvals(&env.approvals));
            let from = env
                .promote_from
                .as_ref()
                .map_or("promote_from not set".to_owned(), |e| {
                    format!("promoted from {e}")
                });
            let _ = writeln!(
                out,
                "    green CI {ci}; auto-rollback {rollback}; {from}; freeze windows: {}",
                env.freezes.len()
            );
        }
        let _ = writeln!(out, "people: {}", self.people().len());
        let p = self.platforms();
        let enabled: Vec<&str> = [
            ("slack", p.slack.is_some()),
            ("discord", p.discord.is_some()),
            ("github", p.github.is_some()),
        ]
        .iter()
        .filter(|(_, on)| *on)
        .map(|(name, _)| *name)
        .collect();
        let shown = if enabled.is_empty() {
            "none (console only)".to_owned()
        } else {
            enabled.join(", ")
        };
        let _ = writeln!(out, "platforms: {shown}");
        out
    }
}
