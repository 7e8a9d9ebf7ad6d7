//! Checks `[environments.*.gitops]`.

use super::{Checked, Checker};
use crate::config::locate::KeyPath;
use crate::config::model::{Gitops, GitopsFormat, GitopsSource};
use crate::config::raw::{RawFormat, RawGitops, RawMode, RawTransport};
use crate::names::escape_for_display as shown;

pub(super) fn gitops(ck: &Checker<'_>, path: &KeyPath, raw: &RawGitops) -> Checked<Gitops> {
    let source = match (raw.transport, &raw.repo, &raw.url) {
        (RawTransport::Github, Some(repo), None) => {
            GitopsSource::Github(ck.repo(&path.key("repo"), repo)?)
        }
        (RawTransport::Git, None, Some(url)) => {
            GitopsSource::Git(git_url(ck, &path.key("url"), url)?)
        }
        (RawTransport::Github, _, Some(_)) => {
            return Err(ck.err(
                &path.key("url"),
                "transport = \"github\" takes repo, not url",
            ))
        }
        (RawTransport::Github, None, None) => {
            return Err(ck.err(
                &path.key("repo"),
                "transport = \"github\" needs repo = \"owner/name\"",
            ))
        }
        (RawTransport::Git, Some(_), _) => {
            return Err(ck.err(&path.key("repo"), "transport = \"git\" takes url, not repo"))
        }
        (RawTransport::Git, None, None) => {
            return Err(ck.err(&path.key("url"), "transport = \"git\" needs url"))
        }
    };
    let branch = &raw.branch;
    let branch_ok = !branch.is_empty()
        && !branch.starts_with(['-', '/', '.'])
        && !branch.ends_with(['/', '.'])
        && !branch.contains("..")
        && !branch.contains("//")
        && !branch.ends_with(".lock")
        && branch.chars().all(|c| {
            c.is_ascii_graphic() && !matches!(c, '~' | '^' | ':' | '?' | '*' | '[' | '\\')
        });
    if !branch_ok {
        return Err(ck.err(
            &path.key("branch"),
            format!("`{}` is not a valid branch name", shown(branch)),
        ));
    }
    let p = &raw.path;
    let path_ok = !p.is_empty()
        && !p.starts_with('/')
        && p.split('/').all(|s| !s.is_empty() && s != "." && s != "..")
        && p.chars().all(|c| c.is_ascii_graphic());
    if !path_ok {
        return Err(ck.err(
            &path.key("path"),
            format!(
                "`{}` is not a relative file path inside the repository",
                shown(p)
            ),
        ));
    }
    let format = match (raw.format, &raw.key) {
        (RawFormat::Kustomize, None) => GitopsFormat::Kustomize,
        (RawFormat::Kustomize, Some(_)) => {
            return Err(ck.err(&path.key("key"), "key applies only with format = \"helm\""))
        }
        (RawFormat::Helm, None) => {
            return Err(ck.err(
                &path.key("key"),
                "format = \"helm\" needs key, e.g. key = \"image.tag\"",
            ))
        }
        (RawFormat::Helm, Some(k)) => {
            let ok = k.split('.').all(|s| {
                !s.is_empty()
                    && s.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-'))
            });
            if !ok {
                return Err(ck.err(
                    &path.key("key"),
                    format!(
                        "`{}` is not a dotted values key such as image.tag",
                        shown(k)
                    ),
                ));
            }
            GitopsFormat::Helm { key: k.clone() }
        }
    };
    let pull_request = raw.mode == RawMode::PullRequest;
    if pull_request && raw.transport == RawTransport::Git {
        return Err(ck.err(
            &path.key("mode"),
            "mode = \"pull-request\" needs transport = \"github\"",
        ));
    }
    if raw.token.is_some() {
        let GitopsSource::Git(url) = &source else {
            return Err(ck.err(
                &path.key("token"),
                "token applies only with transport = \"git\"; the github transport uses [platforms.github]",
            ));
        };
        if !super::sends_secrets_safely(url) {
            return Err(ck.err(
                &path.key("token"),
                format!(
                    "a token is sent only over https:// (or to this machine), and the url is `{}`",
                    shown(url)
                ),
            ));
        }
    }
    Ok(Gitops {
        source,
        branch: branch.clone(),
        path: p.clone(),
        format,
        pull_request,
        token: raw.token.clone(),
    })
}

fn git_url(ck: &Checker<'_>, path: &KeyPath, url: &str) -> Checked<String> {
    let schemes = ["https://", "http://", "ssh://", "git://", "file://"];
    let rest = schemes.iter().find_map(|s| url.strip_prefix(s));
    // scp-like `user@host:path` is what git itself accepts without a scheme.
    let scp = !url.contains("://")
        && url
            .split_once(':')
            .is_some_and(|(h, p)| h.contains('@') && !p.is_empty());
    let ok = (rest.is_some_and(|r| !r.is_empty()) || scp)
        && !url.starts_with('-')
        && url.chars().all(|c| c.is_ascii_graphic());
    if !ok {
        return Err(ck.err(
            path,
            format!(
                "`{}` is not a git URL (https://, ssh://, git://, file:// or user@host:path)",
                shown(url)
            ),
        ));
    }
    if rest.is_some_and(|r| {
        r.split('/')
            .next()
            .is_some_and(|auth| auth.contains('@') && auth.contains(':'))
    }) {
        return Err(ck.err(
            path,
            "the git URL holds a password; secrets are never written inline in config",
        ));
    }
    Ok(url.to_owned())
}
