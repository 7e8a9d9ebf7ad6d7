//! Manifest media types, digests of manifest bytes, and an index's platforms.

use std::fmt;

use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use crate::names::Digest;

/// An OCI image index (a multi-platform image).
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
/// An OCI image manifest (one platform).
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// A Docker manifest list (a multi-platform image).
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
/// A Docker image manifest, schema 2 (one platform).
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";

/// The `Accept` header of every manifest request. All four types, always:
/// a registry answers 404 for an OCI manifest whose type is not accepted, and
/// replaces a list it may not send by one platform's manifest (another digest).
pub const ACCEPT: &str = "application/vnd.oci.image.index.v1+json, \
    application/vnd.oci.image.manifest.v1+json, \
    application/vnd.docker.distribution.manifest.list.v2+json, \
    application/vnd.docker.distribution.manifest.v2+json";

/// Whether a media type is a multi-platform index or list.
pub fn is_index(media_type: &str) -> bool {
    media_type == OCI_INDEX || media_type == DOCKER_LIST
}

/// Whether a media type is one of the four manifest types Gantry accepts.
pub fn is_known(media_type: &str) -> bool {
    [OCI_INDEX, OCI_MANIFEST, DOCKER_LIST, DOCKER_MANIFEST].contains(&media_type)
}

/// The media type of a `Content-Type` header, without parameters.
pub fn bare_media_type(content_type: &str) -> &str {
    content_type.split(';').next().unwrap_or_default().trim()
}

/// The digest of manifest bytes, exactly as received.
pub fn digest_of(bytes: &[u8]) -> Digest {
    let hex = hex::encode(Sha256::digest(bytes));
    Digest::new(&format!("sha256:{hex}")).unwrap_or_else(|_| unreachable!("64 hex digits"))
}

/// A platform an image index holds an image for.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Platform {
    /// Operating system, e.g. `linux`.
    pub os: String,
    /// CPU architecture, e.g. `arm64`.
    pub architecture: String,
    /// CPU variant, e.g. `v8`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
}

impl Platform {
    /// A platform from `os/architecture[/variant]`.
    pub fn new(os: &str, architecture: &str, variant: Option<&str>) -> Platform {
        Platform {
            os: os.to_owned(),
            architecture: architecture.to_owned(),
            variant: variant.map(str::to_owned),
        }
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

#[derive(Deserialize)]
struct Envelope {
    #[serde(rename = "mediaType")]
    media_type: Option<String>,
    #[serde(default)]
    manifests: Vec<Entry>,
}

#[derive(Deserialize)]
struct Entry {
    platform: Option<Platform>,
}

/// The `mediaType` a manifest declares in its body, if any.
pub fn declared_media_type(bytes: &[u8]) -> Option<String> {
    serde_json::from_slice::<Envelope>(bytes)
        .ok()
        .and_then(|e| e.media_type)
}

/// The platforms of an index, in its order; build attestations (platform
/// `unknown/unknown`) are left out since nothing runs them.
pub fn platforms(bytes: &[u8]) -> Result<Vec<Platform>, String> {
    let envelope: Envelope =
        serde_json::from_slice(bytes).map_err(|e| format!("the index is not valid JSON: {e}"))?;
    Ok(envelope
        .manifests
        .into_iter()
        .filter_map(|m| m.platform)
        .filter(|p| !(p.os == "unknown" && p.architecture == "unknown"))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_platforms() {
        let index = br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json",
            "manifests":[
              {"digest":"sha256:a","platform":{"architecture":"amd64","os":"linux"}},
              {"digest":"sha256:b","platform":{"architecture":"arm64","os":"linux","variant":"v8"}},
              {"digest":"sha256:c","platform":{"architecture":"unknown","os":"unknown"}},
              {"digest":"sha256:d"}]}"#;
        let found = platforms(index).unwrap();
        let shown: Vec<String> = found.iter().map(ToString::to_string).collect();
        assert_eq!(shown, ["linux/amd64", "linux/arm64/v8"]);
        assert_eq!(declared_media_type(index).as_deref(), Some(OCI_INDEX));
        assert!(platforms(b"not json").is_err());
    }

    #[test]
    fn media_types() {
        assert!(is_index(OCI_INDEX) && is_index(DOCKER_LIST));
        assert!(!is_index(OCI_MANIFEST) && !is_index(DOCKER_MANIFEST));
        for t in [OCI_INDEX, OCI_MANIFEST, DOCKER_LIST, DOCKER_MANIFEST] {
            assert!(ACCEPT.contains(t) && is_known(t), "{t}");
        }
        assert_eq!(
            bare_media_type("application/json; charset=utf-8"),
            "application/json"
        );
        assert_eq!(
            digest_of(b"").as_str(),
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }
}
