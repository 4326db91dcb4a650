//! Watch streams: committed changes fanned out to every watcher in revision
//! order.
//!
//! Each backend owns one [`WatchHub`] and publishes to it from the single
//! place that orders its commits (the memory store's lock, the redb writer
//! thread), which is what makes "revision order" hold without any sorting
//! here. A message is one commit's (or one group commit's) events, so a
//! watcher pays one channel slot per commit, not per key.

use std::sync::Arc;

use tokio::sync::broadcast;

/// How many commits a watcher may fall behind before it is told it lagged.
pub(crate) const DEFAULT_WATCH_CAPACITY: usize = 4096;

/// One change seen by a watcher.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatchEvent {
    /// The revision of the commit that made the change. For
    /// [`WatchEventKind::Lagged`], the revision of the last event this stream
    /// delivered before the gap (0 if none).
    pub revision: u64,
    /// The changed key. For [`WatchEventKind::Lagged`], the watched prefix.
    pub key: String,
    pub kind: WatchEventKind,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WatchEventKind {
    /// The key was written; its `mod_revision` is now the event's revision.
    Put { value: Vec<u8> },
    /// The key existed and was deleted. Deleting a missing key produces no event.
    Delete,
    /// The watcher fell behind and events were dropped; re-list to catch up.
    /// Events after this one are again complete and in order.
    Lagged,
}

type Batch = Arc<[WatchEvent]>;

/// The publishing side shared by the backends. Cloning shares the channel;
/// watchers see `None` once every clone is dropped.
#[derive(Clone)]
pub(crate) struct WatchHub {
    tx: broadcast::Sender<Batch>,
}

impl WatchHub {
    pub(crate) fn new(capacity: usize) -> WatchHub {
        // broadcast::channel panics on 0; a zero capacity can only mean "as
        // small as possible".
        let (tx, _) = broadcast::channel(capacity.max(1));
        WatchHub { tx }
    }

    /// Whether anyone could receive a publish now. Checked after a commit
    /// (never before) so that a watcher created while the commit was in
    /// flight still gets its events.
    pub(crate) fn has_watchers(&self) -> bool {
        self.tx.receiver_count() > 0
    }

    /// Publish one commit's events. Callers must publish in revision order.
    pub(crate) fn publish(&self, events: Vec<WatchEvent>) {
        if events.is_empty() {
            return;
        }
        // An error only means nobody is watching, which is fine.
        let _ = self.tx.send(events.into());
    }

    pub(crate) fn subscribe(&self, prefix: &str) -> WatchStream {
        WatchStream {
            rx: self.tx.subscribe(),
            prefix: prefix.to_owned(),
            pending: Arc::from(Vec::new()),
            pos: 0,
            last_revision: 0,
        }
    }
}

/// Changes under one prefix, in revision order. See [`crate::Store::watch`].
pub struct WatchStream {
    rx: broadcast::Receiver<Batch>,
    prefix: String,
    /// The batch being handed out, and how far into it we are.
    pending: Batch,
    pos: usize,
    last_revision: u64,
}

impl WatchStream {
    /// The next change, or `None` once the store is closed (dropped) and
    /// every change committed before that has been delivered.
    ///
    /// Cancel-safe: dropping the future (e.g. in `tokio::select!`) loses no
    /// event, so it can be raced against a shutdown signal.
    pub async fn next(&mut self) -> Option<WatchEvent> {
        loop {
            while let Some(ev) = self.pending.get(self.pos) {
                self.pos += 1;
                if ev.key.starts_with(&self.prefix) {
                    self.last_revision = ev.revision;
                    return Some(ev.clone());
                }
            }
            match self.rx.recv().await {
                Ok(batch) => {
                    self.pending = batch;
                    self.pos = 0;
                }
                // The receiver has already skipped to the oldest retained
                // batch, so the next call resumes with complete data.
                Err(broadcast::error::RecvError::Lagged(_)) => {
                    return Some(WatchEvent {
                        revision: self.last_revision,
                        key: self.prefix.clone(),
                        kind: WatchEventKind::Lagged,
                    });
                }
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    }

    /// The prefix this stream was created for.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put(revision: u64, key: &str) -> WatchEvent {
        WatchEvent {
            revision,
            key: key.into(),
            kind: WatchEventKind::Put { value: vec![1] },
        }
    }

    #[tokio::test]
    async fn filters_by_prefix_and_keeps_order() {
        let hub = WatchHub::new(8);
        let mut w = hub.subscribe("a/");
        hub.publish(vec![put(1, "a/1"), put(1, "b/1"), put(1, "a0")]);
        hub.publish(vec![put(2, "a/2")]);
        drop(hub);
        assert_eq!(w.next().await, Some(put(1, "a/1")));
        assert_eq!(w.next().await, Some(put(2, "a/2")));
        assert_eq!(w.next().await, None);
    }

    #[tokio::test]
    async fn lag_yields_one_lagged_event_then_resumes() {
        let hub = WatchHub::new(2);
        let mut w = hub.subscribe("");
        hub.publish(vec![put(1, "k")]);
        assert_eq!(w.next().await, Some(put(1, "k")));
        for rev in 2..=6 {
            hub.publish(vec![put(rev, "k")]);
        }
        let lagged = w.next().await;
        assert_eq!(
            lagged,
            Some(WatchEvent {
                revision: 1,
                key: String::new(),
                kind: WatchEventKind::Lagged
            })
        );
        // Capacity 2: the two newest survive.
        assert_eq!(w.next().await, Some(put(5, "k")));
        assert_eq!(w.next().await, Some(put(6, "k")));
    }

    #[test]
    fn zero_capacity_does_not_panic() {
        let hub = WatchHub::new(0);
        hub.publish(vec![put(1, "k")]);
        assert!(!hub.has_watchers());
    }
}
