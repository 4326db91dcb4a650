//! The Elastic Load Balancing v2 control plane (API version 2015-12-01):
//! load balancers, target groups, listeners (HTTP, HTTPS and TLS with
//! certificates, TCP, UDP, TCP_UDP), rules, targets, attributes and tags,
//! stored through [`berth_store::Store`].
//!
//! Served by the front door (berth-server) for requests signed for
//! `elasticloadbalancing`, over the same store as ECS. The data plane
//! (berth-lb) reads the records written here and makes listeners listen;
//! until it has checked a target, DescribeTargetHealth reports the states
//! described in [`ops`].
//!
//! [`handle`] takes the decoded query-protocol form of one authenticated
//! request and answers its XML body or an [`Elbv2Error`], which renders as
//! the query protocol's XML error document through [`berth_wire::ServiceError`].
//! Modules: [`form`] reads `Name.member.N` parameters, [`xml`] writes
//! responses, [`model`] holds records and the compare-on-revision update,
//! [`ops`] the operations.

pub mod form;
pub mod model;
pub mod ops;
pub mod xml;

use berth_arn::{AccountId, Region};
use berth_store::Store;
use std::time::SystemTime;

/// One ELBv2 query request, already authenticated.
pub struct Elbv2Request<'a> {
    pub account: &'a AccountId,
    pub region: &'a Region,
    pub now: SystemTime,
    /// The decoded form parameters, `Action` and `Version` included.
    pub params: &'a [(String, String)],
    pub request_id: &'a str,
}

/// Every error this API answers with; each variant is one ELBv2 error code.
#[derive(Debug, thiserror::Error)]
pub enum Elbv2Error {
    #[error("{0}")]
    Validation(String),
    #[error("One or more load balancers not found")]
    LoadBalancerNotFound,
    #[error("One or more target groups not found")]
    TargetGroupNotFound,
    #[error("One or more listeners not found")]
    ListenerNotFound,
    #[error("One or more rules not found")]
    RuleNotFound,
    #[error("A load balancer with the same name '{0}' exists, but with different settings")]
    DuplicateLoadBalancerName(String),
    #[error("A target group with the same name '{0}' exists, but with different settings")]
    DuplicateTargetGroupName(String),
    #[error("A listener already exists on this port for this load balancer '{0}'")]
    DuplicateListener(String),
    #[error("Priority '{0}' is currently in use")]
    PriorityInUse(u32),
    #[error("{0}")]
    ResourceInUse(String),
    #[error("{0}")]
    InvalidTarget(String),
    #[error("You can have at most 50 tags per resource")]
    TooManyTags,
    #[error("{0}")]
    InvalidConfigurationRequest(String),
    #[error("{0}")]
    OperationNotPermitted(String),
    #[error("SSL policy '{0}' not found")]
    SslPolicyNotFound(String),
    #[error("Certificate '{0}' not found")]
    CertificateNotFound(String),
    #[error("Operation {0} is not supported by elasticloadbalancing in this version of Berth.")]
    UnsupportedOperation(String),
    #[error("Could not find operation {0} for version 2015-12-01")]
    InvalidAction(String),
    #[error("{0}")]
    Internal(String),
}

impl berth_wire::ServiceError for Elbv2Error {
    fn code(&self) -> &'static str {
        match self {
            Elbv2Error::Validation(_) => "ValidationError",
            Elbv2Error::LoadBalancerNotFound => "LoadBalancerNotFound",
            Elbv2Error::TargetGroupNotFound => "TargetGroupNotFound",
            Elbv2Error::ListenerNotFound => "ListenerNotFound",
            Elbv2Error::RuleNotFound => "RuleNotFound",
            Elbv2Error::DuplicateLoadBalancerName(_) => "DuplicateLoadBalancerName",
            Elbv2Error::DuplicateTargetGroupName(_) => "DuplicateTargetGroupName",
            Elbv2Error::DuplicateListener(_) => "DuplicateListener",
            Elbv2Error::PriorityInUse(_) => "PriorityInUse",
            Elbv2Error::ResourceInUse(_) => "ResourceInUse",
            Elbv2Error::InvalidTarget(_) => "InvalidTarget",
            Elbv2Error::TooManyTags => "TooManyTags",
            Elbv2Error::InvalidConfigurationRequest(_) => "InvalidConfigurationRequest",
            Elbv2Error::OperationNotPermitted(_) => "OperationNotPermitted",
            Elbv2Error::SslPolicyNotFound(_) => "SSLPolicyNotFound",
            Elbv2Error::CertificateNotFound(_) => "CertificateNotFound",
            Elbv2Error::UnsupportedOperation(_) => "UnsupportedOperation",
            Elbv2Error::InvalidAction(_) => "InvalidAction",
            Elbv2Error::Internal(_) => "InternalFailure",
        }
    }

    fn status(&self) -> u16 {
        // The model gives every ELBv2 error HTTP 400 (sender fault); only our
        // own store failures are the server's.
        match self {
            Elbv2Error::Internal(_) => 500,
            _ => 400,
        }
    }
}

/// Answer one ELBv2 query request with its XML response body.
pub async fn handle(store: &dyn Store, req: &Elbv2Request<'_>) -> Result<String, Elbv2Error> {
    ops::dispatch(store, req).await
}

#[cfg(test)]
mod tests;
