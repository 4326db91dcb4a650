//! Applying a [`ServicePlan`]: the one place a service's plan becomes a
//! store transaction. Everything the plan asks for (task starts placed by
//! berth-placement, stops, deployment changes, a rollback, counts, events,
//! index upkeep) goes into one transaction that compares the service
//! record's revision, every stopped task's revision and every chosen
//! instance's record and epoch. If anything moved since the view was read,
//! nothing is written and the controller reconciles again from scratch.

use super::model::{
    DeploymentStatus, MAX_PAST_DEPLOYMENTS, SchedulingStrategy, ServiceRecord, ServiceStatus, ThrottleRecord,
};
use super::view::{LoadedTask, ServiceTaskEntry, rollout_state_name};
use crate::context::RequestContext;
use crate::error::{EcsError, EcsResult};
use crate::keys::Keys;
use crate::repo::{self, Loaded};
use crate::tags::{self, Tag};
use crate::tasks::{self, PlacedTasks, PlacementWorld};
use berth_controllers::{self as rc, ServicePlan, events};
use berth_store::{Store, Txn};
use serde_json::{Map, Value, json};

/// What applying a plan did.
#[derive(Debug, Default)]
pub struct Applied {
    /// False when a compare failed: nothing was written.
    pub committed: bool,
    pub started: Vec<String>,
    pub stopped: Vec<String>,
    /// Fewer tasks could be placed than the plan asked for.
    pub unplaced: u32,
}

/// The RunTask-shaped request a service start is made of.
fn run_body(r: &ServiceRecord, start: &rc::StartTasks, service_tags: &[Tag]) -> Map<String, Value> {
    let network = r
        .deployments
        .iter()
        .find(|d| d.id == start.deployment_id)
        .and_then(|d| d.network_configuration.clone())
        .or_else(|| r.network_configuration.clone());
    let mut body = Map::new();
    body.insert("cluster".into(), json!(r.cluster));
    body.insert("taskDefinition".into(), json!(start.task_definition));
    body.insert("startedBy".into(), json!(start.deployment_id));
    body.insert("group".into(), json!(format!("service:{}", r.name)));
    if let Some(lt) = r.launch_type.as_deref().filter(|lt| *lt == "EXTERNAL") {
        body.insert("launchType".into(), json!(lt));
    }
    if r.scheduling_strategy == SchedulingStrategy::Replica {
        body.insert("placementConstraints".into(), json!(r.placement_constraints));
        // Without a strategy the service scheduler balances tasks across
        // Availability Zones, then across instances, as ECS's does.
        let strategy = if r.placement_strategy.is_empty() {
            json!([
                {"type": "spread", "field": "attribute:ecs.availability-zone"},
                {"type": "spread", "field": "instanceId"}
            ])
        } else {
            json!(r.placement_strategy)
        };
        body.insert("placementStrategy".into(), strategy);
    }
    if let Some(n) = network {
        body.insert("networkConfiguration".into(), n);
    }
    body.insert("enableExecuteCommand".into(), json!(r.enable_execute_command));
    let mut task_tags: Vec<Tag> = Vec::new();
    match r.propagate_tags.as_str() {
        "TASK_DEFINITION" => {
            body.insert("propagateTags".into(), json!("TASK_DEFINITION"));
        }
        "SERVICE" => task_tags.extend(service_tags.iter().cloned()),
        _ => {}
    }
    if r.enable_ecs_managed_tags {
        body.insert("enableECSManagedTags".into(), json!(true));
        task_tags.push(Tag { key: "aws:ecs:serviceName".into(), value: r.name.clone() });
    }
    if !task_tags.is_empty() {
        body.insert("tags".into(), json!(task_tags));
    }
    body
}

/// ECS's "unable to place" event, naming the closest matching instance
/// when one fell short only on resources.
fn unplaced_event(service: &str, failures: &[berth_placement::Failure]) -> String {
    use berth_placement::FailureReason as R;
    let closest = failures.iter().find_map(|f| {
        let shortfall = match f.reason {
            R::ResourceMemory => events::Shortfall::Memory,
            R::ResourceCpu => events::Shortfall::Cpu,
            R::ResourcePorts => events::Shortfall::Ports,
            _ => return None,
        };
        let id = f.arn.as_ref()?.as_str().rsplit('/').next()?.to_string();
        Some((id, shortfall))
    });
    match closest {
        Some((id, shortfall)) => events::unable_to_place_closest(service, &id, shortfall),
        None => events::unable_to_place(service),
    }
}

/// The service record after the plan, without its task starts and stops.
fn next_record(current: &ServiceRecord, plan: &ServicePlan, now: f64) -> ServiceRecord {
    let mut r = current.clone();
    for change in &plan.deployment_changes {
        let Some(d) = r.deployments.iter_mut().find(|d| d.id == change.deployment_id) else { continue };
        if let Some(s) = change.status {
            d.status = match s {
                rc::DeploymentStatus::Primary => DeploymentStatus::Primary,
                rc::DeploymentStatus::Active => DeploymentStatus::Active,
                rc::DeploymentStatus::Inactive => DeploymentStatus::Inactive,
            };
        }
        if let Some((state, reason)) = &change.rollout {
            d.rollout_state = rollout_state_name(*state).to_string();
            d.rollout_state_reason = reason.clone();
        }
        if let Some(n) = change.failed_tasks {
            d.failed_tasks = n;
        }
        d.updated_at = now;
    }
    if let Some(rb) = &plan.rollback
        && let Some(to) = r.deployment(&rb.to_deployment_id).cloned()
    {
        r.roll_back_to(&to, now);
        if let Some(p) = r.primary_mut() {
            p.rollout_state_reason = rb.reason.clone();
        }
    }
    // Counts as observed; a deployment the rollback just created has none.
    r.running_count = plan.state.running_count;
    r.pending_count = plan.state.pending_count;
    if r.scheduling_strategy == SchedulingStrategy::Daemon && r.status == ServiceStatus::Active {
        r.desired_count = plan.state.desired_count;
        if let Some(p) = r.primary_mut() {
            p.desired_count = plan.state.desired_count;
        }
    }
    for d in &mut r.deployments {
        let (running, pending) = plan
            .state
            .deployments
            .iter()
            .find(|c| c.deployment_id == d.id)
            .map_or((0, 0), |c| (c.running, c.pending));
        if d.running_count != running || d.pending_count != pending {
            d.running_count = running;
            d.pending_count = pending;
            d.updated_at = now;
        }
    }
    // Retired deployments leave the list DescribeServices shows.
    let (retired, kept): (Vec<_>, Vec<_>) =
        r.deployments.drain(..).partition(|d| d.status == DeploymentStatus::Inactive);
    r.deployments = kept;
    for d in retired {
        r.past_deployments.insert(0, d);
    }
    r.past_deployments.truncate(MAX_PAST_DEPLOYMENTS);
    // A rollback started a deployment, which cleared the throttle: the
    // failures were the failed revision's.
    if plan.rollback.is_none() {
        r.throttle = ThrottleRecord {
            consecutive_failures: plan.throttle.consecutive_failures,
            last_failure_at_ms: plan.throttle.last_failure_at_ms,
        };
    }
    r.was_steady = plan.state.steady;
    r
}

/// Everything one reconcile read, for [`apply`].
pub struct Observed<'a> {
    pub service: &'a Loaded<ServiceRecord>,
    pub tasks: &'a [LoadedTask],
    pub world: &'a PlacementWorld,
    pub connected: &'a (dyn Fn(&str) -> bool + Sync),
    pub seed: u64,
    /// Tasks asked to stop on instances that were deregistered since: no
    /// agent will ever report them, so they are let go of as if STOPPED.
    pub orphaned: &'a std::collections::HashSet<String>,
    /// For a service with load balancers: the targets it owns and the
    /// tasks draining after this pass, and their events.
    pub lb: Option<&'a super::load_balancers::LbRecord>,
}

/// Applies `plan` to what was observed, in one transaction.
pub async fn apply(
    store: &dyn Store,
    ctx: &RequestContext,
    keys: &Keys,
    seen: Observed<'_>,
    plan: &ServicePlan,
) -> EcsResult<Applied> {
    let current = &seen.service.record;
    let cluster = current.cluster.as_str();
    let name = current.name.as_str();
    let now = berth_clock::epoch_seconds(ctx.now);
    let mut r = next_record(current, plan, now);
    let mut txn = Txn::new();
    let mut applied = Applied::default();
    let mut events: Vec<String> = Vec::new();
    if let Some(lb) = seen.lb {
        r.lb_targets = lb.lb_targets.clone();
        r.deactivating = lb.deactivating.clone();
        events.extend(lb.events.iter().cloned());
    } else {
        r.lb_targets.clear();
        r.deactivating.clear();
    }

    // Stops. A lost task is also marked STOPPED here: its agent is not
    // there to say so, and a replacement is already being placed.
    let by_id: std::collections::HashMap<&str, &LoadedTask> =
        seen.tasks.iter().map(|t| (t.record.id.as_str(), t)).collect();
    let lost_reason = events::stop_host_lost();
    for stop in &plan.stops {
        let Some(t) = by_id.get(stop.task_id.as_str()) else { continue };
        let mut record = (*t.record).clone();
        tasks::mark_stopping(&mut record, ctx, &stop.reason, "ServiceSchedulerInitiated");
        if stop.reason == lost_reason {
            record.last_status = "STOPPED".into();
            record.stopped_at = Some(now);
            record.execution_stopped_at = Some(now);
            record.connectivity = Some("DISCONNECTED".into());
            record.host_lost = true;
        }
        let key = keys.task(cluster, &record.id);
        txn = txn
            .require(key.clone(), Some(t.mod_revision))
            .put(key, repo::encode(&record)?)
            .put(keys.instance_epoch(cluster, &record.container_instance_id), b"{}".to_vec());
        applied.stopped.push(record.id.clone());
    }

    // Tasks that drain from their target groups before they stop: their
    // lastStatus is DEACTIVATING meanwhile (agents' later RUNNING reports
    // never move a status backwards); desired RUNNING, so they keep serving
    // the connections in flight.
    for id in seen.lb.map(|lb| lb.began.as_slice()).unwrap_or_default() {
        let Some(t) = by_id.get(id.as_str()) else { continue };
        if t.record.last_status != "RUNNING" {
            continue;
        }
        let mut record = (*t.record).clone();
        record.last_status = "DEACTIVATING".into();
        record.version += 1;
        let key = keys.task(cluster, &record.id);
        txn = txn.require(key.clone(), Some(t.mod_revision)).put(key, repo::encode(&record)?);
    }

    // Tasks seen STOPPED (and not possibly still running on a lost host)
    // leave the index: their failure, if any, is counted by this very
    // transaction's record.
    let lost: std::collections::HashSet<&str> = seen
        .tasks
        .iter()
        .filter(|t| t.record.host_lost)
        .map(|t| t.record.id.as_str())
        .collect();
    let gone = |t: &LoadedTask| {
        (t.record.last_status == "STOPPED" && !lost.contains(t.record.id.as_str())) || seen.orphaned.contains(&t.record.id)
    };
    for t in seen.tasks {
        if gone(t) {
            txn = txn.delete(keys.service_task(cluster, name, &t.record.id));
        }
    }

    // Starts, placed over the world the view was built from.
    if !plan.starts.is_empty() {
        let service_tags = if current.propagate_tags == "SERVICE" {
            tags::load(store, keys, &super::render::service_arn(ctx, cluster, name)).await?
        } else {
            Vec::new()
        };
        let mut placed = PlacedTasks::default();
        let mut asked = 0u32;
        for start in &plan.starts {
            asked += start.count;
            let body = run_body(&r, start, &service_tags);
            let before = placed.tasks.len();
            let prepared = match tasks::prepare_run(store, ctx, body, start.count).await {
                Ok(p) => p,
                Err(e @ EcsError::Server(_)) => return Err(e),
                Err(e) => {
                    events.push(format!("(service {name}) failed to launch a task with (error {e})."));
                    continue;
                }
            };
            if start.instance_ids.is_empty() {
                txn = seen.world.place_into(ctx, keys, &prepared, None, seen.connected, seen.seed, txn, &mut placed)?;
            } else {
                let mut one = prepared;
                one.request.count = 1;
                for id in &start.instance_ids {
                    let only = std::slice::from_ref(id);
                    txn = seen.world.place_into(ctx, keys, &one, Some(only), seen.connected, seen.seed, txn, &mut placed)?;
                }
            }
            for t in &placed.tasks[before..] {
                let entry = ServiceTaskEntry { deployment_id: start.deployment_id.clone() };
                txn = txn.put(keys.service_task(cluster, name, &t.id), repo::encode(&entry)?);
            }
            // Counts describe lastStatus: the new tasks are PENDING now.
            let n = u32::try_from(placed.tasks.len() - before).unwrap_or(u32::MAX);
            r.pending_count = r.pending_count.saturating_add(n);
            if let Some(d) = r.deployments.iter_mut().find(|d| d.id == start.deployment_id) {
                d.pending_count = d.pending_count.saturating_add(n);
            }
        }
        let ids: Vec<String> = placed.tasks.iter().map(|t| t.id.clone()).collect();
        applied.unplaced = asked.saturating_sub(u32::try_from(ids.len()).unwrap_or(u32::MAX));
        for chunk in ids.chunks(events::TASKS_PER_EVENT) {
            events.push(events::started_tasks(name, chunk));
        }
        if applied.unplaced > 0 {
            events.push(unplaced_event(name, &placed.failures));
        }
        applied.started = ids;
    }

    // A deleted service is INACTIVE once nothing of it is left running.
    if r.status == ServiceStatus::Draining
        && plan.starts.is_empty()
        && seen.tasks.iter().all(gone)
        && r.lb_targets.is_empty()
        && r.deactivating.is_empty()
    {
        r.status = ServiceStatus::Inactive;
        r.running_count = 0;
        r.pending_count = 0;
    }

    for e in plan.events.iter().chain(events.iter()) {
        // The same complaint again and again says nothing new.
        if r.events.first().is_some_and(|newest| &newest.message == e) && e.contains("was unable to place") {
            continue;
        }
        r.push_event(e.clone(), now);
    }

    if txn.ops.is_empty() && r == *current {
        applied.committed = true;
        return Ok(applied);
    }
    // Every pass that changes anything compares and rewrites the service
    // record (even unchanged): two passes over the same service never both
    // commit, and the record's revision covers the tasks this one started.
    let key = keys.service(cluster, name);
    txn = txn.require(key.clone(), Some(seen.service.mod_revision)).put(key, repo::encode(&r)?);
    applied.committed = repo::commit(store, txn).await?;
    Ok(applied)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::services::model::{CircuitBreaker, new_deployment};

    /// Two tasks, the circuit breaker with rollback, service tags
    /// propagated and ECS-managed tags on.
    fn record() -> ServiceRecord {
        let mut r = crate::services::model::sample_record();
        r.desired_count = 2;
        r.deployments = vec![new_deployment("td:1", 2, Some("EC2".into()), vec![], None, 1.0)];
        r.deployment_configuration.deployment_circuit_breaker = CircuitBreaker { enable: true, rollback: true };
        r.propagate_tags = "SERVICE".into();
        r.enable_ecs_managed_tags = true;
        r
    }

    fn plan_for(r: &ServiceRecord) -> ServicePlan {
        let view = super::super::view::build(r, &[], &Default::default(), &Default::default());
        rc::reconcile(&view, 2_000)
    }

    #[test]
    fn a_rollback_creates_a_primary_and_demotes_the_failed_one() {
        let mut r = record();
        r.deployments[0].rollout_state = "COMPLETED".into();
        let old_id = r.deployments[0].id.clone();
        r.start_deployment(new_deployment("td:2", 2, Some("EC2".into()), vec![], None, 2.0));
        let failed_id = r.deployments[0].id.clone();
        r.deployments[0].failed_tasks = 3;
        let plan = plan_for(&r);
        let rb = plan.rollback.clone().expect("3 failures of 2 desired trip the breaker");
        assert_eq!((rb.failed_deployment_id.as_str(), rb.to_deployment_id.as_str()), (failed_id.as_str(), old_id.as_str()));
        let next = next_record(&r, &plan, 3.0);
        let primary = next.primary().unwrap();
        assert_eq!(primary.task_definition, "td:1");
        assert_eq!(primary.rollout_state, "IN_PROGRESS");
        let failed = next.deployments.iter().find(|d| d.id == failed_id).unwrap();
        assert_eq!((failed.status, failed.rollout_state.as_str()), (DeploymentStatus::Active, "FAILED"));
        assert_eq!(next.task_definition, "td:1");
    }

    #[test]
    fn a_rollback_finds_the_last_completed_deployment_even_when_retired() {
        let mut r = record();
        r.deployments[0].rollout_state = "COMPLETED".into();
        let old_id = r.deployments[0].id.clone();
        r.start_deployment(new_deployment("td:2", 2, Some("EC2".into()), vec![], None, 2.0));
        // The old deployment was drained and retired before the breaker tripped.
        let next = next_record(&r, &plan_for(&r), 3.0);
        assert_eq!(next.past_deployments[0].id, old_id);
        let mut r = next;
        r.deployments[0].failed_tasks = 3;
        let plan = plan_for(&r);
        let rb = plan.rollback.clone().expect("rolls back to the retired COMPLETED deployment");
        assert_eq!((rb.to_deployment_id.as_str(), rb.task_definition.as_str()), (old_id.as_str(), "td:1"));
        let after = next_record(&r, &plan, 4.0);
        assert_eq!(after.primary().unwrap().task_definition, "td:1");
    }

    #[test]
    fn retired_deployments_move_to_the_past_list() {
        let mut r = record();
        r.deployments[0].rollout_state = "COMPLETED".into();
        let old_id = r.deployments[0].id.clone();
        r.start_deployment(new_deployment("td:2", 2, Some("EC2".into()), vec![], None, 2.0));
        // The old deployment has no tasks: the reconciler retires it.
        let next = next_record(&r, &plan_for(&r), 3.0);
        assert_eq!(next.deployments.len(), 1);
        assert_eq!(next.past_deployments[0].id, old_id);
        assert_eq!(next.past_deployments[0].status, DeploymentStatus::Inactive);
    }

    #[test]
    fn a_start_runs_as_the_deployment_with_the_service_tags() {
        let r = record();
        let start = rc::StartTasks {
            deployment_id: r.deployments[0].id.clone(),
            task_definition: "td:1".into(),
            count: 2,
            instance_ids: vec![],
        };
        let body = run_body(&r, &start, &[Tag { key: "team".into(), value: "web".into() }]);
        assert_eq!(body["startedBy"], json!(r.deployments[0].id));
        assert_eq!(body["group"], json!("service:web"));
        assert_eq!(body["enableECSManagedTags"], json!(true));
        let tags = body["tags"].as_array().unwrap();
        assert!(tags.contains(&json!({"key": "team", "value": "web"})));
        assert!(tags.contains(&json!({"key": "aws:ecs:serviceName", "value": "web"})));
    }
}
