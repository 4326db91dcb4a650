//! Which target group and which target a forwarded request goes to.
//!
//! The decisions are pure functions ([`candidates`], [`pick`],
//! [`choose_group`]) of the group's configuration, the health table, the
//! counters and a rotation number or random draw passed in, so they are
//! unit-tested without sockets or timing. [`Balancer`] adds the only state:
//! one round-robin rotation per target group. Stickiness cookies name a
//! group or a target by an opaque hash ([`group_cookie_value`],
//! [`target_cookie_value`]) that is matched against the current
//! candidates, so a cookie naming a target that is gone or unroutable just
//! fails to match and a new target is chosen (and the cookie rewritten).

use crate::TargetKey;
use crate::health_table::{HealthEntry, HealthTable, TargetState};
use crate::snapshot::{Algorithm, TargetConfig, TargetGroupConfig};
use crate::stats::Stats;
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

/// Share of a target at the very start of slow start: never zero, so a
/// group whose targets all just became healthy still takes traffic.
const SLOW_START_FLOOR: f64 = 0.01;

/// A target that may receive a new request, with its relative share
/// (1.0, or less while in slow start).
#[derive(Debug, Clone)]
pub struct Candidate<'a> {
    pub target: &'a TargetConfig,
    pub key: TargetKey,
    pub weight: f64,
}

/// The targets a new request may go to. Routable: has an address, is not
/// draining (deregistered, or marked so in the health table), and is
/// healthy or unchecked-by-design (`Unavailable`, health checks off). When
/// none is routable ELB fails open to every non-draining target with an
/// address; when there is none of those either, the list is empty (503).
pub fn candidates<'a>(
    group: &'a TargetGroupConfig,
    health: &HealthTable,
    now: Instant,
) -> Vec<Candidate<'a>> {
    candidate_indices(group, now, |i| health.get(&group.key(&group.targets[i])))
        .into_iter()
        .map(|(i, weight)| Candidate {
            target: &group.targets[i],
            key: group.key(&group.targets[i]),
            weight,
        })
        .collect()
}

/// [`candidates`] as (index into `group.targets`, share), with the health
/// of target `i` from `health_of(i)`: no key is built, so the traffic path
/// can look health up with keys it prepared once per configuration.
pub fn candidate_indices(
    group: &TargetGroupConfig,
    now: Instant,
    health_of: impl Fn(usize) -> Option<HealthEntry>,
) -> Vec<(usize, f64)> {
    let mut routable = Vec::new();
    let mut fallback = Vec::new();
    for (i, t) in group.targets.iter().enumerate() {
        if t.addr.is_none() || t.draining_since_ms.is_some() {
            continue;
        }
        let entry = health_of(i);
        let state = entry.map_or(TargetState::Initial, |e| e.state);
        match state {
            TargetState::Draining => {}
            TargetState::Healthy | TargetState::Unavailable => {
                let healthy_for = entry
                    .filter(|e| e.state == TargetState::Healthy)
                    .map(|e| now.saturating_duration_since(e.since));
                routable.push((i, slow_start_weight(group.slow_start, healthy_for)));
            }
            TargetState::Initial | TargetState::Unhealthy => fallback.push((i, 1.0)),
        }
    }
    if routable.is_empty() {
        fallback
    } else {
        routable
    }
}

/// Slow start: a target healthy for less than `slow_start` gets a share
/// growing linearly from (almost) nothing to full. `healthy_for` is `None`
/// for targets not ramping (health checks disabled).
pub fn slow_start_weight(slow_start: Duration, healthy_for: Option<Duration>) -> f64 {
    match healthy_for {
        Some(d) if !slow_start.is_zero() && d < slow_start => {
            (d.as_secs_f64() / slow_start.as_secs_f64()).max(SLOW_START_FLOOR)
        }
        _ => 1.0,
    }
}

/// Index into `cands` of the target to use. Pure.
///
/// Round robin: strict rotation when every share is full, otherwise a
/// draw (`random` in [0, 1)) weighted by share. Least outstanding
/// requests: the fewest requests in flight (`in_flight[i]`), scaled by
/// share so a target in slow start looks busier; ties are rotated.
pub fn pick(
    cands: &[Candidate],
    algorithm: Algorithm,
    in_flight: &[u64],
    rotation: usize,
    random: f64,
) -> Option<usize> {
    pick_by(
        cands.len(),
        |i| cands[i].weight,
        algorithm,
        in_flight,
        rotation,
        || random,
    )
}

/// [`pick`] over `n` candidates whose shares are `weight(i)`; the random
/// draw is made only when shares differ.
fn pick_by(
    n: usize,
    weight: impl Fn(usize) -> f64,
    algorithm: Algorithm,
    in_flight: &[u64],
    rotation: usize,
    random: impl FnOnce() -> f64,
) -> Option<usize> {
    if n == 0 {
        return None;
    }
    match algorithm {
        Algorithm::RoundRobin => {
            if (0..n).all(|i| weight(i) >= 1.0) {
                return Some(rotation % n);
            }
            let total: f64 = (0..n).map(&weight).sum();
            let mut x = random().clamp(0.0, 1.0) * total;
            for i in 0..n {
                let w = weight(i);
                if x < w {
                    return Some(i);
                }
                x -= w;
            }
            Some(n - 1)
        }
        Algorithm::LeastOutstandingRequests => {
            let score =
                |i: usize| (in_flight.get(i).copied().unwrap_or(0) as f64 + 1.0) / weight(i);
            let best = (0..n).map(score).fold(f64::INFINITY, f64::min);
            let ties = (0..n).filter(|&i| score(i) <= best).count();
            // `ties` counts at least the minimum (shares are never zero, so
            // no score is NaN); the fallback keeps even that from a panic.
            let nth = rotation % ties.max(1);
            (0..n).filter(|&i| score(i) <= best).nth(nth).or(Some(0))
        }
    }
}

/// Which of a forward action's groups takes the request: the group named
/// by a valid stickiness cookie, else a draw weighted by the configured
/// weights (`random` in [0, 1)); weight 0 is never chosen. Returns the
/// index and whether the cookie decided it.
pub fn choose_group(
    groups: &[(String, u32)],
    sticky: Option<&str>,
    random: f64,
) -> Option<(usize, bool)> {
    if let Some(v) = sticky
        && let Some(i) = groups
            .iter()
            .position(|(arn, w)| *w > 0 && group_cookie_value(arn) == v)
    {
        return Some((i, true));
    }
    let total: u64 = groups.iter().map(|(_, w)| u64::from(*w)).sum();
    if total == 0 {
        return None;
    }
    // Truncation is the point: a uniform draw over [0, total).
    let mut x = ((random.clamp(0.0, 1.0) * total as f64) as u64).min(total - 1);
    for (i, (_, w)) in groups.iter().enumerate() {
        let w = u64::from(*w);
        if x < w {
            return Some((i, false));
        }
        x -= w;
    }
    None
}

/// FNV-1a: a stable hash (unlike std's, fixed across builds), so cookies
/// stay valid across restarts.
fn fnv(parts: &[&[u8]]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for p in parts {
        for b in p.iter().chain(b"\x1f") {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    }
    h
}

/// The opaque `AWSALBTG` value naming a target group.
pub fn group_cookie_value(group_arn: &str) -> String {
    format!("{:016x}", fnv(&[b"group", group_arn.as_bytes()]))
}

/// The opaque `AWSALB` / `AWSALBAPP-0` value naming a target of a group.
pub fn target_cookie_value(key: &TargetKey) -> String {
    format!(
        "{:016x}",
        fnv(&[
            b"target",
            key.target_group_arn.as_bytes(),
            key.id.as_bytes(),
            &key.port.to_be_bytes()
        ])
    )
}

/// The chosen target.
#[derive(Debug, Clone)]
pub struct Choice<'a> {
    pub target: &'a TargetConfig,
    pub key: TargetKey,
    /// The stickiness cookie named this target (it was routable).
    pub sticky_hit: bool,
}

/// Per-group round-robin rotations; everything else is in the snapshot,
/// the health table and the counters.
#[derive(Default)]
pub struct Balancer {
    rotations: RwLock<HashMap<String, Arc<AtomicUsize>>>,
}

impl Balancer {
    fn next(&self, group_arn: &str) -> usize {
        self.rotation(group_arn).fetch_add(1, Ordering::Relaxed)
    }

    /// The rotation counter of a group, for callers that keep it with
    /// their per-configuration state (the same counter [`Balancer::choose`]
    /// uses, so rotation continues across configuration changes).
    pub fn rotation(&self, group_arn: &str) -> Arc<AtomicUsize> {
        let found = self
            .rotations
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(group_arn)
            .cloned();
        match found {
            Some(c) => c,
            None => self
                .rotations
                .write()
                .unwrap_or_else(|p| p.into_inner())
                .entry(group_arn.to_string())
                .or_default()
                .clone(),
        }
    }

    /// The target of `group` for a new request: the one named by `sticky`
    /// (a target cookie value) if it is a candidate, else by the group's
    /// algorithm. `None`: nothing routable (503).
    pub fn choose<'a>(
        &self,
        group: &'a TargetGroupConfig,
        health: &HealthTable,
        stats: &Stats,
        sticky: Option<&str>,
    ) -> Option<Choice<'a>> {
        let cands = candidates(group, health, Instant::now());
        if let Some(v) = sticky
            && let Some(c) = cands.iter().find(|c| target_cookie_value(&c.key) == v)
        {
            return Some(Choice {
                target: c.target,
                key: c.key.clone(),
                sticky_hit: true,
            });
        }
        let in_flight: Vec<u64> = match group.algorithm {
            Algorithm::LeastOutstandingRequests => cands
                .iter()
                .map(|c| stats.target(&c.key).in_flight.load(Ordering::Relaxed))
                .collect(),
            Algorithm::RoundRobin => Vec::new(),
        };
        let i = pick(
            &cands,
            group.algorithm,
            &in_flight,
            self.next(&group.arn),
            rand::random::<f64>(),
        )?;
        let c = cands.into_iter().nth(i)?;
        Some(Choice {
            target: c.target,
            key: c.key,
            sticky_hit: false,
        })
    }
}

/// [`Balancer::choose`] for the traffic path, which prepares per
/// configuration what the choice needs: `health_of(i)`, `in_flight(i)` and
/// `is_sticky(i)` (whether the request's cookie names target `i`) by index
/// into `group.targets`, and the group's rotation counter. Returns the
/// index and whether the cookie decided it.
pub fn choose_index(
    group: &TargetGroupConfig,
    health_of: impl Fn(usize) -> Option<HealthEntry>,
    in_flight: impl Fn(usize) -> u64,
    rotation: &AtomicUsize,
    is_sticky: Option<&dyn Fn(usize) -> bool>,
) -> Option<(usize, bool)> {
    let cands = candidate_indices(group, Instant::now(), health_of);
    if let Some(sticky) = is_sticky
        && let Some(&(i, _)) = cands.iter().find(|(i, _)| sticky(*i))
    {
        return Some((i, true));
    }
    let loads: Vec<u64> = match group.algorithm {
        Algorithm::LeastOutstandingRequests => cands.iter().map(|&(i, _)| in_flight(i)).collect(),
        Algorithm::RoundRobin => Vec::new(),
    };
    let k = pick_by(
        cands.len(),
        |k| cands[k].1,
        group.algorithm,
        &loads,
        rotation.fetch_add(1, Ordering::Relaxed),
        rand::random::<f64>,
    )?;
    cands.get(k).map(|&(i, _)| (i, false))
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_elbv2::model::HealthCheck;
    use std::net::SocketAddr;

    fn group(n: usize) -> TargetGroupConfig {
        TargetGroupConfig {
            arn: "tg".into(),
            protocol: "HTTP".into(),
            port: 80,
            target_type: "ip".into(),
            health_check: HealthCheck::defaults("HTTP"),
            targets: (0..n)
                .map(|i| TargetConfig {
                    id: format!("10.0.0.{i}"),
                    port: 80,
                    addr: Some(SocketAddr::from(([10, 0, 0, i as u8], 80))),
                    draining_since_ms: None,
                })
                .collect(),
            deregistration_delay: Duration::from_secs(300),
            slow_start: Duration::ZERO,
            algorithm: Algorithm::RoundRobin,
            stickiness: None,
        }
    }

    fn set_all(g: &TargetGroupConfig, h: &HealthTable, state: TargetState, at: Instant) {
        for t in &g.targets {
            h.set(g.key(t), state, at);
        }
    }

    fn ids(c: &[Candidate]) -> Vec<String> {
        c.iter().map(|c| c.target.id.clone()).collect()
    }

    #[test]
    fn round_robin_distributes_evenly() {
        let g = group(3);
        let h = HealthTable::default();
        set_all(&g, &h, TargetState::Healthy, Instant::now());
        let b = Balancer::default();
        let stats = Stats::default();
        let mut counts: HashMap<String, usize> = HashMap::new();
        for _ in 0..300 {
            let c = b.choose(&g, &h, &stats, None).unwrap();
            *counts.entry(c.target.id.clone()).or_default() += 1;
        }
        assert_eq!(counts.len(), 3);
        assert!(counts.values().all(|&n| n == 100), "{counts:?}");
    }

    #[test]
    fn unhealthy_excluded_and_fail_open_when_all_unhealthy() {
        let mut g = group(3);
        let h = HealthTable::default();
        let now = Instant::now();
        set_all(&g, &h, TargetState::Unhealthy, now);
        h.set(g.key(&g.targets[1]), TargetState::Healthy, now);
        assert_eq!(ids(&candidates(&g, &h, now)), ["10.0.0.1"]);
        h.set(g.key(&g.targets[1]), TargetState::Unhealthy, now);
        assert_eq!(candidates(&g, &h, now).len(), 3, "fail open");
        // Draining and address-less targets never, not even failing open.
        g.targets[0].draining_since_ms = Some(1);
        g.targets[1].addr = None;
        h.set(g.key(&g.targets[2]), TargetState::Draining, now);
        assert!(candidates(&g, &h, now).is_empty());
        // Initial targets (never checked) are a fail-open case too.
        let g = group(2);
        assert_eq!(candidates(&g, &HealthTable::default(), now).len(), 2);
        // Health checks off: Unavailable is routable.
        set_all(&g, &h, TargetState::Unavailable, now);
        h.set(g.key(&g.targets[0]), TargetState::Unhealthy, now);
        assert_eq!(ids(&candidates(&g, &h, now)), ["10.0.0.1"]);
    }

    #[test]
    fn least_outstanding_picks_the_idle_one_and_rotates_ties() {
        let g = group(3);
        let h = HealthTable::default();
        let now = Instant::now();
        set_all(&g, &h, TargetState::Healthy, now);
        let c = candidates(&g, &h, now);
        assert_eq!(
            pick(&c, Algorithm::LeastOutstandingRequests, &[3, 0, 2], 7, 0.5),
            Some(1)
        );
        let picks: Vec<_> = (0..4)
            .map(|r| pick(&c, Algorithm::LeastOutstandingRequests, &[1, 0, 0], r, 0.5).unwrap())
            .collect();
        assert_eq!(picks, [1, 2, 1, 2]);

        let mut g = group(2);
        g.algorithm = Algorithm::LeastOutstandingRequests;
        set_all(&g, &h, TargetState::Healthy, now);
        let stats = Stats::default();
        stats
            .target(&g.key(&g.targets[0]))
            .in_flight
            .store(5, Ordering::Relaxed);
        let b = Balancer::default();
        for _ in 0..10 {
            assert_eq!(
                b.choose(&g, &h, &stats, None).unwrap().target.id,
                "10.0.0.1"
            );
        }
    }

    #[test]
    fn slow_start_ramps_linearly() {
        let s = Duration::from_secs(100);
        assert_eq!(slow_start_weight(Duration::ZERO, Some(Duration::ZERO)), 1.0);
        assert_eq!(slow_start_weight(s, None), 1.0);
        assert_eq!(slow_start_weight(s, Some(Duration::ZERO)), SLOW_START_FLOOR);
        assert!((slow_start_weight(s, Some(Duration::from_secs(25))) - 0.25).abs() < 1e-9);
        assert!((slow_start_weight(s, Some(Duration::from_secs(50))) - 0.5).abs() < 1e-9);
        assert_eq!(slow_start_weight(s, Some(Duration::from_secs(100))), 1.0);

        // One old target and one healthy for 25 s of a 100 s slow start:
        // the newcomer gets 0.25 / 1.25 = 20 % of the draws.
        let mut g = group(2);
        g.slow_start = s;
        let h = HealthTable::default();
        let now = Instant::now();
        let earlier = now.checked_sub(Duration::from_secs(500)).unwrap();
        h.set(g.key(&g.targets[0]), TargetState::Healthy, earlier);
        h.set(
            g.key(&g.targets[1]),
            TargetState::Healthy,
            now.checked_sub(Duration::from_secs(25)).unwrap(),
        );
        let c = candidates(&g, &h, now);
        let n = 1000;
        let new = (0..n)
            .filter(|i| pick(&c, Algorithm::RoundRobin, &[], 0, *i as f64 / n as f64) == Some(1))
            .count();
        assert_eq!(new, 200);
        // Later in the ramp it gets more.
        let c = candidates(&g, &h, now + Duration::from_secs(50));
        let later = (0..n)
            .filter(|i| pick(&c, Algorithm::RoundRobin, &[], 0, *i as f64 / n as f64) == Some(1))
            .count();
        assert!(later > new, "{later} > {new}");
        let c = candidates(&g, &h, now + Duration::from_secs(80));
        assert!(c.iter().all(|c| c.weight == 1.0), "ramp over");
    }

    #[test]
    fn group_weights_and_stickiness() {
        let groups = vec![
            ("a".to_string(), 3),
            ("b".to_string(), 1),
            ("z".to_string(), 0),
        ];
        let n = 400;
        let mut counts = [0usize; 3];
        for i in 0..n {
            let (g, sticky) = choose_group(&groups, None, i as f64 / n as f64).unwrap();
            assert!(!sticky);
            counts[g] += 1;
        }
        assert_eq!(counts, [300, 100, 0]);
        assert_eq!(
            choose_group(&groups, Some(&group_cookie_value("b")), 0.0),
            Some((1, true))
        );
        // A cookie for a weight-0 or unknown group is ignored.
        assert_eq!(
            choose_group(&groups, Some(&group_cookie_value("z")), 0.0),
            Some((0, false))
        );
        assert_eq!(choose_group(&groups, Some("junk"), 0.99), Some((1, false)));
        assert_eq!(choose_group(&[("a".into(), 0)], None, 0.5), None);
        assert_eq!(choose_group(&[], None, 0.5), None);
    }

    #[test]
    fn sticky_target_kept_while_routable_then_replaced() {
        let g = group(3);
        let h = HealthTable::default();
        let now = Instant::now();
        set_all(&g, &h, TargetState::Healthy, now);
        let b = Balancer::default();
        let stats = Stats::default();
        let cookie = target_cookie_value(&g.key(&g.targets[2]));
        for _ in 0..5 {
            let c = b.choose(&g, &h, &stats, Some(&cookie)).unwrap();
            assert_eq!(c.target.id, "10.0.0.2");
            assert!(c.sticky_hit);
        }
        h.set(g.key(&g.targets[2]), TargetState::Unhealthy, now);
        let c = b.choose(&g, &h, &stats, Some(&cookie)).unwrap();
        assert_ne!(c.target.id, "10.0.0.2");
        assert!(!c.sticky_hit);
        assert_ne!(target_cookie_value(&c.key), cookie);
    }
}
