//! What is to be placed: [`PlacementRequest`] with its ports, constraints
//! and strategies, validated into typed values at the API edge.

use std::borrow::Cow;
use std::collections::BTreeSet;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::model::Protocol;
use crate::query::{self, Expr, QueryError};

/// ECS's limit on placement constraints per RunTask / service.
pub const MAX_CONSTRAINTS: usize = 10;
/// ECS's limit on placement strategies per RunTask / service.
pub const MAX_STRATEGIES: usize = 5;

/// One host port a task needs.
///
/// `host_port` `None` or `Some(0)` asks for a dynamic port: placement picks
/// the lowest free port of the instance's dynamic range (by default
/// [`crate::DEFAULT_DYNAMIC_PORT_RANGE`], the ECS agent's range when the
/// kernel's `ip_local_port_range` is unavailable) and records it in the plan.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PortNeed {
    #[serde(default)]
    pub host_port: Option<u16>,
    pub protocol: Protocol,
}

impl PortNeed {
    pub fn fixed(port: u16, protocol: Protocol) -> Self {
        PortNeed {
            host_port: Some(port),
            protocol,
        }
    }

    pub fn dynamic(protocol: Protocol) -> Self {
        PortNeed {
            host_port: None,
            protocol,
        }
    }

    /// The fixed host port, or `None` for a dynamic one.
    pub fn static_port(&self) -> Option<u16> {
        self.host_port.filter(|&p| p != 0)
    }
}

/// A `memberOf` expression: its text as the client wrote it and the parsed
/// form.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MemberOf {
    text: String,
    expr: Expr,
}

impl MemberOf {
    pub fn parse(text: &str) -> Result<Self, QueryError> {
        Ok(MemberOf {
            text: text.to_owned(),
            expr: query::parse(text)?,
        })
    }

    pub fn text(&self) -> &str {
        &self.text
    }

    pub fn expr(&self) -> &Expr {
        &self.expr
    }
}

/// A placement constraint. Serialized as ECS's `PlacementConstraint`
/// (`{"type": "memberOf", "expression": "..."}`); deserializing parses and
/// checks the expression.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "WireConstraint", into = "WireConstraint")]
pub enum Constraint {
    /// No two tasks of the request's group on one instance (counting the
    /// group's tasks already running).
    DistinctInstance,
    MemberOf(MemberOf),
}

impl Constraint {
    /// Parses a `memberOf` expression.
    pub fn member_of(expression: &str) -> Result<Self, QueryError> {
        MemberOf::parse(expression).map(Constraint::MemberOf)
    }

    /// From ECS's wire fields `type` and `expression`.
    pub fn from_ecs(kind: &str, expression: Option<&str>) -> Result<Self, RequestError> {
        match (kind, expression) {
            ("distinctInstance", None) => Ok(Constraint::DistinctInstance),
            ("distinctInstance", Some(_)) => Err(RequestError::ExpressionNotAllowed),
            ("memberOf", Some(e)) => Ok(Constraint::member_of(e)?),
            ("memberOf", None) => Err(RequestError::ExpressionRequired),
            (other, _) => Err(RequestError::UnknownConstraintType(other.to_owned())),
        }
    }
}

#[derive(Serialize, Deserialize)]
struct WireConstraint {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    expression: Option<String>,
}

impl TryFrom<WireConstraint> for Constraint {
    type Error = RequestError;
    fn try_from(w: WireConstraint) -> Result<Self, RequestError> {
        Constraint::from_ecs(&w.kind, w.expression.as_deref())
    }
}

impl From<Constraint> for WireConstraint {
    fn from(c: Constraint) -> Self {
        match c {
            Constraint::DistinctInstance => WireConstraint {
                kind: "distinctInstance".to_owned(),
                expression: None,
            },
            Constraint::MemberOf(m) => WireConstraint {
                kind: "memberOf".to_owned(),
                expression: Some(m.text),
            },
        }
    }
}

/// The resource `binpack` packs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BinpackField {
    Cpu,
    Memory,
}

/// What `spread` balances over.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum SpreadField {
    /// `instanceId` (or its alias `host`).
    InstanceId,
    /// `attribute:NAME`.
    Attribute(String),
}

/// A placement strategy. A request's strategies are applied in order, each
/// breaking the ties left by the ones before it. Serialized as ECS's
/// `PlacementStrategy` (`{"type": "spread", "field": "instanceId"}`).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "WireStrategy", into = "WireStrategy")]
pub enum Strategy {
    /// Least remaining of the resource after placement first.
    Binpack(BinpackField),
    /// Fewest tasks of the request's group on the field's value first.
    Spread(SpreadField),
    /// Seeded random order.
    Random,
}

impl Strategy {
    /// From ECS's wire fields `type` and `field`. Field names are matched
    /// case-insensitively for binpack (`cpu`, `MEMORY`); `host` is
    /// `instanceId`.
    pub fn from_ecs(kind: &str, field: Option<&str>) -> Result<Self, RequestError> {
        match kind {
            "binpack" => match field.map(str::to_ascii_lowercase).as_deref() {
                Some("cpu") => Ok(Strategy::Binpack(BinpackField::Cpu)),
                Some("memory") => Ok(Strategy::Binpack(BinpackField::Memory)),
                _ => Err(RequestError::InvalidStrategyField {
                    kind: "binpack",
                    field: field.map(str::to_owned),
                }),
            },
            "spread" => match field {
                Some(f)
                    if f.eq_ignore_ascii_case("instanceId") || f.eq_ignore_ascii_case("host") =>
                {
                    Ok(Strategy::Spread(SpreadField::InstanceId))
                }
                Some(f) => match f.strip_prefix("attribute:") {
                    Some(name) if !name.is_empty() => {
                        Ok(Strategy::Spread(SpreadField::Attribute(name.to_owned())))
                    }
                    _ => Err(RequestError::InvalidStrategyField {
                        kind: "spread",
                        field: Some(f.to_owned()),
                    }),
                },
                None => Err(RequestError::InvalidStrategyField {
                    kind: "spread",
                    field: None,
                }),
            },
            "random" => Ok(Strategy::Random),
            other => Err(RequestError::UnknownStrategyType(other.to_owned())),
        }
    }

    /// ECS's `type`.
    pub fn ecs_type(&self) -> &'static str {
        match self {
            Strategy::Binpack(_) => "binpack",
            Strategy::Spread(_) => "spread",
            Strategy::Random => "random",
        }
    }

    /// ECS's `field`.
    pub fn ecs_field(&self) -> Option<String> {
        match self {
            Strategy::Binpack(BinpackField::Cpu) => Some("cpu".to_owned()),
            Strategy::Binpack(BinpackField::Memory) => Some("memory".to_owned()),
            Strategy::Spread(SpreadField::InstanceId) => Some("instanceId".to_owned()),
            Strategy::Spread(SpreadField::Attribute(a)) => Some(format!("attribute:{a}")),
            Strategy::Random => None,
        }
    }

    /// ECS's default for services: spread over availability zones.
    pub fn service_default() -> Vec<Strategy> {
        vec![Strategy::Spread(SpreadField::Attribute(
            "ecs.availability-zone".to_owned(),
        ))]
    }
}

impl fmt::Display for Strategy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.ecs_field() {
            Some(field) => write!(f, "{}({field})", self.ecs_type()),
            None => f.write_str(self.ecs_type()),
        }
    }
}

#[derive(Serialize, Deserialize)]
struct WireStrategy {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    field: Option<String>,
}

impl TryFrom<WireStrategy> for Strategy {
    type Error = RequestError;
    fn try_from(w: WireStrategy) -> Result<Self, RequestError> {
        Strategy::from_ecs(&w.kind, w.field.as_deref())
    }
}

impl From<Strategy> for WireStrategy {
    fn from(s: Strategy) -> Self {
        WireStrategy {
            kind: s.ecs_type().to_owned(),
            field: s.ecs_field(),
        }
    }
}

/// A bad constraint, strategy or request. Every variant maps to
/// `InvalidParameterException`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    #[error("Invalid expression: {0}")]
    Expression(#[from] QueryError),
    #[error("a memberOf placement constraint requires an expression")]
    ExpressionRequired,
    #[error("a distinctInstance placement constraint cannot have an expression")]
    ExpressionNotAllowed,
    #[error("unknown placement constraint type {0:?}: expected distinctInstance or memberOf")]
    UnknownConstraintType(String),
    #[error("unknown placement strategy type {0:?}: expected binpack, random or spread")]
    UnknownStrategyType(String),
    #[error("invalid field {field:?} for the {kind} placement strategy")]
    InvalidStrategyField {
        kind: &'static str,
        field: Option<String>,
    },
    #[error("count must be at least 1")]
    ZeroCount,
    #[error("at most {max} placement constraints are allowed, got {got}")]
    TooManyConstraints { max: usize, got: usize },
    #[error("at most {max} placement strategies are allowed, got {got}")]
    TooManyStrategies { max: usize, got: usize },
    #[error("host port {port}/{protocol:?} is mapped more than once in the task")]
    DuplicateHostPort { port: u16, protocol: Protocol },
}

/// What to place: `count` identical tasks.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PlacementRequest {
    /// 1..=10 for RunTask; any number for a service's scheduler. Placing
    /// costs O(count × instances): the caller bounds it.
    pub count: u32,
    /// CPU units each task reserves (see [`cpu_reservation`]).
    pub cpu: u32,
    /// MiB each task reserves (see [`memory_reservation`]).
    pub memory: u32,
    /// Host ports each task binds, in container/port-mapping order; the
    /// plan's ports come back in the same order.
    #[serde(default)]
    pub ports: Vec<PortNeed>,
    #[serde(default)]
    pub constraints: Vec<Constraint>,
    /// Empty means seeded-random order (ECS's RunTask behaviour); the
    /// service scheduler passes [`Strategy::service_default`] when the
    /// service has none.
    #[serde(default)]
    pub strategy: Vec<Strategy>,
    /// The task group; `None` means `family:{task_definition_family}`, as
    /// RunTask defaults it.
    #[serde(default)]
    pub group: Option<String>,
    pub task_definition_family: String,
}

impl PlacementRequest {
    /// One task of `family` reserving `cpu` units and `memory` MiB, with no
    /// ports, constraints or strategies.
    pub fn new(family: &str, cpu: u32, memory: u32) -> Self {
        PlacementRequest {
            count: 1,
            cpu,
            memory,
            ports: Vec::new(),
            constraints: Vec::new(),
            strategy: Vec::new(),
            group: None,
            task_definition_family: family.to_owned(),
        }
    }

    /// The group whose tasks `spread` counts and `distinctInstance` keeps
    /// apart: `group`, or `family:FAMILY`.
    ///
    /// ECS: "Service tasks are spread based on the tasks from that service.
    /// Standalone tasks are spread based on the tasks from the same task
    /// group." A service's tasks carry the group `service:NAME`.
    pub fn effective_group(&self) -> Cow<'_, str> {
        match &self.group {
            Some(g) => Cow::Borrowed(g),
            None => Cow::Owned(format!("family:{}", self.task_definition_family)),
        }
    }

    /// The checks ECS makes on the request itself. [`crate::place`] does not
    /// require them (it never panics on any input), but an API handler
    /// should run them and answer `InvalidParameterException`.
    pub fn validate(&self) -> Result<(), RequestError> {
        if self.count == 0 {
            return Err(RequestError::ZeroCount);
        }
        if self.constraints.len() > MAX_CONSTRAINTS {
            return Err(RequestError::TooManyConstraints {
                max: MAX_CONSTRAINTS,
                got: self.constraints.len(),
            });
        }
        if self.strategy.len() > MAX_STRATEGIES {
            return Err(RequestError::TooManyStrategies {
                max: MAX_STRATEGIES,
                got: self.strategy.len(),
            });
        }
        if let Some((port, protocol)) = duplicate_static_port(&self.ports) {
            return Err(RequestError::DuplicateHostPort { port, protocol });
        }
        Ok(())
    }
}

/// The first fixed host port that appears twice for one protocol.
pub(crate) fn duplicate_static_port(ports: &[PortNeed]) -> Option<(u16, Protocol)> {
    let mut seen = BTreeSet::new();
    ports.iter().find_map(|p| {
        let port = p.static_port()?;
        (!seen.insert((p.protocol, port))).then_some((port, p.protocol))
    })
}

/// The CPU a task reserves, as ECS computes it: the task-level `cpu` if set,
/// else the sum of the containers' `cpu`.
pub fn cpu_reservation(
    task_cpu: Option<u32>,
    container_cpu: impl IntoIterator<Item = Option<u32>>,
) -> u32 {
    task_cpu.unwrap_or_else(|| {
        container_cpu
            .into_iter()
            .flatten()
            .fold(0u32, u32::saturating_add)
    })
}

/// The memory (MiB) a task reserves, as ECS computes it: the task-level
/// `memory` if set, else the sum over containers of `memoryReservation`, or
/// `memory` where no reservation is given.
pub fn memory_reservation(
    task_memory: Option<u32>,
    containers: impl IntoIterator<Item = (Option<u32>, Option<u32>)>,
) -> u32 {
    task_memory.unwrap_or_else(|| {
        containers
            .into_iter()
            .map(|(memory, reservation)| reservation.or(memory).unwrap_or(0))
            .fold(0u32, u32::saturating_add)
    })
}
