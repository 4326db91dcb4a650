//! ECS service reconciliation as a pure function (docs to come).

pub mod events;
mod model;
mod plan;
mod reconcile;
pub mod throttle;

pub use model::{
    CircuitBreaker, DeploymentStatus, DeploymentView, DesiredStatus, HealthStatus, InstanceStatus,
    InstanceView, RolloutState, SchedulingStrategy, ServiceSpec, ServiceView, StopCode, TaskStatus,
    TaskView, ViewError,
};
pub use plan::{
    DeploymentChange, DeploymentCounts, Rollback, ServicePlan, ServiceState, StartTasks, StopTask,
};
pub use reconcile::{failure_threshold, max_total, min_healthy, reconcile};
pub use throttle::Throttle;

#[cfg(test)]
mod sim;
#[cfg(test)]
mod testkit;
#[cfg(test)]
mod tests;
