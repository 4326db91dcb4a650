//! `berth logs TASK`: a task's container output, read from the files the
//! runtime's shims write (JSON lines, rotated). Works with the agent
//! running or not; `follow` keeps reading until the task has stopped and
//! everything was printed.

use crate::state::{Phase, TaskFiles};
use berth_runtime::logs::{self, LogRecord};
use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum LogsError {
    #[error("no task {0} on this host (looked in {1})")]
    UnknownTask(String, String),
    #[error("task {task} has no container named {container}")]
    UnknownContainer { task: String, container: String },
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

pub struct LogsRequest {
    /// A task id or ARN.
    pub task: String,
    pub container: Option<String>,
    pub follow: bool,
    /// `{data dir}/agent/tasks`.
    pub tasks_dir: PathBuf,
    /// `{data dir}/agent/containers`: the runtime's state root.
    pub containers_dir: PathBuf,
    pub max_files: u32,
}

/// Writes the logs to `out`, each line prefixed with the container's name
/// when the task has more than one container and none was chosen.
pub async fn print(req: &LogsRequest, out: &mut (dyn Write + Send)) -> Result<(), LogsError> {
    let task_id = crate::plan::task_id(&req.task).to_string();
    let files = TaskFiles::open(&req.tasks_dir)?;
    let Some(record) = files.load(&task_id)? else {
        return Err(LogsError::UnknownTask(task_id, req.tasks_dir.display().to_string()));
    };
    let chosen: Vec<_> = match &req.container {
        Some(name) => {
            let c = record.containers.iter().filter(|c| &c.name == name).cloned().collect::<Vec<_>>();
            if c.is_empty() {
                return Err(LogsError::UnknownContainer { task: task_id, container: name.clone() });
            }
            c
        }
        None => record.containers.clone(),
    };
    let prefix = chosen.len() > 1;
    // Per container: how many records were printed, by their time stamp,
    // so rotation does not reprint or skip lines.
    let mut printed: Vec<(String, usize)> = vec![(String::new(), 0); chosen.len()];
    loop {
        // Looked at before reading: if the task had stopped by then, this
        // read sees everything its containers ever wrote.
        let stopped = !req.follow || files.load(&task_id)?.is_none_or(|r| r.phase == Phase::Stopped);
        let mut batch: Vec<(String, LogRecord)> = Vec::new();
        for (i, c) in chosen.iter().enumerate() {
            let base = req.containers_dir.join(&c.runtime_id).join(berth_runtime::shim::layout::CONTAINER_LOG);
            let records = logs::read_all(&base, req.max_files).unwrap_or_default();
            let (last_time, same_time_count) = &printed[i];
            let fresh: Vec<LogRecord> = if last_time.is_empty() {
                records
            } else {
                let mut seen_at_last = 0;
                records
                    .into_iter()
                    .filter(|r| match r.time.as_str().cmp(last_time.as_str()) {
                        std::cmp::Ordering::Greater => true,
                        std::cmp::Ordering::Equal => {
                            seen_at_last += 1;
                            seen_at_last > *same_time_count
                        }
                        std::cmp::Ordering::Less => false,
                    })
                    .collect()
            };
            if let Some(last) = fresh.last() {
                let count = fresh.iter().filter(|r| r.time == last.time).count()
                    + if &last.time == last_time { *same_time_count } else { 0 };
                printed[i] = (last.time.clone(), count);
            }
            batch.extend(fresh.into_iter().map(|r| (c.name.clone(), r)));
        }
        batch.sort_by(|a, b| a.1.time.cmp(&b.1.time));
        for (name, r) in batch {
            let line = r.log.strip_suffix('\n').unwrap_or(&r.log);
            if prefix {
                writeln!(out, "{name} | {line}")?;
            } else {
                writeln!(out, "{line}")?;
            }
        }
        out.flush()?;
        if stopped {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::{ContainerPhase, ContainerRecord, TaskRecord};
    use berth_runtime::logs::{RotatingLog, record};

    fn task(phase: Phase, names: &[&str]) -> TaskRecord {
        TaskRecord {
            desired: crate::plan::desired_for_tests("arn:aws:ecs:us-east-1:1:task/c/t1", serde_json::json!({}), None),
            boot_id: "b".into(),
            phase,
            containers: names
                .iter()
                .enumerate()
                .map(|(i, n)| ContainerRecord { phase: ContainerPhase::Running, ..ContainerRecord::pending(n, &format!("t1-{i}")) })
                .collect(),
            pull_started_at: None,
            pull_stopped_at: None,
            stop_reason: None,
            stopped_at: None,
            eni_details: vec![],
        }
    }

    fn write(dir: &std::path::Path, id: &str, lines: &[&str]) {
        let base = dir.join(id).join(berth_runtime::shim::layout::CONTAINER_LOG);
        std::fs::create_dir_all(base.parent().unwrap()).unwrap();
        let mut log = RotatingLog::open(&base, 1 << 20, 2).unwrap();
        for l in lines {
            log.write(&record("stdout", format!("{l}\n").as_bytes())).unwrap();
        }
    }

    fn request(dir: &std::path::Path, container: Option<&str>, follow: bool) -> LogsRequest {
        LogsRequest {
            task: "arn:aws:ecs:us-east-1:1:task/c/t1".into(),
            container: container.map(str::to_string),
            follow,
            tasks_dir: dir.join("tasks"),
            containers_dir: dir.join("containers"),
            max_files: 2,
        }
    }

    #[tokio::test]
    async fn prints_one_or_all_containers_and_follows_until_the_task_stops() {
        let dir = tempfile::tempdir().unwrap();
        let files = TaskFiles::open(dir.path().join("tasks")).unwrap();
        files.save(&task(Phase::Running, &["web", "side"])).unwrap();
        write(&dir.path().join("containers"), "t1-0", &["hello", "world"]);
        write(&dir.path().join("containers"), "t1-1", &["tick"]);

        let mut out = Vec::new();
        print(&request(dir.path(), Some("web"), false), &mut out).await.unwrap();
        assert_eq!(String::from_utf8(out).unwrap(), "hello\nworld\n");
        let mut out = Vec::new();
        print(&request(dir.path(), None, false), &mut out).await.unwrap();
        let all = String::from_utf8(out).unwrap();
        assert!(all.contains("web | hello") && all.contains("side | tick"), "{all}");
        assert!(matches!(print(&request(dir.path(), Some("nope"), false), &mut Vec::new()).await, Err(LogsError::UnknownContainer { .. })));

        // Follow: new lines appear, and it returns once the task stopped.
        let d = dir.path().to_path_buf();
        let follower = tokio::spawn(async move {
            let mut out = Vec::new();
            print(&request(&d, Some("web"), true), &mut out).await.unwrap();
            String::from_utf8(out).unwrap()
        });
        tokio::time::sleep(std::time::Duration::from_millis(400)).await;
        write(&dir.path().join("containers"), "t1-0", &["later"]);
        tokio::time::sleep(std::time::Duration::from_millis(400)).await;
        files.save(&task(Phase::Stopped, &["web", "side"])).unwrap();
        let followed = tokio::time::timeout(std::time::Duration::from_secs(10), follower).await.unwrap().unwrap();
        assert_eq!(followed, "hello\nworld\nlater\n");
    }

    #[tokio::test]
    async fn an_unknown_task_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let err = print(&request(dir.path(), None, false), &mut Vec::new()).await.unwrap_err();
        assert!(err.to_string().contains("no task t1"), "{err}");
    }
}
