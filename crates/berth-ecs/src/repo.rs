//! Reading and writing JSON records in the store, with optimistic
//! concurrency: read, decide, write-if-unchanged, retry on conflict.

use crate::error::{EcsError, EcsResult};
use berth_store::{Store, Txn, TxnOutcome};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// How often a read-modify-write is retried when another writer got there first.
pub const MAX_CONFLICT_RETRIES: usize = 32;

const WRITE_LOCK_STRIPES: usize = 64;

static WRITE_LOCKS: std::sync::LazyLock<Vec<tokio::sync::Mutex<()>>> =
    std::sync::LazyLock::new(|| (0..WRITE_LOCK_STRIPES).map(|_| tokio::sync::Mutex::new(())).collect());

/// Queue writers of one hot key in this process behind each other.
///
/// Correctness never depends on this: every write still compares revisions
/// (and must, once several servers share a store). It only stops writers in
/// one process from burning their retries against each other: with group
/// commit, N concurrent read-modify-writes of one key land in one batch
/// where only the first can win, so under load they would exhaust
/// `MAX_CONFLICT_RETRIES` (bench/api.sh saw ~13% of same-family
/// registrations fail that way before this lock).
pub async fn local_write_lock(key: &str) -> tokio::sync::MutexGuard<'static, ()> {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    key.hash(&mut h);
    WRITE_LOCKS[(h.finish() as usize) % WRITE_LOCK_STRIPES].lock().await
}

/// A record as read, with the revision a conditional write must compare against.
pub struct Loaded<T> {
    pub record: T,
    pub mod_revision: u64,
}

pub async fn load<T: DeserializeOwned>(store: &dyn Store, key: &str) -> EcsResult<Option<Loaded<T>>> {
    match store.get(key).await? {
        None => Ok(None),
        Some(v) => Ok(Some(Loaded { record: decode(key, &v.value)?, mod_revision: v.mod_revision })),
    }
}

pub fn decode<T: DeserializeOwned>(key: &str, bytes: &[u8]) -> EcsResult<T> {
    serde_json::from_slice(bytes).map_err(|e| {
        tracing::error!(key, error = %e, "undecodable record");
        EcsError::Server("The service encountered an internal error. Try again later.".into())
    })
}

pub fn encode<T: Serialize>(record: &T) -> EcsResult<Vec<u8>> {
    serde_json::to_vec(record).map_err(|e| EcsError::Server(format!("could not encode record: {e}")))
}

/// Commit `txn`; `Ok(false)` on conflict so the caller can re-read and retry.
pub async fn commit(store: &dyn Store, txn: Txn) -> EcsResult<bool> {
    Ok(matches!(store.txn(txn).await?, TxnOutcome::Committed { .. }))
}

pub fn too_much_contention() -> EcsError {
    EcsError::Server("The resource is being modified concurrently. Try again.".into())
}

/// All records under a prefix, decoded, in key order.
pub async fn load_all<T: DeserializeOwned>(store: &dyn Store, prefix: &str) -> EcsResult<Vec<(String, T)>> {
    berth_store::list_all(store, prefix)
        .await?
        .into_iter()
        .map(|(k, v)| decode(&k, &v.value).map(|r| (k, r)))
        .collect()
}
