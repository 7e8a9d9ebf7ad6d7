//! The registry adapter over real HTTP: against Debian's `docker-registry`
//! and against the sandbox registry. Every adapter and wire-protocol check
//! runs on both (`real` and `sandbox` in each module), so the sandbox cannot
//! drift from the real protocol; checks that need fault injection or a token
//! realm run on the sandbox only.

mod support;

use std::future::Future;
use std::time::Duration;

use gantry::adapters::registry::manifest::{
    self, DOCKER_LIST, DOCKER_MANIFEST, OCI_INDEX, OCI_MANIFEST,
};
use gantry::adapters::registry::{
    Credentials, DockerConfig, ImageRef, OciRegistry, Platform, RegistryError, RegistrySettings,
};
use gantry::config::Secret;
use gantry::engine::{PortError, Registry, State};
use gantry::sandbox::registry::{BuiltImage, ImageFormat};
use serde_json::{json, Value};
use support::registry::{Auth, Kind, TestRegistry, PASSWORD, USER};

const REPO: &str = "acme/web";

/// Every test ends within this, whatever the registry does.
async fn bounded<F: Future<Output = ()>>(test: F) {
    tokio::time::timeout(Duration::from_secs(60), test)
        .await
        .expect("the test finishes in time");
}

/// Runs `check` against a fresh registry of each kind.
macro_rules! on_both {
    ($check:ident, $auth:expr) => {
        mod $check {
            use super::*;

            #[tokio::test]
            async fn real() {
                if let Some(r) = TestRegistry::start(Kind::Real, $auth).await {
                    bounded(super::$check(r)).await;
                }
            }

            #[tokio::test]
            async fn sandbox() {
                let r = TestRegistry::start(Kind::Sandbox, $auth).await.unwrap();
                bounded(super::$check(r)).await;
            }
        }
    };
}

fn amd64() -> Platform {
    Platform::new("linux", "amd64", None)
}

fn arm64() -> Platform {
    Platform::new("linux", "arm64", Some("v8"))
}

fn image(r: &TestRegistry, tag: &str) -> ImageRef {
    ImageRef::parse(&format!("{}/{REPO}:{tag}", r.host())).unwrap()
}

fn repo(r: &TestRegistry) -> String {
    format!("{}/{REPO}", r.host())
}

on_both!(
    resolves_a_tag_to_the_digest_the_registry_reports,
    Auth::Anonymous
);
async fn resolves_a_tag_to_the_digest_the_registry_reports(r: TestRegistry) {
    let built = BuiltImage::single("web-1", &amd64(), ImageFormat::Oci);
    let reported = r.push(REPO, "v1", &built).await;
    assert_eq!(
        reported,
        built.digest(),
        "the registry digests the exact bytes"
    );
    let adapter = r.adapter();

    let resolved = adapter.resolve(&image(&r, "v1")).await.unwrap();
    assert_eq!(resolved.digest, reported);
    assert_eq!(resolved.media_type, OCI_MANIFEST);
    assert!(resolved.platforms.is_empty());
    assert_eq!(adapter.digest(&repo(&r), "v1").await, Ok(reported.clone()));

    // A digest reference checks that the manifest exists.
    let by_digest = ImageRef::parse(&format!("{}@{reported}", repo(&r))).unwrap();
    assert_eq!(adapter.resolve(&by_digest).await.unwrap().digest, reported);

    // Docker schema 2 manifests resolve too.
    let docker = BuiltImage::single("web-docker", &amd64(), ImageFormat::Docker);
    let docker_digest = r.push(REPO, "docker", &docker).await;
    let resolved = adapter.resolve(&image(&r, "docker")).await.unwrap();
    assert_eq!(
        (resolved.digest, resolved.media_type.as_str()),
        (docker_digest, DOCKER_MANIFEST)
    );

    // Tags move; the answer follows the registry, not a cache.
    let moved = BuiltImage::single("web-2", &amd64(), ImageFormat::Oci);
    let moved_digest = r.push(REPO, "v1", &moved).await;
    assert_ne!(moved_digest, reported);
    assert_eq!(adapter.digest(&repo(&r), "v1").await, Ok(moved_digest));
}

on_both!(an_index_resolves_with_its_platforms, Auth::Anonymous);
async fn an_index_resolves_with_its_platforms(r: TestRegistry) {
    let adapter = r.adapter();
    for (format, media_type, tag) in [
        (ImageFormat::Oci, OCI_INDEX, "multi"),
        (ImageFormat::Docker, DOCKER_LIST, "multi-docker"),
    ] {
        let index = BuiltImage::index(tag, &[amd64(), arm64()], format);
        let reported = r.push(REPO, tag, &index).await;
        let resolved = adapter.resolve(&image(&r, tag)).await.unwrap();
        assert_eq!(
            resolved.digest, reported,
            "the index's digest, not a platform's"
        );
        assert_eq!(resolved.media_type, media_type);
        assert_eq!(resolved.platforms, [amd64(), arm64()]);
    }
}

on_both!(a_missing_tag_is_not_found, Auth::Anonymous);
async fn a_missing_tag_is_not_found(r: TestRegistry) {
    let adapter = r.adapter();
    r.push(
        REPO,
        "v1",
        &BuiltImage::single("web-1", &amd64(), ImageFormat::Oci),
    )
    .await;
    let host = r.host();
    assert_eq!(
        adapter.digest(&repo(&r), "nope").await,
        Err(PortError::NotFound(format!(
            "image {host}/acme/web:nope not found — was it built?"
        )))
    );
    // An unknown repository reads the same.
    let err = adapter.digest(&format!("{host}/acme/other"), "v1").await;
    assert_eq!(
        err,
        Err(PortError::NotFound(format!(
            "image {host}/acme/other:v1 not found — was it built?"
        )))
    );
}

on_both!(wrong_or_missing_credentials_fail_auth, Auth::Basic);
async fn wrong_or_missing_credentials_fail_auth(r: TestRegistry) {
    r.push(
        REPO,
        "v1",
        &BuiltImage::single("web-1", &amd64(), ImageFormat::Oci),
    )
    .await;
    let wrong = OciRegistry::new(RegistrySettings {
        credentials: Some(Credentials::new(USER, Secret::new("wrong password".into()))),
        ..r.settings()
    })
    .unwrap();
    let want = Err(PortError::Unauthorised(format!(
        "registry auth failed for {}",
        repo(&r)
    )));
    assert_eq!(wrong.digest(&repo(&r), "v1").await, want);
    let anonymous = OciRegistry::new(RegistrySettings {
        credentials: None,
        ..r.settings()
    })
    .unwrap();
    assert_eq!(anonymous.digest(&repo(&r), "v1").await, want);
}

on_both!(the_basic_auth_challenge_is_answered, Auth::Basic);
async fn the_basic_auth_challenge_is_answered(r: TestRegistry) {
    let built = BuiltImage::single("web-1", &amd64(), ImageFormat::Oci);
    let reported = r.push(REPO, "v1", &built).await;
    let adapter = r.adapter();
    let before = r.sandbox().map_or(0, |s| s.requests().len());
    assert_eq!(adapter.digest(&repo(&r), "v1").await, Ok(reported.clone()));
    assert_eq!(adapter.digest(&repo(&r), "v1").await, Ok(reported));
    if let Some(s) = r.sandbox() {
        let seen: Vec<(String, Option<&str>)> = s.requests()[before..]
            .iter()
            .map(|q| (q.method.clone(), q.auth))
            .collect();
        let head = || "HEAD".to_owned();
        // 401 first, then with credentials; the next resolve sends them up front.
        assert_eq!(
            seen,
            [
                (head(), None),
                (head(), Some("basic")),
                (head(), Some("basic"))
            ]
        );
    }
}

on_both!(credentials_come_from_a_docker_config, Auth::Basic);
async fn credentials_come_from_a_docker_config(r: TestRegistry) {
    use base64::Engine as _;
    let reported = r
        .push(
            REPO,
            "v1",
            &BuiltImage::single("web-1", &amd64(), ImageFormat::Oci),
        )
        .await;
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("{USER}:{PASSWORD}"));
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.json");
    let text = json!({ "auths": { r.host(): { "auth": auth } } }).to_string();
    std::fs::write(&path, text).unwrap();
    let adapter = OciRegistry::new(RegistrySettings {
        credentials: None,
        docker_config: Some(DockerConfig::load(&path).unwrap()),
        ..r.settings()
    })
    .unwrap();
    assert_eq!(adapter.digest(&repo(&r), "v1").await, Ok(reported));
}

on_both!(a_stopped_registry_fails_bounded_and_clear, Auth::Anonymous);
async fn a_stopped_registry_fails_bounded_and_clear(mut r: TestRegistry) {
    let reported = r
        .push(
            REPO,
            "v1",
            &BuiltImage::single("web-1", &amd64(), ImageFormat::Oci),
        )
        .await;
    let adapter = r.adapter();
    assert_eq!(adapter.digest(&repo(&r), "v1").await, Ok(reported));
    r.stop().await;
    let err = adapter.resolve(&image(&r, "v1")).await.unwrap_err();
    let RegistryError::Unavailable {
        attempts, detail, ..
    } = &err
    else {
        panic!("expected unavailable, got {err:?}");
    };
    assert_eq!(*attempts, 3);
    assert!(detail.to_lowercase().contains("refused"), "{detail}");
    let text = err.to_string();
    assert!(
        text.starts_with(&format!(
            "registry {} is unavailable for {} after 3 attempts: ",
            r.host(),
            repo(&r)
        )),
        "{text}"
    );
    assert!(matches!(
        adapter.digest(&repo(&r), "v1").await,
        Err(PortError::Unavailable(_))
    ));
}

on_both!(the_wire_protocol_matches, Auth::Anonymous);
/// Raw requests: what both servers answer, byte for byte where it matters.
async fn the_wire_protocol_matches(r: TestRegistry) {
    let client = reqwest::Client::new();
    let base = r.base();
    let url = |path: &str| format!("{base}/v2/{REPO}/{path}");
    let errors = |body: &str| -> Value { serde_json::from_str(body).unwrap() };

    let root = client.get(format!("{base}/v2/")).send().await.unwrap();
    assert_eq!(root.status(), 200);
    assert_eq!(
        root.headers()["docker-distribution-api-version"],
        "registry/2.0"
    );
    assert_eq!(root.text().await.unwrap(), "{}");

    let oci = BuiltImage::single("wire", &amd64(), ImageFormat::Oci);
    let digest = r.push(REPO, "oci", &oci).await;
    let index = BuiltImage::index("wire", &[amd64(), arm64()], ImageFormat::Oci);
    r.push(REPO, "index", &index).await;
    let list = BuiltImage::index("wire-list", &[amd64(), arm64()], ImageFormat::Docker);
    r.push(REPO, "list", &list).await;
    let docker = BuiltImage::single("wire-docker", &amd64(), ImageFormat::Docker);
    r.push(REPO, "docker", &docker).await;

    // HEAD with every type accepted: digest, type and length, no body.
    let head = client
        .head(url("manifests/oci"))
        .header("accept", manifest::ACCEPT)
        .send()
        .await
        .unwrap();
    assert_eq!(head.status(), 200);
    assert_eq!(head.headers()["docker-content-digest"], digest.as_str());
    assert_eq!(head.headers()["content-type"], OCI_MANIFEST);
    assert_eq!(
        head.headers()["content-length"],
        oci.manifest.len().to_string().as_str()
    );
    assert!(head.bytes().await.unwrap().is_empty());

    // An OCI manifest is "unknown" to a client that does not accept OCI types.
    let only_docker = |path: &str| client.get(url(path)).header("accept", DOCKER_MANIFEST);
    let resp = client
        .head(url("manifests/oci"))
        .header("accept", DOCKER_MANIFEST)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);
    let resp = only_docker("manifests/oci").send().await.unwrap();
    assert_eq!(resp.status(), 404);
    assert_eq!(
        errors(&resp.text().await.unwrap()),
        json!({"errors":[{"code":"MANIFEST_UNKNOWN",
            "message":"OCI manifest found, but accept header does not support OCI manifests"}]})
    );
    let resp = client
        .get(url("manifests/index"))
        .header("accept", OCI_MANIFEST)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);
    assert_eq!(
        errors(&resp.text().await.unwrap())["errors"][0]["message"],
        "OCI index found, but accept header does not support OCI indexes"
    );
    // A Docker list is replaced by its linux/amd64 image for such a client.
    let resp = only_docker("manifests/list").send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(
        resp.headers()["docker-content-digest"],
        list.children[0].digest().as_str()
    );
    // A Docker manifest with no Accept at all would need schema 1.
    let resp = client.get(url("manifests/docker")).send().await.unwrap();
    assert_eq!(resp.status(), 400);
    assert_eq!(
        errors(&resp.text().await.unwrap())["errors"][0]["code"],
        "MANIFEST_INVALID"
    );

    // Missing tag: 404 with the OCI error body (HEAD carries no body).
    let resp = client
        .head(url("manifests/nope"))
        .header("accept", manifest::ACCEPT)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);
    let resp = client
        .get(url("manifests/nope"))
        .header("accept", manifest::ACCEPT)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);
    assert_eq!(
        errors(&resp.text().await.unwrap()),
        json!({"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown",
            "detail":{"Tag":"nope"}}]})
    );

    // Blobs: present, absent.
    let config = manifest::digest_of(&oci.blobs[0]);
    let resp = client
        .head(url(&format!("blobs/{config}")))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["docker-content-digest"], config.as_str());
    let absent = format!("sha256:{}", "2".repeat(64));
    let resp = client
        .get(url(&format!("blobs/{absent}")))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);
    assert_eq!(
        errors(&resp.text().await.unwrap()),
        json!({"errors":[{"code":"BLOB_UNKNOWN","message":"blob unknown to registry","detail":absent}]})
    );

    // Uploads: a wrong digest is refused.
    let started = client.post(url("blobs/uploads/")).send().await.unwrap();
    assert_eq!(started.status(), 202);
    assert_eq!(started.headers()["range"], "0-0");
    assert!(started.headers().contains_key("docker-upload-uuid"));
    let location = started.headers()["location"].to_str().unwrap().to_owned();
    assert!(
        location.starts_with(&format!("{base}/v2/{REPO}/blobs/uploads/")),
        "{location}"
    );
    let resp = client
        .put(format!("{location}&digest={absent}"))
        .body("not that")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    assert_eq!(
        errors(&resp.text().await.unwrap())["errors"][0]["code"],
        "DIGEST_INVALID"
    );

    // Manifests: every blob must be there, and a digest reference must match.
    let mut broken: Value = serde_json::from_slice(&oci.manifest).unwrap();
    broken["layers"][0]["digest"] = json!(absent);
    let resp = client
        .put(url("manifests/broken"))
        .header("content-type", OCI_MANIFEST)
        .body(broken.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    assert_eq!(
        errors(&resp.text().await.unwrap()),
        json!({"errors":[{"code":"MANIFEST_BLOB_UNKNOWN","message":"blob unknown to registry","detail":absent}]})
    );
    let resp = client
        .put(url(&format!("manifests/{absent}")))
        .header("content-type", OCI_MANIFEST)
        .body(oci.manifest.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    assert_eq!(
        errors(&resp.text().await.unwrap())["errors"][0]["code"],
        "DIGEST_INVALID"
    );
    let resp = client
        .put(url("manifests/again"))
        .header("content-type", OCI_MANIFEST)
        .body(oci.manifest.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    assert_eq!(
        resp.headers()["location"],
        format!("{base}/v2/{REPO}/manifests/{digest}").as_str()
    );
}

on_both!(an_unauthenticated_request_is_challenged, Auth::Basic);
async fn an_unauthenticated_request_is_challenged(r: TestRegistry) {
    let client = reqwest::Client::new();
    let resp = client
        .get(format!("{}/v2/{REPO}/manifests/v1", r.base()))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    let challenge = resp.headers()["www-authenticate"].to_str().unwrap();
    assert!(challenge.starts_with("Basic realm=\""), "{challenge}");
    let body: Value = resp.json().await.unwrap();
    assert_eq!(
        body["errors"][0],
        json!({"code":"UNAUTHORIZED","message":"authentication required",
            "detail":[{"Type":"repository","Class":"","Name":REPO,"Action":"pull"}]})
    );
}

on_both!(the_image_digest_command, Auth::Basic);
/// `gantry image digest` as an operator runs it.
async fn the_image_digest_command(r: TestRegistry) {
    let index = BuiltImage::index("cli", &[amd64(), arm64()], ImageFormat::Oci);
    let reported = r.push(REPO, "v1", &index).await;
    let home = tempfile::tempdir().unwrap();
    let home_dir = home.path().to_owned();
    // The child runs on a blocking thread so that this runtime keeps serving
    // the sandbox registry meanwhile.
    let run = |args: &[&str], creds: Option<(&str, &str)>| {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_gantry"));
        cmd.arg("image")
            .arg("digest")
            .args(args)
            .env("HOME", &home_dir)
            .env_remove("DOCKER_CONFIG")
            .env_remove("REGISTRY_USERNAME")
            .env_remove("REGISTRY_PASSWORD");
        if let Some((user, password)) = creds {
            cmd.env("REGISTRY_USERNAME", user)
                .env("REGISTRY_PASSWORD", password);
        }
        async move {
            let out = tokio::task::spawn_blocking(move || cmd.output())
                .await
                .unwrap()
                .unwrap();
            (
                out.status.success(),
                String::from_utf8(out.stdout).unwrap(),
                String::from_utf8(out.stderr).unwrap(),
            )
        }
    };
    let target = format!("{}:v1", repo(&r));
    let creds = Some((USER, PASSWORD));

    let (ok, out, err) = run(&["--plain-http", &target], creds).await;
    assert!(ok, "{err}");
    assert_eq!(
        out,
        format!("{reported}\nmedia type: {OCI_INDEX}\nplatforms: linux/amd64, linux/arm64/v8\n")
    );
    let (ok, out, _) = run(&["--plain-http", "--json", &target], creds).await;
    assert!(ok);
    let printed: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        printed,
        json!({"image": target, "digest": reported, "media_type": OCI_INDEX,
            "platforms": ["linux/amd64", "linux/arm64/v8"]})
    );

    let missing = format!("{}:nope", repo(&r));
    let (ok, out, err) = run(&["--plain-http", &missing], creds).await;
    assert!(!ok && out.is_empty());
    assert_eq!(
        err,
        format!("error: image {missing} not found — was it built?\n")
    );
    let (ok, _, err) = run(&["--plain-http", &target], Some((USER, "wrong"))).await;
    assert!(!ok);
    assert_eq!(
        err,
        format!("error: registry auth failed for {}\n", repo(&r))
    );
    assert!(!err.contains("wrong"));
    let (ok, out, _) = run(&["--plain-http", "--json", &target], None).await;
    assert!(!ok);
    assert_eq!(
        serde_json::from_str::<Value>(&out).unwrap(),
        json!({"error": format!("registry auth failed for {}", repo(&r))})
    );

    // The auth entry of a Docker config.json.
    use base64::Engine as _;
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("{USER}:{PASSWORD}"));
    let config = home.path().join("docker.json");
    std::fs::write(
        &config,
        json!({"auths": {r.host(): {"auth": auth}}}).to_string(),
    )
    .unwrap();
    let path = config.to_str().unwrap();
    let (ok, out, err) = run(&["--plain-http", "--docker-config", path, &target], None).await;
    assert!(ok, "{err}");
    assert!(out.starts_with(reported.as_str()));
}

on_both!(a_deploy_uses_the_resolved_digest, Auth::Basic);
/// The engine's deploy pins the digest the registry resolved, end to end.
async fn a_deploy_uses_the_resolved_digest(r: TestRegistry) {
    use gantry::sandbox::stack::SandboxOptions;

    let dir = tempfile::tempdir().unwrap();
    let data = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/engine.toml");
    let original = std::fs::read_to_string(data).unwrap();
    let line = "image = \"registry.local:5000/acme/web\"";
    assert!(original.contains(line), "engine.toml's image line changed");
    let text = original.replace(line, &format!("image = \"{}\"", repo(&r)));
    let text = format!(
        "{text}\n[registry]\nusername = {{ file = \"{}\" }}\n\
         password = {{ file = \"{}\" }}\nplain_http_hosts = [\"{}\"]\ntimeout = \"5s\"\n",
        dir.path().join("user").display(),
        dir.path().join("password").display(),
        r.host()
    );
    std::fs::write(dir.path().join("user"), USER).unwrap();
    std::fs::write(dir.path().join("password"), format!("{PASSWORD}\n")).unwrap();
    let path = dir.path().join("gantry.toml");
    std::fs::write(&path, text).unwrap();
    // The sandbox for everything else; the registry is the one under test.
    let h = support::Harness::with_options(
        path.to_str().unwrap(),
        SandboxOptions {
            external_registry: true,
            ..SandboxOptions::with_tick(support::TICK)
        },
    )
    .await;
    let main = h.sandbox.github.branch("acme/web", "main").unwrap();
    let built = BuiltImage::index("main", &[amd64(), arm64()], ImageFormat::Oci);
    let digest = r.push(REPO, &main, &built).await;
    let say = |text: &'static str| h.say("console:alice", text);
    let image_in_dev = || h.image("dev", "web");

    let reply = say("deploy main to dev").await;
    assert_eq!(reply.state, Some(State::Succeeded), "{}", reply.text);
    assert_eq!(image_in_dev(), format!("{}@{digest}", repo(&r)));

    // No image for the commit: no Kubernetes write, and the reply says why.
    let writes_before = h.cluster_writes().len();
    let reply = say("deploy feat-unbuilt to dev").await;
    assert!(
        reply.text.contains("not found — was it built?"),
        "{}",
        reply.text
    );
    assert_eq!(image_in_dev(), format!("{}@{digest}", repo(&r)));
    let writes = h.cluster_writes();
    assert_eq!(writes.len(), writes_before, "{writes:?}");
}

// Sandbox only: a token realm, injected faults, a registry without the digest header.

async fn sandbox(auth: Auth) -> TestRegistry {
    TestRegistry::start(Kind::Sandbox, auth).await.unwrap()
}

#[tokio::test]
async fn the_bearer_challenge_is_answered_and_the_token_cached() {
    support::within(async {
        bounded(async {
            let r = sandbox(Auth::Bearer).await;
            let s = r.sandbox().unwrap();
            let reported = r
                .push(
                    REPO,
                    "v1",
                    &BuiltImage::single("web-1", &amd64(), ImageFormat::Oci),
                )
                .await;
            let adapter = r.adapter();
            let (grants, before) = (s.token_grants(), s.requests().len());
            assert_eq!(adapter.digest(&repo(&r), "v1").await, Ok(reported.clone()));
            assert_eq!(adapter.digest(&repo(&r), "v1").await, Ok(reported));
            assert_eq!(s.token_grants(), grants + 1, "one token for both");
            let seen: Vec<(String, String, Option<&str>)> = s.requests()[before..]
                .iter()
                .map(|q| (q.method.clone(), q.path.clone(), q.auth))
                .collect();
            let manifest = format!("/v2/{REPO}/manifests/v1");
            assert_eq!(
                seen,
                [
                    ("HEAD".into(), manifest.clone(), None),
                    ("GET".into(), "/token".into(), Some("basic")),
                    ("HEAD".into(), manifest.clone(), Some("bearer")),
                    ("HEAD".into(), manifest, Some("bearer")),
                ]
            );

            let wrong = OciRegistry::new(RegistrySettings {
                credentials: Some(Credentials::new(USER, Secret::new("nope".into()))),
                ..r.settings()
            })
            .unwrap();
            let want = Err(PortError::Unauthorised(format!(
                "registry auth failed for {}",
                repo(&r)
            )));
            assert_eq!(wrong.digest(&repo(&r), "v1").await, want);
            // Anonymous callers get a token that grants nothing.
            let anonymous = OciRegistry::new(RegistrySettings {
                credentials: None,
                ..r.settings()
            })
            .unwrap();
            assert_eq!(anonymous.digest(&repo(&r), "v1").await, want);
        })
        .await;
    })
    .await;
}

#[tokio::test]
async fn server_errors_are_retried_a_bounded_number_of_times() {
    support::within(async {
        bounded(async {
            let r = sandbox(Auth::Anonymous).await;
            let s = r.sandbox().unwrap();
            let reported = r
                .push(
                    REPO,
                    "v1",
                    &BuiltImage::single("web-1", &amd64(), ImageFormat::Oci),
                )
                .await;
            let adapter = r.adapter();
            s.fail_next(2, 503, None);
            assert_eq!(adapter.digest(&repo(&r), "v1").await, Ok(reported.clone()));
            let before = s.requests().len();
            s.fail_next(3, 503, None);
            let err = adapter.resolve(&image(&r, "v1")).await.unwrap_err();
            assert_eq!(s.requests().len() - before, 3, "three attempts, no more");
            assert_eq!(
                err.to_string(),
                format!(
                    "registry {} is unavailable for {} after 3 attempts: \
                     HTTP 503 Service Unavailable",
                    r.host(),
                    repo(&r)
                )
            );
            // 429 waits as asked when that is short, and gives up at once when not.
            s.fail_next(1, 429, Some(0));
            assert_eq!(adapter.digest(&repo(&r), "v1").await, Ok(reported));
            s.fail_next(1, 429, Some(3600));
            assert_eq!(
                adapter.digest(&repo(&r), "v1").await,
                Err(PortError::RateLimited {
                    retry_after: Duration::from_secs(3600)
                })
            );
        })
        .await;
    })
    .await;
}

#[tokio::test]
async fn a_registry_without_the_digest_header_is_hashed() {
    support::within(async {
        bounded(async {
            let r = sandbox(Auth::Anonymous).await;
            let s = r.sandbox().unwrap();
            let built = BuiltImage::single("web-1", &amd64(), ImageFormat::Oci);
            let reported = r.push(REPO, "v1", &built).await;
            s.omit_digest_header(true);
            let before = s.requests().len();
            let resolved = r.adapter().resolve(&image(&r, "v1")).await.unwrap();
            assert_eq!(
                (resolved.digest, resolved.media_type.as_str()),
                (reported, OCI_MANIFEST)
            );
            let methods: Vec<String> = s.requests()[before..]
                .iter()
                .map(|q| q.method.clone())
                .collect();
            assert_eq!(methods, ["HEAD", "GET"]);
        })
        .await;
    })
    .await;
}

#[tokio::test]
async fn images_published_directly_resolve_like_pushed_ones() {
    support::within(async {
        bounded(async {
            let r = sandbox(Auth::Anonymous).await;
            let index = BuiltImage::index("demo", &[amd64(), arm64()], ImageFormat::Oci);
            let digest = r.sandbox().unwrap().publish(REPO, "demo", &index).unwrap();
            assert_eq!(digest, index.digest());
            let resolved = r.adapter().resolve(&image(&r, "demo")).await.unwrap();
            assert_eq!(resolved.digest, digest);
            assert_eq!(resolved.platforms, [amd64(), arm64()]);
        })
        .await;
    })
    .await;
}

#[tokio::test]
async fn a_registry_that_never_answers_times_out_bounded() {
    bounded(async {
        // Accepts connections and never answers.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let host = listener.local_addr().unwrap().to_string();
        let hold = tokio::spawn(async move {
            let mut open = Vec::new();
            while let Ok((socket, _)) = listener.accept().await {
                open.push(socket);
            }
        });
        gantry::tls::install_crypto();
        let adapter = OciRegistry::new(RegistrySettings {
            plain_http_hosts: vec![host.clone()],
            timeout: Duration::from_millis(200),
            backoff: Duration::from_millis(10),
            ..RegistrySettings::default()
        })
        .unwrap();
        let image = format!("{host}/{REPO}");
        let err = adapter.digest(&image, "v1").await.unwrap_err();
        assert_eq!(
            err,
            PortError::Timeout(format!(
                "registry {host} did not answer for {image} within 0.2s, 3 attempts"
            ))
        );
        hold.abort();
    })
    .await;
}
