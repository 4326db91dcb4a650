//! The immutable snapshot the reconciler reads: a service's spec, its
//! deployments, its tasks and (for DAEMON) the cluster's instances.

use crate::throttle::Throttle;

/// How the service places tasks (ECS's `schedulingStrategy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SchedulingStrategy {
    /// `desiredCount` tasks anywhere.
    Replica,
    /// One task on every eligible container instance.
    Daemon,
}

/// ECS's `deploymentCircuitBreaker`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CircuitBreaker {
    pub enable: bool,
    pub rollback: bool,
}

/// The desired state of the service, as UpdateService leaves it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceSpec {
    /// For DAEMON, ignored: the desired count is the number of eligible
    /// instances.
    pub desired_count: u32,
    pub scheduling: SchedulingStrategy,
    pub minimum_healthy_percent: u32,
    pub maximum_percent: u32,
    pub circuit_breaker: CircuitBreaker,
    /// `healthCheckGracePeriodSeconds`, in milliseconds: how long after a
    /// task started an UNHEALTHY status is ignored.
    pub health_check_grace_period_ms: u64,
}

/// ECS's deployment `status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeploymentStatus {
    Primary,
    Active,
    Inactive,
}

/// ECS's deployment `rolloutState`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RolloutState {
    InProgress,
    Completed,
    Failed,
}

/// One deployment of the service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeploymentView {
    /// `ecs-svc/` and 19 digits, as berth-ecs names them.
    pub id: String,
    pub task_definition: String,
    pub status: DeploymentStatus,
    pub rollout_state: RolloutState,
    pub created_at_ms: u64,
    /// ECS's `failedTasks`: failures already counted (see
    /// [`TaskView::failure_recorded`]).
    pub failed_tasks: u32,
    /// The desired count the deployment was created with (informational:
    /// the reconciler always aims at the service's current desired count,
    /// as ECS does after an UpdateService that changes only the count).
    pub desired_count: u32,
}

/// A task's `lastStatus`, folded to the states the reconciler tells apart.
/// PROVISIONING, PENDING and ACTIVATING map to `Pending`; DEACTIVATING,
/// STOPPING and DEPROVISIONING to `Stopping`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaskStatus {
    Pending,
    Running,
    Stopping,
    Stopped,
}

/// A task's `desiredStatus`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DesiredStatus {
    Running,
    Stopped,
}

/// A task's `healthStatus`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HealthStatus {
    Healthy,
    Unhealthy,
    Unknown,
}

/// A task's health as its load balancers see it: the worst of its targets
/// across the service's target groups.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LbHealth {
    /// Not every target is registered and checked yet (`initial`, `unused`,
    /// `draining`, or not registered at all).
    Initial,
    /// Every target `healthy` (or `unavailable`: health checks disabled).
    Healthy,
    /// A target is `unhealthy` in this group.
    Unhealthy { target_group_arn: String },
}

/// ECS's `stopCode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopCode {
    TaskFailedToStart,
    EssentialContainerExited,
    UserInitiated,
    ServiceSchedulerInitiated,
    SpotInterruption,
    TerminationNotice,
}

/// One task of the service (found by `startedBy`/`group`), including
/// recently STOPPED ones so their failures can be counted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskView {
    pub id: String,
    pub deployment_id: String,
    pub last_status: TaskStatus,
    pub desired_status: DesiredStatus,
    pub health: HealthStatus,
    /// Whether the task definition declares a container health check;
    /// without one a RUNNING task is healthy.
    pub has_health_check: bool,
    /// For a service with load balancers, the task's targets' health
    /// (None without load balancers). A task counts as healthy only once
    /// every target is healthy, and an unhealthy target past the grace
    /// period gets the task replaced like a failing container health check.
    pub lb_health: Option<LbHealth>,
    pub started_at_ms: Option<u64>,
    pub stopped_at_ms: Option<u64>,
    pub stop_code: Option<StopCode>,
    pub instance_id: String,
    pub agent_connected: bool,
    /// Its host's agent has been silent past the host-loss grace period
    /// and has not yet confirmed the task stopped. A lost task is stopped
    /// with "Host lost" and counts toward no deployment, but it may still
    /// really run on the silent host, so it keeps counting against
    /// maximumPercent until its agent confirms the stop (or the instance is
    /// deregistered, when the caller clears the flag).
    pub lost: bool,
    /// REPLICA: the task's instance is DRAINING, so the task is replaced
    /// elsewhere (within minimumHealthyPercent and maximumPercent) and then
    /// stopped, as ECS does for service tasks on a draining instance.
    pub on_draining_instance: bool,
    /// Set by whoever applies a plan for the tasks in
    /// [`ServicePlan::recorded_failures`](crate::ServicePlan::recorded_failures),
    /// so a failure is added to its deployment's `failed_tasks` exactly once
    /// however often the reconciler runs.
    pub failure_recorded: bool,
}

impl TaskView {
    /// Counts toward the service: asked to run, not lost, not yet stopping.
    pub fn is_active(&self) -> bool {
        !self.lost
            && self.desired_status == DesiredStatus::Running
            && matches!(self.last_status, TaskStatus::Pending | TaskStatus::Running)
    }

    /// Healthy for deployments: RUNNING and (no health check or HEALTHY).
    /// A task with a health check that is still UNKNOWN is not healthy yet,
    /// grace period or not: the grace period only delays replacing
    /// UNHEALTHY tasks ([`TaskView::is_unhealthy`]).
    pub fn is_healthy(&self) -> bool {
        self.is_active()
            && self.last_status == TaskStatus::Running
            && (!self.has_health_check || self.health == HealthStatus::Healthy)
            && self.lb_health.as_ref().is_none_or(|h| *h == LbHealth::Healthy)
    }

    /// Its container health check says UNHEALTHY.
    pub fn container_unhealthy(&self) -> bool {
        self.has_health_check && self.health == HealthStatus::Unhealthy
    }

    /// The target group in which a target of the task is unhealthy.
    pub fn elb_unhealthy_in(&self) -> Option<&str> {
        match &self.lb_health {
            Some(LbHealth::Unhealthy { target_group_arn }) => Some(target_group_arn),
            _ => None,
        }
    }

    /// RUNNING and UNHEALTHY (its container health check, or a target in
    /// one of its load balancers' target groups), whatever the grace period.
    pub fn unhealthy_now(&self) -> bool {
        self.is_active()
            && self.last_status == TaskStatus::Running
            && (self.container_unhealthy() || self.elb_unhealthy_in().is_some())
    }

    /// RUNNING, UNHEALTHY and past the grace period: to be replaced.
    pub fn is_unhealthy(&self, grace_ms: u64, now_ms: u64) -> bool {
        self.unhealthy_now()
            && self
                .started_at_ms
                .is_none_or(|s| now_ms >= s.saturating_add(grace_ms))
    }

    /// A STOPPED task whose stop counts against its deployment (the
    /// circuit breaker's `failedTasks`): it failed to start, its essential
    /// container exited, or the scheduler stopped it for failing health
    /// checks. Scale-in, user stops, spot and host loss are not failures.
    pub fn is_failure(&self) -> bool {
        if self.last_status != TaskStatus::Stopped || self.lost {
            return false;
        }
        match self.stop_code {
            Some(StopCode::TaskFailedToStart | StopCode::EssentialContainerExited) => true,
            Some(StopCode::ServiceSchedulerInitiated) => {
                self.health == HealthStatus::Unhealthy || self.elb_unhealthy_in().is_some()
            }
            _ => false,
        }
    }
}

/// A container instance's status, for DAEMON placement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InstanceStatus {
    Active,
    Draining,
}

/// A container instance of the cluster (DAEMON services only).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstanceView {
    pub id: String,
    pub status: InstanceStatus,
    pub connected: bool,
    /// Whether the service's placement constraints and the task's
    /// resources fit this instance; the caller computes it.
    pub matches: bool,
}

impl InstanceView {
    /// Should run one of the daemon's tasks.
    pub fn is_eligible(&self) -> bool {
        self.status == InstanceStatus::Active && self.connected && self.matches
    }
}

/// Everything the reconciler reads about one service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceView {
    pub name: String,
    pub spec: ServiceSpec,
    pub deployments: Vec<DeploymentView>,
    pub tasks: Vec<TaskView>,
    /// DAEMON only: the cluster's container instances.
    pub instances: Vec<InstanceView>,
    /// The start throttle as the previous plan left it.
    pub throttle: Throttle,
    /// The previous plan's [`ServiceState::steady`](crate::ServiceState::steady),
    /// so the steady-state event is emitted once per transition.
    pub was_steady: bool,
}

impl ServiceView {
    /// The PRIMARY deployment (the newest if a broken record has several).
    pub fn primary(&self) -> Option<&DeploymentView> {
        self.deployments
            .iter()
            .filter(|d| d.status == DeploymentStatus::Primary)
            .max_by_key(|d| d.created_at_ms)
    }

    /// Checks the invariants the reconciler relies on; [`reconcile`](crate::reconcile)
    /// tolerates a view that fails them (it drains what it cannot place)
    /// but callers should refuse to store one.
    pub fn validate(&self) -> Result<(), ViewError> {
        let primaries = self
            .deployments
            .iter()
            .filter(|d| d.status == DeploymentStatus::Primary)
            .count();
        if primaries != 1 {
            return Err(ViewError::PrimaryCount(primaries));
        }
        for t in &self.tasks {
            if !self.deployments.iter().any(|d| d.id == t.deployment_id) {
                return Err(ViewError::UnknownDeployment {
                    task: t.id.clone(),
                    deployment: t.deployment_id.clone(),
                });
            }
        }
        Ok(())
    }
}

/// A view that breaks an invariant of ECS's service model.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ViewError {
    #[error("a service has exactly one PRIMARY deployment, this one has {0}")]
    PrimaryCount(usize),
    #[error("task {task} names deployment {deployment}, which the service does not have")]
    UnknownDeployment { task: String, deployment: String },
}
