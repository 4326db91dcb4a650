//! The server side of the agent session (see berth-agent-protocol):
//! DiscoverPollEndpoint and the long poll `POST /agent/v1/poll`.
//!
//! The desired state of an instance is derived from the task records in its
//! task index (every task placed there not yet reported STOPPED: the ones
//! desired RUNNING, and the ones desired STOPPED that the agent must still
//! stop). Its version is the mod_revision of the instance's epoch key,
//! which every transaction that changes that desired state rewrites
//! (placement, StopTask, a task reported STOPPED, status changes), so it is
//! monotonic and changes whenever the answer does. A poll that already has
//! the current version waits for a change of the epoch key (rung by
//! [`Doorbells`], one store watch for all polls) for at most
//! the hold time.
//!
//! Every poll refreshes the instance's entry in [`Liveness`] (in memory: a
//! restarted server treats every agent as disconnected until its next
//! poll, at most `POLL_HOLD_SECS` away).

use crate::clusters;
use crate::container_instances::{self, InstanceTaskEntry, Liveness};
use crate::context::RequestContext;
use crate::error::{EcsError, EcsResult};
use crate::input;
use crate::keys::Keys;
use crate::repo;
use crate::roles::{self, RoleGate};
use crate::task_definitions::{self, TaskDefinitionRecord};
use berth_agent_protocol::{DesiredState, DesiredTask, PollRequest, PollResponse};
use berth_store::Store;
use serde::Deserialize;
use serde_json::{Map, Value, json};
use std::collections::HashMap;
use crate::doorbells::Doorbells;
use std::sync::Arc;
use std::time::Duration;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct DiscoverInput {
    container_instance: Option<String>,
    cluster: Option<String>,
}

/// DiscoverPollEndpoint: the server's own URL as the caller reached it
/// (`endpoint` comes from the front door: scheme and Host header).
pub async fn discover_poll_endpoint(
    store: &dyn Store,
    ctx: &RequestContext,
    body: Map<String, Value>,
    endpoint: Option<&str>,
) -> EcsResult<Value> {
    let req: DiscoverInput = input::parse(body)?;
    if let Some(c) = req.cluster.as_deref().filter(|c| !c.is_empty()) {
        clusters::resolve_active(store, ctx, Some(c)).await?;
    }
    let _ = req.container_instance;
    let endpoint = endpoint.unwrap_or("http://localhost:4566").trim_end_matches('/').to_string();
    Ok(json!({
        "endpoint": format!("{endpoint}/"),
        "telemetryEndpoint": format!("{endpoint}/"),
        "serviceConnectEndpoint": format!("{endpoint}/"),
    }))
}

/// The part of a task record the agent is told (a poll decodes only this:
/// building every answer is the hot path of a host's wake-up).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct DesiredFields {
    task_arn: String,
    desired_status: String,
    #[serde(default)]
    stop_code: Option<String>,
    #[serde(default)]
    stopped_reason: Option<String>,
    family: String,
    revision: u32,
    overrides: Value,
    #[serde(default)]
    host_ports: Vec<berth_agent_protocol::AssignedPort>,
    generation: u64,
}

/// The part of an instance record a poll needs.
#[derive(Deserialize)]
struct InstanceStatus {
    status: String,
    #[serde(default)]
    agent: Option<String>,
}

/// The version [`desired_state`] would answer with, from two key reads.
async fn version_of(store: &dyn Store, keys: &Keys, cluster: &str, instance_id: &str) -> EcsResult<u64> {
    let instance = store.get(&keys.container_instance(cluster, instance_id)).await?.ok_or_else(unknown_instance)?;
    Ok(epoch_revision(store, keys, cluster, instance_id).await?.max(instance.mod_revision))
}

async fn epoch_revision(store: &dyn Store, keys: &Keys, cluster: &str, instance_id: &str) -> EcsResult<u64> {
    Ok(store.get(&keys.instance_epoch(cluster, instance_id)).await?.map(|v| v.mod_revision).unwrap_or(0))
}

/// The instance's current desired state and its version (for [`poll`],
/// which has checked that the caller may see it).
async fn desired_state(
    store: &dyn Store,
    roles: &dyn RoleGate,
    ctx: &RequestContext,
    keys: &Keys,
    cluster: &str,
    instance_id: &str,
) -> EcsResult<PollResponse> {
    // Epoch first: anything committed after this read bumps it again, so
    // the version we answer never claims a state newer than what we read.
    let epoch = store.get(&keys.instance_epoch(cluster, instance_id)).await?.map(|v| v.mod_revision);
    let Some(instance) = repo::load::<InstanceStatus>(store, &keys.container_instance(cluster, instance_id)).await?
    else {
        return Err(unknown_instance());
    };
    let version = epoch.unwrap_or(0).max(instance.mod_revision);
    let entries = repo::load_all::<InstanceTaskEntry>(store, &keys.instance_tasks(cluster, instance_id)).await?;
    let mut definitions: HashMap<(String, u32), Value> = HashMap::new();
    let mut tasks = Vec::new();
    for (k, _) in entries {
        let task_id = k.rsplit('/').next().unwrap_or_default();
        let Some(t) = repo::load::<DesiredFields>(store, &keys.task(cluster, task_id)).await? else { continue };
        let t = t.record;
        let td_key = (t.family.clone(), t.revision);
        if !definitions.contains_key(&td_key) {
            let td = repo::load::<TaskDefinitionRecord>(store, &keys.task_definition(&t.family, t.revision)).await?;
            let rendered = td.map(|l| task_definitions::render(ctx, &l.record)).unwrap_or(Value::Null);
            definitions.insert(td_key.clone(), rendered);
        }
        let task_definition = definitions.get(&td_key).cloned().unwrap_or(Value::Null);
        // Stopping tasks need no credentials; running ones get fresh ones
        // in every answer (so they never expire while the agent polls).
        let credentials = if t.desired_status == "STOPPED" {
            None
        } else {
            let (task_role, execution_role) = roles::task_roles(ctx, &task_definition, &t.overrides);
            match (&task_role, &execution_role) {
                (None, None) => None,
                _ => roles.task_credentials(ctx, &t.task_arn, task_role.as_deref(), execution_role.as_deref(), ctx.now),
            }
        };
        tasks.push(DesiredTask {
            task_arn: t.task_arn.clone(),
            desired_status: t.desired_status.clone(),
            stop_code: if t.desired_status == "STOPPED" { t.stop_code.clone() } else { None },
            stopped_reason: if t.desired_status == "STOPPED" { t.stopped_reason.clone() } else { None },
            task_definition,
            overrides: Some(t.overrides.clone()),
            host_ports: t.host_ports.clone(),
            generation: t.generation,
            credentials,
        });
    }
    Ok(PollResponse { version, desired: DesiredState { tasks, draining: instance.record.status != "ACTIVE" } })
}

fn unknown_instance() -> EcsError {
    EcsError::invalid("The referenced container instance was not found.")
}

/// One long poll: answer at once when the state is newer than
/// `known_version` (or it is absent), else wait up to `hold` for a change.
pub async fn poll(
    shared: &Arc<dyn Store>,
    doorbells: &Arc<Doorbells>,
    liveness: &Liveness,
    roles: &dyn RoleGate,
    ctx: &RequestContext,
    req: PollRequest,
    hold: Duration,
) -> EcsResult<PollResponse> {
    let store = shared.as_ref();
    let cluster = clusters::name_from_reference(ctx, Some(&req.cluster))?;
    let id = container_instances::instance_id_from_reference(ctx, &cluster, &req.container_instance_arn)
        .ok_or_else(unknown_instance)?;
    let keys = Keys::for_request(ctx);
    let epoch_key = keys.instance_epoch(&cluster, &id);
    // Register before reading, so no change between the read and the wait
    // is missed.
    let epoch_bell = doorbells.bell(shared, &epoch_key);
    let instance_bell = doorbells.bell(shared, &keys.container_instance(&cluster, &id));
    let epoch_rang = epoch_bell.notified();
    let instance_rang = instance_bell.notified();
    tokio::pin!(epoch_rang, instance_rang);
    epoch_rang.as_mut().enable();
    instance_rang.as_mut().enable();
    // Before anything else: only the instance's own agent may poll it
    // (and keep it alive).
    let Some(owner) = repo::load::<InstanceStatus>(store, &keys.container_instance(&cluster, &id)).await? else {
        return Err(unknown_instance());
    };
    container_instances::check_agent_owns(ctx, owner.record.agent.as_deref(), "ecs:Poll", &current_arn(ctx, &cluster, &id))?;
    liveness.touch(&current_arn(ctx, &cluster, &id), ctx.now);
    // Most polls find nothing new: compare versions (the instance record
    // was just read; one more key read) before building the whole desired
    // state.
    let version = epoch_revision(store, &keys, &cluster, &id).await?.max(owner.mod_revision);
    if req.known_version != Some(version) {
        return desired_state(store, roles, ctx, &keys, &cluster, &id).await;
    }
    let deadline = tokio::time::Instant::now() + hold;
    loop {
        let woke = tokio::select! {
            _ = epoch_rang.as_mut() => true,
            _ = instance_rang.as_mut() => true,
            _ = tokio::time::sleep_until(deadline) => false,
        };
        if !woke {
            // Unchanged: the answer is the state the agent already has.
            return desired_state(store, roles, ctx, &keys, &cluster, &id).await;
        }
        // Re-arm both before reading again.
        epoch_rang.set(epoch_bell.notified());
        instance_rang.set(instance_bell.notified());
        epoch_rang.as_mut().enable();
        instance_rang.as_mut().enable();
        if req.known_version != Some(version_of(store, &keys, &cluster, &id).await?) {
            return desired_state(store, roles, ctx, &keys, &cluster, &id).await;
        }
    }
}

fn current_arn(ctx: &RequestContext, cluster: &str, id: &str) -> String {
    ctx.arn(format!("container-instance/{cluster}/{id}"))
}
