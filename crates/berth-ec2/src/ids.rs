//! Resource ids of the synthetic default network.
//!
//! Nothing is stored: every id is derived from SHA-256 of the account, the
//! region, the kind of resource and its index, so the same account and region
//! always see the same ids (across restarts and across servers), and no two
//! regions or accounts share one. SHA-256 rather than `std`'s hasher because
//! its output is fixed forever; a Rust upgrade must never rename a VPC.

use berth_arn::{AccountId, Region};
use sha2::{Digest, Sha256};

/// The kinds of resource that carry an id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Vpc,
    VpcCidrAssociation,
    Subnet,
    SecurityGroup,
    DhcpOptions,
}

impl Kind {
    /// The id prefix EC2 uses, without the dash.
    pub fn prefix(self) -> &'static str {
        match self {
            Kind::Vpc => "vpc",
            Kind::VpcCidrAssociation => "vpc-cidr-assoc",
            Kind::Subnet => "subnet",
            Kind::SecurityGroup => "sg",
            Kind::DhcpOptions => "dopt",
        }
    }
}

/// `<prefix>-<17 lowercase hex>`, EC2's long id form.
pub fn resource_id(account: &AccountId, region: &Region, kind: Kind, index: u32) -> String {
    let mut h = Sha256::new();
    // NUL separators: no field contains one, so distinct inputs never collide
    // by concatenation.
    for part in ["berth-ec2", kind.prefix(), account.as_str(), region.as_str(), &index.to_string()] {
        h.update(part.as_bytes());
        h.update([0u8]);
    }
    let digest = h.finalize();
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("{}-{}", kind.prefix(), &hex[..17])
}

/// Whether `id` has the shape EC2 accepts for `prefix`: the prefix, a dash,
/// then 8 (the old short form) or 17 lowercase hex digits.
pub fn well_formed(id: &str, prefix: &str) -> bool {
    match id.strip_prefix(prefix).and_then(|rest| rest.strip_prefix('-')) {
        Some(hex) => {
            (hex.len() == 8 || hex.len() == 17) && hex.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        }
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn acct(s: &str) -> AccountId {
        s.parse().unwrap()
    }
    fn reg(s: &str) -> Region {
        s.parse().unwrap()
    }

    #[test]
    fn ids_have_ec2_long_shape() {
        let id = resource_id(&acct("123456789012"), &reg("us-east-1"), Kind::Vpc, 0);
        assert!(well_formed(&id, "vpc"), "{id}");
        assert_eq!(id.len(), "vpc-".len() + 17);
        let assoc = resource_id(&acct("123456789012"), &reg("us-east-1"), Kind::VpcCidrAssociation, 0);
        assert!(assoc.starts_with("vpc-cidr-assoc-"));
        assert_eq!(assoc.len(), "vpc-cidr-assoc-".len() + 17);
    }

    #[test]
    fn ids_are_deterministic() {
        let a = acct("123456789012");
        let r = reg("us-east-1");
        for kind in [Kind::Vpc, Kind::Subnet, Kind::SecurityGroup, Kind::DhcpOptions, Kind::VpcCidrAssociation] {
            assert_eq!(resource_id(&a, &r, kind, 1), resource_id(&a, &r, kind, 1));
        }
    }

    #[test]
    fn ids_are_pinned() {
        // The ids are a contract with every script that recorded one: this
        // value must never change.
        let pinned = resource_id(&acct("000000000000"), &reg("us-east-1"), Kind::Vpc, 0);
        assert_eq!(pinned, PINNED_VPC);
    }
    const PINNED_VPC: &str = "vpc-231d52a2b853427e5";

    #[test]
    fn ids_differ_by_region_account_kind_and_index() {
        let a = acct("123456789012");
        let base = resource_id(&a, &reg("us-east-1"), Kind::Subnet, 0);
        assert_ne!(base, resource_id(&a, &reg("us-east-2"), Kind::Subnet, 0));
        assert_ne!(base, resource_id(&acct("123456789013"), &reg("us-east-1"), Kind::Subnet, 0));
        assert_ne!(base, resource_id(&a, &reg("us-east-1"), Kind::Subnet, 1));
        // Same hash input apart from the kind: the hex parts differ too.
        let vpc = resource_id(&a, &reg("us-east-1"), Kind::Vpc, 0);
        assert_ne!(base.trim_start_matches("subnet-"), vpc.trim_start_matches("vpc-"));
    }

    #[test]
    fn shape_check() {
        assert!(well_formed("vpc-1a2b3c4d", "vpc"));
        assert!(well_formed("vpc-0123456789abcdef0", "vpc"));
        assert!(!well_formed("vpc-0123456789ABCDEF0", "vpc"));
        assert!(!well_formed("vpc-123", "vpc"));
        assert!(!well_formed("vpc-", "vpc"));
        assert!(!well_formed("subnet-1a2b3c4d", "vpc"));
        assert!(!well_formed("vpc1a2b3c4d", "vpc"));
        assert!(!well_formed("sg-1a2b3c4g", "sg"));
    }
}
