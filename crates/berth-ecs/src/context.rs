//! Who is asking, where, and when: fixed by the front door once per request.

use berth_arn::{AccountId, Arn, Region};
use std::time::SystemTime;

#[derive(Debug, Clone)]
pub struct RequestContext {
    pub account: AccountId,
    /// From the SigV4 credential scope; each region is its own namespace.
    pub region: Region,
    /// The caller's ARN, e.g. `arn:aws:iam::123456789012:root`.
    pub principal_arn: String,
    pub now: SystemTime,
}

impl RequestContext {
    /// An ECS ARN in the caller's account and region.
    pub fn arn(&self, resource: impl Into<String>) -> String {
        Arn::new("ecs", &self.region, &self.account, resource).to_string()
    }
}
