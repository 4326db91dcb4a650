//! The service operations against MemoryStore.

use super::model::ServiceStatus;
use super::*;
use crate::test_support::{body, code, ctx, store};

const ARN_PREFIX: &str = "arn:aws:ecs:us-east-1:123456789012";

async fn setup(s: &dyn Store) {
    clusters::create(s, &ctx(), body(json!({"clusterName": "c"}))).await.unwrap();
    for (family, mode) in [("web", "bridge"), ("web", "bridge"), ("vpc", "awsvpc")] {
        task_definitions::register(
            s,
            &ctx(),
            body(json!({"family": family, "networkMode": mode,
                        "containerDefinitions": [{"name": "app", "image": "busybox", "memory": 64}]})),
        )
        .await
        .unwrap();
    }
}

async fn create_svc(s: &dyn Store, v: Value) -> EcsResult<Value> {
    create(s, &ctx(), body(v)).await
}

fn web(name: &str, count: i64) -> Value {
    json!({"cluster": "c", "serviceName": name, "taskDefinition": "web:1", "desiredCount": count})
}

async fn active_count(s: &dyn Store) -> Value {
    let d = clusters::describe(s, &ctx(), body(json!({"clusters": ["c"]}))).await.unwrap();
    d["clusters"][0]["activeServicesCount"].clone()
}

#[tokio::test]
async fn create_renders_ecs_shape_with_defaults() {
    let s = store();
    setup(s.as_ref()).await;
    let out = create_svc(s.as_ref(), web("api", 2)).await.unwrap();
    let svc = &out["service"];
    assert_eq!(svc["serviceArn"], format!("{ARN_PREFIX}:service/c/api"));
    assert_eq!(svc["clusterArn"], format!("{ARN_PREFIX}:cluster/c"));
    assert_eq!(svc["status"], "ACTIVE");
    assert_eq!(
        (svc["desiredCount"].clone(), svc["runningCount"].clone(), svc["pendingCount"].clone()),
        (json!(2), json!(0), json!(0))
    );
    assert_eq!(svc["launchType"], "EC2");
    assert_eq!(svc["schedulingStrategy"], "REPLICA");
    assert_eq!(svc["taskDefinition"], format!("{ARN_PREFIX}:task-definition/web:1"));
    assert_eq!(
        svc["deploymentConfiguration"],
        json!({"deploymentCircuitBreaker": {"enable": false, "rollback": false}, "maximumPercent": 200, "minimumHealthyPercent": 100})
    );
    assert_eq!(svc["events"], json!([]));
    assert_eq!(svc["createdBy"], crate::test_support::ROOT_ARN);
    let deployments = svc["deployments"].as_array().unwrap();
    assert_eq!(deployments.len(), 1);
    let d = &deployments[0];
    assert_eq!(d["status"], "PRIMARY");
    assert_eq!(d["desiredCount"], 2);
    assert_eq!(d["rolloutState"], "IN_PROGRESS");
    let id = d["id"].as_str().unwrap();
    assert!(id.starts_with("ecs-svc/") && id.len() == "ecs-svc/".len() + 19, "{id}");
    assert_eq!(d["rolloutStateReason"], format!("ECS deployment {id} in progress."));
    assert!(svc.get("healthCheckGracePeriodSeconds").is_none());
    assert_eq!(active_count(s.as_ref()).await, 1);
}

#[tokio::test]
async fn create_refuses_what_ecs_refuses() {
    let s = store();
    setup(s.as_ref()).await;
    let cases = [
        (
            json!({"cluster": "nope", "serviceName": "a", "taskDefinition": "web:1", "desiredCount": 1}),
            "ClusterNotFoundException",
            "Cluster not found.",
        ),
        (
            json!({"cluster": "c", "serviceName": "a", "taskDefinition": "ghost", "desiredCount": 1}),
            "ClientException",
            "TaskDefinition not found.",
        ),
        (
            json!({"cluster": "c", "serviceName": "a", "taskDefinition": "web:9", "desiredCount": 1}),
            "ClientException",
            "TaskDefinition not found.",
        ),
        (
            json!({"cluster": "c", "serviceName": "a b", "taskDefinition": "web:1", "desiredCount": 1}),
            "InvalidParameterException",
            "",
        ),
        (
            json!({"cluster": "c", "serviceName": "a", "taskDefinition": "vpc", "desiredCount": 1}),
            "InvalidParameterException",
            "Network Configuration must be provided when networkMode 'awsvpc' is specified.",
        ),
        (
            json!({"cluster": "c", "serviceName": "a", "taskDefinition": "web", "schedulingStrategy": "DAEMON", "desiredCount": 1}),
            "InvalidParameterException",
            "The daemon scheduling strategy does not support a desired count for services. Remove the desired count value and try again",
        ),
        (
            json!({"cluster": "c", "serviceName": "a", "taskDefinition": "web", "schedulingStrategy": "DAEMON", "placementStrategy": [{"type": "random"}]}),
            "InvalidParameterException",
            "The daemon scheduling strategy does not support placement strategies. Remove the placement strategy and try again",
        ),
        (
            json!({"cluster": "c", "serviceName": "a", "taskDefinition": "web", "desiredCount": "x"}),
            "SerializationException",
            "",
        ),
    ];
    for (req, want_code, want_msg) in cases {
        let e = create_svc(s.as_ref(), req.clone()).await.unwrap_err();
        assert_eq!(code(&e), want_code, "{req}");
        if !want_msg.is_empty() {
            assert_eq!(e.to_string(), want_msg, "{req}");
        }
    }
    assert_eq!(active_count(s.as_ref()).await, 0);
}

#[tokio::test]
async fn daemon_defaults_and_awsvpc_network_configuration() {
    let s = store();
    setup(s.as_ref()).await;
    let d = create_svc(
        s.as_ref(),
        json!({"cluster": "c", "serviceName": "d", "taskDefinition": "web", "schedulingStrategy": "DAEMON"}),
    )
    .await
    .unwrap();
    assert_eq!(d["service"]["schedulingStrategy"], "DAEMON");
    assert_eq!(d["service"]["taskDefinition"], format!("{ARN_PREFIX}:task-definition/web:2"));
    assert_eq!(d["service"]["deploymentConfiguration"]["minimumHealthyPercent"], 0);
    assert_eq!(d["service"]["deploymentConfiguration"]["maximumPercent"], 100);
    let net = json!({"awsvpcConfiguration": {"subnets": ["subnet-1"], "assignPublicIp": "DISABLED"}});
    let v = create_svc(
        s.as_ref(),
        json!({"cluster": "c", "serviceName": "v", "taskDefinition": "vpc", "desiredCount": 1, "networkConfiguration": net,
               "healthCheckGracePeriodSeconds": 30}),
    )
    .await
    .unwrap();
    assert_eq!(v["service"]["networkConfiguration"], net);
    assert_eq!(v["service"]["deployments"][0]["networkConfiguration"], net);
    assert_eq!(v["service"]["healthCheckGracePeriodSeconds"], 30);
}

#[tokio::test]
async fn create_is_idempotent_only_for_the_same_request() {
    let s = store();
    setup(s.as_ref()).await;
    let mut req = web("api", 1);
    req["clientToken"] = json!("tok-1");
    let first = create_svc(s.as_ref(), req.clone()).await.unwrap();
    let again = create_svc(s.as_ref(), req.clone()).await.unwrap();
    assert_eq!(first["service"]["deployments"][0]["id"], again["service"]["deployments"][0]["id"]);
    let mut other_token = req.clone();
    other_token["clientToken"] = json!("tok-2");
    let mut other_count = req.clone();
    other_count["desiredCount"] = json!(3);
    for r in [other_token, other_count] {
        let e = create_svc(s.as_ref(), r).await.unwrap_err();
        assert_eq!(code(&e), "InvalidParameterException");
        assert_eq!(e.to_string(), "Creation of service was not idempotent.");
    }
}

#[tokio::test]
async fn update_starts_a_new_primary_deployment() {
    let s = store();
    setup(s.as_ref()).await;
    let created = create_svc(s.as_ref(), web("api", 1)).await.unwrap();
    let first_id = created["service"]["deployments"][0]["id"].clone();

    let scaled =
        update(s.as_ref(), &ctx(), body(json!({"cluster": "c", "service": "api", "desiredCount": 4}))).await.unwrap();
    let deployments = scaled["service"]["deployments"].as_array().unwrap();
    assert_eq!(deployments.len(), 1, "scaling does not deploy");
    assert_eq!(deployments[0]["desiredCount"], 4);

    let out = update(
        s.as_ref(),
        &ctx(),
        body(json!({"cluster": "c", "service": format!("{ARN_PREFIX}:service/c/api"), "taskDefinition": "web:2"})),
    )
    .await
    .unwrap();
    let svc = &out["service"];
    assert_eq!(svc["taskDefinition"], format!("{ARN_PREFIX}:task-definition/web:2"));
    let d = svc["deployments"].as_array().unwrap();
    assert_eq!(d.len(), 2);
    assert_eq!(
        (d[0]["status"].clone(), d[0]["taskDefinition"].clone()),
        (json!("PRIMARY"), svc["taskDefinition"].clone())
    );
    assert_eq!(d[0]["desiredCount"], 4);
    assert_eq!((d[1]["status"].clone(), d[1]["id"].clone()), (json!("ACTIVE"), first_id));

    let forced =
        update(s.as_ref(), &ctx(), body(json!({"cluster": "c", "service": "api", "forceNewDeployment": true})))
            .await
            .unwrap();
    let d = forced["service"]["deployments"].as_array().unwrap();
    assert_eq!(d.len(), 3);
    assert_eq!(d[0]["taskDefinition"], d[1]["taskDefinition"]);
    assert_eq!(d.iter().filter(|x| x["status"] == "PRIMARY").count(), 1);

    let e = update(s.as_ref(), &ctx(), body(json!({"cluster": "c", "service": "ghost", "desiredCount": 1})))
        .await
        .unwrap_err();
    assert_eq!((code(&e), e.to_string()), ("ServiceNotFoundException", "Service not found.".to_string()));
    let e = update(
        s.as_ref(),
        &ctx(),
        body(json!({"cluster": "c", "service": "api", "deploymentConfiguration": {"minimumHealthyPercent": 150}})),
    )
    .await
    .unwrap_err();
    assert_eq!(code(&e), "InvalidParameterException");
}

#[tokio::test]
async fn delete_drains_and_the_name_is_reusable_once_inactive() {
    let s = store();
    setup(s.as_ref()).await;
    create_svc(s.as_ref(), web("api", 2)).await.unwrap();
    let e = delete(s.as_ref(), &ctx(), body(json!({"cluster": "c", "service": "api"}))).await.unwrap_err();
    assert_eq!(
        (code(&e), e.to_string()),
        ("InvalidParameterException", "The service cannot be stopped while it is scaled above 0.".to_string())
    );
    let out = delete(s.as_ref(), &ctx(), body(json!({"cluster": "c", "service": "api", "force": true}))).await.unwrap();
    assert_eq!(out["service"]["status"], "DRAINING");
    assert_eq!(out["service"]["desiredCount"], 0);
    assert_eq!(active_count(s.as_ref()).await, 0);
    // DRAINING services are still listed.
    let listed = list(s.as_ref(), &ctx(), body(json!({"cluster": "c"}))).await.unwrap();
    assert_eq!(listed["serviceArns"], json!([format!("{ARN_PREFIX}:service/c/api")]));

    let e = update(s.as_ref(), &ctx(), body(json!({"cluster": "c", "service": "api", "desiredCount": 1})))
        .await
        .unwrap_err();
    assert_eq!((code(&e), e.to_string()), ("ServiceNotActiveException", "Service was not ACTIVE.".to_string()));
    let e = delete(s.as_ref(), &ctx(), body(json!({"cluster": "c", "service": "api"}))).await.unwrap_err();
    assert_eq!(code(&e), "ServiceNotActiveException");
    let e = create_svc(s.as_ref(), web("api", 1)).await.unwrap_err();
    assert_eq!(code(&e), "InvalidParameterException");

    // What the controller does once the tasks are gone.
    let keys = Keys::for_request(&ctx());
    repo::update_with(s.as_ref(), &keys, "c", "api", |r| {
        r.status = ServiceStatus::Inactive;
        r.push_event("(service api) has stopped.", 1.0);
        Ok(())
    })
    .await
    .unwrap()
    .unwrap();
    assert_eq!(list(s.as_ref(), &ctx(), body(json!({"cluster": "c"}))).await.unwrap()["serviceArns"], json!([]));
    let again = create_svc(s.as_ref(), web("api", 1)).await.unwrap();
    assert_eq!(again["service"]["status"], "ACTIVE");
    assert_eq!(again["service"]["events"], json!([]));
    assert_eq!(active_count(s.as_ref()).await, 1);
}

#[tokio::test]
async fn describe_reports_missing_and_tags() {
    let s = store();
    setup(s.as_ref()).await;
    let mut req = web("api", 0);
    req["tags"] = json!([{"key": "team", "value": "a"}]);
    create_svc(s.as_ref(), req).await.unwrap();
    let arn = format!("{ARN_PREFIX}:service/c/api");
    crate::tags::tag_resource(
        s.as_ref(),
        &ctx(),
        body(json!({"resourceArn": arn, "tags": [{"key": "env", "value": "x"}]})),
    )
    .await
    .unwrap();
    let out = describe(
        s.as_ref(),
        &ctx(),
        body(json!({"cluster": "c", "services": ["api", arn, "ghost"], "include": ["TAGS"]})),
    )
    .await
    .unwrap();
    assert_eq!(out["services"].as_array().unwrap().len(), 2);
    assert_eq!(out["services"][0]["tags"], json!([{"key": "team", "value": "a"}, {"key": "env", "value": "x"}]));
    assert_eq!(out["failures"], json!([{"arn": format!("{ARN_PREFIX}:service/c/ghost"), "reason": "MISSING"}]));
    let plain = describe(s.as_ref(), &ctx(), body(json!({"cluster": "c", "services": ["api"]}))).await.unwrap();
    assert!(plain["services"][0].get("tags").is_none());
    let many: Vec<String> = (0..11).map(|i| format!("s{i}")).collect();
    let e = describe(s.as_ref(), &ctx(), body(json!({"cluster": "c", "services": many}))).await.unwrap_err();
    assert_eq!(code(&e), "InvalidParameterException");
    let listed =
        crate::tags::list_tags_for_resource(s.as_ref(), &ctx(), body(json!({"resourceArn": arn}))).await.unwrap();
    assert_eq!(listed["tags"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn list_pages_and_filters() {
    let s = store();
    setup(s.as_ref()).await;
    for i in 0..12 {
        create_svc(s.as_ref(), web(&format!("s{i:02}"), 0)).await.unwrap();
    }
    create_svc(
        s.as_ref(),
        json!({"cluster": "c", "serviceName": "daemon", "taskDefinition": "web", "schedulingStrategy": "DAEMON"}),
    )
    .await
    .unwrap();
    let first = list(s.as_ref(), &ctx(), body(json!({"cluster": "c"}))).await.unwrap();
    assert_eq!(first["serviceArns"].as_array().unwrap().len(), 10, "ECS's default page size");
    let mut seen = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let mut req = json!({"cluster": "c", "maxResults": 5});
        if let Some(t) = &token {
            req["nextToken"] = json!(t);
        }
        let page = list(s.as_ref(), &ctx(), body(req)).await.unwrap();
        seen.extend(page["serviceArns"].as_array().unwrap().iter().cloned());
        match page.get("nextToken").and_then(Value::as_str) {
            Some(t) => token = Some(t.into()),
            None => break,
        }
    }
    assert_eq!(seen.len(), 13);
    let daemons =
        list(s.as_ref(), &ctx(), body(json!({"cluster": "c", "schedulingStrategy": "DAEMON"}))).await.unwrap();
    assert_eq!(daemons["serviceArns"], json!([format!("{ARN_PREFIX}:service/c/daemon")]));
    let external = list(s.as_ref(), &ctx(), body(json!({"cluster": "c", "launchType": "EXTERNAL"}))).await.unwrap();
    assert_eq!(external["serviceArns"], json!([]));
    let foreign = crate::paging::encode("ListClusters", "x");
    for bad in [
        json!({"cluster": "c", "maxResults": 0}),
        json!({"cluster": "c", "nextToken": foreign}),
        json!({"cluster": "c", "launchType": "X"}),
    ] {
        let e = list(s.as_ref(), &ctx(), body(bad)).await.unwrap_err();
        assert_eq!(code(&e), "InvalidParameterException");
    }
    let ns = list_by_namespace(s.as_ref(), &ctx(), body(json!({"namespace": "ns"}))).await.unwrap();
    assert_eq!(ns, json!({"serviceArns": []}));
    let e = list_by_namespace(s.as_ref(), &ctx(), body(json!({}))).await.unwrap_err();
    assert_eq!(code(&e), "InvalidParameterException");
}

#[tokio::test]
async fn a_cluster_with_an_active_service_cannot_be_deleted() {
    let s = store();
    setup(s.as_ref()).await;
    create_svc(s.as_ref(), web("api", 0)).await.unwrap();
    let e = clusters::delete(s.as_ref(), &ctx(), body(json!({"cluster": "c"}))).await.unwrap_err();
    assert_eq!(code(&e), "ClusterContainsServicesException");
}

#[tokio::test]
async fn capacity_provider_strategies_must_use_the_clusters_providers() {
    let s = store();
    setup(s.as_ref()).await;
    crate::capacity_providers::create(
        s.as_ref(),
        &ctx(),
        body(json!({"name": "cp1", "autoScalingGroupProvider": {"autoScalingGroupArn": "asg-1"}})),
    )
    .await
    .unwrap();
    let mut req = web("api", 1);
    req["capacityProviderStrategy"] = json!([{"capacityProvider": "cp1", "weight": 1}]);
    let e = create_svc(s.as_ref(), req.clone()).await.unwrap_err();
    assert_eq!(code(&e), "InvalidParameterException");
    assert!(e.to_string().contains("not associated with the cluster"), "{e}");
    clusters::put_capacity_providers(
        s.as_ref(),
        &ctx(),
        body(json!({"cluster": "c", "capacityProviders": ["cp1"], "defaultCapacityProviderStrategy": []})),
    )
    .await
    .unwrap();
    let svc = create_svc(s.as_ref(), req.clone()).await.unwrap()["service"].clone();
    assert!(svc.get("launchType").is_none());
    assert_eq!(svc["capacityProviderStrategy"], json!([{"capacityProvider": "cp1", "weight": 1, "base": 0}]));
    assert_eq!(svc["deployments"][0]["capacityProviderStrategy"], svc["capacityProviderStrategy"]);
    let mut both = req;
    both["serviceName"] = json!("both");
    both["launchType"] = json!("EC2");
    assert_eq!(code(&create_svc(s.as_ref(), both).await.unwrap_err()), "InvalidParameterException");
}
