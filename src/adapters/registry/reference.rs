//! Image references: `[host[:port]/]name[:tag][@sha256:…]`, as Docker reads them.
//!
//! A first path component is a registry host when it holds a `.` or a `:`
//! or is `localhost`; otherwise the image is on Docker Hub, whose API host is
//! `registry-1.docker.io` and whose one-component names live under `library/`.

use std::fmt;

use crate::names::{escape_for_display, Digest};

/// Docker Hub as people write it.
pub const DOCKER_HUB: &str = "docker.io";
/// The host Docker Hub's registry API answers on.
pub const DOCKER_HUB_API: &str = "registry-1.docker.io";

/// A reference that is not a valid image reference.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{text}` is not an image reference: {why}")]
pub struct ReferenceError {
    /// The text, escaped for display.
    pub text: String,
    /// What is wrong.
    pub why: &'static str,
}

/// What in a repository an image reference points at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reference {
    /// A tag, which can move.
    Tag(String),
    /// A manifest digest, which cannot.
    Digest(Digest),
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reference::Tag(tag) => f.write_str(tag),
            Reference::Digest(digest) => f.write_str(digest.as_str()),
        }
    }
}

/// A parsed image reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageRef {
    written: String,
    registry: String,
    repository: String,
    reference: Reference,
}

fn is_path_component(text: &str) -> bool {
    // [a-z0-9]+ joined by one of `.`, `_`, `__` or any run of `-`.
    let b = text.as_bytes();
    let alnum = |c: u8| c.is_ascii_lowercase() || c.is_ascii_digit();
    if b.is_empty() || !alnum(b[0]) || !alnum(b[b.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        if alnum(b[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < b.len() && !alnum(b[i]) {
            i += 1;
        }
        let sep = &text[start..i];
        if !(sep == "." || sep == "_" || sep == "__" || sep.bytes().all(|c| c == b'-')) {
            return false;
        }
    }
    true
}

fn is_host(text: &str) -> bool {
    let (host, port) = match text.rsplit_once(':') {
        Some((h, p)) => (h, Some(p)),
        None => (text, None),
    };
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    host.split('.').all(label_ok) && port.is_none_or(|p| !p.is_empty() && p.parse::<u16>().is_ok())
}

/// Whether `name` is a repository path: `/`-separated components of the
/// distribution grammar, at most 255 characters.
pub fn is_repository_name(name: &str) -> bool {
    name.len() <= 255 && name.split('/').all(is_path_component)
}

/// Whether `text` is a valid tag: `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`.
pub fn is_tag(text: &str) -> bool {
    let word = |c: u8| c.is_ascii_alphanumeric() || c == b'_';
    let b = text.as_bytes();
    !b.is_empty()
        && b.len() <= 128
        && word(b[0])
        && b.iter().all(|c| word(*c) || *c == b'.' || *c == b'-')
}

impl ImageRef {
    /// Parses `[host[:port]/]name[:tag][@sha256:…]`; with neither tag nor
    /// digest the tag is `latest`, as Docker has it.
    pub fn parse(text: &str) -> Result<ImageRef, ReferenceError> {
        let bad = |why| ReferenceError {
            text: escape_for_display(text),
            why,
        };
        let (rest, digest) = match text.split_once('@') {
            Some((rest, d)) => (
                rest,
                Some(
                    Digest::new(d)
                        .map_err(|_| bad("a digest is `sha256:` and 64 lowercase hex digits"))?,
                ),
            ),
            None => (text, None),
        };
        let last_slash = rest.rfind('/').map_or(0, |i| i + 1);
        let (name, tag) = match rest[last_slash..].find(':') {
            Some(i) => (&rest[..last_slash + i], Some(&rest[last_slash + i + 1..])),
            None => (rest, None),
        };
        if let Some(tag) = tag {
            if !is_tag(tag) {
                return Err(bad(
                    "a tag is up to 128 of A-Z, a-z, 0-9, `_`, `.`, `-` and cannot start with `.` or `-`",
                ));
            }
        }
        let reference = match (digest, tag) {
            (Some(d), _) => Reference::Digest(d),
            (None, Some(t)) => Reference::Tag(t.to_owned()),
            (None, None) => Reference::Tag("latest".to_owned()),
        };
        ImageRef::build(name, reference).map_err(bad)
    }

    /// The reference for `tag` in repository `image` (no tag or digest of its own).
    pub fn with_tag(image: &str, tag: &str) -> Result<ImageRef, ReferenceError> {
        let bad = |why| ReferenceError {
            text: escape_for_display(&format!("{image}:{tag}")),
            why,
        };
        if !is_tag(tag) {
            return Err(bad(
                "a tag is up to 128 of A-Z, a-z, 0-9, `_`, `.`, `-` and cannot start with `.` or `-`",
            ));
        }
        ImageRef::build(image, Reference::Tag(tag.to_owned())).map_err(bad)
    }

    fn build(name: &str, reference: Reference) -> Result<ImageRef, &'static str> {
        let mut parts: Vec<&str> = name.split('/').collect();
        let first = parts.first().copied().unwrap_or_default();
        let has_host =
            parts.len() > 1 && (first.contains('.') || first.contains(':') || first == "localhost");
        let registry = if has_host {
            if !is_host(first) {
                return Err("the registry host is not host or host:port");
            }
            parts.remove(0);
            match first {
                "index.docker.io" | DOCKER_HUB_API => DOCKER_HUB.to_owned(),
                other => other.to_owned(),
            }
        } else {
            DOCKER_HUB.to_owned()
        };
        if parts.is_empty() || !parts.iter().all(|p| is_path_component(p)) {
            return Err("a repository name is lowercase letters and digits in `/`-separated parts, joined by `.`, `_`, `__` or `-`");
        }
        let mut repository = parts.join("/");
        if registry == DOCKER_HUB && parts.len() == 1 {
            repository = format!("library/{repository}");
        }
        if repository.len() > 255 {
            return Err("a repository name is at most 255 characters");
        }
        Ok(ImageRef {
            written: name.to_owned(),
            registry,
            repository,
            reference,
        })
    }

    /// The registry as written (`docker.io` for Docker Hub), `host[:port]`.
    pub fn registry(&self) -> &str {
        &self.registry
    }

    /// The host the registry API answers on.
    pub fn api_host(&self) -> &str {
        if self.registry == DOCKER_HUB {
            DOCKER_HUB_API
        } else {
            &self.registry
        }
    }

    /// The repository's path on the registry, e.g. `acme/web` or `library/nginx`.
    pub fn repository(&self) -> &str {
        &self.repository
    }

    /// The tag or digest.
    pub fn reference(&self) -> &Reference {
        &self.reference
    }

    /// The repository as the person wrote it, for messages.
    pub fn name(&self) -> &str {
        &self.written
    }
}

impl fmt::Display for ImageRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.reference {
            Reference::Tag(tag) => write!(f, "{}:{tag}", self.written),
            Reference::Digest(digest) => write!(f, "{}@{digest}", self.written),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_parse() {
        let d = format!("sha256:{}", "a".repeat(64));
        let cases = [
            ("nginx", "docker.io", "library/nginx", "latest"),
            ("nginx:1.27", "docker.io", "library/nginx", "1.27"),
            ("acme/web:v1", "docker.io", "acme/web", "v1"),
            ("docker.io/nginx", "docker.io", "library/nginx", "latest"),
            (
                "index.docker.io/acme/web",
                "docker.io",
                "acme/web",
                "latest",
            ),
            (
                "ghcr.io/acme/web:main-1a2b3c4",
                "ghcr.io",
                "acme/web",
                "main-1a2b3c4",
            ),
            (
                "127.0.0.1:5000/acme/web:v1",
                "127.0.0.1:5000",
                "acme/web",
                "v1",
            ),
            ("localhost/a/b/c", "localhost", "a/b/c", "latest"),
            (
                "localhost:5000/my_app.x__y--z",
                "localhost:5000",
                "my_app.x__y--z",
                "latest",
            ),
        ];
        for (text, registry, repository, tag) in cases {
            let r = ImageRef::parse(text).unwrap();
            assert_eq!(
                (r.registry(), r.repository(), r.reference().to_string()),
                (registry, repository, tag.to_owned()),
                "{text}"
            );
        }
        let r = ImageRef::parse(&format!("reg.io:443/a/b:v1@{d}")).unwrap();
        assert_eq!(r.reference(), &Reference::Digest(Digest::new(&d).unwrap()));
        assert_eq!(r.to_string(), format!("reg.io:443/a/b@{d}"));
        assert_eq!(ImageRef::parse("nginx").unwrap().api_host(), DOCKER_HUB_API);
        assert_eq!(ImageRef::parse("nginx").unwrap().name(), "nginx");
    }

    #[test]
    fn bad_references_are_refused() {
        for text in [
            "",
            "Acme/web",
            "acme//web",
            "acme/web:",
            "acme/web:-x",
            "acme/web:.x",
            "acme/web@sha256:abc",
            "acme/web@md5:abc",
            "reg.io:99999/acme/web",
            "-reg.io/acme/web",
            "acme/web_",
            "acme/we___b",
            "acme/web:a b",
            "acme/web\u{202e}",
        ] {
            assert!(ImageRef::parse(text).is_err(), "{text}");
        }
        let long = format!("acme/{}", "a".repeat(260));
        assert!(ImageRef::parse(&long).is_err());
        assert!(ImageRef::with_tag("reg.io/acme/web", &"t".repeat(129)).is_err());
        assert!(ImageRef::with_tag("reg.io/acme/web", "v1:x").is_err());
        let ok = ImageRef::with_tag("reg.io:5000/acme/web", "abc").unwrap();
        assert_eq!(ok.to_string(), "reg.io:5000/acme/web:abc");
    }
}
