//! IPv4 subnets ([`Ipv4Net`]) and the names and MAC addresses Berth derives
//! from a task's address. Pure.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::net::Ipv4Addr;
use std::str::FromStr;

/// An IPv4 subnet in CIDR form, e.g. `172.29.0.0/16`. The address is the
/// network address: host bits must be zero.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Ipv4Net {
    network: Ipv4Addr,
    prefix_len: u8,
}

/// Why a CIDR string or value was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid IPv4 subnet {input:?}: {reason}")]
pub struct CidrError {
    pub input: String,
    pub reason: &'static str,
}

impl Ipv4Net {
    pub fn new(network: Ipv4Addr, prefix_len: u8) -> Result<Ipv4Net, CidrError> {
        let err = |reason| CidrError {
            input: format!("{network}/{prefix_len}"),
            reason,
        };
        if prefix_len > 32 {
            return Err(err("the prefix length is more than 32"));
        }
        if u32::from(network) & !mask(prefix_len) != 0 {
            return Err(err("host bits are set (give the network address)"));
        }
        Ok(Ipv4Net {
            network,
            prefix_len,
        })
    }

    /// The subnet `addr` lies in, host bits cleared.
    pub fn containing(addr: Ipv4Addr, prefix_len: u8) -> Ipv4Net {
        let prefix_len = prefix_len.min(32);
        Ipv4Net {
            network: Ipv4Addr::from(u32::from(addr) & mask(prefix_len)),
            prefix_len,
        }
    }

    pub fn network(&self) -> Ipv4Addr {
        self.network
    }

    pub fn prefix_len(&self) -> u8 {
        self.prefix_len
    }

    pub fn netmask(&self) -> Ipv4Addr {
        Ipv4Addr::from(mask(self.prefix_len))
    }

    pub fn broadcast(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.network) | !mask(self.prefix_len))
    }

    /// How many addresses the subnet spans, network and broadcast included.
    pub fn size(&self) -> u64 {
        1u64 << (32 - u32::from(self.prefix_len))
    }

    pub fn contains(&self, addr: Ipv4Addr) -> bool {
        u32::from(addr) & mask(self.prefix_len) == u32::from(self.network)
    }

    /// Whether the two subnets share any address.
    pub fn overlaps(&self, other: &Ipv4Net) -> bool {
        self.contains(other.network) || other.contains(self.network)
    }

    /// The address `offset` places after the network address, if it is
    /// inside the subnet.
    pub fn nth(&self, offset: u64) -> Option<Ipv4Addr> {
        (offset < self.size()).then(|| Ipv4Addr::from(u32::from(self.network) + offset as u32))
    }

    /// The offset of `addr` from the network address, if it is inside.
    pub fn offset_of(&self, addr: Ipv4Addr) -> Option<u64> {
        self.contains(addr)
            .then(|| u64::from(u32::from(addr) - u32::from(self.network)))
    }

    /// The first address after the network address: the conventional
    /// gateway. `None` for /31 and /32.
    pub fn first_host(&self) -> Option<Ipv4Addr> {
        (self.prefix_len <= 30).then(|| self.nth(1).expect("a /30 has four addresses"))
    }
}

fn mask(prefix_len: u8) -> u32 {
    if prefix_len == 0 {
        0
    } else {
        u32::MAX << (32 - u32::from(prefix_len.min(32)))
    }
}

impl fmt::Display for Ipv4Net {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix_len)
    }
}

impl FromStr for Ipv4Net {
    type Err = CidrError;

    fn from_str(s: &str) -> Result<Ipv4Net, CidrError> {
        let err = |reason| CidrError {
            input: s.to_string(),
            reason,
        };
        let (addr, len) = s
            .split_once('/')
            .ok_or_else(|| err("expected ADDRESS/PREFIX, e.g. 172.29.0.0/16"))?;
        let addr: Ipv4Addr = addr.parse().map_err(|_| err("not an IPv4 address"))?;
        if len.is_empty() || len.len() > 2 || !len.bytes().all(|b| b.is_ascii_digit()) {
            return Err(err("the prefix length is not a number from 0 to 32"));
        }
        let len: u8 = len
            .parse()
            .map_err(|_| err("the prefix length is not a number"))?;
        Ipv4Net::new(addr, len).map_err(|e| err(e.reason))
    }
}

impl Serialize for Ipv4Net {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Ipv4Net {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Ipv4Net, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// The MAC address Berth gives the interface holding `addr`: `0a:58:` and
/// the four bytes of the address (locally administered, unicast; the
/// scheme CNI plugins use), so a reused address keeps its MAC and ARP
/// caches elsewhere stay right.
pub fn mac_for(addr: Ipv4Addr) -> String {
    let [a, b, c, d] = addr.octets();
    format!("0a:58:{a:02x}:{b:02x}:{c:02x}:{d:02x}")
}

/// The host-side veth name of the task holding `addr`: `prefix` and the
/// address in hex (`vb` + `ac1d0005` for 172.29.0.5). Unique because the
/// address is, and at most 15 bytes (IFNAMSIZ) for a prefix of at most 7.
pub fn veth_name(prefix: &str, addr: Ipv4Addr) -> String {
    format!("{prefix}{:08x}", u32::from(addr))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_formats() {
        let n: Ipv4Net = "172.29.0.0/16".parse().unwrap();
        assert_eq!(n.to_string(), "172.29.0.0/16");
        assert_eq!(n.netmask(), Ipv4Addr::new(255, 255, 0, 0));
        assert_eq!(n.broadcast(), Ipv4Addr::new(172, 29, 255, 255));
        assert_eq!(n.size(), 65536);
        assert_eq!(n.first_host(), Some(Ipv4Addr::new(172, 29, 0, 1)));
        assert!(n.contains(Ipv4Addr::new(172, 29, 200, 3)));
        assert!(!n.contains(Ipv4Addr::new(172, 30, 0, 0)));
        assert_eq!(n.offset_of(Ipv4Addr::new(172, 29, 1, 0)), Some(256));
        assert_eq!(n.nth(65535), Some(n.broadcast()));
        assert_eq!(n.nth(65536), None);
        let all: Ipv4Net = "0.0.0.0/0".parse().unwrap();
        assert!(all.contains(Ipv4Addr::new(8, 8, 8, 8)));
        assert_eq!(all.size(), 1 << 32);
    }

    #[test]
    fn refuses_bad_input() {
        for bad in [
            "172.29.0.1/16",
            "172.29.0.0",
            "172.29.0.0/33",
            "172.29.0.0/",
            "172.29.0/16",
            "x/8",
            "10.0.0.0/+8",
            "10.0.0.0/008",
        ] {
            assert!(bad.parse::<Ipv4Net>().is_err(), "{bad}");
        }
    }

    #[test]
    fn overlap() {
        let a: Ipv4Net = "10.0.0.0/8".parse().unwrap();
        let b: Ipv4Net = "10.213.4.0/24".parse().unwrap();
        let c: Ipv4Net = "10.213.5.0/24".parse().unwrap();
        assert!(a.overlaps(&b) && b.overlaps(&a));
        assert!(!b.overlaps(&c));
        assert_eq!(Ipv4Net::containing(Ipv4Addr::new(10, 213, 4, 77), 24), b);
    }

    #[test]
    fn serde_as_string() {
        let n: Ipv4Net = "10.1.2.0/24".parse().unwrap();
        assert_eq!(serde_json::to_string(&n).unwrap(), "\"10.1.2.0/24\"");
        assert_eq!(
            serde_json::from_str::<Ipv4Net>("\"10.1.2.0/24\"").unwrap(),
            n
        );
        assert!(serde_json::from_str::<Ipv4Net>("\"10.1.2.3/24\"").is_err());
    }

    #[test]
    fn derived_names() {
        let ip = Ipv4Addr::new(172, 29, 0, 5);
        assert_eq!(mac_for(ip), "0a:58:ac:1d:00:05");
        assert_eq!(veth_name("vb", ip), "vbac1d0005");
    }
}
