//! Services: CreateService, UpdateService, DeleteService, DescribeServices,
//! ListServices, ListServicesByNamespace.
//!
//! This module keeps a service's desired state (desired count, task
//! definition, deployments) and ECS's view of it; it starts no task. The
//! service controller reads the records (see [`repo::update_with`]) and
//! converges the cluster to them, keeping the counts, deployment rollout
//! states and events up to date.
//!
//! A service lives at `Keys::service(cluster, name)`. DeleteService leaves
//! it DRAINING; the controller makes it INACTIVE once its tasks are gone,
//! and an INACTIVE service's name can be used again (a new record replaces
//! it).

pub mod deployments_api;
pub(crate) mod apply;
pub mod controller;
pub mod load_balancers;
pub mod model;
pub mod render;
pub mod repo;
pub mod validate;
pub(crate) mod view;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod controller_tests;
#[cfg(test)]
mod lb_tests;

use crate::clusters;
use crate::context::RequestContext;
use crate::error::{EcsError, EcsResult};
use crate::input;
use crate::keys::Keys;
use crate::paging;
use crate::repo as store_repo;
use crate::repo::MAX_CONFLICT_RETRIES;
use crate::tags::{self, Tag};
use crate::task_definitions::{self, Status as TdStatus, TaskDefinitionRecord};
use berth_store::{Store, Txn};
use model::{DeploymentStatus, SchedulingStrategy, ServiceRecord, ServiceStatus, new_deployment};
use serde::Deserialize;
use serde_json::{Map, Value, json};
use validate::{ConstraintInput, DeploymentConfigurationInput, StrategyInput};

use crate::capacity_providers::StrategyItem;

/// ECS's limit on DescribeServices.
const MAX_DESCRIBE: usize = 10;

/// An ACTIVE task definition for a service, with ECS's errors.
async fn active_task_definition(
    store: &dyn Store,
    ctx: &RequestContext,
    text: &str,
) -> EcsResult<TaskDefinitionRecord> {
    let td = match task_definitions::resolve(store, ctx, text).await {
        Ok(l) => l.record,
        // resolve words it for DescribeTaskDefinition; services say it so.
        Err(EcsError::Client(_)) => return Err(EcsError::client("TaskDefinition not found.")),
        Err(e) => return Err(e),
    };
    if td.status != TdStatus::Active {
        return Err(EcsError::client("TaskDefinition is inactive"));
    }
    Ok(td)
}

fn td_arn(ctx: &RequestContext, td: &TaskDefinitionRecord) -> String {
    ctx.arn(format!("task-definition/{}:{}", td.family, td.revision))
}

fn network_mode(td: &TaskDefinitionRecord) -> &str {
    td.definition.get("networkMode").and_then(Value::as_str).unwrap_or("bridge")
}

/// Every provider of a service's strategy must be associated with its
/// cluster (the cluster's own default strategy is not applied: without a
/// strategy a service runs with the EC2 launch type).
fn check_providers(cluster: &clusters::ClusterRecord, strategy: &[StrategyItem]) -> EcsResult<()> {
    for item in strategy {
        if !cluster.capacity_providers.contains(&item.capacity_provider) {
            return Err(EcsError::invalid(format!(
                "The specified capacity provider strategy cannot contain a capacity provider that is not associated with the cluster. Associate the capacity provider with the cluster or specify a valid capacity provider and try again. Capacity provider: {}",
                item.capacity_provider
            )));
        }
    }
    Ok(())
}

/// The service name a `service` member names in `cluster`: a name, or a
/// service ARN (long `service/CLUSTER/NAME` or short `service/NAME` form).
fn service_name_of(ctx: &RequestContext, cluster: &str, reference: &str) -> Option<String> {
    ctx.cluster_scoped_id("service", cluster, reference)
}

/// An ACTIVE service, or ServiceNotFound / ServiceNotActive.
fn require_active(found: Option<&store_repo::Loaded<ServiceRecord>>) -> EcsResult<()> {
    match found {
        None => Err(EcsError::service_not_found()),
        Some(l) if l.record.status != ServiceStatus::Active => Err(EcsError::service_not_active()),
        Some(_) => Ok(()),
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CreateInput {
    cluster: Option<String>,
    service_name: Option<String>,
    task_definition: Option<String>,
    desired_count: Option<i64>,
    launch_type: Option<String>,
    capacity_provider_strategy: Option<Vec<StrategyItem>>,
    scheduling_strategy: Option<String>,
    deployment_configuration: Option<DeploymentConfigurationInput>,
    placement_constraints: Option<Vec<ConstraintInput>>,
    placement_strategy: Option<Vec<StrategyInput>>,
    network_configuration: Option<Value>,
    load_balancers: Option<Vec<Value>>,
    service_registries: Option<Vec<Value>>,
    health_check_grace_period_seconds: Option<i64>,
    #[serde(rename = "enableECSManagedTags")]
    enable_ecs_managed_tags: Option<bool>,
    propagate_tags: Option<String>,
    tags: Option<Vec<Tag>>,
    client_token: Option<String>,
    enable_execute_command: Option<bool>,
    role: Option<String>,
    deployment_controller: Option<Value>,
}

pub async fn create(store: &dyn Store, ctx: &RequestContext, body: Map<String, Value>) -> EcsResult<Value> {
    let fingerprint = validate::fingerprint(&body);
    let req: CreateInput = input::parse(body)?;
    let name = input::required(&req.service_name, "serviceName")?.to_string();
    validate::service_name(&name)?;
    let td_text = input::required(&req.task_definition, "taskDefinition")?.to_string();
    let scheduling = validate::scheduling_strategy(req.scheduling_strategy.as_deref())?;
    let desired = validate::desired_count(req.desired_count, scheduling)?;
    let (launch_type, cp_strategy) =
        validate::launch(req.launch_type.as_deref(), req.capacity_provider_strategy.as_deref(), scheduling)?;
    let deployment_configuration =
        validate::deployment_configuration(req.deployment_configuration.as_ref(), scheduling, None)?;
    let (constraints, strategies) =
        validate::placement(req.placement_constraints.as_deref(), req.placement_strategy.as_deref(), scheduling)?;
    let propagate_tags = validate::propagate_tags(req.propagate_tags.as_deref())?;
    let grace = validate::grace_period(req.health_check_grace_period_seconds)?;
    let new_tags = req.tags.clone().unwrap_or_default();
    tags::validate(&new_tags)?;
    if req.client_token.as_ref().is_some_and(|t| t.len() > 36) {
        return Err(EcsError::invalid("clientToken can have at most 36 characters."));
    }
    if let Some(kind) = req.deployment_controller.as_ref().and_then(|d| d.get("type")).and_then(Value::as_str)
        && kind != "ECS"
    {
        // Blue/green (CODE_DEPLOY) and EXTERNAL controllers need task sets.
        return Err(EcsError::UnsupportedFeature(format!(
            "The {kind} deployment controller is not supported by Berth yet: use ECS."
        )));
    }

    let cluster = clusters::resolve_active(store, ctx, req.cluster.as_deref()).await?;
    let cluster_name = cluster.record.name.clone();
    check_providers(&cluster.record, &cp_strategy)?;
    let td = active_task_definition(store, ctx, &td_text).await?;
    validate::network_configuration(network_mode(&td), req.network_configuration.as_ref())?;
    load_balancers::validate(store, ctx, req.load_balancers.as_deref().unwrap_or_default(), &td).await?;
    let td_arn = td_arn(ctx, &td);

    let keys = Keys::for_request(ctx);
    let key = keys.service(&cluster_name, &name);
    let cluster_key = keys.cluster(&cluster_name);
    let arn = render::service_arn(ctx, &cluster_name, &name);
    let now = berth_clock::epoch_seconds(ctx.now);
    for _ in 0..MAX_CONFLICT_RETRIES {
        let cluster = clusters::resolve_active(store, ctx, Some(&cluster_name)).await?;
        let existing = repo::load(store, &keys, &cluster_name, &name).await?;
        if let Some(l) = &existing {
            match l.record.status {
                ServiceStatus::Active => {
                    // A retried identical request (same clientToken, or
                    // none both times) gets the service it created.
                    if l.record.client_token == req.client_token && l.record.request_fingerprint == fingerprint {
                        let t = tags::load(store, &keys, &arn).await?;
                        return Ok(json!({ "service": render::service(ctx, &l.record, Some(&t)) }));
                    }
                    return Err(EcsError::invalid("Creation of service was not idempotent."));
                }
                ServiceStatus::Draining => {
                    return Err(EcsError::invalid("Unable to Start a service that is still Draining."));
                }
                ServiceStatus::Inactive => {}
            }
        }
        let mut record = ServiceRecord {
            name: name.clone(),
            cluster: cluster_name.clone(),
            status: ServiceStatus::Active,
            desired_count: desired,
            running_count: 0,
            pending_count: 0,
            launch_type: launch_type.clone(),
            capacity_provider_strategy: cp_strategy.clone(),
            task_definition: td_arn.clone(),
            scheduling_strategy: scheduling,
            deployment_configuration: deployment_configuration.clone(),
            deployments: vec![new_deployment(
                &td_arn,
                desired,
                launch_type.clone(),
                cp_strategy.clone(),
                req.network_configuration.clone(),
                now,
            )],
            events: Vec::new(),
            placement_constraints: constraints.clone(),
            placement_strategy: strategies.clone(),
            network_configuration: req.network_configuration.clone(),
            load_balancers: req.load_balancers.clone().unwrap_or_default(),
            service_registries: req.service_registries.clone().unwrap_or_default(),
            health_check_grace_period_seconds: grace,
            propagate_tags: propagate_tags.clone(),
            enable_ecs_managed_tags: req.enable_ecs_managed_tags.unwrap_or(false),
            enable_execute_command: req.enable_execute_command.unwrap_or(false),
            role_arn: req.role.clone().filter(|r| !r.is_empty()),
            created_at: now,
            created_by: ctx.principal_arn.clone(),
            client_token: req.client_token.clone(),
            request_fingerprint: fingerprint.clone(),
            throttle: model::ThrottleRecord::default(),
            was_steady: false,
            past_deployments: Vec::new(),
            lb_targets: Default::default(),
            deactivating: Default::default(),
        };
        // The first deployment's service revision is the configuration it
        // was created with.
        let snapshot = record.revision_snapshot();
        if let Some(d) = record.deployments.first_mut() {
            d.revision = Some(snapshot);
        }
        // The cluster record is rewritten unchanged so that its revision
        // moves: a DeleteCluster that counted services before this commit
        // then conflicts instead of deleting a cluster with a new service.
        let txn = Txn::new()
            .require(cluster_key.clone(), Some(cluster.mod_revision))
            .put(cluster_key.clone(), store_repo::encode(&cluster.record)?)
            .require(key.clone(), existing.as_ref().map(|l| l.mod_revision))
            .put(key.clone(), store_repo::encode(&record)?);
        let txn = tags::put_new(txn, &keys, &arn, &new_tags)?;
        if store_repo::commit(store, txn).await? {
            return Ok(json!({ "service": render::service(ctx, &record, Some(&new_tags)) }));
        }
    }
    Err(store_repo::too_much_contention())
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct UpdateInput {
    cluster: Option<String>,
    service: Option<String>,
    desired_count: Option<i64>,
    task_definition: Option<String>,
    force_new_deployment: Option<bool>,
    deployment_configuration: Option<DeploymentConfigurationInput>,
    placement_constraints: Option<Vec<ConstraintInput>>,
    placement_strategy: Option<Vec<StrategyInput>>,
    network_configuration: Option<Value>,
    health_check_grace_period_seconds: Option<i64>,
    capacity_provider_strategy: Option<Vec<StrategyItem>>,
    enable_execute_command: Option<bool>,
    #[serde(rename = "enableECSManagedTags")]
    enable_ecs_managed_tags: Option<bool>,
    propagate_tags: Option<String>,
    load_balancers: Option<Vec<Value>>,
    service_registries: Option<Vec<Value>>,
}

pub async fn update(store: &dyn Store, ctx: &RequestContext, body: Map<String, Value>) -> EcsResult<Value> {
    let req: UpdateInput = input::parse(body)?;
    let reference = input::required(&req.service, "service")?.to_string();
    let grace = validate::grace_period(req.health_check_grace_period_seconds)?;
    let propagate = req.propagate_tags.as_deref().map(|p| validate::propagate_tags(Some(p))).transpose()?;
    let desired = req.desired_count.map(validate::count).transpose()?;

    let cluster = clusters::resolve_active(store, ctx, req.cluster.as_deref()).await?.record;
    check_providers(&cluster, req.capacity_provider_strategy.as_deref().unwrap_or_default())?;
    let cluster_name = cluster.name;
    let name = service_name_of(ctx, &cluster_name, &reference).ok_or_else(EcsError::service_not_found)?;
    let keys = Keys::for_request(ctx);
    let found = repo::load(store, &keys, &cluster_name, &name).await?;
    require_active(found.as_ref())?;
    let td = match &req.task_definition {
        Some(t) if !t.is_empty() => Some(active_task_definition(store, ctx, t).await?),
        _ => None,
    };
    let now = berth_clock::epoch_seconds(ctx.now);

    // Everything below is re-run on the fresh record after a conflict.
    let mut updated = None;
    for _ in 0..MAX_CONFLICT_RETRIES {
        let Some(loaded) = repo::load(store, &keys, &cluster_name, &name).await? else {
            return Err(EcsError::service_not_found());
        };
        require_active(Some(&loaded))?;
        let mut r = loaded.record.clone();
        let scheduling = r.scheduling_strategy;
        if let Some(n) = desired {
            if scheduling == SchedulingStrategy::Daemon {
                validate::desired_count(Some(i64::from(n)), scheduling)?;
            }
            r.desired_count = n;
        }
        r.deployment_configuration = validate::deployment_configuration(
            req.deployment_configuration.as_ref(),
            scheduling,
            Some(&r.deployment_configuration),
        )?;
        if req.placement_constraints.is_some() || req.placement_strategy.is_some() {
            let (c, s) = validate::placement(
                req.placement_constraints.as_deref(),
                req.placement_strategy.as_deref(),
                scheduling,
            )?;
            if req.placement_constraints.is_some() {
                r.placement_constraints = c;
            }
            if req.placement_strategy.is_some() {
                r.placement_strategy = s;
            }
        }
        if let Some(cps) = &req.capacity_provider_strategy
            && !cps.is_empty()
        {
            let (_, s) = validate::launch(None, Some(cps), scheduling)?;
            r.capacity_provider_strategy = s;
            r.launch_type = None;
        }
        let network_changed =
            req.network_configuration.is_some() && req.network_configuration != r.network_configuration;
        if let Some(n) = &req.network_configuration {
            r.network_configuration = Some(n.clone());
        }
        if let Some(g) = grace {
            r.health_check_grace_period_seconds = Some(g);
        }
        if let Some(e) = req.enable_execute_command {
            r.enable_execute_command = e;
        }
        if let Some(e) = req.enable_ecs_managed_tags {
            r.enable_ecs_managed_tags = e;
        }
        if let Some(p) = &propagate {
            r.propagate_tags = p.clone();
        }
        if let Some(lb) = &req.load_balancers {
            r.load_balancers = lb.clone();
        }
        if let Some(sr) = &req.service_registries {
            r.service_registries = sr.clone();
        }

        // The task definition the service will run, and whether the tasks
        // must be replaced: a new PRIMARY deployment, the old one ACTIVE.
        let next_td = td.as_ref().map(|t| td_arn(ctx, t)).unwrap_or_else(|| r.task_definition.clone());
        let mode_td = match &td {
            Some(t) => Some(t.clone()),
            None if network_changed => Some(active_or_current_td(store, ctx, &r.task_definition).await?),
            None => None,
        };
        if let Some(t) = &mode_td {
            validate::network_configuration(network_mode(t), r.network_configuration.as_ref())?;
        }
        // The load balancers against the task definition the service will
        // run, whenever either changes.
        if req.load_balancers.is_some() || td.is_some() {
            let lb_td = match &mode_td {
                Some(t) => t.clone(),
                None => active_or_current_td(store, ctx, &r.task_definition).await?,
            };
            load_balancers::validate(store, ctx, &r.load_balancers, &lb_td).await?;
        }
        let redeploy = next_td != r.task_definition || req.force_new_deployment == Some(true) || network_changed;
        if redeploy {
            r.start_deployment(new_deployment(
                &next_td,
                r.desired_count,
                r.launch_type.clone(),
                r.capacity_provider_strategy.clone(),
                r.network_configuration.clone(),
                now,
            ));
        } else {
            // The PRIMARY's desired count follows the service's.
            let dc = r.desired_count;
            if let Some(p) = r.primary_mut()
                && p.desired_count != dc
            {
                p.desired_count = dc;
                p.updated_at = now;
            }
        }

        let key = keys.service(&cluster_name, &name);
        let txn = Txn::new().require(key.clone(), Some(loaded.mod_revision)).put(key, store_repo::encode(&r)?);
        if store_repo::commit(store, txn).await? {
            updated = Some(r);
            break;
        }
    }
    let r = updated.ok_or_else(store_repo::too_much_contention)?;
    let arn = render::service_arn(ctx, &cluster_name, &name);
    let t = tags::load(store, &keys, &arn).await?;
    Ok(json!({ "service": render::service(ctx, &r, Some(&t)) }))
}

/// The record of the task definition a service already runs (it may have
/// been deregistered since; its network mode still holds).
async fn active_or_current_td(store: &dyn Store, ctx: &RequestContext, arn: &str) -> EcsResult<TaskDefinitionRecord> {
    Ok(task_definitions::resolve(store, ctx, arn).await?.record)
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct DeleteInput {
    cluster: Option<String>,
    service: Option<String>,
    force: Option<bool>,
}

pub async fn delete(store: &dyn Store, ctx: &RequestContext, body: Map<String, Value>) -> EcsResult<Value> {
    let req: DeleteInput = input::parse(body)?;
    let reference = input::required(&req.service, "service")?.to_string();
    let cluster_name = clusters::resolve_active(store, ctx, req.cluster.as_deref()).await?.record.name;
    let name = service_name_of(ctx, &cluster_name, &reference).ok_or_else(EcsError::service_not_found)?;
    let keys = Keys::for_request(ctx);
    let force = req.force.unwrap_or(false);
    let now = berth_clock::epoch_seconds(ctx.now);
    let found = repo::load(store, &keys, &cluster_name, &name).await?;
    require_active(found.as_ref())?;
    let r = repo::update_with(store, &keys, &cluster_name, &name, |r| {
        if r.status != ServiceStatus::Active {
            return Err(EcsError::service_not_active());
        }
        // A DAEMON service's count is the scheduler's, not the caller's.
        if r.scheduling_strategy == SchedulingStrategy::Replica && r.desired_count > 0 && !force {
            return Err(EcsError::invalid("The service cannot be stopped while it is scaled above 0."));
        }
        // DRAINING until the controller has stopped the service's tasks and
        // marks it INACTIVE (until a controller runs, it stays DRAINING).
        r.status = ServiceStatus::Draining;
        r.desired_count = 0;
        for d in &mut r.deployments {
            if d.status == DeploymentStatus::Primary {
                d.desired_count = 0;
                d.updated_at = now;
            }
        }
        Ok(())
    })
    .await?
    .ok_or_else(EcsError::service_not_found)?;
    let arn = render::service_arn(ctx, &cluster_name, &name);
    let t = tags::load(store, &keys, &arn).await?;
    Ok(json!({ "service": render::service(ctx, &r, Some(&t)) }))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct DescribeInput {
    cluster: Option<String>,
    services: Option<Vec<String>>,
    include: Option<Vec<String>>,
}

pub async fn describe(store: &dyn Store, ctx: &RequestContext, body: Map<String, Value>) -> EcsResult<Value> {
    let req: DescribeInput = input::parse(body)?;
    let refs = req.services.unwrap_or_default();
    if refs.is_empty() {
        return Err(EcsError::invalid("Services cannot be empty."));
    }
    if refs.len() > MAX_DESCRIBE {
        return Err(EcsError::invalid(format!("services can have at most {MAX_DESCRIBE} items.")));
    }
    let mut with_tags = false;
    for i in req.include.iter().flatten() {
        match i.as_str() {
            "TAGS" => with_tags = true,
            other => {
                return Err(EcsError::invalid(format!("Invalid include value '{other}'. Valid values are: TAGS")));
            }
        }
    }
    let cluster_name = clusters::resolve_active(store, ctx, req.cluster.as_deref()).await?.record.name;
    let keys = Keys::for_request(ctx);
    let mut services = Vec::new();
    let mut failures = Vec::new();
    for r in refs {
        let found = match service_name_of(ctx, &cluster_name, &r) {
            Some(name) => repo::load(store, &keys, &cluster_name, &name).await?,
            None => None,
        };
        match found {
            Some(l) => {
                let arn = render::service_arn(ctx, &cluster_name, &l.record.name);
                let t = if with_tags { Some(tags::load(store, &keys, &arn).await?) } else { None };
                services.push(render::service(ctx, &l.record, t.as_deref()));
            }
            None => {
                let arn = if r.starts_with("arn:") { r.clone() } else { render::service_arn(ctx, &cluster_name, &r) };
                failures.push(json!({ "arn": arn, "reason": "MISSING" }));
            }
        }
    }
    Ok(json!({ "services": services, "failures": failures }))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ListInput {
    cluster: Option<String>,
    next_token: Option<String>,
    max_results: Option<i64>,
    launch_type: Option<String>,
    scheduling_strategy: Option<String>,
}

/// ListServices answers 10 per page unless asked for more (up to 100).
const LIST_DEFAULT: usize = 10;

pub async fn list(store: &dyn Store, ctx: &RequestContext, body: Map<String, Value>) -> EcsResult<Value> {
    let req: ListInput = input::parse(body)?;
    let limit = match req.max_results {
        None => LIST_DEFAULT,
        some => input::max_results(some, 100)?,
    };
    if let Some(lt) = &req.launch_type
        && !["EC2", "FARGATE", "EXTERNAL"].contains(&lt.as_str())
    {
        return Err(EcsError::invalid(format!("Invalid launchType {lt}. Valid values are: EC2, FARGATE, EXTERNAL")));
    }
    let scheduling = req.scheduling_strategy.as_deref().map(|s| validate::scheduling_strategy(Some(s))).transpose()?;
    let cluster_name = clusters::resolve_active(store, ctx, req.cluster.as_deref()).await?.record.name;
    let keys = Keys::for_request(ctx);
    let arns: Vec<String> = repo::load_all(store, &keys, &cluster_name)
        .await?
        .into_iter()
        .filter(|r| matches!(r.status, ServiceStatus::Active | ServiceStatus::Draining))
        .filter(|r| req.launch_type.as_ref().is_none_or(|lt| r.launch_type.as_ref() == Some(lt)))
        .filter(|r| scheduling.is_none_or(|s| r.scheduling_strategy == s))
        .map(|r| render::service_arn(ctx, &cluster_name, &r.name))
        .collect();
    let (page, next) = paging::page("ListServices", arns, |a| a.clone(), req.next_token.as_deref(), limit)?;
    let mut out = json!({ "serviceArns": page });
    if let Some(t) = next {
        out["nextToken"] = t.into();
    }
    Ok(out)
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ListByNamespaceInput {
    namespace: Option<String>,
    next_token: Option<String>,
    max_results: Option<i64>,
}

/// No service uses Service Connect yet, so every namespace has no services.
pub async fn list_by_namespace(
    _store: &dyn Store,
    _ctx: &RequestContext,
    body: Map<String, Value>,
) -> EcsResult<Value> {
    let req: ListByNamespaceInput = input::parse(body)?;
    let namespace = input::required(&req.namespace, "namespace")?;
    if namespace.len() > 1024 {
        return Err(EcsError::invalid("namespace can have at most 1024 characters."));
    }
    input::max_results(req.max_results, 100)?;
    if let Some(t) = &req.next_token {
        paging::decode("ListServicesByNamespace", t)?;
    }
    Ok(json!({ "serviceArns": [] }))
}
