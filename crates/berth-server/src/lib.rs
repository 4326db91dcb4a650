//! The Berth server: one HTTP listener for every AWS-compatible API.
//!
//! * [`credentials`]: the account id and root credentials, created on first
//!   start and kept 0600 in the data dir (or taken from the environment).
//! * [`front_door`]: one request's path: body limit, SigV4, routing by
//!   `X-Amz-Target` (JSON protocols) or signing name (query protocol), and
//!   rendering of results and errors in the caller's protocol.
//! * [`listener`]: the accept loop (TCP_NODELAY, HTTP/1.1 keep-alive,
//!   graceful shutdown).
//! * [`instance_credentials`]: each agent's own access key (principal
//!   `assumed-role/BerthInstanceRole/{name}`), minted by the root and kept
//!   in the store.
//! * [`authz`]: the authorization of every request by the caller's
//!   identity policies; [`resources`] names the ARNs each request acts on.
//! * [`ecr`]: ECR's GetAuthorizationToken over the operator's registry
//!   logins, what execution roles are checked against.
//! * [`role_gate`]: ECS's questions about roles (PassRole, trust, task
//!   credentials), answered by berth-iam.

pub mod authz;
pub mod credentials;
pub mod ecr;
pub mod front_door;
pub mod instance_credentials;
pub mod listener;
mod panic_guard;
pub mod resources;
pub mod role_gate;

pub use credentials::{AccountIdentity, CredentialError};
pub use front_door::FrontDoor;
pub use instance_credentials::InstanceCredentials;
pub use listener::serve;
