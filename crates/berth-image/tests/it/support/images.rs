//! Test images built in code: layer tarballs (including hostile ones),
//! configs, manifests and indexes in both OCI and Docker flavours.

use berth_image::Digest;
use berth_image::manifest::media_type;
use serde_json::json;

use super::registry::TestRegistry;

/// Builds one layer tarball.
pub struct Layer {
    builder: tar::Builder<Vec<u8>>,
}

const MTIME: u64 = 1_700_000_000;

impl Layer {
    pub fn new() -> Layer {
        Layer {
            builder: tar::Builder::new(Vec::new()),
        }
    }

    fn header(kind: tar::EntryType, mode: u32, size: u64) -> tar::Header {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(kind);
        h.set_mode(mode);
        h.set_size(size);
        h.set_mtime(MTIME);
        h.set_uid(0);
        h.set_gid(0);
        h
    }

    pub fn dir(mut self, path: &str, mode: u32) -> Layer {
        let mut h = Self::header(tar::EntryType::Directory, mode, 0);
        self.builder.append_data(&mut h, path, &[][..]).unwrap();
        self
    }

    pub fn file(self, path: &str, content: &[u8], mode: u32) -> Layer {
        self.file_owned(path, content, mode, 0, 0)
    }

    pub fn file_owned(
        mut self,
        path: &str,
        content: &[u8],
        mode: u32,
        uid: u64,
        gid: u64,
    ) -> Layer {
        let mut h = Self::header(tar::EntryType::Regular, mode, content.len() as u64);
        h.set_uid(uid);
        h.set_gid(gid);
        self.builder.append_data(&mut h, path, content).unwrap();
        self
    }

    /// A file carrying PAX extended attributes.
    pub fn file_with_xattrs(
        mut self,
        path: &str,
        content: &[u8],
        xattrs: &[(&str, &[u8])],
    ) -> Layer {
        let pax: Vec<(String, &[u8])> = xattrs
            .iter()
            .map(|(k, v)| (format!("SCHILY.xattr.{k}"), *v))
            .collect();
        self.builder
            .append_pax_extensions(pax.iter().map(|(k, v)| (k.as_str(), *v)))
            .unwrap();
        self.file(path, content, 0o644)
    }

    pub fn symlink(mut self, path: &str, target: &str) -> Layer {
        let mut h = Self::header(tar::EntryType::Symlink, 0o777, 0);
        self.builder.append_link(&mut h, path, target).unwrap();
        self
    }

    pub fn hardlink(mut self, path: &str, target: &str) -> Layer {
        let mut h = Self::header(tar::EntryType::Link, 0o644, 0);
        self.builder.append_link(&mut h, path, target).unwrap();
        self
    }

    pub fn char_device(mut self, path: &str, major: u32, minor: u32) -> Layer {
        let mut h = Self::header(tar::EntryType::Char, 0o666, 0);
        h.set_device_major(major).unwrap();
        h.set_device_minor(minor).unwrap();
        self.builder.append_data(&mut h, path, &[][..]).unwrap();
        self
    }

    pub fn fifo(mut self, path: &str) -> Layer {
        let mut h = Self::header(tar::EntryType::Fifo, 0o600, 0);
        self.builder.append_data(&mut h, path, &[][..]).unwrap();
        self
    }

    /// OCI whiteout hiding `path` from lower layers.
    pub fn whiteout(self, path: &str) -> Layer {
        let (dir, name) = path.rsplit_once('/').map_or(("", path), |(d, n)| (d, n));
        let wh = if dir.is_empty() {
            format!(".wh.{name}")
        } else {
            format!("{dir}/.wh.{name}")
        };
        self.file(&wh, b"", 0o644)
    }

    /// OCI opaque-directory marker.
    pub fn opaque(self, dir: &str) -> Layer {
        self.file(&format!("{dir}/.wh..wh..opq"), b"", 0o644)
    }

    /// An entry whose path (and link name) bytes go into the header as
    /// is, bypassing the tar crate's checks, to model hostile archives.
    pub fn raw(
        mut self,
        kind: tar::EntryType,
        path: &str,
        link: Option<&str>,
        content: &[u8],
    ) -> Layer {
        let mut h = Self::header(kind, 0o644, content.len() as u64);
        {
            let old = h.as_old_mut();
            old.name = [0; 100];
            old.name[..path.len()].copy_from_slice(path.as_bytes());
            if let Some(link) = link {
                old.linkname = [0; 100];
                old.linkname[..link.len()].copy_from_slice(link.as_bytes());
            }
        }
        h.set_cksum();
        self.builder.append(&h, content).unwrap();
        self
    }

    pub fn tar(self) -> Vec<u8> {
        self.builder.into_inner().unwrap()
    }
}

pub fn gzip(data: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

pub fn zstd(data: &[u8]) -> Vec<u8> {
    ruzstd::encoding::compress_to_vec(data, ruzstd::encoding::CompressionLevel::Fastest)
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Flavor {
    Oci,
    Docker,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Comp {
    None,
    Gzip,
    Zstd,
}

/// An image's blobs and documents, ready to push or save.
#[derive(Clone)]
pub struct TestImage {
    pub config: Vec<u8>,
    /// (media type, blob, diff id)
    pub layers: Vec<(String, Vec<u8>, Digest)>,
    pub flavor: Flavor,
}

impl TestImage {
    pub fn new(flavor: Flavor, arch: &str, layers: Vec<(Comp, Vec<u8>)>) -> TestImage {
        let mut out = Vec::new();
        for (comp, tar) in layers {
            let diff_id = Digest::of(&tar);
            let (mt, blob) = match (flavor, comp) {
                (Flavor::Docker, Comp::Gzip) => (media_type::DOCKER_LAYER_GZIP, gzip(&tar)),
                (Flavor::Docker, other) => panic!("docker manifests have no {other:?} layers"),
                (Flavor::Oci, Comp::Gzip) => (media_type::OCI_LAYER_GZIP, gzip(&tar)),
                (Flavor::Oci, Comp::Zstd) => (media_type::OCI_LAYER_ZSTD, zstd(&tar)),
                (Flavor::Oci, Comp::None) => (media_type::OCI_LAYER, tar),
            };
            out.push((mt.to_owned(), blob, diff_id));
        }
        let diff_ids: Vec<String> = out.iter().map(|(_, _, d)| d.to_string()).collect();
        let config = json!({
            "architecture": arch,
            "os": "linux",
            "config": {
                "Entrypoint": ["/bin/app"],
                "Cmd": ["--serve"],
                "Env": ["PATH=/usr/bin:/bin", "MODE=test"],
                "WorkingDir": "/srv",
                "User": "1000:1000",
                "ExposedPorts": {"8080/tcp": {}},
                "Labels": {"arch": arch}
            },
            "rootfs": {"type": "layers", "diff_ids": diff_ids}
        });
        TestImage {
            config: serde_json::to_vec(&config).unwrap(),
            layers: out,
            flavor,
        }
    }

    pub fn config_digest(&self) -> Digest {
        Digest::of(&self.config)
    }

    pub fn manifest_media_type(&self) -> &'static str {
        match self.flavor {
            Flavor::Oci => media_type::OCI_MANIFEST,
            Flavor::Docker => media_type::DOCKER_MANIFEST,
        }
    }

    pub fn manifest(&self) -> Vec<u8> {
        let config_mt = match self.flavor {
            Flavor::Oci => media_type::OCI_CONFIG,
            Flavor::Docker => media_type::DOCKER_CONFIG,
        };
        let layers: Vec<_> = self
            .layers
            .iter()
            .map(|(mt, blob, _)| json!({"mediaType": mt, "digest": Digest::of(blob).to_string(), "size": blob.len()}))
            .collect();
        serde_json::to_vec(&json!({
            "schemaVersion": 2,
            "mediaType": self.manifest_media_type(),
            "config": {"mediaType": config_mt, "digest": self.config_digest().to_string(), "size": self.config.len()},
            "layers": layers,
        }))
        .unwrap()
    }

    /// Pushes blobs and the manifest (tagged if `tag`), returning the
    /// manifest digest.
    pub fn push(&self, registry: &TestRegistry, repo: &str, tag: Option<&str>) -> Digest {
        registry.put_blob(self.config.clone());
        for (_, blob, _) in &self.layers {
            registry.put_blob(blob.clone());
        }
        registry.put_manifest(repo, tag, self.manifest_media_type(), self.manifest())
    }
}

/// An index / manifest list over (image, os, arch, variant) entries.
pub fn index(
    flavor: Flavor,
    entries: &[(&TestImage, &str, &str, Option<&str>)],
) -> (String, Vec<u8>) {
    let mt = match flavor {
        Flavor::Oci => media_type::OCI_INDEX,
        Flavor::Docker => media_type::DOCKER_MANIFEST_LIST,
    };
    let manifests: Vec<_> = entries
        .iter()
        .map(|(image, os, arch, variant)| {
            let m = image.manifest();
            let mut platform = json!({"os": os, "architecture": arch});
            if let Some(v) = variant {
                platform["variant"] = json!(v);
            }
            json!({"mediaType": image.manifest_media_type(), "digest": Digest::of(&m).to_string(), "size": m.len(), "platform": platform})
        })
        .collect();
    (
        mt.to_owned(),
        serde_json::to_vec(&json!({"schemaVersion": 2, "mediaType": mt, "manifests": manifests}))
            .unwrap(),
    )
}

/// The two-layer image most tests use: a base layer, then one that
/// deletes, replaces and hides things in it.
pub fn standard_layers() -> (Vec<u8>, Vec<u8>) {
    let base = Layer::new()
        .dir("bin", 0o755)
        .file("bin/app", b"#!/bin/sh\necho app\n", 0o755)
        .dir("etc", 0o755)
        .file("etc/hosts", b"127.0.0.1 localhost\n", 0o644)
        .file("etc/remove-me", b"lower", 0o644)
        .dir("var/cache", 0o755)
        .file("var/cache/old", b"old", 0o644)
        .file_owned("srv/data", b"data", 0o640, 1000, 1000)
        .symlink("bin/sh", "/bin/app")
        .hardlink("bin/app-link", "bin/app")
        .tar();
    let top = Layer::new()
        .whiteout("etc/remove-me")
        .opaque("var/cache")
        .file("var/cache/new", b"new", 0o644)
        .file("etc/hosts", b"10.0.0.1 replaced\n", 0o644)
        .tar();
    (base, top)
}
