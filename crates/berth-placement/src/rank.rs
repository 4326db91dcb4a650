//! Ranking: each strategy gives every feasible instance a key, lower is
//! better; strategies compare lexicographically in the order given, and a
//! seeded random key breaks what ties remain.
//!
//! * `binpack(cpu|memory)`: the resource left on the instance after the
//!   task — the fullest instance that still fits wins.
//! * `spread(instanceId)`: tasks of the request's group on the instance.
//! * `spread(attribute:NAME)`: tasks of the request's group on all
//!   instances sharing the instance's value of NAME (instances without the
//!   attribute form one more bucket). Counted over the whole snapshot,
//!   including non-ACTIVE instances (their tasks still run), plus the
//!   placements made so far.
//! * `random`: a seeded random key, fresh for each placement — a seeded
//!   shuffle of the candidates.

use crate::feasibility::Left;
use crate::request::{BinpackField, SpreadField, Strategy};
use crate::rng;
use crate::snapshot::{ClusterSnapshot, Column};

/// Salt for the final tie-break key (distinct from `random`'s).
pub(crate) const TIE_SALT: u64 = 0x7469_6500;
/// Salt for the `random` strategy's key, plus the strategy's position.
pub(crate) const RANDOM_SALT: u64 = 0x7261_6e64;

/// A strategy resolved against the snapshot, independent of group state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum RankSpec {
    BinpackCpu,
    BinpackMemory,
    SpreadInstance,
    /// Spread over an attribute column.
    SpreadColumn(u32),
    /// Spread over an attribute no instance has: every instance ties.
    Neutral,
    Random,
}

impl RankSpec {
    pub(crate) fn resolve(s: &Strategy, snap: &ClusterSnapshot) -> RankSpec {
        match s {
            Strategy::Binpack(BinpackField::Cpu) => RankSpec::BinpackCpu,
            Strategy::Binpack(BinpackField::Memory) => RankSpec::BinpackMemory,
            Strategy::Spread(SpreadField::InstanceId) => RankSpec::SpreadInstance,
            Strategy::Spread(SpreadField::Attribute(name)) => match snap.attribute_ids.get(name) {
                Some(&col) => RankSpec::SpreadColumn(col),
                None => RankSpec::Neutral,
            },
            Strategy::Random => RankSpec::Random,
        }
    }

    pub(crate) fn uses_group(self) -> bool {
        matches!(self, RankSpec::SpreadInstance | RankSpec::SpreadColumn(_))
    }
}

/// A ranker ready for one placement: a spec with the state it reads.
#[derive(Clone, Copy)]
pub(crate) enum Ranker<'p> {
    BinpackCpu,
    BinpackMemory,
    /// Group tasks per instance.
    SpreadInstance(&'p [u32]),
    /// Group tasks per bucket of a column.
    SpreadColumn {
        column: &'p Column,
        counts: &'p [u32],
    },
    Neutral,
    /// Seeded random key.
    Random(u64),
}

impl Ranker<'_> {
    /// The key of instance `i` (lower ranks first). Every key fits 32 bits
    /// (resources and counts are `u32`; `random` keeps the hash's high
    /// half), so up to three of them pack into one `u128`.
    #[inline(always)]
    pub(crate) fn key(&self, snap: &ClusterSnapshot, i: usize, left: Left) -> u32 {
        match self {
            Ranker::BinpackCpu => left.cpu,
            Ranker::BinpackMemory => left.mem,
            Ranker::SpreadInstance(counts) => counts[i],
            Ranker::SpreadColumn { column, counts } => counts[column.bucket(i)],
            Ranker::Neutral => 0,
            Ranker::Random(seed) => (rng::mix(seed ^ snap.id_hash[i]) >> 32) as u32,
        }
    }
}

/// The keys of `N` rankers for one instance, most significant first, packed
/// into one integer so that one comparison ranks two candidates: `u64` for
/// up to two rankers, `u128` for three. `N` is a constant, so the shifts
/// are too.
pub(crate) trait Primary: Copy + Ord {
    fn pack<const N: usize>(
        rankers: &[Ranker<'_>; N],
        snap: &ClusterSnapshot,
        i: usize,
        left: Left,
    ) -> Self;
}

impl Primary for u64 {
    #[inline(always)]
    fn pack<const N: usize>(
        rankers: &[Ranker<'_>; N],
        snap: &ClusterSnapshot,
        i: usize,
        left: Left,
    ) -> u64 {
        const { assert!(N <= 2) };
        let mut key = 0u64;
        for (j, r) in rankers.iter().enumerate() {
            key |= u64::from(r.key(snap, i, left)) << (32 - 32 * j);
        }
        key
    }
}

impl Primary for u128 {
    #[inline(always)]
    fn pack<const N: usize>(
        rankers: &[Ranker<'_>; N],
        snap: &ClusterSnapshot,
        i: usize,
        left: Left,
    ) -> u128 {
        const { assert!(N <= 4) };
        let mut key = 0u128;
        for (j, r) in rankers.iter().enumerate() {
            key |= u128::from(r.key(snap, i, left)) << (96 - 32 * j);
        }
        key
    }
}

/// `u128` packing, for tests and callers that do not care about width.
#[cfg(test)]
pub(crate) fn primary_key<const N: usize>(
    rankers: &[Ranker<'_>; N],
    snap: &ClusterSnapshot,
    i: usize,
    left: Left,
) -> u128 {
    u128::pack(rankers, snap, i, left)
}

/// The running best of one placement's scan with packed keys: the primary
/// key, then the seeded tie-break (computed only for candidates that are
/// not already beaten), then the smaller id.
pub(crate) struct PackedBest<P> {
    pub(crate) index: Option<usize>,
    primary: P,
    tie: u64,
}

impl<P: Primary> PackedBest<P> {
    pub(crate) fn new(zero: P) -> Self {
        PackedBest {
            index: None,
            primary: zero,
            tie: u64::MAX,
        }
    }

    #[inline(always)]
    pub(crate) fn offer(&mut self, snap: &ClusterSnapshot, i: usize, primary: P, tie_seed: u64) {
        if self.index.is_some() && primary > self.primary {
            return;
        }
        let tie = rng::mix(tie_seed ^ snap.id_hash[i]);
        let better = match self.index {
            None => true,
            Some(best) => {
                primary < self.primary
                    || tie < self.tie
                    || (tie == self.tie && wins_tie(snap, i, best))
            }
        };
        if better {
            self.index = Some(i);
            self.primary = primary;
            self.tie = tie;
        }
    }
}

/// Whether instance `a` wins a full tie against `b`: the smaller id, so
/// that plans never depend on the order instances are listed in.
#[inline(never)]
pub(crate) fn wins_tie(snap: &ClusterSnapshot, a: usize, b: usize) -> bool {
    snap.instances()[a].id < snap.instances()[b].id
}

/// The running best of one placement's scan when there are more rankers
/// than pack into a `u128`: keys compared lazily, one by one.
pub(crate) struct Best<const K: usize> {
    pub(crate) index: Option<usize>,
    keys: [u64; K],
}

impl<const K: usize> Best<K> {
    pub(crate) fn new() -> Self {
        Best {
            index: None,
            keys: [0; K],
        }
    }

    /// Offers instance `i`, whose first key is `k0`: `key(j)` computes its
    /// `j`-th key (the last, `n - 1`, being the tie-break), lazily — later
    /// keys are only computed while earlier ones tie, so most candidates
    /// cost one comparison.
    #[inline(always)]
    pub(crate) fn offer(
        &mut self,
        snap: &ClusterSnapshot,
        i: usize,
        n: usize,
        k0: u64,
        key: impl FnMut(usize) -> u64,
    ) {
        if self.index.is_some() && k0 > self.keys[0] {
            return;
        }
        self.offer_slow(snap, i, n, k0, key);
    }

    #[inline(never)]
    fn offer_slow(
        &mut self,
        snap: &ClusterSnapshot,
        i: usize,
        n: usize,
        k0: u64,
        mut key: impl FnMut(usize) -> u64,
    ) {
        let n = n.min(K);
        let Some(best) = self.index else {
            return self.take(i, n, k0, key);
        };
        if k0 < self.keys[0] {
            return self.take(i, n, k0, key);
        }
        for j in 1..n {
            let k = key(j);
            if k < self.keys[j] {
                self.keys[j] = k;
                for t in j + 1..n {
                    self.keys[t] = key(t);
                }
                self.index = Some(i);
                return;
            }
            if k > self.keys[j] {
                return;
            }
        }
        if wins_tie(snap, i, best) {
            self.index = Some(i);
        }
    }

    fn take(&mut self, i: usize, n: usize, k0: u64, mut key: impl FnMut(usize) -> u64) {
        self.keys[0] = k0;
        for j in 1..n {
            self.keys[j] = key(j);
        }
        self.index = Some(i);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::InstanceView;

    fn snap() -> ClusterSnapshot {
        ClusterSnapshot::new(vec![
            InstanceView::new("a", 100, 100).with_attribute("az", "1"),
            InstanceView::new("b", 100, 100).with_attribute("az", "2"),
            InstanceView::new("c", 100, 100),
        ])
    }

    /// Ranks with both scorers and checks they agree.
    fn rank(snap: &ClusterSnapshot, r: &[Ranker<'_>], lefts: &[Left]) -> Option<usize> {
        let mut best = Best::<8>::new();
        let mut packed = PackedBest::new(0u64);
        for (i, &left) in lefts.iter().enumerate() {
            let key = |j: usize| match r.get(j) {
                Some(r) => u64::from(r.key(snap, i, left)),
                None => rng::mix(snap.id_hash[i]),
            };
            best.offer(snap, i, r.len() + 1, key(0), key);
            match r.len() {
                0 => packed.offer(snap, i, u64::pack::<0>(&[], snap, i, left), 0),
                1 => packed.offer(snap, i, u64::pack::<1>(&[r[0]], snap, i, left), 0),
                2 => packed.offer(snap, i, u64::pack::<2>(&[r[0], r[1]], snap, i, left), 0),
                _ => {}
            }
        }
        if r.len() <= 2 {
            assert_eq!(best.index, packed.index);
        }
        best.index
    }

    #[test]
    fn primary_key_orders_like_the_key_tuple() {
        let s = snap();
        let counts = [5u32, 5, 1];
        let r = [
            Ranker::SpreadInstance(&counts),
            Ranker::BinpackMemory,
            Ranker::BinpackCpu,
        ];
        let k = |i: usize, cpu, mem| primary_key(&r, &s, i, left(cpu, mem));
        assert!(k(2, 9, 9) < k(0, 0, 0));
        assert!(k(0, 9, 1) < k(1, 0, 2));
        assert!(k(0, 1, 1) < k(0, 2, 1));
        assert_eq!(k(0, 1, 1), k(1, 1, 1));
        assert_eq!(k(0, 7, 1) as u32, 0, "the low 32 bits stay free");
    }

    fn left(cpu: u32, mem: u32) -> Left {
        Left { cpu, mem }
    }

    #[test]
    fn binpack_prefers_least_left() {
        let s = snap();
        let lefts = [left(50, 10), left(10, 50), left(30, 30)];
        assert_eq!(rank(&s, &[Ranker::BinpackCpu], &lefts), Some(1));
        assert_eq!(rank(&s, &[Ranker::BinpackMemory], &lefts), Some(0));
    }

    #[test]
    fn spread_instance_prefers_fewest_group_tasks() {
        let s = snap();
        let counts = [2, 0, 1];
        let lefts = [left(0, 0); 3];
        assert_eq!(
            rank(&s, &[Ranker::SpreadInstance(&counts)], &lefts),
            Some(1)
        );
    }

    #[test]
    fn spread_column_counts_per_value_with_absent_bucket() {
        let s = snap();
        let col = &s.columns[s.attribute_ids["az"] as usize];
        // Buckets: az=1, az=2, absent.
        let mut counts = vec![0u32; col.values.len() + 1];
        counts[col.bucket(0)] = 3;
        counts[col.bucket(1)] = 1;
        counts[col.bucket(2)] = 2;
        let lefts = [left(0, 0); 3];
        assert_eq!(
            rank(
                &s,
                &[Ranker::SpreadColumn {
                    column: col,
                    counts: &counts
                }],
                &lefts
            ),
            Some(1)
        );
        counts[col.bucket(2)] = 0;
        assert_eq!(
            rank(
                &s,
                &[Ranker::SpreadColumn {
                    column: col,
                    counts: &counts
                }],
                &lefts
            ),
            Some(2)
        );
    }

    #[test]
    fn later_strategies_break_ties_of_earlier_ones() {
        let s = snap();
        let counts = [1, 0, 0];
        let lefts = [left(0, 0), left(0, 90), left(0, 20)];
        let r = [Ranker::SpreadInstance(&counts), Ranker::BinpackMemory];
        assert_eq!(rank(&s, &r, &lefts), Some(2));
        let r = [Ranker::BinpackMemory, Ranker::SpreadInstance(&counts)];
        assert_eq!(rank(&s, &r, &lefts), Some(0));
    }

    #[test]
    fn random_depends_on_seed_only() {
        let s = snap();
        let lefts = [left(0, 0); 3];
        let picks: std::collections::BTreeSet<_> = (0..64u64)
            .filter_map(|seed| rank(&s, &[Ranker::Random(rng::mix(seed))], &lefts))
            .collect();
        assert_eq!(picks.len(), 3, "every instance gets picked for some seed");
        assert_eq!(
            rank(&s, &[Ranker::Random(9)], &lefts),
            rank(&s, &[Ranker::Random(9)], &lefts)
        );
        assert_eq!(rank(&s, &[Ranker::Neutral], &lefts), rank(&s, &[], &lefts));
    }
}
