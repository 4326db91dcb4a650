//! The agent-facing entry point: make an image available according to a
//! pull policy, coalescing concurrent requests for the same thing.

use std::collections::HashMap;
use std::future::Future;
use std::hash::Hash;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use tokio::sync::{OnceCell, Semaphore};

use crate::auth::Credentials;
use crate::digest::Digest;
use crate::error::ImageError;
use crate::load::{self, LoadedImage};
use crate::manifest::{ConfigFile, ImageConfig, Platform};
use crate::policy::{PullDecision, PullPolicy};
use crate::reference::ImageReference;
use crate::registry::RegistryClient;
use crate::store::{ContentStore, ImageRecord, ImageSource, LayerRecord};
use crate::unpack;

/// Image configs are small JSON; anything bigger is not one.
const MAX_CONFIG_SIZE: u64 = 8 * 1024 * 1024;
/// Docker's default `max-concurrent-downloads`.
const DEFAULT_CONCURRENT_DOWNLOADS: usize = 3;

/// An image ready to run: its runtime defaults and unpacked layers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PulledImage {
    pub reference: ImageReference,
    pub manifest_digest: Digest,
    pub config_digest: Digest,
    pub config: ImageConfig,
    /// Unpacked layer directories, bottom layer first.
    pub layer_dirs: Vec<PathBuf>,
    pub source: ImageSource,
    /// True if this call contacted the registry and succeeded; false if the
    /// cache served it (by policy or as a fallback).
    pub pulled: bool,
}

/// Cheap to clone; clones share the store, connections and in-flight pulls.
#[derive(Clone)]
pub struct ImageService {
    inner: Arc<Inner>,
}

struct Inner {
    store: Arc<ContentStore>,
    registry: RegistryClient,
    images: SingleFlight<
        (ImageReference, PullPolicy, Option<Credentials>),
        Result<PulledImage, ImageError>,
    >,
    blobs: SingleFlight<Digest, Result<(), ImageError>>,
    layers: SingleFlight<Digest, Result<PathBuf, ImageError>>,
    downloads: Semaphore,
}

impl ImageService {
    pub fn new(store: ContentStore, registry: RegistryClient) -> ImageService {
        ImageService::with_concurrent_downloads(store, registry, DEFAULT_CONCURRENT_DOWNLOADS)
    }

    pub fn with_concurrent_downloads(
        store: ContentStore,
        registry: RegistryClient,
        downloads: usize,
    ) -> ImageService {
        ImageService {
            inner: Arc::new(Inner {
                store: Arc::new(store),
                registry,
                images: SingleFlight::default(),
                blobs: SingleFlight::default(),
                layers: SingleFlight::default(),
                downloads: Semaphore::new(downloads.max(1)),
            }),
        }
    }

    pub fn store(&self) -> &ContentStore {
        &self.inner.store
    }

    pub fn registry(&self) -> &RegistryClient {
        &self.inner.registry
    }

    /// Makes `reference` available as `policy` says. Concurrent calls for
    /// the same reference, policy and credentials share one pull.
    pub async fn ensure(
        &self,
        reference: &ImageReference,
        policy: PullPolicy,
        credentials: Option<&Credentials>,
    ) -> Result<PulledImage, ImageError> {
        let key = (reference.clone(), policy, credentials.cloned());
        self.inner
            .images
            .run(key, || self.ensure_now(reference, policy, credentials))
            .await
    }

    async fn ensure_now(
        &self,
        reference: &ImageReference,
        policy: PullPolicy,
        credentials: Option<&Credentials>,
    ) -> Result<PulledImage, ImageError> {
        let cached = self.cached(reference).await?;
        match (policy.decide(cached.as_ref().map(|r| r.source)), cached) {
            (PullDecision::UseCache, Some(record)) => self.materialize(reference, record).await,
            (PullDecision::Pull { fall_back_to_cache }, cached) => {
                match self.pull(reference, credentials).await {
                    Ok(image) => Ok(image),
                    Err(error) => match cached {
                        Some(record) if fall_back_to_cache => {
                            tracing::warn!(image = %reference, %error, "pull failed; using the cached image");
                            self.materialize(reference, record).await.map_err(|_| error)
                        }
                        _ => Err(error),
                    },
                }
            }
            // decide() only says UseCache when there is a cached image.
            (PullDecision::UseCache, None) => Err(ImageError::NotCached {
                reference: reference.to_string(),
            }),
        }
    }

    /// The cached record for `reference`, if complete.
    pub async fn cached(
        &self,
        reference: &ImageReference,
    ) -> Result<Option<ImageRecord>, ImageError> {
        let store = self.inner.store.clone();
        let reference = reference.clone();
        blocking(move || store.image(&reference)).await
    }

    /// Pulls `reference` from its registry regardless of the cache
    /// (blobs already stored are not downloaded again).
    pub async fn pull(
        &self,
        reference: &ImageReference,
        credentials: Option<&Credentials>,
    ) -> Result<PulledImage, ImageError> {
        let inner = &self.inner;
        let resolved = inner.registry.resolve(reference, credentials).await?;
        let store = inner.store.clone();
        let documents = resolved.documents.clone();
        blocking(move || {
            documents
                .iter()
                .try_for_each(|d| store.put_blob(&d.bytes).map(drop))
        })
        .await?;

        let manifest = resolved.manifest;
        self.fetch_blob(reference, &manifest.config, credentials)
            .await?;
        let config = self.read_config(&manifest.config.digest).await?;
        if config.rootfs.diff_ids.len() != manifest.layers.len() {
            return Err(ImageError::invalid(
                format!("image {reference}"),
                format!(
                    "manifest lists {} layers but the config {}",
                    manifest.layers.len(),
                    config.rootfs.diff_ids.len()
                ),
            ));
        }
        let wanted = &inner.registry.config().platform;
        let platform = Platform {
            os: config.os.clone(),
            architecture: config.architecture.clone(),
            variant: config.variant.clone(),
        };
        if !config.architecture.is_empty() && wanted.match_rank(&platform).is_none() {
            // Docker pulls these with a warning too; running it is what fails.
            tracing::warn!(image = %reference, image_platform = %platform, host_platform = %wanted, "image platform does not match the host");
        }

        let layers = LayerRecord::from_manifest(&manifest, &config.rootfs.diff_ids);
        let mut tasks = tokio::task::JoinSet::new();
        for (index, (descriptor, layer)) in manifest.layers.iter().zip(&layers).enumerate() {
            let service = self.clone();
            let reference = reference.clone();
            let credentials = credentials.cloned();
            let descriptor = descriptor.clone();
            let layer = layer.clone();
            tasks.spawn(async move {
                if !service.inner.store.has_layer(&layer.diff_id) {
                    service
                        .fetch_blob(&reference, &descriptor, credentials.as_ref())
                        .await?;
                }
                service.unpack(&layer).await.map(|dir| (index, dir))
            });
        }
        let mut layer_dirs = vec![PathBuf::new(); layers.len()];
        let mut failure = None;
        // On the first failure stop the other layers, and wait until they
        // have stopped so no download outlives the pull that started it.
        while let Some(joined) = tasks.join_next().await {
            match joined {
                Ok(Ok((index, dir))) => layer_dirs[index] = dir,
                Ok(Err(error)) => {
                    if failure.is_none() {
                        failure = Some(error);
                        tasks.abort_all();
                    }
                }
                Err(e) if e.is_cancelled() => {}
                Err(e) => {
                    failure.get_or_insert(ImageError::io("layer task", std::io::Error::other(e)));
                    tasks.abort_all();
                }
            }
        }
        if let Some(error) = failure {
            return Err(error);
        }

        let record = ImageRecord {
            reference: reference.to_string(),
            manifest_digest: resolved.manifest_digest.clone(),
            manifest_media_type: resolved.manifest_media_type,
            config_digest: manifest.config.digest.clone(),
            layers,
            platform,
            source: ImageSource::Pulled,
        };
        let store = inner.store.clone();
        let to_store = record.clone();
        blocking(move || store.put_image(&to_store)).await?;
        Ok(PulledImage {
            reference: reference.clone(),
            manifest_digest: record.manifest_digest,
            config_digest: record.config_digest,
            config: config.runtime_config(),
            layer_dirs,
            source: ImageSource::Pulled,
            pulled: true,
        })
    }

    /// Imports a `docker save` or OCI-layout tarball and unpacks its
    /// layers, so the images run without a registry. `reference` names the
    /// archive's single image, in addition to any names it carries.
    pub async fn load(
        &self,
        archive: &Path,
        reference: Option<&ImageReference>,
    ) -> Result<Vec<LoadedImage>, ImageError> {
        let store = self.inner.store.clone();
        let archive = archive.to_owned();
        let reference = reference.cloned();
        let platform = self.inner.registry.config().platform.clone();
        let loaded =
            blocking(move || load::load_archive(&store, &archive, reference.as_ref(), &platform))
                .await?;
        for image in &loaded {
            for layer in &image.layers {
                self.unpack(layer).await?;
            }
        }
        Ok(loaded)
    }

    async fn materialize(
        &self,
        reference: &ImageReference,
        record: ImageRecord,
    ) -> Result<PulledImage, ImageError> {
        let config = self.read_config(&record.config_digest).await?;
        let mut layer_dirs = Vec::with_capacity(record.layers.len());
        for layer in &record.layers {
            layer_dirs.push(self.unpack(layer).await?);
        }
        Ok(PulledImage {
            reference: reference.clone(),
            manifest_digest: record.manifest_digest,
            config_digest: record.config_digest,
            config: config.runtime_config(),
            layer_dirs,
            source: record.source,
            pulled: false,
        })
    }

    async fn read_config(&self, digest: &Digest) -> Result<ConfigFile, ImageError> {
        let store = self.inner.store.clone();
        let d = digest.clone();
        let bytes = blocking(move || store.read_blob(&d, MAX_CONFIG_SIZE)).await?;
        serde_json::from_slice(&bytes)
            .map_err(|e| ImageError::invalid(format!("image config {digest}"), e))
    }

    /// One download per digest at a time, however many images share it.
    async fn fetch_blob(
        &self,
        reference: &ImageReference,
        descriptor: &crate::manifest::Descriptor,
        credentials: Option<&Credentials>,
    ) -> Result<(), ImageError> {
        let inner = &self.inner;
        inner
            .blobs
            .run(descriptor.digest.clone(), || async {
                // Closed only if the service is dropped, which cannot
                // happen while `self` is borrowed.
                let _slot = inner
                    .downloads
                    .acquire()
                    .await
                    .map_err(|e| ImageError::io("download slot", std::io::Error::other(e)))?;
                inner
                    .registry
                    .fetch_blob(reference, descriptor, credentials, &inner.store)
                    .await
            })
            .await
    }

    /// One unpack per layer at a time; off the async threads.
    async fn unpack(&self, layer: &LayerRecord) -> Result<PathBuf, ImageError> {
        let store = self.inner.store.clone();
        let layer = layer.clone();
        self.inner
            .layers
            .run(layer.diff_id.clone(), || async move {
                if store.has_layer(&layer.diff_id) {
                    return Ok(store.layer_dir(&layer.diff_id));
                }
                if !store.has_blob(&layer.digest) {
                    return Err(ImageError::NotCached {
                        reference: format!("layer {}", layer.digest),
                    });
                }
                blocking(move || {
                    unpack::unpack_layer(&store, &layer.digest, &layer.media_type, &layer.diff_id)
                })
                .await
            })
            .await
    }
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ImageError> + Send + 'static,
) -> Result<T, ImageError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ImageError::io("blocking task", std::io::Error::other(e)))?
}

/// Runs one future per key at a time and hands its result to everyone who
/// asked meanwhile. If the running caller is cancelled, the next waiter
/// runs its own future instead (tokio's `OnceCell` semantics).
struct SingleFlight<K, V> {
    calls: std::sync::Mutex<HashMap<K, Arc<OnceCell<V>>>>,
}

impl<K, V> Default for SingleFlight<K, V> {
    fn default() -> Self {
        SingleFlight {
            calls: std::sync::Mutex::new(HashMap::new()),
        }
    }
}

impl<K: Eq + Hash + Clone, V: Clone> SingleFlight<K, V> {
    async fn run<F, Fut>(&self, key: K, f: F) -> V
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = V>,
    {
        let cell = {
            let mut calls = self.calls.lock().unwrap_or_else(|e| e.into_inner());
            calls.entry(key.clone()).or_default().clone()
        };
        let value = cell.get_or_init(f).await.clone();
        let mut calls = self.calls.lock().unwrap_or_else(|e| e.into_inner());
        // Later callers start afresh (a new pull may see newer content);
        // only remove the cell we used, not a successor's.
        if calls.get(&key).is_some_and(|c| Arc::ptr_eq(c, &cell)) {
            calls.remove(&key);
        }
        value
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[tokio::test]
    async fn single_flight_runs_once_for_concurrent_callers() {
        let flights: Arc<SingleFlight<&'static str, usize>> = Arc::new(SingleFlight::default());
        let runs = Arc::new(AtomicUsize::new(0));
        let mut handles = Vec::new();
        for _ in 0..8 {
            let flights = flights.clone();
            let runs = runs.clone();
            handles.push(tokio::spawn(async move {
                flights
                    .run("k", || async {
                        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                        runs.fetch_add(1, Ordering::SeqCst) + 1
                    })
                    .await
            }));
        }
        for h in handles {
            assert_eq!(h.await.unwrap(), 1);
        }
        assert_eq!(runs.load(Ordering::SeqCst), 1);
        // Finished flights are forgotten: the next call runs again.
        assert_eq!(flights.run("k", || async { 42 }).await, 42);
    }
}
