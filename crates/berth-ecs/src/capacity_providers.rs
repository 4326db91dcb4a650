//! Capacity providers: CreateCapacityProvider, DescribeCapacityProviders,
//! UpdateCapacityProvider, DeleteCapacityProvider, plus the checks a
//! cluster applies when providers are associated with it.
//!
//! FARGATE and FARGATE_SPOT exist in every account and region without being
//! stored; names starting with `aws`, `ecs` or `fargate` are reserved.

use crate::clusters::ClusterRecord;
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

pub const BUILT_IN: [&str; 2] = ["FARGATE", "FARGATE_SPOT"];

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StrategyItem {
    pub capacity_provider: String,
    #[serde(default)]
    pub weight: i64,
    #[serde(default)]
    pub base: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CapacityProviderRecord {
    pub name: String,
    pub status: String,
    pub update_status: Option<String>,
    pub auto_scaling_group_provider: Value,
}

fn validate_name(name: &str) -> EcsResult<()> {
    let ok = crate::input::is_simple_name(name);
    if !ok {
        return Err(EcsError::invalid(
            "The capacity provider name can have up to 255 characters and may contain only letters (uppercase and lowercase), numbers, underscores, and hyphens.",
        ));
    }
    let lower = name.to_ascii_lowercase();
    if ["aws", "ecs", "fargate"].iter().any(|p| lower.starts_with(p)) {
        return Err(EcsError::invalid(
            "The capacity provider name cannot begin with 'aws', 'ecs', or 'fargate'.",
        ));
    }
    Ok(())
}

fn check_enum(value: Option<&Value>, member: &str, allowed: &[&str]) -> EcsResult<()> {
    match value {
        None => Ok(()),
        Some(Value::String(s)) if allowed.contains(&s.as_str()) => Ok(()),
        Some(Value::String(s)) => Err(EcsError::invalid(format!(
            "Invalid value '{s}' for {member}. Valid values are: {}",
            allowed.join(", ")
        ))),
        Some(_) => Err(EcsError::Serialization(format!("{member} must be a string"))),
    }
}

fn check_range(value: Option<&Value>, member: &str, min: i64, max: i64) -> EcsResult<()> {
    match value {
        None => Ok(()),
        Some(v) => match v.as_i64() {
            Some(n) if (min..=max).contains(&n) => Ok(()),
            Some(_) => Err(EcsError::invalid(format!("{member} must be between {min} and {max}."))),
            None => Err(EcsError::Serialization(format!("{member} must be an integer"))),
        },
    }
}

/// Validate the updatable parts of an `autoScalingGroupProvider` and fill
/// ECS's defaults over `base`.
fn apply_provider_settings(base: &mut Map<String, Value>, update: &Map<String, Value>) -> EcsResult<()> {
    if let Some(ms) = update.get("managedScaling") {
        let ms = ms.as_object().ok_or_else(|| EcsError::Serialization("managedScaling must be a structure".into()))?;
        check_enum(ms.get("status"), "managedScaling.status", &["ENABLED", "DISABLED"])?;
        check_range(ms.get("targetCapacity"), "managedScaling.targetCapacity", 1, 100)?;
        check_range(ms.get("minimumScalingStepSize"), "managedScaling.minimumScalingStepSize", 1, 10_000)?;
        check_range(ms.get("maximumScalingStepSize"), "managedScaling.maximumScalingStepSize", 1, 10_000)?;
        check_range(ms.get("instanceWarmupPeriod"), "managedScaling.instanceWarmupPeriod", 0, 10_000)?;
        let min = ms.get("minimumScalingStepSize").and_then(Value::as_i64);
        let max = ms.get("maximumScalingStepSize").and_then(Value::as_i64);
        if let (Some(min), Some(max)) = (min, max)
            && min > max
        {
            return Err(EcsError::invalid(
                "managedScaling.minimumScalingStepSize must be less than or equal to maximumScalingStepSize.",
            ));
        }
        let target = base.entry("managedScaling").or_insert_with(|| json!({}));
        if let Some(t) = target.as_object_mut() {
            for (k, v) in ms {
                t.insert(k.clone(), v.clone());
            }
        }
    }
    check_enum(update.get("managedTerminationProtection"), "managedTerminationProtection", &["ENABLED", "DISABLED"])?;
    check_enum(update.get("managedDraining"), "managedDraining", &["ENABLED", "DISABLED"])?;
    for k in ["managedTerminationProtection", "managedDraining"] {
        if let Some(v) = update.get(k) {
            base.insert(k.into(), v.clone());
        }
    }
    Ok(())
}

fn defaults() -> Map<String, Value> {
    let v = json!({
        "managedScaling": {
            "status": "DISABLED",
            "targetCapacity": 100,
            "minimumScalingStepSize": 1,
            "maximumScalingStepSize": 10000,
            "instanceWarmupPeriod": 300
        },
        "managedTerminationProtection": "DISABLED",
        "managedDraining": "ENABLED"
    });
    v.as_object().cloned().unwrap_or_default()
}

fn arn_of(ctx: &RequestContext, name: &str) -> String {
    ctx.arn(format!("capacity-provider/{name}"))
}

/// The provider name a reference (name or ARN) means.
fn name_from_reference(ctx: &RequestContext, reference: &str) -> Option<String> {
    if !reference.starts_with("arn:") {
        return Some(reference.to_string());
    }
    let arn: Arn = reference.parse().ok()?;
    match arn.resource_type_and_id() {
        Some(("capacity-provider", name))
            if arn.service == "ecs" && arn.region == ctx.region.as_str() && arn.account == ctx.account.as_str() =>
        {
            Some(name.to_string())
        }
        _ => None,
    }
}

fn render(ctx: &RequestContext, record: &CapacityProviderRecord, tags: Option<&[Tag]>) -> Value {
    let mut out = json!({
        "capacityProviderArn": arn_of(ctx, &record.name),
        "name": record.name,
        "status": record.status,
    });
    if !BUILT_IN.contains(&record.name.as_str()) {
        out["autoScalingGroupProvider"] = record.auto_scaling_group_provider.clone();
    }
    if let Some(u) = &record.update_status {
        out["updateStatus"] = u.clone().into();
    }
    out["tags"] = tags.map(tags::to_json).unwrap_or_else(|| json!([]));
    out
}

fn built_in(name: &str) -> CapacityProviderRecord {
    CapacityProviderRecord { name: name.into(), status: "ACTIVE".into(), update_status: None, auto_scaling_group_provider: Value::Null }
}

async fn load_active(store: &dyn Store, keys: &Keys, name: &str) -> EcsResult<Option<repo::Loaded<CapacityProviderRecord>>> {
    Ok(repo::load::<CapacityProviderRecord>(store, &keys.capacity_provider(name))
        .await?
        .filter(|l| l.record.status == "ACTIVE"))
}

/// Checks a cluster applies to `capacityProviders` and a
/// `defaultCapacityProviderStrategy` before associating them.
pub async fn validate_cluster_association(
    store: &dyn Store,
    ctx: &RequestContext,
    cluster: &str,
    providers: &[String],
    strategy: &[StrategyItem],
) -> EcsResult<()> {
    let keys = Keys::for_request(ctx);
    for p in providers {
        if BUILT_IN.contains(&p.as_str()) {
            continue;
        }
        if load_active(store, &keys, p).await?.is_none() {
            return Err(EcsError::invalid(format!("The specified capacity provider '{p}' does not exist.")));
        }
        // An Auto Scaling group provider serves one cluster only.
        for (_, other) in repo::load_all::<ClusterRecord>(store, &keys.clusters()).await? {
            if other.name != cluster && other.status == "ACTIVE" && other.capacity_providers.contains(p) {
                return Err(EcsError::invalid(format!(
                    "The specified capacity provider '{p}' is already associated with cluster '{}'.",
                    other.name
                )));
            }
        }
    }
    let mut seen = std::collections::HashSet::new();
    for p in providers {
        if !seen.insert(p) {
            return Err(EcsError::invalid(format!("The capacity provider '{p}' is specified more than once.")));
        }
    }
    validate_strategy(strategy)?;
    for item in strategy {
        if !providers.contains(&item.capacity_provider) {
            return Err(EcsError::invalid(format!(
                "The specified capacity provider strategy cannot contain a capacity provider that is not associated with the cluster. Associate the capacity provider with the cluster or specify a valid capacity provider and try again. Capacity provider: {}",
                item.capacity_provider
            )));
        }
    }
    Ok(())
}

/// A capacity provider strategy on its own: bounds, one base, no mixing of
/// Fargate and Auto Scaling group providers.
pub fn validate_strategy(strategy: &[StrategyItem]) -> EcsResult<()> {
    if strategy.len() > 20 {
        return Err(EcsError::invalid("A capacity provider strategy can contain at most 20 capacity providers."));
    }
    for item in strategy {
        if !(0..=100_000).contains(&item.base) {
            return Err(EcsError::invalid("The base value must be between 0 and 100000."));
        }
        if !(0..=1000).contains(&item.weight) {
            return Err(EcsError::invalid("The weight value must be between 0 and 1000."));
        }
    }
    if strategy.iter().filter(|i| i.base > 0).count() > 1 {
        return Err(EcsError::invalid(
            "A base value can be specified for only one capacity provider in a capacity provider strategy.",
        ));
    }
    let fargate = strategy.iter().filter(|i| BUILT_IN.contains(&i.capacity_provider.as_str())).count();
    if fargate > 0 && fargate < strategy.len() {
        return Err(EcsError::invalid(
            "A capacity provider strategy cannot contain a mix of capacity providers using Auto Scaling groups and Fargate providers. Specify one or the other and try again.",
        ));
    }
    Ok(())
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CreateInput {
    name: Option<String>,
    auto_scaling_group_provider: Option<Map<String, Value>>,
    tags: Option<Vec<Tag>>,
}

pub async fn create(store: &dyn Store, ctx: &RequestContext, body: Map<String, Value>) -> EcsResult<Value> {
    let req: CreateInput = input::parse(body)?;
    let name = input::required(&req.name, "name")?.to_string();
    validate_name(&name)?;
    let asg = req
        .auto_scaling_group_provider
        .ok_or_else(|| EcsError::invalid("autoScalingGroupProvider can not be null."))?;
    let asg_arn = asg.get("autoScalingGroupArn").and_then(Value::as_str).unwrap_or("");
    if asg_arn.is_empty() {
        return Err(EcsError::invalid("autoScalingGroupProvider.autoScalingGroupArn can not be blank."));
    }
    if asg_arn.starts_with("arn:") && asg_arn.parse::<Arn>().is_err() {
        return Err(EcsError::invalid(format!("The Auto Scaling group ARN '{asg_arn}' is not valid.")));
    }
    let mut provider = Map::new();
    provider.insert("autoScalingGroupArn".into(), asg_arn.into());
    provider.extend(defaults());
    apply_provider_settings(&mut provider, &asg)?;
    let new_tags = req.tags.unwrap_or_default();
    tags::validate(&new_tags)?;

    let keys = Keys::for_request(ctx);
    let key = keys.capacity_provider(&name);
    let existing = repo::load::<CapacityProviderRecord>(store, &key).await?;
    if existing.as_ref().is_some_and(|l| l.record.status == "ACTIVE") {
        return Err(EcsError::client(format!("The specified capacity provider already exists: {name}")));
    }
    let all = repo::load_all::<CapacityProviderRecord>(store, &keys.capacity_providers()).await?;
    if all.iter().any(|(_, c)| {
        c.status == "ACTIVE" && c.auto_scaling_group_provider.get("autoScalingGroupArn").and_then(Value::as_str) == Some(asg_arn)
    }) {
        return Err(EcsError::client(format!(
            "The specified Auto Scaling group is already in use by another capacity provider: {asg_arn}"
        )));
    }
    let record = CapacityProviderRecord {
        name: name.clone(),
        status: "ACTIVE".into(),
        update_status: None,
        auto_scaling_group_provider: Value::Object(provider),
    };
    let arn = arn_of(ctx, &name);
    let txn = Txn::new().require(key.clone(), existing.map(|l| l.mod_revision)).put(key, repo::encode(&record)?);
    let txn = tags::put_new(txn, &keys, &arn, &new_tags)?;
    if !repo::commit(store, txn).await? {
        return Err(EcsError::client(format!("The specified capacity provider already exists: {name}")));
    }
    let stored = tags::load(store, &keys, &arn).await?;
    Ok(json!({ "capacityProvider": render(ctx, &record, Some(&stored)) }))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct DescribeInput {
    capacity_providers: Option<Vec<String>>,
    include: Option<Vec<String>>,
    max_results: Option<i64>,
    next_token: Option<String>,
}

pub async fn describe(store: &dyn Store, ctx: &RequestContext, body: Map<String, Value>) -> EcsResult<Value> {
    let req: DescribeInput = input::parse(body)?;
    let mut with_tags = false;
    for i in req.include.iter().flatten() {
        match i.as_str() {
            "TAGS" => with_tags = true,
            other => return Err(EcsError::invalid(format!("Invalid include value '{other}'. Valid values are: TAGS"))),
        }
    }
    let keys = Keys::for_request(ctx);
    let mut providers = Vec::new();
    let mut failures = Vec::new();
    let mut next_token = None;
    match req.capacity_providers.filter(|c| !c.is_empty()) {
        Some(refs) => {
            if req.max_results.is_some() || req.next_token.is_some() {
                return Err(EcsError::invalid(
                    "maxResults and nextToken can only be used when capacityProviders is not specified.",
                ));
            }
            for r in refs {
                let record = match name_from_reference(ctx, &r) {
                    Some(n) if BUILT_IN.contains(&n.as_str()) => Some(built_in(&n)),
                    Some(n) => repo::load::<CapacityProviderRecord>(store, &keys.capacity_provider(&n)).await?.map(|l| l.record),
                    None => None,
                };
                match record {
                    Some(rec) => providers.push(rec),
                    None => {
                        let arn = if r.starts_with("arn:") { r.clone() } else { arn_of(ctx, &r) };
                        failures.push(json!({ "arn": arn, "reason": "MISSING" }));
                    }
                }
            }
        }
        None => {
            let limit = input::max_results(req.max_results, 10)?;
            let mut all: Vec<CapacityProviderRecord> = BUILT_IN.iter().map(|n| built_in(n)).collect();
            all.extend(
                repo::load_all::<CapacityProviderRecord>(store, &keys.capacity_providers())
                    .await?
                    .into_iter()
                    .map(|(_, r)| r)
                    .filter(|r| r.status == "ACTIVE"),
            );
            let (page, next) =
                paging::page("DescribeCapacityProviders", all, |r| r.name.clone(), req.next_token.as_deref(), limit)?;
            providers = page;
            next_token = next;
        }
    }
    let mut rendered = Vec::with_capacity(providers.len());
    for p in &providers {
        let t = if with_tags { Some(tags::load(store, &keys, &arn_of(ctx, &p.name)).await?) } else { None };
        let mut v = render(ctx, p, t.as_deref());
        if !with_tags && let Some(o) = v.as_object_mut() {
            o.remove("tags");
        }
        rendered.push(v);
    }
    let mut out = json!({ "capacityProviders": rendered, "failures": failures });
    if let Some(t) = next_token {
        out["nextToken"] = t.into();
    }
    Ok(out)
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct UpdateInput {
    name: Option<String>,
    auto_scaling_group_provider: Option<Map<String, Value>>,
}

pub async fn update(store: &dyn Store, ctx: &RequestContext, body: Map<String, Value>) -> EcsResult<Value> {
    let req: UpdateInput = input::parse(body)?;
    let reference = input::required(&req.name, "name")?;
    let update = req
        .auto_scaling_group_provider
        .ok_or_else(|| EcsError::invalid("autoScalingGroupProvider can not be null."))?;
    let name = name_from_reference(ctx, reference)
        .ok_or_else(|| EcsError::invalid(format!("The specified capacity provider does not exist: {reference}")))?;
    if BUILT_IN.contains(&name.as_str()) {
        return Err(EcsError::client(format!("The {name} capacity provider cannot be updated.")));
    }
    let keys = Keys::for_request(ctx);
    for _ in 0..MAX_CONFLICT_RETRIES {
        let loaded = load_active(store, &keys, &name)
            .await?
            .ok_or_else(|| EcsError::invalid(format!("The specified capacity provider does not exist: {name}")))?;
        let mut record = loaded.record.clone();
        let mut provider = record.auto_scaling_group_provider.as_object().cloned().unwrap_or_default();
        apply_provider_settings(&mut provider, &update)?;
        record.auto_scaling_group_provider = Value::Object(provider);
        record.update_status = Some("UPDATE_COMPLETE".into());
        let key = keys.capacity_provider(&name);
        let txn = Txn::new().require(key.clone(), Some(loaded.mod_revision)).put(key, repo::encode(&record)?);
        if repo::commit(store, txn).await? {
            return Ok(json!({ "capacityProvider": render(ctx, &record, None) }));
        }
    }
    Err(repo::too_much_contention())
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct DeleteInput {
    capacity_provider: Option<String>,
}

pub async fn delete(store: &dyn Store, ctx: &RequestContext, body: Map<String, Value>) -> EcsResult<Value> {
    let req: DeleteInput = input::parse(body)?;
    let reference = input::required(&req.capacity_provider, "capacityProvider")?;
    let name = name_from_reference(ctx, reference)
        .ok_or_else(|| EcsError::invalid(format!("The specified capacity provider does not exist: {reference}")))?;
    if BUILT_IN.contains(&name.as_str()) {
        return Err(EcsError::client(format!("The {name} capacity provider cannot be deleted.")));
    }
    let keys = Keys::for_request(ctx);
    for _ in 0..MAX_CONFLICT_RETRIES {
        let loaded = load_active(store, &keys, &name)
            .await?
            .ok_or_else(|| EcsError::invalid(format!("The specified capacity provider does not exist: {name}")))?;
        let clusters = repo::load_all::<ClusterRecord>(store, &keys.clusters()).await?;
        if let Some((_, c)) = clusters.iter().find(|(_, c)| c.status == "ACTIVE" && c.capacity_providers.contains(&name)) {
            return Err(EcsError::client(format!(
                "The specified capacity provider is in use and must be disassociated from the cluster prior to deletion. Cluster: {}",
                c.name
            )));
        }
        let mut record = loaded.record.clone();
        record.status = "INACTIVE".into();
        record.update_status = Some("DELETE_COMPLETE".into());
        let key = keys.capacity_provider(&name);
        let txn = Txn::new()
            .require(key.clone(), Some(loaded.mod_revision))
            .put(key, repo::encode(&record)?)
            .delete(keys.tags(&arn_of(ctx, &name)));
        if repo::commit(store, txn).await? {
            return Ok(json!({ "capacityProvider": render(ctx, &record, None) }));
        }
    }
    Err(repo::too_much_contention())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(p: &str, weight: i64, base: i64) -> StrategyItem {
        StrategyItem { capacity_provider: p.into(), weight, base }
    }

    #[test]
    fn reserved_prefixes_are_refused() {
        for n in ["aws-x", "ECS_thing", "Fargate2", "fargate"] {
            assert!(validate_name(n).is_err(), "{n}");
        }
        assert!(validate_name("my-provider").is_ok());
        assert!(validate_name("bad name").is_err());
    }

    #[test]
    fn strategy_rules() {
        assert!(validate_strategy(&[item("FARGATE", 1, 1), item("FARGATE_SPOT", 4, 0)]).is_ok());
        assert!(validate_strategy(&[item("FARGATE", 1, 1), item("FARGATE_SPOT", 1, 2)]).is_err());
        assert!(validate_strategy(&[item("FARGATE", 1001, 0)]).is_err());
        assert!(validate_strategy(&[item("FARGATE", 1, 100_001)]).is_err());
        assert!(validate_strategy(&[item("FARGATE", 1, 0), item("mine", 1, 0)]).is_err());
    }

    use crate::test_support::{body, code, ctx, store};

    fn asg(name: &str) -> Value {
        json!({"name": name, "autoScalingGroupProvider": {"autoScalingGroupArn": format!("arn:aws:autoscaling:us-east-1:123456789012:autoScalingGroup:1:autoScalingGroupName/{name}")}})
    }

    #[tokio::test]
    async fn create_fills_defaults_and_refuses_duplicates() {
        let s = store();
        let out = create(s.as_ref(), &ctx(), body(asg("cp"))).await.unwrap();
        let cp = &out["capacityProvider"];
        assert_eq!(cp["capacityProviderArn"], "arn:aws:ecs:us-east-1:123456789012:capacity-provider/cp");
        assert_eq!(cp["autoScalingGroupProvider"]["managedScaling"]["targetCapacity"], 100);
        assert_eq!(cp["autoScalingGroupProvider"]["managedTerminationProtection"], "DISABLED");
        let e = create(s.as_ref(), &ctx(), body(asg("cp"))).await.unwrap_err();
        assert_eq!(code(&e), "ClientException");
        let e = create(s.as_ref(), &ctx(), body(asg("fargate-mine"))).await.unwrap_err();
        assert_eq!(code(&e), "InvalidParameterException");
        let e = create(s.as_ref(), &ctx(), body(json!({"name": "x"}))).await.unwrap_err();
        assert_eq!(code(&e), "InvalidParameterException");
        let mut bad = asg("y");
        bad["autoScalingGroupProvider"]["managedScaling"] = json!({"targetCapacity": 0});
        let e = create(s.as_ref(), &ctx(), body(bad)).await.unwrap_err();
        assert_eq!(code(&e), "InvalidParameterException");
    }

    #[tokio::test]
    async fn describe_lists_built_ins_then_pages() {
        let s = store();
        for n in ["a1", "a2", "a3"] {
            create(s.as_ref(), &ctx(), body(asg(n))).await.unwrap();
        }
        let first = describe(s.as_ref(), &ctx(), body(json!({"maxResults": 2}))).await.unwrap();
        let names: Vec<_> = first["capacityProviders"].as_array().unwrap().iter().map(|c| c["name"].clone()).collect();
        assert_eq!(names, vec![json!("FARGATE"), json!("FARGATE_SPOT")]);
        let token = first["nextToken"].as_str().unwrap().to_string();
        let rest = describe(s.as_ref(), &ctx(), body(json!({"maxResults": 10, "nextToken": token}))).await.unwrap();
        assert_eq!(rest["capacityProviders"].as_array().unwrap().len(), 3);
        assert!(rest.get("nextToken").is_none());
        let named = describe(s.as_ref(), &ctx(), body(json!({"capacityProviders": ["a1", "ghost"], "include": ["TAGS"]})))
            .await
            .unwrap();
        assert_eq!(named["capacityProviders"][0]["tags"], json!([]));
        assert_eq!(named["failures"][0]["reason"], "MISSING");
    }

    #[tokio::test]
    async fn update_changes_settings_and_built_ins_are_immutable() {
        let s = store();
        create(s.as_ref(), &ctx(), body(asg("u"))).await.unwrap();
        let out = update(
            s.as_ref(),
            &ctx(),
            body(json!({"name": "u", "autoScalingGroupProvider": {"managedScaling": {"status": "ENABLED", "targetCapacity": 80}, "managedDraining": "DISABLED"}})),
        )
        .await
        .unwrap();
        let p = &out["capacityProvider"];
        assert_eq!(p["updateStatus"], "UPDATE_COMPLETE");
        assert_eq!(p["autoScalingGroupProvider"]["managedScaling"]["targetCapacity"], 80);
        assert_eq!(p["autoScalingGroupProvider"]["managedScaling"]["instanceWarmupPeriod"], 300);
        assert_eq!(p["autoScalingGroupProvider"]["managedDraining"], "DISABLED");
        let e = update(s.as_ref(), &ctx(), body(json!({"name": "FARGATE", "autoScalingGroupProvider": {}}))).await.unwrap_err();
        assert_eq!(code(&e), "ClientException");
        let e = delete(s.as_ref(), &ctx(), body(json!({"capacityProvider": "FARGATE_SPOT"}))).await.unwrap_err();
        assert_eq!(code(&e), "ClientException");
    }
}
