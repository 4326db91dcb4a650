//! Wake-ups for waiters on single keys (held agent polls), from one store
//! watch.
//!
//! A store watch filters every commit for its prefix, so a thousand held
//! polls each watching their own key cost a thousand filters per commit.
//! Here one watch (started on first use) rings the bell of each changed key
//! that someone waits on: one map lookup per changed key, whatever the
//! number of waiters.

use berth_store::{Store, WatchEventKind};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock, Weak};
use tokio::sync::Notify;

#[derive(Default)]
pub struct Doorbells {
    bells: Mutex<HashMap<String, Weak<Notify>>>,
    started: OnceLock<()>,
}

impl Doorbells {
    /// The bell of `key`, rung after every commit that changes it (or after
    /// the watch lagged, when every bell rings). Keep the `Arc` while
    /// waiting; register with `Notified::enable` before reading what the
    /// key guards, so no change between the read and the wait is missed.
    pub fn bell(self: &Arc<Self>, store: &Arc<dyn Store>, key: &str) -> Arc<Notify> {
        self.started.get_or_init(|| {
            let bells = Arc::downgrade(self);
            let mut watch = store.watch("ecs/");
            tokio::spawn(async move {
                while let Some(ev) = watch.next().await {
                    let Some(this) = bells.upgrade() else { return };
                    this.ring(&ev.key, ev.kind == WatchEventKind::Lagged);
                }
            });
        });
        let mut bells = self.bells.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(b) = bells.get(key).and_then(Weak::upgrade) {
            return b;
        }
        let b = Arc::new(Notify::new());
        bells.insert(key.to_string(), Arc::downgrade(&b));
        // Forget bells nobody holds any more, now and then.
        if bells.len() > 64 && bells.len().is_power_of_two() {
            bells.retain(|_, w| w.strong_count() > 0);
        }
        b
    }

    fn ring(&self, key: &str, everyone: bool) {
        let bells = self.bells.lock().unwrap_or_else(|p| p.into_inner());
        if everyone {
            for b in bells.values().filter_map(Weak::upgrade) {
                b.notify_waiters();
            }
        } else if let Some(b) = bells.get(key).and_then(Weak::upgrade) {
            b.notify_waiters();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_store::Txn;
    use berth_store::memory::MemoryStore;
    use std::time::Duration;

    #[tokio::test]
    async fn a_change_rings_only_its_key() {
        let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
        let bells = Arc::new(Doorbells::default());
        let a = bells.bell(&store, "ecs/a");
        let b = bells.bell(&store, "ecs/b");
        let wait_a = a.notified();
        let wait_b = b.notified();
        tokio::pin!(wait_a, wait_b);
        wait_a.as_mut().enable();
        wait_b.as_mut().enable();
        store.txn(Txn::new().put("ecs/a", b"1".to_vec())).await.unwrap();
        tokio::time::timeout(Duration::from_secs(5), wait_a).await.expect("a rang");
        assert!(tokio::time::timeout(Duration::from_millis(100), wait_b).await.is_err(), "b did not ring");
    }

    #[tokio::test]
    async fn one_bell_per_key_while_held() {
        let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
        let bells = Arc::new(Doorbells::default());
        let first = bells.bell(&store, "ecs/k");
        assert!(Arc::ptr_eq(&first, &bells.bell(&store, "ecs/k")));
        drop(first);
        let again = bells.bell(&store, "ecs/k");
        assert_eq!(Arc::strong_count(&again), 1, "a fresh bell once nobody held the old one");
    }
}
