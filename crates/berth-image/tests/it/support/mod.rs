#![allow(dead_code)]

pub mod images;
pub mod registry;

use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

use berth_image::{ContentStore, ImageService, RegistryClient, RegistryConfig};

pub fn service(dir: &Path) -> ImageService {
    ImageService::new(
        ContentStore::open(dir.join("store")).unwrap(),
        RegistryClient::new(RegistryConfig::default()).unwrap(),
    )
}

/// True if `path` is an overlayfs whiteout (character device 0:0).
pub fn is_whiteout(path: &Path) -> bool {
    std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_char_device() && m.rdev() == 0)
}

pub fn opaque_xattr(path: &Path) -> Option<Vec<u8>> {
    let mut buf = [0u8; 16];
    rustix::fs::lgetxattr(path, "trusted.overlay.opaque", &mut buf)
        .ok()
        .map(|n| buf[..n].to_vec())
}

/// Every path under `dir`, for asserting nothing appeared outside.
pub fn tree(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    fn walk(base: &Path, dir: &Path, out: &mut Vec<String>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let e = e.unwrap();
            let p = e.path();
            out.push(p.strip_prefix(base).unwrap().to_string_lossy().into_owned());
            if e.file_type().unwrap().is_dir() {
                walk(base, &p, out);
            }
        }
    }
    walk(dir, dir, &mut out);
    out.sort();
    out
}
