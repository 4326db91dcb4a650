//! The slice of the Amazon EC2 query API that Berth serves: the account's
//! default network, so that scripts which look up "the default VPC and its
//! subnets" work unchanged.
//!
//! Every account has, in every region, one default VPC (172.31.0.0/16) with a
//! default subnet in each of three availability zones (`<region>a/b/c`), its
//! `default` security group and DHCP options. None of it is stored: it is
//! derived from the account and region ([`model::DefaultNetwork`]) with ids
//! hashed from them ([`ids`]), so it is the same on every call, after every
//! restart, on every server.
//!
//! Served actions: DescribeVpcs, DescribeSubnets, DescribeSecurityGroups,
//! DescribeAvailabilityZones. Any other EC2 action answers
//! `UnsupportedOperation`; a name that is no EC2 action answers
//! `InvalidAction`.
//!
//! Modules: [`params`] turns the form into typed input (unknown parameters
//! refused), [`filter`] is EC2's filter semantics, [`xml`] writes responses
//! and EC2's error document, and one module per action.

pub mod filter;
pub mod ids;
pub mod model;
pub mod operations;
pub mod params;
mod security_groups;
mod subnets;
mod vpcs;
pub mod xml;
mod zones;

use berth_arn::{AccountId, Region};
use model::DefaultNetwork;

/// One EC2 query request, already authenticated by the front door.
pub struct Ec2Request<'a> {
    pub account: &'a AccountId,
    pub region: &'a Region,
    /// The decoded form parameters, `Action` and `Version` included.
    pub params: &'a [(String, String)],
    pub request_id: &'a str,
}

/// Every error this API answers with; each variant is one EC2 error code.
#[derive(Debug, thiserror::Error)]
pub enum Ec2Error {
    #[error("The request must contain the parameter Action")]
    MissingAction,
    #[error("The action {0} is not valid for this web service.")]
    InvalidAction(String),
    #[error("Operation {0} is not supported by ec2 in this version of Berth.")]
    UnsupportedOperation(String),
    #[error("The parameter {0} is not recognized")]
    UnknownParameter(String),
    #[error("{0}")]
    InvalidParameterValue(String),
    /// An unknown filter name (`null` for a filter without one).
    #[error("The filter '{0}' is invalid")]
    InvalidFilter(String),
    #[error("The specified pagination token is not valid or is expired.")]
    InvalidPaginationToken,
    #[error("Request would have succeeded, but DryRun flag is set.")]
    DryRunOperation,
    #[error("Invalid id: \"{0}\" (expecting \"vpc-...\")")]
    VpcIdMalformed(String),
    #[error("The vpc ID '{0}' does not exist")]
    VpcNotFound(String),
    #[error("Invalid id: \"{0}\" (expecting \"subnet-...\")")]
    SubnetIdMalformed(String),
    #[error("The subnet ID '{0}' does not exist")]
    SubnetNotFound(String),
    #[error("Invalid id: \"{0}\" (expecting \"sg-...\")")]
    GroupIdMalformed(String),
    #[error("The security group '{0}' does not exist")]
    GroupNotFound(String),
    #[error("The security group '{name}' does not exist in default VPC '{vpc_id}'")]
    GroupNameNotFound { name: String, vpc_id: String },
}

impl berth_wire::ServiceError for Ec2Error {
    fn code(&self) -> &'static str {
        match self {
            Ec2Error::MissingAction => "MissingAction",
            Ec2Error::InvalidAction(_) => "InvalidAction",
            Ec2Error::UnsupportedOperation(_) => "UnsupportedOperation",
            Ec2Error::UnknownParameter(_) => "UnknownParameter",
            Ec2Error::InvalidParameterValue(_) | Ec2Error::InvalidFilter(_) => "InvalidParameterValue",
            Ec2Error::InvalidPaginationToken => "InvalidPaginationToken",
            Ec2Error::DryRunOperation => "DryRunOperation",
            Ec2Error::VpcIdMalformed(_) => "InvalidVpcID.Malformed",
            Ec2Error::VpcNotFound(_) => "InvalidVpcID.NotFound",
            Ec2Error::SubnetIdMalformed(_) => "InvalidSubnetID.Malformed",
            Ec2Error::SubnetNotFound(_) => "InvalidSubnetID.NotFound",
            Ec2Error::GroupIdMalformed(_) => "InvalidGroupId.Malformed",
            Ec2Error::GroupNotFound(_) | Ec2Error::GroupNameNotFound { .. } => "InvalidGroup.NotFound",
        }
    }

    fn status(&self) -> u16 {
        match self {
            // EC2 answers a successful dry run with 412 Precondition Failed.
            Ec2Error::DryRunOperation => 412,
            _ => 400,
        }
    }
}

/// One served action: the network, the form, the request id → the response body.
type Describe = fn(&DefaultNetwork, &[(String, String)], &str) -> Result<String, Ec2Error>;

/// Answer one EC2 query request with its XML response body.
pub fn handle(req: &Ec2Request) -> Result<String, Ec2Error> {
    let action = req.params.iter().find(|(k, _)| k == "Action").map(|(_, v)| v.as_str()).unwrap_or("");
    if action.is_empty() {
        return Err(Ec2Error::MissingAction);
    }
    let served: Describe = match action {
        "DescribeVpcs" => vpcs::describe,
        "DescribeSubnets" => subnets::describe,
        "DescribeSecurityGroups" => security_groups::describe,
        "DescribeAvailabilityZones" => zones::describe,
        a if operations::is_ec2_action(a) => return Err(Ec2Error::UnsupportedOperation(a.to_string())),
        a => return Err(Ec2Error::InvalidAction(a.to_string())),
    };
    let net = DefaultNetwork::new(req.account, req.region);
    served(&net, req.params, req.request_id)
}

/// EC2's own error document:
/// `<Response><Errors><Error><Code/><Message/></Error></Errors><RequestID/></Response>`.
/// The HTTP status is `ServiceError::status`.
pub fn render_error(err: &Ec2Error, request_id: &str) -> String {
    use berth_wire::ServiceError;
    xml::error_document(err.code(), &err.message(), request_id)
}
