//! The sandbox's Git host: the fake GitHub seeded from the config, and the
//! two machines that work next to GitHub in a real delivery chain — a CI
//! runner that pushes an image when a build workflow succeeds, and an Argo
//! CD-like sync that applies what a GitOps config repository names to the
//! cluster.
//!
//! Every app's repository gets the branches of [`BRANCHES`], a tag
//! `v1.0.0` on `release/1.0`, a green `ci` check run on every commit, the
//! app's build workflow (successful, a few ticks long), and pull requests
//! #1 (`feat-x`) and #2 (`feat-broken`) opened by the first person with a
//! GitHub identity.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use super::github::FakeGithub;
use super::registry::{BuiltImage, ImageFormat, SandboxRegistry};
use super::seed::BRANCHES;
use crate::adapters::registry::manifest::Platform;
use crate::config::{App, Config, GitopsFormat, GitopsSource, Strategy, Target};
use crate::engine::ports::{Cluster, Stamp, Workload};
use crate::names::{GithubAccount, Identity, RequestId};

/// The tag every sandbox repository has, on `release/1.0`.
pub const TAG: &str = "v1.0.0";
/// The check run every sandbox commit passes.
pub const CHECK: &str = "ci";

/// A commit the sandbox built an image for: repository, ref name, SHA.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seeded {
    /// `owner/name`.
    pub repo: String,
    /// Branch or tag.
    pub name: String,
    /// Full SHA.
    pub sha: String,
}

/// Seeds the app repositories; returns every ref with its commit.
pub fn seed_repositories(github: &FakeGithub, config: &Config, tick: Duration) -> Vec<Seeded> {
    let author = config
        .people()
        .iter()
        .flat_map(|p| &p.identities)
        .find_map(|i| match i {
            Identity::Github(GithubAccount::Login(login)) => Some(login.clone()),
            _ => None,
        })
        .unwrap_or_else(|| "octocat".into());
    let repos: BTreeSet<String> = config.apps().iter().map(|a| a.repo.to_string()).collect();
    let mut seeded = Vec::new();
    for repo in repos {
        for branch in BRANCHES {
            let sha = github.commit(
                &repo,
                branch,
                &format!("work on {branch}"),
                &[("CHANGES.md", &format!("{branch}\n"))],
            );
            github.check_run(&repo, &sha, CHECK, Some("success"));
            seeded.push(Seeded {
                repo: repo.clone(),
                name: (*branch).to_owned(),
                sha,
            });
        }
        if let Some(release) = github.branch(&repo, "release/1.0") {
            github.tag(&repo, TAG, &release, true);
            seeded.push(Seeded {
                repo: repo.clone(),
                name: TAG.into(),
                sha: release,
            });
        }
        for (number, head) in [(1, "feat-x"), (2, "feat-broken")] {
            github.open_pull(&repo, number, head, "main", (&author, 1_000 + number));
        }
        for app in config.apps().iter().filter(|a| a.repo.to_string() == repo) {
            if let Some(workflow) = &app.build_workflow {
                github.workflow(&repo, workflow, "success", tick * 5);
            }
        }
    }
    seeded
}

/// Pushes the image of `app` at `sha` (built on `name`) under both its
/// tags: the template with the ref name and without it.
pub fn publish(
    registry: &SandboxRegistry,
    app: &App,
    name: &str,
    sha: &str,
) -> Result<crate::names::Digest, String> {
    let repository = repository_of(&app.image);
    let image = BuiltImage::single(
        &format!("{}@{sha}", app.repo),
        &Platform::new("linux", "amd64", None),
        ImageFormat::Oci,
    );
    let mut digest = None;
    // As CI pipelines commonly do, the ref's own name is a tag too
    // (`main`, `v1.0.0`, `release-1.0`), so people can ask for it by name.
    for tag in [
        app.tag_template.render(sha, name),
        app.tag_template.render(sha, ""),
        name.replace('/', "-"),
    ] {
        digest = Some(registry.publish(repository, &tag, &image)?);
    }
    digest.ok_or_else(|| "no tag to publish".to_owned())
}

/// The repository part of `host/repository`.
pub fn repository_of(image: &str) -> &str {
    image.split_once('/').map_or(image, |(_, r)| r)
}

/// Commits, for every GitOps environment whose config repository is on
/// GitHub, the file it names, pinning each app to `image_of(app)`.
pub fn seed_config_repositories(
    github: &FakeGithub,
    config: &Config,
    image_of: impl Fn(&crate::config::Environment, &App) -> String,
) {
    for env in config.envs() {
        let Strategy::Gitops(gitops) = &env.strategy else {
            continue;
        };
        let GitopsSource::Github(repo) = &gitops.source else {
            continue;
        };
        let text = pinned_file(config, env, gitops, &|app| image_of(env, app));
        github.commit(
            &repo.to_string(),
            &gitops.branch,
            "pin the images",
            &[(gitops.path.as_str(), text.as_str())],
        );
    }
}

/// The GitOps file an environment's config repository starts with: every
/// app pinned to `image_of(app)`, in the configured format.
pub fn pinned_file(
    config: &Config,
    env: &crate::config::Environment,
    gitops: &crate::config::Gitops,
    image_of: &impl Fn(&App) -> String,
) -> String {
    match &gitops.format {
        GitopsFormat::Kustomize => {
            let mut text = format!(
                "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n  - ../base\nnamespace: {}\nimages:\n",
                namespace_of(&env.target)
            );
            for app in config.apps() {
                let pinned = image_of(app);
                let (name, digest) = pinned.split_once('@').unwrap_or((&pinned, ""));
                text.push_str(&format!(
                    "  - name: {}\n    newName: {name}\n    digest: {digest}\n",
                    app.image
                ));
            }
            text
        }
        // A values file with the dotted key set to the first app's image.
        GitopsFormat::Helm { key } => {
            let app = config.apps().first();
            let value = app.map(image_of).unwrap_or_default();
            let mut text = String::new();
            let parts: Vec<&str> = key.split('.').collect();
            for (depth, part) in parts.iter().enumerate() {
                let indent = "  ".repeat(depth);
                if depth + 1 == parts.len() {
                    text.push_str(&format!("{indent}{part}: \"{value}\"\n"));
                } else {
                    text.push_str(&format!("{indent}{part}:\n"));
                }
            }
            text
        }
    }
}

fn namespace_of(target: &Target) -> &str {
    match target {
        Target::Namespace(ns) => ns,
        Target::Preview { .. } => "preview",
    }
}

/// The image a kustomization pins for `app`: `newName@digest` of the
/// `images:` entry named after the app's image, if it has a digest.
pub fn kustomize_image(text: &str, app: &App) -> Option<String> {
    let mut entries: Vec<BTreeMap<&str, &str>> = Vec::new();
    let mut inside = false;
    for line in text.lines() {
        let content = line.split(" #").next().unwrap_or("").trim_end();
        if !line.starts_with(' ') && !line.starts_with('-') {
            inside = content == "images:";
            continue;
        }
        if !inside || content.trim().is_empty() {
            continue;
        }
        let item = content.trim_start();
        let (fresh, pair) = match item.strip_prefix("- ") {
            Some(rest) => (true, rest),
            None => (false, item),
        };
        if fresh {
            entries.push(BTreeMap::new());
        }
        if let (Some(entry), Some((key, value))) = (entries.last_mut(), pair.split_once(':')) {
            entry.insert(key.trim(), value.trim().trim_matches(['"', '\'']));
        }
    }
    let entry = entries
        .into_iter()
        .find(|e| e.get("name") == Some(&app.image.as_str()))?;
    let digest = entry.get("digest").filter(|d| d.starts_with("sha256:"))?;
    let name = entry.get("newName").copied().unwrap_or(&app.image);
    Some(format!("{name}@{digest}"))
}

/// Runs the sandbox's CI runner and Argo CD sync until the runtime stops:
/// every `tick`, a successful build run gets its image pushed, and each
/// GitOps environment's Deployments are set to what its config repository
/// names (through the Kubernetes API, as Argo CD would).
pub fn spawn(
    config: Arc<Config>,
    github: FakeGithub,
    registry: Arc<SandboxRegistry>,
    cluster: Arc<dyn Cluster>,
    tick: Duration,
) {
    // The seeded cluster already runs what the seeded config repositories
    // say: those revisions count as synced.
    let mut synced = BTreeMap::new();
    for env in config.envs() {
        if let Strategy::Gitops(gitops) = &env.strategy {
            if let Some(text) = watched_file(&github, gitops) {
                synced.insert(env.name.to_string(), text);
            }
        }
    }
    tokio::spawn(async move {
        let mut built: BTreeSet<u64> = BTreeSet::new();
        loop {
            tokio::time::sleep(tick).await;
            run_ci(&config, &github, &registry, &mut built);
            sync_gitops(&config, &github, cluster.as_ref(), &mut synced).await;
        }
    });
}

/// Pushes the image of every build run that finished successfully.
fn run_ci(
    config: &Config,
    github: &FakeGithub,
    registry: &SandboxRegistry,
    built: &mut BTreeSet<u64>,
) {
    let finished: Vec<(String, String, String, u64)> = {
        let hub = github.hub();
        hub.repos
            .iter()
            .flat_map(|(repo, r)| {
                r.runs
                    .iter()
                    .filter(|run| run.status() == "completed" && run.conclusion == "success")
                    .map(|run| (repo.clone(), run.branch.clone(), run.sha.clone(), run.id))
                    .collect::<Vec<_>>()
            })
            .collect()
    };
    for (repo, branch, sha, id) in finished {
        if !built.insert(id) {
            continue;
        }
        for app in config.apps().iter().filter(|a| a.repo.to_string() == repo) {
            if let Err(e) = publish(registry, app, &branch, &sha) {
                tracing::warn!(%repo, %sha, error = %e, "sandbox CI cannot push the image");
            }
        }
    }
}

/// Applies each GitOps environment's pinned images, like Argo CD's auto-sync.
/// The file a GitOps environment's sync watches, on GitHub or in a
/// sandbox git repository.
fn watched_file(github: &FakeGithub, gitops: &crate::config::Gitops) -> Option<String> {
    match &gitops.source {
        GitopsSource::Github(repo) => github.file(&repo.to_string(), &gitops.branch, &gitops.path),
        GitopsSource::Git(url) => super::git_repo::read(url, &gitops.branch, &gitops.path),
    }
}

/// Like Argo CD, acts on a new revision of the watched file only (`synced`
/// holds the text last applied per environment), so an idle sandbox sends
/// the Kubernetes API nothing.
async fn sync_gitops(
    config: &Config,
    github: &FakeGithub,
    cluster: &dyn Cluster,
    synced: &mut BTreeMap<String, String>,
) {
    for env in config.envs() {
        let (Strategy::Gitops(gitops), Target::Namespace(namespace)) = (&env.strategy, &env.target)
        else {
            continue;
        };
        if !matches!(gitops.format, GitopsFormat::Kustomize) {
            continue;
        }
        let Some(text) = watched_file(github, gitops) else {
            continue;
        };
        if synced.get(env.name.as_str()) == Some(&text) {
            continue;
        }
        let mut applied = true;
        for app in config.apps() {
            let Some(image) = kustomize_image(&text, app) else {
                continue;
            };
            let workload = Workload {
                context: env.cluster.kube_context(),
                namespace: namespace.clone(),
                deployments: app.deployments.clone(),
                container: app.container.clone(),
                services: Vec::new(),
                impersonate: None,
                rollout_timeout: Duration::ZERO,
                awaiting_image: None,
            };
            let Ok(running) = cluster.current_images(&workload).await else {
                applied = false;
                continue;
            };
            if running.iter().all(|(_, i)| *i == image) {
                continue;
            }
            let stamp = Stamp {
                request: RequestId(0),
                sha: None,
                requested_by: "argocd".into(),
            };
            if let Err(e) = cluster.set_image(&workload, &image, &stamp).await {
                applied = false;
                tracing::warn!(app = %app.name, %namespace, error = %e, "sandbox Argo CD cannot sync");
            }
        }
        if applied {
            synced.insert(env.name.to_string(), text);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::kustomize_image;

    fn app() -> crate::config::App {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("config/gantry.toml");
        let config = crate::config::load(&path).unwrap();
        config.app("web").unwrap().clone()
    }

    #[test]
    fn the_sync_reads_the_pinned_image_of_its_app_only() {
        let digest = format!("sha256:{}", "ab".repeat(32));
        let text = format!(
            "kind: Kustomization\nimages:\n  # pinned by Gantry\n  - name: redis\n    newTag: \"7.2\"\n  - name: registry.local:5000/acme/web\n    newName: mirror.local/web # moved\n    digest: '{digest}'\nnamespace: perf\n"
        );
        assert_eq!(
            kustomize_image(&text, &app()),
            Some(format!("mirror.local/web@{digest}"))
        );
        // A tag, not a digest, is not something the sandbox deploys.
        let tagged = "images:\n- name: registry.local:5000/acme/web\n  newTag: \"1.2\"\n";
        assert_eq!(kustomize_image(tagged, &app()), None);
        // An `images:` key elsewhere does not count.
        let nested = format!(
            "spec:\n  images:\n  - name: registry.local:5000/acme/web\n    digest: {digest}\n"
        );
        assert_eq!(kustomize_image(&nested, &app()), None);
    }
}
