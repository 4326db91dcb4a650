//! The contract every backend must meet. Each check is a plain async fn over
//! `Arc<dyn Store>`; `contract_tests!` instantiates all of them per backend.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use berth_store::memory::MemoryStore;
use berth_store::redb_backend::RedbStore;
use berth_store::{Store, Txn, TxnOutcome, WatchEvent, WatchEventKind, WatchStream, list_all};

/// A store plus whatever must outlive it (the redb file's directory).
/// Fields drop in order: the store closes before its directory is removed.
struct Fixture {
    store: Arc<dyn Store>,
    _dir: Option<tempfile::TempDir>,
}

fn memory() -> Fixture {
    Fixture {
        store: Arc::new(MemoryStore::new()),
        _dir: None,
    }
}

fn redb() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let store = RedbStore::open(&dir.path().join("store.redb")).unwrap();
    Fixture {
        store: Arc::new(store),
        _dir: Some(dir),
    }
}

macro_rules! contract_tests {
    ($backend:ident: $($check:ident),* $(,)?) => {
        mod $backend {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $check() {
                    super::$check(super::$backend()).await;
                }
            )*
        }
    };
}

macro_rules! all_contract_tests {
    ($($backend:ident),*) => {
        $(contract_tests!($backend:
            get_put_delete,
            compare_success_and_conflict,
            conflict_writes_nothing,
            txn_without_ops,
            revision_is_monotonic_and_is_mod_revision,
            list_is_ordered_and_prefix_isolated,
            pagination_follows_next_start_after,
            start_after_outside_prefix,
            limit_zero_still_makes_progress,
            delete_missing_key_is_noop,
            last_op_on_a_key_wins,
            large_and_empty_values_round_trip,
            watch_sees_changes_under_prefix_in_order,
            watch_starts_at_call_time,
            watch_ends_when_store_dropped,
            concurrent_counter_with_retry_is_exact,
            concurrent_disjoint_writes_get_distinct_revisions,
        );)*
    };
}

all_contract_tests!(memory, redb);

fn committed(outcome: TxnOutcome) -> u64 {
    match outcome {
        TxnOutcome::Committed { revision } => revision,
        TxnOutcome::Conflict => panic!("unexpected conflict"),
    }
}

async fn put(store: &dyn Store, key: &str, value: &[u8]) -> u64 {
    committed(
        store
            .txn(Txn::new().put(key, value.to_vec()))
            .await
            .unwrap(),
    )
}

async fn keys(store: &dyn Store, prefix: &str) -> Vec<String> {
    list_all(store, prefix)
        .await
        .unwrap()
        .into_iter()
        .map(|(k, _)| k)
        .collect()
}

/// The next event, failing the test instead of hanging if none comes.
async fn next_event(w: &mut WatchStream) -> Option<WatchEvent> {
    tokio::time::timeout(Duration::from_secs(5), w.next())
        .await
        .expect("watch event timed out")
}

async fn assert_no_event(w: &mut WatchStream) {
    let r = tokio::time::timeout(Duration::from_millis(50), w.next()).await;
    assert!(r.is_err(), "unexpected watch event {r:?}");
}

fn put_event(revision: u64, key: &str, value: &[u8]) -> WatchEvent {
    WatchEvent {
        revision,
        key: key.into(),
        kind: WatchEventKind::Put {
            value: value.to_vec(),
        },
    }
}

fn delete_event(revision: u64, key: &str) -> WatchEvent {
    WatchEvent {
        revision,
        key: key.into(),
        kind: WatchEventKind::Delete,
    }
}

async fn get_put_delete(fx: Fixture) {
    let s = &*fx.store;
    assert_eq!(s.get("k").await.unwrap(), None);
    let r1 = put(s, "k", b"one").await;
    let got = s.get("k").await.unwrap().unwrap();
    assert_eq!((got.value.as_slice(), got.mod_revision), (&b"one"[..], r1));
    let r2 = put(s, "k", b"two").await;
    assert!(r2 > r1);
    let got = s.get("k").await.unwrap().unwrap();
    assert_eq!((got.value.as_slice(), got.mod_revision), (&b"two"[..], r2));
    committed(s.txn(Txn::new().delete("k")).await.unwrap());
    assert_eq!(s.get("k").await.unwrap(), None);
}

async fn compare_success_and_conflict(fx: Fixture) {
    let s = &*fx.store;
    // Absent-compare on a missing key holds: create-if-absent.
    let r1 = committed(
        s.txn(Txn::new().require("k", None).put("k", b"1".to_vec()))
            .await
            .unwrap(),
    );
    // ...and fails once the key exists.
    let again = s
        .txn(Txn::new().require("k", None).put("k", b"x".to_vec()))
        .await
        .unwrap();
    assert_eq!(again, TxnOutcome::Conflict);
    // Matching mod_revision holds.
    let r2 = committed(
        s.txn(Txn::new().require("k", Some(r1)).put("k", b"2".to_vec()))
            .await
            .unwrap(),
    );
    // A stale one fails.
    let stale = s
        .txn(Txn::new().require("k", Some(r1)).put("k", b"3".to_vec()))
        .await
        .unwrap();
    assert_eq!(stale, TxnOutcome::Conflict);
    // 0 is never a mod_revision.
    let zero = s
        .txn(Txn::new().require("k", Some(0)).put("k", b"3".to_vec()))
        .await
        .unwrap();
    assert_eq!(zero, TxnOutcome::Conflict);
    // A present-compare on a missing key fails.
    let missing = s
        .txn(Txn::new().require("nope", Some(r2)).put("k", b"3".to_vec()))
        .await
        .unwrap();
    assert_eq!(missing, TxnOutcome::Conflict);
    // All compares must hold, not just one.
    let mixed = s
        .txn(
            Txn::new()
                .require("k", Some(r2))
                .require("nope", Some(1))
                .put("k", b"3".to_vec()),
        )
        .await
        .unwrap();
    assert_eq!(mixed, TxnOutcome::Conflict);
    let both = s
        .txn(
            Txn::new()
                .require("k", Some(r2))
                .require("nope", None)
                .put("k", b"4".to_vec()),
        )
        .await
        .unwrap();
    let r3 = committed(both);
    assert_eq!(s.get("k").await.unwrap().unwrap().value, b"4");
    assert_eq!(s.get("k").await.unwrap().unwrap().mod_revision, r3);
}

async fn conflict_writes_nothing(fx: Fixture) {
    let s = &*fx.store;
    let r1 = put(s, "k", b"v").await;
    let mut w = s.watch("");
    let txn = Txn::new()
        .require("k", Some(r1 + 100))
        .put("k", b"changed".to_vec())
        .put("other", b"new".to_vec())
        .delete("k");
    assert_eq!(s.txn(txn).await.unwrap(), TxnOutcome::Conflict);
    let got = s.get("k").await.unwrap().unwrap();
    assert_eq!((got.value.as_slice(), got.mod_revision), (&b"v"[..], r1));
    assert_eq!(s.get("other").await.unwrap(), None);
    assert_eq!(s.revision().await.unwrap(), r1);
    assert_no_event(&mut w).await;
}

async fn txn_without_ops(fx: Fixture) {
    let s = &*fx.store;
    assert_eq!(
        s.txn(Txn::new()).await.unwrap(),
        TxnOutcome::Committed { revision: 0 }
    );
    let r1 = put(s, "k", b"v").await;
    let read_only = s.txn(Txn::new().require("k", Some(r1))).await.unwrap();
    assert_eq!(read_only, TxnOutcome::Committed { revision: r1 });
    assert_eq!(s.revision().await.unwrap(), r1);
    let failing = s.txn(Txn::new().require("k", None)).await.unwrap();
    assert_eq!(failing, TxnOutcome::Conflict);
    assert_eq!(s.revision().await.unwrap(), r1);
}

async fn revision_is_monotonic_and_is_mod_revision(fx: Fixture) {
    let s = &*fx.store;
    assert_eq!(s.revision().await.unwrap(), 0);
    let mut last = 0;
    for i in 0..20u32 {
        let rev = put(s, &format!("k{}", i % 3), &i.to_le_bytes()).await;
        assert_eq!(rev, last + 1, "each txn with ops bumps the revision by one");
        assert_eq!(s.revision().await.unwrap(), rev);
        assert_eq!(
            s.get(&format!("k{}", i % 3))
                .await
                .unwrap()
                .unwrap()
                .mod_revision,
            rev
        );
        last = rev;
    }
    // All keys written by one txn share its revision.
    let txn = Txn::new().put("x", vec![1]).put("y", vec![2]).delete("k0");
    let rev = committed(s.txn(txn).await.unwrap());
    assert_eq!(rev, last + 1);
    assert_eq!(s.get("x").await.unwrap().unwrap().mod_revision, rev);
    assert_eq!(s.get("y").await.unwrap().unwrap().mod_revision, rev);
    assert_eq!(s.get("k0").await.unwrap(), None);
}

async fn list_is_ordered_and_prefix_isolated(fx: Fixture) {
    let s = &*fx.store;
    for k in [
        "a/2", "b/1", "a/10", "a0", "a", "a/", "a/1", "a/é", "a/z", "a/1/x",
    ] {
        put(s, k, k.as_bytes()).await;
    }
    // Byte order: "a/z" (0x7a) sorts before "a/é" (0xc3 0xa9).
    assert_eq!(
        keys(s, "a/").await,
        ["a/", "a/1", "a/1/x", "a/10", "a/2", "a/z", "a/é"]
    );
    assert_eq!(keys(s, "a/1").await, ["a/1", "a/1/x", "a/10"]);
    assert_eq!(keys(s, "b/").await, ["b/1"]);
    assert_eq!(keys(s, "c/").await, Vec::<String>::new());
    let all = keys(s, "").await;
    let mut sorted = all.clone();
    sorted.sort();
    assert_eq!(all, sorted);
    assert_eq!(all.len(), 10);
    let page = s.list("a/", None, 100).await.unwrap();
    assert_eq!(page.next_start_after, None);
    for (k, v) in page.items {
        assert_eq!(v.value, k.as_bytes());
    }
}

async fn pagination_follows_next_start_after(fx: Fixture) {
    let s = &*fx.store;
    // Several keys per txn keeps this quick on the fsyncing backend.
    let mut expected = Vec::new();
    for chunk in 0..25 {
        let mut txn = Txn::new();
        for j in 0..10 {
            let key = format!("p/{:04}", chunk * 10 + j);
            txn = txn.put(key.clone(), key.clone().into_bytes());
            expected.push(key);
        }
        committed(s.txn(txn).await.unwrap());
    }
    put(s, "p0", b"outside").await;
    put(s, "o/zzz", b"outside").await;
    for limit in [1, 7, 10, 250, 1000] {
        let mut seen = Vec::new();
        let mut after: Option<String> = None;
        let mut pages = 0;
        loop {
            let page = s.list("p/", after.as_deref(), limit).await.unwrap();
            assert!(page.items.len() <= limit);
            pages += 1;
            seen.extend(page.items.into_iter().map(|(k, _)| k));
            match page.next_start_after {
                Some(k) => {
                    assert_eq!(
                        Some(&k),
                        seen.last(),
                        "continuation is the last key returned"
                    );
                    after = Some(k);
                }
                None => break,
            }
        }
        assert_eq!(seen, expected, "limit {limit}");
        // A full last page must not leave an empty trailing page.
        assert_eq!(pages, expected.len().div_ceil(limit), "limit {limit}");
    }
    assert_eq!(keys(s, "p/").await, expected);
}

async fn start_after_outside_prefix(fx: Fixture) {
    let s = &*fx.store;
    for k in ["a", "b/1", "b/2", "c"] {
        put(s, k, b"v").await;
    }
    let before = s.list("b/", Some("a"), 10).await.unwrap();
    assert_eq!(before.items.len(), 2);
    let past = s.list("b/", Some("b0"), 10).await.unwrap();
    assert!(past.items.is_empty());
    assert_eq!(past.next_start_after, None);
    let middle = s.list("b/", Some("b/1"), 10).await.unwrap();
    assert_eq!(
        middle
            .items
            .iter()
            .map(|(k, _)| k.as_str())
            .collect::<Vec<_>>(),
        ["b/2"]
    );
}

async fn limit_zero_still_makes_progress(fx: Fixture) {
    let s = &*fx.store;
    put(s, "k/1", b"v").await;
    put(s, "k/2", b"v").await;
    let page = s.list("k/", None, 0).await.unwrap();
    assert_eq!(page.items.len(), 1);
    assert_eq!(page.next_start_after.as_deref(), Some("k/1"));
}

async fn delete_missing_key_is_noop(fx: Fixture) {
    let s = &*fx.store;
    let r1 = put(s, "present", b"v").await;
    let mut w = s.watch("");
    let r2 = committed(s.txn(Txn::new().delete("absent")).await.unwrap());
    // The txn had ops, so it gets a revision, but changes nothing.
    assert_eq!(r2, r1 + 1);
    assert_eq!(s.get("absent").await.unwrap(), None);
    assert_eq!(s.get("present").await.unwrap().unwrap().mod_revision, r1);
    assert_no_event(&mut w).await;
}

async fn last_op_on_a_key_wins(fx: Fixture) {
    let s = &*fx.store;
    let txn = Txn::new()
        .put("k", b"1".to_vec())
        .delete("k")
        .put("j", b"1".to_vec());
    let txn = txn.put("j", b"2".to_vec());
    committed(s.txn(txn).await.unwrap());
    assert_eq!(s.get("k").await.unwrap(), None);
    assert_eq!(s.get("j").await.unwrap().unwrap().value, b"2");
}

async fn large_and_empty_values_round_trip(fx: Fixture) {
    let s = &*fx.store;
    let big: Vec<u8> = (0..(2 * 1024 * 1024)).map(|i| (i % 251) as u8).collect();
    put(s, "big", &big).await;
    put(s, "empty", b"").await;
    put(s, "", b"empty key").await;
    assert_eq!(s.get("big").await.unwrap().unwrap().value, big);
    assert_eq!(s.get("empty").await.unwrap().unwrap().value, b"");
    assert_eq!(s.get("").await.unwrap().unwrap().value, b"empty key");
    assert_eq!(keys(s, "").await, ["", "big", "empty"]);
}

async fn watch_sees_changes_under_prefix_in_order(fx: Fixture) {
    let s = &*fx.store;
    let mut w = s.watch("a/");
    let r1 = put(s, "a/1", b"x").await;
    put(s, "b/1", b"ignored").await;
    put(s, "a0", b"ignored").await;
    let r4 = committed(
        s.txn(
            Txn::new()
                .put("a/2", b"y".to_vec())
                .delete("a/1")
                .delete("a/missing"),
        )
        .await
        .unwrap(),
    );
    committed(s.txn(Txn::new().delete("a/1")).await.unwrap());
    let r6 = put(s, "a/2", b"z").await;
    assert_eq!(next_event(&mut w).await, Some(put_event(r1, "a/1", b"x")));
    assert_eq!(next_event(&mut w).await, Some(put_event(r4, "a/2", b"y")));
    assert_eq!(next_event(&mut w).await, Some(delete_event(r4, "a/1")));
    assert_eq!(next_event(&mut w).await, Some(put_event(r6, "a/2", b"z")));
    assert_no_event(&mut w).await;
}

async fn watch_starts_at_call_time(fx: Fixture) {
    let s = &*fx.store;
    put(s, "k", b"before").await;
    let mut w = s.watch("k");
    let r = put(s, "k", b"after").await;
    assert_eq!(next_event(&mut w).await, Some(put_event(r, "k", b"after")));
    assert_no_event(&mut w).await;
}

async fn watch_ends_when_store_dropped(fx: Fixture) {
    let mut w = fx.store.watch("");
    let r = put(&*fx.store, "k", b"v").await;
    drop(fx);
    assert_eq!(next_event(&mut w).await, Some(put_event(r, "k", b"v")));
    assert_eq!(next_event(&mut w).await, None);
}

async fn concurrent_counter_with_retry_is_exact(fx: Fixture) {
    const TASKS: u64 = 32;
    const EACH: u64 = 8;
    let store = fx.store.clone();
    let mut handles = Vec::new();
    for _ in 0..TASKS {
        let store = store.clone();
        handles.push(tokio::spawn(async move {
            let mut revisions = Vec::new();
            for _ in 0..EACH {
                loop {
                    let current = store.get("counter").await.unwrap();
                    let (n, expected) = match &current {
                        Some(v) => (
                            u64::from_le_bytes(v.value[..].try_into().unwrap()),
                            Some(v.mod_revision),
                        ),
                        None => (0, None),
                    };
                    let txn = Txn::new()
                        .require("counter", expected)
                        .put("counter", (n + 1).to_le_bytes().to_vec());
                    match store.txn(txn).await.unwrap() {
                        TxnOutcome::Committed { revision } => {
                            revisions.push(revision);
                            break;
                        }
                        TxnOutcome::Conflict => continue,
                    }
                }
            }
            revisions
        }));
    }
    let mut all = HashSet::new();
    for h in handles {
        for rev in h.await.unwrap() {
            assert!(all.insert(rev), "revision {rev} handed out twice");
        }
    }
    let got = store.get("counter").await.unwrap().unwrap();
    assert_eq!(
        u64::from_le_bytes(got.value[..].try_into().unwrap()),
        TASKS * EACH
    );
    assert_eq!(got.mod_revision, TASKS * EACH);
    assert_eq!(store.revision().await.unwrap(), TASKS * EACH);
}

async fn concurrent_disjoint_writes_get_distinct_revisions(fx: Fixture) {
    const TASKS: usize = 64;
    let store = fx.store.clone();
    let mut w = store.watch("d/");
    let handles: Vec<_> = (0..TASKS)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move { put(&*store, &format!("d/{i:03}"), &[i as u8]).await })
        })
        .collect();
    let mut revisions = Vec::new();
    for h in handles {
        revisions.push(h.await.unwrap());
    }
    revisions.sort();
    assert_eq!(revisions, (1..=TASKS as u64).collect::<Vec<_>>());
    // Watchers get them in revision order, each with its own key.
    let mut last = 0;
    for _ in 0..TASKS {
        let ev = next_event(&mut w).await.unwrap();
        assert_eq!(ev.revision, last + 1);
        last = ev.revision;
        let stored = store.get(&ev.key).await.unwrap().unwrap();
        assert_eq!(stored.mod_revision, ev.revision);
    }
}

#[tokio::test]
async fn redb_reopen_keeps_everything() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.redb");
    let (r1, r2) = {
        let store = RedbStore::open(&path).unwrap();
        let r1 = put(&store, "a/1", b"one").await;
        let r2 = committed(
            store
                .txn(
                    Txn::new()
                        .put("a/2", b"two".to_vec())
                        .put("b", b"bee".to_vec()),
                )
                .await
                .unwrap(),
        );
        put(&store, "gone", b"x").await;
        committed(store.txn(Txn::new().delete("gone")).await.unwrap());
        (r1, r2)
    };
    let store = RedbStore::open(&path).unwrap();
    assert_eq!(store.revision().await.unwrap(), r2 + 2);
    let a1 = store.get("a/1").await.unwrap().unwrap();
    assert_eq!((a1.value.as_slice(), a1.mod_revision), (&b"one"[..], r1));
    assert_eq!(store.get("b").await.unwrap().unwrap().mod_revision, r2);
    assert_eq!(store.get("gone").await.unwrap(), None);
    assert_eq!(keys(&store, "").await, ["a/1", "a/2", "b"]);
    // Revisions continue from where they were, never reused.
    assert_eq!(put(&store, "c", b"see").await, r2 + 3);
}

#[tokio::test]
async fn redb_second_open_of_same_file_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.redb");
    let _first = RedbStore::open(&path).unwrap();
    assert!(RedbStore::open(&path).is_err());
}

#[tokio::test]
async fn redb_garbage_file_is_an_error_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.redb");
    std::fs::write(&path, vec![0xAB; 64 * 1024]).unwrap();
    assert!(RedbStore::open(&path).is_err());
}
