//! (being written)
use crate::{EcsResult, RequestContext}; use berth_store::Store; use serde_json::{Map, Value};
pub async fn put(_store: &dyn Store, _ctx: &RequestContext, _body: Map<String, Value>) -> EcsResult<Value> { Err(crate::EcsError::NotYetServed("put".into())) }
pub async fn put_default(_store: &dyn Store, _ctx: &RequestContext, _body: Map<String, Value>) -> EcsResult<Value> { Err(crate::EcsError::NotYetServed("put_default".into())) }
pub async fn delete(_store: &dyn Store, _ctx: &RequestContext, _body: Map<String, Value>) -> EcsResult<Value> { Err(crate::EcsError::NotYetServed("delete".into())) }
pub async fn list(_store: &dyn Store, _ctx: &RequestContext, _body: Map<String, Value>) -> EcsResult<Value> { Err(crate::EcsError::NotYetServed("list".into())) }
/// The value of an account setting for the caller (their own, else the
/// account default), or None when neither is set.
pub async fn effective_value(_store: &dyn Store, _ctx: &RequestContext, _name: &str) -> EcsResult<Option<String>> { Ok(None) }
