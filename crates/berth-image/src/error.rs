//! The crate's error type. It is `Clone` (sources behind `Arc`) so one
//! failed pull can be handed to every task that waited on it.

use std::io;
use std::path::PathBuf;
use std::sync::Arc;

use crate::digest::{Digest, DigestError};
use crate::reference::ReferenceError;

#[derive(Debug, Clone, thiserror::Error)]
pub enum ImageError {
    #[error(transparent)]
    Reference(#[from] ReferenceError),
    #[error("{reference}: not found")]
    NotFound { reference: String },
    #[error("{reference}: blob {digest} not found")]
    BlobNotFound { reference: String, digest: Digest },
    #[error("pull access denied for {reference}: {message}")]
    Unauthorized { reference: String, message: String },
    #[error("digest mismatch for {what}: expected {expected}, got {actual}")]
    DigestMismatch {
        what: String,
        expected: Digest,
        actual: Digest,
    },
    #[error("size mismatch for {digest}: expected {expected} bytes, got {actual}")]
    SizeMismatch {
        digest: Digest,
        expected: u64,
        actual: u64,
    },
    #[error("unsupported media type {media_type:?}")]
    UnsupportedMediaType { media_type: String },
    #[error("{reference}: no image for platform {platform}")]
    NoMatchingPlatform { reference: String, platform: String },
    #[error("{what}: {message}")]
    InvalidDocument { what: String, message: String },
    #[error("error contacting registry {registry}: {source}")]
    Network {
        registry: String,
        #[source]
        source: Arc<reqwest::Error>,
    },
    #[error("registry {registry} answered {status}: {message}")]
    Registry {
        registry: String,
        status: u16,
        message: String,
    },
    /// `layer` is the blob digest, or the directory for a direct extract.
    #[error("layer {layer}: {message}")]
    InvalidLayer { layer: String, message: String },
    #[error("invalid image archive: {0}")]
    InvalidArchive(String),
    #[error("{reference}: image is not in the local cache")]
    NotCached { reference: String },
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: Arc<io::Error>,
    },
    #[error("mount of {target}: {message}")]
    Mount { target: PathBuf, message: String },
    #[error("TLS configuration: {0}")]
    Tls(String),
}

/// The broad cause of a failed pull, for ECS's `CannotPullContainerError`
/// reasons and for deciding whether a cached image may stand in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PullErrorKind {
    InvalidReference,
    NotFound,
    Unauthorized,
    DigestMismatch,
    UnsupportedMediaType,
    NoMatchingPlatform,
    Network,
    Registry,
    InvalidImage,
    Local,
}

impl ImageError {
    pub fn kind(&self) -> PullErrorKind {
        match self {
            ImageError::Reference(_) => PullErrorKind::InvalidReference,
            ImageError::NotFound { .. }
            | ImageError::BlobNotFound { .. }
            | ImageError::NotCached { .. } => PullErrorKind::NotFound,
            ImageError::Unauthorized { .. } => PullErrorKind::Unauthorized,
            ImageError::DigestMismatch { .. } | ImageError::SizeMismatch { .. } => {
                PullErrorKind::DigestMismatch
            }
            ImageError::UnsupportedMediaType { .. } => PullErrorKind::UnsupportedMediaType,
            ImageError::NoMatchingPlatform { .. } => PullErrorKind::NoMatchingPlatform,
            ImageError::Network { .. } => PullErrorKind::Network,
            ImageError::Registry { .. } => PullErrorKind::Registry,
            ImageError::InvalidDocument { .. }
            | ImageError::InvalidLayer { .. }
            | ImageError::InvalidArchive(_) => PullErrorKind::InvalidImage,
            ImageError::Io { .. } | ImageError::Mount { .. } | ImageError::Tls(_) => {
                PullErrorKind::Local
            }
        }
    }

    /// The `stoppedReason`/container `reason` ECS shows for a failed pull.
    pub fn cannot_pull_reason(&self) -> String {
        format!("CannotPullContainerError: {self}")
    }

    pub(crate) fn io(context: impl Into<String>, source: io::Error) -> ImageError {
        ImageError::Io {
            context: context.into(),
            source: Arc::new(source),
        }
    }

    pub(crate) fn invalid(what: impl Into<String>, message: impl ToString) -> ImageError {
        ImageError::InvalidDocument {
            what: what.into(),
            message: message.to_string(),
        }
    }
}

impl From<DigestError> for ImageError {
    fn from(e: DigestError) -> Self {
        ImageError::InvalidDocument {
            what: "digest".into(),
            message: e.to_string(),
        }
    }
}

/// Attaches context to io errors tersely.
pub(crate) trait IoContext<T> {
    fn ctx(self, context: impl FnOnce() -> String) -> Result<T, ImageError>;
}

impl<T> IoContext<T> for io::Result<T> {
    fn ctx(self, context: impl FnOnce() -> String) -> Result<T, ImageError> {
        self.map_err(|e| ImageError::io(context(), e))
    }
}

impl<T> IoContext<T> for Result<T, rustix::io::Errno> {
    fn ctx(self, context: impl FnOnce() -> String) -> Result<T, ImageError> {
        self.map_err(|e| ImageError::io(context(), e.into()))
    }
}
