//! [`Ipam`]: a pure IPv4 address allocator over one subnet. It never hands
//! out the network address, the broadcast address or a reserved address
//! (the bridge's gateway), never gives one address to two owners, and is
//! idempotent per owner. Its state serializes to JSON, so the agent keeps
//! it in its state file and a restart never double-allocates.
//!
//! Addresses are handed out round-robin from the last one given, so a
//! released address is reused as late as possible: stale ARP entries and
//! conntrack flows of a task that just ended don't land on its successor.

use crate::addr::Ipv4Net;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::Ipv4Addr;

/// Why an allocation was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IpamError {
    #[error(
        "subnet {subnet} is too small: it needs at least one address besides network, broadcast and reserved ones (at most /30)"
    )]
    SubnetTooSmall { subnet: Ipv4Net },
    #[error("reserved address {addr} is outside subnet {subnet}")]
    ReservedOutside { addr: Ipv4Addr, subnet: Ipv4Net },
    #[error("no free address left in {subnet} ({allocated} allocated)")]
    Exhausted { subnet: Ipv4Net, allocated: usize },
    #[error("address {addr} is not a host address of {subnet}")]
    NotAllocatable { addr: Ipv4Addr, subnet: Ipv4Net },
    #[error("address {addr} is already allocated to {owner}")]
    Taken { addr: Ipv4Addr, owner: String },
    #[error("{owner} already holds {addr}")]
    OwnerHasAddress { owner: String, addr: Ipv4Addr },
}

/// The allocator. Serializes as `{subnet, reserved, allocations: {ip:
/// owner}, cursor}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(from = "IpamRepr", into = "IpamRepr")]
pub struct Ipam {
    subnet: Ipv4Net,
    reserved: BTreeSet<Ipv4Addr>,
    allocations: BTreeMap<Ipv4Addr, String>,
    by_owner: HashMap<String, Ipv4Addr>,
    /// Offset (from the network address) of the last address handed out.
    cursor: u64,
}

#[derive(Serialize, Deserialize)]
struct IpamRepr {
    subnet: Ipv4Net,
    #[serde(default)]
    reserved: BTreeSet<Ipv4Addr>,
    #[serde(default)]
    allocations: BTreeMap<Ipv4Addr, String>,
    #[serde(default)]
    cursor: u64,
}

impl From<IpamRepr> for Ipam {
    fn from(r: IpamRepr) -> Ipam {
        let by_owner = r
            .allocations
            .iter()
            .map(|(ip, owner)| (owner.clone(), *ip))
            .collect();
        Ipam {
            subnet: r.subnet,
            reserved: r.reserved,
            allocations: r.allocations,
            by_owner,
            cursor: r.cursor,
        }
    }
}

impl From<Ipam> for IpamRepr {
    fn from(i: Ipam) -> IpamRepr {
        IpamRepr {
            subnet: i.subnet,
            reserved: i.reserved,
            allocations: i.allocations,
            cursor: i.cursor,
        }
    }
}

impl Ipam {
    /// An empty allocator over `subnet` that never hands out `reserved`
    /// (typically the gateway).
    pub fn new(
        subnet: Ipv4Net,
        reserved: impl IntoIterator<Item = Ipv4Addr>,
    ) -> Result<Ipam, IpamError> {
        let reserved: BTreeSet<Ipv4Addr> = reserved.into_iter().collect();
        if let Some(addr) = reserved.iter().find(|a| !subnet.contains(**a)) {
            return Err(IpamError::ReservedOutside {
                addr: *addr,
                subnet,
            });
        }
        let ipam = Ipam {
            subnet,
            reserved,
            allocations: BTreeMap::new(),
            by_owner: HashMap::new(),
            cursor: 0,
        };
        if subnet.prefix_len() > 30 || ipam.capacity() == 0 {
            return Err(IpamError::SubnetTooSmall { subnet });
        }
        Ok(ipam)
    }

    pub fn subnet(&self) -> Ipv4Net {
        self.subnet
    }

    pub fn reserved(&self) -> impl Iterator<Item = Ipv4Addr> + '_ {
        self.reserved.iter().copied()
    }

    /// How many addresses can be handed out in all.
    pub fn capacity(&self) -> u64 {
        let reserved_hosts = self
            .reserved
            .iter()
            .filter(|a| self.is_host_offset(self.subnet.offset_of(**a)))
            .count() as u64;
        self.subnet.size().saturating_sub(2) - reserved_hosts
    }

    /// How many are handed out now.
    pub fn len(&self) -> usize {
        self.allocations.len()
    }

    pub fn is_empty(&self) -> bool {
        self.allocations.is_empty()
    }

    fn is_host_offset(&self, offset: Option<u64>) -> bool {
        matches!(offset, Some(o) if o >= 1 && o + 1 < self.subnet.size())
    }

    /// Whether `addr` may be handed out at all (inside, not network,
    /// broadcast or reserved), allocated or not.
    pub fn is_allocatable(&self, addr: Ipv4Addr) -> bool {
        self.is_host_offset(self.subnet.offset_of(addr)) && !self.reserved.contains(&addr)
    }

    /// An address for `owner`: the one it already holds, or a free one.
    pub fn allocate(&mut self, owner: &str) -> Result<Ipv4Addr, IpamError> {
        if let Some(addr) = self.by_owner.get(owner) {
            return Ok(*addr);
        }
        if self.allocations.len() as u64 >= self.capacity() {
            return Err(IpamError::Exhausted {
                subnet: self.subnet,
                allocated: self.allocations.len(),
            });
        }
        // Host offsets are 1..=size-2; walk them round-robin from the
        // cursor. There is a free one (checked above), so this ends.
        let hosts = self.subnet.size() - 2;
        let start = self.cursor.clamp(1, hosts);
        for step in 1..=hosts {
            let offset = (start - 1 + step) % hosts + 1;
            let addr = self.subnet.nth(offset).expect("offset inside subnet");
            if self.reserved.contains(&addr) || self.allocations.contains_key(&addr) {
                continue;
            }
            self.cursor = offset;
            self.insert(addr, owner);
            return Ok(addr);
        }
        unreachable!("capacity said a free address exists")
    }

    /// Gives `owner` exactly `addr` (adopting what a restarted agent finds
    /// in the kernel). Idempotent when `owner` already holds `addr`.
    pub fn allocate_specific(&mut self, addr: Ipv4Addr, owner: &str) -> Result<(), IpamError> {
        if !self.is_allocatable(addr) {
            return Err(IpamError::NotAllocatable {
                addr,
                subnet: self.subnet,
            });
        }
        match (self.allocations.get(&addr), self.by_owner.get(owner)) {
            (Some(o), _) if o == owner => Ok(()),
            (Some(o), _) => Err(IpamError::Taken {
                addr,
                owner: o.clone(),
            }),
            (None, Some(held)) => Err(IpamError::OwnerHasAddress {
                owner: owner.to_string(),
                addr: *held,
            }),
            (None, None) => {
                self.insert(addr, owner);
                Ok(())
            }
        }
    }

    fn insert(&mut self, addr: Ipv4Addr, owner: &str) {
        self.allocations.insert(addr, owner.to_string());
        self.by_owner.insert(owner.to_string(), addr);
    }

    /// Frees what `owner` holds; returns the address it had.
    pub fn release(&mut self, owner: &str) -> Option<Ipv4Addr> {
        let addr = self.by_owner.remove(owner)?;
        self.allocations.remove(&addr);
        Some(addr)
    }

    /// Frees `addr`; returns its owner.
    pub fn release_addr(&mut self, addr: Ipv4Addr) -> Option<String> {
        let owner = self.allocations.remove(&addr)?;
        self.by_owner.remove(&owner);
        Some(owner)
    }

    pub fn address_of(&self, owner: &str) -> Option<Ipv4Addr> {
        self.by_owner.get(owner).copied()
    }

    pub fn owner_of(&self, addr: Ipv4Addr) -> Option<&str> {
        self.allocations.get(&addr).map(String::as_str)
    }

    /// Every allocation, in address order.
    pub fn allocations(&self) -> impl Iterator<Item = (Ipv4Addr, &str)> + '_ {
        self.allocations.iter().map(|(a, o)| (*a, o.as_str()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn net(s: &str) -> Ipv4Net {
        s.parse().unwrap()
    }

    fn ip(s: &str) -> Ipv4Addr {
        s.parse().unwrap()
    }

    #[test]
    fn skips_network_gateway_and_broadcast() {
        let mut ipam = Ipam::new(net("10.9.0.0/29"), [ip("10.9.0.1")]).unwrap();
        assert_eq!(ipam.capacity(), 5);
        let got: Vec<_> = (0..5)
            .map(|i| ipam.allocate(&format!("t{i}")).unwrap())
            .collect();
        assert_eq!(
            got,
            ["10.9.0.2", "10.9.0.3", "10.9.0.4", "10.9.0.5", "10.9.0.6"].map(ip)
        );
        assert!(matches!(
            ipam.allocate("t5"),
            Err(IpamError::Exhausted { allocated: 5, .. })
        ));
    }

    #[test]
    fn idempotent_per_owner() {
        let mut ipam = Ipam::new(net("10.9.0.0/24"), [ip("10.9.0.1")]).unwrap();
        let a = ipam.allocate("a").unwrap();
        assert_eq!(ipam.allocate("a").unwrap(), a);
        assert_eq!(ipam.len(), 1);
        assert_eq!(ipam.address_of("a"), Some(a));
        assert_eq!(ipam.owner_of(a), Some("a"));
    }

    #[test]
    fn release_then_reuse_round_robin() {
        let mut ipam = Ipam::new(net("10.9.0.0/29"), [ip("10.9.0.1")]).unwrap();
        let a = ipam.allocate("a").unwrap();
        assert_eq!(ipam.release("a"), Some(a));
        assert_eq!(ipam.release("a"), None);
        // The next allocation moves on rather than reusing `a` at once...
        let b = ipam.allocate("b").unwrap();
        assert_ne!(a, b);
        // ...but `a` comes back once the others are used.
        for i in 0..3 {
            ipam.allocate(&format!("x{i}")).unwrap();
        }
        assert_eq!(ipam.allocate("c").unwrap(), a);
        assert_eq!(ipam.release_addr(b), Some("b".to_string()));
        assert_eq!(ipam.address_of("b"), None);
    }

    #[test]
    fn specific_addresses() {
        let mut ipam = Ipam::new(net("10.9.0.0/24"), [ip("10.9.0.1")]).unwrap();
        ipam.allocate_specific(ip("10.9.0.7"), "a").unwrap();
        ipam.allocate_specific(ip("10.9.0.7"), "a").unwrap();
        assert!(matches!(
            ipam.allocate_specific(ip("10.9.0.7"), "b"),
            Err(IpamError::Taken { .. })
        ));
        assert!(matches!(
            ipam.allocate_specific(ip("10.9.0.8"), "a"),
            Err(IpamError::OwnerHasAddress { .. })
        ));
        for bad in ["10.9.0.0", "10.9.0.1", "10.9.0.255", "10.9.1.3"] {
            assert!(matches!(
                ipam.allocate_specific(ip(bad), "c"),
                Err(IpamError::NotAllocatable { .. })
            ));
        }
    }

    #[test]
    fn refuses_tiny_subnets_and_foreign_reservations() {
        assert!(Ipam::new(net("10.9.0.0/31"), []).is_err());
        assert!(Ipam::new(net("10.9.0.0/30"), [ip("10.9.0.1"), ip("10.9.0.2")]).is_err());
        assert_eq!(
            Ipam::new(net("10.9.0.0/30"), [ip("10.9.0.1")])
                .unwrap()
                .capacity(),
            1
        );
        assert!(matches!(
            Ipam::new(net("10.9.0.0/24"), [ip("10.8.0.1")]),
            Err(IpamError::ReservedOutside { .. })
        ));
    }

    #[test]
    fn json_round_trip_keeps_allocations_and_cursor() {
        let mut ipam = Ipam::new(net("10.9.0.0/24"), [ip("10.9.0.1")]).unwrap();
        ipam.allocate("a").unwrap();
        ipam.allocate("b").unwrap();
        ipam.release("a");
        let json = serde_json::to_string(&ipam).unwrap();
        let mut back: Ipam = serde_json::from_str(&json).unwrap();
        assert_eq!(back, ipam);
        assert_eq!(back.address_of("b"), Some(ip("10.9.0.3")));
        assert_eq!(back.allocate("c").unwrap(), ip("10.9.0.4"));
    }

    #[test]
    fn large_subnet_is_quick() {
        let mut ipam = Ipam::new(net("10.0.0.0/8"), [ip("10.0.0.1")]).unwrap();
        for i in 0..10_000 {
            ipam.allocate(&format!("t{i}")).unwrap();
        }
        assert_eq!(ipam.len(), 10_000);
    }

    #[derive(Debug, Clone)]
    enum Op {
        Alloc(u8),
        Release(u8),
        ReleaseAddr(u8),
        Specific(u8, u8),
        Reload,
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            4 => (0u8..40).prop_map(Op::Alloc),
            2 => (0u8..40).prop_map(Op::Release),
            1 => any::<u8>().prop_map(Op::ReleaseAddr),
            1 => ((0u8..40), any::<u8>()).prop_map(|(o, a)| Op::Specific(o, a)),
            1 => Just(Op::Reload),
        ]
    }

    proptest! {
        #[test]
        fn never_double_allocates(prefix in 26u8..=30, ops in proptest::collection::vec(op(), 1..200)) {
            let subnet = Ipv4Net::new(ip("10.77.0.0"), prefix).unwrap();
            let gateway = subnet.first_host().unwrap();
            let mut ipam = Ipam::new(subnet, [gateway]).unwrap();
            // The model: owner -> address.
            let mut model: BTreeMap<String, Ipv4Addr> = BTreeMap::new();
            for op in ops {
                match op {
                    Op::Alloc(o) => {
                        let owner = format!("t{o}");
                        match ipam.allocate(&owner) {
                            Ok(addr) => {
                                if let Some(prev) = model.get(&owner) {
                                    prop_assert_eq!(*prev, addr);
                                }
                                prop_assert!(ipam.is_allocatable(addr));
                                prop_assert!(addr != gateway && addr != subnet.network() && addr != subnet.broadcast());
                                prop_assert!(!model.iter().any(|(o2, a2)| *a2 == addr && *o2 != owner));
                                model.insert(owner, addr);
                            }
                            Err(IpamError::Exhausted { .. }) => {
                                prop_assert!(!model.contains_key(&owner));
                                prop_assert_eq!(model.len() as u64, ipam.capacity());
                            }
                            Err(e) => prop_assert!(false, "unexpected {e}"),
                        }
                    }
                    Op::Release(o) => {
                        let owner = format!("t{o}");
                        prop_assert_eq!(ipam.release(&owner), model.remove(&owner));
                    }
                    Op::ReleaseAddr(n) => {
                        let addr = subnet.nth(u64::from(n) % subnet.size()).unwrap();
                        let expected = model.iter().find(|(_, a)| **a == addr).map(|(o, _)| o.clone());
                        if let Some(o) = &expected { model.remove(o); }
                        prop_assert_eq!(ipam.release_addr(addr), expected);
                    }
                    Op::Specific(o, n) => {
                        let owner = format!("t{o}");
                        let addr = subnet.nth(u64::from(n) % subnet.size()).unwrap();
                        let ok = ipam.allocate_specific(addr, &owner).is_ok();
                        let taken_by_other = model.iter().any(|(o2, a2)| *a2 == addr && *o2 != owner);
                        let expect_ok = ipam.is_allocatable(addr)
                            && !taken_by_other
                            && model.get(&owner).is_none_or(|a| *a == addr);
                        prop_assert_eq!(ok, expect_ok);
                        if ok { model.insert(owner, addr); }
                    }
                    Op::Reload => {
                        ipam = serde_json::from_str(&serde_json::to_string(&ipam).unwrap()).unwrap();
                    }
                }
                // The allocator agrees with the model, both ways.
                let got: BTreeMap<String, Ipv4Addr> =
                    ipam.allocations().map(|(a, o)| (o.to_string(), a)).collect();
                prop_assert_eq!(&got, &model);
                prop_assert_eq!(ipam.len(), model.len());
            }
        }

        #[test]
        fn fills_to_capacity_exactly(prefix in 24u8..=30) {
            let subnet = Ipv4Net::new(ip("10.78.0.0"), prefix).unwrap();
            let mut ipam = Ipam::new(subnet, [subnet.first_host().unwrap()]).unwrap();
            let mut seen = BTreeSet::new();
            for i in 0..ipam.capacity() {
                let addr = ipam.allocate(&format!("t{i}")).unwrap();
                prop_assert!(seen.insert(addr));
            }
            let exhausted = matches!(ipam.allocate("one-more"), Err(IpamError::Exhausted { .. }));
            prop_assert!(exhausted);
            // Releasing any one makes exactly that one available again.
            let victim = *seen.iter().nth(seen.len() / 2).unwrap();
            ipam.release_addr(victim);
            prop_assert_eq!(ipam.allocate("again").unwrap(), victim);
        }
    }
}
