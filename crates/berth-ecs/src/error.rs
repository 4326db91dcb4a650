//! The ECS exceptions. Each variant is one ECS exception name.

use berth_store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum EcsError {
    #[error("{0}")]
    Client(String),
    #[error("{0}")]
    InvalidParameter(String),
    /// A request member has the wrong JSON type or shape.
    #[error("{0}")]
    Serialization(String),
    #[error("{0}")]
    ClusterNotFound(String),
    #[error("{0}")]
    ClusterContainsServices(String),
    #[error("{0}")]
    ClusterContainsTasks(String),
    #[error("{0}")]
    ClusterContainsContainerInstances(String),
    #[error("{0}")]
    ClusterContainsCapacityProvider(String),
    #[error("{0}")]
    ServiceNotFound(String),
    #[error("{0}")]
    ServiceNotActive(String),
    #[error("{0}")]
    ResourceInUse(String),
    #[error("{0}")]
    ResourceNotFound(String),
    #[error("{0}")]
    LimitExceeded(String),
    #[error("{0}")]
    AttributeLimitExceeded(String),
    #[error("{0}")]
    TargetNotFound(String),
    #[error("{0}")]
    UpdateInProgress(String),
    #[error("{0}")]
    UnsupportedFeature(String),
    #[error("{0}")]
    ServiceDeploymentNotFound(String),
    #[error("{0}")]
    Conflict(String),
    /// The caller may not pass a role (`iam:PassRole`), as IAM words it.
    #[error("{0}")]
    AccessDenied(String),
    /// An operation of the ECS model that this version of Berth does not
    /// serve yet.
    #[error("{0}")]
    NotYetServed(String),
    #[error("{0}")]
    UnknownOperation(String),
    #[error("{0}")]
    Server(String),
}

impl EcsError {
    pub fn client(msg: impl Into<String>) -> EcsError {
        EcsError::Client(msg.into())
    }
    pub fn invalid(msg: impl Into<String>) -> EcsError {
        EcsError::InvalidParameter(msg.into())
    }
    pub fn service_not_found() -> EcsError {
        EcsError::ServiceNotFound("Service not found.".into())
    }
    pub fn service_not_active() -> EcsError {
        EcsError::ServiceNotActive("Service was not ACTIVE.".into())
    }
    pub fn cluster_not_found() -> EcsError {
        EcsError::ClusterNotFound("Cluster not found.".into())
    }
}

impl From<StoreError> for EcsError {
    fn from(e: StoreError) -> EcsError {
        tracing::error!(error = %e, "store failure");
        EcsError::Server("The service encountered an internal error. Try again later.".into())
    }
}

impl berth_wire::ServiceError for EcsError {
    fn code(&self) -> &'static str {
        match self {
            EcsError::Client(_) => "ClientException",
            EcsError::InvalidParameter(_) => "InvalidParameterException",
            EcsError::Serialization(_) => "SerializationException",
            EcsError::ClusterNotFound(_) => "ClusterNotFoundException",
            EcsError::ClusterContainsServices(_) => "ClusterContainsServicesException",
            EcsError::ClusterContainsTasks(_) => "ClusterContainsTasksException",
            EcsError::ClusterContainsContainerInstances(_) => "ClusterContainsContainerInstancesException",
            EcsError::ClusterContainsCapacityProvider(_) => "ClusterContainsCapacityProviderException",
            EcsError::ServiceNotFound(_) => "ServiceNotFoundException",
            EcsError::ServiceNotActive(_) => "ServiceNotActiveException",
            EcsError::ResourceInUse(_) => "ResourceInUseException",
            EcsError::ResourceNotFound(_) => "ResourceNotFoundException",
            EcsError::LimitExceeded(_) => "LimitExceededException",
            EcsError::AttributeLimitExceeded(_) => "AttributeLimitExceededException",
            EcsError::TargetNotFound(_) => "TargetNotFoundException",
            EcsError::UpdateInProgress(_) => "UpdateInProgressException",
            EcsError::UnsupportedFeature(_) => "UnsupportedFeatureException",
            EcsError::ServiceDeploymentNotFound(_) => "ServiceDeploymentNotFoundException",
            EcsError::Conflict(_) => "ConflictException",
            EcsError::AccessDenied(_) => "AccessDeniedException",
            EcsError::NotYetServed(_) => "UnsupportedFeatureException",
            EcsError::UnknownOperation(_) => "UnknownOperationException",
            EcsError::Server(_) => "ServerException",
        }
    }

    fn status(&self) -> u16 {
        match self {
            EcsError::Server(_) => 500,
            _ => 400,
        }
    }
}

pub type EcsResult<T> = Result<T, EcsError>;
