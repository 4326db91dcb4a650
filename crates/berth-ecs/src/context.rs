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

    /// The id a reference to a cluster-scoped resource (`task`,
    /// `container-instance`) names within `cluster`: a bare id, or an ARN
    /// of this account and region in the long form (`TYPE/CLUSTER/ID`) or
    /// the old short form (`TYPE/ID`). `None` when it cannot name one here.
    pub fn cluster_scoped_id(&self, resource_type: &str, cluster: &str, reference: &str) -> Option<String> {
        if !reference.starts_with("arn:") {
            return (!reference.is_empty() && !reference.contains('/')).then(|| reference.to_string());
        }
        let arn: Arn = reference.parse().ok()?;
        if arn.service != "ecs" || arn.region != self.region.as_str() || arn.account != self.account.as_str() {
            return None;
        }
        let rest = match arn.resource_type_and_id() {
            Some((kind, rest)) if kind == resource_type => rest,
            _ => return None,
        };
        let id = match rest.split_once('/') {
            Some((c, id)) if c == cluster => id,
            Some(_) => return None,
            None => rest,
        };
        (!id.is_empty() && !id.contains('/')).then(|| id.to_string())
    }
}
