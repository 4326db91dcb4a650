//! The variables the agent sets in every container, as the ECS agent does;
//! they win over the task definition's own (they describe this agent).

use berth_agent_protocol::DesiredTask;
use serde_json::Value;

/// Where containers reach the endpoint (redirected to the agent).
pub const ENDPOINT_HOST: &str = "169.254.170.2";

/// The task's role ARN: RunTask's override, else the definition's.
pub fn task_role_arn(desired: &DesiredTask) -> Option<&str> {
    fn of(v: Option<&Value>) -> Option<&str> {
        v?.get("taskRoleArn")?.as_str().filter(|s| !s.is_empty())
    }
    of(desired.overrides.as_ref()).or_else(|| of(Some(&desired.task_definition)))
}

/// The agent's variables for one container whose metadata id is
/// `endpoint_id`. The credentials URI appears only when the task has a
/// task role and the server gave it a credentials id.
pub fn container_env(desired: &DesiredTask, endpoint_id: &str) -> Vec<(String, String)> {
    let mut env = vec![
        ("AWS_EXECUTION_ENV".to_string(), "AWS_ECS_EC2".to_string()),
        ("ECS_CONTAINER_METADATA_URI".to_string(), format!("http://{ENDPOINT_HOST}/v3/{endpoint_id}")),
        ("ECS_CONTAINER_METADATA_URI_V4".to_string(), format!("http://{ENDPOINT_HOST}/v4/{endpoint_id}")),
    ];
    if let (Some(_), Some(creds)) = (task_role_arn(desired), &desired.credentials) {
        env.push(("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI".to_string(), format!("/v2/credentials/{}", creds.credentials_id)));
    }
    env
}

/// The copy of a desired task the worker keeps (and persists in its
/// record): the credentials id stays, the sessions do not — secrets are
/// held only in memory, in the registry, and refreshed by every poll.
pub fn without_secrets(task: &DesiredTask) -> DesiredTask {
    let mut t = task.clone();
    if let Some(c) = &mut t.credentials {
        c.task_role = None;
        c.execution_role = None;
    }
    t
}
