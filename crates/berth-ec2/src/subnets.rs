//! DescribeSubnets.

use crate::Ec2Error;
use crate::filter::{Field, Filterable, check_names, matches};
use crate::ids::well_formed;
use crate::model::{DefaultNetwork, Subnet};
use crate::params::{Input, Spec};
use crate::xml::{self, Xml};

const SPEC: Spec = Spec { scalars: &["DryRun", "MaxResults", "NextToken"], lists: &["SubnetId"], filters: true };

impl Filterable for Subnet {
    const FILTERS: &'static [&'static str] = &[
        "availability-zone",
        "availabilityZone",
        "availability-zone-id",
        "availabilityZoneId",
        "available-ip-address-count",
        "availableIpAddressCount",
        "cidr-block",
        "cidr",
        "cidrBlock",
        "customer-owned-ipv4-pool",
        "default-for-az",
        "defaultForAz",
        "enable-dns64",
        "enable-lni-at-device-index",
        "ipv6-cidr-block-association.ipv6-cidr-block",
        "ipv6-cidr-block-association.association-id",
        "ipv6-cidr-block-association.state",
        "ipv6-native",
        "map-customer-owned-ip-on-launch",
        "map-public-ip-on-launch",
        "outpost-arn",
        "owner-id",
        "private-dns-name-options-on-launch.hostname-type",
        "private-dns-name-options-on-launch.enable-resource-name-dns-a-record",
        "private-dns-name-options-on-launch.enable-resource-name-dns-aaaa-record",
        "state",
        "subnet-arn",
        "subnet-id",
        "tag-key",
        "tag-value",
        "vpc-id",
    ];
    const TAGGED: bool = true;

    fn fields(&self, name: &str) -> Vec<Field> {
        match name {
            "availability-zone" | "availabilityZone" => vec![(&self.availability_zone).into()],
            "availability-zone-id" | "availabilityZoneId" => vec![(&self.availability_zone_id).into()],
            "available-ip-address-count" | "availableIpAddressCount" => vec![self.available_ip_address_count.into()],
            "cidr-block" | "cidr" | "cidrBlock" => vec![(&self.cidr_block).into()],
            "default-for-az" | "defaultForAz" => vec![self.default_for_az.into()],
            "enable-dns64"
            | "ipv6-native"
            | "map-customer-owned-ip-on-launch"
            | "private-dns-name-options-on-launch.enable-resource-name-dns-a-record"
            | "private-dns-name-options-on-launch.enable-resource-name-dns-aaaa-record" => vec![false.into()],
            "map-public-ip-on-launch" => vec![self.map_public_ip_on_launch.into()],
            "owner-id" => vec![(&self.owner_id).into()],
            "private-dns-name-options-on-launch.hostname-type" => vec!["ip-name".into()],
            "state" => vec!["available".into()],
            "subnet-arn" => vec![(&self.arn).into()],
            "subnet-id" => vec![(&self.id).into()],
            "vpc-id" => vec![(&self.vpc_id).into()],
            // No IPv6, no outpost, no customer-owned pool, no LNI, no tags.
            _ => vec![],
        }
    }
}

pub fn describe(net: &DefaultNetwork, params: &[(String, String)], request_id: &str) -> Result<String, Ec2Error> {
    let input = Input::parse(params, &SPEC)?;
    input.max_results(5, 1000)?;
    input.no_next_token()?;
    let ids = input.list("SubnetId");
    if let Some(bad) = ids.iter().find(|id| !well_formed(id, "subnet")) {
        return Err(Ec2Error::SubnetIdMalformed(bad.clone()));
    }
    check_names::<Subnet>(input.filters())?;
    input.dry_run()?;

    if let Some(missing) = ids.iter().find(|id| !net.subnets.iter().any(|s| &s.id == *id)) {
        return Err(Ec2Error::SubnetNotFound(missing.clone()));
    }
    let selected: Vec<&Subnet> = net
        .subnets
        .iter()
        .filter(|s| (ids.is_empty() || ids.contains(&s.id)) && matches(*s, input.filters()))
        .collect();

    let mut x = xml::response("DescribeSubnetsResponse", request_id);
    x.items("subnetSet", &selected, |x, s| render(x, s));
    Ok(x.finish())
}

fn render(x: &mut Xml, s: &Subnet) {
    x.text("subnetId", &s.id)
        .text("subnetArn", &s.arn)
        .text("state", "available")
        .text("ownerId", &s.owner_id)
        .text("vpcId", &s.vpc_id)
        .text("cidrBlock", &s.cidr_block)
        .empty("ipv6CidrBlockAssociationSet")
        .num("availableIpAddressCount", s.available_ip_address_count)
        .text("availabilityZone", &s.availability_zone)
        .text("availabilityZoneId", &s.availability_zone_id)
        .bool("defaultForAz", s.default_for_az)
        .bool("mapPublicIpOnLaunch", s.map_public_ip_on_launch)
        .bool("mapCustomerOwnedIpOnLaunch", false)
        .bool("assignIpv6AddressOnCreation", false)
        .bool("enableDns64", false)
        .bool("ipv6Native", false)
        .open("privateDnsNameOptionsOnLaunch")
        .text("hostnameType", "ip-name")
        .bool("enableResourceNameDnsARecord", false)
        .bool("enableResourceNameDnsAAAARecord", false)
        .close("privateDnsNameOptionsOnLaunch")
        .open("blockPublicAccessStates")
        .text("internetGatewayBlockMode", "off")
        .close("blockPublicAccessStates");
}
