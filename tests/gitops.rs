//! The GitOps strategy's write side: the YAML edits, and both transports —
//! the GitHub contents API against the fake GitHub (direct, a 409 race,
//! pull-request mode), and plain git against a real bare repository served
//! on 127.0.0.1 by `git daemon` (direct, and a push rejected because the
//! branch moved).

use std::future::Future;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use gantry::adapters::github::gitops::yaml::{set_helm_value, set_kustomize_image, YamlError};
use gantry::adapters::github::gitops::{commit_message, GitTransport, GitopsWriter};
use gantry::adapters::github::{GithubForge, Polling};
use gantry::config::{App, Gitops, GitopsFormat, GitopsSource, RepoName, SecretRef};
use gantry::sandbox::github::FakeGithub;

const TOKEN: &str = "ghp_gitops";
const CONFIG_REPO: &str = "acme/deploy-config";
const FILE: &str = "perf/kustomization.yaml";
const DIGEST: &str = "sha256:4f1c7d1a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6";

const KUSTOMIZATION: &str = "\
# Perf: synced by Argo CD from main.
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources:
  - ../base   # shared manifests
images:
  # the web app; Gantry pins it
  - name: registry.local:5000/acme/web
    newTag: \"1.2.3\"   # replaced by a digest
  - name: redis
    newTag: \"7.2\"
namespace: perf
";

fn image() -> String {
    format!("registry.local:5000/acme/web@{DIGEST}")
}

fn expected_kustomization() -> String {
    KUSTOMIZATION.replace(
        "    newTag: \"1.2.3\"   # replaced by a digest\n",
        &format!("    digest: {DIGEST}\n"),
    )
}

async fn within<F: Future>(test: F) -> F::Output {
    tokio::time::timeout(Duration::from_secs(60), test)
        .await
        .expect("the test finished in time")
}

fn app() -> App {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/github.toml");
    let config = gantry::config::load(&path).expect("test config loads");
    config.app("web").expect("app web").clone()
}

fn gitops(source: GitopsSource, pull_request: bool) -> Gitops {
    Gitops {
        source,
        branch: "main".into(),
        path: FILE.into(),
        format: GitopsFormat::Kustomize,
        pull_request,
        token: None,
    }
}

fn message() -> String {
    commit_message(
        "R-12",
        "web",
        "perf",
        &image(),
        "alice",
        &["carol".to_owned()],
    )
}

#[test]
fn kustomize_entry_gets_the_digest_and_the_rest_of_the_file_is_untouched() {
    let out = set_kustomize_image(
        KUSTOMIZATION,
        "registry.local:5000/acme/web",
        "registry.local:5000/acme/web",
        DIGEST,
    )
    .unwrap();
    assert_eq!(out, expected_kustomization());
    // Applying it again changes nothing.
    let again = set_kustomize_image(
        &out,
        "registry.local:5000/acme/web",
        "registry.local:5000/acme/web",
        DIGEST,
    )
    .unwrap();
    assert_eq!(again, out);
    // An existing digest and newName are replaced in place, comments kept.
    let pinned =
        "images:\n- name: web\n  newName: old.example/web # moved\n  digest: 'sha256:00'\n";
    let out = set_kustomize_image(pinned, "web", "registry.local:5000/acme/web", DIGEST).unwrap();
    assert_eq!(
        out,
        format!("images:\n- name: web\n  newName: registry.local:5000/acme/web # moved\n  digest: '{DIGEST}'\n")
    );
}

#[test]
fn kustomize_entries_and_lists_are_added_when_missing() {
    let other = "images:\n  - name: redis\n    newTag: \"7.2\"\nnamespace: perf\n";
    let out = set_kustomize_image(other, "web", "web", DIGEST).unwrap();
    assert_eq!(
        out,
        format!("images:\n  - name: redis\n    newTag: \"7.2\"\n  - name: web\n    digest: {DIGEST}\nnamespace: perf\n")
    );
    let none = "resources:\n- base\n";
    let out = set_kustomize_image(none, "web", "registry/web", DIGEST).unwrap();
    assert_eq!(
        out,
        format!("resources:\n- base\nimages:\n- name: web\n  newName: registry/web\n  digest: {DIGEST}\n")
    );
    let empty = "images: []\n";
    let out = set_kustomize_image(empty, "web", "web", DIGEST).unwrap();
    assert_eq!(out, format!("images:\n- name: web\n  digest: {DIGEST}\n"));
    let crlf = "images:\r\n- name: web\r\n  newTag: v1\r\n";
    let out = set_kustomize_image(crlf, "web", "web", DIGEST).unwrap();
    assert_eq!(
        out,
        format!("images:\r\n- name: web\r\n  digest: {DIGEST}\r\n")
    );
}

#[test]
fn flow_style_images_are_refused_not_rewritten() {
    let flow = "images: [{name: web, newTag: v1}]\n";
    let err = set_kustomize_image(flow, "web", "web", DIGEST).unwrap_err();
    assert!(
        matches!(err, YamlError::Unsupported { line: 1, .. }),
        "{err}"
    );
}

#[test]
fn helm_values_keys_are_set_by_dotted_path() {
    let values = "\
# values for perf
replicaCount: 2
image:
  repository: registry.local:5000/acme/web  # the app
  tag: \"1.2.3\" # pinned by Gantry
  pullPolicy: IfNotPresent

sidecar:
  image:
    tag: stable
";
    let out = set_helm_value(values, "image.tag", DIGEST).unwrap();
    assert_eq!(
        out,
        values.replace(
            "tag: \"1.2.3\" # pinned",
            &format!("tag: \"{DIGEST}\" # pinned")
        )
    );
    let out = set_helm_value(values, "sidecar.image.tag", "v2").unwrap();
    assert_eq!(out, values.replace("tag: stable", "tag: v2"));
    assert_eq!(
        set_helm_value(values, "image.digest", DIGEST).unwrap_err(),
        YamlError::MissingKey("image.digest".into())
    );
    assert!(matches!(
        set_helm_value(values, "image", DIGEST).unwrap_err(),
        YamlError::Unsupported { line: 3, .. }
    ));
    assert!(matches!(
        set_helm_value(values, "replicaCount.x", DIGEST).unwrap_err(),
        YamlError::Unsupported { .. }
    ));
}

#[test]
fn the_commit_message_names_request_requester_and_approvers() {
    let text = message();
    assert!(
        text.starts_with(
            "Deploy web to perf: registry.local:5000/acme/web@sha256:4f1c7d1a2b3c (R-12)\n\n"
        ),
        "{text}"
    );
    assert!(text.contains("Requested-by: alice\n"));
    assert!(text.contains("Approved-by: carol\n"));
    assert!(text.contains(&format!("Image: {}\n", image())));
}

async fn fake() -> (FakeGithub, Arc<GithubForge>) {
    gantry::tls::install_crypto();
    let fake = FakeGithub::start(TOKEN).await.unwrap();
    fake.commit(
        CONFIG_REPO,
        "main",
        "initial",
        &[(FILE, KUSTOMIZATION), ("README.md", "config\n")],
    );
    let forge = GithubForge::for_url(&fake.url(), TOKEN)
        .unwrap()
        .with_polling(Polling {
            every: Duration::from_millis(20),
            run_appears_within: Duration::from_secs(5),
            build_timeout: Duration::from_secs(5),
            checks_timeout: Duration::from_secs(5),
        })
        .shared();
    (fake, forge)
}

fn on_github() -> GitopsSource {
    GitopsSource::Github(RepoName {
        owner: "acme".into(),
        name: "deploy-config".into(),
    })
}

#[tokio::test]
async fn contents_api_commits_the_digest_directly() {
    within(async {
        let (fake, forge) = fake().await;
        let writer = GitopsWriter::new(Some(forge));
        let change = writer
            .commit_image(&gitops(on_github(), false), &app(), &image(), &message())
            .await
            .unwrap();
        assert!(change.changed);
        assert_eq!(
            fake.branch(CONFIG_REPO, "main"),
            Some(change.commit.clone())
        );
        assert_eq!(
            fake.file(CONFIG_REPO, "main", FILE).unwrap(),
            expected_kustomization()
        );
        assert_eq!(
            fake.file(CONFIG_REPO, "main", "README.md").unwrap(),
            "config\n"
        );
        assert_eq!(
            fake.commit_of(CONFIG_REPO, &change.commit).unwrap().message,
            message()
        );
        // The same image again: nothing to commit.
        let again = writer
            .commit_image(&gitops(on_github(), false), &app(), &image(), &message())
            .await
            .unwrap();
        assert!(!again.changed);
        assert_eq!(again.commit, change.commit);
    })
    .await;
}

#[tokio::test]
async fn contents_api_conflict_is_read_again_and_reapplied() {
    within(async {
        let (fake, forge) = fake().await;
        let moved = KUSTOMIZATION.replace("namespace: perf", "namespace: perf-2");
        fake.race_next_write(CONFIG_REPO, "main", FILE, &moved);
        let writer = GitopsWriter::new(Some(forge));
        let change = writer
            .commit_image(&gitops(on_github(), false), &app(), &image(), &message())
            .await
            .unwrap();
        let conflicts = fake
            .requests()
            .iter()
            .filter(|r| r.method == "PUT" && r.status == 409)
            .count();
        assert_eq!(conflicts, 1);
        let file = fake.file(CONFIG_REPO, "main", FILE).unwrap();
        assert_eq!(
            file,
            expected_kustomization().replace("namespace: perf", "namespace: perf-2")
        );
        let parent = fake
            .commit_of(CONFIG_REPO, &change.commit)
            .unwrap()
            .parent
            .unwrap();
        assert_eq!(
            fake.commit_of(CONFIG_REPO, &parent).unwrap().message,
            "a concurrent change"
        );
    })
    .await;
}

#[tokio::test]
async fn pull_request_mode_opens_and_merges_a_pull_request() {
    within(async {
        let (fake, forge) = fake().await;
        let writer = GitopsWriter::new(Some(forge));
        let change = writer
            .commit_image(&gitops(on_github(), true), &app(), &image(), &message())
            .await
            .unwrap();
        let number = change.pull_request.expect("a pull request");
        let pull = fake
            .pulls(CONFIG_REPO)
            .into_iter()
            .find(|p| p.number == number)
            .unwrap();
        assert_eq!(pull.state, "closed");
        assert_eq!(pull.merge_sha.as_deref(), Some(change.commit.as_str()));
        assert_eq!(pull.title, message().lines().next().unwrap());
        assert_eq!(
            fake.branch(CONFIG_REPO, "main"),
            Some(change.commit.clone())
        );
        assert_eq!(
            fake.file(CONFIG_REPO, "main", FILE).unwrap(),
            expected_kustomization()
        );
        assert_eq!(
            fake.branch(CONFIG_REPO, &pull.head),
            None,
            "the work branch is deleted"
        );
        assert!(change.url.unwrap().ends_with(&format!("/pull/{number}")));
    })
    .await;
}

/// A bare repository served by `git daemon` on 127.0.0.1.
struct Daemon {
    child: Child,
    bare: PathBuf,
    url: String,
    _root: tempfile::TempDir,
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .current_dir(dir)
        .args([
            "-c",
            "user.name=Someone",
            "-c",
            "user.email=someone@example.com",
        ])
        .args(args)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .output()
        .expect("git runs");
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

fn daemon() -> Daemon {
    let root = tempfile::tempdir().unwrap();
    let bare = root.path().join("config.git");
    git(
        root.path(),
        &[
            "init",
            "--quiet",
            "--bare",
            "--initial-branch=main",
            "config.git",
        ],
    );
    let work = root.path().join("seed");
    git(root.path(), &["clone", "--quiet", "config.git", "seed"]);
    std::fs::create_dir_all(work.join("perf")).unwrap();
    std::fs::write(work.join(FILE), KUSTOMIZATION).unwrap();
    git(&work, &["add", "."]);
    git(&work, &["commit", "--quiet", "-m", "initial"]);
    git(
        &work,
        &["push", "--quiet", "origin", "HEAD:refs/heads/main"],
    );
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new("git")
        .args([
            "daemon",
            "--export-all",
            "--enable=receive-pack",
            "--reuseaddr",
            "--listen=127.0.0.1",
        ])
        .arg(format!("--port={port}"))
        .arg(format!("--base-path={}", root.path().display()))
        .arg(root.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("git daemon starts");
    let started = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "git daemon listens"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    Daemon {
        child,
        bare,
        url: format!("git://127.0.0.1:{port}/config.git"),
        _root: root,
    }
}

fn on_git(d: &Daemon) -> GitopsSource {
    GitopsSource::Git(d.url.clone())
}

#[tokio::test]
async fn plain_git_commits_and_pushes_to_a_real_repository() {
    within(async {
        let d = daemon();
        let writer = GitopsWriter::new(None);
        let change = writer
            .commit_image(&gitops(on_git(&d), false), &app(), &image(), &message())
            .await
            .unwrap();
        assert!(change.changed);
        assert_eq!(git(&d.bare, &["rev-parse", "main"]), change.commit);
        assert_eq!(
            git(&d.bare, &["show", &format!("main:{FILE}")]) + "\n",
            expected_kustomization()
        );
        assert_eq!(
            git(&d.bare, &["log", "-1", "--format=%B", "main"]),
            message().trim_end()
        );
        assert_eq!(
            git(&d.bare, &["log", "-1", "--format=%an", "main"]),
            "Gantry"
        );
        let again = writer
            .commit_image(&gitops(on_git(&d), false), &app(), &image(), &message())
            .await
            .unwrap();
        assert!(!again.changed);
        assert_eq!(again.commit, change.commit);
    })
    .await;
}

#[tokio::test]
async fn a_push_rejected_because_the_branch_moved_is_fetched_reapplied_and_retried() {
    within(async {
        let d = daemon();
        let other = tempfile::tempdir().unwrap();
        git(
            other.path(),
            &["clone", "--quiet", d.bare.to_str().unwrap(), "other"],
        );
        let other_work = other.path().join("other");
        let pushes = Arc::new(AtomicU32::new(0));
        let seen = pushes.clone();
        let hook = Arc::new(move |attempt: u32| {
            seen.fetch_add(1, Ordering::SeqCst);
            if attempt == 1 {
                // Someone else pushes first.
                let moved = KUSTOMIZATION.replace("namespace: perf", "namespace: perf-2");
                std::fs::write(other_work.join(FILE), moved).unwrap();
                git(
                    &other_work,
                    &["commit", "--quiet", "-am", "someone else's change"],
                );
                git(
                    &other_work,
                    &["push", "--quiet", "origin", "HEAD:refs/heads/main"],
                );
            }
        });
        let writer = GitopsWriter::new(None).with_git(GitTransport::default().before_push(hook));
        let change = writer
            .commit_image(&gitops(on_git(&d), false), &app(), &image(), &message())
            .await
            .unwrap();
        assert_eq!(
            pushes.load(Ordering::SeqCst),
            2,
            "rejected once, then pushed"
        );
        assert_eq!(git(&d.bare, &["rev-parse", "main"]), change.commit);
        assert_eq!(
            git(&d.bare, &["show", &format!("main:{FILE}")]) + "\n",
            expected_kustomization().replace("namespace: perf", "namespace: perf-2")
        );
        let subjects = git(&d.bare, &["log", "--format=%s", "main"]);
        assert_eq!(
            subjects.lines().collect::<Vec<_>>(),
            [
                message().lines().next().unwrap(),
                "someone else's change",
                "initial"
            ]
        );
    })
    .await;
}

/// Git's smart HTTP protocol on 127.0.0.1: the real `git http-backend`
/// (CGI) behind a small server that demands HTTP Basic credentials, as an
/// https git host does, and records every `Authorization` it was sent.
struct HttpGit {
    url: String,
    seen: Arc<std::sync::Mutex<Vec<Option<String>>>>,
}

async fn http_git(root: PathBuf, expected: String) -> HttpGit {
    use axum::body::{to_bytes, Body};
    use axum::http::{Request, Response, StatusCode};
    let seen: Arc<std::sync::Mutex<Vec<Option<String>>>> = Arc::default();
    let record = seen.clone();
    let backend = Command::new("git")
        .arg("--exec-path")
        .output()
        .map(|o| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()).join("git-http-backend"))
        .expect("git --exec-path");
    let handler = move |request: Request<Body>| {
        let (root, expected, record, backend) = (
            root.clone(),
            expected.clone(),
            record.clone(),
            backend.clone(),
        );
        async move {
            let (parts, body) = request.into_parts();
            let auth = parts
                .headers
                .get("authorization")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            record.lock().unwrap().push(auth.clone());
            if auth.as_deref() != Some(expected.as_str()) {
                return Response::builder()
                    .status(StatusCode::UNAUTHORIZED)
                    .header("www-authenticate", "Basic realm=\"git\"")
                    .body(Body::from("authentication required"))
                    .unwrap();
            }
            let header = |name: &str| {
                parts
                    .headers
                    .get(name)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("")
                    .to_owned()
            };
            let input = to_bytes(body, 64 << 20).await.unwrap();
            let mut cgi = Command::new(&backend);
            cgi.env_clear()
                .env("GIT_PROJECT_ROOT", &root)
                .env("GIT_HTTP_EXPORT_ALL", "1")
                .env("REMOTE_USER", "x-access-token")
                .env("REMOTE_ADDR", "127.0.0.1")
                .env("REQUEST_METHOD", parts.method.as_str())
                .env("PATH_INFO", parts.uri.path())
                .env("QUERY_STRING", parts.uri.query().unwrap_or(""))
                .env("CONTENT_TYPE", header("content-type"))
                .env("HTTP_CONTENT_ENCODING", header("content-encoding"))
                .env("GIT_PROTOCOL", header("git-protocol"))
                .env("CONTENT_LENGTH", input.len().to_string())
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::null());
            let out = tokio::task::spawn_blocking(move || {
                let mut child = cgi.spawn().expect("git http-backend runs");
                let mut stdin = child.stdin.take().unwrap();
                std::io::Write::write_all(&mut stdin, &input).unwrap();
                drop(stdin);
                child.wait_with_output().unwrap().stdout
            })
            .await
            .unwrap();
            let split = out
                .windows(4)
                .position(|w| w == b"\r\n\r\n")
                .map(|i| (i, 4))
                .or_else(|| out.windows(2).position(|w| w == b"\n\n").map(|i| (i, 2)))
                .expect("CGI headers end");
            let head = String::from_utf8_lossy(&out[..split.0]).into_owned();
            let mut response = Response::builder();
            for line in head.lines() {
                let (name, value) = line.split_once(':').unwrap();
                if name.eq_ignore_ascii_case("status") {
                    let code: u16 = value.trim()[..3].parse().unwrap();
                    response = response.status(code);
                } else {
                    response = response.header(name.trim(), value.trim());
                }
            }
            response
                .body(Body::from(out[split.0 + split.1..].to_vec()))
                .unwrap()
        }
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(listener, axum::Router::new().fallback(handler)).await });
    HttpGit {
        url: format!("http://127.0.0.1:{port}/config.git"),
        seen,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_git_over_http_sends_the_token_and_fails_closed_without_it() {
    within(async {
        let d = daemon();
        let root = d.bare.parent().unwrap().to_path_buf();
        let token = "glpat-gitops-secret";
        let expected = format!(
            "Basic {}",
            base64::Engine::encode(
                &base64::engine::general_purpose::STANDARD,
                format!("x-access-token:{token}")
            )
        );
        let host = http_git(root, expected.clone()).await;
        let secrets = tempfile::tempdir().unwrap();
        let good = secrets.path().join("token");
        std::fs::write(&good, format!("{token}\n")).unwrap();
        let mut config = gitops(GitopsSource::Git(host.url.clone()), false);
        config.token = Some(SecretRef::File(good));

        let change = GitopsWriter::new(None)
            .commit_image(&config, &app(), &image(), &message())
            .await
            .unwrap();
        assert!(change.changed);
        assert_eq!(git(&d.bare, &["rev-parse", "main"]), change.commit);
        assert_eq!(
            git(&d.bare, &["show", &format!("main:{FILE}")]) + "\n",
            expected_kustomization()
        );
        let seen = host.seen.lock().unwrap().clone();
        assert!(seen.len() >= 3, "clone and push: {seen:?}");
        assert!(seen.iter().all(|a| a.as_deref() == Some(expected.as_str())));

        // A wrong token: refused, nothing pushed, and the token is not in the error.
        let wrong = secrets.path().join("wrong");
        std::fs::write(&wrong, "not-the-token").unwrap();
        config.token = Some(SecretRef::File(wrong));
        let before = git(&d.bare, &["rev-parse", "main"]);
        let other = image().replace("4f1c", "9e9e");
        let refused = GitopsWriter::new(None)
            .commit_image(&config, &app(), &other, &message())
            .await
            .unwrap_err()
            .to_string();
        assert!(refused.contains("git clone failed"), "{refused}");
        assert!(!refused.contains("not-the-token"), "{refused}");
        assert_eq!(git(&d.bare, &["rev-parse", "main"]), before);

        // No token at all: the same, without a prompt or a hang.
        config.token = None;
        let refused = GitopsWriter::new(None)
            .commit_image(&config, &app(), &other, &message())
            .await
            .unwrap_err()
            .to_string();
        assert!(refused.contains("git clone failed"), "{refused}");
        assert_eq!(git(&d.bare, &["rev-parse", "main"]), before);
    })
    .await;
}
