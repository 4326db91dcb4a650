//! The IAM service handle: the account's state record, read into an
//! immutable snapshot that requests consult, and the one way to change it.

use crate::directory::Snapshot;
use crate::error::IamError;
use crate::model::IamState;
use crate::sealing::MasterKey;
use arc_swap::ArcSwap;
use berth_arn::AccountId;
use berth_store::{Store, Txn, TxnOutcome};
use std::sync::Arc;

/// The store key of an account's IAM state.
pub fn state_key(account: &AccountId) -> String {
    format!("iam/{account}/state")
}

pub struct Iam {
    store: Arc<dyn Store>,
    account: AccountId,
    key: MasterKey,
    current: ArcSwap<Snapshot>,
}

impl std::fmt::Debug for Iam {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Iam").field("account", &self.account).finish_non_exhaustive()
    }
}

impl Iam {
    /// Read the account's state (an absent record is an empty account).
    pub async fn open(store: Arc<dyn Store>, account: AccountId, key: MasterKey) -> Result<Arc<Iam>, IamError> {
        let (state, revision) = read(store.as_ref(), &account).await?;
        let current = ArcSwap::from_pointee(Snapshot::build(account.clone(), state, revision));
        Ok(Arc::new(Iam { store, account, key, current }))
    }

    /// An IAM over `store` that starts from `state` at `revision` without
    /// reading it (tests over an empty store, and callers that already
    /// read it); later writes and [`Iam::refresh`] bring it up to date.
    pub fn with_state(store: Arc<dyn Store>, account: AccountId, key: MasterKey, state: IamState, revision: u64) -> Arc<Iam> {
        let current = ArcSwap::from_pointee(Snapshot::build(account.clone(), state, revision));
        Arc::new(Iam { store, account, key, current })
    }

    pub fn account(&self) -> &AccountId {
        &self.account
    }

    pub fn key(&self) -> &MasterKey {
        &self.key
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// The state as of the last write this process made or saw.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.current.load_full()
    }

    /// Read, change and write the state with compare-on-revision,
    /// retrying from a fresh read on conflict; `change` may run several
    /// times. A change that leaves the state equal writes nothing. The new
    /// snapshot is installed before this returns, so the caller's next
    /// request sees its own write.
    pub async fn mutate<T>(&self, mut change: impl FnMut(&mut IamState) -> Result<T, IamError>) -> Result<T, IamError> {
        let key = state_key(&self.account);
        loop {
            let found = self.store.get(&key).await?;
            let (before, revision) = match &found {
                Some(v) => (decode(&key, &v.value)?, Some(v.mod_revision)),
                None => (IamState::default(), None),
            };
            let mut after = before.clone();
            let out = change(&mut after)?;
            if after == before {
                return Ok(out);
            }
            // Serialising plain data cannot fail.
            let bytes = serde_json::to_vec(&after).unwrap_or_default();
            match self.store.txn(Txn::new().require(&key, revision).put(&key, bytes)).await? {
                TxnOutcome::Committed { revision } => {
                    self.install(after, revision);
                    return Ok(out);
                }
                TxnOutcome::Conflict => continue,
            }
        }
    }

    /// Re-read the record (after a watch event, or at a resync).
    pub async fn refresh(&self) -> Result<(), IamError> {
        let (state, revision) = read(self.store.as_ref(), &self.account).await?;
        self.install(state, revision);
        Ok(())
    }

    /// Follow writes made by other processes sharing the store.
    pub fn spawn_watch(self: &Arc<Self>) {
        let me = Arc::downgrade(self);
        let mut watch = self.store.watch(&state_key(&self.account));
        tokio::spawn(async move {
            while watch.next().await.is_some() {
                let Some(iam) = me.upgrade() else { return };
                if let Err(e) = iam.refresh().await {
                    tracing::warn!(error = %e, "could not re-read the IAM state");
                }
            }
        });
    }

    fn install(&self, state: IamState, revision: u64) {
        let current = self.current.load();
        if current.revision() >= revision && revision != 0 {
            return;
        }
        self.current.store(Arc::new(Snapshot::build(self.account.clone(), state, revision)));
    }
}

async fn read(store: &dyn Store, account: &AccountId) -> Result<(IamState, u64), IamError> {
    let key = state_key(account);
    match store.get(&key).await? {
        Some(v) => Ok((decode(&key, &v.value)?, v.mod_revision)),
        None => Ok((IamState::default(), 0)),
    }
}

fn decode(key: &str, bytes: &[u8]) -> Result<IamState, IamError> {
    serde_json::from_slice(bytes).map_err(|e| IamError::Internal(format!("{key} is corrupt: {e}")))
}
