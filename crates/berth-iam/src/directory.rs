//! The read side of IAM: an immutable snapshot of one account's state with
//! every policy document parsed once, answering "whose key is this?" and
//! "may this caller do that?" without touching the store.

use crate::builtin;
use crate::caller::{Caller, CallerKind, RequestFacts};
use crate::model::IamState;
use berth_arn::AccountId;
use berth_iam_policy::{Decision, Policy, RequestContext};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::UNIX_EPOCH;

pub struct Snapshot {
    account: AccountId,
    revision: u64,
    state: IamState,
    /// Every stored document, parsed, by its text.
    parsed: HashMap<String, Arc<Policy>>,
}

impl Snapshot {
    pub fn build(account: AccountId, state: IamState, revision: u64) -> Snapshot {
        let mut parsed = HashMap::new();
        let mut add = |doc: &str| {
            if parsed.contains_key(doc) {
                return;
            }
            match Policy::parse(doc) {
                Ok(p) => {
                    parsed.insert(doc.to_string(), Arc::new(p));
                }
                // Documents are validated when written; one that no longer
                // parses grants nothing (and is reported once per snapshot).
                Err(e) => tracing::warn!(error = %e, "a stored IAM policy does not parse; it grants nothing"),
            }
        };
        for u in state.users.values() {
            u.inline_policies.values().for_each(|d| add(d));
        }
        for g in state.groups.values() {
            g.inline_policies.values().for_each(|d| add(d));
        }
        for r in state.roles.values() {
            r.inline_policies.values().for_each(|d| add(d));
        }
        for p in state.policies.values() {
            if let Some(d) = p.default_document() {
                add(d);
            }
        }
        Snapshot { account, revision, state, parsed }
    }

    pub fn revision(&self) -> u64 {
        self.revision
    }

    pub fn state(&self) -> &IamState {
        &self.state
    }

    pub fn account(&self) -> &AccountId {
        &self.account
    }

    /// The identity policies that apply to `caller` (none for the root,
    /// which is allowed everything without them).
    pub fn policies_for(&self, caller: &Caller) -> Vec<Arc<Policy>> {
        let mut out = Vec::new();
        match &caller.kind {
            CallerKind::Root => {}
            CallerKind::Instance { .. } => out.push(builtin::instance_role_policy()),
            CallerKind::User { name } => {
                if let Some(user) = self.state.user(name) {
                    self.collect(&user.inline_policies, &user.attached_policies, &mut out);
                    for g in &user.groups {
                        if let Some(group) = self.state.group(g) {
                            self.collect(&group.inline_policies, &group.attached_policies, &mut out);
                        }
                    }
                }
            }
            CallerKind::AssumedRole { role_name, .. } => {
                // A session of a role that was deleted (or deleted and made
                // again: a new id) keeps no permissions.
                let role_id = caller.user_id.split(':').next().unwrap_or("");
                if let Some(role) = self.state.role(role_name).filter(|r| r.id == role_id) {
                    self.collect(&role.inline_policies, &role.attached_policies, &mut out);
                }
            }
        }
        out
    }

    fn collect(&self, inline: &std::collections::BTreeMap<String, String>, attached: &[String], out: &mut Vec<Arc<Policy>>) {
        out.extend(inline.values().filter_map(|d| self.parsed.get(d).cloned()));
        for arn in attached {
            if let Some(p) = builtin::aws_managed(arn) {
                out.push(p);
            } else if let Some(doc) = self.state.policies.get(arn).and_then(|p| p.default_document()) {
                out.extend(self.parsed.get(doc).cloned());
            }
        }
    }

    /// IAM's decision for `caller` doing `action` on `resource`.
    pub fn authorize(&self, caller: &Caller, action: &str, resource: &str, facts: &RequestFacts) -> Decision {
        self.authorize_with(caller, action, resource, facts, &[])
    }

    /// The first of `resources` that `caller` may not do `action` on, with
    /// the decision; policies and the request context are built once for
    /// all of them (authorization runs on every request).
    pub fn first_denied<'r>(
        &self,
        caller: &Caller,
        action: &str,
        resources: &'r [String],
        facts: &RequestFacts,
        keys: &[(&str, String)],
    ) -> Option<(&'r str, Decision)> {
        if caller.is_root() {
            return None;
        }
        let policies = self.policies_for(caller);
        let refs: Vec<&Policy> = policies.iter().map(|p| p.as_ref()).collect();
        let mut ctx = request_context(caller, action, "*", facts);
        for (k, v) in keys {
            ctx = ctx.with_key(*k, v.clone());
        }
        for resource in resources {
            ctx.resource.clone_from(resource);
            let decision = berth_iam_policy::evaluate(&refs, &ctx);
            if !decision.is_allowed() {
                return Some((resource, decision));
            }
        }
        None
    }

    /// [`Snapshot::authorize`] with service-specific condition keys
    /// (`iam:PassedToService`, `ecs:cluster`, ...).
    pub fn authorize_with(&self, caller: &Caller, action: &str, resource: &str, facts: &RequestFacts, keys: &[(&str, &str)]) -> Decision {
        if caller.is_root() {
            return Decision::Allow { sid: None };
        }
        let policies = self.policies_for(caller);
        let refs: Vec<&Policy> = policies.iter().map(|p| p.as_ref()).collect();
        let mut ctx = request_context(caller, action, resource, facts);
        for (k, v) in keys {
            ctx = ctx.with_key(*k, *v);
        }
        berth_iam_policy::evaluate(&refs, &ctx)
    }
}

/// The request as the policy language sees it, with the global condition
/// keys Berth knows.
pub fn request_context(caller: &Caller, action: &str, resource: &str, facts: &RequestFacts) -> RequestContext {
    let secs = facts.now.duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    let mut ctx = RequestContext::new(action, resource)
        .with_principal_arn(caller.arn.clone())
        .with_user_id(caller.user_id.clone())
        .with_account(caller.account.to_string())
        .with_key("aws:CurrentTime", berth_clock::civil::iso8601_seconds(secs as i64))
        .with_key("aws:EpochTime", secs.to_string())
        .with_key("aws:RequestedRegion", facts.region.clone())
        .with_key("aws:SecureTransport", facts.secure_transport.to_string())
        .with_key("aws:PrincipalType", caller.principal_type());
    if let CallerKind::User { name } = &caller.kind {
        ctx = ctx.with_username(name.clone());
    }
    if let Some(ip) = facts.source_ip {
        ctx = ctx.with_key("aws:SourceIp", ip.to_string());
    }
    if let Some(issued) = caller.token_issued_at {
        ctx = ctx.with_key("aws:TokenIssueTime", berth_clock::civil::iso8601_seconds(issued as i64));
    }
    ctx
}

/// The message of a denial, as AWS words it for identity policies.
pub fn denial_message(caller_arn: &str, action: &str, resource: &str, decision: &Decision) -> String {
    match decision {
        Decision::ExplicitDeny { .. } => format!(
            "User: {caller_arn} is not authorized to perform: {action} on resource: {resource} with an explicit deny in an identity-based policy"
        ),
        _ => format!(
            "User: {caller_arn} is not authorized to perform: {action} on resource: {resource} because no identity-based policy allows the {action} action"
        ),
    }
}
