//! Services behind ELBv2 target groups, as ECS runs them.
//!
//! - **Validation** (CreateService/UpdateService): every `loadBalancers`
//!   entry names a target group of this account and region that a listener
//!   or rule forwards to, a container of the task definition with that
//!   containerPort, and a target type that fits the network mode (`ip` for
//!   awsvpc, `instance` for bridge and host).
//! - **Registration**, level-triggered: each pass computes the targets the
//!   service's tasks should have (a task RUNNING and desired RUNNING, not
//!   on its way out) and makes the target groups agree. The service record
//!   keeps which targets it registered (`lb_targets`, by task), written in
//!   the pass's transaction *before* the ELBv2 write, so a crash in between
//!   never leaves a registered target nobody owns; targets a user registered
//!   by hand are never touched. An owned target is forgotten once ELBv2 no
//!   longer has it (deregistered and drained).
//! - **Draining before stopping**: a task the reconciler stops while its
//!   targets are registered is not stopped at once. It is recorded in
//!   `deactivating` (the reconciler then sees it as stopping: it no longer
//!   counts as healthy, is replaced, and still counts toward maximumPercent),
//!   its targets are deregistered (ELBv2 lets connections in flight finish
//!   for the group's deregistration delay), and only once ELBv2 has let go
//!   of every target is it set desired STOPPED, with the reason the
//!   reconciler gave. This is what lets a rolling deployment drop no
//!   request.
//! - **Health**: a task's targets' health (`target_health`, the same
//!   function DescribeTargetHealth answers with) becomes the reconciler's
//!   [`rc::LbHealth`].

use super::model::ServiceRecord;
use super::view::LoadedTask;
use crate::context::RequestContext;
use crate::error::{EcsError, EcsResult};
use crate::task_definitions::TaskDefinitionRecord;
use crate::tasks::TaskRecord;
use berth_controllers::{self as rc, ServicePlan, StopTask, events};
use berth_elbv2::model::{self as elb, HealthRecord, State as ElbState, TargetGroup};
use berth_store::Store;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// One target the service controller registered for a task.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OwnedTarget {
    pub target_group_arn: String,
    pub id: String,
    pub port: u16,
}

/// A task the scheduler stops once its targets have drained.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Deactivating {
    /// The stoppedReason the reconciler gave.
    pub reason: String,
    /// When draining began (ms since the epoch).
    pub since_ms: u64,
}

/// One `loadBalancers` entry the controller acts on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LbSpec {
    pub target_group_arn: String,
    pub container_name: String,
    pub container_port: u16,
}

/// The service's target-group entries (classic `loadBalancerName` entries
/// are not acted on: Berth has no Classic Load Balancer).
pub fn specs(load_balancers: &[Value]) -> Vec<LbSpec> {
    load_balancers
        .iter()
        .filter_map(|lb| {
            Some(LbSpec {
                target_group_arn: lb.get("targetGroupArn")?.as_str()?.to_string(),
                container_name: lb.get("containerName")?.as_str()?.to_string(),
                container_port: u16::try_from(lb.get("containerPort")?.as_i64()?).ok()?,
            })
        })
        .collect()
}

fn elb_error(e: berth_elbv2::Elbv2Error) -> EcsError {
    EcsError::Server(format!("load balancer state: {e}"))
}

// ---- validation ----

/// The container ports a container of `td` declares.
fn container_ports(td: &TaskDefinitionRecord, container: &str) -> Option<Vec<i64>> {
    let defs = td.definition.get("containerDefinitions")?.as_array()?;
    let c = defs.iter().find(|c| c.get("name").and_then(Value::as_str) == Some(container))?;
    Some(
        c.get("portMappings")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|m| m.get("containerPort").and_then(Value::as_i64))
            .collect(),
    )
}

/// `loadBalancers` of a service running `td`, with ECS's errors.
/// `healthCheckGracePeriodSeconds` is accepted without load balancers: ECS
/// applies it to container health checks too and leaves it unused when a
/// service has no health check at all (it used to reject it).
pub async fn validate(
    store: &dyn Store,
    ctx: &RequestContext,
    load_balancers: &[Value],
    td: &TaskDefinitionRecord,
) -> EcsResult<()> {
    if load_balancers.is_empty() {
        return Ok(());
    }
    if load_balancers.len() > 5 {
        return Err(EcsError::invalid("loadBalancers can have at most 5 items."));
    }
    let key = elb::state_key(ctx.account.as_str(), ctx.region.as_str());
    let (state, _) = elb::load(store, &key).await.map_err(elb_error)?;
    let mode = td.definition.get("networkMode").and_then(Value::as_str).unwrap_or("bridge");
    for lb in load_balancers {
        let text = |k: &str| lb.get(k).and_then(Value::as_str).filter(|s| !s.is_empty());
        if text("loadBalancerName").is_some() && text("targetGroupArn").is_none() {
            return Err(EcsError::UnsupportedFeature(
                "Classic Load Balancers are not supported by Berth: use a targetGroupArn.".into(),
            ));
        }
        let Some(arn) = text("targetGroupArn") else {
            return Err(EcsError::invalid("Target Group ARN can not be blank."));
        };
        let Some(container) = text("containerName") else {
            return Err(EcsError::invalid("Container name can not be blank."));
        };
        let port = lb.get("containerPort").and_then(Value::as_i64);
        let Some(port) = port.filter(|p| (1..=65535).contains(p)) else {
            return Err(EcsError::invalid("Container port must be between 1 and 65535."));
        };
        let Some(tg) = state.target_groups.iter().find(|t| t.arn == arn) else {
            return Err(EcsError::invalid(format!("The target group with targetGroupArn {arn} does not exist.")));
        };
        if !elb::in_use(&state, arn) {
            return Err(EcsError::invalid(format!(
                "The target group with targetGroupArn {arn} does not have an associated load balancer."
            )));
        }
        if !container_ports(td, container).is_some_and(|ports| ports.contains(&port)) {
            return Err(EcsError::invalid(format!(
                "The container {container} did not have a container port {port} defined."
            )));
        }
        let fits = match mode {
            "awsvpc" => tg.target_type == "ip",
            _ => tg.target_type == "instance",
        };
        if !fits {
            return Err(EcsError::invalid(format!(
                "The provided target group {arn} has target type {}, which is incompatible with the {mode} network mode specified in the task definition.",
                tg.target_type
            )));
        }
    }
    Ok(())
}

// ---- what the controller reads ----

/// ELBv2 as one pass sees it.
pub(crate) struct LbWorld {
    pub state: ElbState,
    pub health: HealthRecord,
    pub now_ms: u64,
}

impl LbWorld {
    pub async fn load(store: &dyn Store, account: &str, region: &str, now_ms: u64) -> EcsResult<LbWorld> {
        let (state, _) = elb::load(store, &elb::state_key(account, region)).await.map_err(elb_error)?;
        let health = elb::load_health(store, account, region).await.map_err(elb_error)?;
        Ok(LbWorld { state, health, now_ms })
    }

    fn group(&self, arn: &str) -> Option<&TargetGroup> {
        self.state.target_groups.iter().find(|t| t.arn == arn)
    }

    /// ELBv2 still has the target (draining or not, not yet expired).
    fn has(&self, t: &OwnedTarget) -> bool {
        self.group(&t.target_group_arn)
            .is_some_and(|tg| elb::registered(tg, &t.id, t.port, self.now_ms).is_some())
    }

    /// ELBv2 has the target and it is not draining.
    fn serves(&self, t: &OwnedTarget) -> bool {
        self.group(&t.target_group_arn).is_some_and(|tg| {
            elb::registered(tg, &t.id, t.port, self.now_ms).is_some_and(|x| x.draining_since_ms.is_none())
        })
    }

    /// When the target's draining ends, if it drains.
    fn drained_at(&self, t: &OwnedTarget) -> Option<u64> {
        let tg = self.group(&t.target_group_arn)?;
        elb::draining_until_ms(elb::registered(tg, &t.id, t.port, self.now_ms)?, tg)
    }
}

/// The private IPv4 address of a task's awsvpc interface, once its agent
/// reported it.
fn task_ip(task: &TaskRecord) -> Option<String> {
    task.attachments
        .iter()
        .filter_map(|a| a.get("details")?.as_array())
        .flatten()
        .find(|d| d.get("name").and_then(Value::as_str) == Some("privateIPv4Address"))
        .and_then(|d| d.get("value")?.as_str())
        .map(str::to_string)
}

/// The target `task` is in `tg` for `spec`: its IP and the container port
/// (`ip`), or its instance's EC2 id and the host port mapped to the
/// container port (`instance`). None while that is not known yet.
fn target_of(spec: &LbSpec, tg: &TargetGroup, task: &TaskRecord, ec2_ids: &HashMap<String, String>) -> Option<OwnedTarget> {
    let (id, port) = if tg.target_type == "ip" {
        (task_ip(task)?, spec.container_port)
    } else {
        let ec2 = ec2_ids.get(&task.container_instance_id)?.clone();
        let bound = task
            .host_ports
            .iter()
            .find(|p| p.container_name == spec.container_name && p.container_port == spec.container_port && p.protocol == "tcp")
            .map(|p| p.host_port);
        // Host networking publishes the container port itself.
        let port = bound.or_else(|| (task.network_mode == "host").then_some(spec.container_port))?;
        (ec2, port)
    };
    Some(OwnedTarget { target_group_arn: tg.arn.clone(), id, port })
}

/// Whether the task should be in its target groups now.
fn serving(record: &ServiceRecord, task: &TaskRecord) -> bool {
    task.last_status == "RUNNING"
        && task.desired_status == "RUNNING"
        && !task.host_lost
        && !record.deactivating.contains_key(&task.id)
}

/// What one pass computed before reconciling.
pub(crate) struct LbPass {
    /// The targets each serving task should have.
    pub desired: BTreeMap<String, BTreeSet<OwnedTarget>>,
    /// Every task's targets' health, for the view.
    pub health: HashMap<String, rc::LbHealth>,
}

/// Desired targets and health of the service's tasks. `ec2_ids`: the
/// cluster's container instance id → EC2 instance id.
pub(crate) fn observe(
    record: &ServiceRecord,
    tasks: &[LoadedTask],
    ec2_ids: &HashMap<String, String>,
    world: &LbWorld,
) -> LbPass {
    let specs = specs(&record.load_balancers);
    let mut desired = BTreeMap::new();
    let mut health = HashMap::new();
    for t in tasks {
        let task = &t.record;
        let mut mine = BTreeSet::new();
        let mut h = rc::LbHealth::Healthy;
        for spec in &specs {
            let target = world.group(&spec.target_group_arn).and_then(|tg| Some((tg, target_of(spec, tg, task, ec2_ids)?)));
            let Some((tg, target)) = target else {
                h = worst(h, rc::LbHealth::Initial);
                continue;
            };
            let mut state = elb::target_health(&world.state, &world.health, tg, &target.id, target.port, world.now_ms).state;
            // A verdict from before this task started was about an earlier
            // task on the same address and port (host ports and IPs are
            // reused): not this one's.
            let started_ms = task.started_at.map(|s| (s * 1000.0) as u64);
            let entry = world.health.targets.get(&elb::health_entry_key(&tg.arn, &target.id, target.port));
            if let (Some(e), Some(started)) = (entry, started_ms)
                && e.since_ms < started
                && (state == "healthy" || state == "unhealthy")
            {
                state = "initial".into();
            }
            h = worst(
                h,
                match state.as_str() {
                    "healthy" | "unavailable" => rc::LbHealth::Healthy,
                    "unhealthy" => rc::LbHealth::Unhealthy { target_group_arn: tg.arn.clone() },
                    _ => rc::LbHealth::Initial,
                },
            );
            mine.insert(target);
        }
        health.insert(task.id.clone(), h);
        if serving(record, task) && !mine.is_empty() {
            desired.insert(task.id.clone(), mine);
        }
    }
    LbPass { desired, health }
}

fn worst(a: rc::LbHealth, b: rc::LbHealth) -> rc::LbHealth {
    use rc::LbHealth::*;
    match (a, b) {
        (u @ Unhealthy { .. }, _) | (_, u @ Unhealthy { .. }) => u,
        (Initial, _) | (_, Initial) => Initial,
        _ => Healthy,
    }
}

/// What the pass writes into the service record for its load balancers.
#[derive(Debug, Default)]
pub(crate) struct LbRecord {
    pub lb_targets: BTreeMap<String, Vec<OwnedTarget>>,
    pub deactivating: BTreeMap<String, Deactivating>,
    /// The targets each task should have once this pass is applied (what
    /// was observed, less the tasks it drains or stops).
    pub desired: BTreeMap<String, BTreeSet<OwnedTarget>>,
    /// Tasks this pass starts draining: shown DEACTIVATING, as ECS does.
    pub began: Vec<String>,
    pub events: Vec<String>,
    /// Reconcile again then (a drain ending).
    pub requeue_after_ms: Option<u64>,
}

/// Turns the reconciler's stops into drains where targets are registered,
/// finishes the drains that are over (their stops join the plan), and
/// computes the ownership to record. Pure.
pub(crate) fn settle(
    record: &ServiceRecord,
    tasks: &[LoadedTask],
    world: &LbWorld,
    pass: &LbPass,
    plan: &mut ServicePlan,
) -> LbRecord {
    let now = world.now_ms;
    let by_id: HashMap<&str, &TaskRecord> = tasks.iter().map(|t| (t.record.id.as_str(), &*t.record)).collect();
    let owned_of = |id: &str| record.lb_targets.get(id).into_iter().flatten();
    let mut out = LbRecord { deactivating: record.deactivating.clone(), ..LbRecord::default() };
    let lost = events::stop_host_lost();

    // The reconciler's stops: a task with targets ELBv2 still serves drains
    // first; a lost host's tasks stop at once (nothing to drain to).
    let mut began = Vec::new();
    let mut kept = Vec::new();
    for stop in std::mem::take(&mut plan.stops) {
        let drains = stop.reason != lost && owned_of(&stop.task_id).any(|t| world.serves(t));
        if drains && !out.deactivating.contains_key(&stop.task_id) {
            out.deactivating.insert(stop.task_id.clone(), Deactivating { reason: stop.reason.clone(), since_ms: now });
            began.push(stop.task_id.clone());
        } else {
            out.deactivating.remove(&stop.task_id);
            kept.push(stop);
        }
    }
    let reconciler_stops: Vec<String> = kept.iter().map(|s| s.task_id.clone()).collect();
    plan.stops = kept;

    // Drains that are over (ELBv2 let go of every target) become stops;
    // drains of tasks that stopped anyway are forgotten.
    let mut finished = Vec::new();
    let mut next_deadline: Option<u64> = None;
    for (id, d) in out.deactivating.clone() {
        let Some(task) = by_id.get(id.as_str()) else {
            out.deactivating.remove(&id);
            continue;
        };
        if task.desired_status == "STOPPED" || task.last_status == "STOPPED" {
            out.deactivating.remove(&id);
            continue;
        }
        if owned_of(&id).any(|t| world.has(t)) {
            for t in owned_of(&id) {
                if let Some(at) = world.drained_at(t) {
                    next_deadline = Some(next_deadline.map_or(at, |n| n.min(at)));
                }
            }
            continue;
        }
        out.deactivating.remove(&id);
        finished.push(id.clone());
        plan.stops.push(StopTask { task_id: id, reason: d.reason });
    }

    // What stays registered: not the tasks this pass drains or stops.
    let mut desired = pass.desired.clone();
    desired.retain(|id, _| !out.deactivating.contains_key(id) && !plan.stops.iter().any(|s| &s.task_id == id));

    // Ownership: what is desired, plus what ELBv2 still has of what was
    // owned (it is deregistered and draining, or about to be).
    let mut registered: BTreeMap<&str, usize> = BTreeMap::new();
    let mut deregistered: BTreeMap<&str, usize> = BTreeMap::new();
    let task_ids: BTreeSet<&String> = record.lb_targets.keys().chain(desired.keys()).collect();
    for id in task_ids {
        let want = desired.get(id);
        let mut keep: BTreeSet<OwnedTarget> = want.cloned().unwrap_or_default();
        for t in owned_of(id) {
            let wanted = want.is_some_and(|w| w.contains(t));
            if !wanted && world.has(t) {
                keep.insert(t.clone());
                if world.serves(t) {
                    *deregistered.entry(t.target_group_arn.as_str()).or_default() += 1;
                }
                if let Some(at) = world.drained_at(t) {
                    next_deadline = Some(next_deadline.map_or(at, |n| n.min(at)));
                }
            }
        }
        for t in want.into_iter().flatten() {
            if !world.serves(t) {
                *registered.entry(t.target_group_arn.as_str()).or_default() += 1;
            }
        }
        if !keep.is_empty() {
            out.lb_targets.insert(id.clone(), keep.into_iter().collect());
        }
    }

    // Events, in the order things happen: registrations, draining, then
    // the stops (rebuilt: the reconciler listed tasks that now drain first).
    let name = &record.name;
    for (tg, n) in &registered {
        out.events.push(events::registered_targets(name, *n, tg));
    }
    if !began.is_empty() {
        out.events.push(events::draining_connections(name, began.len()));
    }
    for (tg, n) in &deregistered {
        out.events.push(events::deregistered_targets(name, *n, tg));
    }
    let stopped_prefix = format!("(service {name}) has stopped ");
    let at = plan.events.iter().position(|e| e.starts_with(&stopped_prefix));
    plan.events.retain(|e| !e.starts_with(&stopped_prefix));
    let all_stops: Vec<&String> = reconciler_stops.iter().chain(finished.iter()).collect();
    let at = at.unwrap_or(plan.events.iter().take_while(|e| e.contains("deployment failed")).count());
    for (i, chunk) in all_stops.chunks(events::TASKS_PER_EVENT).enumerate() {
        plan.events.insert(at + i, events::stopped_tasks(name, chunk));
    }
    out.requeue_after_ms = next_deadline.map(|d| d.saturating_sub(now).max(1));
    out.desired = desired;
    out.began = began;
    out
}

/// Makes ELBv2 agree with the committed ownership: desired targets
/// registered (a draining one registered again), owned targets no longer
/// desired deregistered (draining when the group is in use and its delay
/// is above zero). Writes only when something differs; idempotent.
pub(crate) async fn sync(
    store: &dyn Store,
    account: &str,
    region: &str,
    world: &LbWorld,
    owned: &BTreeMap<String, Vec<OwnedTarget>>,
    desired: &BTreeMap<String, BTreeSet<OwnedTarget>>,
) -> EcsResult<()> {
    let now = world.now_ms;
    let change = |s: &mut ElbState| -> Result<bool, berth_elbv2::Elbv2Error> {
        let mut changed = false;
        for (task, targets) in owned {
            for t in targets {
                let want = desired.get(task).is_some_and(|d| d.contains(t));
                let used = elb::in_use(s, &t.target_group_arn);
                let Some(tg) = s.target_groups.iter_mut().find(|g| g.arn == t.target_group_arn) else { continue };
                let delay = elb::deregistration_delay_ms(tg);
                let drains = used && delay > 0;
                let live =
                    tg.targets.iter().position(|x| x.id == t.id && x.port == t.port && !elb::expired_after(x, delay, now));
                match (want, live) {
                    (true, Some(i)) if tg.targets[i].draining_since_ms.is_some() => {
                        tg.targets[i].draining_since_ms = None;
                        changed = true;
                    }
                    (true, None) => {
                        tg.targets.retain(|x| !(x.id == t.id && x.port == t.port));
                        tg.targets.push(elb::Target {
                            id: t.id.clone(),
                            port: t.port,
                            availability_zone: None,
                            draining_since_ms: None,
                        });
                        changed = true;
                    }
                    (false, Some(i)) if tg.targets[i].draining_since_ms.is_none() => {
                        if drains {
                            tg.targets[i].draining_since_ms = Some(now);
                        } else {
                            tg.targets.remove(i);
                        }
                        changed = true;
                    }
                    _ => {}
                }
            }
        }
        Ok(changed)
    };
    // Decide on what this pass read; write (re-deciding on the fresh
    // record) only when that differs.
    let mut probe = world.state.clone();
    if !change(&mut probe).map_err(elb_error)? {
        return Ok(());
    }
    let key = elb::state_key(account, region);
    elb::update_at(store, &key, now, change).await.map_err(elb_error)?;
    Ok(())
}

/// Whether the service has anything to do with load balancers (now, or
/// targets or drains left from before).
pub(crate) fn involved(record: &ServiceRecord) -> bool {
    !record.load_balancers.is_empty() || !record.lb_targets.is_empty() || !record.deactivating.is_empty()
}

/// The target group of a stop for failing ELB health checks, from its
/// stoppedReason (so a STOPPED task's failure is still counted).
pub(crate) fn elb_failure_group(stopped_reason: Option<&str>) -> Option<String> {
    let rest = stopped_reason?.strip_prefix(events::STOP_ELB_HEALTH_CHECKS_PREFIX)?;
    let arn = rest.trim().strip_prefix("in (target-group ")?.strip_suffix(')')?;
    Some(arn.to_string())
}
