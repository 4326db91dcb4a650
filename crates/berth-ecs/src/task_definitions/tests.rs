//! Behaviour of the six operations against the in-memory store.

use super::*;
use berth_store::memory::MemoryStore;
use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

mod lifecycle;
mod lists_and_families;
mod registration;
mod validation;

pub(super) fn ctx() -> RequestContext {
    RequestContext {
        account: "123456789012".parse().unwrap(),
        region: "us-east-1".parse().unwrap(),
        principal_arn: "arn:aws:iam::123456789012:root".into(),
        now: UNIX_EPOCH + Duration::from_millis(1_700_000_000_500),
    }
}

pub(super) fn later(c: &RequestContext, secs: u64) -> RequestContext {
    RequestContext {
        now: c.now + Duration::from_secs(secs),
        ..c.clone()
    }
}

pub(super) fn new_store() -> Arc<dyn Store> {
    Arc::new(MemoryStore::new())
}

pub(super) fn obj(v: Value) -> Map<String, Value> {
    v.as_object().cloned().expect("test bodies are objects")
}

/// The smallest valid EC2 definition.
pub(super) fn basic(family: &str) -> Value {
    json!({"family": family, "containerDefinitions": [{"name": "app", "image": "nginx", "memory": 128}]})
}

pub(super) async fn reg(store: &dyn Store, body: Value) -> EcsResult<Value> {
    register(store, &ctx(), obj(body)).await
}

pub(super) async fn reg_ok(store: &dyn Store, body: Value) -> Value {
    reg(store, body).await.expect("registration succeeds")["taskDefinition"].clone()
}

pub(super) async fn desc(store: &dyn Store, reference: &str) -> EcsResult<Value> {
    describe(store, &ctx(), obj(json!({"taskDefinition": reference}))).await
}

pub(super) async fn dereg(store: &dyn Store, reference: &str) -> EcsResult<Value> {
    deregister(store, &ctx(), obj(json!({"taskDefinition": reference}))).await
}

pub(super) fn arn(family_revision: &str) -> String {
    format!("arn:aws:ecs:us-east-1:123456789012:task-definition/{family_revision}")
}

/// The ECS exception name of an error.
pub(super) fn code(e: &EcsError) -> &'static str {
    berth_wire::ServiceError::code(e)
}
