//! ECS service reconciliation as a pure function.
//!
//! [`reconcile`]`(view, now_ms) -> `[`ServicePlan`] decides what one ECS
//! service needs next: tasks to start (per deployment, or per instance for
//! DAEMON), tasks to stop with ECS's stopped reasons, deployment changes
//! (status, rolloutState and reason, failedTasks), a circuit-breaker
//! rollback, the service's counts and steady-state flag, and events in
//! ECS's wording ([`events`] keeps every string in one place). No IO, no
//! clock (`now_ms` is an input), no randomness: the controller that owns
//! the store builds a [`ServiceView`], calls `reconcile`, applies the plan
//! in one transaction (placing the starts with berth-placement), and runs
//! again when anything changes or after [`ServicePlan::requeue_after_ms`].
//!
//! The shape is a kube-rs controller: level-triggered (every decision is
//! recomputed from the view, never from why it was woken) and idempotent
//! (reconciling the view a plan produced asks for nothing more once the
//! world did what was asked; the simulation tests check this every step).
//! What must survive between runs lives in the view: a task's
//! [`TaskView::failure_recorded`] (so `failedTasks` counts each failure
//! once), the [`Throttle`], and [`ServiceView::was_steady`].
//!
//! # Rules
//!
//! Counting: a task counts while desired RUNNING, PENDING or RUNNING, and
//! not [`lost`](TaskView::lost); STOPPED tasks simply stop counting, so
//! they are replaced. It is *healthy* when RUNNING and (no health check or
//! HEALTHY); an UNKNOWN health status is not healthy yet.
//!
//! 1. **Lost tasks** (their host's agent is silent past the grace period)
//!    are stopped with "Host lost" and count toward no deployment, but
//!    keep holding room under maximumPercent until their agent confirms
//!    the stop (rule 5).
//! 2. **Failures** (STOPPED with TaskFailedToStart or
//!    EssentialContainerExited, or stopped by the scheduler while
//!    UNHEALTHY) are added once to their deployment's `failedTasks` and to
//!    the throttle.
//! 3. **Circuit breaker** (when enabled, while the PRIMARY is
//!    IN_PROGRESS): at [`failure_threshold`] failures (`0.5 × desired`,
//!    rounded up — ECS does not say how it rounds — within 3..=200, from
//!    ECS's API reference) the PRIMARY becomes FAILED ("ECS deployment
//!    circuit breaker: tasks failed to start.") and nothing more starts.
//!    With rollback, the plan asks for a new PRIMARY with the task
//!    definition of the last COMPLETED deployment and the failed one
//!    becomes ACTIVE (drained like any old deployment). Without rollback,
//!    the FAILED PRIMARY stays, starts nothing and old deployments are no
//!    longer drained (our reading of "the deployment stops"; unconfirmed).
//! 4. **Unhealthy** RUNNING tasks past the health-check grace period are
//!    stopped ("Task failed container health checks", or "Task failed ELB
//!    health checks in (target-group ARN)" when a target of the task is
//!    unhealthy in one of the service's target groups) and replaced; this
//!    never lowers the healthy count, so minimumHealthyPercent does not
//!    hold it back. With load balancers a task is healthy only once its
//!    targets are healthy in every group ([`TaskView::lb_health`]).
//! 5. **REPLICA rolling update and scaling**: the PRIMARY aims at the
//!    service's desired count, every other deployment at 0. Surplus tasks
//!    are stopped ("Scaling activity initiated by (deployment ID)") in this
//!    order: not yet healthy first, old deployments before the PRIMARY,
//!    older deployments first, most recently started first (ECS balances
//!    across Availability Zones first; Berth has none yet). A healthy task
//!    is stopped only while the healthy count stays ≥ [`min_healthy`]
//!    (`ceil(desired × min% / 100)`). Then the PRIMARY gets starts up to
//!    its desired count without the total exceeding [`max_total`]
//!    (`floor(desired × max% / 100)`). The total is what may really run:
//!    every task not yet STOPPED, of any deployment, including tasks asked
//!    to stop that are still stopping (ECS counts lastStatus RUNNING or
//!    PENDING), and lost tasks. Tasks on DRAINING instances count as
//!    surplus, like an old deployment's, and are replaced the same way.
//!    As in ECS, settings where both bounds equal the desired count (e.g.
//!    100/100) cannot make progress.
//! 6. **DAEMON**: one task per eligible instance (ACTIVE, agent connected,
//!    matching; the caller decides matching). Tasks on DRAINING instances
//!    ("Container instance is draining", unconfirmed wording), unknown or
//!    no longer matching instances are stopped; tasks on disconnected
//!    instances stay. An update stops an instance's old task within
//!    minimumHealthyPercent of the eligible count and starts the new one in
//!    the same plan, so an instance never has two tasks desired RUNNING.
//! 7. **Throttle**: after repeated failures starts wait and then go one at
//!    a time ([`throttle`] documents the schedule, which is ours).
//! 8. **Retire and complete**: a non-PRIMARY deployment with nothing left
//!    asked to run becomes INACTIVE; the PRIMARY becomes COMPLETED when it
//!    alone runs the desired count, all healthy, and each task without a
//!    health check has stayed RUNNING for [`STABLE_RUNNING_MS`] (a
//!    container that crashes at once reaches RUNNING for a moment; this
//!    keeps its deployment IN_PROGRESS, so the circuit breaker still sees
//!    its failures).
//! 9. **Steady state**: the plan changes nothing, the PRIMARY is COMPLETED
//!    and alone, runningCount equals the desired count, all healthy,
//!    nothing pending.
//!    The steady-state event is emitted only when the previous plan was not
//!    steady ([`ServiceView::was_steady`]), which keeps events bounded.
//!
//! The "has started N tasks" and "unable to place" events need task ids and
//! placement results, so the caller builds them with [`events`] after
//! applying the plan.
//!
//! ```
//! use berth_controllers::*;
//!
//! let view = ServiceView {
//!     name: "web".into(),
//!     spec: ServiceSpec {
//!         desired_count: 2,
//!         scheduling: SchedulingStrategy::Replica,
//!         minimum_healthy_percent: 100,
//!         maximum_percent: 200,
//!         circuit_breaker: CircuitBreaker { enable: true, rollback: true },
//!         health_check_grace_period_ms: 0,
//!     },
//!     deployments: vec![DeploymentView {
//!         id: "ecs-svc/1".into(),
//!         task_definition: "arn:aws:ecs:us-east-1:000000000000:task-definition/web:1".into(),
//!         status: DeploymentStatus::Primary,
//!         rollout_state: RolloutState::InProgress,
//!         created_at_ms: 0,
//!         failed_tasks: 0,
//!         desired_count: 2,
//!     }],
//!     tasks: vec![],
//!     instances: vec![],
//!     throttle: Throttle::default(),
//!     was_steady: false,
//! };
//! let plan = reconcile(&view, 1_000);
//! assert_eq!(plan.starts[0].count, 2);
//! assert!(plan.stops.is_empty() && !plan.state.steady);
//! ```

pub mod events;
mod model;
mod plan;
mod reconcile;
pub mod throttle;

pub use model::{
    CircuitBreaker, DeploymentStatus, DeploymentView, DesiredStatus, HealthStatus, InstanceStatus,
    InstanceView, LbHealth, RolloutState, SchedulingStrategy, ServiceSpec, ServiceView, StopCode, TaskStatus,
    TaskView, ViewError,
};
pub use plan::{
    DeploymentChange, DeploymentCounts, Rollback, ServicePlan, ServiceState, StartTasks, StopTask,
};
pub use reconcile::{STABLE_RUNNING_MS, failure_threshold, max_total, min_healthy, reconcile};
pub use throttle::Throttle;

#[cfg(test)]
mod sim;
#[cfg(test)]
mod testkit;
#[cfg(test)]
mod tests;
