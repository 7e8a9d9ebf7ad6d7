//! The sandbox registry's routes, answered as distribution 2.8 answers them.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::header::{ACCEPT, AUTHORIZATION, CONTENT_LENGTH, CONTENT_TYPE};
use axum::http::{request, HeaderValue, Method, StatusCode};
use axum::response::Response;
use serde_json::{json, Value};

use super::access::{authorise, token};
use super::content::{created, finish_upload, get_blob, get_manifest, put_manifest, start_upload};
use super::{Fault, Recorded, Shared};
use crate::adapters::registry::manifest::bare_media_type;
use crate::adapters::registry::reference::{is_repository_name, is_tag};
use crate::names::Digest;

/// Largest request body accepted (blobs of made-up images are tiny).
const MAX_BODY: usize = 16 * 1024 * 1024;
pub(super) const JSON: &str = "application/json; charset=utf-8";

/// An OCI error answer: `{"errors":[{"code","message","detail"}]}`.
#[derive(Debug)]
pub(super) struct OciError {
    status: StatusCode,
    pub(super) code: &'static str,
    pub(super) message: &'static str,
    detail: Option<Value>,
}

pub(super) fn oci(status: StatusCode, code: &'static str, message: &'static str) -> OciError {
    OciError {
        status,
        code,
        message,
        detail: None,
    }
}

impl OciError {
    pub(super) fn detail(mut self, detail: Value) -> OciError {
        self.detail = Some(detail);
        self
    }

    pub(super) fn into_response(self) -> Response {
        let mut entry = json!({ "code": self.code, "message": self.message });
        if let Some(d) = self.detail {
            entry["detail"] = d;
        }
        let body = json!({ "errors": [entry] }).to_string();
        respond(
            self.status,
            &[(CONTENT_TYPE.as_str(), JSON)],
            body.into_bytes(),
        )
    }
}

pub(super) fn respond(status: StatusCode, headers: &[(&str, &str)], body: Vec<u8>) -> Response {
    let mut builder = Response::builder()
        .status(status)
        .header(CONTENT_LENGTH, body.len());
    for (k, v) in headers {
        builder = builder.header(*k, *v);
    }
    builder
        .body(Body::from(body))
        .unwrap_or_else(|_| Response::new(Body::empty()))
}

pub(super) fn page_not_found() -> Response {
    respond(
        StatusCode::NOT_FOUND,
        &[
            (CONTENT_TYPE.as_str(), "text/plain; charset=utf-8"),
            ("x-content-type-options", "nosniff"),
        ],
        b"404 page not found\n".to_vec(),
    )
}

/// Every request: record it, answer it, stamp the API version header.
pub(super) async fn handle(State(shared): State<Arc<Shared>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let mut response = match axum::body::to_bytes(body, MAX_BODY).await {
        Ok(body) => route(&shared, &parts, &body),
        Err(_) => oci(
            StatusCode::PAYLOAD_TOO_LARGE,
            "SIZE_INVALID",
            "provided length did not match content length",
        )
        .into_response(),
    };
    response.headers_mut().insert(
        "docker-distribution-api-version",
        HeaderValue::from_static("registry/2.0"),
    );
    response
}

enum Target<'a> {
    Manifest(&'a str, &'a str),
    Blob(&'a str, &'a str),
    Upload(&'a str, &'a str),
}

fn target(rest: &str) -> Option<Target<'_>> {
    let split = |marker: &str| {
        rest.rfind(marker)
            .map(|i| (&rest[..i], &rest[i + marker.len()..]))
    };
    let found = if let Some((name, id)) = split("/blobs/uploads/") {
        Target::Upload(name, id)
    } else if let Some((name, reference)) = split("/manifests/") {
        Target::Manifest(name, reference)
    } else if let Some((name, digest)) = split("/blobs/") {
        Target::Blob(name, digest)
    } else {
        return None;
    };
    let (Target::Manifest(name, _) | Target::Blob(name, _) | Target::Upload(name, _)) = found;
    is_repository_name(name).then_some(found)
}

fn route(shared: &Shared, parts: &request::Parts, body: &[u8]) -> Response {
    let path = parts.uri.path();
    let query = parts.uri.query().unwrap_or_default();
    let authorization = parts
        .headers
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let mut store = shared.store();
    store.requests.push(Recorded {
        method: parts.method.to_string(),
        path: path.to_owned(),
        auth: authorization.and_then(|a| {
            let scheme = a.split(' ').next()?.to_ascii_lowercase();
            match scheme.as_str() {
                "basic" => Some("basic"),
                "bearer" => Some("bearer"),
                _ => None,
            }
        }),
    });
    if path == "/token" {
        return token(shared, &mut store, authorization, query);
    }
    let Some(rest) = path.strip_prefix("/v2/") else {
        return page_not_found();
    };
    if let Some(fault) = store.faults.pop_front() {
        return fault_response(fault);
    }
    let push = !matches!(parts.method, Method::GET | Method::HEAD);
    if rest.is_empty() {
        if let Some(denied) = authorise(shared, &store, authorization, None, push) {
            return denied;
        }
        return respond(
            StatusCode::OK,
            &[(CONTENT_TYPE.as_str(), JSON)],
            b"{}".to_vec(),
        );
    }
    let Some(found) = target(rest) else {
        return page_not_found();
    };
    let (Target::Manifest(name, _) | Target::Blob(name, _) | Target::Upload(name, _)) = found;
    if let Some(denied) = authorise(shared, &store, authorization, Some(name), push) {
        return denied;
    }
    let accept: Vec<String> = parts
        .headers
        .get_all(ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|t| bare_media_type(t).to_owned())
        .collect();
    let content_type = parts
        .headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(bare_media_type)
        .unwrap_or_default();
    let result = match (&parts.method, found) {
        (&Method::GET | &Method::HEAD, Target::Manifest(name, reference)) => {
            get_manifest(&store, name, reference, &accept)
        }
        (&Method::PUT, Target::Manifest(name, reference)) => {
            if Digest::new(reference).is_err() && !is_tag(reference) {
                return page_not_found();
            }
            put_manifest(&mut store, name, reference, content_type, body).map(|digest| {
                let location = format!("{}/v2/{name}/manifests/{digest}", shared.base);
                created(&location, &digest)
            })
        }
        (&Method::POST, Target::Upload(name, "")) => Ok(start_upload(shared, &mut store, name)),
        (&Method::PUT, Target::Upload(name, id)) => {
            finish_upload(shared, &mut store, name, id, query, body)
        }
        (&Method::GET | &Method::HEAD, Target::Blob(name, digest)) => {
            get_blob(&store, name, digest)
        }
        _ => Err(oci(
            StatusCode::METHOD_NOT_ALLOWED,
            "UNSUPPORTED",
            "The operation is unsupported.",
        )),
    };
    result.unwrap_or_else(OciError::into_response)
}

fn fault_response(fault: Fault) -> Response {
    let status = StatusCode::from_u16(fault.status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
    let (code, message) = match fault.status {
        429 => ("TOOMANYREQUESTS", "too many requests"),
        503 => ("UNAVAILABLE", "service unavailable"),
        _ => ("UNKNOWN", "unknown error"),
    };
    let mut response = oci(status, code, message).into_response();
    if let Some(secs) = fault.retry_after {
        if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
            response.headers_mut().insert("retry-after", v);
        }
    }
    response
}
