//! The embedded durable backend on redb.
//!
//! Writes go through group commit: one writer thread owns all write
//! transactions, drains every request queued while the previous fsync ran,
//! evaluates them in arrival order inside a single redb write transaction
//! (so each sees the effects of the ones before it), commits once with
//! immediate durability, publishes the watch events, and only then answers
//! the callers. Throughput therefore grows with concurrency instead of being
//! capped at one fsync per transaction.
//!
//! Reads open their own redb read transactions (MVCC snapshots; they never
//! wait for the writer) on tokio's blocking pool: a read of a page not in
//! redb's cache is a synchronous `pread`, and a `list` can touch many pages,
//! so running them inline could stall a runtime worker on disk I/O. The
//! hand-off costs microseconds, noise next to the HTTP request around it.

use std::ops::Bound;
use std::path::Path;
use std::sync::Arc;
use std::sync::mpsc;
use std::thread::JoinHandle;

use async_trait::async_trait;
use redb::{Database, Durability, ReadableDatabase, ReadableTable, TableDefinition};
use tokio::sync::oneshot;

use crate::apply::{self, State, Verdict};
use crate::watch::{DEFAULT_WATCH_CAPACITY, WatchHub};
use crate::{Op, Page, Store, StoreError, Txn, TxnOutcome, Versioned, WatchStream};

/// key -> (mod_revision, value).
const KV: TableDefinition<&str, (u64, &[u8])> = TableDefinition::new("kv");
/// Store-wide counters; only `REVISION_KEY` so far.
const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
const REVISION_KEY: &str = "revision";

/// Upper bound on transactions per group commit, so one commit's latency
/// (and the memory held by its watch events) stays bounded under a flood.
const MAX_BATCH: usize = 1024;

/// redb refuses a key or value over 3 GiB, and a refused insert would fail
/// the whole group commit; checking up front fails only the offending
/// transaction. The 8 bytes are the mod_revision stored beside the value.
const MAX_ENTRY_LEN: usize = 3 * 1024 * 1024 * 1024 - 8;

struct Request {
    txn: Txn,
    reply: oneshot::Sender<Result<TxnOutcome, StoreError>>,
}

/// The durable backend. Cheap to share behind an `Arc`; dropping the last
/// handle waits for the writer thread to finish the commits queued.
///
/// As with any remote store, a `txn` whose future is dropped after it was
/// queued may still commit; callers that retry after a timeout must use
/// compares (or re-read) rather than assume it did not happen.
pub struct RedbStore {
    db: Arc<Database>,
    /// `None` only during drop, to close the channel before joining.
    requests: Option<mpsc::Sender<Request>>,
    writer: Option<JoinHandle<()>>,
    hub: WatchHub,
}

impl RedbStore {
    /// Open (creating if missing) the store at `path`. A file left by a
    /// crashed process is recovered by redb to its last committed state.
    /// Must not be called while another `RedbStore` has the same file open:
    /// redb's file lock makes that an `Io` error.
    pub fn open(path: &Path) -> Result<RedbStore, StoreError> {
        let db = Database::create(path).map_err(store_err)?;
        let revision = init_tables(&db)?;
        let db = Arc::new(db);
        let hub = WatchHub::new(DEFAULT_WATCH_CAPACITY);
        let (tx, rx) = mpsc::channel();
        let writer = Writer {
            db: db.clone(),
            revision,
            hub: hub.clone(),
        };
        let handle = std::thread::Builder::new()
            .name("berth-store-writer".into())
            .spawn(move || writer.run(rx))
            .map_err(|e| StoreError::Io(format!("spawning the writer thread: {e}")))?;
        Ok(RedbStore {
            db,
            requests: Some(tx),
            writer: Some(handle),
            hub,
        })
    }

    /// Reads run inline on the calling task. A redb read transaction over
    /// pages in redb's cache or the OS page cache takes microseconds, while
    /// a hop to the blocking pool and back costs two thread wake-ups per
    /// read; measured by bench/api.sh, the hop made DescribeClusters (four
    /// reads) several times slower under load. A truly cold page is one
    /// pread, which blocks a worker briefly but never for long.
    async fn read<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Database) -> Result<T, StoreError> + Send + 'static,
    {
        f(&self.db)
    }
}

impl Drop for RedbStore {
    /// Closing the channel lets the writer finish the batch in hand and
    /// exit; joining it means the file is closed when drop returns, so the
    /// same path can be reopened at once. The wait is for the commits
    /// already queued (left by callers that gave up), usually none or one.
    fn drop(&mut self) {
        self.requests = None;
        if let Some(writer) = self.writer.take()
            && writer.join().is_err()
        {
            tracing::error!("berth-store writer thread panicked");
        }
    }
}

/// Create the tables if needed and return the stored revision.
fn init_tables(db: &Database) -> Result<u64, StoreError> {
    let mut wtx = db.begin_write().map_err(store_err)?;
    wtx.set_durability(Durability::Immediate)
        .map_err(store_err)?;
    let revision = {
        wtx.open_table(KV).map_err(store_err)?;
        let meta = wtx.open_table(META).map_err(store_err)?;
        let stored = meta.get(REVISION_KEY).map_err(store_err)?;
        stored.map(|g| g.value()).unwrap_or(0)
    };
    wtx.commit().map_err(store_err)?;
    Ok(revision)
}

fn store_err(e: impl Into<redb::Error>) -> StoreError {
    match e.into() {
        redb::Error::Corrupted(msg) => StoreError::Corrupt(msg),
        other => StoreError::Io(other.to_string()),
    }
}

/// StoreError is not Clone (its declaration is shared API); one failed
/// group commit must still answer every caller in it.
fn dup(e: &StoreError) -> StoreError {
    match e {
        StoreError::Io(m) => StoreError::Io(m.clone()),
        StoreError::Corrupt(m) => StoreError::Corrupt(m.clone()),
        StoreError::Closed => StoreError::Closed,
    }
}

fn oversized(txn: &Txn) -> Option<StoreError> {
    txn.ops.iter().find_map(|op| {
        let (key, value_len) = match op {
            Op::Put { key, value } => (key, value.len()),
            Op::Delete { key } => (key, 0),
        };
        (key.len() > MAX_ENTRY_LEN || value_len > MAX_ENTRY_LEN)
            .then(|| StoreError::Io(format!("entry for key of {} bytes is too large", key.len())))
    })
}

struct Writer {
    db: Arc<Database>,
    /// The last committed revision; only this thread changes it.
    revision: u64,
    hub: WatchHub,
}

struct TableState<'a, 't> {
    kv: &'a mut redb::Table<'t, &'static str, (u64, &'static [u8])>,
}

impl State for TableState<'_, '_> {
    fn mod_revision(&mut self, key: &str) -> Result<Option<u64>, StoreError> {
        Ok(self.kv.get(key).map_err(store_err)?.map(|g| g.value().0))
    }
    fn put(&mut self, key: &str, value: &[u8], revision: u64) -> Result<(), StoreError> {
        self.kv.insert(key, (revision, value)).map_err(store_err)?;
        Ok(())
    }
    fn delete(&mut self, key: &str) -> Result<bool, StoreError> {
        Ok(self.kv.remove(key).map_err(store_err)?.is_some())
    }
}

impl Writer {
    fn run(mut self, requests: mpsc::Receiver<Request>) {
        // Ends when every RedbStore handle is gone; requests already queued
        // are still served first since the channel drains before reporting
        // disconnection.
        while let Ok(first) = requests.recv() {
            let mut batch = vec![first];
            while batch.len() < MAX_BATCH {
                match requests.try_recv() {
                    Ok(req) => batch.push(req),
                    Err(_) => break,
                }
            }
            self.commit_batch(batch);
        }
    }

    fn commit_batch(&mut self, batch: Vec<Request>) {
        let mut accepted = Vec::with_capacity(batch.len());
        for req in batch {
            match oversized(&req.txn) {
                // The caller may have given up (dropped its future); nothing to do then.
                Some(err) => drop(req.reply.send(Err(err))),
                None => accepted.push(req),
            }
        }
        if accepted.is_empty() {
            return;
        }
        let (verdicts, revision) = match self.apply_and_commit(&accepted) {
            Ok(done) => done,
            Err(err) => {
                tracing::error!(error = %err, txns = accepted.len(), "group commit failed");
                for req in accepted {
                    drop(req.reply.send(Err(dup(&err))));
                }
                return;
            }
        };
        self.revision = revision;

        // Publish before answering: once a caller hears "committed", a watch
        // it opens must not then receive that same commit.
        let watched = self.hub.has_watchers();
        let mut events = Vec::new();
        let mut replies = Vec::with_capacity(accepted.len());
        for (req, verdict) in accepted.into_iter().zip(verdicts) {
            let outcome = match verdict {
                Verdict::Conflict => TxnOutcome::Conflict,
                Verdict::Committed { revision, changed } => {
                    if watched {
                        apply::into_events(req.txn, revision, &changed, &mut events);
                    }
                    TxnOutcome::Committed { revision }
                }
            };
            replies.push((req.reply, outcome));
        }
        self.hub.publish(events);
        for (reply, outcome) in replies {
            drop(reply.send(Ok(outcome)));
        }
    }

    /// Evaluate and apply the batch in one write transaction and make it
    /// durable. Returns each transaction's verdict and the new revision.
    fn apply_and_commit(&self, batch: &[Request]) -> Result<(Vec<Verdict>, u64), StoreError> {
        let mut wtx = self.db.begin_write().map_err(store_err)?;
        wtx.set_durability(Durability::Immediate)
            .map_err(store_err)?;
        let mut revision = self.revision;
        let mut verdicts = Vec::with_capacity(batch.len());
        {
            let mut kv = wtx.open_table(KV).map_err(store_err)?;
            let mut state = TableState { kv: &mut kv };
            for req in batch {
                verdicts.push(apply::apply_txn(&mut state, &req.txn, &mut revision)?);
            }
        }
        if revision == self.revision {
            // Only conflicts and op-less transactions: nothing to make
            // durable, and what they observed was already committed.
            wtx.abort().map_err(store_err)?;
            return Ok((verdicts, revision));
        }
        {
            let mut meta = wtx.open_table(META).map_err(store_err)?;
            meta.insert(REVISION_KEY, revision).map_err(store_err)?;
        }
        wtx.commit().map_err(store_err)?;
        Ok((verdicts, revision))
    }
}

#[async_trait]
impl Store for RedbStore {
    async fn get(&self, key: &str) -> Result<Option<Versioned>, StoreError> {
        let key = key.to_owned();
        self.read(move |db| {
            let rtx = db.begin_read().map_err(store_err)?;
            let kv = rtx.open_table(KV).map_err(store_err)?;
            let found = kv.get(key.as_str()).map_err(store_err)?;
            Ok(found.map(|g| {
                let (mod_revision, value) = g.value();
                Versioned {
                    value: value.to_vec(),
                    mod_revision,
                }
            }))
        })
        .await
    }

    async fn list(
        &self,
        prefix: &str,
        start_after: Option<&str>,
        limit: usize,
    ) -> Result<Page, StoreError> {
        let limit = apply::page_limit(limit);
        let prefix = prefix.to_owned();
        let start_after = start_after.map(str::to_owned);
        self.read(move |db| {
            let rtx = db.begin_read().map_err(store_err)?;
            let kv = rtx.open_table(KV).map_err(store_err)?;
            let start = apply::list_start(&prefix, start_after.as_deref());
            let mut items: Vec<(String, Versioned)> = Vec::new();
            let mut next_start_after = None;
            for entry in kv
                .range::<&str>((start, Bound::Unbounded))
                .map_err(store_err)?
            {
                let (k, v) = entry.map_err(store_err)?;
                let key = k.value();
                if !key.starts_with(prefix.as_str()) {
                    break;
                }
                if items.len() == limit {
                    next_start_after = items.last().map(|(k, _)| k.clone());
                    break;
                }
                let (mod_revision, value) = v.value();
                items.push((
                    key.to_owned(),
                    Versioned {
                        value: value.to_vec(),
                        mod_revision,
                    },
                ));
            }
            Ok(Page {
                items,
                next_start_after,
            })
        })
        .await
    }

    async fn txn(&self, txn: Txn) -> Result<TxnOutcome, StoreError> {
        let requests = self.requests.as_ref().ok_or(StoreError::Closed)?;
        let (reply, answer) = oneshot::channel();
        requests
            .send(Request { txn, reply })
            .map_err(|_| StoreError::Closed)?;
        // A dropped reply means the writer thread is gone (it panicked).
        answer.await.map_err(|_| StoreError::Closed)?
    }

    async fn revision(&self) -> Result<u64, StoreError> {
        self.read(|db| {
            let rtx = db.begin_read().map_err(store_err)?;
            let meta = rtx.open_table(META).map_err(store_err)?;
            let stored = meta.get(REVISION_KEY).map_err(store_err)?;
            Ok(stored.map(|g| g.value()).unwrap_or(0))
        })
        .await
    }

    fn watch(&self, prefix: &str) -> WatchStream {
        self.hub.subscribe(prefix)
    }
}
