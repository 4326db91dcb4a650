//! The immutable configuration traffic is served from, built from one or
//! more ELBv2 state records. Pure: no I/O, so every rule about what the
//! records mean is tested without sockets.

use berth_elbv2::model::{self, Condition, HealthCheck, Redirect, State};
use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

/// Resolves a target id to the address traffic and health checks dial:
/// an `ip` target is its own address; an `instance` target (an EC2 instance
/// id a container instance registered with) needs the host's address.
pub trait AddressResolver: Send + Sync {
    fn instance_address(&self, instance_id: &str) -> Option<IpAddr>;
}

/// Resolves no instance: only `ip` targets get addresses.
pub struct NoInstances;

impl AddressResolver for NoInstances {
    fn instance_address(&self, _: &str) -> Option<IpAddr> {
        None
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LbKind {
    Application,
    Network,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ListenerProtocol {
    Http,
    Https,
    Tcp,
    Udp,
    TcpUdp,
    Tls,
}

impl ListenerProtocol {
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "HTTP" => Self::Http,
            "HTTPS" => Self::Https,
            "TCP" => Self::Tcp,
            "UDP" => Self::Udp,
            "TCP_UDP" => Self::TcpUdp,
            "TLS" => Self::Tls,
            _ => return None,
        })
    }

    pub fn uses_tcp(self) -> bool {
        !matches!(self, Self::Udp)
    }

    pub fn uses_udp(self) -> bool {
        matches!(self, Self::Udp | Self::TcpUdp)
    }
}

#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    /// Sorted by port, then protocol.
    pub listeners: Vec<Arc<ListenerConfig>>,
    pub target_groups: HashMap<String, Arc<TargetGroupConfig>>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ListenerConfig {
    pub arn: String,
    pub lb_arn: String,
    pub lb_kind: LbKind,
    pub protocol: ListenerProtocol,
    pub port: u16,
    /// HTTPS/TLS: certificate ARNs, the first the default.
    pub certificates: Vec<String>,
    /// The load balancer's `idle_timeout.timeout_seconds` (default 60).
    pub idle_timeout: Duration,
    /// Whether the load balancer's `routing.http2.enabled` allows HTTP/2
    /// from clients (default true).
    pub http2: bool,
    /// By ascending priority; the default rule (no conditions) last.
    pub rules: Vec<RuleConfig>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct RuleConfig {
    pub arn: String,
    /// `None` for the listener's default rule.
    pub priority: Option<u32>,
    pub conditions: Vec<Condition>,
    pub action: ActionConfig,
}

#[derive(Debug, Clone, PartialEq)]
pub enum ActionConfig {
    Forward {
        /// (target group ARN, weight); weights as given (default 1).
        groups: Vec<(String, u32)>,
        /// Group stickiness: requests of one client stay on one group for
        /// this long.
        group_stickiness: Option<Duration>,
    },
    FixedResponse {
        status: u16,
        content_type: Option<String>,
        body: Option<String>,
    },
    Redirect(Redirect),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    RoundRobin,
    LeastOutstandingRequests,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TargetStickiness {
    /// The load balancer's own cookie (`AWSALB`).
    LbCookie { duration: Duration },
    /// Follows an application cookie of this name (`AWSALBAPP-*`).
    AppCookie { cookie_name: String, duration: Duration },
    /// NLB: by client address.
    SourceIp,
}

#[derive(Debug, Clone, PartialEq)]
pub struct TargetGroupConfig {
    pub arn: String,
    pub protocol: String,
    pub port: u16,
    pub target_type: String,
    pub health_check: HealthCheck,
    pub targets: Vec<TargetConfig>,
    pub deregistration_delay: Duration,
    pub slow_start: Duration,
    pub algorithm: Algorithm,
    pub stickiness: Option<TargetStickiness>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetConfig {
    pub id: String,
    pub port: u16,
    /// Where traffic goes; `None` when an instance id resolves to no host
    /// (the target is then never routed to).
    pub addr: Option<SocketAddr>,
    /// Deregistered, draining since (ms since the Unix epoch).
    pub draining_since_ms: Option<u64>,
}

impl TargetGroupConfig {
    pub fn key(&self, target: &TargetConfig) -> crate::TargetKey {
        crate::TargetKey { target_group_arn: self.arn.clone(), id: target.id.clone(), port: target.port }
    }
}

fn seconds(attrs: &BTreeMap<String, String>, key: &str, default: u64) -> Duration {
    Duration::from_secs(attrs.get(key).and_then(|v| v.parse().ok()).unwrap_or(default))
}

fn flag(attrs: &BTreeMap<String, String>, key: &str, default: bool) -> bool {
    attrs.get(key).map_or(default, |v| v == "true")
}

fn action_config(a: &model::Action) -> Option<ActionConfig> {
    match a.kind.as_str() {
        "forward" => {
            let mut groups: Vec<(String, u32)> = Vec::new();
            if let Some(f) = &a.forward {
                groups.extend(f.target_groups.iter().map(|w| (w.arn.clone(), w.weight.unwrap_or(1))));
            }
            if groups.is_empty() {
                groups.extend(a.target_group_arn.iter().map(|arn| (arn.clone(), 1)));
            }
            let group_stickiness = a
                .forward
                .as_ref()
                .and_then(|f| f.stickiness.as_ref())
                .filter(|s| s.enabled)
                .map(|s| Duration::from_secs(u64::from(s.duration_seconds.unwrap_or(3600))));
            Some(ActionConfig::Forward { groups, group_stickiness })
        }
        "fixed-response" => a.fixed.as_ref().map(|f| ActionConfig::FixedResponse {
            status: f.status_code.parse().unwrap_or(200),
            content_type: f.content_type.clone(),
            body: f.message_body.clone(),
        }),
        "redirect" => a.redirect.clone().map(ActionConfig::Redirect),
        _ => None,
    }
}

/// The terminal action of an action list (ELB orders by `Order`; the last
/// one is the one that answers — authenticate actions, the only ones that
/// may precede it, are not supported).
fn terminal_action(actions: &[model::Action]) -> Option<ActionConfig> {
    let mut sorted: Vec<&model::Action> = actions.iter().collect();
    sorted.sort_by_key(|a| a.order.unwrap_or(u32::MAX));
    sorted.last().and_then(|a| action_config(a))
}

impl Snapshot {
    /// Build from the state records of every (account, region).
    pub fn build<'a>(states: impl IntoIterator<Item = &'a State>, resolver: &dyn AddressResolver) -> Snapshot {
        let mut snap = Snapshot::default();
        for state in states {
            snap.add(state, resolver);
        }
        snap.listeners.sort_by_key(|l| (l.port, l.protocol as u8));
        snap
    }

    fn add(&mut self, state: &State, resolver: &dyn AddressResolver) {
        for tg in &state.target_groups {
            let attrs = &tg.attributes;
            let stickiness = flag(attrs, "stickiness.enabled", false).then(|| {
                match attrs.get("stickiness.type").map(String::as_str).unwrap_or("lb_cookie") {
                    "source_ip" => TargetStickiness::SourceIp,
                    "app_cookie" => TargetStickiness::AppCookie {
                        cookie_name: attrs.get("stickiness.app_cookie.cookie_name").cloned().unwrap_or_default(),
                        duration: seconds(attrs, "stickiness.app_cookie.duration_seconds", 86_400),
                    },
                    _ => TargetStickiness::LbCookie { duration: seconds(attrs, "stickiness.lb_cookie.duration_seconds", 86_400) },
                }
            });
            let targets = tg
                .targets
                .iter()
                .map(|t| {
                    let ip = match tg.target_type.as_str() {
                        "instance" => resolver.instance_address(&t.id),
                        _ => t.id.parse::<IpAddr>().ok(),
                    };
                    TargetConfig {
                        id: t.id.clone(),
                        port: t.port,
                        addr: ip.map(|ip| SocketAddr::new(ip, t.port)),
                        draining_since_ms: t.draining_since_ms,
                    }
                })
                .collect();
            let algorithm = match attrs.get("load_balancing.algorithm.type").map(String::as_str) {
                Some("least_outstanding_requests") => Algorithm::LeastOutstandingRequests,
                _ => Algorithm::RoundRobin,
            };
            self.target_groups.insert(
                tg.arn.clone(),
                Arc::new(TargetGroupConfig {
                    arn: tg.arn.clone(),
                    protocol: tg.protocol.clone(),
                    port: tg.port,
                    target_type: tg.target_type.clone(),
                    health_check: tg.health.clone(),
                    targets,
                    deregistration_delay: seconds(attrs, "deregistration_delay.timeout_seconds", 300),
                    slow_start: seconds(attrs, "slow_start.duration_seconds", 0),
                    algorithm,
                    stickiness,
                }),
            );
        }
        for l in &state.listeners {
            let Some(lb) = state.load_balancers.iter().find(|lb| lb.arn == l.lb_arn) else { continue };
            let Some(protocol) = ListenerProtocol::parse(&l.protocol) else { continue };
            let lb_kind = if lb.kind == "network" { LbKind::Network } else { LbKind::Application };
            let mut rules: Vec<RuleConfig> = state
                .rules
                .iter()
                .filter(|r| r.listener_arn == l.arn)
                .filter_map(|r| {
                    Some(RuleConfig {
                        arn: r.arn.clone(),
                        priority: Some(r.priority),
                        conditions: r.conditions.clone(),
                        action: terminal_action(&r.actions)?,
                    })
                })
                .collect();
            rules.sort_by_key(|r| r.priority);
            if let Some(action) = terminal_action(&l.default_actions) {
                rules.push(RuleConfig { arn: format!("{}/0000000000000000", l.arn.replacen(":listener/", ":listener-rule/", 1)), priority: None, conditions: Vec::new(), action });
            }
            self.listeners.push(Arc::new(ListenerConfig {
                arn: l.arn.clone(),
                lb_arn: l.lb_arn.clone(),
                lb_kind,
                protocol,
                port: l.port,
                certificates: l.certificates.clone(),
                idle_timeout: seconds(&lb.attributes, "idle_timeout.timeout_seconds", 60),
                http2: flag(&lb.attributes, "routing.http2.enabled", true),
                rules,
            }));
        }
    }

    pub fn target_group(&self, arn: &str) -> Option<&Arc<TargetGroupConfig>> {
        self.target_groups.get(arn)
    }
}
