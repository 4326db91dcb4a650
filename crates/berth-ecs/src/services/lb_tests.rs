//! Services behind load balancers: validation, registration, draining
//! before stopping, and ELB health in deployments. The controller's passes
//! run against the real ECS and ELBv2 handlers over a MemoryStore with a
//! fake clock; agents and the data plane's health checks are played by
//! hand (the test writes the health record).

use super::controller::{ControllerConfig, ServiceController};
use crate::container_instances::Liveness;
use crate::container_instances::tests::{cluster, register_instance};
use crate::test_support::{body, code, ctx, store};
use crate::{Ecs, RequestContext};
use berth_clock::{Clock, FakeClock};
use berth_elbv2::model as elb;
use berth_store::{Store, Txn};
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;

const DELAY_S: u64 = 5;

struct Rig {
    store: Arc<dyn Store>,
    ecs: Ecs,
    clock: Arc<FakeClock>,
    controller: ServiceController,
    tg: String,
}

impl Rig {
    async fn new() -> Rig {
        let store = store();
        let clock = Arc::new(FakeClock::at_epoch_secs(1_700_000_000));
        let liveness = Arc::new(Liveness::new(Duration::from_secs(10)));
        let ecs = Ecs::new(store.clone()).with_liveness(liveness.clone());
        let config = ControllerConfig { host_lost_after: Duration::from_secs(3600), ..ControllerConfig::default() };
        let controller = ServiceController::new(store.clone(), liveness, clock.clone(), config);
        cluster(store.as_ref(), "demo").await;
        let mut r = Rig { store, ecs, clock, controller, tg: String::new() };
        r.tg = r.target_group("web", "instance", true).await;
        r
    }

    fn ctx(&self) -> RequestContext {
        RequestContext { now: self.clock.now(), ..ctx() }
    }

    async fn call(&self, op: &str, v: Value) -> Value {
        self.ecs.handle(&self.ctx(), op, body(v)).await.unwrap_or_else(|e| panic!("{op}: {e}"))
    }

    async fn try_call(&self, op: &str, v: Value) -> Result<Value, crate::EcsError> {
        self.ecs.handle(&self.ctx(), op, body(v)).await
    }

    async fn elb(&self, action: &str, params: &[(&str, &str)]) -> String {
        let mut p: Vec<(String, String)> = vec![("Action".into(), action.into()), ("Version".into(), "2015-12-01".into())];
        p.extend(params.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        let c = self.ctx();
        let req = berth_elbv2::Elbv2Request {
            account: &c.account,
            region: &c.region,
            now: c.now,
            params: &p,
            request_id: "r",
        };
        berth_elbv2::handle(self.store.as_ref(), &req).await.unwrap_or_else(|e| panic!("{action}: {e}"))
    }

    /// A target group (attached to a load balancer's listener when
    /// `attached`), deregistration delay [`DELAY_S`].
    async fn target_group(&self, name: &str, target_type: &str, attached: bool) -> String {
        let x = self
            .elb(
                "CreateTargetGroup",
                &[("Name", name), ("Protocol", "HTTP"), ("Port", "80"), ("VpcId", "vpc-1"), ("TargetType", target_type)],
            )
            .await;
        let arn = between(&x, "TargetGroupArn");
        let delay = DELAY_S.to_string();
        self.elb(
            "ModifyTargetGroupAttributes",
            &[
                ("TargetGroupArn", &arn),
                ("Attributes.member.1.Key", "deregistration_delay.timeout_seconds"),
                ("Attributes.member.1.Value", &delay),
            ],
        )
        .await;
        if attached {
            let lb_name = format!("lb-{name}");
            let x = self
                .elb("CreateLoadBalancer", &[("Name", &lb_name), ("Subnets.member.1", "subnet-a"), ("Subnets.member.2", "subnet-b")])
                .await;
            let lb = between(&x, "LoadBalancerArn");
            self.elb(
                "CreateListener",
                &[
                    ("LoadBalancerArn", &lb),
                    ("Protocol", "HTTP"),
                    ("Port", "80"),
                    ("DefaultActions.member.1.Type", "forward"),
                    ("DefaultActions.member.1.TargetGroupArn", &arn),
                ],
            )
            .await;
        }
        arn
    }

    async fn instance(&self) -> String {
        let arn = register_instance(self.store.as_ref(), self.ecs.liveness(), "demo", 4096, 8192, json!({})).await;
        self.ecs.liveness().touch(&arn, self.clock.now());
        arn
    }

    async fn register_td(&self, tag: &str) {
        self.call(
            "RegisterTaskDefinition",
            json!({"family": "web", "containerDefinitions": [
                {"name": "web", "image": format!("busybox:{tag}"), "memory": 64, "essential": true,
                 "portMappings": [{"containerPort": 8080, "hostPort": 0}]}]}),
        )
        .await;
    }

    async fn create_service(&self, desired: u32, extra: Value) {
        let mut b = json!({"cluster": "demo", "serviceName": "web", "taskDefinition": "web", "desiredCount": desired,
            "loadBalancers": [{"targetGroupArn": self.tg, "containerName": "web", "containerPort": 8080}]});
        if let Value::Object(m) = extra {
            for (k, v) in m {
                b[k] = v;
            }
        }
        self.call("CreateService", b).await;
    }

    async fn tasks(&self, desired: &str) -> Vec<Value> {
        let arns = self.call("ListTasks", json!({"cluster": "demo", "desiredStatus": desired})).await["taskArns"].clone();
        if arns.as_array().is_none_or(|a| a.is_empty()) {
            return Vec::new();
        }
        let mut out = self.call("DescribeTasks", json!({"cluster": "demo", "tasks": arns})).await["tasks"].as_array().unwrap().clone();
        out.sort_by_key(|t| t["taskArn"].as_str().unwrap_or_default().to_string());
        out
    }

    async fn service(&self) -> Value {
        self.call("DescribeServices", json!({"cluster": "demo", "services": ["web"]})).await["services"][0].clone()
    }

    /// Time passes; every agent keeps polling.
    async fn advance(&self, d: Duration) {
        self.clock.advance(d);
        let arns = self.call("ListContainerInstances", json!({"cluster": "demo"})).await["containerInstanceArns"].clone();
        for a in arns.as_array().into_iter().flatten() {
            self.ecs.liveness().touch(a.as_str().unwrap(), self.clock.now());
        }
    }

    async fn pass(&self) {
        self.controller.reconcile_all().await.unwrap();
    }

    /// Agents start PENDING tasks and stop the tasks asked to stop.
    async fn agents_converge(&self) {
        for t in self.tasks("RUNNING").await {
            if t["lastStatus"] == "PENDING" {
                self.call("SubmitTaskStateChange", json!({"cluster": "demo", "task": t["taskArn"], "status": "RUNNING"})).await;
            }
        }
        for t in self.tasks("STOPPED").await {
            if t["lastStatus"] != "STOPPED" {
                self.call("SubmitTaskStateChange", json!({"cluster": "demo", "task": t["taskArn"], "status": "STOPPED"})).await;
            }
        }
    }

    async fn elb_state(&self) -> elb::State {
        elb::load(self.store.as_ref(), &elb::state_key("123456789012", "us-east-1")).await.unwrap().0
    }

    /// (id, port, draining) of the group's targets.
    async fn targets(&self) -> Vec<(String, u16, bool)> {
        let s = self.elb_state().await;
        let tg = s.target_groups.iter().find(|t| t.arn == self.tg).unwrap();
        let now = elb::epoch_ms(self.clock.now());
        let mut out: Vec<(String, u16, bool)> = tg
            .targets
            .iter()
            .filter(|t| !elb::is_expired(t, tg, now))
            .map(|t| (t.id.clone(), t.port, t.draining_since_ms.is_some()))
            .collect();
        out.sort();
        out
    }

    /// The target each task has: its instance's EC2 id and the host port
    /// placement bound to 8080.
    async fn target_of(&self, task: &Value, ec2: &str) -> (String, u16) {
        let id = task["taskArn"].as_str().unwrap().rsplit('/').next().unwrap();
        let key = crate::keys::Keys::for_request(&self.ctx()).task("demo", id);
        let record = crate::repo::load::<crate::tasks::TaskRecord>(self.store.as_ref(), &key).await.unwrap().unwrap().record;
        let port = record.host_ports.iter().find(|p| p.container_port == 8080).unwrap().host_port;
        (ec2.to_string(), port)
    }

    async fn targets_of(&self, tasks: &[Value], ec2: &str) -> Vec<(String, u16)> {
        let mut out = Vec::new();
        for t in tasks {
            out.push(self.target_of(t, ec2).await);
        }
        out.sort();
        out
    }

    async fn ec2_id(&self) -> String {
        let arns = self.call("ListContainerInstances", json!({"cluster": "demo"})).await["containerInstanceArns"].clone();
        self.call("DescribeContainerInstances", json!({"cluster": "demo", "containerInstances": arns})).await
            ["containerInstances"][0]["ec2InstanceId"]
            .as_str()
            .unwrap()
            .to_string()
    }

    /// The data plane's verdict on the targets of `tasks`.
    async fn set_health(&self, tasks: &[Value], state: &str) {
        let ec2 = self.ec2_id().await;
        let key = elb::health_key("123456789012", "us-east-1");
        let mut h: elb::HealthRecord = match self.store.get(&key).await.unwrap() {
            Some(v) => serde_json::from_slice(&v.value).unwrap(),
            None => elb::HealthRecord::default(),
        };
        for (id, port) in self.targets_of(tasks, &ec2).await {
            let (reason, description) = match state {
                "unhealthy" => (Some("Target.ResponseCodeMismatch".to_string()), Some("Health checks failed with these codes: [500]".to_string())),
                _ => (None, None),
            };
            h.targets.insert(
                elb::health_entry_key(&self.tg, &id, port),
                elb::TargetHealth { state: state.into(), reason, description, since_ms: elb::epoch_ms(self.clock.now()) },
            );
        }
        self.store.txn(Txn::new().put(key, serde_json::to_vec(&h).unwrap())).await.unwrap();
    }
}

fn between(xml: &str, tag: &str) -> String {
    let (open, close) = (format!("<{tag}>"), format!("</{tag}>"));
    let i = xml.find(&open).unwrap_or_else(|| panic!("no {tag} in {xml}")) + open.len();
    let j = xml[i..].find(&close).unwrap();
    xml[i..i + j].to_string()
}

fn ids(tasks: &[Value]) -> Vec<String> {
    tasks.iter().map(|t| t["taskArn"].as_str().unwrap().to_string()).collect()
}

/// A service of `desired` tasks, RUNNING, registered and healthy, its
/// deployment COMPLETED.
async fn steady(r: &Rig, desired: u32, extra: Value) -> Vec<Value> {
    r.instance().await;
    r.register_td("1").await;
    r.create_service(desired, extra).await;
    r.pass().await;
    r.agents_converge().await;
    r.pass().await;
    let running = r.tasks("RUNNING").await;
    r.set_health(&running, "healthy").await;
    r.advance(Duration::from_millis(berth_controllers::STABLE_RUNNING_MS)).await;
    r.pass().await;
    r.pass().await;
    assert_eq!(r.service().await["deployments"][0]["rolloutState"], "COMPLETED");
    running
}

#[tokio::test]
async fn running_tasks_are_registered_in_their_target_group() {
    let r = Rig::new().await;
    r.instance().await;
    r.register_td("1").await;
    r.create_service(2, json!({})).await;
    r.pass().await;
    assert!(r.targets().await.is_empty(), "PENDING tasks are not registered");
    r.agents_converge().await;
    r.pass().await;
    let ec2 = r.ec2_id().await;
    let running = r.tasks("RUNNING").await;
    let want: Vec<(String, u16, bool)> =
        r.targets_of(&running, &ec2).await.into_iter().map(|(id, port)| (id, port, false)).collect();
    assert_eq!(r.targets().await, want);
    assert!(want[0].1 != want[1].1, "dynamic host ports");
    let s = r.service().await;
    let events: Vec<&str> = s["events"].as_array().unwrap().iter().map(|e| e["message"].as_str().unwrap()).collect();
    assert!(events.contains(&format!("(service web) registered 2 targets in (target-group {})", r.tg).as_str()), "{events:?}");
    // Targets still initial: the deployment is not complete.
    r.advance(Duration::from_secs(10)).await;
    r.pass().await;
    assert_eq!(r.service().await["deployments"][0]["rolloutState"], "IN_PROGRESS");
    // Idempotent: another pass changes nothing, in ECS or ELBv2.
    let before = r.store.revision().await.unwrap();
    r.pass().await;
    assert_eq!(r.store.revision().await.unwrap(), before);
    // A target the user registered by hand is left alone.
    r.elb("RegisterTargets", &[("TargetGroupArn", &r.tg), ("Targets.member.1.Id", "i-0byhand"), ("Targets.member.1.Port", "9000")])
        .await;
    r.pass().await;
    assert!(r.targets().await.contains(&("i-0byhand".to_string(), 9000, false)));
}

#[tokio::test]
async fn a_deployment_waits_for_healthy_targets_then_drains_the_old_tasks_before_stopping_them() {
    let r = Rig::new().await;
    let old = steady(&r, 2, json!({})).await;
    r.register_td("2").await;
    r.call("UpdateService", json!({"cluster": "demo", "service": "web", "taskDefinition": "web:2"})).await;
    r.pass().await;
    r.agents_converge().await;
    r.pass().await;
    let running = r.tasks("RUNNING").await;
    assert_eq!(running.len(), 4);
    let new: Vec<Value> = running.iter().filter(|t| !ids(&old).contains(&t["taskArn"].as_str().unwrap().to_string())).cloned().collect();
    assert_eq!(new.len(), 2);
    assert_eq!(r.targets().await.len(), 4, "the new tasks are registered beside the old");
    // The new targets are still initial: nothing old is stopped.
    r.advance(Duration::from_secs(30)).await;
    r.pass().await;
    assert_eq!(r.tasks("RUNNING").await.len(), 4);
    assert!(r.targets().await.iter().all(|t| !t.2), "nothing drains yet");

    // Healthy: the old tasks are deregistered and drain, still RUNNING.
    r.set_health(&new, "healthy").await;
    r.pass().await;
    let running = r.tasks("RUNNING").await;
    assert_eq!(running.len(), 4, "draining tasks keep running");
    let deactivating: Vec<Value> = running.iter().filter(|t| t["lastStatus"] == "DEACTIVATING").cloned().collect();
    assert_eq!(ids(&deactivating), ids(&old), "ECS shows draining tasks DEACTIVATING");
    assert!(deactivating.iter().all(|t| t["desiredStatus"] == "RUNNING"));
    // An agent's report of RUNNING does not undo it.
    r.call("SubmitTaskStateChange", json!({"cluster": "demo", "task": old[0]["taskArn"], "status": "RUNNING"})).await;
    assert_eq!(r.tasks("RUNNING").await.iter().filter(|t| t["lastStatus"] == "DEACTIVATING").count(), 2);
    let ec2 = r.ec2_id().await;
    let draining: Vec<(String, u16)> = r.targets().await.into_iter().filter(|t| t.2).map(|t| (t.0, t.1)).collect();
    let old_targets = r.targets_of(&old, &ec2).await;
    assert_eq!(draining, old_targets);
    let s = r.service().await;
    let events: Vec<&str> = s["events"].as_array().unwrap().iter().map(|e| e["message"].as_str().unwrap()).collect();
    assert!(events.contains(&"(service web) has begun draining connections on 2 tasks."), "{events:?}");
    r.pass().await;
    assert_eq!(r.service().await["runningCount"], 2, "draining tasks are not counted as running");

    // Before the delay has passed they stay; after it, they stop.
    r.advance(Duration::from_secs(DELAY_S - 1)).await;
    r.pass().await;
    assert_eq!(r.tasks("RUNNING").await.len(), 4);
    r.advance(Duration::from_secs(1)).await;
    r.pass().await;
    let stopping = r.tasks("STOPPED").await;
    assert_eq!(ids(&stopping), ids(&old));
    let primary = s["deployments"].as_array().unwrap().iter().find(|d| d["status"] == "PRIMARY").unwrap()["id"].clone();
    assert!(stopping.iter().all(|t| t["stoppedReason"] == format!("Scaling activity initiated by (deployment {})", primary.as_str().unwrap())));
    r.agents_converge().await;
    r.advance(Duration::from_millis(berth_controllers::STABLE_RUNNING_MS)).await;
    r.pass().await;
    r.pass().await;
    let s = r.service().await;
    assert_eq!(s["deployments"].as_array().unwrap().len(), 1);
    assert_eq!(s["deployments"][0]["rolloutState"], "COMPLETED");
    // Only the new targets are left, the drained ones purged from ownership.
    let new_targets: Vec<(String, u16, bool)> =
        r.targets_of(&new, &ec2).await.into_iter().map(|(id, port)| (id, port, false)).collect();
    assert_eq!(r.targets().await, new_targets);
    let record = super::repo::load(r.store.as_ref(), &crate::keys::Keys::for_request(&r.ctx()), "demo", "web").await.unwrap().unwrap();
    assert_eq!(record.record.lb_targets.len(), 2);
    assert!(record.record.deactivating.is_empty());
}

#[tokio::test]
async fn an_unhealthy_target_replaces_its_task_after_the_grace_period_only() {
    let r = Rig::new().await;
    let tasks = steady(&r, 1, json!({"healthCheckGracePeriodSeconds": 60})).await;
    r.set_health(&tasks, "unhealthy").await;
    r.pass().await;
    assert_eq!(r.tasks("STOPPED").await.len(), 0, "within the grace period");
    assert!(r.targets().await.iter().all(|t| !t.2));
    // Past the grace period (counted from the task's start): as ECS does,
    // the replacement starts first; the unhealthy task keeps its target.
    r.advance(Duration::from_secs(60)).await;
    r.pass().await;
    let running = r.tasks("RUNNING").await;
    assert_eq!(running.len(), 2, "{:#}", r.service().await["events"]);
    assert!(r.targets().await.iter().all(|t| !t.2), "nothing drains before the replacement is healthy");
    r.agents_converge().await;
    r.pass().await;
    assert_eq!(r.targets().await.len(), 2, "the replacement is registered");
    let replacement: Vec<Value> =
        r.tasks("RUNNING").await.into_iter().filter(|t| t["taskArn"] != tasks[0]["taskArn"]).collect();
    r.set_health(&replacement, "healthy").await;
    r.pass().await;
    // Now the unhealthy task drains, then stops.
    let ec2 = r.ec2_id().await;
    let bad = r.target_of(&tasks[0], &ec2).await;
    assert!(r.targets().await.contains(&(bad.0.clone(), bad.1, true)), "its target drains");
    assert_eq!(r.tasks("STOPPED").await.len(), 0);
    r.advance(Duration::from_secs(DELAY_S)).await;
    r.pass().await;
    let stopped = r.tasks("STOPPED").await;
    assert_eq!(ids(&stopped), ids(&tasks));
    assert_eq!(stopped[0]["stoppedReason"], format!("Task failed ELB health checks in (target-group {})", r.tg));
    assert_eq!(stopped[0]["stopCode"], "ServiceSchedulerInitiated");
}

#[tokio::test]
async fn delete_service_drains_then_stops_then_goes_inactive() {
    let r = Rig::new().await;
    steady(&r, 1, json!({})).await;
    r.call("DeleteService", json!({"cluster": "demo", "service": "web", "force": true})).await;
    r.pass().await;
    assert_eq!(r.tasks("RUNNING").await.len(), 1, "draining first");
    assert!(r.targets().await.iter().all(|t| t.2));
    r.advance(Duration::from_secs(DELAY_S)).await;
    r.pass().await;
    r.agents_converge().await;
    r.pass().await;
    assert!(r.targets().await.is_empty());
    assert_eq!(r.service().await["status"], "INACTIVE");
}

#[tokio::test]
async fn load_balancers_are_validated_as_ecs_does() {
    let r = Rig::new().await;
    r.register_td("1").await;
    r.call(
        "RegisterTaskDefinition",
        json!({"family": "vpc", "networkMode": "awsvpc", "containerDefinitions": [
            {"name": "web", "image": "busybox", "memory": 64, "portMappings": [{"containerPort": 8080}]}]}),
    )
    .await;
    let lone = r.target_group("lone", "instance", false).await;
    let ip = r.target_group("ip", "ip", true).await;
    let create = |td: &str, lb: Value, extra: Value| {
        let mut b = json!({"cluster": "demo", "serviceName": "x", "taskDefinition": td, "desiredCount": 1, "loadBalancers": [lb]});
        if let Value::Object(m) = extra {
            for (k, v) in m {
                b[k] = v;
            }
        }
        b
    };
    let net = json!({"networkConfiguration": {"awsvpcConfiguration": {"subnets": ["subnet-1"]}}});
    let cases = [
        (
            create("web", json!({"targetGroupArn": lone, "containerName": "web", "containerPort": 8080}), json!({})),
            format!("The target group with targetGroupArn {lone} does not have an associated load balancer."),
        ),
        (
            create("web", json!({"targetGroupArn": r.tg, "containerName": "web", "containerPort": 9090}), json!({})),
            "The container web did not have a container port 9090 defined.".to_string(),
        ),
        (
            create("web", json!({"targetGroupArn": r.tg, "containerName": "nope", "containerPort": 8080}), json!({})),
            "The container nope did not have a container port 8080 defined.".to_string(),
        ),
        (
            create("vpc", json!({"targetGroupArn": r.tg, "containerName": "web", "containerPort": 8080}), net.clone()),
            format!("The provided target group {} has target type instance, which is incompatible with the awsvpc network mode specified in the task definition.", r.tg),
        ),
        (
            create("web", json!({"targetGroupArn": ip, "containerName": "web", "containerPort": 8080}), json!({})),
            format!("The provided target group {ip} has target type ip, which is incompatible with the bridge network mode specified in the task definition."),
        ),
    ];
    for (req, msg) in cases {
        let e = r.try_call("CreateService", req.clone()).await.unwrap_err();
        assert_eq!((code(&e), e.to_string()), ("InvalidParameterException", msg), "{req}");
    }
    // A grace period alone is accepted (ECS applies it to container health
    // checks too).
    r.call("CreateService", json!({"cluster": "demo", "serviceName": "grace-only", "taskDefinition": "web", "desiredCount": 0,
        "healthCheckGracePeriodSeconds": 10}))
        .await;
    // The right pairs are accepted.
    r.call("CreateService", create("vpc", json!({"targetGroupArn": ip, "containerName": "web", "containerPort": 8080}), net)).await;
    r.call(
        "CreateService",
        json!({"cluster": "demo", "serviceName": "y", "taskDefinition": "web", "desiredCount": 1, "healthCheckGracePeriodSeconds": 10,
            "loadBalancers": [{"targetGroupArn": r.tg, "containerName": "web", "containerPort": 8080}]}),
    )
    .await;
    // UpdateService checks the new task definition against the load balancers.
    r.call(
        "RegisterTaskDefinition",
        json!({"family": "web", "containerDefinitions": [{"name": "web", "image": "busybox", "memory": 64}]}),
    )
    .await;
    let e = r.try_call("UpdateService", json!({"cluster": "demo", "service": "y", "taskDefinition": "web:2"})).await.unwrap_err();
    assert_eq!(e.to_string(), "The container web did not have a container port 8080 defined.");
}

#[tokio::test]
async fn host_addresses_resolve_instance_targets() {
    let r = Rig::new().await;
    register_instance(
        r.store.as_ref(),
        r.ecs.liveness(),
        "demo",
        1024,
        1024,
        json!({"attributes": [{"name": "berth.host-address", "value": "10.0.0.7"}]}),
    )
    .await;
    r.instance().await; // registers no address: left out
    let m = crate::container_instances::host_addresses(r.store.as_ref(), "123456789012", "us-east-1").await.unwrap();
    assert_eq!(m.len(), 1);
    assert_eq!(m.values().next().unwrap().to_string(), "10.0.0.7");
}
