//! Both backends against a deliberately naive model on random operation
//! sequences: same outcomes, same reads, same listing pages, same watch
//! events.

use std::collections::BTreeMap;
use std::sync::Arc;

use berth_store::memory::MemoryStore;
use berth_store::redb_backend::RedbStore;
use berth_store::{Page, Store, Txn, TxnOutcome, Versioned, WatchEvent, WatchEventKind};
use proptest::prelude::*;

const KEYS: &[&str] = &["", "a", "a/", "a/1", "a/2", "a/2/x", "a0", "b/1"];
const PREFIXES: &[&str] = &["", "a", "a/", "a/2", "b/", "c"];

#[derive(Debug, Clone)]
enum Expect {
    /// Whatever the model says the key is at now (so usually holds).
    Current,
    Absent,
    At(u64),
}

#[derive(Debug, Clone)]
enum Step {
    Txn {
        compares: Vec<(usize, Expect)>,
        ops: Vec<(usize, Option<u8>)>,
    },
    Get(usize),
    List {
        prefix: usize,
        after: Option<usize>,
        limit: usize,
    },
}

fn step() -> impl Strategy<Value = Step> {
    let key = 0..KEYS.len();
    let expect = prop_oneof![
        3 => Just(Expect::Current),
        1 => Just(Expect::Absent),
        1 => (0u64..12).prop_map(Expect::At),
    ];
    let op = (key.clone(), proptest::option::weighted(0.7, any::<u8>()));
    prop_oneof![
        4 => (proptest::collection::vec((key.clone(), expect), 0..3),
              proptest::collection::vec(op, 0..4))
            .prop_map(|(compares, ops)| Step::Txn { compares, ops }),
        1 => key.clone().prop_map(Step::Get),
        1 => (0..PREFIXES.len(), proptest::option::of(key), 0usize..4)
            .prop_map(|(prefix, after, limit)| Step::List { prefix, after, limit }),
    ]
}

#[derive(Default)]
struct Model {
    map: BTreeMap<String, Versioned>,
    revision: u64,
    events: Vec<WatchEvent>,
}

impl Model {
    fn txn(&mut self, txn: &Txn) -> TxnOutcome {
        for berth_store::Compare::ModRevision { key, expected } in &txn.compares {
            if self.map.get(key).map(|v| v.mod_revision) != *expected {
                return TxnOutcome::Conflict;
            }
        }
        if txn.ops.is_empty() {
            return TxnOutcome::Committed {
                revision: self.revision,
            };
        }
        self.revision += 1;
        let revision = self.revision;
        for op in &txn.ops {
            match op {
                berth_store::Op::Put { key, value } => {
                    self.map.insert(
                        key.clone(),
                        Versioned {
                            value: value.clone(),
                            mod_revision: revision,
                        },
                    );
                    self.events.push(WatchEvent {
                        revision,
                        key: key.clone(),
                        kind: WatchEventKind::Put {
                            value: value.clone(),
                        },
                    });
                }
                berth_store::Op::Delete { key } => {
                    if self.map.remove(key).is_some() {
                        self.events.push(WatchEvent {
                            revision,
                            key: key.clone(),
                            kind: WatchEventKind::Delete,
                        });
                    }
                }
            }
        }
        TxnOutcome::Committed { revision }
    }

    fn list(&self, prefix: &str, after: Option<&str>, limit: usize) -> Page {
        let limit = limit.max(1);
        let all: Vec<_> = self
            .map
            .iter()
            .filter(|(k, _)| k.starts_with(prefix) && after.is_none_or(|a| k.as_str() > a))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let more = all.len() > limit;
        let items: Vec<_> = all.into_iter().take(limit).collect();
        let next_start_after = if more {
            items.last().map(|(k, _)| k.clone())
        } else {
            None
        };
        Page {
            items,
            next_start_after,
        }
    }
}

fn build_txn(model: &Model, compares: &[(usize, Expect)], ops: &[(usize, Option<u8>)]) -> Txn {
    let mut txn = Txn::new();
    for (k, expect) in compares {
        let key = KEYS[*k];
        let expected = match expect {
            Expect::Current => model.map.get(key).map(|v| v.mod_revision),
            Expect::Absent => None,
            Expect::At(rev) => Some(*rev),
        };
        txn = txn.require(key, expected);
    }
    for (k, value) in ops {
        txn = match value {
            Some(v) => txn.put(KEYS[*k], vec![*v]),
            None => txn.delete(KEYS[*k]),
        };
    }
    txn
}

async fn run(steps: Vec<Step>) {
    let dir = tempfile::tempdir().unwrap();
    let stores: Vec<(&str, Arc<dyn Store>)> = vec![
        ("memory", Arc::new(MemoryStore::new())),
        (
            "redb",
            Arc::new(RedbStore::open(&dir.path().join("s.redb")).unwrap()),
        ),
    ];
    let mut watches: Vec<_> = stores.iter().map(|(_, s)| s.watch("")).collect();
    let mut model = Model::default();
    for step in &steps {
        match step {
            Step::Txn { compares, ops } => {
                let txn = build_txn(&model, compares, ops);
                let want = model.txn(&txn);
                for (name, s) in &stores {
                    assert_eq!(s.txn(txn.clone()).await.unwrap(), want, "{name}: {txn:?}");
                }
            }
            Step::Get(k) => {
                let want = model.map.get(KEYS[*k]).cloned();
                for (name, s) in &stores {
                    assert_eq!(
                        s.get(KEYS[*k]).await.unwrap(),
                        want,
                        "{name}: get {:?}",
                        KEYS[*k]
                    );
                }
            }
            Step::List {
                prefix,
                after,
                limit,
            } => {
                let (prefix, after) = (PREFIXES[*prefix], after.map(|k| KEYS[k]));
                let want = model.list(prefix, after, *limit);
                for (name, s) in &stores {
                    assert_eq!(
                        s.list(prefix, after, *limit).await.unwrap(),
                        want,
                        "{name}: list"
                    );
                }
            }
        }
    }
    for (name, s) in &stores {
        assert_eq!(
            s.revision().await.unwrap(),
            model.revision,
            "{name}: revision"
        );
    }
    // Closing the stores ends the watches, so draining them terminates.
    drop(stores);
    for (w, name) in watches.iter_mut().zip(["memory", "redb"]) {
        let mut seen = Vec::new();
        while let Some(ev) = w.next().await {
            seen.push(ev);
        }
        assert_eq!(seen, model.events, "{name}: watch events");
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]

    #[test]
    fn backends_match_model(steps in proptest::collection::vec(step(), 1..40)) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(run(steps));
    }
}
