//! The public API end to end: `handle` on form parameters, XML out.

use berth_ec2::filter::Filterable;
use berth_ec2::model::{AvailabilityZone, DefaultNetwork, SecurityGroup, Subnet, Vpc};
use berth_ec2::{Ec2Error, Ec2Request, handle, render_error};
use berth_wire::ServiceError;

const ACCOUNT: &str = "123456789012";
const REGION: &str = "us-east-1";
const NS: &str = "http://ec2.amazonaws.com/doc/2016-11-15/";

// ---------------------------------------------------------------------------
// A tiny XML reader: enough to check well-formedness and walk the tree.

#[derive(Debug, Default)]
struct Node {
    name: String,
    attrs: String,
    children: Vec<Node>,
    text: String,
}

impl Node {
    fn child(&self, name: &str) -> Option<&Node> {
        self.children.iter().find(|c| c.name == name)
    }
    /// The node at a `/`-separated path of child names.
    fn at(&self, path: &str) -> &Node {
        path.split('/')
            .fold(self, |n, p| n.child(p).unwrap_or_else(|| panic!("no <{p}> in <{}> (path {path})", n.name)))
    }
    fn items(&self, path: &str) -> Vec<&Node> {
        let list = self.at(path);
        assert!(list.children.iter().all(|c| c.name == "item"), "non-item child in {path}");
        list.children.iter().collect()
    }
    fn text_at(&self, path: &str) -> String {
        self.at(path).text.clone()
    }
}

fn unescape(s: &str) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some(i) = rest.find('&') {
        out.push_str(&rest[..i]);
        let end = rest[i..].find(';').map(|e| i + e).unwrap_or_else(|| panic!("bare & in {s:?}"));
        out.push_str(match &rest[i..=end] {
            "&amp;" => "&",
            "&lt;" => "<",
            "&gt;" => ">",
            "&quot;" => "\"",
            "&apos;" => "'",
            e => panic!("unknown entity {e}"),
        });
        rest = &rest[end + 1..];
    }
    out.push_str(rest);
    out
}

fn is_name(s: &str) -> bool {
    !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.')
}

/// Parse a document strictly: an XML declaration, one root element, every
/// tag closed in order, text escaped. Panics on anything else.
fn parse(doc: &str) -> Node {
    let body = doc.strip_prefix("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n").expect("XML declaration");
    let mut stack: Vec<Node> = vec![Node::default()];
    let mut rest = body;
    while !rest.is_empty() {
        if let Some(after) = rest.strip_prefix('<') {
            let end = after.find('>').expect("unterminated tag");
            let tag = &after[..end];
            rest = &after[end + 1..];
            if let Some(name) = tag.strip_prefix('/') {
                let node = stack.pop().expect("close without open");
                assert_eq!(node.name, name, "mismatched close tag");
                stack.last_mut().expect("close of the root").children.push(node);
            } else if let Some(name) = tag.strip_suffix('/') {
                assert!(is_name(name), "bad name {name:?}");
                stack.last_mut().unwrap().children.push(Node { name: name.into(), ..Node::default() });
            } else {
                let (name, attrs) = tag.split_once(' ').unwrap_or((tag, ""));
                assert!(is_name(name), "bad name {name:?}");
                stack.push(Node { name: name.into(), attrs: attrs.into(), ..Node::default() });
            }
        } else {
            let end = rest.find('<').unwrap_or(rest.len());
            let text = &rest[..end];
            assert!(!text.contains('>'), "unescaped > in {text:?}");
            stack.last_mut().unwrap().text.push_str(&unescape(text));
            rest = &rest[end..];
        }
    }
    assert_eq!(stack.len(), 1, "unclosed element");
    let mut doc_node = stack.pop().unwrap();
    assert_eq!(doc_node.children.len(), 1, "one root element");
    assert!(doc_node.text.is_empty(), "text outside the root");
    doc_node.children.pop().unwrap()
}

// ---------------------------------------------------------------------------

fn params(action: &str, extra: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut p = vec![("Action".to_string(), action.to_string()), ("Version".to_string(), "2016-11-15".to_string())];
    p.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    p
}

fn call_in(region: &str, action: &str, extra: &[(&str, &str)]) -> Result<String, Ec2Error> {
    let account = ACCOUNT.parse().unwrap();
    let region = region.parse().unwrap();
    let params = params(action, extra);
    handle(&Ec2Request { account: &account, region: &region, params: &params, request_id: "req-1" })
}

fn call(action: &str, extra: &[(&str, &str)]) -> Result<String, Ec2Error> {
    call_in(REGION, action, extra)
}

/// Call, parse and check the envelope; returns the root.
fn ok(action: &str, extra: &[(&str, &str)]) -> Node {
    let body = call(action, extra).unwrap_or_else(|e| panic!("{action} {extra:?}: {e:?}"));
    let root = parse(&body);
    assert_eq!(root.name, format!("{action}Response"));
    assert_eq!(root.attrs, format!("xmlns=\"{NS}\""));
    assert_eq!(root.text_at("requestId"), "req-1");
    root
}

fn err(action: &str, extra: &[(&str, &str)]) -> Ec2Error {
    call(action, extra).expect_err("expected an error")
}

fn net() -> DefaultNetwork {
    DefaultNetwork::new(&ACCOUNT.parse().unwrap(), &REGION.parse().unwrap())
}

fn count(action: &str, list: &str, extra: &[(&str, &str)]) -> usize {
    ok(action, extra).items(list).len()
}

fn filter_count(action: &str, list: &str, name: &str, values: &[&str]) -> usize {
    let keys: Vec<String> = (1..=values.len()).map(|i| format!("Filter.1.Value.{i}")).collect();
    let mut extra = vec![("Filter.1.Name", name)];
    extra.extend(keys.iter().map(String::as_str).zip(values.iter().copied()));
    count(action, list, &extra)
}

// ---------------------------------------------------------------------------
// Exact output

#[test]
fn describe_availability_zones_exact_document() {
    let body = call("DescribeAvailabilityZones", &[("ZoneName.1", "us-east-1b")]).unwrap();
    assert_eq!(
        body,
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
         <DescribeAvailabilityZonesResponse xmlns=\"http://ec2.amazonaws.com/doc/2016-11-15/\">\
         <requestId>req-1</requestId>\
         <availabilityZoneInfo><item>\
         <zoneName>us-east-1b</zoneName><zoneState>available</zoneState><regionName>us-east-1</regionName>\
         <messageSet/><zoneId>use1-az2</zoneId><zoneType>availability-zone</zoneType>\
         <optInStatus>opt-in-not-required</optInStatus><groupName>us-east-1</groupName>\
         <networkBorderGroup>us-east-1</networkBorderGroup>\
         </item></availabilityZoneInfo>\
         </DescribeAvailabilityZonesResponse>"
    );
}

#[test]
fn describe_vpcs_exact_document() {
    let n = net();
    let v = &n.vpc;
    let body = call("DescribeVpcs", &[]).unwrap();
    assert_eq!(
        body,
        format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
             <DescribeVpcsResponse xmlns=\"{NS}\"><requestId>req-1</requestId><vpcSet><item>\
             <vpcId>{}</vpcId><ownerId>123456789012</ownerId><state>available</state><cidrBlock>172.31.0.0/16</cidrBlock>\
             <cidrBlockAssociationSet><item><associationId>{}</associationId><cidrBlock>172.31.0.0/16</cidrBlock>\
             <cidrBlockState><state>associated</state></cidrBlockState></item></cidrBlockAssociationSet>\
             <dhcpOptionsId>{}</dhcpOptionsId><instanceTenancy>default</instanceTenancy><isDefault>true</isDefault>\
             <blockPublicAccessStates><internetGatewayBlockMode>off</internetGatewayBlockMode></blockPublicAccessStates>\
             </item></vpcSet></DescribeVpcsResponse>",
            v.id, v.cidr_association_id, v.dhcp_options_id
        )
    );
}

#[test]
fn empty_result_is_an_empty_list_element() {
    let body = call("DescribeVpcs", &[("Filter.1.Name", "isDefault"), ("Filter.1.Value.1", "false")]).unwrap();
    assert!(body.contains("<vpcSet/>"), "{body}");
    parse(&body);
}

// ---------------------------------------------------------------------------
// Shapes

#[test]
fn every_response_is_well_formed_with_its_fields() {
    let n = net();
    let root = ok("DescribeVpcs", &[]);
    let vpc = root.items("vpcSet")[0];
    assert_eq!(vpc.text_at("vpcId"), n.vpc.id);
    assert_eq!(vpc.text_at("isDefault"), "true");
    assert_eq!(vpc.text_at("cidrBlockAssociationSet/item/cidrBlockState/state"), "associated");
    assert!(vpc.child("tagSet").is_none());

    let root = ok("DescribeSubnets", &[]);
    let subnets = root.items("subnetSet");
    assert_eq!(subnets.len(), 3);
    for (i, s) in subnets.iter().enumerate() {
        assert_eq!(s.text_at("subnetId"), n.subnets[i].id);
        assert_eq!(s.text_at("vpcId"), n.vpc.id);
        assert_eq!(s.text_at("availabilityZone"), format!("us-east-1{}", ['a', 'b', 'c'][i]));
        assert_eq!(s.text_at("availabilityZoneId"), format!("use1-az{}", i + 1));
        assert_eq!(s.text_at("cidrBlock"), ["172.31.0.0/20", "172.31.16.0/20", "172.31.32.0/20"][i]);
        assert_eq!(s.text_at("defaultForAz"), "true");
        assert_eq!(s.text_at("mapPublicIpOnLaunch"), "true");
        assert_eq!(s.text_at("availableIpAddressCount"), "4091");
        assert_eq!(s.text_at("state"), "available");
        assert_eq!(s.text_at("subnetArn"), format!("arn:aws:ec2:us-east-1:123456789012:subnet/{}", n.subnets[i].id));
        assert_eq!(s.text_at("privateDnsNameOptionsOnLaunch/hostnameType"), "ip-name");
        assert!(s.at("ipv6CidrBlockAssociationSet").children.is_empty());
    }

    let root = ok("DescribeSecurityGroups", &[]);
    let g = root.items("securityGroupInfo")[0];
    let sg = &n.security_group;
    assert_eq!(g.text_at("groupId"), sg.id);
    assert_eq!(g.text_at("groupName"), "default");
    assert_eq!(g.text_at("groupDescription"), "default VPC security group");
    assert_eq!(g.text_at("vpcId"), n.vpc.id);
    assert_eq!(g.text_at("ownerId"), ACCOUNT);
    assert_eq!(g.text_at("securityGroupArn"), format!("arn:aws:ec2:us-east-1:123456789012:security-group/{}", sg.id));
    let ingress = g.items("ipPermissions");
    assert_eq!(ingress.len(), 1);
    assert_eq!(ingress[0].text_at("ipProtocol"), "-1");
    assert_eq!(ingress[0].text_at("groups/item/groupId"), sg.id);
    assert_eq!(ingress[0].text_at("groups/item/userId"), ACCOUNT);
    assert!(ingress[0].at("ipRanges").children.is_empty());
    let egress = g.items("ipPermissionsEgress");
    assert_eq!(egress[0].text_at("ipProtocol"), "-1");
    assert_eq!(egress[0].text_at("ipRanges/item/cidrIp"), "0.0.0.0/0");
    assert!(egress[0].at("groups").children.is_empty());

    let root = ok("DescribeAvailabilityZones", &[]);
    let zones = root.items("availabilityZoneInfo");
    assert_eq!(
        zones.iter().map(|z| z.text_at("zoneName")).collect::<Vec<_>>(),
        ["us-east-1a", "us-east-1b", "us-east-1c"]
    );
    for z in zones {
        assert_eq!(z.text_at("zoneState"), "available");
        assert_eq!(z.text_at("regionName"), "us-east-1");
        assert_eq!(z.text_at("optInStatus"), "opt-in-not-required");
    }
}

#[test]
fn responses_are_stable_and_per_region() {
    assert_eq!(call("DescribeSubnets", &[]).unwrap(), call("DescribeSubnets", &[]).unwrap());
    let east = parse(&call_in("us-east-1", "DescribeVpcs", &[]).unwrap());
    let west = parse(&call_in("eu-west-1", "DescribeVpcs", &[]).unwrap());
    assert_ne!(east.items("vpcSet")[0].text_at("vpcId"), west.items("vpcSet")[0].text_at("vpcId"));
    let zones = parse(&call_in("eu-west-1", "DescribeAvailabilityZones", &[]).unwrap());
    assert_eq!(zones.items("availabilityZoneInfo")[2].text_at("zoneId"), "euw1-az3");
    assert_eq!(zones.items("availabilityZoneInfo")[2].text_at("zoneName"), "eu-west-1c");
}

// ---------------------------------------------------------------------------
// Filters

#[test]
fn vpc_filters() {
    let n = net();
    let v = &n.vpc;
    let cases: &[(&str, &str, usize)] = &[
        ("isDefault", "true", 1),
        ("isDefault", "false", 0),
        ("is-default", "true", 1),
        ("is-default", "TRUE", 1),
        ("vpc-id", &v.id, 1),
        ("vpc-id", "vpc-00000000", 0),
        ("vpc-id", "vpc-*", 1),
        ("cidr", "172.31.0.0/16", 1),
        ("cidr", "172.31.0.0/20", 0),
        ("cidr-block-association.cidr-block", "172.31.0.0/16", 1),
        ("cidr-block-association.association-id", &v.cidr_association_id, 1),
        ("cidr-block-association.state", "associated", 1),
        ("dhcp-options-id", &v.dhcp_options_id, 1),
        ("owner-id", ACCOUNT, 1),
        ("owner-id", "210987654321", 0),
        ("state", "available", 1),
        ("state", "pending", 0),
        ("ipv6-cidr-block-association.ipv6-cidr-block", "*", 0),
        ("tag:Name", "*", 0),
        ("tag-key", "*", 0),
    ];
    for (name, value, want) in cases {
        assert_eq!(filter_count("DescribeVpcs", "vpcSet", name, &[value]), *want, "{name}={value}");
    }
    // Values OR'd, filters AND'd.
    assert_eq!(filter_count("DescribeVpcs", "vpcSet", "state", &["pending", "available"]), 1);
    assert_eq!(
        count(
            "DescribeVpcs",
            "vpcSet",
            &[
                ("Filter.1.Name", "state"),
                ("Filter.1.Value.1", "available"),
                ("Filter.2.Name", "isDefault"),
                ("Filter.2.Value.1", "false")
            ]
        ),
        0
    );
    // A filter without values matches nothing.
    assert_eq!(count("DescribeVpcs", "vpcSet", &[("Filter.1.Name", "state")]), 0);
}

#[test]
fn subnet_filters() {
    let n = net();
    let s0 = &n.subnets[0];
    let cases: &[(&str, &str, usize)] = &[
        ("vpc-id", &n.vpc.id, 3),
        ("vpc-id", "vpc-00000000", 0),
        ("default-for-az", "true", 3),
        ("default-for-az", "false", 0),
        ("defaultForAz", "true", 3),
        ("availability-zone", "us-east-1a", 1),
        ("availability-zone", "us-east-1?", 3),
        ("availabilityZone", "us-east-1c", 1),
        ("availability-zone-id", "use1-az2", 1),
        ("availabilityZoneId", "use1-az*", 3),
        ("available-ip-address-count", "4091", 3),
        ("availableIpAddressCount", "1", 0),
        ("cidr-block", "172.31.16.0/20", 1),
        ("cidr", "172.31.32.0/20", 1),
        ("cidrBlock", "172.31.*", 3),
        ("subnet-id", &s0.id, 1),
        ("subnet-arn", &s0.arn, 1),
        ("state", "available", 3),
        ("owner-id", ACCOUNT, 3),
        ("map-public-ip-on-launch", "true", 3),
        ("map-customer-owned-ip-on-launch", "false", 3),
        ("enable-dns64", "false", 3),
        ("ipv6-native", "false", 3),
        ("private-dns-name-options-on-launch.hostname-type", "ip-name", 3),
        ("private-dns-name-options-on-launch.enable-resource-name-dns-a-record", "false", 3),
        ("outpost-arn", "*", 0),
        ("customer-owned-ipv4-pool", "*", 0),
        ("ipv6-cidr-block-association.state", "*", 0),
        ("tag:Name", "*", 0),
    ];
    for (name, value, want) in cases {
        assert_eq!(filter_count("DescribeSubnets", "subnetSet", name, &[value]), *want, "{name}={value}");
    }
    assert_eq!(filter_count("DescribeSubnets", "subnetSet", "availability-zone", &["us-east-1a", "us-east-1b"]), 2);
}

#[test]
fn security_group_filters() {
    let n = net();
    let sg = &n.security_group;
    let cases: &[(&str, &str, usize)] = &[
        ("group-name", "default", 1),
        ("group-name", "web", 0),
        ("group-id", &sg.id, 1),
        ("vpc-id", &n.vpc.id, 1),
        ("vpc-id", "vpc-00000000", 0),
        ("description", "default VPC security group", 1),
        ("description", "default*", 1),
        ("owner-id", ACCOUNT, 1),
        ("ip-permission.protocol", "-1", 1),
        ("ip-permission.group-id", &sg.id, 1),
        ("ip-permission.group-name", "default", 1),
        ("ip-permission.user-id", ACCOUNT, 1),
        ("ip-permission.cidr", "0.0.0.0/0", 0),
        ("egress.ip-permission.cidr", "0.0.0.0/0", 1),
        ("egress.ip-permission.protocol", "-1", 1),
        ("egress.ip-permission.group-id", "*", 0),
        ("ip-permission.from-port", "*", 0),
        ("tag:Name", "*", 0),
    ];
    for (name, value, want) in cases {
        assert_eq!(
            filter_count("DescribeSecurityGroups", "securityGroupInfo", name, &[value]),
            *want,
            "{name}={value}"
        );
    }
}

#[test]
fn availability_zone_filters() {
    let cases: &[(&str, &str, usize)] = &[
        ("zone-name", "us-east-1a", 1),
        ("zone-id", "use1-az3", 1),
        ("region-name", "us-east-1", 3),
        ("region-name", "eu-west-1", 0),
        ("state", "available", 3),
        ("opt-in-status", "opt-in-not-required", 3),
        ("zone-type", "availability-zone", 3),
        ("zone-type", "local-zone", 0),
        ("group-name", "us-east-1", 3),
        ("message", "*", 0),
        ("parent-zone-name", "*", 0),
    ];
    for (name, value, want) in cases {
        assert_eq!(
            filter_count("DescribeAvailabilityZones", "availabilityZoneInfo", name, &[value]),
            *want,
            "{name}={value}"
        );
    }
}

/// Every filter name a type declares is accepted by its action.
#[test]
fn every_declared_filter_is_accepted() {
    fn check<T: Filterable>(action: &str) {
        for name in T::FILTERS {
            call(action, &[("Filter.1.Name", name), ("Filter.1.Value.1", "*")])
                .unwrap_or_else(|e| panic!("{action} {name}: {e}"));
        }
    }
    check::<Vpc>("DescribeVpcs");
    check::<Subnet>("DescribeSubnets");
    check::<SecurityGroup>("DescribeSecurityGroups");
    check::<AvailabilityZone>("DescribeAvailabilityZones");
}

// ---------------------------------------------------------------------------
// Ids and names

#[test]
fn explicit_ids_select_and_unknown_ids_fail() {
    let n = net();
    assert_eq!(count("DescribeVpcs", "vpcSet", &[("VpcId.1", &n.vpc.id)]), 1);
    let e = err("DescribeVpcs", &[("VpcId.1", &n.vpc.id), ("VpcId.2", "vpc-0123456789abcdef0")]);
    assert_eq!(e.code(), "InvalidVpcID.NotFound");
    assert_eq!(e.to_string(), "The vpc ID 'vpc-0123456789abcdef0' does not exist");
    let e = err("DescribeVpcs", &[("VpcId.1", "default")]);
    assert_eq!(e.code(), "InvalidVpcID.Malformed");

    let ids = [("SubnetId.1", n.subnets[2].id.as_str()), ("SubnetId.2", n.subnets[0].id.as_str())];
    let root = ok("DescribeSubnets", &ids);
    let got: Vec<String> = root.items("subnetSet").iter().map(|s| s.text_at("subnetId")).collect();
    assert_eq!(got, [n.subnets[0].id.clone(), n.subnets[2].id.clone()]);
    // Ids and filters combine.
    assert_eq!(
        count(
            "DescribeSubnets",
            "subnetSet",
            &[ids[0], ids[1], ("Filter.1.Name", "availability-zone"), ("Filter.1.Value.1", "us-east-1a")]
        ),
        1
    );
    let e = err("DescribeSubnets", &[("SubnetId.1", "subnet-12345678")]);
    assert_eq!(
        (e.code(), e.to_string().as_str()),
        ("InvalidSubnetID.NotFound", "The subnet ID 'subnet-12345678' does not exist")
    );
    assert_eq!(err("DescribeSubnets", &[("SubnetId.1", "sub-1")]).code(), "InvalidSubnetID.Malformed");

    let sg = &n.security_group;
    assert_eq!(count("DescribeSecurityGroups", "securityGroupInfo", &[("GroupName.1", "default")]), 1);
    assert_eq!(count("DescribeSecurityGroups", "securityGroupInfo", &[("GroupId.1", &sg.id)]), 1);
    assert_eq!(
        count("DescribeSecurityGroups", "securityGroupInfo", &[("GroupId.1", &sg.id), ("GroupName.1", "default")]),
        1
    );
    let e = err("DescribeSecurityGroups", &[("GroupName.1", "web")]);
    assert_eq!(e.code(), "InvalidGroup.NotFound");
    assert_eq!(e.to_string(), format!("The security group 'web' does not exist in default VPC '{}'", n.vpc.id));
    let e = err("DescribeSecurityGroups", &[("GroupId.1", "sg-12345678")]);
    assert_eq!(
        (e.code(), e.to_string().as_str()),
        ("InvalidGroup.NotFound", "The security group 'sg-12345678' does not exist")
    );
    let e = err("DescribeSecurityGroups", &[("GroupId.1", "default")]);
    assert_eq!(
        (e.code(), e.to_string().as_str()),
        ("InvalidGroupId.Malformed", "Invalid id: \"default\" (expecting \"sg-...\")")
    );

    assert_eq!(count("DescribeAvailabilityZones", "availabilityZoneInfo", &[("ZoneName.1", "us-east-1c")]), 1);
    assert_eq!(
        count(
            "DescribeAvailabilityZones",
            "availabilityZoneInfo",
            &[("ZoneId.1", "use1-az1"), ("ZoneName.1", "us-east-1b")]
        ),
        2
    );
    let e = err("DescribeAvailabilityZones", &[("ZoneName.1", "us-east-1z")]);
    assert_eq!(
        (e.code(), e.to_string().as_str()),
        ("InvalidParameterValue", "Invalid availability zone: [us-east-1z]")
    );
    assert_eq!(err("DescribeAvailabilityZones", &[("ZoneId.1", "use1-az9")]).code(), "InvalidParameterValue");
    assert_eq!(count("DescribeAvailabilityZones", "availabilityZoneInfo", &[("AllAvailabilityZones", "true")]), 3);
}

// ---------------------------------------------------------------------------
// Errors

#[test]
fn request_level_errors() {
    let e = err("DescribeVpcs", &[("Filter.1.Name", "color"), ("Filter.1.Value.1", "blue")]);
    assert_eq!((e.code(), e.to_string().as_str()), ("InvalidParameterValue", "The filter 'color' is invalid"));
    // Zones have no tags.
    assert_eq!(
        err("DescribeAvailabilityZones", &[("Filter.1.Name", "tag:Name"), ("Filter.1.Value.1", "x")]).code(),
        "InvalidParameterValue"
    );

    let e = err("DescribeSubnets", &[("VpcId.1", "vpc-12345678")]);
    assert_eq!((e.code(), e.to_string().as_str()), ("UnknownParameter", "The parameter VpcId.1 is not recognized"));
    assert_eq!(err("DescribeAvailabilityZones", &[("MaxResults", "5")]).code(), "UnknownParameter");

    for action in ["DescribeVpcs", "DescribeSubnets", "DescribeSecurityGroups"] {
        let e = err(action, &[("MaxResults", "4")]);
        assert_eq!(e.code(), "InvalidParameterValue", "{action}");
        assert_eq!(e.to_string(), "Value ( 4 ) for parameter maxResults is invalid. Expecting a value greater than 5.");
        assert_eq!(err(action, &[("MaxResults", "1001")]).code(), "InvalidParameterValue");
        ok(action, &[("MaxResults", "5")]);
        ok(action, &[("MaxResults", "1000")]);
        assert_eq!(err(action, &[("NextToken", "bogus")]).code(), "InvalidPaginationToken");
    }

    for action in ["DescribeVpcs", "DescribeSubnets", "DescribeSecurityGroups", "DescribeAvailabilityZones"] {
        let e = err(action, &[("DryRun", "true")]);
        assert_eq!(e.code(), "DryRunOperation");
        assert_eq!(e.status(), 412);
        assert_eq!(e.to_string(), "Request would have succeeded, but DryRun flag is set.");
        ok(action, &[("DryRun", "false")]);
    }
    // A dry run does not look ids up...
    assert_eq!(err("DescribeVpcs", &[("DryRun", "true"), ("VpcId.1", "vpc-12345678")]).code(), "DryRunOperation");
    // ...but still validates the request.
    assert_eq!(err("DescribeVpcs", &[("DryRun", "true"), ("Bogus", "1")]).code(), "UnknownParameter");
}

#[test]
fn action_errors() {
    let e = err("DescribeNothing", &[]);
    assert_eq!(
        (e.code(), e.to_string().as_str()),
        ("InvalidAction", "The action DescribeNothing is not valid for this web service.")
    );
    let e = err("RunInstances", &[]);
    assert_eq!(e.code(), "UnsupportedOperation");
    assert!(e.to_string().contains("RunInstances"));

    let account = ACCOUNT.parse().unwrap();
    let region = REGION.parse().unwrap();
    let no_action = vec![("Version".to_string(), "2016-11-15".to_string())];
    let e =
        handle(&Ec2Request { account: &account, region: &region, params: &no_action, request_id: "r" }).unwrap_err();
    assert_eq!(e.code(), "MissingAction");
    for e in [Ec2Error::InvalidAction("x".into()), Ec2Error::VpcNotFound("x".into())] {
        assert_eq!(e.status(), 400);
    }
}

#[test]
fn error_document_is_ec2s_own() {
    let e = Ec2Error::VpcNotFound("vpc-<x>".into());
    let doc = render_error(&e, "req-9");
    assert_eq!(
        doc,
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Response><Errors><Error><Code>InvalidVpcID.NotFound</Code>\
         <Message>The vpc ID &apos;vpc-&lt;x&gt;&apos; does not exist</Message></Error></Errors>\
         <RequestID>req-9</RequestID></Response>"
    );
    let root = parse(&doc);
    assert_eq!(root.name, "Response");
    assert_eq!(root.text_at("Errors/Error/Message"), "The vpc ID 'vpc-<x>' does not exist");
    assert_eq!(root.text_at("RequestID"), "req-9");
}

#[test]
fn hostile_values_come_back_escaped() {
    // A request id is ours, but values a caller sends that reach the output
    // (error messages) are escaped.
    let e = err("DescribeSecurityGroups", &[("GroupName.1", "<a&b>")]);
    let doc = render_error(&e, "r");
    assert_eq!(parse(&doc).text_at("Errors/Error/Message"), e.to_string());
}

#[test]
fn operations_list_is_sorted_and_complete() {
    let ops = berth_ec2::operations::EC2_ACTIONS;
    assert!(ops.windows(2).all(|w| w[0] < w[1]));
    for served in
        ["DescribeVpcs", "DescribeSubnets", "DescribeSecurityGroups", "DescribeAvailabilityZones", "RunInstances"]
    {
        assert!(berth_ec2::operations::is_ec2_action(served), "{served}");
    }
}

proptest::proptest! {
    #[test]
    fn handle_never_panics_and_answers_xml(
        action in proptest::sample::select(vec!["DescribeVpcs", "DescribeSubnets", "DescribeSecurityGroups", "DescribeAvailabilityZones"]),
        pairs in proptest::collection::vec(("(Filter\\.[0-9]\\.(Name|Value\\.[0-9])|VpcId\\.[0-9]|SubnetId\\.1|GroupName\\.1|ZoneName\\.1|MaxResults|DryRun)", "[a-z0-9*?\\\\<&.-]{0,12}"), 0..6),
    ) {
        let extra: Vec<(&str, &str)> = pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        match call(action, &extra) {
            Ok(body) => { parse(&body); }
            Err(e) => { parse(&render_error(&e, "r")); }
        }
    }
}
