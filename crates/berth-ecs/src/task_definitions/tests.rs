//! Behaviour of the six operations against the in-memory store.

use super::*;
use std::sync::Arc;
use std::time::Duration;

mod lifecycle;
mod lists_and_families;
mod registration;
mod validation;

pub(super) use crate::test_support::{code, ctx};

pub(super) fn later(c: &RequestContext, secs: u64) -> RequestContext {
    RequestContext {
        now: c.now + Duration::from_secs(secs),
        ..c.clone()
    }
}

pub(super) use crate::test_support::{body as obj, store as new_store};

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

