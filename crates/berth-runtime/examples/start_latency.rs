//! Start latency of a busybox `true` container: Berth's shim + runc against
//! a bare `runc run` of the same bundle, interleaved, median of N (root,
//! runc and busybox-static needed).
//!
//! ```text
//! cargo build --release -p berth-runtime --bins --examples
//! target/release/examples/start_latency [N]
//! ```
//!
//! The shim binary is looked up next to the example's directory
//! (`target/<profile>/berth-runtime-test-shim`) or taken from `BERTH_SHIM`.

use berth_runtime::spec::{self, BundleInputs, ContainerSpec};
use berth_runtime::{CgroupManager, ContainerRuntime, RuncConfig, RuncRuntime, V1Cgroups};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

fn busybox_rootfs(root: &Path) -> std::io::Result<()> {
    for d in ["bin", "etc", "tmp", "proc", "sys", "dev"] {
        std::fs::create_dir_all(root.join(d))?;
    }
    std::fs::copy("/bin/busybox", root.join("bin/busybox"))?;
    for applet in ["sh", "true"] {
        std::os::unix::fs::symlink("busybox", root.join("bin").join(applet))?;
    }
    Ok(())
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let n: usize = std::env::args()
        .nth(1)
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(20);
    let shim = match std::env::var_os("BERTH_SHIM") {
        Some(p) => PathBuf::from(p),
        None => std::env::current_exe()?
            .parent()
            .and_then(Path::parent)
            .ok_or("no target dir")?
            .join("berth-runtime-test-shim"),
    };
    if !shim.is_file() {
        return Err(format!(
            "{} not found: cargo build -p berth-runtime --bins",
            shim.display()
        )
        .into());
    }
    let dir = tempfile::Builder::new().prefix("berth-bench-").tempdir()?;
    let rootfs = dir.path().join("rootfs");
    busybox_rootfs(&rootfs)?;
    let runc_root = dir.path().join("runc");
    let rt = RuncRuntime::new(RuncConfig::new(&shim, dir.path().join("state"), &runc_root));
    let cg = V1Cgroups::new("/sys/fs/cgroup", "berth-bench")?;
    let task = format!("bench-{}", std::process::id());
    cg.create_task(&task, &Default::default())?;

    let spec_for = |id: String| {
        let mut s = ContainerSpec::new(id.clone(), &rootfs, vec!["true".into()]);
        s.cgroups_path = cg.container_path(&task, &id);
        s
    };

    let (mut bare, mut started, mut exited) = (Vec::new(), Vec::new(), Vec::new());
    for i in 0..n + 1 {
        // Bare runc: write the same kind of bundle, `runc run` in the foreground.
        let id = format!("bare-{i}");
        let bundle = dir.path().join(&id);
        std::fs::create_dir_all(&bundle)?;
        let s = spec_for(id.clone());
        std::fs::write(bundle.join("hosts"), berth_runtime::etc::hosts(&[]))?;
        std::fs::write(bundle.join("hostname"), "\n")?;
        let inputs = BundleInputs {
            bundle_dir: &bundle,
            init: None,
            host_devices: &[],
            resolv_conf: false,
            bounding_capabilities: None,
        };
        std::fs::write(
            bundle.join("config.json"),
            serde_json::to_vec(&spec::oci_config(&s, &inputs)?)?,
        )?;
        let t = Instant::now();
        let out = tokio::process::Command::new("runc")
            .arg("--root")
            .arg(&runc_root)
            .args(["run", "--bundle"])
            .arg(&bundle)
            .arg(&id)
            .stdin(std::process::Stdio::null())
            .output()
            .await?;
        let bare_t = t.elapsed();
        if !out.status.success() {
            return Err(format!("runc run: {}", String::from_utf8_lossy(&out.stderr)).into());
        }

        // Berth: shim + runc run --detach, until running, then until exit.json.
        let s = spec_for(format!("shim-{i}"));
        let t = Instant::now();
        rt.start(&s).await?;
        let start_t = t.elapsed();
        rt.wait(&s.id, Duration::from_secs(30))
            .await?
            .ok_or("no exit")?;
        let exit_t = t.elapsed();
        rt.delete(&s.id).await?;
        if i > 0 {
            // The first round warms caches and is not counted.
            bare.push(bare_t);
            started.push(start_t);
            exited.push(exit_t);
        }
    }
    cg.remove_task(&task)?;
    let (b, s, e) = (median(bare), median(started), median(exited));
    println!("busybox `true`, median of {n} (interleaved):");
    println!("  bare `runc run` (create..exit)        {}", ms(b));
    println!(
        "  shim + runc, start() until running     {}  ({:.2}x bare)",
        ms(s),
        s.as_secs_f64() / b.as_secs_f64()
    );
    println!(
        "  shim + runc, start() until exit.json   {}  ({:.2}x bare)",
        ms(e),
        e.as_secs_f64() / b.as_secs_f64()
    );
    Ok(())
}
