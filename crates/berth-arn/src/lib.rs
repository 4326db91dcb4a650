//! Typed identifiers shared by every Berth service: the 12-digit account id,
//! the region name and the ARN. Each is validated when constructed, so code
//! that holds one never re-checks it.

use std::fmt;
use std::str::FromStr;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ArnError {
    #[error("account id must be exactly 12 digits, got {0:?}")]
    AccountId(String),
    #[error("invalid region name {0:?}")]
    Region(String),
    #[error("invalid ARN {0:?}")]
    Arn(String),
}

/// A 12-digit AWS account id.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct AccountId(String);

impl AccountId {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for AccountId {
    type Error = ArnError;
    fn try_from(s: String) -> Result<Self, ArnError> {
        if s.len() == 12 && s.bytes().all(|b| b.is_ascii_digit()) {
            Ok(AccountId(s))
        } else {
            Err(ArnError::AccountId(s))
        }
    }
}

impl FromStr for AccountId {
    type Err = ArnError;
    fn from_str(s: &str) -> Result<Self, ArnError> {
        AccountId::try_from(s.to_string())
    }
}

impl From<AccountId> for String {
    fn from(a: AccountId) -> String {
        a.0
    }
}

impl fmt::Display for AccountId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A region name such as `us-east-1`. Berth accepts any name of AWS's shape
/// (lowercase letters, digits and dashes, 1..=32 chars) because each region
/// is simply its own namespace on a self-hosted server.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Region(String);

impl Region {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Region {
    type Error = ArnError;
    fn try_from(s: String) -> Result<Self, ArnError> {
        let ok = !s.is_empty()
            && s.len() <= 32
            && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !s.starts_with('-')
            && !s.ends_with('-');
        if ok { Ok(Region(s)) } else { Err(ArnError::Region(s)) }
    }
}

impl FromStr for Region {
    type Err = ArnError;
    fn from_str(s: &str) -> Result<Self, ArnError> {
        Region::try_from(s.to_string())
    }
}

impl From<Region> for String {
    fn from(r: Region) -> String {
        r.0
    }
}

impl fmt::Display for Region {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// `arn:partition:service:region:account:resource`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Arn {
    pub partition: String,
    pub service: String,
    pub region: String,
    pub account: String,
    /// Everything after the fifth colon, e.g. `cluster/demo` or `task-definition/web:3`.
    pub resource: String,
}

impl Arn {
    pub fn new(service: &str, region: &Region, account: &AccountId, resource: impl Into<String>) -> Arn {
        Arn {
            partition: "aws".into(),
            service: service.into(),
            region: region.as_str().into(),
            account: account.as_str().into(),
            resource: resource.into(),
        }
    }

    /// The resource type and id of a `type/id` resource, e.g. ("cluster", "demo").
    pub fn resource_type_and_id(&self) -> Option<(&str, &str)> {
        self.resource.split_once('/')
    }
}

impl FromStr for Arn {
    type Err = ArnError;
    fn from_str(s: &str) -> Result<Self, ArnError> {
        let mut parts = s.splitn(6, ':');
        let bad = || ArnError::Arn(s.to_string());
        if parts.next() != Some("arn") {
            return Err(bad());
        }
        let partition = parts.next().ok_or_else(bad)?;
        let service = parts.next().ok_or_else(bad)?;
        let region = parts.next().ok_or_else(bad)?;
        let account = parts.next().ok_or_else(bad)?;
        let resource = parts.next().ok_or_else(bad)?;
        if partition.is_empty() || service.is_empty() || resource.is_empty() {
            return Err(bad());
        }
        Ok(Arn {
            partition: partition.into(),
            service: service.into(),
            region: region.into(),
            account: account.into(),
            resource: resource.into(),
        })
    }
}

impl fmt::Display for Arn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "arn:{}:{}:{}:{}:{}",
            self.partition, self.service, self.region, self.account, self.resource
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arn_round_trips() {
        let s = "arn:aws:ecs:us-east-1:123456789012:task-definition/web:3";
        let arn: Arn = s.parse().unwrap();
        assert_eq!(arn.service, "ecs");
        assert_eq!(arn.resource_type_and_id(), Some(("task-definition", "web:3")));
        assert_eq!(arn.to_string(), s);
    }

    #[test]
    fn rejects_bad_ids() {
        assert!("12345".parse::<AccountId>().is_err());
        assert!("12345678901a".parse::<AccountId>().is_err());
        assert!("123456789012".parse::<AccountId>().is_ok());
        assert!("US-EAST-1".parse::<Region>().is_err());
        assert!("".parse::<Region>().is_err());
        assert!("arn:aws:ecs".parse::<Arn>().is_err());
        assert!("nope:aws:ecs:r:a:x".parse::<Arn>().is_err());
    }
}
