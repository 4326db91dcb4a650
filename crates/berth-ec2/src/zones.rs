//! DescribeAvailabilityZones.

use crate::Ec2Error;
use crate::filter::{Field, Filterable, check_names, matches};
use crate::model::{AvailabilityZone, DefaultNetwork};
use crate::params::{Input, Spec};
use crate::xml::{self, Xml};

const SPEC: Spec = Spec { scalars: &["DryRun", "AllAvailabilityZones"], lists: &["ZoneName", "ZoneId"], filters: true };

impl Filterable for AvailabilityZone {
    const FILTERS: &'static [&'static str] = &[
        "group-long-name",
        "group-name",
        "message",
        "opt-in-status",
        "parent-zone-id",
        "parent-zone-name",
        "region-name",
        "state",
        "zone-id",
        "zone-name",
        "zone-type",
    ];
    const TAGGED: bool = false;

    fn fields(&self, name: &str) -> Vec<Field> {
        match name {
            "group-name" => vec![(&self.group_name).into()],
            "opt-in-status" => vec!["opt-in-not-required".into()],
            "region-name" => vec![(&self.region).into()],
            "state" => vec!["available".into()],
            "zone-id" => vec![(&self.id).into()],
            "zone-name" => vec![(&self.name).into()],
            "zone-type" => vec!["availability-zone".into()],
            // No messages, no parent zone, no long group name.
            _ => vec![],
        }
    }
}

pub fn describe(net: &DefaultNetwork, params: &[(String, String)], request_id: &str) -> Result<String, Ec2Error> {
    let input = Input::parse(params, &SPEC)?;
    // Every zone is opted in, so "all zones" and "my zones" are the same list;
    // the flag is still validated.
    input.bool("AllAvailabilityZones")?;
    check_names::<AvailabilityZone>(input.filters())?;
    input.dry_run()?;

    let names = input.list("ZoneName");
    let ids = input.list("ZoneId");
    if let Some(missing) = names.iter().find(|n| !net.zones.iter().any(|z| &z.name == *n)) {
        return Err(Ec2Error::InvalidParameterValue(format!("Invalid availability zone: [{missing}]")));
    }
    if let Some(missing) = ids.iter().find(|i| !net.zones.iter().any(|z| &z.id == *i)) {
        return Err(Ec2Error::InvalidParameterValue(format!("Invalid availability zone-id: [{missing}]")));
    }
    let named = !(names.is_empty() && ids.is_empty());
    let selected: Vec<&AvailabilityZone> = net
        .zones
        .iter()
        .filter(|z| (!named || names.contains(&z.name) || ids.contains(&z.id)) && matches(*z, input.filters()))
        .collect();

    let mut x = xml::response("DescribeAvailabilityZonesResponse", request_id);
    x.items("availabilityZoneInfo", &selected, |x, z| render(x, z));
    Ok(x.finish())
}

fn render(x: &mut Xml, z: &AvailabilityZone) {
    x.text("zoneName", &z.name)
        .text("zoneState", "available")
        .text("regionName", &z.region)
        .empty("messageSet")
        .text("zoneId", &z.id)
        .text("zoneType", "availability-zone")
        .text("optInStatus", "opt-in-not-required")
        .text("groupName", &z.group_name)
        .text("networkBorderGroup", &z.network_border_group);
}
