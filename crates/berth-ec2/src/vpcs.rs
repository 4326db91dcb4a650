//! DescribeVpcs.

use crate::Ec2Error;
use crate::filter::{Field, Filterable, check_names, matches};
use crate::ids::well_formed;
use crate::model::{DefaultNetwork, Vpc};
use crate::params::{Input, Spec};
use crate::xml::{self, Xml};

const SPEC: Spec = Spec { scalars: &["DryRun", "MaxResults", "NextToken"], lists: &["VpcId"], filters: true };

impl Filterable for Vpc {
    const FILTERS: &'static [&'static str] = &[
        "cidr",
        "cidr-block-association.cidr-block",
        "cidr-block-association.association-id",
        "cidr-block-association.state",
        "dhcp-options-id",
        "ipv6-cidr-block-association.ipv6-cidr-block",
        "ipv6-cidr-block-association.ipv6-pool",
        "ipv6-cidr-block-association.association-id",
        "ipv6-cidr-block-association.state",
        "is-default",
        "isDefault",
        "owner-id",
        "state",
        "tag-key",
        "tag-value",
        "vpc-id",
    ];
    const TAGGED: bool = true;

    fn fields(&self, name: &str) -> Vec<Field> {
        match name {
            "cidr" | "cidr-block-association.cidr-block" => vec![(&self.cidr_block).into()],
            "cidr-block-association.association-id" => vec![(&self.cidr_association_id).into()],
            "cidr-block-association.state" => vec!["associated".into()],
            "dhcp-options-id" => vec![(&self.dhcp_options_id).into()],
            "is-default" | "isDefault" => vec![self.is_default.into()],
            "owner-id" => vec![(&self.owner_id).into()],
            "state" => vec!["available".into()],
            "vpc-id" => vec![(&self.id).into()],
            // No IPv6 blocks, no tags.
            _ => vec![],
        }
    }
}

pub fn describe(net: &DefaultNetwork, params: &[(String, String)], request_id: &str) -> Result<String, Ec2Error> {
    let input = Input::parse(params, &SPEC)?;
    input.max_results(5, 1000)?;
    input.no_next_token()?;
    let ids = input.list("VpcId");
    if let Some(bad) = ids.iter().find(|id| !well_formed(id, "vpc")) {
        return Err(Ec2Error::VpcIdMalformed(bad.clone()));
    }
    check_names::<Vpc>(input.filters())?;
    input.dry_run()?;

    let all = [&net.vpc];
    if let Some(missing) = ids.iter().find(|id| !all.iter().any(|v| &v.id == *id)) {
        return Err(Ec2Error::VpcNotFound(missing.clone()));
    }
    let selected: Vec<&Vpc> =
        all.into_iter().filter(|v| (ids.is_empty() || ids.contains(&v.id)) && matches(*v, input.filters())).collect();

    let mut x = xml::response("DescribeVpcsResponse", request_id);
    x.items("vpcSet", &selected, |x, v| render(x, v));
    Ok(x.finish())
}

fn render(x: &mut Xml, v: &Vpc) {
    x.text("vpcId", &v.id)
        .text("ownerId", &v.owner_id)
        .text("state", "available")
        .text("cidrBlock", &v.cidr_block)
        .items("cidrBlockAssociationSet", &[v], |x, v| {
            x.text("associationId", &v.cidr_association_id)
                .text("cidrBlock", &v.cidr_block)
                .open("cidrBlockState")
                .text("state", "associated")
                .close("cidrBlockState");
        })
        .text("dhcpOptionsId", &v.dhcp_options_id)
        .text("instanceTenancy", "default")
        .bool("isDefault", v.is_default)
        .open("blockPublicAccessStates")
        .text("internetGatewayBlockMode", "off")
        .close("blockPublicAccessStates");
}
