//! The IAM policy language for identity-based policies: parse a policy
//! document ([`Policy::parse`]) and decide a request against the policies
//! attached to a principal ([`evaluate`]).
//!
//! The crate is pure — no I/O, no clock — so the caller supplies the request
//! context, including `aws:CurrentTime` and `aws:SourceIp`. It covers the
//! evaluation logic for identity-based policies in a single account only:
//! permissions boundaries, SCPs/RCPs, resource-based and session policies
//! are not modelled.
//!
//! ```
//! use berth_iam_policy::{Decision, Policy, RequestContext, evaluate};
//!
//! let policy = Policy::parse(r#"{
//!     "Version": "2012-10-17",
//!     "Statement": {"Sid": "Read", "Effect": "Allow", "Action": "ecs:Describe*", "Resource": "*"}
//! }"#).unwrap();
//! let ctx = RequestContext::new("ecs:DescribeTasks", "arn:aws:ecs:us-east-1:123456789012:task/c/1");
//! assert_eq!(evaluate(&[&policy], &ctx), Decision::Allow { sid: Some("Read".into()) });
//! ```

mod conditions;
mod context;
mod error;
mod evaluate;
mod matching;
mod parse;

pub use conditions::{BaseOperator, Comparison, Condition, Operator, SetQualifier, StringOp};
pub use context::RequestContext;
pub use error::PolicyError;
pub use evaluate::{Decision, evaluate};
pub use parse::{Effect, Patterns, Policy, Statement, Version};
