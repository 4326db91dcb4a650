//! Pure rendering of what the kernel is told: `ip -batch` scripts for
//! links, addresses and routes, and the whole nftables table of a bridge.
//! Everything interpolated here was validated before (names from
//! [`BridgeConfig::validate`] and [`crate::config::validate_task_id`],
//! addresses and ports are typed), so nothing can inject a command.

use crate::addr::mac_for;
use crate::config::BridgeConfig;
use crate::types::{CREDENTIALS_ADDR, CredentialsEndpoint, PortMapping, Protocol, TaskNetwork};
use std::fmt::Write;
use std::net::Ipv4Addr;

/// `ip -batch` for the bridge: create it (with a fixed MAC, so it doesn't
/// change as veths come and go) unless it exists, give it the gateway
/// address, bring it up.
pub fn bridge_script(cfg: &BridgeConfig, exists: bool) -> String {
    let mut s = String::new();
    let br = &cfg.bridge;
    if !exists {
        let _ = write!(s, "link add name {br} address {}", mac_for(cfg.gateway()));
        if let Some(mtu) = cfg.mtu {
            let _ = write!(s, " mtu {mtu}");
        }
        s.push_str(" type bridge\n");
    } else if let Some(mtu) = cfg.mtu {
        let _ = writeln!(s, "link set dev {br} mtu {mtu}");
    }
    let _ = writeln!(
        s,
        "addr replace {}/{} dev {br}",
        cfg.gateway(),
        cfg.subnet.prefix_len()
    );
    let _ = writeln!(s, "link set dev {br} up");
    s
}

/// `ip -batch` in the host's namespace for a task: the named namespace,
/// then (with an interface) the veth pair with its task end created
/// straight inside the namespace as `eth0`, the host end on the bridge.
pub fn task_host_script(cfg: &BridgeConfig, net: &TaskNetwork) -> String {
    let mut s = String::new();
    let ns = cfg.netns_name(&net.task_id);
    let _ = writeln!(s, "netns add {ns}");
    if let (Some(veth), Some(mac)) = (&net.veth_host_name, &net.mac) {
        let mtu = cfg.mtu.map(|m| format!(" mtu {m}")).unwrap_or_default();
        let _ = writeln!(
            s,
            "link add name {veth}{mtu} type veth peer name eth0 address {mac}{mtu} netns {ns}"
        );
        let _ = writeln!(s, "link set dev {veth} master {}", cfg.bridge);
        let _ = writeln!(s, "link set dev {veth} up");
    }
    s
}

/// `ip -n NETNS -batch` inside the task's namespace: loopback up, and (with
/// an interface) eth0's address, eth0 up, the default route via the
/// bridge.
pub fn task_ns_script(net: &TaskNetwork) -> String {
    let mut s = String::from("link set dev lo up\n");
    if let (Some(ip), Some(len), Some(gw)) = (net.ipv4, net.prefix_len, net.gateway) {
        let _ = writeln!(s, "addr add {ip}/{len} dev eth0");
        let _ = writeln!(s, "link set dev eth0 up");
        let _ = writeln!(s, "route add default via {gw} dev eth0");
    }
    s
}

/// Route to 169.254.170.2 inside a task's namespace when its default route
/// is not via the bridge (not needed for Berth's own task namespaces: their
/// default route already goes to the bridge, where the DNAT happens).
pub fn credentials_route_script(gateway: Ipv4Addr) -> String {
    format!("route replace {CREDENTIALS_ADDR}/32 via {gateway} dev eth0\n")
}

/// An nft script that removes the table if it is there (nft has no
/// "delete if exists" before 1.0.8: add, then delete, in one transaction).
pub fn nft_delete_table(cfg: &BridgeConfig) -> String {
    let t = &cfg.nft_table;
    format!("add table ip {t}\ndelete table ip {t}\n")
}

fn map_elements(out: &mut String, name: &str, key_type: &str, elems: impl Iterator<Item = String>) {
    let elems: Vec<String> = elems.collect();
    let _ = writeln!(out, "\tmap {name} {{");
    let _ = writeln!(out, "\t\ttype {key_type} : ipv4_addr . inet_service");
    if !elems.is_empty() {
        let _ = writeln!(out, "\t\telements = {{ {} }}", elems.join(", "));
    }
    out.push_str("\t}\n");
}

/// The bridge's whole nftables table, replacing whatever is there in one
/// atomic transaction:
///
/// - maps from host port (and, for mappings bound to one address, host
///   address and port) to task address and port, one pair per protocol;
/// - DNAT through those maps for packets to any local address, both
///   arriving (`prerouting`: other hosts, tasks) and locally generated
///   (`output`: the host itself, 127.0.0.1 included);
/// - masquerade of DNATed connections that leave through the bridge from
///   127.0.0.0/8 (the task could not answer 127.0.0.1) or from the subnet
///   itself (hairpin: a task reaching a published port), plus the optional
///   egress masquerade;
/// - the credentials endpoint: 169.254.170.2:80, from the bridge and from
///   the host itself (host-mode tasks), to a host address and port.
pub fn nft_table(
    cfg: &BridgeConfig,
    targets: &[(Ipv4Addr, PortMapping)],
    credentials: Option<CredentialsEndpoint>,
) -> String {
    let t = &cfg.nft_table;
    let br = &cfg.bridge;
    let subnet = cfg.subnet;
    let mut s = nft_delete_table(cfg);
    let _ = writeln!(s, "table ip {t} {{");
    for proto in [Protocol::Tcp, Protocol::Udp] {
        let of = |want_addr: bool| {
            targets.iter().filter(move |(_, m)| {
                m.protocol == proto && m.specific_host_ip().is_some() == want_addr
            })
        };
        map_elements(
            &mut s,
            &format!("{proto}_any"),
            "inet_service",
            of(false).map(|(ip, m)| format!("{} : {ip} . {}", m.host_port, m.container_port)),
        );
        map_elements(
            &mut s,
            &format!("{proto}_addr"),
            "ipv4_addr . inet_service",
            of(true).map(|(ip, m)| {
                format!(
                    "{} . {} : {ip} . {}",
                    m.specific_host_ip().expect("filtered"),
                    m.host_port,
                    m.container_port
                )
            }),
        );
    }
    s.push_str("\tchain publish {\n");
    for proto in ["tcp", "udp"] {
        let _ = writeln!(s, "\t\tdnat to ip daddr . {proto} dport map @{proto}_addr");
    }
    for proto in ["tcp", "udp"] {
        let _ = writeln!(s, "\t\tdnat to {proto} dport map @{proto}_any");
    }
    s.push_str("\t}\n");
    s.push_str(
        "\tchain prerouting {\n\t\ttype nat hook prerouting priority -100; policy accept;\n",
    );
    if let Some(ep) = credentials {
        let _ = writeln!(
            s,
            "\t\tiifname \"{br}\" ip daddr {CREDENTIALS_ADDR} tcp dport 80 dnat to {}:{}",
            ep.ip(),
            ep.port()
        );
    }
    s.push_str("\t\tfib daddr type local jump publish\n\t}\n");
    s.push_str("\tchain output {\n\t\ttype nat hook output priority -100; policy accept;\n");
    if let Some(ep) = credentials {
        // Host-mode tasks (and the host) reach the endpoint too.
        let _ = writeln!(
            s,
            "\t\tip daddr {CREDENTIALS_ADDR} tcp dport 80 dnat to {}:{}",
            ep.ip(),
            ep.port()
        );
    }
    s.push_str("\t\tfib daddr type local jump publish\n\t}\n");
    s.push_str(
        "\tchain postrouting {\n\t\ttype nat hook postrouting priority 100; policy accept;\n",
    );
    let _ = writeln!(
        s,
        "\t\toifname \"{br}\" ct status dnat ip saddr {{ 127.0.0.0/8, {subnet} }} masquerade"
    );
    if cfg.masquerade_egress {
        let _ = writeln!(s, "\t\tip saddr {subnet} oifname != \"{br}\" masquerade");
    }
    s.push_str("\t}\n}\n");
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::NetState;
    use crate::types::NetworkMode;

    fn cfg() -> BridgeConfig {
        BridgeConfig {
            bridge: "bt1".into(),
            subnet: "10.213.1.0/24".parse().unwrap(),
            nft_table: "berth_test_1".into(),
            netns_prefix: "bt1-".into(),
            veth_prefix: "vt".into(),
            ..BridgeConfig::default()
        }
    }

    #[test]
    fn bridge_batch() {
        assert_eq!(
            bridge_script(&cfg(), false),
            "link add name bt1 address 0a:58:0a:d5:01:01 type bridge\n\
             addr replace 10.213.1.1/24 dev bt1\n\
             link set dev bt1 up\n"
        );
        let with_mtu = BridgeConfig {
            mtu: Some(1450),
            ..cfg()
        };
        assert_eq!(
            bridge_script(&with_mtu, true),
            "link set dev bt1 mtu 1450\naddr replace 10.213.1.1/24 dev bt1\nlink set dev bt1 up\n"
        );
    }

    #[test]
    fn task_batches() {
        let cfg = cfg();
        let net = NetState::describe(
            &cfg,
            "t1",
            NetworkMode::Bridge,
            Some("10.213.1.2".parse().unwrap()),
        );
        assert_eq!(
            task_host_script(&cfg, &net),
            "netns add bt1-t1\n\
             link add name vt0ad50102 type veth peer name eth0 address 0a:58:0a:d5:01:02 netns bt1-t1\n\
             link set dev vt0ad50102 master bt1\n\
             link set dev vt0ad50102 up\n"
        );
        assert_eq!(
            task_ns_script(&net),
            "link set dev lo up\n\
             addr add 10.213.1.2/24 dev eth0\n\
             link set dev eth0 up\n\
             route add default via 10.213.1.1 dev eth0\n"
        );
        let none = NetState::describe(&cfg, "t2", NetworkMode::None, None);
        assert_eq!(task_host_script(&cfg, &none), "netns add bt1-t2\n");
        assert_eq!(task_ns_script(&none), "link set dev lo up\n");
    }

    #[test]
    fn nft_table_with_ports_and_credentials() {
        let cfg = cfg();
        let task: Ipv4Addr = "10.213.1.2".parse().unwrap();
        let targets = vec![
            (task, PortMapping::tcp(18080, 80)),
            (task, PortMapping::udp(15353, 53)),
            (
                task,
                PortMapping {
                    host_ip: Some(Ipv4Addr::LOCALHOST),
                    ..PortMapping::tcp(18081, 81)
                },
            ),
        ];
        let got = nft_table(&cfg, &targets, Some("127.0.0.1:51679".parse().unwrap()));
        let want = "add table ip berth_test_1
delete table ip berth_test_1
table ip berth_test_1 {
\tmap tcp_any {
\t\ttype inet_service : ipv4_addr . inet_service
\t\telements = { 18080 : 10.213.1.2 . 80 }
\t}
\tmap tcp_addr {
\t\ttype ipv4_addr . inet_service : ipv4_addr . inet_service
\t\telements = { 127.0.0.1 . 18081 : 10.213.1.2 . 81 }
\t}
\tmap udp_any {
\t\ttype inet_service : ipv4_addr . inet_service
\t\telements = { 15353 : 10.213.1.2 . 53 }
\t}
\tmap udp_addr {
\t\ttype ipv4_addr . inet_service : ipv4_addr . inet_service
\t}
\tchain publish {
\t\tdnat to ip daddr . tcp dport map @tcp_addr
\t\tdnat to ip daddr . udp dport map @udp_addr
\t\tdnat to tcp dport map @tcp_any
\t\tdnat to udp dport map @udp_any
\t}
\tchain prerouting {
\t\ttype nat hook prerouting priority -100; policy accept;
\t\tiifname \"bt1\" ip daddr 169.254.170.2 tcp dport 80 dnat to 127.0.0.1:51679
\t\tfib daddr type local jump publish
\t}
\tchain output {
\t\ttype nat hook output priority -100; policy accept;
\t\tip daddr 169.254.170.2 tcp dport 80 dnat to 127.0.0.1:51679
\t\tfib daddr type local jump publish
\t}
\tchain postrouting {
\t\ttype nat hook postrouting priority 100; policy accept;
\t\toifname \"bt1\" ct status dnat ip saddr { 127.0.0.0/8, 10.213.1.0/24 } masquerade
\t\tip saddr 10.213.1.0/24 oifname != \"bt1\" masquerade
\t}
}
";
        assert_eq!(got, want);
        let bare = nft_table(
            &BridgeConfig {
                masquerade_egress: false,
                ..cfg.clone()
            },
            &[],
            None,
        );
        assert!(!bare.contains("elements"));
        assert!(!bare.contains("169.254.170.2"));
        assert!(!bare.contains("oifname !="));
    }
}
