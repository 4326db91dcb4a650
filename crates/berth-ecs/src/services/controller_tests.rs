//! The controller's passes against the real ECS handlers over a
//! MemoryStore, with a fake clock and agents played by hand (state changes
//! submitted as an agent would).

use super::controller::{ControllerConfig, ServiceController};
use crate::container_instances::Liveness;
use crate::container_instances::tests::{cluster, register_instance};
use crate::test_support::{body, ctx, store};
use crate::{Ecs, RequestContext};
use berth_clock::{Clock, FakeClock};
use berth_store::Store;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;

struct Rig {
    store: Arc<dyn Store>,
    ecs: Ecs,
    clock: Arc<FakeClock>,
    controller: ServiceController,
}

fn rig() -> Rig {
    let store = store();
    let clock = Arc::new(FakeClock::at_epoch_secs(1_700_000_000));
    let liveness = Arc::new(Liveness::new(Duration::from_secs(10)));
    let ecs = Ecs::new(store.clone()).with_liveness(liveness.clone());
    let config = ControllerConfig { host_lost_after: Duration::from_secs(10), ..ControllerConfig::default() };
    let controller = ServiceController::new(store.clone(), liveness, clock.clone(), config);
    Rig { store, ecs, clock, controller }
}

async fn rig_with_cluster() -> Rig {
    let r = rig();
    cluster(r.store.as_ref(), "demo").await;
    r
}

impl Rig {
    fn ctx(&self) -> RequestContext {
        RequestContext { now: self.clock.now(), ..ctx() }
    }
    async fn call(&self, op: &str, v: Value) -> Value {
        self.ecs.handle(&self.ctx(), op, body(v)).await.unwrap_or_else(|e| panic!("{op}: {e}"))
    }
    async fn instance(&self) -> String {
        let arn = register_instance(self.store.as_ref(), self.ecs.liveness(), "demo", 4096, 8192, json!({})).await;
        self.ecs.liveness().touch(&arn, self.clock.now());
        arn
    }
    async fn tasks(&self, desired: &str) -> Vec<Value> {
        let arns = self.call("ListTasks", json!({"cluster": "demo", "desiredStatus": desired})).await["taskArns"].clone();
        if arns.as_array().is_none_or(|a| a.is_empty()) {
            return Vec::new();
        }
        self.call("DescribeTasks", json!({"cluster": "demo", "tasks": arns})).await["tasks"].as_array().unwrap().clone()
    }
    async fn report(&self, task_arn: &str, status: &str) {
        self.call("SubmitTaskStateChange", json!({"cluster": "demo", "task": task_arn, "status": status})).await;
    }
    async fn service(&self) -> Value {
        self.call("DescribeServices", json!({"cluster": "demo", "services": ["web"]})).await["services"][0].clone()
    }
    /// What the agent of `instance` would be told on (re)connecting.
    async fn poll(&self, instance: &str) -> berth_agent_protocol::PollResponse {
        let req = berth_agent_protocol::PollRequest {
            cluster: "demo".into(),
            container_instance_arn: instance.to_string(),
            known_version: None,
        };
        self.ecs.poll(&self.ctx(), req).await.unwrap()
    }
    async fn pass(&self) {
        self.controller.reconcile_all().await.unwrap();
    }
    /// Every agent plays along: PENDING tasks start, tasks asked to stop stop.
    async fn agents_converge(&self) {
        for t in self.tasks("RUNNING").await {
            if t["lastStatus"] == "PENDING" {
                self.report(t["taskArn"].as_str().unwrap(), "RUNNING").await;
            }
        }
        for t in self.tasks("STOPPED").await {
            if t["lastStatus"] != "STOPPED" {
                self.report(t["taskArn"].as_str().unwrap(), "STOPPED").await;
            }
        }
    }
}

async fn setup(r: &Rig, desired: u32) {
    r.call("RegisterTaskDefinition", json!({"family": "web", "containerDefinitions": [
        {"name": "web", "image": "busybox", "memory": 64, "essential": true}]}))
    .await;
    r.call("CreateService", json!({"cluster": "demo", "serviceName": "web", "taskDefinition": "web",
        "desiredCount": desired}))
    .await;
}

#[tokio::test]
async fn a_service_starts_its_tasks_and_reaches_a_steady_state() {
    let r = rig_with_cluster().await;
    r.instance().await;
    setup(&r, 2).await;
    r.pass().await;
    let tasks = r.tasks("RUNNING").await;
    assert_eq!(tasks.len(), 2);
    let s = r.service().await;
    assert!(tasks.iter().all(|t| t["group"] == "service:web" && t["startedBy"] == s["deployments"][0]["id"]));
    assert_eq!((s["pendingCount"].as_u64(), s["runningCount"].as_u64()), (Some(2), Some(0)));
    r.agents_converge().await;
    r.pass().await;
    // Tasks without a health check complete a deployment once they stayed
    // RUNNING a while.
    r.clock.advance(Duration::from_millis(berth_controllers::STABLE_RUNNING_MS));
    r.pass().await;
    r.pass().await;
    let s = r.service().await;
    assert_eq!(s["runningCount"], 2);
    assert_eq!(s["deployments"][0]["rolloutState"], "COMPLETED");
    assert_eq!(s["events"][0]["message"], "(service web) has reached a steady state.");
    // Quiet from here on: another pass writes nothing.
    let before = r.store.revision().await.unwrap();
    r.pass().await;
    assert_eq!(r.store.revision().await.unwrap(), before);
    let c = r.call("DescribeClusters", json!({"clusters": ["demo"]})).await["clusters"][0].clone();
    assert_eq!((c["activeServicesCount"].as_u64(), c["runningTasksCount"].as_u64()), (Some(1), Some(2)));
}

#[tokio::test]
async fn a_lost_host_has_its_tasks_stopped_replaced_and_fenced_when_it_returns() {
    let r = rig_with_cluster().await;
    let a = r.instance().await;
    let b = r.instance().await;
    setup(&r, 4).await;
    r.pass().await;
    r.agents_converge().await;
    r.pass().await;
    let on_a: Vec<String> = r
        .tasks("RUNNING")
        .await
        .iter()
        .filter(|t| t["containerInstanceArn"] == a.as_str())
        .map(|t| t["taskArn"].as_str().unwrap().to_string())
        .collect();
    assert!(!on_a.is_empty(), "spread over both hosts");
    // b keeps polling, a goes silent past the grace period.
    r.clock.advance(Duration::from_secs(11));
    r.ecs.liveness().touch(&b, r.clock.now());
    r.pass().await;
    let stopped = r.tasks("STOPPED").await;
    assert_eq!(stopped.len(), on_a.len());
    for t in &stopped {
        assert_eq!(t["lastStatus"], "STOPPED");
        assert_eq!(t["stopCode"], "ServiceSchedulerInitiated");
        assert!(t["stoppedReason"].as_str().unwrap().starts_with("Host lost"));
    }
    let running = r.tasks("RUNNING").await;
    assert_eq!(running.len(), 4, "replacements placed");
    assert!(running.iter().all(|t| t["containerInstanceArn"] == b.as_str()));
    // a comes back: its desired state still lists the lost tasks, to stop.
    r.ecs.liveness().touch(&a, r.clock.now());
    let id_a = a.rsplit('/').next().unwrap();
    let poll = r.poll(&a).await;
    let fenced: Vec<&berth_agent_protocol::DesiredTask> = poll.desired.tasks.iter().collect();
    assert_eq!(fenced.len(), on_a.len(), "instance {id_a} is told about its stale tasks");
    assert!(fenced.iter().all(|t| t.desired_status == "STOPPED"));
    for t in &on_a {
        r.report(t, "STOPPED").await;
    }
    let poll = r.poll(&a).await;
    assert!(poll.desired.tasks.is_empty(), "confirmed stops free the host");
    r.agents_converge().await;
    r.pass().await;
    r.pass().await;
    let s = r.service().await;
    assert_eq!(s["runningCount"], 4);
}

#[tokio::test]
async fn lost_tasks_hold_their_room_under_maximum_percent() {
    let r = rig_with_cluster().await;
    let a = r.instance().await;
    let b = r.instance().await;
    r.call("RegisterTaskDefinition", json!({"family": "web", "containerDefinitions": [
        {"name": "web", "image": "busybox", "memory": 64, "essential": true}]}))
    .await;
    r.call("CreateService", json!({"cluster": "demo", "serviceName": "web", "taskDefinition": "web",
        "desiredCount": 2, "placementConstraints": [{"type": "distinctInstance"}],
        "deploymentConfiguration": {"minimumHealthyPercent": 0, "maximumPercent": 100}}))
    .await;
    r.pass().await;
    r.agents_converge().await;
    r.pass().await;
    r.clock.advance(Duration::from_secs(11));
    r.ecs.liveness().touch(&b, r.clock.now());
    r.pass().await;
    // One task was on a and may still run there: with maximumPercent 100
    // no replacement may start until a confirms.
    assert_eq!(r.tasks("RUNNING").await.len(), 1);
    let lost = r.tasks("STOPPED").await;
    assert_eq!(lost.len(), 1);
    r.ecs.liveness().touch(&a, r.clock.now());
    r.report(lost[0]["taskArn"].as_str().unwrap(), "STOPPED").await;
    r.pass().await;
    assert_eq!(r.tasks("RUNNING").await.len(), 2);
}

#[tokio::test]
async fn a_deleted_service_drains_then_becomes_inactive() {
    let r = rig_with_cluster().await;
    r.instance().await;
    setup(&r, 2).await;
    r.pass().await;
    r.agents_converge().await;
    r.pass().await;
    r.call("DeleteService", json!({"cluster": "demo", "service": "web", "force": true})).await;
    r.pass().await;
    assert_eq!(r.service().await["status"], "DRAINING");
    r.agents_converge().await;
    r.pass().await;
    let s = r.service().await;
    assert_eq!(s["status"], "INACTIVE");
    assert_eq!(r.tasks("RUNNING").await.len(), 0);
}

#[tokio::test]
async fn what_does_not_fit_is_reported_once_with_the_closest_instance() {
    let r = rig_with_cluster().await;
    let a = r.instance().await;
    r.call("RegisterTaskDefinition", json!({"family": "big", "containerDefinitions": [
        {"name": "big", "image": "busybox", "memory": 3000, "essential": true}]}))
    .await;
    r.call("CreateService", json!({"cluster": "demo", "serviceName": "web", "taskDefinition": "big",
        "desiredCount": 3}))
    .await;
    r.pass().await;
    r.pass().await;
    assert_eq!(r.tasks("RUNNING").await.len(), 2, "8192 MiB hold two 3000 MiB tasks");
    let s = r.service().await;
    let id = a.rsplit('/').next().unwrap();
    let events: Vec<&str> = s["events"].as_array().unwrap().iter().map(|e| e["message"].as_str().unwrap()).collect();
    let unplaced: Vec<&&str> = events.iter().filter(|e| e.contains("was unable to place")).collect();
    assert_eq!(unplaced.len(), 1, "not repeated: {events:#?}");
    assert_eq!(
        *unplaced[0],
        format!(
            "(service web) was unable to place a task because no container instance met all of its requirements. The closest matching (container-instance {id}) has insufficient memory available. For more information, see the Troubleshooting section of the Amazon ECS Developer Guide."
        )
    );
}
