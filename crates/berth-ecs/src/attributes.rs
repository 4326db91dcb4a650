//! Custom attributes: PutAttributes, DeleteAttributes, ListAttributes.
//!
//! ECS has one target type, `container-instance`. Each target's custom
//! attributes are one record (`Keys::attributes(cluster, type, id)`, a list
//! ordered by name) beside the container instance's own record, so that
//! attribute writes never rewrite the instance and the limit of 10 per
//! target is checked on one read. Writes also compare the instance record's
//! revision, so an instance deregistered concurrently cannot gain attributes.
//!
//! Only custom attributes live here; the built-in `ecs.*` attributes an
//! agent reports belong to the container instance record.

use crate::clusters;
use crate::context::RequestContext;
use crate::error::{EcsError, EcsResult};
use crate::input;
use crate::keys::Keys;
use crate::paging;
use crate::repo::{self, MAX_CONFLICT_RETRIES};
use berth_arn::Arn;
use berth_store::{Store, Txn};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;

pub const TARGET_TYPE: &str = "container-instance";
/// Custom attributes per target, and attributes per Put/Delete call.
pub const MAX_ATTRIBUTES: usize = 10;
const MAX_LEN: usize = 128;

/// An attribute as a request carries it; echoed back exactly as given.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct AttributeInput {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    value: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    target_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    target_id: Option<String>,
}

/// One custom attribute as stored for its target.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredAttribute {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
}

fn validate_name(name: &str) -> EcsResult<()> {
    let ok = !name.is_empty()
        && name.len() <= MAX_LEN
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_./\\@".contains(&b));
    if ok {
        Ok(())
    } else {
        // The ECS guide and API reference disagree on at signs and back
        // slashes in names; both are accepted so no valid name is refused.
        Err(EcsError::invalid(format!(
            "Invalid attribute name '{name}'. Attribute names must be 1-128 characters and may contain letters, numbers, hyphens, underscores, periods, at signs, forward slashes and back slashes."
        )))
    }
}

fn validate_value(name: &str, value: &str) -> EcsResult<()> {
    let ok = !value.is_empty()
        && value.len() <= MAX_LEN
        && !value.starts_with(char::is_whitespace)
        && !value.ends_with(char::is_whitespace)
        && value.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_./\\@: ".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(EcsError::invalid(format!(
            "Invalid value '{value}' for attribute {name}. Attribute values must be 1-128 characters, may contain letters, numbers, hyphens, underscores, periods, at signs, forward slashes, back slashes, colons and spaces, and can't start or end with a space."
        )))
    }
}

fn target_not_found(target_id: &str) -> EcsError {
    EcsError::TargetNotFound(format!("Could not find {target_id}."))
}

/// Checks that need no store: the attribute's name, its target type and
/// that it names a target. `check_value` is false for DeleteAttributes,
/// which ignores values.
fn validate_shape(a: &AttributeInput, check_value: bool) -> EcsResult<()> {
    let name = match a.name.as_deref() {
        Some(n) if !n.is_empty() => n,
        _ => return Err(EcsError::invalid("Attribute name can not be blank.")),
    };
    validate_name(name)?;
    if check_value && let Some(v) = &a.value {
        validate_value(name, v)?;
    }
    if let Some(t) = &a.target_type
        && t != TARGET_TYPE
    {
        return Err(EcsError::invalid(format!("Invalid targetType '{t}'. Valid values are: {TARGET_TYPE}")));
    }
    let id = match a.target_id.as_deref() {
        Some(id) if !id.is_empty() => id,
        _ => return Err(EcsError::invalid(format!("targetId can not be blank for attribute {name}."))),
    };
    if a.target_type.is_none() && !id.starts_with("arn:") {
        // ECS: "This parameter is required if you use the short form ID".
        return Err(EcsError::invalid(format!(
            "targetType is required when targetId {id} is not an Amazon Resource Name (ARN)."
        )));
    }
    Ok(())
}

/// The container instance id a `targetId` names within `cluster`: a short id,
/// or an ARN of this account and region, in the long form
/// (`container-instance/CLUSTER/ID`, whose cluster must be `cluster`) or the
/// old short form (`container-instance/ID`).
fn target_instance_id(ctx: &RequestContext, cluster: &str, target_id: &str) -> EcsResult<String> {
    if !target_id.starts_with("arn:") {
        if target_id.contains('/') {
            return Err(target_not_found(target_id));
        }
        return Ok(target_id.to_string());
    }
    let arn: Arn = target_id.parse().map_err(|_| target_not_found(target_id))?;
    if arn.service != "ecs" || arn.region != ctx.region.as_str() || arn.account != ctx.account.as_str() {
        return Err(target_not_found(target_id));
    }
    let rest = match arn.resource_type_and_id() {
        Some((TARGET_TYPE, rest)) => rest,
        _ => return Err(target_not_found(target_id)),
    };
    let id = match rest.split_once('/') {
        Some((arn_cluster, id)) if arn_cluster == cluster => id,
        Some(_) => return Err(target_not_found(target_id)),
        None => rest,
    };
    if id.is_empty() || id.contains('/') {
        return Err(target_not_found(target_id));
    }
    Ok(id.to_string())
}

/// The revision of a live container instance's record. A deregistered
/// instance may keep a record with status INACTIVE; it takes no attributes.
async fn require_instance(store: &dyn Store, key: &str, target_id: &str) -> EcsResult<u64> {
    match store.get(key).await? {
        Some(v) => {
            let status = serde_json::from_slice::<Value>(&v.value)
                .ok()
                .and_then(|r| r.get("status").and_then(Value::as_str).map(str::to_string));
            if status.as_deref() == Some("INACTIVE") {
                return Err(target_not_found(target_id));
            }
            Ok(v.mod_revision)
        }
        None => Err(target_not_found(target_id)),
    }
}

/// The custom attributes of one container instance, ordered by name (for
/// DescribeContainerInstances and placement constraints).
pub async fn custom_attributes(
    store: &dyn Store,
    keys: &Keys,
    cluster: &str,
    id: &str,
) -> EcsResult<Vec<StoredAttribute>> {
    Ok(repo::load(store, &keys.attributes(cluster, TARGET_TYPE, id)).await?.map(|l| l.record).unwrap_or_default())
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ChangeInput {
    cluster: Option<String>,
    attributes: Option<Vec<AttributeInput>>,
}

/// One target of a Put/Delete: its id, the `targetId` as the caller wrote it
/// (for error messages), and the attributes the call names for it in order.
struct Target {
    shown_as: String,
    attributes: Vec<StoredAttribute>,
}

/// Validate a Put/Delete request and group its attributes by target.
async fn prepare(
    store: &dyn Store,
    ctx: &RequestContext,
    req: &ChangeInput,
    check_values: bool,
) -> EcsResult<(String, BTreeMap<String, Target>)> {
    let attrs = match &req.attributes {
        Some(a) if !a.is_empty() => a,
        _ => return Err(EcsError::invalid("attributes can not be empty.")),
    };
    if attrs.len() > MAX_ATTRIBUTES {
        return Err(EcsError::invalid(format!(
            "attributes can have at most {MAX_ATTRIBUTES} items, but {} were provided.",
            attrs.len()
        )));
    }
    for a in attrs {
        validate_shape(a, check_values)?;
    }
    let cluster = clusters::resolve_active(store, ctx, req.cluster.as_deref()).await?.record.name;
    let mut targets: BTreeMap<String, Target> = BTreeMap::new();
    for a in attrs {
        // validate_shape guarantees both are present.
        let (Some(name), Some(target_id)) = (&a.name, &a.target_id) else { continue };
        let id = target_instance_id(ctx, &cluster, target_id)?;
        targets
            .entry(id)
            .or_insert_with(|| Target { shown_as: target_id.clone(), attributes: Vec::new() })
            .attributes
            .push(StoredAttribute { name: name.clone(), value: a.value.clone() });
    }
    Ok((cluster, targets))
}

/// Read-modify-write every target's record in one transaction, retrying on
/// conflict. `change` turns a target's current list into its new list.
async fn apply(
    store: &dyn Store,
    ctx: &RequestContext,
    cluster: &str,
    targets: &BTreeMap<String, Target>,
    change: impl Fn(&mut Vec<StoredAttribute>, &Target) -> EcsResult<()>,
) -> EcsResult<()> {
    let keys = Keys::for_request(ctx);
    for _ in 0..MAX_CONFLICT_RETRIES {
        let mut txn = Txn::new();
        for (id, target) in targets {
            let instance_key = keys.container_instance(cluster, id);
            let instance_rev = require_instance(store, &instance_key, &target.shown_as).await?;
            txn = txn.require(instance_key, Some(instance_rev));
            let key = keys.attributes(cluster, TARGET_TYPE, id);
            let (mut list, rev) = match repo::load::<Vec<StoredAttribute>>(store, &key).await? {
                Some(l) => (l.record, Some(l.mod_revision)),
                None => (Vec::new(), None),
            };
            let before = list.clone();
            change(&mut list, target)?;
            txn = txn.require(key.clone(), rev);
            if list == before {
                continue;
            }
            txn = if list.is_empty() { txn.delete(key) } else { txn.put(key, repo::encode(&list)?) };
        }
        if repo::commit(store, txn).await? {
            return Ok(());
        }
    }
    Err(repo::too_much_contention())
}

pub async fn put(store: &dyn Store, ctx: &RequestContext, body: Map<String, Value>) -> EcsResult<Value> {
    let req: ChangeInput = input::parse(body)?;
    let (cluster, targets) = prepare(store, ctx, &req, true).await?;
    apply(store, ctx, &cluster, &targets, |list, target| {
        for new in &target.attributes {
            match list.iter_mut().find(|a| a.name == new.name) {
                Some(a) => a.value = new.value.clone(),
                None => list.push(new.clone()),
            }
        }
        if list.len() > MAX_ATTRIBUTES {
            return Err(EcsError::AttributeLimitExceeded(format!(
                "You can apply up to {MAX_ATTRIBUTES} custom attributes for each resource; {} would have {}.",
                target.shown_as,
                list.len()
            )));
        }
        list.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(())
    })
    .await?;
    Ok(json!({ "attributes": req.attributes.unwrap_or_default() }))
}

pub async fn delete(store: &dyn Store, ctx: &RequestContext, body: Map<String, Value>) -> EcsResult<Value> {
    let req: ChangeInput = input::parse(body)?;
    let (cluster, targets) = prepare(store, ctx, &req, false).await?;
    apply(store, ctx, &cluster, &targets, |list, target| {
        list.retain(|a| !target.attributes.iter().any(|d| d.name == a.name));
        Ok(())
    })
    .await?;
    Ok(json!({ "attributes": req.attributes.unwrap_or_default() }))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ListInput {
    cluster: Option<String>,
    target_type: Option<String>,
    attribute_name: Option<String>,
    attribute_value: Option<String>,
    next_token: Option<String>,
    max_results: Option<i64>,
}

pub async fn list(store: &dyn Store, ctx: &RequestContext, body: Map<String, Value>) -> EcsResult<Value> {
    let req: ListInput = input::parse(body)?;
    let target_type = input::required(&req.target_type, "targetType")?;
    if target_type != TARGET_TYPE {
        return Err(EcsError::invalid(format!("Invalid targetType '{target_type}'. Valid values are: {TARGET_TYPE}")));
    }
    if req.attribute_value.is_some() && req.attribute_name.is_none() {
        return Err(EcsError::invalid("attributeValue can only be specified together with attributeName."));
    }
    let limit = input::max_results(req.max_results, 100)?;
    let cluster = clusters::resolve_active(store, ctx, req.cluster.as_deref()).await?.record.name;
    let keys = Keys::for_request(ctx);
    // keys.attributes(cluster, type, "") is the prefix of every target of that type.
    let prefix = keys.attributes(&cluster, TARGET_TYPE, "");
    let mut items: Vec<(String, StoredAttribute)> = Vec::new();
    for (key, attrs) in repo::load_all::<Vec<StoredAttribute>>(store, &prefix).await? {
        let id = key.strip_prefix(&prefix).unwrap_or(&key).to_string();
        for a in attrs {
            let name_ok = req.attribute_name.as_ref().is_none_or(|n| *n == a.name);
            let value_ok = req.attribute_value.is_none() || req.attribute_value == a.value;
            if name_ok && value_ok {
                items.push((id.clone(), a));
            }
        }
    }
    // Target, then name. NUL sorts before every character an id or name may
    // hold, so the joined keys order exactly as the pairs do.
    items.sort_by(|a, b| (&a.0, &a.1.name).cmp(&(&b.0, &b.1.name)));
    let (page, next) = paging::page(
        "ListAttributes",
        items,
        |(id, a)| format!("{id}\u{0}{}", a.name),
        req.next_token.as_deref(),
        limit,
    )?;
    let attributes: Vec<Value> = page
        .into_iter()
        .map(|(id, a)| {
            let mut out = json!({ "name": a.name });
            if let Some(v) = a.value {
                out["value"] = v.into();
            }
            out["targetType"] = TARGET_TYPE.into();
            out["targetId"] = ctx.arn(format!("{TARGET_TYPE}/{cluster}/{id}")).into();
            out
        })
        .collect();
    let mut out = json!({ "attributes": attributes });
    if let Some(t) = next {
        out["nextToken"] = t.into();
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_store::memory::MemoryStore;
    use berth_wire::ServiceError;
    use std::sync::Arc;

    const CI_ARN_PREFIX: &str = "arn:aws:ecs:us-east-1:123456789012:container-instance";

    use crate::test_support::{body, ctx};

    fn code(r: EcsResult<Value>) -> &'static str {
        r.unwrap_err().code()
    }

    /// A store with an ACTIVE cluster and fake container instances in it.
    async fn setup(cluster: &str, instances: &[&str]) -> Arc<dyn Store> {
        let s: Arc<dyn Store> = Arc::new(MemoryStore::new());
        add_cluster(s.as_ref(), cluster, instances).await;
        s
    }

    async fn add_cluster(s: &dyn Store, cluster: &str, instances: &[&str]) {
        clusters::create(s, &ctx(), body(json!({"clusterName": cluster}))).await.unwrap();
        let keys = Keys::for_request(&ctx());
        for id in instances {
            let txn = Txn::new().put(keys.container_instance(cluster, id), br#"{"status":"ACTIVE"}"#.to_vec());
            assert!(repo::commit(s, txn).await.unwrap());
        }
    }

    fn attr(name: &str, value: Option<&str>, id: &str) -> Value {
        let mut a = json!({"name": name, "targetType": "container-instance", "targetId": id});
        if let Some(v) = value {
            a["value"] = v.into();
        }
        a
    }

    async fn stored(s: &dyn Store, cluster: &str, id: &str) -> Vec<StoredAttribute> {
        custom_attributes(s, &Keys::for_request(&ctx()), cluster, id).await.unwrap()
    }

    async fn list_all(s: &dyn Store, b: Value) -> Value {
        list(s, &ctx(), body(b)).await.unwrap()
    }

    #[tokio::test]
    async fn put_echoes_attributes_and_list_shows_them_by_target_then_name() {
        let s = setup("prod", &["i2", "i1"]).await;
        let given = json!([
            attr("stack", Some("blue"), "i2"),
            attr("zone", Some("a"), "i1"),
            {"name": "gpu", "targetId": format!("{CI_ARN_PREFIX}/prod/i1")},
        ]);
        let out = put(s.as_ref(), &ctx(), body(json!({"cluster": "prod", "attributes": given}))).await.unwrap();
        assert_eq!(out, json!({"attributes": given}));
        let out = list_all(s.as_ref(), json!({"cluster": "prod", "targetType": "container-instance"})).await;
        assert_eq!(
            out,
            json!({"attributes": [
                {"name": "gpu", "targetType": "container-instance", "targetId": format!("{CI_ARN_PREFIX}/prod/i1")},
                {"name": "zone", "value": "a", "targetType": "container-instance", "targetId": format!("{CI_ARN_PREFIX}/prod/i1")},
                {"name": "stack", "value": "blue", "targetType": "container-instance", "targetId": format!("{CI_ARN_PREFIX}/prod/i2")},
            ]})
        );
    }

    #[tokio::test]
    async fn cluster_defaults_to_default_and_may_be_an_arn() {
        let s = setup("default", &["i1"]).await;
        put(s.as_ref(), &ctx(), body(json!({"attributes": [attr("a", Some("1"), "i1")]}))).await.unwrap();
        let arn = "arn:aws:ecs:us-east-1:123456789012:cluster/default";
        let out = list_all(s.as_ref(), json!({"cluster": arn, "targetType": "container-instance"})).await;
        assert_eq!(out["attributes"].as_array().unwrap().len(), 1);
    }

    #[tokio::test]
    async fn missing_or_inactive_cluster_is_cluster_not_found() {
        let s = setup("prod", &["i1"]).await;
        let r = put(s.as_ref(), &ctx(), body(json!({"cluster": "nope", "attributes": [attr("a", None, "i1")]}))).await;
        assert_eq!(code(r), "ClusterNotFoundException");
        let r = delete(s.as_ref(), &ctx(), body(json!({"attributes": [attr("a", None, "i1")]}))).await;
        assert_eq!(code(r), "ClusterNotFoundException", "no default cluster");
        let r = list(s.as_ref(), &ctx(), body(json!({"cluster": "nope", "targetType": "container-instance"}))).await;
        assert_eq!(code(r), "ClusterNotFoundException");
    }

    #[tokio::test]
    async fn put_replaces_values_by_name_and_keeps_names_sorted() {
        let s = setup("prod", &["i1"]).await;
        let put_one = |a: Value| {
            let s = s.clone();
            async move { put(s.as_ref(), &ctx(), body(json!({"cluster": "prod", "attributes": [a]}))).await }
        };
        put_one(attr("b", Some("1"), "i1")).await.unwrap();
        put_one(attr("a", Some("1"), "i1")).await.unwrap();
        put_one(attr("b", Some("2"), "i1")).await.unwrap();
        put_one(attr("a", None, "i1")).await.unwrap();
        assert_eq!(
            stored(s.as_ref(), "prod", "i1").await,
            vec![
                StoredAttribute { name: "a".into(), value: None },
                StoredAttribute { name: "b".into(), value: Some("2".into()) },
            ]
        );
    }

    #[tokio::test]
    async fn at_most_ten_per_call_and_per_target() {
        let s = setup("prod", &["i1", "i2"]).await;
        let eleven: Vec<Value> =
            (0..11).map(|i| attr(&format!("a{i}"), Some("v"), if i % 2 == 0 { "i1" } else { "i2" })).collect();
        let r = put(s.as_ref(), &ctx(), body(json!({"cluster": "prod", "attributes": eleven}))).await;
        assert_eq!(code(r), "InvalidParameterException");
        let r = delete(s.as_ref(), &ctx(), body(json!({"cluster": "prod", "attributes": eleven}))).await;
        assert_eq!(code(r), "InvalidParameterException");

        let ten: Vec<Value> = (0..10).map(|i| attr(&format!("a{i}"), Some("v"), "i1")).collect();
        put(s.as_ref(), &ctx(), body(json!({"cluster": "prod", "attributes": ten}))).await.unwrap();
        // Replacing an existing name stays within the limit.
        put(s.as_ref(), &ctx(), body(json!({"cluster": "prod", "attributes": [attr("a3", Some("w"), "i1")]})))
            .await
            .unwrap();
        // An eleventh name is refused, and the whole call with it.
        let r = put(
            s.as_ref(),
            &ctx(),
            body(
                json!({"cluster": "prod", "attributes": [attr("ok", Some("v"), "i2"), attr("extra", Some("v"), "i1")]}),
            ),
        )
        .await;
        assert_eq!(code(r), "AttributeLimitExceededException");
        assert!(stored(s.as_ref(), "prod", "i2").await.is_empty(), "nothing of a refused call is written");
        assert_eq!(stored(s.as_ref(), "prod", "i1").await.len(), 10);
    }

    #[tokio::test]
    async fn unknown_targets_are_target_not_found() {
        let s = setup("prod", &["i1"]).await;
        add_cluster(s.as_ref(), "other", &["o1"]).await;
        let e = put(s.as_ref(), &ctx(), body(json!({"cluster": "prod", "attributes": [attr("a", None, "ghost")]})))
            .await
            .unwrap_err();
        assert_eq!(e.code(), "TargetNotFoundException");
        assert_eq!(e.to_string(), "Could not find ghost.");
        for id in [
            format!("{CI_ARN_PREFIX}/other/o1"),
            format!("{CI_ARN_PREFIX}/prod/ghost"),
            "arn:aws:ecs:eu-west-1:123456789012:container-instance/prod/i1".to_string(),
            "arn:aws:ecs:us-east-1:123456789012:task/prod/i1".to_string(),
            "o1".to_string(),
            "a/b".to_string(),
        ] {
            let r =
                put(s.as_ref(), &ctx(), body(json!({"cluster": "prod", "attributes": [attr("a", None, &id)]}))).await;
            assert_eq!(code(r), "TargetNotFoundException", "{id}");
        }
        // Old short-form ARNs name the instance by id alone.
        let short = format!("{CI_ARN_PREFIX}/i1");
        put(s.as_ref(), &ctx(), body(json!({"cluster": "prod", "attributes": [attr("a", None, &short)]})))
            .await
            .unwrap();
        // One missing target fails the whole call.
        let r = put(
            s.as_ref(),
            &ctx(),
            body(json!({"cluster": "prod", "attributes": [attr("b", None, "i1"), attr("b", None, "ghost")]})),
        )
        .await;
        assert_eq!(code(r), "TargetNotFoundException");
        assert_eq!(stored(s.as_ref(), "prod", "i1").await, vec![StoredAttribute { name: "a".into(), value: None }]);
    }

    #[tokio::test]
    async fn deregistered_instances_take_no_attributes() {
        let s = setup("prod", &[]).await;
        let keys = Keys::for_request(&ctx());
        let txn = Txn::new().put(keys.container_instance("prod", "gone"), br#"{"status":"INACTIVE"}"#.to_vec());
        assert!(repo::commit(s.as_ref(), txn).await.unwrap());
        let r =
            put(s.as_ref(), &ctx(), body(json!({"cluster": "prod", "attributes": [attr("a", None, "gone")]}))).await;
        assert_eq!(code(r), "TargetNotFoundException");
    }

    #[tokio::test]
    async fn target_type_and_id_are_checked() {
        let s = setup("prod", &["i1"]).await;
        let cases = [
            json!({"name": "a", "targetType": "task", "targetId": "i1"}),
            json!({"name": "a", "targetType": "container-instance"}),
            json!({"name": "a", "targetType": "container-instance", "targetId": ""}),
            json!({"name": "a", "targetId": "i1"}),
            json!({"targetType": "container-instance", "targetId": "i1"}),
        ];
        for a in cases {
            let r = put(s.as_ref(), &ctx(), body(json!({"cluster": "prod", "attributes": [a.clone()]}))).await;
            assert_eq!(code(r), "InvalidParameterException", "{a}");
            let r = delete(s.as_ref(), &ctx(), body(json!({"cluster": "prod", "attributes": [a.clone()]}))).await;
            assert_eq!(code(r), "InvalidParameterException", "{a}");
        }
        for b in [json!({"cluster": "prod"}), json!({"cluster": "prod", "attributes": []})] {
            assert_eq!(code(put(s.as_ref(), &ctx(), body(b)).await), "InvalidParameterException");
        }
        let r = put(s.as_ref(), &ctx(), body(json!({"cluster": "prod", "attributes": "x"}))).await;
        assert_eq!(code(r), "SerializationException");
    }

    #[tokio::test]
    async fn names_and_values_follow_ecs_patterns() {
        let s = setup("prod", &["i1"]).await;
        let try_put = |name: &str, value: Option<&str>| {
            let s = s.clone();
            let a = attr(name, value, "i1");
            async move { put(s.as_ref(), &ctx(), body(json!({"cluster": "prod", "attributes": [a]}))).await }
        };
        for ok in ["stack", "com.example/team_name-1", "a@b", "back\\slash", &"n".repeat(128)] {
            assert!(try_put(ok, None).await.is_ok(), "name {ok}");
        }
        for bad in ["has space", "colon:x", "", &"n".repeat(129), "ünïcode", "star*"] {
            assert_eq!(code(try_put(bad, Some("v")).await), "InvalidParameterException", "name {bad:?}");
        }
        for ok in ["v", "a b", "C:\\path/x@y.z-1_2", &"v".repeat(128)] {
            assert!(try_put("x", Some(ok)).await.is_ok(), "value {ok}");
        }
        for bad in ["", " lead", "trail ", &"v".repeat(129), "semi;colon", "tab\tx"] {
            assert_eq!(code(try_put("x", Some(bad)).await), "InvalidParameterException", "value {bad:?}");
        }
    }

    #[tokio::test]
    async fn delete_removes_by_name_ignoring_values() {
        let s = setup("prod", &["i1", "i2"]).await;
        let given = json!([attr("a", Some("1"), "i1"), attr("b", Some("2"), "i1"), attr("c", Some("3"), "i2")]);
        put(s.as_ref(), &ctx(), body(json!({"cluster": "prod", "attributes": given}))).await.unwrap();
        // The value is ignored, even one that would not validate.
        let del = json!([attr("a", Some(" bogus "), "i1"), attr("zz", None, "i1"), attr("c", None, "i2")]);
        let out = delete(s.as_ref(), &ctx(), body(json!({"cluster": "prod", "attributes": del}))).await.unwrap();
        assert_eq!(out, json!({"attributes": del}));
        assert_eq!(
            stored(s.as_ref(), "prod", "i1").await,
            vec![StoredAttribute { name: "b".into(), value: Some("2".into()) }]
        );
        let keys = Keys::for_request(&ctx());
        assert!(s.get(&keys.attributes("prod", TARGET_TYPE, "i2")).await.unwrap().is_none(), "empty record removed");
        let e = delete(s.as_ref(), &ctx(), body(json!({"cluster": "prod", "attributes": [attr("b", None, "ghost")]})))
            .await
            .unwrap_err();
        assert_eq!(e.code(), "TargetNotFoundException");
        assert_eq!(e.to_string(), "Could not find ghost.");
    }

    #[tokio::test]
    async fn list_filters_by_name_and_value() {
        let s = setup("prod", &["i1", "i2", "i3"]).await;
        let given = json!([
            attr("os", Some("linux"), "i1"),
            attr("os", Some("windows"), "i2"),
            attr("os", Some("linux"), "i3"),
            attr("team", Some("linux"), "i3"),
        ]);
        put(s.as_ref(), &ctx(), body(json!({"cluster": "prod", "attributes": given}))).await.unwrap();
        let out =
            list_all(s.as_ref(), json!({"cluster": "prod", "targetType": "container-instance", "attributeName": "os"}))
                .await;
        assert_eq!(out["attributes"].as_array().unwrap().len(), 3);
        let out = list_all(
            s.as_ref(),
            json!({"cluster": "prod", "targetType": "container-instance", "attributeName": "os", "attributeValue": "linux"}),
        )
        .await;
        let ids: Vec<&str> =
            out["attributes"].as_array().unwrap().iter().map(|a| a["targetId"].as_str().unwrap()).collect();
        assert_eq!(ids, vec![format!("{CI_ARN_PREFIX}/prod/i1"), format!("{CI_ARN_PREFIX}/prod/i3")]);
        // Other clusters' attributes are not listed.
        add_cluster(s.as_ref(), "prod2", &["j1"]).await;
        put(s.as_ref(), &ctx(), body(json!({"cluster": "prod2", "attributes": [attr("os", Some("linux"), "j1")]})))
            .await
            .unwrap();
        let out = list_all(s.as_ref(), json!({"cluster": "prod", "targetType": "container-instance"})).await;
        assert_eq!(out["attributes"].as_array().unwrap().len(), 4);
    }

    #[tokio::test]
    async fn list_input_is_validated() {
        let s = setup("prod", &["i1"]).await;
        for b in [
            json!({"cluster": "prod"}),
            json!({"cluster": "prod", "targetType": "task"}),
            json!({"cluster": "prod", "targetType": "container-instance", "attributeValue": "x"}),
            json!({"cluster": "prod", "targetType": "container-instance", "maxResults": 0}),
            json!({"cluster": "prod", "targetType": "container-instance", "maxResults": 101}),
            json!({"cluster": "prod", "targetType": "container-instance", "nextToken": "???"}),
            json!({"cluster": "prod", "targetType": "container-instance", "nextToken": paging::encode("ListClusters", "x")}),
        ] {
            assert_eq!(code(list(s.as_ref(), &ctx(), body(b.clone())).await), "InvalidParameterException", "{b}");
        }
        let r = list(s.as_ref(), &ctx(), body(json!({"targetType": "container-instance", "maxResults": "5"}))).await;
        assert_eq!(code(r), "SerializationException");
    }

    #[tokio::test]
    async fn list_pages_across_targets() {
        let s = setup("prod", &["i1", "i2", "i3"]).await;
        let given = json!([
            attr("a", Some("1"), "i1"),
            attr("b", Some("1"), "i1"),
            attr("a", Some("1"), "i2"),
            attr("a", Some("1"), "i3"),
            attr("b", Some("1"), "i3"),
        ]);
        put(s.as_ref(), &ctx(), body(json!({"cluster": "prod", "attributes": given}))).await.unwrap();
        let mut seen = Vec::new();
        let mut token: Option<String> = None;
        let mut pages = 0;
        loop {
            let mut b = json!({"cluster": "prod", "targetType": "container-instance", "maxResults": 2});
            if let Some(t) = &token {
                b["nextToken"] = t.clone().into();
            }
            let out = list_all(s.as_ref(), b).await;
            pages += 1;
            for a in out["attributes"].as_array().unwrap() {
                let id = a["targetId"].as_str().unwrap().rsplit('/').next().unwrap().to_string();
                seen.push(format!("{id}:{}", a["name"].as_str().unwrap()));
            }
            match out.get("nextToken").and_then(Value::as_str) {
                Some(t) => token = Some(t.to_string()),
                None => break,
            }
        }
        assert_eq!(pages, 3);
        assert_eq!(seen, vec!["i1:a", "i1:b", "i2:a", "i3:a", "i3:b"]);

        // A token stays usable after the item it names is deleted.
        let first =
            list_all(s.as_ref(), json!({"cluster": "prod", "targetType": "container-instance", "maxResults": 3})).await;
        let t = first["nextToken"].as_str().unwrap().to_string();
        delete(s.as_ref(), &ctx(), body(json!({"cluster": "prod", "attributes": [attr("a", None, "i2")]})))
            .await
            .unwrap();
        let rest = list_all(
            s.as_ref(),
            json!({"cluster": "prod", "targetType": "container-instance", "maxResults": 3, "nextToken": t}),
        )
        .await;
        let names: Vec<String> = rest["attributes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| {
                format!(
                    "{}:{}",
                    a["targetId"].as_str().unwrap().rsplit('/').next().unwrap(),
                    a["name"].as_str().unwrap()
                )
            })
            .collect();
        assert_eq!(names, vec!["i3:a", "i3:b"]);
    }

    #[tokio::test]
    async fn concurrent_puts_all_land() {
        let s = setup("prod", &["i1"]).await;
        let mut handles = Vec::new();
        for i in 0..8 {
            let s = s.clone();
            handles.push(tokio::spawn(async move {
                let a = attr(&format!("k{i}"), Some("v"), "i1");
                put(s.as_ref(), &ctx(), body(json!({"cluster": "prod", "attributes": [a]}))).await
            }));
        }
        for h in handles {
            h.await.unwrap().unwrap();
        }
        assert_eq!(stored(s.as_ref(), "prod", "i1").await.len(), 8);
    }
}
