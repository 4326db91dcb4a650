//! DescribeSecurityGroups.

use crate::Ec2Error;
use crate::filter::{Field, Filterable, check_names, matches};
use crate::ids::well_formed;
use crate::model::{DefaultNetwork, IpPermission, SecurityGroup};
use crate::params::{Input, Spec};
use crate::xml::{self, Xml};

const SPEC: Spec =
    Spec { scalars: &["DryRun", "MaxResults", "NextToken"], lists: &["GroupId", "GroupName"], filters: true };

impl Filterable for SecurityGroup {
    const FILTERS: &'static [&'static str] = &[
        "description",
        "egress.ip-permission.cidr",
        "egress.ip-permission.from-port",
        "egress.ip-permission.group-id",
        "egress.ip-permission.group-name",
        "egress.ip-permission.ipv6-cidr",
        "egress.ip-permission.prefix-list-id",
        "egress.ip-permission.protocol",
        "egress.ip-permission.to-port",
        "egress.ip-permission.user-id",
        "group-id",
        "group-name",
        "ip-permission.cidr",
        "ip-permission.from-port",
        "ip-permission.group-id",
        "ip-permission.group-name",
        "ip-permission.ipv6-cidr",
        "ip-permission.prefix-list-id",
        "ip-permission.protocol",
        "ip-permission.to-port",
        "ip-permission.user-id",
        "owner-id",
        "tag-key",
        "tag-value",
        "vpc-id",
    ];
    const TAGGED: bool = true;

    fn fields(&self, name: &str) -> Vec<Field> {
        let (rules, rule_field) = if let Some(f) = name.strip_prefix("egress.ip-permission.") {
            (&self.egress, f)
        } else if let Some(f) = name.strip_prefix("ip-permission.") {
            (&self.ingress, f)
        } else {
            return match name {
                "description" => vec![(&self.description).into()],
                "group-id" => vec![(&self.id).into()],
                "group-name" => vec![(&self.name).into()],
                "owner-id" => vec![(&self.owner_id).into()],
                "vpc-id" => vec![(&self.vpc_id).into()],
                _ => vec![],
            };
        };
        rules.iter().flat_map(|rule| self.rule_fields(rule, rule_field)).collect()
    }
}

impl SecurityGroup {
    fn rule_fields(&self, rule: &IpPermission, field: &str) -> Vec<Field> {
        match field {
            "cidr" => rule.ip_ranges.iter().map(Field::from).collect(),
            "protocol" => vec![(&rule.ip_protocol).into()],
            "group-id" => rule.user_id_group_pairs.iter().map(|(_, g)| g.into()).collect(),
            "user-id" => rule.user_id_group_pairs.iter().map(|(u, _)| u.into()).collect(),
            // The only group any rule names is this one.
            "group-name" => {
                rule.user_id_group_pairs.iter().filter(|(_, g)| *g == self.id).map(|_| (&self.name).into()).collect()
            }
            // All-protocol rules have no ports; no IPv6 or prefix lists.
            _ => vec![],
        }
    }
}

pub fn describe(net: &DefaultNetwork, params: &[(String, String)], request_id: &str) -> Result<String, Ec2Error> {
    let input = Input::parse(params, &SPEC)?;
    input.max_results(5, 1000)?;
    input.no_next_token()?;
    let ids = input.list("GroupId");
    let names = input.list("GroupName");
    if let Some(bad) = ids.iter().find(|id| !well_formed(id, "sg")) {
        return Err(Ec2Error::GroupIdMalformed(bad.clone()));
    }
    check_names::<SecurityGroup>(input.filters())?;
    input.dry_run()?;

    let all = [&net.security_group];
    if let Some(missing) = ids.iter().find(|id| !all.iter().any(|g| &g.id == *id)) {
        return Err(Ec2Error::GroupNotFound(missing.clone()));
    }
    // Names are looked up in the default VPC, as EC2 does.
    if let Some(missing) = names.iter().find(|n| !all.iter().any(|g| &g.name == *n)) {
        return Err(Ec2Error::GroupNameNotFound { name: missing.clone(), vpc_id: net.vpc.id.clone() });
    }
    let named = !(ids.is_empty() && names.is_empty());
    let selected: Vec<&SecurityGroup> = all
        .into_iter()
        .filter(|g| (!named || ids.contains(&g.id) || names.contains(&g.name)) && matches(*g, input.filters()))
        .collect();

    let mut x = xml::response("DescribeSecurityGroupsResponse", request_id);
    x.items("securityGroupInfo", &selected, |x, g| render(x, g));
    Ok(x.finish())
}

fn render(x: &mut Xml, g: &SecurityGroup) {
    x.text("ownerId", &g.owner_id)
        .text("groupId", &g.id)
        .text("groupName", &g.name)
        .text("groupDescription", &g.description)
        .text("vpcId", &g.vpc_id)
        .text("securityGroupArn", &g.arn)
        .items("ipPermissions", &g.ingress, render_rule)
        .items("ipPermissionsEgress", &g.egress, render_rule);
}

fn render_rule(x: &mut Xml, rule: &IpPermission) {
    x.text("ipProtocol", &rule.ip_protocol)
        .items("groups", &rule.user_id_group_pairs, |x, (user, group)| {
            x.text("userId", user).text("groupId", group);
        })
        .items("ipRanges", &rule.ip_ranges, |x, cidr| {
            x.text("cidrIp", cidr);
        })
        .empty("ipv6Ranges")
        .empty("prefixListIds");
}
