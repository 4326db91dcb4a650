//! The host's IPv4 routes (main table, from `/proc/net/route`), to refuse a
//! bridge subnet that would shadow or be shadowed by an existing route.

use crate::addr::Ipv4Net;
use std::net::Ipv4Addr;

/// One route of the main table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub iface: String,
    pub destination: Ipv4Net,
}

/// Parses the text of `/proc/net/route`. Lines that don't parse are
/// skipped.
pub fn parse_proc_net_route(text: &str) -> Vec<Route> {
    text.lines()
        .skip(1)
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            if f.len() < 8 {
                return None;
            }
            let dest = u32::from_str_radix(f[1], 16).ok()?;
            let mask = u32::from_str_radix(f[7], 16).ok()?;
            // The kernel prints the big-endian words as host integers.
            let dest = Ipv4Addr::from(dest.to_le_bytes());
            let mask = u32::from_be_bytes(mask.to_le_bytes());
            if mask.leading_ones() != mask.count_ones() {
                return None;
            }
            let destination = Ipv4Net::containing(dest, mask.count_ones() as u8);
            Some(Route {
                iface: f[0].to_string(),
                destination,
            })
        })
        .collect()
}

/// The host's routes that overlap `subnet`, other than default routes and
/// routes through `own_iface` (the bridge itself).
pub fn overlapping_routes(subnet: &Ipv4Net, own_iface: &str) -> std::io::Result<Vec<Route>> {
    let text = std::fs::read_to_string("/proc/net/route")?;
    Ok(overlapping(&parse_proc_net_route(&text), subnet, own_iface))
}

pub(crate) fn overlapping(routes: &[Route], subnet: &Ipv4Net, own_iface: &str) -> Vec<Route> {
    routes
        .iter()
        .filter(|r| r.destination.prefix_len() > 0 && r.iface != own_iface)
        .filter(|r| r.destination.overlaps(subnet))
        .cloned()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str =
        "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT
eth0\t00000000\t010200C0\t0003\t0\t0\t0\t00000000\t0\t0\t0
eth0\t000200C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0
docker0\t000011AC\t00000000\t0001\t0\t0\t0\t0000FFFF\t0\t0\t0
berth0\t00001DAC\t00000000\t0001\t0\t0\t0\t0000FFFF\t0\t0\t0
";

    #[test]
    fn parses_routes() {
        let r = parse_proc_net_route(SAMPLE);
        assert_eq!(r.len(), 4);
        assert_eq!(r[0].destination.to_string(), "0.0.0.0/0");
        assert_eq!(r[1].destination.to_string(), "192.0.2.0/24");
        assert_eq!(r[2].destination.to_string(), "172.17.0.0/16");
        assert_eq!(r[2].iface, "docker0");
    }

    #[test]
    fn finds_overlaps_but_not_default_or_own() {
        let r = parse_proc_net_route(SAMPLE);
        let berth: Ipv4Net = "172.29.0.0/16".parse().unwrap();
        assert!(overlapping(&r, &berth, "berth0").is_empty());
        assert_eq!(overlapping(&r, &berth, "other").len(), 1);
        let docker: Ipv4Net = "172.16.0.0/12".parse().unwrap();
        assert_eq!(overlapping(&r, &docker, "berth0")[0].iface, "docker0");
    }

    #[test]
    fn reads_this_host() {
        // Whatever the host has, it parses and the default route is kept.
        let all = parse_proc_net_route(&std::fs::read_to_string("/proc/net/route").unwrap());
        let _ = all;
    }
}
