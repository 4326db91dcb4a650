//! Task roles and execution roles, as ECS sees them: whether the caller may
//! pass a role (`iam:PassRole`), whether ECS may assume it for tasks (its
//! trust policy trusts `ecs-tasks.amazonaws.com`), and the credentials a
//! host's agent serves each task.
//!
//! IAM itself lives outside this crate; the front door gives [`Ecs`] a
//! [`RoleGate`] backed by it. [`OpenRoleGate`] (every role passes, no
//! credentials) stands in where no IAM runs, as in handler unit tests.
//!
//! [`Ecs`]: crate::Ecs

use crate::context::RequestContext;
use crate::error::{EcsError, EcsResult};
use crate::task_definitions;
use berth_agent_protocol::TaskCredentials;
use berth_store::Store;
use serde_json::{Map, Value};
use std::time::SystemTime;

pub trait RoleGate: Send + Sync {
    /// `Err(message)` when the caller of `ctx` may not pass `role_arn` to ECS.
    fn check_pass_role(&self, ctx: &RequestContext, role_arn: &str) -> Result<(), String>;

    /// Whether the role exists in the caller's account and trusts
    /// `ecs-tasks.amazonaws.com`.
    fn ecs_can_assume(&self, ctx: &RequestContext, role_arn: &str) -> bool;

    /// Fresh credentials for a task's roles (`None` when it names none).
    fn task_credentials(
        &self,
        ctx: &RequestContext,
        task_arn: &str,
        task_role_arn: Option<&str>,
        execution_role_arn: Option<&str>,
        now: SystemTime,
    ) -> Option<TaskCredentials>;
}

/// Every role may be passed and assumed; no credentials are minted.
pub struct OpenRoleGate;

impl RoleGate for OpenRoleGate {
    fn check_pass_role(&self, _: &RequestContext, _: &str) -> Result<(), String> {
        Ok(())
    }
    fn ecs_can_assume(&self, _: &RequestContext, _: &str) -> bool {
        true
    }
    fn task_credentials(&self, _: &RequestContext, _: &str, _: Option<&str>, _: Option<&str>, _: SystemTime) -> Option<TaskCredentials> {
        None
    }
}

/// ECS's answer when a role cannot be assumed for a task.
pub fn unable_to_assume(role_arn: &str) -> EcsError {
    EcsError::client(format!(
        "ECS was unable to assume the role '{role_arn}' that was provided for this task. Please verify that the role being passed has the proper trust relationship and permissions and that your IAM user has permissions to pass this role."
    ))
}

/// A role member as given: a full ARN, or a name ECS completes to a role
/// of the caller's account (`taskRoleArn` accepts either).
pub fn role_arn(ctx: &RequestContext, given: &str) -> String {
    if given.starts_with("arn:") {
        given.to_string()
    } else {
        format!("arn:aws:iam::{}:role/{given}", ctx.account)
    }
}

/// The roles an operation hands to ECS, and whether ECS will assume them
/// now (RunTask, StartTask, services) or only later (RegisterTaskDefinition).
struct PassedRoles {
    arns: Vec<String>,
    assumed_now: bool,
}

fn roles_of(members: &Map<String, Value>, ctx: &RequestContext, out: &mut Vec<String>) {
    for field in ["taskRoleArn", "executionRoleArn"] {
        if let Some(Value::String(r)) = members.get(field)
            && !r.is_empty()
        {
            let arn = role_arn(ctx, r);
            if !out.contains(&arn) {
                out.push(arn);
            }
        }
    }
}

async fn passed_roles(store: &dyn Store, ctx: &RequestContext, operation: &str, body: &Map<String, Value>) -> EcsResult<Option<PassedRoles>> {
    let mut arns = Vec::new();
    let assumed_now = match operation {
        "RegisterTaskDefinition" => {
            roles_of(body, ctx, &mut arns);
            false
        }
        "RunTask" | "StartTask" | "CreateService" | "UpdateService" => {
            if let Some(Value::String(reference)) = body.get("taskDefinition") {
                // An unknown reference is left to the operation, which
                // answers it with ECS's own error.
                if let Ok(td) = task_definitions::resolve(store, ctx, reference).await {
                    roles_of(&td.record.definition, ctx, &mut arns);
                }
            }
            if let Some(Value::Object(overrides)) = body.get("overrides") {
                roles_of(overrides, ctx, &mut arns);
            }
            true
        }
        _ => return Ok(None),
    };
    Ok(Some(PassedRoles { arns, assumed_now }))
}

/// The role checks ECS makes before an operation that hands it roles:
/// `iam:PassRole` for each, and for operations that start tasks, that ECS
/// can assume them.
pub async fn check_request(
    gate: &dyn RoleGate,
    store: &dyn Store,
    ctx: &RequestContext,
    operation: &str,
    body: &Map<String, Value>,
) -> EcsResult<()> {
    let Some(passed) = passed_roles(store, ctx, operation, body).await? else { return Ok(()) };
    for arn in &passed.arns {
        gate.check_pass_role(ctx, arn).map_err(EcsError::AccessDenied)?;
    }
    if passed.assumed_now {
        for arn in &passed.arns {
            if !gate.ecs_can_assume(ctx, arn) {
                return Err(unable_to_assume(arn));
            }
        }
    }
    Ok(())
}

/// The roles of a task as the agent is told them: the task definition's,
/// overridden by RunTask's `overrides`.
pub fn task_roles(ctx: &RequestContext, task_definition: &Value, overrides: &Value) -> (Option<String>, Option<String>) {
    let pick = |field: &str| {
        overrides
            .get(field)
            .and_then(Value::as_str)
            .or_else(|| task_definition.get(field).and_then(Value::as_str))
            .filter(|r| !r.is_empty())
            .map(|r| role_arn(ctx, r))
    };
    (pick("taskRoleArn"), pick("executionRoleArn"))
}

#[cfg(test)]
#[path = "roles_tests.rs"]
mod gate_tests;

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ctx() -> RequestContext {
        crate::test_support::ctx()
    }

    #[test]
    fn role_names_become_arns_of_the_callers_account() {
        assert_eq!(role_arn(&ctx(), "app"), format!("arn:aws:iam::{}:role/app", ctx().account));
        assert_eq!(role_arn(&ctx(), "arn:aws:iam::111122223333:role/x"), "arn:aws:iam::111122223333:role/x");
    }

    #[test]
    fn overrides_win_over_the_task_definition() {
        let td = json!({"taskRoleArn": "arn:aws:iam::123456789012:role/a", "executionRoleArn": "exec"});
        let (task, exec) = task_roles(&ctx(), &td, &json!({"taskRoleArn": "arn:aws:iam::123456789012:role/b"}));
        assert_eq!(task.as_deref(), Some("arn:aws:iam::123456789012:role/b"));
        assert_eq!(exec, Some(format!("arn:aws:iam::{}:role/exec", ctx().account)));
        assert_eq!(task_roles(&ctx(), &json!({}), &json!({})), (None, None));
    }
}
