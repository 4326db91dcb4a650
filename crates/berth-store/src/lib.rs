//! The store every Berth component keeps its state in.
//!
//! The model is etcd's, so that an etcd backend can be added without
//! touching callers: a flat, ordered key space of UTF-8 keys; every write
//! bumps one global `revision`; each key remembers the revision of its last
//! write (`mod_revision`, used as its version); a transaction applies a list
//! of puts and deletes atomically if and only if every compare holds; a
//! watch streams changes under a prefix in revision order.
//!
//! Backends: [`redb_backend::RedbStore`] (embedded, durable: a write is
//! acknowledged only after it is fsynced) and [`memory::MemoryStore`] (the
//! fake for unit tests and simulations). Both pass the same suite
//! (`tests/contract.rs`).

use async_trait::async_trait;

mod apply;
pub mod memory;
pub mod redb_backend;
mod watch;

pub use watch::{WatchEvent, WatchEventKind, WatchStream};

/// A stored value with the revision of its last write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Versioned {
    pub value: Vec<u8>,
    /// The global revision at which this key was last written (> 0).
    pub mod_revision: u64,
}

/// A condition a transaction requires to commit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Compare {
    /// The key's `mod_revision` equals this value; `None` means the key must not exist.
    ModRevision { key: String, expected: Option<u64> },
}

/// A write a transaction performs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    Put {
        key: String,
        value: Vec<u8>,
    },
    /// Deleting a missing key is a no-op, not an error.
    Delete {
        key: String,
    },
}

/// An atomic, conditional batch of writes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Txn {
    pub compares: Vec<Compare>,
    pub ops: Vec<Op>,
}

impl Txn {
    pub fn new() -> Txn {
        Txn::default()
    }
    /// Require `key` to be at `expected` (None: absent).
    pub fn require(mut self, key: impl Into<String>, expected: Option<u64>) -> Txn {
        self.compares.push(Compare::ModRevision {
            key: key.into(),
            expected,
        });
        self
    }
    pub fn put(mut self, key: impl Into<String>, value: Vec<u8>) -> Txn {
        self.ops.push(Op::Put {
            key: key.into(),
            value,
        });
        self
    }
    pub fn delete(mut self, key: impl Into<String>) -> Txn {
        self.ops.push(Op::Delete { key: key.into() });
        self
    }
}

/// What became of a transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TxnOutcome {
    /// Applied and durable; `revision` is the store revision it created
    /// (unchanged if the transaction had no ops).
    Committed { revision: u64 },
    /// A compare failed; nothing was written.
    Conflict,
}

/// One page of a prefix listing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Page {
    /// Keys in ascending byte order, with their values.
    pub items: Vec<(String, Versioned)>,
    /// Set when more keys remain; pass it as `start_after` to continue.
    pub next_start_after: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("store I/O failed: {0}")]
    Io(String),
    #[error("store is corrupt: {0}")]
    Corrupt(String),
    #[error("store is closed")]
    Closed,
}

#[async_trait]
pub trait Store: Send + Sync + 'static {
    async fn get(&self, key: &str) -> Result<Option<Versioned>, StoreError>;

    /// Keys starting with `prefix`, strictly after `start_after` if given, in
    /// ascending order, at most `limit` of them.
    async fn list(
        &self,
        prefix: &str,
        start_after: Option<&str>,
        limit: usize,
    ) -> Result<Page, StoreError>;

    /// Apply `txn` atomically if all its compares hold. Returns only once
    /// the result is durable.
    async fn txn(&self, txn: Txn) -> Result<TxnOutcome, StoreError>;

    /// The latest committed revision.
    async fn revision(&self) -> Result<u64, StoreError>;

    /// Changes to keys under `prefix` committed after this call, in revision
    /// order. A watcher that falls too far behind receives
    /// `WatchEventKind::Lagged` and must re-list (level-triggered readers do
    /// that anyway).
    fn watch(&self, prefix: &str) -> WatchStream;
}

/// Convenience: list everything under a prefix, following pages.
pub async fn list_all(
    store: &dyn Store,
    prefix: &str,
) -> Result<Vec<(String, Versioned)>, StoreError> {
    let mut out = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let page = store.list(prefix, after.as_deref(), 1000).await?;
        out.extend(page.items);
        match page.next_start_after {
            Some(k) => after = Some(k),
            None => return Ok(out),
        }
    }
}
