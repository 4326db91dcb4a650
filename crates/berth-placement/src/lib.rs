//! ECS task placement as a pure function.
//!
//! [`place`]`(snapshot, request, seed) -> `[`PlacementPlan`] decides which
//! container instances get the tasks of a RunTask call or of a service's
//! scheduling step, without IO, clock or ambient randomness: the same
//! inputs give the same plan, so placement can be tested, simulated and
//! benchmarked without a machine.
//!
//! The shape is Nomad's scheduler: an immutable [`ClusterSnapshot`]
//! (indexed once, shared by many placements), feasibility filters, then
//! rankers.
//!
//! 1. **Candidates**: ACTIVE instances with a connected agent (built into
//!    the snapshot). ACTIVE instances with a disconnected agent are
//!    reported as `AGENT`; other statuses are never candidates and never
//!    reported.
//! 2. **Filters**, in ECS's order, the first failing one being the reason
//!    reported: `RESOURCE:CPU`, `RESOURCE:MEMORY`, `RESOURCE:PORTS` (fixed
//!    host ports free; enough of the dynamic range free), then the
//!    constraints: `memberOf` (the [`query`] language), `distinctInstance`.
//! 3. **Rankers**: the strategies in order, as lexicographic keys
//!    (`binpack`: least of the resource left after placement; `spread`:
//!    fewest tasks of the request's group on the field's value; `random`:
//!    seeded), then a seeded random tie-break.
//!
//! A request for `count` tasks places them one by one; each placement is
//! recorded in an overlay (per-instance deltas, never a copy of the
//! snapshot) so the next one sees the resources, ports, spread counts and
//! groups it took. When a task fits nowhere, placement stops and the plan
//! lists, for every ACTIVE instance, the first reason it was rejected —
//! ECS's RunTask `failures`. [`Placer`] keeps the overlay across requests
//! for a scheduler placing many requests over one snapshot.
//!
//! ```
//! use berth_placement::{
//!     BinpackField, ClusterSnapshot, Constraint, InstanceView, PlacementRequest, Strategy, place,
//! };
//!
//! let snapshot = ClusterSnapshot::new(vec![
//!     InstanceView::new("a", 2048, 4096).with_attribute("ecs.instance-type", "t2.large"),
//!     InstanceView::new("b", 2048, 1024).with_attribute("ecs.instance-type", "t2.small"),
//! ]);
//! let mut request = PlacementRequest::new("web", 256, 512);
//! request.count = 3;
//! request.strategy = vec![Strategy::Binpack(BinpackField::Memory)];
//! request.constraints = vec![Constraint::member_of("attribute:ecs.instance-type =~ t2.*")?];
//! let plan = place(&snapshot, &request, 42);
//! let hosts: Vec<&str> = plan.placements.iter().map(|p| p.instance_id.as_str()).collect();
//! assert_eq!(hosts, ["b", "b", "a"]); // the fuller instance first
//! assert!(plan.failures.is_empty());
//! # Ok::<(), berth_placement::QueryError>(())
//! ```
//!
//! Task groups: `spread` and `distinctInstance` look at tasks of the
//! request's group ([`PlacementRequest::effective_group`]: `service:NAME`
//! for a service, RunTask's `group`, or `family:FAMILY` by default), as
//! ECS does.

mod bound;
mod engine;
mod feasibility;
mod model;
#[cfg(test)]
mod model_check;
mod overlay;
mod plan;
pub mod query;
mod rank;
mod request;
mod rng;
mod snapshot;
pub mod synthetic;

pub use engine::{Placer, place};
pub use model::{
    ContainerInstanceId, InstanceArn, InstanceStatus, InstanceView, Protocol, Resources, TaskArn,
    TaskSummary,
};
pub use plan::{Failure, FailureReason, Placement, PlacementPlan, PortBinding};
pub use query::{Expr, QueryError};
pub use request::{
    BinpackField, Constraint, MAX_CONSTRAINTS, MAX_STRATEGIES, MemberOf, PlacementRequest,
    PortNeed, RequestError, SpreadField, Strategy, cpu_reservation, memory_reservation,
};
pub use snapshot::{ClusterSnapshot, DEFAULT_DYNAMIC_PORT_RANGE};
