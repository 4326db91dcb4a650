//! Tests on the real kernel (run as root; need iproute2 and nftables).
//!
//! Every test takes a *slot* k (an flock under /run/berth-net-test, so
//! tests in parallel processes never share one, and a crashed run's slot
//! is cleaned by its next holder) and with it its own bridge `btn{k}`,
//! subnet 10.213.k.0/24, namespaces `btn{k}-*`, nftables table
//! `berth_test_{k}` and a guard table `berth_guard_{k}` that drops any
//! packet forwarded from the test's links to anywhere else. All traffic
//! stays on loopback, the test's bridge, and the test's own namespaces.

use berth_net::netns;
use berth_net::tools::find_binary;
use berth_net::{BridgeConfig, LinuxNetwork, NetError, Network, NetworkMode, PortMapping};
use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, SocketAddrV4, TcpListener, TcpStream, UdpSocket};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

const TIMEOUT: Duration = Duration::from_secs(3);

// ---------------------------------------------------------------- fixture

fn ip_cmd(args: &[&str]) -> std::process::Output {
    Command::new(find_binary("ip").expect("iproute2 installed"))
        .args(args)
        .output()
        .expect("run ip")
}

fn ip_ok(args: &[&str]) {
    let out = ip_cmd(args);
    assert!(
        out.status.success(),
        "ip {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn nft_script(script: &str) -> std::process::Output {
    let mut child =
        Command::new(find_binary("nft").expect("nftables installed (apt-get install nftables)"))
            .args(["-f", "-"])
            .stdin(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("run nft");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(script.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

fn link_exists(name: &str) -> bool {
    Path::new("/sys/class/net").join(name).exists()
}

fn netns_names(prefix: &str) -> Vec<String> {
    std::fs::read_dir("/run/netns")
        .map(|rd| {
            rd.filter_map(|e| e.ok()?.file_name().into_string().ok())
                .filter(|n| n.starts_with(prefix))
                .collect()
        })
        .unwrap_or_default()
}

fn links_with_prefix(prefix: &str) -> Vec<String> {
    std::fs::read_dir("/sys/class/net")
        .map(|rd| {
            rd.filter_map(|e| e.ok()?.file_name().into_string().ok())
                .filter(|n| n.starts_with(prefix))
                .collect()
        })
        .unwrap_or_default()
}

/// One test's private piece of the host.
struct Slot {
    k: u8,
    _lock: std::fs::File,
    state_dir: tempfile::TempDir,
}

impl Slot {
    fn take() -> Slot {
        assert_eq!(
            unsafe { libc::geteuid() },
            0,
            "berth-net's kernel tests run as root"
        );
        let dir = Path::new("/run/berth-net-test");
        std::fs::create_dir_all(dir).unwrap();
        let routes = std::fs::read_to_string("/proc/net/route").unwrap();
        let routes = berth_net::routes::parse_proc_net_route(&routes);
        for k in 1..=250u8 {
            let f = std::fs::OpenOptions::new()
                .create(true)
                .truncate(false)
                .write(true)
                .open(dir.join(format!("slot-{k}.lock")))
                .unwrap();
            // SAFETY: flock on a descriptor we own.
            if unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
                continue;
            }
            let slot = Slot {
                k,
                _lock: f,
                state_dir: tempfile::tempdir().unwrap(),
            };
            // A crashed run may have left this slot's objects behind.
            slot.cleanup();
            let ours = [slot.subnet(), slot.remote_subnet()];
            let clash = routes.iter().any(|r| {
                r.destination.prefix_len() > 0
                    && ours.iter().any(|o| o.overlaps(&r.destination))
                    && r.iface != slot.bridge()
                    && r.iface != slot.remote_link()
            });
            if clash {
                continue;
            }
            slot.install_guard();
            return slot;
        }
        panic!("no free test slot");
    }

    fn bridge(&self) -> String {
        format!("btn{}", self.k)
    }

    fn subnet(&self) -> berth_net::Ipv4Net {
        format!("10.213.{}.0/24", self.k).parse().unwrap()
    }

    fn gateway(&self) -> Ipv4Addr {
        Ipv4Addr::new(10, 213, self.k, 1)
    }

    fn remote_subnet(&self) -> berth_net::Ipv4Net {
        format!("10.212.{}.0/30", self.k).parse().unwrap()
    }

    fn remote_link(&self) -> String {
        format!("brm{}", self.k)
    }

    fn remote_netns(&self) -> String {
        format!("btr{}", self.k)
    }

    fn netns_prefix(&self) -> String {
        format!("btn{}-", self.k)
    }

    /// Host ends of this slot's veths: `vt` + hex of 10.213.k.
    fn veth_prefix_hex(&self) -> String {
        format!("vt0ad5{:02x}", self.k)
    }

    fn config(&self) -> BridgeConfig {
        BridgeConfig {
            bridge: self.bridge(),
            subnet: self.subnet(),
            gateway: None,
            mtu: None,
            nft_table: format!("berth_test_{}", self.k),
            netns_prefix: self.netns_prefix(),
            veth_prefix: "vt".into(),
            // No global sysctl changes and no egress NAT from tests.
            enable_ip_forward: false,
            masquerade_egress: false,
        }
    }

    fn open(&self) -> LinuxNetwork {
        LinuxNetwork::open(self.config(), self.state_dir.path()).expect("open network")
    }

    /// Drops anything forwarded from this slot's links to any other link.
    fn install_guard(&self) {
        let (br, rm, k) = (self.bridge(), self.remote_link(), self.k);
        let out = nft_script(&format!(
            "table ip berth_guard_{k} {{
                chain forward {{
                    type filter hook forward priority -10; policy accept;
                    iifname \"{br}\" oifname != {{ \"{br}\", \"{rm}\" }} drop
                    iifname \"{rm}\" oifname != \"{br}\" drop
                }}
            }}"
        ));
        assert!(
            out.status.success(),
            "guard table: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn cleanup(&self) {
        for ns in netns_names(&self.netns_prefix()) {
            ip_cmd(&["netns", "del", &ns]);
        }
        for l in links_with_prefix(&self.veth_prefix_hex()) {
            ip_cmd(&["link", "del", "dev", &l]);
        }
        if link_exists(&self.bridge()) {
            ip_cmd(&["link", "del", "dev", &self.bridge()]);
        }
        if link_exists(&self.remote_link()) {
            ip_cmd(&["link", "del", "dev", &self.remote_link()]);
        }
        if Path::new("/run/netns").join(self.remote_netns()).exists() {
            ip_cmd(&["netns", "del", &self.remote_netns()]);
        }
        let k = self.k;
        nft_script(&format!(
            "add table ip berth_test_{k}\ndelete table ip berth_test_{k}\n\
             add table ip berth_guard_{k}\ndelete table ip berth_guard_{k}\n"
        ));
    }

    /// A second "host": a namespace joined to this one by a veth pair on
    /// 10.212.k.0/30 (us .1, it .2), routing the task subnet through us.
    fn add_remote_host(&self) -> (PathBuf, Ipv4Addr, Ipv4Addr) {
        let (rm, rns, k) = (self.remote_link(), self.remote_netns(), self.k);
        let here = format!("10.212.{k}.1");
        let there = format!("10.212.{k}.2");
        ip_ok(&["netns", "add", &rns]);
        ip_ok(&[
            "link", "add", "name", &rm, "type", "veth", "peer", "name", "eth0", "netns", &rns,
        ]);
        ip_ok(&["addr", "add", &format!("{here}/30"), "dev", &rm]);
        ip_ok(&["link", "set", "dev", &rm, "up"]);
        ip_ok(&["-n", &rns, "link", "set", "dev", "lo", "up"]);
        ip_ok(&[
            "-n",
            &rns,
            "addr",
            "add",
            &format!("{there}/30"),
            "dev",
            "eth0",
        ]);
        ip_ok(&["-n", &rns, "link", "set", "dev", "eth0", "up"]);
        ip_ok(&[
            "-n",
            &rns,
            "route",
            "add",
            &self.subnet().to_string(),
            "via",
            &here,
        ]);
        // Forwarding for packets arriving on this link only (no global
        // ip_forward); the bridge side has it from ensure_bridge.
        std::fs::write(format!("/proc/sys/net/ipv4/conf/{rm}/forwarding"), "1").unwrap();
        (
            PathBuf::from("/run/netns").join(rns),
            here.parse().unwrap(),
            there.parse().unwrap(),
        )
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.cleanup();
    }
}

// ---------------------------------------------------------------- traffic

/// Serves `listener` forever on a thread: each connection gets
/// "{tag} {peer ip} {what it sent}" back, then is closed.
fn serve_tcp(listener: TcpListener, tag: &'static str) {
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut c) = conn else { continue };
            let _ = c.set_read_timeout(Some(TIMEOUT));
            let peer = c
                .peer_addr()
                .map(|a| a.ip().to_string())
                .unwrap_or_default();
            let mut buf = [0u8; 256];
            let n = c.read(&mut buf).unwrap_or(0);
            let msg = String::from_utf8_lossy(&buf[..n]).to_string();
            let _ = c.write_all(format!("{tag} {peer} {msg}").as_bytes());
        }
    });
}

/// A UDP echo the same way.
fn serve_udp(sock: UdpSocket, tag: &'static str) {
    std::thread::spawn(move || {
        let mut buf = [0u8; 256];
        while let Ok((n, from)) = sock.recv_from(&mut buf) {
            let msg = String::from_utf8_lossy(&buf[..n]).to_string();
            let _ = sock.send_to(format!("{tag} {} {msg}", from.ip()).as_bytes(), from);
        }
    });
}

/// A TCP server inside the task's namespace (bound on a thread that
/// entered it; the socket stays there).
fn tcp_server_in(netns: &Path, port: u16, tag: &'static str) {
    let l = netns::run_in(netns, move || {
        TcpListener::bind((Ipv4Addr::UNSPECIFIED, port))
    })
    .expect("enter namespace")
    .expect("bind in namespace");
    serve_tcp(l, tag);
}

fn udp_server_in(netns: &Path, port: u16, tag: &'static str) {
    let s = netns::run_in(netns, move || {
        UdpSocket::bind((Ipv4Addr::UNSPECIFIED, port))
    })
    .expect("enter namespace")
    .expect("bind in namespace");
    serve_udp(s, tag);
}

fn tcp_ask(addr: SocketAddr, msg: &str) -> std::io::Result<String> {
    let mut c = TcpStream::connect_timeout(&addr, TIMEOUT)?;
    c.set_read_timeout(Some(TIMEOUT))?;
    c.write_all(msg.as_bytes())?;
    c.shutdown(std::net::Shutdown::Write)?;
    let mut out = String::new();
    c.read_to_string(&mut out)?;
    Ok(out)
}

fn udp_ask(addr: SocketAddr, msg: &str) -> std::io::Result<String> {
    let s = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0))?;
    s.set_read_timeout(Some(TIMEOUT))?;
    s.send_to(msg.as_bytes(), addr)?;
    let mut buf = [0u8; 256];
    let (n, _) = s.recv_from(&mut buf)?;
    Ok(String::from_utf8_lossy(&buf[..n]).to_string())
}

/// `tcp_ask` from inside a namespace.
fn tcp_ask_from(netns: &Path, addr: SocketAddr, msg: &'static str) -> std::io::Result<String> {
    netns::run_in(netns, move || tcp_ask(addr, msg))?
}

/// A port nothing on the host holds now (TCP and UDP).
fn free_port() -> u16 {
    loop {
        let t = TcpListener::bind((Ipv4Addr::UNSPECIFIED, 0)).unwrap();
        let port = t.local_addr().unwrap().port();
        if UdpSocket::bind((Ipv4Addr::UNSPECIFIED, port)).is_ok() {
            return port;
        }
    }
}

fn sa(ip: Ipv4Addr, port: u16) -> SocketAddr {
    SocketAddr::new(IpAddr::V4(ip), port)
}

fn netns_of(t: &berth_net::TaskNetwork) -> PathBuf {
    t.netns_path.clone().expect("task has a namespace")
}

// ---------------------------------------------------------------- tests

#[tokio::test]
async fn two_tasks_on_one_bridge_reach_each_other() {
    let slot = Slot::take();
    let net = slot.open();
    net.ensure_bridge().await.unwrap();
    let a = net
        .create_task_network("a", NetworkMode::Bridge)
        .await
        .unwrap();
    let b = net
        .create_task_network("b", NetworkMode::Bridge)
        .await
        .unwrap();
    assert_ne!(a.ipv4, b.ipv4);
    assert_eq!(a.gateway, Some(slot.gateway()));
    tcp_server_in(&netns_of(&b), 7000, "b");
    tcp_server_in(&netns_of(&a), 7000, "a");
    let (a_ip, b_ip) = (a.ipv4.unwrap(), b.ipv4.unwrap());
    let got = tcp_ask_from(&netns_of(&a), sa(b_ip, 7000), "hi").unwrap();
    assert_eq!(got, format!("b {a_ip} hi"));
    let got = tcp_ask_from(&netns_of(&b), sa(a_ip, 7000), "yo").unwrap();
    assert_eq!(got, format!("a {b_ip} yo"));
    net.teardown().await.unwrap();
}

#[tokio::test]
async fn host_reaches_a_task_at_its_address() {
    let slot = Slot::take();
    let net = slot.open();
    net.ensure_bridge().await.unwrap();
    let a = net
        .create_task_network("a", NetworkMode::Bridge)
        .await
        .unwrap();
    assert!(Path::new(&netns_of(&a)).exists());
    assert_eq!(
        netns_of(&a),
        PathBuf::from(format!("/run/netns/{}a", slot.netns_prefix()))
    );
    let veth = a.veth_host_name.clone().unwrap();
    assert!(Path::new(&format!("/sys/class/net/{}/brif/{veth}", slot.bridge())).exists());
    tcp_server_in(&netns_of(&a), 8000, "a");
    let got = tcp_ask(sa(a.ipv4.unwrap(), 8000), "ping").unwrap();
    assert_eq!(got, format!("a {} ping", slot.gateway()));
    net.teardown().await.unwrap();
}

#[tokio::test]
async fn published_ports_reach_the_task_from_loopback_and_host_addresses() {
    let slot = Slot::take();
    let net = slot.open();
    net.ensure_bridge().await.unwrap();
    let a = net
        .create_task_network("a", NetworkMode::Bridge)
        .await
        .unwrap();
    let b = net
        .create_task_network("b", NetworkMode::Bridge)
        .await
        .unwrap();
    tcp_server_in(&netns_of(&a), 80, "a-tcp");
    udp_server_in(&netns_of(&a), 53, "a-udp");
    let (tcp_port, udp_port) = (free_port(), free_port());
    net.publish_ports(
        "a",
        &[
            PortMapping::tcp(tcp_port, 80),
            PortMapping::udp(udp_port, 53),
        ],
    )
    .await
    .unwrap();
    assert_eq!(net.published_ports().len(), 2);

    // 127.0.0.1: DNAT in output, route_localnet, masquerade to the bridge.
    let got = tcp_ask(sa(Ipv4Addr::LOCALHOST, tcp_port), "hello").unwrap();
    assert_eq!(got, format!("a-tcp {} hello", slot.gateway()));
    let got = udp_ask(sa(Ipv4Addr::LOCALHOST, udp_port), "dns?").unwrap();
    assert_eq!(got, format!("a-udp {} dns?", slot.gateway()));
    // Another address of the host (the bridge's own).
    let got = tcp_ask(sa(slot.gateway(), tcp_port), "via-gw").unwrap();
    assert!(
        got.starts_with("a-tcp ") && got.ends_with(" via-gw"),
        "{got}"
    );
    // Hairpin: task b reaches a through the host's published port.
    let got = tcp_ask_from(&netns_of(&b), sa(slot.gateway(), tcp_port), "hairpin").unwrap();
    assert_eq!(got, format!("a-tcp {} hairpin", slot.gateway()));

    // The same host port for another task is refused; a's still works.
    let err = net
        .publish_ports("b", &[PortMapping::tcp(tcp_port, 80)])
        .await
        .unwrap_err();
    assert!(
        matches!(err, NetError::PortInUse { ref owner, .. } if owner == "a"),
        "{err}"
    );
    assert!(tcp_ask(sa(Ipv4Addr::LOCALHOST, tcp_port), "still").is_ok());

    // Unpublished: nothing answers on the host port any more.
    net.unpublish_ports("a").await.unwrap();
    assert!(net.published_ports().is_empty());
    let err = tcp_ask(sa(Ipv4Addr::LOCALHOST, tcp_port), "gone").unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::ConnectionRefused, "{err}");
    net.unpublish_ports("a").await.unwrap();
    net.teardown().await.unwrap();
}

#[tokio::test]
async fn host_ip_bound_mapping_only_answers_on_that_address() {
    let slot = Slot::take();
    let net = slot.open();
    net.ensure_bridge().await.unwrap();
    let a = net
        .create_task_network("a", NetworkMode::Bridge)
        .await
        .unwrap();
    tcp_server_in(&netns_of(&a), 80, "a");
    let port = free_port();
    net.publish_ports(
        "a",
        &[PortMapping {
            host_ip: Some(Ipv4Addr::LOCALHOST),
            ..PortMapping::tcp(port, 80)
        }],
    )
    .await
    .unwrap();
    assert!(
        tcp_ask(sa(Ipv4Addr::LOCALHOST, port), "x")
            .unwrap()
            .starts_with("a ")
    );
    let err = tcp_ask(sa(slot.gateway(), port), "x").unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::ConnectionRefused);
    net.teardown().await.unwrap();
}

#[tokio::test]
async fn other_hosts_reach_published_ports_and_awsvpc_addresses() {
    let slot = Slot::take();
    let net = slot.open();
    net.ensure_bridge().await.unwrap();
    let (remote, here, there) = slot.add_remote_host();
    let a = net
        .create_task_network("a", NetworkMode::Bridge)
        .await
        .unwrap();
    let v = net
        .create_task_network("v", NetworkMode::Awsvpc)
        .await
        .unwrap();
    tcp_server_in(&netns_of(&a), 80, "a");
    tcp_server_in(&netns_of(&v), 9000, "v");
    let port = free_port();
    net.publish_ports("a", &[PortMapping::tcp(port, 80)])
        .await
        .unwrap();
    // Through the published port on the host's address; the task sees the
    // remote client's own address (no masquerade).
    let got = tcp_ask_from(&remote, sa(here, port), "from-afar").unwrap();
    assert_eq!(got, format!("a {there} from-afar"));
    // awsvpc: straight at the task's address, routed through this host.
    let got = tcp_ask_from(&remote, sa(v.ipv4.unwrap(), 9000), "direct").unwrap();
    assert_eq!(got, format!("v {there} direct"));
    net.teardown().await.unwrap();
}

#[tokio::test]
async fn awsvpc_task_has_its_own_namespace_and_address() {
    let slot = Slot::take();
    let net = slot.open();
    net.ensure_bridge().await.unwrap();
    let v = net
        .create_task_network("0123456789abcdef0123456789abcdef", NetworkMode::Awsvpc)
        .await
        .unwrap();
    let w = net
        .create_task_network("fedcba9876543210fedcba9876543210", NetworkMode::Awsvpc)
        .await
        .unwrap();
    assert_ne!(v.netns_path, w.netns_path);
    let eni = v.eni_attachment().unwrap();
    assert_eq!(eni.private_ipv4_address, v.ipv4.unwrap());
    assert_eq!(Some(eni.mac_address.clone()), v.mac);
    assert!(slot.subnet().contains(eni.private_ipv4_address));
    // The MAC the kernel has is the one reported.
    let out = ip_cmd(&[
        "-n",
        &format!("{}0123456789abcdef0123456789abcdef", slot.netns_prefix()),
        "-br",
        "link",
        "show",
        "dev",
        "eth0",
    ]);
    assert!(String::from_utf8_lossy(&out.stdout).contains(&eni.mac_address));
    tcp_server_in(&netns_of(&v), 443, "v");
    let got = tcp_ask(sa(v.ipv4.unwrap(), 443), "tls?").unwrap();
    assert_eq!(got, format!("v {} tls?", slot.gateway()));
    net.teardown().await.unwrap();
}

#[tokio::test]
async fn none_mode_has_only_loopback_and_host_mode_nothing() {
    let slot = Slot::take();
    let net = slot.open();
    net.ensure_bridge().await.unwrap();
    let n = net
        .create_task_network("n", NetworkMode::None)
        .await
        .unwrap();
    assert_eq!(n.ipv4, None);
    let ns = format!("{}n", slot.netns_prefix());
    let out = ip_cmd(&["-n", &ns, "-o", "link"]);
    let links: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())
        .collect();
    assert_eq!(links, vec!["lo".to_string()]);
    // Loopback is up inside.
    let got = netns::run_in(&netns_of(&n), || {
        let l = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let port = l.local_addr().unwrap().port();
        serve_tcp(l, "n");
        tcp_ask(sa(Ipv4Addr::LOCALHOST, port), "lo")
    })
    .unwrap()
    .unwrap();
    assert_eq!(got, "n 127.0.0.1 lo");
    assert!(matches!(
        net.publish_ports("n", &[PortMapping::tcp(free_port(), 80)])
            .await,
        Err(NetError::NotPublishable { .. })
    ));

    let h = net
        .create_task_network("h", NetworkMode::Host)
        .await
        .unwrap();
    assert_eq!(h.netns_path, None);
    assert!(netns_names(&format!("{}h", slot.netns_prefix())).is_empty());
    net.publish_ports("h", &[PortMapping::tcp(8080, 8080)])
        .await
        .unwrap();
    assert!(net.published_ports().is_empty());
    net.destroy_task_network("h").await.unwrap();
    net.destroy_task_network("n").await.unwrap();
    assert!(netns_names(&slot.netns_prefix()).is_empty());
    net.teardown().await.unwrap();
}

#[tokio::test]
async fn destroy_is_idempotent_and_leaves_nothing() {
    let slot = Slot::take();
    let net = slot.open();
    net.ensure_bridge().await.unwrap();
    let mut veths = Vec::new();
    for (id, mode) in [
        ("b1", NetworkMode::Bridge),
        ("v1", NetworkMode::Awsvpc),
        ("n1", NetworkMode::None),
    ] {
        let t = net.create_task_network(id, mode).await.unwrap();
        veths.extend(t.veth_host_name);
    }
    net.publish_ports("b1", &[PortMapping::tcp(free_port(), 80)])
        .await
        .unwrap();
    assert_eq!(netns_names(&slot.netns_prefix()).len(), 3);
    for id in ["b1", "v1", "n1"] {
        net.destroy_task_network(id).await.unwrap();
        net.destroy_task_network(id).await.unwrap();
    }
    assert!(netns_names(&slot.netns_prefix()).is_empty());
    for v in &veths {
        assert!(!link_exists(v), "{v} left behind");
    }
    assert!(links_with_prefix(&slot.veth_prefix_hex()).is_empty());
    let ports = std::fs::read_dir(format!("/sys/class/net/{}/brif", slot.bridge()))
        .unwrap()
        .count();
    assert_eq!(ports, 0);
    assert!(net.task_networks().is_empty());
    assert!(net.published_ports().is_empty());
    // The state file agrees.
    let state: serde_json::Value =
        serde_json::from_slice(&std::fs::read(net.state_path()).unwrap()).unwrap();
    assert_eq!(state["tasks"], serde_json::json!({}));
    assert_eq!(state["ipam"]["allocations"], serde_json::json!({}));
    // A namespace destroyed behind our back is fine too.
    let t = net
        .create_task_network("x", NetworkMode::Bridge)
        .await
        .unwrap();
    ip_ok(&["netns", "del", &format!("{}x", slot.netns_prefix())]);
    net.destroy_task_network("x").await.unwrap();
    assert!(!link_exists(t.veth_host_name.as_deref().unwrap()));
    net.teardown().await.unwrap();
    assert!(!link_exists(&slot.bridge()));
}

#[tokio::test]
async fn recover_after_restart_keeps_addresses_and_ports() {
    let slot = Slot::take();
    let net = slot.open();
    net.ensure_bridge().await.unwrap();
    let a = net
        .create_task_network("a", NetworkMode::Bridge)
        .await
        .unwrap();
    let b = net
        .create_task_network("b", NetworkMode::Bridge)
        .await
        .unwrap();
    tcp_server_in(&netns_of(&a), 80, "a");
    let port = free_port();
    net.publish_ports("a", &[PortMapping::tcp(port, 80)])
        .await
        .unwrap();
    drop(net);

    // While the agent is down: the table is flushed (say, an `nft flush
    // ruleset`), b's namespace disappears, and a stray appears.
    let k = slot.k;
    nft_script(&format!("delete table ip berth_test_{k}\n"));
    ip_ok(&["netns", "del", &format!("{}b", slot.netns_prefix())]);
    ip_ok(&["netns", "add", &format!("{}stray", slot.netns_prefix())]);
    assert!(tcp_ask(sa(Ipv4Addr::LOCALHOST, port), "down").is_err());

    let net = slot.open();
    // Loading alone already protects a's address.
    let r = net.recover().await.unwrap();
    assert_eq!(r.tasks, vec![a.clone()]);
    assert_eq!(r.lost, vec!["b".to_string()]);
    assert_eq!(
        r.orphans_removed,
        vec![format!("{}stray", slot.netns_prefix())]
    );
    assert!(!link_exists(b.veth_host_name.as_deref().unwrap()));
    // The port is back, and a is reachable as before.
    let got = tcp_ask(sa(Ipv4Addr::LOCALHOST, port), "back").unwrap();
    assert_eq!(got, format!("a {} back", slot.gateway()));
    // New tasks never get a's address.
    let mut seen = vec![a.ipv4];
    for i in 0..5 {
        let t = net
            .create_task_network(&format!("n{i}"), NetworkMode::Bridge)
            .await
            .unwrap();
        assert!(!seen.contains(&t.ipv4));
        seen.push(t.ipv4);
    }
    // recover() again is a no-op.
    let r = net.recover().await.unwrap();
    assert_eq!(r.tasks.len(), 6);
    assert!(r.lost.is_empty() && r.orphans_removed.is_empty());
    net.teardown().await.unwrap();
}

#[tokio::test]
async fn credentials_endpoint_reaches_the_host_from_a_task() {
    let slot = Slot::take();
    let net = slot.open();
    net.ensure_bridge().await.unwrap();
    let a = net
        .create_task_network("a", NetworkMode::Bridge)
        .await
        .unwrap();
    let v = net
        .create_task_network("v", NetworkMode::Awsvpc)
        .await
        .unwrap();
    let agent = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    let agent_port = agent.local_addr().unwrap().port();
    serve_tcp(agent, "agent");
    net.set_credentials_endpoint(Some(SocketAddrV4::new(Ipv4Addr::LOCALHOST, agent_port)))
        .await
        .unwrap();
    let creds = sa(berth_net::CREDENTIALS_ADDR, 80);
    for t in [&a, &v] {
        let got = tcp_ask_from(&netns_of(t), creds, "GET /v2/credentials").unwrap();
        assert_eq!(
            got,
            format!("agent {} GET /v2/credentials", t.ipv4.unwrap())
        );
    }
    net.teardown().await.unwrap();
}

#[tokio::test]
async fn concurrent_creates_get_distinct_working_networks() {
    let slot = Slot::take();
    let net = slot.open();
    net.ensure_bridge().await.unwrap();
    let mut handles = Vec::new();
    for i in 0..8 {
        let net = net.clone();
        handles.push(tokio::spawn(async move {
            let mode = if i % 2 == 0 {
                NetworkMode::Bridge
            } else {
                NetworkMode::Awsvpc
            };
            net.create_task_network(&format!("t{i}"), mode).await
        }));
    }
    let mut ips = Vec::new();
    for h in handles {
        let t = h.await.unwrap().unwrap();
        ips.push(t.ipv4.unwrap());
    }
    let mut dedup = ips.clone();
    dedup.sort();
    dedup.dedup();
    assert_eq!(dedup.len(), 8);
    // Each one answers at its address.
    for i in 0..8 {
        let t = net.task_network(&format!("t{i}")).unwrap();
        tcp_server_in(&netns_of(&t), 7001, "t");
        assert!(tcp_ask(sa(t.ipv4.unwrap(), 7001), "x").is_ok());
    }
    net.teardown().await.unwrap();
}
