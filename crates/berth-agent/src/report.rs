//! State changes on their way to the server. Each report is a task's
//! complete current state (status, every container, attachments). Reports
//! with the same task status coalesce (only the latest matters), but every
//! change of task status is delivered, in order: the server derives facts
//! from transitions (a task that reached RUNNING has a `startedAt`, and one
//! that stops afterwards stopped because a container exited, not because it
//! failed to start). A failed send is retried until it lands. The server
//! never moves a status backwards, so a repeat is harmless.

use crate::control::{ControlError, ControlPlane};
use serde_json::Value;
use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Notify;

#[derive(Default)]
pub struct Reporter {
    pending: Mutex<BTreeMap<String, VecDeque<Value>>>,
    wake: Notify,
    in_flight: Mutex<usize>,
    drained: Notify,
}

impl Reporter {
    pub fn new() -> Arc<Reporter> {
        Arc::new(Reporter::default())
    }

    /// Queue `body` (a SubmitTaskStateChange request) for `task_arn`.
    pub fn submit(&self, task_arn: &str, body: Value) {
        let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        enqueue(pending.entry(task_arn.to_string()).or_default(), body);
        drop(pending);
        self.wake.notify_one();
    }

    /// Nothing queued and nothing being sent.
    pub fn idle(&self) -> bool {
        self.pending.lock().unwrap_or_else(|p| p.into_inner()).is_empty() && *self.in_flight.lock().unwrap_or_else(|p| p.into_inner()) == 0
    }

    /// Waits until every queued report was sent (for orderly shutdown).
    pub async fn flush(&self, within: Duration) {
        let _ = tokio::time::timeout(within, async {
            while !self.idle() {
                let d = self.drained.notified();
                tokio::select! { _ = d => {}, _ = tokio::time::sleep(Duration::from_millis(50)) => {} }
            }
        })
        .await;
    }

    /// Sends reports forever.
    pub async fn run(self: Arc<Self>, control: Arc<dyn ControlPlane>) {
        let mut backoff = Duration::from_millis(100);
        loop {
            let batch: Vec<(String, VecDeque<Value>)> = {
                let mut p = self.pending.lock().unwrap_or_else(|p| p.into_inner());
                *self.in_flight.lock().unwrap_or_else(|p| p.into_inner()) = p.len();
                std::mem::take(&mut *p).into_iter().collect()
            };
            if batch.is_empty() {
                self.drained.notify_waiters();
                self.wake.notified().await;
                continue;
            }
            let mut failed = false;
            for (arn, mut queue) in batch {
                while let Some(body) = queue.pop_front() {
                    match control.call("SubmitTaskStateChange", body.clone()).await {
                        Ok(_) => {}
                        Err(ControlError::Api { code, message }) => {
                            // The server refused it for good (unknown task,
                            // invalid field): retrying cannot help.
                            tracing::warn!(task = %arn, %code, %message, "state change refused");
                        }
                        Err(e) => {
                            tracing::debug!(task = %arn, error = %e, "state change not delivered; will retry");
                            failed = true;
                            // Put the undelivered ones back in front of
                            // anything submitted meanwhile.
                            queue.push_front(body);
                            let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
                            let newer = pending.remove(&arn).unwrap_or_default();
                            for b in newer {
                                enqueue(&mut queue, b);
                            }
                            pending.insert(arn.clone(), queue);
                            break;
                        }
                    }
                }
            }
            *self.in_flight.lock().unwrap_or_else(|p| p.into_inner()) = 0;
            if failed {
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(2));
            } else {
                backoff = Duration::from_millis(100);
            }
        }
    }
}

/// Appends a report, replacing the last queued one when the task status is
/// the same (only the latest state per status matters).
fn enqueue(queue: &mut VecDeque<Value>, body: Value) {
    match queue.back_mut() {
        Some(last) if last.get("status") == body.get("status") => *last = body,
        _ => queue.push_back(body),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_agent_protocol::{PollRequest, PollResponse};
    use serde_json::json;

    #[derive(Default)]
    struct Recorder {
        seen: Mutex<Vec<Value>>,
        fail_first: Mutex<u32>,
    }

    #[async_trait::async_trait]
    impl ControlPlane for Recorder {
        async fn call(&self, _op: &str, body: Value) -> Result<Value, ControlError> {
            let mut f = self.fail_first.lock().unwrap();
            if *f > 0 {
                *f -= 1;
                return Err(ControlError::Unreachable("down".into()));
            }
            self.seen.lock().unwrap().push(body);
            Ok(json!({}))
        }
        async fn poll(&self, _req: &PollRequest) -> Result<PollResponse, ControlError> {
            Err(ControlError::Unreachable("not used".into()))
        }
    }

    fn report(status: &str, n: u32) -> Value {
        json!({"task": "t", "status": status, "n": n})
    }

    #[tokio::test]
    async fn every_status_change_arrives_in_order_and_same_status_reports_coalesce() {
        let rec = Arc::new(Recorder { fail_first: Mutex::new(2), ..Recorder::default() });
        let reporter = Reporter::new();
        // Queued before the sender runs (and its first sends fail).
        reporter.submit("t", report("PENDING", 1));
        reporter.submit("t", report("PENDING", 2));
        reporter.submit("t", report("RUNNING", 3));
        reporter.submit("t", report("STOPPING", 4));
        reporter.submit("t", report("STOPPED", 5));
        reporter.submit("t", report("STOPPED", 6));
        let task = tokio::spawn(reporter.clone().run(rec.clone()));
        reporter.flush(Duration::from_secs(10)).await;
        task.abort();
        let seen: Vec<(String, u64)> = rec
            .seen
            .lock()
            .unwrap()
            .iter()
            .map(|v| (v["status"].as_str().unwrap().to_string(), v["n"].as_u64().unwrap()))
            .collect();
        assert_eq!(
            seen,
            vec![("PENDING".into(), 2), ("RUNNING".into(), 3), ("STOPPING".into(), 4), ("STOPPED".into(), 6)]
        );
    }
}
