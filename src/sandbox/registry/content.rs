//! Manifests and blobs: stored, checked and served as the real registry does.

use axum::http::header::{CONTENT_TYPE, LOCATION};
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::{json, Value};

use super::access::query_values;
use super::handlers::{oci, page_not_found, respond, OciError};
use super::{Shared, Store};
use crate::adapters::registry::manifest::{
    digest_of, is_index, is_known, DOCKER_LIST, DOCKER_MANIFEST, OCI_INDEX, OCI_MANIFEST,
};
use crate::adapters::registry::reference::is_tag;
use crate::names::Digest;

fn manifest_unknown(detail: Value) -> OciError {
    oci(
        StatusCode::NOT_FOUND,
        "MANIFEST_UNKNOWN",
        "manifest unknown",
    )
    .detail(detail)
}

pub(super) fn get_manifest(
    store: &Store,
    name: &str,
    reference: &str,
    accept: &[String],
) -> Result<Response, OciError> {
    let digest = match Digest::new(reference) {
        Ok(d) => d,
        Err(_) if is_tag(reference) => store
            .tags
            .get(&(name.to_owned(), reference.to_owned()))
            .cloned()
            .ok_or_else(|| manifest_unknown(json!({ "Tag": reference })))?,
        Err(_) => return Ok(page_not_found()),
    };
    let lookup = |d: &Digest| {
        store
            .manifests
            .get(&(name.to_owned(), d.clone()))
            .ok_or_else(|| manifest_unknown(json!({ "Name": name, "Revision": d })))
    };
    let (mut media_type, mut bytes) = {
        let (m, b) = lookup(&digest)?;
        (m.as_str(), b)
    };
    let mut digest = digest;
    let accepts = |t: &str| accept.iter().any(|a| a == t);
    if media_type == DOCKER_LIST && !accepts(DOCKER_LIST) {
        // distribution 2.8 answers an old client with the linux/amd64 image.
        let list: Value = serde_json::from_slice(bytes).unwrap_or_default();
        let amd64 = list["manifests"].as_array().and_then(|entries| {
            entries.iter().find(|m| {
                m["platform"]["os"] == "linux" && m["platform"]["architecture"] == "amd64"
            })
        });
        let child = amd64
            .and_then(|m| m["digest"].as_str())
            .and_then(|d| Digest::new(d).ok())
            .ok_or_else(|| manifest_unknown(json!({ "Name": name, "Revision": digest })))?;
        let (m, b) = lookup(&child)?;
        (media_type, bytes) = (m.as_str(), b);
        digest = child;
    }
    if media_type == OCI_MANIFEST && !accepts(OCI_MANIFEST) {
        return Err(oci(
            StatusCode::NOT_FOUND,
            "MANIFEST_UNKNOWN",
            "OCI manifest found, but accept header does not support OCI manifests",
        ));
    }
    if media_type == OCI_INDEX && !accepts(OCI_INDEX) {
        return Err(oci(
            StatusCode::NOT_FOUND,
            "MANIFEST_UNKNOWN",
            "OCI index found, but accept header does not support OCI indexes",
        ));
    }
    if media_type == DOCKER_MANIFEST && !accepts(DOCKER_MANIFEST) {
        // The real registry would convert to schema 1, which it no longer signs.
        return Err(oci(
            StatusCode::BAD_REQUEST,
            "MANIFEST_INVALID",
            "manifest invalid",
        )
        .detail(json!({})));
    }
    let etag = format!("\"{digest}\"");
    let mut headers = vec![(CONTENT_TYPE.as_str(), media_type), ("etag", etag.as_str())];
    let digest_text = digest.to_string();
    if !store.omit_digest {
        headers.push(("docker-content-digest", digest_text.as_str()));
    }
    Ok(respond(StatusCode::OK, &headers, bytes.clone()))
}

pub(super) fn created(location: &str, digest: &Digest) -> Response {
    respond(
        StatusCode::CREATED,
        &[
            (LOCATION.as_str(), location),
            ("docker-content-digest", digest.as_str()),
        ],
        Vec::new(),
    )
}

fn manifest_invalid() -> OciError {
    oci(
        StatusCode::BAD_REQUEST,
        "MANIFEST_INVALID",
        "manifest invalid",
    )
    .detail(json!({}))
}

/// Checks and stores a manifest as the real registry does: known media
/// type, schema 2, every blob (or listed manifest) already in the repository.
pub(super) fn put_manifest(
    store: &mut Store,
    name: &str,
    reference: &str,
    media_type: &str,
    bytes: &[u8],
) -> Result<Digest, OciError> {
    if !is_known(media_type) {
        return Err(manifest_invalid());
    }
    let parsed: Value = serde_json::from_slice(bytes).map_err(|_| manifest_invalid())?;
    let declared = parsed["mediaType"].as_str();
    if parsed["schemaVersion"] != 2 || declared.is_some_and(|d| d != media_type) {
        return Err(manifest_invalid());
    }
    let blob_unknown = |d: &str| {
        oci(
            StatusCode::BAD_REQUEST,
            "MANIFEST_BLOB_UNKNOWN",
            "blob unknown to registry",
        )
        .detail(json!(d))
    };
    let referenced: Vec<&Value> = if is_index(media_type) {
        parsed["manifests"]
            .as_array()
            .into_iter()
            .flatten()
            .collect()
    } else {
        std::iter::once(&parsed["config"])
            .chain(parsed["layers"].as_array().into_iter().flatten())
            .collect()
    };
    for entry in referenced {
        let text = entry["digest"].as_str().unwrap_or_default();
        let digest = Digest::new(text).map_err(|_| manifest_invalid())?;
        let key = (name.to_owned(), digest);
        let present = if is_index(media_type) {
            store.manifests.contains_key(&key)
        } else {
            store.links.contains(&key)
        };
        if !present {
            return Err(blob_unknown(text));
        }
    }
    let digest = digest_of(bytes);
    if let Ok(asked) = Digest::new(reference) {
        if asked != digest {
            return Err(oci(
                StatusCode::BAD_REQUEST,
                "DIGEST_INVALID",
                "provided digest did not match uploaded content",
            ));
        }
    }
    store.manifests.insert(
        (name.to_owned(), digest.clone()),
        (media_type.to_owned(), bytes.to_vec()),
    );
    if Digest::new(reference).is_err() {
        store
            .tags
            .insert((name.to_owned(), reference.to_owned()), digest.clone());
    }
    Ok(digest)
}

pub(super) fn start_upload(shared: &Shared, store: &mut Store, name: &str) -> Response {
    store.counter += 1;
    let seed = format!("upload {} {}", shared.base, store.counter);
    let digest = digest_of(seed.as_bytes());
    let hex = &digest.as_str()[7..];
    let id = format!(
        "{}-{}-4{}-8{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..15],
        &hex[15..18],
        &hex[18..30]
    );
    store.uploads.insert(id.clone(), name.to_owned());
    let location = format!(
        "{}/v2/{name}/blobs/uploads/{id}?_state=sandbox",
        shared.base
    );
    respond(
        StatusCode::ACCEPTED,
        &[
            (LOCATION.as_str(), location.as_str()),
            ("range", "0-0"),
            ("docker-upload-uuid", id.as_str()),
        ],
        Vec::new(),
    )
}

pub(super) fn finish_upload(
    shared: &Shared,
    store: &mut Store,
    name: &str,
    id: &str,
    query: &str,
    body: &[u8],
) -> Result<Response, OciError> {
    if store.uploads.get(id).map(String::as_str) != Some(name) {
        return Err(oci(
            StatusCode::NOT_FOUND,
            "BLOB_UPLOAD_INVALID",
            "blob upload invalid",
        )
        .detail(json!({})));
    }
    let digest_invalid = || {
        oci(
            StatusCode::BAD_REQUEST,
            "DIGEST_INVALID",
            "provided digest did not match uploaded content",
        )
    };
    let Some(given) = query_values(query, "digest").into_iter().next() else {
        return Err(digest_invalid().detail(json!("digest missing")));
    };
    let digest = Digest::new(&given).map_err(|_| digest_invalid())?;
    if digest_of(body) != digest {
        return Err(digest_invalid().detail(json!({ "Digest": digest, "Reason": {} })));
    }
    store.uploads.remove(id);
    store.blobs.insert(digest.clone(), body.to_vec());
    store.links.insert((name.to_owned(), digest.clone()));
    let location = format!("{}/v2/{name}/blobs/{digest}", shared.base);
    Ok(created(&location, &digest))
}

pub(super) fn get_blob(store: &Store, name: &str, digest: &str) -> Result<Response, OciError> {
    let Ok(d) = Digest::new(digest) else {
        return Ok(page_not_found());
    };
    let unknown = || {
        oci(
            StatusCode::NOT_FOUND,
            "BLOB_UNKNOWN",
            "blob unknown to registry",
        )
        .detail(json!(digest))
    };
    if !store.links.contains(&(name.to_owned(), d.clone())) {
        return Err(unknown());
    }
    let bytes = store.blobs.get(&d).ok_or_else(unknown)?;
    let etag = format!("\"{d}\"");
    Ok(respond(
        StatusCode::OK,
        &[
            (CONTENT_TYPE.as_str(), "application/octet-stream"),
            ("docker-content-digest", d.as_str()),
            ("etag", etag.as_str()),
            ("accept-ranges", "bytes"),
            ("cache-control", "max-age=31536000"),
        ],
        bytes.clone(),
    ))
}
