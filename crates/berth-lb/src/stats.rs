//! Traffic counters per target: requests in flight (least outstanding
//! requests reads them), requests served (the RequestCountPerTarget figure
//! auto scaling reads, persisted by the supervisor) and connections: for
//! ALB targets the upstream connections the load balancer opened to the
//! target (pooled keep-alive connections are counted once, when opened),
//! not client connections.

use crate::TargetKey;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

#[derive(Default, Debug)]
pub struct TargetCounters {
    pub in_flight: AtomicU64,
    pub requests: AtomicU64,
    pub connections: AtomicU64,
}

#[derive(Default)]
pub struct Stats {
    targets: RwLock<HashMap<TargetKey, Arc<TargetCounters>>>,
}

impl Stats {
    /// The counters of one target, created on first use.
    pub fn target(&self, key: &TargetKey) -> Arc<TargetCounters> {
        // Poisoning cannot leave the map inconsistent: inserts are whole.
        if let Some(c) = self.targets.read().unwrap_or_else(|p| p.into_inner()).get(key) {
            return c.clone();
        }
        let mut map = self.targets.write().unwrap_or_else(|p| p.into_inner());
        map.entry(key.clone()).or_default().clone()
    }

    /// (target, requests served so far, requests in flight) for every target
    /// that has counters.
    pub fn totals(&self) -> Vec<(TargetKey, u64, u64)> {
        let map = self.targets.read().unwrap_or_else(|p| p.into_inner());
        map.iter()
            .map(|(k, c)| (k.clone(), c.requests.load(Ordering::Relaxed), c.in_flight.load(Ordering::Relaxed)))
            .collect()
    }

    /// Drop the counters of targets no longer registered.
    pub fn retain(&self, mut keep: impl FnMut(&TargetKey) -> bool) {
        let mut map = self.targets.write().unwrap_or_else(|p| p.into_inner());
        map.retain(|k, _| keep(k));
    }
}
