//! What the reconciler asks for. Applying a plan is the caller's job (one
//! store transaction); the next reconcile sees the result.

use crate::model::{DeploymentStatus, RolloutState};
use crate::throttle::Throttle;

/// Tasks to start in one deployment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StartTasks {
    pub deployment_id: String,
    pub task_definition: String,
    /// How many (REPLICA: placed by berth-placement; DAEMON: equals
    /// `instance_ids.len()`).
    pub count: u32,
    /// DAEMON only: one task on each of these instances.
    pub instance_ids: Vec<String>,
}

/// A task to stop: set its desired status to STOPPED with this reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StopTask {
    pub task_id: String,
    pub reason: String,
}

/// Changes to one deployment record; `None` leaves a field alone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeploymentChange {
    pub deployment_id: String,
    pub status: Option<DeploymentStatus>,
    /// The new rolloutState and its rolloutStateReason.
    pub rollout: Option<(RolloutState, String)>,
    pub failed_tasks: Option<u32>,
}

/// The circuit breaker asks for a rollback: create a new PRIMARY
/// deployment (IN_PROGRESS, reason [`reason`](Self::reason)) with
/// `task_definition`; the failed deployment becomes ACTIVE (in
/// [`ServicePlan::deployment_changes`]) and is drained like any old one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rollback {
    pub failed_deployment_id: String,
    /// The last COMPLETED deployment, whose task definition is restored.
    pub to_deployment_id: String,
    pub task_definition: String,
    pub reason: String,
}

/// Counts for one deployment, from the view.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeploymentCounts {
    pub deployment_id: String,
    pub running: u32,
    pub pending: u32,
}

/// The service's observed state, computed from the view (not from what
/// the plan will do): ECS's runningCount and pendingCount count lastStatus.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceState {
    /// For DAEMON, the number of eligible instances.
    pub desired_count: u32,
    pub running_count: u32,
    pub pending_count: u32,
    pub deployments: Vec<DeploymentCounts>,
    /// Only the PRIMARY is left, it runs the desired count, all healthy,
    /// nothing pending, and this plan changes nothing.
    pub steady: bool,
}

/// Everything one reconcile asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServicePlan {
    pub starts: Vec<StartTasks>,
    pub stops: Vec<StopTask>,
    /// STOPPED tasks whose failure this plan adds to their deployment's
    /// `failed_tasks`; mark them [`failure_recorded`](crate::TaskView::failure_recorded).
    pub recorded_failures: Vec<String>,
    pub deployment_changes: Vec<DeploymentChange>,
    pub rollback: Option<Rollback>,
    pub state: ServiceState,
    /// The throttle to store for the next view.
    pub throttle: Throttle,
    /// Events to add to the service, oldest first.
    pub events: Vec<String>,
    /// Reconcile again after this long even if nothing changes (a throttle
    /// delay or a grace period ending), kube-rs's `Action::requeue`.
    pub requeue_after_ms: Option<u64>,
}

impl ServicePlan {
    /// Neither starts nor stops tasks.
    pub fn is_quiet(&self) -> bool {
        self.starts.is_empty() && self.stops.is_empty()
    }

    /// The change this plan makes to a deployment, if any.
    pub fn change_for(&self, deployment_id: &str) -> Option<&DeploymentChange> {
        self.deployment_changes
            .iter()
            .find(|c| c.deployment_id == deployment_id)
    }
}
