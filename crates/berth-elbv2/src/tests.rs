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
    assert_eq!(text(&x, "Reason"), "Target.NotRegistered");
    let e = env
        .err(
            "DeregisterTargets",
            &[("TargetGroupArn", &tg), ("Targets.member.1.Id", "i-0abc")],
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
