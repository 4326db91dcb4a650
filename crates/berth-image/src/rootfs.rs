//! Per-container root filesystems: the image's shared, read-only layer
//! directories as overlay lower dirs under a private upper dir.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use rustix::io::Errno;
use rustix::mount::{
    FsMountFlags, FsOpenFlags, MountAttrFlags, MountFlags, MoveMountFlags, UnmountFlags,
};

use crate::error::{ImageError, IoContext};

/// Where a container's root filesystem is and what it is made of.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RootfsMount {
    /// Topmost layer first, the order overlayfs takes them in.
    pub lowerdir: Vec<PathBuf>,
    pub upperdir: PathBuf,
    pub workdir: PathBuf,
    /// The container's `/`.
    pub merged: PathBuf,
}

/// Makes and removes container root filesystems. Implementations are
/// synchronous: a mount is one quick syscall.
pub trait Snapshotter: Send + Sync {
    /// Prepares the root filesystem for `container_id` from `layers`
    /// (bottom layer first, as images list them). Preparing an id that is
    /// already prepared returns the existing mount, so an agent restart
    /// can re-adopt its containers.
    fn prepare(&self, container_id: &str, layers: &[PathBuf]) -> Result<RootfsMount, ImageError>;

    /// Unmounts and deletes everything `prepare` made, including the
    /// container's writes. Releasing an unknown id is not an error.
    fn release(&self, container_id: &str) -> Result<(), ImageError>;
}

/// overlayfs under `<root>/<container id>/{upper,work,merged}`.
#[derive(Debug)]
pub struct OverlaySnapshotter {
    root: PathBuf,
}

/// mount(2) copies at most one page of options.
const MOUNT_DATA_MAX: usize = 4095;

impl OverlaySnapshotter {
    pub fn new(root: impl Into<PathBuf>) -> Result<OverlaySnapshotter, ImageError> {
        let root = root.into();
        std::fs::create_dir_all(&root).ctx(|| format!("create {}", root.display()))?;
        Ok(OverlaySnapshotter { root })
    }

    fn container_dir(&self, container_id: &str) -> Result<PathBuf, ImageError> {
        validate_id(container_id)?;
        Ok(self.root.join(container_id))
    }

    fn mount_overlay(&self, mount: &RootfsMount) -> Result<(), ImageError> {
        for dir in mount
            .lowerdir
            .iter()
            .chain([&mount.upperdir, &mount.workdir])
        {
            let s = dir.to_string_lossy();
            // These separate overlay options; escaping them is not
            // supported by every kernel.
            if s.contains([',', ':', '\\']) || dir.to_str().is_none() {
                return Err(ImageError::Mount {
                    target: mount.merged.clone(),
                    message: format!("unsupported character in layer path {s}"),
                });
            }
        }
        let lower = mount
            .lowerdir
            .iter()
            .map(|p| p.to_string_lossy())
            .collect::<Vec<_>>()
            .join(":");
        let mut data = format!(
            "lowerdir={lower},upperdir={},workdir={}",
            mount.upperdir.display(),
            mount.workdir.display()
        );
        // As Docker: kernels built with the index feature on refuse to
        // share lower layers between overlays in some cases.
        let index_off = Path::new("/sys/module/overlay/parameters/index").exists();
        if index_off {
            data.push_str(",index=off");
        }
        let failed = |e: Errno| ImageError::Mount {
            target: mount.merged.clone(),
            message: format!("overlay: {e}"),
        };
        if data.len() <= MOUNT_DATA_MAX {
            let data = std::ffi::CString::new(data).map_err(|_| ImageError::Mount {
                target: mount.merged.clone(),
                message: "NUL byte in mount options".into(),
            })?;
            return rustix::mount::mount(
                "overlay",
                &mount.merged,
                "overlay",
                MountFlags::empty(),
                data.as_c_str(),
            )
            .map_err(failed);
        }
        // Too many layers for one page of options: the new mount API adds
        // lower dirs one at a time (`lowerdir+`, Linux 6.8+).
        let fs = rustix::mount::fsopen("overlay", FsOpenFlags::FSOPEN_CLOEXEC).map_err(failed)?;
        rustix::mount::fsconfig_set_string(&fs, "source", "overlay").map_err(failed)?;
        for dir in &mount.lowerdir {
            rustix::mount::fsconfig_set_string(&fs, "lowerdir+", dir.as_path()).map_err(failed)?;
        }
        rustix::mount::fsconfig_set_string(&fs, "upperdir", mount.upperdir.as_path())
            .map_err(failed)?;
        rustix::mount::fsconfig_set_string(&fs, "workdir", mount.workdir.as_path())
            .map_err(failed)?;
        if index_off {
            rustix::mount::fsconfig_set_string(&fs, "index", "off").map_err(failed)?;
        }
        rustix::mount::fsconfig_create(&fs).map_err(failed)?;
        let mnt =
            rustix::mount::fsmount(&fs, FsMountFlags::FSMOUNT_CLOEXEC, MountAttrFlags::empty())
                .map_err(failed)?;
        rustix::mount::move_mount(
            &mnt,
            "",
            rustix::fs::CWD,
            &mount.merged,
            MoveMountFlags::MOVE_MOUNT_F_EMPTY_PATH,
        )
        .map_err(failed)
    }
}

impl Snapshotter for OverlaySnapshotter {
    fn prepare(&self, container_id: &str, layers: &[PathBuf]) -> Result<RootfsMount, ImageError> {
        let dir = self.container_dir(container_id)?;
        let mut lowerdir: Vec<PathBuf> = layers.iter().rev().cloned().collect();
        if lowerdir.is_empty() {
            // An image with no layers (FROM scratch + config only) still
            // needs one lower dir.
            lowerdir.push(dir.join("empty"));
        }
        let mount = RootfsMount {
            lowerdir,
            upperdir: dir.join("upper"),
            workdir: dir.join("work"),
            merged: dir.join("merged"),
        };
        for d in [&mount.upperdir, &mount.workdir, &mount.merged] {
            std::fs::create_dir_all(d).ctx(|| format!("create {}", d.display()))?;
        }
        if layers.is_empty() {
            std::fs::create_dir_all(&mount.lowerdir[0])
                .ctx(|| format!("create {}", mount.lowerdir[0].display()))?;
        }
        if is_mount_point(&mount.merged)? {
            return Ok(mount);
        }
        self.mount_overlay(&mount)?;
        Ok(mount)
    }

    fn release(&self, container_id: &str) -> Result<(), ImageError> {
        let dir = self.container_dir(container_id)?;
        let merged = dir.join("merged");
        if merged.exists() && is_mount_point(&merged)? {
            match rustix::mount::unmount(&merged, UnmountFlags::empty()) {
                Ok(()) | Err(Errno::INVAL) => {}
                // Something still holds it (a straggling process, a bind
                // mount): detach now, the kernel frees it when released.
                Err(Errno::BUSY) => {
                    rustix::mount::unmount(&merged, UnmountFlags::DETACH).map_err(|e| {
                        ImageError::Mount {
                            target: merged.clone(),
                            message: format!("unmount: {e}"),
                        }
                    })?
                }
                Err(e) => {
                    return Err(ImageError::Mount {
                        target: merged.clone(),
                        message: format!("unmount: {e}"),
                    });
                }
            }
        }
        match std::fs::remove_dir_all(&dir) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(ImageError::io(format!("remove {}", dir.display()), e)),
        }
    }
}

/// A directory is a mount point if it sits on a different device from
/// its parent (an overlay mount always gets its own).
fn is_mount_point(path: &Path) -> Result<bool, ImageError> {
    use std::os::unix::fs::MetadataExt;
    let own = std::fs::symlink_metadata(path).ctx(|| format!("stat {}", path.display()))?;
    let parent = path.parent().unwrap_or(Path::new("/"));
    let up = std::fs::metadata(parent).ctx(|| format!("stat {}", parent.display()))?;
    Ok(own.dev() != up.dev() || own.ino() == up.ino())
}

fn validate_id(container_id: &str) -> Result<(), ImageError> {
    let ok = !container_id.is_empty()
        && container_id.len() <= 128
        && container_id != "."
        && container_id != ".."
        && container_id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(ImageError::Mount {
            target: PathBuf::from(container_id),
            message: "container id must be 1-128 characters of [A-Za-z0-9._-]".into(),
        })
    }
}

/// Records what would be mounted, touching nothing; for tests of callers.
#[derive(Debug, Default)]
pub struct FakeSnapshotter {
    root: PathBuf,
    mounts: Mutex<HashMap<String, RootfsMount>>,
}

impl FakeSnapshotter {
    pub fn new(root: impl Into<PathBuf>) -> FakeSnapshotter {
        FakeSnapshotter {
            root: root.into(),
            mounts: Mutex::default(),
        }
    }

    /// Currently prepared mounts by container id.
    pub fn mounts(&self) -> HashMap<String, RootfsMount> {
        self.mounts
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

impl Snapshotter for FakeSnapshotter {
    fn prepare(&self, container_id: &str, layers: &[PathBuf]) -> Result<RootfsMount, ImageError> {
        validate_id(container_id)?;
        let dir = self.root.join(container_id);
        let mut mounts = self.mounts.lock().unwrap_or_else(|e| e.into_inner());
        let mount = mounts
            .entry(container_id.to_owned())
            .or_insert_with(|| RootfsMount {
                lowerdir: layers.iter().rev().cloned().collect(),
                upperdir: dir.join("upper"),
                workdir: dir.join("work"),
                merged: dir.join("merged"),
            })
            .clone();
        Ok(mount)
    }

    fn release(&self, container_id: &str) -> Result<(), ImageError> {
        validate_id(container_id)?;
        self.mounts
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(container_id);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fake_records_prepare_and_release() {
        let fake = FakeSnapshotter::new("/run/berth/rootfs");
        let layers = vec![PathBuf::from("/l/bottom"), PathBuf::from("/l/top")];
        let m = fake.prepare("c1", &layers).unwrap();
        assert_eq!(
            m.lowerdir,
            vec![PathBuf::from("/l/top"), PathBuf::from("/l/bottom")]
        );
        assert_eq!(m.merged, PathBuf::from("/run/berth/rootfs/c1/merged"));
        assert_eq!(fake.prepare("c1", &[]).unwrap(), m, "prepare is idempotent");
        assert_eq!(fake.mounts().len(), 1);
        fake.release("c1").unwrap();
        fake.release("c1").unwrap();
        assert!(fake.mounts().is_empty());
    }

    #[test]
    fn rejects_ids_that_could_escape() {
        let fake = FakeSnapshotter::new("/r");
        for bad in ["", ".", "..", "a/b", "../x", &"x".repeat(129)] {
            assert!(fake.prepare(bad, &[]).is_err(), "{bad:?}");
        }
    }
}
