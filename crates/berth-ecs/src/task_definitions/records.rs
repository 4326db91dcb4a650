//! Store records of task definitions and the response shape they describe
//! as.
//!
//! Each revision has its own record at `Keys::task_definition(family, rev)`.
//! Each family has a record at `Keys::task_definition_family(family)` that
//! owns the revision counter and indexes its revisions by status, so that
//! "latest ACTIVE revision", ListTaskDefinitionFamilies' status filter and
//! ListTaskDefinitions read one small record per family instead of every
//! revision. Every status change writes both records in one transaction,
//! conditional on both, so the index never disagrees with the revisions.

use super::reference::arn;
use crate::context::RequestContext;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use std::collections::BTreeSet;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Status {
    Active,
    Inactive,
    DeleteInProgress,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Active => "ACTIVE",
            Status::Inactive => "INACTIVE",
            Status::DeleteInProgress => "DELETE_IN_PROGRESS",
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FamilyRecord {
    pub family: String,
    /// The last revision number handed out; numbers are never reused, even
    /// after their revisions are deregistered or deleted.
    pub latest_revision: u32,
    pub active: BTreeSet<u32>,
    pub inactive: BTreeSet<u32>,
    pub delete_in_progress: BTreeSet<u32>,
}

impl FamilyRecord {
    pub fn new(family: &str) -> FamilyRecord {
        FamilyRecord {
            family: family.to_string(),
            ..FamilyRecord::default()
        }
    }

    pub fn revisions(&self, status: Status) -> &BTreeSet<u32> {
        match status {
            Status::Active => &self.active,
            Status::Inactive => &self.inactive,
            Status::DeleteInProgress => &self.delete_in_progress,
        }
    }

    pub fn set_status(&mut self, revision: u32, status: Status) {
        self.active.remove(&revision);
        self.inactive.remove(&revision);
        self.delete_in_progress.remove(&revision);
        match status {
            Status::Active => self.active.insert(revision),
            Status::Inactive => self.inactive.insert(revision),
            Status::DeleteInProgress => self.delete_in_progress.insert(revision),
        };
    }

    pub fn latest_active(&self) -> Option<u32> {
        self.active.last().copied()
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskDefinitionRecord {
    pub family: String,
    pub revision: u32,
    pub status: Status,
    /// The registered task-level members (see `normalize::TASK_MEMBERS`),
    /// with ECS's defaults applied.
    pub definition: Map<String, Value>,
    pub requires_attributes: Vec<String>,
    pub compatibilities: Vec<String>,
    /// Epoch seconds with milliseconds, as the response carries them.
    pub registered_at: f64,
    pub registered_by: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deregistered_at: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delete_requested_at: Option<f64>,
}

impl TaskDefinitionRecord {
    pub fn container_definitions(&self) -> &[Value] {
        match self.definition.get("containerDefinitions") {
            Some(Value::Array(c)) => c,
            _ => &[],
        }
    }
}

/// The `TaskDefinition` shape, members in the order ECS writes them.
pub fn render(ctx: &RequestContext, r: &TaskDefinitionRecord) -> Value {
    let d = &r.definition;
    let mut out = Map::new();
    let mut put = |key: &str, value: Option<Value>| {
        if let Some(v) = value {
            out.insert(key.to_string(), v);
        }
    };
    let field = |key: &str| d.get(key).cloned();
    put(
        "taskDefinitionArn",
        Some(json!(arn(ctx, &r.family, r.revision))),
    );
    put(
        "containerDefinitions",
        Some(field("containerDefinitions").unwrap_or_else(|| json!([]))),
    );
    put("family", Some(json!(r.family)));
    put("taskRoleArn", field("taskRoleArn"));
    put("executionRoleArn", field("executionRoleArn"));
    put("networkMode", field("networkMode"));
    put("revision", Some(json!(r.revision)));
    put(
        "volumes",
        Some(field("volumes").unwrap_or_else(|| json!([]))),
    );
    put("status", Some(json!(r.status.as_str())));
    put(
        "requiresAttributes",
        Some(Value::Array(
            r.requires_attributes
                .iter()
                .map(|n| json!({"name": n}))
                .collect(),
        )),
    );
    put(
        "placementConstraints",
        Some(field("placementConstraints").unwrap_or_else(|| json!([]))),
    );
    put("compatibilities", Some(json!(r.compatibilities)));
    put("runtimePlatform", field("runtimePlatform"));
    put("requiresCompatibilities", field("requiresCompatibilities"));
    put("cpu", field("cpu"));
    put("memory", field("memory"));
    put("inferenceAccelerators", field("inferenceAccelerators"));
    put("pidMode", field("pidMode"));
    put("ipcMode", field("ipcMode"));
    put("proxyConfiguration", field("proxyConfiguration"));
    put("registeredAt", Some(json!(r.registered_at)));
    put("deregisteredAt", r.deregistered_at.map(|t| json!(t)));
    put("deleteRequestedAt", r.delete_requested_at.map(|t| json!(t)));
    put("registeredBy", Some(json!(r.registered_by)));
    put("ephemeralStorage", field("ephemeralStorage"));
    put("enableFaultInjection", field("enableFaultInjection"));
    Value::Object(out)
}
