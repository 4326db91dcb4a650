//! Pure placement throughput over a design-scale cluster (berth-placement,
//! no server, no IO):
//!
//! ```text
//! placement [--instances 5000] [--running 0] [--tasks 100000] [--batch 10] [--runs 1] [--filter NAME]
//! ```
//!
//! Builds a synthetic cluster (`--instances`, 3 zones, four instance types,
//! `--running` tasks already placed), then for each scenario places
//! `--tasks` tasks in requests of `--batch` tasks (RunTask's `count`; 10 is
//! its maximum) through one [`Placer`] — a scheduling round over one
//! snapshot, each placement seeing those before it — and prints
//! placements/s beside the published anchors: Nomad's C1M (3,750
//! containers/s, on 5 servers) and kube-scheduler (≈ 810 pods/s at 5,000
//! nodes), as ratios. The default fills an empty 5,000-instance cluster
//! with 100,000 tasks, the design scale.
//!
//! Single thread throughout. The rate is computed from the thread's on-CPU
//! time (`/proc/thread-self/schedstat`, falling back to wall time), so other
//! processes on a shared machine do not count against it; the wall time is
//! printed beside it. With `--runs N` each scenario runs N times and the
//! fastest run is reported.

use std::time::Instant;

use berth_placement::synthetic::{self, ClusterSpec};
use berth_placement::{
    BinpackField, ClusterSnapshot, Constraint, PlacementRequest, Placer, PortNeed, Protocol, SpreadField, Strategy, place,
};

const NOMAD_C1M: f64 = 3_750.0;
const KUBE_SCHEDULER_5K: f64 = 810.0;

fn arg<T: std::str::FromStr>(name: &str, default: T) -> T {
    let args: Vec<String> = std::env::args().collect();
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// This thread's on-CPU time in nanoseconds, where Linux tells it.
fn cpu_ns() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    text.split_whitespace().next()?.parse().ok()
}

struct Clock {
    wall: Instant,
    cpu: Option<u64>,
}

impl Clock {
    fn start() -> Clock {
        Clock { wall: Instant::now(), cpu: cpu_ns() }
    }

    /// (wall seconds, on-CPU seconds or wall if unknown).
    fn stop(&self) -> (f64, f64) {
        let wall = self.wall.elapsed().as_secs_f64();
        let cpu = match (self.cpu, cpu_ns()) {
            (Some(a), Some(b)) if b > a => (b - a) as f64 / 1e9,
            _ => wall,
        };
        (wall, cpu)
    }
}

/// The synthetic cluster's own task size: 64 CPU units, 128 MiB.
fn request(strategy: Vec<Strategy>, batch: u32) -> PlacementRequest {
    let mut req = PlacementRequest::new("bench", 64, 128);
    req.group = Some("service:bench".to_owned());
    req.strategy = strategy;
    req.count = batch;
    req
}

fn az() -> Strategy {
    Strategy::Spread(SpreadField::Attribute("ecs.availability-zone".to_owned()))
}

struct Outcome {
    requests: usize,
    placed: usize,
    wall: f64,
    cpu: f64,
}

/// Places `tasks` tasks in requests of `req.count` through one placer.
fn session(snap: &ClusterSnapshot, req: &PlacementRequest, tasks: usize) -> Outcome {
    let clock = Clock::start();
    let mut placer = Placer::new(snap);
    let (mut placed, mut requests) = (0, 0);
    while placed < tasks {
        let got = placer.place(req, requests as u64).placements.len();
        requests += 1;
        placed += got;
        if got == 0 {
            break; // the cluster is full
        }
    }
    let (wall, cpu) = clock.stop();
    Outcome { requests, placed, wall, cpu }
}

/// Independent requests with the pure function: each sees only the
/// snapshot (so every spread starts from an empty group) and pays the
/// per-call setup, as one RunTask over a fresh snapshot does.
fn independent(snap: &ClusterSnapshot, req: &PlacementRequest, tasks: usize) -> Outcome {
    let clock = Clock::start();
    let (mut placed, mut requests) = (0, 0);
    while placed < tasks {
        let got = place(snap, req, requests as u64).placements.len();
        requests += 1;
        placed += got;
        if got == 0 {
            break;
        }
    }
    let (wall, cpu) = clock.stop();
    Outcome { requests, placed, wall, cpu }
}

/// distinctInstance requests on a cluster where every instance already runs
/// a task of the group: each request fits nowhere and is answered with one
/// failure per instance, as RunTask's `failures`. Counts requests/s.
fn saturate(snap: &ClusterSnapshot, req: &PlacementRequest, requests: usize) -> Outcome {
    let mut placer = Placer::new(snap);
    let mut filler = req.clone();
    filler.constraints.clear();
    filler.strategy = vec![Strategy::Spread(SpreadField::InstanceId)];
    filler.count = snap.len() as u32;
    placer.place(&filler, 1);
    let mut one = req.clone();
    one.count = 1;
    let clock = Clock::start();
    let mut placed = 0;
    for k in 0..requests {
        placed += placer.place(&one, k as u64).placements.len();
    }
    let (wall, cpu) = clock.stop();
    Outcome { requests, placed, wall, cpu }
}

fn main() {
    let instances: usize = arg("--instances", 5_000);
    let running: usize = arg("--running", 0);
    let tasks: usize = arg("--tasks", 100_000);
    let batch: u32 = arg("--batch", 10);
    let runs: usize = arg("--runs", 1).max(1);
    let filter: String = arg("--filter", String::new());
    let spec = ClusterSpec { instances, running_tasks: running, ..ClusterSpec::default() };

    let start = Instant::now();
    let cluster = synthetic::cluster(&spec);
    let already: usize = cluster.iter().map(|i| i.running_tasks.len()).sum();
    let generated = start.elapsed().as_secs_f64();
    let start = Instant::now();
    let snap = ClusterSnapshot::new(cluster);
    let indexed = start.elapsed().as_secs_f64();
    println!(
        "cluster: {instances} instances, {already} running tasks (generated in {:.0} ms, snapshot indexed in {:.1} ms)",
        generated * 1e3,
        indexed * 1e3
    );
    println!(
        "{tasks} tasks per scenario in requests of {batch}, single thread, best of {runs}, rate from on-CPU time\n"
    );
    println!(
        "{:<58} {:>7} {:>7} {:>9} {:>9} {:>13} {:>9} {:>8}",
        "scenario", "placed", "reqs", "cpu ms", "wall ms", "placements/s", "vs Nomad", "vs kube"
    );

    let mut constrained = request(vec![az(), Strategy::Binpack(BinpackField::Memory)], batch);
    constrained.constraints = vec![
        Constraint::member_of("attribute:ecs.instance-type =~ m5.* and attribute:ecs.os-type == linux")
            .unwrap_or_else(|e| panic!("the benchmark's own expression is valid: {e}")),
    ];
    constrained.ports = vec![PortNeed::dynamic(Protocol::Tcp)];

    let mut distinct = request(vec![az(), Strategy::Spread(SpreadField::InstanceId)], batch);
    distinct.constraints = vec![Constraint::DistinctInstance];

    type Run = fn(&ClusterSnapshot, &PlacementRequest, usize) -> Outcome;
    let small = (tasks / 10).max(1);
    let scenarios: Vec<(&str, PlacementRequest, Run, usize)> = vec![
        ("binpack(memory)", request(vec![Strategy::Binpack(BinpackField::Memory)], batch), session, tasks),
        ("spread(attribute:ecs.availability-zone)", request(vec![az()], batch), session, tasks),
        ("random", request(vec![Strategy::Random], batch), session, tasks),
        (
            "spread(az), spread(instanceId)   [ECS console default]",
            request(vec![az(), Strategy::Spread(SpreadField::InstanceId)], batch),
            session,
            small,
        ),
        ("spread(az), binpack(memory), memberOf =~, dynamic port", constrained, session, small),
        ("spread(az), spread(instanceId), distinctInstance", distinct.clone(), session, small.min(instances / 2)),
        (
            "binpack(memory), independent place() calls",
            request(vec![Strategy::Binpack(BinpackField::Memory)], batch),
            independent,
            small,
        ),
        ("spread(az), independent place() calls", request(vec![az()], batch), independent, small),
        ("distinctInstance, saturated: failing requests/s", distinct, saturate, 1_000),
    ];

    for (name, req, run, n) in scenarios.iter().filter(|(name, ..)| name.contains(filter.as_str())) {
        let outcome = (0..runs)
            .map(|_| run(&snap, req, *n))
            .min_by(|a, b| a.cpu.total_cmp(&b.cpu))
            .unwrap_or_else(|| unreachable!("at least one run"));
        let count = if outcome.placed > 0 { outcome.placed } else { outcome.requests };
        let rate = count as f64 / outcome.cpu;
        println!(
            "{:<58} {:>7} {:>7} {:>9.1} {:>9.1} {:>13.0} {:>8.1}x {:>7.1}x",
            name,
            outcome.placed,
            outcome.requests,
            outcome.cpu * 1e3,
            outcome.wall * 1e3,
            rate,
            rate / NOMAD_C1M,
            rate / KUBE_SCHEDULER_5K
        );
    }
    println!(
        "\nanchors: Nomad C1M {NOMAD_C1M:.0} containers/s (5 servers); kube-scheduler {KUBE_SCHEDULER_5K:.0} pods/s at 5,000 nodes"
    );
}
