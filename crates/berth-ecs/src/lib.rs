//! The Amazon ECS API (`AmazonEC2ContainerServiceV20141113`) as Berth
//! serves it. Each module owns one resource family: it validates input as
//! ECS does, reads and writes its records through the [`Store`] trait with
//! optimistic concurrency, and renders ECS's response shapes.
//!
//! The front door (berth-server) authenticates the caller, builds a
//! [`RequestContext`] and calls [`Ecs::handle`].

use berth_store::Store;
use serde_json::{Map, Value};
use std::sync::Arc;

pub mod account_settings;
pub mod attributes;
pub mod capacity_providers;
pub mod clusters;
pub mod context;
pub mod error;
pub mod input;
pub mod keys;
pub mod operations;
pub mod paging;
pub mod repo;
pub mod tags;
pub mod task_definitions;
#[cfg(test)]
mod test_support;

pub use context::RequestContext;
pub use error::{EcsError, EcsResult};

/// The ECS service over one store.
#[derive(Clone)]
pub struct Ecs {
    store: Arc<dyn Store>,
}

impl Ecs {
    pub fn new(store: Arc<dyn Store>) -> Ecs {
        Ecs { store }
    }

    /// Run one ECS operation. `body` is the request's JSON object.
    pub async fn handle(&self, ctx: &RequestContext, operation: &str, body: Map<String, Value>) -> EcsResult<Value> {
        let s = self.store.as_ref();
        match operation {
            "CreateCluster" => clusters::create(s, ctx, body).await,
            "DescribeClusters" => clusters::describe(s, ctx, body).await,
            "ListClusters" => clusters::list(s, ctx, body).await,
            "DeleteCluster" => clusters::delete(s, ctx, body).await,
            "UpdateCluster" => clusters::update(s, ctx, body).await,
            "UpdateClusterSettings" => clusters::update_settings(s, ctx, body).await,
            "PutClusterCapacityProviders" => clusters::put_capacity_providers(s, ctx, body).await,

            "CreateCapacityProvider" => capacity_providers::create(s, ctx, body).await,
            "DescribeCapacityProviders" => capacity_providers::describe(s, ctx, body).await,
            "UpdateCapacityProvider" => capacity_providers::update(s, ctx, body).await,
            "DeleteCapacityProvider" => capacity_providers::delete(s, ctx, body).await,

            "RegisterTaskDefinition" => task_definitions::register(s, ctx, body).await,
            "DescribeTaskDefinition" => task_definitions::describe(s, ctx, body).await,
            "DeregisterTaskDefinition" => task_definitions::deregister(s, ctx, body).await,
            "DeleteTaskDefinitions" => task_definitions::delete(s, ctx, body).await,
            "ListTaskDefinitions" => task_definitions::list(s, ctx, body).await,
            "ListTaskDefinitionFamilies" => task_definitions::list_families(s, ctx, body).await,

            "TagResource" => tags::tag_resource(s, ctx, body).await,
            "UntagResource" => tags::untag_resource(s, ctx, body).await,
            "ListTagsForResource" => tags::list_tags_for_resource(s, ctx, body).await,

            "PutAttributes" => attributes::put(s, ctx, body).await,
            "DeleteAttributes" => attributes::delete(s, ctx, body).await,
            "ListAttributes" => attributes::list(s, ctx, body).await,

            "PutAccountSetting" => account_settings::put(s, ctx, body).await,
            "PutAccountSettingDefault" => account_settings::put_default(s, ctx, body).await,
            "DeleteAccountSetting" => account_settings::delete(s, ctx, body).await,
            "ListAccountSettings" => account_settings::list(s, ctx, body).await,

            other if operations::is_ecs_operation(other) => Err(EcsError::NotYetServed(format!(
                "{other} is part of the Amazon ECS API but is not served by this version of Berth."
            ))),
            other => Err(EcsError::UnknownOperation(format!("Operation {other} is not recognized."))),
        }
    }
}
