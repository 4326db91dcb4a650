//! The ELBv2 operations.
//!
//! Target health (`model::target_health`, shared with the ECS service
//! controller): a deregistered target still draining reports `draining` /
//! `Target.DeregistrationInProgress`; one whose group no listener or rule
//! forwards to, `unused` / `Target.NotInUse`; one whose group's health
//! checks are off, `unavailable` / `Target.HealthCheckDisabled`; otherwise
//! what the data plane's health record says, or `initial` /
//! `Elb.RegistrationInProgress` before its first verdict. A target asked
//! about but not registered reports `unused` / `Target.NotRegistered`.
//! These are ELB's own states and reason codes. DeregisterTargets drains a
//! target of a group in use for the group's deregistration delay; expired
//! draining targets are absent to every reader and purged by the next
//! RegisterTargets or DeregisterTargets.

use crate::form::Form;
use crate::model::*;
use crate::xml::{self, Xml};
use crate::{Elbv2Error, Elbv2Request};
use berth_store::Store;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::time::{SystemTime, UNIX_EPOCH};

const UNSUPPORTED: &[&str] = &[
    "AddTrustStoreRevocations",
    "CreateTrustStore",
    "DeleteSharedTrustStoreAssociation",
    "DeleteTrustStore",
    "DescribeAccountLimits",
    "DescribeCapacityReservation",
    "DescribeListenerAttributes",
    "DescribeSSLPolicies",
    "DescribeTrustStoreAssociations",
    "DescribeTrustStoreRevocations",
    "DescribeTrustStores",
    "GetResourcePolicy",
    "GetTrustStoreCaCertificatesBundle",
    "GetTrustStoreRevocationContent",
    "ModifyCapacityReservation",
    "ModifyIpPools",
    "ModifyListenerAttributes",
    "ModifyTrustStore",
    "RemoveTrustStoreRevocations",
    "SetIpAddressType",
    "SetSecurityGroups",
    "SetSubnets",
];

struct Ctx<'a> {
    account: &'a str,
    region: &'a str,
    now: SystemTime,
    f: Form,
}

fn v(msg: impl Into<String>) -> Elbv2Error {
    Elbv2Error::Validation(msg.into())
}

pub async fn dispatch(store: &dyn Store, req: &Elbv2Request<'_>) -> Result<String, Elbv2Error> {
    let f = Form::from_params(req.params);
    let action = f.get("Action").unwrap_or("").to_string();
    let cx = Ctx {
        account: req.account.as_str(),
        region: req.region.as_str(),
        now: req.now,
        f,
    };
    let key = state_key(cx.account, cx.region);
    let mut x = xml::response(&action, req.request_id);
    match action.as_str() {
        "CreateLoadBalancer" => {
            let lb = update(store, &key, |s| create_lb(&cx, s)).await?;
            x.members("LoadBalancers", &[lb], write_lb);
        }
        "DescribeLoadBalancers" => {
            let (s, _) = load(store, &key).await?;
            describe_lbs(&cx, &s, &mut x)?;
        }
        "DeleteLoadBalancer" => update(store, &key, |s| delete_lb(&cx, s)).await?,
        "CreateTargetGroup" => {
            let tg = update(store, &key, |s| create_tg(&cx, s)).await?;
            x.members("TargetGroups", &[tg], write_tg_with(&State::default()));
        }
        "DescribeTargetGroups" => {
            let (s, _) = load(store, &key).await?;
            describe_tgs(&cx, &s, &mut x)?;
        }
        "ModifyTargetGroup" => {
            let (tg, s) =
                update(store, &key, |s| modify_tg(&cx, s).map(|tg| (tg, s.clone()))).await?;
            x.members("TargetGroups", &[tg], write_tg_with(&s));
        }
        "DeleteTargetGroup" => update(store, &key, |s| delete_tg(&cx, s)).await?,
        "CreateListener" => {
            let l = update(store, &key, |s| create_listener(&cx, s)).await?;
            x.members("Listeners", &[l], write_listener);
        }
        "DescribeListeners" => {
            let (s, _) = load(store, &key).await?;
            describe_listeners(&cx, &s, &mut x)?;
        }
        "DeleteListener" => update(store, &key, |s| delete_listener(&cx, s)).await?,
        "ModifyListener" => {
            let l = update(store, &key, |s| modify_listener(&cx, s)).await?;
            x.members("Listeners", &[l], write_listener);
        }
        "DescribeListenerCertificates" => {
            let (s, _) = load(store, &key).await?;
            describe_listener_certificates(&cx, &s, &mut x)?;
        }
        "AddListenerCertificates" => {
            let added = update(store, &key, |s| add_listener_certificates(&cx, s)).await?;
            let listed: Vec<(String, bool)> = added.into_iter().map(|c| (c, false)).collect();
            x.members("Certificates", &listed, write_certificate);
        }
        "RemoveListenerCertificates" => {
            update(store, &key, |s| remove_listener_certificates(&cx, s)).await?
        }
        "CreateRule" => {
            let r = update(store, &key, |s| create_rule(&cx, s)).await?;
            x.members("Rules", &[RuleView::Rule(r)], write_rule);
        }
        "DescribeRules" => {
            let (s, _) = load(store, &key).await?;
            describe_rules(&cx, &s, &mut x)?;
        }
        "DeleteRule" => update(store, &key, |s| delete_rule(&cx, s)).await?,
        "ModifyRule" => {
            let r = update(store, &key, |s| modify_rule(&cx, s)).await?;
            x.members("Rules", &[r], write_rule);
        }
        "SetRulePriorities" => {
            let rules = update(store, &key, |s| set_priorities(&cx, s)).await?;
            let views: Vec<RuleView> = rules.into_iter().map(RuleView::Rule).collect();
            x.members("Rules", &views, write_rule);
        }
        "RegisterTargets" => {
            update_at(store, &key, epoch_ms(cx.now), |s| register(&cx, s, true)).await?
        }
        "DeregisterTargets" => {
            update_at(store, &key, epoch_ms(cx.now), |s| register(&cx, s, false)).await?
        }
        "DescribeTargetHealth" => {
            let (s, _) = load(store, &key).await?;
            let health = load_health(store, cx.account, cx.region).await?;
            describe_health(&cx, &s, &health, &mut x)?;
        }
        "DescribeTargetGroupAttributes" | "DescribeLoadBalancerAttributes" => {
            let (s, _) = load(store, &key).await?;
            let attrs = attributes(&cx, &s, action.starts_with("DescribeTargetGroup"))?;
            write_attrs(&mut x, &attrs);
        }
        "ModifyTargetGroupAttributes" | "ModifyLoadBalancerAttributes" => {
            let tg = action.starts_with("ModifyTargetGroup");
            let attrs = update(store, &key, |s| modify_attributes(&cx, s, tg)).await?;
            write_attrs(&mut x, &attrs);
        }
        "AddTags" => update(store, &key, |s| tags(&cx, s, true)).await?,
        "RemoveTags" => update(store, &key, |s| tags(&cx, s, false)).await?,
        "DescribeTags" => {
            let (s, _) = load(store, &key).await?;
            describe_tags(&cx, &s, &mut x)?;
        }
        a if UNSUPPORTED.contains(&a) => {
            return Err(Elbv2Error::UnsupportedOperation(a.to_string()));
        }
        a => return Err(Elbv2Error::InvalidAction(a.to_string())),
    }
    Ok(x.finish())
}

// ---- helpers ----

fn hex_id(parts: &[&str], now: SystemTime, len: usize) -> String {
    let nanos = now
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let mut h = Sha256::new();
    for p in parts {
        h.update(p.as_bytes());
        h.update([0]);
    }
    h.update(nanos.to_le_bytes());
    h.finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<String>()[..len]
        .to_string()
}

/// ISO 8601 in UTC with milliseconds, as ELB writes CreatedTime.
fn iso8601(t: SystemTime) -> String {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs() as i64;
    let (days, rem) = (secs.div_euclid(86400), secs.rem_euclid(86400));
    let (year, month, day) = berth_clock::civil::civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        d.subsec_millis()
    )
}

fn check_name(what: &str, name: &str) -> Result<(), Elbv2Error> {
    if name.len() > 32 {
        return Err(v(format!(
            "{what} name '{name}' cannot be longer than '32' characters"
        )));
    }
    if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
        return Err(v(format!(
            "{what} name '{name}' can only contain characters that are alphanumeric characters or hyphens(-)"
        )));
    }
    if name.starts_with('-') || name.ends_with('-') {
        return Err(v(format!(
            "{what} name '{name}' cannot begin or end with '-'"
        )));
    }
    if what == "Load balancer" && name.starts_with("internal-") {
        return Err(v(format!(
            "Load balancer name '{name}' cannot begin with 'internal-'"
        )));
    }
    Ok(())
}

fn port(f: &Form, key: &str) -> Result<Option<u16>, Elbv2Error> {
    match f.int(key)? {
        None => Ok(None),
        Some(p) if (1..=65535).contains(&p) => Ok(Some(p as u16)),
        Some(p) => Err(v(format!(
            "1 validation error detected: Value '{p}' at 'port' failed to satisfy constraint: Member must have value less than or equal to 65535"
        ))),
    }
}

fn lb_by_arn<'s>(s: &'s State, arn: &str) -> Result<&'s LoadBalancer, Elbv2Error> {
    s.load_balancers
        .iter()
        .find(|l| l.arn == arn)
        .ok_or(Elbv2Error::LoadBalancerNotFound)
}

fn tg_by_arn<'s>(s: &'s State, arn: &str) -> Result<&'s TargetGroup, Elbv2Error> {
    s.target_groups
        .iter()
        .find(|t| t.arn == arn)
        .ok_or(Elbv2Error::TargetGroupNotFound)
}

fn listener_by_arn<'s>(s: &'s State, arn: &str) -> Result<&'s Listener, Elbv2Error> {
    s.listeners
        .iter()
        .find(|l| l.arn == arn)
        .ok_or(Elbv2Error::ListenerNotFound)
}

fn listener_mut<'s>(s: &'s mut State, arn: &str) -> Result<&'s mut Listener, Elbv2Error> {
    s.listeners
        .iter_mut()
        .find(|l| l.arn == arn)
        .ok_or(Elbv2Error::ListenerNotFound)
}

fn tg_in_use(s: &State, arn: &str) -> bool {
    s.listeners
        .iter()
        .flat_map(|l| &l.default_actions)
        .chain(s.rules.iter().flat_map(|r| &r.actions))
        .any(|a| a.target_groups().contains(&arn))
}

/// Marker/PageSize paging over an already filtered list: the marker is the
/// index of the next item. PageSize is 1..=400, default 400.
fn page<T: Clone>(f: &Form, items: &[T]) -> Result<(Vec<T>, Option<String>), Elbv2Error> {
    Ok(f.page(items.to_vec(), "PageSize", 400, 400)?)
}

// ---- load balancers ----

fn create_lb(cx: &Ctx, s: &mut State) -> Result<LoadBalancer, Elbv2Error> {
    let f = &cx.f;
    let name = f.required("Name")?.to_string();
    check_name("Load balancer", &name)?;
    let kind = f.get("Type").unwrap_or("application").to_string();
    let short = match kind.as_str() {
        "application" => "app",
        "network" => "net",
        other => return Err(v(format!("Load balancer type '{other}' is not supported"))),
    };
    let scheme = f.get("Scheme").unwrap_or("internet-facing").to_string();
    if scheme != "internet-facing" && scheme != "internal" {
        return Err(v(format!("Scheme '{scheme}' is not valid")));
    }
    let ip_address_type = f.get("IpAddressType").unwrap_or("ipv4").to_string();
    if !["ipv4", "dualstack", "dualstack-without-public-ipv4"].contains(&ip_address_type.as_str()) {
        return Err(v(format!(
            "IP address type '{ip_address_type}' is not valid"
        )));
    }
    let mut subnets = f.strings("Subnets");
    subnets.extend(
        f.members("SubnetMappings")
            .iter()
            .filter_map(|m| m.get("SubnetId").map(str::to_string)),
    );
    if kind == "application" && subnets.len() < 2 {
        return Err(v(
            "At least two subnets in two different Availability Zones must be specified",
        ));
    }
    if subnets.is_empty() {
        return Err(v("At least one subnet must be specified"));
    }
    let tags = parse_tags(f)?;
    if let Some(existing) = s.load_balancers.iter().find(|l| l.name == name) {
        // CreateLoadBalancer is idempotent for the same settings, as in AWS.
        if existing.kind == kind && existing.scheme == scheme {
            return Ok(existing.clone());
        }
        return Err(Elbv2Error::DuplicateLoadBalancerName(name));
    }
    let id = hex_id(&[cx.account, cx.region, "lb", &name], cx.now, 16);
    let mut attributes = BTreeMap::new();
    attributes.insert(
        "deletion_protection.enabled".to_string(),
        "false".to_string(),
    );
    if kind == "application" {
        attributes.insert("idle_timeout.timeout_seconds".to_string(), "60".to_string());
        attributes.insert("routing.http2.enabled".to_string(), "true".to_string());
    } else {
        attributes.insert(
            "load_balancing.cross_zone.enabled".to_string(),
            "false".to_string(),
        );
    }
    let prefix = if scheme == "internal" {
        "internal-"
    } else {
        ""
    };
    let lb = LoadBalancer {
        arn: format!(
            "arn:aws:elasticloadbalancing:{}:{}:loadbalancer/{short}/{name}/{id}",
            cx.region, cx.account
        ),
        dns_name: format!("{prefix}{name}-{}.{}.elb.localhost", &id[..10], cx.region),
        name,
        kind,
        scheme,
        created: iso8601(cx.now),
        vpc_id: default_network(cx.account, cx.region)
            .map(|n| n.vpc.id)
            .unwrap_or_else(|| "vpc-default".to_string()),
        subnets,
        security_groups: f.strings("SecurityGroups"),
        ip_address_type,
        attributes,
        tags,
    };
    s.load_balancers.push(lb.clone());
    Ok(lb)
}

fn write_lb(x: &mut Xml, lb: &LoadBalancer) {
    x.text("LoadBalancerArn", &lb.arn)
        .text("DNSName", &lb.dns_name)
        .text("CanonicalHostedZoneId", "Z00BERTHELB0000")
        .text("CreatedTime", &lb.created)
        .text("LoadBalancerName", &lb.name)
        .text("Scheme", &lb.scheme)
        .text("VpcId", &lb.vpc_id);
    x.open("State").text("Code", "active").close("State");
    x.text("Type", &lb.kind);
    x.members("AvailabilityZones", &availability_zones(lb), |x, (zone, subnet)| {
        x.text("ZoneName", zone).text("SubnetId", subnet);
    });
    if lb.kind == "application" {
        x.strings("SecurityGroups", &lb.security_groups);
    }
    x.text("IpAddressType", &lb.ip_address_type);
}

/// The account's synthetic default network (berth-ec2), whose subnets
/// name the zones.
fn default_network(account: &str, region: &str) -> Option<berth_ec2::model::DefaultNetwork> {
    let account: berth_arn::AccountId = account.parse().ok()?;
    let region: berth_arn::Region = region.parse().ok()?;
    Some(berth_ec2::model::DefaultNetwork::new(&account, &region))
}

/// (zone, subnet) of each of a load balancer's subnets: the default
/// network's zone for its subnets, else the region's zones in order.
fn availability_zones(lb: &LoadBalancer) -> Vec<(String, String)> {
    // arn:aws:elasticloadbalancing:REGION:ACCOUNT:loadbalancer/...
    let mut parts = lb.arn.split(':').skip(3);
    let (region, account) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let net = default_network(account, region);
    lb.subnets
        .iter()
        .enumerate()
        .map(|(i, subnet)| {
            let zone = net
                .as_ref()
                .and_then(|n| n.subnets.iter().find(|s| &s.id == subnet))
                .map(|s| s.availability_zone.clone())
                .unwrap_or_else(|| format!("{region}{}", (b'a' + (i % 26) as u8) as char));
            (zone, subnet.clone())
        })
        .collect()
}

fn describe_lbs(cx: &Ctx, s: &State, x: &mut Xml) -> Result<(), Elbv2Error> {
    let arns = cx.f.strings("LoadBalancerArns");
    let names = cx.f.strings("Names");
    if !arns.is_empty() && !names.is_empty() {
        return Err(v(
            "Load balancer names and load balancer ARNs cannot be specified at the same time",
        ));
    }
    let found: Vec<LoadBalancer> = if !arns.is_empty() {
        arns.iter()
            .map(|a| lb_by_arn(s, a).cloned())
            .collect::<Result<_, _>>()?
    } else if !names.is_empty() {
        names
            .iter()
            .map(|n| {
                s.load_balancers
                    .iter()
                    .find(|l| &l.name == n)
                    .cloned()
                    .ok_or(Elbv2Error::LoadBalancerNotFound)
            })
            .collect::<Result<_, _>>()?
    } else {
        s.load_balancers.clone()
    };
    let (items, next) = page(&cx.f, &found)?;
    x.members("LoadBalancers", &items, write_lb);
    x.opt("NextMarker", next.as_deref());
    Ok(())
}

fn delete_lb(cx: &Ctx, s: &mut State) -> Result<(), Elbv2Error> {
    let arn = cx.f.required("LoadBalancerArn")?.to_string();
    // Deleting a missing load balancer succeeds, as in AWS; a malformed ARN does not.
    if !arn.starts_with("arn:") {
        return Err(v(format!("'{arn}' is not a valid load balancer ARN")));
    }
    if let Some(lb) = s.load_balancers.iter().find(|l| l.arn == arn)
        && lb
            .attributes
            .get("deletion_protection.enabled")
            .map(String::as_str)
            == Some("true")
    {
        return Err(Elbv2Error::InvalidConfigurationRequest(format!(
            "Load balancer '{arn}' cannot be deleted because deletion protection is enabled"
        )));
    }
    let listeners: Vec<String> = s
        .listeners
        .iter()
        .filter(|l| l.lb_arn == arn)
        .map(|l| l.arn.clone())
        .collect();
    s.rules.retain(|r| !listeners.contains(&r.listener_arn));
    s.listeners.retain(|l| l.lb_arn != arn);
    s.load_balancers.retain(|l| l.arn != arn);
    Ok(())
}

// ---- target groups ----

const TG_PROTOCOLS: &[&str] = &["HTTP", "HTTPS", "TCP", "TLS", "UDP", "TCP_UDP"];


fn apply_health(f: &Form, h: &mut HealthCheck) -> Result<(), Elbv2Error> {
    if let Some(e) = f.bool("HealthCheckEnabled")? {
        h.enabled = e;
    }
    if let Some(p) = f.get("HealthCheckProtocol") {
        if !["HTTP", "HTTPS", "TCP"].contains(&p) {
            return Err(v(format!("Health check protocol '{p}' is not supported")));
        }
        h.protocol = p.to_string();
        if p != "TCP" && h.path.is_none() {
            h.path = Some("/".to_string());
            h.matcher = Some("200".to_string());
        }
    }
    if let Some(p) = f.get("HealthCheckPort") {
        if p != "traffic-port" && !p.parse::<u16>().is_ok_and(|n| n >= 1) {
            return Err(v(format!(
                "Health check port '{p}' must be 'traffic-port' or between 1 and 65535"
            )));
        }
        h.port = p.to_string();
    }
    if let Some(p) = f.get("HealthCheckPath") {
        if !p.starts_with('/') || p.len() > 1024 {
            return Err(v(
                "Health check path must begin with a '/' character, and can be at most 1024 characters in length",
            ));
        }
        h.path = Some(p.to_string());
    }
    let ranged = |key: &str, lo: i64, hi: i64| -> Result<Option<u32>, Elbv2Error> {
        match f.int(key)? {
            None => Ok(None),
            Some(n) if (lo..=hi).contains(&n) => Ok(Some(n as u32)),
            Some(n) => Err(v(format!(
                "1 validation error detected: Value '{n}' at '{}' failed to satisfy constraint: Member must have value between {lo} and {hi}",
                key[..1].to_lowercase() + &key[1..]
            ))),
        }
    };
    if let Some(n) = ranged("HealthCheckIntervalSeconds", 5, 300)? {
        h.interval = n;
    }
    if let Some(n) = ranged("HealthCheckTimeoutSeconds", 2, 120)? {
        h.timeout = n;
    }
    if let Some(n) = ranged("HealthyThresholdCount", 2, 10)? {
        h.healthy = n;
    }
    if let Some(n) = ranged("UnhealthyThresholdCount", 2, 10)? {
        h.unhealthy = n;
    }
    if let Some(m) = f.get("Matcher.HttpCode") {
        h.matcher = Some(m.to_string());
    }
    if h.timeout >= h.interval {
        return Err(v("Health check timeout must be smaller than the interval"));
    }
    Ok(())
}

fn create_tg(cx: &Ctx, s: &mut State) -> Result<TargetGroup, Elbv2Error> {
    let f = &cx.f;
    let name = f.required("Name")?.to_string();
    check_name("Target group", &name)?;
    let target_type = f.get("TargetType").unwrap_or("instance").to_string();
    if !["instance", "ip"].contains(&target_type.as_str()) {
        return Err(v(format!("Target type '{target_type}' is not supported")));
    }
    let protocol = f.required("Protocol")?.to_string();
    if !TG_PROTOCOLS.contains(&protocol.as_str()) {
        return Err(v(format!(
            "1 validation error detected: Value '{protocol}' at 'protocol' failed to satisfy constraint: Member must satisfy enum value set: [HTTP, HTTPS, TCP, TLS, UDP, TCP_UDP]"
        )));
    }
    let port = port(f, "Port")?.ok_or_else(|| v("A port must be specified"))?;
    let vpc_id = f.required("VpcId")?.to_string();
    let mut health = HealthCheck::defaults(&protocol);
    apply_health(f, &mut health)?;
    let tags = parse_tags(f)?;
    if let Some(existing) = s.target_groups.iter().find(|t| t.name == name) {
        if existing.protocol == protocol
            && existing.port == port
            && existing.target_type == target_type
            && existing.health == health
        {
            return Ok(existing.clone());
        }
        return Err(Elbv2Error::DuplicateTargetGroupName(name));
    }
    let id = hex_id(&[cx.account, cx.region, "tg", &name], cx.now, 16);
    let mut attributes: BTreeMap<String, String> = [
        ("deregistration_delay.timeout_seconds", "300"),
        ("stickiness.enabled", "false"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    if protocol == "HTTP" || protocol == "HTTPS" {
        for (k, val) in [
            ("stickiness.type", "lb_cookie"),
            ("stickiness.lb_cookie.duration_seconds", "86400"),
            ("stickiness.app_cookie.cookie_name", ""),
            ("stickiness.app_cookie.duration_seconds", "86400"),
            ("slow_start.duration_seconds", "0"),
            ("load_balancing.algorithm.type", "round_robin"),
        ] {
            attributes.insert(k.to_string(), val.to_string());
        }
    } else {
        attributes.insert("stickiness.type".to_string(), "source_ip".to_string());
    }
    let tg = TargetGroup {
        arn: format!(
            "arn:aws:elasticloadbalancing:{}:{}:targetgroup/{name}/{id}",
            cx.region, cx.account
        ),
        name,
        protocol,
        port,
        vpc_id,
        target_type,
        health,
        attributes,
        tags,
        targets: Vec::new(),
    };
    s.target_groups.push(tg.clone());
    Ok(tg)
}

fn write_tg_with(s: &State) -> impl FnMut(&mut Xml, &TargetGroup) + '_ {
    move |x, tg| {
        let h = &tg.health;
        x.text("TargetGroupArn", &tg.arn)
            .text("TargetGroupName", &tg.name)
            .text("Protocol", &tg.protocol)
            .num("Port", tg.port)
            .text("VpcId", &tg.vpc_id)
            .text("HealthCheckProtocol", &h.protocol)
            .text("HealthCheckPort", &h.port)
            .bool("HealthCheckEnabled", h.enabled)
            .num("HealthCheckIntervalSeconds", h.interval)
            .num("HealthCheckTimeoutSeconds", h.timeout)
            .num("HealthyThresholdCount", h.healthy)
            .num("UnhealthyThresholdCount", h.unhealthy)
            .opt("HealthCheckPath", h.path.as_deref());
        if let Some(m) = &h.matcher {
            x.open("Matcher").text("HttpCode", m).close("Matcher");
        }
        let lbs = lbs_of_tg(s, &tg.arn);
        x.strings("LoadBalancerArns", &lbs);
        x.text("TargetType", &tg.target_type)
            .text("IpAddressType", "ipv4");
    }
}

fn lbs_of_tg(s: &State, tg: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for l in &s.listeners {
        let rules = s
            .rules
            .iter()
            .filter(|r| r.listener_arn == l.arn)
            .flat_map(|r| &r.actions);
        if l.default_actions
            .iter()
            .chain(rules)
            .any(|a| a.target_groups().contains(&tg))
            && !out.contains(&l.lb_arn)
        {
            out.push(l.lb_arn.clone());
        }
    }
    out
}

fn describe_tgs(cx: &Ctx, s: &State, x: &mut Xml) -> Result<(), Elbv2Error> {
    let arns = cx.f.strings("TargetGroupArns");
    let names = cx.f.strings("Names");
    let lb = cx.f.get("LoadBalancerArn");
    let found: Vec<TargetGroup> = if !arns.is_empty() {
        arns.iter()
            .map(|a| tg_by_arn(s, a).cloned())
            .collect::<Result<_, _>>()?
    } else if !names.is_empty() {
        names
            .iter()
            .map(|n| {
                s.target_groups
                    .iter()
                    .find(|t| &t.name == n)
                    .cloned()
                    .ok_or(Elbv2Error::TargetGroupNotFound)
            })
            .collect::<Result<_, _>>()?
    } else if let Some(lb) = lb {
        lb_by_arn(s, lb)?;
        s.target_groups
            .iter()
            .filter(|t| lbs_of_tg(s, &t.arn).iter().any(|a| a == lb))
            .cloned()
            .collect()
    } else {
        s.target_groups.clone()
    };
    let (items, next) = page(&cx.f, &found)?;
    x.members("TargetGroups", &items, write_tg_with(s));
    x.opt("NextMarker", next.as_deref());
    Ok(())
}

fn modify_tg(cx: &Ctx, s: &mut State) -> Result<TargetGroup, Elbv2Error> {
    let arn = cx.f.required("TargetGroupArn")?.to_string();
    let tg = s
        .target_groups
        .iter_mut()
        .find(|t| t.arn == arn)
        .ok_or(Elbv2Error::TargetGroupNotFound)?;
    let mut h = tg.health.clone();
    apply_health(&cx.f, &mut h)?;
    tg.health = h;
    Ok(tg.clone())
}

fn delete_tg(cx: &Ctx, s: &mut State) -> Result<(), Elbv2Error> {
    let arn = cx.f.required("TargetGroupArn")?.to_string();
    if tg_in_use(s, &arn) {
        return Err(Elbv2Error::ResourceInUse(format!(
            "Target group '{arn}' is currently in use by a listener or a rule"
        )));
    }
    s.target_groups.retain(|t| t.arn != arn);
    Ok(())
}

// ---- actions and conditions ----

fn parse_actions(s: &State, list: &[Form], lb_kind: &str) -> Result<Vec<Action>, Elbv2Error> {
    if list.is_empty() {
        return Err(v("At least one action must be specified"));
    }
    let mut out = Vec::new();
    for m in list {
        let kind = m.required("Type")?.to_string();
        let order = m.int("Order")?.map(|o| o as u32);
        let mut a = Action {
            kind: kind.clone(),
            order,
            target_group_arn: None,
            forward: None,
            fixed: None,
            redirect: None,
        };
        match kind.as_str() {
            "forward" => {
                a.target_group_arn = m.get("TargetGroupArn").map(str::to_string);
                let fc = m.sub("ForwardConfig");
                if !fc.is_empty() {
                    let groups = fc
                        .members("TargetGroups")
                        .iter()
                        .map(|g| {
                            Ok(WeightedGroup {
                                arn: g.required("TargetGroupArn")?.to_string(),
                                weight: match g.int("Weight")? {
                                    Some(w) if (0..=999).contains(&w) => Some(w as u32),
                                    Some(w) => {
                                        return Err(v(format!(
                                            "Target group weight '{w}' must be between 0 and 999"
                                        )));
                                    }
                                    None => None,
                                },
                            })
                        })
                        .collect::<Result<Vec<_>, Elbv2Error>>()?;
                    let st = fc.sub("TargetGroupStickinessConfig");
                    let stickiness = if st.is_empty() {
                        None
                    } else {
                        Some(Stickiness {
                            enabled: st.bool("Enabled")?.unwrap_or(false),
                            duration_seconds: st.int("DurationSeconds")?.map(|d| d as u32),
                        })
                    };
                    a.forward = Some(Forward {
                        target_groups: groups,
                        stickiness,
                    });
                }
                if a.target_group_arn.is_none()
                    && a.forward
                        .as_ref()
                        .is_none_or(|f| f.target_groups.is_empty())
                {
                    return Err(v("A target group ARN must be specified"));
                }
                if let (Some(one), Some(fwd)) = (&a.target_group_arn, &a.forward)
                    && (fwd.target_groups.len() != 1 || &fwd.target_groups[0].arn != one)
                {
                    return Err(v(
                        "You cannot specify both a target group ARN and a target group list with different target groups",
                    ));
                }
                for tg in a.target_groups() {
                    let t = tg_by_arn(s, tg)?;
                    let http = t.protocol == "HTTP" || t.protocol == "HTTPS";
                    if (lb_kind == "application") != http {
                        return Err(Elbv2Error::InvalidConfigurationRequest(format!(
                            "The target group '{tg}' uses protocol {} which is not compatible with this load balancer",
                            t.protocol
                        )));
                    }
                }
            }
            "fixed-response" => {
                let fc = m.sub("FixedResponseConfig");
                let code = fc.required("StatusCode")?.to_string();
                if !(code.len() == 3
                    && (code.starts_with('2') || code.starts_with('4') || code.starts_with('5'))
                    && code.bytes().all(|b| b.is_ascii_digit()))
                {
                    return Err(v(format!("Status code '{code}' must be 2XX, 4XX or 5XX")));
                }
                a.fixed = Some(FixedResponse {
                    status_code: code,
                    content_type: fc.get("ContentType").map(str::to_string),
                    message_body: fc.get("MessageBody").map(str::to_string),
                });
            }
            "redirect" => {
                let rc = m.sub("RedirectConfig");
                let code = rc.required("StatusCode")?.to_string();
                if code != "HTTP_301" && code != "HTTP_302" {
                    return Err(v(format!(
                        "Redirect status code '{code}' must be HTTP_301 or HTTP_302"
                    )));
                }
                a.redirect = Some(Redirect {
                    protocol: rc.get("Protocol").map(str::to_string),
                    port: rc.get("Port").map(str::to_string),
                    host: rc.get("Host").map(str::to_string),
                    path: rc.get("Path").map(str::to_string),
                    query: rc.get("Query").map(str::to_string),
                    status_code: code,
                });
            }
            other => return Err(v(format!("Action type '{other}' is not supported"))),
        }
        if lb_kind == "network" && kind != "forward" {
            return Err(Elbv2Error::InvalidConfigurationRequest(format!(
                "Action type '{kind}' is not supported by network load balancers"
            )));
        }
        out.push(a);
    }
    Ok(out)
}

fn write_action(x: &mut Xml, a: &Action) {
    x.text("Type", &a.kind)
        .opt("TargetGroupArn", a.target_group_arn.as_deref());
    if let Some(o) = a.order {
        x.num("Order", o);
    }
    // ELB answers a forward action's target groups in ForwardConfig too.
    if a.kind == "forward" {
        let groups: Vec<WeightedGroup> = match &a.forward {
            Some(f) => f.target_groups.clone(),
            None => a
                .target_group_arn
                .iter()
                .map(|arn| WeightedGroup {
                    arn: arn.clone(),
                    weight: Some(1),
                })
                .collect(),
        };
        let st = a
            .forward
            .as_ref()
            .and_then(|f| f.stickiness.clone())
            .unwrap_or(Stickiness {
                enabled: false,
                duration_seconds: None,
            });
        x.open("ForwardConfig");
        x.members("TargetGroups", &groups, |x, g| {
            x.text("TargetGroupArn", &g.arn)
                .num("Weight", g.weight.unwrap_or(1));
        });
        x.open("TargetGroupStickinessConfig")
            .bool("Enabled", st.enabled);
        if let Some(d) = st.duration_seconds {
            x.num("DurationSeconds", d);
        }
        x.close("TargetGroupStickinessConfig")
            .close("ForwardConfig");
    }
    if let Some(f) = &a.fixed {
        x.open("FixedResponseConfig")
            .opt("MessageBody", f.message_body.as_deref())
            .text("StatusCode", &f.status_code)
            .opt("ContentType", f.content_type.as_deref())
            .close("FixedResponseConfig");
    }
    if let Some(r) = &a.redirect {
        x.open("RedirectConfig")
            .text("Protocol", r.protocol.as_deref().unwrap_or("#{protocol}"))
            .text("Port", r.port.as_deref().unwrap_or("#{port}"))
            .text("Host", r.host.as_deref().unwrap_or("#{host}"))
            .text("Path", r.path.as_deref().unwrap_or("/#{path}"))
            .text("Query", r.query.as_deref().unwrap_or("#{query}"))
            .text("StatusCode", &r.status_code)
            .close("RedirectConfig");
    }
}

const CONDITION_CONFIG: &[(&str, &str)] = &[
    ("path-pattern", "PathPatternConfig"),
    ("host-header", "HostHeaderConfig"),
    ("http-header", "HttpHeaderConfig"),
    ("http-request-method", "HttpRequestMethodConfig"),
    ("query-string", "QueryStringConfig"),
    ("source-ip", "SourceIpConfig"),
];

fn parse_conditions(list: &[Form]) -> Result<Vec<Condition>, Elbv2Error> {
    if list.is_empty() {
        return Err(v("A rule must have at least one condition"));
    }
    let mut out = Vec::new();
    for m in list {
        let field = m.required("Field")?.to_string();
        let Some((_, cfg)) = CONDITION_CONFIG.iter().find(|(f, _)| *f == field) else {
            return Err(v(format!("Condition field '{field}' is not supported")));
        };
        let sub = m.sub(cfg);
        let mut c = Condition {
            field: field.clone(),
            values: m.strings("Values"),
            header_name: None,
            query: Vec::new(),
        };
        match field.as_str() {
            "query-string" => {
                c.query = sub
                    .members("Values")
                    .iter()
                    .map(|kv| {
                        Ok((
                            kv.get("Key").map(str::to_string),
                            kv.required("Value")?.to_string(),
                        ))
                    })
                    .collect::<Result<_, Elbv2Error>>()?;
            }
            "http-header" => {
                c.header_name = Some(sub.required("HttpHeaderName")?.to_string());
                c.values = sub.strings("Values");
            }
            _ => {
                if c.values.is_empty() {
                    c.values = sub.strings("Values");
                }
            }
        }
        if c.values.is_empty() && c.query.is_empty() {
            return Err(v(format!(
                "A condition value must be specified for field '{field}'"
            )));
        }
        if field == "http-request-method"
            && let Some(bad) = c.values.iter().find(|m| {
                !m.bytes()
                    .all(|b| b.is_ascii_uppercase() || b == b'_' || b == b'-')
            })
        {
            return Err(v(format!("HTTP request method '{bad}' is not valid")));
        }
        out.push(c);
    }
    Ok(out)
}

fn write_condition(x: &mut Xml, c: &Condition) {
    x.text("Field", &c.field);
    if matches!(c.field.as_str(), "path-pattern" | "host-header") {
        x.strings("Values", &c.values);
    }
    let Some((_, cfg)) = CONDITION_CONFIG.iter().find(|(f, _)| *f == c.field) else {
        return;
    };
    x.open(cfg);
    match c.field.as_str() {
        "query-string" => {
            x.members("Values", &c.query, |x, (k, val)| {
                x.opt("Key", k.as_deref()).text("Value", val);
            });
        }
        "http-header" => {
            x.opt("HttpHeaderName", c.header_name.as_deref());
            x.strings("Values", &c.values);
        }
        _ => {
            x.strings("Values", &c.values);
        }
    }
    x.close(cfg);
}

// ---- listeners ----

fn create_listener(cx: &Ctx, s: &mut State) -> Result<Listener, Elbv2Error> {
    let f = &cx.f;
    let lb = lb_by_arn(s, f.required("LoadBalancerArn")?)?.clone();
    let port = port(f, "Port")?.ok_or_else(|| v("A listener port must be specified"))?;
    let default_protocol = if lb.kind == "application" {
        "HTTP"
    } else {
        "TCP"
    };
    let protocol = f.get("Protocol").unwrap_or(default_protocol).to_string();
    check_listener_protocol(&lb.kind, &protocol)?;
    let (certificates, ssl_policy) = tls_settings(f, &protocol, None)?;
    let actions = parse_actions(s, &f.members("DefaultActions"), &lb.kind)?;
    if s.listeners
        .iter()
        .any(|l| l.lb_arn == lb.arn && l.port == port)
    {
        return Err(Elbv2Error::DuplicateListener(lb.arn));
    }
    let id = hex_id(&[&lb.arn, "listener", &port.to_string()], cx.now, 16);
    let tail = lb
        .arn
        .split_once(":loadbalancer/")
        .map(|(_, t)| t)
        .unwrap_or_default();
    let l = Listener {
        arn: format!(
            "arn:aws:elasticloadbalancing:{}:{}:listener/{tail}/{id}",
            cx.region, cx.account
        ),
        lb_arn: lb.arn,
        port,
        protocol,
        default_actions: actions,
        certificates,
        ssl_policy,
    };
    s.listeners.push(l.clone());
    Ok(l)
}

fn write_listener(x: &mut Xml, l: &Listener) {
    x.text("ListenerArn", &l.arn)
        .text("LoadBalancerArn", &l.lb_arn)
        .num("Port", l.port)
        .text("Protocol", &l.protocol);
    // DescribeListeners names the default certificate only (without
    // IsDefault); DescribeListenerCertificates lists them all.
    if let Some(default) = l.certificates.first() {
        x.members("Certificates", std::slice::from_ref(default), |x, c| {
            x.text("CertificateArn", c);
        });
    }
    x.opt("SslPolicy", l.ssl_policy.as_deref());
    x.members("DefaultActions", &l.default_actions, write_action);
}

/// The listener protocols each load balancer type accepts.
fn check_listener_protocol(lb_kind: &str, protocol: &str) -> Result<(), Elbv2Error> {
    let allowed: &[&str] = if lb_kind == "application" {
        &["HTTP", "HTTPS"]
    } else {
        &["TCP", "TLS", "UDP", "TCP_UDP"]
    };
    if !allowed.contains(&protocol) {
        return Err(v(format!(
            "Protocol '{protocol}' must be one of '{}'",
            allowed.join(", ")
        )));
    }
    Ok(())
}

/// ELB's default security policy for HTTPS and TLS listeners.
pub const DEFAULT_SSL_POLICY: &str = "ELBSecurityPolicy-2016-08";

/// The predefined security policies ELB knows (`DescribeSSLPolicies`);
/// the data plane maps each to its protocol versions.
const SSL_POLICIES: &[&str] = &[
    "ELBSecurityPolicy-2016-08",
    "ELBSecurityPolicy-TLS-1-0-2015-04",
    "ELBSecurityPolicy-TLS-1-1-2017-01",
    "ELBSecurityPolicy-TLS-1-2-2017-01",
    "ELBSecurityPolicy-TLS-1-2-Ext-2018-06",
    "ELBSecurityPolicy-FS-2018-06",
    "ELBSecurityPolicy-FS-1-1-2019-08",
    "ELBSecurityPolicy-FS-1-2-2019-08",
    "ELBSecurityPolicy-FS-1-2-Res-2019-08",
    "ELBSecurityPolicy-FS-1-2-Res-2020-10",
    "ELBSecurityPolicy-2015-05",
    "ELBSecurityPolicy-TLS13-1-0-2021-06",
    "ELBSecurityPolicy-TLS13-1-1-2021-06",
    "ELBSecurityPolicy-TLS13-1-2-2021-06",
    "ELBSecurityPolicy-TLS13-1-2-Res-2021-06",
    "ELBSecurityPolicy-TLS13-1-2-Ext1-2021-06",
    "ELBSecurityPolicy-TLS13-1-2-Ext2-2021-06",
    "ELBSecurityPolicy-TLS13-1-3-2021-06",
];

/// `Certificates.member.N.CertificateArn` of a request, each checked to be an ARN.
fn certificate_arns(f: &Form) -> Result<Vec<String>, Elbv2Error> {
    f.members("Certificates")
        .iter()
        .map(|m| {
            let arn = m.required("CertificateArn")?;
            if !arn.starts_with("arn:") {
                return Err(Elbv2Error::CertificateNotFound(arn.to_string()));
            }
            Ok(arn.to_string())
        })
        .collect()
}

/// A listener's certificates (the default first) and security policy once
/// `f` is applied to `current` (none for CreateListener). HTTPS and TLS
/// need a certificate; other protocols take neither.
fn tls_settings(
    f: &Form,
    protocol: &str,
    current: Option<&Listener>,
) -> Result<(Vec<String>, Option<String>), Elbv2Error> {
    let given = certificate_arns(f)?;
    let policy = f.get("SslPolicy");
    if protocol != "HTTPS" && protocol != "TLS" {
        if !given.is_empty() {
            return Err(v(format!(
                "A certificate cannot be specified for {protocol} listeners"
            )));
        }
        if policy.is_some() {
            // ELB's own wording, misspelling included.
            return Err(v(format!(
                "An SSL policy cannot be specifed for {protocol} listeners"
            )));
        }
        return Ok((Vec::new(), None));
    }
    if given.len() > 1 {
        return Err(v(
            "A listener can have only one default certificate; add more with AddListenerCertificates",
        ));
    }
    let kept: Vec<String> = current.map(|l| l.certificates.clone()).unwrap_or_default();
    let certificates = match given.into_iter().next() {
        // A new default replaces the old one; the additional certificates stay.
        Some(default) => std::iter::once(default.clone())
            .chain(kept.into_iter().skip(1).filter(|c| *c != default))
            .collect(),
        None if !kept.is_empty() => kept,
        None => {
            return Err(v(format!(
                "A certificate must be specified for {protocol} listeners"
            )));
        }
    };
    let policy = match policy {
        Some(p) if SSL_POLICIES.contains(&p) => p.to_string(),
        Some(p) => return Err(Elbv2Error::SslPolicyNotFound(p.to_string())),
        None => current
            .and_then(|l| l.ssl_policy.clone())
            .unwrap_or_else(|| DEFAULT_SSL_POLICY.to_string()),
    };
    Ok((certificates, Some(policy)))
}

fn modify_listener(cx: &Ctx, s: &mut State) -> Result<Listener, Elbv2Error> {
    let f = &cx.f;
    let arn = f.required("ListenerArn")?.to_string();
    let current = listener_by_arn(s, &arn)?.clone();
    let lb = lb_by_arn(s, &current.lb_arn)?.clone();
    let port = port(f, "Port")?.unwrap_or(current.port);
    let protocol = f.get("Protocol").unwrap_or(&current.protocol).to_string();
    check_listener_protocol(&lb.kind, &protocol)?;
    let (certificates, ssl_policy) = tls_settings(f, &protocol, Some(&current))?;
    let default_actions = if f.has("DefaultActions") {
        parse_actions(s, &f.members("DefaultActions"), &lb.kind)?
    } else {
        current.default_actions.clone()
    };
    if s.listeners
        .iter()
        .any(|l| l.lb_arn == lb.arn && l.port == port && l.arn != arn)
    {
        return Err(Elbv2Error::DuplicateListener(lb.arn));
    }
    let l = listener_mut(s, &arn)?;
    l.port = port;
    l.protocol = protocol;
    l.certificates = certificates;
    l.ssl_policy = ssl_policy;
    l.default_actions = default_actions;
    Ok(l.clone())
}

fn write_certificate(x: &mut Xml, c: &(String, bool)) {
    x.text("CertificateArn", &c.0).bool("IsDefault", c.1);
}

fn describe_listener_certificates(cx: &Ctx, s: &State, x: &mut Xml) -> Result<(), Elbv2Error> {
    let l = listener_by_arn(s, cx.f.required("ListenerArn")?)?;
    let listed: Vec<(String, bool)> = l
        .certificates
        .iter()
        .enumerate()
        .map(|(i, c)| (c.clone(), i == 0))
        .collect();
    let (items, next) = page(&cx.f, &listed)?;
    x.members("Certificates", &items, write_certificate);
    x.opt("NextMarker", next.as_deref());
    Ok(())
}

/// The listener named by ListenerArn and the certificates given to add or
/// remove (at least one).
fn listener_and_certificates<'s>(
    cx: &Ctx,
    s: &'s mut State,
) -> Result<(&'s mut Listener, Vec<String>), Elbv2Error> {
    let arn = cx.f.required("ListenerArn")?;
    let given = certificate_arns(&cx.f)?;
    if given.is_empty() {
        return Err(v("At least one certificate must be specified"));
    }
    Ok((listener_mut(s, arn)?, given))
}

fn add_listener_certificates(cx: &Ctx, s: &mut State) -> Result<Vec<String>, Elbv2Error> {
    let (l, given) = listener_and_certificates(cx, s)?;
    if l.protocol != "HTTPS" && l.protocol != "TLS" {
        return Err(v(format!(
            "Certificates cannot be added to {} listeners",
            l.protocol
        )));
    }
    for c in &given {
        if !l.certificates.iter().skip(1).any(|e| e == c) {
            l.certificates.push(c.clone());
        }
    }
    Ok(given)
}

fn remove_listener_certificates(cx: &Ctx, s: &mut State) -> Result<(), Elbv2Error> {
    let (l, given) = listener_and_certificates(cx, s)?;
    if l.certificates.first().is_some_and(|d| given.contains(d)) {
        return Err(Elbv2Error::OperationNotPermitted(
            "The default certificate cannot be removed from a listener; replace it with ModifyListener".into(),
        ));
    }
    let default = l.certificates.first().cloned();
    let rest: Vec<String> = l
        .certificates
        .iter()
        .skip(1)
        .filter(|c| !given.contains(c))
        .cloned()
        .collect();
    l.certificates = default.into_iter().chain(rest).collect();
    Ok(())
}

fn describe_listeners(cx: &Ctx, s: &State, x: &mut Xml) -> Result<(), Elbv2Error> {
    let arns = cx.f.strings("ListenerArns");
    let found: Vec<Listener> = if !arns.is_empty() {
        arns.iter()
            .map(|a| listener_by_arn(s, a).cloned())
            .collect::<Result<_, _>>()?
    } else if let Some(lb) = cx.f.get("LoadBalancerArn") {
        lb_by_arn(s, lb)?;
        s.listeners
            .iter()
            .filter(|l| l.lb_arn == lb)
            .cloned()
            .collect()
    } else {
        return Err(v(
            "You must specify either listener ARNs or a load balancer ARN",
        ));
    };
    let (items, next) = page(&cx.f, &found)?;
    x.members("Listeners", &items, write_listener);
    x.opt("NextMarker", next.as_deref());
    Ok(())
}

fn delete_listener(cx: &Ctx, s: &mut State) -> Result<(), Elbv2Error> {
    let arn = cx.f.required("ListenerArn")?.to_string();
    listener_by_arn(s, &arn)?;
    s.rules.retain(|r| r.listener_arn != arn);
    s.listeners.retain(|l| l.arn != arn);
    Ok(())
}

// ---- rules ----

enum RuleView {
    Rule(Rule),
    Default(Listener),
}

impl Clone for RuleView {
    fn clone(&self) -> Self {
        match self {
            RuleView::Rule(r) => RuleView::Rule(r.clone()),
            RuleView::Default(l) => RuleView::Default(l.clone()),
        }
    }
}

/// The default rule's ARN: the listener's, as a listener-rule, ending in a
/// fixed id so it is stable without being stored.
fn default_rule_arn(listener_arn: &str) -> String {
    format!(
        "{}/0000000000000000",
        listener_arn.replacen(":listener/", ":listener-rule/", 1)
    )
}

fn write_rule(x: &mut Xml, r: &RuleView) {
    match r {
        RuleView::Rule(r) => {
            x.text("RuleArn", &r.arn)
                .text("Priority", &r.priority.to_string());
            x.members("Conditions", &r.conditions, write_condition);
            x.members("Actions", &r.actions, write_action);
            x.bool("IsDefault", false);
        }
        RuleView::Default(l) => {
            x.text("RuleArn", &default_rule_arn(&l.arn))
                .text("Priority", "default");
            x.members::<Condition>("Conditions", &[], write_condition);
            x.members("Actions", &l.default_actions, write_action);
            x.bool("IsDefault", true);
        }
    }
}

fn priority(f: &Form, key: &str) -> Result<u32, Elbv2Error> {
    let p = f.required(key)?;
    match p.parse::<i64>() {
        Ok(n) if (1..=50000).contains(&n) => Ok(n as u32),
        Ok(n) if n < 1 => Err(v(format!(
            "1 validation error detected: Value '{n}' at 'priority' failed to satisfy constraint: Member must have value greater than or equal to 1"
        ))),
        Ok(n) => Err(v(format!(
            "1 validation error detected: Value '{n}' at 'priority' failed to satisfy constraint: Member must have value less than or equal to 50000"
        ))),
        Err(_) => Err(v(format!("'{p}' is not a valid priority"))),
    }
}

fn create_rule(cx: &Ctx, s: &mut State) -> Result<Rule, Elbv2Error> {
    let f = &cx.f;
    let listener = listener_by_arn(s, f.required("ListenerArn")?)?.clone();
    let prio = priority(f, "Priority")?;
    let lb = lb_by_arn(s, &listener.lb_arn)?;
    if lb.kind != "application" {
        return Err(Elbv2Error::InvalidConfigurationRequest(
            "Rules are supported only by application load balancers".into(),
        ));
    }
    let conditions = parse_conditions(&f.members("Conditions"))?;
    let actions = parse_actions(s, &f.members("Actions"), "application")?;
    if s.rules
        .iter()
        .any(|r| r.listener_arn == listener.arn && r.priority == prio)
    {
        return Err(Elbv2Error::PriorityInUse(prio));
    }
    let id = hex_id(&[&listener.arn, "rule", &prio.to_string()], cx.now, 16);
    let rule = Rule {
        arn: format!(
            "{}/{id}",
            listener.arn.replacen(":listener/", ":listener-rule/", 1)
        ),
        listener_arn: listener.arn,
        priority: prio,
        conditions,
        actions,
        tags: parse_tags(f)?,
    };
    s.rules.push(rule.clone());
    Ok(rule)
}

fn describe_rules(cx: &Ctx, s: &State, x: &mut Xml) -> Result<(), Elbv2Error> {
    let arns = cx.f.strings("RuleArns");
    let mut found: Vec<RuleView> = Vec::new();
    if !arns.is_empty() {
        for a in &arns {
            if let Some(r) = s.rules.iter().find(|r| &r.arn == a) {
                found.push(RuleView::Rule(r.clone()));
            } else if let Some(l) = s.listeners.iter().find(|l| &default_rule_arn(&l.arn) == a) {
                found.push(RuleView::Default(l.clone()));
            } else {
                return Err(Elbv2Error::RuleNotFound);
            }
        }
    } else if let Some(l) = cx.f.get("ListenerArn") {
        let l = listener_by_arn(s, l)?;
        let mut rules: Vec<&Rule> = s.rules.iter().filter(|r| r.listener_arn == l.arn).collect();
        rules.sort_by_key(|r| r.priority);
        found.extend(rules.into_iter().map(|r| RuleView::Rule(r.clone())));
        found.push(RuleView::Default(l.clone()));
    } else {
        return Err(v("You must specify either listener ARNs or rule ARNs"));
    }
    let (items, next) = page(&cx.f, &found)?;
    x.members("Rules", &items, write_rule);
    x.opt("NextMarker", next.as_deref());
    Ok(())
}

fn delete_rule(cx: &Ctx, s: &mut State) -> Result<(), Elbv2Error> {
    let arn = cx.f.required("RuleArn")?.to_string();
    if s.listeners.iter().any(|l| default_rule_arn(&l.arn) == arn) {
        return Err(Elbv2Error::InvalidConfigurationRequest(
            "Default rules cannot be deleted".into(),
        ));
    }
    if !s.rules.iter().any(|r| r.arn == arn) {
        return Err(Elbv2Error::RuleNotFound);
    }
    s.rules.retain(|r| r.arn != arn);
    Ok(())
}

/// ModifyRule: new conditions and/or actions. The default rule takes
/// actions only (they become its listener's default actions).
fn modify_rule(cx: &Ctx, s: &mut State) -> Result<RuleView, Elbv2Error> {
    let f = &cx.f;
    let arn = f.required("RuleArn")?.to_string();
    if let Some(l) = s.listeners.iter().find(|l| default_rule_arn(&l.arn) == arn) {
        let l = l.clone();
        if f.has("Conditions") {
            return Err(Elbv2Error::OperationNotPermitted(
                "The conditions of a default rule cannot be modified".into(),
            ));
        }
        let kind = lb_by_arn(s, &l.lb_arn)?.kind.clone();
        let actions = if f.has("Actions") {
            Some(parse_actions(s, &f.members("Actions"), &kind)?)
        } else {
            None
        };
        let l = listener_mut(s, &l.arn)?;
        if let Some(a) = actions {
            l.default_actions = a;
        }
        return Ok(RuleView::Default(l.clone()));
    }
    if !s.rules.iter().any(|r| r.arn == arn) {
        return Err(Elbv2Error::RuleNotFound);
    }
    let conditions = if f.has("Conditions") {
        Some(parse_conditions(&f.members("Conditions"))?)
    } else {
        None
    };
    let actions = if f.has("Actions") {
        Some(parse_actions(s, &f.members("Actions"), "application")?)
    } else {
        None
    };
    let r = s
        .rules
        .iter_mut()
        .find(|r| r.arn == arn)
        .ok_or(Elbv2Error::RuleNotFound)?;
    if let Some(c) = conditions {
        r.conditions = c;
    }
    if let Some(a) = actions {
        r.actions = a;
    }
    Ok(RuleView::Rule(r.clone()))
}

fn set_priorities(cx: &Ctx, s: &mut State) -> Result<Vec<Rule>, Elbv2Error> {
    let mut changes = Vec::new();
    for m in cx.f.members("RulePriorities") {
        let arn = m.required("RuleArn")?.to_string();
        let p = priority(&m, "Priority")?;
        if !s.rules.iter().any(|r| r.arn == arn) {
            return Err(Elbv2Error::RuleNotFound);
        }
        changes.push((arn, p));
    }
    for (arn, p) in &changes {
        if let Some(r) = s.rules.iter_mut().find(|r| &r.arn == arn) {
            r.priority = *p;
        }
    }
    // After all moves, each listener's priorities must be unique (swaps are allowed).
    let mut seen = std::collections::BTreeSet::new();
    for r in &s.rules {
        if !seen.insert((r.listener_arn.clone(), r.priority)) {
            return Err(Elbv2Error::PriorityInUse(r.priority));
        }
    }
    Ok(changes
        .iter()
        .filter_map(|(arn, _)| s.rules.iter().find(|r| &r.arn == arn).cloned())
        .collect())
}

// ---- targets ----

fn parse_targets(f: &Form, tg: &TargetGroup) -> Result<Vec<Target>, Elbv2Error> {
    let list = f.members("Targets");
    if list.is_empty() {
        return Err(v("At least one target must be specified"));
    }
    list.iter()
        .map(|t| {
            let id = t.required("Id")?.to_string();
            let ok = match tg.target_type.as_str() {
                "instance" => id.starts_with("i-") || id.starts_with("arn:"),
                _ => id.parse::<std::net::IpAddr>().is_ok(),
            };
            if !ok {
                return Err(Elbv2Error::InvalidTarget(format!(
                    "The following targets are not valid for target type '{}': {id}",
                    tg.target_type
                )));
            }
            Ok(Target {
                id,
                port: port(t, "Port")?.unwrap_or(tg.port),
                availability_zone: t.get("AvailabilityZone").map(str::to_string),
                draining_since_ms: None,
            })
        })
        .collect()
}

/// RegisterTargets (`add`) and DeregisterTargets. Deregistering a target
/// of a group in use with a deregistration delay above zero leaves it
/// draining (connections in flight may finish; readers drop it once the
/// delay has passed, see [`is_expired`]); registering a draining target
/// again makes it a full member at once.
fn register(cx: &Ctx, s: &mut State, add: bool) -> Result<(), Elbv2Error> {
    let arn = cx.f.required("TargetGroupArn")?.to_string();
    let now_ms = epoch_ms(cx.now);
    let used = in_use(s, &arn);
    let tg = s
        .target_groups
        .iter_mut()
        .find(|t| t.arn == arn)
        .ok_or(Elbv2Error::TargetGroupNotFound)?;
    let targets = parse_targets(&cx.f, tg)?;
    let delay = deregistration_delay_ms(tg);
    let drains = used && delay > 0;
    for t in targets {
        let same = |e: &Target| e.id == t.id && e.port == t.port;
        let live = |e: &Target| same(e) && !expired_after(e, delay, now_ms);
        if add {
            match tg.targets.iter_mut().find(|e| same(e)) {
                Some(e) => e.draining_since_ms = None,
                None => tg.targets.push(t),
            }
        } else if tg.targets.iter().any(live) {
            if drains {
                for e in tg.targets.iter_mut().filter(|e| same(e)) {
                    // Deregistering again does not restart the delay.
                    e.draining_since_ms.get_or_insert(now_ms);
                }
            } else {
                tg.targets.retain(|e| !same(e));
            }
        } else {
            return Err(Elbv2Error::InvalidTarget(format!(
                "The following targets are not registered in target group '{arn}': '{}'",
                t.id
            )));
        }
    }
    Ok(())
}

fn describe_health(
    cx: &Ctx,
    s: &State,
    health: &HealthRecord,
    x: &mut Xml,
) -> Result<(), Elbv2Error> {
    let tg = tg_by_arn(s, cx.f.required("TargetGroupArn")?)?;
    let now_ms = epoch_ms(cx.now);
    let asked = if cx.f.has("Targets") {
        parse_targets(&cx.f, tg)?
    } else {
        tg.targets
            .iter()
            .filter(|t| !is_expired(t, tg, now_ms))
            .cloned()
            .collect()
    };
    x.members("TargetHealthDescriptions", &asked, |x, t| {
        let h = target_health(s, health, tg, &t.id, t.port, now_ms);
        x.open("Target")
            .text("Id", &t.id)
            .num("Port", t.port)
            .opt("AvailabilityZone", t.availability_zone.as_deref())
            .close("Target");
        let hc_port = if tg.health.port == "traffic-port" {
            t.port.to_string()
        } else {
            tg.health.port.clone()
        };
        x.text("HealthCheckPort", &hc_port);
        x.open("TargetHealth")
            .text("State", &h.state)
            .opt("Reason", h.reason.as_deref())
            .opt("Description", h.description.as_deref())
            .close("TargetHealth");
    });
    Ok(())
}

// ---- attributes ----

fn attributes(cx: &Ctx, s: &State, tg: bool) -> Result<BTreeMap<String, String>, Elbv2Error> {
    if tg {
        Ok(tg_by_arn(s, cx.f.required("TargetGroupArn")?)?
            .attributes
            .clone())
    } else {
        Ok(lb_by_arn(s, cx.f.required("LoadBalancerArn")?)?
            .attributes
            .clone())
    }
}

/// Is `key=value` an attribute this resource takes? `http_group` is
/// `Some(true)` for an HTTP/HTTPS target group, `Some(false)` for another
/// target group, `None` for a load balancer.
fn check_attribute(
    key: &str,
    value: &str,
    known: &BTreeMap<String, String>,
    http_group: Option<bool>,
) -> Result<(), Elbv2Error> {
    let int_in = |lo: i64, hi: i64| value.parse::<i64>().is_ok_and(|n| (lo..=hi).contains(&n));
    let ok = match key {
        "deregistration_delay.timeout_seconds" => int_in(0, 3600),
        "slow_start.duration_seconds" => value == "0" || int_in(30, 900),
        "stickiness.lb_cookie.duration_seconds" | "stickiness.app_cookie.duration_seconds" => {
            int_in(1, 604_800)
        }
        // A cookie name (RFC 6265 token) that is not one of ELB's own.
        "stickiness.app_cookie.cookie_name" => {
            value.len() <= 255
                && !value.starts_with("AWSALB")
                && value.bytes().all(|b| {
                    b.is_ascii_graphic() && !b"()<>@,;:\\\"/[]?={}".contains(&b)
                })
        }
        "idle_timeout.timeout_seconds" => int_in(1, 4000),
        "stickiness.enabled"
        | "deletion_protection.enabled"
        | "routing.http2.enabled"
        | "load_balancing.cross_zone.enabled" => value == "true" || value == "false",
        "stickiness.type" => match http_group {
            Some(true) => ["lb_cookie", "app_cookie"].contains(&value),
            _ => value == "source_ip",
        },
        "load_balancing.algorithm.type" => {
            ["round_robin", "least_outstanding_requests"].contains(&value)
        }
        _ => {
            return Err(v(format!("Attribute key '{key}' is not recognized")));
        }
    };
    if !known.contains_key(key) {
        return Err(v(format!("Attribute key '{key}' is not recognized")));
    }
    if !ok {
        return Err(v(format!(
            "'{value}' is not a valid value for attribute '{key}'"
        )));
    }
    Ok(())
}

fn modify_attributes(
    cx: &Ctx,
    s: &mut State,
    tg: bool,
) -> Result<BTreeMap<String, String>, Elbv2Error> {
    let mut http_group = None;
    let attrs = if tg {
        let arn = cx.f.required("TargetGroupArn")?;
        let group = s
            .target_groups
            .iter_mut()
            .find(|t| t.arn == arn)
            .ok_or(Elbv2Error::TargetGroupNotFound)?;
        http_group = Some(group.protocol == "HTTP" || group.protocol == "HTTPS");
        &mut group.attributes
    } else {
        let arn = cx.f.required("LoadBalancerArn")?;
        &mut s
            .load_balancers
            .iter_mut()
            .find(|l| l.arn == arn)
            .ok_or(Elbv2Error::LoadBalancerNotFound)?
            .attributes
    };
    let list = cx.f.members("Attributes");
    if list.is_empty() {
        return Err(v("At least one attribute must be specified"));
    }
    let mut changed = BTreeMap::new();
    for a in &list {
        let key = a.required("Key")?.to_string();
        let value = a.required("Value")?.to_string();
        check_attribute(&key, &value, attrs, http_group)?;
        changed.insert(key, value);
    }
    attrs.extend(changed);
    Ok(attrs.clone())
}

fn write_attrs(x: &mut Xml, attrs: &BTreeMap<String, String>) {
    let pairs: Vec<(&String, &String)> = attrs.iter().collect();
    x.members("Attributes", &pairs, |x, (k, val)| {
        x.text("Key", k).text("Value", val);
    });
}

// ---- tags ----

fn parse_tags(f: &Form) -> Result<Tags, Elbv2Error> {
    let tags: Tags = f
        .members("Tags")
        .iter()
        .map(|t| {
            Ok((
                t.required("Key")?.to_string(),
                t.get("Value").unwrap_or("").to_string(),
            ))
        })
        .collect::<Result<_, Elbv2Error>>()?;
    if tags.len() > 50 {
        return Err(Elbv2Error::TooManyTags);
    }
    Ok(tags)
}

fn tags_of<'s>(s: &'s mut State, arn: &str) -> Result<&'s mut Tags, Elbv2Error> {
    if let Some(l) = s.load_balancers.iter_mut().find(|l| l.arn == arn) {
        return Ok(&mut l.tags);
    }
    if let Some(t) = s.target_groups.iter_mut().find(|t| t.arn == arn) {
        return Ok(&mut t.tags);
    }
    if let Some(r) = s.rules.iter_mut().find(|r| r.arn == arn) {
        return Ok(&mut r.tags);
    }
    Err(if arn.contains(":targetgroup/") {
        Elbv2Error::TargetGroupNotFound
    } else if arn.contains(":listener-rule/") {
        Elbv2Error::RuleNotFound
    } else if arn.contains(":listener/") {
        Elbv2Error::ListenerNotFound
    } else {
        Elbv2Error::LoadBalancerNotFound
    })
}

fn tags(cx: &Ctx, s: &mut State, add: bool) -> Result<(), Elbv2Error> {
    let arns = cx.f.strings("ResourceArns");
    if arns.is_empty() {
        return Err(v("At least one resource ARN must be specified"));
    }
    let new = if add { parse_tags(&cx.f)? } else { Vec::new() };
    let keys = cx.f.strings("TagKeys");
    for arn in &arns {
        // Listeners keep no tags yet: removing is a no-op, adding is refused.
        if s.listeners.iter().any(|l| &l.arn == arn) {
            if add {
                return Err(Elbv2Error::InvalidConfigurationRequest(
                    "Berth does not keep tags on listeners yet".into(),
                ));
            }
            continue;
        }
        let tags = tags_of(s, arn)?;
        if add {
            for (k, val) in &new {
                match tags.iter_mut().find(|(e, _)| e == k) {
                    Some(t) => t.1 = val.clone(),
                    None => tags.push((k.clone(), val.clone())),
                }
            }
            if tags.len() > 50 {
                return Err(Elbv2Error::TooManyTags);
            }
        } else {
            tags.retain(|(k, _)| !keys.contains(k));
        }
    }
    Ok(())
}

fn describe_tags(cx: &Ctx, s: &State, x: &mut Xml) -> Result<(), Elbv2Error> {
    let arns = cx.f.strings("ResourceArns");
    let mut s = s.clone();
    let mut out = Vec::new();
    for arn in &arns {
        if s.listeners.iter().any(|l| &l.arn == arn) {
            // Listeners keep no tags yet (see `tags`).
            out.push((arn.clone(), Vec::new()));
            continue;
        }
        out.push((arn.clone(), tags_of(&mut s, arn)?.clone()));
    }
    x.members("TagDescriptions", &out, |x, (arn, tags)| {
        x.text("ResourceArn", arn);
        x.members("Tags", tags, |x, (k, val)| {
            x.text("Key", k).text("Value", val);
        });
    });
    Ok(())
}
