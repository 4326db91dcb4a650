//! The request being authorized: who asks, for which action on which
//! resource, and the condition keys that describe the request.

use std::collections::BTreeMap;

/// Everything evaluation may look at. Condition keys are matched
/// case-insensitively, as IAM does; the principal fields double as the
/// global keys `aws:username`, `aws:userid`, `aws:PrincipalArn` and
/// `aws:PrincipalAccount` unless `keys` supplies those explicitly.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequestContext {
    /// `service:Name`, e.g. `ecs:RunTask`.
    pub action: String,
    /// The ARN of the resource acted on, or `*` for actions without one.
    pub resource: String,
    /// The calling principal's ARN.
    pub principal_arn: String,
    /// The friendly name of an IAM user; `None` for roles and the root user.
    pub username: Option<String>,
    /// The unique id of the principal (`AIDA...`, or `AROA...:session`).
    pub user_id: String,
    /// The 12-digit account id of the principal.
    pub account: String,
    /// Condition keys such as `aws:SourceIp`, `aws:CurrentTime`,
    /// `aws:EpochTime`, `aws:RequestedRegion`, `aws:SecureTransport`,
    /// `aws:PrincipalTag/...`; a multivalued key holds several entries.
    pub keys: BTreeMap<String, Vec<String>>,
}

impl RequestContext {
    /// A context for `action` on `resource` with no principal details or keys.
    pub fn new(action: impl Into<String>, resource: impl Into<String>) -> Self {
        RequestContext {
            action: action.into(),
            resource: resource.into(),
            ..Self::default()
        }
    }

    /// Sets the IAM user name (`aws:username`).
    pub fn with_username(mut self, username: impl Into<String>) -> Self {
        self.username = Some(username.into());
        self
    }

    /// Sets the principal's unique id (`aws:userid`).
    pub fn with_user_id(mut self, user_id: impl Into<String>) -> Self {
        self.user_id = user_id.into();
        self
    }

    /// Sets the principal's ARN (`aws:PrincipalArn`).
    pub fn with_principal_arn(mut self, arn: impl Into<String>) -> Self {
        self.principal_arn = arn.into();
        self
    }

    /// Sets the principal's account (`aws:PrincipalAccount`).
    pub fn with_account(mut self, account: impl Into<String>) -> Self {
        self.account = account.into();
        self
    }

    /// Adds a single-valued condition key.
    pub fn with_key(self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.with_values(key, [value.into()])
    }

    /// Adds a (possibly multivalued) condition key.
    pub fn with_values<I, S>(mut self, key: impl Into<String>, values: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.keys
            .insert(key.into(), values.into_iter().map(Into::into).collect());
        self
    }

    /// The values of condition key `key` (case-insensitive), or `None` when
    /// the request does not carry it. An empty list also counts as absent.
    pub fn lookup(&self, key: &str) -> Option<Vec<String>> {
        if let Some((_, values)) = self.keys.iter().find(|(k, _)| k.eq_ignore_ascii_case(key)) {
            return (!values.is_empty()).then(|| values.clone());
        }
        let field = match key.to_ascii_lowercase().as_str() {
            "aws:username" => self.username.clone(),
            "aws:userid" => Some(self.user_id.clone()),
            "aws:principalarn" => Some(self.principal_arn.clone()),
            "aws:principalaccount" => Some(self.account.clone()),
            _ => None,
        };
        field.filter(|v| !v.is_empty()).map(|v| vec![v])
    }
}
