//! The per-container supervisor (like conmon or containerd-shim), run as
//! `berth shim ...` by `RuncRuntime::start` ([`crate::runc::RuncRuntime`]).
//!
//! It forks once and lets its first half exit, so the supervisor proper is
//! re-parented away from the agent; it starts a session of its own and
//! becomes a child subreaper. Then it runs `runc run --detach` with stdin
//! `/dev/null` and stdout/stderr on pipes it reads into the container's
//! rotated JSON-lines log. When runc exits, the container's init is
//! re-parented to the shim (the subreaper), so the shim learns its real wait
//! status (exit code or signal), reads the memory cgroup's OOM counters,
//! writes `exit.json` atomically into the container's state directory, and
//! exits. The agent can come and go meanwhile: everything it needs to know
//! is in files.
//!
//! The start handshake is the shim's stdout: one JSON line, `{"pid":N}` once
//! runc reports the container running, or `{"error":"..."}`; then the shim
//! points its stdout at `/dev/null`, so the reader sees end-of-file.

use crate::cgroups::parse_oom_control;
use crate::logs::{self, RotatingLog};
use crate::runtime::ExitStatus;
use crate::sys::{self, PidRecord, WaitStatus};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::ffi::OsString;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Files in a container's state directory.
pub mod layout {
    pub const BUNDLE: &str = "bundle";
    pub const SHIM_PID: &str = "shim.pid";
    pub const CONTAINER_PID: &str = "container.pid";
    pub const EXIT_JSON: &str = "exit.json";
    pub const RUNC_LOG: &str = "runc.log";
    pub const SHIM_LOG: &str = "shim.log";
    pub const CONTAINER_LOG: &str = "container.log";
}

/// How long the shim waits for the output pipes to drain after the
/// container's init exited (a process outside its pid namespace may hold them).
const DRAIN_TIMEOUT: Duration = Duration::from_secs(2);

/// What the shim is told to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShimArgs {
    pub id: String,
    /// The container's state directory (see [`layout`]).
    pub state_dir: PathBuf,
    pub bundle: PathBuf,
    pub runc: PathBuf,
    pub runc_root: PathBuf,
    /// Host directory of the container's memory cgroup, for OOM detection.
    pub memory_cgroup: Option<PathBuf>,
    /// Host directory of the task's memory cgroup: a SIGKILL while its OOM
    /// counter rose is an OOM kill for the task's limit.
    pub task_memory_cgroup: Option<PathBuf>,
    pub log_max_bytes: u64,
    pub log_max_files: u32,
}

impl ShimArgs {
    /// The command-line form, parsed back by [`ShimArgs::parse`].
    pub fn to_args(&self) -> Vec<OsString> {
        let mut out: Vec<OsString> = Vec::new();
        let mut push = |k: &str, v: OsString| {
            out.push(k.into());
            out.push(v);
        };
        push("--id", self.id.clone().into());
        push("--state-dir", self.state_dir.clone().into());
        push("--bundle", self.bundle.clone().into());
        push("--runc", self.runc.clone().into());
        push("--runc-root", self.runc_root.clone().into());
        if let Some(p) = &self.memory_cgroup {
            push("--memory-cgroup", p.clone().into());
        }
        if let Some(p) = &self.task_memory_cgroup {
            push("--task-memory-cgroup", p.clone().into());
        }
        push("--log-max-bytes", self.log_max_bytes.to_string().into());
        push("--log-max-files", self.log_max_files.to_string().into());
        out
    }

    pub fn parse(args: Vec<OsString>) -> Result<ShimArgs, String> {
        let mut map: HashMap<String, OsString> = HashMap::new();
        let mut it = args.into_iter();
        while let Some(k) = it.next() {
            let k = k
                .into_string()
                .map_err(|k| format!("unexpected argument {k:?}"))?;
            if !k.starts_with("--") {
                return Err(format!("unexpected argument {k:?}"));
            }
            let v = it.next().ok_or_else(|| format!("{k} needs a value"))?;
            map.insert(k, v);
        }
        let mut take = |k: &str| map.remove(k);
        let required = |v: Option<OsString>, k: &str| v.ok_or_else(|| format!("missing {k}"));
        let id = required(take("--id"), "--id")?
            .into_string()
            .map_err(|_| "--id is not UTF-8".to_string())?;
        let state_dir = PathBuf::from(required(take("--state-dir"), "--state-dir")?);
        let bundle = PathBuf::from(required(take("--bundle"), "--bundle")?);
        let runc = PathBuf::from(take("--runc").unwrap_or_else(|| "runc".into()));
        let runc_root = PathBuf::from(required(take("--runc-root"), "--runc-root")?);
        let memory_cgroup = take("--memory-cgroup").map(PathBuf::from);
        let task_memory_cgroup = take("--task-memory-cgroup").map(PathBuf::from);
        let num = |v: Option<OsString>, k: &str, default: u64| -> Result<u64, String> {
            match v {
                None => Ok(default),
                Some(v) => v
                    .to_str()
                    .and_then(|s| s.parse().ok())
                    .ok_or_else(|| format!("{k}: not a number")),
            }
        };
        let log_max_bytes = num(
            take("--log-max-bytes"),
            "--log-max-bytes",
            logs::DEFAULT_MAX_BYTES,
        )?;
        let log_max_files = num(
            take("--log-max-files"),
            "--log-max-files",
            u64::from(logs::DEFAULT_MAX_FILES),
        )?;
        if let Some(k) = map.keys().next() {
            return Err(format!("unknown option {k}"));
        }
        if !crate::spec::valid_id(&id) {
            return Err(format!("invalid container id {id:?}"));
        }
        Ok(ShimArgs {
            id,
            state_dir,
            bundle,
            runc,
            runc_root,
            memory_cgroup,
            task_memory_cgroup,
            log_max_bytes,
            log_max_files: u32::try_from(log_max_files).unwrap_or(u32::MAX),
        })
    }
}

/// The start handshake line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StartReport {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

fn report(r: &StartReport) {
    let mut out = std::io::stdout().lock();
    // The reader may be gone (the agent died mid-start): nothing to do then.
    let _ = serde_json::to_writer(&mut out, r);
    let _ = out.write_all(b"\n");
    let _ = out.flush();
}

fn epoch_seconds_now() -> f64 {
    let ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0);
    ms as f64 / 1000.0
}

/// Entry point of `berth shim <args>`; returns the process exit code.
///
/// Must be called while the process is still single-threaded (first thing
/// in `main`, before any async runtime starts): it forks.
pub fn run(args: Vec<OsString>) -> i32 {
    let args = match ShimArgs::parse(args) {
        Ok(a) => a,
        Err(e) => {
            report(&StartReport {
                pid: None,
                error: Some(format!("berth shim: {e}")),
            });
            return 2;
        }
    };
    // SAFETY: this function's documented contract is that the process is
    // single-threaded here (the `berth` binary calls it before starting
    // any thread), which is what fork's child needs to carry on.
    match unsafe { sys::fork() } {
        Err(e) => {
            report(&StartReport {
                pid: None,
                error: Some(format!("berth shim: fork: {e}")),
            });
            1
        }
        // The first half exits at once; the caller reaps it.
        Ok(Some(_)) => 0,
        Ok(None) => daemon(&args),
    }
}

fn daemon(args: &ShimArgs) -> i32 {
    if let Err(e) = sys::setsid() {
        eprintln!("berth shim {}: setsid: {e}", args.id);
    }
    if let Err(e) = sys::set_child_subreaper() {
        // Without it the container's exit status cannot be collected.
        let msg = format!("prctl(PR_SET_CHILD_SUBREAPER): {e}");
        report(&StartReport {
            pid: None,
            error: Some(msg),
        });
        return 1;
    }
    let _ = std::env::set_current_dir("/");
    let me = std::process::id() as libc::pid_t;
    let written = match PidRecord::of(me) {
        Some(rec) => sys::write_atomic(
            &args.state_dir.join(layout::SHIM_PID),
            rec.render().as_bytes(),
        ),
        None => Err(std::io::Error::other("/proc/self/stat is unreadable")),
    };
    if let Err(e) = written {
        let msg = format!("writing {}: {e}", layout::SHIM_PID);
        report(&StartReport {
            pid: None,
            error: Some(msg),
        });
        return 1;
    }
    match supervise(args) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("berth shim {}: {e}", args.id);
            1
        }
    }
}

fn read_oom_kills(dir: &Path) -> Option<(u64, bool)> {
    let text = std::fs::read_to_string(dir.join("memory.oom_control")).ok()?;
    let oom = parse_oom_control(&text);
    Some((oom.oom_kill, oom.under_oom))
}

/// The last error runc logged (its `--log-format json` lines).
fn runc_error(log: &Path) -> Option<String> {
    let text = std::fs::read_to_string(log).ok()?;
    text.lines().rev().find_map(|line| {
        let v: serde_json::Value = serde_json::from_str(line).ok()?;
        (v.get("level")?.as_str()? == "error")
            .then(|| v.get("msg")?.as_str().map(str::to_string))?
    })
}

fn write_exit(args: &ShimArgs, status: &ExitStatus) -> std::io::Result<()> {
    let json = serde_json::to_vec(status).map_err(std::io::Error::other)?;
    sys::write_atomic(&args.state_dir.join(layout::EXIT_JSON), &json)
}

fn fail_start(args: &ShimArgs, message: String) -> std::io::Result<()> {
    let status = ExitStatus {
        exit_code: None,
        signal: None,
        oom_killed: false,
        finished_at: epoch_seconds_now(),
        error: Some(message.clone()),
        start_failed: true,
    };
    let written = write_exit(args, &status);
    report(&StartReport {
        pid: None,
        error: Some(message),
    });
    written
}

/// Wait for `n` pump threads to finish, at most until `deadline`.
fn drain(done: &mpsc::Receiver<()>, n: usize, deadline: Instant) {
    for _ in 0..n {
        let left = deadline.saturating_duration_since(Instant::now());
        if done.recv_timeout(left).is_err() {
            return;
        }
    }
}

fn supervise(args: &ShimArgs) -> std::io::Result<()> {
    let task_oom_baseline = args
        .task_memory_cgroup
        .as_deref()
        .and_then(read_oom_kills)
        .map(|(n, _)| n);
    let log = RotatingLog::open(
        &args.state_dir.join(layout::CONTAINER_LOG),
        args.log_max_bytes,
        args.log_max_files,
    );
    let log = match log {
        Ok(l) => Arc::new(Mutex::new(l)),
        Err(e) => return fail_start(args, format!("opening the container log: {e}")),
    };
    let (out_r, out_w) = std::io::pipe()?;
    let (err_r, err_w) = std::io::pipe()?;
    let pid_file = args.state_dir.join(layout::CONTAINER_PID);
    let runc_log = args.state_dir.join(layout::RUNC_LOG);
    // The Command (and with it our copies of the pipes' write ends) is
    // dropped at the end of this statement, so end-of-file on the pipes
    // means the container side closed them.
    let spawned = Command::new(&args.runc)
        .arg("--root")
        .arg(&args.runc_root)
        .arg("--log")
        .arg(&runc_log)
        .arg("--log-format")
        .arg("json")
        .arg("run")
        .arg("--detach")
        .arg("--bundle")
        .arg(&args.bundle)
        .arg("--pid-file")
        .arg(&pid_file)
        .arg(&args.id)
        .stdin(Stdio::null())
        .stdout(out_w)
        .stderr(err_w)
        .spawn();
    let runc = match spawned {
        Ok(c) => c,
        Err(e) => return fail_start(args, format!("running {}: {e}", args.runc.display())),
    };

    let (done_tx, done_rx) = mpsc::channel::<()>();
    for (stream, reader) in [("stdout", out_r), ("stderr", err_r)] {
        let log = Arc::clone(&log);
        let done = done_tx.clone();
        let id = args.id.clone();
        std::thread::spawn(move || {
            let mut failed = false;
            let result = logs::split_lines(reader, |line| {
                let rec = logs::record(stream, line);
                let mut l = log.lock().unwrap_or_else(|p| p.into_inner());
                if let Err(e) = l.write(&rec)
                    && !failed
                {
                    eprintln!("berth shim {id}: writing the log: {e}");
                    failed = true;
                }
            });
            if let Err(e) = result {
                eprintln!("berth shim {id}: reading {stream}: {e}");
            }
            let _ = done.send(());
        });
    }
    drop(done_tx);

    // Reap every child; keep statuses of ones that are not runc (the
    // container's init may exit, and be re-parented to us, before runc does).
    let runc_pid = runc.id() as libc::pid_t;
    let mut reaped: HashMap<libc::pid_t, WaitStatus> = HashMap::new();
    let runc_status = loop {
        match sys::waitpid(-1, false) {
            Ok(Some((pid, st))) if pid == runc_pid => break st,
            Ok(Some((pid, st))) => {
                reaped.insert(pid, st);
            }
            Ok(None) => {}
            Err(e) => return fail_start(args, format!("waiting for runc: {e}")),
        }
    };
    if runc_status != WaitStatus::Exited(0) {
        drain(&done_rx, 2, Instant::now() + Duration::from_secs(1));
        let message = runc_error(&runc_log)
            .unwrap_or_else(|| format!("runc exited with status {}", runc_status.code()));
        return fail_start(args, message);
    }
    let cpid = std::fs::read_to_string(&pid_file)
        .ok()
        .and_then(|t| t.trim().parse::<libc::pid_t>().ok());
    let Some(cpid) = cpid.filter(|&p| p > 0) else {
        return fail_start(
            args,
            format!("runc wrote no usable {}", layout::CONTAINER_PID),
        );
    };
    report(&StartReport {
        pid: Some(cpid as u32),
        error: None,
    });
    if let Err(e) = sys::redirect_to_devnull(1) {
        eprintln!("berth shim {}: closing the start pipe: {e}", args.id);
    }

    let status = match reaped.remove(&cpid) {
        Some(st) => Some(st),
        None => loop {
            match sys::waitpid(-1, false) {
                Ok(Some((pid, st))) if pid == cpid => break Some(st),
                Ok(_) => {}
                Err(e) => {
                    // Not our child after all (no subreaper support?):
                    // watch it go without its status.
                    eprintln!("berth shim {}: waiting for {cpid}: {e}", args.id);
                    while sys::kill(cpid, 0).is_ok()
                        && sys::proc_stat(cpid).is_some_and(|s| s.state != 'Z')
                    {
                        std::thread::sleep(Duration::from_millis(100));
                    }
                    break None;
                }
            }
        },
    };
    drain(&done_rx, 2, Instant::now() + DRAIN_TIMEOUT);

    let code = status.map(WaitStatus::code);
    let own_oom = args
        .memory_cgroup
        .as_deref()
        .and_then(read_oom_kills)
        .is_some_and(|(n, under)| n > 0 || under);
    let task_oom = match (task_oom_baseline, code) {
        (Some(base), Some(137)) => args
            .task_memory_cgroup
            .as_deref()
            .and_then(read_oom_kills)
            .is_some_and(|(n, _)| n > base),
        _ => false,
    };
    let exit = ExitStatus {
        exit_code: code,
        signal: match status {
            Some(WaitStatus::Signaled(s)) => Some(s),
            _ => None,
        },
        oom_killed: own_oom || task_oom,
        finished_at: epoch_seconds_now(),
        error: status
            .is_none()
            .then(|| "the container's exit status was lost".to_string()),
        start_failed: false,
    };
    write_exit(args, &exit)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn args_round_trip() {
        let a = ShimArgs {
            id: "c1".into(),
            state_dir: "/var/lib/berth/c1".into(),
            bundle: "/var/lib/berth/c1/bundle".into(),
            runc: "/usr/sbin/runc".into(),
            runc_root: "/run/berth/runc".into(),
            memory_cgroup: Some("/sys/fs/cgroup/memory/berth/t/c1".into()),
            task_memory_cgroup: None,
            log_max_bytes: 1000,
            log_max_files: 2,
        };
        assert_eq!(ShimArgs::parse(a.to_args()).unwrap(), a);
        assert!(ShimArgs::parse(vec!["--id".into()]).is_err());
        assert!(
            ShimArgs::parse(vec!["--bogus".into(), "1".into()])
                .unwrap_err()
                .contains("missing --id")
        );
    }

    #[test]
    fn finds_runcs_last_error() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("runc.log");
        std::fs::write(
            &p,
            "{\"level\":\"warning\",\"msg\":\"meh\",\"time\":\"t\"}\n\
             {\"level\":\"error\",\"msg\":\"runc run failed: exec: \\\"nope\\\": not found\",\"time\":\"t\"}\n",
        )
        .unwrap();
        assert_eq!(
            runc_error(&p).as_deref(),
            Some("runc run failed: exec: \"nope\": not found")
        );
        assert_eq!(runc_error(&dir.path().join("missing")), None);
    }
}
