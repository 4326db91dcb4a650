//! Every error IAM and STS answer with; each variant is one AWS error code.
//! (Helper B may add variants; keep each mapped to one code.)

use berth_wire::ServiceError;

#[derive(Debug, thiserror::Error)]
pub enum IamError {
    /// IAM's NoSuchEntity (404), e.g. "The user with name x cannot be found."
    #[error("{0}")]
    NoSuchEntity(String),
    #[error("{0}")]
    EntityAlreadyExists(String),
    #[error("{0}")]
    DeleteConflict(String),
    #[error("{0}")]
    LimitExceeded(String),
    #[error("{0}")]
    MalformedPolicyDocument(String),
    #[error("{0}")]
    InvalidInput(String),
    /// The query protocol's generic validation failure (missing or
    /// out-of-range parameters): `ValidationError`.
    #[error("{0}")]
    Validation(String),
    /// `AccessDenied` (403), worded as AWS words it.
    #[error("{0}")]
    AccessDenied(String),
    /// STS: the role's trust policy or duration rules refused.
    #[error("{0}")]
    ExpiredToken(String),
    #[error("Operation {0} is not supported by {1} in this version of Berth.")]
    Unsupported(String, &'static str),
    #[error("Could not find operation {0} for version {1}")]
    InvalidAction(String, &'static str),
    /// A store failure: logged by the caller, shown as a server fault.
    #[error("{0}")]
    Internal(String),
}

impl ServiceError for IamError {
    fn code(&self) -> &'static str {
        match self {
            IamError::NoSuchEntity(_) => "NoSuchEntity",
            IamError::EntityAlreadyExists(_) => "EntityAlreadyExists",
            IamError::DeleteConflict(_) => "DeleteConflict",
            IamError::LimitExceeded(_) => "LimitExceeded",
            IamError::MalformedPolicyDocument(_) => "MalformedPolicyDocument",
            IamError::InvalidInput(_) => "InvalidInput",
            IamError::Validation(_) => "ValidationError",
            IamError::AccessDenied(_) => "AccessDenied",
            IamError::ExpiredToken(_) => "ExpiredToken",
            IamError::Unsupported(..) => "UnsupportedOperation",
            IamError::InvalidAction(..) => "InvalidAction",
            IamError::Internal(_) => "ServiceFailure",
        }
    }

    fn status(&self) -> u16 {
        match self {
            IamError::NoSuchEntity(_) => 404,
            IamError::EntityAlreadyExists(_) | IamError::DeleteConflict(_) | IamError::LimitExceeded(_) => 409,
            IamError::AccessDenied(_) => 403,
            IamError::Internal(_) => 500,
            _ => 400,
        }
    }
}

impl From<berth_store::StoreError> for IamError {
    fn from(e: berth_store::StoreError) -> IamError {
        IamError::Internal(e.to_string())
    }
}
