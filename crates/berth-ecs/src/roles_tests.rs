//! Role checks through `Ecs::handle`, and task credentials in poll
//! answers, over a fake gate.

use crate::container_instances::tests::{cluster, register_instance};
use crate::roles::RoleGate;
use crate::test_support::{body, code, ctx, store};
use crate::{Ecs, RequestContext};
use berth_agent_protocol::{RoleCredentials, TaskCredentials};
use serde_json::json;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

/// Denies passing `denied_pass`, cannot assume `untrusted`, records what
/// it was asked, and mints a recognisable credential.
#[derive(Default)]
struct FakeGate {
    denied_pass: Vec<String>,
    untrusted: Vec<String>,
    passed: Mutex<Vec<String>>,
}

impl RoleGate for FakeGate {
    fn check_pass_role(&self, ctx: &RequestContext, role_arn: &str) -> Result<(), String> {
        self.passed.lock().unwrap().push(role_arn.to_string());
        if self.denied_pass.iter().any(|r| r == role_arn) {
            Err(format!("User: {} is not authorized to perform: iam:PassRole on resource: {role_arn}", ctx.principal_arn))
        } else {
            Ok(())
        }
    }
    fn ecs_can_assume(&self, _: &RequestContext, role_arn: &str) -> bool {
        !self.untrusted.iter().any(|r| r == role_arn)
    }
    fn task_credentials(&self, _: &RequestContext, task_arn: &str, task_role: Option<&str>, exec: Option<&str>, _: SystemTime) -> Option<TaskCredentials> {
        let creds = |arn: &str| RoleCredentials {
            role_arn: arn.into(),
            access_key_id: "ASIAFAKEFAKEFAKEFAKE".into(),
            secret_access_key: "secret".into(),
            session_token: "token".into(),
            expiration: "2030-01-01T00:00:00Z".into(),
        };
        Some(TaskCredentials {
            credentials_id: format!("id-of-{}", task_arn.rsplit('/').next().unwrap_or_default()),
            task_role: task_role.map(creds),
            execution_role: exec.map(creds),
            error: None,
        })
    }
}

const APP: &str = "arn:aws:iam::123456789012:role/app";
const EXEC: &str = "arn:aws:iam::123456789012:role/exec";

fn td_body(family: &str) -> serde_json::Value {
    json!({"family": family, "taskRoleArn": APP, "executionRoleArn": "exec",
        "containerDefinitions": [{"name": "web", "image": "busybox", "memory": 64}]})
}

#[tokio::test]
async fn registering_needs_pass_role_for_every_role_and_writes_nothing_when_refused() {
    let s = store();
    let gate = Arc::new(FakeGate { denied_pass: vec![EXEC.into()], ..FakeGate::default() });
    let ecs = Ecs::new(s.clone()).with_roles(gate.clone());
    let e = ecs.handle(&ctx(), "RegisterTaskDefinition", body(td_body("web"))).await.unwrap_err();
    assert_eq!(code(&e), "AccessDeniedException");
    assert!(e.to_string().contains("iam:PassRole on resource: arn:aws:iam::123456789012:role/exec"), "{e}");
    // The role given by name was completed to an ARN of the caller's account.
    assert_eq!(*gate.passed.lock().unwrap(), vec![APP.to_string(), EXEC.to_string()]);
    let listed = ecs.handle(&ctx(), "ListTaskDefinitions", body(json!({}))).await.unwrap();
    assert_eq!(listed["taskDefinitionArns"], json!([]));

    let open = Ecs::new(s.clone()).with_roles(Arc::new(FakeGate::default()));
    open.handle(&ctx(), "RegisterTaskDefinition", body(td_body("web"))).await.unwrap();
}

#[tokio::test]
async fn running_needs_roles_ecs_can_assume_and_pass_role_again() {
    let s = store();
    let l = Arc::new(crate::container_instances::Liveness::default());
    cluster(s.as_ref(), "c").await;
    register_instance(s.as_ref(), &l, "c", 1024, 1024, json!({})).await;
    Ecs::new(s.clone()).handle(&ctx(), "RegisterTaskDefinition", body(td_body("web"))).await.unwrap();

    let untrusting = Ecs::new(s.clone()).with_liveness(l.clone()).with_roles(Arc::new(FakeGate { untrusted: vec![APP.into()], ..FakeGate::default() }));
    let e = untrusting.handle(&ctx(), "RunTask", body(json!({"cluster": "c", "taskDefinition": "web"}))).await.unwrap_err();
    assert_eq!(code(&e), "ClientException");
    assert_eq!(
        e.to_string(),
        "ECS was unable to assume the role 'arn:aws:iam::123456789012:role/app' that was provided for this task. Please verify that the role being passed has the proper trust relationship and permissions and that your IAM user has permissions to pass this role."
    );
    let e = untrusting
        .handle(&ctx(), "CreateService", body(json!({"cluster": "c", "serviceName": "s", "taskDefinition": "web", "desiredCount": 1})))
        .await
        .unwrap_err();
    assert_eq!(code(&e), "ClientException");

    // An override's role is checked too.
    let no_pass = Ecs::new(s.clone()).with_liveness(l.clone()).with_roles(Arc::new(FakeGate { denied_pass: vec!["arn:aws:iam::123456789012:role/other".into()], ..FakeGate::default() }));
    let e = no_pass
        .handle(&ctx(), "RunTask", body(json!({"cluster": "c", "taskDefinition": "web", "overrides": {"taskRoleArn": "other"}})))
        .await
        .unwrap_err();
    assert_eq!(code(&e), "AccessDeniedException");
    let listed = no_pass.handle(&ctx(), "ListTasks", body(json!({"cluster": "c"}))).await.unwrap();
    assert_eq!(listed["taskArns"], json!([]), "a refused RunTask placed nothing");

    // An unknown task definition is still the operation's own error.
    let e = no_pass.handle(&ctx(), "RunTask", body(json!({"cluster": "c", "taskDefinition": "nope"}))).await.unwrap_err();
    assert_eq!(e.to_string(), "Unable to describe task definition.");
}

#[tokio::test]
async fn poll_answers_carry_credentials_for_running_tasks_with_roles() {
    let s = store();
    let l = Arc::new(crate::container_instances::Liveness::default());
    cluster(s.as_ref(), "c").await;
    let arn = register_instance(s.as_ref(), &l, "c", 1024, 1024, json!({})).await;
    let ecs = Ecs::new(s.clone()).with_liveness(l.clone()).with_roles(Arc::new(FakeGate::default()));
    ecs.handle(&ctx(), "RegisterTaskDefinition", body(td_body("web"))).await.unwrap();
    ecs.handle(&ctx(), "RegisterTaskDefinition", body(json!({"family": "plain", "containerDefinitions": [{"name": "web", "image": "busybox", "memory": 64}]})))
        .await
        .unwrap();
    let with_roles = ecs.handle(&ctx(), "RunTask", body(json!({"cluster": "c", "taskDefinition": "web"}))).await.unwrap();
    let task_arn = with_roles["tasks"][0]["taskArn"].as_str().unwrap().to_string();
    ecs.handle(&ctx(), "RunTask", body(json!({"cluster": "c", "taskDefinition": "plain"}))).await.unwrap();

    let req = berth_agent_protocol::PollRequest { cluster: "c".into(), container_instance_arn: arn, known_version: None };
    let answer = ecs.poll(&ctx(), req.clone()).await.unwrap();
    assert_eq!(answer.desired.tasks.len(), 2);
    let task = answer.desired.tasks.iter().find(|t| t.task_arn == task_arn).unwrap();
    let creds = task.credentials.as_ref().expect("a task with roles gets credentials");
    assert_eq!(creds.task_role.as_ref().unwrap().role_arn, APP);
    assert_eq!(creds.execution_role.as_ref().unwrap().role_arn, EXEC);
    assert_eq!(creds.credentials_id, format!("id-of-{}", task_arn.rsplit('/').next().unwrap()));
    let plain = answer.desired.tasks.iter().find(|t| t.task_arn != task_arn).unwrap();
    assert!(plain.credentials.is_none());

    // Desired STOPPED: no credentials any more.
    ecs.handle(&ctx(), "StopTask", body(json!({"cluster": "c", "task": task_arn}))).await.unwrap();
    let answer = ecs.poll(&ctx(), req).await.unwrap();
    let task = answer.desired.tasks.iter().find(|t| t.task_arn == task_arn).unwrap();
    assert_eq!(task.desired_status, "STOPPED");
    assert!(task.credentials.is_none());
}
