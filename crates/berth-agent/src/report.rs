//! State changes on their way to the server. Each report is a task's
//! complete current state (status, every container, attachments), so only
//! the latest per task matters: newer ones replace queued older ones, and
//! a failed send is retried until it lands or is superseded. The server
//! never moves a status backwards, so a repeat is harmless.

use crate::control::{ControlError, ControlPlane};
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Notify;

#[derive(Default)]
pub struct Reporter {
    pending: Mutex<BTreeMap<String, Value>>,
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
        self.pending.lock().unwrap_or_else(|p| p.into_inner()).insert(task_arn.to_string(), body);
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
            let batch: Vec<(String, Value)> = {
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
            for (arn, body) in batch {
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
                        self.pending.lock().unwrap_or_else(|p| p.into_inner()).entry(arn).or_insert(body);
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
