//! What placement reads about the cluster: one [`InstanceView`] per container
//! instance, with its resources, attributes and the tasks it runs.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::ops::RangeInclusive;

use serde::{Deserialize, Serialize};

macro_rules! string_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            pub fn new(value: impl Into<String>) -> Self {
                Self(value.into())
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl From<&str> for $name {
            fn from(value: &str) -> Self {
                Self(value.to_owned())
            }
        }

        impl From<String> for $name {
            fn from(value: String) -> Self {
                Self(value)
            }
        }
    };
}

string_id!(
    /// A container instance id: the last path segment of its ARN.
    ContainerInstanceId
);
string_id!(
    /// A container instance ARN, as ECS reports it in `failures[].arn`.
    InstanceArn
);
string_id!(
    /// A task ARN.
    TaskArn
);

/// A container instance's status, spelled as ECS spells it on the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum InstanceStatus {
    Active,
    Draining,
    Registering,
    Deregistering,
    RegistrationFailed,
    Inactive,
}

impl InstanceStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            InstanceStatus::Active => "ACTIVE",
            InstanceStatus::Draining => "DRAINING",
            InstanceStatus::Registering => "REGISTERING",
            InstanceStatus::Deregistering => "DEREGISTERING",
            InstanceStatus::RegistrationFailed => "REGISTRATION_FAILED",
            InstanceStatus::Inactive => "INACTIVE",
        }
    }
}

/// Transport protocol of a host port.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    Tcp,
    Udp,
}

/// Resources of a container instance, as ECS models them in
/// `registeredResources` / `remainingResources`.
///
/// `cpu` is in CPU units (1024 per vCPU) and `memory` in MiB.
///
/// The port sets follow ECS's (surprising) convention: both in the
/// registered and in the remaining resources, `PORTS` / `PORTS_UDP` list the
/// ports that are **taken** — reserved by the agent configuration in
/// `registered`, reserved plus bound by running tasks in `remaining`. A host
/// port is free on an instance iff it is not in `remaining`'s set.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Resources {
    pub cpu: u32,
    pub memory: u32,
    #[serde(default)]
    pub ports_tcp: BTreeSet<u16>,
    #[serde(default)]
    pub ports_udp: BTreeSet<u16>,
}

impl Resources {
    pub fn new(cpu: u32, memory: u32) -> Self {
        Resources {
            cpu,
            memory,
            ports_tcp: BTreeSet::new(),
            ports_udp: BTreeSet::new(),
        }
    }

    /// The taken ports of one protocol.
    pub fn ports(&self, protocol: Protocol) -> &BTreeSet<u16> {
        match protocol {
            Protocol::Tcp => &self.ports_tcp,
            Protocol::Udp => &self.ports_udp,
        }
    }
}

/// What placement needs to know about a task already on an instance.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskSummary {
    pub task_definition_family: String,
    /// The task's group (`service:NAME` for service tasks, `family:NAME` by
    /// default for RunTask) — what `spread`, `distinctInstance` and
    /// `task:group` look at.
    pub group: String,
    #[serde(default)]
    pub started_by: Option<String>,
    pub task_arn: TaskArn,
}

/// One container instance as placement sees it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InstanceView {
    pub id: ContainerInstanceId,
    pub arn: InstanceArn,
    /// The host's instance id (`ec2InstanceId` in the query language).
    #[serde(default)]
    pub ec2_instance_id: Option<String>,
    /// The agent's version (`agentVersion` in the query language).
    #[serde(default)]
    pub agent_version: Option<String>,
    pub status: InstanceStatus,
    pub agent_connected: bool,
    pub registered: Resources,
    pub remaining: Resources,
    /// Platform (`ecs.availability-zone`, `ecs.instance-type`, `ecs.os-type`,
    /// `ecs.cpu-architecture`, `ecs.capability.*`) and custom attributes. An
    /// attribute may exist without a value.
    #[serde(default)]
    pub attributes: BTreeMap<String, Option<String>>,
    /// Tasks that hold resources on the instance (PENDING or RUNNING).
    #[serde(default)]
    pub running_tasks: Vec<TaskSummary>,
    /// The host's own dynamic host-port range (its agent's
    /// `ECS_DYNAMIC_HOST_PORT_RANGE`); `None`: the snapshot's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dynamic_port_range: Option<RangeInclusive<u16>>,
}

impl InstanceView {
    /// An ACTIVE, connected instance with `cpu`/`memory` both registered and
    /// remaining, no attributes and no tasks. A convenient start for tests
    /// and simulations.
    pub fn new(id: impl Into<String>, cpu: u32, memory: u32) -> Self {
        let id = id.into();
        InstanceView {
            arn: InstanceArn::new(format!(
                "arn:aws:ecs:us-east-1:000000000000:container-instance/default/{id}"
            )),
            id: ContainerInstanceId::new(id),
            ec2_instance_id: None,
            agent_version: None,
            status: InstanceStatus::Active,
            agent_connected: true,
            registered: Resources::new(cpu, memory),
            remaining: Resources::new(cpu, memory),
            attributes: BTreeMap::new(),
            running_tasks: Vec::new(),
            dynamic_port_range: None,
        }
    }

    /// Builder helper: sets the instance's own dynamic host-port range.
    pub fn with_dynamic_port_range(mut self, range: RangeInclusive<u16>) -> Self {
        self.dynamic_port_range = Some(range);
        self
    }

    /// Builder helper: sets an attribute with a value.
    pub fn with_attribute(mut self, name: &str, value: &str) -> Self {
        self.attributes
            .insert(name.to_owned(), Some(value.to_owned()));
        self
    }

    /// Builder helper: adds a running task of `group` (family `family`).
    pub fn with_task(mut self, family: &str, group: &str) -> Self {
        let n = self.running_tasks.len();
        self.running_tasks.push(TaskSummary {
            task_definition_family: family.to_owned(),
            group: group.to_owned(),
            started_by: None,
            task_arn: TaskArn::new(format!("{}/task-{n}", self.arn)),
        });
        self
    }

    /// The value of an attribute: `None` if absent, `Some(None)` if present
    /// without a value.
    pub fn attribute(&self, name: &str) -> Option<Option<&str>> {
        self.attributes.get(name).map(|v| v.as_deref())
    }
}
