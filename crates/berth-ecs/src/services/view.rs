//! Building the reconciler's immutable view of one service from stored
//! records (pure: the controller loads, this translates).

use super::model::{Deployment, DeploymentStatus, SchedulingStrategy, ServiceRecord};
use crate::tasks::{TaskRecord, task_health};
use berth_controllers as rc;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// The controller's index entry for one task of a service
/// (`Keys::service_task`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceTaskEntry {
    pub deployment_id: String,
}

/// A task of the service as loaded for one reconcile.
#[derive(Debug, Clone)]
pub struct LoadedTask {
    /// Shared with the controller's task cache, which decodes each task
    /// once per change rather than once per pass.
    pub record: std::sync::Arc<TaskRecord>,
    pub mod_revision: u64,
    pub deployment_id: String,
}

/// What the controller knows about one container instance of the cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstanceFacts {
    /// ACTIVE or DRAINING; deregistered instances are absent.
    pub draining: bool,
    /// The agent polled within the disconnect threshold.
    pub connected: bool,
    /// The agent has been silent past the host-loss grace period.
    pub lost: bool,
    /// DAEMON: the service's placement constraints hold on this instance.
    pub matches: bool,
}

fn ms(seconds: f64) -> u64 {
    if seconds <= 0.0 { 0 } else { (seconds * 1000.0).round() as u64 }
}

fn task_status(s: &str) -> rc::TaskStatus {
    match s {
        "RUNNING" => rc::TaskStatus::Running,
        "DEACTIVATING" | "STOPPING" | "DEPROVISIONING" => rc::TaskStatus::Stopping,
        "STOPPED" => rc::TaskStatus::Stopped,
        _ => rc::TaskStatus::Pending,
    }
}

fn stop_code(s: &str) -> Option<rc::StopCode> {
    Some(match s {
        "TaskFailedToStart" => rc::StopCode::TaskFailedToStart,
        "EssentialContainerExited" => rc::StopCode::EssentialContainerExited,
        "UserInitiated" => rc::StopCode::UserInitiated,
        "ServiceSchedulerInitiated" => rc::StopCode::ServiceSchedulerInitiated,
        "SpotInterruption" => rc::StopCode::SpotInterruption,
        "TerminationNotice" => rc::StopCode::TerminationNotice,
        _ => return None,
    })
}

pub fn rollout_state(s: &str) -> rc::RolloutState {
    match s {
        "COMPLETED" => rc::RolloutState::Completed,
        "FAILED" => rc::RolloutState::Failed,
        _ => rc::RolloutState::InProgress,
    }
}

pub fn rollout_state_name(s: rc::RolloutState) -> &'static str {
    match s {
        rc::RolloutState::InProgress => "IN_PROGRESS",
        rc::RolloutState::Completed => "COMPLETED",
        rc::RolloutState::Failed => "FAILED",
    }
}

fn deployment_view(d: &Deployment) -> rc::DeploymentView {
    rc::DeploymentView {
        id: d.id.clone(),
        task_definition: d.task_definition.clone(),
        status: match d.status {
            DeploymentStatus::Primary => rc::DeploymentStatus::Primary,
            DeploymentStatus::Active => rc::DeploymentStatus::Active,
            DeploymentStatus::Inactive => rc::DeploymentStatus::Inactive,
        },
        rollout_state: rollout_state(&d.rollout_state),
        created_at_ms: ms(d.created_at),
        failed_tasks: d.failed_tasks,
        desired_count: d.desired_count,
    }
}

/// A task as the reconciler sees it. A task is lost when the server marked
/// it so and its instance is still registered (the agent may come back and
/// must confirm), or when it is still meant to run on an instance whose
/// agent is past the host-loss grace period.
fn task_view(
    t: &LoadedTask,
    instances: &HashMap<String, InstanceFacts>,
    record: &ServiceRecord,
    lb_health: &HashMap<String, rc::LbHealth>,
) -> rc::TaskView {
    let r = &t.record;
    let facts = instances.get(&r.container_instance_id);
    let mut last = task_status(&r.last_status);
    // Draining from its target groups before it is stopped: on its way
    // out (replaced, no longer healthy), still counting toward
    // maximumPercent.
    if record.deactivating.contains_key(&r.id) && matches!(last, rc::TaskStatus::Pending | rc::TaskStatus::Running) {
        last = rc::TaskStatus::Stopping;
    }
    let lb = if record.load_balancers.is_empty() {
        None
    } else {
        // A task stopped for failing ELB health checks keeps saying so, so
        // its failure is counted.
        match super::load_balancers::elb_failure_group(r.stopped_reason.as_deref()) {
            Some(tg) if last == rc::TaskStatus::Stopped => Some(rc::LbHealth::Unhealthy { target_group_arn: tg }),
            _ => Some(lb_health.get(&r.id).cloned().unwrap_or(rc::LbHealth::Initial)),
        }
    };
    let desired = if r.desired_status == "STOPPED" { rc::DesiredStatus::Stopped } else { rc::DesiredStatus::Running };
    let lost = match facts {
        None => false,
        Some(f) => {
            r.host_lost || (f.lost && desired == rc::DesiredStatus::Running && last != rc::TaskStatus::Stopped)
        }
    };
    rc::TaskView {
        id: r.id.clone(),
        deployment_id: t.deployment_id.clone(),
        last_status: last,
        desired_status: desired,
        health: match task_health(&r.containers) {
            "HEALTHY" => rc::HealthStatus::Healthy,
            "UNHEALTHY" => rc::HealthStatus::Unhealthy,
            _ => rc::HealthStatus::Unknown,
        },
        has_health_check: r.containers.iter().any(|c| c.essential && c.has_health_check),
        lb_health: lb,
        started_at_ms: r.started_at.map(ms),
        stopped_at_ms: r.stopped_at.map(ms),
        stop_code: r.stop_code.as_deref().and_then(stop_code),
        instance_id: r.container_instance_id.clone(),
        agent_connected: facts.is_some_and(|f| f.connected),
        lost,
        on_draining_instance: facts.is_some_and(|f| f.draining),
        failure_recorded: false,
    }
}

/// The service's deployments, plus the last one that COMPLETED if it was
/// retired already: it is what the circuit breaker rolls back to (a
/// revision whose tasks reach RUNNING before crashing can drain the old
/// deployment before the breaker trips).
fn deployments(record: &ServiceRecord) -> Vec<rc::DeploymentView> {
    let mut out: Vec<rc::DeploymentView> = record.deployments.iter().map(deployment_view).collect();
    let completed_here = record.deployments.iter().any(|d| d.rollout_state == "COMPLETED" && d.status != DeploymentStatus::Primary);
    if !completed_here
        && let Some(past) = record.past_deployments.iter().find(|d| d.rollout_state == "COMPLETED")
    {
        let mut v = deployment_view(past);
        v.status = rc::DeploymentStatus::Inactive;
        out.push(v);
    }
    out
}

/// The reconciler's view of `record`. `instances` holds the cluster's
/// registered (ACTIVE or DRAINING) instances by id.
/// `lb_health`: the task's targets' health by task id, for a service with
/// load balancers.
pub fn build(
    record: &ServiceRecord,
    tasks: &[LoadedTask],
    instances: &HashMap<String, InstanceFacts>,
    lb_health: &HashMap<String, rc::LbHealth>,
) -> rc::ServiceView {
    let c = &record.deployment_configuration;
    let scheduling = match record.scheduling_strategy {
        SchedulingStrategy::Replica => rc::SchedulingStrategy::Replica,
        SchedulingStrategy::Daemon => rc::SchedulingStrategy::Daemon,
    };
    let mut instance_views: Vec<rc::InstanceView> = if scheduling == rc::SchedulingStrategy::Daemon {
        instances
            .iter()
            .map(|(id, f)| rc::InstanceView {
                id: id.clone(),
                status: if f.draining { rc::InstanceStatus::Draining } else { rc::InstanceStatus::Active },
                connected: f.connected,
                matches: f.matches,
            })
            .collect()
    } else {
        Vec::new()
    };
    // Deterministic order: the reconciler starts on instances in this order.
    instance_views.sort_by(|a, b| a.id.cmp(&b.id));
    rc::ServiceView {
        name: record.name.clone(),
        spec: rc::ServiceSpec {
            desired_count: record.desired_count,
            scheduling,
            minimum_healthy_percent: c.minimum_healthy_percent,
            maximum_percent: c.maximum_percent,
            circuit_breaker: rc::CircuitBreaker {
                enable: c.deployment_circuit_breaker.enable,
                rollback: c.deployment_circuit_breaker.rollback,
            },
            health_check_grace_period_ms: u64::from(record.health_check_grace_period_seconds.unwrap_or(0)) * 1000,
        },
        deployments: deployments(record),
        tasks: tasks.iter().map(|t| task_view(t, instances, record, lb_health)).collect(),
        instances: instance_views,
        throttle: rc::Throttle {
            consecutive_failures: record.throttle.consecutive_failures,
            last_failure_at_ms: record.throttle.last_failure_at_ms,
        },
        was_steady: record.was_steady,
    }
}
