//! [`FakeNetwork`]: a [`Network`] in memory, for tests of callers (the
//! agent's task engine) and for simulating many hosts in one process. It
//! keeps the same bookkeeping as the real one ([`NetState`]: IPAM, mode
//! checks, port conflicts, idempotence), touches no kernel, records every
//! call, and fails the next call of a chosen kind on demand.

use crate::config::{BridgeConfig, validate_task_id};
use crate::error::NetError;
use crate::network::Network;
use crate::state::NetState;
use crate::types::{
    CredentialsEndpoint, NetworkMode, PortMapping, PublishedPort, Recovered, TaskNetwork,
};
use async_trait::async_trait;
use std::collections::{BTreeSet, VecDeque};
use std::sync::{Mutex, MutexGuard};

/// One recorded call.
#[derive(Debug, Clone, PartialEq)]
pub enum Call {
    EnsureBridge,
    Create(String, NetworkMode),
    Publish(String, Vec<PortMapping>),
    Unpublish(String),
    Destroy(String),
    Recover,
    SetCredentials(Option<CredentialsEndpoint>),
}

/// The kinds of call a failure can be injected into.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Op {
    EnsureBridge,
    Create,
    Publish,
    Unpublish,
    Destroy,
    Recover,
    SetCredentials,
}

#[derive(Debug)]
struct Inner {
    state: NetState,
    calls: Vec<Call>,
    failures: VecDeque<(Op, String)>,
    bridge_ready: bool,
    /// Tasks whose network "vanished" (see [`FakeNetwork::lose_task`]).
    lost: BTreeSet<String>,
}

#[derive(Debug)]
pub struct FakeNetwork {
    cfg: BridgeConfig,
    inner: Mutex<Inner>,
}

impl FakeNetwork {
    pub fn new(cfg: BridgeConfig) -> Result<FakeNetwork, NetError> {
        let state = NetState::new(&cfg)?;
        Ok(FakeNetwork {
            cfg,
            inner: Mutex::new(Inner {
                state,
                calls: Vec::new(),
                failures: VecDeque::new(),
                bridge_ready: false,
                lost: BTreeSet::new(),
            }),
        })
    }

    /// A fake on the default bridge config (172.29.0.0/16).
    pub fn with_defaults() -> FakeNetwork {
        FakeNetwork::new(BridgeConfig::default()).expect("default config is valid")
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn config(&self) -> &BridgeConfig {
        &self.cfg
    }

    /// Every call so far, in order.
    pub fn calls(&self) -> Vec<Call> {
        self.lock().calls.clone()
    }

    /// The next call of kind `op` fails with [`NetError::Injected`].
    pub fn fail_next(&self, op: Op, message: impl Into<String>) {
        self.lock().failures.push_back((op, message.into()));
    }

    /// Whether [`Network::ensure_bridge`] (or `recover`) has run.
    pub fn bridge_ready(&self) -> bool {
        self.lock().bridge_ready
    }

    /// The task's network vanishes (as in a reboot): the next `recover`
    /// reports it lost and frees its address.
    pub fn lose_task(&self, task_id: &str) {
        self.lock().lost.insert(task_id.to_string());
    }

    /// The credentials endpoint now set.
    pub fn credentials_endpoint(&self) -> Option<CredentialsEndpoint> {
        self.lock().state.credentials_endpoint
    }

    /// How many addresses are handed out.
    pub fn allocated_addresses(&self) -> usize {
        self.lock().state.ipam.len()
    }

    fn begin(&self, call: Call, op: Op) -> Result<MutexGuard<'_, Inner>, NetError> {
        let mut g = self.lock();
        g.calls.push(call);
        if let Some(pos) = g.failures.iter().position(|(o, _)| *o == op) {
            let (_, msg) = g.failures.remove(pos).expect("position is valid");
            return Err(NetError::Injected(msg));
        }
        Ok(g)
    }
}

#[async_trait]
impl Network for FakeNetwork {
    async fn ensure_bridge(&self) -> Result<(), NetError> {
        let mut g = self.begin(Call::EnsureBridge, Op::EnsureBridge)?;
        g.bridge_ready = true;
        Ok(())
    }

    async fn create_task_network(
        &self,
        task_id: &str,
        mode: NetworkMode,
    ) -> Result<TaskNetwork, NetError> {
        let mut g = self.begin(Call::Create(task_id.to_string(), mode), Op::Create)?;
        validate_task_id(task_id)?;
        let cfg = self.cfg.clone();
        g.lost.remove(task_id);
        match g.state.begin_task(&cfg, task_id, mode)? {
            crate::state::Begin::Existing(n) | crate::state::Begin::New(n) => Ok(n),
        }
    }

    async fn publish_ports(&self, task_id: &str, mappings: &[PortMapping]) -> Result<(), NetError> {
        let mut g = self.begin(
            Call::Publish(task_id.to_string(), mappings.to_vec()),
            Op::Publish,
        )?;
        g.state.publish(task_id, mappings).map(|_| ())
    }

    async fn unpublish_ports(&self, task_id: &str) -> Result<(), NetError> {
        let mut g = self.begin(Call::Unpublish(task_id.to_string()), Op::Unpublish)?;
        if g.state.tasks.contains_key(task_id) {
            g.state.unpublish(task_id)?;
        }
        Ok(())
    }

    async fn destroy_task_network(&self, task_id: &str) -> Result<(), NetError> {
        let mut g = self.begin(Call::Destroy(task_id.to_string()), Op::Destroy)?;
        validate_task_id(task_id)?;
        g.state.remove_task(task_id);
        g.lost.remove(task_id);
        Ok(())
    }

    async fn recover(&self) -> Result<Recovered, NetError> {
        let mut g = self.begin(Call::Recover, Op::Recover)?;
        let lost: Vec<String> = std::mem::take(&mut g.lost).into_iter().collect();
        for id in &lost {
            g.state.remove_task(id);
        }
        g.bridge_ready = true;
        Ok(Recovered {
            tasks: g.state.tasks.values().map(|r| r.network.clone()).collect(),
            lost,
            orphans_removed: Vec::new(),
        })
    }

    async fn set_credentials_endpoint(
        &self,
        target: Option<CredentialsEndpoint>,
    ) -> Result<(), NetError> {
        let mut g = self.begin(Call::SetCredentials(target), Op::SetCredentials)?;
        g.state.credentials_endpoint = target;
        Ok(())
    }

    fn task_network(&self, task_id: &str) -> Option<TaskNetwork> {
        self.lock()
            .state
            .tasks
            .get(task_id)
            .map(|r| r.network.clone())
    }

    fn task_networks(&self) -> Vec<TaskNetwork> {
        self.lock()
            .state
            .tasks
            .values()
            .map(|r| r.network.clone())
            .collect()
    }

    fn published_ports(&self) -> Vec<PublishedPort> {
        self.lock().state.published()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn behaves_like_the_real_bookkeeping() {
        let net = FakeNetwork::with_defaults();
        net.ensure_bridge().await.unwrap();
        let a = net
            .create_task_network("a", NetworkMode::Bridge)
            .await
            .unwrap();
        let b = net
            .create_task_network("b", NetworkMode::Awsvpc)
            .await
            .unwrap();
        assert_ne!(a.ipv4, b.ipv4);
        assert!(b.eni_attachment().is_some());
        assert_eq!(
            net.create_task_network("a", NetworkMode::Bridge)
                .await
                .unwrap(),
            a
        );
        net.publish_ports("a", &[PortMapping::tcp(8080, 80)])
            .await
            .unwrap();
        assert!(matches!(
            net.publish_ports("b", &[PortMapping::tcp(8080, 80)]).await,
            Err(NetError::PortInUse { .. })
        ));
        assert_eq!(net.published_ports().len(), 1);
        net.destroy_task_network("a").await.unwrap();
        net.destroy_task_network("a").await.unwrap();
        assert!(net.published_ports().is_empty());
        assert_eq!(net.allocated_addresses(), 1);
        assert_eq!(net.calls()[0], Call::EnsureBridge);
    }

    #[tokio::test]
    async fn injected_failures_and_lost_tasks() {
        let net = FakeNetwork::with_defaults();
        net.fail_next(Op::Create, "no veth for you");
        assert!(matches!(
            net.create_task_network("a", NetworkMode::Bridge).await,
            Err(NetError::Injected(m)) if m == "no veth for you"
        ));
        let a = net
            .create_task_network("a", NetworkMode::Bridge)
            .await
            .unwrap();
        net.create_task_network("n", NetworkMode::None)
            .await
            .unwrap();
        net.lose_task("a");
        let r = net.recover().await.unwrap();
        assert_eq!(r.lost, vec!["a".to_string()]);
        assert_eq!(r.tasks.len(), 1);
        assert_eq!(net.allocated_addresses(), 0);
        let again = net
            .create_task_network("a", NetworkMode::Bridge)
            .await
            .unwrap();
        assert_ne!(again.ipv4, a.ipv4, "round robin");
        net.set_credentials_endpoint(Some("127.0.0.1:51679".parse().unwrap()))
            .await
            .unwrap();
        assert!(net.credentials_endpoint().is_some());
    }
}
