//! The stored IAM state of one account: one record, so every rule that
//! spans resources commits atomically with the write.
//!
//! Owned by helper B (the IAM API) from here on; the fields and methods
//! that exist now are used by `directory`, `sts` and the ECS role gate, so
//! keep them (add freely).

use crate::sealing::Sealed;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Every identity and policy of one account.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IamState {
    /// By user name (IAM names are case-insensitive for uniqueness; the
    /// map key is the name as created, lookups go through [`IamState::user`]).
    #[serde(default)]
    pub users: BTreeMap<String, User>,
    #[serde(default)]
    pub groups: BTreeMap<String, Group>,
    #[serde(default)]
    pub roles: BTreeMap<String, Role>,
    /// Customer managed policies, by ARN.
    #[serde(default)]
    pub policies: BTreeMap<String, ManagedPolicy>,
    /// By access key id.
    #[serde(default)]
    pub access_keys: BTreeMap<String, AccessKey>,
    #[serde(default)]
    pub instance_profiles: BTreeMap<String, InstanceProfile>,
    /// Attachment counts of AWS managed policies (by ARN); theirs are not
    /// stored in `policies`.
    #[serde(default)]
    pub aws_policy_attachments: BTreeMap<String, u32>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Tag {
    pub key: String,
    pub value: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct User {
    pub name: String,
    /// `AIDA` + 17.
    pub id: String,
    pub path: String,
    pub arn: String,
    /// Seconds since the epoch.
    pub created_at: u64,
    /// Inline policies: name → document (the JSON as given).
    #[serde(default)]
    pub inline_policies: BTreeMap<String, String>,
    /// Managed policy ARNs (customer or AWS).
    #[serde(default)]
    pub attached_policies: Vec<String>,
    /// Group names.
    #[serde(default)]
    pub groups: Vec<String>,
    #[serde(default)]
    pub tags: Vec<Tag>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Group {
    pub name: String,
    /// `AGPA` + 17.
    pub id: String,
    pub path: String,
    pub arn: String,
    pub created_at: u64,
    #[serde(default)]
    pub inline_policies: BTreeMap<String, String>,
    #[serde(default)]
    pub attached_policies: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Role {
    pub name: String,
    /// `AROA` + 17.
    pub id: String,
    pub path: String,
    pub arn: String,
    pub created_at: u64,
    /// The trust policy (JSON as given).
    pub assume_role_policy_document: String,
    #[serde(default)]
    pub description: Option<String>,
    /// Seconds; 3600..=43200, default 3600.
    pub max_session_duration: u32,
    #[serde(default)]
    pub inline_policies: BTreeMap<String, String>,
    #[serde(default)]
    pub attached_policies: Vec<String>,
    #[serde(default)]
    pub tags: Vec<Tag>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ManagedPolicy {
    pub name: String,
    /// `ANPA` + 17.
    pub id: String,
    pub path: String,
    pub arn: String,
    #[serde(default)]
    pub description: Option<String>,
    pub created_at: u64,
    pub updated_at: u64,
    /// `v1`, `v2`, ...
    pub default_version_id: String,
    /// At most 5, oldest first.
    pub versions: Vec<PolicyVersion>,
    /// The next version number to hand out.
    pub next_version: u32,
    pub attachment_count: u32,
    #[serde(default)]
    pub tags: Vec<Tag>,
}

impl ManagedPolicy {
    /// The default version's document.
    pub fn default_document(&self) -> Option<&str> {
        self.versions
            .iter()
            .find(|v| v.version_id == self.default_version_id)
            .map(|v| v.document.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PolicyVersion {
    pub version_id: String,
    pub document: String,
    pub created_at: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AccessKey {
    pub access_key_id: String,
    pub user_name: String,
    /// The secret, sealed with the master key (context: the access key id).
    pub secret: Sealed,
    /// `Active` or `Inactive`.
    pub status: String,
    pub created_at: u64,
}

impl AccessKey {
    pub fn is_active(&self) -> bool {
        self.status == "Active"
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InstanceProfile {
    pub name: String,
    /// `AIPA` + 17.
    pub id: String,
    pub path: String,
    pub arn: String,
    pub created_at: u64,
    /// At most one role, as AWS allows.
    #[serde(default)]
    pub roles: Vec<String>,
    #[serde(default)]
    pub tags: Vec<Tag>,
}

impl IamState {
    /// A user by name, case-insensitively (IAM names are unique ignoring case).
    pub fn user(&self, name: &str) -> Option<&User> {
        by_name(&self.users, name, |u| &u.name)
    }

    pub fn group(&self, name: &str) -> Option<&Group> {
        by_name(&self.groups, name, |g| &g.name)
    }

    pub fn role(&self, name: &str) -> Option<&Role> {
        by_name(&self.roles, name, |r| &r.name)
    }

    /// The map key of a user named `name` ignoring case (the name as created).
    pub fn user_key(&self, name: &str) -> Option<String> {
        self.user(name).map(|u| u.name.clone())
    }

    pub fn group_key(&self, name: &str) -> Option<String> {
        self.group(name).map(|g| g.name.clone())
    }

    pub fn role_key(&self, name: &str) -> Option<String> {
        self.role(name).map(|r| r.name.clone())
    }

    pub fn instance_profile(&self, name: &str) -> Option<&InstanceProfile> {
        by_name(&self.instance_profiles, name, |p| &p.name)
    }

    /// The instance profiles that hold role `role_name`.
    pub fn instance_profiles_of_role<'s>(
        &'s self,
        role_name: &'s str,
    ) -> impl Iterator<Item = &'s InstanceProfile> + 's {
        self.instance_profiles
            .values()
            .filter(move |p| p.roles.iter().any(|r| r == role_name))
    }

    /// A role by its ARN (`arn:aws:iam::ACCT:role/PATH/NAME`): the name is
    /// the last path segment, and the ARN must match the role's exactly.
    pub fn role_by_arn(&self, arn: &str) -> Option<&Role> {
        let name = arn.rsplit('/').next()?;
        self.role(name).filter(|r| r.arn == arn)
    }
}

/// The entry of `map` named `name`: by key, else ignoring case.
fn by_name<'s, T>(
    map: &'s BTreeMap<String, T>,
    name: &str,
    name_of: fn(&T) -> &String,
) -> Option<&'s T> {
    map.get(name)
        .or_else(|| map.values().find(|v| name_of(v).eq_ignore_ascii_case(name)))
}
