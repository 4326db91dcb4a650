//! The [`Network`] trait: task networking as the agent sees it. One value
//! serves one bridge (its [`crate::BridgeConfig`] is given when the value
//! is made, because the IPAM state depends on the subnet). The real one is
//! [`crate::LinuxNetwork`]; [`crate::FakeNetwork`] is for tests of callers.
//!
//! Every operation is idempotent, so a level-triggered agent can simply
//! call it again after a failure or a restart.

use crate::error::NetError;
use crate::types::{
    CredentialsEndpoint, NetworkMode, PortMapping, PublishedPort, Recovered, TaskNetwork,
};
use async_trait::async_trait;

#[async_trait]
pub trait Network: Send + Sync {
    /// Creates (or repairs) the bridge, its address, its sysctls and its
    /// nftables table (with every recorded port). Refuses a subnet that
    /// overlaps one of the host's routes on another interface.
    async fn ensure_bridge(&self) -> Result<(), NetError>;

    /// Sets up a task's network: nothing for host mode; a namespace with
    /// loopback for none; for bridge and awsvpc also an address from the
    /// IPAM, a veth pair (host end on the bridge, task end `eth0`) and a
    /// default route via the bridge. The same call again returns the same
    /// network (repairing it if its kernel objects went missing); another
    /// mode for the same task is [`NetError::ModeConflict`].
    async fn create_task_network(
        &self,
        task_id: &str,
        mode: NetworkMode,
    ) -> Result<TaskNetwork, NetError>;

    /// Publishes host ports for the task (adding to those it has). The host
    /// ports are already chosen by placement; one held by another mapping
    /// is [`NetError::PortInUse`] (a placement bug) and nothing changes.
    /// In host mode there is nothing to publish: `Ok` without effect.
    async fn publish_ports(&self, task_id: &str, mappings: &[PortMapping]) -> Result<(), NetError>;

    /// Withdraws every port published for the task. `Ok` for an unknown
    /// task.
    async fn unpublish_ports(&self, task_id: &str) -> Result<(), NetError>;

    /// Removes the task's ports, veth and namespace and frees its address.
    /// `Ok` when there is nothing (left) to remove.
    async fn destroy_task_network(&self, task_id: &str) -> Result<(), NetError>;

    /// After an agent restart: re-checks every recorded task against the
    /// kernel, drops those whose namespace or veth is gone (freeing their
    /// addresses), removes Berth-named namespaces and veths nobody records,
    /// and re-applies the bridge and the nftables table.
    async fn recover(&self) -> Result<Recovered, NetError>;

    /// Sends tasks' requests to 169.254.170.2:80 (the ECS credentials and
    /// metadata endpoint) to `target` on the host (typically 127.0.0.1 and
    /// the agent's port); `None` removes the redirect.
    async fn set_credentials_endpoint(
        &self,
        target: Option<CredentialsEndpoint>,
    ) -> Result<(), NetError>;

    /// The task's network, if it has one.
    fn task_network(&self, task_id: &str) -> Option<TaskNetwork>;

    /// Every task network, by task id.
    fn task_networks(&self) -> Vec<TaskNetwork>;

    /// Every published port, for the agent to report as reserved ports.
    fn published_ports(&self) -> Vec<PublishedPort>;
}
