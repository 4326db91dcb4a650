//! The container runtime as the agent sees it: a trait with a real
//! implementation ([`crate::runc::RuncRuntime`]) and a fake
//! ([`crate::fake::FakeRuntime`]), plus the stop protocol built on it.

use crate::spec::{ContainerSpec, SpecError};
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// A signal number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Signal(pub i32);

impl Signal {
    pub const HUP: Signal = Signal(libc::SIGHUP);
    pub const INT: Signal = Signal(libc::SIGINT);
    pub const QUIT: Signal = Signal(libc::SIGQUIT);
    pub const KILL: Signal = Signal(libc::SIGKILL);
    pub const USR1: Signal = Signal(libc::SIGUSR1);
    pub const USR2: Signal = Signal(libc::SIGUSR2);
    pub const TERM: Signal = Signal(libc::SIGTERM);
}

/// The ECS reason for a container the OOM killer stopped.
pub const OOM_REASON: &str = "OutOfMemoryError: Container killed due to memory usage";

/// How a container ended: the content of its `exit.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExitStatus {
    /// The exit code, or 128 + the signal (ECS and Docker report it so).
    /// `None` when it is not known (the container never started, or its
    /// supervisor was lost).
    pub exit_code: Option<i32>,
    /// The signal that ended the container's init process, if one did.
    pub signal: Option<i32>,
    /// The kernel's OOM killer acted in the container's memory cgroup (or
    /// killed it for the task's limit).
    pub oom_killed: bool,
    /// Epoch seconds with millisecond precision, as AWS APIs write time.
    pub finished_at: f64,
    /// Why the container never ran or why its end is unknown.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The container never ran (runc could not start it).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub start_failed: bool,
}

impl ExitStatus {
    /// The ECS container `reason`, when there is one to give.
    pub fn reason(&self) -> Option<String> {
        if self.oom_killed {
            Some(OOM_REASON.to_string())
        } else if self.start_failed {
            Some(format!(
                "CannotStartContainerError: {}",
                self.error.as_deref().unwrap_or("unknown error")
            ))
        } else {
            self.error.as_ref().map(|e| format!("InternalError: {e}"))
        }
    }
}

/// What a runtime knows about one container.
#[derive(Debug, Clone, PartialEq)]
pub enum ContainerState {
    /// Its supervisor is up but runc has not reported a process yet.
    Starting,
    /// Running; `pid` is its init process in the host's pid namespace.
    Running {
        pid: u32,
    },
    Exited(ExitStatus),
    NotFound,
}

#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error("container {0} not found")]
    NotFound(String),
    #[error("container {0} already exists")]
    AlreadyExists(String),
    #[error("invalid container spec: {0}")]
    InvalidSpec(#[from] SpecError),
    #[error("invalid user: {0}")]
    InvalidUser(#[from] crate::user::UserError),
    #[error("container {id} failed to start: {message}")]
    StartFailed { id: String, message: String },
    #[error("runc {command} {id}: {message}")]
    Runc {
        command: &'static str,
        id: String,
        message: String,
    },
    #[error("container {id} did not exit within {after:?}")]
    Timeout { id: String, after: Duration },
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
}

impl RuntimeError {
    pub(crate) fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> RuntimeError {
        let context = context.into();
        move |source| RuntimeError::Io { context, source }
    }
}

/// Runs containers. Ids are the [`ContainerSpec::id`]s, unique per host.
#[async_trait::async_trait]
pub trait ContainerRuntime: Send + Sync {
    /// Create and start the container; returns its init's host pid once it
    /// is running. The container outlives the caller.
    async fn start(&self, spec: &ContainerSpec) -> Result<u32, RuntimeError>;
    async fn state(&self, id: &str) -> Result<ContainerState, RuntimeError>;
    /// Signal the container's init process. A container that has already
    /// exited is not an error.
    async fn kill(&self, id: &str, signal: Signal) -> Result<(), RuntimeError>;
    /// Wait up to `timeout` for the container to exit; `None` if it is
    /// still running then.
    async fn wait(&self, id: &str, timeout: Duration) -> Result<Option<ExitStatus>, RuntimeError>;
    /// Forget the container: kill it if it runs, release runc's state, its
    /// cgroup and its state directory (logs included). Idempotent.
    async fn delete(&self, id: &str) -> Result<(), RuntimeError>;
    /// Every container this runtime holds state for, running or exited.
    async fn list(&self) -> Result<Vec<String>, RuntimeError>;
    /// Run `args` inside the running container (its namespaces, cgroup,
    /// user, environment and working directory), as health checks do.
    /// `Ok(None)` when it did not finish within `timeout` (it is killed).
    async fn exec(&self, id: &str, args: &[String], timeout: Duration) -> Result<Option<i32>, RuntimeError>;
}

/// How long after SIGKILL a container must be gone before [`stop`] gives up.
pub const KILL_GRACE: Duration = Duration::from_secs(30);

/// ECS stop semantics: SIGTERM, wait up to `timeout` (the container's
/// `stopTimeout`), then SIGKILL.
pub async fn stop<R>(runtime: &R, id: &str, timeout: Duration) -> Result<ExitStatus, RuntimeError>
where
    R: ContainerRuntime + ?Sized,
{
    if let ContainerState::Exited(status) = runtime.state(id).await? {
        return Ok(status);
    }
    runtime.kill(id, Signal::TERM).await?;
    if let Some(status) = runtime.wait(id, timeout).await? {
        return Ok(status);
    }
    tracing::info!(
        container = id,
        ?timeout,
        "container ignored SIGTERM; sending SIGKILL"
    );
    runtime.kill(id, Signal::KILL).await?;
    runtime
        .wait(id, KILL_GRACE)
        .await?
        .ok_or_else(|| RuntimeError::Timeout {
            id: id.to_string(),
            after: KILL_GRACE,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_json_shape() {
        let s = ExitStatus {
            exit_code: Some(137),
            signal: Some(9),
            oom_killed: true,
            finished_at: 1.5,
            error: None,
            start_failed: false,
        };
        assert_eq!(
            serde_json::to_value(&s).unwrap(),
            serde_json::json!({"exitCode": 137, "signal": 9, "oomKilled": true, "finishedAt": 1.5})
        );
        assert_eq!(s.reason().as_deref(), Some(OOM_REASON));
        let back: ExitStatus = serde_json::from_str(
            r#"{"exitCode":3,"signal":null,"oomKilled":false,"finishedAt":2.0}"#,
        )
        .unwrap();
        assert_eq!(back.exit_code, Some(3));
        assert_eq!(back.reason(), None);
        let lost = ExitStatus {
            exit_code: None,
            error: Some("lost".into()),
            ..back.clone()
        };
        assert_eq!(lost.reason().as_deref(), Some("InternalError: lost"));
        let failed = ExitStatus {
            start_failed: true,
            ..lost
        };
        assert_eq!(
            failed.reason().as_deref(),
            Some("CannotStartContainerError: lost")
        );
        assert_eq!(
            serde_json::to_value(&failed).unwrap()["startFailed"],
            serde_json::json!(true)
        );
    }
}
