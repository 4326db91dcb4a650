//! Service deployments and service revisions: ListServiceDeployments,
//! DescribeServiceDeployments, DescribeServiceRevisions and
//! StopServiceDeployment, read from (and, for the stop, written to) the
//! deployments of a service record.
//!
//! # Mapping
//!
//! Every [`Deployment`] of a service, current (`deployments`) or retired
//! (`past_deployments`), is one service deployment and one service
//! revision: the configuration the deployment was started with. Both are
//! named by the 19 digits of the deployment id (`ecs-svc/NNN…`), which
//! never change, so their ARNs are stable:
//!
//! * `arn:aws:ecs:REGION:ACCOUNT:service-deployment/CLUSTER/SERVICE/NNN…`
//! * `arn:aws:ecs:REGION:ACCOUNT:service-revision/CLUSTER/SERVICE/NNN…`
//!
//! A rollback (the circuit breaker's, or StopServiceDeployment's) starts a
//! new PRIMARY deployment, which is listed as a service deployment of its
//! own; the deployment rolled back reports the rollback in its `status`
//! and `rollback` members. ECS deletes a service's deployments with the
//! service: those of an INACTIVE service are not found.
//!
//! # Status
//!
//! Derived, newest rule first (see [`derive`]):
//!
//! | deployment | status |
//! |---|---|
//! | stopped by the user with ABORT | STOPPED |
//! | stopped with ROLLBACK, or FAILED by the circuit breaker with rollback on and a newer deployment | ROLLBACK_REQUESTED while the rollback deployment has no task, ROLLBACK_IN_PROGRESS, then ROLLBACK_SUCCESSFUL / ROLLBACK_FAILED as the rollback deployment completes / fails or is stopped or replaced |
//! | rolloutState FAILED | STOPPED (ECS: "the rollback option is not in use … and the service fails") |
//! | rolloutState COMPLETED | SUCCESSFUL |
//! | IN_PROGRESS, replaced by a newer deployment | STOPPED |
//! | IN_PROGRESS | IN_PROGRESS |
//!
//! A deployment is never PENDING (it starts when it is created) and never
//! STOP_REQUESTED (an ABORT takes effect in the same write). `finishedAt`
//! is the deployment's `updatedAt` once it is finished (the record keeps no
//! separate completion time).

use super::model::{
    Deployment, DeploymentConfiguration, DeploymentStatus, DeploymentStop, ServiceRecord, ServiceStatus,
};
use super::{render, repo};
use crate::clusters;
use crate::context::RequestContext;
use crate::error::{EcsError, EcsResult};
use crate::input;
use crate::keys::Keys;
use crate::paging;
use crate::task_definitions;
use berth_arn::Arn;
use berth_store::Store;
use serde::Deserialize;
use serde_json::{Map, Value, json};
use std::collections::HashMap;

/// DescribeServiceDeployments and DescribeServiceRevisions take at most 20 ARNs.
const MAX_DESCRIBE: usize = 20;
/// ListServiceDeployments answers 20 per page unless asked otherwise (1..=100).
const LIST_DEFAULT: usize = 20;
const LIST_MAX: i64 = 100;

const STATUSES: [&str; 9] = [
    "PENDING",
    "SUCCESSFUL",
    "STOPPED",
    "STOP_REQUESTED",
    "IN_PROGRESS",
    "ROLLBACK_REQUESTED",
    "ROLLBACK_IN_PROGRESS",
    "ROLLBACK_SUCCESSFUL",
    "ROLLBACK_FAILED",
];

/// `rolloutStateReason` and `statusReason` of a deployment a user stopped.
pub const REASON_STOPPED_BY_USER: &str = "Service deployment stopped by user request.";
/// `rollback.reason` of StopServiceDeployment with ROLLBACK.
pub const REASON_ROLLBACK_BY_USER: &str = "Service deployment rolled back by user request.";

/// The 19 digits that name a deployment's service deployment and revision.
fn short_id(deployment_id: &str) -> &str {
    deployment_id.strip_prefix("ecs-svc/").unwrap_or(deployment_id)
}

pub fn deployment_arn(ctx: &RequestContext, cluster: &str, service: &str, deployment_id: &str) -> String {
    ctx.arn(format!("service-deployment/{cluster}/{service}/{}", short_id(deployment_id)))
}

pub fn revision_arn(ctx: &RequestContext, cluster: &str, service: &str, deployment_id: &str) -> String {
    ctx.arn(format!("service-revision/{cluster}/{service}/{}", short_id(deployment_id)))
}

/// What a service deployment or revision ARN names.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Named {
    cluster: String,
    service: String,
    short_id: String,
}

/// Parse `arn:…:KIND/CLUSTER/SERVICE/ID`. `Err` when it is not such an ARN
/// at all (InvalidParameterException); `Ok(None)` when it is one of another
/// account or region, which cannot name anything here.
fn parse_arn(ctx: &RequestContext, kind: &str, text: &str) -> EcsResult<Option<Named>> {
    let bad = || {
        let what = kind.replace('-', " ");
        EcsError::invalid(format!("Invalid {what} ARN: {text}"))
    };
    let arn: Arn = text.parse().map_err(|_| bad())?;
    let (k, rest) = arn.resource_type_and_id().ok_or_else(bad)?;
    let parts: Vec<&str> = rest.split('/').collect();
    if arn.service != "ecs" || k != kind || parts.len() != 3 || parts.iter().any(|p| p.is_empty()) {
        return Err(bad());
    }
    if arn.region != ctx.region.as_str() || arn.account != ctx.account.as_str() {
        return Ok(None);
    }
    Ok(Some(Named { cluster: parts[0].into(), service: parts[1].into(), short_id: parts[2].into() }))
}

/// Every deployment of a service, newest first (by creation, then id).
fn all_deployments(r: &ServiceRecord) -> Vec<&Deployment> {
    let mut all: Vec<&Deployment> = Vec::with_capacity(r.deployments.len() + r.past_deployments.len());
    for d in r.deployments.iter().chain(r.past_deployments.iter()) {
        // The controller moves a deployment between the lists in one
        // write, but a hand-edited or half-migrated record must not list
        // one twice.
        if !all.iter().any(|a| a.id == d.id) {
            all.push(d);
        }
    }
    all.sort_by_key(|d| order_key(d));
    all
}

/// Ascending in this key is newest first: the bitwise complements of the
/// creation time (ms) and of the id's number, fixed-width.
fn order_key(d: &Deployment) -> String {
    let ms = (d.created_at * 1000.0).round().max(0.0) as u64;
    let n: u64 = short_id(&d.id).parse().unwrap_or(0);
    format!("{:016x}{:016x}", !ms, !n)
}

fn configuration_of<'a>(r: &'a ServiceRecord, d: &'a Deployment) -> &'a DeploymentConfiguration {
    d.revision.as_ref().map(|rev| &rev.deployment_configuration).unwrap_or(&r.deployment_configuration)
}

use berth_controllers::failure_threshold;

/// A deployment's service-deployment view, derived from its record.
#[derive(Debug, Clone, PartialEq)]
struct Derived {
    status: &'static str,
    reason: String,
    finished_at: Option<f64>,
    stopped_at: Option<f64>,
    /// (reason, started at, id of the rollback deployment if known).
    rollback: Option<(String, f64, Option<String>)>,
}

/// The status of `all[i]` (see the module's table). `all` is
/// [`all_deployments`] of `r`.
fn derive(r: &ServiceRecord, all: &[&Deployment], i: usize) -> Derived {
    let d = all[i];
    let newer = i.checked_sub(1).map(|j| all[j]);
    let find = |id: &str| all.iter().copied().find(|x| x.id == id);
    let plain = |status, reason: &str, finished_at, stopped_at| Derived {
        status,
        reason: reason.to_string(),
        finished_at,
        stopped_at,
        rollback: None,
    };
    if let Some(stop) = &d.stop {
        if stop.stop_type != "ROLLBACK" {
            return plain("STOPPED", REASON_STOPPED_BY_USER, Some(stop.requested_at), Some(stop.requested_at));
        }
        let target = stop.rollback_deployment_id.as_deref().and_then(find);
        return rolled_back(
            all,
            target,
            REASON_ROLLBACK_BY_USER.to_string(),
            stop.requested_at,
            stop.rollback_deployment_id.clone(),
            Some(stop.requested_at),
        );
    }
    match d.rollout_state.as_str() {
        "FAILED" => {
            if configuration_of(r, d).deployment_circuit_breaker.rollback
                && let Some(n) = newer
            {
                return rolled_back(
                    all,
                    Some(n),
                    d.rollout_state_reason.clone(),
                    n.created_at,
                    Some(n.id.clone()),
                    None,
                );
            }
            plain("STOPPED", &d.rollout_state_reason, Some(d.updated_at), Some(d.updated_at))
        }
        "COMPLETED" => plain("SUCCESSFUL", &d.rollout_state_reason, Some(d.updated_at), None),
        _ => match newer {
            Some(n) if d.status != DeploymentStatus::Primary => {
                let reason = format!("Service deployment replaced by service deployment {}.", short_id(&n.id));
                plain("STOPPED", &reason, Some(n.created_at), Some(n.created_at))
            }
            _ => plain("IN_PROGRESS", &d.rollout_state_reason, None, None),
        },
    }
}

/// The status of a deployment rolled back to `target` (the deployment the
/// rollback started), from how that one is doing.
fn rolled_back(
    all: &[&Deployment],
    target: Option<&Deployment>,
    reason: String,
    started_at: f64,
    target_id: Option<String>,
    stopped_at: Option<f64>,
) -> Derived {
    let (status, finished_at) = match target {
        // Gone from the bounded history: long finished, and it was the
        // service's PRIMARY for as long as it was kept.
        None => ("ROLLBACK_SUCCESSFUL", Some(started_at)),
        Some(t) => {
            let t_index = all.iter().position(|x| x.id == t.id).unwrap_or(0);
            let replaced = t.status != DeploymentStatus::Primary && t_index > 0;
            match t.rollout_state.as_str() {
                "COMPLETED" => ("ROLLBACK_SUCCESSFUL", Some(t.updated_at)),
                "FAILED" => ("ROLLBACK_FAILED", Some(t.updated_at)),
                _ if t.stop.is_some() || replaced => ("ROLLBACK_FAILED", Some(t.updated_at)),
                _ if t.running_count == 0 && t.pending_count == 0 => ("ROLLBACK_REQUESTED", None),
                _ => ("ROLLBACK_IN_PROGRESS", None),
            }
        }
    };
    Derived { status, reason: reason.clone(), finished_at, stopped_at, rollback: Some((reason, started_at, target_id)) }
}

/// One service revision's counts, for `sourceServiceRevisions` and
/// `targetServiceRevision`.
fn revision_summary(ctx: &RequestContext, r: &ServiceRecord, d: &Deployment) -> Value {
    json!({
        "arn": revision_arn(ctx, &r.cluster, &r.name, &d.id),
        "requestedTaskCount": d.desired_count,
        "runningTaskCount": d.running_count,
        "pendingTaskCount": d.pending_count,
    })
}

fn circuit_breaker(r: &ServiceRecord, d: &Deployment, derived: &Derived) -> Value {
    let cb = configuration_of(r, d).deployment_circuit_breaker;
    if !cb.enable {
        return json!({ "status": "DISABLED" });
    }
    let status = if d.rollout_state == "FAILED" && d.stop.is_none() {
        "TRIGGERED"
    } else if derived.status == "IN_PROGRESS" {
        "MONITORING"
    } else {
        "MONITORING_COMPLETE"
    };
    json!({ "status": status, "failureCount": d.failed_tasks, "threshold": failure_threshold(d.desired_count) })
}

/// ECS's `ServiceDeployment` shape for `all[i]`.
fn service_deployment(ctx: &RequestContext, r: &ServiceRecord, all: &[&Deployment], i: usize) -> Value {
    let d = all[i];
    let derived = derive(r, all, i);
    let updated_at = d.stop.as_ref().map_or(d.updated_at, |s| s.requested_at.max(d.updated_at));
    let sources: Vec<Value> = d
        .source_deployments
        .iter()
        .filter_map(|id| all.iter().find(|x| &x.id == id))
        .map(|s| revision_summary(ctx, r, s))
        .collect();
    let mut out = json!({
        "serviceDeploymentArn": deployment_arn(ctx, &r.cluster, &r.name, &d.id),
        "serviceArn": render::service_arn(ctx, &r.cluster, &r.name),
        "clusterArn": ctx.arn(format!("cluster/{}", r.cluster)),
        "createdAt": d.created_at,
        "startedAt": d.created_at,
        "updatedAt": updated_at,
        "sourceServiceRevisions": sources,
        "targetServiceRevision": revision_summary(ctx, r, d),
        "status": derived.status,
        "statusReason": derived.reason,
        "deploymentConfiguration": configuration_of(r, d),
        "deploymentCircuitBreaker": circuit_breaker(r, d, &derived),
        "alarms": { "status": "DISABLED" },
    });
    if let Some(t) = derived.finished_at {
        out["finishedAt"] = json!(t);
    }
    if let Some(t) = derived.stopped_at {
        out["stoppedAt"] = json!(t);
    }
    if let Some((reason, started_at, target)) = &derived.rollback {
        let mut rb = json!({ "reason": reason, "startedAt": started_at });
        if let Some(id) = target {
            rb["serviceRevisionArn"] = json!(revision_arn(ctx, &r.cluster, &r.name, id));
        }
        out["rollback"] = rb;
    }
    out
}

/// ECS's `ServiceDeploymentBrief` shape for `all[i]`.
fn brief(ctx: &RequestContext, r: &ServiceRecord, all: &[&Deployment], i: usize) -> Value {
    let d = all[i];
    let derived = derive(r, all, i);
    let mut out = json!({
        "serviceDeploymentArn": deployment_arn(ctx, &r.cluster, &r.name, &d.id),
        "serviceArn": render::service_arn(ctx, &r.cluster, &r.name),
        "clusterArn": ctx.arn(format!("cluster/{}", r.cluster)),
        "startedAt": d.created_at,
        "createdAt": d.created_at,
        "targetServiceRevisionArn": revision_arn(ctx, &r.cluster, &r.name, &d.id),
        "status": derived.status,
        "statusReason": derived.reason,
    });
    if let Some(t) = derived.finished_at {
        out["finishedAt"] = json!(t);
    }
    out
}

/// ECS's `ServiceRevision` shape. `containers` is the task definition's
/// `containerDefinitions`, when it can still be read.
fn service_revision(ctx: &RequestContext, r: &ServiceRecord, d: &Deployment, containers: Option<&Value>) -> Value {
    let (load_balancers, registries) = match &d.revision {
        Some(rev) => (&rev.load_balancers, &rev.service_registries),
        None => (&r.load_balancers, &r.service_registries),
    };
    let mut out = json!({
        "serviceRevisionArn": revision_arn(ctx, &r.cluster, &r.name, &d.id),
        "serviceArn": render::service_arn(ctx, &r.cluster, &r.name),
        "clusterArn": ctx.arn(format!("cluster/{}", r.cluster)),
        "taskDefinition": d.task_definition,
        "loadBalancers": load_balancers,
        "serviceRegistries": registries,
        "guardDutyEnabled": false,
        "createdAt": d.created_at,
    });
    render::launch_fields(&mut out, d);
    if let Some(Value::Array(cs)) = containers {
        // Images are referenced by name: Berth resolves digests on the
        // hosts, not when a deployment starts.
        let images: Vec<Value> = cs
            .iter()
            .map(|c| json!({ "containerName": c.get("name").cloned().unwrap_or(Value::Null), "image": c.get("image").cloned().unwrap_or(Value::Null) }))
            .collect();
        out["containerImages"] = Value::Array(images);
    }
    out
}

/// A service's record by ARN parts, when it still has deployments to show
/// (not INACTIVE). Loaded once per request.
async fn load_service<'a>(
    store: &dyn Store,
    keys: &Keys,
    cache: &'a mut HashMap<(String, String), Option<ServiceRecord>>,
    cluster: &str,
    service: &str,
) -> EcsResult<Option<&'a ServiceRecord>> {
    let k = (cluster.to_string(), service.to_string());
    if !cache.contains_key(&k) {
        let found = repo::load(store, keys, cluster, service)
            .await?
            .map(|l| l.record)
            .filter(|r| r.status != ServiceStatus::Inactive);
        cache.insert(k.clone(), found);
    }
    Ok(cache.get(&k).and_then(Option::as_ref))
}

fn position_of(all: &[&Deployment], short: &str) -> Option<usize> {
    all.iter().position(|d| short_id(&d.id) == short)
}

fn check_arn_count(arns: &[String], member: &str) -> EcsResult<()> {
    if arns.is_empty() {
        return Err(EcsError::invalid(format!("{member} cannot be empty.")));
    }
    if arns.len() > MAX_DESCRIBE {
        return Err(EcsError::invalid(format!("{member} can have at most {MAX_DESCRIBE} items.")));
    }
    Ok(())
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CreatedAtFilter {
    before: Option<f64>,
    after: Option<f64>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ListInput {
    service: Option<String>,
    cluster: Option<String>,
    status: Option<Vec<String>>,
    created_at: Option<CreatedAtFilter>,
    next_token: Option<String>,
    max_results: Option<i64>,
}

/// ListServiceDeployments: a service's deployments, newest first, filtered
/// by status and by creation time (`after` < createdAt < `before`).
pub async fn list(store: &dyn Store, ctx: &RequestContext, body: Map<String, Value>) -> EcsResult<Value> {
    let req: ListInput = input::parse(body)?;
    let reference = input::required(&req.service, "service")?.to_string();
    let limit = match req.max_results {
        None => LIST_DEFAULT,
        some => input::max_results(some, LIST_MAX)?,
    };
    let wanted = req.status.clone().unwrap_or_default();
    for s in &wanted {
        if !STATUSES.contains(&s.as_str()) {
            return Err(EcsError::invalid(format!(
                "Invalid status value '{s}'. Valid values are: {}",
                STATUSES.join(", ")
            )));
        }
    }
    let (before, after) = req.created_at.as_ref().map_or((None, None), |c| (c.before, c.after));
    if let Some(t) = &req.next_token {
        paging::decode("ListServiceDeployments", t)?;
    }
    let cluster = clusters::resolve_active(store, ctx, req.cluster.as_deref()).await?.record.name;
    let name = ctx.cluster_scoped_id("service", &cluster, &reference).ok_or_else(EcsError::service_not_found)?;
    let keys = Keys::for_request(ctx);
    let r = repo::load(store, &keys, &cluster, &name)
        .await?
        .map(|l| l.record)
        .filter(|r| r.status != ServiceStatus::Inactive)
        .ok_or_else(EcsError::service_not_found)?;
    let all = all_deployments(&r);
    let items: Vec<(String, Value)> = (0..all.len())
        .filter(|&i| before.is_none_or(|b| all[i].created_at < b) && after.is_none_or(|a| all[i].created_at > a))
        .map(|i| (order_key(all[i]), brief(ctx, &r, &all, i)))
        .filter(|(_, v)| wanted.is_empty() || wanted.iter().any(|s| v["status"] == s.as_str()))
        .collect();
    let (page, next) =
        paging::page("ListServiceDeployments", items, |(k, _)| k.clone(), req.next_token.as_deref(), limit)?;
    let mut out = json!({ "serviceDeployments": page.into_iter().map(|(_, v)| v).collect::<Vec<_>>() });
    if let Some(t) = next {
        out["nextToken"] = t.into();
    }
    Ok(out)
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct DescribeDeploymentsInput {
    service_deployment_arns: Option<Vec<String>>,
}

/// DescribeServiceDeployments: in request order; an ARN that names no
/// deployment of a live service is a `MISSING` failure.
pub async fn describe_deployments(
    store: &dyn Store,
    ctx: &RequestContext,
    body: Map<String, Value>,
) -> EcsResult<Value> {
    let req: DescribeDeploymentsInput = input::parse(body)?;
    let arns = req.service_deployment_arns.unwrap_or_default();
    check_arn_count(&arns, "serviceDeploymentArns")?;
    let named = arns.iter().map(|a| parse_arn(ctx, "service-deployment", a)).collect::<EcsResult<Vec<_>>>()?;
    let keys = Keys::for_request(ctx);
    let mut cache = HashMap::new();
    let mut found = Vec::new();
    let mut failures = Vec::new();
    for (arn, n) in arns.iter().zip(named) {
        let mut shown = None;
        if let Some(n) = n
            && let Some(r) = load_service(store, &keys, &mut cache, &n.cluster, &n.service).await?
        {
            let all = all_deployments(r);
            shown = position_of(&all, &n.short_id).map(|i| service_deployment(ctx, r, &all, i));
        }
        match shown {
            Some(v) => found.push(v),
            None => failures.push(json!({ "arn": arn, "reason": "MISSING" })),
        }
    }
    Ok(json!({ "serviceDeployments": found, "failures": failures }))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct DescribeRevisionsInput {
    service_revision_arns: Option<Vec<String>>,
}

/// DescribeServiceRevisions: in request order, `MISSING` failures as for
/// deployments.
pub async fn describe_revisions(store: &dyn Store, ctx: &RequestContext, body: Map<String, Value>) -> EcsResult<Value> {
    let req: DescribeRevisionsInput = input::parse(body)?;
    let arns = req.service_revision_arns.unwrap_or_default();
    check_arn_count(&arns, "serviceRevisionArns")?;
    let named = arns.iter().map(|a| parse_arn(ctx, "service-revision", a)).collect::<EcsResult<Vec<_>>>()?;
    let keys = Keys::for_request(ctx);
    let mut cache = HashMap::new();
    let mut found = Vec::new();
    let mut failures = Vec::new();
    for (arn, n) in arns.iter().zip(named) {
        let mut hit = None;
        if let Some(n) = n
            && let Some(r) = load_service(store, &keys, &mut cache, &n.cluster, &n.service).await?
        {
            let all = all_deployments(r);
            hit = position_of(&all, &n.short_id).map(|i| (r.clone(), all[i].clone()));
        }
        match hit {
            Some((r, d)) => {
                // A deregistered (even deleted) task definition leaves the
                // revision without its images, not without the revision.
                let containers = match task_definitions::resolve(store, ctx, &d.task_definition).await {
                    Ok(td) => td.record.definition.get("containerDefinitions").cloned(),
                    Err(EcsError::Server(m)) => return Err(EcsError::Server(m)),
                    Err(_) => None,
                };
                found.push(service_revision(ctx, &r, &d, containers.as_ref()));
            }
            None => failures.push(json!({ "arn": arn, "reason": "MISSING" })),
        }
    }
    Ok(json!({ "serviceRevisions": found, "failures": failures }))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct StopInput {
    service_deployment_arn: Option<String>,
    stop_type: Option<String>,
}

fn not_found() -> EcsError {
    EcsError::ServiceDeploymentNotFound("Service deployment not found.".into())
}

/// StopServiceDeployment. Only a deployment still IN_PROGRESS (the
/// PRIMARY) can be stopped; one already rolling back (ROLLBACK_REQUESTED,
/// ROLLBACK_IN_PROGRESS) is left to continue and the call succeeds, as ECS
/// documents; a finished one is a ConflictException.
///
/// * ABORT: the deployment stays PRIMARY with rolloutState FAILED, so the
///   controller starts nothing more for it (as after a circuit breaker
///   failure without rollback); status STOPPED.
/// * ROLLBACK (the default): a new PRIMARY deployment of the previous
///   service revision — the newest COMPLETED deployment, else the newest
///   one this deployment replaced — restoring its task definition, launch
///   type or capacity provider strategy, network configuration, and (when
///   recorded) load balancers, service registries and placement. The
///   stopped deployment becomes ACTIVE with rolloutState FAILED and is
///   drained; it reports ROLLBACK_* as the new one progresses. With no
///   previous revision (a service's first deployment) there is nothing to
///   roll back to: ConflictException.
pub async fn stop(store: &dyn Store, ctx: &RequestContext, body: Map<String, Value>) -> EcsResult<Value> {
    let req: StopInput = input::parse(body)?;
    let arn = input::required(&req.service_deployment_arn, "serviceDeploymentArn")?.to_string();
    let stop_type = req.stop_type.clone().unwrap_or_else(|| "ROLLBACK".into());
    if !["ABORT", "ROLLBACK"].contains(&stop_type.as_str()) {
        return Err(EcsError::invalid(format!(
            "Invalid stopType value '{stop_type}'. Valid values are: ABORT, ROLLBACK"
        )));
    }
    let n = parse_arn(ctx, "service-deployment", &arn)?.ok_or_else(not_found)?;
    let keys = Keys::for_request(ctx);
    let now = berth_clock::epoch_seconds(ctx.now);
    repo::update_with(store, &keys, &n.cluster, &n.service, |r| stop_in_record(r, &n.short_id, &stop_type, now))
        .await?
        .ok_or_else(not_found)?;
    Ok(json!({ "serviceDeploymentArn": arn }))
}

/// The record change of StopServiceDeployment (see [`stop`]).
fn stop_in_record(r: &mut ServiceRecord, short: &str, stop_type: &str, now: f64) -> EcsResult<()> {
    if r.status == ServiceStatus::Inactive {
        return Err(not_found());
    }
    let (id, status, rollback_to) = {
        let all = all_deployments(r);
        let i = position_of(&all, short).ok_or_else(not_found)?;
        let d = all[i];
        let derived = derive(r, &all, i);
        let previous = all
            .iter()
            .find(|x| x.id != d.id && x.rollout_state == "COMPLETED")
            .or_else(|| all.iter().skip(i + 1).find(|x| d.source_deployments.contains(&x.id)))
            .or_else(|| all.get(i + 1))
            .map(|x| (*x).clone());
        (d.id.clone(), derived.status, previous)
    };
    match status {
        "ROLLBACK_REQUESTED" | "ROLLBACK_IN_PROGRESS" | "STOP_REQUESTED" => return Ok(()),
        "IN_PROGRESS" | "PENDING" => {}
        other => {
            return Err(EcsError::Conflict(format!(
                "The service deployment is {other} and can't be stopped. Only a service deployment that is PENDING or IN_PROGRESS can be stopped."
            )));
        }
    }
    if r.status != ServiceStatus::Active {
        return Err(EcsError::Conflict(
            "The service deployment can't be stopped because its service is being deleted.".into(),
        ));
    }
    let rollback_deployment = if stop_type == "ROLLBACK" {
        let Some(to) = rollback_to else {
            return Err(EcsError::Conflict(
                "The service deployment can't be rolled back because the service has no previous service revision."
                    .into(),
            ));
        };
        Some(to)
    } else {
        None
    };
    let d = r.deployments.iter_mut().chain(r.past_deployments.iter_mut()).find(|x| x.id == id).ok_or_else(not_found)?;
    d.rollout_state = "FAILED".into();
    d.rollout_state_reason = REASON_STOPPED_BY_USER.into();
    d.updated_at = now;
    d.stop = Some(DeploymentStop {
        stop_type: stop_type.to_string(),
        requested_at: now,
        rollback_deployment_id: None,
    });
    if let Some(to) = rollback_deployment {
        let next = r.roll_back_to(&to, now);
        if let Some(d) = r.deployments.iter_mut().find(|x| x.id == id)
            && let Some(stop) = &mut d.stop
        {
            stop.rollback_deployment_id = Some(next);
        }
    }
    Ok(())
}

#[cfg(test)]
#[path = "deployments_api_tests.rs"]
mod tests;
