//! Clusters: CreateCluster, DescribeClusters, ListClusters, DeleteCluster,
//! UpdateCluster, UpdateClusterSettings, PutClusterCapacityProviders.
//!
//! A deleted cluster keeps its record with status INACTIVE (DescribeClusters
//! still shows it, as ECS does); creating a cluster of the same name makes a
//! fresh ACTIVE one.

use crate::capacity_providers::{self, StrategyItem};
use crate::context::RequestContext;
use crate::error::{EcsError, EcsResult};
use crate::input;
use crate::keys::Keys;
use crate::paging;
use crate::repo::{self, MAX_CONFLICT_RETRIES};
use crate::tags::{self, Tag};
use berth_arn::Arn;
use berth_store::{Store, Txn};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

pub const DEFAULT_CLUSTER: &str = "default";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClusterRecord {
    pub name: String,
    pub status: String,
    pub settings: Vec<Setting>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub configuration: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_connect_defaults: Option<Value>,
    pub capacity_providers: Vec<String>,
    pub default_capacity_provider_strategy: Vec<StrategyItem>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Setting {
    pub name: String,
    pub value: String,
}

/// The name a `cluster` member refers to: a short name or a cluster ARN of
/// this account and region; absent means `default`.
pub fn name_from_reference(ctx: &RequestContext, reference: Option<&str>) -> EcsResult<String> {
    let reference = match reference {
        None | Some("") => return Ok(DEFAULT_CLUSTER.to_string()),
        Some(r) => r,
    };
    if reference.starts_with("arn:") {
        let arn: Arn = reference.parse().map_err(|_| EcsError::cluster_not_found())?;
        match arn.resource_type_and_id() {
            Some(("cluster", name))
                if arn.service == "ecs"
                    && arn.region == ctx.region.as_str()
                    && arn.account == ctx.account.as_str() =>
            {
                Ok(name.to_string())
            }
            _ => Err(EcsError::cluster_not_found()),
        }
    } else {
        Ok(reference.to_string())
    }
}

/// Resolve a `cluster` member to an ACTIVE cluster, or ClusterNotFoundException.
pub async fn resolve_active(
    store: &dyn Store,
    ctx: &RequestContext,
    reference: Option<&str>,
) -> EcsResult<repo::Loaded<ClusterRecord>> {
    let name = name_from_reference(ctx, reference)?;
    let keys = Keys::for_request(ctx);
    match repo::load::<ClusterRecord>(store, &keys.cluster(&name)).await? {
        Some(l) if l.record.status == "ACTIVE" => Ok(l),
        _ => Err(EcsError::cluster_not_found()),
    }
}

pub fn validate_name(name: &str) -> EcsResult<()> {
    let ok = crate::input::is_simple_name(name);
    if ok {
        Ok(())
    } else {
        Err(EcsError::invalid(
            "Cluster name can have up to 255 characters and may contain only letters (uppercase and lowercase), numbers, underscores, and hyphens.",
        ))
    }
}

fn validate_settings(settings: &[Setting]) -> EcsResult<()> {
    for s in settings {
        if s.name != "containerInsights" {
            return Err(EcsError::invalid(format!(
                "Invalid cluster setting name '{}'. Valid names are: containerInsights",
                s.name
            )));
        }
        if !["enabled", "disabled", "enhanced"].contains(&s.value.as_str()) {
            return Err(EcsError::invalid(format!(
                "Invalid value '{}' for cluster setting containerInsights. Valid values are: enabled, disabled, enhanced",
                s.value
            )));
        }
    }
    Ok(())
}

/// Settings as stored: containerInsights always present, defaulting from the
/// account setting of the same name.
fn merged_settings(base: &[Setting], updates: &[Setting]) -> Vec<Setting> {
    let mut out = base.to_vec();
    for u in updates {
        match out.iter_mut().find(|s| s.name == u.name) {
            Some(s) => s.value = u.value.clone(),
            None => out.push(u.clone()),
        }
    }
    out
}

fn validate_configuration(configuration: &Option<Value>) -> EcsResult<()> {
    let Some(cfg) = configuration else { return Ok(()) };
    let obj = cfg.as_object().ok_or_else(|| EcsError::Serialization("configuration must be a structure".into()))?;
    if let Some(exec) = obj.get("executeCommandConfiguration")
        && let Some(logging) = exec.get("logging").and_then(Value::as_str)
    {
        if !["NONE", "DEFAULT", "OVERRIDE"].contains(&logging) {
            return Err(EcsError::invalid(format!(
                "Invalid value '{logging}' for executeCommandConfiguration.logging. Valid values are: NONE, DEFAULT, OVERRIDE"
            )));
        }
        if logging != "OVERRIDE" && exec.get("logConfiguration").is_some() {
            return Err(EcsError::invalid(
                "The specified logging configuration is only valid when logging is set to OVERRIDE.",
            ));
        }
    }
    Ok(())
}

/// Task and service counts of a cluster, from the records the agent,
/// scheduler and service controllers keep.
struct Counts {
    container_instances: usize,
    running_tasks: usize,
    pending_tasks: usize,
    active_services: usize,
}

async fn counts(store: &dyn Store, keys: &Keys, cluster: &str) -> EcsResult<Counts> {
    let instances = repo::load_all::<Value>(store, &keys.container_instances_of(cluster)).await?;
    let tasks = repo::load_all::<Value>(store, &keys.tasks_of(cluster)).await?;
    let services = repo::load_all::<Value>(store, &keys.services_of(cluster)).await?;
    let status_is = |v: &Value, field: &str, want: &[&str]| {
        v.get(field).and_then(Value::as_str).is_some_and(|s| want.contains(&s))
    };
    Ok(Counts {
        container_instances: instances.iter().filter(|(_, v)| !status_is(v, "status", &["INACTIVE"])).count(),
        running_tasks: tasks.iter().filter(|(_, v)| status_is(v, "lastStatus", &["RUNNING"])).count(),
        pending_tasks: tasks
            .iter()
            .filter(|(_, v)| status_is(v, "lastStatus", &["PROVISIONING", "PENDING", "ACTIVATING"]))
            .count(),
        active_services: services.iter().filter(|(_, v)| status_is(v, "status", &["ACTIVE"])).count(),
    })
}

#[derive(Default, Clone, Copy)]
struct Include {
    tags: bool,
    settings: bool,
    statistics: bool,
    configurations: bool,
    attachments: bool,
}

fn parse_include(include: &Option<Vec<String>>) -> EcsResult<Include> {
    let mut inc = Include::default();
    for i in include.iter().flatten() {
        match i.as_str() {
            "TAGS" => inc.tags = true,
            "SETTINGS" => inc.settings = true,
            "STATISTICS" => inc.statistics = true,
            "CONFIGURATIONS" => inc.configurations = true,
            "ATTACHMENTS" => inc.attachments = true,
            other => {
                return Err(EcsError::invalid(format!(
                    "Invalid include value '{other}'. Valid values are: ATTACHMENTS, CONFIGURATIONS, SETTINGS, STATISTICS, TAGS"
                )));
            }
        }
    }
    Ok(inc)
}

async fn render(
    store: &dyn Store,
    ctx: &RequestContext,
    keys: &Keys,
    c: &ClusterRecord,
    include: Include,
) -> EcsResult<Value> {
    let arn = ctx.arn(format!("cluster/{}", c.name));
    let n = if c.status == "ACTIVE" {
        counts(store, keys, &c.name).await?
    } else {
        Counts { container_instances: 0, running_tasks: 0, pending_tasks: 0, active_services: 0 }
    };
    let mut out = json!({
        "clusterArn": arn,
        "clusterName": c.name,
        "status": c.status,
        "registeredContainerInstancesCount": n.container_instances,
        "runningTasksCount": n.running_tasks,
        "pendingTasksCount": n.pending_tasks,
        "activeServicesCount": n.active_services,
        "statistics": [],
        "tags": [],
        "settings": [],
        "capacityProviders": c.capacity_providers,
        "defaultCapacityProviderStrategy": c.default_capacity_provider_strategy,
    });
    if include.statistics {
        out["statistics"] = json!([
            {"name": "runningEC2TasksCount", "value": n.running_tasks.to_string()},
            {"name": "runningFargateTasksCount", "value": "0"},
            {"name": "pendingEC2TasksCount", "value": n.pending_tasks.to_string()},
            {"name": "pendingFargateTasksCount", "value": "0"},
            {"name": "activeEC2ServiceCount", "value": n.active_services.to_string()},
            {"name": "activeFargateServiceCount", "value": "0"},
            {"name": "drainingEC2ServiceCount", "value": "0"},
            {"name": "drainingFargateServiceCount", "value": "0"},
        ]);
    }
    if include.tags {
        out["tags"] = tags::to_json(&tags::load(store, keys, &arn).await?);
    }
    if include.settings {
        out["settings"] = serde_json::to_value(&c.settings).unwrap_or_else(|_| json!([]));
    }
    if include.configurations
        && let Some(cfg) = &c.configuration
    {
        out["configuration"] = cfg.clone();
    }
    if include.attachments {
        out["attachments"] = json!([]);
    }
    if let Some(sc) = &c.service_connect_defaults {
        out["serviceConnectDefaults"] = sc.clone();
    }
    Ok(out)
}

/// The full view returned by the mutating calls (ECS includes settings,
/// configuration and tags there).
async fn render_full(store: &dyn Store, ctx: &RequestContext, keys: &Keys, c: &ClusterRecord) -> EcsResult<Value> {
    let all = Include { tags: true, settings: true, statistics: false, configurations: true, attachments: false };
    render(store, ctx, keys, c, all).await
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CreateInput {
    cluster_name: Option<String>,
    tags: Option<Vec<Tag>>,
    settings: Option<Vec<Setting>>,
    configuration: Option<Value>,
    capacity_providers: Option<Vec<String>>,
    default_capacity_provider_strategy: Option<Vec<StrategyItem>>,
    service_connect_defaults: Option<Value>,
}

pub async fn create(store: &dyn Store, ctx: &RequestContext, body: Map<String, Value>) -> EcsResult<Value> {
    let req: CreateInput = input::parse(body)?;
    let name = req.cluster_name.clone().unwrap_or_else(|| DEFAULT_CLUSTER.to_string());
    validate_name(&name)?;
    let new_tags = req.tags.unwrap_or_default();
    tags::validate(&new_tags)?;
    let settings = req.settings.unwrap_or_default();
    validate_settings(&settings)?;
    validate_configuration(&req.configuration)?;
    let providers = req.capacity_providers.unwrap_or_default();
    let strategy = req.default_capacity_provider_strategy.unwrap_or_default();
    capacity_providers::validate_cluster_association(store, ctx, &name, &providers, &strategy).await?;
    if let Some(sc) = &req.service_connect_defaults
        && sc.get("namespace").and_then(Value::as_str).is_none_or(str::is_empty)
    {
        return Err(EcsError::invalid("serviceConnectDefaults.namespace can not be blank."));
    }

    let keys = Keys::for_request(ctx);
    let key = keys.cluster(&name);
    let arn = ctx.arn(format!("cluster/{name}"));
    for _ in 0..MAX_CONFLICT_RETRIES {
        let existing = repo::load::<ClusterRecord>(store, &key).await?;
        if let Some(l) = &existing
            && l.record.status == "ACTIVE"
        {
            // CreateCluster is idempotent: an ACTIVE cluster of that name is returned as is.
            return Ok(json!({ "cluster": render_full(store, ctx, &keys, &l.record).await? }));
        }
        let default_insights = crate::account_settings::effective_value(store, ctx, "containerInsights")
            .await?
            .unwrap_or_else(|| "disabled".to_string());
        let record = ClusterRecord {
            name: name.clone(),
            status: "ACTIVE".into(),
            settings: merged_settings(&[Setting { name: "containerInsights".into(), value: default_insights }], &settings),
            configuration: req.configuration.clone(),
            service_connect_defaults: req.service_connect_defaults.clone(),
            capacity_providers: providers.clone(),
            default_capacity_provider_strategy: strategy.clone(),
        };
        let txn = Txn::new().require(key.clone(), existing.as_ref().map(|l| l.mod_revision)).put(key.clone(), repo::encode(&record)?);
        let txn = tags::put_new(txn, &keys, &arn, &new_tags)?;
        if repo::commit(store, txn).await? {
            return Ok(json!({ "cluster": render_full(store, ctx, &keys, &record).await? }));
        }
    }
    Err(repo::too_much_contention())
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct DescribeInput {
    clusters: Option<Vec<String>>,
    include: Option<Vec<String>>,
}

pub async fn describe(store: &dyn Store, ctx: &RequestContext, body: Map<String, Value>) -> EcsResult<Value> {
    let req: DescribeInput = input::parse(body)?;
    let include = parse_include(&req.include)?;
    let refs = match req.clusters {
        Some(c) if !c.is_empty() => c,
        _ => vec![DEFAULT_CLUSTER.to_string()],
    };
    if refs.len() > 100 {
        return Err(EcsError::invalid("clusters can have at most 100 items."));
    }
    let keys = Keys::for_request(ctx);
    let mut clusters = Vec::new();
    let mut failures = Vec::new();
    for r in refs {
        let found = match name_from_reference(ctx, Some(&r)) {
            Ok(name) => repo::load::<ClusterRecord>(store, &keys.cluster(&name)).await?,
            Err(_) => None,
        };
        match found {
            Some(l) => clusters.push(render(store, ctx, &keys, &l.record, include).await?),
            None => {
                let arn = if r.starts_with("arn:") { r.clone() } else { ctx.arn(format!("cluster/{r}")) };
                failures.push(json!({ "arn": arn, "reason": "MISSING" }));
            }
        }
    }
    Ok(json!({ "clusters": clusters, "failures": failures }))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ListInput {
    next_token: Option<String>,
    max_results: Option<i64>,
}

pub async fn list(store: &dyn Store, ctx: &RequestContext, body: Map<String, Value>) -> EcsResult<Value> {
    let req: ListInput = input::parse(body)?;
    let limit = input::max_results(req.max_results, 100)?;
    let keys = Keys::for_request(ctx);
    let arns: Vec<String> = repo::load_all::<ClusterRecord>(store, &keys.clusters())
        .await?
        .into_iter()
        .filter(|(_, c)| c.status == "ACTIVE")
        .map(|(_, c)| ctx.arn(format!("cluster/{}", c.name)))
        .collect();
    let (page, next) = paging::page("ListClusters", arns, |a| a.clone(), req.next_token.as_deref(), limit)?;
    let mut out = json!({ "clusterArns": page });
    if let Some(t) = next {
        out["nextToken"] = t.into();
    }
    Ok(out)
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct DeleteInput {
    cluster: Option<String>,
}

pub async fn delete(store: &dyn Store, ctx: &RequestContext, body: Map<String, Value>) -> EcsResult<Value> {
    let req: DeleteInput = input::parse(body)?;
    input::required(&req.cluster, "cluster")?;
    let keys = Keys::for_request(ctx);
    for _ in 0..MAX_CONFLICT_RETRIES {
        let loaded = resolve_active(store, ctx, req.cluster.as_deref()).await?;
        let name = loaded.record.name.clone();
        let n = counts(store, &keys, &name).await?;
        if n.active_services > 0 {
            return Err(EcsError::ClusterContainsServices(
                "The Cluster cannot be deleted while Services are active.".into(),
            ));
        }
        if n.running_tasks + n.pending_tasks > 0 {
            return Err(EcsError::ClusterContainsTasks("The Cluster cannot be deleted while Tasks are active.".into()));
        }
        if n.container_instances > 0 {
            return Err(EcsError::ClusterContainsContainerInstances(
                "The Cluster cannot be deleted while Container Instances are active or draining.".into(),
            ));
        }
        let mut record = loaded.record.clone();
        record.status = "INACTIVE".into();
        let arn = ctx.arn(format!("cluster/{name}"));
        let rendered = render_full(store, ctx, &keys, &record).await?;
        let txn = Txn::new()
            .require(keys.cluster(&name), Some(loaded.mod_revision))
            .put(keys.cluster(&name), repo::encode(&record)?)
            .delete(keys.tags(&arn));
        if repo::commit(store, txn).await? {
            return Ok(json!({ "cluster": rendered }));
        }
    }
    Err(repo::too_much_contention())
}

/// Read-modify-write of an ACTIVE cluster with optimistic retries.
async fn modify(
    store: &dyn Store,
    ctx: &RequestContext,
    reference: Option<&str>,
    change: impl Fn(&mut ClusterRecord),
) -> EcsResult<Value> {
    let keys = Keys::for_request(ctx);
    for _ in 0..MAX_CONFLICT_RETRIES {
        let loaded = resolve_active(store, ctx, reference).await?;
        let mut record = loaded.record.clone();
        change(&mut record);
        let key = keys.cluster(&record.name);
        let txn = Txn::new().require(key.clone(), Some(loaded.mod_revision)).put(key, repo::encode(&record)?);
        if repo::commit(store, txn).await? {
            return Ok(json!({ "cluster": render_full(store, ctx, &keys, &record).await? }));
        }
    }
    Err(repo::too_much_contention())
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct UpdateInput {
    cluster: Option<String>,
    settings: Option<Vec<Setting>>,
    configuration: Option<Value>,
    service_connect_defaults: Option<Value>,
}

pub async fn update(store: &dyn Store, ctx: &RequestContext, body: Map<String, Value>) -> EcsResult<Value> {
    let req: UpdateInput = input::parse(body)?;
    input::required(&req.cluster, "cluster")?;
    let settings = req.settings.unwrap_or_default();
    validate_settings(&settings)?;
    validate_configuration(&req.configuration)?;
    modify(store, ctx, req.cluster.as_deref(), |c| {
        c.settings = merged_settings(&c.settings, &settings);
        if let Some(cfg) = &req.configuration {
            c.configuration = Some(cfg.clone());
        }
        if let Some(sc) = &req.service_connect_defaults {
            c.service_connect_defaults = Some(sc.clone());
        }
    })
    .await
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct UpdateSettingsInput {
    cluster: Option<String>,
    settings: Option<Vec<Setting>>,
}

pub async fn update_settings(store: &dyn Store, ctx: &RequestContext, body: Map<String, Value>) -> EcsResult<Value> {
    let req: UpdateSettingsInput = input::parse(body)?;
    input::required(&req.cluster, "cluster")?;
    let settings = req.settings.ok_or_else(|| EcsError::invalid("settings can not be blank."))?;
    validate_settings(&settings)?;
    modify(store, ctx, req.cluster.as_deref(), |c| c.settings = merged_settings(&c.settings, &settings)).await
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PutProvidersInput {
    cluster: Option<String>,
    capacity_providers: Option<Vec<String>>,
    default_capacity_provider_strategy: Option<Vec<StrategyItem>>,
}

pub async fn put_capacity_providers(
    store: &dyn Store,
    ctx: &RequestContext,
    body: Map<String, Value>,
) -> EcsResult<Value> {
    let req: PutProvidersInput = input::parse(body)?;
    input::required(&req.cluster, "cluster")?;
    let providers = req.capacity_providers.ok_or_else(|| EcsError::invalid("capacityProviders can not be null."))?;
    let strategy = req
        .default_capacity_provider_strategy
        .ok_or_else(|| EcsError::invalid("defaultCapacityProviderStrategy can not be null."))?;
    let name = resolve_active(store, ctx, req.cluster.as_deref()).await?.record.name;
    capacity_providers::validate_cluster_association(store, ctx, &name, &providers, &strategy).await?;
    modify(store, ctx, req.cluster.as_deref(), |c| {
        c.capacity_providers = providers.clone();
        c.default_capacity_provider_strategy = strategy.clone();
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::{body, code, ctx, store};

    async fn create_named(s: &dyn Store, v: Value) -> EcsResult<Value> {
        create(s, &ctx(), body(v)).await
    }

    #[tokio::test]
    async fn create_is_idempotent_and_defaults_to_default() {
        let s = store();
        let first = create_named(s.as_ref(), json!({})).await.unwrap();
        assert_eq!(first["cluster"]["clusterName"], "default");
        assert_eq!(first["cluster"]["settings"], json!([{"name": "containerInsights", "value": "disabled"}]));
        let again = create_named(s.as_ref(), json!({"clusterName": "default", "tags": [{"key": "k", "value": "v"}]}))
            .await
            .unwrap();
        assert_eq!(again["cluster"]["clusterArn"], first["cluster"]["clusterArn"]);
        // The existing cluster is returned as it is: the second call's tags are not applied.
        assert_eq!(again["cluster"]["tags"], json!([]));
    }

    #[tokio::test]
    async fn invalid_input_is_refused_with_the_right_class() {
        let s = store();
        for name in ["", "has space", "a/b", &"x".repeat(256)] {
            let e = create_named(s.as_ref(), json!({"clusterName": name})).await.unwrap_err();
            assert_eq!(code(&e), "InvalidParameterException", "{name:?}");
        }
        let e = create_named(s.as_ref(), json!({"clusterName": 7})).await.unwrap_err();
        assert_eq!(code(&e), "SerializationException");
        let e = create_named(s.as_ref(), json!({"clusterName": "c", "settings": [{"name": "nope", "value": "enabled"}]}))
            .await
            .unwrap_err();
        assert_eq!(code(&e), "InvalidParameterException");
        let e = create_named(s.as_ref(), json!({"clusterName": "c", "tags": [{"key": "aws:x", "value": "v"}]}))
            .await
            .unwrap_err();
        assert_eq!(code(&e), "InvalidParameterException");
        // Nothing was half-written by the refused calls.
        let listed = list(s.as_ref(), &ctx(), body(json!({}))).await.unwrap();
        assert_eq!(listed["clusterArns"], json!([]));
    }

    #[tokio::test]
    async fn describe_includes_only_what_is_asked() {
        let s = store();
        create_named(
            s.as_ref(),
            json!({"clusterName": "c", "tags": [{"key": "team", "value": "a"}],
                   "configuration": {"executeCommandConfiguration": {"logging": "DEFAULT"}}}),
        )
        .await
        .unwrap();
        let plain = describe(s.as_ref(), &ctx(), body(json!({"clusters": ["c"]}))).await.unwrap();
        let c = &plain["clusters"][0];
        assert_eq!(c["tags"], json!([]));
        assert_eq!(c["settings"], json!([]));
        assert_eq!(c["statistics"], json!([]));
        assert!(c.get("configuration").is_none());

        let all = describe(
            s.as_ref(),
            &ctx(),
            body(json!({"clusters": ["arn:aws:ecs:us-east-1:123456789012:cluster/c"],
                        "include": ["TAGS", "SETTINGS", "STATISTICS", "CONFIGURATIONS", "ATTACHMENTS"]})),
        )
        .await
        .unwrap();
        let c = &all["clusters"][0];
        assert_eq!(c["tags"], json!([{"key": "team", "value": "a"}]));
        assert_eq!(c["settings"][0]["name"], "containerInsights");
        assert_eq!(c["statistics"].as_array().unwrap().len(), 8);
        assert_eq!(c["configuration"]["executeCommandConfiguration"]["logging"], "DEFAULT");
        assert_eq!(c["attachments"], json!([]));

        let e = describe(s.as_ref(), &ctx(), body(json!({"include": ["EVERYTHING"]}))).await.unwrap_err();
        assert_eq!(code(&e), "InvalidParameterException");
    }

    #[tokio::test]
    async fn describe_reports_missing_clusters_as_failures() {
        let s = store();
        let out = describe(
            s.as_ref(),
            &ctx(),
            body(json!({"clusters": ["ghost", "arn:aws:ecs:eu-west-1:123456789012:cluster/elsewhere"]})),
        )
        .await
        .unwrap();
        assert_eq!(out["clusters"], json!([]));
        assert_eq!(
            out["failures"],
            json!([
                {"arn": "arn:aws:ecs:us-east-1:123456789012:cluster/ghost", "reason": "MISSING"},
                {"arn": "arn:aws:ecs:eu-west-1:123456789012:cluster/elsewhere", "reason": "MISSING"}
            ])
        );
    }

    #[tokio::test]
    async fn delete_leaves_an_inactive_record_and_name_can_be_reused() {
        let s = store();
        create_named(s.as_ref(), json!({"clusterName": "c", "tags": [{"key": "a", "value": "b"}]})).await.unwrap();
        let deleted = delete(s.as_ref(), &ctx(), body(json!({"cluster": "c"}))).await.unwrap();
        assert_eq!(deleted["cluster"]["status"], "INACTIVE");
        let d = describe(s.as_ref(), &ctx(), body(json!({"clusters": ["c"], "include": ["TAGS"]}))).await.unwrap();
        assert_eq!(d["clusters"][0]["status"], "INACTIVE");
        assert_eq!(d["clusters"][0]["tags"], json!([]));
        assert_eq!(list(s.as_ref(), &ctx(), body(json!({}))).await.unwrap()["clusterArns"], json!([]));
        let e = delete(s.as_ref(), &ctx(), body(json!({"cluster": "c"}))).await.unwrap_err();
        assert_eq!(code(&e), "ClusterNotFoundException");
        let e = update_settings(
            s.as_ref(),
            &ctx(),
            body(json!({"cluster": "c", "settings": [{"name": "containerInsights", "value": "enabled"}]})),
        )
        .await
        .unwrap_err();
        assert_eq!(code(&e), "ClusterNotFoundException");
        let again = create_named(s.as_ref(), json!({"clusterName": "c"})).await.unwrap();
        assert_eq!(again["cluster"]["status"], "ACTIVE");
    }

    #[tokio::test]
    async fn delete_refuses_clusters_with_instances() {
        let s = store();
        create_named(s.as_ref(), json!({"clusterName": "busy"})).await.unwrap();
        let keys = Keys::for_request(&ctx());
        let txn = Txn::new().put(keys.container_instance("busy", "i-1"), br#"{"status":"ACTIVE"}"#.to_vec());
        s.txn(txn).await.unwrap();
        let e = delete(s.as_ref(), &ctx(), body(json!({"cluster": "busy"}))).await.unwrap_err();
        assert_eq!(code(&e), "ClusterContainsContainerInstancesException");
        let d = describe(s.as_ref(), &ctx(), body(json!({"clusters": ["busy"]}))).await.unwrap();
        assert_eq!(d["clusters"][0]["registeredContainerInstancesCount"], 1);
    }

    #[tokio::test]
    async fn list_pages_through_every_cluster_once() {
        let s = store();
        for i in 0..7 {
            create_named(s.as_ref(), json!({"clusterName": format!("c{i}")})).await.unwrap();
        }
        let mut seen = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let mut req = json!({"maxResults": 3});
            if let Some(t) = &token {
                req["nextToken"] = t.clone().into();
            }
            let page = list(s.as_ref(), &ctx(), body(req)).await.unwrap();
            seen.extend(page["clusterArns"].as_array().unwrap().iter().cloned());
            match page.get("nextToken").and_then(Value::as_str) {
                Some(t) => token = Some(t.into()),
                None => break,
            }
        }
        assert_eq!(seen.len(), 7);
        let e = list(s.as_ref(), &ctx(), body(json!({"maxResults": 101}))).await.unwrap_err();
        assert_eq!(code(&e), "InvalidParameterException");
        let e = list(s.as_ref(), &ctx(), body(json!({"nextToken": "garbage"}))).await.unwrap_err();
        assert_eq!(code(&e), "InvalidParameterException");
    }

    #[tokio::test]
    async fn update_merges_settings_and_configuration() {
        let s = store();
        create_named(s.as_ref(), json!({"clusterName": "c"})).await.unwrap();
        let out = update(
            s.as_ref(),
            &ctx(),
            body(json!({"cluster": "c",
                        "settings": [{"name": "containerInsights", "value": "enhanced"}],
                        "configuration": {"executeCommandConfiguration": {"logging": "OVERRIDE",
                            "logConfiguration": {"cloudWatchLogGroupName": "g"}}}})),
        )
        .await
        .unwrap();
        assert_eq!(out["cluster"]["settings"], json!([{"name": "containerInsights", "value": "enhanced"}]));
        assert_eq!(out["cluster"]["configuration"]["executeCommandConfiguration"]["logging"], "OVERRIDE");
        let e = update(
            s.as_ref(),
            &ctx(),
            body(json!({"cluster": "c", "configuration": {"executeCommandConfiguration": {"logging": "DEFAULT",
                "logConfiguration": {"cloudWatchLogGroupName": "g"}}}})),
        )
        .await
        .unwrap_err();
        assert_eq!(code(&e), "InvalidParameterException");
    }

    async fn create_provider(s: &dyn Store, name: &str) {
        crate::capacity_providers::create(
            s,
            &ctx(),
            body(json!({"name": name, "autoScalingGroupProvider": {"autoScalingGroupArn": format!("asg-{name}")}})),
        )
        .await
        .unwrap();
    }

    #[tokio::test]
    async fn capacity_providers_attach_to_one_cluster_only() {
        let s = store();
        create_provider(s.as_ref(), "cp1").await;
        create_named(s.as_ref(), json!({"clusterName": "a"})).await.unwrap();
        create_named(s.as_ref(), json!({"clusterName": "b"})).await.unwrap();
        let out = put_capacity_providers(
            s.as_ref(),
            &ctx(),
            body(json!({"cluster": "a", "capacityProviders": ["cp1"],
                        "defaultCapacityProviderStrategy": [{"capacityProvider": "cp1", "weight": 1, "base": 2}]})),
        )
        .await
        .unwrap();
        assert_eq!(out["cluster"]["capacityProviders"], json!(["cp1"]));
        assert_eq!(
            out["cluster"]["defaultCapacityProviderStrategy"],
            json!([{"capacityProvider": "cp1", "weight": 1, "base": 2}])
        );
        let e = put_capacity_providers(
            s.as_ref(),
            &ctx(),
            body(json!({"cluster": "b", "capacityProviders": ["cp1"], "defaultCapacityProviderStrategy": []})),
        )
        .await
        .unwrap_err();
        assert_eq!(code(&e), "InvalidParameterException");
        let e = put_capacity_providers(
            s.as_ref(),
            &ctx(),
            body(json!({"cluster": "b", "capacityProviders": ["FARGATE"],
                        "defaultCapacityProviderStrategy": [{"capacityProvider": "FARGATE_SPOT", "weight": 1}]})),
        )
        .await
        .unwrap_err();
        assert_eq!(code(&e), "InvalidParameterException");
        let e = crate::capacity_providers::delete(s.as_ref(), &ctx(), body(json!({"capacityProvider": "cp1"})))
            .await
            .unwrap_err();
        assert_eq!(code(&e), "ClientException");
        put_capacity_providers(
            s.as_ref(),
            &ctx(),
            body(json!({"cluster": "a", "capacityProviders": [], "defaultCapacityProviderStrategy": []})),
        )
        .await
        .unwrap();
        let gone = crate::capacity_providers::delete(s.as_ref(), &ctx(), body(json!({"capacityProvider": "cp1"})))
            .await
            .unwrap();
        assert_eq!(gone["capacityProvider"]["status"], "INACTIVE");
    }
}
