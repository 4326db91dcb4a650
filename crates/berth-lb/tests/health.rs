//! Health checks against real backends on 127.0.0.1, over records made
//! through the ELBv2 API in a MemoryStore.
//!
//! The API allows intervals of 5 s and more; to keep the tests short the
//! group's interval and timeout are then set to 1 s directly in the stored
//! record (the checker takes any interval from the configuration).

mod common;

use berth_elbv2::model::{self, HealthRecord};
use berth_lb::health::{self, Probe, Tracker, matcher_accepts};
use berth_lb::{DataPlane, TargetState};
use berth_store::Store;
use common::{Env, acm, eventually, free_port, key, make_cert, read_head, serve_each, text};
use std::sync::Arc;
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;
use tokio::sync::watch;

impl Env {
    /// A load balancer with a listener forwarding to a new `ip` target
    /// group `name` of `protocol` with `extra` parameters (an application
    /// load balancer for HTTP groups, a network one otherwise); health
    /// checks of every group then run every second with a 1 s timeout.
    async fn group(&self, protocol: &str, extra: &[(&str, &str)]) -> String {
        self.named_group("tg", protocol, extra).await
    }

    async fn named_group(&self, name: &str, protocol: &str, extra: &[(&str, &str)]) -> String {
        let http = protocol == "HTTP" || protocol == "HTTPS";
        let lb = self
            .lb(
                &format!("lb-{name}"),
                if http { "application" } else { "network" },
            )
            .await;
        let mut params = vec![
            ("Name", name),
            ("Protocol", protocol),
            ("Port", "80"),
            ("VpcId", "vpc-1"),
            ("TargetType", "ip"),
            ("HealthyThresholdCount", "2"),
            ("UnhealthyThresholdCount", "2"),
        ];
        params.extend_from_slice(extra);
        let tg = text(
            &self.call("CreateTargetGroup", &params).await,
            "TargetGroupArn",
        );
        self.listener(&lb, if http { "HTTP" } else { "TCP" }, 9, &tg)
            .await;
        model::update(self.store.as_ref(), &self.state_key(), |s| {
            for g in &mut s.target_groups {
                g.health.interval = 1;
                g.health.timeout = 1;
            }
            Ok(())
        })
        .await
        .unwrap();
        tg
    }

    async fn health_record(&self) -> HealthRecord {
        match self
            .store
            .get(&model::health_key(
                self.account.as_str(),
                self.region.as_str(),
            ))
            .await
            .unwrap()
        {
            Some(v) => serde_json::from_slice(&v.value).unwrap(),
            None => HealthRecord::default(),
        }
    }

    /// The stored (state, reason, description) of one target.
    async fn stored(
        &self,
        tg: &str,
        port: u16,
    ) -> Option<(String, Option<String>, Option<String>)> {
        let r = self.health_record().await;
        r.targets
            .get(&model::health_entry_key(tg, "127.0.0.1", port))
            .map(|h| (h.state.clone(), h.reason.clone(), h.description.clone()))
    }

    /// Waits until the store holds this (state, reason, description) for
    /// 127.0.0.1:`port` in `tg`.
    async fn wait_stored(
        &self,
        what: &str,
        tg: &str,
        port: u16,
        [state, reason, description]: [&str; 3],
    ) {
        let want = Some((
            state.to_string(),
            Some(reason.to_string()),
            Some(description.to_string()),
        ));
        eventually(what, || async { self.stored(tg, port).await == want }).await;
    }
}

/// Waits until the checker's table has 127.0.0.1:`port` in `tg` in `state`.
async fn wait_state(plane: &DataPlane, what: &str, tg: &str, port: u16, state: TargetState) {
    eventually(what, || async {
        plane.health.state(&key(tg, port)) == state
    })
    .await;
}

/// The checker over `env`'s records; stops when the returned sender drops.
async fn start_checker(
    env: &Env,
) -> (
    Arc<DataPlane>,
    watch::Sender<bool>,
    tokio::task::JoinHandle<()>,
) {
    let plane = DataPlane::new(env.snapshot().await);
    let (tx, rx) = watch::channel(false);
    let store: Arc<dyn Store> = env.store.clone();
    let task = tokio::spawn(health::run(store, plane.clone(), rx));
    (plane, tx, task)
}

/// An HTTP backend answering every request with the status in `status`
/// (0: accept and never answer).
async fn http_backend(status: Arc<AtomicU16>) -> (u16, tokio::task::JoinHandle<()>) {
    serve_each(move |mut s| {
        let status = status.clone();
        async move {
            if read_head(&mut s).await.is_none() {
                return;
            }
            let code = status.load(Ordering::SeqCst);
            if code == 0 {
                tokio::time::sleep(Duration::from_secs(60)).await;
                return;
            }
            let _ = s
                .write_all(
                    format!("HTTP/1.1 {code} X\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
                        .as_bytes(),
                )
                .await;
        }
    })
    .await
}

#[test]
fn matcher_accepts_codes_ranges_and_lists() {
    assert!(matcher_accepts(None, 200));
    assert!(!matcher_accepts(None, 204));
    assert!(matcher_accepts(Some("200"), 200));
    assert!(!matcher_accepts(Some("200"), 503));
    assert!(matcher_accepts(Some("200-399"), 302));
    assert!(matcher_accepts(Some("200-399"), 399));
    assert!(!matcher_accepts(Some("200-399"), 404));
    assert!(matcher_accepts(Some("200,202"), 202));
    assert!(!matcher_accepts(Some("200,202"), 201));
    assert!(matcher_accepts(Some("200, 300-302"), 301));
    assert!(matcher_accepts(Some("garbage"), 200));
}

#[test]
fn tracker_follows_elb_thresholds() {
    let mut t = Tracker::default();
    assert_eq!(t.record(&Probe::Success, 3, 2), TargetState::Initial);
    assert_eq!(t.record(&Probe::Success, 3, 2), TargetState::Initial);
    assert_eq!(t.record(&Probe::Success, 3, 2), TargetState::Healthy);
    assert_eq!(t.stored().state, "healthy");
    // One failure is not enough, and a success in between resets the count.
    assert_eq!(t.record(&Probe::Timeout, 3, 2), TargetState::Healthy);
    assert_eq!(t.record(&Probe::Success, 3, 2), TargetState::Healthy);
    assert_eq!(
        t.record(&Probe::CodeMismatch(503), 3, 2),
        TargetState::Healthy
    );
    assert_eq!(
        t.record(&Probe::CodeMismatch(503), 3, 2),
        TargetState::Unhealthy
    );
    let s = t.stored();
    assert_eq!(
        (s.state.as_str(), s.reason.as_deref()),
        ("unhealthy", Some("Target.ResponseCodeMismatch"))
    );
    assert_eq!(
        s.description.as_deref(),
        Some("Health checks failed with these codes: [503]")
    );
    assert_eq!(t.record(&Probe::Success, 3, 2), TargetState::Unhealthy);
    assert_eq!(t.record(&Probe::Success, 3, 2), TargetState::Unhealthy);
    assert_eq!(t.record(&Probe::Success, 3, 2), TargetState::Healthy);
    // Initial goes unhealthy after the unhealthy threshold too.
    let mut fresh = Tracker::default();
    assert_eq!(
        fresh.stored().reason.as_deref(),
        Some("Elb.InitialHealthChecking")
    );
    assert_eq!(fresh.record(&Probe::Failed, 5, 2), TargetState::Initial);
    assert_eq!(fresh.record(&Probe::Failed, 5, 2), TargetState::Unhealthy);
    assert_eq!(
        fresh.stored().reason.as_deref(),
        Some("Target.FailedHealthChecks")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_target_turns_healthy_unhealthy_and_healthy_again() {
    let env = Env::new();
    let status = Arc::new(AtomicU16::new(200));
    let (port, backend) = http_backend(status.clone()).await;
    let tg = env.group("HTTP", &[("HealthCheckPath", "/ping")]).await;
    env.register(&tg, port).await;
    let (plane, stop, task) = start_checker(&env).await;

    // Initial first (in the store too), then healthy.
    wait_state(&plane, "healthy", &tg, port, TargetState::Healthy).await;
    eventually("healthy in the store", || async {
        env.stored(&tg, port)
            .await
            .is_some_and(|s| s.0 == "healthy" && s.1.is_none())
    })
    .await;

    status.store(503, Ordering::SeqCst);
    wait_state(&plane, "unhealthy", &tg, port, TargetState::Unhealthy).await;
    env.wait_stored(
        "unhealthy in the store",
        &tg,
        port,
        [
            "unhealthy",
            "Target.ResponseCodeMismatch",
            "Health checks failed with these codes: [503]",
        ],
    )
    .await;

    status.store(200, Ordering::SeqCst);
    wait_state(&plane, "healthy again", &tg, port, TargetState::Healthy).await;
    eventually("healthy again in the store", || async {
        env.stored(&tg, port)
            .await
            .is_some_and(|s| s.0 == "healthy")
    })
    .await;

    stop.send(true).unwrap();
    task.await.unwrap();
    backend.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_target_is_initial_in_the_store_until_its_threshold() {
    let env = Env::new();
    let status = Arc::new(AtomicU16::new(200));
    let (port, backend) = http_backend(status).await;
    // Five successes needed: the target stays initial for four seconds.
    let tg = env.group("HTTP", &[("HealthyThresholdCount", "5")]).await;
    env.register(&tg, port).await;
    let (plane, stop, task) = start_checker(&env).await;
    env.wait_stored(
        "initial in the store",
        &tg,
        port,
        [
            "initial",
            "Elb.InitialHealthChecking",
            "Initial health checking in progress",
        ],
    )
    .await;
    wait_state(&plane, "healthy", &tg, port, TargetState::Healthy).await;
    stop.send(true).unwrap();
    task.await.unwrap();
    backend.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closed_port_fails_health_checks() {
    let env = Env::new();
    let tg = env.group("HTTP", &[]).await;
    let port = free_port().await;
    env.register(&tg, port).await;
    let (plane, stop, task) = start_checker(&env).await;
    wait_state(&plane, "unhealthy", &tg, port, TargetState::Unhealthy).await;
    env.wait_stored(
        "failed checks in the store",
        &tg,
        port,
        [
            "unhealthy",
            "Target.FailedHealthChecks",
            "Health checks failed",
        ],
    )
    .await;
    stop.send(true).unwrap();
    task.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_backend_times_out() {
    let env = Env::new();
    let status = Arc::new(AtomicU16::new(0));
    let (port, backend) = http_backend(status).await;
    let tg = env.group("HTTP", &[]).await;
    env.register(&tg, port).await;
    let (plane, stop, task) = start_checker(&env).await;
    wait_state(&plane, "unhealthy", &tg, port, TargetState::Unhealthy).await;
    env.wait_stored(
        "timeout in the store",
        &tg,
        port,
        ["unhealthy", "Target.Timeout", "Request timed out"],
    )
    .await;
    stop.send(true).unwrap();
    task.await.unwrap();
    backend.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_checks_follow_whether_the_port_accepts() {
    let env = Env::new();
    let tg = env.group("TCP", &[]).await;
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let accepting = tokio::spawn(async move {
        loop {
            let _ = listener.accept().await;
        }
    });
    env.register(&tg, port).await;
    let (plane, stop, task) = start_checker(&env).await;
    wait_state(&plane, "healthy", &tg, port, TargetState::Healthy).await;
    // Dropping the listener closes the port.
    accepting.abort();
    let _ = accepting.await;
    wait_state(&plane, "unhealthy", &tg, port, TargetState::Unhealthy).await;
    eventually("failed checks in the store", || async {
        env.stored(&tg, port)
            .await
            .is_some_and(|s| s.1.as_deref() == Some("Target.FailedHealthChecks"))
    })
    .await;
    stop.send(true).unwrap();
    task.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn matcher_range_accepts_redirects_and_list_rejects_others() {
    let env = Env::new();
    let redirect = Arc::new(AtomicU16::new(302));
    let (ok_port, a) = http_backend(redirect).await;
    let no_content = Arc::new(AtomicU16::new(204));
    let (bad_port, b) = http_backend(no_content).await;
    let tg = env.group("HTTP", &[("Matcher.HttpCode", "200-399")]).await;
    env.register(&tg, ok_port).await;
    let tg2 = env
        .named_group("tg2", "HTTP", &[("Matcher.HttpCode", "200,202")])
        .await;
    env.register(&tg2, bad_port).await;
    let (plane, stop, task) = start_checker(&env).await;
    wait_state(&plane, "302 healthy", &tg, ok_port, TargetState::Healthy).await;
    wait_state(
        &plane,
        "204 unhealthy",
        &tg2,
        bad_port,
        TargetState::Unhealthy,
    )
    .await;
    eventually("204 mismatch in the store", || async {
        env.stored(&tg2, bad_port)
            .await
            .is_some_and(|s| s.2.as_deref() == Some("Health checks failed with these codes: [204]"))
    })
    .await;
    stop.send(true).unwrap();
    task.await.unwrap();
    a.abort();
    b.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disabled_checks_make_targets_unavailable() {
    let env = Env::new();
    let tg = env.group("TCP", &[("HealthCheckEnabled", "false")]).await;
    let port = free_port().await;
    env.register(&tg, port).await;
    let (plane, stop, task) = start_checker(&env).await;
    wait_state(&plane, "unavailable", &tg, port, TargetState::Unavailable).await;
    env.wait_stored(
        "unavailable in the store",
        &tg,
        port,
        [
            "unavailable",
            "Target.HealthCheckDisabled",
            "Health checks are disabled",
        ],
    )
    .await;
    stop.send(true).unwrap();
    task.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_set_follows_snapshots_without_restarting_unchanged_targets() {
    let env = Env::new();
    let status = Arc::new(AtomicU16::new(200));
    let (port_a, a) = http_backend(status.clone()).await;
    let (port_b, b) = http_backend(status).await;
    let tg = env.group("HTTP", &[]).await;
    env.register(&tg, port_a).await;
    let (plane, stop, task) = start_checker(&env).await;
    wait_state(&plane, "a healthy", &tg, port_a, TargetState::Healthy).await;
    let a_since = plane.health.get(&key(&tg, port_a)).unwrap().since;

    // Add b: a keeps its state (and since), b starts initial.
    env.register(&tg, port_b).await;
    plane.install(env.snapshot().await);
    wait_state(&plane, "b healthy", &tg, port_b, TargetState::Healthy).await;
    let a_entry = plane.health.get(&key(&tg, port_a)).unwrap();
    assert_eq!(a_entry.state, TargetState::Healthy);
    assert_eq!(a_entry.since, a_since, "a flapped");

    // Deregister b with no delay: its entry leaves the table and the store.
    model::update(env.store.as_ref(), &env.state_key(), |s| {
        s.target_groups[0]
            .attributes
            .insert("deregistration_delay.timeout_seconds".into(), "0".into());
        Ok(())
    })
    .await
    .unwrap();
    env.deregister(&tg, port_b).await;
    plane.install(env.snapshot().await);
    eventually("b gone from the store", || async {
        env.stored(&tg, port_b).await.is_none()
    })
    .await;
    assert!(plane.health.get(&key(&tg, port_b)).is_none());
    assert!(
        env.stored(&tg, port_a)
            .await
            .is_some_and(|s| s.0 == "healthy")
    );

    stop.send(true).unwrap();
    task.await.unwrap();
    a.abort();
    b.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn draining_targets_are_not_checked() {
    let env = Env::new();
    let status = Arc::new(AtomicU16::new(200));
    let (port, backend) = http_backend(status).await;
    let tg = env.group("HTTP", &[]).await;
    env.register(&tg, port).await;
    let (plane, stop, task) = start_checker(&env).await;
    wait_state(&plane, "healthy", &tg, port, TargetState::Healthy).await;
    env.deregister(&tg, port).await;
    plane.install(env.snapshot().await);
    wait_state(&plane, "draining", &tg, port, TargetState::Draining).await;
    stop.send(true).unwrap();
    task.await.unwrap();
    backend.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_checks_accept_any_certificate() {
    let env = Env::new();
    let dir = tempfile::tempdir().unwrap();
    make_cert(dir.path(), "backend", "backend");
    let acceptor = berth_lb::tls::acceptor(dir.path(), &[acm("backend")]).unwrap();
    let (port, backend) = serve_each(move |s| {
        let acceptor = acceptor.clone();
        async move {
            let Ok(mut s) = acceptor.accept(s).await else {
                return;
            };
            if read_head(&mut s).await.is_none() {
                return;
            }
            let _ = s
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
                .await;
            let _ = s.shutdown().await;
        }
    })
    .await;
    let tg = env.group("HTTPS", &[]).await;
    env.register(&tg, port).await;
    let (plane, stop, task) = start_checker(&env).await;
    wait_state(&plane, "healthy over TLS", &tg, port, TargetState::Healthy).await;
    stop.send(true).unwrap();
    task.await.unwrap();
    backend.abort();
}
