//! One test per rule of the reconciler.

use crate::testkit::*;
use crate::*;

const P: &str = "ecs-svc/2";
const OLD: &str = "ecs-svc/1";

fn running_n(n: usize, deployment: &str, prefix: &str) -> Vec<TaskView> {
    (0..n)
        .map(|i| running(&format!("{prefix}{i}"), deployment))
        .collect()
}

#[test]
fn a_new_service_starts_its_desired_count_in_the_primary() {
    let plan = reconcile(&view(spec(3, 100, 200), vec![primary(P)], vec![]), 0);
    assert_eq!(plan.starts.len(), 1);
    assert_eq!(
        (plan.starts[0].deployment_id.as_str(), plan.starts[0].count),
        (P, 3)
    );
    assert_eq!(plan.starts[0].task_definition, format!("td-{P}"));
    assert!(plan.stops.is_empty() && !plan.state.steady);
}

#[test]
fn a_complete_primary_completes_then_reports_steady_once() {
    let v = view(spec(2, 100, 200), vec![primary(P)], running_n(2, P, "t"));
    // Not before the tasks have stayed RUNNING (they started at 10).
    let early = reconcile(&v, 2_000);
    assert!(early.is_quiet() && early.deployment_changes.is_empty() && !early.state.steady);
    assert_eq!(early.requeue_after_ms, Some(1_010));
    let plan = reconcile(&v, 3_010);
    assert!(plan.is_quiet());
    let change = plan.change_for(P).map(|c| c.rollout.clone());
    assert_eq!(
        change,
        Some(Some((
            RolloutState::Completed,
            format!("ECS deployment {P} completed.")
        )))
    );
    assert_eq!(
        plan.events,
        [format!(
            "(service web) (deployment {P}) deployment completed."
        )]
    );
    assert!(
        !plan.state.steady,
        "a plan that changes a deployment is not steady yet"
    );

    let mut v = v;
    v.deployments[0].rollout_state = RolloutState::Completed;
    let plan = reconcile(&v, 0);
    assert!(plan.is_quiet() && plan.deployment_changes.is_empty() && plan.state.steady);
    assert_eq!(plan.events, ["(service web) has reached a steady state."]);

    v.was_steady = true;
    let plan = reconcile(&v, 0);
    assert!(
        plan.state.steady && plan.events.is_empty(),
        "{:?}",
        plan.events
    );
}

#[test]
fn rolling_update_at_100_200_starts_all_new_tasks_before_stopping_old_ones() {
    let v = view(
        spec(4, 100, 200),
        vec![old(OLD), primary(P)],
        running_n(4, OLD, "o"),
    );
    let plan = reconcile(&v, 0);
    assert_eq!(started(&plan), 4);
    assert!(plan.stops.is_empty());

    let mut tasks = running_n(4, OLD, "o");
    tasks.extend(running_n(4, P, "n"));
    let plan = reconcile(
        &view(spec(4, 100, 200), vec![old(OLD), primary(P)], tasks),
        STABLE_RUNNING_MS + 10,
    );
    assert_eq!(stopped_ids(&plan), ["o0", "o1", "o2", "o3"]);
    assert!(
        plan.stops
            .iter()
            .all(|s| s.reason == format!("Scaling activity initiated by (deployment {P})"))
    );
    assert_eq!(started(&plan), 0);
    assert_eq!(
        plan.change_for(OLD).and_then(|c| c.status),
        Some(DeploymentStatus::Inactive)
    );
    assert_eq!(
        plan.change_for(P)
            .and_then(|c| c.rollout.as_ref())
            .map(|r| r.0),
        Some(RolloutState::Completed)
    );
    assert_eq!(
        plan.events[0],
        "(service web) has stopped 4 running tasks: (task o0) (task o1) (task o2) (task o3)."
    );
}

#[test]
fn rolling_update_at_50_100_stops_down_to_the_minimum_and_fills_up_to_the_maximum() {
    let v = view(
        spec(4, 50, 100),
        vec![old(OLD), primary(P)],
        running_n(4, OLD, "o"),
    );
    let plan = reconcile(&v, 0);
    assert_eq!(plan.stops.len(), 2, "healthy may drop to ceil(4 × 0.5) = 2");
    assert_eq!(
        started(&plan),
        0,
        "the stopped tasks run until their agent stops them: the total (4) is at floor(4 × 1.0)"
    );
    // Once they are STOPPED, the room is free.
    let mut v = v;
    for t in &mut v.tasks {
        if plan.stops.iter().any(|s| s.task_id == t.id) {
            t.desired_status = DesiredStatus::Stopped;
            t.last_status = TaskStatus::Stopped;
            t.stop_code = Some(StopCode::ServiceSchedulerInitiated);
        }
    }
    let plan = reconcile(&v, 0);
    assert!(plan.stops.is_empty());
    assert_eq!(started(&plan), 2);
}

#[test]
fn pending_new_tasks_do_not_count_as_healthy_so_old_ones_stay() {
    let mut tasks = running_n(4, OLD, "o");
    tasks.extend((0..4).map(|i| pending(&format!("n{i}"), P)));
    let plan = reconcile(
        &view(spec(4, 100, 200), vec![old(OLD), primary(P)], tasks),
        0,
    );
    assert!(plan.is_quiet(), "{plan:?}");
}

#[test]
fn min_100_max_100_cannot_progress_as_in_ecs() {
    let plan = reconcile(
        &view(
            spec(3, 100, 100),
            vec![old(OLD), primary(P)],
            running_n(3, OLD, "o"),
        ),
        0,
    );
    assert!(plan.is_quiet());
}

#[test]
fn scale_in_stops_pending_tasks_then_the_newest() {
    let mut tasks = running_n(4, P, "t");
    for (i, t) in tasks.iter_mut().enumerate() {
        t.started_at_ms = Some(10 * i as u64);
    }
    tasks.push(pending("p", P));
    let plan = reconcile(&view(spec(3, 100, 200), vec![primary(P)], tasks), 0);
    assert_eq!(stopped_ids(&plan), ["p", "t3"]);
    assert_eq!(started(&plan), 0);
}

#[test]
fn scale_in_drains_old_deployments_before_the_primary() {
    let mut tasks = running_n(2, OLD, "o");
    tasks.extend(running_n(3, P, "n"));
    let plan = reconcile(&view(spec(3, 0, 200), vec![old(OLD), primary(P)], tasks), 0);
    assert_eq!(stopped_ids(&plan), ["o0", "o1"]);
}

#[test]
fn stopped_tasks_are_not_counted_and_get_replaced() {
    let mut tasks = running_n(2, P, "t");
    tasks.push(stopped("gone", P, StopCode::UserInitiated));
    let plan = reconcile(&view(spec(3, 100, 200), vec![primary(P)], tasks), 0);
    assert_eq!(started(&plan), 1);
    assert!(
        plan.recorded_failures.is_empty(),
        "a user stop is not a failure"
    );
}

#[test]
fn unhealthy_tasks_are_stopped_after_the_grace_period_and_replaced() {
    let mut s = spec(2, 100, 100);
    s.health_check_grace_period_ms = 1_000;
    let mut tasks = running_n(2, P, "t");
    for t in &mut tasks {
        t.has_health_check = true;
        t.health = HealthStatus::Healthy;
    }
    tasks[1].health = HealthStatus::Unhealthy;
    let v = view(s, vec![primary(P)], tasks);

    let plan = reconcile(&v, 500);
    assert!(plan.is_quiet(), "inside the grace period");
    assert_eq!(
        plan.requeue_after_ms,
        Some(510),
        "look again when the grace period ends (started at 10)"
    );

    let plan = reconcile(&v, 1_010);
    assert_eq!(
        plan.stops,
        [StopTask {
            task_id: "t1".into(),
            reason: "Task failed container health checks".into()
        }]
    );
    assert_eq!(
        started(&plan),
        0,
        "at max 100 the replacement waits until the unhealthy task has stopped"
    );
    let mut v = v;
    v.tasks[1].desired_status = DesiredStatus::Stopped;
    v.tasks[1].last_status = TaskStatus::Stopped;
    v.tasks[1].stop_code = Some(StopCode::ServiceSchedulerInitiated);
    assert_eq!(
        started(&reconcile(&v, 1_010)),
        1,
        "replaced even at min 100 / max 100: it was not healthy"
    );
}

#[test]
fn a_task_with_a_health_check_still_unknown_is_not_healthy() {
    let mut t = running("t", P);
    t.has_health_check = true;
    assert!(!t.is_healthy());
    t.health = HealthStatus::Healthy;
    assert!(t.is_healthy());
}

#[test]
fn lost_tasks_do_not_count_are_stopped_and_replaced() {
    let mut tasks = running_n(2, P, "t");
    tasks[0].lost = true;
    let plan = reconcile(&view(spec(2, 100, 200), vec![primary(P)], tasks), 0);
    assert_eq!(
        plan.stops,
        [StopTask {
            task_id: "t0".into(),
            reason: events::stop_host_lost()
        }]
    );
    assert_eq!(started(&plan), 1);
    assert_eq!(plan.state.running_count, 1);
}

#[test]
fn tasks_on_disconnected_instances_count_as_they_are() {
    let mut tasks = running_n(2, P, "t");
    tasks[0].agent_connected = false;
    let mut v = view(spec(2, 100, 200), vec![primary(P)], tasks);
    v.deployments[0].rollout_state = RolloutState::Completed;
    let plan = reconcile(&v, 0);
    assert!(plan.is_quiet() && plan.state.steady);
}

#[test]
fn failures_are_recorded_once() {
    let mut tasks = running_n(1, P, "t");
    tasks.push(stopped("f", P, StopCode::TaskFailedToStart));
    let mut v = view(spec(2, 100, 200), vec![primary(P)], tasks);
    v.deployments[0].failed_tasks = 1;
    let plan = reconcile(&v, 0);
    assert_eq!(plan.recorded_failures, ["f"]);
    assert_eq!(plan.change_for(P).and_then(|c| c.failed_tasks), Some(2));
    assert_eq!(plan.throttle.consecutive_failures, 1);

    v.tasks[1].failure_recorded = true;
    v.deployments[0].failed_tasks = 2;
    let plan = reconcile(&v, 0);
    assert!(plan.recorded_failures.is_empty() && plan.change_for(P).is_none());
}

#[test]
fn what_counts_as_a_failure() {
    let f = |code| stopped("x", P, code).is_failure();
    assert!(f(StopCode::TaskFailedToStart) && f(StopCode::EssentialContainerExited));
    assert!(
        !f(StopCode::UserInitiated)
            && !f(StopCode::SpotInterruption)
            && !f(StopCode::ServiceSchedulerInitiated)
    );
    let mut unhealthy = stopped("x", P, StopCode::ServiceSchedulerInitiated);
    unhealthy.health = HealthStatus::Unhealthy;
    assert!(
        unhealthy.is_failure(),
        "stopped by the scheduler for failing health checks"
    );
    assert!(!running("x", P).is_failure());
}

#[test]
fn circuit_breaker_threshold_is_half_desired_within_3_and_200() {
    assert_eq!(failure_threshold(0), 3);
    assert_eq!(failure_threshold(1), 3);
    assert_eq!(failure_threshold(7), 4);
    assert_eq!(failure_threshold(10), 5);
    assert_eq!(failure_threshold(399), 200);
    assert_eq!(failure_threshold(10_000), 200);
}

fn failing_view(rollback: bool) -> ServiceView {
    let mut s = spec(2, 100, 200);
    s.circuit_breaker = CircuitBreaker {
        enable: true,
        rollback,
    };
    let mut tasks = running_n(2, OLD, "o");
    tasks.push(stopped("f", P, StopCode::TaskFailedToStart));
    let mut v = view(s, vec![old(OLD), primary(P)], tasks);
    v.deployments[1].failed_tasks = 2;
    v
}

#[test]
fn circuit_breaker_fails_the_primary_at_the_threshold() {
    let plan = reconcile(&failing_view(false), 0);
    let change = plan.change_for(P).cloned();
    assert_eq!(change.as_ref().and_then(|c| c.failed_tasks), Some(3));
    assert_eq!(
        change.and_then(|c| c.rollout),
        Some((
            RolloutState::Failed,
            "ECS deployment circuit breaker: tasks failed to start.".into()
        ))
    );
    assert_eq!(
        plan.events,
        [format!(
            "(service web) (deployment {P}) deployment failed: tasks failed to start."
        )]
    );
    assert!(
        plan.is_quiet(),
        "no more starts, and the old tasks keep serving"
    );
    assert!(plan.rollback.is_none());

    let mut after = failing_view(false);
    after.deployments[1].rollout_state = RolloutState::Failed;
    after.tasks[2].failure_recorded = true;
    let plan = reconcile(&after, 0);
    assert!(plan.is_quiet() && plan.events.is_empty() && !plan.state.steady);
}

#[test]
fn circuit_breaker_rolls_back_to_the_last_completed_deployment() {
    let plan = reconcile(&failing_view(true), 0);
    let rollback = plan.rollback.clone();
    assert_eq!(
        rollback,
        Some(Rollback {
            failed_deployment_id: P.into(),
            to_deployment_id: OLD.into(),
            task_definition: format!("td-{OLD}"),
            reason: format!("ECS deployment circuit breaker: rolling back to deploymentId {OLD}."),
        })
    );
    assert_eq!(
        plan.change_for(P).and_then(|c| c.status),
        Some(DeploymentStatus::Active)
    );
}

#[test]
fn circuit_breaker_without_a_completed_deployment_only_fails() {
    let mut v = failing_view(true);
    v.deployments[0].rollout_state = RolloutState::Failed;
    let plan = reconcile(&v, 0);
    assert!(plan.rollback.is_none());
    assert_eq!(plan.change_for(P).and_then(|c| c.status), None);
}

#[test]
fn throttled_starts_wait_then_probe_one_at_a_time() {
    let mut v = view(spec(3, 100, 200), vec![primary(P)], vec![]);
    v.throttle = Throttle {
        consecutive_failures: 3,
        last_failure_at_ms: 1_000,
    };
    let plan = reconcile(&v, 2_000);
    assert!(plan.starts.is_empty());
    assert_eq!(plan.requeue_after_ms, Some(14_000));
    let plan = reconcile(&v, 16_000);
    assert_eq!(started(&plan), 1);
}

#[test]
fn a_task_running_since_the_last_failure_resets_the_throttle() {
    let mut v = view(spec(3, 100, 200), vec![primary(P)], running_n(1, P, "t"));
    v.throttle = Throttle {
        consecutive_failures: 5,
        last_failure_at_ms: 5,
    };
    let plan = reconcile(&v, 6);
    assert_eq!(
        plan.throttle.consecutive_failures, 5,
        "a task that only just reached RUNNING may be crashing"
    );
    let plan = reconcile(&v, 10 + STABLE_RUNNING_MS);
    assert_eq!(plan.throttle.consecutive_failures, 0);
    assert_eq!(started(&plan), 2);
}

#[test]
fn a_revision_that_crashes_after_reaching_running_never_completes() {
    // Without a health check, a task that reached RUNNING a moment ago
    // does not complete the deployment; when it exits, the failure counts
    // toward the circuit breaker as the deployment is still in progress.
    let mut s = spec(2, 100, 200);
    s.circuit_breaker = CircuitBreaker { enable: true, rollback: true };
    let mut tasks = running_n(2, P, "n");
    for t in &mut tasks {
        t.started_at_ms = Some(1_000);
    }
    let v = view(s, vec![old(OLD), primary(P)], tasks);
    let plan = reconcile(&v, 1_500);
    assert!(
        plan.change_for(P).and_then(|c| c.rollout.clone()).is_none(),
        "not COMPLETED yet: {plan:?}"
    );
    assert!(!plan.state.steady);
}

#[test]
fn counts_are_exact_and_per_deployment() {
    let mut tasks = running_n(2, OLD, "o");
    tasks.push(pending("p", P));
    tasks.push(running("n", P));
    tasks.push(stopped("s", P, StopCode::UserInitiated));
    let mut lost = running("l", P);
    lost.lost = true;
    tasks.push(lost);
    let plan = reconcile(
        &view(spec(4, 100, 200), vec![old(OLD), primary(P)], tasks),
        0,
    );
    assert_eq!((plan.state.running_count, plan.state.pending_count), (3, 1));
    let counts: Vec<(u32, u32)> = plan
        .state
        .deployments
        .iter()
        .map(|d| (d.running, d.pending))
        .collect();
    assert_eq!(counts, [(2, 0), (1, 1)]);
}

#[test]
fn reconcile_is_deterministic() {
    let v = failing_view(true);
    assert_eq!(reconcile(&v, 7), reconcile(&v, 7));
}

#[test]
fn validate_rejects_broken_views() {
    let v = view(spec(1, 100, 200), vec![old(OLD)], vec![]);
    assert_eq!(v.validate(), Err(ViewError::PrimaryCount(0)));
    let v = view(
        spec(1, 100, 200),
        vec![primary(P)],
        vec![running("t", "nope")],
    );
    assert!(matches!(
        v.validate(),
        Err(ViewError::UnknownDeployment { .. })
    ));
    assert_eq!(
        view(spec(1, 100, 200), vec![primary(P)], vec![running("t", P)]).validate(),
        Ok(())
    );
}

fn daemon(
    deployments: Vec<DeploymentView>,
    instances: Vec<InstanceView>,
    tasks: Vec<TaskView>,
) -> ServiceView {
    let mut s = spec(0, 0, 100);
    s.scheduling = SchedulingStrategy::Daemon;
    ServiceView {
        instances,
        ..view(s, deployments, tasks)
    }
}

fn on(mut t: TaskView, instance: &str) -> TaskView {
    t.instance_id = instance.to_string();
    t
}

#[test]
fn daemon_runs_one_task_per_eligible_instance() {
    let instances = vec![
        instance("a", InstanceStatus::Active, true, true),
        instance("b", InstanceStatus::Active, true, true),
        instance("drain", InstanceStatus::Draining, true, true),
        instance("off", InstanceStatus::Active, false, true),
        instance("nomatch", InstanceStatus::Active, true, false),
    ];
    let tasks = vec![
        on(running("ta", P), "a"),
        on(running("td", P), "drain"),
        on(running("to", P), "off"),
        on(running("tn", P), "nomatch"),
        on(running("tg", P), "deregistered"),
    ];
    let plan = reconcile(&daemon(vec![primary(P)], instances, tasks), 0);
    assert_eq!(plan.state.desired_count, 2);
    assert_eq!(plan.starts.len(), 1);
    assert_eq!(plan.starts[0].instance_ids, ["b"]);
    assert_eq!(
        stopped_ids(&plan),
        ["td", "tg", "tn"],
        "the disconnected instance's task stays"
    );
    let drained = plan
        .stops
        .iter()
        .find(|s| s.task_id == "td")
        .map(|s| s.reason.as_str());
    assert_eq!(drained, Some("Container instance is draining"));
}

#[test]
fn daemon_rolling_update_replaces_instance_by_instance_within_the_minimum() {
    let instances = vec![
        instance("a", InstanceStatus::Active, true, true),
        instance("b", InstanceStatus::Active, true, true),
    ];
    let tasks = vec![on(running("oa", OLD), "a"), on(running("ob", OLD), "b")];
    let mut v = daemon(vec![old(OLD), primary(P)], instances, tasks);
    v.spec.minimum_healthy_percent = 50;
    let plan = reconcile(&v, 0);
    assert_eq!(plan.stops.len(), 1, "min 50% of 2 keeps one healthy");
    let freed = if plan.stops[0].task_id == "oa" {
        "a"
    } else {
        "b"
    };
    assert_eq!(plan.starts[0].instance_ids, [freed]);
}

#[test]
fn daemon_duplicates_on_an_instance_are_stopped() {
    let instances = vec![instance("a", InstanceStatus::Active, true, true)];
    let mut newer = on(running("t2", P), "a");
    newer.started_at_ms = Some(99);
    let tasks = vec![on(running("t1", P), "a"), newer];
    let plan = reconcile(&daemon(vec![primary(P)], instances, tasks), 0);
    assert_eq!(stopped_ids(&plan), ["t2"]);
    assert!(plan.starts.is_empty());
}

#[test]
fn tasks_on_a_draining_instance_are_replaced_before_they_stop() {
    let mut tasks = running_n(4, P, "t");
    tasks[0].on_draining_instance = true;
    tasks[1].on_draining_instance = true;
    let mut v = view(spec(4, 75, 125), vec![completed(P)], tasks);
    // Floor 3 lets one draining task stop at once; ceiling 5 leaves room
    // for one replacement while it is still stopping.
    let plan = reconcile(&v, 0);
    assert_eq!(started(&plan), 1);
    assert_eq!(plan.stops.len(), 1);
    let first = plan.stops[0].task_id.clone();
    assert!(first == "t0" || first == "t1");
    // Once it stopped and the replacement runs, the other draining task is
    // stopped and replaced the same way.
    v.tasks.retain(|t| t.id != first);
    v.tasks.push(running("n0", P));
    let plan = reconcile(&v, 0);
    assert_eq!(started(&plan), 1);
    let second = if first == "t0" { "t1" } else { "t0" };
    assert_eq!(stopped_ids(&plan), [second]);
}

#[test]
fn lost_tasks_hold_room_under_the_ceiling_until_confirmed() {
    let mut tasks = running_n(4, P, "t");
    for t in &mut tasks[..2] {
        t.lost = true;
    }
    // 200%: ceiling 8, so both lost tasks are stopped and replaced at once.
    let plan = reconcile(&view(spec(4, 100, 200), vec![completed(P)], tasks.clone()), 0);
    assert_eq!(stopped_ids(&plan), ["t0", "t1"]);
    assert_eq!(started(&plan), 2);
    // 100%: the lost tasks may still run, so nothing may start yet.
    let plan = reconcile(&view(spec(4, 0, 100), vec![completed(P)], tasks.clone()), 0);
    assert_eq!(stopped_ids(&plan), ["t0", "t1"]);
    assert_eq!(started(&plan), 0);
    // Once their agent confirms (lost cleared, STOPPED), replacements start.
    for t in &mut tasks[..2] {
        t.lost = false;
        t.last_status = TaskStatus::Stopped;
        t.desired_status = DesiredStatus::Stopped;
        t.stop_code = Some(StopCode::ServiceSchedulerInitiated);
    }
    let plan = reconcile(&view(spec(4, 0, 100), vec![completed(P)], tasks), 0);
    assert_eq!(started(&plan), 2);
}

// ---- load balancers ----

fn lb(t: TaskView, h: LbHealth) -> TaskView {
    TaskView { lb_health: Some(h), ..t }
}

const TG: &str = "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/tg/0123456789abcdef";

#[test]
fn with_load_balancers_a_task_is_healthy_only_once_its_targets_are() {
    // Old deployment: 2 healthy targets; the new tasks' targets are still
    // initial: minimumHealthyPercent 100 keeps the old ones.
    let mut tasks: Vec<TaskView> = running_n(2, OLD, "o").into_iter().map(|t| lb(t, LbHealth::Healthy)).collect();
    tasks.extend(running_n(2, P, "n").into_iter().map(|t| lb(t, LbHealth::Initial)));
    let v = view(spec(2, 100, 200), vec![primary(P), old(OLD)], tasks);
    let plan = reconcile(&v, 10_000);
    assert!(plan.stops.is_empty(), "{:?}", plan.stops);
    assert!(plan.deployment_changes.iter().all(|c| c.rollout.is_none()));
    // Healthy targets: the old tasks go.
    let mut v = v;
    for t in v.tasks.iter_mut().filter(|t| t.deployment_id == P) {
        t.lb_health = Some(LbHealth::Healthy);
    }
    let plan = reconcile(&v, 10_000);
    assert_eq!(stopped_ids(&plan), vec!["o0", "o1"]);
}

#[test]
fn an_unhealthy_target_after_the_grace_period_replaces_the_task() {
    let mut s = spec(1, 100, 200);
    s.health_check_grace_period_ms = 30_000;
    let bad = lb(running("t0", P), LbHealth::Unhealthy { target_group_arn: TG.into() });
    let v = view(s, vec![completed(P)], vec![bad]);
    // Started at 10: inside the grace period nothing happens but a requeue
    // when it ends.
    let plan = reconcile(&v, 10_010);
    assert!(plan.stops.is_empty() && plan.starts.is_empty());
    assert_eq!(plan.requeue_after_ms, Some(20_000));
    // Past it: the replacement starts first (room under maximumPercent).
    let plan = reconcile(&v, 30_010);
    assert!(plan.stops.is_empty(), "{:?}", plan.stops);
    assert_eq!(started(&plan), 1);
    // The replacement is healthy: now the unhealthy task goes.
    let mut v = v;
    v.tasks.push(lb(running("t1", P), LbHealth::Healthy));
    let plan = reconcile(&v, 30_010);
    assert_eq!(plan.stops.len(), 1);
    assert_eq!(plan.stops[0].task_id, "t0");
    assert_eq!(plan.stops[0].reason, format!("Task failed ELB health checks in (target-group {TG})"));
    assert_eq!(started(&plan), 0);
    // Once STOPPED by the scheduler it counts as a failure.
    let mut t = stopped("t0", P, StopCode::ServiceSchedulerInitiated);
    t.lb_health = Some(LbHealth::Unhealthy { target_group_arn: TG.into() });
    assert!(t.is_failure());
}

#[test]
fn unhealthy_tasks_are_replaced_before_they_stop_where_maximum_percent_allows() {
    let mut tasks = running_n(3, P, "t");
    for t in &mut tasks {
        t.has_health_check = true;
        t.health = HealthStatus::Healthy;
    }
    tasks[0].health = HealthStatus::Unhealthy;
    tasks[1].health = HealthStatus::Unhealthy;
    // 3 desired at max 150: room for one replacement; the other unhealthy
    // task stops at once to make room.
    let v = view(spec(3, 100, 150), vec![completed(P)], tasks);
    let plan = reconcile(&v, 10_000);
    assert_eq!(stopped_ids(&plan), vec!["t0"], "the oldest, for want of room");
    assert_eq!(started(&plan), 1);
    // At max 200 both are replaced first.
    let mut v = v;
    v.spec.maximum_percent = 200;
    let plan = reconcile(&v, 10_000);
    assert!(plan.stops.is_empty());
    assert_eq!(started(&plan), 2);
    // One replacement healthy: one unhealthy task goes.
    let mut r1 = running("r1", P);
    r1.has_health_check = true;
    r1.health = HealthStatus::Healthy;
    let mut r2 = pending("r2", P);
    r2.has_health_check = true;
    v.tasks.extend([r1, r2]);
    let plan = reconcile(&v, 10_000);
    assert_eq!(stopped_ids(&plan), vec!["t0"]);
    assert_eq!(plan.stops[0].reason, "Task failed container health checks");
    assert_eq!(started(&plan), 0);
}

#[test]
fn a_container_health_failure_keeps_its_own_reason_with_load_balancers() {
    let mut t = lb(running("t0", P), LbHealth::Unhealthy { target_group_arn: TG.into() });
    t.has_health_check = true;
    t.health = HealthStatus::Unhealthy;
    // At max 100 there is no room for a replacement: it stops at once.
    let plan = reconcile(&view(spec(1, 100, 100), vec![completed(P)], vec![t]), 10_000);
    assert_eq!(plan.stops[0].reason, "Task failed container health checks");
}
