//! Invariants over random clusters and requests.

use std::collections::{BTreeMap, BTreeSet};

use berth_placement::query;
use berth_placement::{
    BinpackField, ClusterSnapshot, Constraint, InstanceStatus, InstanceView, PlacementPlan,
    PlacementRequest, Placer, PortNeed, Protocol, SpreadField, Strategy as Strat, TaskArn,
    TaskSummary, place,
};
use proptest::prelude::*;

/// Per instance: cpu, memory and ports used by the plan.
type Used = BTreeMap<String, (u64, u64, BTreeSet<(u16, Protocol)>)>;

const RANGE: std::ops::RangeInclusive<u16> = 50000..=50005;
const GROUPS: [&str; 3] = ["service:a", "service:b", "family:web"];

fn instance_strategy() -> impl proptest::strategy::Strategy<Value = InstanceView> {
    (
        0u32..3000,
        0u32..6000,
        proptest::collection::btree_set(prop_oneof![80u16..84, 50000u16..50004], 0..4),
        proptest::collection::btree_set(prop_oneof![80u16..84, 50000u16..50004], 0..2),
        proptest::option::of(0usize..3),
        proptest::option::of(0usize..2),
        prop_oneof![8 => Just(true), 1 => Just(false)],
        prop_oneof![8 => Just(InstanceStatus::Active), 1 => Just(InstanceStatus::Draining)],
        proptest::collection::vec(0usize..3, 0..4),
    )
        .prop_map(
            |(cpu, mem, tcp, udp, az, itype, connected, status, tasks)| {
                let mut i = InstanceView::new("x", cpu, mem);
                i.remaining.ports_tcp = tcp;
                i.remaining.ports_udp = udp;
                if let Some(az) = az {
                    i.attributes
                        .insert("ecs.availability-zone".into(), Some(format!("az{az}")));
                }
                if let Some(t) = itype {
                    i.attributes.insert(
                        "ecs.instance-type".into(),
                        Some(["t2.micro", "m5.large"][t].into()),
                    );
                }
                i.agent_connected = connected;
                i.status = status;
                for g in tasks {
                    i = i.with_task("f", GROUPS[g]);
                }
                i
            },
        )
}

fn cluster_strategy() -> impl proptest::strategy::Strategy<Value = Vec<InstanceView>> {
    proptest::collection::vec(instance_strategy(), 0..10).prop_map(|mut v| {
        for (k, i) in v.iter_mut().enumerate() {
            i.id = format!("ci-{k}").into();
            i.arn =
                format!("arn:aws:ecs:us-east-1:000000000000:container-instance/c/ci-{k}").into();
            for (n, t) in i.running_tasks.iter_mut().enumerate() {
                t.task_arn = TaskArn::new(format!("t-{k}-{n}"));
            }
        }
        v
    })
}

const EXPRESSIONS: [&str; 8] = [
    "attribute:ecs.availability-zone in [az0, az1]",
    "attribute:ecs.instance-type =~ t2.*",
    "not(attribute:ecs.instance-type exists)",
    "runningTasksCount <= 2",
    "not(task:group == service:a)",
    "task:group exists or attribute:ecs.availability-zone == az2",
    "attribute:ecs.availability-zone != az0 and runningTasksCount < 4",
    "agentConnected == true",
];

fn strategy_strategy() -> impl proptest::strategy::Strategy<Value = Strat> {
    prop_oneof![
        Just(Strat::Binpack(BinpackField::Cpu)),
        Just(Strat::Binpack(BinpackField::Memory)),
        Just(Strat::Spread(SpreadField::InstanceId)),
        Just(Strat::Spread(SpreadField::Attribute(
            "ecs.availability-zone".into()
        ))),
        Just(Strat::Spread(SpreadField::Attribute(
            "ecs.instance-type".into()
        ))),
        Just(Strat::Random),
    ]
}

fn port_strategy() -> impl proptest::strategy::Strategy<Value = PortNeed> {
    (
        prop_oneof![
            Just(None),
            Just(Some(0u16)),
            (80u16..86).prop_map(Some),
            (50000u16..50006).prop_map(Some)
        ],
        any::<bool>(),
    )
        .prop_map(|(host_port, udp)| PortNeed {
            host_port,
            protocol: if udp { Protocol::Udp } else { Protocol::Tcp },
        })
}

fn request_strategy() -> impl proptest::strategy::Strategy<Value = PlacementRequest> {
    (
        1u32..12,
        0u32..1500,
        0u32..3000,
        proptest::collection::vec(port_strategy(), 0..3),
        any::<bool>(),
        proptest::collection::vec(0usize..EXPRESSIONS.len(), 0..2),
        proptest::collection::vec(strategy_strategy(), 0..3),
        0usize..4,
    )
        .prop_map(
            |(count, cpu, memory, ports, distinct, exprs, strategy, group)| {
                let mut constraints: Vec<Constraint> = exprs
                    .into_iter()
                    .map(|e| Constraint::member_of(EXPRESSIONS[e]).unwrap())
                    .collect();
                if distinct {
                    constraints.push(Constraint::DistinctInstance);
                }
                PlacementRequest {
                    count,
                    cpu,
                    memory,
                    ports,
                    constraints,
                    strategy,
                    group: GROUPS.get(group).map(|g| g.to_string()),
                    task_definition_family: "web".into(),
                }
            },
        )
}

/// Checks every invariant of one plan; `earlier` are placements made before
/// (by the same placer) of the given groups.
fn check_plan(
    snap: &ClusterSnapshot,
    req: &PlacementRequest,
    plan: &PlacementPlan,
) -> Result<(), TestCaseError> {
    let group = req.effective_group().into_owned();
    prop_assert!(plan.placements.len() <= req.count as usize);
    let active = snap
        .instances()
        .iter()
        .filter(|i| i.status == InstanceStatus::Active)
        .count();
    if plan.placements.len() < req.count as usize {
        if active == 0 {
            prop_assert_eq!(plan.failures.len(), 1);
        } else {
            prop_assert_eq!(
                plan.failures.len(),
                active,
                "one failure per ACTIVE instance"
            );
        }
    } else {
        prop_assert!(plan.failures.is_empty());
    }

    let mut views: BTreeMap<String, InstanceView> = snap
        .instances()
        .iter()
        .map(|i| (i.id.to_string(), i.clone()))
        .collect();
    let mut used: Used = BTreeMap::new();
    for p in &plan.placements {
        let inst = snap
            .instance(&p.instance_id)
            .expect("placed on a known instance");
        prop_assert_eq!(inst.status, InstanceStatus::Active);
        prop_assert!(inst.agent_connected);
        // memberOf holds given the tasks placed before this one.
        let view = views.get_mut(inst.id.as_str()).unwrap();
        for c in &req.constraints {
            if let Constraint::MemberOf(m) = c {
                prop_assert!(
                    m.expr().evaluate(view),
                    "{} does not hold on {}",
                    m.text(),
                    inst.id
                );
            }
            if let Constraint::DistinctInstance = c {
                prop_assert!(
                    !view.running_tasks.iter().any(|t| t.group == group),
                    "distinctInstance broken"
                );
            }
        }
        view.running_tasks.push(TaskSummary {
            task_definition_family: req.task_definition_family.clone(),
            group: group.clone(),
            started_by: None,
            task_arn: TaskArn::new("new"),
        });

        let entry = used.entry(inst.id.to_string()).or_default();
        entry.0 += u64::from(req.cpu);
        entry.1 += u64::from(req.memory);
        prop_assert!(
            entry.0 <= u64::from(inst.remaining.cpu),
            "cpu over-committed on {}",
            inst.id
        );
        prop_assert!(
            entry.1 <= u64::from(inst.remaining.memory),
            "memory over-committed on {}",
            inst.id
        );
        prop_assert_eq!(p.host_ports.len(), req.ports.len());
        for (b, need) in p.host_ports.iter().zip(&req.ports) {
            prop_assert_eq!(b.protocol, need.protocol);
            match need.static_port() {
                Some(port) => prop_assert_eq!(b.host_port, port),
                None => prop_assert!(
                    RANGE.contains(&b.host_port),
                    "dynamic port {} outside the range",
                    b.host_port
                ),
            }
            prop_assert!(
                !inst.remaining.ports(b.protocol).contains(&b.host_port),
                "port {} already taken",
                b.host_port
            );
            prop_assert!(
                entry.2.insert((b.host_port, b.protocol)),
                "port {} given twice on {}",
                b.host_port,
                inst.id
            );
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn plans_never_overcommit_and_respect_constraints(
        instances in cluster_strategy(),
        req in request_strategy(),
        seed in any::<u64>(),
    ) {
        let snap = ClusterSnapshot::with_dynamic_port_range(instances, RANGE);
        let plan = place(&snap, &req, seed);
        check_plan(&snap, &req, &plan)?;
        // Deterministic for a seed.
        prop_assert_eq!(place(&snap, &req, seed), plan);
    }

    #[test]
    fn a_placer_never_overcommits_across_requests(
        instances in cluster_strategy(),
        reqs in proptest::collection::vec(request_strategy(), 1..4),
        seed in any::<u64>(),
    ) {
        // Merge the plans of several requests into one request's worth of
        // checks: resources and ports must hold across all of them.
        let snap = ClusterSnapshot::with_dynamic_port_range(instances, RANGE);
        let mut placer = Placer::new(&snap);
        let mut used: Used = BTreeMap::new();
        for (k, req) in reqs.iter().enumerate() {
            let plan = placer.place(req, seed.wrapping_add(k as u64));
            for p in &plan.placements {
                let inst = snap.instance(&p.instance_id).unwrap();
                let e = used.entry(inst.id.to_string()).or_default();
                e.0 += u64::from(req.cpu);
                e.1 += u64::from(req.memory);
                prop_assert!(e.0 <= u64::from(inst.remaining.cpu));
                prop_assert!(e.1 <= u64::from(inst.remaining.memory));
                for b in &p.host_ports {
                    prop_assert!(!inst.remaining.ports(b.protocol).contains(&b.host_port));
                    prop_assert!(e.2.insert((b.host_port, b.protocol)), "port {} twice", b.host_port);
                }
            }
        }
        for (id, (cpu, mem, ports)) in &used {
            let base = snap.instance(&id.as_str().into()).unwrap();
            let left = placer.remaining(&id.as_str().into()).unwrap();
            prop_assert_eq!(u64::from(left.cpu), u64::from(base.remaining.cpu) - cpu);
            prop_assert_eq!(u64::from(left.memory), u64::from(base.remaining.memory) - mem);
            prop_assert_eq!(left.ports_tcp.len() + left.ports_udp.len(),
                base.remaining.ports_tcp.len() + base.remaining.ports_udp.len() + ports.len());
        }
    }

    #[test]
    fn plans_do_not_depend_on_instance_order(
        instances in cluster_strategy(),
        req in request_strategy(),
        seed in any::<u64>(),
    ) {
        let mut reversed = instances.clone();
        reversed.reverse();
        let a = place(&ClusterSnapshot::with_dynamic_port_range(instances, RANGE), &req, seed);
        let b = place(&ClusterSnapshot::with_dynamic_port_range(reversed, RANGE), &req, seed);
        prop_assert_eq!(&a.placements, &b.placements);
        let fa: BTreeSet<_> = a.failures.iter().map(|f| (f.arn.clone(), f.reason)).collect();
        let fb: BTreeSet<_> = b.failures.iter().map(|f| (f.arn.clone(), f.reason)).collect();
        prop_assert_eq!(fa, fb);
    }

    #[test]
    fn binpack_picks_the_least_left_feasible_instance(
        instances in cluster_strategy(),
        cpu in 0u32..1500,
        memory in 0u32..3000,
        seed in any::<u64>(),
    ) {
        let snap = ClusterSnapshot::new(instances);
        let mut req = PlacementRequest::new("web", cpu, memory);
        req.strategy = vec![Strat::Binpack(BinpackField::Memory)];
        let plan = place(&snap, &req, seed);
        let best = snap.instances().iter()
            .filter(|i| i.status == InstanceStatus::Active && i.agent_connected)
            .filter(|i| i.remaining.cpu >= cpu && i.remaining.memory >= memory)
            .map(|i| i.remaining.memory - memory)
            .min();
        let got = plan.placements.first().map(|p| snap.instance(&p.instance_id).unwrap().remaining.memory - memory);
        prop_assert_eq!(got, best);
    }

    #[test]
    fn spread_keeps_zones_within_one(
        zones in 1usize..5,
        per_zone in 1usize..4,
        count in 1u32..40,
        seed in any::<u64>(),
    ) {
        let instances = (0..zones * per_zone)
            .map(|k| InstanceView::new(format!("i{k}"), 100_000, 100_000)
                .with_attribute("ecs.availability-zone", &format!("z{}", k % zones)))
            .collect();
        let snap = ClusterSnapshot::new(instances);
        let mut req = PlacementRequest::new("web", 1, 1);
        req.count = count;
        req.strategy = vec![
            Strat::Spread(SpreadField::Attribute("ecs.availability-zone".into())),
            Strat::Spread(SpreadField::InstanceId),
        ];
        let plan = place(&snap, &req, seed);
        let mut zone_counts = vec![0i64; zones];
        let mut inst_counts = BTreeMap::new();
        for p in &plan.placements {
            let k: usize = p.instance_id.as_str()[1..].parse().unwrap();
            zone_counts[k % zones] += 1;
            *inst_counts.entry(k).or_insert(0i64) += 1;
        }
        prop_assert!(zone_counts.iter().max().unwrap() - zone_counts.iter().min().unwrap() <= 1);
        // Within the cluster as a whole, instances also stay within one.
        let max = inst_counts.values().max().copied().unwrap_or(0);
        let min = if inst_counts.len() < zones * per_zone { 0 } else { *inst_counts.values().min().unwrap() };
        prop_assert!(max - min <= 1);
    }
}

// --- The query language: the snapshot-bound evaluator agrees with the
// reference one, and printing round-trips. ---

const LEAVES: [&str; 16] = [
    "attribute:ecs.availability-zone == az1",
    "attribute:ecs.availability-zone != az0",
    "attribute:ecs.availability-zone exists",
    "attribute:ecs.availability-zone in [az0, az2]",
    "attribute:ecs.instance-type =~ t2.*",
    "attribute:ecs.instance-type !~ 'm5\\..*'",
    "attribute:ecs.instance-type not_exists",
    "attribute:nowhere == x",
    "attribute:nowhere != x",
    "runningTasksCount > 1",
    "runningTasksCount == 0",
    "task:group == service:a",
    "task:group in [service:b, family:web]",
    "task:group =~ service:.*",
    "agentConnected == false",
    "task:group != service:b",
];

fn expr_text() -> impl proptest::strategy::Strategy<Value = String> {
    let leaf = (0..LEAVES.len()).prop_map(|k| LEAVES[k].to_string());
    leaf.prop_recursive(4, 24, 2, |inner| {
        prop_oneof![
            (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("({a}) and ({b})")),
            (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("{a} || {b}")),
            inner.clone().prop_map(|a| format!("not ({a})")),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn bound_memberof_agrees_with_the_reference_evaluator(
        instances in cluster_strategy(),
        text in expr_text(),
    ) {
        let expr = query::parse(&text).unwrap();
        let reparsed = query::parse(&expr.to_string()).unwrap();
        prop_assert_eq!(&reparsed, &expr);
        let snap = ClusterSnapshot::new(instances);
        let mut req = PlacementRequest::new("web", 0, 0);
        req.constraints = vec![Constraint::member_of(&text).unwrap()];
        // Every feasible instance is offered in turn via distinct
        // placements: the chosen set must be exactly the matching ones.
        req.constraints.push(Constraint::DistinctInstance);
        req.group = Some("service:probe".into());
        req.count = snap.len() as u32 + 1;
        let plan = place(&snap, &req, 1);
        let got: BTreeSet<String> = plan.placements.iter().map(|p| p.instance_id.to_string()).collect();
        let want: BTreeSet<String> = snap.instances().iter()
            .filter(|i| i.status == InstanceStatus::Active && i.agent_connected)
            .filter(|i| {
                // Placements of "service:probe" add one task each: the
                // expression must hold as the instance stood before.
                expr.evaluate(*i)
            })
            .map(|i| i.id.to_string())
            .collect();
        prop_assert_eq!(got, want);
    }
}
