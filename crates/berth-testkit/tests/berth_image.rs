//! The testkit against the real reference registry and Berth's own image
//! client: whatever the testkit pushes or archives, berth-image must pull
//! or load, and the result must be a runnable busybox root filesystem.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use berth_image::{
    ContentStore, Credentials, ImageError, ImageReference, ImageService, PullErrorKind, PullPolicy,
    PulledImage, RegistryClient, RegistryConfig,
};
use berth_testkit::{
    Error, ImageBuilder, LayerCompression, ManifestFormat, PushedImage, Registry, busybox_image,
};
use sha2::Digest as _;

struct Puller {
    service: ImageService,
    _dir: tempfile::TempDir,
}

impl Puller {
    fn new() -> Puller {
        let dir = tempfile::tempdir().unwrap();
        let service = ImageService::new(
            ContentStore::open(dir.path().join("store")).unwrap(),
            RegistryClient::new(RegistryConfig::default()).unwrap(),
        );
        Puller { service, _dir: dir }
    }

    async fn pull(
        &self,
        reference: &str,
        credentials: Option<&Credentials>,
    ) -> Result<PulledImage, ImageError> {
        let reference = ImageReference::parse(reference).unwrap();
        self.service
            .ensure(&reference, PullPolicy::Always, credentials)
            .await
    }
}

/// The busybox base layer is complete and self-contained.
fn assert_busybox_rootfs(layer: &Path) {
    let busybox = std::fs::metadata(layer.join("bin/busybox")).unwrap();
    assert!(busybox.is_file());
    assert_eq!(busybox.mode() & 0o7777, 0o755);
    for applet in ["sh", "httpd", "sleep", "wget", "nc", "seq", "["] {
        let link = layer.join("bin").join(applet);
        assert_eq!(
            std::fs::read_link(&link).unwrap(),
            Path::new("busybox"),
            "{applet}"
        );
    }
    let passwd = std::fs::read_to_string(layer.join("etc/passwd")).unwrap();
    assert!(passwd.contains("app:x:1000:1000:"), "{passwd}");
    assert!(passwd.contains("nobody:x:65534:65534:"), "{passwd}");
    let tmp = std::fs::metadata(layer.join("tmp")).unwrap();
    assert_eq!(tmp.permissions().mode() & 0o7777, 0o1777);
    for dir in ["proc", "sys", "dev"] {
        assert!(layer.join(dir).is_dir(), "{dir}");
    }
    assert!(
        !layer.join("WRONG-PLATFORM").exists(),
        "the arm64 decoy was pulled"
    );
}

fn hex(digest: &str) -> &str {
    digest.strip_prefix("sha256:").unwrap()
}

async fn round_trip(format: ManifestFormat, compression: LayerCompression, index: bool) {
    let registry = Registry::start().unwrap();
    let pushed = busybox_image()
        .format(format)
        .compression(compression)
        .with_index(index)
        .push(registry.host(), "demo/busybox", "1", None)
        .unwrap();
    assert_eq!(
        pushed.reference,
        format!("{}/demo/busybox:1", registry.host())
    );
    assert_eq!(pushed.index_digest.is_some(), index);

    let puller = Puller::new();
    let pulled = puller
        .pull(&pushed.reference, None)
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", registry.log()));
    assert_eq!(pulled.manifest_digest.to_string(), pushed.manifest_digest);
    assert_eq!(pulled.config_digest.to_string(), pushed.config_digest);
    assert_eq!(pulled.config.cmd, ["sh"]);
    assert!(pulled.config.entrypoint.is_empty());
    assert_eq!(pulled.config.architecture, "amd64");
    assert_eq!(pulled.layer_dirs.len(), 1);
    assert_eq!(
        pulled.layer_dirs[0].file_name().unwrap().to_str().unwrap(),
        hex(&pushed.diff_ids[0])
    );
    assert_busybox_rootfs(&pulled.layer_dirs[0]);

    // Pinned by digest (of the index when there is one), the same image.
    let by_digest = puller.pull(&pushed.digest_reference(), None).await.unwrap();
    assert_eq!(by_digest.manifest_digest, pulled.manifest_digest);
}

#[tokio::test]
async fn oci_gzip() {
    round_trip(ManifestFormat::Oci, LayerCompression::Gzip, false).await;
}

#[tokio::test]
async fn oci_uncompressed() {
    round_trip(ManifestFormat::Oci, LayerCompression::Uncompressed, false).await;
}

#[tokio::test]
async fn oci_index_gzip() {
    round_trip(ManifestFormat::Oci, LayerCompression::Gzip, true).await;
}

#[tokio::test]
async fn oci_index_uncompressed() {
    round_trip(ManifestFormat::Oci, LayerCompression::Uncompressed, true).await;
}

#[tokio::test]
async fn docker_gzip() {
    round_trip(ManifestFormat::Docker, LayerCompression::Gzip, false).await;
}

// containerd, BuildKit and crane label uncompressed Docker layers
// "application/vnd.docker.image.rootfs.diff.tar"; berth-image's
// media_type::is_layer does not list it yet and rejects the manifest.
#[tokio::test]
async fn docker_uncompressed() {
    round_trip(
        ManifestFormat::Docker,
        LayerCompression::Uncompressed,
        false,
    )
    .await;
}

#[tokio::test]
async fn docker_manifest_list_gzip() {
    round_trip(ManifestFormat::Docker, LayerCompression::Gzip, true).await;
}

// containerd, BuildKit and crane label uncompressed Docker layers
// "application/vnd.docker.image.rootfs.diff.tar"; berth-image's
// media_type::is_layer does not list it yet and rejects the manifest.
#[tokio::test]
async fn docker_manifest_list_uncompressed() {
    round_trip(ManifestFormat::Docker, LayerCompression::Uncompressed, true).await;
}

#[tokio::test]
async fn runtime_config_and_added_files_arrive() {
    let registry = Registry::start().unwrap();
    let pushed = ImageBuilder::new()
        .entrypoint(["/bin/sh", "-c"])
        .cmd(["exec httpd -f -p 8080 -h /srv/www"])
        .env("MODE", "test")
        .working_dir("/srv")
        .user("app")
        .expose("8080")
        .expose("53/udp")
        .file("/srv/www/index.html", "hello\n", 0o644)
        .file("/srv/run.sh", "#!/bin/sh\necho hi\n", 0o750)
        .push(registry.host(), "demo/web", "v1", None)
        .unwrap();
    assert_eq!(pushed.layer_digests.len(), 2);

    let puller = Puller::new();
    let pulled = puller.pull(&pushed.reference, None).await.unwrap();
    let config = &pulled.config;
    assert_eq!(config.entrypoint, ["/bin/sh", "-c"]);
    assert_eq!(config.cmd, ["exec httpd -f -p 8080 -h /srv/www"]);
    assert_eq!(
        config.env,
        [
            "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "MODE=test"
        ]
    );
    assert_eq!(config.working_dir, "/srv");
    assert_eq!(config.user, "app");
    assert_eq!(config.exposed_ports, ["53/udp", "8080/tcp"]);

    assert_busybox_rootfs(&pulled.layer_dirs[0]);
    let top = &pulled.layer_dirs[1];
    assert_eq!(
        std::fs::read_to_string(top.join("srv/www/index.html")).unwrap(),
        "hello\n"
    );
    let script = std::fs::metadata(top.join("srv/run.sh")).unwrap();
    assert_eq!(script.mode() & 0o7777, 0o750);
    assert_eq!(script.mtime(), 1_704_067_200, "fixed mtime");
    assert!(
        !top.join("bin").exists(),
        "the top layer holds only the added files"
    );
}

/// The image is self-contained: busybox runs from it as the root, finds
/// its applets and the users in its own /etc.
#[test]
fn busybox_runs_chrooted_into_the_layer() {
    let root_owned = std::fs::metadata("/proc/self").unwrap().uid() == 0;
    assert!(root_owned, "this test chroots and needs root");
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("image.tar");
    busybox_image()
        .write_docker_save_archive(&archive, "demo/busybox:1")
        .unwrap();
    // The docker save layout keeps the layer as a plain tar we can unpack.
    let rootfs = dir.path().join("rootfs");
    unpack_single_layer(&archive, &rootfs);
    let output = std::process::Command::new("/usr/sbin/chroot")
        .arg(&rootfs)
        .args([
            "/bin/sh",
            "-c",
            "id app; id -u nobody; ls -d /tmp; seq 3 | tail -n 1",
        ])
        .env_clear()
        .env("PATH", "/bin")
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&output.stdout),
        "uid=1000(app) gid=1000(app) groups=1000(app)\n65534\n/tmp\n3\n"
    );
}

fn unpack_single_layer(archive: &Path, dest: &Path) {
    let mut outer = tar::Archive::new(std::fs::File::open(archive).unwrap());
    for entry in outer.entries().unwrap() {
        let entry = entry.unwrap();
        if entry.path().unwrap().ends_with("layer.tar") {
            std::fs::create_dir_all(dest).unwrap();
            tar::Archive::new(entry).unpack(dest).unwrap();
            return;
        }
    }
    panic!("no layer.tar in {}", archive.display());
}

#[tokio::test]
async fn basic_auth_is_required_for_push_and_pull() {
    let registry = Registry::start_with_basic_auth("tester", "s3cret").unwrap();
    let image = busybox_image();

    match image.push(registry.host(), "private/busybox", "1", None) {
        Err(Error::Http { status: 401, .. }) => {}
        other => panic!("anonymous push: {other:?}"),
    }
    match image.push(
        registry.host(),
        "private/busybox",
        "1",
        Some(("tester", "wrong")),
    ) {
        Err(Error::Http { status: 401, .. }) => {}
        other => panic!("push with a wrong password: {other:?}"),
    }
    let pushed = image
        .push(
            registry.host(),
            "private/busybox",
            "1",
            Some(("tester", "s3cret")),
        )
        .unwrap();

    let puller = Puller::new();
    let anonymous = puller.pull(&pushed.reference, None).await.unwrap_err();
    assert_eq!(anonymous.kind(), PullErrorKind::Unauthorized, "{anonymous}");
    let wrong = Credentials::new("tester", "wrong");
    let error = puller
        .pull(&pushed.reference, Some(&wrong))
        .await
        .unwrap_err();
    assert_eq!(error.kind(), PullErrorKind::Unauthorized, "{error}");

    let right = Credentials::new("tester", "s3cret");
    let pulled = puller.pull(&pushed.reference, Some(&right)).await.unwrap();
    assert_eq!(pulled.manifest_digest.to_string(), pushed.manifest_digest);
    assert_busybox_rootfs(&pulled.layer_dirs[0]);
}

#[tokio::test]
async fn a_corrupted_blob_fails_the_pull_with_a_digest_mismatch() {
    let registry = Registry::start().unwrap();
    let pushed = busybox_image()
        .push(registry.host(), "demo/busybox", "1", None)
        .unwrap();
    let layer = &pushed.layer_digests[0];
    registry.corrupt_blob(layer).unwrap();
    let stored = std::fs::read(blob_data(&registry, layer)).unwrap();
    let corrupted = format!("sha256:{}", hex::encode(sha2::Sha256::digest(&stored)));
    assert_ne!(&corrupted, layer);

    let puller = Puller::new();
    let error = puller.pull(&pushed.reference, None).await.unwrap_err();
    assert_eq!(error.kind(), PullErrorKind::DigestMismatch, "{error}");
    match &error {
        // The registry served exactly the corrupted bytes, not a cached
        // copy of the original.
        ImageError::DigestMismatch {
            expected, actual, ..
        } => {
            assert_eq!(&expected.to_string(), layer);
            assert_eq!(actual.to_string(), corrupted);
        }
        other => panic!("{other:?}"),
    }
    let digest: berth_image::Digest = layer.parse().unwrap();
    assert!(
        !puller.service.store().has_blob(&digest),
        "a blob that failed verification must not enter the store"
    );
}

fn blob_data(registry: &Registry, digest: &str) -> PathBuf {
    let hex = hex(digest);
    registry.storage_dir().join(format!(
        "docker/registry/v2/blobs/sha256/{}/{hex}/data",
        &hex[..2]
    ))
}

#[test]
fn corrupt_blob_refuses_what_is_not_a_stored_digest() {
    let registry = Registry::start().unwrap();
    assert!(matches!(
        registry.corrupt_blob("sha256:abc"),
        Err(Error::Invalid(_))
    ));
    assert!(matches!(
        registry.corrupt_blob(&format!("sha256:{}", "0".repeat(64))),
        Err(Error::Io { .. })
    ));
}

#[tokio::test]
async fn oci_archive_loads_without_a_registry() {
    for index in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        let archive = dir.path().join("busybox-oci.tar");
        let image = busybox_image().with_index(index);
        image.write_oci_archive(&archive).unwrap();
        // The same definition pushed gives the same digests as archived.
        let registry = Registry::start().unwrap();
        let pushed = image
            .push(registry.host(), "demo/busybox", "1", None)
            .unwrap();
        drop(registry);

        let puller = Puller::new();
        let reference = ImageReference::parse("demo/busybox:1").unwrap();
        let loaded = puller
            .service
            .load(&archive, Some(&reference))
            .await
            .unwrap();
        assert_eq!(loaded.len(), 1);
        assert_eq!(
            loaded[0].manifest_digest.to_string(),
            pushed.manifest_digest
        );
        assert_eq!(loaded[0].config_digest.to_string(), pushed.config_digest);

        let image = puller
            .service
            .ensure(&reference, PullPolicy::PreferCached, None)
            .await
            .unwrap();
        assert!(!image.pulled);
        assert_eq!(image.config.cmd, ["sh"]);
        assert_busybox_rootfs(&image.layer_dirs[0]);
    }
}

#[tokio::test]
async fn docker_save_archive_loads_under_its_name() {
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("busybox-docker.tar");
    let image = busybox_image().file("/etc/motd", "hi\n", 0o644);
    image
        .write_docker_save_archive(&archive, "demo/busybox:1")
        .unwrap();

    let puller = Puller::new();
    let loaded = puller.service.load(&archive, None).await.unwrap();
    assert_eq!(loaded.len(), 1);
    let reference = ImageReference::parse("demo/busybox:1").unwrap();
    assert_eq!(loaded[0].references, std::slice::from_ref(&reference));
    let pulled = puller
        .service
        .ensure(&reference, PullPolicy::PreferCached, None)
        .await
        .unwrap();
    assert!(!pulled.pulled);
    assert_eq!(pulled.layer_dirs.len(), 2);
    assert_busybox_rootfs(&pulled.layer_dirs[0]);
    assert_eq!(
        std::fs::read_to_string(pulled.layer_dirs[1].join("etc/motd")).unwrap(),
        "hi\n"
    );
}

#[tokio::test]
async fn registries_in_parallel_are_independent() {
    let registries: Vec<Registry> = std::thread::scope(|s| {
        let starting: Vec<_> = (0..4).map(|_| s.spawn(Registry::start)).collect();
        starting
            .into_iter()
            .map(|t| t.join().unwrap().unwrap())
            .collect()
    });
    let mut hosts: Vec<&str> = registries.iter().map(Registry::host).collect();
    hosts.sort();
    hosts.dedup();
    assert_eq!(hosts.len(), 4);

    // Same repository and tag, different content in each.
    let pushed: Vec<PushedImage> = registries
        .iter()
        .enumerate()
        .map(|(i, r)| {
            busybox_image()
                .env("REGISTRY", &i.to_string())
                .push(r.host(), "demo/busybox", "1", None)
                .unwrap()
        })
        .collect();
    let puller = Puller::new();
    for (registry, image) in registries.iter().zip(&pushed) {
        let pulled = puller.pull(&image.reference, None).await.unwrap();
        assert_eq!(pulled.manifest_digest.to_string(), image.manifest_digest);
        assert_eq!(
            std::fs::read_dir(
                registry
                    .storage_dir()
                    .join("docker/registry/v2/repositories")
            )
            .unwrap()
            .count(),
            1
        );
    }

    // Dropping one stops it and removes its storage; the others keep
    // serving.
    let mut registries = registries;
    let gone = registries.remove(0);
    let (host, storage) = (gone.host().to_owned(), gone.storage_dir().to_owned());
    drop(gone);
    assert!(!storage.exists());
    assert!(std::net::TcpStream::connect(&host).is_err());
    let again = Puller::new()
        .pull(&pushed[1].reference, None)
        .await
        .unwrap();
    assert_eq!(again.manifest_digest.to_string(), pushed[1].manifest_digest);
}

/// The second push finds every blob present (HEAD 200) and uploads only
/// the manifest under the new tag.
#[tokio::test]
async fn a_second_tag_of_the_same_image_shares_its_digests() {
    let registry = Registry::start().unwrap();
    let image = busybox_image();
    let first = image.push(registry.host(), "demo/a", "1", None).unwrap();
    let second = image.push(registry.host(), "demo/a", "2", None).unwrap();
    assert_eq!(first.manifest_digest, second.manifest_digest);
    let pulled = Puller::new().pull(&second.reference, None).await.unwrap();
    assert_eq!(pulled.manifest_digest.to_string(), first.manifest_digest);
}
