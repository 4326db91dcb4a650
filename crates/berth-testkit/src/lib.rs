//! Test support for end-to-end tests that pull real images from a real
//! registry, without docker and without the internet.
//!
//! [`Registry`] runs Debian's reference registry (`docker-registry`, the
//! CNCF distribution project) as a child process on a free loopback port,
//! one per test. [`ImageBuilder`] builds small images from Debian's static
//! busybox, deterministically, and pushes them with its own OCI
//! Distribution client, or writes them as `berth image load` archives.
//!
//! ```no_run
//! # fn main() -> berth_testkit::Result<()> {
//! let registry = berth_testkit::Registry::start()?;
//! let image = berth_testkit::busybox_image()
//!     .cmd(["httpd", "-f", "-p", "8080"])
//!     .expose("8080/tcp")
//!     .push(registry.host(), "demo/web", "1", None)?;
//! // image.reference == "127.0.0.1:PORT/demo/web:1"
//! # Ok(()) }
//! ```
//!
//! Everything here is blocking: a push is a few local HTTP requests, and
//! blocking keeps the helpers usable from sync and async tests alike.

mod archive;
mod http;
mod image;
mod registry;
mod tar_writer;

pub use image::{ImageBuilder, LayerCompression, ManifestFormat, PushedImage, busybox_image};
pub use registry::Registry;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    /// The registry process exited or never answered; `log` is its output.
    #[error("docker-registry did not start: {message}\n--- registry log ---\n{log}")]
    RegistryStart { message: String, log: String },
    #[error("{method} {url}: HTTP {status}: {body}")]
    Http {
        method: String,
        url: String,
        status: u16,
        body: String,
    },
    /// The registry answered something that is not valid HTTP or not what
    /// the distribution spec promises.
    #[error("{0}")]
    Protocol(String),
    #[error("{0}")]
    Invalid(String),
}

impl Error {
    pub(crate) fn io(context: impl Into<String>, source: std::io::Error) -> Error {
        Error::Io {
            context: context.into(),
            source,
        }
    }
}

/// `sha256:<hex>` of `bytes`, the form registries and manifests use.
pub(crate) fn sha256_digest(bytes: &[u8]) -> String {
    use sha2::Digest as _;
    format!("sha256:{}", hex::encode(sha2::Sha256::digest(bytes)))
}
