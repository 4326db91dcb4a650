//! `berth image load`: importing images for hosts without a registry,
//! from an OCI image layout tarball or a `docker save` tarball.
//!
//! The archive is read once, front to back (it may be piped and
//! compressed); each member is staged in the store's temporary directory
//! while being hashed, so blobs move into the store by rename with their
//! digests already checked.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;

use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use crate::digest::{Digest, HashingReader};
use crate::error::{ImageError, IoContext};
use crate::manifest::{ConfigFile, Descriptor, ImageIndex, ImageManifest, Platform, media_type};
use crate::reference::ImageReference;
use crate::store::{ContentStore, ImageRecord, ImageSource, LayerRecord};
use crate::unpack::Compression;

const MAX_JSON_SIZE: u64 = 8 * 1024 * 1024;
const MAX_SYMLINK_HOPS: usize = 16;
/// containerd's annotation for the full image name; `ref.name` is often
/// only a tag.
const CONTAINERD_NAME: &str = "io.containerd.image.name";
const OCI_REF_NAME: &str = "org.opencontainers.image.ref.name";

/// One image brought in by a load.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadedImage {
    /// The names it was recorded under (may be empty for an unnamed image,
    /// whose blobs are still imported).
    pub references: Vec<ImageReference>,
    pub manifest_digest: Digest,
    pub config_digest: Digest,
    /// Bottom layer first.
    pub layers: Vec<LayerRecord>,
}

struct Staged {
    /// `None` once moved into the store.
    file: Option<tempfile::TempPath>,
    digest: Digest,
}

#[derive(Default)]
struct Staging {
    files: HashMap<String, Staged>,
    symlinks: HashMap<String, String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DockerSaveEntry {
    config: String,
    #[serde(default)]
    repo_tags: Option<Vec<String>>,
    layers: Vec<String>,
}

/// Imports every image in the archive at `path` into `store` and records
/// it under the names the archive gives it, plus `reference` if given (the
/// archive must then hold exactly one image). Layers are not unpacked here.
pub fn load_archive(
    store: &ContentStore,
    path: &Path,
    reference: Option<&ImageReference>,
    platform: &Platform,
) -> Result<Vec<LoadedImage>, ImageError> {
    let file = std::fs::File::open(path).ctx(|| format!("open {}", path.display()))?;
    let mut staging = stage(store, file)?;
    let mut images = if staging.files.contains_key("oci-layout")
        && staging.files.contains_key("index.json")
    {
        load_oci_layout(store, &mut staging, platform)?
    } else if staging.files.contains_key("manifest.json") {
        load_docker_save(store, &mut staging)?
    } else {
        return Err(ImageError::InvalidArchive(
            "neither an OCI image layout (oci-layout, index.json) nor a docker save archive (manifest.json)".into(),
        ));
    };
    if let Some(reference) = reference {
        if images.len() != 1 {
            return Err(ImageError::InvalidArchive(format!(
                "the archive holds {} images; a reference can name only one",
                images.len()
            )));
        }
        if !images[0].1.contains(reference) {
            images[0].1.push(reference.clone());
        }
    }
    let mut out = Vec::new();
    for (image, references) in images {
        for name in &references {
            store.put_image(&ImageRecord {
                reference: name.to_string(),
                source: ImageSource::Loaded,
                ..image.clone()
            })?;
        }
        out.push(LoadedImage {
            references,
            manifest_digest: image.manifest_digest,
            config_digest: image.config_digest,
            layers: image.layers,
        });
    }
    Ok(out)
}

/// Reads the (possibly compressed) outer tarball into staged files.
fn stage(store: &ContentStore, file: std::fs::File) -> Result<Staging, ImageError> {
    let bad = |m: String| ImageError::InvalidArchive(m);
    let mut reader = BufReader::with_capacity(128 * 1024, file);
    let magic = reader.fill_buf().ctx(|| "read archive".into())?;
    let compression = Compression::from_magic(magic);
    let mut archive = tar::Archive::new(crate::unpack::decompress(reader, compression));
    let mut staging = Staging::default();
    for entry in archive
        .entries()
        .map_err(|e| bad(format!("not a tar archive: {e}")))?
    {
        let mut entry = entry.map_err(|e| bad(format!("corrupt tar: {e}")))?;
        let raw = entry.path_bytes().into_owned();
        let Some(name) = archive_path(&String::from_utf8_lossy(&raw)) else {
            return Err(bad(format!(
                "member {:?} escapes the archive",
                String::from_utf8_lossy(&raw)
            )));
        };
        match entry.header().entry_type() {
            tar::EntryType::Regular | tar::EntryType::Continuous => {
                let mut tmp = tempfile::NamedTempFile::new_in(store.tmp_dir())
                    .ctx(|| "create staging file".into())?;
                let mut hasher = Sha256::new();
                let mut buf = vec![0u8; 128 * 1024];
                loop {
                    let n = entry
                        .read(&mut buf)
                        .map_err(|e| bad(format!("reading {name}: {e}")))?;
                    if n == 0 {
                        break;
                    }
                    hasher.update(&buf[..n]);
                    tmp.write_all(&buf[..n]).ctx(|| format!("stage {name}"))?;
                }
                let digest = Digest::from_hasher(hasher);
                staging.files.insert(
                    name,
                    Staged {
                        file: Some(tmp.into_temp_path()),
                        digest,
                    },
                );
            }
            tar::EntryType::Symlink | tar::EntryType::Link => {
                let target = entry
                    .link_name_bytes()
                    .map(|t| String::from_utf8_lossy(&t).into_owned())
                    .unwrap_or_default();
                // Symlink targets are relative to the link's directory;
                // hard link targets to the archive root.
                let base = if entry.header().entry_type() == tar::EntryType::Symlink
                    && !target.starts_with('/')
                {
                    name.rsplit_once('/').map_or("", |(dir, _)| dir).to_owned()
                } else {
                    String::new()
                };
                let joined = if base.is_empty() {
                    target.clone()
                } else {
                    format!("{base}/{target}")
                };
                let resolved = archive_path(&joined)
                    .ok_or_else(|| bad(format!("link {name} -> {target} escapes the archive")))?;
                staging.symlinks.insert(name, resolved);
            }
            _ => {}
        }
    }
    Ok(staging)
}

/// Lexically normalises a member path; `None` if `..` climbs above the
/// archive root.
fn archive_path(path: &str) -> Option<String> {
    let mut parts: Vec<&str> = Vec::new();
    for component in path.split('/') {
        match component {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            c => parts.push(c),
        }
    }
    Some(parts.join("/"))
}

impl Staging {
    fn resolve(&self, name: &str) -> Result<String, ImageError> {
        let mut current = archive_path(name)
            .ok_or_else(|| ImageError::InvalidArchive(format!("bad path {name:?}")))?;
        for _ in 0..MAX_SYMLINK_HOPS {
            if self.files.contains_key(&current) {
                return Ok(current);
            }
            match self.symlinks.get(&current) {
                Some(next) => current = next.clone(),
                None => {
                    return Err(ImageError::InvalidArchive(format!(
                        "{name} is missing from the archive"
                    )));
                }
            }
        }
        Err(ImageError::InvalidArchive(format!(
            "{name}: too many levels of links"
        )))
    }

    fn read_json<T: serde::de::DeserializeOwned>(&self, name: &str) -> Result<T, ImageError> {
        let key = self.resolve(name)?;
        let staged = &self.files[&key];
        let bytes = match &staged.file {
            Some(file) => {
                let mut bytes = Vec::new();
                std::fs::File::open(file)
                    .and_then(|f| f.take(MAX_JSON_SIZE + 1).read_to_end(&mut bytes))
                    .ctx(|| format!("read {name}"))?;
                bytes
            }
            None => Vec::new(),
        };
        if bytes.len() as u64 > MAX_JSON_SIZE {
            return Err(ImageError::InvalidArchive(format!("{name} is too large")));
        }
        serde_json::from_slice(&bytes)
            .map_err(|e| ImageError::InvalidArchive(format!("{name}: {e}")))
    }

    /// Moves a staged member into the store (once), returning its digest.
    fn adopt(&mut self, store: &ContentStore, name: &str) -> Result<Digest, ImageError> {
        let key = self.resolve(name)?;
        let staged = self
            .files
            .get_mut(&key)
            .ok_or_else(|| ImageError::InvalidArchive(format!("{name} is missing")))?;
        if let Some(file) = staged.file.take() {
            store.adopt_file(file, &staged.digest)?;
        }
        Ok(staged.digest.clone())
    }
}

fn load_oci_layout(
    store: &ContentStore,
    staging: &mut Staging,
    platform: &Platform,
) -> Result<Vec<(ImageRecord, Vec<ImageReference>)>, ImageError> {
    let index: ImageIndex = staging.read_json("index.json")?;
    // Every blob's name is its digest: check it while moving it in.
    let blob_names: Vec<String> = staging
        .files
        .keys()
        .filter(|k| k.starts_with("blobs/"))
        .cloned()
        .collect();
    for name in blob_names {
        let Some(hex) = name.strip_prefix("blobs/sha256/") else {
            return Err(ImageError::InvalidArchive(format!(
                "{name}: only sha256 blobs are supported"
            )));
        };
        let expected = Digest::from_hex(hex)
            .map_err(|e| ImageError::InvalidArchive(format!("{name}: {e}")))?;
        let actual = &staging.files[&name].digest;
        if actual != &expected {
            return Err(ImageError::DigestMismatch {
                what: name,
                expected,
                actual: actual.clone(),
            });
        }
        staging.adopt(store, &name)?;
    }

    let mut images = Vec::new();
    for descriptor in &index.manifests {
        let annotations = descriptor.annotations.clone().unwrap_or_default();
        let mut references = Vec::new();
        if let Some(name) = annotations.get(CONTAINERD_NAME) {
            references.push(ImageReference::parse(name)?);
        } else if let Some(name) = annotations.get(OCI_REF_NAME)
            && name.contains([':', '/'])
        {
            // A bare tag names no repository; only full references count.
            references.push(ImageReference::parse(name)?);
        }
        let record = resolve_stored_image(store, descriptor, platform, 0)?;
        images.push((record, references));
    }
    Ok(images)
}

/// Walks a descriptor already in the store down to one image.
fn resolve_stored_image(
    store: &ContentStore,
    descriptor: &Descriptor,
    platform: &Platform,
    depth: usize,
) -> Result<ImageRecord, ImageError> {
    let missing =
        |d: &Digest| ImageError::InvalidArchive(format!("blob {d} is missing from the archive"));
    if !store.has_blob(&descriptor.digest) {
        return Err(missing(&descriptor.digest));
    }
    let bytes = store.read_blob(&descriptor.digest, MAX_JSON_SIZE)?;
    let json: serde_json::Value = serde_json::from_slice(&bytes)
        .map_err(|e| ImageError::InvalidArchive(format!("{}: {e}", descriptor.digest)))?;
    let declared = Some(descriptor.media_type.as_str()).filter(|m| !m.is_empty());
    let kind = crate::manifest::sniff_media_type(declared, &json).unwrap_or_default();
    if media_type::is_index(&kind) {
        if depth >= 3 {
            return Err(ImageError::InvalidArchive(
                "indexes nested too deeply".into(),
            ));
        }
        let index: ImageIndex = serde_json::from_value(json)
            .map_err(|e| ImageError::InvalidArchive(format!("{}: {e}", descriptor.digest)))?;
        // Prefer a platform whose blobs are actually in the archive:
        // `docker save` of one platform keeps the full index.
        let present = ImageIndex {
            manifests: index
                .manifests
                .iter()
                .filter(|d| store.has_blob(&d.digest))
                .cloned()
                .collect(),
            ..index.clone()
        };
        let chosen = present
            .select(platform)
            .ok_or_else(|| ImageError::NoMatchingPlatform {
                reference: descriptor.digest.to_string(),
                platform: platform.to_string(),
            })?;
        return resolve_stored_image(store, chosen, platform, depth + 1);
    }
    if !media_type::is_manifest(&kind) {
        return Err(ImageError::UnsupportedMediaType { media_type: kind });
    }
    let manifest: ImageManifest = serde_json::from_value(json)
        .map_err(|e| ImageError::InvalidArchive(format!("{}: {e}", descriptor.digest)))?;
    if let Some(media_type) = manifest.unsupported_media_type() {
        return Err(ImageError::UnsupportedMediaType { media_type: media_type.to_string() });
    }
    for d in std::iter::once(&manifest.config).chain(&manifest.layers) {
        if !store.has_blob(&d.digest) {
            return Err(missing(&d.digest));
        }
    }
    let config: ConfigFile = serde_json::from_slice(
        &store.read_blob(&manifest.config.digest, MAX_JSON_SIZE)?,
    )
    .map_err(|e| ImageError::InvalidArchive(format!("config {}: {e}", manifest.config.digest)))?;
    if config.rootfs.diff_ids.len() != manifest.layers.len() {
        return Err(ImageError::InvalidArchive(format!(
            "manifest {} lists {} layers but its config {}",
            descriptor.digest,
            manifest.layers.len(),
            config.rootfs.diff_ids.len()
        )));
    }
    let layers = LayerRecord::from_manifest(&manifest, &config.rootfs.diff_ids);
    Ok(ImageRecord {
        reference: String::new(),
        manifest_digest: descriptor.digest.clone(),
        manifest_media_type: kind,
        config_digest: manifest.config.digest.clone(),
        layers,
        platform: Platform {
            os: config.os,
            architecture: config.architecture,
            variant: config.variant,
        },
        source: ImageSource::Loaded,
    })
}

/// The manifest we write for a `docker save` image, which has none.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct SynthesizedManifest<'a> {
    schema_version: u32,
    media_type: &'a str,
    config: &'a Descriptor,
    layers: &'a [Descriptor],
}

fn load_docker_save(
    store: &ContentStore,
    staging: &mut Staging,
) -> Result<Vec<(ImageRecord, Vec<ImageReference>)>, ImageError> {
    let entries: Vec<DockerSaveEntry> = staging.read_json("manifest.json")?;
    let mut images = Vec::new();
    for entry in entries {
        let config: ConfigFile = staging.read_json(&entry.config)?;
        if config.rootfs.diff_ids.len() != entry.layers.len() {
            return Err(ImageError::InvalidArchive(format!(
                "{} lists {} layers but its config {}",
                entry.config,
                entry.layers.len(),
                config.rootfs.diff_ids.len()
            )));
        }
        let config_size = file_size(staging, &entry.config)?;
        let config_digest = staging.adopt(store, &entry.config)?;
        let mut descriptors = Vec::new();
        let mut layers = Vec::new();
        for (layer_path, diff_id) in entry.layers.iter().zip(&config.rootfs.diff_ids) {
            let key = staging.resolve(layer_path)?;
            let digest = staging.files[&key].digest.clone();
            let (compression, size, actual_diff_id) = match &staging.files[&key].file {
                Some(file) => inspect_layer(file, &digest)?,
                // Already moved in for an earlier image of this archive.
                None => inspect_layer(&store.blob_path(&digest), &digest)?,
            };
            if &actual_diff_id != diff_id {
                return Err(ImageError::DigestMismatch {
                    what: format!("layer {layer_path}"),
                    expected: diff_id.clone(),
                    actual: actual_diff_id,
                });
            }
            staging.adopt(store, layer_path)?;
            let media_type = match compression {
                Compression::None => media_type::OCI_LAYER,
                Compression::Gzip => media_type::OCI_LAYER_GZIP,
                Compression::Zstd => media_type::OCI_LAYER_ZSTD,
            };
            descriptors.push(Descriptor {
                media_type: media_type.to_owned(),
                digest: digest.clone(),
                size,
                platform: None,
                annotations: None,
                urls: None,
            });
            layers.push(LayerRecord {
                digest,
                diff_id: diff_id.clone(),
                media_type: media_type.to_owned(),
                size,
            });
        }
        let config_descriptor = Descriptor {
            media_type: media_type::OCI_CONFIG.to_owned(),
            digest: config_digest.clone(),
            size: config_size,
            platform: None,
            annotations: None,
            urls: None,
        };
        let manifest = SynthesizedManifest {
            schema_version: 2,
            media_type: media_type::OCI_MANIFEST,
            config: &config_descriptor,
            layers: &descriptors,
        };
        let manifest_bytes =
            serde_json::to_vec(&manifest).map_err(|e| ImageError::invalid("manifest", e))?;
        let manifest_digest = store.put_blob(&manifest_bytes)?;
        let mut references = Vec::new();
        for tag in entry.repo_tags.unwrap_or_default() {
            references.push(ImageReference::parse(&tag)?);
        }
        images.push((
            ImageRecord {
                reference: String::new(),
                manifest_digest,
                manifest_media_type: media_type::OCI_MANIFEST.to_owned(),
                config_digest,
                layers,
                platform: Platform {
                    os: config.os.clone(),
                    architecture: config.architecture.clone(),
                    variant: config.variant.clone(),
                },
                source: ImageSource::Loaded,
            },
            references,
        ));
    }
    Ok(images)
}

fn file_size(staging: &Staging, name: &str) -> Result<u64, ImageError> {
    let key = staging.resolve(name)?;
    match &staging.files[&key].file {
        Some(file) => Ok(std::fs::metadata(file)
            .ctx(|| format!("stat {name}"))?
            .len()),
        None => Ok(0),
    }
}

/// Compression, size and uncompressed digest of a layer file.
fn inspect_layer(path: &Path, digest: &Digest) -> Result<(Compression, u64, Digest), ImageError> {
    let file = std::fs::File::open(path).ctx(|| format!("open layer {digest}"))?;
    let size = file
        .metadata()
        .ctx(|| format!("stat layer {digest}"))?
        .len();
    let mut reader = BufReader::new(file);
    let compression =
        Compression::from_magic(reader.fill_buf().ctx(|| format!("read layer {digest}"))?);
    if compression == Compression::None {
        return Ok((compression, size, digest.clone()));
    }
    let mut hashing = HashingReader::new(crate::unpack::decompress(reader, compression));
    std::io::copy(&mut hashing, &mut std::io::sink())
        .map_err(|e| ImageError::InvalidArchive(format!("layer {digest}: {e}")))?;
    Ok((compression, size, hashing.finish().0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn archive_paths_stay_inside() {
        assert_eq!(archive_path("./a/b/../c").as_deref(), Some("a/c"));
        assert_eq!(
            archive_path("/blobs/sha256/x").as_deref(),
            Some("blobs/sha256/x")
        );
        assert_eq!(archive_path("../x"), None);
        assert_eq!(archive_path("a/../../x"), None);
    }
}
