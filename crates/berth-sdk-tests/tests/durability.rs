//! An acknowledged write survives `kill -9`: concurrent writers create
//! clusters and register task definitions, the server is SIGKILLed while
//! they run, and after a restart on the same data dir every write that was
//! acknowledged is there. Also: a graceful restart keeps everything.

mod common;

use aws_sdk_ecs::config::retry::RetryConfig;
use aws_sdk_ecs::types::{ClusterField, ContainerDefinition, Tag, TaskDefinitionStatus};
use common::BerthServer;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const WRITERS: usize = 8;
/// Bounds on each writer's loop: it normally stops at the first failure
/// after the kill; these only keep a broken run from going on forever.
const MAX_ITERATIONS: usize = 5_000;
const MAX_RUN: Duration = Duration::from_secs(120);

#[derive(Default)]
struct Acked {
    /// Cluster names acknowledged by CreateCluster.
    clusters: Vec<String>,
    /// family -> revisions acknowledged by RegisterTaskDefinition, in order.
    revisions: BTreeMap<String, Vec<i32>>,
}

fn container() -> ContainerDefinition {
    ContainerDefinition::builder()
        .name("app")
        .image("nginx:latest")
        .memory(64)
        .build()
}

async fn writer(ecs: aws_sdk_ecs::Client, task: usize, acked: Arc<Mutex<Acked>>) {
    let started = Instant::now();
    let family = format!("fam-{task}");
    for i in 0..MAX_ITERATIONS {
        if started.elapsed() > MAX_RUN {
            return;
        }
        let name = format!("c-{task}-{i}");
        match ecs.create_cluster().cluster_name(&name).send().await {
            Ok(_) => acked.lock().unwrap().clusters.push(name),
            Err(_) => return,
        }
        match ecs
            .register_task_definition()
            .family(&family)
            .container_definitions(container())
            .send()
            .await
        {
            Ok(out) => {
                let rev = out
                    .task_definition()
                    .map(|t| t.revision())
                    .unwrap_or_default();
                acked
                    .lock()
                    .unwrap()
                    .revisions
                    .entry(family.clone())
                    .or_default()
                    .push(rev);
            }
            Err(_) => return,
        }
    }
}

async fn all_cluster_arns(ecs: &aws_sdk_ecs::Client) -> BTreeSet<String> {
    ecs.list_clusters()
        .into_paginator()
        .items()
        .send()
        .collect::<Result<Vec<_>, _>>()
        .await
        .expect("ListClusters after restart")
        .into_iter()
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_writes_survive_sigkill() {
    let mut server = BerthServer::start();
    let account = server.creds.account_id.clone();
    // No retries: a request cut off by the kill fails at once, and nothing
    // is re-sent to the restarted server.
    let ecs = aws_sdk_ecs::Client::from_conf(
        server
            .ecs_config(
                &server.creds.access_key_id,
                &server.creds.secret_access_key,
                "us-east-1",
            )
            .retry_config(RetryConfig::disabled())
            .build(),
    );
    let acked = Arc::new(Mutex::new(Acked::default()));
    let writers: Vec<_> = (0..WRITERS)
        .map(|t| tokio::spawn(writer(ecs.clone(), t, acked.clone())))
        .collect();

    // Let every writer get at least one full round acknowledged (so the test
    // cannot pass vacuously), then let them run on a while before the kill.
    let guard = Instant::now();
    loop {
        let ready = {
            let a = acked.lock().unwrap();
            a.revisions.len() == WRITERS
        };
        if ready {
            break;
        }
        assert!(
            guard.elapsed() < Duration::from_secs(60),
            "writers made no progress before the kill"
        );
        assert!(
            !writers.iter().all(|w| w.is_finished()),
            "every writer stopped before the kill"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    server.kill9();
    for w in writers {
        w.await.expect("writer task panicked");
    }
    let acked = std::mem::take(&mut *acked.lock().unwrap());
    assert!(!acked.clusters.is_empty());
    eprintln!(
        "kill -9 after {} acknowledged clusters and {} acknowledged revisions",
        acked.clusters.len(),
        acked.revisions.values().map(Vec::len).sum::<usize>()
    );

    server.restart();
    let ecs = server.ecs_client();

    // Every acknowledged cluster is listed and ACTIVE.
    let listed = all_cluster_arns(&ecs).await;
    let arn = |name: &str| format!("arn:aws:ecs:us-east-1:{account}:cluster/{name}");
    let missing: Vec<&String> = acked
        .clusters
        .iter()
        .filter(|n| !listed.contains(&arn(n)))
        .collect();
    assert!(
        missing.is_empty(),
        "acknowledged clusters lost by kill -9: {missing:?}"
    );
    for chunk in acked.clusters.chunks(100) {
        let out = ecs
            .describe_clusters()
            .set_clusters(Some(chunk.to_vec()))
            .include(ClusterField::Settings)
            .send()
            .await
            .expect("DescribeClusters after restart");
        assert!(out.failures().is_empty(), "{:?}", out.failures());
        assert_eq!(out.clusters().len(), chunk.len());
        for c in out.clusters() {
            assert_eq!(c.status(), Some("ACTIVE"), "{:?}", c.cluster_name());
        }
    }
    // At most the one write in flight per writer may have committed
    // without being acknowledged.
    let mut per_writer: BTreeMap<usize, usize> = BTreeMap::new();
    for n in &acked.clusters {
        let t: usize = n
            .split('-')
            .nth(1)
            .and_then(|t| t.parse().ok())
            .expect("c-T-I");
        *per_writer.entry(t).or_default() += 1;
    }
    for a in &listed {
        let name = a.rsplit('/').next().unwrap_or_default();
        let mut parts = name.split('-').skip(1);
        let (t, i): (usize, usize) = (
            parts.next().and_then(|t| t.parse().ok()).expect("c-T-I"),
            parts.next().and_then(|i| i.parse().ok()).expect("c-T-I"),
        );
        assert!(
            i <= per_writer.get(&t).copied().unwrap_or(0),
            "unexpected cluster {name}"
        );
    }

    // Every acknowledged revision describes, ACTIVE; acknowledged revisions
    // of a family are exactly 1..=n; the store holds 1..=m with m in {n, n+1}.
    for (family, revisions) in &acked.revisions {
        let n = revisions.len() as i32;
        assert_eq!(
            revisions,
            &(1..=n).collect::<Vec<_>>(),
            "family {family}: gaps or repeats"
        );
        for rev in revisions {
            let td = ecs
                .describe_task_definition()
                .task_definition(format!("{family}:{rev}"))
                .send()
                .await
                .unwrap_or_else(|e| panic!("acknowledged {family}:{rev} lost by kill -9: {e:?}"));
            let td = td.task_definition().expect("taskDefinition");
            assert_eq!(td.status(), Some(&TaskDefinitionStatus::Active));
            assert_eq!(td.container_definitions().len(), 1);
        }
        let stored: Vec<i32> = ecs
            .list_task_definitions()
            .family_prefix(family)
            .into_paginator()
            .items()
            .send()
            .collect::<Result<Vec<_>, _>>()
            .await
            .expect("ListTaskDefinitions")
            .iter()
            .map(|a| {
                a.rsplit(':')
                    .next()
                    .and_then(|r| r.parse().ok())
                    .expect("revision in ARN")
            })
            .collect();
        let m = stored.len() as i32;
        assert!(
            m == n || m == n + 1,
            "family {family}: acknowledged 1..={n}, stored {stored:?}"
        );
        assert_eq!(stored, (1..=m).collect::<Vec<_>>(), "family {family}");
        // And numbering carries on after the restart.
        let next = ecs
            .register_task_definition()
            .family(family)
            .container_definitions(container())
            .send()
            .await
            .expect("register after restart");
        assert_eq!(next.task_definition().map(|t| t.revision()), Some(m + 1));
    }
}

#[tokio::test]
async fn graceful_restart_keeps_everything() {
    let mut server = BerthServer::start();
    let ecs = server.ecs_client();
    ecs.create_cluster()
        .cluster_name("kept")
        .tags(Tag::builder().key("k").value("v").build())
        .send()
        .await
        .expect("CreateCluster");
    ecs.create_cluster()
        .cluster_name("gone")
        .send()
        .await
        .expect("CreateCluster");
    ecs.delete_cluster()
        .cluster("gone")
        .send()
        .await
        .expect("DeleteCluster");
    ecs.register_task_definition()
        .family("kept")
        .container_definitions(container())
        .send()
        .await
        .expect("register");

    server.terminate();
    server.restart();
    let ecs = server.ecs_client();
    let out = ecs
        .describe_clusters()
        .clusters("kept")
        .clusters("gone")
        .include(ClusterField::Tags)
        .send()
        .await
        .expect("DescribeClusters");
    let status: BTreeMap<&str, &str> = out
        .clusters()
        .iter()
        .map(|c| (c.cluster_name().unwrap(), c.status().unwrap()))
        .collect();
    assert_eq!(
        status,
        BTreeMap::from([("kept", "ACTIVE"), ("gone", "INACTIVE")])
    );
    let kept = out
        .clusters()
        .iter()
        .find(|c| c.cluster_name() == Some("kept"))
        .unwrap();
    assert_eq!(kept.tags().len(), 1);
    let td = ecs
        .describe_task_definition()
        .task_definition("kept")
        .send()
        .await
        .expect("describe");
    assert_eq!(td.task_definition().map(|t| t.revision()), Some(1));
    // The same credentials and account still work.
    let me = server
        .sts_client()
        .get_caller_identity()
        .send()
        .await
        .expect("GetCallerIdentity");
    assert_eq!(me.account(), Some(server.creds.account_id.as_str()));
}
