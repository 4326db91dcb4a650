//! A tiny deterministic world that applies plans, for property tests of
//! whole rollouts: starts become PENDING, then RUNNING and HEALTHY (or
//! fail) on the next step; stops become STOPPED at once; the world may
//! also kill running tasks. Every step checks the plan's bounds and that
//! re-reconciling the applied view asks for nothing more.

use proptest::prelude::*;

use crate::testkit::*;
use crate::*;

const STEP_MS: u64 = 10_000;

#[derive(Debug, Clone)]
struct Params {
    desired: u32,
    min: u32,
    max: u32,
    health_check: bool,
    circuit_breaker: CircuitBreaker,
    /// Per mille chance a starting task of the new task definition fails.
    fail_new: u32,
    /// Per mille chance a RUNNING task is killed by the world each step.
    kill: u32,
    seed: u64,
}

struct World {
    p: Params,
    view: ServiceView,
    now: u64,
    next_id: u64,
    rng: u64,
}

impl World {
    /// A steady service on `ecs-svc/1` that was just updated to
    /// `ecs-svc/2` (task definition `new`).
    fn updated(p: Params) -> World {
        let mut s = spec(p.desired, p.min, p.max);
        s.circuit_breaker = p.circuit_breaker;
        let mut d1 = old("ecs-svc/1");
        d1.task_definition = "stable".into();
        let mut d2 = primary("ecs-svc/2");
        d2.task_definition = "new".into();
        let tasks = (0..p.desired)
            .map(|i| {
                let mut t = running(&format!("o{i}"), "ecs-svc/1");
                t.has_health_check = p.health_check;
                t.health = HealthStatus::Healthy;
                t
            })
            .collect();
        let rng = p.seed | 1;
        World {
            view: view(s, vec![d1, d2], tasks),
            now: 1_000,
            next_id: 3,
            rng,
            p,
        }
    }

    fn chance(&mut self, per_mille: u32) -> bool {
        // xorshift64: deterministic from the seed, no ambient randomness.
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        (self.rng % 1000) < u64::from(per_mille)
    }

    fn apply(&mut self, plan: &ServicePlan) {
        let now = self.now;
        for stop in &plan.stops {
            // Asked to stop; the agent stops it when the world next moves.
            if let Some(t) = self.view.tasks.iter_mut().find(|t| t.id == stop.task_id) {
                t.desired_status = DesiredStatus::Stopped;
                t.stop_code = Some(StopCode::ServiceSchedulerInitiated);
            }
        }
        for id in &plan.recorded_failures {
            if let Some(t) = self.view.tasks.iter_mut().find(|t| &t.id == id) {
                t.failure_recorded = true;
            }
        }
        for c in &plan.deployment_changes {
            if let Some(d) = self
                .view
                .deployments
                .iter_mut()
                .find(|d| d.id == c.deployment_id)
            {
                if let Some(s) = c.status {
                    d.status = s;
                }
                if let Some((r, _)) = &c.rollout {
                    d.rollout_state = *r;
                }
                if let Some(f) = c.failed_tasks {
                    d.failed_tasks = f;
                }
            }
        }
        if let Some(rb) = &plan.rollback {
            let mut d = primary("ecs-svc/3");
            d.task_definition = rb.task_definition.clone();
            d.created_at_ms = now;
            self.view.deployments.push(d);
        }
        for s in &plan.starts {
            let hosts: Vec<String> = if s.instance_ids.is_empty() {
                (0..s.count).map(|_| "i-1".to_string()).collect()
            } else {
                s.instance_ids.clone()
            };
            for host in hosts {
                let mut t = pending(&format!("t{}", self.next_id), &s.deployment_id);
                self.next_id += 1;
                t.has_health_check = self.p.health_check;
                t.instance_id = host;
                self.view.tasks.push(t);
            }
        }
        self.view.throttle = plan.throttle;
        self.view.was_steady = plan.state.steady;
    }

    /// The world moves: PENDING tasks start or fail, RUNNING ones may die.
    fn advance(&mut self) {
        self.now += STEP_MS;
        let now = self.now;
        for i in 0..self.view.tasks.len() {
            let t = &self.view.tasks[i];
            let td = self
                .view
                .deployments
                .iter()
                .find(|d| d.id == t.deployment_id)
                .map(|d| d.task_definition.clone());
            let (status, desired) = (t.last_status, t.desired_status);
            let fail = td.as_deref() == Some("new") && self.chance(self.p.fail_new);
            let kill = self.chance(self.p.kill);
            let t = &mut self.view.tasks[i];
            match (status, desired) {
                (TaskStatus::Pending | TaskStatus::Running | TaskStatus::Stopping, DesiredStatus::Stopped) => {
                    t.last_status = TaskStatus::Stopped;
                    t.stopped_at_ms = Some(now);
                }
                (TaskStatus::Pending, DesiredStatus::Running) if fail => {
                    t.last_status = TaskStatus::Stopped;
                    t.desired_status = DesiredStatus::Stopped;
                    t.stop_code = Some(StopCode::TaskFailedToStart);
                    t.stopped_at_ms = Some(now);
                }
                (TaskStatus::Pending, DesiredStatus::Running) => {
                    t.last_status = TaskStatus::Running;
                    t.started_at_ms = Some(now);
                    t.health = HealthStatus::Healthy;
                }
                (TaskStatus::Running, DesiredStatus::Running) if kill => {
                    t.last_status = TaskStatus::Stopped;
                    t.desired_status = DesiredStatus::Stopped;
                    t.stop_code = Some(StopCode::EssentialContainerExited);
                    t.stopped_at_ms = Some(now);
                }
                _ => {}
            }
        }
    }

    /// One reconcile: checks the plan's bounds, applies it, checks that
    /// the applied view needs nothing more, then lets the world move.
    fn step(&mut self) -> Result<ServicePlan, TestCaseError> {
        let plan = reconcile(&self.view, self.now);
        prop_assert_eq!(&plan, &reconcile(&self.view, self.now), "deterministic");

        let stopped: Vec<&str> = plan.stops.iter().map(|s| s.task_id.as_str()).collect();
        let active = |t: &&TaskView| t.is_active() && !stopped.contains(&t.id.as_str());
        let healthy_before = self.view.tasks.iter().filter(|t| t.is_healthy()).count() as u32;
        let healthy_after = self
            .view
            .tasks
            .iter()
            .filter(active)
            .filter(|t| t.is_healthy())
            .count() as u32;
        // What may really run: every task not yet STOPPED, including those
        // asked to stop that are still stopping (ECS counts lastStatus).
        let may_run = |t: &&TaskView| t.last_status != TaskStatus::Stopped;
        let total_after = self.view.tasks.iter().filter(may_run).count() as u32 + started(&plan);
        let ceiling = max_total(self.p.desired, self.p.max);
        let floor = min_healthy(self.p.desired, self.p.min);
        let total_before = self.view.tasks.iter().filter(may_run).count() as u32;
        // Above the bound only if it already was (a scale-in the minimum
        // holds back), and then never growing.
        prop_assert!(
            total_after <= ceiling.max(total_before),
            "total {} > max {}: {:?}",
            total_after,
            ceiling,
            plan
        );
        prop_assert!(
            healthy_after >= floor.min(healthy_before),
            "healthy {} < min {} (was {}): {:?}",
            healthy_after,
            floor,
            healthy_before,
            plan
        );

        self.apply(&plan);
        if plan.rollback.is_none() {
            let again = reconcile(&self.view, self.now);
            prop_assert!(
                again.is_quiet(),
                "not idempotent: {:?}\nthen {:?}",
                plan,
                again
            );
        }
        self.advance();
        Ok(plan)
    }

    /// Changes the desired count, as UpdateService does.
    fn scale(&mut self, desired: u32) {
        self.p.desired = desired;
        self.view.spec.desired_count = desired;
    }

    fn deployment(&self, id: &str) -> &DeploymentView {
        let found = self.view.deployments.iter().find(|d| d.id == id);
        found.unwrap_or_else(|| panic!("no deployment {id}"))
    }
}

fn settings() -> impl Strategy<Value = (u32, u32, u32)> {
    (1u32..8, 0u32..=100, 100u32..=200)
        // min 100 / max 100 (after rounding) cannot progress, in ECS too.
        .prop_filter("a rollout must be able to progress", |&(d, min, max)| {
            max_total(d, max) > d || min_healthy(d, min) < d
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn a_rollout_without_failures_completes_and_settles(
        (desired, min, max) in settings(), health_check in any::<bool>(), seed in any::<u64>(),
    ) {
        let p = Params {
            desired, min, max, health_check, seed, fail_new: 0, kill: 0,
            circuit_breaker: CircuitBreaker { enable: true, rollback: true },
        };
        let mut w = World::updated(p);
        let mut steady_events = 0;
        for _ in 0..60 {
            let plan = w.step()?;
            steady_events += plan.events.iter().filter(|e| e.ends_with("has reached a steady state.")).count();
        }
        prop_assert_eq!(w.deployment("ecs-svc/2").rollout_state, RolloutState::Completed);
        prop_assert_eq!(w.deployment("ecs-svc/1").status, DeploymentStatus::Inactive);
        prop_assert_eq!(steady_events, 1, "one steady-state event per transition");
        let plan = reconcile(&w.view, w.now);
        prop_assert!(plan.is_quiet() && plan.events.is_empty() && plan.deployment_changes.is_empty());
        prop_assert!(plan.state.steady);
        prop_assert_eq!(plan.state.running_count, desired);
    }

    #[test]
    fn bounds_hold_whatever_fails(
        (desired, min, max) in settings(), health_check in any::<bool>(), seed in any::<u64>(),
        fail_new in 0u32..=1000, kill in 0u32..200, enable in any::<bool>(), rollback in any::<bool>(),
    ) {
        let p = Params {
            desired, min, max, health_check, seed, fail_new, kill,
            circuit_breaker: CircuitBreaker { enable, rollback },
        };
        let mut w = World::updated(p);
        for _ in 0..80 {
            w.step()?;
        }
    }

    #[test]
    fn the_circuit_breaker_trips_when_every_new_task_fails(
        (desired, min, max) in settings(), seed in any::<u64>(), rollback in any::<bool>(),
    ) {
        let p = Params {
            desired, min, max, health_check: false, seed, fail_new: 1000, kill: 0,
            circuit_breaker: CircuitBreaker { enable: true, rollback },
        };
        let mut w = World::updated(p);
        let mut failed_events = 0;
        for _ in 0..150 {
            let plan = w.step()?;
            failed_events += plan.events.iter().filter(|e| e.contains("deployment failed")).count();
        }
        prop_assert_eq!(failed_events, 1);
        let d2 = w.deployment("ecs-svc/2");
        prop_assert_eq!(d2.rollout_state, RolloutState::Failed);
        prop_assert!(d2.failed_tasks >= failure_threshold(desired));
        if rollback {
            // The rollback deployment restores the stable task definition
            // and the service settles on it.
            let d3 = w.deployment("ecs-svc/3");
            prop_assert_eq!(d3.task_definition.as_str(), "stable");
            prop_assert_eq!(d3.rollout_state, RolloutState::Completed);
            prop_assert_eq!(d2.status, DeploymentStatus::Inactive);
            prop_assert!(reconcile(&w.view, w.now).state.steady);
        } else {
            prop_assert_eq!(d2.status, DeploymentStatus::Primary);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn scaling_settles_on_the_new_count(
        (desired, min, max) in settings(), to in 0u32..10, seed in any::<u64>(), health_check in any::<bool>(),
    ) {
        let p = Params {
            desired, min, max, health_check, seed, fail_new: 0, kill: 0,
            circuit_breaker: CircuitBreaker::default(),
        };
        let mut w = World::updated(p);
        for _ in 0..40 {
            w.step()?;
        }
        w.scale(to);
        for _ in 0..40 {
            w.step()?;
        }
        let plan = reconcile(&w.view, w.now);
        prop_assert!(plan.is_quiet() && plan.state.steady, "{:?}", plan);
        prop_assert_eq!(plan.state.running_count, to);
    }

    #[test]
    fn a_daemon_follows_its_instances(
        changes in proptest::collection::vec((0usize..6, 0u8..4), 0..30), min in 0u32..=100, seed in any::<u64>(),
    ) {
        let p = Params {
            desired: 0, min, max: 100, health_check: false, seed, fail_new: 0, kill: 0,
            circuit_breaker: CircuitBreaker::default(),
        };
        let mut w = World::updated(p);
        w.view.tasks.clear();
        w.view.spec.scheduling = SchedulingStrategy::Daemon;
        w.view.instances = (0..6).map(|i| instance(&format!("i{i}"), InstanceStatus::Active, true, true)).collect();
        let mut changes = changes.into_iter();
        for step in 0..80 {
            // Instances drain, disconnect and stop matching during the
            // first steps, then the cluster holds still so the daemon settles.
            if step % 2 == 0 && let Some((i, what)) = changes.next() {
                let inst = &mut w.view.instances[i];
                match what {
                    0 => inst.status = if inst.status == InstanceStatus::Active { InstanceStatus::Draining } else { InstanceStatus::Active },
                    1 => inst.connected = !inst.connected,
                    2 => inst.matches = !inst.matches,
                    _ => {}
                }
            }
            let plan = reconcile(&w.view, w.now);
            w.apply(&plan);
            let again = reconcile(&w.view, w.now);
            prop_assert!(again.is_quiet(), "not idempotent: {:?}\nthen {:?}", plan, again);
            for inst in &w.view.instances {
                let on = w.view.tasks.iter().filter(|t| t.is_active() && t.instance_id == inst.id).count();
                prop_assert!(on <= 1, "{} tasks on {}", on, inst.id);
                if inst.status == InstanceStatus::Draining || !inst.matches {
                    prop_assert_eq!(on, 0, "a task left on {:?}", inst);
                }
            }
            w.advance();
        }
        let plan = reconcile(&w.view, w.now);
        prop_assert!(plan.is_quiet(), "{:?}", plan);
        for inst in w.view.instances.iter().filter(|i| i.is_eligible()) {
            let on = w.view.tasks.iter().filter(|t| t.is_healthy() && t.instance_id == inst.id).count();
            prop_assert_eq!(on, 1, "{} has no daemon task", inst.id);
        }
    }
}
