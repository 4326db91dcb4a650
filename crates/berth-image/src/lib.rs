//! Container images for the Berth agent.
//!
//! Pull from any OCI Distribution registry ([`registry`]), keep every blob
//! once in a content-addressed [`store`], unpack each layer once and safely
//! ([`unpack`]), give each container an overlay root filesystem
//! ([`rootfs`]), import `docker save` / OCI-layout tarballs ([`load`]), and
//! tie it together with pull policies and single-flight pulls
//! ([`service`]).

pub mod auth;
pub mod digest;
pub mod error;
pub mod load;
pub mod manifest;
pub mod policy;
pub mod reference;
pub mod registry;
pub mod rootfs;
pub mod service;
pub mod store;
pub mod unpack;

pub use auth::Credentials;
pub use digest::Digest;
pub use error::{ImageError, PullErrorKind};
pub use load::{LoadedImage, load_archive};
pub use manifest::{ImageConfig, Platform};
pub use policy::{PullDecision, PullPolicy};
pub use reference::{ImageReference, ReferenceError};
pub use registry::{RegistryClient, RegistryConfig};
pub use rootfs::{FakeSnapshotter, OverlaySnapshotter, RootfsMount, Snapshotter};
pub use service::{ImageService, PulledImage};
pub use store::{ContentStore, ImageRecord, ImageSource, LayerRecord};
