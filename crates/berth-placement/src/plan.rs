//! What placement decides: where each task goes, and why the rest did not.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::model::{ContainerInstanceId, InstanceArn, Protocol};

/// A host port given to a task: one per [`crate::PortNeed`] of the request,
/// in the same order. Fixed ports come back as asked; dynamic ones as
/// allocated.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PortBinding {
    pub host_port: u16,
    pub protocol: Protocol,
}

/// One task placed on one instance.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Placement {
    pub instance_id: ContainerInstanceId,
    pub instance_arn: InstanceArn,
    pub host_ports: Vec<PortBinding>,
}

/// Why an instance could not take a task, as ECS spells it in RunTask's
/// `failures[].reason`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum FailureReason {
    /// `AGENT`: the instance's agent is disconnected.
    Agent,
    /// `RESOURCE:CPU`.
    ResourceCpu,
    /// `RESOURCE:MEMORY`.
    ResourceMemory,
    /// `RESOURCE:PORTS`: a fixed host port is taken, or the dynamic range is
    /// exhausted.
    ResourcePorts,
    /// `MemberOf placement constraint unsatisfied.`
    MemberOf,
    /// `DistinctInstance placement constraint unsatisfied.`
    DistinctInstance,
    /// `No Container Instances were found in your cluster.` — no ACTIVE
    /// instance at all. Reported without an ARN; ECS answers RunTask with
    /// an `InvalidParameterException` carrying this message instead of a
    /// failure, and the API layer should do the same when the plan places
    /// nothing and has this failure.
    NoContainerInstances,
}

impl FailureReason {
    /// The wire string.
    pub fn as_str(self) -> &'static str {
        match self {
            FailureReason::Agent => "AGENT",
            FailureReason::ResourceCpu => "RESOURCE:CPU",
            FailureReason::ResourceMemory => "RESOURCE:MEMORY",
            FailureReason::ResourcePorts => "RESOURCE:PORTS",
            FailureReason::MemberOf => "MemberOf placement constraint unsatisfied.",
            FailureReason::DistinctInstance => "DistinctInstance placement constraint unsatisfied.",
            FailureReason::NoContainerInstances => {
                "No Container Instances were found in your cluster."
            }
        }
    }
}

impl fmt::Display for FailureReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One entry of RunTask's `failures`: an instance (by ARN) and the first
/// reason it was rejected for.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Failure {
    pub arn: Option<InstanceArn>,
    pub reason: FailureReason,
}

/// The outcome of one request: as many placements as fit (at most `count`),
/// and, when fewer than `count` fit, one failure per ACTIVE instance saying
/// why it could not take the next task.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PlacementPlan {
    pub placements: Vec<Placement>,
    pub failures: Vec<Failure>,
}
