//! Model-based check: a deliberately naive placement — full key tuples over
//! every instance, the reference query evaluator on instance views with the
//! placed tasks added, port sets rebuilt from scratch — must give exactly
//! the engine's plans (placements, ports and failures) on random inputs.
//! It shares only the seeded hash with the engine, so it covers the
//! indexes, the overlay, the packed keys, the bucket-ordered scan and the
//! bound expressions.

use std::collections::BTreeSet;

use proptest::prelude::*;

use crate::model::{InstanceStatus, InstanceView, Protocol, TaskArn, TaskSummary};
use crate::plan::{Failure, FailureReason, Placement, PlacementPlan, PortBinding};
use crate::rank::{RANDOM_SALT, TIE_SALT};
use crate::request::{
    BinpackField, Constraint, PlacementRequest, PortNeed, SpreadField, Strategy as Strat,
};
use crate::rng;
use crate::snapshot::ClusterSnapshot;

const RANGE: std::ops::RangeInclusive<u16> = 50000..=50004;
const GROUPS: [&str; 3] = ["service:a", "service:b", "family:web"];

fn reference(instances: &[InstanceView], req: &PlacementRequest, seed: u64) -> PlacementPlan {
    let mut plan = PlacementPlan::default();
    if req.count == 0 {
        return plan;
    }
    if !instances.iter().any(|i| i.status == InstanceStatus::Active) {
        plan.failures.push(Failure {
            arn: None,
            reason: FailureReason::NoContainerInstances,
        });
        return plan;
    }
    let group = req.effective_group().into_owned();
    let mut views: Vec<InstanceView> = instances.to_vec();
    let mut taken: Vec<(u32, u32)> = vec![(0, 0); instances.len()];

    let first_failure =
        |views: &[InstanceView], taken: &[(u32, u32)], i: usize| -> Option<FailureReason> {
            let v = &views[i];
            if !v.agent_connected {
                return Some(FailureReason::Agent);
            }
            if v.remaining.cpu.saturating_sub(taken[i].0) < req.cpu {
                return Some(FailureReason::ResourceCpu);
            }
            if v.remaining.memory.saturating_sub(taken[i].1) < req.memory {
                return Some(FailureReason::ResourceMemory);
            }
            let mut statics: BTreeSet<(Protocol, u16)> = BTreeSet::new();
            for p in &req.ports {
                if let Some(port) = p.static_port()
                    && (v.remaining.ports(p.protocol).contains(&port)
                        || !statics.insert((p.protocol, port)))
                {
                    return Some(FailureReason::ResourcePorts);
                }
            }
            for proto in [Protocol::Tcp, Protocol::Udp] {
                let need = req
                    .ports
                    .iter()
                    .filter(|p| p.protocol == proto && p.static_port().is_none())
                    .count();
                let free = RANGE
                    .filter(|port| {
                        !v.remaining.ports(proto).contains(port)
                            && !statics.contains(&(proto, *port))
                    })
                    .count();
                if free < need {
                    return Some(FailureReason::ResourcePorts);
                }
            }
            for c in &req.constraints {
                if let Constraint::MemberOf(m) = c
                    && !m.expr().evaluate(v)
                {
                    return Some(FailureReason::MemberOf);
                }
            }
            if req.constraints.contains(&Constraint::DistinctInstance)
                && v.running_tasks.iter().any(|t| t.group == group)
            {
                return Some(FailureReason::DistinctInstance);
            }
            None
        };

    for k in 0..req.count {
        let tie_seed = rng::placement_seed(seed, k, TIE_SALT);
        let mut best: Option<(Vec<u64>, String, usize)> = None;
        for (i, v) in views.iter().enumerate() {
            if v.status != InstanceStatus::Active || first_failure(&views, &taken, i).is_some() {
                continue;
            }
            let mut keys = Vec::new();
            for (j, s) in req.strategy.iter().enumerate() {
                keys.push(match s {
                    Strat::Binpack(BinpackField::Cpu) => {
                        u64::from(v.remaining.cpu - taken[i].0 - req.cpu)
                    }
                    Strat::Binpack(BinpackField::Memory) => {
                        u64::from(v.remaining.memory - taken[i].1 - req.memory)
                    }
                    Strat::Spread(SpreadField::InstanceId) => {
                        v.running_tasks.iter().filter(|t| t.group == group).count() as u64
                    }
                    Strat::Spread(SpreadField::Attribute(a)) => {
                        let mine = v.attribute(a);
                        views
                            .iter()
                            .filter(|w| w.attribute(a) == mine)
                            .map(|w| {
                                w.running_tasks.iter().filter(|t| t.group == group).count() as u64
                            })
                            .sum()
                    }
                    Strat::Random => {
                        let s = rng::placement_seed(seed, k, RANDOM_SALT + j as u64);
                        rng::mix(s ^ rng::hash_str(v.id.as_str())) >> 32
                    }
                });
            }
            keys.push(rng::mix(tie_seed ^ rng::hash_str(v.id.as_str())));
            let cand = (keys, v.id.to_string(), i);
            if best
                .as_ref()
                .is_none_or(|b| (&cand.0, &cand.1) < (&b.0, &b.1))
            {
                best = Some(cand);
            }
        }
        let Some((_, _, i)) = best else {
            for (i, v) in views.iter().enumerate() {
                if v.status == InstanceStatus::Active {
                    let reason =
                        first_failure(&views, &taken, i).unwrap_or(FailureReason::ResourcePorts);
                    plan.failures.push(Failure {
                        arn: Some(v.arn.clone()),
                        reason,
                    });
                }
            }
            break;
        };
        // Ports: fixed as asked, dynamic lowest free.
        let v = &mut views[i];
        let mut chosen: BTreeSet<(Protocol, u16)> = req
            .ports
            .iter()
            .filter_map(|p| p.static_port().map(|port| (p.protocol, port)))
            .collect();
        let mut host_ports = Vec::new();
        for p in &req.ports {
            let port = match p.static_port() {
                Some(port) => port,
                None => {
                    let port = RANGE
                        .clone()
                        .find(|port| {
                            !v.remaining.ports(p.protocol).contains(port)
                                && !chosen.contains(&(p.protocol, *port))
                        })
                        .unwrap_or_else(|| panic!("the filter counted a free port"));
                    chosen.insert((p.protocol, port));
                    port
                }
            };
            host_ports.push(PortBinding {
                host_port: port,
                protocol: p.protocol,
            });
        }
        for b in &host_ports {
            match b.protocol {
                Protocol::Tcp => v.remaining.ports_tcp.insert(b.host_port),
                Protocol::Udp => v.remaining.ports_udp.insert(b.host_port),
            };
        }
        taken[i].0 += req.cpu;
        taken[i].1 += req.memory;
        v.running_tasks.push(TaskSummary {
            task_definition_family: req.task_definition_family.clone(),
            group: group.clone(),
            started_by: None,
            task_arn: TaskArn::new("placed"),
        });
        plan.placements.push(Placement {
            instance_id: v.id.clone(),
            instance_arn: v.arn.clone(),
            host_ports,
        });
    }
    plan
}

fn instance() -> impl proptest::strategy::Strategy<Value = InstanceView> {
    (
        (0u32..3000, 0u32..6000),
        proptest::collection::btree_set(prop_oneof![80u16..83, 50000u16..50005], 0..4),
        proptest::collection::btree_set(prop_oneof![80u16..83, 50000u16..50005], 0..2),
        (
            proptest::option::of(0usize..4),
            proptest::option::of(0usize..2),
        ),
        (
            prop_oneof![6 => Just(true), 1 => Just(false)],
            prop_oneof![6 => Just(InstanceStatus::Active), 1 => Just(InstanceStatus::Draining)],
        ),
        proptest::collection::vec(0usize..3, 0..4),
    )
        .prop_map(
            |((cpu, mem), tcp, udp, (az, itype), (connected, status), tasks)| {
                let mut i = InstanceView::new("x", cpu, mem);
                i.remaining.ports_tcp = tcp;
                i.remaining.ports_udp = udp;
                if let Some(az) = az {
                    i.attributes.insert("zone".into(), Some(format!("z{az}")));
                }
                if let Some(t) = itype {
                    i.attributes
                        .insert("type".into(), Some(["t2.micro", "m5.large"][t].into()));
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

fn cluster() -> impl proptest::strategy::Strategy<Value = Vec<InstanceView>> {
    proptest::collection::vec(instance(), 0..9).prop_map(|mut v| {
        for (k, i) in v.iter_mut().enumerate() {
            i.id = format!("ci-{k}").into();
            i.arn = format!("arn:ci-{k}").into();
        }
        v
    })
}

const EXPRESSIONS: [&str; 6] = [
    "attribute:zone in [z0, z1]",
    "attribute:type =~ t2.*",
    "runningTasksCount <= 3",
    "not(task:group == service:a)",
    "task:group exists or attribute:zone == z2",
    "attribute:zone != z0 and runningTasksCount < 5",
];

fn strategy() -> impl proptest::strategy::Strategy<Value = Strat> {
    prop_oneof![
        Just(Strat::Binpack(BinpackField::Cpu)),
        Just(Strat::Binpack(BinpackField::Memory)),
        Just(Strat::Spread(SpreadField::InstanceId)),
        Just(Strat::Spread(SpreadField::Attribute("zone".into()))),
        Just(Strat::Spread(SpreadField::Attribute("type".into()))),
        Just(Strat::Spread(SpreadField::Attribute("nowhere".into()))),
        Just(Strat::Random),
    ]
}

fn request() -> impl proptest::strategy::Strategy<Value = PlacementRequest> {
    (
        (1u32..10, 0u32..1500, 0u32..3000),
        proptest::collection::vec(
            (
                prop_oneof![
                    Just(None),
                    (80u16..84).prop_map(Some),
                    (50000u16..50005).prop_map(Some)
                ],
                any::<bool>(),
            ),
            0..3,
        ),
        (
            any::<bool>(),
            proptest::collection::vec(0usize..EXPRESSIONS.len(), 0..2),
        ),
        proptest::collection::vec(strategy(), 0..5),
        0usize..4,
    )
        .prop_map(
            |((count, cpu, memory), ports, (distinct, exprs), strategy, group)| {
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
                    ports: ports
                        .into_iter()
                        .map(|(host_port, udp)| PortNeed {
                            host_port,
                            protocol: if udp { Protocol::Udp } else { Protocol::Tcp },
                        })
                        .collect(),
                    constraints,
                    strategy,
                    group: GROUPS.get(group).map(|g| g.to_string()),
                    task_definition_family: "web".into(),
                }
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1024))]

    #[test]
    fn engine_matches_the_naive_model(instances in cluster(), req in request(), seed in any::<u64>()) {
        let snap = ClusterSnapshot::with_dynamic_port_range(instances.clone(), RANGE);
        let got = crate::place(&snap, &req, seed);
        let want = reference(&instances, &req, seed);
        prop_assert_eq!(got, want);
    }

    #[test]
    fn a_placer_matches_the_model_across_requests(
        instances in cluster(),
        reqs in proptest::collection::vec(request(), 1..4),
        seed in any::<u64>(),
    ) {
        let snap = ClusterSnapshot::with_dynamic_port_range(instances.clone(), RANGE);
        let mut placer = crate::Placer::new(&snap);
        // The model replays each request on the instances as the earlier
        // plans left them.
        let mut state = instances;
        for (k, req) in reqs.iter().enumerate() {
            let s = seed.wrapping_add(k as u64);
            let got = placer.place(req, s);
            let want = reference(&state, req, s);
            prop_assert_eq!(&got, &want);
            for p in &got.placements {
                let Some(v) = state.iter_mut().find(|v| v.id == p.instance_id) else { continue };
                v.remaining.cpu -= req.cpu;
                v.remaining.memory -= req.memory;
                for b in &p.host_ports {
                    match b.protocol {
                        Protocol::Tcp => v.remaining.ports_tcp.insert(b.host_port),
                        Protocol::Udp => v.remaining.ports_udp.insert(b.host_port),
                    };
                }
                *v = v.clone().with_task(&req.task_definition_family, &req.effective_group());
            }
        }
    }
}
