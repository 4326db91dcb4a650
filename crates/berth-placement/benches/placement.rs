//! Placement throughput at design scale: 10,000 tasks placed one request at
//! a time over a 5,000-instance snapshot (already running 90,000 tasks).
//!
//! ```text
//! cargo bench -p berth-placement --bench placement
//! ```
//!
//! Divan reports throughput in items/s; an item is one placement, so the
//! `thrpt` column is placements/s (compare: Nomad C1M 3,750/s on 5 servers,
//! kube-scheduler ≈ 810 pods/s at 5,000 nodes). The same measurement
//! without a harness, in batches, over up to 100,000 tasks: the `placement`
//! binary of berth-bench (`bench/services.sh`).

use std::sync::LazyLock;

use berth_placement::synthetic::{self, ClusterSpec};
use berth_placement::{
    BinpackField, ClusterSnapshot, Constraint, PlacementRequest, Placer, PortNeed, Protocol,
    SpreadField, Strategy, place,
};
use divan::Bencher;
use divan::counter::ItemsCount;

fn main() {
    divan::main();
}

const TASKS: usize = 10_000;

static SNAPSHOT: LazyLock<ClusterSnapshot> =
    LazyLock::new(|| ClusterSnapshot::new(synthetic::cluster(&ClusterSpec::default())));

fn request(strategy: Vec<Strategy>) -> PlacementRequest {
    let mut req = PlacementRequest::new("bench", 128, 256);
    req.group = Some("service:bench".to_owned());
    req.strategy = strategy;
    req
}

fn az() -> Strategy {
    Strategy::Spread(SpreadField::Attribute("ecs.availability-zone".to_owned()))
}

/// Places TASKS one-task requests through one placer; returns how many
/// were placed.
fn place_all(req: &PlacementRequest) -> usize {
    let mut placer = Placer::new(&SNAPSHOT);
    (0..TASKS)
        .map(|k| placer.place(req, k as u64).placements.len())
        .sum()
}

fn bench_requests(bencher: Bencher, req: PlacementRequest) {
    LazyLock::force(&SNAPSHOT);
    bencher
        .counter(ItemsCount::new(TASKS))
        .bench(|| place_all(divan::black_box(&req)));
}

#[divan::bench(sample_count = 5, sample_size = 1)]
fn binpack_memory_10k(bencher: Bencher) {
    bench_requests(
        bencher,
        request(vec![Strategy::Binpack(BinpackField::Memory)]),
    );
}

#[divan::bench(sample_count = 5, sample_size = 1)]
fn spread_az_10k(bencher: Bencher) {
    bench_requests(bencher, request(vec![az()]));
}

#[divan::bench(sample_count = 5, sample_size = 1)]
fn spread_az_then_instance_10k(bencher: Bencher) {
    bench_requests(
        bencher,
        request(vec![az(), Strategy::Spread(SpreadField::InstanceId)]),
    );
}

#[divan::bench(sample_count = 5, sample_size = 1)]
fn constrained_10k(bencher: Bencher) {
    let mut req = request(vec![az(), Strategy::Binpack(BinpackField::Memory)]);
    req.constraints = vec![
        Constraint::member_of(
            "attribute:ecs.instance-type =~ m5.* and attribute:ecs.os-type == linux",
        )
        .unwrap_or_else(|e| panic!("the benchmark's own expression is valid: {e}")),
    ];
    req.ports = vec![PortNeed::dynamic(Protocol::Tcp)];
    bench_requests(bencher, req);
}

/// One pure `place()` call for one task: the per-call cost, setup included.
#[divan::bench(sample_count = 50)]
fn single_place_binpack(bencher: Bencher) {
    LazyLock::force(&SNAPSHOT);
    let req = request(vec![Strategy::Binpack(BinpackField::Memory)]);
    bencher
        .counter(ItemsCount::new(1usize))
        .bench(|| place(&SNAPSHOT, divan::black_box(&req), 7));
}

/// Indexing a 5,000-instance, 90,000-task cluster (items: instances).
#[divan::bench(sample_count = 5, sample_size = 1)]
fn snapshot_build(bencher: Bencher) {
    let instances = synthetic::cluster(&ClusterSpec::default());
    bencher
        .counter(ItemsCount::new(instances.len()))
        .with_inputs(|| instances.clone())
        .bench_values(ClusterSnapshot::new);
}
