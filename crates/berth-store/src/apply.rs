//! Transaction semantics shared by every backend, so that they cannot drift
//! apart: a backend only supplies key lookups and writes against whatever
//! state it evaluates in (a map under a lock, a redb write transaction).

use crate::{Compare, Op, StoreError, Txn, WatchEvent, WatchEventKind};

/// The state a transaction is evaluated against and applied to.
pub(crate) trait State {
    fn mod_revision(&mut self, key: &str) -> Result<Option<u64>, StoreError>;
    fn put(&mut self, key: &str, value: &[u8], revision: u64) -> Result<(), StoreError>;
    /// Returns whether the key existed.
    fn delete(&mut self, key: &str) -> Result<bool, StoreError>;
}

/// What applying a transaction did, before it is known to be durable.
#[derive(Debug)]
pub(crate) enum Verdict {
    Conflict,
    Committed {
        revision: u64,
        /// Per op: whether it changed anything (deleting a missing key does
        /// not), i.e. whether watchers hear about it.
        changed: Vec<bool>,
    },
}

/// Check `txn`'s compares and, if they all hold, apply its ops at the next
/// revision, advancing `revision`. On `Err` the state may be half-written;
/// the caller must discard it (redb: abort the write transaction).
pub(crate) fn apply_txn<S: State>(
    state: &mut S,
    txn: &Txn,
    revision: &mut u64,
) -> Result<Verdict, StoreError> {
    for compare in &txn.compares {
        let Compare::ModRevision { key, expected } = compare;
        if state.mod_revision(key)? != *expected {
            return Ok(Verdict::Conflict);
        }
    }
    if txn.ops.is_empty() {
        return Ok(Verdict::Committed {
            revision: *revision,
            changed: Vec::new(),
        });
    }
    // Every transaction with ops gets its own revision, even if its ops turn
    // out to change nothing, so `Committed { revision }` is always unique.
    let next = *revision + 1;
    let mut changed = Vec::with_capacity(txn.ops.len());
    for op in &txn.ops {
        match op {
            Op::Put { key, value } => {
                state.put(key, value, next)?;
                changed.push(true);
            }
            Op::Delete { key } => changed.push(state.delete(key)?),
        }
    }
    *revision = next;
    Ok(Verdict::Committed {
        revision: next,
        changed,
    })
}

/// Turn an applied transaction into watch events, moving the values out of it.
pub(crate) fn into_events(txn: Txn, revision: u64, changed: &[bool], out: &mut Vec<WatchEvent>) {
    for (op, &changed) in txn.ops.into_iter().zip(changed) {
        if !changed {
            continue;
        }
        out.push(match op {
            Op::Put { key, value } => WatchEvent {
                revision,
                key,
                kind: WatchEventKind::Put { value },
            },
            Op::Delete { key } => WatchEvent {
                revision,
                key,
                kind: WatchEventKind::Delete,
            },
        });
    }
}

/// The lower bound of a prefix listing: the tighter of "at or after the
/// prefix" and "strictly after `start_after`".
pub(crate) fn list_start<'a>(
    prefix: &'a str,
    start_after: Option<&'a str>,
) -> std::ops::Bound<&'a str> {
    match start_after {
        Some(after) if after >= prefix => std::ops::Bound::Excluded(after),
        _ => std::ops::Bound::Included(prefix),
    }
}

/// A page of at most `limit` items, treating `limit == 0` as 1: a page that
/// may hold nothing could not tell callers where to continue, and
/// `list_all`-style loops would spin.
pub(crate) fn page_limit(limit: usize) -> usize {
    limit.max(1)
}
