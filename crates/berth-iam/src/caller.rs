//! Who signed a request, and the facts about the request that policies'
//! conditions may test.

use berth_arn::AccountId;
use std::net::IpAddr;
use std::time::SystemTime;

/// The kind of principal, with what identifies it in the IAM state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallerKind {
    /// The account root: allowed everything, as in AWS.
    Root,
    /// An IAM user, by its long-lived access key or a GetSessionToken session.
    User { name: String },
    /// A session of a role (AssumeRole, or a task role served to a task).
    AssumedRole { role_name: String, session_name: String },
    /// An agent's instance credentials: a session of the built-in
    /// `BerthInstanceRole`, allowed only what an agent needs.
    Instance { session_name: String },
}

/// An authenticated principal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub kind: CallerKind,
    /// `arn:aws:iam::ACCT:root`, `arn:aws:iam::ACCT:user/PATH/NAME`,
    /// `arn:aws:sts::ACCT:assumed-role/ROLE/SESSION`.
    pub arn: String,
    /// GetCallerIdentity's `UserId`: the account id for the root, the
    /// user's `AIDA...` id, `AROA...:SESSION` for a role session.
    pub user_id: String,
    pub account: AccountId,
    /// When the credentials were issued, for temporary credentials
    /// (`aws:TokenIssueTime`), in seconds since the epoch.
    pub token_issued_at: Option<u64>,
}

impl Caller {
    pub fn root(account: &AccountId) -> Caller {
        Caller {
            kind: CallerKind::Root,
            arn: format!("arn:aws:iam::{account}:root"),
            user_id: account.to_string(),
            account: account.clone(),
            token_issued_at: None,
        }
    }

    /// An IAM user (by its access key, or a GetSessionToken session).
    pub fn user(account: &AccountId, name: &str, user_id: &str, arn: &str) -> Caller {
        Caller {
            kind: CallerKind::User { name: name.to_string() },
            arn: arn.to_string(),
            user_id: user_id.to_string(),
            account: account.clone(),
            token_issued_at: None,
        }
    }

    /// A session of the role `role_name` (whose unique id is `role_id`).
    pub fn role_session(account: &AccountId, role_name: &str, role_id: &str, session_name: &str) -> Caller {
        Caller {
            kind: CallerKind::AssumedRole { role_name: role_name.to_string(), session_name: session_name.to_string() },
            arn: assumed_role_arn(account, role_name, session_name),
            user_id: format!("{role_id}:{session_name}"),
            account: account.clone(),
            token_issued_at: None,
        }
    }

    pub fn is_root(&self) -> bool {
        matches!(self.kind, CallerKind::Root)
    }

    /// `aws:PrincipalType`: `Account`, `User` or `AssumedRole`.
    pub fn principal_type(&self) -> &'static str {
        match self.kind {
            CallerKind::Root => "Account",
            CallerKind::User { .. } => "User",
            CallerKind::AssumedRole { .. } | CallerKind::Instance { .. } => "AssumedRole",
        }
    }
}

/// The ARN of a role session: `arn:aws:sts::ACCOUNT:assumed-role/ROLE/SESSION`
/// (no path, as AWS writes it).
pub fn assumed_role_arn(account: &AccountId, role_name: &str, session_name: &str) -> String {
    format!("arn:aws:sts::{account}:assumed-role/{role_name}/{session_name}")
}

/// What the front door knows about a request besides its signer: the
/// values of the global condition keys.
#[derive(Debug, Clone)]
pub struct RequestFacts {
    pub now: SystemTime,
    /// The peer address (`aws:SourceIp`); `None` for in-process calls.
    pub source_ip: Option<IpAddr>,
    /// The region of the SigV4 scope (`aws:RequestedRegion`).
    pub region: String,
    /// Whether the request came over TLS (`aws:SecureTransport`).
    pub secure_transport: bool,
}
