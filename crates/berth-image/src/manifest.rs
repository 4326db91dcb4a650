//! OCI and Docker v2 manifest, index and image-config documents, and the
//! choice of one platform's manifest from an index.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::digest::Digest;

pub mod media_type {
    pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
    pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
    pub const DOCKER_MANIFEST_LIST: &str =
        "application/vnd.docker.distribution.manifest.list.v2+json";
    pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
    pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
    pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
    pub const OCI_LAYER: &str = "application/vnd.oci.image.layer.v1.tar";
    pub const OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
    pub const OCI_LAYER_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";
    pub const DOCKER_LAYER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";
    /// Uncompressed Docker layers (containerd, BuildKit and crane write them).
    pub const DOCKER_LAYER: &str = "application/vnd.docker.image.rootfs.diff.tar";
    pub const DOCKER_FOREIGN_LAYER_GZIP: &str =
        "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip";
    pub const OCI_NONDISTRIBUTABLE_LAYER: &str =
        "application/vnd.oci.image.layer.nondistributable.v1.tar";
    pub const OCI_NONDISTRIBUTABLE_LAYER_GZIP: &str =
        "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip";
    pub const OCI_NONDISTRIBUTABLE_LAYER_ZSTD: &str =
        "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd";

    /// Every manifest kind we can read, for the `Accept` header.
    pub const MANIFEST_ACCEPT: &str = "application/vnd.oci.image.index.v1+json, \
        application/vnd.docker.distribution.manifest.list.v2+json, \
        application/vnd.oci.image.manifest.v1+json, \
        application/vnd.docker.distribution.manifest.v2+json";

    pub fn is_index(media_type: &str) -> bool {
        media_type == OCI_INDEX || media_type == DOCKER_MANIFEST_LIST
    }

    pub fn is_manifest(media_type: &str) -> bool {
        media_type == OCI_MANIFEST || media_type == DOCKER_MANIFEST
    }

    pub fn is_config(media_type: &str) -> bool {
        media_type == OCI_CONFIG || media_type == DOCKER_CONFIG
    }

    pub fn is_layer(media_type: &str) -> bool {
        matches!(
            media_type,
            OCI_LAYER
                | OCI_LAYER_GZIP
                | OCI_LAYER_ZSTD
                | DOCKER_LAYER_GZIP
                | DOCKER_LAYER
                | DOCKER_FOREIGN_LAYER_GZIP
                | OCI_NONDISTRIBUTABLE_LAYER
                | OCI_NONDISTRIBUTABLE_LAYER_GZIP
                | OCI_NONDISTRIBUTABLE_LAYER_ZSTD
        )
    }
}

/// A pointer to content: what it is, its digest and its size.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    #[serde(default)]
    pub media_type: String,
    pub digest: Digest,
    pub size: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<Platform>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub urls: Option<Vec<String>>,
}

/// An OS/architecture pair as written in indexes and configs.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Platform {
    pub os: String,
    pub architecture: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
}

impl Platform {
    pub fn linux_amd64() -> Platform {
        Platform {
            os: "linux".into(),
            architecture: "amd64".into(),
            variant: None,
        }
    }

    /// How well `candidate` serves a host of platform `self`: `None` if it
    /// cannot run at all, otherwise lower is better. Variants follow
    /// containerd: an unversioned entry is the architecture's baseline, and
    /// a host of a newer variant also runs older ones (arm v7 runs v6 and v5,
    /// amd64 v3 runs v2 and v1), preferring the closest.
    pub fn match_rank(&self, candidate: &Platform) -> Option<u32> {
        if normalize_os(&candidate.os) != normalize_os(&self.os) {
            return None;
        }
        let (want_arch, want_variant) = normalize_arch(&self.architecture, self.variant.as_deref());
        let (arch, variant) = normalize_arch(&candidate.architecture, candidate.variant.as_deref());
        if arch != want_arch {
            return None;
        }
        let want = variant_level(&want_variant)?;
        let have = variant_level(&variant)?;
        if have > want { None } else { Some(want - have) }
    }
}

impl std::fmt::Display for Platform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

fn normalize_os(os: &str) -> String {
    os.to_ascii_lowercase()
}

/// Maps aliases to canonical names and fills in each architecture's
/// baseline variant, so `x86_64` == `amd64` == `amd64/v1`.
fn normalize_arch(arch: &str, variant: Option<&str>) -> (String, String) {
    let arch = arch.to_ascii_lowercase();
    let variant = variant.map(str::to_ascii_lowercase);
    match arch.as_str() {
        "x86_64" | "x86-64" | "amd64" => ("amd64".into(), variant.unwrap_or_else(|| "v1".into())),
        "aarch64" | "arm64" => {
            let v = match variant.as_deref() {
                None | Some("8") | Some("v8") => "v8".into(),
                Some(v) => v.to_owned(),
            };
            ("arm64".into(), v)
        }
        "armhf" => ("arm".into(), "v7".into()),
        "armel" => ("arm".into(), "v6".into()),
        "arm" => ("arm".into(), variant.unwrap_or_else(|| "v7".into())),
        "i386" | "386" => ("386".into(), variant.unwrap_or_default()),
        other => (other.to_owned(), variant.unwrap_or_default()),
    }
}

/// `v3` → 3, `7` → 7, `` → 0; anything else is not comparable.
fn variant_level(variant: &str) -> Option<u32> {
    if variant.is_empty() {
        return Some(0);
    }
    variant.strip_prefix('v').unwrap_or(variant).parse().ok()
}

/// An OCI image index or a Docker manifest list (same JSON shape).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageIndex {
    pub schema_version: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    pub manifests: Vec<Descriptor>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
}

impl ImageIndex {
    /// The best entry for `platform`; ties go to the first listed, as in
    /// containerd.
    pub fn select(&self, platform: &Platform) -> Option<&Descriptor> {
        self.manifests
            .iter()
            .filter(|d| {
                d.media_type.is_empty()
                    || media_type::is_manifest(&d.media_type)
                    || media_type::is_index(&d.media_type)
            })
            .filter_map(|d| {
                d.platform
                    .as_ref()
                    .and_then(|p| platform.match_rank(p))
                    .map(|rank| (rank, d))
            })
            .min_by_key(|(rank, _)| *rank)
            .map(|(_, d)| d)
    }
}

/// An OCI image manifest or a Docker schema 2 manifest (same JSON shape).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageManifest {
    pub schema_version: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    pub config: Descriptor,
    pub layers: Vec<Descriptor>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
}

impl ImageManifest {
    /// The first media type that makes this manifest something other than a
    /// runnable image: artifacts (Helm charts, signatures, ...) share the
    /// manifest format but carry another config or layer type.
    pub fn unsupported_media_type(&self) -> Option<&str> {
        if !media_type::is_config(&self.config.media_type) {
            return Some(&self.config.media_type);
        }
        self.layers.iter().map(|l| l.media_type.as_str()).find(|m| !media_type::is_layer(m))
    }
}

/// The image configuration blob (`config.json`): runtime defaults and
/// the uncompressed digests of the layers.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ConfigFile {
    #[serde(default)]
    pub architecture: String,
    #[serde(default)]
    pub os: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
    #[serde(default)]
    pub config: Option<RawRuntimeConfig>,
    pub rootfs: RootFs,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RootFs {
    #[serde(rename = "type")]
    pub kind: String,
    pub diff_ids: Vec<Digest>,
}

/// The `config` section as Docker writes it: PascalCase, and any field may
/// be `null`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct RawRuntimeConfig {
    #[serde(default)]
    pub user: Option<String>,
    #[serde(default)]
    pub exposed_ports: Option<BTreeMap<String, serde_json::Value>>,
    #[serde(default)]
    pub env: Option<Vec<String>>,
    #[serde(default)]
    pub entrypoint: Option<Vec<String>>,
    #[serde(default)]
    pub cmd: Option<Vec<String>>,
    #[serde(default)]
    pub volumes: Option<BTreeMap<String, serde_json::Value>>,
    #[serde(default)]
    pub working_dir: Option<String>,
    #[serde(default)]
    pub labels: Option<BTreeMap<String, String>>,
    #[serde(default)]
    pub stop_signal: Option<String>,
}

/// What a container inherits from its image unless the task definition
/// overrides it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageConfig {
    pub entrypoint: Vec<String>,
    pub cmd: Vec<String>,
    pub env: Vec<String>,
    pub working_dir: String,
    pub user: String,
    /// `"80/tcp"`, `"53/udp"`, sorted.
    pub exposed_ports: Vec<String>,
    pub volumes: Vec<String>,
    pub labels: BTreeMap<String, String>,
    pub stop_signal: Option<String>,
    pub os: String,
    pub architecture: String,
}

impl ConfigFile {
    pub fn runtime_config(&self) -> ImageConfig {
        let raw = self.config.clone().unwrap_or_default();
        ImageConfig {
            entrypoint: raw.entrypoint.unwrap_or_default(),
            cmd: raw.cmd.unwrap_or_default(),
            env: raw.env.unwrap_or_default(),
            working_dir: raw.working_dir.unwrap_or_default(),
            user: raw.user.unwrap_or_default(),
            exposed_ports: raw.exposed_ports.unwrap_or_default().into_keys().collect(),
            volumes: raw.volumes.unwrap_or_default().into_keys().collect(),
            labels: raw.labels.unwrap_or_default(),
            stop_signal: raw.stop_signal.filter(|s| !s.is_empty()),
            os: self.os.clone(),
            architecture: self.architecture.clone(),
        }
    }
}

/// Which kind of top-level document a manifest body is, from its declared
/// media type, falling back to its shape (some registries omit both).
pub(crate) fn sniff_media_type(declared: Option<&str>, body: &serde_json::Value) -> Option<String> {
    if let Some(mt) = body
        .get("mediaType")
        .and_then(|v| v.as_str())
        .filter(|s| !s.is_empty())
    {
        return Some(mt.to_owned());
    }
    if let Some(mt) = declared
        .map(|d| d.split(';').next().unwrap_or(d).trim())
        .filter(|s| !s.is_empty())
        && mt != "application/json"
        && mt != "application/octet-stream"
        && mt != "text/plain"
    {
        return Some(mt.to_owned());
    }
    if body.get("manifests").is_some() {
        Some(media_type::OCI_INDEX.to_owned())
    } else if body.get("config").is_some() && body.get("layers").is_some() {
        Some(media_type::OCI_MANIFEST.to_owned())
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(os: &str, arch: &str, variant: Option<&str>) -> Platform {
        Platform {
            os: os.into(),
            architecture: arch.into(),
            variant: variant.map(Into::into),
        }
    }

    fn desc(platform: Platform, n: u8) -> Descriptor {
        Descriptor {
            media_type: media_type::OCI_MANIFEST.into(),
            digest: Digest::of(&[n]),
            size: 1,
            platform: Some(platform),
            annotations: None,
            urls: None,
        }
    }

    #[test]
    fn selects_amd64_among_platforms() {
        let index = ImageIndex {
            schema_version: 2,
            media_type: None,
            manifests: vec![
                desc(p("linux", "arm64", Some("v8")), 1),
                desc(p("unknown", "unknown", None), 2),
                desc(p("linux", "amd64", None), 3),
                desc(p("windows", "amd64", None), 4),
            ],
            annotations: None,
        };
        assert_eq!(
            index.select(&Platform::linux_amd64()).unwrap().digest,
            Digest::of(&[3])
        );
        assert_eq!(
            index.select(&p("linux", "arm64", None)).unwrap().digest,
            Digest::of(&[1])
        );
        assert!(index.select(&p("linux", "s390x", None)).is_none());
    }

    #[test]
    fn variants() {
        let host = Platform::linux_amd64();
        // A baseline host cannot run x86-64-v3 code.
        assert_eq!(host.match_rank(&p("linux", "amd64", Some("v3"))), None);
        assert_eq!(host.match_rank(&p("linux", "x86_64", None)), Some(0));
        assert_eq!(host.match_rank(&p("linux", "amd64", Some("v1"))), Some(0));
        let v7 = p("linux", "arm", Some("v7"));
        assert_eq!(v7.match_rank(&p("linux", "arm", Some("v7"))), Some(0));
        assert_eq!(v7.match_rank(&p("linux", "arm", Some("v6"))), Some(1));
        assert_eq!(v7.match_rank(&p("linux", "arm", Some("v8"))), None);
        let index = ImageIndex {
            schema_version: 2,
            media_type: None,
            manifests: vec![
                desc(p("linux", "arm", Some("v6")), 1),
                desc(p("linux", "arm", Some("v7")), 2),
            ],
            annotations: None,
        };
        assert_eq!(index.select(&v7).unwrap().digest, Digest::of(&[2]));
    }

    #[test]
    fn docker_config_with_nulls() {
        let json = r#"{"architecture":"amd64","os":"linux","config":{"Env":null,"Cmd":["sh"],
            "Entrypoint":null,"ExposedPorts":{"80/tcp":{},"53/udp":{}},"WorkingDir":"","Labels":null},
            "rootfs":{"type":"layers","diff_ids":[]}}"#;
        let c: ConfigFile = serde_json::from_str(json).unwrap();
        let rc = c.runtime_config();
        assert_eq!(rc.cmd, vec!["sh"]);
        assert!(rc.entrypoint.is_empty());
        assert_eq!(rc.exposed_ports, vec!["53/udp", "80/tcp"]);
    }
}
