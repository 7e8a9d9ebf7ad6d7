//! Turns the raw file into checked types, once, naming file:line:key on failure.

mod app;
mod approvals;
mod env;
mod flow;
mod gitops;
mod platform;
mod verify;

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use crate::config::locate::{KeyPath, Locator};
use crate::config::model::{Cluster, Config, Person, RepoName};
use crate::config::raw::{RawConfig, RawPerson};
use crate::config::template::is_dns_label;
use crate::config::ConfigError;
use crate::names::{escape_for_display as shown, AppName, Identity, PersonId, RoleName};

/// Validation context: where errors point and which roles exist.
pub(crate) struct Checker<'a> {
    loc: &'a Locator<'a>,
    file: &'a str,
    roles: BTreeMap<RoleName, String>,
}

pub(crate) type Checked<T> = Result<T, ConfigError>;

impl Checker<'_> {
    /// An error at `path`.
    pub(crate) fn err(&self, path: &KeyPath, message: impl Into<String>) -> ConfigError {
        ConfigError::Invalid {
            file: self.file.to_owned(),
            line: self.loc.line_of(path),
            key: path.to_string(),
            message: message.into(),
        }
    }

    /// The line of `path`, for ordering tables as written.
    pub(crate) fn line_of(&self, path: &KeyPath) -> usize {
        self.loc.line_of(path)
    }

    /// A declared role.
    pub(crate) fn role(&self, path: &KeyPath, text: &str) -> Checked<RoleName> {
        let role = RoleName::new(text).map_err(|e| self.err(path, e.to_string()))?;
        if !self.roles.contains_key(&role) {
            let known: Vec<&str> = self.roles.keys().map(RoleName::as_str).collect();
            return Err(self.err(
                path,
                format!(
                    "unknown role `{role}`; declare it under [roles] (declared: {})",
                    list(&known)
                ),
            ));
        }
        Ok(role)
    }

    /// A list of declared roles, each error pointing at its element.
    pub(crate) fn role_list(&self, path: &KeyPath, texts: &[String]) -> Checked<Vec<RoleName>> {
        let mut out = Vec::new();
        for (i, text) in texts.iter().enumerate() {
            let role = self.role(&path.index(i), text)?;
            if !out.contains(&role) {
                out.push(role);
            }
        }
        Ok(out)
    }

    /// A positive humantime duration such as `10m` or `1h 30m`.
    pub(crate) fn duration(&self, path: &KeyPath, text: &str) -> Checked<Duration> {
        match humantime::parse_duration(text) {
            Ok(d) if !d.is_zero() => Ok(d),
            Ok(_) => Err(self.err(path, "duration must be longer than zero")),
            Err(e) => Err(self.err(
                path,
                format!(
                    "`{}` is not a duration such as 90s, 10m or 1h: {e}",
                    shown(text)
                ),
            )),
        }
    }

    /// An `http://` or `https://` URL without spaces.
    pub(crate) fn url(&self, path: &KeyPath, text: &str) -> Checked<String> {
        let rest = text
            .strip_prefix("https://")
            .or_else(|| text.strip_prefix("http://"));
        let ok = rest.is_some_and(|r| !r.is_empty() && !r.starts_with('/'))
            && text.chars().all(|c| c.is_ascii_graphic());
        if !ok {
            return Err(self.err(path, format!("`{}` is not an http(s) URL", shown(text))));
        }
        Ok(text.to_owned())
    }

    /// A URL that credentials may travel to: `https://`, or plain
    /// `http://` to a loopback address (a local proxy or test server).
    pub(crate) fn secret_safe_url(&self, path: &KeyPath, text: &str) -> Checked<String> {
        let url = self.url(path, text)?;
        if !sends_secrets_safely(&url) {
            return Err(self.err(
                path,
                format!(
                    "`{}` would send credentials in the clear: use https (plain http only to 127.0.0.1 or localhost)",
                    shown(text)
                ),
            ));
        }
        Ok(url)
    }

    /// Non-empty text without control characters.
    pub(crate) fn text(&self, path: &KeyPath, text: &str, what: &str) -> Checked<String> {
        if text.trim().is_empty() || text.chars().any(char::is_control) {
            return Err(self.err(path, format!("{what} is empty or holds control characters")));
        }
        Ok(text.to_owned())
    }

    /// A GitHub repository `owner/name`.
    pub(crate) fn repo(&self, path: &KeyPath, text: &str) -> Checked<RepoName> {
        let parsed = text.split_once('/').filter(|(owner, name)| {
            let owner_ok = !owner.is_empty()
                && owner.len() <= 39
                && !owner.starts_with('-')
                && !owner.ends_with('-')
                && owner
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-');
            let name_ok = !name.is_empty()
                && name.len() <= 100
                && *name != "."
                && *name != ".."
                && name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
            owner_ok && name_ok
        });
        parsed
            .map(|(owner, name)| RepoName {
                owner: owner.to_owned(),
                name: name.to_owned(),
            })
            .ok_or_else(|| {
                self.err(
                    path,
                    format!("`{}` is not a GitHub repository `owner/name`", shown(text)),
                )
            })
    }
}

/// Joins names for a message, or says `none`.
pub(crate) fn list(names: &[&str]) -> String {
    if names.is_empty() {
        "none".to_owned()
    } else {
        names.join(", ")
    }
}

/// Validates `raw` into a [`Config`].
pub(crate) fn check(
    raw: RawConfig,
    loc: &Locator<'_>,
    file: &str,
    version: String,
) -> Checked<Config> {
    let root = KeyPath::root();
    let mut ck = Checker {
        loc,
        file,
        roles: BTreeMap::new(),
    };
    let roles_path = root.key("roles");
    for (name, description) in &raw.roles {
        let path = roles_path.key(name);
        let role = RoleName::new(name).map_err(|e| ck.err(&path, e.to_string()))?;
        let description = ck.text(&path, description, "the role's description")?;
        ck.roles.insert(role, description);
    }
    let gantry = root.key("gantry");
    let admin_roles = ck.role_list(&gantry.key("admin_roles"), &raw.gantry.admin_roles)?;
    let break_glass_roles = ck.role_list(
        &gantry.key("break_glass_roles"),
        &raw.gantry.break_glass_roles,
    )?;
    let start_limit = super::model::StartLimit {
        count: raw.gantry.start_limit.count,
        per: ck.duration(
            &gantry.key("start_limit").key("per"),
            &raw.gantry.start_limit.per,
        )?,
    };

    let mut clusters = BTreeMap::new();
    for (name, c) in &raw.clusters {
        let path = root.key("clusters").key(name);
        if !is_dns_label(name) {
            return Err(ck.err(
                &path,
                format!("cluster name `{}` must use a-z, 0-9 and `-`", shown(name)),
            ));
        }
        let context = match &c.context {
            Some(text) => Some(ck.text(&path.key("context"), text, "context")?),
            None => None,
        };
        let kubeconfig = match &c.kubeconfig {
            Some(text) => Some(ck.text(&path.key("kubeconfig"), text, "kubeconfig")?.into()),
            None => None,
        };
        clusters.insert(
            name.clone(),
            Cluster {
                name: name.clone(),
                context,
                kubeconfig,
                impersonate: c.impersonate,
            },
        );
    }

    let platforms = platform::platforms(&ck, &raw.platforms)?;
    let registry = platform::registry(&ck, &raw.registry)?;
    let (people, identities) = people(
        &ck,
        &raw.people,
        raw.platforms.slack.as_ref().map(|s| &s.team_ids),
    )?;

    if raw.apps.is_empty() {
        return Err(ck.err(
            &root.key("apps"),
            "no apps are configured; add an [apps.<name>] table",
        ));
    }
    let mut apps = Vec::new();
    for (name, app) in &raw.apps {
        apps.push(app::check_app(&ck, &root.key("apps").key(name), name, app)?);
    }
    apps.sort_by_key(|a| ck.line_of(&root.key("apps").key(a.name.as_str())));
    let default_app = match &raw.gantry.default_app {
        Some(text) => {
            let path = gantry.key("default_app");
            let name = AppName::new(text).map_err(|e| ck.err(&path, e.to_string()))?;
            if !apps.iter().any(|a| a.name == name) {
                let known: Vec<&str> = apps.iter().map(|a| a.name.as_str()).collect();
                return Err(ck.err(
                    &path,
                    format!("unknown app `{name}` (apps: {})", list(&known)),
                ));
            }
            Some(name)
        }
        None => None,
    };

    let prometheus = verify::prometheus_servers(&ck, &raw.prometheus)?;
    let envs = env::environments(&ck, &raw.environments, &clusters, &people, &prometheus)?;
    let config = Config {
        path: file.into(),
        version,
        default_app,
        admin_roles,
        break_glass_roles,
        start_limit,
        roles: ck.roles.clone(),
        platforms,
        registry,
        clusters,
        prometheus,
        apps,
        envs,
        people,
        identities,
    };
    env::impersonation(&ck, &config)?;
    Ok(config)
}

type People = (Vec<Person>, HashMap<Identity, usize>);

fn people(
    ck: &Checker<'_>,
    raw: &BTreeMap<String, RawPerson>,
    slack_teams: Option<&Vec<String>>,
) -> Checked<People> {
    let mut people = Vec::new();
    let mut owners: HashMap<Identity, String> = HashMap::new();
    for (id, p) in raw {
        let path = KeyPath::root().key("people").key(id);
        let pid = PersonId::new(id).map_err(|e| ck.err(&path, e.to_string()))?;
        let name = ck.text(&path.key("name"), &p.name, "name")?;
        let roles = ck.role_list(&path.key("roles"), &p.roles)?;
        let mut identities = Vec::new();
        for (i, text) in p.identities.iter().enumerate() {
            let ipath = path.key("identities").index(i);
            let identity: Identity = text
                .parse()
                .map_err(|e: crate::names::NameError| ck.err(&ipath, e.to_string()))?;
            if let (Identity::Slack { team, .. }, Some(teams)) = (&identity, slack_teams) {
                if !teams.contains(team) {
                    return Err(ck.err(
                        &ipath,
                        format!("Slack team {team} is not in platforms.slack.team_ids"),
                    ));
                }
            }
            if let Some(other) = owners.insert(identity.clone(), id.clone()) {
                let message = if other == *id {
                    format!("identity `{identity}` is listed twice for {id}")
                } else {
                    format!("identity `{identity}` is listed for both {other} and {id}")
                };
                return Err(ck.err(&ipath, message));
            }
            identities.push(identity);
        }
        let kube_user = match &p.kube_user {
            Some(text) => Some(ck.text(&path.key("kube_user"), text, "kube_user")?),
            None => None,
        };
        people.push(Person {
            id: pid,
            name,
            roles,
            identities,
            kube_user,
        });
    }
    people.sort_by_key(|p| ck.line_of(&KeyPath::root().key("people").key(p.id.as_str())));
    let mut index = HashMap::new();
    for (i, p) in people.iter().enumerate() {
        for identity in &p.identities {
            index.insert(identity.clone(), i);
        }
    }
    Ok((people, index))
}

/// Whether credentials may travel to `url`: https, or plain http to a
/// loopback address.
pub(crate) fn sends_secrets_safely(url: &str) -> bool {
    if url.starts_with("https://") {
        return true;
    }
    let Some(rest) = url.strip_prefix("http://") else {
        return false;
    };
    let host = rest.split(['/', '?']).next().unwrap_or("");
    let host = host.rsplit_once(':').map_or(host, |(h, port)| {
        if port.bytes().all(|b| b.is_ascii_digit()) {
            h
        } else {
            host
        }
    });
    matches!(host, "127.0.0.1" | "localhost" | "[::1]")
}
