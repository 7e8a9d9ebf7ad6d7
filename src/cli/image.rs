//! `gantry image digest IMAGE`: the digest a deploy would pin, asked of the registry.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use super::fail;
use crate::adapters::registry::{
    Credentials, DockerConfig, ImageRef, OciRegistry, RegistryError, RegistrySettings, Resolved,
};
use crate::config::SecretRef;

/// Arguments of `gantry image`.
#[derive(Debug, clap::Args)]
pub struct ImageArgs {
    #[command(subcommand)]
    command: ImageCommand,
}

#[derive(Debug, clap::Subcommand)]
enum ImageCommand {
    /// Print the manifest digest (and media type) that `registry/name:tag` points at.
    ///
    /// With --config, the registry is asked exactly as the bot asks it: the
    /// config's [registry] credentials, plain-HTTP hosts, endpoints and
    /// timeout. Without it, credentials come from REGISTRY_USERNAME and REGISTRY_PASSWORD, else
    /// from the registry's entry in a Docker config.json (--docker-config,
    /// else $DOCKER_CONFIG/config.json or ~/.docker/config.json when present),
    /// else the registry is asked anonymously. Exits 1 when the image does not
    /// exist, auth fails or the registry cannot be reached.
    #[command(
        after_help = "Examples:\n  gantry image digest ghcr.io/acme/web:1a2b3c4\n  gantry image digest --plain-http --json 127.0.0.1:5000/acme/web:main\n  gantry image digest --config config/gantry.toml registry.local:5000/acme/web:main"
    )]
    Digest(DigestArgs),
}

#[derive(Debug, clap::Args)]
struct DigestArgs {
    /// The image: `[registry[:port]/]name[:tag]`, or `…@sha256:…` to check that it exists.
    #[arg(value_name = "IMAGE")]
    image: String,
    /// Take the registry settings from this Gantry config, as the bot does.
    #[arg(long, short = 'c', value_name = "PATH", conflicts_with_all = ["plain_http", "docker_config", "timeout"])]
    config: Option<PathBuf>,
    /// Speak plain HTTP to the image's registry (a local or test registry).
    #[arg(long)]
    plain_http: bool,
    /// A Docker config.json to take the registry's auth entry from.
    #[arg(long, value_name = "PATH")]
    docker_config: Option<PathBuf>,
    /// Print `{"image", "digest", "media_type", "platforms"}` as JSON.
    #[arg(long)]
    json: bool,
    /// Timeout of each request to the registry.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration, value_name = "DURATION")]
    timeout: Duration,
}

/// Runs `gantry image …`.
pub fn run(args: &ImageArgs) -> ExitCode {
    match &args.command {
        ImageCommand::Digest(args) => digest(args),
    }
}

fn digest(args: &DigestArgs) -> ExitCode {
    let outcome = client(args).and_then(|(image, registry)| {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| RegistryError::Settings(format!("cannot start the runtime: {e}")))?;
        let resolved = runtime.block_on(registry.resolve(&image))?;
        Ok((image, resolved))
    });
    match (outcome, args.json) {
        (Ok((image, resolved)), true) => {
            println!("{}", json(&image, &resolved));
            ExitCode::SUCCESS
        }
        (Ok((_, resolved)), false) => {
            println!("{}", resolved.digest);
            println!("media type: {}", resolved.media_type);
            if !resolved.platforms.is_empty() {
                let shown: Vec<String> = resolved.platforms.iter().map(|p| p.to_string()).collect();
                println!("platforms: {}", shown.join(", "));
            }
            ExitCode::SUCCESS
        }
        (Err(e), true) => {
            println!("{}", serde_json::json!({ "error": e.to_string() }));
            ExitCode::FAILURE
        }
        (Err(e), false) => fail(e),
    }
}

fn json(image: &ImageRef, resolved: &Resolved) -> serde_json::Value {
    let platforms: Vec<String> = resolved.platforms.iter().map(|p| p.to_string()).collect();
    serde_json::json!({
        "image": image.to_string(),
        "digest": resolved.digest,
        "media_type": resolved.media_type,
        "platforms": platforms,
    })
}

/// The image asked about and the registry client: the config's, or one
/// from the flags and the environment.
fn client(args: &DigestArgs) -> Result<(ImageRef, OciRegistry), RegistryError> {
    let image = ImageRef::parse(&args.image).map_err(RegistryError::from)?;
    if let Some(path) = &args.config {
        let config =
            crate::config::load(path).map_err(|e| RegistryError::Settings(e.to_string()))?;
        return Ok((image, OciRegistry::from_config(&config)?));
    }
    let settings = RegistrySettings {
        plain_http_hosts: if args.plain_http {
            vec![image.api_host().to_owned()]
        } else {
            Vec::new()
        },
        ..settings(args)?
    };
    Ok((image, OciRegistry::new(settings)?))
}

/// Credentials from the environment and the Docker config, and the timeout.
fn settings(args: &DigestArgs) -> Result<RegistrySettings, RegistryError> {
    let user = std::env::var_os("REGISTRY_USERNAME");
    let password = std::env::var_os("REGISTRY_PASSWORD");
    let credentials = match (user, password) {
        (None, None) => None,
        (Some(_), Some(_)) => {
            let read = |name: &str| {
                SecretRef::Env(name.into())
                    .resolve()
                    .map_err(|e| RegistryError::Settings(e.to_string()))
            };
            let user = read("REGISTRY_USERNAME")?;
            Some(Credentials::new(user.expose(), read("REGISTRY_PASSWORD")?))
        }
        _ => {
            return Err(RegistryError::Settings(
                "set both REGISTRY_USERNAME and REGISTRY_PASSWORD, or neither".into(),
            ))
        }
    };
    let path = args.docker_config.clone().or_else(default_docker_config);
    let docker_config = match path {
        Some(p) => {
            Some(DockerConfig::load(&p).map_err(|e| RegistryError::Settings(e.to_string()))?)
        }
        None => None,
    };
    Ok(RegistrySettings {
        credentials,
        docker_config,
        timeout: args.timeout,
        ..RegistrySettings::default()
    })
}

/// Where Docker keeps its config, if that file exists.
fn default_docker_config() -> Option<PathBuf> {
    let dir = std::env::var_os("DOCKER_CONFIG")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".docker")))?;
    let path = dir.join("config.json");
    path.is_file().then_some(path)
}
