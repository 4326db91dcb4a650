//! Placement scenarios: each strategy, constraint and failure reason.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use berth_placement::synthetic::{self, ClusterSpec};
use berth_placement::{
    BinpackField, ClusterSnapshot, Constraint, FailureReason, InstanceStatus, InstanceView,
    PlacementPlan, PlacementRequest, Placer, PortNeed, Protocol, SpreadField, Strategy, place,
};

fn ids(plan: &PlacementPlan) -> Vec<&str> {
    plan.placements
        .iter()
        .map(|p| p.instance_id.as_str())
        .collect()
}

fn reasons(plan: &PlacementPlan) -> BTreeMap<String, &'static str> {
    plan.failures
        .iter()
        .map(|f| {
            (
                f.arn.as_ref().map_or("-".to_owned(), |a| a.to_string()),
                f.reason.as_str(),
            )
        })
        .collect()
}

fn az_spread() -> Strategy {
    Strategy::Spread(SpreadField::Attribute("ecs.availability-zone".into()))
}

fn with_mem(id: &str, mem: u32) -> InstanceView {
    InstanceView::new(id, 4096, mem)
}

#[test]
fn binpack_packs_onto_the_fullest_instance() {
    let snap = ClusterSnapshot::new(vec![
        with_mem("a", 1000),
        with_mem("b", 600),
        with_mem("c", 2000),
    ]);
    let mut req = PlacementRequest::new("web", 10, 500);
    req.strategy = vec![Strategy::Binpack(BinpackField::Memory)];
    req.count = 3;
    let plan = place(&snap, &req, 1);
    // b (100 left), then a twice (500, then 0 left).
    assert_eq!(ids(&plan), ["b", "a", "a"]);
    assert!(plan.failures.is_empty());
}

#[test]
fn binpack_cpu_uses_cpu() {
    let mut a = InstanceView::new("a", 300, 9000);
    a.remaining.cpu = 300;
    let b = InstanceView::new("b", 1000, 100);
    let snap = ClusterSnapshot::new(vec![a, b]);
    let mut req = PlacementRequest::new("web", 256, 50);
    req.strategy = vec![Strategy::Binpack(BinpackField::Cpu)];
    assert_eq!(ids(&place(&snap, &req, 1)), ["a"]);
    req.strategy = vec![Strategy::Binpack(BinpackField::Memory)];
    assert_eq!(ids(&place(&snap, &req, 1)), ["b"]);
}

fn zoned(n_per_zone: usize, zones: &[&str]) -> Vec<InstanceView> {
    let mut out = Vec::new();
    for z in zones {
        for k in 0..n_per_zone {
            out.push(
                InstanceView::new(format!("{z}-{k}"), 4096, 8192)
                    .with_attribute("ecs.availability-zone", z),
            );
        }
    }
    out
}

fn per_zone(snap: &ClusterSnapshot, plan: &PlacementPlan) -> BTreeMap<String, usize> {
    let mut m = BTreeMap::new();
    for p in &plan.placements {
        let inst = snap.instance(&p.instance_id).unwrap();
        let z = inst
            .attribute("ecs.availability-zone")
            .flatten()
            .unwrap_or("-")
            .to_owned();
        *m.entry(z).or_default() += 1;
    }
    m
}

#[test]
fn spread_across_zones_balances() {
    let snap = ClusterSnapshot::new(zoned(2, &["az1", "az2", "az3"]));
    let mut req = PlacementRequest::new("web", 10, 10);
    req.group = Some("service:web".into());
    req.strategy = vec![az_spread()];
    req.count = 9;
    let plan = place(&snap, &req, 7);
    assert_eq!(
        per_zone(&snap, &plan).values().copied().collect::<Vec<_>>(),
        [3, 3, 3]
    );
}

#[test]
fn spread_counts_the_groups_existing_tasks() {
    let mut instances = zoned(1, &["az1", "az2", "az3"]);
    instances[0] = instances[0]
        .clone()
        .with_task("web", "service:web")
        .with_task("web", "service:web");
    // Tasks of another group do not count.
    instances[1] = instances[1]
        .clone()
        .with_task("db", "service:db")
        .with_task("db", "service:db");
    let snap = ClusterSnapshot::new(instances);
    let mut req = PlacementRequest::new("web", 10, 10);
    req.group = Some("service:web".into());
    req.strategy = vec![az_spread()];
    req.count = 4;
    let plan = place(&snap, &req, 3);
    let zones = per_zone(&snap, &plan);
    assert_eq!(zones.get("az1"), None);
    assert_eq!(zones["az2"], 2);
    assert_eq!(zones["az3"], 2);
}

#[test]
fn spread_zone_then_instance_balances_within_zones() {
    let snap = ClusterSnapshot::new(zoned(3, &["az1", "az2"]));
    let mut req = PlacementRequest::new("web", 10, 10);
    req.strategy = vec![az_spread(), Strategy::Spread(SpreadField::InstanceId)];
    req.count = 6;
    let plan = place(&snap, &req, 11);
    let distinct: BTreeSet<_> = ids(&plan).into_iter().collect();
    assert_eq!(distinct.len(), 6, "{plan:?}");
}

#[test]
fn spread_then_binpack_within_zone() {
    let mut instances = zoned(2, &["az1", "az2"]);
    instances[1].remaining.memory = 1000; // az1-1 fuller
    instances[2].remaining.memory = 900; // az2-0 fuller
    let snap = ClusterSnapshot::new(instances);
    let mut req = PlacementRequest::new("web", 10, 100);
    req.strategy = vec![az_spread(), Strategy::Binpack(BinpackField::Memory)];
    req.count = 4;
    let plan = place(&snap, &req, 1);
    let mut got = ids(&plan);
    got.sort();
    assert_eq!(got, ["az1-1", "az1-1", "az2-0", "az2-0"]);
}

#[test]
fn spread_by_instance_without_group_defaults_to_family_group() {
    let snap = ClusterSnapshot::new(vec![
        InstanceView::new("a", 4096, 4096).with_task("web", "family:web"),
        InstanceView::new("b", 4096, 4096),
    ]);
    let mut req = PlacementRequest::new("web", 1, 1);
    req.strategy = vec![Strategy::Spread(SpreadField::InstanceId)];
    assert_eq!(req.effective_group(), "family:web");
    assert_eq!(ids(&place(&snap, &req, 1)), ["b"]);
    req.count = 3;
    let plan = place(&snap, &req, 1);
    let mut got = ids(&plan);
    got.sort();
    assert_eq!(got, ["a", "b", "b"]);
}

#[test]
fn distinct_instance_never_doubles() {
    let mut instances: Vec<_> = (0..5)
        .map(|i| InstanceView::new(format!("i{i}"), 4096, 4096))
        .collect();
    instances[4] = instances[4].clone().with_task("web", "service:web");
    let snap = ClusterSnapshot::new(instances);
    let mut req = PlacementRequest::new("web", 1, 1);
    req.group = Some("service:web".into());
    req.constraints = vec![Constraint::DistinctInstance];
    req.strategy = vec![Strategy::Binpack(BinpackField::Memory)];
    req.count = 8;
    let plan = place(&snap, &req, 5);
    let placed = ids(&plan);
    let distinct: BTreeSet<_> = placed.iter().collect();
    assert_eq!(placed.len(), 4);
    assert_eq!(distinct.len(), 4);
    assert!(!placed.contains(&"i4"));
    assert_eq!(plan.failures.len(), 5);
    assert!(
        plan.failures
            .iter()
            .all(|f| f.reason == FailureReason::DistinctInstance)
    );
    assert_eq!(
        plan.failures[0].reason.as_str(),
        "DistinctInstance placement constraint unsatisfied."
    );
}

#[test]
fn fixed_port_conflicts_are_resource_ports() {
    let mut a = InstanceView::new("a", 4096, 4096);
    a.remaining.ports_tcp.insert(80);
    let b = InstanceView::new("b", 4096, 4096);
    let snap = ClusterSnapshot::new(vec![a, b]);
    let mut req = PlacementRequest::new("web", 1, 1);
    req.ports = vec![PortNeed::fixed(80, Protocol::Tcp)];
    req.count = 2;
    let plan = place(&snap, &req, 1);
    assert_eq!(ids(&plan), ["b"]);
    assert_eq!(plan.placements[0].host_ports[0].host_port, 80);
    let r = reasons(&plan);
    assert_eq!(r.len(), 2);
    assert!(r.values().all(|&r| r == "RESOURCE:PORTS"), "{r:?}");
}

#[test]
fn dynamic_ports_never_collide_and_run_out_as_resource_ports() {
    let mut a = InstanceView::new("a", 100_000, 100_000);
    a.remaining.ports_tcp.extend([40001, 40003]);
    let snap = ClusterSnapshot::with_dynamic_port_range(vec![a], 40000..=40009);
    let mut req = PlacementRequest::new("web", 1, 1);
    // Two dynamic tcp, one fixed tcp inside the range, one dynamic udp.
    req.ports = vec![
        PortNeed::dynamic(Protocol::Tcp),
        PortNeed::fixed(40000, Protocol::Tcp),
        PortNeed::dynamic(Protocol::Tcp),
        PortNeed::dynamic(Protocol::Udp),
    ];
    let plan = place(&snap, &req, 1);
    let ports: Vec<(u16, Protocol)> = plan.placements[0]
        .host_ports
        .iter()
        .map(|b| (b.host_port, b.protocol))
        .collect();
    // The fixed port is skipped by the dynamic ones, as are the taken ones.
    assert_eq!(
        ports,
        [
            (40002, Protocol::Tcp),
            (40000, Protocol::Tcp),
            (40004, Protocol::Tcp),
            (40000, Protocol::Udp)
        ]
    );

    // Ten tcp ports in range, two taken: four tasks of two dynamic ports fit.
    let mut req = PlacementRequest::new("web", 1, 1);
    req.ports = vec![
        PortNeed::dynamic(Protocol::Tcp),
        PortNeed {
            host_port: Some(0),
            protocol: Protocol::Tcp,
        },
    ];
    req.count = 5;
    let plan = place(&snap, &req, 1);
    assert_eq!(plan.placements.len(), 4);
    let mut all = BTreeSet::new();
    for p in &plan.placements {
        for b in &p.host_ports {
            assert!((40000..=40009).contains(&b.host_port));
            assert!(b.host_port != 40001 && b.host_port != 40003);
            assert!(all.insert(b.host_port), "port {} given twice", b.host_port);
        }
    }
    assert_eq!(
        reasons(&plan).values().copied().collect::<Vec<_>>(),
        ["RESOURCE:PORTS"]
    );
}

#[test]
fn dynamic_ports_come_from_each_instances_own_range() {
    // a and b have their own ranges (one of a's ports taken); c has none
    // and uses the snapshot's.
    let mut a = InstanceView::new("a", 100_000, 100_000).with_dynamic_port_range(50000..=50002);
    a.remaining.ports_tcp.insert(50001);
    let b = InstanceView::new("b", 100_000, 100_000).with_dynamic_port_range(60000..=60001);
    let c = InstanceView::new("c", 100_000, 100_000);
    let snap = ClusterSnapshot::with_dynamic_port_range(vec![a, b, c], 40000..=40000);
    assert_eq!(snap.instance_dynamic_port_range(0), 50000..=50002);
    assert_eq!(snap.instance_dynamic_port_range(2), 40000..=40000);
    let mut req = PlacementRequest::new("web", 1, 1);
    req.ports = vec![PortNeed::dynamic(Protocol::Tcp)];
    req.count = 10;
    let plan = place(&snap, &req, 7);
    let mut per: BTreeMap<&str, Vec<u16>> = BTreeMap::new();
    for p in &plan.placements {
        per.entry(p.instance_id.as_str())
            .or_default()
            .push(p.host_ports[0].host_port);
    }
    for v in per.values_mut() {
        v.sort_unstable();
    }
    assert_eq!(per["a"], [50000, 50002]);
    assert_eq!(per["b"], [60000, 60001]);
    assert_eq!(per["c"], [40000]);
    assert_eq!(plan.placements.len(), 5);
    assert!(
        reasons(&plan).values().all(|&r| r == "RESOURCE:PORTS"),
        "{plan:?}"
    );

    // A fixed port inside an instance's own range leaves one less dynamic
    // port there; outside the range it costs none.
    let a = InstanceView::new("a", 100_000, 100_000).with_dynamic_port_range(50000..=50001);
    let snap = ClusterSnapshot::new(vec![a]);
    let mut req = PlacementRequest::new("web", 1, 1);
    req.ports = vec![
        PortNeed::fixed(50000, Protocol::Tcp),
        PortNeed::dynamic(Protocol::Tcp),
    ];
    let plan = place(&snap, &req, 1);
    assert_eq!(plan.placements[0].host_ports[1].host_port, 50001);
    req.ports.push(PortNeed::dynamic(Protocol::Tcp));
    let plan = place(&snap, &req, 1);
    assert!(plan.placements.is_empty());
    assert_eq!(
        reasons(&plan).values().copied().collect::<Vec<_>>(),
        ["RESOURCE:PORTS"]
    );
    req.ports = vec![
        PortNeed::fixed(49153, Protocol::Tcp),
        PortNeed::dynamic(Protocol::Tcp),
        PortNeed::dynamic(Protocol::Tcp),
    ];
    let plan = place(&snap, &req, 1);
    let got: Vec<u16> = plan.placements[0]
        .host_ports
        .iter()
        .map(|b| b.host_port)
        .collect();
    assert_eq!(got, [49153, 50000, 50001]);
}

#[test]
fn first_failure_reason_per_active_instance() {
    let mut cpu = InstanceView::new("cpu", 100, 9000);
    cpu.remaining.cpu = 100;
    let mem = InstanceView::new("mem", 9000, 100);
    let mut ports = InstanceView::new("ports", 9000, 9000);
    ports.remaining.ports_tcp.insert(8080);
    let mut agent = InstanceView::new("agent", 9000, 9000);
    agent.agent_connected = false;
    let member = InstanceView::new("member", 9000, 9000).with_attribute("stack", "dev");
    let mut draining = InstanceView::new("draining", 9000, 9000);
    draining.status = InstanceStatus::Draining;
    let snap = ClusterSnapshot::new(vec![cpu, mem, ports, agent, member, draining]);
    let mut req = PlacementRequest::new("web", 200, 200);
    req.ports = vec![PortNeed::fixed(8080, Protocol::Tcp)];
    req.constraints = vec![Constraint::member_of("attribute:stack == prod").unwrap()];
    let plan = place(&snap, &req, 1);
    assert!(plan.placements.is_empty());
    let got: Vec<(String, &str)> = plan
        .failures
        .iter()
        .map(|f| {
            (
                f.arn
                    .as_ref()
                    .unwrap()
                    .as_str()
                    .rsplit('/')
                    .next()
                    .unwrap()
                    .to_owned(),
                f.reason.as_str(),
            )
        })
        .collect();
    let want: Vec<(String, &str)> = [
        ("cpu", "RESOURCE:CPU"),
        ("mem", "RESOURCE:MEMORY"),
        ("ports", "RESOURCE:PORTS"),
        ("agent", "AGENT"),
        ("member", "MemberOf placement constraint unsatisfied."),
    ]
    .iter()
    .map(|(a, b)| (a.to_string(), *b))
    .collect();
    assert_eq!(got, want);
}

#[test]
fn places_what_fits_and_reports_the_rest() {
    let snap = ClusterSnapshot::new(vec![with_mem("a", 1000), with_mem("b", 500)]);
    let mut req = PlacementRequest::new("web", 1, 400);
    req.count = 10;
    let plan = place(&snap, &req, 9);
    assert_eq!(plan.placements.len(), 3);
    assert_eq!(
        reasons(&plan).values().copied().collect::<Vec<_>>(),
        ["RESOURCE:MEMORY", "RESOURCE:MEMORY"]
    );
}

#[test]
fn no_active_instances() {
    let mut d = InstanceView::new("d", 1, 1);
    d.status = InstanceStatus::Draining;
    for snap in [ClusterSnapshot::new(vec![]), ClusterSnapshot::new(vec![d])] {
        let plan = place(&snap, &PlacementRequest::new("web", 1, 1), 1);
        assert!(plan.placements.is_empty());
        assert_eq!(plan.failures.len(), 1);
        assert_eq!(plan.failures[0].arn, None);
        assert_eq!(
            plan.failures[0].reason.as_str(),
            "No Container Instances were found in your cluster."
        );
    }
    let mut req = PlacementRequest::new("web", 1, 1);
    req.count = 0;
    assert_eq!(
        place(&ClusterSnapshot::new(vec![]), &req, 1),
        PlacementPlan::default()
    );
}

#[test]
fn member_of_restricts_and_sees_placements_of_the_request() {
    let snap = ClusterSnapshot::new(vec![
        InstanceView::new("t2-a", 4096, 4096).with_attribute("ecs.instance-type", "t2.micro"),
        InstanceView::new("m5", 4096, 4096).with_attribute("ecs.instance-type", "m5.large"),
        InstanceView::new("t2-b", 4096, 4096).with_attribute("ecs.instance-type", "t2.small"),
    ]);
    let mut req = PlacementRequest::new("web", 1, 1);
    req.constraints = vec![Constraint::member_of("attribute:ecs.instance-type =~ t2.*").unwrap()];
    req.count = 6;
    let plan = place(&snap, &req, 1);
    assert!(ids(&plan).iter().all(|id| id.starts_with("t2")));
    assert_eq!(plan.placements.len(), 6);

    // runningTasksCount counts the request's own placements.
    req.constraints = vec![Constraint::member_of("runningTasksCount == 0").unwrap()];
    req.count = 4;
    let plan = place(&snap, &req, 1);
    assert_eq!(plan.placements.len(), 3);
    assert!(
        plan.failures
            .iter()
            .all(|f| f.reason == FailureReason::MemberOf)
    );

    // Anti-affinity with the request's own group.
    req.group = Some("service:web".into());
    req.constraints = vec![Constraint::member_of("not(task:group == service:web)").unwrap()];
    req.count = 4;
    let plan = place(&snap, &req, 1);
    assert_eq!(plan.placements.len(), 3);
}

#[test]
fn task_group_affinity() {
    let snap = ClusterSnapshot::new(vec![
        InstanceView::new("a", 4096, 4096),
        InstanceView::new("b", 4096, 4096).with_task("db", "service:db"),
        InstanceView::new("c", 4096, 4096),
    ]);
    let mut req = PlacementRequest::new("cache", 1, 1);
    req.constraints = vec![Constraint::member_of("task:group == service:db").unwrap()];
    req.count = 3;
    assert_eq!(ids(&place(&snap, &req, 1)), ["b", "b", "b"]);
}

#[test]
fn random_is_seeded() {
    let snap = ClusterSnapshot::new(
        (0..10)
            .map(|i| InstanceView::new(format!("i{i}"), 4096, 4096))
            .collect(),
    );
    let mut req = PlacementRequest::new("web", 1, 1);
    req.strategy = vec![Strategy::Random];
    req.count = 5;
    let a = place(&snap, &req, 42);
    assert_eq!(a, place(&snap, &req, 42));
    let picks: BTreeSet<String> = (0..50)
        .flat_map(|s| place(&snap, &req, s).placements)
        .map(|p| p.instance_id.to_string())
        .collect();
    assert_eq!(picks.len(), 10);
    // No strategy: random too (ties broken by the seed).
    req.strategy.clear();
    let picks: BTreeSet<String> = (0..50)
        .flat_map(|s| place(&snap, &req, s).placements)
        .map(|p| p.instance_id.to_string())
        .collect();
    assert_eq!(picks.len(), 10);
}

#[test]
fn plans_do_not_depend_on_instance_order() {
    let instances = synthetic::cluster(&ClusterSpec {
        instances: 200,
        running_tasks: 2000,
        ..ClusterSpec::default()
    });
    let mut reversed = instances.clone();
    reversed.reverse();
    let (a, b) = (
        ClusterSnapshot::new(instances),
        ClusterSnapshot::new(reversed),
    );
    for strategy in [
        vec![Strategy::Random],
        vec![az_spread()],
        vec![Strategy::Binpack(BinpackField::Cpu)],
        vec![],
    ] {
        let mut req = PlacementRequest::new("web", 128, 256);
        req.count = 50;
        req.strategy = strategy;
        assert_eq!(ids(&place(&a, &req, 5)), ids(&place(&b, &req, 5)));
    }
}

#[test]
fn determinism_on_a_large_cluster() {
    let snap = ClusterSnapshot::new(synthetic::cluster(&ClusterSpec {
        instances: 1000,
        running_tasks: 18_000,
        ..ClusterSpec::default()
    }));
    let mut req = PlacementRequest::new("web", 128, 256);
    req.count = 200;
    req.group = Some("service:svc-3".into());
    req.ports = vec![
        PortNeed::dynamic(Protocol::Tcp),
        PortNeed::fixed(8080, Protocol::Tcp),
    ];
    req.constraints =
        vec![Constraint::member_of("attribute:ecs.instance-type != t3.medium").unwrap()];
    req.strategy = vec![az_spread(), Strategy::Binpack(BinpackField::Memory)];
    let first = place(&snap, &req, 99);
    for _ in 0..3 {
        assert_eq!(place(&snap, &req, 99), first);
    }
    assert_eq!(first.placements.len(), 200);
    // 8080 is fixed: no instance twice.
    let distinct: BTreeSet<_> = ids(&first).into_iter().collect();
    assert_eq!(distinct.len(), 200);
    // The zones stay balanced for svc-3 (counting its running tasks).
    let mut per_zone: HashMap<String, i64> = HashMap::new();
    for inst in snap.instances() {
        let z = inst
            .attribute("ecs.availability-zone")
            .flatten()
            .unwrap()
            .to_owned();
        let n = inst
            .running_tasks
            .iter()
            .filter(|t| t.group == "service:svc-3")
            .count() as i64;
        *per_zone.entry(z).or_default() += n;
    }
    for p in &first.placements {
        let z = snap
            .instance(&p.instance_id)
            .unwrap()
            .attribute("ecs.availability-zone")
            .flatten()
            .unwrap();
        *per_zone.get_mut(z).unwrap() += 1;
    }
    let (min, max) = (
        per_zone.values().min().unwrap(),
        per_zone.values().max().unwrap(),
    );
    assert!(max - min <= 1, "{per_zone:?}");
}

#[test]
fn a_placer_accumulates_across_requests() {
    let snap = ClusterSnapshot::new(vec![with_mem("a", 1000), with_mem("b", 1000)]);
    let mut placer = Placer::new(&snap);
    let mut req = PlacementRequest::new("web", 100, 600);
    req.strategy = vec![Strategy::Binpack(BinpackField::Memory)];
    let first = placer.place(&req, 1);
    let second = placer.place(&req, 1);
    assert_ne!(
        ids(&first),
        ids(&second),
        "the second request sees the first"
    );
    let third = placer.place(&req, 1);
    assert!(third.placements.is_empty());
    let left = placer.remaining(&first.placements[0].instance_id).unwrap();
    assert_eq!((left.cpu, left.memory), (3996, 400));
    // The snapshot itself is untouched.
    assert_eq!(snap.instances()[0].remaining.memory, 1000);

    // distinctInstance across requests of the same group.
    let snap = ClusterSnapshot::new(vec![with_mem("a", 9000), with_mem("b", 9000)]);
    let mut placer = Placer::new(&snap);
    let mut req = PlacementRequest::new("web", 1, 1);
    req.group = Some("service:new".into());
    req.constraints = vec![Constraint::DistinctInstance];
    assert_eq!(placer.place(&req, 1).placements.len(), 1);
    assert_eq!(placer.place(&req, 2).placements.len(), 1);
    assert_eq!(placer.place(&req, 3).failures.len(), 2);
    // And spread sees the earlier requests' tasks of a group new to the
    // snapshot.
    let mut spread = PlacementRequest::new("x", 1, 1);
    spread.group = Some("service:fresh".into());
    spread.strategy = vec![Strategy::Spread(SpreadField::InstanceId)];
    let a = placer.place(&spread, 1);
    let b = placer.place(&spread, 1);
    assert_ne!(ids(&a), ids(&b));
}

#[test]
fn request_and_plan_use_ecs_shapes_in_json() {
    let json = r#"{
        "count": 2, "cpu": 256, "memory": 512, "taskDefinitionFamily": "web",
        "ports": [{"hostPort": 80, "protocol": "tcp"}, {"protocol": "udp"}],
        "constraints": [{"type": "memberOf", "expression": "attribute:ecs.os-type == linux"}, {"type": "distinctInstance"}],
        "strategy": [{"type": "spread", "field": "attribute:ecs.availability-zone"}, {"type": "binpack", "field": "MEMORY"}, {"type": "spread", "field": "host"}, {"type": "random"}]
    }"#;
    let req: PlacementRequest = serde_json::from_str(json).unwrap();
    req.validate().unwrap();
    assert_eq!(
        req.strategy,
        [
            az_spread(),
            Strategy::Binpack(BinpackField::Memory),
            Strategy::Spread(SpreadField::InstanceId),
            Strategy::Random
        ]
    );
    let back: PlacementRequest =
        serde_json::from_str(&serde_json::to_string(&req).unwrap()).unwrap();
    assert_eq!(back, req);
    let bad = json.replace("attribute:ecs.os-type == linux", "attribute:ecs.os-type ==");
    let err = serde_json::from_str::<PlacementRequest>(&bad)
        .unwrap_err()
        .to_string();
    assert!(err.contains("Invalid expression"), "{err}");
    let bad = json.replace("\"MEMORY\"", "\"disk\"");
    assert!(serde_json::from_str::<PlacementRequest>(&bad).is_err());

    let snap = ClusterSnapshot::new(vec![InstanceView::new("a", 1, 1)]);
    let plan = place(&snap, &PlacementRequest::new("web", 5, 5), 1);
    let v = serde_json::to_value(&plan).unwrap();
    assert_eq!(v["failures"][0]["reason"], "ResourceCpu");
    assert_eq!(plan.failures[0].reason.as_str(), "RESOURCE:CPU");
}

#[test]
fn validate_checks_ecs_limits() {
    let mut req = PlacementRequest::new("web", 1, 1);
    req.validate().unwrap();
    req.count = 0;
    assert!(req.validate().is_err());
    req.count = 1;
    req.strategy = vec![Strategy::Random; 6];
    assert!(req.validate().is_err());
    req.strategy.clear();
    req.constraints = vec![Constraint::DistinctInstance; 11];
    assert!(req.validate().is_err());
    req.constraints.clear();
    req.ports = vec![
        PortNeed::fixed(80, Protocol::Tcp),
        PortNeed::fixed(80, Protocol::Tcp),
    ];
    assert!(req.validate().is_err());
    req.ports[1].protocol = Protocol::Udp;
    req.validate().unwrap();
    assert!(Constraint::from_ecs("memberOf", None).is_err());
    assert!(Constraint::from_ecs("distinctInstance", Some("x")).is_err());
    assert!(Constraint::from_ecs("affinity", None).is_err());
    assert!(Strategy::from_ecs("spread", Some("ecs.availability-zone")).is_err());
    assert!(Strategy::from_ecs("spread", None).is_err());
    assert!(Strategy::from_ecs("pack", Some("cpu")).is_err());
}

#[test]
fn spreading_over_an_unknown_attribute_falls_through_to_the_next_strategy() {
    let snap = ClusterSnapshot::new(vec![with_mem("a", 1000), with_mem("b", 500)]);
    let mut req = PlacementRequest::new("web", 1, 100);
    req.strategy = vec![
        Strategy::Spread(SpreadField::Attribute("rack".into())),
        Strategy::Binpack(BinpackField::Memory),
    ];
    assert_eq!(ids(&place(&snap, &req, 1)), ["b"]);
}

#[test]
fn reservation_helpers() {
    use berth_placement::{cpu_reservation, memory_reservation};
    assert_eq!(memory_reservation(Some(2048), [(Some(1), None)]), 2048);
    assert_eq!(
        memory_reservation(
            None,
            [(Some(512), Some(256)), (Some(300), None), (None, None)]
        ),
        556
    );
    assert_eq!(cpu_reservation(None, [Some(256), None, Some(128)]), 384);
    assert_eq!(cpu_reservation(Some(1024), [Some(256)]), 1024);
}

#[test]
fn snapshot_and_placer_can_be_shared_across_threads() {
    fn send_sync<T: Send + Sync>() {}
    fn send<T: Send>() {}
    send_sync::<ClusterSnapshot>();
    send_sync::<PlacementRequest>();
    send::<Placer<'static>>();
    let snap = std::sync::Arc::new(ClusterSnapshot::new(vec![with_mem("a", 1000)]));
    let handles: Vec<_> = (0..2)
        .map(|k| {
            let snap = snap.clone();
            std::thread::spawn(move || {
                place(&snap, &PlacementRequest::new("web", 1, 1), k)
                    .placements
                    .len()
            })
        })
        .collect();
    for h in handles {
        assert_eq!(h.join().unwrap(), 1);
    }
}

#[test]
fn bad_expressions_are_typed_errors_with_clear_messages() {
    let err = Constraint::member_of("attribute:ecs.instance-type =~ *").unwrap_err();
    assert!(matches!(
        err,
        berth_placement::QueryError::InvalidPattern { .. }
    ));
    assert_eq!(
        err.to_string(),
        "invalid regular expression \"*\" at position 31 of the expression: dangling meta character '*' near position 0"
    );
    let err = Constraint::from_ecs("memberOf", Some("attribute:x ==")).unwrap_err();
    assert_eq!(
        err.to_string(),
        "Invalid expression: unexpected end of expression at position 14 of the expression: expected a value"
    );
}
