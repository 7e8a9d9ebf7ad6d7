//! Small made-up images (config blob, one layer, manifest; or an index of
//! such images) to push to a registry, real or sandbox.

use crate::adapters::registry::manifest::{
    digest_of, DOCKER_LIST, DOCKER_MANIFEST, OCI_INDEX, OCI_MANIFEST,
};
use crate::adapters::registry::Platform;
use crate::names::Digest;

/// Which family of media types an image uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageFormat {
    /// OCI image manifest and index.
    Oci,
    /// Docker schema 2 manifest and manifest list.
    Docker,
}

/// An image ready to push: its blobs, its manifest bytes and, for an
/// index, the images it lists (pushed first, by digest).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuiltImage {
    /// Config and layer blobs.
    pub blobs: Vec<Vec<u8>>,
    /// The manifest, exactly as pushed.
    pub manifest: Vec<u8>,
    /// The manifest's media type.
    pub media_type: &'static str,
    /// The platform of a single-platform image.
    pub platform: Option<Platform>,
    /// The images an index lists.
    pub children: Vec<BuiltImage>,
}

fn descriptor(media_type: &str, bytes: &[u8]) -> serde_json::Value {
    serde_json::json!({
        "mediaType": media_type,
        "digest": digest_of(bytes),
        "size": bytes.len(),
    })
}

impl BuiltImage {
    /// A one-platform image whose content depends on `seed` (so two seeds
    /// give two digests).
    pub fn single(seed: &str, platform: &Platform, format: ImageFormat) -> BuiltImage {
        let layer = format!("gantry sandbox layer {seed} {platform}\n").into_bytes();
        let mut config = serde_json::json!({
            "architecture": platform.architecture,
            "os": platform.os,
            "config": { "Labels": { "dev.gantry.seed": seed } },
            "rootfs": { "type": "layers", "diff_ids": [digest_of(&layer)] },
        });
        if let Some(v) = &platform.variant {
            config["variant"] = v.as_str().into();
        }
        let config = config.to_string().into_bytes();
        let (media_type, config_type, layer_type) = match format {
            ImageFormat::Oci => (
                OCI_MANIFEST,
                "application/vnd.oci.image.config.v1+json",
                "application/vnd.oci.image.layer.v1.tar",
            ),
            ImageFormat::Docker => (
                DOCKER_MANIFEST,
                "application/vnd.docker.container.image.v1+json",
                "application/vnd.docker.image.rootfs.diff.tar.gzip",
            ),
        };
        let manifest = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": media_type,
            "config": descriptor(config_type, &config),
            "layers": [descriptor(layer_type, &layer)],
        });
        BuiltImage {
            blobs: vec![config, layer],
            manifest: manifest.to_string().into_bytes(),
            media_type,
            platform: Some(platform.clone()),
            children: Vec::new(),
        }
    }

    /// An index (OCI) or manifest list (Docker) of one image per platform.
    pub fn index(seed: &str, platforms: &[Platform], format: ImageFormat) -> BuiltImage {
        let children: Vec<BuiltImage> = platforms
            .iter()
            .map(|p| BuiltImage::single(seed, p, format))
            .collect();
        let media_type = match format {
            ImageFormat::Oci => OCI_INDEX,
            ImageFormat::Docker => DOCKER_LIST,
        };
        let entries: Vec<serde_json::Value> = children
            .iter()
            .map(|c| {
                let mut d = descriptor(c.media_type, &c.manifest);
                d["platform"] = serde_json::to_value(&c.platform).unwrap_or_default();
                d
            })
            .collect();
        let manifest = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": media_type,
            "manifests": entries,
        });
        BuiltImage {
            blobs: Vec::new(),
            manifest: manifest.to_string().into_bytes(),
            media_type,
            platform: None,
            children,
        }
    }

    /// The manifest's digest, which a registry reports for it.
    pub fn digest(&self) -> Digest {
        digest_of(&self.manifest)
    }
}
