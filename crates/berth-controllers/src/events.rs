//! ECS's wording for service events, deployment reasons and stop reasons,
//! in one place. Strings marked *unconfirmed* are our best rendering where
//! we could not confirm ECS's exact text.

/// How many task ids one "has started" / "has stopped" event lists; a
/// larger batch is reported in several events, as ECS does.
pub const TASKS_PER_EVENT: usize = 10;

/// "(service NAME) has reached a steady state."
pub fn steady_state(service: &str) -> String {
    format!("(service {service}) has reached a steady state.")
}

/// "(service NAME) has started N tasks: (task ID) (task ID)." The task ids
/// exist only once the caller has created the tasks, so the caller builds
/// this one after applying [`StartTasks`](crate::StartTasks).
pub fn started_tasks<S: AsRef<str>>(service: &str, task_ids: &[S]) -> String {
    format!(
        "(service {service}) has started {} tasks: {}.",
        task_ids.len(),
        task_list(task_ids)
    )
}

/// "(service NAME) has stopped N running tasks: (task ID)."
pub fn stopped_tasks<S: AsRef<str>>(service: &str, task_ids: &[S]) -> String {
    format!(
        "(service {service}) has stopped {} running tasks: {}.",
        task_ids.len(),
        task_list(task_ids)
    )
}

/// Placement found no instance; the caller emits it when placing a start
/// fails.
pub fn unable_to_place(service: &str) -> String {
    format!(
        "(service {service}) was unable to place a task because no container instance met all of its requirements."
    )
}

/// Why the closest matching instance could not take the task, as ECS
/// words it after [`unable_to_place`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shortfall {
    Cpu,
    Memory,
    Ports,
}

/// "(service NAME) was unable to place a task because no container
/// instance met all of its requirements. The closest matching
/// (container-instance ID) has insufficient memory available. For more
/// information, see the Troubleshooting section of the Amazon ECS
/// Developer Guide."
pub fn unable_to_place_closest(service: &str, instance_id: &str, shortfall: Shortfall) -> String {
    let why = match shortfall {
        Shortfall::Cpu => "has insufficient CPU units available",
        Shortfall::Memory => "has insufficient memory available",
        Shortfall::Ports => "is already using a port required by your task",
    };
    format!(
        "{} The closest matching (container-instance {instance_id}) {why}. For more information, see the Troubleshooting section of the Amazon ECS Developer Guide.",
        unable_to_place(service)
    )
}

/// The circuit breaker tripped.
pub fn deployment_failed(service: &str, deployment_id: &str) -> String {
    format!(
        "(service {service}) (deployment {deployment_id}) deployment failed: tasks failed to start."
    )
}

/// The PRIMARY reached its desired count and the others are drained.
pub fn deployment_completed(service: &str, deployment_id: &str) -> String {
    format!("(service {service}) (deployment {deployment_id}) deployment completed.")
}

/// `rolloutStateReason` of a new deployment.
pub fn reason_in_progress(deployment_id: &str) -> String {
    format!("ECS deployment {deployment_id} in progress.")
}

/// `rolloutStateReason` of a COMPLETED deployment.
pub fn reason_completed(deployment_id: &str) -> String {
    format!("ECS deployment {deployment_id} completed.")
}

/// `rolloutStateReason` of a deployment the circuit breaker failed.
pub fn reason_circuit_breaker_failed() -> String {
    "ECS deployment circuit breaker: tasks failed to start.".to_string()
}

/// `rolloutStateReason` of the deployment a rollback creates.
pub fn reason_rolling_back(to_deployment_id: &str) -> String {
    format!("ECS deployment circuit breaker: rolling back to deploymentId {to_deployment_id}.")
}

/// `stoppedReason` of a scale-in or of draining an old deployment.
pub fn stop_scaling(deployment_id: &str) -> String {
    format!("Scaling activity initiated by (deployment {deployment_id})")
}

/// `stoppedReason` of a task replaced for failing its container health check.
pub fn stop_container_health_checks() -> String {
    "Task failed container health checks".to_string()
}

/// `stoppedReason` of a task replaced for failing load balancer health
/// checks in one of its target groups.
pub fn stop_elb_health_checks(target_group_arn: &str) -> String {
    format!("Task failed ELB health checks in (target-group {target_group_arn})")
}

/// The prefix of [`stop_elb_health_checks`], to recognise such a stop.
pub const STOP_ELB_HEALTH_CHECKS_PREFIX: &str = "Task failed ELB health checks";

/// ECS's event when the scheduler registers tasks' targets in a group.
pub fn registered_targets(service: &str, count: usize, target_group_arn: &str) -> String {
    format!("(service {service}) registered {count} targets in (target-group {target_group_arn})")
}

/// ECS's event when the scheduler deregisters tasks' targets from a group.
pub fn deregistered_targets(service: &str, count: usize, target_group_arn: &str) -> String {
    format!("(service {service}) deregistered {count} targets in (target-group {target_group_arn})")
}

/// ECS's event when tasks to stop first drain from their target groups.
pub fn draining_connections(service: &str, count: usize) -> String {
    format!("(service {service}) has begun draining connections on {count} tasks.")
}

/// `stoppedReason` of a daemon task on a DRAINING instance (*unconfirmed*).
pub fn stop_instance_draining() -> String {
    "Container instance is draining".to_string()
}

/// `stoppedReason` of a task whose host is lost (Berth's wording: ECS
/// never replaces tasks of a silent host, so it has none).
pub fn stop_host_lost() -> String {
    "Host lost: the agent of its container instance stopped responding".to_string()
}

fn task_list<S: AsRef<str>>(task_ids: &[S]) -> String {
    let parts: Vec<String> = task_ids
        .iter()
        .map(|id| format!("(task {})", id.as_ref()))
        .collect();
    parts.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wording_matches_ecs() {
        assert_eq!(
            started_tasks("web", &["a", "b"]),
            "(service web) has started 2 tasks: (task a) (task b)."
        );
        assert_eq!(
            stopped_tasks("web", &["a"]),
            "(service web) has stopped 1 running tasks: (task a)."
        );
        assert_eq!(
            steady_state("web"),
            "(service web) has reached a steady state."
        );
        assert_eq!(
            deployment_failed("web", "ecs-svc/1"),
            "(service web) (deployment ecs-svc/1) deployment failed: tasks failed to start."
        );
        assert_eq!(
            stop_scaling("ecs-svc/1"),
            "Scaling activity initiated by (deployment ecs-svc/1)"
        );
    }
}
