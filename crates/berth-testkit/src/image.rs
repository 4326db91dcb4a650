//! Small, deterministic images built from Debian's static busybox, and
//! an OCI Distribution push client for them.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::Path;
use std::sync::OnceLock;

use base64::Engine as _;
use serde_json::{Value, json};

use crate::tar_writer::{self, CREATED, Entry};
use crate::{Error, Result, http, sha256_digest};

/// Debian package `busybox-static`: a static binary, so the image needs no
/// libc.
const BUSYBOX: &str = "/bin/busybox";
const DEFAULT_PATH: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh
app:x:1000:1000:app:/home/app:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
";
const GROUP: &str = "root:x:0:
app:x:1000:
nobody:x:65534:
";
const DECOY_MARKER: &str = "WRONG-PLATFORM";

mod media_type {
    pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
    pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
    pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
    pub const OCI_LAYER: &str = "application/vnd.oci.image.layer.v1.tar";
    pub const OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
    pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
    pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
    pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
    /// Not in Docker's written spec, but what containerd, BuildKit and
    /// crane use for uncompressed Docker layers.
    pub const DOCKER_LAYER: &str = "application/vnd.docker.image.rootfs.diff.tar";
    pub const DOCKER_LAYER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum LayerCompression {
    #[default]
    Gzip,
    Uncompressed,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum ManifestFormat {
    /// OCI image manifest (and OCI image index when wrapped).
    #[default]
    Oci,
    /// Docker image manifest v2 schema 2 (and Docker manifest list).
    Docker,
}

/// An image definition: the busybox base layer, optionally a second layer
/// with the added files, and the runtime config. Building is
/// deterministic: the same definition always has the same digests.
#[derive(Debug, Clone)]
pub struct ImageBuilder {
    /// Path without leading `/` → (mode, contents); later adds win.
    files: BTreeMap<String, (u32, Vec<u8>)>,
    entrypoint: Option<Vec<String>>,
    cmd: Option<Vec<String>>,
    env: Vec<String>,
    working_dir: Option<String>,
    user: Option<String>,
    exposed_ports: BTreeSet<String>,
    compression: LayerCompression,
    format: ManifestFormat,
    index: bool,
}

/// What a push stored, with digests as `sha256:<hex>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushedImage {
    /// `127.0.0.1:PORT/<repository>:<tag>`.
    pub reference: String,
    /// The linux/amd64 image manifest: what a pull resolves to, also when
    /// the tag names an index.
    pub manifest_digest: String,
    /// The index the tag points at, if the image was wrapped in one.
    pub index_digest: Option<String>,
    pub config_digest: String,
    /// Layer blobs as pushed (compressed or not), bottom layer first.
    pub layer_digests: Vec<String>,
    /// Digests of the uncompressed layers (the config's `diff_ids`),
    /// which name unpacked layer directories.
    pub diff_ids: Vec<String>,
}

impl PushedImage {
    /// `127.0.0.1:PORT/<repository>@<digest>`, pinned to what the tag
    /// pointed at (the index when there is one).
    pub fn digest_reference(&self) -> String {
        let name = match self.reference.rsplit_once(':') {
            // The last colon belongs to the tag unless it is the port's.
            Some((name, tag)) if !tag.contains('/') => name,
            _ => &self.reference,
        };
        let digest = self.index_digest.as_ref().unwrap_or(&self.manifest_digest);
        format!("{name}@{digest}")
    }
}

/// A busybox image whose default command is an interactive-less `sh`.
pub fn busybox_image() -> ImageBuilder {
    ImageBuilder::new().cmd(["sh"])
}

impl Default for ImageBuilder {
    fn default() -> Self {
        ImageBuilder::new()
    }
}

impl ImageBuilder {
    /// The busybox base with no `Cmd` or `Entrypoint`, `Env` holding only a
    /// default `PATH`, gzip layers, an OCI manifest and no index.
    pub fn new() -> ImageBuilder {
        ImageBuilder {
            files: BTreeMap::new(),
            entrypoint: None,
            cmd: None,
            env: vec![DEFAULT_PATH.to_owned()],
            working_dir: None,
            user: None,
            exposed_ports: BTreeSet::new(),
            compression: LayerCompression::default(),
            format: ManifestFormat::default(),
            index: false,
        }
    }

    /// Adds a regular file owned by root, in a layer above the base;
    /// missing parent directories are created (0755). Panics on a path
    /// with `..` or an empty one: that is a bug in the test.
    pub fn file(mut self, path: &str, contents: impl Into<Vec<u8>>, mode: u32) -> ImageBuilder {
        let clean = path.trim_start_matches('/');
        assert!(
            !clean.is_empty()
                && !clean.ends_with('/')
                && clean
                    .split('/')
                    .all(|c| !c.is_empty() && c != "." && c != ".."),
            "ImageBuilder::file: bad path {path:?}"
        );
        self.files.insert(clean.to_owned(), (mode, contents.into()));
        self
    }

    pub fn entrypoint<I, S>(mut self, entrypoint: I) -> ImageBuilder
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.entrypoint = Some(entrypoint.into_iter().map(Into::into).collect());
        self
    }

    pub fn cmd<I, S>(mut self, cmd: I) -> ImageBuilder
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.cmd = Some(cmd.into_iter().map(Into::into).collect());
        self
    }

    /// Sets `name=value` in the config's `Env`, replacing an earlier value
    /// (including the default `PATH`).
    pub fn env(mut self, name: &str, value: &str) -> ImageBuilder {
        let prefix = format!("{name}=");
        let entry = format!("{name}={value}");
        match self.env.iter_mut().find(|e| e.starts_with(&prefix)) {
            Some(existing) => *existing = entry,
            None => self.env.push(entry),
        }
        self
    }

    pub fn working_dir(mut self, dir: &str) -> ImageBuilder {
        self.working_dir = Some(dir.to_owned());
        self
    }

    /// `name`, `uid`, `uid:gid` or `name:group`, as Docker's `USER`.
    pub fn user(mut self, user: &str) -> ImageBuilder {
        self.user = Some(user.to_owned());
        self
    }

    /// `"8080/tcp"`, `"53/udp"`; a bare `"8080"` means tcp, as in Docker.
    pub fn expose(mut self, port: &str) -> ImageBuilder {
        let port = if port.contains('/') {
            port.to_owned()
        } else {
            format!("{port}/tcp")
        };
        self.exposed_ports.insert(port);
        self
    }

    pub fn compression(mut self, compression: LayerCompression) -> ImageBuilder {
        self.compression = compression;
        self
    }

    pub fn format(mut self, format: ManifestFormat) -> ImageBuilder {
        self.format = format;
        self
    }

    /// Wraps the image in an OCI index (Docker manifest list for
    /// [`ManifestFormat::Docker`]) whose first entry is a linux/arm64 decoy
    /// — a different image holding only `/WRONG-PLATFORM` — and whose
    /// second is the real linux/amd64 image, so a client that does not
    /// select by platform gets an image without busybox.
    pub fn with_index(mut self, index: bool) -> ImageBuilder {
        self.index = index;
        self
    }

    /// Pushes the image (and, with an index, the decoy and the index) to
    /// the registry at `registry_host` (`127.0.0.1:PORT`) over plain HTTP,
    /// under `repository:tag`. Blobs the registry already has are skipped.
    /// `credentials` are sent as HTTP Basic auth on every request.
    pub fn push(
        &self,
        registry_host: &str,
        repository: &str,
        tag: &str,
        credentials: Option<(&str, &str)>,
    ) -> Result<PushedImage> {
        let built = self.build()?;
        let pusher = Pusher {
            host: registry_host,
            repository,
            authorization: credentials.map(|(user, password)| {
                let raw = format!("{user}:{password}");
                format!(
                    "Basic {}",
                    base64::engine::general_purpose::STANDARD.encode(raw)
                )
            }),
        };
        for image in built.platform_images() {
            for blob in image.layers.iter().chain([&image.config]) {
                pusher.push_blob(blob)?;
            }
        }
        match &built.index {
            Some(index) => {
                // The registry refuses an index whose manifests it lacks.
                for image in built.platform_images() {
                    pusher.put_manifest(&image.manifest.digest, &image.manifest)?;
                }
                pusher.put_manifest(tag, index)?;
            }
            None => pusher.put_manifest(tag, &built.image.manifest)?,
        }
        Ok(PushedImage {
            reference: format!("{registry_host}/{repository}:{tag}"),
            manifest_digest: built.image.manifest.digest.clone(),
            index_digest: built.index.as_ref().map(|i| i.digest.clone()),
            config_digest: built.image.config.digest.clone(),
            layer_digests: built
                .image
                .layers
                .iter()
                .map(|l| l.digest.clone())
                .collect(),
            diff_ids: built.image.diff_ids.clone(),
        })
    }

    /// Writes an OCI image layout tarball (`oci-layout`, `index.json`,
    /// `blobs/sha256/…`) holding the image (behind its index if wrapped).
    /// It carries no name: give one when loading it.
    pub fn write_oci_archive(&self, path: &Path) -> Result<()> {
        crate::archive::write_oci(&self.build()?, path)
    }

    /// Writes a classic `docker save` tarball (`manifest.json`, the config
    /// as `<hex>.json`, each layer uncompressed as `<diff id hex>/layer.tar`)
    /// naming the image `repo_tag` (e.g. `demo/busybox:1`). The index
    /// option does not apply: `docker save` keeps one platform.
    pub fn write_docker_save_archive(&self, path: &Path, repo_tag: &str) -> Result<()> {
        crate::archive::write_docker_save(&self.build()?, path, repo_tag)
    }

    pub(crate) fn build(&self) -> Result<Built> {
        let mut layers = vec![base_layer(self.compression)?.clone()];
        if !self.files.is_empty() {
            let tar = tar_writer::write(&self.files_layer());
            layers.push(Layer::new(tar, self.compression)?);
        }
        let mut config = serde_json::Map::new();
        if let Some(user) = &self.user {
            config.insert("User".into(), json!(user));
        }
        if !self.exposed_ports.is_empty() {
            let ports: serde_json::Map<String, Value> = self
                .exposed_ports
                .iter()
                .map(|p| (p.clone(), json!({})))
                .collect();
            config.insert("ExposedPorts".into(), Value::Object(ports));
        }
        config.insert("Env".into(), json!(self.env));
        if let Some(entrypoint) = &self.entrypoint {
            config.insert("Entrypoint".into(), json!(entrypoint));
        }
        if let Some(cmd) = &self.cmd {
            config.insert("Cmd".into(), json!(cmd));
        }
        if let Some(dir) = &self.working_dir {
            config.insert("WorkingDir".into(), json!(dir));
        }
        let mut history = vec!["berth-testkit: busybox-static base"];
        if !self.files.is_empty() {
            history.push("berth-testkit: added files");
        }
        let image =
            self.platform_image(("amd64", None), Value::Object(config), layers, &history)?;

        if !self.index {
            return Ok(Built {
                image,
                decoy: None,
                index: None,
            });
        }
        let decoy_layer = Layer::new(
            tar_writer::write(&[Entry::file(
                DECOY_MARKER,
                0o644,
                "this is the linux/arm64 entry of the index: platform selection picked the wrong manifest\n",
            )]),
            self.compression,
        )?;
        let decoy = self.platform_image(
            ("arm64", Some("v8")),
            json!({"Env": [DEFAULT_PATH], "Cmd": [format!("/{DECOY_MARKER}")]}),
            vec![decoy_layer],
            &["berth-testkit: linux/arm64 decoy"],
        )?;
        let index_type = match self.format {
            ManifestFormat::Oci => media_type::OCI_INDEX,
            ManifestFormat::Docker => media_type::DOCKER_LIST,
        };
        let entry = |image: &PlatformImage| {
            let mut platform = json!({"architecture": image.architecture, "os": "linux"});
            if let Some(variant) = image.variant {
                platform["variant"] = json!(variant);
            }
            json!({
                "mediaType": image.manifest.media_type,
                "digest": image.manifest.digest,
                "size": image.manifest.bytes.len(),
                "platform": platform,
            })
        };
        let index = json!({
            "schemaVersion": 2,
            "mediaType": index_type,
            "manifests": [entry(&decoy), entry(&image)],
        });
        Ok(Built {
            image,
            decoy: Some(decoy),
            index: Some(Blob::new(index_type, to_json(&index))),
        })
    }

    /// The added files and the directories above them, parents first.
    fn files_layer(&self) -> Vec<Entry> {
        let mut dirs = BTreeSet::new();
        for path in self.files.keys() {
            let mut parent = path.as_str();
            while let Some((dir, _)) = parent.rsplit_once('/') {
                dirs.insert(dir.to_owned());
                parent = dir;
            }
        }
        let mut entries: BTreeMap<&str, Entry> = BTreeMap::new();
        for dir in &dirs {
            let mode = if dir == "tmp" { 0o1777 } else { 0o755 };
            entries.insert(dir, Entry::dir(dir, mode));
        }
        for (path, (mode, data)) in &self.files {
            entries.insert(path, Entry::file(path, *mode, data.clone()));
        }
        // Sorted by path, so every directory precedes its contents.
        entries.into_values().collect()
    }

    fn platform_image(
        &self,
        (architecture, variant): (&'static str, Option<&'static str>),
        runtime_config: Value,
        layers: Vec<Layer>,
        history: &[&str],
    ) -> Result<PlatformImage> {
        let (manifest_type, config_type, layer_type) = match (self.format, self.compression) {
            (ManifestFormat::Oci, LayerCompression::Gzip) => (
                media_type::OCI_MANIFEST,
                media_type::OCI_CONFIG,
                media_type::OCI_LAYER_GZIP,
            ),
            (ManifestFormat::Oci, LayerCompression::Uncompressed) => (
                media_type::OCI_MANIFEST,
                media_type::OCI_CONFIG,
                media_type::OCI_LAYER,
            ),
            (ManifestFormat::Docker, LayerCompression::Gzip) => (
                media_type::DOCKER_MANIFEST,
                media_type::DOCKER_CONFIG,
                media_type::DOCKER_LAYER_GZIP,
            ),
            (ManifestFormat::Docker, LayerCompression::Uncompressed) => (
                media_type::DOCKER_MANIFEST,
                media_type::DOCKER_CONFIG,
                media_type::DOCKER_LAYER,
            ),
        };
        let diff_ids: Vec<String> = layers.iter().map(|l| l.diff_id.clone()).collect();
        let (layer_tars, layers): (Vec<Vec<u8>>, Vec<Blob>) = layers
            .into_iter()
            .map(|l| {
                let blob = Blob {
                    media_type: layer_type,
                    digest: l.digest,
                    bytes: l.blob,
                };
                (l.tar, blob)
            })
            .unzip();
        let mut config = json!({
            "created": CREATED,
            "architecture": architecture,
            "os": "linux",
            "config": runtime_config,
            "rootfs": {"type": "layers", "diff_ids": diff_ids},
            "history": history
                .iter()
                .map(|h| json!({"created": CREATED, "created_by": h}))
                .collect::<Vec<_>>(),
        });
        if let Some(variant) = variant {
            config["variant"] = json!(variant);
        }
        let config = Blob::new(config_type, to_json(&config));
        let descriptor = |blob: &Blob| json!({"mediaType": blob.media_type, "digest": blob.digest, "size": blob.bytes.len()});
        let manifest = json!({
            "schemaVersion": 2,
            "mediaType": manifest_type,
            "config": descriptor(&config),
            "layers": layers.iter().map(descriptor).collect::<Vec<_>>(),
        });
        Ok(PlatformImage {
            architecture,
            variant,
            manifest: Blob::new(manifest_type, to_json(&manifest)),
            config,
            layers,
            layer_tars,
            diff_ids,
        })
    }
}

/// A document or layer with its digest.
#[derive(Debug, Clone)]
pub(crate) struct Blob {
    pub media_type: &'static str,
    pub digest: String,
    pub bytes: Vec<u8>,
}

impl Blob {
    fn new(media_type: &'static str, bytes: Vec<u8>) -> Blob {
        Blob {
            media_type,
            digest: sha256_digest(&bytes),
            bytes,
        }
    }
}

/// One platform's image: manifest, config, layers as stored and as tars.
#[derive(Debug)]
pub(crate) struct PlatformImage {
    architecture: &'static str,
    variant: Option<&'static str>,
    pub manifest: Blob,
    pub config: Blob,
    pub layers: Vec<Blob>,
    pub layer_tars: Vec<Vec<u8>>,
    pub diff_ids: Vec<String>,
}

#[derive(Debug)]
pub(crate) struct Built {
    /// The linux/amd64 image, the one tests run.
    pub image: PlatformImage,
    pub decoy: Option<PlatformImage>,
    pub index: Option<Blob>,
}

impl Built {
    pub fn platform_images(&self) -> impl Iterator<Item = &PlatformImage> {
        self.decoy.iter().chain([&self.image])
    }

    /// What a tag or an archive's index.json points at.
    pub fn top(&self) -> &Blob {
        self.index.as_ref().unwrap_or(&self.image.manifest)
    }
}

fn to_json(value: &Value) -> Vec<u8> {
    // Serializing a Value cannot fail (keys are strings).
    serde_json::to_vec(value).unwrap_or_else(|e| panic!("serialize JSON: {e}"))
}

/// A layer as a tar and as the blob that is pushed.
#[derive(Debug, Clone)]
struct Layer {
    tar: Vec<u8>,
    diff_id: String,
    blob: Vec<u8>,
    digest: String,
}

impl Layer {
    fn new(tar: Vec<u8>, compression: LayerCompression) -> Result<Layer> {
        let diff_id = sha256_digest(&tar);
        let (blob, digest) = match compression {
            LayerCompression::Uncompressed => (tar.clone(), diff_id.clone()),
            LayerCompression::Gzip => {
                let blob = gzip(&tar)?;
                let digest = sha256_digest(&blob);
                (blob, digest)
            }
        };
        Ok(Layer {
            tar,
            diff_id,
            blob,
            digest,
        })
    }
}

fn gzip(data: &[u8]) -> Result<Vec<u8>> {
    // Level 1: in an unoptimised test build, level 6 takes 2 s for the
    // busybox layer, level 1 under 1 s, for 14% more bytes on loopback.
    // GzEncoder writes mtime 0 and no file name: reproducible.
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder
        .write_all(data)
        .and_then(|()| encoder.finish())
        .map_err(|e| Error::io("gzip layer", e))
}

/// The busybox layer, built and compressed once per process: hashing and
/// compressing 2 MB is most of the cost of a build, and a test often
/// builds several images on the same base.
fn base_layer(compression: LayerCompression) -> Result<&'static Layer> {
    static PLAIN: OnceLock<Result<Layer, String>> = OnceLock::new();
    static GZIP: OnceLock<Result<Layer, String>> = OnceLock::new();
    let plain = || {
        PLAIN
            .get_or_init(|| {
                build_base_layer()
                    .and_then(|tar| Layer::new(tar, LayerCompression::Uncompressed))
                    .map_err(|e| e.to_string())
            })
            .as_ref()
            .map_err(|e| Error::Invalid(e.clone()))
    };
    match compression {
        LayerCompression::Uncompressed => plain(),
        LayerCompression::Gzip => GZIP
            .get_or_init(|| {
                plain()
                    .and_then(|plain| Layer::new(plain.tar.clone(), LayerCompression::Gzip))
                    .map_err(|e| e.to_string())
            })
            .as_ref()
            .map_err(|e| Error::Invalid(e.clone())),
    }
}

fn build_base_layer() -> Result<Vec<u8>> {
    let missing = |e: std::io::Error| {
        Error::io(
            format!("{BUSYBOX} (install the Debian package busybox-static; test.sh does)"),
            e,
        )
    };
    let busybox = std::fs::read(BUSYBOX).map_err(missing)?;
    let output = std::process::Command::new(BUSYBOX)
        .arg("--list")
        .output()
        .map_err(missing)?;
    if !output.status.success() {
        return Err(Error::Invalid(format!(
            "{BUSYBOX} --list failed: {}",
            String::from_utf8_lossy(&output.stderr)
        )));
    }
    let applets: BTreeSet<&str> = std::str::from_utf8(&output.stdout)
        .map_err(|e| Error::Invalid(format!("{BUSYBOX} --list: {e}")))?
        .lines()
        .map(str::trim)
        .filter(|a| !a.is_empty() && *a != "busybox" && !a.contains('/'))
        .collect();
    if !applets.contains("sh") {
        return Err(Error::Invalid(format!("{BUSYBOX} has no sh applet")));
    }

    let mut entries = vec![
        Entry::dir("bin", 0o755),
        Entry::file("bin/busybox", 0o755, busybox),
    ];
    for applet in &applets {
        // Relative, so the links also resolve in an unpacked layer
        // directory on the host, not only inside the container.
        entries.push(Entry::Symlink {
            path: format!("bin/{applet}"),
            target: "busybox".to_owned(),
        });
    }
    entries.extend([
        Entry::dir("dev", 0o755),
        Entry::dir("etc", 0o755),
        Entry::file("etc/group", 0o644, GROUP),
        Entry::file("etc/passwd", 0o644, PASSWD),
        Entry::dir("home", 0o755),
        Entry::Dir {
            path: "home/app".into(),
            mode: 0o755,
            uid: 1000,
            gid: 1000,
        },
        Entry::dir("proc", 0o755),
        Entry::dir("root", 0o700),
        Entry::dir("sys", 0o755),
        Entry::dir("tmp", 0o1777),
    ]);
    Ok(tar_writer::write(&entries))
}

/// The push half of the OCI Distribution spec, monolithic uploads only.
struct Pusher<'a> {
    host: &'a str,
    repository: &'a str,
    authorization: Option<String>,
}

impl Pusher<'_> {
    fn send(
        &self,
        method: &str,
        target: &str,
        content_type: Option<&str>,
        body: &[u8],
    ) -> Result<http::Response> {
        let mut headers = Vec::new();
        if let Some(auth) = &self.authorization {
            headers.push(("Authorization", auth.as_str()));
        }
        if let Some(content_type) = content_type {
            headers.push(("Content-Type", content_type));
        }
        http::send(self.host, method, target, &headers, body)
    }

    fn expect(
        &self,
        method: &str,
        target: &str,
        response: &http::Response,
        want: u16,
    ) -> Result<()> {
        if response.status == want {
            return Ok(());
        }
        let mut body = response.body_text();
        body.truncate(2048);
        Err(Error::Http {
            method: method.to_owned(),
            url: format!("http://{}{target}", self.host),
            status: response.status,
            body,
        })
    }

    fn push_blob(&self, blob: &Blob) -> Result<()> {
        let repo = self.repository;
        let head = format!("/v2/{repo}/blobs/{}", blob.digest);
        let response = self.send("HEAD", &head, None, &[])?;
        if response.status == 200 {
            return Ok(());
        }
        // 404 means "upload it"; anything else (401, ...) the POST reports.
        let start = format!("/v2/{repo}/blobs/uploads/");
        let response = self.send("POST", &start, None, &[])?;
        self.expect("POST", &start, &response, 202)?;
        let location = response
            .header("location")
            .ok_or_else(|| Error::Protocol(format!("POST {start}: 202 without Location")))?;
        let location = path_of(location);
        let separator = if location.contains('?') { '&' } else { '?' };
        let put = format!("{location}{separator}digest={}", blob.digest);
        let response = self.send("PUT", &put, Some("application/octet-stream"), &blob.bytes)?;
        self.expect("PUT", &put, &response, 201)
    }

    fn put_manifest(&self, reference: &str, manifest: &Blob) -> Result<()> {
        let target = format!("/v2/{}/manifests/{reference}", self.repository);
        let response = self.send("PUT", &target, Some(manifest.media_type), &manifest.bytes)?;
        self.expect("PUT", &target, &response, 201)?;
        match response.header("docker-content-digest") {
            Some(digest) if digest != manifest.digest => Err(Error::Protocol(format!(
                "PUT {target}: the registry stored {digest}, we sent {}",
                manifest.digest
            ))),
            _ => Ok(()),
        }
    }
}

/// The path and query of an upload `Location`, which the spec allows to
/// be absolute (`http://host/v2/...`) or a path.
fn path_of(location: &str) -> String {
    for scheme in ["http://", "https://"] {
        if let Some(rest) = location.strip_prefix(scheme) {
            return match rest.find('/') {
                Some(i) => rest[i..].to_owned(),
                None => "/".to_owned(),
            };
        }
    }
    location.to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_definition_same_digests() {
        let define = || {
            busybox_image()
                .file("/etc/app.conf", "x=1\n", 0o600)
                .env("MODE", "test")
                .with_index(true)
        };
        let (a, b) = (define().build().unwrap(), define().build().unwrap());
        assert_eq!(a.top().digest, b.top().digest);
        assert_eq!(a.image.manifest.bytes, b.image.manifest.bytes);
        let other = define().env("MODE", "prod").build().unwrap();
        assert_ne!(a.image.config.digest, other.image.config.digest);
        assert_eq!(
            a.image.layers[0].digest, other.image.layers[0].digest,
            "the base layer is shared, as in real images"
        );
    }

    #[test]
    fn env_replaces_and_expose_defaults_to_tcp() {
        let built = ImageBuilder::new()
            .env("PATH", "/bin")
            .env("A", "1")
            .env("A", "2")
            .expose("80")
            .expose("53/udp")
            .build()
            .unwrap();
        let config: Value = serde_json::from_slice(&built.image.config.bytes).unwrap();
        assert_eq!(config["config"]["Env"], json!(["PATH=/bin", "A=2"]));
        assert_eq!(
            config["config"]["ExposedPorts"],
            json!({"53/udp": {}, "80/tcp": {}})
        );
        assert!(config["config"].get("Cmd").is_none());
    }

    #[test]
    fn added_files_get_parent_directories_before_them() {
        let layer = ImageBuilder::new()
            .file("srv/www/index.html", "hi", 0o644)
            .file("/srv/run.sh", "#!/bin/sh\n", 0o755)
            .files_layer();
        let paths: Vec<&str> = layer.iter().map(Entry::path).collect();
        assert_eq!(
            paths,
            ["srv", "srv/run.sh", "srv/www", "srv/www/index.html"]
        );
    }

    #[test]
    #[should_panic(expected = "bad path")]
    fn file_paths_may_not_climb() {
        let _ = ImageBuilder::new().file("etc/../../x", "", 0o644);
    }

    #[test]
    fn upload_locations_become_paths() {
        assert_eq!(
            path_of("http://127.0.0.1:5000/v2/a/blobs/uploads/u?_state=x"),
            "/v2/a/blobs/uploads/u?_state=x"
        );
        assert_eq!(path_of("/v2/a/blobs/uploads/u"), "/v2/a/blobs/uploads/u");
    }

    #[test]
    fn digest_reference_keeps_the_port() {
        let image = PushedImage {
            reference: "127.0.0.1:5000/demo/busybox:1".into(),
            manifest_digest: "sha256:aa".into(),
            index_digest: None,
            config_digest: String::new(),
            layer_digests: Vec::new(),
            diff_ids: Vec::new(),
        };
        assert_eq!(
            image.digest_reference(),
            "127.0.0.1:5000/demo/busybox@sha256:aa"
        );
    }
}
