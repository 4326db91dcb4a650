//! [`RuncRuntime`]: the [`ContainerRuntime`] that runs real containers with
//! the `runc` CLI, each under its own shim (see [`crate::shim`]).
//!
//! State lives in files, so a restarted agent picks up where it left off:
//!
//! ```text
//! <state_root>/<id>/bundle/config.json   the OCI spec (+ hosts, hostname, resolv.conf)
//!                  /shim.pid             "<pid> <starttime>" of the shim
//!                  /container.pid        host pid of the container's init (runc --pid-file)
//!                  /exit.json            {exitCode, signal, oomKilled, finishedAt}, once it exited
//!                  /container.log[.N]    JSON-lines output, rotated
//!                  /runc.log, shim.log   diagnostics
//! ```
//!
//! runc keeps its own state under `runc_root` (`runc --root`).

use crate::etc;
use crate::initkit::InitKit;
use crate::logs::{self, LogRecord};
use crate::runtime::{ContainerRuntime, ContainerState, ExitStatus, RuntimeError, Signal};
use crate::shim::{ShimArgs, StartReport, layout};
use crate::spec::{self, BundleInputs, ContainerSpec, Device, NsMode};
use crate::sys::{self, PidRecord};
use std::ffi::OsString;
use std::io;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::AsyncReadExt;
use tokio::io::unix::AsyncFd;

/// Where things are and how they are run.
#[derive(Debug, Clone)]
pub struct RuncConfig {
    /// The `runc` binary (found on `PATH` when relative).
    pub runc: PathBuf,
    /// runc's own state directory (`runc --root`), best on a tmpfs.
    pub runc_root: PathBuf,
    /// Berth's per-container directories; must survive agent restarts.
    pub state_root: PathBuf,
    /// The binary that implements `shim` and `init` (the `berth` binary:
    /// `<exe> shim ...`, and bind-mounted as the container's init).
    pub helper_exe: PathBuf,
    /// Where the cgroup v1 hierarchies are mounted.
    pub cgroup_root: PathBuf,
    pub log_max_bytes: u64,
    pub log_max_files: u32,
    /// How long `start` waits for runc to report the container running.
    pub start_timeout: Duration,
}

impl RuncConfig {
    pub fn new(
        helper_exe: impl Into<PathBuf>,
        state_root: impl Into<PathBuf>,
        runc_root: impl Into<PathBuf>,
    ) -> RuncConfig {
        RuncConfig {
            runc: PathBuf::from("runc"),
            runc_root: runc_root.into(),
            state_root: state_root.into(),
            helper_exe: helper_exe.into(),
            cgroup_root: PathBuf::from("/sys/fs/cgroup"),
            log_max_bytes: logs::DEFAULT_MAX_BYTES,
            log_max_files: logs::DEFAULT_MAX_FILES,
            start_timeout: Duration::from_secs(60),
        }
    }
}

/// How long `delete` waits for a shim to finish after runc removed its container.
const SHIM_EXIT_TIMEOUT: Duration = Duration::from_secs(10);

pub struct RuncRuntime {
    cfg: Arc<RuncConfig>,
    init_kit: tokio::sync::OnceCell<Arc<InitKit>>,
}

impl RuncRuntime {
    pub fn new(cfg: RuncConfig) -> RuncRuntime {
        RuncRuntime {
            cfg: Arc::new(cfg),
            init_kit: tokio::sync::OnceCell::new(),
        }
    }

    pub fn config(&self) -> &RuncConfig {
        &self.cfg
    }

    /// The container's state directory.
    pub fn state_dir(&self, id: &str) -> PathBuf {
        self.cfg.state_root.join(id)
    }

    /// The live log file (rotated ones are `<path>.1`, `<path>.2`, ...).
    pub fn log_path(&self, id: &str) -> PathBuf {
        self.state_dir(id).join(layout::CONTAINER_LOG)
    }

    /// Everything the container wrote that is still kept, oldest first.
    pub async fn read_logs(&self, id: &str) -> Result<Vec<LogRecord>, RuntimeError> {
        let path = self.log_path(id);
        let files = self.cfg.log_max_files;
        tokio::task::spawn_blocking(move || logs::read_all(&path, files))
            .await
            .map_err(|e| RuntimeError::Io {
                context: "reading logs".into(),
                source: io::Error::other(e),
            })?
            .map_err(RuntimeError::io(format!("reading the logs of {id}")))
    }

    /// What the files say about a container, without needing the process
    /// that started it: `Running(pid)` while its shim lives, `Exited` once
    /// `exit.json` is there.
    pub async fn recover(&self, id: &str) -> Result<ContainerState, RuntimeError> {
        if !spec::valid_id(id) {
            return Ok(ContainerState::NotFound);
        }
        let dir = self.state_dir(id);
        if !dir.is_dir() {
            return Ok(ContainerState::NotFound);
        }
        if let Some(status) = read_exit(&dir) {
            return Ok(ContainerState::Exited(status));
        }
        match read_pid_record(&dir.join(layout::SHIM_PID)) {
            Some(shim) if shim.is_alive() => {
                return Ok(match read_container_pid(&dir) {
                    Some(pid) => ContainerState::Running { pid: pid as u32 },
                    None => ContainerState::Starting,
                });
            }
            // A start in progress: the bundle is written, the shim not up yet.
            None if age(&dir.join(layout::BUNDLE).join("config.json"))
                .is_some_and(|a| a < self.cfg.start_timeout) =>
            {
                return Ok(ContainerState::Starting);
            }
            _ => {}
        }
        // The shim is gone. It writes exit.json before exiting, so look again.
        if let Some(status) = read_exit(&dir) {
            return Ok(ContainerState::Exited(status));
        }
        // Supervisor lost (killed, or the host went down under it). The
        // container may still run, unsupervised: ask runc.
        if let Some(pid) = self.runc_running_pid(id).await {
            tracing::warn!(
                container = id,
                pid,
                "container runs without its shim; exit status will be unknown"
            );
            return Ok(ContainerState::Running { pid });
        }
        Ok(ContainerState::Exited(ExitStatus {
            exit_code: None,
            signal: None,
            oom_killed: false,
            finished_at: mtime_epoch_seconds(&dir),
            error: Some("the container's supervisor exited without recording its status".into()),
            start_failed: false,
        }))
    }

    async fn runc_running_pid(&self, id: &str) -> Option<u32> {
        let out = self.runc_cmd().arg("state").arg(id).output().await.ok()?;
        if !out.status.success() {
            return None;
        }
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
        let running = matches!(v.get("status")?.as_str()?, "running" | "created" | "paused");
        let pid = v.get("pid")?.as_u64()?;
        (running && pid > 0).then_some(pid as u32)
    }

    fn runc_cmd(&self) -> tokio::process::Command {
        let mut cmd = tokio::process::Command::new(&self.cfg.runc);
        cmd.arg("--root")
            .arg(&self.cfg.runc_root)
            .stdin(Stdio::null())
            .kill_on_drop(false);
        cmd
    }

    async fn init_kit(&self) -> Result<Arc<InitKit>, RuntimeError> {
        let exe = self.cfg.helper_exe.clone();
        self.init_kit
            .get_or_try_init(|| async move {
                let kit = tokio::task::spawn_blocking(move || InitKit::discover(&exe))
                    .await
                    .map_err(|e| RuntimeError::Io {
                        context: "init kit".into(),
                        source: io::Error::other(e),
                    })?
                    .map_err(RuntimeError::io("inspecting the init binary"))?;
                Ok::<_, RuntimeError>(Arc::new(kit))
            })
            .await
            .cloned()
    }

    /// Write the bundle: `config.json` and the `/etc` files it mounts.
    fn write_bundle(
        spec: &ContainerSpec,
        bundle: &Path,
        kit: Option<&InitKit>,
    ) -> Result<(), RuntimeError> {
        std::fs::create_dir_all(bundle)
            .map_err(RuntimeError::io(format!("creating {}", bundle.display())))?;
        let write = |name: &str, text: &[u8]| {
            let p = bundle.join(name);
            std::fs::write(&p, text).map_err(RuntimeError::io(format!("writing {}", p.display())))
        };
        write("hosts", etc::hosts(&spec.extra_hosts).as_bytes())?;
        if spec.namespaces.uts == NsMode::New {
            write(
                "hostname",
                etc::hostname(spec.hostname.as_deref()).as_bytes(),
            )?;
        }
        let resolv = match &spec.dns {
            Some(dns) => Some(etc::resolv_conf(dns)),
            None => std::fs::read_to_string("/etc/resolv.conf")
                .ok()
                .map(|host| {
                    etc::resolv_conf_from_host(&host, spec.namespaces.network != NsMode::Host)
                }),
        };
        if let Some(text) = &resolv {
            write("resolv.conf", text.as_bytes())?;
        }
        let devices = if spec.privileged {
            host_devices()
        } else {
            Vec::new()
        };
        let inputs = BundleInputs {
            bundle_dir: bundle,
            init: kit,
            host_devices: &devices,
            resolv_conf: resolv.is_some(),
            bounding_capabilities: sys::bounding_capabilities(),
        };
        let config = spec::oci_config(spec, &inputs)?;
        let text = serde_json::to_vec_pretty(&config)
            .map_err(|e| RuntimeError::io("config.json")(io::Error::other(e)))?;
        write("config.json", &text)
    }

    fn shim_args(&self, spec: &ContainerSpec, dir: &Path) -> ShimArgs {
        let cg = spec.cgroups_path.trim_start_matches('/');
        let memory_cgroup = self.cfg.cgroup_root.join("memory").join(cg);
        // The task's cgroup is the parent, when the path has one below the
        // top-level prefix (`/berth/<task>/<container>`).
        let task_memory_cgroup = Path::new(cg)
            .parent()
            .filter(|p| p.components().count() >= 2)
            .map(|p| self.cfg.cgroup_root.join("memory").join(p));
        ShimArgs {
            id: spec.id.clone(),
            state_dir: dir.to_path_buf(),
            bundle: dir.join(layout::BUNDLE),
            runc: self.cfg.runc.clone(),
            runc_root: self.cfg.runc_root.clone(),
            memory_cgroup: Some(memory_cgroup),
            task_memory_cgroup,
            log_max_bytes: self.cfg.log_max_bytes,
            log_max_files: self.cfg.log_max_files,
        }
    }

    async fn launch_shim(&self, args: ShimArgs) -> Result<u32, RuntimeError> {
        let id = args.id.clone();
        let shim_log_path = args.state_dir.join(layout::SHIM_LOG);
        let shim_log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&shim_log_path)
            .map_err(RuntimeError::io(format!(
                "opening {}",
                shim_log_path.display()
            )))?;
        let mut argv: Vec<OsString> = vec!["shim".into()];
        argv.extend(args.to_args());
        let mut child = tokio::process::Command::new(&self.cfg.helper_exe)
            .args(argv)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(shim_log)
            .kill_on_drop(false)
            .spawn()
            .map_err(RuntimeError::io(format!(
                "running {} shim",
                self.cfg.helper_exe.display()
            )))?;
        let mut out = Vec::new();
        let read = async {
            if let Some(mut stdout) = child.stdout.take() {
                stdout.read_to_end(&mut out).await?;
            }
            io::Result::Ok(())
        };
        let read = tokio::time::timeout(self.cfg.start_timeout, read).await;
        // The shim's first half exits right after forking.
        let _ = child.wait().await;
        match read {
            Err(_) => {
                return Err(RuntimeError::StartFailed {
                    id,
                    message: format!(
                        "runc did not report the container running within {:?}",
                        self.cfg.start_timeout
                    ),
                });
            }
            Ok(Err(e)) => return Err(RuntimeError::io("reading the shim's start report")(e)),
            Ok(Ok(())) => {}
        }
        let text = String::from_utf8_lossy(&out);
        let report: Option<StartReport> = text.lines().find_map(|l| serde_json::from_str(l).ok());
        match report {
            Some(StartReport { pid: Some(pid), .. }) => Ok(pid),
            Some(StartReport {
                error: Some(message),
                ..
            }) => Err(RuntimeError::StartFailed { id, message }),
            _ => {
                let diag = std::fs::read_to_string(&shim_log_path).unwrap_or_default();
                Err(RuntimeError::StartFailed {
                    id,
                    message: format!("the shim exited without a start report: {}", diag.trim()),
                })
            }
        }
    }

    /// Wait until `pid` (checked against its start time when known) is gone,
    /// at most `timeout`. True if it is gone.
    async fn wait_pid_exit(record: PidRecord, timeout: Duration) -> bool {
        let Ok(fd) = sys::pidfd_open(record.pid) else {
            return !record.is_alive();
        };
        // The pidfd now pins this pid; make sure it is still our process.
        if !record.is_alive() {
            return true;
        }
        // SAFETY: `fd` is an OwnedFd, moved into the AsyncFd: it stays open
        // and refers to the same pidfd until the AsyncFd is dropped.
        let registered =
            unsafe { AsyncFd::register_with_interest(fd, tokio::io::Interest::READABLE) };
        match registered {
            Ok(afd) => tokio::time::timeout(timeout, afd.readable()).await.is_ok(),
            Err(_) => {
                let deadline = tokio::time::Instant::now() + timeout;
                while record.is_alive() {
                    if tokio::time::Instant::now() >= deadline {
                        return false;
                    }
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                true
            }
        }
    }

    fn require_valid(id: &str) -> Result<(), RuntimeError> {
        if spec::valid_id(id) {
            Ok(())
        } else {
            Err(spec::SpecError::InvalidId(id.to_string()).into())
        }
    }
}

fn read_exit(dir: &Path) -> Option<ExitStatus> {
    serde_json::from_slice(&std::fs::read(dir.join(layout::EXIT_JSON)).ok()?).ok()
}

fn read_pid_record(path: &Path) -> Option<PidRecord> {
    PidRecord::parse(&std::fs::read_to_string(path).ok()?)
}

fn read_container_pid(dir: &Path) -> Option<libc::pid_t> {
    std::fs::read_to_string(dir.join(layout::CONTAINER_PID))
        .ok()?
        .trim()
        .parse()
        .ok()
        .filter(|&p| p > 0)
}

fn age(path: &Path) -> Option<Duration> {
    let modified = std::fs::metadata(path).and_then(|m| m.modified()).ok()?;
    Some(
        std::time::SystemTime::now()
            .duration_since(modified)
            .unwrap_or(Duration::ZERO),
    )
}

fn mtime_epoch_seconds(path: &Path) -> f64 {
    let t = std::fs::metadata(path).and_then(|m| m.modified()).ok();
    let ms = t
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map(|d| d.as_millis())
        .unwrap_or(0);
    ms as f64 / 1000.0
}

/// The host's device nodes, for privileged containers (what `docker run
/// --privileged` passes through). Pseudo-terminals and the mounts runc
/// makes itself are skipped.
pub fn host_devices() -> Vec<Device> {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    fn walk(dir: &Path, out: &mut Vec<Device>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let Ok(meta) = std::fs::symlink_metadata(&path) else {
                continue;
            };
            let ft = meta.file_type();
            if ft.is_dir() {
                let name = entry.file_name();
                if !matches!(name.to_str(), Some("pts" | "shm" | "mqueue")) {
                    walk(&path, out);
                }
                continue;
            }
            let kind = if ft.is_char_device() {
                'c'
            } else if ft.is_block_device() {
                'b'
            } else {
                continue;
            };
            if path == Path::new("/dev/console") || path == Path::new("/dev/ptmx") {
                continue;
            }
            let rdev = meta.rdev();
            out.push(Device {
                path: path.to_string_lossy().into_owned(),
                kind,
                major: i64::from(libc::major(rdev)),
                minor: i64::from(libc::minor(rdev)),
                file_mode: meta.mode() & 0o7777,
                uid: meta.uid(),
                gid: meta.gid(),
            });
        }
    }
    let mut out = Vec::new();
    walk(Path::new("/dev"), &mut out);
    out.sort_by(|a, b| a.path.cmp(&b.path));
    out
}

fn runc_says_gone(stderr: &str) -> bool {
    let s = stderr.to_ascii_lowercase();
    s.contains("not running")
        || s.contains("does not exist")
        || s.contains("not exist")
        || s.contains("stopped")
}

#[async_trait::async_trait]
impl ContainerRuntime for RuncRuntime {
    async fn start(&self, spec: &ContainerSpec) -> Result<u32, RuntimeError> {
        Self::require_valid(&spec.id)?;
        let dir = self.state_dir(&spec.id);
        std::fs::create_dir_all(&self.cfg.state_root).map_err(RuntimeError::io(format!(
            "creating {}",
            self.cfg.state_root.display()
        )))?;
        match std::fs::create_dir(&dir) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                return Err(RuntimeError::AlreadyExists(spec.id.clone()));
            }
            Err(e) => return Err(RuntimeError::io(format!("creating {}", dir.display()))(e)),
        }
        let prepared = async {
            let kit = if spec.init {
                Some(self.init_kit().await?)
            } else {
                None
            };
            let owned = spec.clone();
            let bundle = dir.join(layout::BUNDLE);
            tokio::task::spawn_blocking(move || Self::write_bundle(&owned, &bundle, kit.as_deref()))
                .await
                .map_err(|e| RuntimeError::Io {
                    context: "writing the bundle".into(),
                    source: io::Error::other(e),
                })?
        }
        .await;
        if let Err(e) = prepared {
            // Nothing ran: leave no trace, so the id can be used again.
            let _ = std::fs::remove_dir_all(&dir);
            return Err(e);
        }
        self.launch_shim(self.shim_args(spec, &dir)).await
    }

    async fn state(&self, id: &str) -> Result<ContainerState, RuntimeError> {
        self.recover(id).await
    }

    async fn kill(&self, id: &str, signal: Signal) -> Result<(), RuntimeError> {
        Self::require_valid(id)?;
        match self.recover(id).await? {
            ContainerState::NotFound => return Err(RuntimeError::NotFound(id.to_string())),
            ContainerState::Exited(_) => return Ok(()),
            ContainerState::Running { .. } | ContainerState::Starting => {}
        }
        let out = self
            .runc_cmd()
            .arg("kill")
            .arg(id)
            .arg(signal.0.to_string())
            .output()
            .await
            .map_err(RuntimeError::io("running runc kill"))?;
        if out.status.success() {
            return Ok(());
        }
        let stderr = String::from_utf8_lossy(&out.stderr).trim().to_string();
        if runc_says_gone(&stderr) || matches!(self.recover(id).await?, ContainerState::Exited(_)) {
            return Ok(());
        }
        Err(RuntimeError::Runc {
            command: "kill",
            id: id.to_string(),
            message: stderr,
        })
    }

    async fn exec(&self, id: &str, args: &[String], timeout: Duration) -> Result<Option<i32>, RuntimeError> {
        Self::require_valid(id)?;
        if args.is_empty() {
            return Err(spec::SpecError::NoCommand.into());
        }
        // runc copies the container's process (user, env, cwd) and replaces
        // only the arguments. Output goes nowhere: ECS keeps none of it.
        let mut child = self
            .runc_cmd()
            .arg("exec")
            .arg(id)
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(RuntimeError::io("running runc exec"))?;
        match tokio::time::timeout(timeout, child.wait()).await {
            Ok(status) => {
                let status = status.map_err(RuntimeError::io("waiting for runc exec"))?;
                Ok(Some(status.code().unwrap_or(128 + std::os::unix::process::ExitStatusExt::signal(&status).unwrap_or(0))))
            }
            Err(_) => {
                // kill_on_drop kills runc; the exec'd process dies with it
                // because runc exec keeps it in the foreground.
                let _ = child.start_kill();
                let _ = child.wait().await;
                Ok(None)
            }
        }
    }

    async fn wait(&self, id: &str, timeout: Duration) -> Result<Option<ExitStatus>, RuntimeError> {
        let deadline = tokio::time::Instant::now() + timeout;
        let dir = self.state_dir(id);
        loop {
            match self.recover(id).await? {
                ContainerState::Exited(s) => return Ok(Some(s)),
                ContainerState::NotFound => return Err(RuntimeError::NotFound(id.to_string())),
                ContainerState::Running { .. } | ContainerState::Starting => {}
            }
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            if left.is_zero() {
                return Ok(None);
            }
            // Wait on the shim (it writes exit.json, then exits), or on the
            // container itself when it runs unsupervised.
            let shim = read_pid_record(&dir.join(layout::SHIM_PID)).filter(|r| r.is_alive());
            let target = match shim {
                Some(r) => Some(r),
                None => read_container_pid(&dir).and_then(PidRecord::of),
            };
            match target {
                Some(rec) => {
                    Self::wait_pid_exit(rec, left).await;
                }
                None => tokio::time::sleep(left.min(Duration::from_millis(20))).await,
            }
        }
    }

    async fn delete(&self, id: &str) -> Result<(), RuntimeError> {
        Self::require_valid(id)?;
        let dir = self.state_dir(id);
        if !dir.exists() {
            return Ok(());
        }
        let out = self
            .runc_cmd()
            .arg("delete")
            .arg("--force")
            .arg(id)
            .output()
            .await
            .map_err(RuntimeError::io("running runc delete"))?;
        if !out.status.success() {
            let stderr = String::from_utf8_lossy(&out.stderr).trim().to_string();
            if !runc_says_gone(&stderr) {
                return Err(RuntimeError::Runc {
                    command: "delete",
                    id: id.to_string(),
                    message: stderr,
                });
            }
        }
        if let Some(shim) = read_pid_record(&dir.join(layout::SHIM_PID)).filter(|r| r.is_alive())
            && !Self::wait_pid_exit(shim, SHIM_EXIT_TIMEOUT).await
            && shim.is_alive()
        {
            tracing::warn!(
                container = id,
                pid = shim.pid,
                "shim did not exit after its container was deleted; killing it"
            );
            let _ = sys::kill(shim.pid, libc::SIGKILL);
            Self::wait_pid_exit(shim, Duration::from_secs(1)).await;
        }
        tokio::fs::remove_dir_all(&dir)
            .await
            .or_else(|e| {
                if e.kind() == io::ErrorKind::NotFound {
                    Ok(())
                } else {
                    Err(e)
                }
            })
            .map_err(RuntimeError::io(format!("removing {}", dir.display())))
    }

    async fn list(&self) -> Result<Vec<String>, RuntimeError> {
        let mut out = Vec::new();
        let mut entries = match tokio::fs::read_dir(&self.cfg.state_root).await {
            Ok(e) => e,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(out),
            Err(e) => return Err(RuntimeError::io("listing containers")(e)),
        };
        while let Some(entry) = entries
            .next_entry()
            .await
            .map_err(RuntimeError::io("listing containers"))?
        {
            if let Some(name) = entry.file_name().to_str()
                && spec::valid_id(name)
                && entry.path().is_dir()
            {
                out.push(name.to_string());
            }
        }
        out.sort();
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shim_args_locate_container_and_task_memory_cgroups() {
        let rt = RuncRuntime::new(RuncConfig::new(
            "/usr/bin/berth",
            "/var/lib/berth/c",
            "/run/berth/runc",
        ));
        let mut spec = ContainerSpec::new("web", "/r", vec!["true".into()]);
        spec.cgroups_path = "/berth/task-1/web".into();
        let a = rt.shim_args(&spec, Path::new("/var/lib/berth/c/web"));
        assert_eq!(
            a.memory_cgroup,
            Some(PathBuf::from("/sys/fs/cgroup/memory/berth/task-1/web"))
        );
        assert_eq!(
            a.task_memory_cgroup,
            Some(PathBuf::from("/sys/fs/cgroup/memory/berth/task-1"))
        );
        assert_eq!(a.bundle, PathBuf::from("/var/lib/berth/c/web/bundle"));
        spec.cgroups_path = "/berth/web".into();
        assert_eq!(
            rt.shim_args(&spec, Path::new("/x")).task_memory_cgroup,
            None
        );
    }

    #[test]
    fn host_devices_include_null() {
        let devs = host_devices();
        let null = devs
            .iter()
            .find(|d| d.path == "/dev/null")
            .expect("/dev/null");
        assert_eq!((null.kind, null.major, null.minor), ('c', 1, 3));
    }

    #[tokio::test]
    async fn unknown_containers_are_not_found() {
        let dir = tempfile::tempdir().unwrap();
        let rt = RuncRuntime::new(RuncConfig::new(
            "/nonexistent",
            dir.path().join("s"),
            dir.path().join("r"),
        ));
        assert_eq!(rt.recover("nope").await.unwrap(), ContainerState::NotFound);
        assert!(matches!(
            rt.kill("nope", Signal::TERM).await,
            Err(RuntimeError::NotFound(_))
        ));
        assert!(matches!(
            rt.wait("nope", Duration::from_millis(1)).await,
            Err(RuntimeError::NotFound(_))
        ));
        rt.delete("nope").await.unwrap();
        assert!(rt.list().await.unwrap().is_empty());
        assert!(matches!(
            rt.kill("../x", Signal::TERM).await,
            Err(RuntimeError::InvalidSpec(_))
        ));
    }
}
