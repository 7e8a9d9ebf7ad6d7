//! Checks `[apps.*]`.

use super::{Checked, Checker};
use crate::config::locate::KeyPath;
use crate::config::model::App;
use crate::config::raw::RawApp;
use crate::config::template::{is_dns_label, is_dns_subdomain, TagTemplate};
use crate::names::{escape_for_display as shown, AppName};

pub(super) fn check_app(
    ck: &Checker<'_>,
    path: &KeyPath,
    name: &str,
    raw: &RawApp,
) -> Checked<App> {
    let app = AppName::new(name).map_err(|e| ck.err(path, e.to_string()))?;
    let repo = ck.repo(&path.key("repo"), &raw.repo)?;
    let image = check_image(ck, &path.key("image"), &raw.image)?;
    let tag_template = TagTemplate::new(&raw.tag_template)
        .map_err(|e| ck.err(&path.key("tag_template"), e.to_string()))?;
    if raw.deployments.is_empty() {
        return Err(ck.err(
            &path.key("deployments"),
            "list at least one Kubernetes Deployment",
        ));
    }
    for (i, d) in raw.deployments.iter().enumerate() {
        if !is_dns_subdomain(d) {
            return Err(ck.err(
                &path.key("deployments").index(i),
                format!(
                    "`{}` is not a valid Deployment name (DNS-1123: a-z, 0-9, `-` and `.`)",
                    shown(d)
                ),
            ));
        }
    }
    let container = raw.container.clone().unwrap_or_else(|| name.to_owned());
    if !is_dns_label(&container) {
        return Err(ck.err(
            &path.key("container"),
            format!(
                "`{}` is not a valid container name (DNS-1123 label); set container",
                shown(&container)
            ),
        ));
    }
    for (i, s) in raw.services.iter().enumerate() {
        if !is_dns_label(s) {
            return Err(ck.err(
                &path.key("services").index(i),
                format!(
                    "`{}` is not a valid Service name (DNS-1123 label)",
                    shown(s)
                ),
            ));
        }
    }
    if let Some(w) = &raw.build_workflow {
        let file_ok = (w.ends_with(".yml") || w.ends_with(".yaml"))
            && w.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
        // A workflow may also be named by its numeric id.
        let id_ok = (1..=20).contains(&w.len()) && w.bytes().all(|b| b.is_ascii_digit());
        if !file_ok && !id_ok {
            return Err(ck.err(
                &path.key("build_workflow"),
                format!(
                    "`{}` is not a workflow file name such as build.yml",
                    shown(w)
                ),
            ));
        }
    }
    for key in raw.build_inputs.keys() {
        if key.is_empty()
            || key.len() > 100
            || !key
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-'))
        {
            return Err(ck.err(
                &path.key("build_inputs").key(key),
                "workflow input names use A-Z, a-z, 0-9, `_` and `-`",
            ));
        }
    }
    Ok(App {
        name: app,
        repo,
        image,
        tag_template,
        deployments: raw.deployments.clone(),
        container,
        services: raw.services.clone(),
        build_workflow: raw.build_workflow.clone(),
        build_inputs: raw.build_inputs.clone(),
    })
}

fn is_path_component(part: &str) -> bool {
    // OCI distribution: [a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*, checked loosely.
    let b = part.as_bytes();
    !b.is_empty()
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric()
        && b.iter().all(|c| {
            c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, b'.' | b'_' | b'-')
        })
}

fn check_image(ck: &Checker<'_>, path: &KeyPath, text: &str) -> Checked<String> {
    let bad = |why: &str| ck.err(path, format!("image `{}` {why}", shown(text)));
    if text.contains('@') {
        return Err(bad(
            "has a digest; give the repository only (Gantry resolves digests)",
        ));
    }
    let parts: Vec<&str> = text.split('/').collect();
    let last = parts.last().copied().unwrap_or_default();
    if parts.len() > 1 && last.contains(':') || parts.len() == 1 && text.contains(':') {
        return Err(bad(
            "has a tag; give the repository only (tags come from tag_template)",
        ));
    }
    let first = parts.first().copied().unwrap_or_default();
    let has_host =
        parts.len() > 1 && (first.contains('.') || first.contains(':') || first == "localhost");
    let host_ok = !has_host || {
        let (host, port) = first.split_once(':').unwrap_or((first, "1"));
        !host.is_empty()
            && host
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-'))
            && port.parse::<u16>().is_ok()
    };
    let skip = usize::from(has_host);
    if text.len() > 255
        || !host_ok
        || parts.len() <= skip
        || !parts[skip..].iter().all(|p| is_path_component(p))
    {
        return Err(bad(
            "is not an image repository such as registry.example.com/team/app",
        ));
    }
    Ok(text.to_owned())
}
