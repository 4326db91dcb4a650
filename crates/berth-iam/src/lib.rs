//! IAM and STS for Berth.
//!
//! One account's identities and policies are one record in the store
//! (`iam/{account}/state`, see [`model::IamState`]), so rules that span
//! resources (a user with attached policies cannot be deleted, a policy's
//! attachment count) commit atomically with the write. The record is read
//! into an immutable [`directory::Snapshot`] that every request consults
//! without touching the store: which principal an access key belongs to,
//! and which policies apply to it.
//!
//! - [`api`]: the IAM query API (users, groups, roles, policies, access
//!   keys, instance profiles).
//! - [`sts`]: the STS query API (GetCallerIdentity, AssumeRole,
//!   GetSessionToken).
//! - [`sessions`]: temporary credentials. A session token is sealed with a
//!   key derived from the master key and carries its own claims, so
//!   sessions cost no store write; a tampered or expired token is refused.
//! - [`sealing`]: the master key (kept outside the store) and the
//!   authenticated encryption every stored secret goes through.
//! - [`directory`]: authentication lookups and the authorization decision
//!   (the policy language is berth-iam-policy).
//! - [`builtin`]: the AWS managed policies Berth ships, and the policy of
//!   agents' instance credentials.
//! - [`caller`]: who signed a request.

pub mod api;
pub mod builtin;
pub mod caller;
pub mod directory;
pub mod error;
pub mod model;
pub mod sealing;
pub mod sessions;
pub mod state;
pub mod sts;
pub mod trust;

pub use caller::{Caller, CallerKind, RequestFacts};
pub use directory::Snapshot;
pub use error::IamError;
pub use sealing::MasterKey;
pub use state::Iam;

/// One IAM or STS query request, already authenticated.
pub struct QueryRequest<'a> {
    /// The decoded form parameters, `Action` and `Version` included.
    pub params: &'a [(String, String)],
    pub request_id: &'a str,
    pub caller: &'a Caller,
    pub facts: &'a RequestFacts,
}

impl QueryRequest<'_> {
    /// The first value of parameter `name`.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    pub fn action(&self) -> &str {
        self.param("Action").unwrap_or("")
    }
}
