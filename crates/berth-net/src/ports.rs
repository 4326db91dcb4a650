//! Host-port diagnostics. Choosing dynamic host ports is placement's job
//! (a conflict is a placement failure, `RESOURCE:PORTS`); these helpers
//! only look at the host, e.g. to explain why a port seems busy.

use crate::types::Protocol;
use std::io;
use std::net::{IpAddr, SocketAddr, TcpListener, UdpSocket};
use std::ops::RangeInclusive;

/// Whether a socket could bind `ip:port` now (bind, then close at once).
/// `Ok(false)` when something holds it; `Err` for other failures (`ip` not
/// an address of this host, no permission for a port below 1024).
///
/// A port published through DNAT is *not* a socket: it looks free here.
/// Check [`crate::Network::published_ports`] as well.
pub fn host_port_free(ip: IpAddr, port: u16, protocol: Protocol) -> io::Result<bool> {
    let addr = SocketAddr::new(ip, port);
    let r = match protocol {
        Protocol::Tcp => TcpListener::bind(addr).map(drop),
        Protocol::Udp => UdpSocket::bind(addr).map(drop),
    };
    match r {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::AddrInUse => Ok(false),
        Err(e) => Err(e),
    }
}

/// The kernel's ephemeral port range (`net.ipv4.ip_local_port_range`),
/// where dynamic host ports come from (ECS: 49153–65535 or this range).
pub fn ephemeral_port_range() -> io::Result<RangeInclusive<u16>> {
    let text = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")?;
    parse_port_range(&text).ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("unreadable port range {text:?}"),
        )
    })
}

fn parse_port_range(text: &str) -> Option<RangeInclusive<u16>> {
    let mut it = text.split_whitespace().map(|s| s.parse::<u16>());
    let lo = it.next()?.ok()?;
    let hi = it.next()?.ok()?;
    (lo <= hi).then_some(lo..=hi)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    #[test]
    fn bound_port_is_not_free() {
        let lo = IpAddr::V4(Ipv4Addr::LOCALHOST);
        let held = TcpListener::bind((lo, 0)).unwrap();
        let port = held.local_addr().unwrap().port();
        assert!(!host_port_free(lo, port, Protocol::Tcp).unwrap());
        drop(held);
        assert!(host_port_free(lo, port, Protocol::Tcp).unwrap());

        let held = UdpSocket::bind((lo, 0)).unwrap();
        let port = held.local_addr().unwrap().port();
        assert!(!host_port_free(lo, port, Protocol::Udp).unwrap());
        drop(held);
        assert!(host_port_free(lo, port, Protocol::Udp).unwrap());
    }

    #[test]
    fn foreign_address_is_an_error() {
        // 203.0.113.0/24 is TEST-NET-3, not an address of this host; binding sends nothing.
        let r = host_port_free(
            IpAddr::V4(Ipv4Addr::new(203, 0, 113, 250)),
            1234,
            Protocol::Tcp,
        );
        assert!(r.is_err());
    }

    #[test]
    fn port_range() {
        assert_eq!(parse_port_range("32768\t60999\n"), Some(32768..=60999));
        assert_eq!(parse_port_range("5 4"), None);
        assert_eq!(parse_port_range("x"), None);
        let r = ephemeral_port_range().unwrap();
        assert!(r.start() <= r.end());
    }
}
