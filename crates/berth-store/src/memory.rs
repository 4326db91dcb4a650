//! The in-memory fake: same semantics as the durable backend (both run the
//! contract suite), nothing persisted, every call completes immediately.

use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::{Mutex, MutexGuard};

use async_trait::async_trait;

use crate::apply::{self, State, Verdict};
use crate::watch::{DEFAULT_WATCH_CAPACITY, WatchHub};
use crate::{Page, Store, StoreError, Txn, TxnOutcome, Versioned, WatchStream};

pub struct MemoryStore {
    inner: Mutex<Inner>,
    hub: WatchHub,
}

#[derive(Default)]
struct Inner {
    map: BTreeMap<String, Versioned>,
    revision: u64,
}

impl State for Inner {
    fn mod_revision(&mut self, key: &str) -> Result<Option<u64>, StoreError> {
        Ok(self.map.get(key).map(|v| v.mod_revision))
    }
    fn put(&mut self, key: &str, value: &[u8], revision: u64) -> Result<(), StoreError> {
        self.map.insert(
            key.to_owned(),
            Versioned {
                value: value.to_vec(),
                mod_revision: revision,
            },
        );
        Ok(())
    }
    fn delete(&mut self, key: &str) -> Result<bool, StoreError> {
        Ok(self.map.remove(key).is_some())
    }
}

impl MemoryStore {
    pub fn new() -> MemoryStore {
        MemoryStore::with_watch_capacity(DEFAULT_WATCH_CAPACITY)
    }

    /// A store whose watchers lag after falling `capacity` transactions
    /// behind; small values let tests exercise `WatchEventKind::Lagged`.
    pub fn with_watch_capacity(capacity: usize) -> MemoryStore {
        MemoryStore {
            inner: Mutex::new(Inner::default()),
            hub: WatchHub::new(capacity),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // Poisoning would need a panic while the lock is held; apply_txn
        // checks every compare before writing and map operations only fail
        // by aborting on OOM, so the state is consistent even then.
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl Default for MemoryStore {
    fn default() -> MemoryStore {
        MemoryStore::new()
    }
}

#[async_trait]
impl Store for MemoryStore {
    async fn get(&self, key: &str) -> Result<Option<Versioned>, StoreError> {
        Ok(self.lock().map.get(key).cloned())
    }

    async fn list(
        &self,
        prefix: &str,
        start_after: Option<&str>,
        limit: usize,
    ) -> Result<Page, StoreError> {
        let limit = apply::page_limit(limit);
        let inner = self.lock();
        let range = (apply::list_start(prefix, start_after), Bound::Unbounded);
        let mut matching = inner
            .map
            .range::<str, _>(range)
            .take_while(|(k, _)| k.starts_with(prefix));
        let items: Vec<(String, Versioned)> = matching
            .by_ref()
            .take(limit)
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let next_start_after = match matching.next() {
            Some(_) => items.last().map(|(k, _)| k.clone()),
            None => None,
        };
        Ok(Page {
            items,
            next_start_after,
        })
    }

    async fn txn(&self, txn: Txn) -> Result<TxnOutcome, StoreError> {
        let mut inner = self.lock();
        let mut revision = inner.revision;
        match apply::apply_txn(&mut *inner, &txn, &mut revision)? {
            Verdict::Conflict => Ok(TxnOutcome::Conflict),
            Verdict::Committed {
                revision: committed,
                changed,
            } => {
                inner.revision = revision;
                // Published under the lock so concurrent transactions reach
                // watchers in revision order.
                if self.hub.has_watchers() {
                    let mut events = Vec::with_capacity(changed.len());
                    apply::into_events(txn, committed, &changed, &mut events);
                    self.hub.publish(events);
                }
                Ok(TxnOutcome::Committed {
                    revision: committed,
                })
            }
        }
    }

    async fn revision(&self) -> Result<u64, StoreError> {
        Ok(self.lock().revision)
    }

    fn watch(&self, prefix: &str) -> WatchStream {
        self.hub.subscribe(prefix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::WatchEventKind;

    #[tokio::test]
    async fn slow_watcher_sees_lagged() {
        let store = MemoryStore::with_watch_capacity(2);
        let mut w = store.watch("");
        for i in 0..5u8 {
            store.txn(Txn::new().put("k", vec![i])).await.unwrap();
        }
        let first = w.next().await.unwrap();
        assert_eq!(first.kind, WatchEventKind::Lagged);
        let next = w.next().await.unwrap();
        assert_eq!(next.revision, 4);
    }
}
