//! `berth image load`: OCI layout and `docker save` tarballs built here.

use std::path::Path;

use berth_image::manifest::media_type;
use berth_image::{Digest, ImageError, ImageReference, ImageSource, PullErrorKind, PullPolicy};
use serde_json::json;

use crate::support::images::{Comp, Flavor, Layer, TestImage, gzip, index, standard_layers};
use crate::support::{is_whiteout, service};

fn add(builder: &mut tar::Builder<Vec<u8>>, path: &str, data: &[u8]) {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::Regular);
    h.set_mode(0o644);
    h.set_size(data.len() as u64);
    builder.append_data(&mut h, path, data).unwrap();
}

fn add_symlink(builder: &mut tar::Builder<Vec<u8>>, path: &str, target: &str) {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::Symlink);
    h.set_mode(0o777);
    h.set_size(0);
    builder.append_link(&mut h, path, target).unwrap();
}

fn add_blob(builder: &mut tar::Builder<Vec<u8>>, data: &[u8]) {
    add(
        builder,
        &format!("blobs/sha256/{}", Digest::of(data).hex()),
        data,
    );
}

/// An OCI layout with an amd64 image and an arm64 one behind an index,
/// as `docker save` (25+) and skopeo write them.
fn oci_layout(amd: &TestImage, arm: &TestImage, name: &str) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    add(&mut b, "oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#);
    for image in [amd, arm] {
        add_blob(&mut b, &image.config);
        for (_, blob, _) in &image.layers {
            add_blob(&mut b, blob);
        }
        add_blob(&mut b, &image.manifest());
    }
    let (mt, idx) = index(
        Flavor::Oci,
        &[(arm, "linux", "arm64", None), (amd, "linux", "amd64", None)],
    );
    add_blob(&mut b, &idx);
    let top = json!({
        "schemaVersion": 2,
        "manifests": [{
            "mediaType": mt,
            "digest": Digest::of(&idx).to_string(),
            "size": idx.len(),
            "annotations": {"io.containerd.image.name": name, "org.opencontainers.image.ref.name": "1.0"}
        }]
    });
    add(&mut b, "index.json", &serde_json::to_vec(&top).unwrap());
    b.into_inner().unwrap()
}

/// The classic `docker save` layout: manifest.json, <id>/layer.tar (plain
/// tar), a config named by its hex, and a layer shared through a symlink.
fn docker_save(images: &[(&TestImage, &[&str])], raw_layers: &[Vec<u8>]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    let mut manifest = Vec::new();
    // diff id → path of its first copy in the archive
    let mut seen: Vec<(Digest, String)> = Vec::new();
    for (n, (image, tags)) in images.iter().enumerate() {
        let config_name = format!("{}.json", image.config_digest().hex());
        add(&mut b, &config_name, &image.config);
        let mut layer_paths = Vec::new();
        for (i, (_, _, diff_id)) in image.layers.iter().enumerate() {
            let path = format!("{}{n}{i}/layer.tar", &diff_id.hex()[..8]);
            if let Some((_, first)) = seen.iter().find(|(d, _)| d == diff_id) {
                // Docker writes repeated layers as symlinks to the first.
                add_symlink(&mut b, &path, &format!("../{first}"));
            } else {
                let raw = raw_layers
                    .iter()
                    .find(|t| Digest::of(t) == *diff_id)
                    .unwrap();
                add(&mut b, &path, raw);
                seen.push((diff_id.clone(), path.clone()));
            }
            layer_paths.push(path);
        }
        manifest.push(json!({"Config": config_name, "RepoTags": tags, "Layers": layer_paths}));
    }
    add(
        &mut b,
        "manifest.json",
        &serde_json::to_vec(&manifest).unwrap(),
    );
    add(&mut b, "repositories", b"{}");
    b.into_inner().unwrap()
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> std::path::PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn load_oci_layout_then_run_without_a_registry() {
    let (base, top) = standard_layers();
    let amd = TestImage::new(
        Flavor::Oci,
        "amd64",
        vec![(Comp::Gzip, base), (Comp::Zstd, top)],
    );
    let arm = TestImage::new(
        Flavor::Oci,
        "arm64",
        vec![(Comp::Gzip, Layer::new().file("arch", b"arm", 0o644).tar())],
    );
    // A registry that does not exist: nothing may try to reach it.
    let name = "127.0.0.1:1/offline/app:1.0";
    let dir = tempfile::tempdir().unwrap();
    let archive = write(dir.path(), "image.tar", &oci_layout(&amd, &arm, name));
    let service = service(dir.path());

    let loaded = service.load(&archive, None).await.unwrap();
    assert_eq!(loaded.len(), 1);
    let reference = ImageReference::parse(name).unwrap();
    assert_eq!(loaded[0].references, std::slice::from_ref(&reference));
    assert_eq!(loaded[0].manifest_digest, Digest::of(&amd.manifest()));
    assert_eq!(loaded[0].config_digest, amd.config_digest());

    let record = service.store().image(&reference).unwrap().unwrap();
    assert_eq!(record.source, ImageSource::Loaded);
    assert_eq!(record.platform.architecture, "amd64");
    let image = service
        .ensure(&reference, PullPolicy::PreferCached, None)
        .await
        .unwrap();
    assert!(!image.pulled);
    assert_eq!(image.config.entrypoint, ["/bin/app"]);
    assert_eq!(
        std::fs::read(image.layer_dirs[0].join("bin/app")).unwrap(),
        b"#!/bin/sh\necho app\n"
    );
    assert!(is_whiteout(&image.layer_dirs[1].join("etc/remove-me")));

    // `once` means "pulled by this agent before"; a loaded image was not.
    let err = service
        .ensure(&reference, PullPolicy::Once, None)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), PullErrorKind::Network, "{err}");
    // `default` tries the registry, then falls back to the loaded copy.
    assert!(
        !service
            .ensure(&reference, PullPolicy::Default, None)
            .await
            .unwrap()
            .pulled
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn load_docker_save_archive_with_shared_layers_and_gzip_wrapper() {
    let (base, top) = standard_layers();
    let extra = Layer::new().file("second", b"2", 0o644).tar();
    let first = TestImage::new(
        Flavor::Oci,
        "amd64",
        vec![(Comp::None, base.clone()), (Comp::None, top.clone())],
    );
    let second = TestImage::new(
        Flavor::Oci,
        "amd64",
        vec![(Comp::None, base.clone()), (Comp::None, extra.clone())],
    );
    let tarball = docker_save(
        &[
            (&first, &["loaded/app:2", "loaded/app:latest"]),
            (&second, &["other:1"]),
        ],
        &[base, top, extra],
    );
    let dir = tempfile::tempdir().unwrap();
    let service = service(dir.path());
    // `docker save | gzip` is a common way to ship it.
    let archive = write(dir.path(), "save.tar.gz", &gzip(&tarball));

    let loaded = service.load(&archive, None).await.unwrap();
    assert_eq!(loaded.len(), 2);
    let names: Vec<String> = loaded[0].references.iter().map(|r| r.to_string()).collect();
    assert_eq!(
        names,
        ["docker.io/loaded/app:2", "docker.io/loaded/app:latest"]
    );
    assert_eq!(
        loaded[1].references[0].to_string(),
        "docker.io/library/other:1"
    );
    assert_eq!(
        loaded[0].layers[0].diff_id, loaded[1].layers[0].diff_id,
        "shared layer"
    );
    assert_eq!(loaded[0].layers[0].media_type, media_type::OCI_LAYER);

    // The synthesized manifest is stored and describes the image.
    let manifest: serde_json::Value = serde_json::from_slice(
        &std::fs::read(service.store().blob_path(&loaded[0].manifest_digest)).unwrap(),
    )
    .unwrap();
    assert_eq!(
        manifest["config"]["digest"],
        first.config_digest().to_string()
    );

    for (reference, file) in [("loaded/app:latest", "bin/app"), ("other:1", "bin/app")] {
        let reference = ImageReference::parse(reference).unwrap();
        let image = service
            .ensure(&reference, PullPolicy::PreferCached, None)
            .await
            .unwrap();
        assert!(image.layer_dirs[0].join(file).exists());
        assert_eq!(image.source, ImageSource::Loaded);
    }
    let other = service
        .ensure(
            &ImageReference::parse("other:1").unwrap(),
            PullPolicy::PreferCached,
            None,
        )
        .await
        .unwrap();
    assert_eq!(
        std::fs::read(other.layer_dirs[1].join("second")).unwrap(),
        b"2"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn load_with_an_explicit_reference() {
    let (base, _) = standard_layers();
    let image = TestImage::new(Flavor::Oci, "amd64", vec![(Comp::None, base.clone())]);
    // No RepoTags at all: only the explicit name identifies it.
    let tarball = docker_save(&[(&image, &[])], &[base]);
    let dir = tempfile::tempdir().unwrap();
    let archive = write(dir.path(), "save.tar", &tarball);
    let service = service(dir.path());
    let explicit = ImageReference::parse("airgap.local:5000/app:pinned").unwrap();
    let loaded = service.load(&archive, Some(&explicit)).await.unwrap();
    assert_eq!(loaded[0].references, std::slice::from_ref(&explicit));
    assert!(
        service
            .ensure(&explicit, PullPolicy::PreferCached, None)
            .await
            .is_ok()
    );

    // An explicit reference cannot name several images.
    let other = TestImage::new(
        Flavor::Oci,
        "amd64",
        vec![(Comp::None, Layer::new().file("x", b"x", 0o644).tar())],
    );
    let two = docker_save(
        &[(&image, &["a:1"]), (&other, &["b:1"])],
        &[
            standard_layers().0,
            Layer::new().file("x", b"x", 0o644).tar(),
        ],
    );
    let archive = write(dir.path(), "two.tar", &two);
    let err = service.load(&archive, Some(&explicit)).await.unwrap_err();
    assert!(matches!(err, ImageError::InvalidArchive(_)), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corrupt_archives_are_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let service = service(dir.path());

    // A blob whose content does not match its name.
    let mut b = tar::Builder::new(Vec::new());
    add(&mut b, "oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#);
    add(
        &mut b,
        "index.json",
        br#"{"schemaVersion":2,"manifests":[]}"#,
    );
    add(
        &mut b,
        &format!("blobs/sha256/{}", Digest::of(b"real").hex()),
        b"fake",
    );
    let archive = write(dir.path(), "bad-blob.tar", &b.into_inner().unwrap());
    let err = service.load(&archive, None).await.unwrap_err();
    assert!(matches!(err, ImageError::DigestMismatch { .. }), "{err}");

    // A docker save layer that is not what the config says.
    let (base, top) = standard_layers();
    let image = TestImage::new(Flavor::Oci, "amd64", vec![(Comp::None, base.clone())]);
    let mut tarball = docker_save(&[(&image, &["x:1"])], &[base]);
    let mut b = tar::Builder::new(Vec::new());
    let mut archive = tar::Archive::new(&tarball[..]);
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        let path = entry.path().unwrap().to_string_lossy().into_owned();
        let mut data = Vec::new();
        std::io::Read::read_to_end(&mut entry, &mut data).unwrap();
        if path.ends_with("layer.tar") {
            data = top.clone();
        }
        add(&mut b, &path, &data);
    }
    tarball = b.into_inner().unwrap();
    let archive = write(dir.path(), "bad-layer.tar", &tarball);
    let err = service.load(&archive, None).await.unwrap_err();
    assert!(matches!(err, ImageError::DigestMismatch { .. }), "{err}");
    assert!(
        service
            .store()
            .image(&ImageReference::parse("x:1").unwrap())
            .unwrap()
            .is_none()
    );

    // Members climbing out of the archive.
    let mut raw = Layer::new()
        .raw(tar::EntryType::Regular, "../manifest.json", None, b"[]")
        .tar();
    raw.extend_from_slice(&[0u8; 1024]);
    let archive = write(dir.path(), "escape.tar", &raw);
    assert!(matches!(
        service.load(&archive, None).await.unwrap_err(),
        ImageError::InvalidArchive(_)
    ));

    // Neither layout.
    let mut b = tar::Builder::new(Vec::new());
    add(&mut b, "hello.txt", b"hi");
    let archive = write(dir.path(), "neither.tar", &b.into_inner().unwrap());
    assert!(matches!(
        service.load(&archive, None).await.unwrap_err(),
        ImageError::InvalidArchive(_)
    ));
}
