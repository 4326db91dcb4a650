//! Reading and changing one service record, for the API handlers and for
//! the service controller: every change is one transaction that compares
//! the record's revision, retried on conflict.

use super::model::ServiceRecord;
use crate::error::{EcsError, EcsResult};
use crate::keys::Keys;
use crate::repo::{self, Loaded, MAX_CONFLICT_RETRIES};
use berth_store::{Store, Txn};

/// The record of service `name` in `cluster` (in any status), if any.
pub async fn load(
    store: &dyn Store,
    keys: &Keys,
    cluster: &str,
    name: &str,
) -> EcsResult<Option<Loaded<ServiceRecord>>> {
    repo::load(store, &keys.service(cluster, name)).await
}

/// Every service record of a cluster (in any status), in name order.
pub async fn load_all(store: &dyn Store, keys: &Keys, cluster: &str) -> EcsResult<Vec<ServiceRecord>> {
    Ok(repo::load_all::<ServiceRecord>(store, &keys.services_of(cluster)).await?.into_iter().map(|(_, r)| r).collect())
}

/// Read-modify-write of one service: `change` sees the current record and
/// may refuse with an error (returned as is) or edit it; the edit commits
/// only if nobody wrote the record since it was read, else `change` runs
/// again on the fresh record. `Ok(None)` when there is no such service.
///
/// For the controller: counts (`running_count`, `pending_count`, and each
/// deployment's), rollout states, [`ServiceRecord::push_event`], and
/// DRAINING → INACTIVE once a deleted service's tasks are gone.
pub async fn update_with(
    store: &dyn Store,
    keys: &Keys,
    cluster: &str,
    name: &str,
    mut change: impl FnMut(&mut ServiceRecord) -> EcsResult<()>,
) -> EcsResult<Option<ServiceRecord>> {
    let key = keys.service(cluster, name);
    for _ in 0..MAX_CONFLICT_RETRIES {
        let Some(loaded) = load(store, keys, cluster, name).await? else { return Ok(None) };
        let mut record = loaded.record;
        change(&mut record)?;
        let txn = Txn::new().require(key.clone(), Some(loaded.mod_revision)).put(key.clone(), repo::encode(&record)?);
        if repo::commit(store, txn).await? {
            return Ok(Some(record));
        }
    }
    Err(too_much_contention())
}

fn too_much_contention() -> EcsError {
    repo::too_much_contention()
}
