//! Container registries for tests: Debian's `docker-registry` (distribution
//! 2.8) started on a free 127.0.0.1 port with its own storage, or the
//! sandbox registry, both loaded with images pushed over the OCI API.
//!
//! Without `docker-registry` (or `htpasswd` for the auth instance) a test
//! fails under `CI=true`, saying what to install, and is skipped with a
//! printed reason elsewhere: [`TestRegistry::start`] returns `None`.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::Duration;

use gantry::adapters::registry::auth::Challenge;
use gantry::adapters::registry::{Credentials, OciRegistry, RegistrySettings};
use gantry::config::Secret;
use gantry::names::Digest;
use gantry::sandbox::registry::{BuiltImage, SandboxAuth, SandboxRegistry};

use super::binaries;

/// The user the auth instances accept.
pub const USER: &str = "gantry-test";
/// Their password.
pub const PASSWORD: &str = "correct horse battery staple";
/// What to install when the real registry is missing.
pub const INSTALL: &str =
    "install docker-registry (apt-get install -y docker-registry apache2-utils)";

/// Which server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Debian's `docker-registry`.
    Real,
    /// `gantry::sandbox::registry`.
    Sandbox,
}

/// What the server asks of clients.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Auth {
    /// Nothing.
    Anonymous,
    /// HTTP basic (`htpasswd` for the real one).
    Basic,
    /// Bearer tokens from a token realm (sandbox only).
    Bearer,
}

/// A `docker-registry serve` process; killed when dropped.
pub struct RealRegistry {
    child: Option<Child>,
    host: String,
    dir: tempfile::TempDir,
}

impl RealRegistry {
    /// Starts one, waiting until `GET /v2/` answers; `None` when skipped.
    pub async fn start(basic_auth: bool) -> Option<RealRegistry> {
        let binary = binaries::require("docker-registry", INSTALL)?;
        let mut dir = tempfile::tempdir().expect("temp dir");
        let mut auth = String::new();
        if basic_auth {
            let htpasswd = binaries::require("htpasswd", INSTALL)?;
            let out = Command::new(htpasswd)
                .args(["-Bbn", USER, PASSWORD])
                .output()
                .expect("htpasswd runs");
            assert!(out.status.success(), "htpasswd failed: {out:?}");
            let file = dir.path().join("htpasswd");
            std::fs::write(&file, &out.stdout).expect("htpasswd file");
            auth = format!(
                "auth:\n  htpasswd:\n    realm: gantry-test\n    path: {}\n",
                file.display()
            );
        }
        // A port picked here can be taken before the registry binds it: try again then.
        for _ in 0..5 {
            let host = format!("127.0.0.1:{}", binaries::free_port());
            let config = format!(
                "version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\n\
                 storage:\n  filesystem:\n    rootdirectory: {}\n  \
                 maintenance:\n    uploadpurging:\n      enabled: false\n\
                 http:\n  addr: {host}\n  secret: gantry-test-secret\n{auth}",
                dir.path().join("storage").display()
            );
            let config_path = dir.path().join("config.yml");
            std::fs::write(&config_path, config).expect("registry config");
            let log = dir.path().join("registry.log");
            let child = Command::new(&binary)
                .arg("serve")
                .arg(&config_path)
                .stdin(Stdio::null())
                .stdout(std::fs::File::create(&log).expect("log file"))
                .stderr(std::fs::File::create(dir.path().join("registry.err")).expect("log"))
                .spawn()
                .expect("docker-registry starts");
            let mut registry = RealRegistry {
                child: Some(child),
                host,
                dir,
            };
            if registry.wait_ready().await {
                return Some(registry);
            }
            registry.stop();
            dir = std::mem::replace(&mut registry.dir, tempfile::tempdir().expect("temp dir"));
        }
        panic!("docker-registry did not start; see its log above");
    }

    /// Waits (bounded) for `GET /v2/`; false if the process exited first.
    async fn wait_ready(&mut self) -> bool {
        let client = reqwest::Client::new();
        let url = format!("http://{}/v2/", self.host);
        for _ in 0..200 {
            if let Some(child) = self.child.as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    let err = std::fs::read_to_string(self.dir.path().join("registry.err"))
                        .unwrap_or_default();
                    eprintln!("docker-registry exited with {status}: {err}");
                    return false;
                }
            }
            if let Ok(resp) = client.get(&url).send().await {
                let status = resp.status().as_u16();
                assert!(status == 200 || status == 401, "GET /v2/ answered {status}");
                return true;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("docker-registry did not answer on {} within 5 s", self.host);
    }

    /// `127.0.0.1:port`.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// Where it keeps its data.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Kills the process (SIGKILL) and reaps it.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for RealRegistry {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A registry server of either kind.
pub enum Server {
    /// The real one.
    Real(RealRegistry),
    /// The sandbox one.
    Sandbox(SandboxRegistry),
}

/// A running registry, what it demands, and how to push to it.
pub struct TestRegistry {
    pub server: Server,
    pub auth: Auth,
}

impl TestRegistry {
    /// Starts a registry; `None` when the real one is missing outside CI.
    pub async fn start(kind: Kind, auth: Auth) -> Option<TestRegistry> {
        gantry::tls::install_crypto();
        let server = match kind {
            Kind::Real => {
                assert!(
                    auth != Auth::Bearer,
                    "the real test registry has no token realm"
                );
                Server::Real(RealRegistry::start(auth == Auth::Basic).await?)
            }
            Kind::Sandbox => {
                let sandbox_auth = match auth {
                    Auth::Anonymous => SandboxAuth::Anonymous,
                    Auth::Basic => SandboxAuth::Basic {
                        username: USER.into(),
                        password: PASSWORD.into(),
                    },
                    Auth::Bearer => SandboxAuth::Bearer {
                        username: USER.into(),
                        password: PASSWORD.into(),
                        token_ttl: Duration::from_secs(300),
                    },
                };
                Server::Sandbox(
                    gantry::sandbox::registry::start(sandbox_auth)
                        .await
                        .expect("sandbox registry starts"),
                )
            }
        };
        Some(TestRegistry { server, auth })
    }

    /// `127.0.0.1:port`.
    pub fn host(&self) -> String {
        match &self.server {
            Server::Real(r) => r.host().to_owned(),
            Server::Sandbox(s) => s.host(),
        }
    }

    /// `http://127.0.0.1:port`.
    pub fn base(&self) -> String {
        format!("http://{}", self.host())
    }

    /// The sandbox server, for its request log and fault injection.
    pub fn sandbox(&self) -> Option<&SandboxRegistry> {
        match &self.server {
            Server::Sandbox(s) => Some(s),
            Server::Real(_) => None,
        }
    }

    /// The credentials it accepts, if it asks for any.
    pub fn credentials(&self) -> Option<Credentials> {
        (self.auth != Auth::Anonymous).then(|| Credentials::new(USER, Secret::new(PASSWORD.into())))
    }

    /// Adapter settings for it: plain HTTP, its credentials, quick retries.
    pub fn settings(&self) -> RegistrySettings {
        RegistrySettings {
            credentials: self.credentials(),
            plain_http_hosts: vec![self.host()],
            timeout: Duration::from_secs(5),
            backoff: Duration::from_millis(20),
            ..RegistrySettings::default()
        }
    }

    /// The adapter pointed at it.
    pub fn adapter(&self) -> OciRegistry {
        OciRegistry::new(self.settings()).expect("adapter builds")
    }

    /// Stops the server; requests to it are refused from now on.
    pub async fn stop(&mut self) {
        match &mut self.server {
            Server::Real(r) => r.stop(),
            Server::Sandbox(s) => s.stop().await,
        }
    }

    /// A pusher with its credentials.
    pub fn pusher(&self) -> Pusher {
        Pusher::new(&self.base(), self.credentials())
    }

    /// Pushes `image` as `repository:tag`; returns the digest the registry reported.
    pub async fn push(&self, repository: &str, tag: &str, image: &BuiltImage) -> Digest {
        self.pusher().push(repository, tag, image).await
    }
}

/// Pushes images over the OCI API: blob upload (`POST` then `PUT ?digest=`),
/// then the manifest `PUT`; for an index, its images first, by digest.
pub struct Pusher {
    client: reqwest::Client,
    base: String,
    credentials: Option<Credentials>,
    auth: Mutex<Option<String>>,
}

impl Pusher {
    /// A pusher for the registry at `base` (`http://host:port`).
    pub fn new(base: &str, credentials: Option<Credentials>) -> Pusher {
        gantry::tls::install_crypto();
        Pusher {
            client: reqwest::Client::new(),
            base: base.to_owned(),
            credentials,
            auth: Mutex::new(None),
        }
    }

    /// Sends a request, answering one basic or bearer challenge.
    async fn send(&self, build: impl Fn() -> reqwest::RequestBuilder) -> reqwest::Response {
        for _ in 0..2 {
            let auth = self.auth.lock().unwrap().clone();
            let request = match &auth {
                Some(a) => build().header("authorization", a),
                None => build(),
            };
            let resp = request.send().await.expect("registry answers");
            if resp.status() != 401 {
                return resp;
            }
            let offered = resp.headers()["www-authenticate"]
                .to_str()
                .unwrap()
                .to_owned();
            let creds = self.credentials.as_ref().expect("credentials for a 401");
            let answer = match Challenge::parse(&offered).expect("a challenge") {
                Challenge::Basic { .. } => creds.basic(),
                Challenge::Bearer {
                    realm,
                    service,
                    scope,
                } => {
                    let mut url = reqwest::Url::parse(&realm).unwrap();
                    url.query_pairs_mut()
                        .append_pair("service", &service.unwrap_or_default())
                        .append_pair("scope", &scope.unwrap_or_default());
                    let grant: serde_json::Value = self
                        .client
                        .get(url)
                        .header("authorization", creds.basic())
                        .send()
                        .await
                        .unwrap()
                        .json()
                        .await
                        .unwrap();
                    format!("Bearer {}", grant["token"].as_str().unwrap())
                }
            };
            *self.auth.lock().unwrap() = Some(answer);
        }
        panic!("the registry refused the pusher's credentials");
    }

    /// Uploads one blob; returns its digest.
    pub async fn push_blob(&self, repository: &str, bytes: &[u8]) -> Digest {
        let digest = gantry::adapters::registry::manifest::digest_of(bytes);
        let url = format!("{}/v2/{repository}/blobs/uploads/", self.base);
        let started = self.send(|| self.client.post(&url)).await;
        assert_eq!(started.status(), 202, "blob upload start");
        let location = started.headers()["location"].to_str().unwrap().to_owned();
        let location = if location.starts_with('/') {
            format!("{}{location}", self.base)
        } else {
            location
        };
        let sep = if location.contains('?') { '&' } else { '?' };
        let put = format!("{location}{sep}digest={digest}");
        let done = self
            .send(|| {
                self.client
                    .put(&put)
                    .header("content-type", "application/octet-stream")
                    .body(bytes.to_vec())
            })
            .await;
        assert_eq!(done.status(), 201, "blob upload finish");
        assert_eq!(done.headers()["docker-content-digest"], digest.as_str());
        digest
    }

    /// Puts a manifest under `reference`; returns the digest the registry reported.
    pub async fn push_manifest(
        &self,
        repository: &str,
        reference: &str,
        media_type: &str,
        bytes: &[u8],
    ) -> reqwest::Response {
        let url = format!("{}/v2/{repository}/manifests/{reference}", self.base);
        self.send(|| {
            self.client
                .put(&url)
                .header("content-type", media_type)
                .body(bytes.to_vec())
        })
        .await
    }

    /// Pushes an image (its blobs, or for an index its images) and its manifest.
    pub async fn push(&self, repository: &str, tag: &str, image: &BuiltImage) -> Digest {
        for child in &image.children {
            Box::pin(self.push(repository, child.digest().as_str(), child)).await;
        }
        for blob in &image.blobs {
            self.push_blob(repository, blob).await;
        }
        let resp = self
            .push_manifest(repository, tag, image.media_type, &image.manifest)
            .await;
        assert_eq!(resp.status(), 201, "manifest put: {:?}", resp.text().await);
        let reported = resp.headers()["docker-content-digest"]
            .to_str()
            .unwrap()
            .to_owned();
        Digest::new(&reported).expect("a sha256 digest")
    }
}
