//! Task definitions: RegisterTaskDefinition, DescribeTaskDefinition,
//! DeregisterTaskDefinition, DeleteTaskDefinitions, ListTaskDefinitions,
//! ListTaskDefinitionFamilies.
//!
//! A revision is registered ACTIVE, deregistered to INACTIVE and deleted to
//! DELETE_IN_PROGRESS; it stays describable in every state (Berth has no
//! background reaper, and ECS keeps a DELETE_IN_PROGRESS revision while
//! anything references it). Revision numbers come from the family record
//! and are never reused.
//!
//! Other modules (RunTask, services) resolve a `taskDefinition` member with
//! [`resolve`] and read the registered container definitions from
//! [`TaskDefinitionRecord::container_definitions`].

mod attributes;
mod compat;
mod containers;
mod lists;
mod model;
mod normalize;
mod ports;
mod records;
mod reference;
mod relations;
mod units;
mod validate;

#[cfg(test)]
mod tests;

pub use lists::{list, list_families};
pub use records::{FamilyRecord, Status, TaskDefinitionRecord, render};
pub use reference::Reference;

use crate::context::RequestContext;
use crate::error::{EcsError, EcsResult};
use crate::input;
use crate::keys::Keys;
use crate::repo::{self, Loaded, MAX_CONFLICT_RETRIES};
use crate::tags;
use berth_store::{Store, Txn};
use model::RegisterView;
use serde::Deserialize;
use serde_json::{Map, Value, json};

fn unable_to_describe() -> EcsError {
    EcsError::client("Unable to describe task definition.")
}

pub async fn register(
    store: &dyn Store,
    ctx: &RequestContext,
    body: Map<String, Value>,
) -> EcsResult<Value> {
    let body = normalize::strip_map(body);
    let view: RegisterView = input::parse(body.clone())?;
    let family = input::required(&view.family, "family")?.to_string();
    validate::family(&family)?;
    let new_tags = view.tags.clone().unwrap_or_default();
    tags::validate(&new_tags)?;
    let size = units::parse(view.cpu.as_deref(), view.memory.as_deref())?;
    validate::definition(&view, &size)?;
    let definition = normalize::definition(&body, &size)?;
    let requires_attributes = attributes::compute(&view);
    let compatibilities = compat::compute(&view, &size);

    let keys = Keys::for_request(ctx);
    let family_key = keys.task_definition_family(&family);
    let _queued = repo::local_write_lock(&family_key).await;
    for _ in 0..MAX_CONFLICT_RETRIES {
        let (mut fam, fam_rev) = match repo::load::<FamilyRecord>(store, &family_key).await? {
            Some(l) => (l.record, Some(l.mod_revision)),
            None => (FamilyRecord::new(&family), None),
        };
        let revision = fam.latest_revision.checked_add(1).ok_or_else(|| {
            EcsError::client(
                "The task definition family has reached the maximum number of revisions.",
            )
        })?;
        fam.latest_revision = revision;
        fam.set_status(revision, Status::Active);
        let record = TaskDefinitionRecord {
            family: family.clone(),
            revision,
            status: Status::Active,
            definition: definition.clone(),
            requires_attributes: requires_attributes.clone(),
            compatibilities: compatibilities.clone(),
            registered_at: berth_clock::epoch_seconds(ctx.now),
            registered_by: ctx.principal_arn.clone(),
            deregistered_at: None,
            delete_requested_at: None,
        };
        let key = keys.task_definition(&family, revision);
        let txn = Txn::new()
            .require(family_key.clone(), fam_rev)
            .require(key.clone(), None)
            .put(family_key.clone(), repo::encode(&fam)?)
            .put(key, repo::encode(&record)?);
        let txn = tags::put_new(
            txn,
            &keys,
            &reference::arn(ctx, &family, revision),
            &new_tags,
        )?;
        if repo::commit(store, txn).await? {
            let mut merged = Vec::new();
            tags::merge(&mut merged, new_tags);
            return Ok(
                json!({ "taskDefinition": render(ctx, &record), "tags": tags::to_json(&merged) }),
            );
        }
    }
    // ECS's own answer when registrations of one family pile up.
    Err(EcsError::client(
        "Too many concurrent attempts to create a new revision of the specified family.",
    ))
}

async fn load_revision(
    store: &dyn Store,
    keys: &Keys,
    family: &str,
    revision: u32,
) -> EcsResult<Option<Loaded<TaskDefinitionRecord>>> {
    // A family that could never have been registered must not be spliced
    // into a store key.
    if !validate::is_simple_name(family) {
        return Ok(None);
    }
    repo::load(store, &keys.task_definition(family, revision)).await
}

/// The revision a `taskDefinition` member names: a family's latest ACTIVE
/// revision, or a specific revision in any status. Unknown references are
/// ClientException "Unable to describe task definition.", as in ECS.
pub async fn resolve(
    store: &dyn Store,
    ctx: &RequestContext,
    text: &str,
) -> EcsResult<Loaded<TaskDefinitionRecord>> {
    let keys = Keys::for_request(ctx);
    let (family, revision) = match reference::parse(ctx, text)?.ok_or_else(unable_to_describe)? {
        Reference::Revision(f, n) => (f, n),
        Reference::Family(f) => {
            if !validate::is_simple_name(&f) {
                return Err(unable_to_describe());
            }
            let fam = repo::load::<FamilyRecord>(store, &keys.task_definition_family(&f)).await?;
            let latest = fam
                .and_then(|l| l.record.latest_active())
                .ok_or_else(unable_to_describe)?;
            (f, latest)
        }
    };
    load_revision(store, &keys, &family, revision)
        .await?
        .ok_or_else(unable_to_describe)
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct DescribeInput {
    task_definition: Option<String>,
    include: Option<Vec<String>>,
}

pub async fn describe(
    store: &dyn Store,
    ctx: &RequestContext,
    body: Map<String, Value>,
) -> EcsResult<Value> {
    let req: DescribeInput = input::parse(body)?;
    let text = input::required(&req.task_definition, "taskDefinition")?;
    let mut with_tags = false;
    for i in req.include.iter().flatten() {
        validate::one_of(i, "include", &["TAGS"])?;
        with_tags = true;
    }
    let loaded = resolve(store, ctx, text).await?;
    let mut out = json!({ "taskDefinition": render(ctx, &loaded.record) });
    if with_tags {
        let keys = Keys::for_request(ctx);
        let arn = reference::arn(ctx, &loaded.record.family, loaded.record.revision);
        out["tags"] = tags::to_json(&tags::load(store, &keys, &arn).await?);
    }
    Ok(out)
}

/// Move one revision to `status`, updating its family's index in the same
/// transaction. `Ok(None)` when the revision does not exist.
async fn transition(
    store: &dyn Store,
    ctx: &RequestContext,
    family: &str,
    revision: u32,
    allowed_from: Status,
    to: Status,
) -> EcsResult<Option<TaskDefinitionRecord>> {
    let keys = Keys::for_request(ctx);
    let family_key = keys.task_definition_family(family);
    for _ in 0..MAX_CONFLICT_RETRIES {
        let Some(td) = load_revision(store, &keys, family, revision).await? else {
            return Ok(None);
        };
        if td.record.status != allowed_from {
            return Ok(Some(td.record));
        }
        let Some(fam) = repo::load::<FamilyRecord>(store, &family_key).await? else {
            tracing::error!(family, revision, "task definition without a family record");
            return Err(EcsError::Server(
                "The service encountered an internal error. Try again later.".into(),
            ));
        };
        let mut record = td.record;
        let now = berth_clock::epoch_seconds(ctx.now);
        record.status = to;
        match to {
            Status::Inactive => record.deregistered_at = Some(now),
            Status::DeleteInProgress => record.delete_requested_at = Some(now),
            Status::Active => {}
        }
        let mut family_record = fam.record;
        family_record.set_status(revision, to);
        let key = keys.task_definition(family, revision);
        let txn = Txn::new()
            .require(key.clone(), Some(td.mod_revision))
            .require(family_key.clone(), Some(fam.mod_revision))
            .put(key, repo::encode(&record)?)
            .put(family_key.clone(), repo::encode(&family_record)?);
        if repo::commit(store, txn).await? {
            return Ok(Some(record));
        }
    }
    Err(repo::too_much_contention())
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct DeregisterInput {
    task_definition: Option<String>,
}

/// Deregistering an INACTIVE (or deleted) revision again returns it
/// unchanged, keeping the first `deregisteredAt`.
pub async fn deregister(
    store: &dyn Store,
    ctx: &RequestContext,
    body: Map<String, Value>,
) -> EcsResult<Value> {
    let req: DeregisterInput = input::parse(body)?;
    let text = input::required(&req.task_definition, "taskDefinition")?;
    let (family, revision) = match reference::parse(ctx, text)?.ok_or_else(unable_to_describe)? {
        Reference::Revision(f, n) => (f, n),
        // ECS never picks a revision to deregister on the caller's behalf.
        Reference::Family(_) => return Err(EcsError::client("Revision is missing.")),
    };
    let record = transition(
        store,
        ctx,
        &family,
        revision,
        Status::Active,
        Status::Inactive,
    )
    .await?
    .ok_or_else(unable_to_describe)?;
    Ok(json!({ "taskDefinition": render(ctx, &record) }))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct DeleteInput {
    task_definitions: Option<Vec<String>>,
}

const MAX_DELETE: usize = 10;

pub async fn delete(
    store: &dyn Store,
    ctx: &RequestContext,
    body: Map<String, Value>,
) -> EcsResult<Value> {
    let req: DeleteInput = input::parse(body)?;
    let refs = req.task_definitions.unwrap_or_default();
    if refs.is_empty() {
        return Err(EcsError::invalid("taskDefinitions can not be blank."));
    }
    if refs.len() > MAX_DELETE {
        return Err(EcsError::invalid(format!(
            "taskDefinitions can have at most {MAX_DELETE} items."
        )));
    }
    let mut deleted = Vec::new();
    let mut failures = Vec::new();
    for text in &refs {
        match delete_one(store, ctx, text).await? {
            Ok(td) => deleted.push(td),
            Err(failure) => failures.push(failure),
        }
    }
    Ok(json!({ "taskDefinitions": deleted, "failures": failures }))
}

/// One entry of DeleteTaskDefinitions: the deleted revision, or the
/// failure entry ECS reports for it. Deleting a revision that is already
/// DELETE_IN_PROGRESS succeeds again.
async fn delete_one(
    store: &dyn Store,
    ctx: &RequestContext,
    text: &str,
) -> EcsResult<Result<Value, Value>> {
    let failure = |arn: &str, reason: &str| Err(json!({ "arn": arn, "reason": reason }));
    let (family, revision) = match reference::parse(ctx, text) {
        Ok(Some(Reference::Revision(f, n))) => (f, n),
        Ok(None) => {
            return Ok(failure(
                text,
                "The specified task definition does not exist. Specify a valid account, family, revision and try again.",
            ));
        }
        Ok(Some(Reference::Family(_))) | Err(_) => {
            return Ok(failure(
                text,
                "The specified task definition identifier is invalid. Specify a valid name or ARN and try again.",
            ));
        }
    };
    match transition(
        store,
        ctx,
        &family,
        revision,
        Status::Inactive,
        Status::DeleteInProgress,
    )
    .await?
    {
        None => Ok(failure(
            text,
            "The specified task definition does not exist. Specify a valid account, family, revision and try again.",
        )),
        Some(r) if r.status == Status::Active => Ok(failure(
            &reference::arn(ctx, &family, revision),
            "The specified task definition is still in ACTIVE status. Please deregister the target and try again.",
        )),
        Some(r) => Ok(Ok(render(ctx, &r))),
    }
}
