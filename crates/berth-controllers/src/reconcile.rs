//! The reconciler: one pass over a [`ServiceView`], no memory of why it
//! ran. Every decision is recomputed from the view, so running it twice on
//! the same view gives the same plan, and running it on the view a plan
//! produced asks for nothing more.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet};

use crate::events;
use crate::model::{
    DeploymentStatus, DeploymentView, InstanceStatus, RolloutState, SchedulingStrategy,
    ServiceView, TaskStatus, TaskView,
};
use crate::plan::{
    DeploymentChange, DeploymentCounts, Rollback, ServicePlan, ServiceState, StartTasks, StopTask,
};
use crate::throttle::{Allowance, Throttle};

/// The circuit breaker's failure threshold: half the desired count, at
/// least 3 and at most 200 (ECS's `ServiceDeploymentCircuitBreaker.threshold`
/// documents "0.5 × desired task count" with those bounds). ECS does not
/// say how a half is rounded; we round up, so 7 desired tolerate 4
/// failures rather than 3.
pub fn failure_threshold(desired_count: u32) -> u32 {
    desired_count.div_ceil(2).clamp(3, 200)
}

/// The most tasks (desired RUNNING, of all deployments) a rolling update
/// may have: `floor(desired × maximumPercent / 100)`, as ECS rounds it.
pub fn max_total(desired_count: u32, maximum_percent: u32) -> u32 {
    let v = u64::from(desired_count) * u64::from(maximum_percent) / 100;
    u32::try_from(v).unwrap_or(u32::MAX)
}

/// The fewest healthy tasks a stop may leave: `ceil(desired ×
/// minimumHealthyPercent / 100)`, as ECS rounds it.
pub fn min_healthy(desired_count: u32, minimum_healthy_percent: u32) -> u32 {
    let v = (u64::from(desired_count) * u64::from(minimum_healthy_percent)).div_ceil(100);
    u32::try_from(v).unwrap_or(u32::MAX)
}

/// How long a task without a health check must stay RUNNING before it
/// completes a deployment or clears the start throttle: a container that
/// crashes at once does reach RUNNING for a moment, and must not pass for
/// a working revision (Berth's rule; ECS publishes none).
pub const STABLE_RUNNING_MS: u64 = 3_000;

/// Reconciles one service. See the crate documentation for the rules.
pub fn reconcile(view: &ServiceView, now_ms: u64) -> ServicePlan {
    let mut run = Run::new(view, now_ms);
    run.stop_lost();
    run.record_failures();
    run.circuit_breaker();
    run.replace_unhealthy();
    match view.spec.scheduling {
        SchedulingStrategy::Replica => run.replica(),
        SchedulingStrategy::Daemon => run.daemon(),
    }
    run.retire_drained();
    run.complete_primary();
    run.finish()
}

struct Run<'a> {
    view: &'a ServiceView,
    now: u64,
    primary: Option<&'a DeploymentView>,
    desired: u32,
    /// No starts and no draining: there is no PRIMARY, or it FAILED (the
    /// circuit breaker stops the rollout; with rollback the new PRIMARY
    /// only exists once the caller applied this plan).
    frozen: bool,
    stopped: BTreeSet<&'a str>,
    stops: Vec<StopTask>,
    starts: Vec<StartTasks>,
    recorded: Vec<String>,
    /// Failures recorded by this plan, per deployment.
    new_failures: BTreeMap<&'a str, u32>,
    changes: Vec<DeploymentChange>,
    rollback: Option<Rollback>,
    throttle: Throttle,
    events: Vec<String>,
    requeue: Option<u64>,
    /// REPLICA: unhealthy tasks past the grace period, replaced before
    /// they are stopped (see [`Run::replica`]), oldest first.
    unhealthy: Vec<&'a TaskView>,
}

impl<'a> Run<'a> {
    fn new(view: &'a ServiceView, now: u64) -> Self {
        let primary = view.primary();
        let desired = match view.spec.scheduling {
            SchedulingStrategy::Replica => view.spec.desired_count,
            SchedulingStrategy::Daemon => {
                u32::try_from(view.instances.iter().filter(|i| i.is_eligible()).count())
                    .unwrap_or(u32::MAX)
            }
        };
        let frozen = primary.is_none_or(|p| p.rollout_state == RolloutState::Failed);
        Run {
            view,
            now,
            primary,
            desired,
            frozen,
            stopped: BTreeSet::new(),
            stops: Vec::new(),
            starts: Vec::new(),
            recorded: Vec::new(),
            new_failures: BTreeMap::new(),
            changes: Vec::new(),
            rollback: None,
            throttle: view.throttle,
            events: Vec::new(),
            requeue: None,
            unhealthy: Vec::new(),
        }
    }

    fn primary_id(&self) -> &'a str {
        self.primary.map_or("", |p| p.id.as_str())
    }

    fn is_primary(&self, t: &TaskView) -> bool {
        self.primary.is_some_and(|p| p.id == t.deployment_id)
    }

    /// Tasks that count, minus those this plan stops.
    fn active(&self) -> impl Iterator<Item = &'a TaskView> + '_ {
        self.view
            .tasks
            .iter()
            .filter(|t| t.is_active() && !self.stopped.contains(t.id.as_str()))
    }

    fn stop(&mut self, t: &'a TaskView, reason: String) {
        if self.stopped.insert(t.id.as_str()) {
            self.stops.push(StopTask {
                task_id: t.id.clone(),
                reason,
            });
        }
    }

    fn change(&mut self, deployment_id: &str) -> &mut DeploymentChange {
        let i = match self
            .changes
            .iter()
            .position(|c| c.deployment_id == deployment_id)
        {
            Some(i) => i,
            None => {
                self.changes.push(DeploymentChange {
                    deployment_id: deployment_id.to_string(),
                    status: None,
                    rollout: None,
                    failed_tasks: None,
                });
                self.changes.len() - 1
            }
        };
        &mut self.changes[i]
    }

    fn requeue_in(&mut self, ms: u64) {
        self.requeue = Some(self.requeue.map_or(ms, |r| r.min(ms)));
    }

    /// Stops the lost tasks still asked to run; `is_active` already leaves
    /// them out of every count.
    fn stop_lost(&mut self) {
        for t in &self.view.tasks {
            if t.lost
                && t.desired_status == crate::DesiredStatus::Running
                && t.last_status != TaskStatus::Stopped
            {
                self.stop(t, events::stop_host_lost());
            }
        }
    }

    /// Counts new failures into `failed_tasks` and the throttle; a task
    /// seen RUNNING that started after the last failure resets the throttle.
    fn record_failures(&mut self) {
        for t in &self.view.tasks {
            if t.is_failure() && !t.failure_recorded {
                self.recorded.push(t.id.clone());
                *self
                    .new_failures
                    .entry(t.deployment_id.as_str())
                    .or_default() += 1;
                self.throttle.consecutive_failures =
                    self.throttle.consecutive_failures.saturating_add(1);
                let at = t.stopped_at_ms.unwrap_or(self.now);
                self.throttle.last_failure_at_ms = self.throttle.last_failure_at_ms.max(at);
            }
        }
        let failures: Vec<(&str, u32)> = self.new_failures.iter().map(|(k, v)| (*k, *v)).collect();
        for (id, n) in failures {
            if let Some(d) = self.view.deployments.iter().find(|d| d.id == id) {
                self.change(id).failed_tasks = Some(d.failed_tasks.saturating_add(n));
            }
        }
        let last = self.throttle.last_failure_at_ms;
        let now = self.now;
        let recovered = self.view.tasks.iter().any(|t| {
            !t.lost
                && t.last_status == TaskStatus::Running
                && t.started_at_ms.is_some_and(|s| s > last && now >= s.saturating_add(STABLE_RUNNING_MS))
        });
        if self.throttle.consecutive_failures > 0 && recovered {
            self.throttle.consecutive_failures = 0;
        }
    }

    fn circuit_breaker(&mut self) {
        let Some(p) = self.primary else { return };
        let cb = self.view.spec.circuit_breaker;
        if !cb.enable || p.rollout_state != RolloutState::InProgress {
            return;
        }
        let failed = p
            .failed_tasks
            .saturating_add(self.new_failures.get(p.id.as_str()).copied().unwrap_or(0));
        if failed < failure_threshold(self.desired) {
            return;
        }
        self.frozen = true;
        self.change(&p.id).rollout = Some((
            RolloutState::Failed,
            events::reason_circuit_breaker_failed(),
        ));
        self.events
            .push(events::deployment_failed(&self.view.name, &p.id));
        if !cb.rollback {
            return;
        }
        let target = self
            .view
            .deployments
            .iter()
            .filter(|d| d.id != p.id && d.rollout_state == RolloutState::Completed)
            .max_by_key(|d| d.created_at_ms);
        if let Some(to) = target {
            self.change(&p.id).status = Some(DeploymentStatus::Active);
            self.rollback = Some(Rollback {
                failed_deployment_id: p.id.clone(),
                to_deployment_id: to.id.clone(),
                task_definition: to.task_definition.clone(),
                reason: events::reason_rolling_back(&to.id),
            });
        }
    }

    /// UNHEALTHY past the grace period: replaced. A REPLICA service starts
    /// the replacement first and stops the unhealthy task once it is
    /// healthy, as ECS does since October 2023 (room permitting under
    /// maximumPercent: see [`Run::replica`]); a DAEMON service, or one
    /// whose rollout is frozen, stops it at once. Either way this never
    /// lowers the healthy count (an UNHEALTHY task is not healthy), so
    /// minimumHealthyPercent never holds it back.
    fn replace_unhealthy(&mut self) {
        let grace = self.view.spec.health_check_grace_period_ms;
        let replace_first = self.view.spec.scheduling == SchedulingStrategy::Replica && !self.frozen;
        for t in &self.view.tasks {
            if t.is_unhealthy(grace, self.now) {
                if replace_first {
                    self.unhealthy.push(t);
                } else {
                    self.stop(t, Self::unhealthy_reason(t));
                }
            } else if t.unhealthy_now()
                && let Some(s) = t.started_at_ms
            {
                // Inside the grace period: look again when it ends.
                self.requeue_in(s.saturating_add(grace).saturating_sub(self.now));
            }
        }
        self.unhealthy.sort_by_key(|t| (t.started_at_ms, t.id.as_str()));
    }

    fn unhealthy_reason(t: &TaskView) -> String {
        match t.elb_unhealthy_in() {
            Some(tg) if !t.container_unhealthy() => events::stop_elb_health_checks(tg),
            _ => events::stop_container_health_checks(),
        }
    }

    /// Stops `candidates` in order, a healthy one only while the healthy
    /// count stays at or above `floor`.
    fn stop_within_minimum(&mut self, candidates: Vec<&'a TaskView>, floor: u32) {
        let mut healthy = self.active().filter(|t| t.is_healthy()).count();
        let reason = events::stop_scaling(self.primary_id());
        for t in candidates {
            if !t.is_healthy() {
                self.stop(t, reason.clone());
            } else if healthy > floor as usize {
                self.stop(t, reason.clone());
                healthy -= 1;
            }
        }
    }

    /// The order tasks are given up in: not-yet-healthy first (they cost no
    /// capacity), old deployments before the PRIMARY, older deployments
    /// first, then the most recently started (keeping warm tasks). ECS
    /// balances scale-in across Availability Zones first; Berth has no AZs
    /// yet, so that step is absent.
    fn scale_in_key(&self, t: &TaskView) -> (bool, bool, u64, Reverse<Option<u64>>) {
        let created = self
            .view
            .deployments
            .iter()
            .find(|d| d.id == t.deployment_id)
            .map_or(0, |d| d.created_at_ms);
        (
            t.is_healthy(),
            self.is_primary(t) && !t.on_draining_instance,
            created,
            Reverse(t.started_at_ms),
        )
    }

    /// What the throttle lets this plan start. While throttled, the probe
    /// allowance counts the PRIMARY's tasks still PENDING, so a probe in
    /// flight is not repeated by the next reconcile (the plan stays
    /// idempotent; the failure or success of the probe decides what next).
    fn allowance(&mut self, wanted: u32) -> u32 {
        let in_flight = self
            .active()
            .filter(|t| t.last_status == TaskStatus::Pending && self.is_primary(t))
            .count();
        match self.throttle.allowance(self.now) {
            Allowance::Unlimited => wanted,
            Allowance::AtMost(n) => {
                wanted.min(n.saturating_sub(u32::try_from(in_flight).unwrap_or(u32::MAX)))
            }
            Allowance::WaitMs(ms) => {
                if wanted > 0 {
                    self.requeue_in(ms);
                }
                0
            }
        }
    }

    fn replica(&mut self) {
        if self.frozen {
            return;
        }
        let Some(p) = self.primary else { return };
        let spec = &self.view.spec;
        let d = self.desired;
        let floor = min_healthy(d, spec.minimum_healthy_percent);
        let ceiling = max_total(d, spec.maximum_percent);

        // Tasks on DRAINING instances are surplus like an old deployment's:
        // replaced first (within the ceiling), then stopped within the floor.
        // Unhealthy tasks are replaced first and stopped below.
        let unhealthy: BTreeSet<&str> = self.unhealthy.iter().map(|t| t.id.as_str()).collect();
        let stays = |t: &&TaskView| {
            t.deployment_id == p.id && !t.on_draining_instance && !unhealthy.contains(t.id.as_str())
        };
        let mut primary_tasks: Vec<&'a TaskView> = self.active().filter(stays).collect();
        let mut candidates: Vec<&'a TaskView> = self
            .active()
            .filter(|t| !stays(t) && !unhealthy.contains(t.id.as_str()))
            .collect();
        if primary_tasks.len() > d as usize {
            primary_tasks.sort_by_key(|t| self.scale_in_key(t));
            candidates.extend(primary_tasks.drain(..primary_tasks.len() - d as usize));
        }
        candidates.sort_by_key(|t| self.scale_in_key(t));
        self.stop_within_minimum(candidates, floor);

        // The ceiling counts what may really run: every task not yet
        // STOPPED (including those asked to stop, by this plan or earlier,
        // that are still stopping) and lost tasks, which may still run on
        // their silent host until its agent confirms them stopped.
        let total = u32::try_from(
            self.view
                .tasks
                .iter()
                .filter(|t| t.lost || t.last_status != TaskStatus::Stopped)
                .count(),
        )
        .unwrap_or(u32::MAX);
        let in_primary = u32::try_from(self.active().filter(stays).count())
            .unwrap_or(u32::MAX);
        let needed = d.saturating_sub(in_primary);
        let room = ceiling.saturating_sub(total);
        let wanted = needed.min(room);

        // Unhealthy tasks stop once their replacements are healthy (healthy
        // tasks beyond those the service had without them), and at once
        // where maximumPercent leaves no room to start a replacement.
        let n_unhealthy = u32::try_from(self.unhealthy.len()).unwrap_or(u32::MAX);
        let healthy = u32::try_from(self.active().filter(|t| t.is_healthy()).count()).unwrap_or(u32::MAX);
        let replaced = healthy.saturating_add(n_unhealthy).saturating_sub(d);
        let no_room = needed.saturating_sub(room);
        let n_stop = replaced.max(no_room).min(n_unhealthy) as usize;
        for t in self.unhealthy.clone().into_iter().take(n_stop) {
            self.stop(t, Self::unhealthy_reason(t));
        }

        let count = self.allowance(wanted);
        if count > 0 {
            self.starts.push(StartTasks {
                deployment_id: p.id.clone(),
                task_definition: p.task_definition.clone(),
                count,
                instance_ids: Vec::new(),
            });
        }
    }

    /// One task per eligible instance. Tasks on DRAINING, unknown or no
    /// longer matching instances are stopped; tasks on instances whose
    /// agent is disconnected are left as they are. A rolling update stops
    /// an instance's old task (within minimumHealthyPercent of the
    /// eligible count) and starts the new one in the same plan: at most
    /// one task per instance is ever desired RUNNING, as ECS's daemon
    /// scheduler (maximumPercent 100) does.
    fn daemon(&mut self) {
        let view = self.view;
        for t in self.active().collect::<Vec<_>>() {
            let deployment = if self.primary.is_some() {
                self.primary_id()
            } else {
                t.deployment_id.as_str()
            };
            match view.instances.iter().find(|i| i.id == t.instance_id) {
                None => self.stop(t, events::stop_scaling(deployment)),
                Some(i) if i.status == InstanceStatus::Draining => {
                    self.stop(t, events::stop_instance_draining())
                }
                Some(i) if !i.matches => self.stop(t, events::stop_scaling(deployment)),
                Some(_) => {}
            }
        }
        if self.frozen {
            return;
        }
        let Some(p) = self.primary else { return };
        let floor = min_healthy(self.desired, view.spec.minimum_healthy_percent);

        let mut candidates = Vec::new();
        for i in view.instances.iter().filter(|i| i.is_eligible()) {
            let mut on: Vec<&'a TaskView> =
                self.active().filter(|t| t.instance_id == i.id).collect();
            // Keep the best PRIMARY task (healthy, then longest running);
            // everything else on the instance is surplus.
            on.sort_by_key(|t| {
                (
                    t.deployment_id != p.id,
                    !t.is_healthy(),
                    t.started_at_ms.is_none(),
                    t.started_at_ms,
                )
            });
            let keep_primary = on.first().is_some_and(|t| t.deployment_id == p.id);
            candidates.extend(on.into_iter().skip(usize::from(keep_primary)));
        }
        candidates.sort_by_key(|t| self.scale_in_key(t));
        self.stop_within_minimum(candidates, floor);

        let free: Vec<String> = view
            .instances
            .iter()
            .filter(|i| i.is_eligible() && !self.active().any(|t| t.instance_id == i.id))
            .map(|i| i.id.clone())
            .collect();
        let count = self.allowance(u32::try_from(free.len()).unwrap_or(u32::MAX));
        if count > 0 {
            let instance_ids: Vec<String> = free.into_iter().take(count as usize).collect();
            self.starts.push(StartTasks {
                deployment_id: p.id.clone(),
                task_definition: p.task_definition.clone(),
                count,
                instance_ids,
            });
        }
    }

    /// A deployment other than the PRIMARY with nothing left asked to run
    /// becomes INACTIVE (level-triggered: whatever emptied it).
    fn retire_drained(&mut self) {
        let primary = self.primary_id();
        for d in &self.view.deployments {
            if d.id == primary || d.status == DeploymentStatus::Inactive {
                continue;
            }
            if !self.active().any(|t| t.deployment_id == d.id) {
                self.change(&d.id).status = Some(DeploymentStatus::Inactive);
            }
        }
    }

    fn status_after(&self, d: &DeploymentView) -> DeploymentStatus {
        self.changes
            .iter()
            .find(|c| c.deployment_id == d.id)
            .and_then(|c| c.status)
            .unwrap_or(d.status)
    }

    /// The PRIMARY is COMPLETED once it alone runs the desired count, all
    /// healthy.
    fn complete_primary(&mut self) {
        if self.frozen {
            return;
        }
        let Some(p) = self.primary else { return };
        if p.rollout_state != RolloutState::InProgress {
            return;
        }
        let others_gone = self
            .view
            .deployments
            .iter()
            .all(|d| d.id == p.id || self.status_after(d) == DeploymentStatus::Inactive);
        let mine: Vec<&TaskView> = self.active().filter(|t| t.deployment_id == p.id).collect();
        let all_healthy =
            mine.len() == self.desired as usize && mine.iter().all(|t| t.is_healthy());
        // A health check that passes says the task works; without one, the
        // task must have stayed RUNNING a while.
        let now = self.now;
        let unstable_until = mine
            .iter()
            .filter(|t| !t.has_health_check)
            .filter_map(|t| t.started_at_ms.map(|s| s.saturating_add(STABLE_RUNNING_MS)))
            .filter(|until| *until > now)
            .max();
        if let Some(until) = unstable_until
            && others_gone
            && all_healthy
        {
            self.requeue_in(until - now);
            return;
        }
        if others_gone && all_healthy && self.starts.is_empty() {
            self.change(&p.id).rollout =
                Some((RolloutState::Completed, events::reason_completed(&p.id)));
            self.events
                .push(events::deployment_completed(&self.view.name, &p.id));
        }
    }

    fn finish(mut self) -> ServicePlan {
        let view = self.view;
        let counted = |t: &&TaskView| !t.lost;
        let count = |status: TaskStatus, dep: Option<&str>| {
            let n = view
                .tasks
                .iter()
                .filter(counted)
                .filter(|t| t.last_status == status && dep.is_none_or(|d| t.deployment_id == d))
                .count();
            u32::try_from(n).unwrap_or(u32::MAX)
        };
        let running_count = count(TaskStatus::Running, None);
        let pending_count = count(TaskStatus::Pending, None);
        let deployments = view
            .deployments
            .iter()
            .map(|d| DeploymentCounts {
                deployment_id: d.id.clone(),
                running: count(TaskStatus::Running, Some(&d.id)),
                pending: count(TaskStatus::Pending, Some(&d.id)),
            })
            .collect();

        let quiet = self.starts.is_empty()
            && self.stops.is_empty()
            && self.changes.is_empty()
            && self.rollback.is_none();
        let steady = quiet
            && self.primary.is_some_and(|p| {
                p.rollout_state == RolloutState::Completed
            })
            && self.primary.is_some_and(|p| {
                let only_primary = view
                    .deployments
                    .iter()
                    .all(|d| d.id == p.id || d.status == DeploymentStatus::Inactive);
                let active: Vec<&TaskView> = self.active().collect();
                only_primary
                    && pending_count == 0
                    && running_count == self.desired
                    && active.len() == self.desired as usize
                    && active
                        .iter()
                        .all(|t| t.deployment_id == p.id && t.is_healthy())
            });

        if !self.stops.is_empty() {
            let ids: Vec<&str> = self.stops.iter().map(|s| s.task_id.as_str()).collect();
            // After the deployment-failed event, before completion: the
            // order things happen in.
            let at = self
                .events
                .iter()
                .take_while(|e| e.contains("deployment failed"))
                .count();
            // ECS reports large batches ten tasks per event.
            for (i, chunk) in ids.chunks(events::TASKS_PER_EVENT).enumerate() {
                self.events
                    .insert(at + i, events::stopped_tasks(&view.name, chunk));
            }
        }
        if steady && !view.was_steady {
            self.events.push(events::steady_state(&view.name));
        }

        ServicePlan {
            starts: self.starts,
            stops: self.stops,
            recorded_failures: self.recorded,
            deployment_changes: self.changes,
            rollback: self.rollback,
            state: ServiceState {
                desired_count: self.desired,
                running_count,
                pending_count,
                deployments,
                steady,
            },
            throttle: self.throttle,
            events: self.events,
            requeue_after_ms: self.requeue,
        }
    }
}
