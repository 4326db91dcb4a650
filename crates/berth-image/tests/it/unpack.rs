//! Hostile and unusual layer tarballs, extracted directly.

use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use berth_image::manifest::media_type;
use berth_image::unpack::extract_layer;
use berth_image::{Digest, ImageError};

use crate::support::images::{Layer, gzip, zstd};
use crate::support::{is_whiteout, opaque_xattr, tree};

/// A sandbox with `layer/` (the destination) and `outside/` (a real
/// directory hostile entries try to reach) side by side.
struct Sandbox {
    _dir: tempfile::TempDir,
    root: PathBuf,
}

impl Sandbox {
    fn new() -> Sandbox {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().to_owned();
        std::fs::create_dir(root.join("layer")).unwrap();
        std::fs::create_dir(root.join("outside")).unwrap();
        std::fs::write(root.join("outside/target"), b"precious").unwrap();
        Sandbox { _dir: dir, root }
    }

    fn layer(&self) -> PathBuf {
        self.root.join("layer")
    }

    fn outside(&self) -> PathBuf {
        self.root.join("outside")
    }

    fn extract(&self, tar: &[u8]) -> Result<Digest, ImageError> {
        extract_layer(tar, media_type::OCI_LAYER, &self.layer())
    }

    /// Nothing but the layer and the untouched `outside/target`.
    fn assert_outside_untouched(&self) {
        assert_eq!(tree(&self.outside()), ["target"]);
        assert_eq!(
            std::fs::read(self.outside().join("target")).unwrap(),
            b"precious"
        );
        let top: Vec<String> = std::fs::read_dir(&self.root)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        let mut top = top;
        top.sort();
        assert_eq!(top, ["layer", "outside"]);
    }
}

fn invalid(result: Result<Digest, ImageError>) -> String {
    match result {
        Err(ImageError::InvalidLayer { message, .. }) => message,
        other => panic!("expected InvalidLayer, got {other:?}"),
    }
}

#[test]
fn dot_dot_paths_are_rejected() {
    for path in ["../escaped", "a/../../escaped", "./../outside/target"] {
        let sb = Sandbox::new();
        let tar = Layer::new()
            .raw(tar::EntryType::Regular, path, None, b"pwned")
            .tar();
        let message = invalid(sb.extract(&tar));
        assert!(message.contains(".."), "{message}");
        sb.assert_outside_untouched();
    }
}

#[test]
fn absolute_paths_land_inside_the_layer() {
    let sb = Sandbox::new();
    let abs = sb.outside().join("abs-file");
    let tar = Layer::new()
        .raw(
            tar::EntryType::Regular,
            abs.to_str().unwrap(),
            None,
            b"inside",
        )
        .tar();
    sb.extract(&tar).unwrap();
    let relative = abs.strip_prefix("/").unwrap();
    assert_eq!(std::fs::read(sb.layer().join(relative)).unwrap(), b"inside");
    sb.assert_outside_untouched();
}

#[test]
fn writing_through_a_symlinked_directory_is_refused() {
    // Both a relative link climbing out and an absolute one to a real
    // directory outside: following either would write there.
    let sb = Sandbox::new();
    for target in [
        "../outside".to_owned(),
        sb.outside().to_string_lossy().into_owned(),
        "inside-dir".to_owned(),
    ] {
        let sb = Sandbox::new();
        let tar = Layer::new()
            .dir("inside-dir", 0o755)
            .symlink("link", &target)
            .raw(tar::EntryType::Regular, "link/pwned", None, b"pwned")
            .tar();
        let message = invalid(sb.extract(&tar));
        assert!(message.contains("symlink"), "{message}");
        sb.assert_outside_untouched();
        assert!(!sb.layer().join("inside-dir/pwned").exists());
    }
    // Replacing a file by a directory through a symlink is refused too.
    let tar = Layer::new()
        .symlink("d", &sb.outside().to_string_lossy())
        .raw(tar::EntryType::Directory, "d/sub/", None, b"")
        .tar();
    invalid(sb.extract(&tar));
    sb.assert_outside_untouched();
}

#[test]
fn hard_links_must_stay_inside_the_layer() {
    let sb = Sandbox::new();
    let outside_target = sb.outside().join("target");
    let cases = [
        ("../outside/target".to_owned(), ".."),
        // Absolute targets are taken relative to the layer, where there is
        // no such file.
        (
            outside_target.to_string_lossy().into_owned(),
            "not in layer",
        ),
        ("missing".to_owned(), "not in layer"),
    ];
    for (target, expected) in cases {
        let sb = Sandbox::new();
        let tar = Layer::new()
            .raw(tar::EntryType::Link, "h", Some(&target), b"")
            .tar();
        let message = invalid(sb.extract(&tar));
        assert!(message.contains(expected), "{target}: {message}");
        assert!(!sb.layer().join("h").exists());
        assert_eq!(
            std::fs::metadata(sb.outside().join("target"))
                .unwrap()
                .nlink(),
            1
        );
        sb.assert_outside_untouched();
    }
    // Through a symlink to the outside: also refused.
    let sb = Sandbox::new();
    let tar = Layer::new()
        .symlink("l", &sb.outside().to_string_lossy())
        .raw(tar::EntryType::Link, "h", Some("l/target"), b"")
        .tar();
    invalid(sb.extract(&tar));
    assert_eq!(
        std::fs::metadata(sb.outside().join("target"))
            .unwrap()
            .nlink(),
        1
    );
    sb.assert_outside_untouched();
}

#[test]
fn symlink_targets_are_kept_verbatim_but_never_followed() {
    let sb = Sandbox::new();
    let tar = Layer::new()
        .symlink("etc/passwd", "/etc/passwd")
        .symlink("up", "../../..")
        // A later file at the symlink's path replaces the link itself.
        .file("etc/passwd", b"root:x:0:0::/root:/bin/sh\n", 0o644)
        .tar();
    sb.extract(&tar).unwrap();
    assert_eq!(
        std::fs::read_link(sb.layer().join("up")).unwrap(),
        Path::new("../../..")
    );
    let passwd = std::fs::symlink_metadata(sb.layer().join("etc/passwd")).unwrap();
    assert!(passwd.is_file());
    sb.assert_outside_untouched();
}

#[test]
fn whiteouts_devices_xattrs_and_replacement() {
    let sb = Sandbox::new();
    let tar = Layer::new()
        .dir("dir", 0o750)
        .whiteout("dir/gone")
        .whiteout("top-level-gone")
        .opaque("dir")
        .opaque("implied/opaque")
        .file(".wh..wh.plnk/123.456", b"aufs hardlink bookkeeping", 0o644)
        .char_device("dev/null", 1, 3)
        .fifo("run/fifo")
        .file_with_xattrs(
            "caps",
            b"x",
            &[
                ("user.note", b"hello"),
                ("trusted.overlay.redirect", b"/etc"),
            ],
        )
        // A file replaced by a directory, and a directory by a file.
        .file("replace-me", b"file", 0o644)
        .dir("replace-me", 0o700)
        .dir("was-dir/child", 0o755)
        .file("was-dir", b"now a file", 0o600)
        .tar();
    let diff_id = sb.extract(&tar).unwrap();
    assert_eq!(diff_id, Digest::of(&tar));
    let l = sb.layer();
    assert!(is_whiteout(&l.join("dir/gone")));
    assert!(is_whiteout(&l.join("top-level-gone")));
    assert_eq!(opaque_xattr(&l.join("dir")).as_deref(), Some(&b"y"[..]));
    assert_eq!(
        opaque_xattr(&l.join("implied/opaque")).as_deref(),
        Some(&b"y"[..])
    );
    assert_eq!(
        std::fs::metadata(l.join("dir")).unwrap().mode() & 0o7777,
        0o750
    );
    assert!(!l.join(".wh..wh.plnk").exists());
    let null = std::fs::symlink_metadata(l.join("dev/null")).unwrap();
    assert!(null.file_type().is_char_device());
    assert_eq!(null.rdev(), rustix::fs::makedev(1, 3));
    assert_eq!(null.mode() & 0o777, 0o666, "mode not reduced by the umask");
    assert!(
        std::fs::symlink_metadata(l.join("run/fifo"))
            .unwrap()
            .file_type()
            .is_fifo()
    );
    let mut buf = [0u8; 32];
    let n = rustix::fs::getxattr(l.join("caps"), "user.note", &mut buf).unwrap();
    assert_eq!(&buf[..n], b"hello");
    assert!(
        rustix::fs::getxattr(l.join("caps"), "trusted.overlay.redirect", &mut buf).is_err(),
        "overlay xattrs are not taken from layers"
    );
    assert!(l.join("replace-me").is_dir());
    assert_eq!(std::fs::read(l.join("was-dir")).unwrap(), b"now a file");
    let dir_mtime = std::fs::metadata(l.join("dir")).unwrap().mtime();
    assert_eq!(
        dir_mtime, 1_700_000_000,
        "directory times set after their children"
    );
}

#[test]
fn compression_is_detected_and_checked_against_the_media_type() {
    let tar = Layer::new().file("f", b"content", 0o644).tar();
    for (blob, mt) in [
        (gzip(&tar), media_type::OCI_LAYER_GZIP),
        (gzip(&tar), media_type::DOCKER_LAYER_GZIP),
        (zstd(&tar), media_type::OCI_LAYER_ZSTD),
        (tar.clone(), media_type::OCI_LAYER),
        // docker save layers are plain tar whatever the caller assumed.
        (gzip(&tar), media_type::OCI_LAYER),
    ] {
        let sb = Sandbox::new();
        assert_eq!(
            extract_layer(&blob[..], mt, &sb.layer()).unwrap(),
            Digest::of(&tar),
            "{mt}"
        );
        assert_eq!(std::fs::read(sb.layer().join("f")).unwrap(), b"content");
    }
    let sb = Sandbox::new();
    let message = invalid(extract_layer(
        &tar[..],
        media_type::OCI_LAYER_GZIP,
        &sb.layer(),
    ));
    assert!(message.contains("gzip"), "{message}");
    let sb = Sandbox::new();
    let message = invalid(extract_layer(
        &b"definitely not a tarball, far too short"[..],
        media_type::OCI_LAYER,
        &sb.layer(),
    ));
    assert!(!message.is_empty());
}
