use std::os::unix::fs::MetadataExt;
use std::time::Duration;

use berth_image::manifest::media_type;
use berth_image::{Credentials, ImageError, PullErrorKind, PullPolicy};

use crate::support::images::{Comp, Flavor, Layer, TestImage, index, standard_layers};
use crate::support::registry::{Auth, TestRegistry};
use crate::support::{is_whiteout, opaque_xattr, service};

fn standard_image(flavor: Flavor, comp: Comp) -> TestImage {
    let (base, top) = standard_layers();
    TestImage::new(flavor, "amd64", vec![(comp, base), (comp, top)])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anonymous_pull_unpacks_layers_with_whiteouts_links_and_metadata() {
    let registry = TestRegistry::start(Auth::Anonymous).await;
    let image = standard_image(Flavor::Oci, Comp::Gzip);
    let manifest_digest = image.push(&registry, "demo/app", Some("1"));
    let dir = tempfile::tempdir().unwrap();
    let service = service(dir.path());

    let pulled = service
        .ensure(&registry.reference("demo/app:1"), PullPolicy::Default, None)
        .await
        .unwrap();
    assert!(pulled.pulled);
    assert_eq!(pulled.manifest_digest, manifest_digest);
    assert_eq!(pulled.config.entrypoint, ["/bin/app"]);
    assert_eq!(pulled.config.cmd, ["--serve"]);
    assert_eq!(pulled.config.env, ["PATH=/usr/bin:/bin", "MODE=test"]);
    assert_eq!(pulled.config.working_dir, "/srv");
    assert_eq!(pulled.config.user, "1000:1000");
    assert_eq!(pulled.config.exposed_ports, ["8080/tcp"]);
    assert_eq!(pulled.layer_dirs.len(), 2);

    let base = &pulled.layer_dirs[0];
    let top = &pulled.layer_dirs[1];
    assert_eq!(
        base.file_name().unwrap().to_str().unwrap(),
        image.layers[0].2.hex()
    );
    assert_eq!(
        std::fs::read(base.join("bin/app")).unwrap(),
        b"#!/bin/sh\necho app\n"
    );
    let app = std::fs::metadata(base.join("bin/app")).unwrap();
    assert_eq!(app.mode() & 0o7777, 0o755);
    assert_eq!(app.mtime(), 1_700_000_000);
    assert_eq!(
        std::fs::read_link(base.join("bin/sh")).unwrap().to_str(),
        Some("/bin/app")
    );
    assert_eq!(
        std::fs::metadata(base.join("bin/app-link")).unwrap().ino(),
        app.ino(),
        "hard link shares the inode"
    );
    let data = std::fs::metadata(base.join("srv/data")).unwrap();
    assert_eq!(
        (data.uid(), data.gid(), data.mode() & 0o777),
        (1000, 1000, 0o640)
    );
    // Implied parent directory.
    assert!(base.join("srv").is_dir());

    assert!(
        is_whiteout(&top.join("etc/remove-me")),
        "whiteout became a 0:0 char device"
    );
    assert!(!top.join("etc/.wh.remove-me").exists());
    assert_eq!(
        opaque_xattr(&top.join("var/cache")).as_deref(),
        Some(&b"y"[..])
    );
    assert!(!top.join("var/cache/.wh..wh..opq").exists());
    assert_eq!(std::fs::read(top.join("var/cache/new")).unwrap(), b"new");

    // Everything is in the store, content-addressed.
    let store = service.store();
    assert!(store.has_blob(&manifest_digest));
    assert!(store.has_blob(&image.config_digest()));
    let record = store
        .image(&registry.reference("demo/app:1"))
        .unwrap()
        .unwrap();
    assert_eq!(record.layers.len(), 2);
    assert_eq!(record.platform.architecture, "amd64");
    assert!(
        std::fs::read_dir(store.root().join("tmp"))
            .unwrap()
            .next()
            .is_none(),
        "no temporary files left"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zstd_and_uncompressed_layers() {
    let registry = TestRegistry::start(Auth::Anonymous).await;
    let zstd_layer = Layer::new().file("z/file", b"zstd content", 0o644).tar();
    let plain_layer = Layer::new().file("p/file", b"plain content", 0o644).tar();
    let image = TestImage::new(
        Flavor::Oci,
        "amd64",
        vec![(Comp::Zstd, zstd_layer), (Comp::None, plain_layer)],
    );
    image.push(&registry, "demo/zstd", Some("latest"));
    let dir = tempfile::tempdir().unwrap();
    let pulled = service(dir.path())
        .ensure(&registry.reference("demo/zstd"), PullPolicy::Always, None)
        .await
        .unwrap();
    assert_eq!(
        std::fs::read(pulled.layer_dirs[0].join("z/file")).unwrap(),
        b"zstd content"
    );
    assert_eq!(
        std::fs::read(pulled.layer_dirs[1].join("p/file")).unwrap(),
        b"plain content"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn basic_auth() {
    let registry = TestRegistry::start(Auth::Basic {
        user: "alice".into(),
        password: "s3cret".into(),
    })
    .await;
    standard_image(Flavor::Oci, Comp::Gzip).push(&registry, "private/app", Some("1"));
    let reference = registry.reference("private/app:1");
    let dir = tempfile::tempdir().unwrap();
    let service = service(dir.path());

    let err = service
        .ensure(&reference, PullPolicy::Always, None)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), PullErrorKind::Unauthorized, "{err}");
    let wrong = Credentials::new("alice", "wrong");
    let err = service
        .ensure(&reference, PullPolicy::Always, Some(&wrong))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), PullErrorKind::Unauthorized, "{err}");
    assert!(
        err.cannot_pull_reason()
            .starts_with("CannotPullContainerError: pull access denied"),
        "{err}"
    );

    let good = Credentials::new("alice", "s3cret");
    let pulled = service
        .ensure(&reference, PullPolicy::Always, Some(&good))
        .await
        .unwrap();
    assert_eq!(pulled.layer_dirs.len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bearer_token_flow_with_credentials_and_token_reuse() {
    let registry = TestRegistry::start(Auth::Bearer {
        user: Some(("bob".into(), "pw".into())),
    })
    .await;
    standard_image(Flavor::Docker, Comp::Gzip).push(&registry, "team/app", Some("v2"));
    let reference = registry.reference("team/app:v2");
    let dir = tempfile::tempdir().unwrap();
    let service = service(dir.path());

    let err = service
        .ensure(&reference, PullPolicy::Always, None)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), PullErrorKind::Unauthorized, "{err}");
    let err = service
        .ensure(
            &reference,
            PullPolicy::Always,
            Some(&Credentials::new("bob", "nope")),
        )
        .await
        .unwrap_err();
    assert_eq!(err.kind(), PullErrorKind::Unauthorized, "{err}");

    let before = registry.token_requests();
    let creds = Credentials::new("bob", "pw");
    service
        .ensure(&reference, PullPolicy::Always, Some(&creds))
        .await
        .unwrap();
    // One token served manifest, config and both layers.
    assert_eq!(registry.token_requests(), before + 1);
    assert!(
        registry
            .token_scopes()
            .last()
            .unwrap()
            .contains("scope=repository%3Ateam%2Fapp%3Apull")
    );
    assert!(
        registry
            .token_scopes()
            .last()
            .unwrap()
            .contains("service=test-registry")
    );
    service
        .ensure(&reference, PullPolicy::Always, Some(&creds))
        .await
        .unwrap();
    assert_eq!(registry.token_requests(), before + 1, "cached token reused");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anonymous_bearer_tokens() {
    let registry = TestRegistry::start(Auth::Bearer { user: None }).await;
    standard_image(Flavor::Oci, Comp::Gzip).push(&registry, "library/public", Some("latest"));
    let dir = tempfile::tempdir().unwrap();
    let pulled = service(dir.path())
        .ensure(
            &registry.reference("library/public"),
            PullPolicy::Default,
            None,
        )
        .await
        .unwrap();
    assert_eq!(pulled.layer_dirs.len(), 2);
    assert_eq!(registry.token_requests(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oci_index_picks_linux_amd64() {
    let registry = TestRegistry::start(Auth::Anonymous).await;
    let arm = TestImage::new(
        Flavor::Oci,
        "arm64",
        vec![(Comp::Gzip, Layer::new().file("arch", b"arm64", 0o644).tar())],
    );
    let amd = TestImage::new(
        Flavor::Oci,
        "amd64",
        vec![(Comp::Gzip, Layer::new().file("arch", b"amd64", 0o644).tar())],
    );
    let v3 = TestImage::new(
        Flavor::Oci,
        "amd64",
        vec![(
            Comp::Gzip,
            Layer::new().file("arch", b"amd64v3", 0o644).tar(),
        )],
    );
    let win = TestImage::new(
        Flavor::Oci,
        "amd64",
        vec![(
            Comp::Gzip,
            Layer::new().file("arch", b"windows", 0o644).tar(),
        )],
    );
    for image in [&arm, &amd, &v3, &win] {
        image.push(&registry, "multi/app", None);
    }
    let (mt, body) = index(
        Flavor::Oci,
        &[
            (&arm, "linux", "arm64", Some("v8")),
            (&v3, "linux", "amd64", Some("v3")),
            (&win, "windows", "amd64", None),
            (&amd, "linux", "amd64", None),
        ],
    );
    let index_digest = registry.put_manifest("multi/app", Some("1"), &mt, body);
    let dir = tempfile::tempdir().unwrap();
    let service = service(dir.path());
    let pulled = service
        .ensure(
            &registry.reference("multi/app:1"),
            PullPolicy::Default,
            None,
        )
        .await
        .unwrap();
    assert_eq!(
        std::fs::read(pulled.layer_dirs[0].join("arch")).unwrap(),
        b"amd64"
    );
    assert_eq!(pulled.config.labels["arch"], "amd64");
    assert_eq!(
        pulled.manifest_digest,
        berth_image::Digest::of(&amd.manifest())
    );
    assert!(
        service.store().has_blob(&index_digest),
        "the index is kept too"
    );
    // Only the chosen platform's layers were downloaded.
    assert_eq!(
        registry.blob_gets(&berth_image::Digest::of(&arm.layers[0].1)),
        0
    );

    // Pull by the index digest works the same.
    let by_digest = registry.reference(&format!("multi/app@{index_digest}"));
    let pulled = service
        .ensure(&by_digest, PullPolicy::Always, None)
        .await
        .unwrap();
    assert_eq!(
        std::fs::read(pulled.layer_dirs[0].join("arch")).unwrap(),
        b"amd64"
    );

    // An index without amd64 is a clear error.
    let (mt, body) = index(Flavor::Oci, &[(&arm, "linux", "arm64", None)]);
    registry.put_manifest("multi/app", Some("armonly"), &mt, body);
    let err = service
        .ensure(
            &registry.reference("multi/app:armonly"),
            PullPolicy::Always,
            None,
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, ImageError::NoMatchingPlatform { .. }),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn docker_manifest_list() {
    let registry = TestRegistry::start(Auth::Anonymous).await;
    let arm = TestImage::new(
        Flavor::Docker,
        "arm",
        vec![(Comp::Gzip, Layer::new().file("arch", b"armv7", 0o644).tar())],
    );
    let amd = TestImage::new(
        Flavor::Docker,
        "amd64",
        vec![(Comp::Gzip, Layer::new().file("arch", b"amd64", 0o644).tar())],
    );
    arm.push(&registry, "library/list", None);
    amd.push(&registry, "library/list", None);
    let (mt, body) = index(
        Flavor::Docker,
        &[
            (&arm, "linux", "arm", Some("v7")),
            (&amd, "linux", "amd64", None),
        ],
    );
    assert_eq!(mt, media_type::DOCKER_MANIFEST_LIST);
    registry.put_manifest("library/list", Some("latest"), &mt, body);
    let dir = tempfile::tempdir().unwrap();
    let pulled = service(dir.path())
        .ensure(
            &registry.reference("library/list"),
            PullPolicy::Default,
            None,
        )
        .await
        .unwrap();
    assert_eq!(
        std::fs::read(pulled.layer_dirs[0].join("arch")).unwrap(),
        b"amd64"
    );
    assert_eq!(pulled.config.architecture, "amd64");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tampered_blob_is_rejected_and_nothing_is_stored() {
    let registry = TestRegistry::start(Auth::Anonymous).await;
    let image = standard_image(Flavor::Oci, Comp::Gzip);
    image.push(&registry, "demo/tampered", Some("1"));
    let layer_digest = berth_image::Digest::of(&image.layers[1].1);
    let mut evil = image.layers[1].1.clone();
    let last = evil.len() - 1;
    evil[last] ^= 0xff;
    registry.tamper(&layer_digest, evil);

    let dir = tempfile::tempdir().unwrap();
    let service = service(dir.path());
    let reference = registry.reference("demo/tampered:1");
    let err = service
        .ensure(&reference, PullPolicy::Default, None)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), PullErrorKind::DigestMismatch, "{err}");
    assert!(!service.store().has_blob(&layer_digest));
    assert!(!service.store().has_layer(&image.layers[1].2));
    assert!(
        service.store().image(&reference).unwrap().is_none(),
        "no image record"
    );
    assert!(
        std::fs::read_dir(service.store().root().join("tmp"))
            .unwrap()
            .next()
            .is_none(),
        "partial download removed"
    );

    // A server sending more than the descriptor's size is cut off too.
    registry.tamper(&layer_digest, vec![0u8; image.layers[1].1.len() + 10]);
    let err = service
        .ensure(&reference, PullPolicy::Always, None)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), PullErrorKind::DigestMismatch, "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tampered_manifest_by_digest_is_rejected() {
    let registry = TestRegistry::start(Auth::Anonymous).await;
    let image = standard_image(Flavor::Oci, Comp::Gzip);
    let digest = image.push(&registry, "demo/m", None);
    // Serve different bytes under the pinned digest.
    let other = standard_image(Flavor::Docker, Comp::Gzip);
    registry.put_blob(other.config.clone());
    let reference = registry.reference(&format!("demo/m@{digest}"));
    {
        // Overwrite the by-digest entry with another manifest's bytes.
        registry.put_manifest(
            "demo/m",
            Some(&digest.to_string()),
            media_type::DOCKER_MANIFEST,
            other.manifest(),
        );
    }
    let dir = tempfile::tempdir().unwrap();
    let err = service(dir.path())
        .ensure(&reference, PullPolicy::Always, None)
        .await
        .unwrap_err();
    assert!(matches!(err, ImageError::DigestMismatch { .. }), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_diff_id_is_rejected() {
    let registry = TestRegistry::start(Auth::Anonymous).await;
    let mut image = standard_image(Flavor::Oci, Comp::Gzip);
    // The config claims a different uncompressed digest for layer 0.
    let mut config: serde_json::Value = serde_json::from_slice(&image.config).unwrap();
    config["rootfs"]["diff_ids"][0] =
        serde_json::json!(berth_image::Digest::of(b"something else").to_string());
    image.config = serde_json::to_vec(&config).unwrap();
    image.push(&registry, "demo/diffid", Some("1"));
    let dir = tempfile::tempdir().unwrap();
    let service = service(dir.path());
    let err = service
        .ensure(
            &registry.reference("demo/diffid:1"),
            PullPolicy::Always,
            None,
        )
        .await
        .unwrap_err();
    assert!(matches!(err, ImageError::InvalidLayer { .. }), "{err}");
    let bad = &image.layers[0].2;
    assert!(!service.store().has_layer(bad));
    let prefix = format!(".tmp-{}", &bad.hex()[..12]);
    let names: Vec<String> = std::fs::read_dir(service.store().root().join("layers"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        !names.iter().any(|n| n.starts_with(&prefix)),
        "temporary layer directory left behind: {names:?}"
    );
    assert!(
        service
            .store()
            .image(&registry.reference("demo/diffid:1"))
            .unwrap()
            .is_none()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_image_and_tag_are_not_found() {
    let registry = TestRegistry::start(Auth::Anonymous).await;
    standard_image(Flavor::Oci, Comp::Gzip).push(&registry, "demo/app", Some("1"));
    let dir = tempfile::tempdir().unwrap();
    let service = service(dir.path());
    for r in ["demo/missing:1", "demo/app:2"] {
        let err = service
            .ensure(&registry.reference(r), PullPolicy::Default, None)
            .await
            .unwrap_err();
        assert!(matches!(err, ImageError::NotFound { .. }), "{r}: {err}");
        assert!(
            err.cannot_pull_reason().ends_with(": not found"),
            "{}",
            err.cannot_pull_reason()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unsupported_media_types() {
    let registry = TestRegistry::start(Auth::Anonymous).await;
    registry.put_manifest(
        "demo/old",
        Some("1"),
        "application/vnd.docker.distribution.manifest.v1+prettyjws",
        r#"{"schemaVersion":1,"mediaType":"application/vnd.docker.distribution.manifest.v1+prettyjws","fsLayers":[]}"#,
    );
    let chart = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": media_type::OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.cncf.helm.config.v1+json", "digest": berth_image::Digest::of(b"{}").to_string(), "size": 2},
        "layers": []
    });
    registry.put_manifest(
        "demo/chart",
        Some("1"),
        media_type::OCI_MANIFEST,
        serde_json::to_vec(&chart).unwrap(),
    );
    let dir = tempfile::tempdir().unwrap();
    let service = service(dir.path());
    for r in ["demo/old:1", "demo/chart:1"] {
        let err = service
            .ensure(&registry.reference(r), PullPolicy::Always, None)
            .await
            .unwrap_err();
        assert_eq!(
            err.kind(),
            PullErrorKind::UnsupportedMediaType,
            "{r}: {err}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_pulls_of_one_image_download_once() {
    let registry = TestRegistry::start(Auth::Anonymous).await;
    let image = standard_image(Flavor::Oci, Comp::Gzip);
    image.push(&registry, "demo/shared", Some("1"));
    // Another image sharing the base layer, pulled at the same time.
    let (base, _) = standard_layers();
    let sibling = TestImage::new(
        Flavor::Oci,
        "amd64",
        vec![
            (Comp::Gzip, base),
            (Comp::Gzip, Layer::new().file("sibling", b"s", 0o644).tar()),
        ],
    );
    sibling.push(&registry, "demo/sibling", Some("1"));
    registry.set_blob_delay(Duration::from_millis(200));

    let dir = tempfile::tempdir().unwrap();
    let service = service(dir.path());
    let reference = registry.reference("demo/shared:1");
    let mut tasks = Vec::new();
    for _ in 0..4 {
        let service = service.clone();
        let reference = reference.clone();
        tasks.push(tokio::spawn(async move {
            service.ensure(&reference, PullPolicy::Always, None).await
        }));
    }
    let sibling_task = {
        let service = service.clone();
        let reference = registry.reference("demo/sibling:1");
        tokio::spawn(async move { service.ensure(&reference, PullPolicy::Always, None).await })
    };
    let mut results = Vec::new();
    for t in tasks {
        results.push(t.await.unwrap().unwrap());
    }
    sibling_task.await.unwrap().unwrap();
    assert!(results.windows(2).all(|w| w[0] == w[1]));
    assert_eq!(
        registry.manifest_gets(),
        2,
        "one manifest request per image"
    );
    assert_eq!(registry.blob_gets(&image.config_digest()), 1);
    for (_, blob, _) in &image.layers {
        assert_eq!(
            registry.blob_gets(&berth_image::Digest::of(blob)),
            1,
            "each layer downloaded once"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pull_policies_against_a_live_and_a_dead_registry() {
    let registry = TestRegistry::start(Auth::Anonymous).await;
    let image = standard_image(Flavor::Oci, Comp::Gzip);
    image.push(&registry, "demo/policy", Some("1"));
    let reference = registry.reference("demo/policy:1");
    let dir = tempfile::tempdir().unwrap();
    let service = service(dir.path());

    // Nothing cached: every policy pulls.
    let first = service
        .ensure(&reference, PullPolicy::Once, None)
        .await
        .unwrap();
    assert!(first.pulled);
    let gets = registry.manifest_gets();

    // Cached by a pull: once and prefer-cached stay off the network.
    for policy in [PullPolicy::Once, PullPolicy::PreferCached] {
        let image = service.ensure(&reference, policy, None).await.unwrap();
        assert!(!image.pulled, "{policy}");
        assert_eq!(image.layer_dirs, first.layer_dirs);
    }
    assert_eq!(registry.manifest_gets(), gets);

    // default and always ask the registry again (blobs are not re-fetched).
    let blob_gets = registry.total_blob_gets();
    for policy in [PullPolicy::Default, PullPolicy::Always] {
        assert!(
            service
                .ensure(&reference, policy, None)
                .await
                .unwrap()
                .pulled,
            "{policy}"
        );
    }
    assert_eq!(registry.manifest_gets(), gets + 2);
    assert_eq!(registry.total_blob_gets(), blob_gets);

    // Registry gone: default falls back to the cache, always fails.
    let missing = registry.reference("demo/never-pulled:1");
    registry.stop().await;
    let fallback = service
        .ensure(&reference, PullPolicy::Default, None)
        .await
        .unwrap();
    assert!(!fallback.pulled);
    assert_eq!(fallback.layer_dirs, first.layer_dirs);
    let err = service
        .ensure(&reference, PullPolicy::Always, None)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), PullErrorKind::Network, "{err}");
    assert!(
        service
            .ensure(&reference, PullPolicy::PreferCached, None)
            .await
            .is_ok()
    );
    let err = service
        .ensure(&missing, PullPolicy::Default, None)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), PullErrorKind::Network, "{err}");
}
