//! (being written)
use crate::{EcsResult, RequestContext}; use berth_store::Store; use serde_json::{Map, Value};
pub async fn put(_store: &dyn Store, _ctx: &RequestContext, _body: Map<String, Value>) -> EcsResult<Value> { Err(crate::EcsError::NotYetServed("put".into())) }
pub async fn delete(_store: &dyn Store, _ctx: &RequestContext, _body: Map<String, Value>) -> EcsResult<Value> { Err(crate::EcsError::NotYetServed("delete".into())) }
pub async fn list(_store: &dyn Store, _ctx: &RequestContext, _body: Map<String, Value>) -> EcsResult<Value> { Err(crate::EcsError::NotYetServed("list".into())) }
