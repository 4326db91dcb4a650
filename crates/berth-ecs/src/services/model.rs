//! The service record as stored under `Keys::service(cluster, name)`, and
//! the pieces the controller changes: deployments, counts and events.
//!
//! Only service records live under `Keys::services_of(cluster)`: cluster
//! counts (`activeServicesCount`) read the top-level `status` of every
//! record there.

use crate::capacity_providers::StrategyItem;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// ECS keeps a service's 100 most recent events.
pub const MAX_EVENTS: usize = 100;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ServiceStatus {
    Active,
    /// Deleted; its tasks are being stopped. The controller makes it
    /// INACTIVE once none are left.
    Draining,
    Inactive,
}

impl ServiceStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ServiceStatus::Active => "ACTIVE",
            ServiceStatus::Draining => "DRAINING",
            ServiceStatus::Inactive => "INACTIVE",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum SchedulingStrategy {
    Replica,
    Daemon,
}

impl SchedulingStrategy {
    pub fn as_str(self) -> &'static str {
        match self {
            SchedulingStrategy::Replica => "REPLICA",
            SchedulingStrategy::Daemon => "DAEMON",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CircuitBreaker {
    pub enable: bool,
    pub rollback: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeploymentConfiguration {
    pub deployment_circuit_breaker: CircuitBreaker,
    pub maximum_percent: u32,
    pub minimum_healthy_percent: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PlacementConstraint {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expression: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PlacementStrategy {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum DeploymentStatus {
    /// The deployment the service converges to.
    Primary,
    /// An earlier deployment whose tasks are still being replaced.
    Active,
    /// Fully replaced; kept only until the controller drops it.
    Inactive,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Deployment {
    /// `ecs-svc/` and 19 digits.
    pub id: String,
    pub status: DeploymentStatus,
    /// Task definition ARN.
    pub task_definition: String,
    pub desired_count: u32,
    pub pending_count: u32,
    pub running_count: u32,
    pub failed_tasks: u32,
    /// Epoch seconds.
    pub created_at: f64,
    pub updated_at: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub launch_type: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub capacity_provider_strategy: Vec<StrategyItem>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network_configuration: Option<Value>,
    /// IN_PROGRESS, COMPLETED or FAILED.
    pub rollout_state: String,
    pub rollout_state_reason: String,
    /// Set by StopServiceDeployment (see `deployments_api`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop: Option<DeploymentStop>,
    /// The service's configuration when this deployment started: its
    /// service revision. Absent on records written before it existed and
    /// on a service's first deployment (then the service's current
    /// configuration stands in).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision: Option<RevisionSnapshot>,
    /// Ids of the deployments (PRIMARY and ACTIVE) this one replaced when it
    /// started: its `sourceServiceRevisions`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub source_deployments: Vec<String>,
}

/// A user's StopServiceDeployment of one deployment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeploymentStop {
    /// ABORT or ROLLBACK.
    pub stop_type: String,
    /// Epoch seconds.
    pub requested_at: f64,
    /// For ROLLBACK: the PRIMARY deployment the rollback started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollback_deployment_id: Option<String>,
}

/// The parts of a service revision that live on the service record rather
/// than on the deployment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RevisionSnapshot {
    #[serde(default)]
    pub placement_constraints: Vec<PlacementConstraint>,
    #[serde(default)]
    pub placement_strategy: Vec<PlacementStrategy>,
    #[serde(default)]
    pub load_balancers: Vec<Value>,
    #[serde(default)]
    pub service_registries: Vec<Value>,
    pub deployment_configuration: DeploymentConfiguration,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceEvent {
    pub id: String,
    pub created_at: f64,
    pub message: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceRecord {
    pub name: String,
    pub cluster: String,
    pub status: ServiceStatus,
    pub desired_count: u32,
    /// Maintained by the controller (tasks of this service RUNNING / PENDING).
    pub running_count: u32,
    pub pending_count: u32,
    /// Absent when a capacity provider strategy is used instead.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub launch_type: Option<String>,
    #[serde(default)]
    pub capacity_provider_strategy: Vec<StrategyItem>,
    /// The PRIMARY deployment's task definition ARN.
    pub task_definition: String,
    pub scheduling_strategy: SchedulingStrategy,
    pub deployment_configuration: DeploymentConfiguration,
    /// PRIMARY first, then older ones, newest first.
    pub deployments: Vec<Deployment>,
    /// Newest first, at most [`MAX_EVENTS`].
    #[serde(default)]
    pub events: Vec<ServiceEvent>,
    #[serde(default)]
    pub placement_constraints: Vec<PlacementConstraint>,
    #[serde(default)]
    pub placement_strategy: Vec<PlacementStrategy>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network_configuration: Option<Value>,
    #[serde(default)]
    pub load_balancers: Vec<Value>,
    #[serde(default)]
    pub service_registries: Vec<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health_check_grace_period_seconds: Option<u32>,
    /// TASK_DEFINITION, SERVICE or NONE.
    pub propagate_tags: String,
    pub enable_ecs_managed_tags: bool,
    pub enable_execute_command: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role_arn: Option<String>,
    pub created_at: f64,
    pub created_by: String,
    /// CreateService's clientToken and a canonical form of its request, so
    /// a retried identical create returns this record.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_token: Option<String>,
    #[serde(default)]
    pub request_fingerprint: String,
    /// The service controller's start throttle (see berth-controllers'
    /// `throttle`), carried from one reconcile to the next.
    #[serde(default)]
    pub throttle: ThrottleRecord,
    /// Whether the last reconcile found the service steady, so the
    /// steady-state event is written once per transition.
    #[serde(default)]
    pub was_steady: bool,
    /// Deployments that became INACTIVE, newest first, at most
    /// [`MAX_PAST_DEPLOYMENTS`]: DescribeServices no longer shows them,
    /// ListServiceDeployments and DescribeServiceDeployments do.
    #[serde(default)]
    pub past_deployments: Vec<Deployment>,
    /// Targets the service controller registered in ELBv2 target groups
    /// for this service's tasks, by task id: only these are ever
    /// deregistered by the controller (see `services::load_balancers`).
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub lb_targets: std::collections::BTreeMap<String, Vec<super::load_balancers::OwnedTarget>>,
    /// Tasks the scheduler stops once their targets have drained, by task id.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub deactivating: std::collections::BTreeMap<String, super::load_balancers::Deactivating>,
}

/// How many finished deployments a service remembers.
pub const MAX_PAST_DEPLOYMENTS: usize = 50;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ThrottleRecord {
    pub consecutive_failures: u32,
    pub last_failure_at_ms: u64,
}

impl ServiceRecord {
    /// Record an event: newest first, the oldest dropped beyond
    /// [`MAX_EVENTS`]. For the controller ("(service web) has reached a
    /// steady state." and the like).
    pub fn push_event(&mut self, message: impl Into<String>, now: f64) {
        self.events.insert(
            0,
            ServiceEvent { id: crate::container_instances::new_uuid(), created_at: now, message: message.into() },
        );
        self.events.truncate(MAX_EVENTS);
    }

    /// The deployment the service converges to.
    pub fn primary(&self) -> Option<&Deployment> {
        self.deployments.iter().find(|d| d.status == DeploymentStatus::Primary)
    }

    pub fn primary_mut(&mut self) -> Option<&mut Deployment> {
        self.deployments.iter_mut().find(|d| d.status == DeploymentStatus::Primary)
    }

    /// Roll back to `to` (an earlier deployment): a new PRIMARY deployment
    /// with its task definition, and the service's launch, network and
    /// (when recorded) placement, load balancer and registry configuration
    /// restored to what it ran with. Returns the new deployment's id.
    pub fn roll_back_to(&mut self, to: &Deployment, now: f64) -> String {
        let mut next = new_deployment(
            &to.task_definition,
            self.desired_count,
            to.launch_type.clone(),
            to.capacity_provider_strategy.clone(),
            to.network_configuration.clone(),
            now,
        );
        next.revision = to.revision.clone();
        self.launch_type = to.launch_type.clone();
        self.capacity_provider_strategy = to.capacity_provider_strategy.clone();
        self.network_configuration = to.network_configuration.clone();
        if let Some(rev) = &to.revision {
            self.load_balancers = rev.load_balancers.clone();
            self.service_registries = rev.service_registries.clone();
            self.placement_constraints = rev.placement_constraints.clone();
            self.placement_strategy = rev.placement_strategy.clone();
        }
        let id = next.id.clone();
        self.start_deployment(next);
        id
    }

    /// A deployment of the service, current or past.
    pub fn deployment(&self, id: &str) -> Option<&Deployment> {
        self.deployments.iter().chain(self.past_deployments.iter()).find(|d| d.id == id)
    }

    /// Make `deployment` the PRIMARY one: the previous PRIMARY becomes
    /// ACTIVE (its tasks are replaced by the controller), and the record's
    /// task definition follows the new PRIMARY.
    pub fn start_deployment(&mut self, mut deployment: Deployment) {
        // A new revision starts unthrottled: earlier failures were the old
        // one's (this is what lets a circuit-breaker rollback start at once).
        self.throttle = ThrottleRecord::default();
        if deployment.source_deployments.is_empty() {
            deployment.source_deployments = self
                .deployments
                .iter()
                .filter(|d| d.status != DeploymentStatus::Inactive)
                .map(|d| d.id.clone())
                .collect();
        }
        if deployment.revision.is_none() {
            deployment.revision = Some(self.revision_snapshot());
        }
        for d in &mut self.deployments {
            if d.status == DeploymentStatus::Primary {
                d.status = DeploymentStatus::Active;
                d.updated_at = deployment.created_at;
            }
        }
        self.task_definition = deployment.task_definition.clone();
        self.deployments.insert(0, deployment);
    }
}

impl ServiceRecord {
    /// The service's current configuration, as a new deployment's revision.
    pub fn revision_snapshot(&self) -> RevisionSnapshot {
        RevisionSnapshot {
            placement_constraints: self.placement_constraints.clone(),
            placement_strategy: self.placement_strategy.clone(),
            load_balancers: self.load_balancers.clone(),
            service_registries: self.service_registries.clone(),
            deployment_configuration: self.deployment_configuration.clone(),
        }
    }
}

/// A new PRIMARY deployment of `task_definition`, IN_PROGRESS.
pub fn new_deployment(
    task_definition: &str,
    desired_count: u32,
    launch_type: Option<String>,
    capacity_provider_strategy: Vec<StrategyItem>,
    network_configuration: Option<Value>,
    now: f64,
) -> Deployment {
    let id = new_deployment_id();
    Deployment {
        rollout_state_reason: format!("ECS deployment {id} in progress."),
        id,
        status: DeploymentStatus::Primary,
        task_definition: task_definition.to_string(),
        desired_count,
        pending_count: 0,
        running_count: 0,
        failed_tasks: 0,
        created_at: now,
        updated_at: now,
        launch_type,
        capacity_provider_strategy,
        network_configuration,
        rollout_state: "IN_PROGRESS".into(),
        stop: None,
        revision: None,
        source_deployments: Vec::new(),
    }
}

/// `ecs-svc/` and 19 decimal digits, as ECS names deployments. From the
/// process's random id source, never from the clock.
pub fn new_deployment_id() -> String {
    let hex = crate::container_instances::new_hex_id();
    // 16 hex digits always fit u64; fall back to 0 rather than fail, as
    // the id is opaque and only needs to be unlikely to repeat.
    let n = u64::from_str_radix(&hex[..16], 16).unwrap_or(0);
    format!("ecs-svc/{:019}", n % 10_000_000_000_000_000_000)
}

/// A plain REPLICA service record for unit tests.
#[cfg(test)]
pub(crate) fn sample_record() -> ServiceRecord {
    ServiceRecord {
        name: "web".into(),
        cluster: "default".into(),
        status: ServiceStatus::Active,
        desired_count: 1,
        running_count: 0,
        pending_count: 0,
        launch_type: Some("EC2".into()),
        capacity_provider_strategy: vec![],
        task_definition: "td:1".into(),
        scheduling_strategy: SchedulingStrategy::Replica,
        deployment_configuration: DeploymentConfiguration {
            deployment_circuit_breaker: CircuitBreaker { enable: false, rollback: false },
            maximum_percent: 200,
            minimum_healthy_percent: 100,
        },
        deployments: vec![new_deployment("td:1", 1, Some("EC2".into()), vec![], None, 1.0)],
        events: vec![],
        placement_constraints: vec![],
        placement_strategy: vec![],
        network_configuration: None,
        load_balancers: vec![],
        service_registries: vec![],
        health_check_grace_period_seconds: None,
        propagate_tags: "NONE".into(),
        enable_ecs_managed_tags: false,
        enable_execute_command: false,
        role_arn: None,
        created_at: 1.0,
        created_by: "arn".into(),
        client_token: None,
        request_fingerprint: String::new(),
        throttle: ThrottleRecord::default(),
        was_steady: false,
        past_deployments: vec![],
        lb_targets: Default::default(),
        deactivating: Default::default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record() -> ServiceRecord {
        sample_record()
    }

    #[test]
    fn deployment_ids_have_ecs_form_and_differ() {
        let a = new_deployment_id();
        let b = new_deployment_id();
        assert_ne!(a, b);
        let digits = a.strip_prefix("ecs-svc/").unwrap();
        assert_eq!(digits.len(), 19);
        assert!(digits.bytes().all(|c| c.is_ascii_digit()));
    }

    #[test]
    fn events_are_newest_first_and_bounded() {
        let mut r = record();
        for i in 0..(MAX_EVENTS + 5) {
            r.push_event(format!("e{i}"), i as f64);
        }
        assert_eq!(r.events.len(), MAX_EVENTS);
        assert_eq!(r.events[0].message, format!("e{}", MAX_EVENTS + 4));
        assert_eq!(r.events[MAX_EVENTS - 1].message, "e5");
    }

    #[test]
    fn a_new_deployment_demotes_the_primary() {
        let mut r = record();
        r.throttle = ThrottleRecord { consecutive_failures: 4, last_failure_at_ms: 9 };
        let old = r.deployments[0].id.clone();
        r.start_deployment(new_deployment("td:2", 1, Some("EC2".into()), vec![], None, 2.0));
        assert_eq!(r.deployments.len(), 2);
        assert_eq!(r.primary().unwrap().task_definition, "td:2");
        assert_eq!(r.task_definition, "td:2");
        assert_eq!(r.deployments[1].id, old);
        assert_eq!(r.deployments[1].status, DeploymentStatus::Active);
        assert_eq!(r.deployments.iter().filter(|d| d.status == DeploymentStatus::Primary).count(), 1);
        assert_eq!(r.throttle, ThrottleRecord::default(), "a new revision starts unthrottled");
    }

    #[test]
    fn status_serializes_as_cluster_counts_read_it() {
        let v = serde_json::to_value(record()).unwrap();
        assert_eq!(v["status"], "ACTIVE");
    }
}
