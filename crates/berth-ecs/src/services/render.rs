//! ECS's `Service` shape from a record.

use super::model::{Deployment, DeploymentStatus, ServiceRecord};
use crate::context::RequestContext;
use crate::tags::{self, Tag};
use serde_json::{Map, Value, json};

/// The long-format service ARN: `service/CLUSTER/NAME`.
pub fn service_arn(ctx: &RequestContext, cluster: &str, name: &str) -> String {
    ctx.arn(format!("service/{cluster}/{name}"))
}

fn deployment(d: &Deployment) -> Value {
    let mut out = json!({
        "id": d.id,
        "status": match d.status {
            DeploymentStatus::Primary => "PRIMARY",
            DeploymentStatus::Active => "ACTIVE",
            DeploymentStatus::Inactive => "INACTIVE",
        },
        "taskDefinition": d.task_definition,
        "desiredCount": d.desired_count,
        "pendingCount": d.pending_count,
        "runningCount": d.running_count,
        "failedTasks": d.failed_tasks,
        "createdAt": d.created_at,
        "updatedAt": d.updated_at,
        "rolloutState": d.rollout_state,
        "rolloutStateReason": d.rollout_state_reason,
    });
    launch_fields(&mut out, d);
    out
}

/// `tags` is rendered only when given (DescribeServices with TAGS, and the
/// mutating calls).
pub fn service(ctx: &RequestContext, r: &ServiceRecord, tags: Option<&[Tag]>) -> Value {
    let mut out = Map::new();
    let mut put = |k: &str, v: Value| {
        out.insert(k.to_string(), v);
    };
    put("serviceArn", json!(service_arn(ctx, &r.cluster, &r.name)));
    put("serviceName", json!(r.name));
    put("clusterArn", json!(ctx.arn(format!("cluster/{}", r.cluster))));
    put("loadBalancers", json!(r.load_balancers));
    put("serviceRegistries", json!(r.service_registries));
    put("status", json!(r.status.as_str()));
    put("desiredCount", json!(r.desired_count));
    put("runningCount", json!(r.running_count));
    put("pendingCount", json!(r.pending_count));
    if let Some(lt) = &r.launch_type {
        put("launchType", json!(lt));
    }
    if !r.capacity_provider_strategy.is_empty() {
        put("capacityProviderStrategy", json!(r.capacity_provider_strategy));
    }
    put("taskDefinition", json!(r.task_definition));
    put("deploymentConfiguration", json!(r.deployment_configuration));
    put("deployments", Value::Array(r.deployments.iter().map(deployment).collect()));
    if let Some(role) = &r.role_arn {
        put("roleArn", json!(role));
    }
    put(
        "events",
        Value::Array(
            r.events.iter().map(|e| json!({"id": e.id, "createdAt": e.created_at, "message": e.message})).collect(),
        ),
    );
    put("createdAt", json!(r.created_at));
    put("placementConstraints", json!(r.placement_constraints));
    put("placementStrategy", json!(r.placement_strategy));
    if let Some(n) = &r.network_configuration {
        put("networkConfiguration", n.clone());
    }
    if let Some(g) = r.health_check_grace_period_seconds {
        put("healthCheckGracePeriodSeconds", json!(g));
    }
    put("schedulingStrategy", json!(r.scheduling_strategy.as_str()));
    put("deploymentController", json!({"type": "ECS"}));
    put("createdBy", json!(r.created_by));
    put("enableECSManagedTags", json!(r.enable_ecs_managed_tags));
    put("propagateTags", json!(r.propagate_tags));
    put("enableExecuteCommand", json!(r.enable_execute_command));
    if let Some(t) = tags {
        put("tags", tags::to_json(t));
    }
    Value::Object(out)
}

/// A deployment's launch type, capacity provider strategy and network
/// configuration, as deployments and service revisions show them.
pub fn launch_fields(out: &mut Value, d: &Deployment) {
    if let Some(lt) = &d.launch_type {
        out["launchType"] = json!(lt);
    }
    if !d.capacity_provider_strategy.is_empty() {
        out["capacityProviderStrategy"] = json!(d.capacity_provider_strategy);
    }
    if let Some(n) = &d.network_configuration {
        out["networkConfiguration"] = n.clone();
    }
}
