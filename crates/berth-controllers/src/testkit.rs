//! Builders for tests: a healthy, connected, RUNNING world by default.

use crate::*;

pub fn spec(desired: u32, min: u32, max: u32) -> ServiceSpec {
    ServiceSpec {
        desired_count: desired,
        scheduling: SchedulingStrategy::Replica,
        minimum_healthy_percent: min,
        maximum_percent: max,
        circuit_breaker: CircuitBreaker::default(),
        health_check_grace_period_ms: 0,
    }
}

pub fn dep(
    id: &str,
    status: DeploymentStatus,
    rollout: RolloutState,
    created_at_ms: u64,
) -> DeploymentView {
    DeploymentView {
        id: id.to_string(),
        task_definition: format!("td-{id}"),
        status,
        rollout_state: rollout,
        created_at_ms,
        failed_tasks: 0,
        desired_count: 0,
    }
}

pub fn primary(id: &str) -> DeploymentView {
    dep(id, DeploymentStatus::Primary, RolloutState::InProgress, 100)
}

pub fn old(id: &str) -> DeploymentView {
    dep(id, DeploymentStatus::Active, RolloutState::Completed, 1)
}

pub fn running(id: &str, deployment: &str) -> TaskView {
    TaskView {
        id: id.to_string(),
        deployment_id: deployment.to_string(),
        last_status: TaskStatus::Running,
        desired_status: DesiredStatus::Running,
        health: HealthStatus::Unknown,
        has_health_check: false,
        lb_health: None,
        started_at_ms: Some(10),
        stopped_at_ms: None,
        stop_code: None,
        instance_id: "i-1".to_string(),
        agent_connected: true,
        lost: false,
        on_draining_instance: false,
        failure_recorded: false,
    }
}

pub fn pending(id: &str, deployment: &str) -> TaskView {
    TaskView {
        last_status: TaskStatus::Pending,
        started_at_ms: None,
        ..running(id, deployment)
    }
}

pub fn stopped(id: &str, deployment: &str, code: StopCode) -> TaskView {
    TaskView {
        last_status: TaskStatus::Stopped,
        desired_status: DesiredStatus::Stopped,
        stop_code: Some(code),
        stopped_at_ms: Some(50),
        ..running(id, deployment)
    }
}

pub fn view(
    spec: ServiceSpec,
    deployments: Vec<DeploymentView>,
    tasks: Vec<TaskView>,
) -> ServiceView {
    ServiceView {
        name: "web".to_string(),
        spec,
        deployments,
        tasks,
        instances: Vec::new(),
        throttle: Throttle::default(),
        was_steady: false,
    }
}

pub fn instance(id: &str, status: InstanceStatus, connected: bool, matches: bool) -> InstanceView {
    InstanceView {
        id: id.to_string(),
        status,
        connected,
        matches,
    }
}

pub fn started(plan: &ServicePlan) -> u32 {
    plan.starts.iter().map(|s| s.count).sum()
}

pub fn stopped_ids(plan: &ServicePlan) -> Vec<&str> {
    let mut ids: Vec<&str> = plan.stops.iter().map(|s| s.task_id.as_str()).collect();
    ids.sort_unstable();
    ids
}

pub fn completed(id: &str) -> DeploymentView {
    dep(id, DeploymentStatus::Primary, RolloutState::Completed, 100)
}
