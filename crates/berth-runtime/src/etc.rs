//! The files a container gets in `/etc` from its spec: `hosts` (with ECS
//! `extraHosts`), `hostname` and `resolv.conf` (ECS `dnsServers`,
//! `dnsSearchDomains`). Pure text rendering; the runtime writes them into
//! the bundle and bind-mounts them.

use crate::spec::{DnsConfig, HostEntry};

/// `/etc/hosts`: the loopback names, then one line per extra host.
pub fn hosts(extra: &[HostEntry]) -> String {
    let mut out = String::from(
        "127.0.0.1\tlocalhost\n\
         ::1\tlocalhost ip6-localhost ip6-loopback\n\
         fe00::0\tip6-localnet\n\
         ff00::0\tip6-mcastprefix\n\
         ff02::1\tip6-allnodes\n\
         ff02::2\tip6-allrouters\n",
    );
    for h in extra {
        out.push_str(&format!("{}\t{}\n", h.ip_address.trim(), h.hostname.trim()));
    }
    out
}

/// `/etc/hostname`.
pub fn hostname(name: Option<&str>) -> String {
    format!("{}\n", name.unwrap_or(""))
}

/// `/etc/resolv.conf` from an explicit configuration.
pub fn resolv_conf(dns: &DnsConfig) -> String {
    let mut out = String::new();
    for s in &dns.servers {
        out.push_str(&format!("nameserver {}\n", s.trim()));
    }
    if !dns.search.is_empty() {
        out.push_str(&format!("search {}\n", dns.search.join(" ")));
    }
    if !dns.options.is_empty() {
        out.push_str(&format!("options {}\n", dns.options.join(" ")));
    }
    out
}

/// The host's `resolv.conf` made fit for a container. In a network
/// namespace of its own a loopback nameserver (systemd-resolved's
/// 127.0.0.53, dnsmasq) is unreachable, so such lines are dropped.
pub fn resolv_conf_from_host(host: &str, own_network_namespace: bool) -> String {
    let mut out = String::new();
    for line in host.lines() {
        let mut words = line.split_whitespace();
        if own_network_namespace && words.next() == Some("nameserver") {
            let addr = words.next().unwrap_or("");
            if addr.starts_with("127.") || addr == "::1" {
                continue;
            }
        }
        out.push_str(line);
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_lists_localhost_then_extra_hosts() {
        let text = hosts(&[HostEntry {
            hostname: "db".into(),
            ip_address: "10.0.0.5".into(),
        }]);
        assert!(
            text.starts_with("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n")
        );
        assert!(text.ends_with("ff02::2\tip6-allrouters\n10.0.0.5\tdb\n"));
    }

    #[test]
    fn resolv_conf_renders_servers_search_options() {
        let dns = DnsConfig {
            servers: vec!["10.0.0.2".into(), "1.1.1.1".into()],
            search: vec!["svc.local".into(), "corp".into()],
            options: vec!["ndots:2".into()],
        };
        assert_eq!(
            resolv_conf(&dns),
            "nameserver 10.0.0.2\nnameserver 1.1.1.1\nsearch svc.local corp\noptions ndots:2\n"
        );
        assert_eq!(resolv_conf(&DnsConfig::default()), "");
    }

    #[test]
    fn host_resolv_conf_drops_loopback_servers_in_own_netns() {
        let host = "# generated\nnameserver 127.0.0.53\nnameserver 10.1.1.1\nsearch lan\n";
        assert_eq!(
            resolv_conf_from_host(host, true),
            "# generated\nnameserver 10.1.1.1\nsearch lan\n"
        );
        assert_eq!(resolv_conf_from_host(host, false), host);
    }

    #[test]
    fn hostname_file() {
        assert_eq!(hostname(Some("web")), "web\n");
    }
}
