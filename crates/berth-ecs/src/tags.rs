//! Resource tags: TagResource, UntagResource, ListTagsForResource, and the
//! validation every Create/Register call applies to its `tags` member.
//!
//! Tags are stored beside the resource (`Keys::tags(arn)`), so tagging never
//! rewrites the resource and deleting a resource deletes its tags in the
//! same transaction.

use crate::context::RequestContext;
use crate::error::{EcsError, EcsResult};
use crate::input;
use crate::keys::Keys;
use crate::repo::{self, MAX_CONFLICT_RETRIES};
use berth_arn::Arn;
use berth_store::{Store, Txn};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tag {
    pub key: String,
    pub value: String,
}

pub const MAX_TAGS: usize = 50;

/// Validate a `tags` member as ECS does. Later duplicates of a key replace
/// earlier ones.
pub fn validate(tags: &[Tag]) -> EcsResult<()> {
    if tags.len() > MAX_TAGS {
        return Err(EcsError::invalid(format!(
            "Tags cannot have more than {MAX_TAGS} items, but {} were provided.",
            tags.len()
        )));
    }
    for t in tags {
        validate_key(&t.key)?;
        if t.value.chars().count() > 256 {
            return Err(EcsError::invalid("Tag value exceeds the maximum length of 256 characters."));
        }
        if !t.value.chars().all(allowed_tag_char) {
            return Err(EcsError::invalid(format!("Tag value for key {} contains invalid characters.", t.key)));
        }
    }
    Ok(())
}

fn validate_key(key: &str) -> EcsResult<()> {
    let len = key.chars().count();
    if len == 0 || len > 128 {
        return Err(EcsError::invalid("Tag key must be between 1 and 128 characters."));
    }
    if key.to_ascii_lowercase().starts_with("aws:") {
        return Err(EcsError::invalid("Tag keys starting with 'aws:' are reserved for system use."));
    }
    if !key.chars().all(allowed_tag_char) {
        return Err(EcsError::invalid(format!("Tag key {key} contains invalid characters.")));
    }
    Ok(())
}

/// Letters, numbers, spaces and `+ - = . _ : / @` (Unicode letters included).
fn allowed_tag_char(c: char) -> bool {
    c.is_alphanumeric() || c == ' ' || "+-=._:/@".contains(c)
}

/// Merge `new` into `existing`: same key replaces the value in place.
pub fn merge(existing: &mut Vec<Tag>, new: Vec<Tag>) {
    for t in new {
        match existing.iter_mut().find(|e| e.key == t.key) {
            Some(e) => e.value = t.value,
            None => existing.push(t),
        }
    }
}

pub fn to_json(tags: &[Tag]) -> Value {
    Value::Array(tags.iter().map(|t| json!({"key": t.key, "value": t.value})).collect())
}

/// The put of a new resource's tags, to add to its creating transaction.
pub fn put_new(txn: Txn, keys: &Keys, arn: &str, tags: &[Tag]) -> EcsResult<Txn> {
    if tags.is_empty() {
        return Ok(txn.delete(keys.tags(arn)));
    }
    let mut merged = Vec::new();
    merge(&mut merged, tags.to_vec());
    Ok(txn.put(keys.tags(arn), repo::encode(&merged)?))
}

pub async fn load(store: &dyn Store, keys: &Keys, arn: &str) -> EcsResult<Vec<Tag>> {
    Ok(repo::load::<Vec<Tag>>(store, &keys.tags(arn)).await?.map(|l| l.record).unwrap_or_default())
}

/// The store key of the resource an ARN names, if it names one Berth keeps.
fn resource_key(ctx: &RequestContext, keys: &Keys, arn_text: &str) -> EcsResult<String> {
    let arn: Arn = arn_text
        .parse()
        .map_err(|_| EcsError::invalid(format!("The ARN provided is invalid: {arn_text}")))?;
    if arn.service != "ecs" {
        return Err(EcsError::invalid(format!("The ARN provided is invalid: {arn_text}")));
    }
    if arn.region != ctx.region.as_str() || arn.account != ctx.account.as_str() {
        return Err(EcsError::invalid("The specified resource could not be found."));
    }
    let (kind, id) = arn
        .resource_type_and_id()
        .ok_or_else(|| EcsError::invalid(format!("The ARN provided is invalid: {arn_text}")))?;
    match kind {
        "cluster" => Ok(keys.cluster(id)),
        "capacity-provider" => Ok(keys.capacity_provider(id)),
        "task-definition" => {
            let (family, rev) = id
                .rsplit_once(':')
                .ok_or_else(|| EcsError::invalid(format!("The ARN provided is invalid: {arn_text}")))?;
            let rev: u32 =
                rev.parse().map_err(|_| EcsError::invalid(format!("The ARN provided is invalid: {arn_text}")))?;
            Ok(keys.task_definition(family, rev))
        }
        "container-instance" => match id.split_once('/') {
            Some((cluster, ci)) => Ok(keys.container_instance(cluster, ci)),
            None => Err(EcsError::invalid(format!("The ARN provided is invalid: {arn_text}"))),
        },
        "service" | "task" | "task-set" => match id.split_once('/') {
            Some((cluster, rest)) => Ok(format!(
                "{}{}",
                if kind == "service" { keys.services_of(cluster) } else { keys.tasks_of(cluster) },
                rest
            )),
            None => Err(EcsError::invalid(format!("The ARN provided is invalid: {arn_text}"))),
        },
        _ => Err(EcsError::invalid(format!("The ARN provided is invalid: {arn_text}"))),
    }
}

/// A resource exists and may carry tags (deleted clusters keep a record
/// with status INACTIVE but can no longer be tagged).
async fn require_resource(store: &dyn Store, key: &str) -> EcsResult<u64> {
    match store.get(key).await? {
        Some(v) => {
            let status = serde_json::from_slice::<Value>(&v.value)
                .ok()
                .and_then(|r| r.get("status").and_then(Value::as_str).map(str::to_string));
            if status.as_deref() == Some("INACTIVE") && key.contains("/clusters/") {
                return Err(EcsError::cluster_not_found());
            }
            Ok(v.mod_revision)
        }
        None if key.contains("/clusters/") => Err(EcsError::cluster_not_found()),
        None => Err(EcsError::invalid("The specified resource could not be found.")),
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct TagResourceInput {
    resource_arn: Option<String>,
    tags: Option<Vec<Tag>>,
}

pub async fn tag_resource(store: &dyn Store, ctx: &RequestContext, body: Map<String, Value>) -> EcsResult<Value> {
    let req: TagResourceInput = input::parse(body)?;
    let arn = input::required(&req.resource_arn, "resourceArn")?;
    let new = req.tags.ok_or_else(|| EcsError::invalid("tags can not be blank."))?;
    validate(&new)?;
    let keys = Keys::for_request(ctx);
    let resource = resource_key(ctx, &keys, arn)?;
    for _ in 0..MAX_CONFLICT_RETRIES {
        let resource_rev = require_resource(store, &resource).await?;
        let current = repo::load::<Vec<Tag>>(store, &keys.tags(arn)).await?;
        let (mut tags, tag_rev) = match current {
            Some(l) => (l.record, Some(l.mod_revision)),
            None => (Vec::new(), None),
        };
        merge(&mut tags, new.clone());
        validate(&tags)?;
        let txn = Txn::new()
            .require(resource.clone(), Some(resource_rev))
            .require(keys.tags(arn), tag_rev)
            .put(keys.tags(arn), repo::encode(&tags)?);
        if repo::commit(store, txn).await? {
            return Ok(json!({}));
        }
    }
    Err(repo::too_much_contention())
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct UntagResourceInput {
    resource_arn: Option<String>,
    tag_keys: Option<Vec<String>>,
}

pub async fn untag_resource(store: &dyn Store, ctx: &RequestContext, body: Map<String, Value>) -> EcsResult<Value> {
    let req: UntagResourceInput = input::parse(body)?;
    let arn = input::required(&req.resource_arn, "resourceArn")?;
    let remove = req.tag_keys.ok_or_else(|| EcsError::invalid("tagKeys can not be blank."))?;
    let keys = Keys::for_request(ctx);
    let resource = resource_key(ctx, &keys, arn)?;
    for _ in 0..MAX_CONFLICT_RETRIES {
        let resource_rev = require_resource(store, &resource).await?;
        let Some(current) = repo::load::<Vec<Tag>>(store, &keys.tags(arn)).await? else {
            return Ok(json!({}));
        };
        let tags: Vec<Tag> = current.record.into_iter().filter(|t| !remove.contains(&t.key)).collect();
        let mut txn = Txn::new()
            .require(resource.clone(), Some(resource_rev))
            .require(keys.tags(arn), Some(current.mod_revision));
        txn = if tags.is_empty() { txn.delete(keys.tags(arn)) } else { txn.put(keys.tags(arn), repo::encode(&tags)?) };
        if repo::commit(store, txn).await? {
            return Ok(json!({}));
        }
    }
    Err(repo::too_much_contention())
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ListTagsInput {
    resource_arn: Option<String>,
}

pub async fn list_tags_for_resource(
    store: &dyn Store,
    ctx: &RequestContext,
    body: Map<String, Value>,
) -> EcsResult<Value> {
    let req: ListTagsInput = input::parse(body)?;
    let arn = input::required(&req.resource_arn, "resourceArn")?;
    let keys = Keys::for_request(ctx);
    let resource = resource_key(ctx, &keys, arn)?;
    require_resource(store, &resource).await?;
    Ok(json!({ "tags": to_json(&load(store, &keys, arn).await?) }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tag(k: &str, v: &str) -> Tag {
        Tag { key: k.into(), value: v.into() }
    }

    #[test]
    fn validation_rules() {
        assert!(validate(&[tag("env", "prod")]).is_ok());
        assert!(validate(&[tag("", "x")]).is_err());
        assert!(validate(&[tag("aws:x", "x")]).is_err());
        assert!(validate(&[tag("AWS:x", "x")]).is_err());
        assert!(validate(&[tag(&"k".repeat(129), "x")]).is_err());
        assert!(validate(&[tag("k", &"v".repeat(257))]).is_err());
        assert!(validate(&[tag("k", "a{b")]).is_err());
        assert!(validate(&[tag("ключ", "значение")]).is_ok());
        let many: Vec<Tag> = (0..51).map(|i| tag(&format!("k{i}"), "v")).collect();
        assert!(validate(&many).is_err());
    }

    #[test]
    fn merge_replaces_in_place() {
        let mut t = vec![tag("a", "1"), tag("b", "2")];
        merge(&mut t, vec![tag("a", "9"), tag("c", "3")]);
        assert_eq!(t, vec![tag("a", "9"), tag("b", "2"), tag("c", "3")]);
    }
}
