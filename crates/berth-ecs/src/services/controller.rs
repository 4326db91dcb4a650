//! The service controller: keeps every service converging to its desired
//! state. The imperative shell around berth-controllers' pure `reconcile`.
//!
//! Shaped like a kube-rs controller: store watch events, a periodic resync,
//! changes in agent liveness and the plans' own requeue requests only put a
//! service on a work queue; a pass over a service reads everything afresh
//! (service record, its tasks through the controller's index, the cluster's
//! instances and liveness), builds the immutable view, reconciles, and
//! applies the plan in one transaction ([`super::apply`]). A pass never
//! knows why it ran. A service is never in two passes at once; a service
//! queued while its pass runs is run again afterwards. A conflicting
//! commit (anyone wrote what the pass read) just runs the pass again.
//!
//! Host loss: an instance whose agent has been silent longer than
//! [`ControllerConfig::host_lost_after`] (counted from the controller's
//! start at the earliest, since liveness is in memory) has its service
//! tasks marked STOPPED and replaced; see [`super::apply`] for how they
//! stay fenced until the agent confirms.
//!
//! Load balancers: a pass over a service with target groups also reads
//! ELBv2's state and health record, registers its RUNNING tasks' targets,
//! drains the targets of tasks it stops before stopping them, and feeds
//! target health to the reconciler ([`super::load_balancers`]). The ELBv2
//! write follows the service's transaction; a watch on `elbv2/` wakes
//! those services when a target's health or a group changes.

use super::apply::{self, Observed};
use super::load_balancers;
use super::model::{ServiceRecord, ServiceStatus};
use super::view::{self, InstanceFacts, LoadedTask, ServiceTaskEntry};
use crate::container_instances::Liveness;
use crate::context::RequestContext;
use crate::error::EcsResult;
use crate::keys::Keys;
use crate::repo::{self, MAX_CONFLICT_RETRIES};
use crate::tasks::{PlacementWorld, TaskRecord};
use berth_arn::{AccountId, Region};
use berth_clock::Clock;
use berth_placement::{ClusterSnapshot, PlacementRequest};
use berth_store::{Store, WatchEventKind};
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::sync::mpsc;

/// How the controller runs.
#[derive(Debug, Clone)]
pub struct ControllerConfig {
    /// An instance whose agent is silent this long is lost: its service
    /// tasks are stopped and replaced elsewhere.
    pub host_lost_after: Duration,
    /// Every service is reconciled at least this often, whatever happened.
    pub resync_every: Duration,
    /// How often agent liveness is checked for instances that went silent
    /// or came back.
    pub liveness_check_every: Duration,
    /// Passes run at once (over different services).
    pub workers: usize,
}

impl Default for ControllerConfig {
    fn default() -> Self {
        ControllerConfig {
            host_lost_after: Duration::from_secs(berth_agent_protocol::DISCONNECT_AFTER_SECS),
            resync_every: Duration::from_secs(30),
            liveness_check_every: Duration::from_millis(500),
            workers: 4,
        }
    }
}

/// One service, wherever it lives.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ServiceRef {
    pub account: String,
    pub region: String,
    pub cluster: String,
    pub name: String,
}

/// Where a key lives: `ecs/{account}/{region}/{kind}/{cluster}/{rest}`.
struct KeyParts<'a> {
    account: &'a str,
    region: &'a str,
    kind: &'a str,
    cluster: &'a str,
    rest: &'a str,
}

fn key_parts(key: &str) -> Option<KeyParts<'_>> {
    let mut it = key.splitn(6, '/');
    if it.next()? != "ecs" {
        return None;
    }
    Some(KeyParts { account: it.next()?, region: it.next()?, kind: it.next()?, cluster: it.next()?, rest: it.next()? })
}

/// `arn:aws:ecs:REGION:ACCOUNT:container-instance/CLUSTER/ID` → its cluster.
fn instance_arn_cluster(arn: &str) -> Option<(String, String, String)> {
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    let resource = parts.get(5)?;
    let mut r = resource.split('/');
    if r.next()? != "container-instance" {
        return None;
    }
    let cluster = r.next()?;
    r.next()?;
    Some((parts.get(4)?.to_string(), parts.get(3)?.to_string(), cluster.to_string()))
}

#[derive(Default)]
struct QueueState {
    queued: HashSet<ServiceRef>,
    running: HashSet<ServiceRef>,
    /// Queued again while running: run once more when the pass ends.
    again: HashSet<ServiceRef>,
}

/// The work queue: each service at most once in it, never in two passes.
struct Queue {
    state: Mutex<QueueState>,
    tx: mpsc::UnboundedSender<ServiceRef>,
}

impl Queue {
    fn push(&self, s: ServiceRef) {
        let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if st.running.contains(&s) {
            st.again.insert(s);
        } else if st.queued.insert(s.clone()) {
            // The receiver lives as long as the controller's workers; a
            // send after they stopped has nobody to tell.
            let _ = self.tx.send(s);
        }
    }

    fn start(&self, s: &ServiceRef) {
        let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        st.queued.remove(s);
        st.running.insert(s.clone());
    }

    fn done(&self, s: &ServiceRef) {
        let again = {
            let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
            st.running.remove(s);
            st.again.remove(s)
        };
        if again {
            self.push(s.clone());
        }
    }
}

/// Known services, by cluster, so cluster-wide changes (instances, agent
/// liveness) can queue each of them.
#[derive(Default)]
struct Known {
    by_cluster: HashMap<(String, String, String), HashSet<String>>,
}

impl Known {
    fn add(&mut self, s: &ServiceRef) {
        self.by_cluster
            .entry((s.account.clone(), s.region.clone(), s.cluster.clone()))
            .or_default()
            .insert(s.name.clone());
    }

    fn remove(&mut self, s: &ServiceRef) {
        if let Some(set) = self.by_cluster.get_mut(&(s.account.clone(), s.region.clone(), s.cluster.clone())) {
            set.remove(&s.name);
        }
    }

    fn of_cluster(&self, account: &str, region: &str, cluster: &str) -> Vec<ServiceRef> {
        self.by_cluster
            .get(&(account.to_string(), region.to_string(), cluster.to_string()))
            .into_iter()
            .flatten()
            .map(|name| ServiceRef {
                account: account.to_string(),
                region: region.to_string(),
                cluster: cluster.to_string(),
                name: name.clone(),
            })
            .collect()
    }

    fn all(&self) -> Vec<ServiceRef> {
        self.by_cluster
            .iter()
            .flat_map(|((a, r, c), names)| {
                names.iter().map(move |n| ServiceRef {
                    account: a.clone(),
                    region: r.clone(),
                    cluster: c.clone(),
                    name: n.clone(),
                })
            })
            .collect()
    }
}

/// Task records as the watch last delivered them, decoded once per change
/// (a pass over a service of thousands of tasks would otherwise decode
/// every one of them again). A pass reads through it only once it has
/// applied every commit up to the service record's revision: the tasks a
/// previous pass created are written with that record, so they are never
/// missed; anything older or newer than that is fine for a level-triggered
/// pass (stale task revisions make its compares fail, and the change that
/// made them stale has queued another pass).
#[derive(Default)]
struct TaskCache {
    tasks: Mutex<HashMap<String, (u64, Arc<TaskRecord>)>>,
    /// The revision of the last commit applied; 0 while not following.
    applied: std::sync::atomic::AtomicU64,
    changed: tokio::sync::Notify,
}

impl TaskCache {
    /// Caches a service's task as of `revision` (newer wins); other tasks
    /// are not the controller's business. Returns the decoded record.
    fn put(&self, key: &str, revision: u64, value: &[u8]) -> Option<Arc<TaskRecord>> {
        let record = serde_json::from_slice::<TaskRecord>(value).ok()?;
        if !record.group.starts_with("service:") {
            return None;
        }
        let record = Arc::new(record);
        self.insert(key, revision, record.clone());
        Some(record)
    }

    fn insert(&self, key: &str, revision: u64, record: Arc<TaskRecord>) {
        let mut tasks = self.tasks.lock().unwrap_or_else(|p| p.into_inner());
        match tasks.get(key) {
            Some((seen, _)) if *seen >= revision => {}
            _ => {
                tasks.insert(key.to_string(), (revision, record));
            }
        }
    }

    fn remove(&self, key: &str) {
        self.tasks.lock().unwrap_or_else(|p| p.into_inner()).remove(key);
    }

    fn clear(&self) {
        self.tasks.lock().unwrap_or_else(|p| p.into_inner()).clear();
    }

    fn advance(&self, revision: u64) {
        self.applied.fetch_max(revision, std::sync::atomic::Ordering::AcqRel);
        self.changed.notify_waiters();
    }

    fn get(&self, key: &str) -> Option<(u64, Arc<TaskRecord>)> {
        self.tasks.lock().unwrap_or_else(|p| p.into_inner()).get(key).cloned()
    }

    /// Waits (briefly) until commits up to `revision` are applied; false
    /// when the cache is not following the store or falls behind.
    async fn caught_up(&self, revision: u64) -> bool {
        let deadline = tokio::time::Instant::now() + Duration::from_millis(500);
        loop {
            let changed = self.changed.notified();
            let applied = self.applied.load(std::sync::atomic::Ordering::Acquire);
            if applied == 0 {
                return false;
            }
            if applied >= revision {
                return true;
            }
            if tokio::time::timeout_at(deadline, changed).await.is_err() {
                return false;
            }
        }
    }
}

/// What one pass did, for callers that drive passes by hand.
#[derive(Debug, Default)]
pub struct PassOutcome {
    pub started: usize,
    pub stopped: usize,
    pub steady: bool,
    pub requeue_after: Option<Duration>,
}

struct Inner {
    store: Arc<dyn Store>,
    liveness: Arc<Liveness>,
    clock: Arc<dyn Clock>,
    config: ControllerConfig,
    /// Silence is counted from here at the earliest.
    started_at: SystemTime,
    queue: Queue,
    known: Mutex<Known>,
    cache: TaskCache,
    /// Services that use (or still own) load balancer targets, woken when
    /// ELBv2's state or health of their account and region changes.
    lb_services: Mutex<HashSet<ServiceRef>>,
}

/// The service controller. [`ServiceController::spawn`] runs it;
/// [`ServiceController::reconcile_all`] runs one pass over every service
/// (tests and tools).
pub struct ServiceController {
    inner: Arc<Inner>,
    rx: mpsc::UnboundedReceiver<ServiceRef>,
}

/// Stops the controller's tasks when stopped or dropped.
pub struct ControllerHandle {
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl ControllerHandle {
    pub async fn stop(mut self) {
        for t in self.tasks.drain(..) {
            t.abort();
            let _ = t.await;
        }
    }
}

impl Drop for ControllerHandle {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

impl ServiceController {
    pub fn new(
        store: Arc<dyn Store>,
        liveness: Arc<Liveness>,
        clock: Arc<dyn Clock>,
        config: ControllerConfig,
    ) -> ServiceController {
        let (tx, rx) = mpsc::unbounded_channel();
        let started_at = clock.now();
        ServiceController {
            inner: Arc::new(Inner {
                store,
                liveness,
                clock,
                config,
                started_at,
                queue: Queue { state: Mutex::new(QueueState::default()), tx },
                known: Mutex::new(Known::default()),
                cache: TaskCache::default(),
                lb_services: Mutex::new(HashSet::new()),
            }),
            rx,
        }
    }

    /// One pass over every service in the store, one after the other.
    pub async fn reconcile_all(&self) -> EcsResult<Vec<(ServiceRef, PassOutcome)>> {
        let services = self.inner.scan().await?;
        let mut out = Vec::new();
        for s in services {
            let o = self.inner.pass(&s).await?;
            out.push((s, o));
        }
        Ok(out)
    }

    /// Runs the controller until the handle is stopped or dropped.
    pub fn spawn(self) -> ControllerHandle {
        let ServiceController { inner, rx } = self;
        let mut tasks = Vec::new();
        // Subscribe before scanning, so nothing written in between is missed.
        let watch = inner.store.watch("ecs/");
        let elb_watch = inner.store.watch("elbv2/");
        let rx = Arc::new(tokio::sync::Mutex::new(rx));
        for _ in 0..inner.config.workers.max(1) {
            let (inner, rx) = (inner.clone(), rx.clone());
            tasks.push(tokio::spawn(async move { inner.work(rx).await }));
        }
        {
            let inner = inner.clone();
            tasks.push(tokio::spawn(async move { inner.follow(watch).await }));
        }
        {
            let inner = inner.clone();
            tasks.push(tokio::spawn(async move { inner.follow_elbv2(elb_watch).await }));
        }
        {
            let inner = inner.clone();
            tasks.push(tokio::spawn(async move { inner.resync_and_watch_liveness().await }));
        }
        ControllerHandle { tasks }
    }
}

impl Inner {
    fn push(&self, s: ServiceRef) {
        self.queue.push(s);
    }

    fn note_lb_service(&self, s: &ServiceRef, involved: bool) {
        let mut set = self.lb_services.lock().unwrap_or_else(|p| p.into_inner());
        if involved {
            set.insert(s.clone());
        } else {
            set.remove(s);
        }
    }

    /// Target health flips and target group changes (`elbv2/{account}/
    /// {region}/...`) queue the services of that account and region that
    /// use load balancers. Services not yet passed over are caught by the
    /// first pass and the resync.
    async fn follow_elbv2(self: Arc<Self>, mut watch: berth_store::WatchStream) {
        while let Some(ev) = watch.next().await {
            let lagged = ev.kind == WatchEventKind::Lagged;
            let mut parts = ev.key.splitn(4, '/');
            let (_, account, region) = (parts.next(), parts.next(), parts.next());
            let wake: Vec<ServiceRef> = self
                .lb_services
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .iter()
                .filter(|s| lagged || (Some(s.account.as_str()) == account && Some(s.region.as_str()) == region))
                .cloned()
                .collect();
            for s in wake {
                self.push(s);
            }
        }
    }

    /// Every service record in the store (any account, region, cluster).
    async fn scan(&self) -> EcsResult<Vec<ServiceRef>> {
        let mut out = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let page = self.store.list("ecs/", after.as_deref(), 1000).await?;
            for (k, _) in &page.items {
                if let Some(p) = key_parts(k)
                    && p.kind == "services"
                    && !p.rest.contains('/')
                {
                    out.push(ServiceRef {
                        account: p.account.into(),
                        region: p.region.into(),
                        cluster: p.cluster.into(),
                        name: p.rest.into(),
                    });
                }
            }
            match page.next_start_after {
                Some(k) => after = Some(k),
                None => break,
            }
        }
        let mut known = self.known.lock().unwrap_or_else(|p| p.into_inner());
        for s in &out {
            known.add(s);
        }
        Ok(out)
    }

    async fn work(self: Arc<Self>, rx: Arc<tokio::sync::Mutex<mpsc::UnboundedReceiver<ServiceRef>>>) {
        loop {
            let next = rx.lock().await.recv().await;
            let Some(s) = next else { return };
            self.queue.start(&s);
            let began = tokio::time::Instant::now();
            match self.pass(&s).await {
                Ok(o) => {
                    if let Some(after) = o.requeue_after {
                        let inner = self.clone();
                        let s = s.clone();
                        tokio::spawn(async move {
                            tokio::time::sleep(after).await;
                            inner.push(s);
                        });
                    }
                }
                Err(e) => {
                    tracing::warn!(service = %s.name, cluster = %s.cluster, error = %e, "service reconcile failed; retrying");
                    let inner = self.clone();
                    let s2 = s.clone();
                    tokio::spawn(async move {
                        tokio::time::sleep(Duration::from_millis(500)).await;
                        inner.push(s2);
                    });
                }
            }
            // A service whose pass is costly (thousands of tasks) rests
            // twice as long as its pass took before the next one, so the
            // changes in between coalesce into one pass and the server keeps
            // most of its time for requests; a small service rests ~0.
            let rest = (began.elapsed() * 2).min(Duration::from_secs(1));
            if rest < Duration::from_millis(5) {
                self.queue.done(&s);
            } else {
                let inner = self.clone();
                tokio::spawn(async move {
                    tokio::time::sleep(rest).await;
                    inner.queue.done(&s);
                });
            }
        }
    }

    /// Queue what each committed change concerns.
    async fn follow(self: Arc<Self>, mut watch: berth_store::WatchStream) {
        if let Ok(all) = self.scan().await {
            for s in all {
                self.push(s);
            }
        }
        while let Some(ev) = watch.next().await {
            if ev.kind == WatchEventKind::Lagged {
                // Missed changes: forget what may be stale.
                self.cache.clear();
                if let Ok(all) = self.scan().await {
                    for s in all {
                        self.push(s);
                    }
                }
                continue;
            }
            let Some(p) = key_parts(&ev.key) else {
                self.cache.advance(ev.revision);
                continue;
            };
            if p.kind != "tasks" {
                self.cache.advance(ev.revision);
            }
            match p.kind {
                "services" if !p.rest.contains('/') => {
                    let s = ServiceRef {
                        account: p.account.into(),
                        region: p.region.into(),
                        cluster: p.cluster.into(),
                        name: p.rest.into(),
                    };
                    self.known.lock().unwrap_or_else(|p| p.into_inner()).add(&s);
                    self.push(s);
                }
                "tasks" => {
                    let WatchEventKind::Put { value } = &ev.kind else {
                        self.cache.remove(&ev.key);
                        self.cache.advance(ev.revision);
                        continue;
                    };
                    let task = self.cache.put(&ev.key, ev.revision, value);
                    self.cache.advance(ev.revision);
                    let Some(t) = task else { continue };
                    if let Some(name) = t.group.strip_prefix("service:") {
                        self.push(ServiceRef {
                            account: p.account.into(),
                            region: p.region.into(),
                            cluster: p.cluster.into(),
                            name: name.into(),
                        });
                    }
                }
                "service-tasks" if ev.kind == WatchEventKind::Delete => {
                    // The controller let go of the task: so does its cache.
                    if let Some((_, id)) = p.rest.rsplit_once('/') {
                        self.cache
                            .remove(&format!("ecs/{}/{}/tasks/{}/{id}", p.account, p.region, p.cluster));
                    }
                }
                "container-instances" | "attributes" => {
                    let all = self.known.lock().unwrap_or_else(|p| p.into_inner()).of_cluster(
                        p.account,
                        p.region,
                        p.cluster,
                    );
                    for s in all {
                        self.push(s);
                    }
                }
                _ => {}
            }
        }
    }

    /// The periodic resync, and the liveness check: an instance whose agent
    /// crossed the disconnect or host-loss threshold (either way) queues
    /// every service of its cluster.
    async fn resync_and_watch_liveness(self: Arc<Self>) {
        let mut last_resync = tokio::time::Instant::now();
        // Instances never heard from since the start are lost once the
        // grace period has passed: one resync then catches them.
        let mut first_grace_resync = Some(last_resync + self.config.host_lost_after + Duration::from_millis(100));
        let mut previous: HashMap<String, (bool, bool)> = HashMap::new();
        loop {
            tokio::time::sleep(self.config.liveness_check_every).await;
            let now_tick = tokio::time::Instant::now();
            let due_first = first_grace_resync.is_some_and(|t| now_tick >= t);
            if due_first || now_tick.duration_since(last_resync) >= self.config.resync_every {
                first_grace_resync = first_grace_resync.filter(|_| !due_first);
                last_resync = now_tick;
                let all = self.known.lock().unwrap_or_else(|p| p.into_inner()).all();
                for s in all {
                    self.push(s);
                }
            }
            let now = self.clock.now();
            let mut current = HashMap::new();
            for (arn, _) in self.liveness.snapshot() {
                let silent = self.liveness.silent_for(&arn, now, self.started_at);
                let state = (silent <= self.liveness.disconnect_after(), silent > self.config.host_lost_after);
                if previous.get(&arn) != Some(&state)
                    && let Some((account, region, cluster)) = instance_arn_cluster(&arn)
                {
                    let all = self.known.lock().unwrap_or_else(|p| p.into_inner()).of_cluster(&account, &region, &cluster);
                    for s in all {
                        self.push(s);
                    }
                }
                current.insert(arn, state);
            }
            previous = current;
        }
    }

    fn context(&self, s: &ServiceRef) -> Option<RequestContext> {
        Some(RequestContext {
            account: AccountId::try_from(s.account.clone()).ok()?,
            region: Region::try_from(s.region.clone()).ok()?,
            // ECS acts for services through its service-linked role.
            principal_arn: format!(
                "arn:aws:iam::{}:role/aws-service-role/ecs.amazonaws.com/AWSServiceRoleForECS",
                s.account
            ),
            now: self.clock.now(),
        })
    }

    /// One reconcile of one service: read, reconcile, apply; again from the
    /// top when the commit conflicts.
    async fn pass(&self, s: &ServiceRef) -> EcsResult<PassOutcome> {
        let store = self.store.as_ref();
        for attempt in 0..MAX_CONFLICT_RETRIES {
            let Some(ctx) = self.context(s) else { return Ok(PassOutcome::default()) };
            let keys = Keys::new(&ctx.account, &ctx.region);
            let Some(service) = super::repo::load(store, &keys, &s.cluster, &s.name).await? else {
                self.known.lock().unwrap_or_else(|p| p.into_inner()).remove(s);
                return Ok(PassOutcome::default());
            };
            if service.record.status == ServiceStatus::Inactive {
                return Ok(PassOutcome::default());
            }
            // In-process placers of one cluster take turns (RunTask too);
            // the compares in the transaction are what make it correct.
            let _turn = repo::local_write_lock(&keys.instance_epochs_lock(&s.cluster)).await;
            let cached = self.cache.caught_up(service.mod_revision).await;
            let tasks = self.load_tasks(&keys, &service.record, cached).await?;
            // Deciding needs the instances, placing also what runs on them:
            // that is read only when the plan starts tasks.
            let instances = crate::container_instances::load_states_without_tasks(store, &keys, &s.cluster).await?;
            let facts = self.instance_facts(&ctx, &service.record, &instances);
            let now_ms = ctx.now.duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0);
            // Load balancers: ELBv2's state and health as of now, read only
            // for services that have (or had) target groups.
            let involved = load_balancers::involved(&service.record);
            self.note_lb_service(s, involved);
            let lb = if involved {
                let world = load_balancers::LbWorld::load(store, &s.account, &s.region, now_ms).await?;
                let ec2_ids: HashMap<String, String> =
                    instances.iter().map(|st| (st.record.id.clone(), st.record.ec2_instance_id.clone())).collect();
                let observed = load_balancers::observe(&service.record, &tasks, &ec2_ids, &world);
                Some((world, observed))
            } else {
                None
            };
            let lb_health = lb.as_ref().map(|(_, o)| o.health.clone()).unwrap_or_default();
            let view = view::build(&service.record, &tasks, &facts, &lb_health);
            let mut plan = berth_controllers::reconcile(&view, now_ms);
            let lb_record = lb
                .as_ref()
                .map(|(world, observed)| load_balancers::settle(&service.record, &tasks, world, observed, &mut plan));
            let world = if plan.starts.is_empty() {
                PlacementWorld { epochs: HashMap::new(), states: instances }
            } else {
                PlacementWorld::load(store, &keys, &s.cluster).await?
            };
            let connected = |arn: &str| self.liveness.connected(arn, ctx.now);
            let orphaned: HashSet<String> = tasks
                .iter()
                .filter(|t| t.record.desired_status == "STOPPED" && !facts.contains_key(&t.record.container_instance_id))
                .map(|t| t.record.id.clone())
                .collect();
            let seen = Observed {
                orphaned: &orphaned,
                service: &service,
                tasks: &tasks,
                world: &world,
                connected: &connected,
                seed: crate::tasks::seed_for(&ctx, attempt),
                lb: lb_record.as_ref(),
            };
            let applied = apply::apply(store, &ctx, &keys, seen, &plan).await?;
            if !applied.committed {
                continue;
            }
            // The record now owns every target it is about to register:
            // make ELBv2 agree (a failure here is retried by the next pass,
            // which recomputes the same difference).
            if let (Some((world, _)), Some(rec)) = (&lb, &lb_record) {
                load_balancers::sync(store, &s.account, &s.region, world, &rec.lb_targets, &rec.desired).await?;
            }
            let lb_requeue = lb_record.as_ref().and_then(|r| r.requeue_after_ms);
            let requeue_ms = match (plan.requeue_after_ms, lb_requeue) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            let mut requeue_after = requeue_ms.map(Duration::from_millis);
            if applied.unplaced > 0 {
                // Capacity may come back without any record changing
                // (tasks stopping elsewhere do change records; this is the
                // backstop).
                requeue_after = Some(requeue_after.map_or(Duration::from_secs(5), |d| d.min(Duration::from_secs(5))));
            }
            return Ok(PassOutcome {
                started: applied.started.len(),
                stopped: applied.stopped.len(),
                steady: plan.state.steady,
                requeue_after,
            });
        }
        Err(repo::too_much_contention())
    }

    fn instance_facts(
        &self,
        ctx: &RequestContext,
        service: &ServiceRecord,
        instances: &[crate::container_instances::InstanceState],
    ) -> HashMap<String, InstanceFacts> {
        let daemon = service.scheduling_strategy == super::model::SchedulingStrategy::Daemon;
        let constraints = if daemon { daemon_constraints(service) } else { Vec::new() };
        instances
            .iter()
            .filter(|st| matches!(st.record.status.as_str(), "ACTIVE" | "DRAINING"))
            .map(|st| {
                let arn = &st.record.container_instance_arn;
                let silent = self.liveness.silent_for(arn, ctx.now, self.started_at);
                let matches = !daemon || constraints_hold(st, &constraints);
                (
                    st.record.id.clone(),
                    InstanceFacts {
                        draining: st.record.status == "DRAINING",
                        connected: self.liveness.connected(arn, ctx.now),
                        lost: silent > self.config.host_lost_after,
                        matches,
                    },
                )
            })
            .collect()
    }
}

/// A DAEMON service's placement constraints (memberOf only, as ECS allows).
fn daemon_constraints(service: &ServiceRecord) -> Vec<berth_placement::Constraint> {
    service
        .placement_constraints
        .iter()
        .filter_map(|c| berth_placement::Constraint::from_ecs(&c.kind, c.expression.as_deref()).ok())
        .collect()
}

/// Whether `constraints` hold on one instance, resources aside (a daemon
/// task already running there holds them).
fn constraints_hold(st: &crate::container_instances::InstanceState, constraints: &[berth_placement::Constraint]) -> bool {
    if constraints.is_empty() {
        return true;
    }
    let mut v = st.view(true);
    v.status = berth_placement::InstanceStatus::Active;
    v.remaining = v.registered.clone();
    v.running_tasks.clear();
    let snapshot = ClusterSnapshot::new(vec![v]);
    let request = PlacementRequest {
        count: 1,
        cpu: 0,
        memory: 0,
        ports: Vec::new(),
        constraints: constraints.to_vec(),
        strategy: Vec::new(),
        group: None,
        task_definition_family: String::new(),
    };
    !berth_placement::place(&snapshot, &request, 0).placements.is_empty()
}

impl Inner {
    /// The service's tasks, through the controller's index: from the task
    /// cache when it has caught up (`cached`), else from the store.
    async fn load_tasks(&self, keys: &Keys, service: &ServiceRecord, cached: bool) -> EcsResult<Vec<LoadedTask>> {
        let store = self.store.as_ref();
        let entries =
            repo::load_all::<ServiceTaskEntry>(store, &keys.service_tasks_of(&service.cluster, &service.name)).await?;
        let mut out = Vec::with_capacity(entries.len());
        for (k, entry) in entries {
            let id = k.rsplit('/').next().unwrap_or_default();
            let key = keys.task(&service.cluster, id);
            let hit = if cached { self.cache.get(&key) } else { None };
            let (mod_revision, record) = match hit {
                Some(found) => found,
                None => match repo::load::<TaskRecord>(store, &key).await? {
                    Some(l) => {
                        let record = Arc::new(l.record);
                        if cached {
                            self.cache.insert(&key, l.mod_revision, record.clone());
                        }
                        (l.mod_revision, record)
                    }
                    None => continue,
                },
            };
            out.push(LoadedTask { record, mod_revision, deployment_id: entry.deployment_id });
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_and_arns_name_their_cluster() {
        let p = key_parts("ecs/123456789012/us-east-1/services/demo/web").unwrap();
        assert_eq!((p.account, p.region, p.kind, p.cluster, p.rest), ("123456789012", "us-east-1", "services", "demo", "web"));
        assert!(key_parts("other/x").is_none());
        assert_eq!(
            instance_arn_cluster("arn:aws:ecs:us-east-1:123456789012:container-instance/demo/abc"),
            Some(("123456789012".into(), "us-east-1".into(), "demo".into()))
        );
        assert_eq!(instance_arn_cluster("arn:aws:ecs:us-east-1:123456789012:task/demo/abc"), None);
    }

    #[test]
    fn a_service_queued_while_running_runs_again_once() {
        let (tx, mut rx) = mpsc::unbounded_channel();
        let q = Queue { state: Mutex::new(QueueState::default()), tx };
        let s = ServiceRef { account: "a".into(), region: "r".into(), cluster: "c".into(), name: "web".into() };
        q.push(s.clone());
        q.push(s.clone());
        assert_eq!(rx.try_recv().ok(), Some(s.clone()));
        assert!(rx.try_recv().is_err(), "queued once");
        q.start(&s);
        q.push(s.clone());
        q.push(s.clone());
        assert!(rx.try_recv().is_err(), "never in two passes");
        q.done(&s);
        assert_eq!(rx.try_recv().ok(), Some(s));
        assert!(rx.try_recv().is_err());
    }
}
