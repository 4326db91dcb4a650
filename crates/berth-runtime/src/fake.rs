//! [`FakeRuntime`]: a [`ContainerRuntime`] in memory, for testing callers
//! (the agent's task engine) and for simulating many hosts in one process.
//! It records every call and lets the test decide when and how containers
//! exit.

use crate::runtime::{ContainerRuntime, ContainerState, ExitStatus, RuntimeError, Signal};
use crate::spec::ContainerSpec;
use std::collections::{BTreeMap, HashSet, VecDeque};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;
use tokio::sync::Notify;

/// One recorded call.
#[derive(Debug, Clone, PartialEq)]
#[allow(clippy::large_enum_variant)] // a test record; matching on it beats boxing
pub enum Call {
    Start(ContainerSpec),
    Kill(String, Signal),
    Delete(String),
    Exec(String, Vec<String>),
}

#[derive(Debug)]
struct FakeContainer {
    spec: ContainerSpec,
    pid: u32,
    exit: Option<ExitStatus>,
}

#[derive(Debug, Default)]
struct Inner {
    containers: BTreeMap<String, FakeContainer>,
    calls: Vec<Call>,
    next_pid: u32,
    start_failures: VecDeque<String>,
    ignored: HashSet<(String, i32)>,
    now: f64,
    /// Exit code of `exec` per container; 0 when not set, `None` = timeout.
    exec_results: BTreeMap<String, Option<i32>>,
}

#[derive(Debug, Default)]
pub struct FakeRuntime {
    inner: Mutex<Inner>,
    changed: Notify,
}

impl FakeRuntime {
    pub fn new() -> FakeRuntime {
        FakeRuntime::default()
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Every start, kill and delete so far, in order.
    pub fn calls(&self) -> Vec<Call> {
        self.lock().calls.clone()
    }

    /// What `exec` in container `id` returns from now on (`None`: it
    /// times out).
    pub fn set_exec_result(&self, id: &str, result: Option<i32>) {
        self.lock().exec_results.insert(id.to_string(), result);
    }

    /// The spec a container was started with.
    pub fn spec(&self, id: &str) -> Option<ContainerSpec> {
        self.lock().containers.get(id).map(|c| c.spec.clone())
    }

    /// The next `start` fails with `message`.
    pub fn fail_next_start(&self, message: impl Into<String>) {
        self.lock().start_failures.push_back(message.into());
    }

    /// The container shrugs off `signal` (a `trap '' TERM`). By default
    /// every signal ends a container with 128 + the signal.
    pub fn ignore_signal(&self, id: &str, signal: Signal) {
        self.lock().ignored.insert((id.to_string(), signal.0));
    }

    /// The `finishedAt` given to later exits.
    pub fn set_now(&self, epoch_seconds: f64) {
        self.lock().now = epoch_seconds;
    }

    /// The container exits by itself with `code`.
    pub fn exit(&self, id: &str, code: i32) {
        let now = self.lock().now;
        self.exit_with(
            id,
            ExitStatus {
                exit_code: Some(code),
                signal: None,
                oom_killed: false,
                finished_at: now,
                error: None,
                start_failed: false,
            },
        );
    }

    /// The OOM killer ends the container.
    pub fn oom_kill(&self, id: &str) {
        let now = self.lock().now;
        let status = ExitStatus {
            exit_code: Some(137),
            signal: Some(9),
            oom_killed: true,
            finished_at: now,
            error: None,
            start_failed: false,
        };
        self.exit_with(id, status);
    }

    /// The container ends with exactly `status` (if it is still running).
    pub fn exit_with(&self, id: &str, status: ExitStatus) {
        if let Some(c) = self.lock().containers.get_mut(id) {
            c.exit.get_or_insert(status);
        }
        self.changed.notify_waiters();
    }
}

#[async_trait::async_trait]
impl ContainerRuntime for FakeRuntime {
    async fn start(&self, spec: &ContainerSpec) -> Result<u32, RuntimeError> {
        let mut inner = self.lock();
        inner.calls.push(Call::Start(spec.clone()));
        if let Some(message) = inner.start_failures.pop_front() {
            return Err(RuntimeError::StartFailed {
                id: spec.id.clone(),
                message,
            });
        }
        if inner.containers.contains_key(&spec.id) {
            return Err(RuntimeError::AlreadyExists(spec.id.clone()));
        }
        inner.next_pid += 1;
        let pid = 1000 + inner.next_pid;
        inner.containers.insert(
            spec.id.clone(),
            FakeContainer {
                spec: spec.clone(),
                pid,
                exit: None,
            },
        );
        drop(inner);
        self.changed.notify_waiters();
        Ok(pid)
    }

    async fn state(&self, id: &str) -> Result<ContainerState, RuntimeError> {
        Ok(match self.lock().containers.get(id) {
            None => ContainerState::NotFound,
            Some(FakeContainer { exit: Some(s), .. }) => ContainerState::Exited(s.clone()),
            Some(c) => ContainerState::Running { pid: c.pid },
        })
    }

    async fn kill(&self, id: &str, signal: Signal) -> Result<(), RuntimeError> {
        let mut inner = self.lock();
        inner.calls.push(Call::Kill(id.to_string(), signal));
        let ignored = inner.ignored.contains(&(id.to_string(), signal.0)) && signal != Signal::KILL;
        let now = inner.now;
        let Some(c) = inner.containers.get_mut(id) else {
            return Err(RuntimeError::NotFound(id.to_string()));
        };
        if c.exit.is_none() && !ignored {
            c.exit = Some(ExitStatus {
                exit_code: Some(128 + signal.0),
                signal: Some(signal.0),
                oom_killed: false,
                finished_at: now,
                error: None,
                start_failed: false,
            });
            drop(inner);
            self.changed.notify_waiters();
        }
        Ok(())
    }

    async fn wait(&self, id: &str, timeout: Duration) -> Result<Option<ExitStatus>, RuntimeError> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let notified = self.changed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            match self.state(id).await? {
                ContainerState::Exited(s) => return Ok(Some(s)),
                ContainerState::NotFound => return Err(RuntimeError::NotFound(id.to_string())),
                ContainerState::Running { .. } | ContainerState::Starting => {}
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return Ok(None);
            }
        }
    }

    async fn exec(&self, id: &str, args: &[String], _timeout: Duration) -> Result<Option<i32>, RuntimeError> {
        let mut inner = self.lock();
        inner.calls.push(Call::Exec(id.to_string(), args.to_vec()));
        match inner.containers.get(id) {
            None => Err(RuntimeError::NotFound(id.to_string())),
            Some(FakeContainer { exit: Some(_), .. }) => Err(RuntimeError::Runc {
                command: "exec",
                id: id.to_string(),
                message: "cannot exec in a stopped container".into(),
            }),
            Some(_) => Ok(inner.exec_results.get(id).cloned().unwrap_or(Some(0))),
        }
    }

    async fn delete(&self, id: &str) -> Result<(), RuntimeError> {
        let mut inner = self.lock();
        inner.calls.push(Call::Delete(id.to_string()));
        inner.containers.remove(id);
        drop(inner);
        self.changed.notify_waiters();
        Ok(())
    }

    async fn list(&self) -> Result<Vec<String>, RuntimeError> {
        Ok(self.lock().containers.keys().cloned().collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::stop;
    use std::sync::Arc;

    fn spec(id: &str) -> ContainerSpec {
        ContainerSpec::new(id, "/r", vec!["sleep".into(), "1000".into()])
    }

    #[tokio::test(start_paused = true)]
    async fn stop_sends_term_and_returns_when_it_exits() {
        let rt = FakeRuntime::new();
        rt.start(&spec("a")).await.unwrap();
        let status = stop(&rt, "a", Duration::from_secs(30)).await.unwrap();
        assert_eq!((status.exit_code, status.signal), (Some(143), Some(15)));
        assert_eq!(rt.calls()[1..], [Call::Kill("a".into(), Signal::TERM)]);
    }

    #[tokio::test(start_paused = true)]
    async fn stop_escalates_to_kill_after_the_timeout() {
        let rt = FakeRuntime::new();
        rt.start(&spec("a")).await.unwrap();
        rt.ignore_signal("a", Signal::TERM);
        let started = tokio::time::Instant::now();
        let status = stop(&rt, "a", Duration::from_secs(30)).await.unwrap();
        assert_eq!(started.elapsed(), Duration::from_secs(30));
        assert_eq!((status.exit_code, status.signal), (Some(137), Some(9)));
        assert_eq!(
            rt.calls()[1..],
            [
                Call::Kill("a".into(), Signal::TERM),
                Call::Kill("a".into(), Signal::KILL)
            ]
        );
    }

    #[tokio::test(start_paused = true)]
    async fn stop_of_an_exited_container_sends_nothing() {
        let rt = FakeRuntime::new();
        rt.start(&spec("a")).await.unwrap();
        rt.exit("a", 0);
        let status = stop(&rt, "a", Duration::from_secs(30)).await.unwrap();
        assert_eq!(status.exit_code, Some(0));
        assert_eq!(rt.calls().len(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn wait_wakes_on_a_scripted_exit() {
        let rt = Arc::new(FakeRuntime::new());
        rt.start(&spec("a")).await.unwrap();
        let waiter = {
            let rt = rt.clone();
            tokio::spawn(async move { rt.wait("a", Duration::from_secs(60)).await })
        };
        tokio::time::sleep(Duration::from_secs(5)).await;
        rt.oom_kill("a");
        let status = waiter.await.unwrap().unwrap().unwrap();
        assert!(status.oom_killed);
        assert_eq!(status.reason().as_deref(), Some(crate::runtime::OOM_REASON));
        assert_eq!(
            rt.wait("b", Duration::from_secs(1))
                .await
                .unwrap_err()
                .to_string(),
            "container b not found"
        );
    }

    #[tokio::test]
    async fn scripted_start_failure_and_duplicates() {
        let rt = FakeRuntime::new();
        rt.fail_next_start("no such image");
        assert!(matches!(
            rt.start(&spec("a")).await,
            Err(RuntimeError::StartFailed { .. })
        ));
        rt.start(&spec("a")).await.unwrap();
        assert!(matches!(
            rt.start(&spec("a")).await,
            Err(RuntimeError::AlreadyExists(_))
        ));
        assert_eq!(rt.list().await.unwrap(), vec!["a".to_string()]);
        rt.delete("a").await.unwrap();
        assert_eq!(rt.state("a").await.unwrap(), ContainerState::NotFound);
    }
}
