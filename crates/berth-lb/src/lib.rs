//! The load balancer data plane.
//!
//! berth-elbv2 keeps the ELBv2 resources in the store; this crate makes them
//! real. The [`supervisor`] watches the store, turns each (account, region)
//! state record into an immutable [`snapshot::Snapshot`] (listeners with
//! their ordered rules, target groups with resolved target addresses), opens
//! and closes listening sockets to match, and swaps the snapshot in one
//! atomic store so a request or connection always sees one whole
//! configuration. Application listeners ([`alb`]) route HTTP requests by the
//! rules ([`routing`]) and pick a target ([`balance`]); network listeners
//! ([`nlb`]) forward TCP streams and UDP flows. [`health`] checks every
//! target as ELB does and records the states in the [`HealthTable`] that
//! traffic consults and, on every change, in the store's health record that
//! DescribeTargetHealth and the ECS service controller read.

pub mod alb;
pub mod balance;
pub mod health;
pub mod health_table;
pub mod nlb;
pub mod routing;
pub mod snapshot;
pub mod stats;
pub mod supervisor;
pub mod tls;

pub use health_table::{HealthTable, TargetKey, TargetState};

use arc_swap::ArcSwap;
use std::sync::Arc;

/// What every listener task shares: the current configuration, the health
/// of every target, and the traffic counters.
pub struct DataPlane {
    snapshot: ArcSwap<snapshot::Snapshot>,
    pub health: Arc<HealthTable>,
    pub stats: Arc<stats::Stats>,
}

impl DataPlane {
    pub fn new(initial: snapshot::Snapshot) -> Arc<Self> {
        Arc::new(DataPlane {
            snapshot: ArcSwap::from_pointee(initial),
            health: Arc::new(HealthTable::default()),
            stats: Arc::new(stats::Stats::default()),
        })
    }

    /// The configuration now in force; hold it for one request or one new
    /// connection, never longer.
    pub fn snapshot(&self) -> Arc<snapshot::Snapshot> {
        self.snapshot.load_full()
    }

    /// Whether `snap` is still the configuration in force (cheap: no
    /// reference count is touched), so per-configuration caches know when
    /// to rebuild.
    pub fn is_current(&self, snap: &Arc<snapshot::Snapshot>) -> bool {
        Arc::ptr_eq(&self.snapshot.load(), snap)
    }

    pub fn install(&self, next: snapshot::Snapshot) {
        self.snapshot.store(Arc::new(next));
    }
}
