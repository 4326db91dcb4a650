//! The in-memory health of every target, shared by the health checker (the
//! only writer) and the traffic paths (readers).

use std::collections::HashMap;
use std::sync::RwLock;
use std::time::Instant;

/// One registered target of one target group.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TargetKey {
    pub target_group_arn: String,
    pub id: String,
    pub port: u16,
}

/// ELB's target states that matter to traffic.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TargetState {
    /// Registered, not yet through its first health checks.
    Initial,
    Healthy,
    Unhealthy,
    /// Deregistered and waiting out the deregistration delay: no new
    /// requests or connections.
    Draining,
    /// Health checks are disabled for the group (ELB's `unavailable`):
    /// routable.
    Unavailable,
}

#[derive(Clone, Copy, Debug)]
pub struct HealthEntry {
    pub state: TargetState,
    /// When the target entered `state`; slow start ramps from the moment a
    /// target became healthy.
    pub since: Instant,
}

#[derive(Default)]
pub struct HealthTable {
    entries: RwLock<HashMap<TargetKey, HealthEntry>>,
}

impl HealthTable {
    /// `Initial` for a target never checked.
    pub fn get(&self, key: &TargetKey) -> Option<HealthEntry> {
        // A poisoned lock only means a writer panicked mid-insert of a Copy
        // value; the map itself is intact.
        let map = self.entries.read().unwrap_or_else(|p| p.into_inner());
        map.get(key).copied()
    }

    pub fn state(&self, key: &TargetKey) -> TargetState {
        self.get(key).map_or(TargetState::Initial, |e| e.state)
    }

    /// Record `state`; `since` moves only when the state changes. Returns
    /// whether it changed.
    pub fn set(&self, key: TargetKey, state: TargetState, now: Instant) -> bool {
        let mut map = self.entries.write().unwrap_or_else(|p| p.into_inner());
        match map.get_mut(&key) {
            Some(e) if e.state == state => false,
            Some(e) => {
                *e = HealthEntry { state, since: now };
                true
            }
            None => {
                map.insert(key, HealthEntry { state, since: now });
                true
            }
        }
    }

    /// Forget every target `keep` rejects (deregistered, group deleted).
    pub fn retain(&self, mut keep: impl FnMut(&TargetKey) -> bool) {
        let mut map = self.entries.write().unwrap_or_else(|p| p.into_inner());
        map.retain(|k, _| keep(k));
    }

    pub fn all(&self) -> Vec<(TargetKey, HealthEntry)> {
        let map = self.entries.read().unwrap_or_else(|p| p.into_inner());
        map.iter().map(|(k, v)| (k.clone(), *v)).collect()
    }
}
