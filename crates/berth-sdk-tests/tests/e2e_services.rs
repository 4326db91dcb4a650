//! ECS services end to end with real containers: the service controller
//! running tasks through real agents, driven with aws-sdk-ecs.
//!
//! One host (`berth up`, images from a loopback registry): a REPLICA
//! service reaching steady state and serving HTTP, rolling updates under
//! several (minimumHealthyPercent, maximumPercent) settings watched by a
//! sampler that checks the bounds every ~100 ms, the deployment circuit
//! breaker rolling back, replacement of a stopped task, DeleteService
//! --force. Several hosts (`berth server` and `berth agent`s in network
//! namespaces, air-gapped, images loaded with `berth image load`): a DAEMON
//! service following its instances (drain, re-activate, join), and a
//! REPLICA service moving off a DRAINING instance.
//!
//! Every host has its own bridge, subnet and cgroup prefix (see
//! e2e_support), so these run in parallel with the other e2e tests.

mod common;
mod e2e_support;

use aws_sdk_ecs::types::{
    ContainerDefinition, ContainerInstanceStatus, Deployment, DeploymentCircuitBreaker, DeploymentConfiguration, HealthCheck, HealthStatus,
    KeyValuePair, PlacementStrategy, PlacementStrategyType, SchedulingStrategy, Service, Task,
};
use berth_testkit::{Registry, busybox_image};
use common::BerthServer;
use e2e_support::*;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// How long a service may take to settle (pulls, health checks every 5 s,
/// a throttled start after failures, a loaded 2-core machine).
const SETTLE: Duration = Duration::from_secs(120);

// ---------------------------------------------------------------------------
// Task definitions

/// busybox httpd on 8080 (a dynamic host port), with `VERSION` in its
/// environment so revisions differ, and optionally a health check that
/// fetches its own page (first check after the 5 s interval).
fn web(image: &str, version: &str, health_check: bool) -> ContainerDefinition {
    let mut c = httpd_builder(image)
        .memory(32)
        .environment(KeyValuePair::builder().name("VERSION").value(version).build())
        .stop_timeout(3);
    if health_check {
        c = c.health_check(
            HealthCheck::builder()
                .command("CMD-SHELL")
                .command("wget -q -O /dev/null http://127.0.0.1:8080/index.html || exit 1")
                .interval(5)
                .timeout(3)
                .retries(2)
                .build()
                .unwrap(),
        );
    }
    c.build()
}

// ---------------------------------------------------------------------------
// Services

fn deployment_config(min: i32, max: i32, breaker: bool) -> DeploymentConfiguration {
    let mut b = DeploymentConfiguration::builder().minimum_healthy_percent(min).maximum_percent(max);
    if breaker {
        b = b.deployment_circuit_breaker(DeploymentCircuitBreaker::builder().enable(true).rollback(true).build());
    }
    b.build()
}

/// CreateService: a REPLICA service of `desired` tasks of `td`.
async fn create_service(ecs: &aws_sdk_ecs::Client, name: &str, td: &str, desired: i32, config: DeploymentConfiguration) -> Service {
    ecs.create_service()
        .cluster(CLUSTER)
        .service_name(name)
        .task_definition(td)
        .desired_count(desired)
        .deployment_configuration(config)
        .send()
        .await
        .expect("CreateService")
        .service()
        .unwrap()
        .clone()
}

async fn create_replica(ecs: &aws_sdk_ecs::Client, name: &str, td: &str, desired: i32, min: i32, max: i32) -> Service {
    create_service(ecs, name, td, desired, deployment_config(min, max, false)).await
}

/// UpdateService to task definition `td`; returns the service as updated.
async fn update_task_definition(ecs: &aws_sdk_ecs::Client, name: &str, td: &str) -> Service {
    let out = ecs.update_service().cluster(CLUSTER).service(name).task_definition(td).send().await.expect("UpdateService");
    out.service().unwrap().clone()
}

/// The service's PRIMARY deployment.
fn primary_of(s: &Service) -> &Deployment {
    s.deployments().iter().find(|d| d.status() == Some("PRIMARY")).unwrap()
}

async fn describe_service(ecs: &aws_sdk_ecs::Client, name: &str) -> Service {
    let out = ecs.describe_services().cluster(CLUSTER).services(name).send().await.expect("DescribeServices");
    assert!(out.failures().is_empty(), "{:?}", out.failures());
    out.services()[0].clone()
}

/// The service in a few lines, for failure messages: status, counts,
/// deployments and the newest events.
fn summary(s: &Service) -> String {
    let mut out = format!(
        "service {} status={:?} desired={} running={} pending={} taskDefinition={:?}\n",
        s.service_name().unwrap_or_default(),
        s.status(),
        s.desired_count(),
        s.running_count(),
        s.pending_count(),
        s.task_definition().map(short_td)
    );
    for d in s.deployments() {
        out += &format!(
            "  deployment {} {:?} td={} desired={} running={} pending={} failed={} rollout={:?} ({:?})\n",
            d.id().unwrap_or_default(),
            d.status(),
            d.task_definition().map(short_td).unwrap_or_default(),
            d.desired_count(),
            d.running_count(),
            d.pending_count(),
            d.failed_tasks(),
            d.rollout_state().map(|r| r.as_str()),
            d.rollout_state_reason()
        );
    }
    out += "  events (newest first):\n";
    for e in s.events().iter().take(25) {
        out += &format!("    {}\n", e.message().unwrap_or_default());
    }
    out
}

/// `family:revision` of a task definition ARN.
fn short_td(arn: &str) -> &str {
    arn.rsplit('/').next().unwrap_or(arn)
}

fn task_id(arn: &str) -> &str {
    arn.rsplit('/').next().unwrap_or(arn)
}

fn count_events(s: &Service, needle: &str) -> usize {
    s.events().iter().filter(|e| e.message().unwrap_or_default().contains(needle)).count()
}

/// Steady as ECS means it: ACTIVE, one PRIMARY deployment, COMPLETED,
/// running = desired, nothing pending.
fn is_steady(s: &Service) -> bool {
    s.status() == Some("ACTIVE")
        && s.deployments().len() == 1
        && s.deployments()[0].status() == Some("PRIMARY")
        && s.deployments()[0].rollout_state().map(|r| r.as_str()) == Some("COMPLETED")
        && s.running_count() == s.desired_count()
        && s.pending_count() == 0
}

/// Polls DescribeServices until `pred` holds; panics with the service's
/// summary (deployments, events) and its tasks when it never does.
async fn wait_service(ecs: &aws_sdk_ecs::Client, name: &str, within: Duration, what: &str, pred: impl Fn(&Service) -> bool) -> Service {
    let deadline = Instant::now() + within;
    loop {
        let s = describe_service(ecs, name).await;
        if pred(&s) {
            return s;
        }
        if Instant::now() > deadline {
            let tasks = service_tasks(ecs, name, "RUNNING").await;
            panic!("{what}: not within {within:?}\n{}\ntasks desired RUNNING:\n{}", summary(&s), task_lines(&tasks));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Waits for steady state with every task desired RUNNING on `td`, all
/// RUNNING, and a steady-state event beyond the `seen_steady_events`
/// already there; returns the service and its tasks.
async fn wait_steady_on(ecs: &aws_sdk_ecs::Client, name: &str, td: &str, seen_steady_events: usize) -> (Service, Vec<Task>) {
    let steady_msg = format!("(service {name}) has reached a steady state.");
    let deadline = Instant::now() + SETTLE;
    loop {
        let s = describe_service(ecs, name).await;
        let tasks = service_tasks(ecs, name, "RUNNING").await;
        let ok = is_steady(&s)
            && s.deployments()[0].task_definition() == Some(td)
            && count_events(&s, &steady_msg) > seen_steady_events
            && tasks.len() == s.desired_count() as usize
            && tasks.iter().all(|t| t.last_status() == Some("RUNNING") && t.task_definition_arn() == Some(td));
        if ok {
            return (s, tasks);
        }
        if Instant::now() > deadline {
            panic!("service {name} never reached a steady state on {}\n{}\ntasks desired RUNNING:\n{}", short_td(td), summary(&s), task_lines(&tasks));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn describe_many(ecs: &aws_sdk_ecs::Client, arns: &[String]) -> Vec<Task> {
    let mut out = Vec::new();
    for chunk in arns.chunks(100) {
        let d = ecs.describe_tasks().cluster(CLUSTER).set_tasks(Some(chunk.to_vec())).send().await.expect("DescribeTasks");
        out.extend(d.tasks().iter().cloned());
    }
    out
}

async fn list_service_tasks(ecs: &aws_sdk_ecs::Client, name: &str, desired: &str) -> Vec<String> {
    let mut arns = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let out = ecs
            .list_tasks()
            .cluster(CLUSTER)
            .service_name(name)
            .desired_status(desired.into())
            .set_next_token(token.clone())
            .send()
            .await
            .expect("ListTasks");
        arns.extend(out.task_arns().iter().cloned());
        token = out.next_token().map(str::to_string);
        if token.is_none() {
            return arns;
        }
    }
}

/// The service's tasks with the given desired status (ListTasks
/// serviceName + DescribeTasks).
async fn service_tasks(ecs: &aws_sdk_ecs::Client, name: &str, desired: &str) -> Vec<Task> {
    let arns = list_service_tasks(ecs, name, desired).await;
    describe_many(ecs, &arns).await
}

fn task_lines(tasks: &[Task]) -> String {
    tasks
        .iter()
        .map(|t| {
            format!(
                "  {} td={} last={:?} desired={:?} health={:?} startedBy={:?} group={:?} instance={} stop={:?}/{:?}\n",
                task_id(t.task_arn().unwrap_or_default()),
                t.task_definition_arn().map(short_td).unwrap_or_default(),
                t.last_status(),
                t.desired_status(),
                t.health_status().map(|h| h.as_str()),
                t.started_by(),
                t.group(),
                t.container_instance_arn().map(task_id).unwrap_or_default(),
                t.stop_code().map(|c| c.as_str()),
                t.stopped_reason()
            )
        })
        .collect()
}

async fn wait_http(addr: &str) -> String {
    let mut answer = String::new();
    for _ in 0..50 {
        match http_get(addr, "/index.html") {
            Ok(a) if a.contains("hello from berth") => return a,
            Ok(a) => answer = a,
            Err(e) => answer = e.to_string(),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{addr} never served the page: {answer:?}");
}

// ---------------------------------------------------------------------------
// The bounds sampler

/// Samples a service's tasks every ~100 ms in the background and checks
/// minimumHealthyPercent and maximumPercent at each sample:
/// healthy (desired and last status RUNNING, and HEALTHY when the
/// containers have a health check) ≥ `min_healthy`, and tasks desired
/// RUNNING (PENDING + RUNNING, every deployment) ≤ `max_total`.
///
/// A sample is ListTasks, DescribeTasks, ListTasks: if a task appeared
/// between the two lists the sample is retaken, so every task desired
/// RUNNING at the DescribeTasks is in it. DescribeTasks reads task by task,
/// so a breach is confirmed by an immediate second sample before it is
/// recorded.
struct Sampler {
    stop: Arc<AtomicBool>,
    handle: tokio::task::JoinHandle<SamplerReport>,
}

#[derive(Debug, Default)]
struct SamplerReport {
    samples: usize,
    min_healthy_seen: Option<usize>,
    max_total_seen: usize,
    violations: Vec<String>,
}

struct Snapshot {
    healthy: usize,
    total: usize,
    tasks: Vec<Task>,
}

async fn snapshot(ecs: &aws_sdk_ecs::Client, name: &str, health_checked: bool) -> Snapshot {
    loop {
        let first = list_service_tasks(ecs, name, "RUNNING").await;
        let tasks = describe_many(ecs, &first).await;
        let second = list_service_tasks(ecs, name, "RUNNING").await;
        let known: HashSet<&String> = first.iter().collect();
        if second.iter().any(|a| !known.contains(a)) {
            continue;
        }
        let desired_running: Vec<&Task> = tasks.iter().filter(|t| t.desired_status() == Some("RUNNING")).collect();
        let healthy = desired_running
            .iter()
            .filter(|t| t.last_status() == Some("RUNNING"))
            .filter(|t| !health_checked || t.containers().iter().all(|c| c.health_status() == Some(&HealthStatus::Healthy)))
            .count();
        return Snapshot { healthy, total: desired_running.len(), tasks };
    }
}

impl Sampler {
    fn start(ecs: &aws_sdk_ecs::Client, name: &str, min_healthy: usize, max_total: usize, health_checked: bool) -> Sampler {
        let stop = Arc::new(AtomicBool::new(false));
        let (ecs, name, flag) = (ecs.clone(), name.to_string(), stop.clone());
        let started = Instant::now();
        let handle = tokio::spawn(async move {
            let mut report = SamplerReport::default();
            while !flag.load(Ordering::Relaxed) {
                let s = snapshot(&ecs, &name, health_checked).await;
                report.samples += 1;
                report.min_healthy_seen = Some(report.min_healthy_seen.map_or(s.healthy, |m| m.min(s.healthy)));
                report.max_total_seen = report.max_total_seen.max(s.total);
                if s.healthy < min_healthy || s.total > max_total {
                    let again = snapshot(&ecs, &name, health_checked).await;
                    if again.healthy < min_healthy || again.total > max_total {
                        report.violations.push(format!(
                            "at {:?}: healthy {} (min {min_healthy}), desired RUNNING {} (max {max_total})\n{}",
                            started.elapsed(),
                            again.healthy,
                            again.total,
                            task_lines(&again.tasks)
                        ));
                    }
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            report
        });
        Sampler { stop, handle }
    }

    async fn finish(self) -> SamplerReport {
        self.stop.store(true, Ordering::Relaxed);
        self.handle.await.expect("sampler")
    }
}

fn ceil_pct(desired: i32, pct: i32) -> usize {
    ((desired * pct + 99) / 100) as usize
}

fn floor_pct(desired: i32, pct: i32) -> usize {
    (desired * pct / 100) as usize
}

// ---------------------------------------------------------------------------
// One host

struct OneHost {
    _registry: Registry,
    host: TestHost,
    image: String,
}

async fn one_host() -> OneHost {
    let registry = Registry::start().expect("registry");
    let image = push_busybox(&registry, "demo/busybox");
    let host = TestHost::up();
    wait_instance(&host.ecs()).await;
    OneHost { _registry: registry, host, image }
}

#[tokio::test]
async fn replica_service_reaches_steady_state_and_its_tasks_serve_http() {
    let h = one_host().await;
    let ecs = h.host.ecs();
    let t0 = Instant::now();
    let td = register(&ecs, "web", None, vec![web(&h.image, "1", false)]).await;
    let created = create_replica(&ecs, "web", &td, 3, 100, 200).await;
    assert_eq!(created.status(), Some("ACTIVE"));
    let (s, tasks) = wait_steady_on(&ecs, "web", &td, 0).await;
    eprintln!("steady after {:?}", t0.elapsed());

    assert_eq!((s.desired_count(), s.running_count(), s.pending_count()), (3, 3, 0), "{}", summary(&s));
    let d = &s.deployments()[0];
    assert_eq!((d.desired_count(), d.running_count(), d.pending_count(), d.failed_tasks()), (3, 3, 0, 0), "{}", summary(&s));
    let dep_id = d.id().unwrap().to_string();
    assert!(dep_id.starts_with("ecs-svc/"), "{dep_id}");
    assert_eq!(d.rollout_state_reason(), Some(format!("ECS deployment {dep_id} completed.").as_str()), "{}", summary(&s));
    assert_eq!(count_events(&s, "(service web) has reached a steady state."), 1, "{}", summary(&s));

    let mut ports = HashSet::new();
    let mut started_ids = HashSet::new();
    for t in &tasks {
        assert_eq!(t.started_by(), Some(dep_id.as_str()), "{}", task_lines(&tasks));
        assert_eq!(t.group(), Some("service:web"));
        started_ids.insert(task_id(t.task_arn().unwrap()).to_string());
        let port = t.containers()[0].network_bindings()[0].host_port().unwrap();
        ports.insert(port);
        let answer = wait_http(&format!("127.0.0.1:{port}")).await;
        assert!(answer.contains("200 OK"), "{answer}");
    }
    assert_eq!(ports.len(), 3, "each task has its own host port");
    // "has started N tasks: (task ID) ..." names exactly the service's tasks.
    let mut named = HashSet::new();
    for e in s.events() {
        let m = e.message().unwrap_or_default();
        if m.starts_with("(service web) has started ") {
            for part in m.split("(task ").skip(1) {
                named.insert(part.split(')').next().unwrap().to_string());
            }
        }
    }
    assert_eq!(named, started_ids, "{}", summary(&s));
    let listed = ecs.list_services().cluster(CLUSTER).send().await.unwrap();
    assert_eq!(listed.service_arns().len(), 1);
}

/// UpdateService to a new revision of 4 health-checked tasks under
/// (min, max), with the sampler checking both bounds throughout.
async fn rolling_update(min: i32, max: i32) {
    let h = one_host().await;
    let ecs = h.host.ecs();
    let name = format!("roll-{min}-{max}");
    let desired = 4;
    let td1 = register(&ecs, &name, None, vec![web(&h.image, "1", true)]).await;
    let td2 = register(&ecs, &name, None, vec![web(&h.image, "2", true)]).await;
    create_replica(&ecs, &name, &td1, desired, min, max).await;
    let t0 = Instant::now();
    let (s, old_tasks) = wait_steady_on(&ecs, &name, &td1, 0).await;
    let first_deployment = s.deployments()[0].id().unwrap().to_string();
    eprintln!("{name}: steady on revision 1 after {:?}", t0.elapsed());

    let (min_healthy, max_total) = (ceil_pct(desired, min), floor_pct(desired, max));
    let sampler = Sampler::start(&ecs, &name, min_healthy, max_total, true);
    // Let it take a few samples of the steady service first.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let t1 = Instant::now();
    let updated = update_task_definition(&ecs, &name, &td2).await;
    assert_eq!(updated.deployments().len(), 2, "{}", summary(&updated));
    let new_deployment = primary_of(&updated).id().unwrap().to_string();
    assert_ne!(new_deployment, first_deployment);
    let (s, new_tasks) = wait_steady_on(&ecs, &name, &td2, 1).await;
    let rollout = t1.elapsed();
    let report = sampler.finish().await;
    eprintln!("{name}: rollout to revision 2 took {rollout:?}; {report:?}");

    assert!(report.violations.is_empty(), "{name}: bounds broken during the rollout:\n{}\n{}", report.violations.join("\n"), summary(&s));
    assert!(report.samples >= 10, "too few samples: {report:?}");
    assert_eq!(s.deployments()[0].id(), Some(new_deployment.as_str()));
    assert_eq!(s.task_definition(), Some(td2.as_str()));
    assert!(
        s.events().iter().any(|e| e.message() == Some(&format!("(service {name}) (deployment {new_deployment}) deployment completed."))),
        "{}",
        summary(&s)
    );
    for t in &new_tasks {
        assert_eq!(t.started_by(), Some(new_deployment.as_str()));
        assert_eq!(t.containers()[0].health_status(), Some(&HealthStatus::Healthy));
    }
    let old = describe_many(&ecs, &old_tasks.iter().map(|t| t.task_arn().unwrap().to_string()).collect::<Vec<_>>()).await;
    for t in &old {
        assert_eq!(t.last_status(), Some("STOPPED"), "{}", task_lines(&old));
        assert_eq!(t.stop_code().map(|c| c.as_str()), Some("ServiceSchedulerInitiated"), "{}", task_lines(&old));
    }
    // At 100% minimum healthy the healthy count never dropped below desired.
    if min == 100 {
        assert_eq!(report.min_healthy_seen, Some(desired as usize), "{report:?}");
    }
}

#[tokio::test]
async fn rolling_update_min_50_max_200() {
    rolling_update(50, 200).await;
}

#[tokio::test]
async fn rolling_update_min_100_max_200() {
    rolling_update(100, 200).await;
}

#[tokio::test]
async fn rolling_update_min_0_max_100() {
    rolling_update(0, 100).await;
}

#[tokio::test]
async fn rolling_update_min_50_max_150() {
    rolling_update(50, 150).await;
}

/// The bad revision: health-checked like the good one, its essential
/// container exits at once, so its tasks fail and never count as healthy
/// (without the health check a task that reaches RUNNING for a moment
/// counts as healthy, and old tasks may rightly be stopped for it).
fn crashing(image: &str) -> ContainerDefinition {
    let mut c = web(image, "bad", true);
    c.command = Some(vec!["sh".into(), "-c".into(), "exit 1".into()]);
    c
}

#[tokio::test]
async fn circuit_breaker_fails_the_deployment_and_rolls_back() {
    let h = one_host().await;
    let ecs = h.host.ecs();
    let name = "breaker";
    let good = register(&ecs, name, None, vec![web(&h.image, "1", true)]).await;
    let bad = register(&ecs, name, None, vec![crashing(&h.image)]).await;
    create_service(&ecs, name, &good, 2, deployment_config(100, 200, true)).await;
    let (s, good_tasks) = wait_steady_on(&ecs, name, &good, 0).await;
    let completed_id = s.deployments()[0].id().unwrap().to_string();
    let sampler = Sampler::start(&ecs, name, 2, 4, true);
    tokio::time::sleep(Duration::from_millis(300)).await;

    let t0 = Instant::now();
    let bad_id = primary_of(&update_task_definition(&ecs, name, &bad).await).id().unwrap().to_string();

    // Watch every deployment go by (the failed one leaves the list as soon
    // as it has nothing left running, so its FAILED state may not be seen).
    let mut seen: BTreeMap<String, Vec<(String, String, String, i32)>> = BTreeMap::new();
    let deadline = Instant::now() + SETTLE + SETTLE;
    let steady_msg = format!("(service {name}) has reached a steady state.");
    let last = loop {
        let s = describe_service(&ecs, name).await;
        for d in s.deployments() {
            let entry = (
                d.status().unwrap_or_default().to_string(),
                d.rollout_state().map(|r| r.as_str().to_string()).unwrap_or_default(),
                d.rollout_state_reason().unwrap_or_default().to_string(),
                d.failed_tasks(),
            );
            let v = seen.entry(d.id().unwrap_or_default().to_string()).or_default();
            if v.last() != Some(&entry) {
                v.push(entry);
            }
        }
        let rolled_back = is_steady(&s)
            && s.deployments()[0].id() != Some(bad_id.as_str())
            && s.deployments()[0].id() != Some(completed_id.as_str())
            && s.deployments()[0].task_definition() == Some(good.as_str())
            && count_events(&s, &steady_msg) >= 2;
        if rolled_back {
            break s;
        }
        assert!(Instant::now() < deadline, "no rollback to {}:\n{}\nseen: {seen:#?}", short_td(&good), summary(&s));
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let took = t0.elapsed();
    let report = sampler.finish().await;
    eprintln!("breaker: rolled back and steady after {took:?}; deployments seen: {seen:#?}; {report:?}");

    let bad_states = seen.get(&bad_id).cloned().unwrap_or_default();
    assert!(bad_states.iter().all(|(_, rollout, _, _)| rollout != "COMPLETED"), "the failing deployment showed COMPLETED: {bad_states:?}");
    if let Some((_, _, reason, failed_tasks)) = bad_states.iter().find(|(_, rollout, _, _)| rollout == "FAILED") {
        assert_eq!(reason, "ECS deployment circuit breaker: tasks failed to start.");
        assert!(*failed_tasks >= 3, "failedTasks {failed_tasks} below the threshold 3: {bad_states:?}");
    }
    assert!(
        last.events().iter().any(|e| e.message() == Some(&format!("(service {name}) (deployment {bad_id}) deployment failed: tasks failed to start."))),
        "{}",
        summary(&last)
    );
    let rollback_id = last.deployments()[0].id().unwrap().to_string();
    let rollback_states = &seen[&rollback_id];
    assert!(
        rollback_states
            .iter()
            .any(|(_, _, r, _)| r == &format!("ECS deployment circuit breaker: rolling back to deploymentId {completed_id}.")),
        "the rollback deployment never said what it rolls back to: {rollback_states:?}"
    );
    assert_eq!(last.task_definition(), Some(good.as_str()), "the service's task definition is the rolled-back one\n{}", summary(&last));
    assert!(report.violations.is_empty(), "min healthy 100% broken during the failed rollout:\n{}", report.violations.join("\n"));
    // The bad revision's tasks all stopped as essential container exits;
    // only good ones run.
    let stopped = service_tasks(&ecs, name, "STOPPED").await;
    let bad_tasks: Vec<&Task> = stopped.iter().filter(|t| t.task_definition_arn() == Some(bad.as_str())).collect();
    assert!(bad_tasks.len() >= 3, "{}", task_lines(&stopped));
    for t in &bad_tasks {
        assert_eq!(t.stop_code().map(|c| c.as_str()), Some("EssentialContainerExited"), "{}", task_lines(&stopped));
    }
    let running = service_tasks(&ecs, name, "RUNNING").await;
    assert!(running.iter().all(|t| t.task_definition_arn() == Some(good.as_str())), "{}", task_lines(&running));
    assert!(good_tasks.iter().all(|t| t.task_definition_arn() == Some(good.as_str())));
}

/// Without rollback the FAILED deployment stays PRIMARY, visibly, and
/// starts nothing more; the old tasks keep serving.
#[tokio::test]
async fn circuit_breaker_without_rollback_leaves_a_failed_primary() {
    let h = one_host().await;
    let ecs = h.host.ecs();
    let name = "breaker-stay";
    let good = register(&ecs, name, None, vec![web(&h.image, "1", true)]).await;
    let bad = register(&ecs, name, None, vec![crashing(&h.image)]).await;
    let mut config = deployment_config(100, 200, false);
    config.deployment_circuit_breaker = Some(DeploymentCircuitBreaker::builder().enable(true).rollback(false).build());
    create_service(&ecs, name, &good, 2, config).await;
    let (_, good_tasks) = wait_steady_on(&ecs, name, &good, 0).await;
    update_task_definition(&ecs, name, &bad).await;
    let s = wait_service(&ecs, name, SETTLE, "the bad deployment FAILED", |s| {
        s.deployments().iter().any(|d| d.status() == Some("PRIMARY") && d.rollout_state().map(|r| r.as_str()) == Some("FAILED"))
    })
    .await;
    let primary = primary_of(&s);
    assert_eq!(primary.task_definition(), Some(bad.as_str()));
    assert_eq!(primary.rollout_state_reason(), Some("ECS deployment circuit breaker: tasks failed to start."), "{}", summary(&s));
    assert!(primary.failed_tasks() >= 3, "{}", summary(&s));
    // Nothing more starts (a task already in flight when it tripped may
    // still fail and be counted): once no bad task is left running, the
    // bad revision's tasks and the failure count stay put.
    let deadline = Instant::now() + Duration::from_secs(30);
    while service_tasks(&ecs, name, "RUNNING").await.iter().any(|t| t.task_definition_arn() == Some(bad.as_str())) {
        assert!(Instant::now() < deadline, "bad tasks still running after the breaker tripped");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let bad_count = |tasks: Vec<Task>| tasks.iter().filter(|t| t.task_definition_arn() == Some(bad.as_str())).count();
    let tried = bad_count(service_tasks(&ecs, name, "STOPPED").await);
    let failed = primary_of(&describe_service(&ecs, name).await).failed_tasks();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let s = describe_service(&ecs, name).await;
    let primary = primary_of(&s);
    assert_eq!(primary.rollout_state().map(|r| r.as_str()), Some("FAILED"), "{}", summary(&s));
    assert_eq!(primary.failed_tasks(), failed, "{}", summary(&s));
    assert_eq!(bad_count(service_tasks(&ecs, name, "STOPPED").await), tried, "a FAILED deployment starts nothing more\n{}", summary(&s));
    assert_eq!(bad_count(service_tasks(&ecs, name, "RUNNING").await), 0, "{}", summary(&s));
    let running = service_tasks(&ecs, name, "RUNNING").await;
    let before: HashSet<&str> = good_tasks.iter().map(|t| t.task_arn().unwrap()).collect();
    assert_eq!(running.len(), 2, "{}", task_lines(&running));
    assert!(running.iter().all(|t| before.contains(t.task_arn().unwrap()) && t.last_status() == Some("RUNNING")), "{}", task_lines(&running));
}

#[tokio::test]
async fn a_stopped_service_task_is_replaced() {
    let h = one_host().await;
    let ecs = h.host.ecs();
    let td = register(&ecs, "repl", None, vec![web(&h.image, "1", false)]).await;
    create_replica(&ecs, "repl", &td, 2, 100, 200).await;
    let (_, tasks) = wait_steady_on(&ecs, "repl", &td, 0).await;
    let before: HashSet<String> = tasks.iter().map(|t| t.task_arn().unwrap().to_string()).collect();
    let victim = tasks[0].task_arn().unwrap().to_string();

    let t0 = Instant::now();
    ecs.stop_task().cluster(CLUSTER).task(&victim).reason("chaos").send().await.unwrap();
    let t = wait_status(&ecs, &victim, "STOPPED", Duration::from_secs(60)).await;
    assert_eq!(t.stop_code().map(|c| c.as_str()), Some("UserInitiated"));
    let (s, now) = wait_steady_on(&ecs, "repl", &td, 1).await;
    eprintln!("replaced and steady after {:?}", t0.elapsed());
    assert_eq!(now.len(), 2);
    let fresh: Vec<&Task> = now.iter().filter(|t| !before.contains(t.task_arn().unwrap())).collect();
    assert_eq!(fresh.len(), 1, "exactly one new task\n{}", task_lines(&now));
    assert!(now.iter().any(|t| t.task_arn() == tasks[1].task_arn()), "the other task kept running\n{}", task_lines(&now));
    let fresh_id = task_id(fresh[0].task_arn().unwrap());
    assert!(
        s.events().iter().any(|e| e.message() == Some(&format!("(service repl) has started 1 tasks: (task {fresh_id})."))),
        "{}",
        summary(&s)
    );
    let port = fresh[0].containers()[0].network_bindings()[0].host_port().unwrap();
    wait_http(&format!("127.0.0.1:{port}")).await;
}

#[tokio::test]
async fn delete_service_force_drains_to_inactive_and_stops_every_task() {
    let h = one_host().await;
    let ecs = h.host.ecs();
    let td = register(&ecs, "gone", None, vec![web(&h.image, "1", false)]).await;
    create_replica(&ecs, "gone", &td, 2, 100, 200).await;
    let (_, tasks) = wait_steady_on(&ecs, "gone", &td, 0).await;

    let t0 = Instant::now();
    let out = ecs.delete_service().cluster(CLUSTER).service("gone").force(true).send().await.expect("DeleteService");
    let s = out.service().unwrap();
    assert_eq!(s.status(), Some("DRAINING"), "{}", summary(s));
    assert_eq!(s.desired_count(), 0);
    // Every status it shows from now on, in order.
    let mut statuses = vec!["DRAINING".to_string()];
    let deadline = Instant::now() + SETTLE;
    let s = loop {
        let s = describe_service(&ecs, "gone").await;
        let status = s.status().unwrap_or_default().to_string();
        if statuses.last() != Some(&status) {
            statuses.push(status.clone());
        }
        if status == "INACTIVE" {
            break s;
        }
        assert!(Instant::now() < deadline, "never INACTIVE after DeleteService --force: {statuses:?}\n{}", summary(&s));
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    eprintln!("INACTIVE after {:?}", t0.elapsed());
    assert_eq!((s.running_count(), s.pending_count()), (0, 0), "{}", summary(&s));
    let arns: Vec<String> = tasks.iter().map(|t| t.task_arn().unwrap().to_string()).collect();
    for t in describe_many(&ecs, &arns).await {
        assert_eq!(t.last_status(), Some("STOPPED"), "INACTIVE only once the tasks are gone: {t:#?}");
        assert_eq!(t.stop_code().map(|c| c.as_str()), Some("ServiceSchedulerInitiated"));
    }
    assert!(list_service_tasks(&ecs, "gone", "RUNNING").await.is_empty());
    let listed = ecs.list_services().cluster(CLUSTER).send().await.unwrap();
    assert!(listed.service_arns().is_empty(), "ListServices shows no INACTIVE service");
    // The name can be used again.
    assert_eq!(statuses, ["DRAINING", "INACTIVE"]);
    create_replica(&ecs, "gone", &td, 0, 100, 200).await;
}

// ---------------------------------------------------------------------------
// Several hosts

struct Fleet {
    link: SubnetClaim,
    server: BerthServer,
    archive_dir: tempfile::TempDir,
    image: String,
    agents: Vec<NsAgent>,
}

impl Fleet {
    async fn start(azs: &[&str]) -> Fleet {
        let image = "127.0.0.1:5000/demo/busybox:1".to_string();
        let archive_dir = tempfile::tempdir().unwrap();
        busybox_image()
            .file("www/index.html", b"hello from berth\n".to_vec(), 0o644)
            .write_oci_archive(&archive_dir.path().join("busybox.tar"))
            .unwrap();
        let link = SubnetClaim::take();
        let first = NsMachine::new(link.third_octet, 0);
        let server = BerthServer::start_on(&first.host_ip);
        server.ecs_client().create_cluster().cluster_name(CLUSTER).send().await.unwrap();
        let mut fleet = Fleet { link, server, archive_dir, image, agents: Vec::new() };
        let mut machine = Some(first);
        for (k, az) in azs.iter().enumerate() {
            let m = machine.take().unwrap_or_else(|| NsMachine::new(fleet.link.third_octet, k as u8));
            fleet.add(m, az);
        }
        wait_instances(&fleet.server.ecs_client(), azs.len(), Duration::from_secs(60)).await;
        fleet
    }

    fn add(&mut self, m: NsMachine, az: &str) {
        let agent = NsAgent::start(&self.server, m, az, &self.archive_dir.path().join("busybox.tar"), &self.image);
        self.agents.push(agent);
    }
}

impl Drop for Fleet {
    fn drop(&mut self) {
        // Agents first (their Drop cleans up containers), then the server.
        self.agents.clear();
        self.server.kill9();
    }
}

async fn set_instance_status(ecs: &aws_sdk_ecs::Client, arn: &str, status: ContainerInstanceStatus) {
    let out = ecs.update_container_instances_state().cluster(CLUSTER).container_instances(arn).status(status).send().await.unwrap();
    assert!(out.failures().is_empty(), "{:?}", out.failures());
}

/// Instance ARN → the service's tasks desired RUNNING on it.
fn by_instance(tasks: &[Task]) -> HashMap<String, Vec<Task>> {
    let mut out: HashMap<String, Vec<Task>> = HashMap::new();
    for t in tasks {
        out.entry(t.container_instance_arn().unwrap_or_default().to_string()).or_default().push(t.clone());
    }
    out
}

/// Waits until the service's tasks desired RUNNING are all RUNNING and
/// sit one per instance on exactly `instances`.
async fn wait_daemon_on(ecs: &aws_sdk_ecs::Client, name: &str, instances: &[&str], within: Duration) -> (Service, Vec<Task>) {
    let want: HashSet<&str> = instances.iter().copied().collect();
    let deadline = Instant::now() + within;
    loop {
        let s = describe_service(ecs, name).await;
        let tasks = service_tasks(ecs, name, "RUNNING").await;
        let per = by_instance(&tasks);
        let ok = tasks.iter().all(|t| t.last_status() == Some("RUNNING"))
            && per.len() == want.len()
            && per.iter().all(|(i, ts)| want.contains(i.as_str()) && ts.len() == 1)
            && s.running_count() == want.len() as i32
            && s.pending_count() == 0;
        if ok {
            return (s, tasks);
        }
        assert!(
            Instant::now() < deadline,
            "daemon {name} never ran one task on each of {want:?}\n{}\ntasks:\n{}",
            summary(&s),
            task_lines(&tasks)
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn daemon_service_follows_its_instances() {
    let mut fleet = Fleet::start(&["us-east-1a", "us-east-1b"]).await;
    let ecs = fleet.server.ecs_client();
    let ids = wait_instances(&ecs, 2, Duration::from_secs(60)).await;
    let (a, b) = (ids["us-east-1a"].clone(), ids["us-east-1b"].clone());
    let td = register(&ecs, "daemon", None, vec![web(&fleet.image, "1", false)]).await;
    let t0 = Instant::now();
    ecs.create_service()
        .cluster(CLUSTER)
        .service_name("daemon")
        .task_definition(&td)
        .scheduling_strategy(SchedulingStrategy::Daemon)
        .send()
        .await
        .expect("CreateService DAEMON");
    let (s, tasks) = wait_daemon_on(&ecs, "daemon", &[&a, &b], SETTLE).await;
    eprintln!("daemon: one task on each of 2 instances after {:?}", t0.elapsed());
    assert_eq!(s.scheduling_strategy().map(|x| x.as_str()), Some("DAEMON"));
    assert_eq!(s.desired_count(), 2, "a daemon's desired count is its eligible instances\n{}", summary(&s));
    let per = by_instance(&tasks);
    let on_a = per[&a][0].task_arn().unwrap().to_string();
    let on_b = per[&b][0].task_arn().unwrap().to_string();
    // Each serves on its own host's address.
    for (arn, ip) in [(&on_a, &fleet.agents[0].machine.ip), (&on_b, &fleet.agents[1].machine.ip)] {
        let t = describe(&ecs, arn).await;
        let port = t.containers()[0].network_bindings()[0].host_port().unwrap();
        wait_http(&format!("{ip}:{port}")).await;
    }

    // Draining a stops its daemon task; b's is untouched.
    let t1 = Instant::now();
    set_instance_status(&ecs, &a, ContainerInstanceStatus::Draining).await;
    let stopped = wait_status(&ecs, &on_a, "STOPPED", Duration::from_secs(60)).await;
    eprintln!("daemon: task on the draining instance stopped after {:?}", t1.elapsed());
    assert_eq!(stopped.stop_code().map(|c| c.as_str()), Some("ServiceSchedulerInitiated"), "{stopped:#?}");
    let (s, tasks) = wait_daemon_on(&ecs, "daemon", &[&b], Duration::from_secs(60)).await;
    assert_eq!(tasks[0].task_arn(), Some(on_b.as_str()), "b's task kept running");
    assert_eq!(s.desired_count(), 1, "{}", summary(&s));

    // Active again: a gets a task back.
    let t2 = Instant::now();
    set_instance_status(&ecs, &a, ContainerInstanceStatus::Active).await;
    let (_, tasks) = wait_daemon_on(&ecs, "daemon", &[&a, &b], SETTLE).await;
    eprintln!("daemon: task back on the re-activated instance after {:?}", t2.elapsed());
    let per = by_instance(&tasks);
    assert_ne!(per[&a][0].task_arn(), Some(on_a.as_str()), "a new task");
    assert_eq!(per[&b][0].task_arn(), Some(on_b.as_str()));

    // A third instance joins and gets one.
    let t3 = Instant::now();
    let link = fleet.link.third_octet;
    fleet.add(NsMachine::new(link, 2), "us-east-1c");
    let ids = wait_instances(&ecs, 3, Duration::from_secs(60)).await;
    let c = ids["us-east-1c"].clone();
    let (s, _) = wait_daemon_on(&ecs, "daemon", &[&a, &b, &c], SETTLE).await;
    eprintln!("daemon: task on the joining instance after {:?}", t3.elapsed());
    assert_eq!(s.desired_count(), 3, "{}", summary(&s));
    // The steady-state event comes from the pass after the one that
    // completed the deployment: wait for both.
    let steady_event = "(service daemon) has reached a steady state.";
    let s = wait_service(&ecs, "daemon", Duration::from_secs(30), "daemon steady", |s| {
        is_steady(s) && count_events(s, steady_event) >= 1
    })
    .await;
    assert!(count_events(&s, steady_event) >= 1, "{}", summary(&s));
}

#[tokio::test]
async fn draining_an_instance_moves_replica_tasks_within_min_healthy() {
    let fleet = Fleet::start(&["us-east-1a", "us-east-1b"]).await;
    let ecs = fleet.server.ecs_client();
    let ids = wait_instances(&ecs, 2, Duration::from_secs(60)).await;
    let (a, b) = (ids["us-east-1a"].clone(), ids["us-east-1b"].clone());
    let td = register(&ecs, "spread", None, vec![web(&fleet.image, "1", true)]).await;
    ecs.create_service()
        .cluster(CLUSTER)
        .service_name("spread")
        .task_definition(&td)
        .desired_count(2)
        .deployment_configuration(deployment_config(100, 200, false))
        .placement_strategy(PlacementStrategy::builder().r#type(PlacementStrategyType::Spread).field("attribute:ecs.availability-zone").build())
        .send()
        .await
        .expect("CreateService");
    let (_, tasks) = wait_steady_on(&ecs, "spread", &td, 0).await;
    let per = by_instance(&tasks);
    assert_eq!(per.len(), 2, "spread over both instances\n{}", task_lines(&tasks));
    let on_a = per[&a][0].task_arn().unwrap().to_string();
    let on_b = per[&b][0].task_arn().unwrap().to_string();

    let sampler = Sampler::start(&ecs, "spread", 2, 4, true);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let t0 = Instant::now();
    set_instance_status(&ecs, &a, ContainerInstanceStatus::Draining).await;
    let deadline = Instant::now() + SETTLE;
    let (s, tasks) = loop {
        let s = describe_service(&ecs, "spread").await;
        let tasks = service_tasks(&ecs, "spread", "RUNNING").await;
        let done = is_steady(&s)
            && tasks.len() == 2
            && tasks.iter().all(|t| t.last_status() == Some("RUNNING") && t.container_instance_arn() == Some(b.as_str()));
        if done {
            break (s, tasks);
        }
        assert!(Instant::now() < deadline, "tasks never left the draining instance\n{}\n{}", summary(&s), task_lines(&tasks));
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let took = t0.elapsed();
    let report = sampler.finish().await;
    eprintln!("drain: tasks moved off the draining instance in {took:?}; {report:?}");
    assert!(report.violations.is_empty(), "bounds broken while draining:\n{}\n{}", report.violations.join("\n"), summary(&s));
    assert!(tasks.iter().any(|t| t.task_arn() == Some(on_b.as_str())), "b's task stayed\n{}", task_lines(&tasks));
    let moved = wait_status(&ecs, &on_a, "STOPPED", Duration::from_secs(30)).await;
    assert_eq!(moved.stop_code().map(|c| c.as_str()), Some("ServiceSchedulerInitiated"), "{moved:#?}");
    let running_on_a = ecs.list_tasks().cluster(CLUSTER).container_instance(&a).send().await.unwrap();
    assert!(running_on_a.task_arns().is_empty(), "nothing runs on the draining instance");
}

/// The brief's plain case: a revision without health check whose essential
/// container exits at once (`sh -c 'exit 1'`). Its tasks can be RUNNING for
/// a moment, so the old ones may be stopped for them; the breaker must
/// still fail the deployment and roll back. (It once showed the controller
/// marking the crashing deployment COMPLETED, both bad tasks seen RUNNING
/// at once, after which the tasks crash-looped unthrottled; a deployment
/// now completes only once tasks without a health check stayed RUNNING
/// for `STABLE_RUNNING_MS`.)
#[tokio::test]
async fn circuit_breaker_rolls_back_a_revision_without_health_check() {
    let h = one_host().await;
    let ecs = h.host.ecs();
    let name = "breaker-plain";
    let good = register(&ecs, name, None, vec![web(&h.image, "1", false)]).await;
    let bad = register(&ecs, name, None, vec![container("web", &h.image).memory(32).command("sh").command("-c").command("exit 1").build()]).await;
    create_service(&ecs, name, &good, 2, deployment_config(100, 200, true)).await;
    wait_steady_on(&ecs, name, &good, 0).await;
    let bad_id = primary_of(&update_task_definition(&ecs, name, &bad).await).id().unwrap().to_string();
    let mut bad_completed = None;
    let deadline = Instant::now() + SETTLE;
    let s = loop {
        let s = describe_service(&ecs, name).await;
        if let Some(d) = s.deployments().iter().find(|d| d.id() == Some(bad_id.as_str()))
            && d.rollout_state().map(|r| r.as_str()) == Some("COMPLETED")
        {
            bad_completed.get_or_insert_with(|| summary(&s));
        }
        if is_steady(&s) && s.deployments()[0].task_definition() == Some(good.as_str()) && s.deployments()[0].id() != Some(bad_id.as_str()) {
            break s;
        }
        assert!(Instant::now() < deadline, "no rollback; the crashing deployment was COMPLETED: {bad_completed:?}\n{}", summary(&s));
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(bad_completed.is_none(), "the crashing deployment showed COMPLETED:\n{}", bad_completed.unwrap());
    assert!(count_events(&s, &format!("(deployment {bad_id}) deployment failed: tasks failed to start.")) == 1, "{}", summary(&s));
}
