//! The agent session: how a host learns what it should run.
//!
//! Registration and reporting use the ECS agent-facing operations over the
//! normal AWS JSON endpoint (`RegisterContainerInstance`,
//! `DiscoverPollEndpoint`, `SubmitTaskStateChange`,
//! `SubmitContainerStateChange`), SigV4-signed like any other call.
//!
//! The desired state travels on a **long poll**, level-triggered:
//!
//! ```text
//! POST {endpoint}/agent/v1/poll      (SigV4, signing name "ecs")
//! body:     PollRequest  { cluster, containerInstanceArn, knownVersion }
//! response: PollResponse { version, desired: DesiredState }   (always the whole state)
//! ```
//!
//! The server answers at once when the instance's desired state is newer
//! than `knownVersion` (or `knownVersion` is absent: a fresh agent, or one
//! that reconnected), and otherwise holds the request for at most
//! [`POLL_HOLD_SECS`] before answering with the same version. Every poll is
//! also the agent's heartbeat: an instance whose agent has not polled for
//! [`DISCONNECT_AFTER_SECS`] is marked `agentConnected: false` and receives
//! no new placements. Because every answer is the complete desired state,
//! a reconnect is a full resync and nothing depends on having seen an
//! earlier message: the agent reconciles what it runs against the latest
//! answer, and never branches on why it was woken.
//!
//! Fencing: tasks the server stopped while the host was away simply appear
//! with `desiredStatus: STOPPED` (or not at all) in the next answer, and the
//! agent stops whatever it runs that the answer does not want running.

use serde::{Deserialize, Serialize};

/// Longest time the server holds a poll with nothing new.
pub const POLL_HOLD_SECS: u64 = 5;
/// Silence after which an agent counts as disconnected.
pub const DISCONNECT_AFTER_SECS: u64 = 10;
/// The path of the poll on the server's listener.
pub const POLL_PATH: &str = "/agent/v1/poll";
/// Where an agent bootstraps its own instance credentials: `POST` a
/// [`CredentialsRequest`] signed with an administrator's (root) key
/// (SigV4, signing name `ecs`), get a [`CredentialsResponse`] back. Only
/// the account root may call it; the minted key can do only what an agent
/// needs (register, report, poll).
pub const CREDENTIALS_PATH: &str = "/agent/v1/credentials";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PollRequest {
    pub cluster: String,
    pub container_instance_arn: String,
    /// The version of the last answer the agent applied; None on (re)connect.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub known_version: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PollResponse {
    /// Monotonic per instance (a store revision); the agent echoes it back.
    pub version: u64,
    pub desired: DesiredState,
}

/// Everything one host should be doing.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DesiredState {
    /// Tasks placed on this instance that are not yet known STOPPED by the
    /// server, plus recently stopped ones so the agent can clean up.
    pub tasks: Vec<DesiredTask>,
    /// The instance is DRAINING or being deregistered.
    #[serde(default)]
    pub draining: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DesiredTask {
    pub task_arn: String,
    /// RUNNING or STOPPED.
    pub desired_status: String,
    /// Why the server wants it stopped (stopCode, stoppedReason), if it does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_code: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stopped_reason: Option<String>,
    /// The task definition exactly as DescribeTaskDefinition renders it.
    pub task_definition: serde_json::Value,
    /// RunTask/StartTask `overrides`, as given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub overrides: Option<serde_json::Value>,
    /// Host ports chosen at placement, per container and container port.
    #[serde(default)]
    pub host_ports: Vec<AssignedPort>,
    /// Monotonic per task: bumps when anything the agent must act on changes.
    pub generation: u64,
    /// Credentials for the task's roles, minted when this answer was built
    /// (every answer carries fresh ones, so they never change
    /// `generation`). Absent for a task without roles, and for tasks
    /// desired STOPPED.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials: Option<TaskCredentials>,
}

/// What the agent serves a task at 169.254.170.2 and uses on its behalf.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskCredentials {
    /// The unguessable id in the task's
    /// `AWS_CONTAINER_CREDENTIALS_RELATIVE_URI` (`/v2/credentials/{id}`);
    /// stable for the task's life.
    pub credentials_id: String,
    /// The task role's session (`taskRoleArn`), if the task has one and it
    /// could be assumed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_role: Option<RoleCredentials>,
    /// The execution role's session (`executionRoleArn`): what the agent
    /// uses for the task's private image pulls.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub execution_role: Option<RoleCredentials>,
    /// Why a role named by the task could not be assumed (the role was
    /// deleted, or its trust policy no longer trusts ecs-tasks.amazonaws.com).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// One role session, in the shape the ECS credentials endpoint serves.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RoleCredentials {
    pub role_arn: String,
    pub access_key_id: String,
    pub secret_access_key: String,
    pub session_token: String,
    /// `YYYY-MM-DDTHH:MM:SSZ`.
    pub expiration: String,
}

impl std::fmt::Debug for RoleCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RoleCredentials")
            .field("role_arn", &self.role_arn)
            .field("access_key_id", &self.access_key_id)
            .field("expiration", &self.expiration)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AssignedPort {
    pub container_name: String,
    pub container_port: u16,
    pub host_port: u16,
    /// tcp or udp.
    pub protocol: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CredentialsRequest {
    /// The session name in the principal ARN (`.../BerthInstanceRole/{name}`),
    /// usually the host name; the access key id when absent.
    #[serde(default)]
    pub name: Option<String>,
}

#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CredentialsResponse {
    pub access_key_id: String,
    pub secret_access_key: String,
    pub principal_arn: String,
}

impl std::fmt::Debug for CredentialsResponse {
    /// The secret never reaches a log line.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CredentialsResponse")
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"****")
            .field("principal_arn", &self.principal_arn)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_names_are_camel_case_and_round_trip() {
        let r = PollResponse {
            version: 7,
            desired: DesiredState {
                tasks: vec![DesiredTask {
                    task_arn: "arn:aws:ecs:us-east-1:123456789012:task/demo/abc".into(),
                    desired_status: "RUNNING".into(),
                    stop_code: None,
                    stopped_reason: None,
                    task_definition: serde_json::json!({"family": "web"}),
                    overrides: None,
                    host_ports: vec![AssignedPort {
                        container_name: "web".into(),
                        container_port: 8080,
                        host_port: 49153,
                        protocol: "tcp".into(),
                    }],
                    generation: 1,
                    credentials: None,
                }],
                draining: false,
            },
        };
        let text = serde_json::to_string(&r).unwrap();
        assert!(text.contains("\"taskArn\"") && text.contains("\"hostPorts\"") && text.contains("\"desiredStatus\""));
        assert_eq!(serde_json::from_str::<PollResponse>(&text).unwrap(), r);
        let req: PollRequest = serde_json::from_str(r#"{"cluster":"c","containerInstanceArn":"a"}"#).unwrap();
        assert_eq!(req.known_version, None);
    }

    #[test]
    fn credentials_wire_shape_and_redacted_debug() {
        let req: CredentialsRequest = serde_json::from_str("{}").unwrap();
        assert_eq!(req.name, None);
        let req: CredentialsRequest = serde_json::from_str(r#"{"name":"host-a"}"#).unwrap();
        assert_eq!(req.name.as_deref(), Some("host-a"));
        let resp = CredentialsResponse {
            access_key_id: "AKIAAAAAAAAAAAAAAAAA".into(),
            secret_access_key: "very-secret-value".into(),
            principal_arn: "arn:aws:sts::123456789012:assumed-role/BerthInstanceRole/host-a".into(),
        };
        let text = serde_json::to_string(&resp).unwrap();
        assert!(text.contains("\"accessKeyId\"") && text.contains("\"secretAccessKey\"") && text.contains("\"principalArn\""));
        assert_eq!(serde_json::from_str::<CredentialsResponse>(&text).unwrap(), resp);
        assert!(!format!("{resp:?}").contains("very-secret-value"));
    }
}
