//! Shared by the agent's integration tests: calling the real ECS service
//! (berth-ecs) in process, as the agent's control plane would over HTTP.

use berth_agent::control::ControlError;
use berth_agent_protocol::{PollRequest, PollResponse};
use berth_arn::{AccountId, Region};
use berth_ecs::{Ecs, EcsError, RequestContext};
use serde_json::Value;
use std::time::SystemTime;

/// The root of account 123456789012 in us-east-1, now.
pub fn ctx() -> RequestContext {
    RequestContext {
        account: AccountId::try_from("123456789012".to_string()).unwrap(),
        region: Region::try_from("us-east-1".to_string()).unwrap(),
        principal_arn: "arn:aws:iam::123456789012:root".into(),
        now: SystemTime::now(),
    }
}

/// An ECS error as the agent's control plane reports it.
pub fn api_error(e: EcsError) -> ControlError {
    ControlError::Api { code: berth_wire::ServiceError::code(&e).to_string(), message: e.to_string() }
}

/// `operation` with a JSON object body, as [`ctx`].
pub async fn call(ecs: &Ecs, operation: &str, body: Value) -> Result<Value, ControlError> {
    let Value::Object(map) = body else { panic!("bodies are objects") };
    ecs.handle(&ctx(), operation, map).await.map_err(api_error)
}

/// The agent's poll, as [`ctx`].
pub async fn poll(ecs: &Ecs, req: &PollRequest) -> Result<PollResponse, ControlError> {
    ecs.poll(&ctx(), req.clone()).await.map_err(api_error)
}
