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
pub mod agent_session;
pub mod attributes;
pub mod capacity_providers;
pub mod clusters;
pub mod container_instances;
pub mod context;
pub mod doorbells;
pub mod error;
pub mod input;
pub mod keys;
pub mod operations;
pub mod paging;
pub mod repo;
pub mod roles;
pub mod services;
pub mod tags;
pub mod task_definitions;
pub mod tasks;
#[cfg(test)]
mod test_support;

pub use context::RequestContext;
pub use error::{EcsError, EcsResult};

/// The ECS service over one store.
#[derive(Clone)]
pub struct Ecs {
    store: Arc<dyn Store>,
    /// Which agents were heard from lately (in memory; see
    /// [`container_instances::Liveness`]).
    liveness: Arc<container_instances::Liveness>,
    /// How long a poll with nothing new is held.
    poll_hold: std::time::Duration,
    /// Wakes held polls when their instance's desired state changes.
    doorbells: Arc<doorbells::Doorbells>,
    /// IAM's answers about roles (PassRole, trust, task credentials).
    roles: Arc<dyn roles::RoleGate>,
}

impl Ecs {
    pub fn new(store: Arc<dyn Store>) -> Ecs {
        Ecs {
            store,
            liveness: Arc::new(container_instances::Liveness::default()),
            poll_hold: std::time::Duration::from_secs(berth_agent_protocol::POLL_HOLD_SECS),
            doorbells: Arc::new(doorbells::Doorbells::default()),
            roles: Arc::new(roles::OpenRoleGate),
        }
    }

    /// Check roles against IAM (the front door's), instead of letting
    /// every role pass and minting no task credentials.
    pub fn with_roles(mut self, roles: Arc<dyn roles::RoleGate>) -> Ecs {
        self.roles = roles;
        self
    }

    /// Share (or replace) the liveness map, e.g. to shorten the disconnect
    /// threshold in tests.
    pub fn with_liveness(mut self, liveness: Arc<container_instances::Liveness>) -> Ecs {
        self.liveness = liveness;
        self
    }

    /// Change how long a poll is held (tests use short holds).
    pub fn with_poll_hold(mut self, hold: std::time::Duration) -> Ecs {
        self.poll_hold = hold;
        self
    }

    pub fn liveness(&self) -> &Arc<container_instances::Liveness> {
        &self.liveness
    }

    /// The store this service writes to, for the front door's own records
    /// (instance credentials live in the same store as ECS's state).
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// The agent's long poll (`POST /agent/v1/poll`).
    pub async fn poll(
        &self,
        ctx: &RequestContext,
        req: berth_agent_protocol::PollRequest,
    ) -> EcsResult<berth_agent_protocol::PollResponse> {
        agent_session::poll(&self.store, &self.doorbells, &self.liveness, self.roles.as_ref(), ctx, req, self.poll_hold).await
    }

    /// Run one ECS operation. `body` is the request's JSON object.
    pub async fn handle(&self, ctx: &RequestContext, operation: &str, body: Map<String, Value>) -> EcsResult<Value> {
        self.handle_with_endpoint(ctx, operation, body, None).await
    }

    /// [`Ecs::handle`], knowing the URL the caller reached this server at
    /// (`http://HOST[:PORT]`, from the front door), which
    /// DiscoverPollEndpoint answers with.
    pub async fn handle_with_endpoint(
        &self,
        ctx: &RequestContext,
        operation: &str,
        body: Map<String, Value>,
        endpoint: Option<&str>,
    ) -> EcsResult<Value> {
        let s = self.store.as_ref();
        let l = self.liveness.as_ref();
        roles::check_request(self.roles.as_ref(), s, ctx, operation, &body).await?;
        match operation {
            "RegisterContainerInstance" => container_instances::register(s, l, ctx, body).await,
            "DeregisterContainerInstance" => container_instances::deregister(s, l, ctx, body).await,
            "DescribeContainerInstances" => container_instances::describe(s, l, ctx, body).await,
            "ListContainerInstances" => container_instances::list(s, l, ctx, body).await,
            "UpdateContainerInstancesState" => container_instances::update_state(s, l, ctx, body).await,

            "RunTask" => tasks::run_task(s, l, ctx, body).await,
            "StartTask" => tasks::start_task(s, l, ctx, body).await,
            "StopTask" => tasks::stop_task(s, ctx, body).await,
            "DescribeTasks" => tasks::describe(s, ctx, body).await,
            "ListTasks" => tasks::list(s, ctx, body).await,
            "SubmitTaskStateChange" => tasks::submit_task_state_change(s, l, ctx, body).await,
            "SubmitContainerStateChange" => tasks::submit_container_state_change(s, l, ctx, body).await,
            "SubmitAttachmentStateChanges" => tasks::submit_attachment_state_changes(s, ctx, body).await,
            "DiscoverPollEndpoint" => agent_session::discover_poll_endpoint(s, ctx, body, endpoint).await,

            "CreateCluster" => clusters::create(s, ctx, body).await,
            "DescribeClusters" => clusters::describe(s, ctx, body).await,
            "ListClusters" => clusters::list(s, ctx, body).await,
            "DeleteCluster" => clusters::delete(s, ctx, body).await,
            "UpdateCluster" => clusters::update(s, ctx, body).await,
            "UpdateClusterSettings" => clusters::update_settings(s, ctx, body).await,
            "PutClusterCapacityProviders" => clusters::put_capacity_providers(s, ctx, body).await,

            "CreateService" => services::create(s, ctx, body).await,
            "UpdateService" => services::update(s, ctx, body).await,
            "DeleteService" => services::delete(s, ctx, body).await,
            "DescribeServices" => services::describe(s, ctx, body).await,
            "ListServices" => services::list(s, ctx, body).await,
            "ListServicesByNamespace" => services::list_by_namespace(s, ctx, body).await,
            "ListServiceDeployments" => services::deployments_api::list(s, ctx, body).await,
            "DescribeServiceDeployments" => services::deployments_api::describe_deployments(s, ctx, body).await,
            "DescribeServiceRevisions" => services::deployments_api::describe_revisions(s, ctx, body).await,
            "StopServiceDeployment" => services::deployments_api::stop(s, ctx, body).await,

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
