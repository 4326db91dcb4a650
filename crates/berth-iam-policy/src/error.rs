//! The one error type of the crate. Messages follow the wording IAM uses in
//! its `MalformedPolicyDocument` errors, so a future CreatePolicy handler can
//! return them verbatim.

/// Why a policy document was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    /// The document is not JSON, or has the wrong shape (IAM reports every
    /// structural problem with this one sentence).
    #[error("Syntax errors in policy.")]
    Syntax,
    /// `Version` is neither `2012-10-17` nor `2008-10-17`.
    #[error("The policy failed legacy parsing")]
    Version(String),
    /// The document has no `Statement`.
    #[error("Missing required field Statement")]
    MissingStatement,
    /// A statement has no `Effect`.
    #[error("Missing required field Effect")]
    MissingEffect,
    /// `Effect` is neither `Allow` nor `Deny`.
    #[error("Invalid effect: {0}")]
    InvalidEffect(String),
    /// A statement has neither `Action` nor `NotAction`.
    #[error("Policy statement must contain actions.")]
    MissingAction,
    /// A statement has both `Action` and `NotAction`.
    #[error("Statement can not contain both Action and NotAction.")]
    BothActionAndNotAction,
    /// An identity policy statement has neither `Resource` nor `NotResource`.
    #[error("Policy statement must contain resources.")]
    MissingResource,
    /// A statement has both `Resource` and `NotResource`.
    #[error("Statement can not contain both Resource and NotResource.")]
    BothResourceAndNotResource,
    /// Identity policies are attached to the principal, so naming one is an error.
    #[error("Policy document should not specify a principal.")]
    Principal,
    /// An action is neither `*` nor `vendor:name`.
    #[error("Actions/Conditions must be prefaced by a vendor, e.g., iam, sdb, ec2, etc.")]
    ActionVendor(String),
    /// A resource is neither `*` nor an ARN.
    #[error("Resource {0} must be in ARN format or \"*\".")]
    ResourceFormat(String),
    /// Two statements share one `Sid`.
    #[error("Statement IDs (SID) in a single policy must be unique.")]
    DuplicateSid(String),
    /// A condition operator IAM does not know.
    #[error("Invalid Condition type : {0}.")]
    ConditionOperator(String),
    /// A condition value that cannot be read by its operator (a number for
    /// `Numeric*`, a date for `Date*`, an address for `IpAddress`, ...).
    #[error("Invalid value {value} for condition {operator}.")]
    ConditionValue { operator: String, value: String },
}
