//! The resources a request acts on (ECS, ELBv2, IAM), as IAM's authorization names them: the
//! `Resource` its policies' statements are matched against.
//!
//! Each follows the AWS Service Authorization Reference's resource types
//! for the operations Berth serves; an operation without a resource type
//! (List*, RegisterTaskDefinition, ...) is authorized on `*`. References
//! are turned into ARNs without reading the store: a cluster or service
//! named by name gets the ARN it would have, so a policy naming it matches.

use berth_arn::{AccountId, Region};
use serde_json::{Map, Value};

/// ECS's ARN for `resource` in this account and region.
fn ecs_arn(region: &Region, account: &AccountId, resource: &str) -> String {
    format!("arn:aws:ecs:{region}:{account}:{resource}")
}

/// A cluster reference (name or ARN; absent means `default`) as an ARN.
fn cluster_arn(region: &Region, account: &AccountId, reference: Option<&str>) -> String {
    match reference {
        Some(r) if r.starts_with("arn:") => r.to_string(),
        Some(r) if !r.is_empty() => ecs_arn(region, account, &format!("cluster/{r}")),
        _ => ecs_arn(region, account, "cluster/default"),
    }
}

fn cluster_name(reference: Option<&str>) -> String {
    match reference {
        Some(r) if !r.is_empty() => r.rsplit('/').next().unwrap_or(r).to_string(),
        _ => "default".into(),
    }
}

/// A member that names a resource of `kind` in a cluster (`task`,
/// `service`, `container-instance`), by ARN or by id/name.
fn scoped_arn(region: &Region, account: &AccountId, kind: &str, cluster: Option<&str>, reference: &str) -> String {
    if reference.starts_with("arn:") {
        reference.to_string()
    } else {
        ecs_arn(region, account, &format!("{kind}/{}/{reference}", cluster_name(cluster)))
    }
}

fn strings<'a>(body: &'a Map<String, Value>, member: &str) -> Vec<&'a str> {
    match body.get(member) {
        Some(Value::Array(items)) => items.iter().filter_map(Value::as_str).collect(),
        Some(Value::String(s)) => vec![s.as_str()],
        _ => Vec::new(),
    }
}

fn string<'a>(body: &'a Map<String, Value>, member: &str) -> Option<&'a str> {
    body.get(member).and_then(Value::as_str)
}

/// The ARNs an ECS operation acts on (never empty: `*` when it has none).
pub fn ecs(region: &Region, account: &AccountId, operation: &str, body: &Map<String, Value>) -> Vec<String> {
    let cluster = string(body, "cluster");
    let out: Vec<String> = match operation {
        "CreateCluster" => vec![cluster_arn(region, account, string(body, "clusterName"))],
        "DescribeClusters" => {
            let named = strings(body, "clusters");
            if named.is_empty() {
                vec![cluster_arn(region, account, None)]
            } else {
                named.into_iter().map(|c| cluster_arn(region, account, Some(c))).collect()
            }
        }
        "DeleteCluster" | "UpdateCluster" | "UpdateClusterSettings" | "PutClusterCapacityProviders" | "ListContainerInstances" => {
            vec![cluster_arn(region, account, cluster)]
        }
        "CreateService" => string(body, "serviceName")
            .map(|s| scoped_arn(region, account, "service", cluster, s))
            .into_iter()
            .collect(),
        "UpdateService" | "DeleteService" => string(body, "service")
            .map(|s| scoped_arn(region, account, "service", cluster, s))
            .into_iter()
            .collect(),
        "DescribeServices" => strings(body, "services").into_iter().map(|s| scoped_arn(region, account, "service", cluster, s)).collect(),
        "StopTask" => string(body, "task").map(|t| scoped_arn(region, account, "task", cluster, t)).into_iter().collect(),
        "DescribeTasks" => strings(body, "tasks").into_iter().map(|t| scoped_arn(region, account, "task", cluster, t)).collect(),
        "RunTask" | "StartTask" => string(body, "taskDefinition")
            .map(|td| {
                if td.starts_with("arn:") {
                    td.to_string()
                } else if td.contains(':') {
                    ecs_arn(region, account, &format!("task-definition/{td}"))
                } else {
                    // The latest revision: matched by `family:*` patterns.
                    ecs_arn(region, account, &format!("task-definition/{td}:*"))
                }
            })
            .into_iter()
            .collect(),
        "DescribeContainerInstances" => strings(body, "containerInstances")
            .into_iter()
            .map(|c| scoped_arn(region, account, "container-instance", cluster, c))
            .collect(),
        "DeregisterContainerInstance" => string(body, "containerInstance")
            .map(|c| scoped_arn(region, account, "container-instance", cluster, c))
            .into_iter()
            .collect(),
        "UpdateContainerInstancesState" => strings(body, "containerInstances")
            .into_iter()
            .map(|c| scoped_arn(region, account, "container-instance", cluster, c))
            .collect(),
        "TagResource" | "UntagResource" | "ListTagsForResource" => {
            string(body, "resourceArn").map(str::to_string).into_iter().collect()
        }
        _ => Vec::new(),
    };
    if out.is_empty() { vec!["*".into()] } else { out }
}

/// ECS's own condition keys for a request: `ecs:cluster`, the ARN of the
/// cluster a cluster-scoped operation acts in (the default cluster when
/// the request names none), so a policy can confine a caller to clusters.
pub fn ecs_condition_keys(region: &Region, account: &AccountId, operation: &str, body: &Map<String, Value>) -> Vec<(&'static str, String)> {
    const CLUSTER_SCOPED: &[&str] = &[
        "RunTask", "StartTask", "StopTask", "DescribeTasks", "ListTasks", "CreateService", "UpdateService", "DeleteService",
        "DescribeServices", "ListServices", "ListContainerInstances", "DescribeContainerInstances", "UpdateContainerInstancesState",
        "DeregisterContainerInstance", "ListServiceDeployments", "StopServiceDeployment", "DeleteCluster", "UpdateCluster",
        "UpdateClusterSettings", "PutClusterCapacityProviders",
    ];
    if CLUSTER_SCOPED.contains(&operation) {
        vec![("ecs:cluster", cluster_arn(region, account, string(body, "cluster")))]
    } else {
        Vec::new()
    }
}

/// The ARNs an ELBv2 action acts on: every load balancer, target group,
/// listener and rule ARN among its parameters (`*` when it names none, as
/// for the Create* and unfiltered Describe* calls).
pub fn elbv2(params: &[(String, String)]) -> Vec<String> {
    const SINGLE: [&str; 4] = ["LoadBalancerArn", "TargetGroupArn", "ListenerArn", "RuleArn"];
    const LISTS: [&str; 5] = ["LoadBalancerArns.member.", "TargetGroupArns.member.", "ListenerArns.member.", "RuleArns.member.", "ResourceArns.member."];
    let mut out: Vec<String> = Vec::new();
    for (k, v) in params {
        let names_one = SINGLE.contains(&k.as_str()) || LISTS.iter().any(|p| k.starts_with(p) && k[p.len()..].bytes().all(|b| b.is_ascii_digit()));
        if names_one && v.starts_with("arn:") && !out.contains(v) {
            out.push(v.clone());
        }
    }
    if out.is_empty() { vec!["*".into()] } else { out }
}

/// The ARN an IAM action acts on, from the names in its parameters (the
/// path comes from the existing entity when there is one).
pub fn iam(snapshot: &berth_iam::Snapshot, params: &[(String, String)]) -> Vec<String> {
    let param = |name: &str| params.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
    let account = snapshot.account();
    let state = snapshot.state();
    let arn = if let Some(user) = param("UserName") {
        state.user(user).map(|u| u.arn.clone()).unwrap_or_else(|| format!("arn:aws:iam::{account}:user/{user}"))
    } else if let Some(role) = param("RoleName") {
        state.role(role).map(|r| r.arn.clone()).unwrap_or_else(|| format!("arn:aws:iam::{account}:role/{role}"))
    } else if let Some(group) = param("GroupName") {
        state.group(group).map(|g| g.arn.clone()).unwrap_or_else(|| format!("arn:aws:iam::{account}:group/{group}"))
    } else if let Some(profile) = param("InstanceProfileName") {
        format!("arn:aws:iam::{account}:instance-profile/{profile}")
    } else if let Some(policy) = param("PolicyArn") {
        policy.to_string()
    } else if let Some(name) = param("PolicyName").filter(|_| param("Action") == Some("CreatePolicy")) {
        format!("arn:aws:iam::{account}:policy{}{name}", param("Path").unwrap_or("/"))
    } else {
        "*".into()
    };
    vec![arn]
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn body(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap()
    }

    #[test]
    fn elbv2_actions_name_their_arns() {
        let form = |pairs: &[(&str, &str)]| pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect::<Vec<_>>();
        let lb = "arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/app/web/0123456789abcdef";
        let tg = "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/web/0123456789abcdef";
        assert_eq!(elbv2(&form(&[("Action", "DeleteLoadBalancer"), ("LoadBalancerArn", lb)])), [lb]);
        assert_eq!(
            elbv2(&form(&[("Action", "CreateListener"), ("LoadBalancerArn", lb), ("DefaultActions.member.1.TargetGroupArn", tg)])),
            [lb]
        );
        assert_eq!(elbv2(&form(&[("Action", "DescribeTags"), ("ResourceArns.member.1", lb), ("ResourceArns.member.2", tg)])), [lb, tg]);
        assert_eq!(elbv2(&form(&[("Action", "CreateLoadBalancer"), ("Name", "web")])), ["*"]);
    }

    #[test]
    fn ecs_operations_name_their_resources() {
        let region = Region::try_from("us-east-1".to_string()).unwrap();
        let account = AccountId::try_from("123456789012".to_string()).unwrap();
        let r = |op: &str, b: Value| ecs(&region, &account, op, &body(b));
        assert_eq!(r("CreateCluster", json!({"clusterName": "prod"})), ["arn:aws:ecs:us-east-1:123456789012:cluster/prod"]);
        assert_eq!(r("CreateCluster", json!({})), ["arn:aws:ecs:us-east-1:123456789012:cluster/default"]);
        assert_eq!(
            r("DescribeClusters", json!({"clusters": ["a", "arn:aws:ecs:us-east-1:123456789012:cluster/b"]})),
            ["arn:aws:ecs:us-east-1:123456789012:cluster/a", "arn:aws:ecs:us-east-1:123456789012:cluster/b"]
        );
        assert_eq!(r("UpdateService", json!({"cluster": "c", "service": "web"})), ["arn:aws:ecs:us-east-1:123456789012:service/c/web"]);
        assert_eq!(r("StopTask", json!({"task": "abc"})), ["arn:aws:ecs:us-east-1:123456789012:task/default/abc"]);
        assert_eq!(r("RunTask", json!({"taskDefinition": "web:3"})), ["arn:aws:ecs:us-east-1:123456789012:task-definition/web:3"]);
        assert_eq!(r("RunTask", json!({"taskDefinition": "web"})), ["arn:aws:ecs:us-east-1:123456789012:task-definition/web:*"]);
        assert_eq!(r("ListClusters", json!({})), ["*"]);
        assert_eq!(r("DescribeServices", json!({"services": []})), ["*"]);
    }
}
