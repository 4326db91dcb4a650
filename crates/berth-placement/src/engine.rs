//! The placement loop: for each task of a request, scan the candidates
//! through the filters, keep the best by the rankers, record the choice in
//! the overlay so the next task sees it; when nothing fits, say why for
//! every ACTIVE instance.

use std::collections::{BTreeSet, HashMap};

use crate::bound::BoundExpr;
use crate::feasibility::{self, Constraints, Left, Needs};
use crate::model::{ContainerInstanceId, Protocol, Resources};
use crate::overlay::{Delta, Overlay};
use crate::plan::{Failure, FailureReason, Placement, PlacementPlan, PortBinding};
use crate::rank::{Best, PackedBest, Primary, RANDOM_SALT, RankSpec, Ranker, TIE_SALT};
use crate::request::{Constraint, PlacementRequest};
use crate::rng;
use crate::snapshot::{ClusterSnapshot, CpuMem};

/// Strategies past this many are ignored (ECS allows five).
const MAX_RANKERS: usize = 15;
const MAX_KEYS: usize = MAX_RANKERS + 1;
/// Spreading over a column with at most this many values (zones, racks,
/// instance types) scans bucket by bucket, emptiest first.
const ORDERED_BUCKETS: usize = 64;

/// Places one request over a snapshot. Pure: the same snapshot, request and
/// seed give the same plan.
pub fn place(
    snapshot: &ClusterSnapshot,
    request: &PlacementRequest,
    rng_seed: u64,
) -> PlacementPlan {
    Placer::new(snapshot).place(request, rng_seed)
}

/// Counts of one group's tasks, kept current as tasks are placed.
struct GroupState {
    per_instance: Vec<u32>,
    /// Per attribute column: tasks per bucket (value id, then "absent").
    by_column: HashMap<u32, Vec<u32>>,
}

/// A plan in progress over one snapshot, like a Nomad plan: requests placed
/// through the same `Placer` see each other's placements (resources, ports,
/// spread counts, `distinctInstance`, `task:group`), without the snapshot
/// ever being copied. A scheduling round makes one `Placer` per snapshot,
/// places every pending request through it, and commits the plans.
pub struct Placer<'s> {
    snap: &'s ClusterSnapshot,
    overlay: Overlay,
    /// Groups not in the snapshot, numbered after the snapshot's.
    local_group_ids: HashMap<String, u32>,
    local_group_names: Vec<String>,
    group_states: HashMap<u32, GroupState>,
    /// memberOf expressions bound to the snapshot, by text.
    bound_ids: HashMap<String, usize>,
    bound: Vec<BoundExpr>,
}

impl<'s> Placer<'s> {
    pub fn new(snapshot: &'s ClusterSnapshot) -> Self {
        Placer {
            snap: snapshot,
            overlay: Overlay::new(snapshot.len()),
            local_group_ids: HashMap::new(),
            local_group_names: Vec::new(),
            group_states: HashMap::new(),
            bound_ids: HashMap::new(),
            bound: Vec::new(),
        }
    }

    pub fn snapshot(&self) -> &'s ClusterSnapshot {
        self.snap
    }

    /// An instance's remaining resources with this placer's placements
    /// taken out (the value to write back as `remainingResources`).
    pub fn remaining(&self, id: &ContainerInstanceId) -> Option<Resources> {
        let i = self.snap.index_of(id)?;
        let mut r = self.snap.instances()[i].remaining.clone();
        r.cpu = r.cpu.saturating_sub(self.overlay.cpu(i));
        r.memory = r.memory.saturating_sub(self.overlay.mem(i));
        if let Some(d) = self.overlay.get(i) {
            r.ports_tcp.extend(d.taken(Protocol::Tcp));
            r.ports_udp.extend(d.taken(Protocol::Udp));
        }
        Some(r)
    }

    /// Places up to `request.count` tasks. `rng_seed` drives the `random`
    /// strategy and the final tie-break.
    pub fn place(&mut self, request: &PlacementRequest, rng_seed: u64) -> PlacementPlan {
        let mut plan = PlacementPlan::default();
        if request.count == 0 {
            return plan;
        }
        if self.snap.active.is_empty() {
            plan.failures.push(Failure {
                arn: None,
                reason: FailureReason::NoContainerInstances,
            });
            return plan;
        }
        let gid = self.intern_group(&request.effective_group());
        let needs = Needs::new(request);
        let member_of: Vec<usize> = request
            .constraints
            .iter()
            .filter_map(|c| match c {
                Constraint::MemberOf(m) => Some(self.bind(m.text(), m.expr())),
                Constraint::DistinctInstance => None,
            })
            .collect();
        let distinct = request
            .constraints
            .iter()
            .any(|c| matches!(c, Constraint::DistinctInstance));
        let specs: Vec<RankSpec> = request
            .strategy
            .iter()
            .take(MAX_RANKERS)
            .map(|s| RankSpec::resolve(s, self.snap))
            .collect();
        if distinct || specs.iter().any(|s| s.uses_group()) {
            self.prepare_group(gid, &specs);
        }

        for k in 0..request.count {
            let choice = self.select(&needs, &member_of, distinct, &specs, gid, rng_seed, k);
            let placed = choice.and_then(|i| self.commit(i, request, gid).map(|ports| (i, ports)));
            match placed {
                Some((i, host_ports)) => {
                    let inst = &self.snap.instances()[i];
                    plan.placements.push(Placement {
                        instance_id: inst.id.clone(),
                        instance_arn: inst.arn.clone(),
                        host_ports,
                    });
                }
                None => {
                    plan.failures = self.diagnose(&needs, &member_of, distinct, gid);
                    break;
                }
            }
        }
        plan
    }

    fn intern_group(&mut self, group: &str) -> u32 {
        if let Some(&g) = self.snap.groups.ids.get(group) {
            return g;
        }
        if let Some(&g) = self.local_group_ids.get(group) {
            return g;
        }
        let g = (self.snap.groups.names.len() + self.local_group_names.len()) as u32;
        self.local_group_ids.insert(group.to_owned(), g);
        self.local_group_names.push(group.to_owned());
        g
    }

    fn bind(&mut self, text: &str, expr: &crate::query::Expr) -> usize {
        if let Some(&b) = self.bound_ids.get(text) {
            return b;
        }
        self.bound.push(BoundExpr::bind(expr, self.snap));
        let b = self.bound.len() - 1;
        self.bound_ids.insert(text.to_owned(), b);
        b
    }

    /// Makes sure the group's counts exist, with a bucket table for every
    /// attribute column the strategies spread over.
    fn prepare_group(&mut self, gid: u32, specs: &[RankSpec]) {
        let snap = self.snap;
        let overlay = &self.overlay;
        let sparse: &[(u32, u32)] = snap
            .groups
            .instances_of
            .get(gid as usize)
            .map_or(&[], Vec::as_slice);
        let in_overlay = |d: &Delta| {
            d.groups
                .iter()
                .find(|(g, _)| *g == gid)
                .map_or(0, |&(_, n)| n)
        };
        let state = self.group_states.entry(gid).or_insert_with(|| {
            let mut per_instance = vec![0u32; snap.len()];
            for &(i, n) in sparse {
                per_instance[i as usize] += n;
            }
            for (i, d) in overlay.iter() {
                per_instance[i] += in_overlay(d);
            }
            GroupState {
                per_instance,
                by_column: HashMap::new(),
            }
        });
        for spec in specs {
            if let RankSpec::SpreadColumn(col) = *spec {
                state.by_column.entry(col).or_insert_with(|| {
                    let column = &snap.columns[col as usize];
                    let mut counts = vec![0u32; column.values.len() + 1];
                    for &(i, n) in sparse {
                        counts[column.bucket(i as usize)] += n;
                    }
                    for (i, d) in overlay.iter() {
                        counts[column.bucket(i)] += in_overlay(d);
                    }
                    counts
                });
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn select(
        &self,
        needs: &Needs,
        member_of: &[usize],
        distinct: bool,
        specs: &[RankSpec],
        gid: u32,
        seed: u64,
        k: u32,
    ) -> Option<usize> {
        let snap = self.snap;
        let group = self.group_states.get(&gid);
        let bound: Vec<&BoundExpr> = member_of.iter().map(|&b| &self.bound[b]).collect();
        let constraints = Constraints {
            member_of: &bound,
            distinct: if distinct {
                group.map(|g| g.per_instance.as_slice())
            } else {
                None
            },
            local_names: &self.local_group_names,
        };
        let rankers: Vec<Ranker<'_>> = specs
            .iter()
            .enumerate()
            .map(|(j, spec)| match (*spec, group) {
                (RankSpec::BinpackCpu, _) => Ranker::BinpackCpu,
                (RankSpec::BinpackMemory, _) => Ranker::BinpackMemory,
                (RankSpec::SpreadInstance, Some(g)) => Ranker::SpreadInstance(&g.per_instance),
                (RankSpec::SpreadColumn(col), Some(g)) => match g.by_column.get(&col) {
                    Some(counts) => Ranker::SpreadColumn {
                        column: &snap.columns[col as usize],
                        counts,
                    },
                    None => Ranker::Neutral,
                },
                (RankSpec::Random, _) => {
                    Ranker::Random(rng::placement_seed(seed, k, RANDOM_SALT + j as u64))
                }
                // `prepare_group` ran for every spread; this is unreachable.
                (RankSpec::SpreadInstance | RankSpec::SpreadColumn(_) | RankSpec::Neutral, _) => {
                    Ranker::Neutral
                }
            })
            .collect();
        let tie = rng::placement_seed(seed, k, TIE_SALT);

        // The common case (at most three strategies): packed keys, one
        // comparison per candidate, no per-candidate dispatch on the count.
        match *rankers.as_slice() {
            [] => return self.scan::<0, u64>(&[], needs, &constraints, tie),
            [a] => return self.scan::<1, u64>(&[a], needs, &constraints, tie),
            [a, b] => return self.scan::<2, u64>(&[a, b], needs, &constraints, tie),
            [a, b, c] => return self.scan::<3, u128>(&[a, b, c], needs, &constraints, tie),
            _ => {}
        }

        let n_keys = rankers.len() + 1;
        let mut best = Best::<MAX_KEYS>::new();
        for &i in &snap.ready {
            let i = i as usize;
            let have = feasibility::have(snap, &self.overlay, i);
            let Ok(left) = feasibility::check(snap, i, have, &self.overlay, needs, &constraints)
            else {
                continue;
            };
            let key = |j: usize| match rankers.get(j) {
                Some(r) => u64::from(r.key(snap, i, left)),
                None => rng::mix(tie ^ snap.id_hash[i]),
            };
            best.offer(snap, i, n_keys, key(0), key);
        }
        best.index
    }

    /// The best feasible candidate under `N` packed rankers. Kept out of
    /// line so the hot loop gets the registers to itself.
    #[inline(never)]
    fn scan<const N: usize, P: Primary>(
        &self,
        rankers: &[Ranker<'_>; N],
        needs: &Needs,
        constraints: &Constraints<'_>,
        tie: u64,
    ) -> Option<usize> {
        let snap = self.snap;
        // Spreading over a column first: the primary key is the same for
        // every instance of a bucket, so visit buckets from the emptiest and
        // stop at the first count that has a feasible instance.
        let only_resources = needs.only_resources() && constraints.is_empty();
        if let Some(&Ranker::SpreadColumn { column, counts }) = rankers.first()
            && counts.len() <= ORDERED_BUCKETS
        {
            let mut order: Vec<usize> = (0..counts.len()).collect();
            order.sort_unstable_by_key(|&b| counts[b]);
            let mut k = 0;
            while k < order.len() {
                let count = counts[order[k]];
                let mut best = PackedBest::new(P::pack(rankers, snap, 0, Left::default()));
                while k < order.len() && counts[order[k]] == count {
                    let members = column.ready_members[order[k]].iter().map(|&i| i as usize);
                    if only_resources {
                        self.scan_candidates::<N, P, true>(
                            members,
                            rankers,
                            needs,
                            constraints,
                            tie,
                            &mut best,
                        );
                    } else {
                        self.scan_candidates::<N, P, false>(
                            members,
                            rankers,
                            needs,
                            constraints,
                            tie,
                            &mut best,
                        );
                    }
                    k += 1;
                }
                if best.index.is_some() {
                    return best.index;
                }
            }
            return None;
        }
        if only_resources {
            self.scan_all::<N, P, true>(rankers, needs, constraints, tie)
        } else {
            self.scan_all::<N, P, false>(rankers, needs, constraints, tie)
        }
    }

    /// Every instance in order, zipped with the overlay: no indirection, no
    /// bounds checks on the resource columns.
    #[inline(always)]
    fn scan_all<const N: usize, P: Primary, const ONLY_RESOURCES: bool>(
        &self,
        rankers: &[Ranker<'_>; N],
        needs: &Needs,
        constraints: &Constraints<'_>,
        tie: u64,
    ) -> Option<usize> {
        let snap = self.snap;
        let mut best = PackedBest::new(P::pack(rankers, snap, 0, Left::default()));
        for (i, (hot, &taken)) in snap.hot.iter().zip(self.overlay.taken()).enumerate() {
            if hot.ready {
                let have = feasibility::available(hot.remaining, taken);
                self.consider::<N, P, ONLY_RESOURCES>(
                    i,
                    have,
                    rankers,
                    needs,
                    constraints,
                    tie,
                    &mut best,
                );
            }
        }
        best.index
    }

    /// The given (ready) candidates.
    #[inline(always)]
    fn scan_candidates<const N: usize, P: Primary, const ONLY_RESOURCES: bool>(
        &self,
        candidates: impl Iterator<Item = usize>,
        rankers: &[Ranker<'_>; N],
        needs: &Needs,
        constraints: &Constraints<'_>,
        tie: u64,
        best: &mut PackedBest<P>,
    ) {
        for i in candidates {
            let have = feasibility::have(self.snap, &self.overlay, i);
            self.consider::<N, P, ONLY_RESOURCES>(i, have, rankers, needs, constraints, tie, best);
        }
    }

    /// Filters one candidate and offers it to `best`. `ONLY_RESOURCES`: the
    /// request has no ports and no constraints, so CPU and memory decide
    /// alone.
    #[allow(clippy::too_many_arguments)]
    #[inline(always)]
    fn consider<const N: usize, P: Primary, const ONLY_RESOURCES: bool>(
        &self,
        i: usize,
        have: CpuMem,
        rankers: &[Ranker<'_>; N],
        needs: &Needs,
        constraints: &Constraints<'_>,
        tie: u64,
        best: &mut PackedBest<P>,
    ) {
        let left = if ONLY_RESOURCES {
            let (Some(cpu), Some(mem)) = (
                have.cpu.checked_sub(needs.cpu),
                have.mem.checked_sub(needs.mem),
            ) else {
                return;
            };
            Left { cpu, mem }
        } else {
            let Ok(left) =
                feasibility::check(self.snap, i, have, &self.overlay, needs, constraints)
            else {
                return;
            };
            left
        };
        best.offer(self.snap, i, P::pack(rankers, self.snap, i, left), tie);
    }

    /// Records one task on instance `i`; returns its host ports in request
    /// order, or `None` (nothing recorded) if a dynamic port could not be
    /// found — which the ports filter's exact count rules out.
    fn commit(&mut self, i: usize, req: &PlacementRequest, gid: u32) -> Option<Vec<PortBinding>> {
        let snap = self.snap;
        // The instance's own dynamic range, else the snapshot's.
        let range = snap.instance_dynamic_port_range(i);
        // Choose every port before recording anything.
        let mut chosen: [BTreeSet<u16>; 2] = [BTreeSet::new(), BTreeSet::new()];
        let mut bindings = Vec::with_capacity(req.ports.len());
        for p in &req.ports {
            if let Some(port) = p.static_port() {
                chosen[crate::overlay::proto_index(p.protocol)].insert(port);
            }
        }
        let delta = self.overlay.get(i);
        for p in &req.ports {
            let k = crate::overlay::proto_index(p.protocol);
            let port = match p.static_port() {
                Some(port) => port,
                None => {
                    let base = snap.ports(p.protocol).taken(i);
                    let placed = delta.map_or(&[][..], |d| d.taken(p.protocol));
                    let port = (*range.start()..=*range.end()).find(|port| {
                        base.binary_search(port).is_err()
                            && placed.binary_search(port).is_err()
                            && !chosen[k].contains(port)
                    })?;
                    chosen[k].insert(port);
                    port
                }
            };
            bindings.push(PortBinding {
                host_port: port,
                protocol: p.protocol,
            });
        }

        self.overlay.take_resources(i, req.cpu, req.memory);
        let d = self.overlay.entry(i);
        for b in &bindings {
            d.take_port(
                b.protocol,
                b.host_port,
                snap.in_dynamic_range(i, b.host_port),
            );
        }
        d.add_task(gid);
        if let Some(state) = self.group_states.get_mut(&gid) {
            state.per_instance[i] += 1;
            for (&col, counts) in state.by_column.iter_mut() {
                counts[snap.columns[col as usize].bucket(i)] += 1;
            }
        }
        Some(bindings)
    }

    /// The first reason every ACTIVE instance cannot take the next task.
    fn diagnose(
        &self,
        needs: &Needs,
        member_of: &[usize],
        distinct: bool,
        gid: u32,
    ) -> Vec<Failure> {
        let snap = self.snap;
        let bound: Vec<&BoundExpr> = member_of.iter().map(|&b| &self.bound[b]).collect();
        let constraints = Constraints {
            member_of: &bound,
            distinct: if distinct {
                self.group_states
                    .get(&gid)
                    .map(|g| g.per_instance.as_slice())
            } else {
                None
            },
            local_names: &self.local_group_names,
        };
        let mut failures = Vec::new();
        for &i in &snap.active {
            let i = i as usize;
            let inst = &snap.instances()[i];
            let reason = if !inst.agent_connected {
                FailureReason::Agent
            } else {
                let have = feasibility::have(snap, &self.overlay, i);
                match feasibility::check(snap, i, have, &self.overlay, needs, &constraints) {
                    Err(reason) => reason,
                    // Only reachable if a dynamic port could not be
                    // allocated despite the count (see `commit`).
                    Ok(_) => FailureReason::ResourcePorts,
                }
            };
            failures.push(Failure {
                arn: Some(inst.arn.clone()),
                reason,
            });
        }
        failures
    }
}
