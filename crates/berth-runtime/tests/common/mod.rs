//! Test harness for real containers: a busybox root filesystem in a temp
//! dir, a runtime with its own state and runc roots, a task cgroup, and a
//! Drop guard that removes every container, cgroup and file even when the
//! test fails. Needs root, `runc` and `busybox-static` (test.sh installs them).

#![allow(dead_code)]

use berth_runtime::logs::LogRecord;
use berth_runtime::{
    CgroupManager, ContainerRuntime, ContainerSpec, ExitStatus, RuncConfig, RuncRuntime,
    TaskLimits, V1Cgroups,
};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

pub const BUSYBOX: &str = "/bin/busybox";
pub const SHIM: &str = env!("CARGO_BIN_EXE_berth-runtime-test-shim");
pub const CGROUP_PREFIX: &str = "berth-test";
pub const WAIT: Duration = Duration::from_secs(60);

static SEQ: AtomicU32 = AtomicU32::new(0);

/// A unique name: the test process id plus a counter (nextest runs each
/// test in its own process, so this is unique across parallel tests).
pub fn unique(name: &str) -> String {
    format!(
        "bt-{name}-{}-{}",
        std::process::id(),
        SEQ.fetch_add(1, Ordering::Relaxed)
    )
}

fn which(cmd: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .map(|d| Path::new(d).join(cmd))
        .find(|p| p.is_file())
}

/// Build a busybox root filesystem at `root`.
pub fn busybox_rootfs(root: &Path) {
    assert!(
        Path::new(BUSYBOX).is_file(),
        "{BUSYBOX} is missing: install the Debian package busybox-static (test.sh does)"
    );
    for d in [
        "bin", "etc", "tmp", "root", "home/app", "proc", "sys", "dev",
    ] {
        std::fs::create_dir_all(root.join(d)).unwrap();
    }
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(root.join("tmp"), std::fs::Permissions::from_mode(0o1777)).unwrap();
    std::os::unix::fs::chown(root.join("home/app"), Some(1000), Some(1000)).unwrap();
    std::fs::copy(BUSYBOX, root.join("bin/busybox")).unwrap();
    let list = std::process::Command::new(BUSYBOX)
        .arg("--list")
        .output()
        .unwrap();
    for applet in String::from_utf8_lossy(&list.stdout).lines() {
        let applet = applet.trim();
        if applet.is_empty() || applet == "busybox" || applet.contains('/') {
            continue;
        }
        let _ = std::os::unix::fs::symlink("busybox", root.join("bin").join(applet));
    }
    std::fs::write(
        root.join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:App:/home/app:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n",
    )
    .unwrap();
    std::fs::write(
        root.join("etc/group"),
        "root:x:0:\napp:x:1000:\nstaff:x:50:app\nnogroup:x:65534:\n",
    )
    .unwrap();
}

pub struct Harness {
    pub dir: tempfile::TempDir,
    pub rt: RuncRuntime,
    pub cg: V1Cgroups,
    pub task: String,
    ids: Mutex<Vec<String>>,
    runc: PathBuf,
}

impl Harness {
    pub fn new(name: &str) -> Harness {
        Self::with_config(name, |_| {})
    }

    pub fn with_config(name: &str, tweak: impl Fn(&mut RuncConfig)) -> Harness {
        assert_eq!(current_uid(), 0, "these tests run containers and need root");
        let runc =
            which("runc").expect("runc is missing: install the Debian package runc (test.sh does)");
        let dir = tempfile::Builder::new()
            .prefix("berth-rt-")
            .tempdir()
            .unwrap();
        busybox_rootfs(&dir.path().join("rootfs"));
        let mut cfg = RuncConfig::new(SHIM, dir.path().join("state"), dir.path().join("runc"));
        cfg.runc = runc.clone();
        tweak(&mut cfg);
        let rt = RuncRuntime::new(cfg);
        let cg = V1Cgroups::new("/sys/fs/cgroup", CGROUP_PREFIX).unwrap();
        let task = unique(&format!("{name}-task"));
        Harness {
            dir,
            rt,
            cg,
            task,
            ids: Mutex::new(Vec::new()),
            runc,
        }
    }

    /// Another runtime on the same state, as a restarted agent would make.
    pub fn runtime(&self) -> RuncRuntime {
        RuncRuntime::new(self.rt.config().clone())
    }

    pub fn rootfs(&self) -> PathBuf {
        self.dir.path().join("rootfs")
    }

    pub fn create_task(&self, limits: &TaskLimits) {
        self.cg.create_task(&self.task, limits).unwrap();
    }

    /// A spec for a container of this harness's task, registered for cleanup.
    pub fn spec(&self, name: &str, args: &[&str]) -> ContainerSpec {
        let id = unique(name);
        self.ids.lock().unwrap().push(id.clone());
        let mut spec = ContainerSpec::new(
            id.clone(),
            self.rootfs(),
            args.iter().map(|s| s.to_string()).collect(),
        );
        spec.cgroups_path = self.cg.container_path(&self.task, &id);
        spec
    }

    pub fn sh(&self, name: &str, script: &str) -> ContainerSpec {
        self.spec(name, &["sh", "-c", script])
    }

    /// Start, wait for the exit, and return it with stdout and stderr.
    pub async fn run(&self, spec: &ContainerSpec) -> (ExitStatus, String, String) {
        self.rt.start(spec).await.unwrap();
        let status = self
            .rt
            .wait(&spec.id, WAIT)
            .await
            .unwrap()
            .expect("container exited in time");
        let (out, err) = self.output(&spec.id).await;
        (status, out, err)
    }

    pub async fn output(&self, id: &str) -> (String, String) {
        let logs: Vec<LogRecord> = self.rt.read_logs(id).await.unwrap();
        let join = |s: &str| {
            logs.iter()
                .filter(|r| r.stream == s)
                .map(|r| r.log.as_str())
                .collect::<String>()
        };
        (join("stdout"), join("stderr"))
    }

    /// Wait until the container's stdout has a line that is exactly `line`.
    pub async fn wait_for_output(&self, id: &str, line: &str) -> String {
        let deadline = Instant::now() + WAIT;
        loop {
            let (out, err) = self.output(id).await;
            if out.lines().any(|l| l == line) {
                return out;
            }
            assert!(
                Instant::now() < deadline,
                "no line {line:?} in the output; stdout {out:?} stderr {err:?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The host directory of a container's cgroup in `controller`.
    pub fn cgroup_dir(&self, controller: &str, id: &str) -> PathBuf {
        self.cg
            .dir(controller, &self.cg.container_path(&self.task, id))
    }

    pub fn task_cgroup_dir(&self, controller: &str) -> PathBuf {
        self.cg.dir(controller, &self.cg.task_path(&self.task))
    }

    pub fn runc_knows(&self, id: &str) -> bool {
        std::process::Command::new(&self.runc)
            .arg("--root")
            .arg(&self.rt.config().runc_root)
            .args(["state", id])
            .output()
            .map(|o| o.status.success())
            .unwrap_or(false)
    }
}

fn current_uid() -> u32 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(u32::MAX)
}

fn shim_pid(state: &Path, id: &str) -> Option<i32> {
    std::fs::read_to_string(state.join(id).join("shim.pid"))
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

impl Drop for Harness {
    fn drop(&mut self) {
        let cfg = self.rt.config().clone();
        for id in self.ids.lock().unwrap_or_else(|p| p.into_inner()).iter() {
            let _ = std::process::Command::new(&self.runc)
                .arg("--root")
                .arg(&cfg.runc_root)
                .args(["delete", "--force", id])
                .output();
            // Let the shim notice and finish before its directory goes.
            if let Some(pid) = shim_pid(&cfg.state_root, id) {
                let deadline = Instant::now() + Duration::from_secs(5);
                while Path::new(&format!("/proc/{pid}")).exists()
                    && !std::fs::read_to_string(format!("/proc/{pid}/stat"))
                        .unwrap_or_default()
                        .contains(") Z")
                    && Instant::now() < deadline
                {
                    std::thread::sleep(Duration::from_millis(10));
                }
            }
        }
        if let Err(e) = self.cg.remove_task(&self.task) {
            eprintln!("cleanup: removing task cgroup {}: {e}", self.task);
        }
    }
}
