//! Images and root filesystems as the task worker needs them: "make this
//! image available under this policy" and "give this container a root
//! filesystem". The real one joins berth-image's `ImageService` and
//! overlay snapshotter; the fake serves images from memory.

use berth_image::{Credentials, ImageConfig, ImageReference, ImageService, PullPolicy, Snapshotter};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

/// An image ready to run.
#[derive(Debug, Clone, PartialEq)]
pub struct ReadyImage {
    pub digest: String,
    pub config: ImageConfig,
    pub layers: Vec<PathBuf>,
}

/// Why an image could not be made ready, worded for ECS's container
/// `reason` (`CannotPullContainerError: ...`).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{reason}")]
pub struct PullFailure {
    pub reason: String,
}

#[async_trait::async_trait]
pub trait Images: Send + Sync {
    async fn ensure(&self, image: &str, policy: PullPolicy) -> Result<ReadyImage, PullFailure>;
    /// The container's root filesystem (idempotent: an agent restart gets
    /// the same one back). Returns the directory that is its `/`.
    fn prepare_rootfs(&self, container_id: &str, layers: &[PathBuf]) -> Result<PathBuf, String>;
    fn release_rootfs(&self, container_id: &str) -> Result<(), String>;
}

/// Registry credentials by registry host (`127.0.0.1:5000`), as the ECS
/// agent's `ECS_ENGINE_AUTH_DATA` gives them.
pub type RegistryAuth = HashMap<String, Credentials>;

pub struct RealImages {
    service: ImageService,
    snapshotter: Arc<dyn Snapshotter>,
    auth: RegistryAuth,
}

impl RealImages {
    pub fn new(service: ImageService, snapshotter: Arc<dyn Snapshotter>, auth: RegistryAuth) -> RealImages {
        RealImages { service, snapshotter, auth }
    }
}

#[async_trait::async_trait]
impl Images for RealImages {
    async fn ensure(&self, image: &str, policy: PullPolicy) -> Result<ReadyImage, PullFailure> {
        let reference = ImageReference::parse(image).map_err(|e| PullFailure {
            reason: format!("CannotPullContainerError: invalid reference format: {image}: {e}"),
        })?;
        let creds = self.auth.get(reference.registry());
        let pulled = self
            .service
            .ensure(&reference, policy, creds)
            .await
            .map_err(|e| PullFailure { reason: e.cannot_pull_reason() })?;
        Ok(ReadyImage { digest: pulled.manifest_digest.to_string(), config: pulled.config, layers: pulled.layer_dirs })
    }

    fn prepare_rootfs(&self, container_id: &str, layers: &[PathBuf]) -> Result<PathBuf, String> {
        self.snapshotter.prepare(container_id, layers).map(|m| m.merged).map_err(|e| e.to_string())
    }

    fn release_rootfs(&self, container_id: &str) -> Result<(), String> {
        self.snapshotter.release(container_id).map_err(|e| e.to_string())
    }
}

/// Images in memory: each known name resolves to a config and an empty
/// layer directory. Unknown names fail the way a registry's 404 does.
#[derive(Default)]
pub struct FakeImages {
    images: Mutex<HashMap<String, ImageConfig>>,
    /// Served for any name not added (simulated hosts run anything).
    fallback: Option<ImageConfig>,
    root: PathBuf,
    pulls: Mutex<Vec<String>>,
}

impl FakeImages {
    pub fn new(root: impl Into<PathBuf>) -> FakeImages {
        FakeImages { root: root.into(), ..FakeImages::default() }
    }

    /// Images that resolve whatever their name, to `config`.
    pub fn any(root: impl Into<PathBuf>, config: ImageConfig) -> FakeImages {
        FakeImages { root: root.into(), fallback: Some(config), ..FakeImages::default() }
    }

    pub fn add(&self, image: &str, config: ImageConfig) {
        self.images.lock().unwrap_or_else(|p| p.into_inner()).insert(image.to_string(), config);
    }

    pub fn pulls(&self) -> Vec<String> {
        self.pulls.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

#[async_trait::async_trait]
impl Images for FakeImages {
    async fn ensure(&self, image: &str, _policy: PullPolicy) -> Result<ReadyImage, PullFailure> {
        self.pulls.lock().unwrap_or_else(|p| p.into_inner()).push(image.to_string());
        let config = self.images.lock().unwrap_or_else(|p| p.into_inner()).get(image).cloned().or_else(|| self.fallback.clone());
        match config {
            Some(config) => Ok(ReadyImage { digest: format!("sha256:{:064x}", image.len()), config, layers: vec![] }),
            None => Err(PullFailure { reason: format!("CannotPullContainerError: {image}: not found") }),
        }
    }

    fn prepare_rootfs(&self, container_id: &str, _layers: &[PathBuf]) -> Result<PathBuf, String> {
        let dir = self.root.join(container_id);
        std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
        Ok(dir)
    }

    fn release_rootfs(&self, container_id: &str) -> Result<(), String> {
        match std::fs::remove_dir_all(self.root.join(container_id)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e.to_string()),
            _ => Ok(()),
        }
    }
}
