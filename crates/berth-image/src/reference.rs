//! Image references, parsed and normalised the way Docker does
//! (`busybox` is `docker.io/library/busybox:latest`).

use std::fmt;
use std::str::FromStr;

use crate::digest::{Digest, DigestError};

/// Docker Hub's canonical name; images without a registry live here.
pub const DOCKER_HUB: &str = "docker.io";
/// The host that actually serves Docker Hub's registry API.
const DOCKER_HUB_API_HOST: &str = "registry-1.docker.io";
const NAME_TOTAL_LENGTH_MAX: usize = 255;
const TAG_LENGTH_MAX: usize = 128;

/// A fully qualified image reference: registry, repository, and a tag
/// and/or digest (at least one; `latest` when neither was given).
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct ImageReference {
    registry: String,
    repository: String,
    tag: Option<String>,
    digest: Option<Digest>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReferenceError {
    #[error("invalid reference format: the image name is empty")]
    Empty,
    #[error("invalid reference format: repository name ({0}) must be lowercase")]
    Uppercase(String),
    #[error("invalid repository name ({0}), cannot specify 64-byte hexadecimal strings")]
    HexRepository(String),
    #[error("invalid reference format: invalid registry host {0:?}")]
    InvalidRegistry(String),
    #[error("invalid reference format: invalid repository name {0:?}")]
    InvalidRepository(String),
    #[error("invalid reference format: invalid tag {0:?}")]
    InvalidTag(String),
    #[error("invalid reference format: {0}")]
    InvalidDigest(DigestError),
    #[error(
        "invalid reference format: repository name must not be longer than {NAME_TOTAL_LENGTH_MAX} characters"
    )]
    NameTooLong,
}

impl ImageReference {
    /// Parses and normalises a reference as `docker pull` would.
    pub fn parse(input: &str) -> Result<ImageReference, ReferenceError> {
        if input.is_empty() {
            return Err(ReferenceError::Empty);
        }
        let (name_and_tag, digest) = match input.split_once('@') {
            Some((left, digest)) => (
                left,
                Some(
                    digest
                        .parse::<Digest>()
                        .map_err(ReferenceError::InvalidDigest)?,
                ),
            ),
            None => (input, None),
        };
        if name_and_tag.len() == 64 && name_and_tag.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(ReferenceError::HexRepository(name_and_tag.to_owned()));
        }

        let (registry, remainder) = split_registry(name_and_tag);
        let (path, tag) = match remainder.rsplit_once(':') {
            Some((path, tag)) => (path, Some(tag)),
            None => (remainder, None),
        };
        if let Some(tag) = tag
            && !valid_tag(tag)
        {
            return Err(ReferenceError::InvalidTag(tag.to_owned()));
        }
        if path.to_ascii_lowercase() != path {
            return Err(ReferenceError::Uppercase(path.to_owned()));
        }
        if !valid_registry(&registry) {
            return Err(ReferenceError::InvalidRegistry(registry));
        }
        let repository = if registry == DOCKER_HUB && !path.contains('/') {
            format!("library/{path}")
        } else {
            path.to_owned()
        };
        if !valid_repository(&repository) {
            return Err(ReferenceError::InvalidRepository(path.to_owned()));
        }
        if registry.len() + 1 + repository.len() > NAME_TOTAL_LENGTH_MAX {
            return Err(ReferenceError::NameTooLong);
        }
        let tag = match (tag, &digest) {
            (Some(tag), _) => Some(tag.to_owned()),
            (None, None) => Some("latest".to_owned()),
            (None, Some(_)) => None,
        };
        Ok(ImageReference {
            registry,
            repository,
            tag,
            digest,
        })
    }

    /// Registry as written in references (`docker.io`, `127.0.0.1:5000`).
    pub fn registry(&self) -> &str {
        &self.registry
    }

    /// `host[:port]` to connect to for the registry API.
    pub fn api_host(&self) -> &str {
        if self.registry == DOCKER_HUB {
            DOCKER_HUB_API_HOST
        } else {
            &self.registry
        }
    }

    /// Repository path (`library/busybox`).
    pub fn repository(&self) -> &str {
        &self.repository
    }

    pub fn tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }

    pub fn digest(&self) -> Option<&Digest> {
        self.digest.as_ref()
    }

    /// What goes after `/manifests/`: the digest when pinned (it wins over
    /// a tag, as in Docker), else the tag.
    pub fn manifest_reference(&self) -> String {
        match (&self.digest, &self.tag) {
            (Some(digest), _) => digest.to_string(),
            (None, Some(tag)) => tag.clone(),
            // parse() always sets one of the two.
            (None, None) => "latest".to_owned(),
        }
    }

    /// `registry/repository` without tag or digest.
    pub fn name(&self) -> String {
        format!("{}/{}", self.registry, self.repository)
    }

    /// The same repository pinned to `digest` (tag kept for display).
    pub fn with_digest(&self, digest: Digest) -> ImageReference {
        ImageReference {
            digest: Some(digest),
            ..self.clone()
        }
    }
}

/// Docker's rule: the first path component is a registry only if it looks
/// like a host (has `.` or `:`, is `localhost`, or has uppercase letters,
/// which repository names cannot).
fn split_registry(name: &str) -> (String, &str) {
    match name.split_once('/') {
        Some((first, rest))
            if first.contains(['.', ':'])
                || first == "localhost"
                || first.to_ascii_lowercase() != first =>
        {
            let registry = if first == "index.docker.io" {
                DOCKER_HUB
            } else {
                first
            };
            (registry.to_owned(), rest)
        }
        _ => (DOCKER_HUB.to_owned(), name),
    }
}

fn valid_tag(tag: &str) -> bool {
    let bytes = tag.as_bytes();
    let word = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    !bytes.is_empty()
        && bytes.len() <= TAG_LENGTH_MAX
        && word(bytes[0])
        && bytes.iter().all(|&b| word(b) || b == b'.' || b == b'-')
}

fn valid_registry(registry: &str) -> bool {
    let (host, port) = if let Some(rest) = registry.strip_prefix('[') {
        let Some((inside, after)) = rest.split_once(']') else {
            return false;
        };
        if inside.is_empty() || !inside.bytes().all(|b| b.is_ascii_hexdigit() || b == b':') {
            return false;
        }
        match after {
            "" => return true,
            _ => match after.strip_prefix(':') {
                Some(port) => ("", Some(port)),
                None => return false,
            },
        }
    } else {
        match registry.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (registry, None),
        }
    };
    if let Some(port) = port
        && (port.is_empty() || !port.bytes().all(|b| b.is_ascii_digit()))
    {
        return false;
    }
    if registry.starts_with('[') {
        return true;
    }
    !host.is_empty()
        && host.split('.').all(|label| {
            let b = label.as_bytes();
            !b.is_empty()
                && b[0].is_ascii_alphanumeric()
                && b[b.len() - 1].is_ascii_alphanumeric()
                && b.iter().all(|&c| c.is_ascii_alphanumeric() || c == b'-')
        })
}

/// `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*` per component, `/`-separated.
fn valid_repository(path: &str) -> bool {
    path.split('/').all(|component| {
        let b = component.as_bytes();
        if b.is_empty() || !is_alnum(b[0]) || !is_alnum(b[b.len() - 1]) {
            return false;
        }
        let mut i = 0;
        while i < b.len() {
            if is_alnum(b[i]) {
                i += 1;
                continue;
            }
            let start = i;
            while i < b.len() && !is_alnum(b[i]) {
                i += 1;
            }
            let sep = &component[start..i];
            let ok = sep == "." || sep == "_" || sep == "__" || sep.bytes().all(|c| c == b'-');
            if !ok {
                return false;
            }
        }
        true
    })
}

fn is_alnum(b: u8) -> bool {
    b.is_ascii_lowercase() || b.is_ascii_digit()
}

impl FromStr for ImageReference {
    type Err = ReferenceError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ImageReference::parse(s)
    }
}

impl fmt::Display for ImageReference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.registry, self.repository)?;
        if let Some(tag) = &self.tag {
            write!(f, ":{tag}")?;
        }
        if let Some(digest) = &self.digest {
            write!(f, "@{digest}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for ImageReference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ImageReference({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn norm(s: &str) -> String {
        ImageReference::parse(s).unwrap().to_string()
    }

    #[test]
    fn normalises_docker_hub_names() {
        assert_eq!(norm("busybox"), "docker.io/library/busybox:latest");
        assert_eq!(norm("busybox:1.36"), "docker.io/library/busybox:1.36");
        assert_eq!(norm("library/busybox"), "docker.io/library/busybox:latest");
        assert_eq!(norm("someone/app"), "docker.io/someone/app:latest");
        assert_eq!(
            norm("docker.io/busybox"),
            "docker.io/library/busybox:latest"
        );
        assert_eq!(
            norm("index.docker.io/busybox"),
            "docker.io/library/busybox:latest"
        );
        let r = ImageReference::parse("busybox").unwrap();
        assert_eq!(r.api_host(), "registry-1.docker.io");
        assert_eq!(r.repository(), "library/busybox");
        assert_eq!(r.manifest_reference(), "latest");
    }

    #[test]
    fn registries_with_ports_and_hosts() {
        let r = ImageReference::parse("127.0.0.1:5000/demo/busybox:1").unwrap();
        assert_eq!(r.registry(), "127.0.0.1:5000");
        assert_eq!(r.api_host(), "127.0.0.1:5000");
        assert_eq!(r.repository(), "demo/busybox");
        assert_eq!(r.tag(), Some("1"));
        assert_eq!(norm("localhost/app"), "localhost/app:latest");
        assert_eq!(norm("localhost:5000/app"), "localhost:5000/app:latest");
        assert_eq!(norm("ghcr.io/org/app:v1.2.3"), "ghcr.io/org/app:v1.2.3");
        assert_eq!(norm("[::1]:5000/app"), "[::1]:5000/app:latest");
        assert_eq!(
            norm("123456789012.dkr.ecr.us-east-1.amazonaws.com/team/web:prod"),
            "123456789012.dkr.ecr.us-east-1.amazonaws.com/team/web:prod"
        );
        // Not a host: no dot, colon or "localhost", so it is a Hub namespace.
        assert_eq!(norm("registry/app"), "docker.io/registry/app:latest");
    }

    #[test]
    fn digests() {
        let hex = "a".repeat(64);
        let r = ImageReference::parse(&format!("busybox@sha256:{hex}")).unwrap();
        assert_eq!(r.tag(), None);
        assert_eq!(r.manifest_reference(), format!("sha256:{hex}"));
        assert_eq!(
            r.to_string(),
            format!("docker.io/library/busybox@sha256:{hex}")
        );
        let r = ImageReference::parse(&format!("127.0.0.1:5000/x:1@sha256:{hex}")).unwrap();
        assert_eq!(r.tag(), Some("1"));
        assert_eq!(r.manifest_reference(), format!("sha256:{hex}"));
        assert!(matches!(
            ImageReference::parse("busybox@sha256:abc"),
            Err(ReferenceError::InvalidDigest(_))
        ));
        assert!(matches!(
            ImageReference::parse(&format!("busybox@md5:{hex}")),
            Err(ReferenceError::InvalidDigest(
                DigestError::UnsupportedAlgorithm(_)
            ))
        ));
    }

    #[test]
    fn rejects_invalid_references() {
        assert_eq!(ImageReference::parse(""), Err(ReferenceError::Empty));
        assert!(matches!(
            ImageReference::parse("BusyBox"),
            Err(ReferenceError::Uppercase(_))
        ));
        assert!(matches!(
            ImageReference::parse("quay.io/Org/app"),
            Err(ReferenceError::Uppercase(_))
        ));
        assert!(matches!(
            ImageReference::parse(&"a".repeat(64)),
            Err(ReferenceError::HexRepository(_))
        ));
        assert!(matches!(
            ImageReference::parse("busybox:"),
            Err(ReferenceError::InvalidTag(_))
        ));
        assert!(matches!(
            ImageReference::parse("busybox:-x"),
            Err(ReferenceError::InvalidTag(_))
        ));
        assert!(matches!(
            ImageReference::parse(&format!("busybox:{}", "t".repeat(129))),
            Err(ReferenceError::InvalidTag(_))
        ));
        assert!(matches!(
            ImageReference::parse("a//b"),
            Err(ReferenceError::InvalidRepository(_))
        ));
        assert!(matches!(
            ImageReference::parse("-app"),
            Err(ReferenceError::InvalidRepository(_))
        ));
        assert!(matches!(
            ImageReference::parse("app-"),
            Err(ReferenceError::InvalidRepository(_))
        ));
        assert!(matches!(
            ImageReference::parse("a...b"),
            Err(ReferenceError::InvalidRepository(_))
        ));
        assert!(matches!(
            ImageReference::parse("a___b"),
            Err(ReferenceError::InvalidRepository(_))
        ));
        assert!(matches!(
            ImageReference::parse("foo bar"),
            Err(ReferenceError::InvalidRepository(_))
        ));
        assert!(matches!(
            ImageReference::parse("host:port/app"),
            Err(ReferenceError::InvalidRegistry(_))
        ));
        assert!(matches!(
            ImageReference::parse("-bad.io/app"),
            Err(ReferenceError::InvalidRegistry(_))
        ));
        assert!(matches!(
            ImageReference::parse("[zz]:5000/app"),
            Err(ReferenceError::InvalidRegistry(_))
        ));
        let long = format!("quay.io/{}", "a".repeat(250));
        assert_eq!(
            ImageReference::parse(&long),
            Err(ReferenceError::NameTooLong)
        );
        // Separators Docker allows.
        assert_eq!(norm("a__b/c.d/e--f_g"), "docker.io/a__b/c.d/e--f_g:latest");
    }
}
