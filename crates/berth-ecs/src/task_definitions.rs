//! (being written)
use crate::{EcsResult, RequestContext}; use berth_store::Store; use serde_json::{Map, Value};
pub async fn register(_store: &dyn Store, _ctx: &RequestContext, _body: Map<String, Value>) -> EcsResult<Value> { Err(crate::EcsError::NotYetServed("register".into())) }
pub async fn describe(_store: &dyn Store, _ctx: &RequestContext, _body: Map<String, Value>) -> EcsResult<Value> { Err(crate::EcsError::NotYetServed("describe".into())) }
pub async fn deregister(_store: &dyn Store, _ctx: &RequestContext, _body: Map<String, Value>) -> EcsResult<Value> { Err(crate::EcsError::NotYetServed("deregister".into())) }
pub async fn delete(_store: &dyn Store, _ctx: &RequestContext, _body: Map<String, Value>) -> EcsResult<Value> { Err(crate::EcsError::NotYetServed("delete".into())) }
pub async fn list(_store: &dyn Store, _ctx: &RequestContext, _body: Map<String, Value>) -> EcsResult<Value> { Err(crate::EcsError::NotYetServed("list".into())) }
pub async fn list_families(_store: &dyn Store, _ctx: &RequestContext, _body: Map<String, Value>) -> EcsResult<Value> { Err(crate::EcsError::NotYetServed("list_families".into())) }
