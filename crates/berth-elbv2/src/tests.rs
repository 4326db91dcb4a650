//! Operation-level tests through [`handle`] over a `MemoryStore`.

use super::*;
use berth_store::memory::MemoryStore;
use berth_wire::ServiceError;
use std::time::{Duration, UNIX_EPOCH};

struct Env {
    store: MemoryStore,
    account: AccountId,
    region: Region,
    tick: std::cell::Cell<u64>,
}

impl Env {
    fn new() -> Env {
        Env {
            store: MemoryStore::new(),
            account: "123456789012".parse().unwrap(),
            region: "us-east-1".parse().unwrap(),
            tick: std::cell::Cell::new(0),
        }
    }

    async fn call(&self, action: &str, params: &[(&str, &str)]) -> Result<String, Elbv2Error> {
        self.tick.set(self.tick.get() + 1);
        let mut p: Vec<(String, String)> = vec![
            ("Action".into(), action.into()),
            ("Version".into(), "2015-12-01".into()),
        ];
        p.extend(params.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        let req = Elbv2Request {
            account: &self.account,
            region: &self.region,
            now: UNIX_EPOCH + Duration::from_secs(1_700_000_000 + self.tick.get()),
            params: &p,
            request_id: "req-1",
        };
        handle(&self.store, &req).await
    }

    async fn ok(&self, action: &str, params: &[(&str, &str)]) -> String {
        match self.call(action, params).await {
            Ok(x) => x,
            Err(e) => panic!("{action} failed: {} {e}", e.code()),
        }
    }

    async fn err(&self, action: &str, params: &[(&str, &str)]) -> Elbv2Error {
        self.call(action, params).await.expect_err(action)
    }

    async fn alb(&self, name: &str) -> String {
        let x = self
            .ok(
                "CreateLoadBalancer",
                &[
                    ("Name", name),
                    ("Subnets.member.1", "subnet-a"),
                    ("Subnets.member.2", "subnet-b"),
                ],
            )
            .await;
        text(&x, "LoadBalancerArn")
    }

    async fn tg(&self, name: &str, protocol: &str) -> String {
        let x = self
            .ok(
                "CreateTargetGroup",
                &[
                    ("Name", name),
                    ("Protocol", protocol),
                    ("Port", "80"),
                    ("VpcId", "vpc-1"),
                ],
            )
            .await;
        text(&x, "TargetGroupArn")
    }

    async fn listener(&self, lb: &str, port: &str, tg: &str) -> String {
        let x = self
            .ok(
                "CreateListener",
                &[
                    ("LoadBalancerArn", lb),
                    ("Protocol", "HTTP"),
                    ("Port", port),
                    ("DefaultActions.member.1.Type", "forward"),
                    ("DefaultActions.member.1.TargetGroupArn", tg),
                ],
            )
            .await;
        text(&x, "ListenerArn")
    }
}

/// Every text of `<tag>..</tag>` in document order.
fn all(xml: &str, tag: &str) -> Vec<String> {
    let (open, close) = (format!("<{tag}>"), format!("</{tag}>"));
    let mut out = Vec::new();
    let mut rest = xml;
    while let Some(i) = rest.find(&open) {
        let after = &rest[i + open.len()..];
        let Some(j) = after.find(&close) else { break };
        out.push(after[..j].to_string());
        rest = &after[j + close.len()..];
    }
    out
}

fn text(xml: &str, tag: &str) -> String {
    all(xml, tag)
        .into_iter()
        .next()
        .unwrap_or_else(|| panic!("no <{tag}> in {xml}"))
}

#[tokio::test]
async fn create_load_balancer_has_aws_shape() {
    let env = Env::new();
    let x = env
        .ok(
            "CreateLoadBalancer",
            &[
                ("Name", "web"),
                ("Subnets.member.1", "subnet-a"),
                ("Subnets.member.2", "subnet-b"),
            ],
        )
        .await;
    assert!(x.starts_with(
        "<CreateLoadBalancerResponse xmlns=\"http://elasticloadbalancing.amazonaws.com/doc/2015-12-01/\"><CreateLoadBalancerResult>"
    ));
    assert!(x.ends_with(
        "</CreateLoadBalancerResult><ResponseMetadata><RequestId>req-1</RequestId></ResponseMetadata></CreateLoadBalancerResponse>"
    ));
    let arn = text(&x, "LoadBalancerArn");
    let id = arn
        .strip_prefix("arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/app/web/")
        .unwrap();
    assert_eq!(id.len(), 16);
    assert!(id.bytes().all(|b| b.is_ascii_hexdigit()));
    let dns = text(&x, "DNSName");
    assert!(
        dns.starts_with("web-") && dns.ends_with(".us-east-1.elb.localhost"),
        "{dns}"
    );
    assert_eq!(text(&x, "Code"), "active");
    assert_eq!(text(&x, "Type"), "application");
    assert_eq!(text(&x, "Scheme"), "internet-facing");
    assert_eq!(all(&x, "SubnetId"), vec!["subnet-a", "subnet-b"]);
    assert!(text(&x, "CreatedTime").starts_with("2023-11-14T22:13:2"));
}

#[tokio::test]
async fn network_load_balancer_arn_uses_net() {
    let env = Env::new();
    let x = env
        .ok(
            "CreateLoadBalancer",
            &[
                ("Name", "nlb"),
                ("Type", "network"),
                ("Scheme", "internal"),
                ("Subnets.member.1", "s"),
            ],
        )
        .await;
    assert!(text(&x, "LoadBalancerArn").contains(":loadbalancer/net/nlb/"));
    assert!(text(&x, "DNSName").starts_with("internal-nlb-"));
}

#[tokio::test]
async fn load_balancer_validation_errors() {
    let env = Env::new();
    let e = env
        .err("CreateLoadBalancer", &[("Subnets.member.1", "a")])
        .await;
    assert_eq!(e.code(), "ValidationError");
    assert_eq!(
        e.to_string(),
        "1 validation error detected: Value null at 'name' failed to satisfy constraint: Member must not be null"
    );
    let long = "a".repeat(33);
    let e = env
        .err(
            "CreateLoadBalancer",
            &[
                ("Name", &long),
                ("Subnets.member.1", "a"),
                ("Subnets.member.2", "b"),
            ],
        )
        .await;
    assert_eq!(
        e.to_string(),
        format!("Load balancer name '{long}' cannot be longer than '32' characters")
    );
    let e = env
        .err(
            "CreateLoadBalancer",
            &[
                ("Name", "-x"),
                ("Subnets.member.1", "a"),
                ("Subnets.member.2", "b"),
            ],
        )
        .await;
    assert_eq!(
        e.to_string(),
        "Load balancer name '-x' cannot begin or end with '-'"
    );
    let e = env
        .err(
            "CreateLoadBalancer",
            &[("Name", "x"), ("Subnets.member.1", "a")],
        )
        .await;
    assert_eq!(
        e.to_string(),
        "At least two subnets in two different Availability Zones must be specified"
    );
}

#[tokio::test]
async fn create_is_idempotent_and_duplicate_names_conflict() {
    let env = Env::new();
    let a = env.alb("web").await;
    assert_eq!(env.alb("web").await, a);
    let e = env
        .err(
            "CreateLoadBalancer",
            &[
                ("Name", "web"),
                ("Type", "network"),
                ("Subnets.member.1", "s"),
            ],
        )
        .await;
    assert_eq!(e.code(), "DuplicateLoadBalancerName");
    env.tg("tg", "HTTP").await;
    let e = env
        .err(
            "CreateTargetGroup",
            &[
                ("Name", "tg"),
                ("Protocol", "HTTP"),
                ("Port", "81"),
                ("VpcId", "v"),
            ],
        )
        .await;
    assert_eq!(e.code(), "DuplicateTargetGroupName");
}

#[tokio::test]
async fn describe_load_balancers_by_name_arn_and_pages() {
    let env = Env::new();
    let mut arns = Vec::new();
    for n in ["a", "b", "c", "d", "e"] {
        arns.push(env.alb(n).await);
    }
    let x = env
        .ok("DescribeLoadBalancers", &[("Names.member.1", "c")])
        .await;
    assert_eq!(all(&x, "LoadBalancerArn"), vec![arns[2].clone()]);
    let x = env
        .ok(
            "DescribeLoadBalancers",
            &[("LoadBalancerArns.member.1", &arns[4])],
        )
        .await;
    assert_eq!(all(&x, "LoadBalancerName"), vec!["e"]);
    let e = env
        .err("DescribeLoadBalancers", &[("Names.member.1", "zzz")])
        .await;
    assert_eq!(
        (e.code(), e.to_string().as_str()),
        (
            "LoadBalancerNotFound",
            "One or more load balancers not found"
        )
    );

    let mut names = Vec::new();
    let mut marker: Option<String> = None;
    loop {
        let mut p = vec![("PageSize", "2")];
        if let Some(m) = &marker {
            p.push(("Marker", m));
        }
        let x = env.ok("DescribeLoadBalancers", &p).await;
        names.extend(all(&x, "LoadBalancerName"));
        marker = all(&x, "NextMarker").into_iter().next();
        if marker.is_none() {
            break;
        }
    }
    assert_eq!(names, vec!["a", "b", "c", "d", "e"]);
    let e = env
        .err("DescribeLoadBalancers", &[("PageSize", "401")])
        .await;
    assert_eq!(e.code(), "ValidationError");
}

#[tokio::test]
async fn target_group_defaults_per_protocol() {
    let env = Env::new();
    let x = env
        .ok(
            "CreateTargetGroup",
            &[
                ("Name", "h"),
                ("Protocol", "HTTP"),
                ("Port", "8080"),
                ("VpcId", "vpc-1"),
            ],
        )
        .await;
    assert!(
        text(&x, "TargetGroupArn")
            .starts_with("arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/h/")
    );
    assert_eq!(text(&x, "HealthCheckPath"), "/");
    assert_eq!(text(&x, "HealthCheckTimeoutSeconds"), "5");
    assert_eq!(text(&x, "HttpCode"), "200");
    assert_eq!(text(&x, "TargetType"), "instance");
    let x = env
        .ok(
            "CreateTargetGroup",
            &[
                ("Name", "t"),
                ("Protocol", "UDP"),
                ("Port", "53"),
                ("VpcId", "vpc-1"),
                ("TargetType", "ip"),
            ],
        )
        .await;
    assert_eq!(text(&x, "HealthCheckProtocol"), "TCP");
    assert_eq!(text(&x, "HealthCheckTimeoutSeconds"), "10");
    assert!(all(&x, "HealthCheckPath").is_empty());
    let e = env
        .err(
            "CreateTargetGroup",
            &[
                ("Name", "x"),
                ("Protocol", "FTP"),
                ("Port", "1"),
                ("VpcId", "v"),
            ],
        )
        .await;
    assert_eq!(e.code(), "ValidationError");
    let e = env
        .err(
            "CreateTargetGroup",
            &[
                ("Name", "x"),
                ("Protocol", "HTTP"),
                ("Port", "1"),
                ("VpcId", "v"),
                ("HealthCheckIntervalSeconds", "4"),
            ],
        )
        .await;
    assert!(
        e.to_string().contains("'healthCheckIntervalSeconds'"),
        "{e}"
    );
}

#[tokio::test]
async fn modify_target_group_changes_health_check() {
    let env = Env::new();
    let tg = env.tg("tg", "HTTP").await;
    let x = env
        .ok(
            "ModifyTargetGroup",
            &[
                ("TargetGroupArn", &tg),
                ("HealthCheckPath", "/health"),
                ("Matcher.HttpCode", "200-299"),
            ],
        )
        .await;
    assert_eq!(text(&x, "HealthCheckPath"), "/health");
    assert_eq!(text(&x, "HttpCode"), "200-299");
    let x = env
        .ok("DescribeTargetGroups", &[("Names.member.1", "tg")])
        .await;
    assert_eq!(text(&x, "HealthCheckPath"), "/health");
    let e = env
        .err("ModifyTargetGroup", &[("TargetGroupArn", "arn:nope")])
        .await;
    assert_eq!(e.code(), "TargetGroupNotFound");
}

#[tokio::test]
async fn listeners_duplicate_port_and_resource_in_use() {
    let env = Env::new();
    let lb = env.alb("web").await;
    let tg = env.tg("tg", "HTTP").await;
    let l = env.listener(&lb, "80", &tg).await;
    assert!(l.starts_with("arn:aws:elasticloadbalancing:us-east-1:123456789012:listener/app/web/"));
    let e = env
        .err(
            "CreateListener",
            &[
                ("LoadBalancerArn", &lb),
                ("Port", "80"),
                ("DefaultActions.member.1.Type", "forward"),
                ("DefaultActions.member.1.TargetGroupArn", &tg),
            ],
        )
        .await;
    assert_eq!(e.code(), "DuplicateListener");
    assert_eq!(
        e.to_string(),
        format!("A listener already exists on this port for this load balancer '{lb}'")
    );

    let x = env
        .ok("DescribeListeners", &[("LoadBalancerArn", &lb)])
        .await;
    assert_eq!(all(&x, "ListenerArn"), vec![l.clone()]);
    assert_eq!(text(&x, "Weight"), "1");
    let x = env
        .ok("DescribeTargetGroups", &[("LoadBalancerArn", &lb)])
        .await;
    assert_eq!(all(&x, "TargetGroupArn"), vec![tg.clone()]);
    assert_eq!(
        text(&x, "LoadBalancerArns"),
        format!("<member>{lb}</member>")
    );

    let e = env
        .err("DeleteTargetGroup", &[("TargetGroupArn", &tg)])
        .await;
    assert_eq!(e.code(), "ResourceInUse");
    env.ok("DeleteListener", &[("ListenerArn", &l)]).await;
    env.ok("DeleteTargetGroup", &[("TargetGroupArn", &tg)])
        .await;
    let e = env
        .err("DescribeTargetGroups", &[("TargetGroupArns.member.1", &tg)])
        .await;
    assert_eq!(e.code(), "TargetGroupNotFound");
    let e = env.err("DeleteListener", &[("ListenerArn", &l)]).await;
    assert_eq!(e.code(), "ListenerNotFound");
}

#[tokio::test]
async fn listener_protocol_must_match_target_group() {
    let env = Env::new();
    let lb = env.alb("web").await;
    let tcp = env.tg("tcp", "TCP").await;
    let e = env
        .err(
            "CreateListener",
            &[
                ("LoadBalancerArn", &lb),
                ("Port", "80"),
                ("DefaultActions.member.1.Type", "forward"),
                ("DefaultActions.member.1.TargetGroupArn", &tcp),
            ],
        )
        .await;
    assert_eq!(e.code(), "InvalidConfigurationRequest");
}

#[tokio::test]
async fn rules_round_trip_with_default_rule_and_priorities() {
    let env = Env::new();
    let lb = env.alb("web").await;
    let a = env.tg("a", "HTTP").await;
    let b = env.tg("b", "HTTP").await;
    let l = env.listener(&lb, "80", &a).await;
    let x = env
        .ok(
            "CreateRule",
            &[
                ("ListenerArn", &l),
                ("Priority", "10"),
                ("Conditions.member.1.Field", "path-pattern"),
                (
                    "Conditions.member.1.PathPatternConfig.Values.member.1",
                    "/api/*",
                ),
                ("Conditions.member.2.Field", "http-header"),
                (
                    "Conditions.member.2.HttpHeaderConfig.HttpHeaderName",
                    "X-Env",
                ),
                (
                    "Conditions.member.2.HttpHeaderConfig.Values.member.1",
                    "blue",
                ),
                ("Conditions.member.3.Field", "query-string"),
                (
                    "Conditions.member.3.QueryStringConfig.Values.member.1.Key",
                    "v",
                ),
                (
                    "Conditions.member.3.QueryStringConfig.Values.member.1.Value",
                    "2",
                ),
                ("Actions.member.1.Type", "forward"),
                (
                    "Actions.member.1.ForwardConfig.TargetGroups.member.1.TargetGroupArn",
                    &a,
                ),
                (
                    "Actions.member.1.ForwardConfig.TargetGroups.member.1.Weight",
                    "80",
                ),
                (
                    "Actions.member.1.ForwardConfig.TargetGroups.member.2.TargetGroupArn",
                    &b,
                ),
                (
                    "Actions.member.1.ForwardConfig.TargetGroups.member.2.Weight",
                    "20",
                ),
                (
                    "Actions.member.1.ForwardConfig.TargetGroupStickinessConfig.Enabled",
                    "true",
                ),
                (
                    "Actions.member.1.ForwardConfig.TargetGroupStickinessConfig.DurationSeconds",
                    "300",
                ),
            ],
        )
        .await;
    let r10 = text(&x, "RuleArn");
    assert!(r10.contains(":listener-rule/app/web/"));
    assert_eq!(all(&x, "Weight"), vec!["80", "20"]);
    assert_eq!(text(&x, "HttpHeaderName"), "X-Env");
    assert_eq!(text(&x, "Key"), "v");
    assert_eq!(text(&x, "DurationSeconds"), "300");

    let fixed = [
        ("ListenerArn", l.as_str()),
        ("Priority", "10"),
        ("Conditions.member.1.Field", "host-header"),
        ("Conditions.member.1.Values.member.1", "example.com"),
        ("Actions.member.1.Type", "fixed-response"),
        ("Actions.member.1.FixedResponseConfig.StatusCode", "404"),
        (
            "Actions.member.1.FixedResponseConfig.ContentType",
            "text/plain",
        ),
    ];
    let e = env.err("CreateRule", &fixed).await;
    assert_eq!(
        (e.code(), e.to_string().as_str()),
        ("PriorityInUse", "Priority '10' is currently in use")
    );
    let mut p = fixed.to_vec();
    p[1] = ("Priority", "5");
    let r5 = text(&env.ok("CreateRule", &p).await, "RuleArn");

    let x = env.ok("DescribeRules", &[("ListenerArn", &l)]).await;
    assert_eq!(all(&x, "Priority"), vec!["5", "10", "default"]);
    assert_eq!(all(&x, "IsDefault"), vec!["false", "false", "true"]);

    // Swapping priorities in one call is allowed.
    let x = env
        .ok(
            "SetRulePriorities",
            &[
                ("RulePriorities.member.1.RuleArn", &r5),
                ("RulePriorities.member.1.Priority", "10"),
                ("RulePriorities.member.2.RuleArn", &r10),
                ("RulePriorities.member.2.Priority", "5"),
            ],
        )
        .await;
    assert_eq!(all(&x, "Priority"), vec!["10", "5"]);
    let e = env
        .err(
            "SetRulePriorities",
            &[
                ("RulePriorities.member.1.RuleArn", &r5),
                ("RulePriorities.member.1.Priority", "5"),
            ],
        )
        .await;
    assert_eq!(e.code(), "PriorityInUse");

    let e = env
        .err("DeleteTargetGroup", &[("TargetGroupArn", &b)])
        .await;
    assert_eq!(e.code(), "ResourceInUse");
    env.ok("DeleteRule", &[("RuleArn", &r10)]).await;
    env.ok("DeleteTargetGroup", &[("TargetGroupArn", &b)]).await;
    let e = env.err("DeleteRule", &[("RuleArn", &r10)]).await;
    assert_eq!(e.code(), "RuleNotFound");
}

#[tokio::test]
async fn rule_priority_and_action_validation() {
    let env = Env::new();
    let lb = env.alb("web").await;
    let a = env.tg("a", "HTTP").await;
    let l = env.listener(&lb, "80", &a).await;
    let base = |prio: &'static str| {
        vec![
            ("ListenerArn", l.clone()),
            ("Priority", prio.to_string()),
            ("Conditions.member.1.Field", "path-pattern".to_string()),
            ("Conditions.member.1.Values.member.1", "/x".to_string()),
            ("Actions.member.1.Type", "redirect".to_string()),
            (
                "Actions.member.1.RedirectConfig.StatusCode",
                "HTTP_301".to_string(),
            ),
            (
                "Actions.member.1.RedirectConfig.Protocol",
                "HTTPS".to_string(),
            ),
        ]
    };
    let env = &env;
    let call = |p: Vec<(&'static str, String)>| async move {
        let refs: Vec<(&str, &str)> = p.iter().map(|(k, v)| (*k, v.as_str())).collect();
        env.call("CreateRule", &refs).await
    };
    let e = call(base("0")).await.unwrap_err();
    assert_eq!(
        e.to_string(),
        "1 validation error detected: Value '0' at 'priority' failed to satisfy constraint: Member must have value greater than or equal to 1"
    );
    let e = call(base("50001")).await.unwrap_err();
    assert!(e.to_string().contains("less than or equal to 50000"));
    let x = call(base("50000")).await.unwrap();
    assert_eq!(text(&x, "Host"), "#{host}");
    assert_eq!(text(&x, "StatusCode"), "HTTP_301");
    let mut bad = base("7");
    bad[5].1 = "HTTP_307".into();
    assert_eq!(call(bad).await.unwrap_err().code(), "ValidationError");
    let mut bad = base("8");
    bad[2].1 = "cookie".into();
    assert_eq!(call(bad).await.unwrap_err().code(), "ValidationError");
    let e = env
        .err("DescribeRules", &[("RuleArns.member.1", "arn:nope")])
        .await;
    assert_eq!(e.code(), "RuleNotFound");
}

#[tokio::test]
async fn targets_register_deregister_and_health() {
    let env = Env::new();
    let tg = env.tg("tg", "HTTP").await;
    let reg = [
        ("TargetGroupArn", tg.as_str()),
        ("Targets.member.1.Id", "i-0abc"),
        ("Targets.member.2.Id", "i-0def"),
        ("Targets.member.2.Port", "81"),
    ];
    env.ok("RegisterTargets", &reg).await;
    env.ok("RegisterTargets", &reg).await; // idempotent
    let x = env
        .ok("DescribeTargetHealth", &[("TargetGroupArn", &tg)])
        .await;
    assert_eq!(all(&x, "Id"), vec!["i-0abc", "i-0def"]);
    assert_eq!(all(&x, "Port"), vec!["80", "81"]);
    assert_eq!(all(&x, "State"), vec!["unused", "unused"]);
    assert_eq!(text(&x, "Reason"), "Target.NotInUse");

    let lb = env.alb("web").await;
    env.listener(&lb, "80", &tg).await;
    let x = env
        .ok("DescribeTargetHealth", &[("TargetGroupArn", &tg)])
        .await;
    assert_eq!(all(&x, "State"), vec!["initial", "initial"]);
    assert_eq!(text(&x, "Reason"), "Elb.RegistrationInProgress");

    env.ok(
        "DeregisterTargets",
        &[("TargetGroupArn", &tg), ("Targets.member.1.Id", "i-0abc")],
    )
    .await;
    let x = env
        .ok(
            "DescribeTargetHealth",
            &[("TargetGroupArn", &tg), ("Targets.member.1.Id", "i-0abc")],
        )
        .await;
    // The group is in use and its deregistration delay is 300 s: the
    // target drains first.
    assert_eq!(text(&x, "State"), "draining");
    assert_eq!(text(&x, "Reason"), "Target.DeregistrationInProgress");
    let e = env
        .err(
            "DeregisterTargets",
            &[("TargetGroupArn", &tg), ("Targets.member.1.Id", "i-0zzz")],
        )
        .await;
    assert_eq!(e.code(), "InvalidTarget");
    let e = env
        .err(
            "RegisterTargets",
            &[("TargetGroupArn", &tg), ("Targets.member.1.Id", "10.0.0.1")],
        )
        .await;
    assert_eq!(e.code(), "InvalidTarget");
}

#[tokio::test]
async fn attributes_defaults_and_validation() {
    let env = Env::new();
    let tg = env.tg("tg", "HTTP").await;
    let x = env
        .ok("DescribeTargetGroupAttributes", &[("TargetGroupArn", &tg)])
        .await;
    let keys = all(&x, "Key");
    let vals = all(&x, "Value");
    let get = |k: &str| vals[keys.iter().position(|x| x == k).unwrap()].clone();
    assert_eq!(get("deregistration_delay.timeout_seconds"), "300");
    assert_eq!(get("slow_start.duration_seconds"), "0");
    assert_eq!(get("load_balancing.algorithm.type"), "round_robin");
    let x = env
        .ok(
            "ModifyTargetGroupAttributes",
            &[
                ("TargetGroupArn", &tg),
                ("Attributes.member.1.Key", "load_balancing.algorithm.type"),
                ("Attributes.member.1.Value", "least_outstanding_requests"),
            ],
        )
        .await;
    assert!(all(&x, "Value").contains(&"least_outstanding_requests".to_string()));
    let e = env
        .err(
            "ModifyTargetGroupAttributes",
            &[
                ("TargetGroupArn", &tg),
                ("Attributes.member.1.Key", "slow_start.duration_seconds"),
                ("Attributes.member.1.Value", "10"),
            ],
        )
        .await;
    assert_eq!(e.code(), "ValidationError");
    let e = env
        .err(
            "ModifyTargetGroupAttributes",
            &[
                ("TargetGroupArn", &tg),
                ("Attributes.member.1.Key", "bogus"),
                ("Attributes.member.1.Value", "1"),
            ],
        )
        .await;
    assert_eq!(e.to_string(), "Attribute key 'bogus' is not recognized");

    let lb = env.alb("web").await;
    let x = env
        .ok(
            "DescribeLoadBalancerAttributes",
            &[("LoadBalancerArn", &lb)],
        )
        .await;
    assert!(x.contains("<Key>idle_timeout.timeout_seconds</Key><Value>60</Value>"));
    env.ok(
        "ModifyLoadBalancerAttributes",
        &[
            ("LoadBalancerArn", &lb),
            ("Attributes.member.1.Key", "deletion_protection.enabled"),
            ("Attributes.member.1.Value", "true"),
        ],
    )
    .await;
    let e = env
        .err("DeleteLoadBalancer", &[("LoadBalancerArn", &lb)])
        .await;
    assert_eq!(e.code(), "InvalidConfigurationRequest");
}

#[tokio::test]
async fn tags_add_remove_describe() {
    let env = Env::new();
    let lb = env.alb("web").await;
    env.ok(
        "AddTags",
        &[
            ("ResourceArns.member.1", &lb),
            ("Tags.member.1.Key", "env"),
            ("Tags.member.1.Value", "prod"),
            ("Tags.member.2.Key", "team"),
            ("Tags.member.2.Value", "a"),
        ],
    )
    .await;
    env.ok(
        "RemoveTags",
        &[("ResourceArns.member.1", &lb), ("TagKeys.member.1", "team")],
    )
    .await;
    let x = env
        .ok("DescribeTags", &[("ResourceArns.member.1", &lb)])
        .await;
    assert_eq!(text(&x, "ResourceArn"), lb);
    assert_eq!(all(&x, "Key"), vec!["env"]);
    let mut many: Vec<(String, String)> = Vec::new();
    many.push(("ResourceArns.member.1".into(), lb.clone()));
    for i in 1..=51 {
        many.push((format!("Tags.member.{i}.Key"), format!("k{i}")));
    }
    let refs: Vec<(&str, &str)> = many.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    assert_eq!(env.err("AddTags", &refs).await.code(), "TooManyTags");
}

#[tokio::test]
async fn delete_load_balancer_removes_listeners_and_is_idempotent() {
    let env = Env::new();
    let lb = env.alb("web").await;
    let tg = env.tg("tg", "HTTP").await;
    env.listener(&lb, "80", &tg).await;
    env.ok("DeleteLoadBalancer", &[("LoadBalancerArn", &lb)])
        .await;
    env.ok("DeleteLoadBalancer", &[("LoadBalancerArn", &lb)])
        .await;
    env.ok("DeleteTargetGroup", &[("TargetGroupArn", &tg)])
        .await;
    let x = env.ok("DescribeLoadBalancers", &[]).await;
    assert!(x.contains("<LoadBalancers/>"));
}

#[tokio::test]
async fn unknown_and_unsupported_actions() {
    let env = Env::new();
    let e = env.err("CreateTrustStore", &[]).await;
    assert_eq!(e.code(), "UnsupportedOperation");
    let e = env.err("Frobnicate", &[]).await;
    assert_eq!(e.code(), "InvalidAction");
    let (status, body) = berth_wire::query::render_error(&Elbv2Error::PriorityInUse(3), "r");
    assert_eq!(status, 400);
    assert!(body.contains("<Code>PriorityInUse</Code>"));
}

/// A store whose first transaction loses to a write slipped in just before it.
struct ConflictOnce {
    inner: MemoryStore,
    fired: std::sync::atomic::AtomicBool,
}

#[async_trait::async_trait]
impl berth_store::Store for ConflictOnce {
    async fn get(
        &self,
        key: &str,
    ) -> Result<Option<berth_store::Versioned>, berth_store::StoreError> {
        self.inner.get(key).await
    }
    async fn list(
        &self,
        prefix: &str,
        start_after: Option<&str>,
        limit: usize,
    ) -> Result<berth_store::Page, berth_store::StoreError> {
        self.inner.list(prefix, start_after, limit).await
    }
    async fn txn(
        &self,
        txn: berth_store::Txn,
    ) -> Result<berth_store::TxnOutcome, berth_store::StoreError> {
        if !self.fired.swap(true, std::sync::atomic::Ordering::SeqCst) {
            let state = model::State::default();
            let key = model::state_key("123456789012", "us-east-1");
            self.inner
                .txn(berth_store::Txn::new().put(key, serde_json::to_vec(&state).unwrap()))
                .await?;
        }
        self.inner.txn(txn).await
    }
    async fn revision(&self) -> Result<u64, berth_store::StoreError> {
        self.inner.revision().await
    }
    fn watch(&self, prefix: &str) -> berth_store::WatchStream {
        self.inner.watch(prefix)
    }
}

#[tokio::test]
async fn a_conflicting_write_reruns_the_change() {
    let store = ConflictOnce {
        inner: MemoryStore::new(),
        fired: Default::default(),
    };
    let key = model::state_key("123456789012", "us-east-1");
    let mut runs = 0;
    model::update(&store, &key, |s| {
        runs += 1;
        s.load_balancers.clear();
        Ok(())
    })
    .await
    .unwrap();
    assert_eq!(runs, 2);
    assert!(store.inner.get(&key).await.unwrap().is_some());
}

async fn stored_state(env: &Env) -> model::State {
    let key = model::state_key("123456789012", "us-east-1");
    model::load(&env.store, &key).await.unwrap().0
}

#[tokio::test]
async fn a_draining_target_leaves_after_the_delay_and_is_purged() {
    let env = Env::new();
    let tg = env.tg("tg", "HTTP").await;
    let lb = env.alb("web").await;
    env.listener(&lb, "80", &tg).await;
    env.ok(
        "ModifyTargetGroupAttributes",
        &[
            ("TargetGroupArn", &tg),
            ("Attributes.member.1.Key", "deregistration_delay.timeout_seconds"),
            ("Attributes.member.1.Value", "2"),
        ],
    )
    .await;
    let one = [("TargetGroupArn", tg.as_str()), ("Targets.member.1.Id", "i-0abc")];
    env.ok("RegisterTargets", &one).await;
    env.ok("DeregisterTargets", &one).await; // t
    let x = env.ok("DescribeTargetHealth", &[("TargetGroupArn", &tg)]).await; // t+1
    assert_eq!(all(&x, "State"), vec!["draining"]);
    assert_eq!(text(&x, "Description"), "Target deregistration is in progress");
    let x = env.ok("DescribeTargetHealth", &one).await; // t+2: expired
    assert_eq!(text(&x, "Reason"), "Target.NotRegistered");
    let x = env.ok("DescribeTargetHealth", &[("TargetGroupArn", &tg)]).await;
    assert!(all(&x, "Id").is_empty(), "an expired target is absent: {x}");
    assert_eq!(stored_state(&env).await.target_groups[0].targets.len(), 1, "reads do not write");
    // Any later write of the targets purges it.
    env.ok(
        "RegisterTargets",
        &[("TargetGroupArn", &tg), ("Targets.member.1.Id", "i-0def")],
    )
    .await;
    let ids: Vec<String> = stored_state(&env).await.target_groups[0].targets.iter().map(|t| t.id.clone()).collect();
    assert_eq!(ids, vec!["i-0def"]);
    // Deregistering an expired target: it is not registered any more.
    assert_eq!(env.err("DeregisterTargets", &one).await.code(), "InvalidTarget");
}

#[tokio::test]
async fn registering_a_draining_target_again_clears_draining() {
    let env = Env::new();
    let tg = env.tg("tg", "HTTP").await;
    let lb = env.alb("web").await;
    env.listener(&lb, "80", &tg).await;
    let one = [("TargetGroupArn", tg.as_str()), ("Targets.member.1.Id", "i-0abc")];
    env.ok("RegisterTargets", &one).await;
    env.ok("DeregisterTargets", &one).await;
    let since = stored_state(&env).await.target_groups[0].targets[0].draining_since_ms;
    assert!(since.is_some());
    // Deregistering again does not restart the delay.
    env.ok("DeregisterTargets", &one).await;
    assert_eq!(stored_state(&env).await.target_groups[0].targets[0].draining_since_ms, since);
    env.ok("RegisterTargets", &one).await;
    let s = stored_state(&env).await;
    assert_eq!(s.target_groups[0].targets.len(), 1);
    assert_eq!(s.target_groups[0].targets[0].draining_since_ms, None);
    let x = env.ok("DescribeTargetHealth", &one).await;
    assert_eq!(text(&x, "State"), "initial");
}

#[tokio::test]
async fn targets_leave_at_once_when_unused_or_without_delay() {
    let env = Env::new();
    let tg = env.tg("tg", "HTTP").await;
    let one = [("TargetGroupArn", tg.as_str()), ("Targets.member.1.Id", "i-0abc")];
    // Not in use by any listener: nothing to drain.
    env.ok("RegisterTargets", &one).await;
    env.ok("DeregisterTargets", &one).await;
    assert!(stored_state(&env).await.target_groups[0].targets.is_empty());
    // In use, delay 0.
    let lb = env.alb("web").await;
    env.listener(&lb, "80", &tg).await;
    env.ok(
        "ModifyTargetGroupAttributes",
        &[
            ("TargetGroupArn", &tg),
            ("Attributes.member.1.Key", "deregistration_delay.timeout_seconds"),
            ("Attributes.member.1.Value", "0"),
        ],
    )
    .await;
    env.ok("RegisterTargets", &one).await;
    env.ok("DeregisterTargets", &one).await;
    assert!(stored_state(&env).await.target_groups[0].targets.is_empty());
}

#[tokio::test]
async fn target_health_comes_from_the_health_record() {
    let env = Env::new();
    let tg = env.tg("tg", "HTTP").await;
    let lb = env.alb("web").await;
    env.listener(&lb, "80", &tg).await;
    env.ok(
        "RegisterTargets",
        &[
            ("TargetGroupArn", &tg),
            ("Targets.member.1.Id", "i-0abc"),
            ("Targets.member.2.Id", "i-0def"),
            ("Targets.member.3.Id", "i-0ghi"),
        ],
    )
    .await;
    let mut h = model::HealthRecord::default();
    h.targets.insert(
        model::health_entry_key(&tg, "i-0abc", 80),
        model::TargetHealth { state: "healthy".into(), reason: None, description: None, since_ms: 1 },
    );
    h.targets.insert(
        model::health_entry_key(&tg, "i-0def", 80),
        model::TargetHealth {
            state: "unhealthy".into(),
            reason: Some("Target.ResponseCodeMismatch".into()),
            description: Some("Health checks failed with these codes: [500]".into()),
            since_ms: 1,
        },
    );
    let key = model::health_key("123456789012", "us-east-1");
    let txn = berth_store::Txn::new().put(key, serde_json::to_vec(&h).unwrap());
    env.store.txn(txn).await.unwrap();
    let x = env.ok("DescribeTargetHealth", &[("TargetGroupArn", &tg)]).await;
    assert_eq!(all(&x, "State"), vec!["healthy", "unhealthy", "initial"]);
    // A healthy target has neither Reason nor Description.
    assert_eq!(all(&x, "Reason"), vec!["Target.ResponseCodeMismatch", "Elb.RegistrationInProgress"]);
    assert_eq!(
        all(&x, "Description"),
        vec!["Health checks failed with these codes: [500]", "Target registration is in progress"]
    );
    env.ok(
        "ModifyTargetGroup",
        &[("TargetGroupArn", &tg), ("HealthCheckEnabled", "false")],
    )
    .await;
    let x = env.ok("DescribeTargetHealth", &[("TargetGroupArn", &tg)]).await;
    assert_eq!(all(&x, "State"), vec!["unavailable"; 3]);
    assert_eq!(text(&x, "Reason"), "Target.HealthCheckDisabled");
}

// ---- listeners with certificates, ModifyListener, ModifyRule ----

const CERT_A: &str = "arn:aws:acm:us-east-1:123456789012:certificate/a";
const CERT_B: &str = "arn:aws:acm:us-east-1:123456789012:certificate/b";
const CERT_C: &str = "arn:aws:acm:us-east-1:123456789012:certificate/c";

async fn https_listener(env: &Env, lb: &str, port: &str, tg: &str, extra: &[(&str, &str)]) -> Result<String, Elbv2Error> {
    let mut p = vec![
        ("LoadBalancerArn", lb),
        ("Protocol", "HTTPS"),
        ("Port", port),
        ("DefaultActions.member.1.Type", "forward"),
        ("DefaultActions.member.1.TargetGroupArn", tg),
    ];
    p.extend_from_slice(extra);
    env.call("CreateListener", &p).await
}

#[tokio::test]
async fn https_listener_needs_a_certificate_and_gets_the_default_policy() {
    let env = Env::new();
    let lb = env.alb("tls").await;
    let tg = env.tg("tls-tg", "HTTP").await;
    let e = https_listener(&env, &lb, "20443", &tg, &[]).await.unwrap_err();
    assert_eq!(e.code(), "ValidationError");
    assert_eq!(e.to_string(), "A certificate must be specified for HTTPS listeners");
    let e = https_listener(&env, &lb, "20443", &tg, &[("Certificates.member.1.CertificateArn", "not-an-arn")])
        .await
        .unwrap_err();
    assert_eq!(e.code(), "CertificateNotFound");
    let e = https_listener(
        &env,
        &lb,
        "20443",
        &tg,
        &[("Certificates.member.1.CertificateArn", CERT_A), ("SslPolicy", "Nope")],
    )
    .await
    .unwrap_err();
    assert_eq!(e.code(), "SSLPolicyNotFound");
    // HTTP takes no certificate.
    let e = env
        .err(
            "CreateListener",
            &[
                ("LoadBalancerArn", &lb),
                ("Protocol", "HTTP"),
                ("Port", "20080"),
                ("DefaultActions.member.1.Type", "forward"),
                ("DefaultActions.member.1.TargetGroupArn", &tg),
                ("Certificates.member.1.CertificateArn", CERT_A),
            ],
        )
        .await;
    assert_eq!(e.to_string(), "A certificate cannot be specified for HTTP listeners");

    let x = https_listener(&env, &lb, "20443", &tg, &[("Certificates.member.1.CertificateArn", CERT_A)])
        .await
        .unwrap();
    assert!(
        x.contains(&format!(
            "<Certificates><member><CertificateArn>{CERT_A}</CertificateArn></member></Certificates><SslPolicy>ELBSecurityPolicy-2016-08</SslPolicy><DefaultActions>"
        )),
        "{x}"
    );
    let arn = text(&x, "ListenerArn");
    let d = env.ok("DescribeListeners", &[("ListenerArns.member.1", &arn)]).await;
    assert_eq!(text(&d, "SslPolicy"), "ELBSecurityPolicy-2016-08");
    assert_eq!(all(&d, "CertificateArn"), vec![CERT_A]);
}

#[tokio::test]
async fn tls_listeners_on_network_load_balancers() {
    let env = Env::new();
    let x = env
        .ok(
            "CreateLoadBalancer",
            &[("Name", "nlb"), ("Type", "network"), ("Subnets.member.1", "subnet-a")],
        )
        .await;
    let lb = text(&x, "LoadBalancerArn");
    let tg = env.tg("tcp", "TCP").await;
    let base = [
        ("LoadBalancerArn", lb.as_str()),
        ("Protocol", "TLS"),
        ("Port", "21000"),
        ("DefaultActions.member.1.Type", "forward"),
        ("DefaultActions.member.1.TargetGroupArn", tg.as_str()),
    ];
    let e = env.err("CreateListener", &base).await;
    assert_eq!(e.to_string(), "A certificate must be specified for TLS listeners");
    let mut p = base.to_vec();
    p.push(("Certificates.member.1.CertificateArn", CERT_A));
    p.push(("SslPolicy", "ELBSecurityPolicy-TLS13-1-2-2021-06"));
    let x = env.ok("CreateListener", &p).await;
    assert_eq!(text(&x, "Protocol"), "TLS");
    assert_eq!(text(&x, "SslPolicy"), "ELBSecurityPolicy-TLS13-1-2-2021-06");
    // HTTPS is for application load balancers only.
    let mut p = base.to_vec();
    p[1] = ("Protocol", "HTTPS");
    p[2] = ("Port", "21001");
    p.push(("Certificates.member.1.CertificateArn", CERT_A));
    assert_eq!(env.err("CreateListener", &p).await.code(), "ValidationError");
}

#[tokio::test]
async fn listener_certificates_add_describe_remove() {
    let env = Env::new();
    let lb = env.alb("certs").await;
    let tg = env.tg("certs-tg", "HTTP").await;
    let x = https_listener(&env, &lb, "20443", &tg, &[("Certificates.member.1.CertificateArn", CERT_A)])
        .await
        .unwrap();
    let l = text(&x, "ListenerArn");
    let x = env
        .ok(
            "AddListenerCertificates",
            &[
                ("ListenerArn", &l),
                ("Certificates.member.1.CertificateArn", CERT_B),
                ("Certificates.member.2.CertificateArn", CERT_C),
            ],
        )
        .await;
    assert_eq!(all(&x, "CertificateArn"), vec![CERT_B, CERT_C]);
    assert_eq!(all(&x, "IsDefault"), vec!["false", "false"]);
    let d = env.ok("DescribeListenerCertificates", &[("ListenerArn", &l)]).await;
    assert_eq!(all(&d, "CertificateArn"), vec![CERT_A, CERT_B, CERT_C]);
    assert_eq!(all(&d, "IsDefault"), vec!["true", "false", "false"]);
    let d = env
        .ok("DescribeListenerCertificates", &[("ListenerArn", &l), ("PageSize", "2")])
        .await;
    assert_eq!(all(&d, "CertificateArn"), vec![CERT_A, CERT_B]);
    assert_eq!(text(&d, "NextMarker"), "2");
    // Adding one again changes nothing.
    env.ok(
        "AddListenerCertificates",
        &[("ListenerArn", &l), ("Certificates.member.1.CertificateArn", CERT_B)],
    )
    .await;
    env.ok(
        "RemoveListenerCertificates",
        &[("ListenerArn", &l), ("Certificates.member.1.CertificateArn", CERT_B)],
    )
    .await;
    let d = env.ok("DescribeListenerCertificates", &[("ListenerArn", &l)]).await;
    assert_eq!(all(&d, "CertificateArn"), vec![CERT_A, CERT_C]);
    let e = env
        .err(
            "RemoveListenerCertificates",
            &[("ListenerArn", &l), ("Certificates.member.1.CertificateArn", CERT_A)],
        )
        .await;
    assert_eq!(e.code(), "OperationNotPermitted");
    // An HTTP listener takes none.
    let plain = env.listener(&lb, "20080", &tg).await;
    let e = env
        .err(
            "AddListenerCertificates",
            &[("ListenerArn", &plain), ("Certificates.member.1.CertificateArn", CERT_B)],
        )
        .await;
    assert_eq!(e.code(), "ValidationError");
    let e = env
        .err("DescribeListenerCertificates", &[("ListenerArn", &format!("{l}0"))])
        .await;
    assert_eq!(e.code(), "ListenerNotFound");
}

#[tokio::test]
async fn modify_listener_changes_port_protocol_certificates_and_actions() {
    let env = Env::new();
    let lb = env.alb("mod").await;
    let tg = env.tg("mod-tg", "HTTP").await;
    let other = env.tg("mod-tg2", "HTTP").await;
    let a = env.listener(&lb, "20001", &tg).await;
    let b = env.listener(&lb, "20002", &tg).await;
    let e = env.err("ModifyListener", &[("ListenerArn", &b), ("Port", "20001")]).await;
    assert_eq!(e.code(), "DuplicateListener");
    // Its own port is no conflict.
    env.ok("ModifyListener", &[("ListenerArn", &a), ("Port", "20001")]).await;
    let e = env.err("ModifyListener", &[("ListenerArn", &b), ("Protocol", "HTTPS")]).await;
    assert_eq!(e.to_string(), "A certificate must be specified for HTTPS listeners");
    let x = env
        .ok(
            "ModifyListener",
            &[
                ("ListenerArn", &b),
                ("Port", "20003"),
                ("Protocol", "HTTPS"),
                ("Certificates.member.1.CertificateArn", CERT_A),
                ("DefaultActions.member.1.Type", "forward"),
                ("DefaultActions.member.1.TargetGroupArn", &other),
            ],
        )
        .await;
    assert_eq!(text(&x, "Port"), "20003");
    assert_eq!(text(&x, "Protocol"), "HTTPS");
    assert_eq!(text(&x, "SslPolicy"), "ELBSecurityPolicy-2016-08");
    assert_eq!(text(&x, "TargetGroupArn"), other);
    // A new default certificate keeps the additional ones.
    env.ok(
        "AddListenerCertificates",
        &[("ListenerArn", &b), ("Certificates.member.1.CertificateArn", CERT_C)],
    )
    .await;
    env.ok(
        "ModifyListener",
        &[("ListenerArn", &b), ("Certificates.member.1.CertificateArn", CERT_B)],
    )
    .await;
    let d = env.ok("DescribeListenerCertificates", &[("ListenerArn", &b)]).await;
    assert_eq!(all(&d, "CertificateArn"), vec![CERT_B, CERT_C]);
    // Back to HTTP drops certificates and policy.
    let x = env.ok("ModifyListener", &[("ListenerArn", &b), ("Protocol", "HTTP")]).await;
    assert!(!x.contains("Certificates") && !x.contains("SslPolicy"), "{x}");
    // tg is no longer used by b, but still by a.
    assert_eq!(env.err("DeleteTargetGroup", &[("TargetGroupArn", &tg)]).await.code(), "ResourceInUse");
    env.ok(
        "ModifyListener",
        &[
            ("ListenerArn", &a),
            ("DefaultActions.member.1.Type", "fixed-response"),
            ("DefaultActions.member.1.FixedResponseConfig.StatusCode", "204"),
        ],
    )
    .await;
    env.ok("DeleteTargetGroup", &[("TargetGroupArn", &tg)]).await;
    let e = env.err("ModifyListener", &[("ListenerArn", &format!("{a}0")), ("Port", "1")]).await;
    assert_eq!(e.code(), "ListenerNotFound");
}

#[tokio::test]
async fn modify_rule_replaces_conditions_and_actions() {
    let env = Env::new();
    let lb = env.alb("rules").await;
    let tg = env.tg("rules-tg", "HTTP").await;
    let l = env.listener(&lb, "20080", &tg).await;
    let x = env
        .ok(
            "CreateRule",
            &[
                ("ListenerArn", &l),
                ("Priority", "10"),
                ("Conditions.member.1.Field", "path-pattern"),
                ("Conditions.member.1.PathPatternConfig.Values.member.1", "/a/*"),
                ("Actions.member.1.Type", "forward"),
                ("Actions.member.1.TargetGroupArn", &tg),
            ],
        )
        .await;
    let rule = text(&x, "RuleArn");
    let x = env
        .ok(
            "ModifyRule",
            &[
                ("RuleArn", &rule),
                ("Conditions.member.1.Field", "host-header"),
                ("Conditions.member.1.HostHeaderConfig.Values.member.1", "b.example"),
            ],
        )
        .await;
    assert_eq!(text(&x, "Field"), "host-header");
    assert_eq!(text(&x, "Priority"), "10");
    assert_eq!(text(&x, "TargetGroupArn"), tg);
    let x = env
        .ok(
            "ModifyRule",
            &[
                ("RuleArn", &rule),
                ("Actions.member.1.Type", "redirect"),
                ("Actions.member.1.RedirectConfig.StatusCode", "HTTP_301"),
                ("Actions.member.1.RedirectConfig.Protocol", "HTTPS"),
            ],
        )
        .await;
    assert_eq!(text(&x, "Field"), "host-header");
    assert_eq!(text(&x, "Type"), "redirect");
    let d = env.ok("DescribeRules", &[("RuleArns.member.1", &rule)]).await;
    assert_eq!(text(&d, "Type"), "redirect");
    // The default rule: actions only.
    let d = env.ok("DescribeRules", &[("ListenerArn", &l)]).await;
    let default = all(&d, "RuleArn").pop().unwrap();
    let e = env
        .err(
            "ModifyRule",
            &[
                ("RuleArn", &default),
                ("Conditions.member.1.Field", "path-pattern"),
                ("Conditions.member.1.Values.member.1", "/"),
            ],
        )
        .await;
    assert_eq!(e.code(), "OperationNotPermitted");
    let x = env
        .ok(
            "ModifyRule",
            &[
                ("RuleArn", &default),
                ("Actions.member.1.Type", "fixed-response"),
                ("Actions.member.1.FixedResponseConfig.StatusCode", "503"),
            ],
        )
        .await;
    assert_eq!(text(&x, "IsDefault"), "true");
    let d = env.ok("DescribeListeners", &[("ListenerArns.member.1", &l)]).await;
    assert_eq!(text(&d, "Type"), "fixed-response");
    let e = env.err("ModifyRule", &[("RuleArn", &format!("{rule}0"))]).await;
    assert_eq!(e.code(), "RuleNotFound");
    let e = env
        .err("ModifyRule", &[("RuleArn", &rule), ("Actions.member.1.Type", "forward"), ("Actions.member.1.TargetGroupArn", "arn:x")])
        .await;
    assert_eq!(e.code(), "TargetGroupNotFound");
}

#[tokio::test]
async fn stickiness_and_algorithm_attributes_per_protocol() {
    let env = Env::new();
    let http = env.tg("attr-http", "HTTP").await;
    let tcp = env.tg("attr-tcp", "TCP").await;
    let set = |tg: String, k: &'static str, v: &'static str| {
        let env = &env;
        async move {
            env.call(
                "ModifyTargetGroupAttributes",
                &[("TargetGroupArn", &tg), ("Attributes.member.1.Key", k), ("Attributes.member.1.Value", v)],
            )
            .await
        }
    };
    for (k, v) in [
        ("stickiness.type", "app_cookie"),
        ("stickiness.app_cookie.cookie_name", "SESSIONID"),
        ("stickiness.app_cookie.duration_seconds", "3600"),
        ("stickiness.lb_cookie.duration_seconds", "60"),
        ("load_balancing.algorithm.type", "least_outstanding_requests"),
        ("slow_start.duration_seconds", "30"),
        ("deregistration_delay.timeout_seconds", "0"),
    ] {
        let x = set(http.clone(), k, v).await.unwrap_or_else(|e| panic!("{k}={v}: {e}"));
        assert!(x.contains(&format!("<Key>{k}</Key><Value>{v}</Value>")), "{x}");
    }
    for (k, v) in [
        ("stickiness.type", "source_ip"),
        ("stickiness.app_cookie.cookie_name", "AWSALBAPP-0"),
        ("stickiness.app_cookie.cookie_name", "bad name"),
        ("stickiness.app_cookie.duration_seconds", "0"),
        ("load_balancing.algorithm.type", "weighted_random_x"),
        ("slow_start.duration_seconds", "10"),
    ] {
        let e = set(http.clone(), k, v).await.unwrap_err();
        assert_eq!(e.code(), "ValidationError", "{k}={v}");
    }
    set(tcp.clone(), "stickiness.type", "source_ip").await.unwrap();
    assert_eq!(set(tcp.clone(), "stickiness.type", "lb_cookie").await.unwrap_err().code(), "ValidationError");
    // HTTP-only keys are unknown to a TCP group.
    assert_eq!(
        set(tcp, "stickiness.app_cookie.cookie_name", "X").await.unwrap_err().code(),
        "ValidationError"
    );
}

#[tokio::test]
async fn availability_zones_name_their_zone() {
    let env = Env::new();
    let net = berth_ec2::model::DefaultNetwork::new(&env.account, &env.region);
    let x = env
        .ok(
            "CreateLoadBalancer",
            &[
                ("Name", "zones"),
                ("Subnets.member.1", &net.subnets[1].id),
                ("Subnets.member.2", &net.subnets[0].id),
            ],
        )
        .await;
    assert_eq!(
        all(&x, "ZoneName"),
        vec![net.subnets[1].availability_zone.clone(), net.subnets[0].availability_zone.clone()]
    );
    assert_eq!(text(&x, "VpcId"), net.vpc.id);
    // Subnets outside the default network get the region's zones in order.
    let x = env.ok("DescribeLoadBalancers", &[("Names.member.1", "zones")]).await;
    assert_eq!(all(&x, "ZoneName").len(), 2);
    let lb = env.alb("other").await;
    let x = env.ok("DescribeLoadBalancers", &[("LoadBalancerArns.member.1", &lb)]).await;
    assert_eq!(all(&x, "ZoneName"), vec!["us-east-1a", "us-east-1b"]);
}
