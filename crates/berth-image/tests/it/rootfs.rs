//! Real overlay mounts (the tests run as root on a kernel with overlayfs).

use std::path::PathBuf;

use berth_image::{OverlaySnapshotter, PullPolicy, Snapshotter};

use crate::support::images::{Comp, Flavor, TestImage, standard_layers};
use crate::support::registry::{Auth, TestRegistry};
use crate::support::service;

fn is_mounted(path: &std::path::Path) -> bool {
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let path = path.to_str().unwrap();
    mountinfo.lines().any(|l| l.split(' ').nth(4) == Some(path))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overlay_of_a_pulled_image_shows_the_merged_view() {
    let registry = TestRegistry::start(Auth::Anonymous).await;
    let (base, top) = standard_layers();
    TestImage::new(
        Flavor::Oci,
        "amd64",
        vec![(Comp::Gzip, base), (Comp::Zstd, top)],
    )
    .push(&registry, "demo/run", Some("1"));
    let dir = tempfile::tempdir().unwrap();
    let service = service(dir.path());
    let image = service
        .ensure(&registry.reference("demo/run:1"), PullPolicy::Default, None)
        .await
        .unwrap();

    let snapshotter = OverlaySnapshotter::new(dir.path().join("rootfs")).unwrap();
    let a = snapshotter
        .prepare("task-a.web", &image.layer_dirs)
        .unwrap();
    let b = snapshotter
        .prepare("task-b.web", &image.layer_dirs)
        .unwrap();
    assert_eq!(
        a.lowerdir,
        image
            .layer_dirs
            .iter()
            .rev()
            .cloned()
            .collect::<Vec<PathBuf>>()
    );
    assert!(is_mounted(&a.merged) && is_mounted(&b.merged));
    assert_eq!(
        snapshotter
            .prepare("task-a.web", &image.layer_dirs)
            .unwrap(),
        a,
        "prepare is idempotent"
    );

    let m = &a.merged;
    assert_eq!(
        std::fs::read(m.join("bin/app")).unwrap(),
        b"#!/bin/sh\necho app\n"
    );
    assert_eq!(
        std::fs::read_link(m.join("bin/sh")).unwrap().to_str(),
        Some("/bin/app")
    );
    assert_eq!(
        std::fs::read(m.join("etc/hosts")).unwrap(),
        b"10.0.0.1 replaced\n",
        "upper layer wins"
    );
    assert!(
        !m.join("etc/remove-me").exists(),
        "whiteout in the upper layer hides the lower file"
    );
    assert!(std::fs::symlink_metadata(m.join("etc/remove-me")).is_err());
    let cache: Vec<String> = std::fs::read_dir(m.join("var/cache"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(
        cache,
        ["new"],
        "opaque directory hides the lower layer's entries"
    );
    let etc: Vec<String> = {
        let mut v: Vec<String> = std::fs::read_dir(m.join("etc"))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        v.sort();
        v
    };
    assert_eq!(etc, ["hosts"]);

    // Writes go to the container's upper dir; shared layers and the other
    // container never see them.
    std::fs::write(m.join("etc/written"), b"mine").unwrap();
    std::fs::remove_file(m.join("bin/app")).unwrap();
    assert_eq!(
        std::fs::read(a.upperdir.join("etc/written")).unwrap(),
        b"mine"
    );
    assert!(image.layer_dirs[0].join("bin/app").exists());
    assert!(b.merged.join("bin/app").exists());
    assert!(!b.merged.join("etc/written").exists());

    snapshotter.release("task-a.web").unwrap();
    assert!(!is_mounted(&a.merged));
    assert!(!a.merged.parent().unwrap().exists());
    snapshotter.release("task-a.web").unwrap();
    snapshotter.release("task-b.web").unwrap();
    assert!(!is_mounted(&b.merged));
    assert!(
        image.layer_dirs[0].join("bin/app").exists(),
        "layers outlive containers"
    );
}

#[test]
fn many_layers_exceed_one_page_of_mount_options() {
    let dir = tempfile::tempdir().unwrap();
    let mut layers = Vec::new();
    for i in 0..70 {
        let layer = dir
            .path()
            .join("layers")
            .join(format!("{i:02}{}", "0".repeat(62)));
        std::fs::create_dir_all(&layer).unwrap();
        std::fs::write(layer.join(format!("file-{i}")), i.to_string()).unwrap();
        std::fs::write(layer.join("which"), i.to_string()).unwrap();
        layers.push(layer);
    }
    let total: usize = layers.iter().map(|l| l.as_os_str().len() + 1).sum();
    assert!(total > 4096, "the test must exceed one page ({total})");
    let snapshotter = OverlaySnapshotter::new(dir.path().join("rootfs")).unwrap();
    let mount = snapshotter.prepare("big", &layers).unwrap();
    for i in 0..70 {
        assert_eq!(
            std::fs::read_to_string(mount.merged.join(format!("file-{i}"))).unwrap(),
            i.to_string()
        );
    }
    assert_eq!(
        std::fs::read_to_string(mount.merged.join("which")).unwrap(),
        "69",
        "last layer is on top"
    );
    snapshotter.release("big").unwrap();
    assert!(!is_mounted(&mount.merged));
}

#[test]
fn image_without_layers_and_bad_ids() {
    let dir = tempfile::tempdir().unwrap();
    let snapshotter = OverlaySnapshotter::new(dir.path()).unwrap();
    let mount = snapshotter.prepare("empty", &[]).unwrap();
    std::fs::write(mount.merged.join("f"), b"x").unwrap();
    snapshotter.release("empty").unwrap();
    assert!(snapshotter.prepare("../escape", &[]).is_err());
}
