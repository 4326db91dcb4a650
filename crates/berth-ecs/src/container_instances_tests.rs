use super::*;
use crate::test_support::{body, code, ctx, store};
use serde_json::json;

pub(crate) async fn cluster(s: &dyn Store, name: &str) {
    crate::clusters::create(s, &ctx(), body(json!({"clusterName": name}))).await.unwrap();
}

pub(crate) async fn register_instance(s: &dyn Store, l: &Liveness, cluster: &str, cpu: i64, mem: i64, extra: Value) -> String {
    let mut b = json!({
        "cluster": cluster,
        "totalResources": [
            {"name": "CPU", "type": "INTEGER", "integerValue": cpu},
            {"name": "MEMORY", "type": "INTEGER", "integerValue": mem},
            {"name": "PORTS", "type": "STRINGSET", "stringSetValue": ["22", "2375"]},
            {"name": "PORTS_UDP", "type": "STRINGSET", "stringSetValue": []}
        ],
        "versionInfo": {"agentVersion": "1.80.0", "agentHash": "berth", "dockerVersion": "runc"},
        "attributes": [{"name": "ecs.os-type", "value": "linux"}, {"name": "ecs.availability-zone", "value": "us-east-1a"}]
    });
    if let Value::Object(m) = extra {
        for (k, v) in m {
            b[k] = v;
        }
    }
    let out = register(s, l, &ctx(), body(b)).await.unwrap();
    out["containerInstance"]["containerInstanceArn"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn register_describe_shape() {
    let s = store();
    let l = Liveness::default();
    cluster(s.as_ref(), "c").await;
    let arn = register_instance(s.as_ref(), &l, "c", 2048, 4096, json!({"tags": [{"key": "k", "value": "v"}]})).await;
    let id = arn.rsplit('/').next().unwrap();
    assert_eq!(id.len(), 32);
    assert!(arn.starts_with("arn:aws:ecs:us-east-1:123456789012:container-instance/c/"));
    let d = describe(s.as_ref(), &l, &ctx(), body(json!({"cluster": "c", "containerInstances": [id, "nope"], "include": ["TAGS", "CONTAINER_INSTANCE_HEALTH"]})))
        .await
        .unwrap();
    let ci = &d["containerInstances"][0];
    assert_eq!(ci["containerInstanceArn"], arn);
    assert_eq!(ci["status"], "ACTIVE");
    assert_eq!(ci["agentConnected"], true);
    assert_eq!(ci["runningTasksCount"], 0);
    let ec2 = ci["ec2InstanceId"].as_str().unwrap();
    assert!(ec2.starts_with("i-") && ec2.len() == 19, "{ec2}");
    assert_eq!(
        ci["registeredResources"][0],
        json!({"name": "CPU", "type": "INTEGER", "doubleValue": 0.0, "longValue": 0, "integerValue": 2048})
    );
    assert_eq!(ci["registeredResources"][2]["stringSetValue"], json!(["22", "2375"]));
    assert_eq!(ci["remainingResources"][1]["integerValue"], 4096);
    assert_eq!(ci["tags"], json!([{"key": "k", "value": "v"}]));
    assert_eq!(ci["healthStatus"]["overallStatus"], "OK");
    assert_eq!(ci["attachments"], json!([]));
    assert_eq!(ci["versionInfo"]["agentVersion"], "1.80.0");
    assert!(ci.get("agentUpdateStatus").is_none());
    assert_eq!(d["failures"][0]["reason"], "MISSING");
    assert_eq!(d["failures"][0]["arn"], format!("arn:aws:ecs:us-east-1:123456789012:container-instance/c/nope"));

    // Custom attributes appear after PutAttributes; cluster counts see it.
    crate::attributes::put(s.as_ref(), &ctx(), body(json!({"cluster": "c", "attributes": [{"name": "stack", "value": "prod", "targetType": "container-instance", "targetId": id}]})))
        .await
        .unwrap();
    let d = describe(s.as_ref(), &l, &ctx(), body(json!({"cluster": "c", "containerInstances": [arn.clone()]}))).await.unwrap();
    let names: Vec<&str> = d["containerInstances"][0]["attributes"].as_array().unwrap().iter().map(|a| a["name"].as_str().unwrap()).collect();
    assert_eq!(names, vec!["ecs.os-type", "ecs.availability-zone", "stack"]);
    let c = crate::clusters::describe(s.as_ref(), &ctx(), body(json!({"clusters": ["c"]}))).await.unwrap();
    assert_eq!(c["clusters"][0]["registeredContainerInstancesCount"], 1);

    // Re-registration with the ARN keeps the identity and bumps version.
    let again = register_instance(s.as_ref(), &l, "c", 1024, 4096, json!({"containerInstanceArn": arn})).await;
    assert_eq!(again, arn);
    let d = describe(s.as_ref(), &l, &ctx(), body(json!({"cluster": "c", "containerInstances": [id]}))).await.unwrap();
    assert_eq!(d["containerInstances"][0]["version"], 2);
    assert_eq!(d["containerInstances"][0]["registeredResources"][0]["integerValue"], 1024);
}

#[tokio::test]
async fn identity_document_instance_id_is_used_and_reregisters() {
    let s = store();
    let l = Liveness::default();
    cluster(s.as_ref(), "c").await;
    let doc = json!({"instanceId": "i-0123456789abcdef0"}).to_string();
    let a = register_instance(s.as_ref(), &l, "c", 1024, 1024, json!({"instanceIdentityDocument": doc})).await;
    let b = register_instance(s.as_ref(), &l, "c", 1024, 1024, json!({"instanceIdentityDocument": doc})).await;
    assert_eq!(a, b);
    let d = describe(s.as_ref(), &l, &ctx(), body(json!({"cluster": "c", "containerInstances": [a]}))).await.unwrap();
    assert_eq!(d["containerInstances"][0]["ec2InstanceId"], "i-0123456789abcdef0");
}

#[tokio::test]
async fn list_filters_status_and_paging() {
    let s = store();
    let l = Liveness::default();
    cluster(s.as_ref(), "c").await;
    let a = register_instance(s.as_ref(), &l, "c", 1024, 1024, json!({"attributes": [{"name": "ecs.instance-type", "value": "t2.micro"}]})).await;
    let b = register_instance(s.as_ref(), &l, "c", 1024, 1024, json!({"attributes": [{"name": "ecs.instance-type", "value": "m5.large"}]})).await;
    let all = list(s.as_ref(), &l, &ctx(), body(json!({"cluster": "c"}))).await.unwrap();
    assert_eq!(all["containerInstanceArns"].as_array().unwrap().len(), 2);
    let f = list(s.as_ref(), &l, &ctx(), body(json!({"cluster": "c", "filter": "attribute:ecs.instance-type =~ t2.*"}))).await.unwrap();
    assert_eq!(f["containerInstanceArns"], json!([a]));
    let bad = list(s.as_ref(), &l, &ctx(), body(json!({"cluster": "c", "filter": "attribute:x ==="}))).await.unwrap_err();
    assert_eq!(code(&bad), "InvalidParameterException");
    let p1 = list(s.as_ref(), &l, &ctx(), body(json!({"cluster": "c", "maxResults": 1}))).await.unwrap();
    let tok = p1["nextToken"].as_str().unwrap();
    let p2 = list(s.as_ref(), &l, &ctx(), body(json!({"cluster": "c", "maxResults": 1, "nextToken": tok}))).await.unwrap();
    assert!(p2.get("nextToken").is_none());
    assert_eq!(p1["containerInstanceArns"].as_array().unwrap().len() + p2["containerInstanceArns"].as_array().unwrap().len(), 2);

    let u = update_state(s.as_ref(), &l, &ctx(), body(json!({"cluster": "c", "containerInstances": [b.clone(), "zzz"], "status": "DRAINING"}))).await.unwrap();
    assert_eq!(u["containerInstances"][0]["status"], "DRAINING");
    assert_eq!(u["failures"][0]["reason"], "MISSING");
    let dr = list(s.as_ref(), &l, &ctx(), body(json!({"cluster": "c", "status": "DRAINING"}))).await.unwrap();
    assert_eq!(dr["containerInstanceArns"], json!([b.clone()]));
    let bad = update_state(s.as_ref(), &l, &ctx(), body(json!({"cluster": "c", "containerInstances": [b.clone()], "status": "INACTIVE"}))).await.unwrap_err();
    assert_eq!(code(&bad), "InvalidParameterException");

    let d = deregister(s.as_ref(), &l, &ctx(), body(json!({"cluster": "c", "containerInstance": b}))).await.unwrap();
    assert_eq!(d["containerInstance"]["status"], "INACTIVE");
    let all = list(s.as_ref(), &l, &ctx(), body(json!({"cluster": "c"}))).await.unwrap();
    assert_eq!(all["containerInstanceArns"], json!([a]));
}

#[tokio::test]
async fn liveness_expires() {
    let l = Liveness::new(Duration::from_secs(12));
    let t0 = std::time::UNIX_EPOCH + Duration::from_secs(100);
    l.touch("x", t0);
    assert!(l.connected("x", t0 + Duration::from_secs(12)));
    assert!(!l.connected("x", t0 + Duration::from_secs(13)));
    assert!(!l.connected("y", t0));
}

#[tokio::test]
async fn unknown_cluster_is_cluster_not_found() {
    let s = store();
    let l = Liveness::default();
    let e = register(s.as_ref(), &l, &ctx(), body(json!({"cluster": "nope"}))).await.unwrap_err();
    assert_eq!(code(&e), "ClusterNotFoundException");
}
