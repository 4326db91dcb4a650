//! The account's default network in one region, as AWS creates it for every
//! account: one default VPC (172.31.0.0/16), one default subnet per
//! availability zone, the VPC's `default` security group and its DHCP options.
//!
//! It is synthetic: derived from the account and region alone (see [`ids`]),
//! never stored, the same on every call.

use crate::ids::{Kind, resource_id};
use berth_arn::{AccountId, Region};

/// How many availability zones every region has in Berth.
pub const ZONE_COUNT: usize = 3;
/// The default VPC's CIDR block, as in every AWS account.
pub const VPC_CIDR: &str = "172.31.0.0/16";
/// The default subnets' CIDR blocks, one per zone in zone order.
pub const SUBNET_CIDRS: [&str; ZONE_COUNT] = ["172.31.0.0/20", "172.31.16.0/20", "172.31.32.0/20"];
/// A /20 has 4096 addresses; AWS reserves five in every subnet.
pub const SUBNET_AVAILABLE_IPS: u32 = 4091;
/// The description AWS gives every VPC's `default` group.
pub const DEFAULT_GROUP_DESCRIPTION: &str = "default VPC security group";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AvailabilityZone {
    /// `us-east-1a`.
    pub name: String,
    /// `use1-az1`.
    pub id: String,
    pub region: String,
    /// The zone group; for a plain availability zone AWS names it after the region.
    pub group_name: String,
    pub network_border_group: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Vpc {
    pub id: String,
    pub owner_id: String,
    pub cidr_block: String,
    pub cidr_association_id: String,
    pub dhcp_options_id: String,
    pub is_default: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subnet {
    pub id: String,
    pub arn: String,
    pub vpc_id: String,
    pub owner_id: String,
    pub cidr_block: String,
    pub availability_zone: String,
    pub availability_zone_id: String,
    pub available_ip_address_count: u32,
    pub default_for_az: bool,
    pub map_public_ip_on_launch: bool,
}

/// One rule of a security group. `user_id_group_pairs` are (user id, group id).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IpPermission {
    /// `-1` for all protocols.
    pub ip_protocol: String,
    pub ip_ranges: Vec<String>,
    pub user_id_group_pairs: Vec<(String, String)>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecurityGroup {
    pub id: String,
    pub arn: String,
    pub name: String,
    pub description: String,
    pub owner_id: String,
    pub vpc_id: String,
    pub ingress: Vec<IpPermission>,
    pub egress: Vec<IpPermission>,
}

/// The default network of one account in one region.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DefaultNetwork {
    pub zones: Vec<AvailabilityZone>,
    pub vpc: Vpc,
    /// One per zone, in zone order.
    pub subnets: Vec<Subnet>,
    pub security_group: SecurityGroup,
}

impl DefaultNetwork {
    pub fn new(account: &AccountId, region: &Region) -> DefaultNetwork {
        let owner = account.as_str().to_string();
        let id = |kind, index| resource_id(account, region, kind, index);
        let code = zone_id_prefix(region.as_str());
        let zones: Vec<AvailabilityZone> = (0..ZONE_COUNT)
            .map(|i| AvailabilityZone {
                name: format!("{}{}", region.as_str(), (b'a' + i as u8) as char),
                id: format!("{code}-az{}", i + 1),
                region: region.as_str().to_string(),
                group_name: region.as_str().to_string(),
                network_border_group: region.as_str().to_string(),
            })
            .collect();
        let vpc = Vpc {
            id: id(Kind::Vpc, 0),
            owner_id: owner.clone(),
            cidr_block: VPC_CIDR.to_string(),
            cidr_association_id: id(Kind::VpcCidrAssociation, 0),
            dhcp_options_id: id(Kind::DhcpOptions, 0),
            is_default: true,
        };
        let subnets = zones
            .iter()
            .enumerate()
            .map(|(i, zone)| {
                let subnet_id = id(Kind::Subnet, i as u32);
                Subnet {
                    arn: format!("arn:aws:ec2:{}:{}:subnet/{}", region.as_str(), owner, subnet_id),
                    id: subnet_id,
                    vpc_id: vpc.id.clone(),
                    owner_id: owner.clone(),
                    cidr_block: SUBNET_CIDRS[i].to_string(),
                    availability_zone: zone.name.clone(),
                    availability_zone_id: zone.id.clone(),
                    available_ip_address_count: SUBNET_AVAILABLE_IPS,
                    default_for_az: true,
                    map_public_ip_on_launch: true,
                }
            })
            .collect();
        let group_id = id(Kind::SecurityGroup, 0);
        let security_group = SecurityGroup {
            arn: format!("arn:aws:ec2:{}:{}:security-group/{}", region.as_str(), owner, group_id),
            name: "default".to_string(),
            description: DEFAULT_GROUP_DESCRIPTION.to_string(),
            owner_id: owner.clone(),
            vpc_id: vpc.id.clone(),
            // All traffic from members of the group itself...
            ingress: vec![IpPermission {
                ip_protocol: "-1".to_string(),
                ip_ranges: vec![],
                user_id_group_pairs: vec![(owner.clone(), group_id.clone())],
            }],
            // ...and all traffic out.
            egress: vec![IpPermission {
                ip_protocol: "-1".to_string(),
                ip_ranges: vec!["0.0.0.0/0".to_string()],
                user_id_group_pairs: vec![],
            }],
            id: group_id,
        };
        DefaultNetwork { zones, vpc, subnets, security_group }
    }
}

/// The prefix of a region's zone ids, as AWS spells it: `us-east-1` → `use1`,
/// `ap-northeast-2` → `apne2`, `us-gov-west-1` → `usgw1`. A region name of
/// another shape (Berth accepts any) is used with its dashes removed.
pub fn zone_id_prefix(region: &str) -> String {
    let parts: Vec<&str> = region.split('-').collect();
    let shaped = parts.len() >= 3
        && parts.last().is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
        && parts.iter().all(|p| !p.is_empty());
    if !shaped {
        return parts.concat();
    }
    let mut out = parts[0].to_string();
    for word in &parts[1..parts.len() - 1] {
        out.push_str(match *word {
            "east" => "e",
            "west" => "w",
            "north" => "n",
            "south" => "s",
            "central" => "c",
            "northeast" => "ne",
            "northwest" => "nw",
            "southeast" => "se",
            "southwest" => "sw",
            "gov" => "g",
            other => &other[..1],
        });
    }
    out.push_str(parts[parts.len() - 1]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(account: &str, region: &str) -> DefaultNetwork {
        DefaultNetwork::new(&account.parse().unwrap(), &region.parse().unwrap())
    }

    #[test]
    fn zone_id_prefixes_match_aws() {
        for (region, prefix) in [
            ("us-east-1", "use1"),
            ("us-east-2", "use2"),
            ("us-west-2", "usw2"),
            ("eu-west-1", "euw1"),
            ("eu-central-1", "euc1"),
            ("eu-north-1", "eun1"),
            ("ap-northeast-1", "apne1"),
            ("ap-southeast-2", "apse2"),
            ("ap-south-1", "aps1"),
            ("sa-east-1", "sae1"),
            ("ca-central-1", "cac1"),
            ("us-gov-west-1", "usgw1"),
            ("cn-northwest-1", "cnnw1"),
            ("local", "local"),
            ("my-lab", "mylab"),
        ] {
            assert_eq!(zone_id_prefix(region), prefix, "{region}");
        }
    }

    #[test]
    fn default_network_shape() {
        let n = net("123456789012", "us-east-1");
        assert_eq!(
            n.zones.iter().map(|z| z.name.as_str()).collect::<Vec<_>>(),
            ["us-east-1a", "us-east-1b", "us-east-1c"]
        );
        assert_eq!(n.zones.iter().map(|z| z.id.as_str()).collect::<Vec<_>>(), ["use1-az1", "use1-az2", "use1-az3"]);
        assert_eq!(n.vpc.cidr_block, "172.31.0.0/16");
        assert!(n.vpc.is_default);
        assert_eq!(n.subnets.len(), 3);
        for (i, s) in n.subnets.iter().enumerate() {
            assert_eq!(s.vpc_id, n.vpc.id);
            assert_eq!(s.availability_zone, n.zones[i].name);
            assert_eq!(s.availability_zone_id, n.zones[i].id);
            assert_eq!(s.cidr_block, SUBNET_CIDRS[i]);
            assert!(s.default_for_az && s.map_public_ip_on_launch);
            assert_eq!(s.available_ip_address_count, 4091);
            assert_eq!(s.arn, format!("arn:aws:ec2:us-east-1:123456789012:subnet/{}", s.id));
        }
        let sg = &n.security_group;
        assert_eq!(sg.name, "default");
        assert_eq!(sg.vpc_id, n.vpc.id);
        assert_eq!(sg.ingress[0].user_id_group_pairs, [("123456789012".to_string(), sg.id.clone())]);
        assert_eq!(sg.egress[0].ip_ranges, ["0.0.0.0/0"]);
    }

    #[test]
    fn same_account_and_region_same_network() {
        assert_eq!(net("123456789012", "us-east-1"), net("123456789012", "us-east-1"));
    }

    #[test]
    fn other_region_or_account_other_ids() {
        let a = net("123456789012", "us-east-1");
        for b in [net("123456789012", "eu-west-1"), net("210987654321", "us-east-1")] {
            assert_ne!(a.vpc.id, b.vpc.id);
            assert_ne!(a.vpc.dhcp_options_id, b.vpc.dhcp_options_id);
            assert_ne!(a.security_group.id, b.security_group.id);
            for (x, y) in a.subnets.iter().zip(&b.subnets) {
                assert_ne!(x.id, y.id);
            }
        }
    }

    #[test]
    fn all_ids_distinct_within_a_network() {
        let n = net("123456789012", "us-east-1");
        let mut ids = vec![n.vpc.id.clone(), n.vpc.dhcp_options_id.clone(), n.security_group.id.clone()];
        ids.extend(n.subnets.iter().map(|s| s.id.clone()));
        let before = ids.len();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), before);
    }
}
