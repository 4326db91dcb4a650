//! The content-addressed store shared by every task on the host.
//!
//! ```text
//! <root>/blobs/sha256/<hex>   manifests, configs, compressed layers (write-once)
//! <root>/layers/<diff hex>/   each layer unpacked once, an overlay lower dir
//! <root>/images/<hex>.json    one record per reference (hex = sha256 of it)
//! <root>/tmp/                 downloads in progress
//! ```
//!
//! Everything lands by rename from a temporary name, so a crash leaves
//! either nothing or a complete, verified object. One `ContentStore` per
//! root: opening it clears leftovers of a previous run.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use tokio::io::AsyncWriteExt;

use crate::digest::Digest;
use crate::error::{ImageError, IoContext};
use crate::manifest::Platform;
use crate::reference::ImageReference;

#[derive(Debug)]
pub struct ContentStore {
    root: PathBuf,
}

/// How an image came into the cache; the `once` pull policy cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ImageSource {
    Pulled,
    Loaded,
}

/// What the store knows about one reference.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageRecord {
    pub reference: String,
    pub manifest_digest: Digest,
    pub manifest_media_type: String,
    pub config_digest: Digest,
    /// Bottom layer first.
    pub layers: Vec<LayerRecord>,
    pub platform: Platform,
    pub source: ImageSource,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LayerRecord {
    /// Digest of the blob as stored (compressed).
    pub digest: Digest,
    /// Digest of the uncompressed tar; names the unpacked directory.
    pub diff_id: Digest,
    pub media_type: String,
    pub size: u64,
}

impl LayerRecord {
    /// Pair a manifest's layer descriptors with its config's diff ids (the
    /// caller has checked the two lists are the same length).
    pub fn from_manifest(manifest: &crate::manifest::ImageManifest, diff_ids: &[Digest]) -> Vec<LayerRecord> {
        manifest
            .layers
            .iter()
            .zip(diff_ids)
            .map(|(d, diff_id)| LayerRecord {
                digest: d.digest.clone(),
                diff_id: diff_id.clone(),
                media_type: d.media_type.clone(),
                size: d.size,
            })
            .collect()
    }
}

impl ContentStore {
    pub fn open(root: impl Into<PathBuf>) -> Result<ContentStore, ImageError> {
        let root = root.into();
        let store = ContentStore { root };
        for dir in [
            store.root.join("blobs/sha256"),
            store.layers_root(),
            store.images_dir(),
        ] {
            std::fs::create_dir_all(&dir).ctx(|| format!("create {}", dir.display()))?;
        }
        // Anything under tmp/ or layers/.tmp-* belongs to a run that died.
        let tmp = store.tmp_dir();
        if tmp.exists() {
            std::fs::remove_dir_all(&tmp).ctx(|| format!("clear {}", tmp.display()))?;
        }
        std::fs::create_dir_all(&tmp).ctx(|| format!("create {}", tmp.display()))?;
        let layers = store.layers_root();
        for entry in std::fs::read_dir(&layers).ctx(|| format!("read {}", layers.display()))? {
            let entry = entry.ctx(|| format!("read {}", layers.display()))?;
            if entry.file_name().to_string_lossy().starts_with(".tmp-") {
                let path = entry.path();
                std::fs::remove_dir_all(&path).ctx(|| format!("remove {}", path.display()))?;
            }
        }
        Ok(store)
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub(crate) fn tmp_dir(&self) -> PathBuf {
        self.root.join("tmp")
    }

    pub(crate) fn layers_root(&self) -> PathBuf {
        self.root.join("layers")
    }

    fn images_dir(&self) -> PathBuf {
        self.root.join("images")
    }

    pub fn blob_path(&self, digest: &Digest) -> PathBuf {
        self.root.join("blobs/sha256").join(digest.hex())
    }

    pub fn has_blob(&self, digest: &Digest) -> bool {
        self.blob_path(digest).is_file()
    }

    /// Reads a small blob (manifest, config), re-checking its digest so a
    /// damaged file is never trusted.
    pub fn read_blob(&self, digest: &Digest, max_size: u64) -> Result<Vec<u8>, ImageError> {
        let path = self.blob_path(digest);
        let len = std::fs::metadata(&path)
            .ctx(|| format!("stat blob {digest}"))?
            .len();
        if len > max_size {
            return Err(ImageError::invalid(
                format!("blob {digest}"),
                format!("{len} bytes is over the {max_size} byte limit"),
            ));
        }
        let bytes = std::fs::read(&path).ctx(|| format!("read blob {digest}"))?;
        let actual = Digest::of(&bytes);
        if &actual != digest {
            return Err(ImageError::DigestMismatch {
                what: format!("stored blob {}", path.display()),
                expected: digest.clone(),
                actual,
            });
        }
        Ok(bytes)
    }

    /// Stores a small in-memory blob, returning its digest.
    pub fn put_blob(&self, bytes: &[u8]) -> Result<Digest, ImageError> {
        let digest = Digest::of(bytes);
        if self.has_blob(&digest) {
            return Ok(digest);
        }
        let mut tmp = tempfile::NamedTempFile::new_in(self.tmp_dir())
            .ctx(|| "create temporary blob".into())?;
        tmp.write_all(bytes)
            .ctx(|| format!("write blob {digest}"))?;
        tmp.as_file()
            .sync_all()
            .ctx(|| format!("sync blob {digest}"))?;
        tmp.persist(self.blob_path(&digest))
            .map_err(|e| ImageError::io(format!("store blob {digest}"), e.error))?;
        Ok(digest)
    }

    /// Moves a file whose digest the caller has already computed into the
    /// store; used by image import, which hashes while staging.
    pub(crate) fn adopt_file(
        &self,
        file: tempfile::TempPath,
        digest: &Digest,
    ) -> Result<(), ImageError> {
        if self.has_blob(digest) {
            return Ok(());
        }
        std::fs::File::open(&file)
            .and_then(|f| f.sync_all())
            .ctx(|| format!("sync blob {digest}"))?;
        file.persist(self.blob_path(digest))
            .map_err(|e| ImageError::io(format!("store blob {digest}"), e.error))?;
        Ok(())
    }

    /// A writer that streams a blob to a temporary file while hashing it
    /// and lands it only if digest and size match.
    pub async fn blob_writer(
        &self,
        expected: Digest,
        expected_size: Option<u64>,
    ) -> Result<BlobWriter, ImageError> {
        let tmp = tempfile::NamedTempFile::new_in(self.tmp_dir())
            .ctx(|| "create temporary blob".into())?;
        let (file, path) = tmp.into_parts();
        Ok(BlobWriter {
            file: tokio::io::BufWriter::with_capacity(256 * 1024, tokio::fs::File::from_std(file)),
            path,
            hasher: Sha256::new(),
            written: 0,
            final_path: self.blob_path(&expected),
            expected,
            expected_size,
        })
    }

    pub fn layer_dir(&self, diff_id: &Digest) -> PathBuf {
        self.layers_root().join(diff_id.hex())
    }

    pub fn has_layer(&self, diff_id: &Digest) -> bool {
        self.layer_dir(diff_id).is_dir()
    }

    fn record_path(&self, reference: &str) -> PathBuf {
        self.images_dir()
            .join(format!("{}.json", Digest::of(reference.as_bytes()).hex()))
    }

    /// The record for `reference`, if one exists and everything it names
    /// is still present (a layer counts if unpacked or its blob is kept).
    pub fn image(&self, reference: &ImageReference) -> Result<Option<ImageRecord>, ImageError> {
        let path = self.record_path(&reference.to_string());
        let bytes = match std::fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(ImageError::io(format!("read {}", path.display()), e)),
        };
        let record: ImageRecord = match serde_json::from_slice(&bytes) {
            Ok(record) => record,
            Err(e) => {
                // A corrupt record only costs a re-pull; don't fail the task.
                tracing::warn!(path = %path.display(), error = %e, "ignoring unreadable image record");
                return Ok(None);
            }
        };
        let complete = self.has_blob(&record.config_digest)
            && record
                .layers
                .iter()
                .all(|l| self.has_layer(&l.diff_id) || self.has_blob(&l.digest));
        Ok(complete.then_some(record))
    }

    pub fn put_image(&self, record: &ImageRecord) -> Result<(), ImageError> {
        let json = serde_json::to_vec_pretty(record)
            .map_err(|e| ImageError::invalid("image record", e))?;
        let mut tmp = tempfile::NamedTempFile::new_in(self.tmp_dir())
            .ctx(|| "create temporary record".into())?;
        tmp.write_all(&json).ctx(|| "write image record".into())?;
        tmp.as_file()
            .sync_all()
            .ctx(|| "sync image record".into())?;
        let path = self.record_path(&record.reference);
        tmp.persist(&path)
            .map_err(|e| ImageError::io(format!("store {}", path.display()), e.error))?;
        Ok(())
    }

    pub fn remove_image(&self, reference: &ImageReference) -> Result<bool, ImageError> {
        let path = self.record_path(&reference.to_string());
        match std::fs::remove_file(&path) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(ImageError::io(format!("remove {}", path.display()), e)),
        }
    }

    /// Every readable image record.
    pub fn images(&self) -> Result<Vec<ImageRecord>, ImageError> {
        let dir = self.images_dir();
        let mut out = Vec::new();
        for entry in std::fs::read_dir(&dir).ctx(|| format!("read {}", dir.display()))? {
            let path = entry.ctx(|| format!("read {}", dir.display()))?.path();
            if path.extension().is_some_and(|e| e == "json")
                && let Ok(bytes) = std::fs::read(&path)
                && let Ok(record) = serde_json::from_slice::<ImageRecord>(&bytes)
            {
                out.push(record);
            }
        }
        out.sort_by(|a, b| a.reference.cmp(&b.reference));
        Ok(out)
    }
}

/// An in-progress blob download; see [`ContentStore::blob_writer`].
/// Dropping it without `commit` deletes the partial file.
pub struct BlobWriter {
    file: tokio::io::BufWriter<tokio::fs::File>,
    path: tempfile::TempPath,
    hasher: Sha256,
    written: u64,
    expected: Digest,
    expected_size: Option<u64>,
    final_path: PathBuf,
}

impl BlobWriter {
    pub async fn write(&mut self, chunk: &[u8]) -> Result<(), ImageError> {
        self.written += chunk.len() as u64;
        // Stop a server that sends more than it declared before it fills
        // the disk.
        if let Some(expected) = self.expected_size
            && self.written > expected
        {
            return Err(ImageError::SizeMismatch {
                digest: self.expected.clone(),
                expected,
                actual: self.written,
            });
        }
        self.hasher.update(chunk);
        self.file
            .write_all(chunk)
            .await
            .ctx(|| format!("write blob {}", self.expected))
    }

    pub async fn commit(mut self) -> Result<PathBuf, ImageError> {
        if let Some(expected) = self.expected_size
            && self.written != expected
        {
            return Err(ImageError::SizeMismatch {
                digest: self.expected.clone(),
                expected,
                actual: self.written,
            });
        }
        let actual = Digest::from_hasher(self.hasher.clone());
        if actual != self.expected {
            return Err(ImageError::DigestMismatch {
                what: format!("blob {}", self.expected),
                expected: self.expected.clone(),
                actual,
            });
        }
        self.file
            .flush()
            .await
            .ctx(|| format!("write blob {}", self.expected))?;
        self.file
            .get_ref()
            .sync_all()
            .await
            .ctx(|| format!("sync blob {}", self.expected))?;
        let BlobWriter {
            path,
            final_path,
            expected,
            ..
        } = self;
        tokio::task::spawn_blocking(move || path.persist(&final_path).map(|()| final_path))
            .await
            .map_err(|e| {
                ImageError::io(format!("store blob {expected}"), std::io::Error::other(e))
            })?
            .map_err(|e| ImageError::io(format!("store blob {expected}"), e.error))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(store: &ContentStore, reference: &str) -> ImageRecord {
        let config = store.put_blob(b"{}").unwrap();
        ImageRecord {
            reference: ImageReference::parse(reference).unwrap().to_string(),
            manifest_digest: Digest::of(b"manifest"),
            manifest_media_type: crate::manifest::media_type::OCI_MANIFEST.into(),
            config_digest: config,
            layers: vec![LayerRecord {
                digest: Digest::of(b"layer"),
                diff_id: Digest::of(b"diff"),
                media_type: crate::manifest::media_type::OCI_LAYER.into(),
                size: 5,
            }],
            platform: Platform::linux_amd64(),
            source: ImageSource::Pulled,
        }
    }

    #[test]
    fn reopening_clears_what_a_crash_left_behind() {
        let dir = tempfile::tempdir().unwrap();
        let store = ContentStore::open(dir.path()).unwrap();
        let half_layer = store.layers_root().join(".tmp-0123456789ab-xyz");
        std::fs::create_dir_all(half_layer.join("usr/bin")).unwrap();
        std::fs::write(half_layer.join("usr/bin/half"), b"x").unwrap();
        std::fs::write(store.tmp_dir().join("partial-download"), b"x").unwrap();
        let done = store.layers_root().join(Digest::of(b"done").hex());
        std::fs::create_dir(&done).unwrap();
        drop(store);
        let store = ContentStore::open(dir.path()).unwrap();
        assert!(!half_layer.exists());
        assert!(std::fs::read_dir(store.tmp_dir()).unwrap().next().is_none());
        assert!(done.exists(), "complete layers are kept");
    }

    #[test]
    fn blobs_are_verified_when_read() {
        let dir = tempfile::tempdir().unwrap();
        let store = ContentStore::open(dir.path()).unwrap();
        let digest = store.put_blob(b"hello").unwrap();
        assert_eq!(
            store.put_blob(b"hello").unwrap(),
            digest,
            "write-once, idempotent"
        );
        assert_eq!(store.read_blob(&digest, 100).unwrap(), b"hello");
        assert!(store.read_blob(&digest, 2).is_err(), "size limit");
        std::fs::write(store.blob_path(&digest), b"jello").unwrap();
        assert!(matches!(
            store.read_blob(&digest, 100),
            Err(ImageError::DigestMismatch { .. })
        ));
    }

    #[tokio::test]
    async fn blob_writer_lands_only_verified_content() {
        let dir = tempfile::tempdir().unwrap();
        let store = ContentStore::open(dir.path()).unwrap();
        let good = Digest::of(b"abcdef");
        let mut w = store.blob_writer(good.clone(), Some(6)).await.unwrap();
        w.write(b"abc").await.unwrap();
        w.write(b"def").await.unwrap();
        w.commit().await.unwrap();
        assert!(store.has_blob(&good));

        let other = Digest::of(b"xyz");
        let mut w = store.blob_writer(other.clone(), Some(3)).await.unwrap();
        w.write(b"xyq").await.unwrap();
        assert!(matches!(
            w.commit().await,
            Err(ImageError::DigestMismatch { .. })
        ));
        let mut w = store.blob_writer(other.clone(), Some(3)).await.unwrap();
        assert!(matches!(
            w.write(b"xyzz").await,
            Err(ImageError::SizeMismatch { .. })
        ));
        drop(w);
        assert!(!store.has_blob(&other));
        assert!(std::fs::read_dir(store.tmp_dir()).unwrap().next().is_none());
    }

    #[test]
    fn records_round_trip_and_incomplete_ones_are_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let store = ContentStore::open(dir.path()).unwrap();
        let reference = ImageReference::parse("127.0.0.1:5000/app:1").unwrap();
        let rec = record(&store, "127.0.0.1:5000/app:1");
        store.put_image(&rec).unwrap();
        // Neither the layer's blob nor its unpacked directory exists yet.
        assert_eq!(store.image(&reference).unwrap(), None);
        std::fs::create_dir(store.layer_dir(&Digest::of(b"diff"))).unwrap();
        assert_eq!(store.image(&reference).unwrap(), Some(rec.clone()));
        assert_eq!(store.images().unwrap(), vec![rec]);
        assert!(store.remove_image(&reference).unwrap());
        assert_eq!(store.image(&reference).unwrap(), None);
        assert!(!store.remove_image(&reference).unwrap());
    }
}
