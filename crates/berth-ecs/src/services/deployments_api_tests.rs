//! The service deployment operations against MemoryStore.

use super::*;
use crate::services::model::new_deployment;
use crate::services;
use crate::task_definitions;
use crate::test_support::{body, code, ctx, store};
use std::time::Duration;

const PREFIX: &str = "arn:aws:ecs:us-east-1:123456789012";

/// A request `secs` seconds after [`ctx`]'s instant.
fn at(secs: u64) -> RequestContext {
    let mut c = ctx();
    c.now += Duration::from_secs(secs);
    c
}

/// Cluster `c`, task definitions web:1..3, service `api` on web:1 (at t=0)
/// updated to web:2 (at t=10). Returns the two deployment ids, newest first.
async fn setup(s: &dyn Store) -> (String, String) {
    clusters::create(s, &ctx(), body(json!({"clusterName": "c"}))).await.unwrap();
    for _ in 0..3 {
        task_definitions::register(
            s,
            &ctx(),
            body(json!({"family": "web", "containerDefinitions": [{"name": "app", "image": "busybox", "memory": 64}]})),
        )
        .await
        .unwrap();
    }
    services::create(
        s,
        &ctx(),
        body(json!({"cluster": "c", "serviceName": "api", "taskDefinition": "web:1", "desiredCount": 2,
                    "placementConstraints": [{"type": "distinctInstance"}]})),
    )
    .await
    .unwrap();
    let out = services::update(s, &at(10), body(json!({"cluster": "c", "service": "api", "taskDefinition": "web:2"})))
        .await
        .unwrap();
    let ds = out["service"]["deployments"].as_array().unwrap();
    (ds[0]["id"].as_str().unwrap().to_string(), ds[1]["id"].as_str().unwrap().to_string())
}

fn dep_arn(id: &str) -> String {
    format!("{PREFIX}:service-deployment/c/api/{}", id.strip_prefix("ecs-svc/").unwrap())
}

fn rev_arn(id: &str) -> String {
    format!("{PREFIX}:service-revision/c/api/{}", id.strip_prefix("ecs-svc/").unwrap())
}

async fn list_of(s: &dyn Store, extra: Value) -> EcsResult<Value> {
    let mut b = json!({"cluster": "c", "service": "api"});
    for (k, v) in extra.as_object().unwrap() {
        b[k] = v.clone();
    }
    list(s, &at(20), body(b)).await
}

async fn describe_one(s: &dyn Store, id: &str) -> Value {
    let out = describe_deployments(s, &at(20), body(json!({"serviceDeploymentArns": [dep_arn(id)]}))).await.unwrap();
    assert_eq!(out["failures"], json!([]), "{out}");
    out["serviceDeployments"][0].clone()
}

async fn record(s: &dyn Store) -> ServiceRecord {
    repo::load(s, &Keys::for_request(&ctx()), "c", "api").await.unwrap().unwrap().record
}

async fn edit(s: &dyn Store, f: impl FnMut(&mut ServiceRecord) -> EcsResult<()>) {
    repo::update_with(s, &Keys::for_request(&ctx()), "c", "api", f).await.unwrap().unwrap();
}

#[tokio::test]
async fn list_is_newest_first_with_ecs_brief_shape() {
    let s = store();
    let (new, old) = setup(s.as_ref()).await;
    let out = list_of(s.as_ref(), json!({})).await.unwrap();
    let items = out["serviceDeployments"].as_array().unwrap();
    assert_eq!(items.len(), 2);
    assert!(out.get("nextToken").is_none());
    let b = &items[0];
    assert_eq!(b["serviceDeploymentArn"], dep_arn(&new));
    assert_eq!(b["targetServiceRevisionArn"], rev_arn(&new));
    assert_eq!(b["serviceArn"], format!("{PREFIX}:service/c/api"));
    assert_eq!(b["clusterArn"], format!("{PREFIX}:cluster/c"));
    assert_eq!(b["status"], "IN_PROGRESS");
    assert_eq!(b["createdAt"], 1_700_000_010.5);
    assert!(b.get("finishedAt").is_none());
    // The first deployment was replaced before it completed.
    assert_eq!(items[1]["serviceDeploymentArn"], dep_arn(&old));
    assert_eq!(items[1]["status"], "STOPPED");
    assert_eq!(items[1]["finishedAt"], 1_700_000_010.5);
}

#[tokio::test]
async fn list_filters_and_pages() {
    let s = store();
    let (new, old) = setup(s.as_ref()).await;
    let only = |v: &Value| {
        v["serviceDeployments"]
            .as_array()
            .unwrap()
            .iter()
            .map(|b| b["serviceDeploymentArn"].clone())
            .collect::<Vec<_>>()
    };
    let out = list_of(s.as_ref(), json!({"status": ["STOPPED", "SUCCESSFUL"]})).await.unwrap();
    assert_eq!(only(&out), vec![json!(dep_arn(&old))]);
    let out = list_of(s.as_ref(), json!({"createdAt": {"after": 1_700_000_005.0}})).await.unwrap();
    assert_eq!(only(&out), vec![json!(dep_arn(&new))]);
    let out = list_of(s.as_ref(), json!({"createdAt": {"before": 1_700_000_005.0}})).await.unwrap();
    assert_eq!(only(&out), vec![json!(dep_arn(&old))]);

    let first = list_of(s.as_ref(), json!({"maxResults": 1})).await.unwrap();
    assert_eq!(only(&first), vec![json!(dep_arn(&new))]);
    let token = first["nextToken"].as_str().unwrap().to_string();
    let second = list_of(s.as_ref(), json!({"maxResults": 1, "nextToken": token})).await.unwrap();
    assert_eq!(only(&second), vec![json!(dep_arn(&old))]);
    assert!(second.get("nextToken").is_none());
}

#[tokio::test]
async fn list_refuses_what_ecs_refuses() {
    let s = store();
    setup(s.as_ref()).await;
    let cases = [
        (json!({"cluster": "c"}), "InvalidParameterException"),
        (json!({"cluster": "nope", "service": "api"}), "ClusterNotFoundException"),
        (json!({"cluster": "c", "service": "ghost"}), "ServiceNotFoundException"),
        (json!({"cluster": "c", "service": "api", "maxResults": 0}), "InvalidParameterException"),
        (json!({"cluster": "c", "service": "api", "maxResults": 101}), "InvalidParameterException"),
        (json!({"cluster": "c", "service": "api", "status": ["DONE"]}), "InvalidParameterException"),
        (json!({"cluster": "c", "service": "api", "nextToken": "zz"}), "InvalidParameterException"),
        (json!({"cluster": "c", "service": "api", "createdAt": {"after": "x"}}), "SerializationException"),
    ];
    for (b, want) in cases {
        let err = list(s.as_ref(), &ctx(), body(b.clone())).await.unwrap_err();
        assert_eq!(code(&err), want, "{b}: {err}");
    }
}

#[tokio::test]
async fn describe_renders_sources_target_and_failures() {
    let s = store();
    let (new, old) = setup(s.as_ref()).await;
    let other_region = format!("arn:aws:ecs:eu-west-1:123456789012:service-deployment/c/api/{}", &new[8..]);
    let unknown = format!("{PREFIX}:service-deployment/c/api/0000000000000000001");
    let ghost = format!("{PREFIX}:service-deployment/c/ghost/{}", &new[8..]);
    let out = describe_deployments(
        s.as_ref(),
        &at(20),
        body(json!({"serviceDeploymentArns": [dep_arn(&new), unknown, other_region, ghost]})),
    )
    .await
    .unwrap();
    let failures = out["failures"].as_array().unwrap();
    assert_eq!(failures.len(), 3);
    assert!(failures.iter().all(|f| f["reason"] == "MISSING"));
    let d = &out["serviceDeployments"][0];
    assert_eq!(d["serviceDeploymentArn"], dep_arn(&new));
    assert_eq!(d["status"], "IN_PROGRESS");
    assert_eq!(d["startedAt"], d["createdAt"]);
    assert_eq!(
        d["targetServiceRevision"],
        json!({"arn": rev_arn(&new), "requestedTaskCount": 2, "runningTaskCount": 0, "pendingTaskCount": 0})
    );
    assert_eq!(
        d["sourceServiceRevisions"],
        json!([{"arn": rev_arn(&old), "requestedTaskCount": 2, "runningTaskCount": 0, "pendingTaskCount": 0}])
    );
    assert_eq!(d["deploymentCircuitBreaker"], json!({"status": "DISABLED"}));
    assert_eq!(d["deploymentConfiguration"]["maximumPercent"], 200);
    assert!(d.get("rollback").is_none());
    let first = describe_one(s.as_ref(), &old).await;
    assert_eq!(first["sourceServiceRevisions"], json!([]));
    assert_eq!(first["stoppedAt"], 1_700_000_010.5);
}

#[tokio::test]
async fn describe_refuses_bad_input() {
    let s = store();
    setup(s.as_ref()).await;
    let too_many: Vec<String> = (0..21).map(|i| format!("{PREFIX}:service-deployment/c/api/{i}")).collect();
    for b in [
        json!({}),
        json!({"serviceDeploymentArns": []}),
        json!({"serviceDeploymentArns": too_many}),
        json!({"serviceDeploymentArns": [format!("{PREFIX}:service/c/api")]}),
        json!({"serviceDeploymentArns": ["not-an-arn"]}),
    ] {
        let err = describe_deployments(s.as_ref(), &ctx(), body(b.clone())).await.unwrap_err();
        assert_eq!(code(&err), "InvalidParameterException", "{b}");
    }
    let err = describe_revisions(s.as_ref(), &ctx(), body(json!({"serviceRevisionArns": []}))).await.unwrap_err();
    assert_eq!(code(&err), "InvalidParameterException");
}

#[tokio::test]
async fn revisions_show_the_configuration_each_deployment_started_with() {
    let s = store();
    let (new, old) = setup(s.as_ref()).await;
    let missing = format!("{PREFIX}:service-revision/c/api/0000000000000000001");
    let out = describe_revisions(
        s.as_ref(),
        &at(20),
        body(json!({"serviceRevisionArns": [rev_arn(&old), rev_arn(&new), missing]})),
    )
    .await
    .unwrap();
    assert_eq!(
        out["failures"],
        json!([{"arn": format!("{PREFIX}:service-revision/c/api/0000000000000000001"), "reason": "MISSING"}])
    );
    let revs = out["serviceRevisions"].as_array().unwrap();
    assert_eq!(revs[0]["serviceRevisionArn"], rev_arn(&old));
    assert_eq!(revs[0]["taskDefinition"], format!("{PREFIX}:task-definition/web:1"));
    assert_eq!(revs[1]["taskDefinition"], format!("{PREFIX}:task-definition/web:2"));
    assert_eq!(revs[1]["launchType"], "EC2");
    assert_eq!(revs[1]["containerImages"], json!([{"containerName": "app", "image": "busybox"}]));
    assert_eq!(revs[1]["createdAt"], 1_700_000_010.5);
    assert_eq!(revs[1]["serviceArn"], format!("{PREFIX}:service/c/api"));
}

#[tokio::test]
async fn completed_and_failed_rollouts_map_to_ecs_statuses() {
    let s = store();
    let (new, old) = setup(s.as_ref()).await;
    edit(s.as_ref(), |r| {
        r.deployments[1].rollout_state = "COMPLETED".into();
        r.deployments[0].rollout_state = "FAILED".into();
        r.deployments[0].rollout_state_reason = "ECS deployment circuit breaker: tasks failed to start.".into();
        r.deployments[0].failed_tasks = 3;
        r.deployment_configuration.deployment_circuit_breaker.enable = true;
        if let Some(rev) = &mut r.deployments[0].revision {
            rev.deployment_configuration.deployment_circuit_breaker.enable = true;
        }
        Ok(())
    })
    .await;
    let d = describe_one(s.as_ref(), &new).await;
    assert_eq!(d["status"], "STOPPED");
    assert_eq!(d["statusReason"], "ECS deployment circuit breaker: tasks failed to start.");
    assert_eq!(d["deploymentCircuitBreaker"], json!({"status": "TRIGGERED", "failureCount": 3, "threshold": 3}));
    assert!(d.get("stoppedAt").is_some());
    assert_eq!(describe_one(s.as_ref(), &old).await["status"], "SUCCESSFUL");
}

#[tokio::test]
async fn a_circuit_breaker_rollback_is_reported_on_the_failed_deployment() {
    let s = store();
    let (failed, _) = setup(s.as_ref()).await;
    let mut rollback_id = String::new();
    edit(s.as_ref(), |r| {
        r.deployment_configuration.deployment_circuit_breaker =
            super::super::model::CircuitBreaker { enable: true, rollback: true };
        let p = &mut r.deployments[0];
        p.revision.as_mut().unwrap().deployment_configuration = r.deployment_configuration.clone();
        p.rollout_state = "FAILED".into();
        let mut next = new_deployment("web:1", 2, Some("EC2".into()), vec![], None, 1_700_000_015.0);
        next.running_count = 1;
        rollback_id = next.id.clone();
        r.start_deployment(next);
        Ok(())
    })
    .await;
    let d = describe_one(s.as_ref(), &failed).await;
    assert_eq!(d["status"], "ROLLBACK_IN_PROGRESS");
    assert_eq!(d["rollback"]["serviceRevisionArn"], rev_arn(&rollback_id));
    assert_eq!(d["rollback"]["startedAt"], 1_700_000_015.0);
    edit(s.as_ref(), |r| {
        r.deployments[0].rollout_state = "COMPLETED".into();
        Ok(())
    })
    .await;
    assert_eq!(describe_one(s.as_ref(), &failed).await["status"], "ROLLBACK_SUCCESSFUL");
}

#[tokio::test]
async fn stop_with_rollback_redeploys_the_previous_revision() {
    let s = store();
    let (new, old) = setup(s.as_ref()).await;
    let out = stop(s.as_ref(), &at(30), body(json!({"serviceDeploymentArn": dep_arn(&new)}))).await.unwrap();
    assert_eq!(out, json!({"serviceDeploymentArn": dep_arn(&new)}));

    let r = record(s.as_ref()).await;
    let primary = r.primary().unwrap().clone();
    assert_ne!(primary.id, new);
    assert_ne!(primary.id, old);
    assert_eq!(primary.task_definition, format!("{PREFIX}:task-definition/web:1"));
    assert_eq!(r.task_definition, primary.task_definition);
    assert_eq!(primary.created_at, 1_700_000_030.5);
    assert!(primary.source_deployments.contains(&new));
    let stopped = r.deployments.iter().find(|d| d.id == new).unwrap();
    assert_eq!(stopped.status, DeploymentStatus::Active);
    assert_eq!(stopped.rollout_state, "FAILED");
    assert_eq!(stopped.rollout_state_reason, REASON_STOPPED_BY_USER);
    assert_eq!(stopped.stop.as_ref().unwrap().rollback_deployment_id.as_deref(), Some(primary.id.as_str()));

    let d = describe_one(s.as_ref(), &new).await;
    assert_eq!(d["status"], "ROLLBACK_REQUESTED");
    assert_eq!(d["stoppedAt"], 1_700_000_030.5);
    assert_eq!(
        d["rollback"],
        json!({"reason": REASON_ROLLBACK_BY_USER, "startedAt": 1_700_000_030.5, "serviceRevisionArn": rev_arn(&primary.id)})
    );
    // Asking again while the rollback runs lets it continue.
    stop(s.as_ref(), &at(31), body(json!({"serviceDeploymentArn": dep_arn(&new), "stopType": "ROLLBACK"})))
        .await
        .unwrap();
    assert_eq!(record(s.as_ref()).await.deployments.len(), 3);

    edit(s.as_ref(), |r| {
        r.deployments[0].running_count = 1;
        Ok(())
    })
    .await;
    assert_eq!(describe_one(s.as_ref(), &new).await["status"], "ROLLBACK_IN_PROGRESS");
    edit(s.as_ref(), |r| {
        r.deployments[0].rollout_state = "COMPLETED".into();
        Ok(())
    })
    .await;
    let d = describe_one(s.as_ref(), &new).await;
    assert_eq!(d["status"], "ROLLBACK_SUCCESSFUL");
    assert!(d.get("finishedAt").is_some());
    let listed = list_of(s.as_ref(), json!({"status": ["ROLLBACK_SUCCESSFUL"]})).await.unwrap();
    assert_eq!(listed["serviceDeployments"].as_array().unwrap().len(), 1);

    // A finished deployment can no longer be stopped.
    let err = stop(s.as_ref(), &at(40), body(json!({"serviceDeploymentArn": dep_arn(&new)}))).await.unwrap_err();
    assert_eq!(code(&err), "ConflictException");
}

#[tokio::test]
async fn stop_with_abort_freezes_the_primary() {
    let s = store();
    let (new, _) = setup(s.as_ref()).await;
    stop(s.as_ref(), &at(30), body(json!({"serviceDeploymentArn": dep_arn(&new), "stopType": "ABORT"}))).await.unwrap();
    let r = record(s.as_ref()).await;
    assert_eq!(r.deployments.len(), 2);
    let p = r.primary().unwrap();
    assert_eq!(p.id, new);
    assert_eq!(p.rollout_state, "FAILED");
    assert_eq!(p.stop.as_ref().unwrap().stop_type, "ABORT");
    let d = describe_one(s.as_ref(), &new).await;
    assert_eq!(d["status"], "STOPPED");
    assert_eq!(d["statusReason"], REASON_STOPPED_BY_USER);
    assert_eq!(d["stoppedAt"], 1_700_000_030.5);
    assert!(d.get("rollback").is_none());
    let err = stop(s.as_ref(), &at(31), body(json!({"serviceDeploymentArn": dep_arn(&new), "stopType": "ABORT"})))
        .await
        .unwrap_err();
    assert_eq!(code(&err), "ConflictException");
}

#[tokio::test]
async fn stop_refuses_what_ecs_refuses() {
    let s = store();
    let (new, old) = setup(s.as_ref()).await;
    let cases = [
        (json!({}), "InvalidParameterException"),
        (json!({"serviceDeploymentArn": dep_arn(&new), "stopType": "PAUSE"}), "InvalidParameterException"),
        (
            json!({"serviceDeploymentArn": "arn:aws:ecs:us-east-1:123456789012:service/c/api"}),
            "InvalidParameterException",
        ),
        (
            json!({"serviceDeploymentArn": format!("{PREFIX}:service-deployment/c/api/0000000000000000001")}),
            "ServiceDeploymentNotFoundException",
        ),
        (
            json!({"serviceDeploymentArn": format!("{PREFIX}:service-deployment/c/ghost/{}", &new[8..])}),
            "ServiceDeploymentNotFoundException",
        ),
        // Replaced by a newer deployment: already STOPPED.
        (json!({"serviceDeploymentArn": dep_arn(&old)}), "ConflictException"),
    ];
    for (b, want) in cases {
        let err = stop(s.as_ref(), &at(30), body(b.clone())).await.unwrap_err();
        assert_eq!(code(&err), want, "{b}: {err}");
    }
    // A service's first deployment has no previous revision to roll back to.
    services::create(
        s.as_ref(),
        &ctx(),
        body(json!({"cluster": "c", "serviceName": "solo", "taskDefinition": "web:1", "desiredCount": 1})),
    )
    .await
    .unwrap();
    let solo = record_of(s.as_ref(), "solo").await.deployments[0].id.clone();
    let arn = format!("{PREFIX}:service-deployment/c/solo/{}", &solo[8..]);
    let err = stop(s.as_ref(), &at(30), body(json!({"serviceDeploymentArn": arn.clone()}))).await.unwrap_err();
    assert_eq!(code(&err), "ConflictException");
    stop(s.as_ref(), &at(30), body(json!({"serviceDeploymentArn": arn, "stopType": "ABORT"}))).await.unwrap();
}

async fn record_of(s: &dyn Store, name: &str) -> ServiceRecord {
    repo::load(s, &Keys::for_request(&ctx()), "c", name).await.unwrap().unwrap().record
}

#[tokio::test]
async fn deleted_services_have_no_deployments() {
    let s = store();
    let (new, _) = setup(s.as_ref()).await;
    edit(s.as_ref(), |r| {
        r.status = ServiceStatus::Inactive;
        Ok(())
    })
    .await;
    let out = describe_deployments(s.as_ref(), &ctx(), body(json!({"serviceDeploymentArns": [dep_arn(&new)]})))
        .await
        .unwrap();
    assert_eq!(out["failures"][0]["reason"], "MISSING");
    let err = list_of(s.as_ref(), json!({})).await.unwrap_err();
    assert_eq!(code(&err), "ServiceNotFoundException");
}

#[tokio::test]
async fn past_deployments_are_listed_once() {
    let s = store();
    let (new, old) = setup(s.as_ref()).await;
    edit(s.as_ref(), |r| {
        let mut d = r.deployments.remove(1);
        d.status = DeploymentStatus::Inactive;
        d.rollout_state = "COMPLETED".into();
        r.past_deployments.insert(0, d);
        Ok(())
    })
    .await;
    let out = list_of(s.as_ref(), json!({})).await.unwrap();
    let arns: Vec<Value> =
        out["serviceDeployments"].as_array().unwrap().iter().map(|b| b["serviceDeploymentArn"].clone()).collect();
    assert_eq!(arns, vec![json!(dep_arn(&new)), json!(dep_arn(&old))]);
    assert_eq!(describe_one(s.as_ref(), &old).await["status"], "SUCCESSFUL");
}
