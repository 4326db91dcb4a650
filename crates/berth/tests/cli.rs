//! The `berth` binary's own subcommands, run as a user would run them.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};

fn berth() -> Command {
    Command::new(env!("CARGO_BIN_EXE_berth"))
}

fn sha256_file(path: &Path) -> String {
    let out = Command::new("sha256sum").arg(path).output().expect("sha256sum runs");
    String::from_utf8(out.stdout).unwrap().split_whitespace().next().unwrap().to_string()
}

/// Build a one-layer `docker save` archive holding busybox-like content.
fn docker_save_archive(dir: &Path) -> std::path::PathBuf {
    let root = dir.join("root");
    std::fs::create_dir_all(root.join("bin")).unwrap();
    std::fs::write(root.join("bin/hello"), b"#!/bin/sh\necho hello\n").unwrap();
    let layer = dir.join("layer.tar");
    assert!(Command::new("tar").arg("-C").arg(&root).arg("-cf").arg(&layer).arg("bin").status().unwrap().success());
    let diff = sha256_file(&layer);
    let config = format!(
        r#"{{"architecture":"amd64","os":"linux","config":{{"Cmd":["/bin/hello"]}},"rootfs":{{"type":"layers","diff_ids":["sha256:{diff}"]}}}}"#
    );
    let pack = dir.join("pack");
    std::fs::create_dir_all(pack.join(&diff)).unwrap();
    std::fs::write(pack.join("config.json"), &config).unwrap();
    let cfg = sha256_file(&pack.join("config.json"));
    std::fs::rename(pack.join("config.json"), pack.join(format!("{cfg}.json"))).unwrap();
    std::fs::copy(&layer, pack.join(&diff).join("layer.tar")).unwrap();
    std::fs::write(
        pack.join("manifest.json"),
        format!(r#"[{{"Config":"{cfg}.json","RepoTags":["demo/hello:1"],"Layers":["{diff}/layer.tar"]}}]"#),
    )
    .unwrap();
    let archive = dir.join("image.tar");
    assert!(
        Command::new("tar")
            .arg("-C")
            .arg(&pack)
            .arg("-cf")
            .arg(&archive)
            .args(["manifest.json", &format!("{cfg}.json"), &diff])
            .status()
            .unwrap()
            .success()
    );
    archive
}

#[test]
fn image_load_imports_a_docker_save_archive() {
    let dir = tempfile::tempdir().unwrap();
    let archive = docker_save_archive(dir.path());
    let data = dir.path().join("data");
    let out = berth()
        .args(["image", "load"])
        .arg(&archive)
        .args(["--reference", "127.0.0.1:5000/demo/hello:1", "--data-dir"])
        .arg(&data)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("docker.io/demo/hello:1"), "{stdout}");
    assert!(stdout.contains("127.0.0.1:5000/demo/hello:1"), "{stdout}");
    // The layer was unpacked once into the shared cache.
    let layers: Vec<_> = std::fs::read_dir(data.join("images/layers")).unwrap().flatten().collect();
    assert_eq!(layers.len(), 1);
    assert!(layers[0].path().join("bin/hello").is_file());

    let bad = berth().args(["image", "load"]).arg(dir.path().join("missing.tar")).arg("--data-dir").arg(&data).output().unwrap();
    assert!(!bad.status.success());
}

#[test]
fn server_logs_json_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = berth()
        .args(["--log-format", "json", "server", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir.path())
        .env("BERTH_ACCOUNT_ID", "123456789012")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    let mut printed = String::new();
    while stdout.read_line(&mut line).unwrap() > 0 {
        printed.push_str(&line);
        if line.starts_with("ready ") {
            break;
        }
        line.clear();
    }
    assert!(printed.contains("account 123456789012"), "{printed}");
    // The secret is shown once, on stdout, on the run that created it.
    assert!(printed.contains("AWS_SECRET_ACCESS_KEY="), "{printed}");
    assert!(Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap().success());
    let status = child.wait().unwrap();
    assert!(status.success(), "{status:?}");
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    let secret = std::fs::read_to_string(dir.path().join("root-credentials.json")).unwrap();
    let secret: serde_json::Value = serde_json::from_str(&secret).unwrap();
    assert!(!stderr.contains(secret["secretAccessKey"].as_str().unwrap()), "secret leaked into logs");
    let mut lines = 0;
    for l in stderr.lines().filter(|l| !l.trim().is_empty()) {
        let v: serde_json::Value = serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}"));
        assert!(v.get("level").is_some() && v.get("fields").is_some(), "{l}");
        lines += 1;
    }
    assert!(lines >= 2, "expected the listening and stopped lines, got {stderr}");
}
