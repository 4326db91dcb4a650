//! Shared fixtures for the unit tests of every ECS module.

use crate::{EcsError, RequestContext};
use berth_store::Store;
use berth_store::memory::MemoryStore;
use serde_json::{Map, Value};
use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

pub const ACCOUNT: &str = "123456789012";
pub const ROOT_ARN: &str = "arn:aws:iam::123456789012:root";

/// A request from `principal` in us-east-1 at a fixed instant.
pub fn ctx_as(principal: &str) -> RequestContext {
    RequestContext {
        account: ACCOUNT.parse().expect("valid account id"),
        region: "us-east-1".parse().expect("valid region"),
        principal_arn: principal.into(),
        now: UNIX_EPOCH + Duration::from_millis(1_700_000_000_500),
    }
}

/// A request from the account root.
pub fn ctx() -> RequestContext {
    ctx_as(ROOT_ARN)
}

pub fn store() -> Arc<dyn Store> {
    Arc::new(MemoryStore::new())
}

/// A JSON object literal as a request body.
pub fn body(v: Value) -> Map<String, Value> {
    v.as_object().cloned().expect("test bodies are objects")
}

/// The ECS exception name of an error.
pub fn code(e: &EcsError) -> &'static str {
    berth_wire::ServiceError::code(e)
}
