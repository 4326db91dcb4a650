//! The load balancer data plane inside `berth server` and `berth up`.
//!
//! [`start`] runs berth-lb's supervisor over the server's store, with an
//! [`InstanceResolver`] that maps the EC2 instance ids of `instance` targets
//! to the host address their container instance registered
//! (`berth.host-address`).

use berth_lb::DataPlane;
use berth_lb::snapshot::{AddressResolver, Snapshot};
use berth_lb::supervisor::{self, LbOptions};
use berth_store::Store;
use std::collections::{BTreeSet, HashMap};
use std::net::IpAddr;
use std::sync::{Arc, RwLock};
use std::time::Duration;
use tokio::sync::watch;

/// How often instance addresses are re-read without a container-instance
/// change (the supervisor rebuilds its snapshot as often).
const REFRESH_EVERY: Duration = Duration::from_secs(2);

/// How long after a container-instance change the addresses are re-read.
const CHANGE_COALESCE: Duration = Duration::from_millis(200);

/// Instance id → host address, refreshed from the store in the background;
/// lookups are synchronous (the snapshot builder calls them) and read the
/// last refreshed map.
pub struct InstanceResolver {
    store: Arc<dyn Store>,
    addresses: RwLock<HashMap<String, IpAddr>>,
}

impl InstanceResolver {
    pub fn new(store: Arc<dyn Store>) -> InstanceResolver {
        InstanceResolver {
            store,
            addresses: RwLock::new(HashMap::new()),
        }
    }

    /// Re-read the host addresses of every (account, region) that has
    /// ELBv2 records. On a store failure the previous map stays.
    pub async fn refresh(&self) {
        let regions: BTreeSet<(String, String)> =
            match berth_store::list_all(self.store.as_ref(), "elbv2/").await {
                Ok(items) => items
                    .into_iter()
                    .filter_map(|(key, _)| {
                        let rest = key.strip_prefix("elbv2/")?.strip_suffix("/state")?;
                        let (account, region) = rest.split_once('/')?;
                        Some((account.to_string(), region.to_string()))
                    })
                    .collect(),
                Err(e) => {
                    tracing::warn!(error = %e, "listing ELBv2 regions for instance addresses");
                    return;
                }
            };
        let mut next = HashMap::new();
        for (account, region) in regions {
            match berth_ecs::container_instances::host_addresses(
                self.store.as_ref(),
                &account,
                &region,
            )
            .await
            {
                Ok(map) => next.extend(map),
                Err(e) => {
                    tracing::warn!(error = %e, %account, %region, "reading container instance addresses");
                    return;
                }
            }
        }
        // A poisoned lock only means a reader panicked; the map is whole.
        *self.addresses.write().unwrap_or_else(|p| p.into_inner()) = next;
    }

    /// Refresh every [`REFRESH_EVERY`] and soon after a container instance
    /// or its attributes change (changes within [`CHANGE_COALESCE`] share
    /// one refresh, so a burst of placements costs one read), until
    /// `shutdown`. If the store's watch ends, the periodic refresh goes on.
    async fn follow(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        let mut watch = Some(self.store.watch("ecs/"));
        let mut tick = tokio::time::interval(REFRESH_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut due: Option<tokio::time::Instant> = None;
        loop {
            let next_event = async {
                match watch.as_mut() {
                    Some(w) => w.next().await,
                    None => std::future::pending().await,
                }
            };
            let coalesced = async {
                match due {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = stopped(&mut shutdown) => return,
                _ = tick.tick() => {
                    due = None;
                    self.refresh().await;
                }
                _ = coalesced => {
                    due = None;
                    self.refresh().await;
                }
                ev = next_event => match ev {
                    None => watch = None,
                    Some(ev) if ev.key.contains("/container-instances/") || ev.key.contains("/attributes/") => {
                        due.get_or_insert_with(|| tokio::time::Instant::now() + CHANGE_COALESCE);
                    }
                    Some(_) => {}
                },
            }
        }
    }
}

/// Resolves once `shutdown` says stop (or its sender is gone); the guard
/// `wait_for` returns is dropped here, so callers stay `Send`.
async fn stopped(shutdown: &mut watch::Receiver<bool>) {
    let _ = shutdown.wait_for(|s| *s).await;
}

impl AddressResolver for InstanceResolver {
    fn instance_address(&self, instance_id: &str) -> Option<IpAddr> {
        self.addresses
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(instance_id)
            .copied()
    }
}

/// The running data plane; [`LbHandle::stop`] ends it.
pub struct LbHandle {
    stop: watch::Sender<bool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl LbHandle {
    /// Close every listener, letting requests in flight finish.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        for task in self.tasks {
            let _ = task.await;
        }
    }
}

/// Start the data plane over `store`.
pub async fn start(store: Arc<dyn Store>, options: LbOptions) -> LbHandle {
    let (stop, rx) = watch::channel(false);
    let resolver = Arc::new(InstanceResolver::new(store.clone()));
    // Addresses first, so the first snapshot already routes instance targets.
    resolver.refresh().await;
    tracing::info!(bind = %options.bind, certificates = %options.cert_dir.display(), "load balancer data plane starting");
    let plane = DataPlane::new(Snapshot::default());
    let follow = tokio::spawn(resolver.clone().follow(rx.clone()));
    let run = tokio::spawn(supervisor::run(store, plane, resolver, options, rx));
    LbHandle {
        stop,
        tasks: vec![follow, run],
    }
}
