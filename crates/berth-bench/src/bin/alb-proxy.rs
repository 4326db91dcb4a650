//! `alb-proxy`: Berth's ALB data plane alone, for bench/lb.py-style runs
//! without the API server: one HTTP listener on 127.0.0.1 whose default
//! rule forwards to one `ip` target (the backend), marked healthy. Same
//! runtime as `berth server` (tokio multi-thread, one worker per core).
//!
//!   alb-proxy --backend 127.0.0.1:PORT [--listen 127.0.0.1:0]
//!   # prints `ready 127.0.0.1:PORT`

use berth_elbv2::model::HealthCheck;
use berth_lb::snapshot::{
    ActionConfig, Algorithm, LbKind, ListenerConfig, ListenerProtocol, RuleConfig, Snapshot,
    TargetConfig, TargetGroupConfig,
};
use berth_lb::{DataPlane, TargetState, alb};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

const LISTENER: &str = "arn:aws:elasticloadbalancing:us-east-1:123456789012:listener/app/bench/0123456789abcdef/0123456789abcdef";
const LB: &str =
    "arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/app/bench/0123456789abcdef";
const GROUP: &str =
    "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/bench-tg/0123456789abcdef";

fn parse_args() -> Result<(SocketAddr, SocketAddr), String> {
    let mut listen: SocketAddr = "127.0.0.1:0".parse().expect("default address");
    let mut backend: Option<SocketAddr> = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let (name, value) = match arg.split_once('=') {
            Some((n, v)) => (n.to_string(), v.to_string()),
            None if arg == "-h" || arg == "--help" => {
                println!("usage: alb-proxy --backend ADDR [--listen ADDR]   (prints `ready ADDR`)");
                std::process::exit(0);
            }
            None => (
                arg.clone(),
                args.next().ok_or(format!("{arg} needs an address"))?,
            ),
        };
        let addr: SocketAddr = value
            .parse()
            .map_err(|e| format!("bad {name} {value:?}: {e}"))?;
        match name.as_str() {
            "--listen" => listen = addr,
            "--backend" => backend = Some(addr),
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    Ok((listen, backend.ok_or("--backend is required")?))
}

fn snapshot(port: u16, backend: SocketAddr) -> Snapshot {
    let group = TargetGroupConfig {
        arn: GROUP.into(),
        protocol: "HTTP".into(),
        port: backend.port(),
        target_type: "ip".into(),
        health_check: HealthCheck::defaults("HTTP"),
        targets: vec![TargetConfig {
            id: backend.ip().to_string(),
            port: backend.port(),
            addr: Some(backend),
            draining_since_ms: None,
        }],
        deregistration_delay: Duration::from_secs(300),
        slow_start: Duration::ZERO,
        algorithm: Algorithm::RoundRobin,
        stickiness: None,
    };
    let listener = ListenerConfig {
        arn: LISTENER.into(),
        lb_arn: LB.into(),
        lb_kind: LbKind::Application,
        protocol: ListenerProtocol::Http,
        port,
        certificates: vec![],
        idle_timeout: Duration::from_secs(60),
        http2: true,
        rules: vec![RuleConfig {
            arn: format!("{LISTENER}-default"),
            priority: None,
            conditions: vec![],
            action: ActionConfig::Forward {
                groups: vec![(GROUP.into(), 1)],
                group_stickiness: None,
            },
        }],
    };
    Snapshot {
        listeners: vec![Arc::new(listener)],
        target_groups: [(GROUP.to_string(), Arc::new(group))].into_iter().collect(),
    }
}

fn main() {
    let (listen, backend) = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("alb-proxy: {e}");
            std::process::exit(2);
        }
    };
    // ALB_PROXY_RUNTIME=current: one current-thread runtime (experiments).
    let runtime = match std::env::var("ALB_PROXY_RUNTIME").as_deref() {
        Ok("current") => tokio::runtime::Builder::new_current_thread(),
        _ => tokio::runtime::Builder::new_multi_thread(),
    }
    .enable_all()
    .build()
    .expect("tokio runtime");
    runtime.block_on(async move {
        let (listener, addr) = berth_bench::bind_or_exit("alb-proxy", listen).await;
        let snap = snapshot(addr.port(), backend);
        let plane = DataPlane::new(snap.clone());
        for g in snap.target_groups.values() {
            for t in &g.targets {
                plane
                    .health
                    .set(g.key(t), TargetState::Healthy, Instant::now());
            }
        }
        let (_stop, stop_rx) = tokio::sync::watch::channel(false);
        berth_bench::print_ready(addr);
        alb::serve(listener, LISTENER.to_string(), plane, None, stop_rx).await;
    });
}
