//! Checks `[platforms.*]` and `[registry]`.

use super::{Checked, Checker};
use crate::config::locate::KeyPath;
use crate::config::model::{Discord, Github, GithubAuth, Platforms, Registry, Slack};
use crate::config::raw::{RawDiscord, RawGithub, RawPlatforms, RawRegistry, RawSlack};
use crate::names::escape_for_display as shown;

/// Checks every platform section; disabled ones are checked, then left out.
pub(crate) fn platforms(ck: &Checker<'_>, raw: &RawPlatforms) -> Checked<Platforms> {
    let path = KeyPath::root().key("platforms");
    let slack = match &raw.slack {
        Some(s) => Some(slack(ck, &path.key("slack"), s)?).filter(|_| s.enabled),
        None => None,
    };
    let discord = match &raw.discord {
        Some(d) => Some(discord(ck, &path.key("discord"), d)?).filter(|_| d.enabled),
        None => None,
    };
    let github = match &raw.github {
        Some(g) => Some(github(ck, &path.key("github"), g)?).filter(|_| g.enabled),
        None => None,
    };
    Ok(Platforms {
        slack,
        discord,
        github,
    })
}

fn is_slack_team(text: &str) -> bool {
    (text.starts_with('T') || text.starts_with('E'))
        && (3..=20).contains(&text.len())
        && text
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
}

fn reaction(ck: &Checker<'_>, path: &KeyPath, text: &str) -> Checked<String> {
    let name = text.trim_matches(':');
    let ok = !name.is_empty()
        && name.len() <= 100
        && name.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'_' | b'-' | b'+' | b'\'')
        });
    if !ok {
        return Err(ck.err(
            path,
            format!(
                "`{}` is not a Slack reaction name such as white_check_mark",
                shown(text)
            ),
        ));
    }
    Ok(name.to_owned())
}

fn slack(ck: &Checker<'_>, path: &KeyPath, raw: &RawSlack) -> Checked<Slack> {
    if raw.team_ids.is_empty() {
        return Err(ck.err(
            &path.key("team_ids"),
            "list the accepted Slack workspace ids, e.g. [\"T024BE7LD\"]",
        ));
    }
    for (i, team) in raw.team_ids.iter().enumerate() {
        if !is_slack_team(team) {
            return Err(ck.err(
                &path.key("team_ids").index(i),
                format!("`{}` is not a Slack team id such as T024BE7LD", shown(team)),
            ));
        }
    }
    let approve = reaction(ck, &path.key("approve_reaction"), &raw.approve_reaction)?;
    let deny = reaction(ck, &path.key("deny_reaction"), &raw.deny_reaction)?;
    if approve == deny {
        return Err(ck.err(
            &path.key("deny_reaction"),
            "approve and deny reactions must differ",
        ));
    }
    let socket_mode_token = match (raw.socket_mode, &raw.app_token) {
        (true, None) => {
            return Err(ck.err(
                &path.key("app_token"),
                "socket_mode = true needs an app-level token, e.g. app_token = { env = \"SLACK_APP_TOKEN\" }",
            ))
        }
        (true, Some(t)) => Some(t.clone()),
        (false, _) => None,
    };
    Ok(Slack {
        team_ids: raw.team_ids.clone(),
        api_url: ck.secret_safe_url(&path.key("api_url"), &raw.api_url)?,
        signing_secret: raw.signing_secret.clone(),
        signing_secret_previous: raw.signing_secret_previous.clone(),
        bot_token: raw.bot_token.clone(),
        socket_mode_token,
        approve_reaction: approve,
        deny_reaction: deny,
    })
}

fn snowflake(ck: &Checker<'_>, path: &KeyPath, text: &str) -> Checked<u64> {
    let ok = !text.is_empty() && text.len() <= 20 && text.bytes().all(|b| b.is_ascii_digit());
    ok.then(|| text.parse().ok()).flatten().ok_or_else(|| {
        ck.err(
            path,
            format!(
                "`{}` is not a Discord id (a number written as a string)",
                shown(text)
            ),
        )
    })
}

fn emoji(ck: &Checker<'_>, path: &KeyPath, text: &str) -> Checked<String> {
    if text.is_empty()
        || text.len() > 64
        || text.chars().any(|c| c.is_whitespace() || c.is_control())
    {
        return Err(ck.err(path, "an emoji is one non-empty token without spaces"));
    }
    Ok(text.to_owned())
}

fn discord(ck: &Checker<'_>, path: &KeyPath, raw: &RawDiscord) -> Checked<Discord> {
    let application_id = snowflake(ck, &path.key("application_id"), &raw.application_id)?;
    if raw.guild_ids.is_empty() {
        return Err(ck.err(
            &path.key("guild_ids"),
            "list the guild ids whose commands are accepted",
        ));
    }
    let mut guild_ids = Vec::new();
    for (i, g) in raw.guild_ids.iter().enumerate() {
        guild_ids.push(snowflake(ck, &path.key("guild_ids").index(i), g)?);
    }
    let approve_emoji = emoji(ck, &path.key("approve_emoji"), &raw.approve_emoji)?;
    let deny_emoji = emoji(ck, &path.key("deny_emoji"), &raw.deny_emoji)?;
    if approve_emoji == deny_emoji {
        return Err(ck.err(
            &path.key("deny_emoji"),
            "approve and deny emoji must differ",
        ));
    }
    Ok(Discord {
        application_id,
        guild_ids,
        api_url: ck.secret_safe_url(&path.key("api_url"), &raw.api_url)?,
        public_key: raw.public_key.clone(),
        bot_token: raw.bot_token.clone(),
        approve_emoji,
        deny_emoji,
    })
}

fn github(ck: &Checker<'_>, path: &KeyPath, raw: &RawGithub) -> Checked<Github> {
    let auth = match (&raw.token, raw.app_id, &raw.private_key) {
        (Some(t), None, None) => GithubAuth::Token(t.clone()),
        (None, Some(app_id), Some(key)) => GithubAuth::App { app_id, private_key: key.clone() },
        (None, None, None) => {
            return Err(ck.err(
                &path.key("token"),
                "GitHub needs credentials: token = { env = \"GITHUB_TOKEN\" }, or app_id and private_key",
            ))
        }
        (Some(_), _, _) => {
            return Err(ck.err(&path.key("token"), "give either token or app_id + private_key, not both"))
        }
        (None, Some(_), None) => return Err(ck.err(&path.key("private_key"), "app_id needs private_key")),
        (None, None, Some(_)) => return Err(ck.err(&path.key("app_id"), "private_key needs app_id")),
    };
    Ok(Github {
        api_url: ck.secret_safe_url(&path.key("api_url"), &raw.api_url)?,
        webhook_secret: raw.webhook_secret.clone(),
        webhook_secret_previous: raw.webhook_secret_previous.clone(),
        auth,
        review_approvals: raw.review_approvals,
        poll_interval: ck.duration(&path.key("poll_interval"), &raw.poll_interval)?,
    })
}

fn is_host_port(text: &str) -> bool {
    let (host, port) = match text.rsplit_once(':') {
        Some((h, p)) => (h, Some(p)),
        None => (text, None),
    };
    !host.is_empty()
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-'))
        && port.is_none_or(|p| p.parse::<u16>().is_ok())
}

/// Checks `[registry]`.
pub(crate) fn registry(ck: &Checker<'_>, raw: &RawRegistry) -> Checked<Registry> {
    let path = KeyPath::root().key("registry");
    let credentials = match (&raw.username, &raw.password) {
        (Some(u), Some(p)) => Some((u.clone(), p.clone())),
        (None, None) => None,
        (Some(_), None) => return Err(ck.err(&path.key("password"), "username needs password")),
        (None, Some(_)) => return Err(ck.err(&path.key("username"), "password needs username")),
    };
    let docker_config = match &raw.docker_config {
        Some(p) => Some(
            ck.text(&path.key("docker_config"), p, "docker_config")?
                .into(),
        ),
        None => None,
    };
    for (i, host) in raw.plain_http_hosts.iter().enumerate() {
        if !is_host_port(host) {
            return Err(ck.err(
                &path.key("plain_http_hosts").index(i),
                format!("`{}` is not host or host:port", shown(host)),
            ));
        }
    }
    let mut endpoints = std::collections::BTreeMap::new();
    for (host, url) in &raw.endpoints {
        let key = path.key("endpoints").key(host);
        if !is_host_port(host) {
            return Err(ck.err(&key, format!("`{}` is not host or host:port", shown(host))));
        }
        endpoints.insert(
            host.clone(),
            ck.secret_safe_url(&key, url)?
                .trim_end_matches('/')
                .to_owned(),
        );
    }
    Ok(Registry {
        credentials,
        docker_config,
        endpoints,
        plain_http_hosts: raw.plain_http_hosts.clone(),
        timeout: ck.duration(&path.key("timeout"), &raw.timeout)?,
    })
}
