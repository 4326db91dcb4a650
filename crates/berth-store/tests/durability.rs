//! Acknowledged means durable: a writer process is SIGKILLed mid-flight and
//! every write it had been told was committed must be there on reopen.
//!
//! The writer is this same test binary re-executed with `CHILD_ENV` set, so
//! no helper binary is needed; without the variable the child test is a
//! no-op.

use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use berth_store::redb_backend::RedbStore;
use berth_store::{Store, Txn, TxnOutcome};

const CHILD_ENV: &str = "BERTH_STORE_DURABILITY_CHILD_DB";
const WRITERS: u64 = 64;

fn key(n: u64) -> String {
    format!("k/{n:010}")
}

fn value(n: u64) -> Vec<u8> {
    format!("value-{n}").into_bytes()
}

/// The child: write numbered keys from many tasks until killed, printing
/// `ack <n> ok` for each acknowledged one. The trailing `ok` lets the parent
/// reject a line cut short by the kill.
#[test]
fn durability_writer_child() {
    let Some(path) = std::env::var_os(CHILD_ENV) else {
        return;
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let store = Arc::new(RedbStore::open(&PathBuf::from(path)).unwrap());
        let next = Arc::new(AtomicU64::new(0));
        for _ in 0..WRITERS {
            let (store, next) = (store.clone(), next.clone());
            tokio::spawn(async move {
                loop {
                    let n = next.fetch_add(1, Ordering::Relaxed);
                    let txn = Txn::new().require(key(n), None).put(key(n), value(n));
                    let outcome = store.txn(txn).await.unwrap();
                    assert!(matches!(outcome, TxnOutcome::Committed { .. }));
                    let mut out = std::io::stdout().lock();
                    writeln!(out, "ack {n} ok").unwrap();
                    out.flush().unwrap();
                }
            });
        }
        std::future::pending::<()>().await;
    });
}

#[tokio::test]
async fn acknowledged_writes_survive_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.redb");
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "durability_writer_child",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, &path)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();

    // Read on a thread so the pipe keeps draining (and the child keeps
    // writing) while this thread decides when to kill.
    let stdout = child.stdout.take().unwrap();
    let (lines_tx, lines_rx) = mpsc::channel();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if lines_tx.send(line).is_err() {
                break;
            }
        }
    });

    // Start the clock at the first ack so a slow child start-up does not
    // leave us killing it before it has written anything.
    let mut acked = Vec::new();
    let first = lines_rx
        .recv_timeout(Duration::from_secs(30))
        .expect("child never acknowledged a write");
    acked.push(first);
    let deadline = Instant::now() + Duration::from_millis(300);
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        match lines_rx.recv_timeout(left) {
            Ok(line) => acked.push(line),
            Err(mpsc::RecvTimeoutError::Timeout) => break,
            Err(mpsc::RecvTimeoutError::Disconnected) => panic!("child exited early"),
        }
    }
    // Child::kill is SIGKILL on unix: no destructors, no clean shutdown.
    child.kill().unwrap();
    let status = child.wait().unwrap();
    assert!(!status.success(), "child should have died from the kill");
    reader.join().unwrap();
    // Acks flushed just before the kill are just as binding.
    acked.extend(lines_rx.try_iter());

    let acked: Vec<u64> = acked
        .iter()
        .filter_map(|line| line.strip_prefix("ack ")?.strip_suffix(" ok")?.parse().ok())
        .collect();
    assert!(!acked.is_empty());

    let store = RedbStore::open(&path).unwrap();
    for &n in &acked {
        let got = store.get(&key(n)).await.unwrap();
        let got = got.unwrap_or_else(|| panic!("acknowledged key {n} lost"));
        assert_eq!(got.value, value(n), "key {n}");
    }
    // Every stored key came from a committed txn, so revision accounts for them.
    let stored = berth_store::list_all(&store, "k/").await.unwrap();
    assert!(stored.len() >= acked.len());
    assert_eq!(store.revision().await.unwrap(), stored.len() as u64);
    eprintln!(
        "{} acknowledged, {} stored after SIGKILL",
        acked.len(),
        stored.len()
    );
}
