//! Image archives for hosts without a registry, in the two formats
//! `berth image load` reads.

use std::path::Path;

use serde_json::json;

use crate::image::{Blob, Built};
use crate::tar_writer::{self, Entry};
use crate::{Error, Result};

/// An OCI image layout: `oci-layout`, `index.json` pointing at the image
/// (or its index), and every blob under `blobs/sha256/`.
pub(crate) fn write_oci(built: &Built, path: &Path) -> Result<()> {
    let top = built.top();
    let index = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [{
            "mediaType": top.media_type,
            "digest": top.digest,
            "size": top.bytes.len(),
        }],
    });
    let mut blobs: Vec<&Blob> = built.index.iter().collect();
    for image in built.platform_images() {
        blobs.push(&image.manifest);
        blobs.push(&image.config);
        blobs.extend(&image.layers);
    }
    blobs.sort_by(|a, b| a.digest.cmp(&b.digest));
    blobs.dedup_by(|a, b| a.digest == b.digest);

    let mut entries = vec![
        Entry::file("oci-layout", 0o644, r#"{"imageLayoutVersion":"1.0.0"}"#),
        Entry::file("index.json", 0o644, to_json(&index)),
        Entry::dir("blobs", 0o755),
        Entry::dir("blobs/sha256", 0o755),
    ];
    for blob in blobs {
        let hex = hex_of(&blob.digest);
        entries.push(Entry::file(
            &format!("blobs/sha256/{hex}"),
            0o644,
            blob.bytes.clone(),
        ));
    }
    write_file(path, &tar_writer::write(&entries))
}

/// The classic `docker save` layout (before Docker 25 switched to OCI):
/// `manifest.json`, `<config hex>.json` and uncompressed
/// `<diff id hex>/layer.tar`, whatever compression the registry copy uses.
pub(crate) fn write_docker_save(built: &Built, path: &Path, repo_tag: &str) -> Result<()> {
    let image = &built.image;
    let config_name = format!("{}.json", hex_of(&image.config.digest));
    let layer_names: Vec<String> = image
        .diff_ids
        .iter()
        .map(|d| format!("{}/layer.tar", hex_of(d)))
        .collect();
    let manifest = json!([{
        "Config": config_name,
        "RepoTags": [repo_tag],
        "Layers": layer_names,
    }]);
    let mut entries = vec![Entry::file(&config_name, 0o644, image.config.bytes.clone())];
    for (name, tar) in layer_names.iter().zip(&image.layer_tars) {
        let dir = name.trim_end_matches("/layer.tar");
        entries.push(Entry::dir(dir, 0o755));
        entries.push(Entry::file(name, 0o644, tar.clone()));
    }
    entries.push(Entry::file("manifest.json", 0o644, to_json(&manifest)));
    write_file(path, &tar_writer::write(&entries))
}

fn hex_of(digest: &str) -> &str {
    digest.strip_prefix("sha256:").unwrap_or(digest)
}

fn to_json(value: &serde_json::Value) -> Vec<u8> {
    serde_json::to_vec(value).unwrap_or_else(|e| panic!("serialize JSON: {e}"))
}

fn write_file(path: &Path, bytes: &[u8]) -> Result<()> {
    std::fs::write(path, bytes).map_err(|e| Error::io(format!("write {}", path.display()), e))
}
