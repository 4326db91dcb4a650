//! [`LinuxNetwork`]: the real [`Network`], on the host's kernel through
//! [`HostTools`].
//!
//! Each operation runs on tokio's blocking pool (it waits for `ip` and
//! `nft`). Bookkeeping is in one [`NetState`] behind a mutex, written to
//! `{state_dir}/net-{bridge}.json` *before* the kernel is touched, so a
//! crash mid-way leaves a record that [`Network::recover`] or a retry
//! cleans up, and never an address handed out twice. Operations on one
//! task are serialized; different tasks proceed in parallel. Every change
//! of ports re-renders the bridge's whole nftables table from the state,
//! atomically, under a lock of its own, so the table always ends up
//! matching the latest state.

use crate::config::{BridgeConfig, validate_task_id};
use crate::error::NetError;
use crate::network::Network;
use crate::render;
use crate::routes::overlapping;
use crate::state::{Begin, NetState};
use crate::tools::{HostTools, SystemTools};
use crate::types::{
    CredentialsEndpoint, NetworkMode, PortMapping, PublishedPort, Recovered, TaskNetwork,
};
use async_trait::async_trait;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

/// The real network of one bridge.
#[derive(Clone)]
pub struct LinuxNetwork {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for LinuxNetwork {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LinuxNetwork")
            .field("bridge", &self.inner.cfg.bridge)
            .field("subnet", &self.inner.cfg.subnet)
            .field("state_path", &self.inner.state_path)
            .finish()
    }
}

struct Inner {
    cfg: BridgeConfig,
    tools: Arc<dyn HostTools>,
    state_path: PathBuf,
    state: Mutex<NetState>,
    /// Held while the nftables table is rendered and applied.
    nft_lock: Mutex<()>,
    /// The last table apply failed: the next operation re-applies.
    nft_dirty: AtomicBool,
    task_locks: Mutex<HashMap<String, Arc<Mutex<()>>>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl LinuxNetwork {
    /// Opens the network of `cfg.bridge`, with its state under `state_dir`,
    /// driving the kernel through `ip` and `nft`. Reads the state file (so
    /// addresses handed out before a restart stay taken) but touches
    /// nothing in the kernel: call [`Network::recover`] (after a restart) or
    /// [`Network::ensure_bridge`] next.
    pub fn open(cfg: BridgeConfig, state_dir: &Path) -> Result<LinuxNetwork, NetError> {
        let tools = SystemTools::new();
        tools.check()?;
        LinuxNetwork::with_tools(cfg, state_dir, Arc::new(tools))
    }

    /// [`LinuxNetwork::open`] with other [`HostTools`].
    pub fn with_tools(
        cfg: BridgeConfig,
        state_dir: &Path,
        tools: Arc<dyn HostTools>,
    ) -> Result<LinuxNetwork, NetError> {
        cfg.validate()?;
        let state_path = state_dir.join(format!("net-{}.json", cfg.bridge));
        let state = NetState::load(&state_path, &cfg)?;
        Ok(LinuxNetwork {
            inner: Arc::new(Inner {
                cfg,
                tools,
                state_path,
                state: Mutex::new(state),
                nft_lock: Mutex::new(()),
                nft_dirty: AtomicBool::new(false),
                task_locks: Mutex::new(HashMap::new()),
            }),
        })
    }

    pub fn config(&self) -> &BridgeConfig {
        &self.inner.cfg
    }

    pub fn state_path(&self) -> &Path {
        &self.inner.state_path
    }

    /// Removes the bridge's nftables table and the bridge itself (tasks'
    /// networks first: every recorded one is destroyed). For uninstalling
    /// and for tests.
    pub async fn teardown(&self) -> Result<(), NetError> {
        self.run(|i| i.teardown()).await
    }

    async fn run<R, F>(&self, f: F) -> Result<R, NetError>
    where
        R: Send + 'static,
        F: FnOnce(&Inner) -> Result<R, NetError> + Send + 'static,
    {
        let inner = self.inner.clone();
        match tokio::task::spawn_blocking(move || f(&inner)).await {
            Ok(r) => r,
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Err(e) => Err(NetError::io(
                "network operation",
                std::io::Error::other(e.to_string()),
            )),
        }
    }
}

impl Inner {
    fn task_lock(&self, task_id: &str) -> Arc<Mutex<()>> {
        lock(&self.task_locks)
            .entry(task_id.to_string())
            .or_default()
            .clone()
    }

    fn drop_task_lock(&self, task_id: &str, held: Arc<Mutex<()>>) {
        let mut locks = lock(&self.task_locks);
        // Ours and the map's: nobody else waits on it.
        if Arc::strong_count(&held) == 2 {
            locks.remove(task_id);
        }
    }

    fn save(&self, state: &NetState) -> Result<(), NetError> {
        state.save(&self.state_path)
    }

    fn sync_nft(&self) -> Result<(), NetError> {
        let _g = lock(&self.nft_lock);
        let (targets, creds) = {
            let s = lock(&self.state);
            (s.dnat_targets(), s.credentials_endpoint)
        };
        let script = render::nft_table(&self.cfg, &targets, creds);
        match self.tools.nft(&script) {
            Ok(()) => {
                self.nft_dirty.store(false, Ordering::SeqCst);
                Ok(())
            }
            Err(e) => {
                self.nft_dirty.store(true, Ordering::SeqCst);
                Err(e)
            }
        }
    }

    fn sync_nft_if_dirty(&self) -> Result<(), NetError> {
        if self.nft_dirty.load(Ordering::SeqCst) {
            self.sync_nft()
        } else {
            Ok(())
        }
    }

    fn ensure_bridge(&self) -> Result<(), NetError> {
        let cfg = &self.cfg;
        if let Some(r) = overlapping(&self.tools.routes(), &cfg.subnet, &cfg.bridge).first() {
            return Err(NetError::SubnetConflict {
                bridge: cfg.bridge.clone(),
                subnet: cfg.subnet,
                route: r.destination,
                iface: r.iface.clone(),
            });
        }
        let exists = self.tools.link_exists(&cfg.bridge);
        self.tools
            .ip_batch(None, &render::bridge_script(cfg, exists))?;
        let br = &cfg.bridge;
        // 127.0.0.1 may be DNATed out of the bridge (published ports) and
        // into it (the credentials endpoint).
        self.tools
            .write_sysctl(&format!("net/ipv4/conf/{br}/route_localnet"), "1")?;
        // Tasks' replies to other hosts are forwarded from the bridge.
        self.tools
            .write_sysctl(&format!("net/ipv4/conf/{br}/forwarding"), "1")?;
        if cfg.enable_ip_forward {
            self.tools.write_sysctl("net/ipv4/ip_forward", "1")?;
        }
        self.sync_nft()
    }

    fn kernel_intact(&self, net: &TaskNetwork) -> bool {
        if !net.mode.has_netns() {
            return true;
        }
        self.tools.netns_exists(&self.cfg.netns_name(&net.task_id))
            && net
                .veth_host_name
                .as_deref()
                .is_none_or(|v| self.tools.link_exists(v))
    }

    /// Removes the task's veth and namespace, whichever exist.
    fn remove_kernel_objects(&self, task_id: &str, veth: Option<&str>) -> Result<(), NetError> {
        // The host end first: deleting it deletes the pair even while a
        // container still holds the namespace.
        if let Some(v) = veth
            && self.tools.link_exists(v)
        {
            self.tools.ip_batch(None, &format!("link del dev {v}\n"))?;
        }
        let ns = self.cfg.netns_name(task_id);
        if self.tools.netns_exists(&ns) {
            self.tools.ip_batch(None, &format!("netns del {ns}\n"))?;
        }
        Ok(())
    }

    fn build_kernel_objects(&self, net: &TaskNetwork) -> Result<(), NetError> {
        if net.mode.has_interface() && !self.tools.link_exists(&self.cfg.bridge) {
            self.ensure_bridge()?;
        }
        self.remove_kernel_objects(&net.task_id, net.veth_host_name.as_deref())?;
        self.tools
            .ip_batch(None, &render::task_host_script(&self.cfg, net))?;
        let ns = self.cfg.netns_name(&net.task_id);
        self.tools
            .ip_batch(Some(&ns), &render::task_ns_script(net))?;
        Ok(())
    }

    fn create(&self, task_id: &str, mode: NetworkMode) -> Result<TaskNetwork, NetError> {
        validate_task_id(task_id)?;
        let tl = self.task_lock(task_id);
        let _g = lock(&tl);
        let begin = {
            let mut s = lock(&self.state);
            let begin = s.begin_task(&self.cfg, task_id, mode)?;
            if matches!(begin, Begin::New(_))
                && let Err(e) = self.save(&s)
            {
                s.remove_task(task_id);
                return Err(e);
            }
            begin
        };
        let (net, is_new) = match begin {
            Begin::Existing(net) if self.kernel_intact(&net) => return Ok(net),
            Begin::Existing(net) => {
                tracing::warn!(task_id, "task network incomplete in the kernel; rebuilding");
                (net, false)
            }
            Begin::New(net) => (net, true),
        };
        if !mode.has_netns() {
            return Ok(net);
        }
        match self.build_kernel_objects(&net) {
            Ok(()) => {
                tracing::debug!(task_id, %mode, ip = ?net.ipv4, "task network created");
                self.sync_nft_if_dirty()?;
                Ok(net)
            }
            Err(e) => {
                if let Err(e2) = self.remove_kernel_objects(task_id, net.veth_host_name.as_deref())
                {
                    tracing::warn!(task_id, error = %e2, "cleaning up a failed task network");
                } else if is_new {
                    let mut s = lock(&self.state);
                    s.remove_task(task_id);
                    let _ = self.save(&s);
                }
                Err(e)
            }
        }
    }

    fn publish(&self, task_id: &str, mappings: &[PortMapping]) -> Result<(), NetError> {
        validate_task_id(task_id)?;
        let tl = self.task_lock(task_id);
        let _g = lock(&tl);
        let before = {
            let mut s = lock(&self.state);
            let before = s.publish(task_id, mappings)?;
            if s.tasks[task_id].ports == before {
                drop(s);
                return self.sync_nft_if_dirty();
            }
            if let Err(e) = self.save(&s) {
                s.set_ports(task_id, before);
                return Err(e);
            }
            before
        };
        if let Err(e) = self.sync_nft() {
            let mut s = lock(&self.state);
            s.set_ports(task_id, before);
            let _ = self.save(&s);
            return Err(e);
        }
        Ok(())
    }

    fn unpublish(&self, task_id: &str) -> Result<(), NetError> {
        validate_task_id(task_id)?;
        let tl = self.task_lock(task_id);
        let _g = lock(&tl);
        {
            let mut s = lock(&self.state);
            if !s.tasks.contains_key(task_id) {
                return Ok(());
            }
            let removed = s.unpublish(task_id)?;
            if removed.is_empty() {
                drop(s);
                return self.sync_nft_if_dirty();
            }
            if let Err(e) = self.save(&s) {
                s.set_ports(task_id, removed);
                return Err(e);
            }
        }
        // Withdrawn from the state: a failed apply stays dirty and is
        // retried by the next operation.
        self.sync_nft()
    }

    fn destroy(&self, task_id: &str) -> Result<(), NetError> {
        validate_task_id(task_id)?;
        let tl = self.task_lock(task_id);
        let g = lock(&tl);
        let record = {
            let mut s = lock(&self.state);
            let rec = s.tasks.get(task_id).cloned();
            if rec.as_ref().is_some_and(|r| !r.ports.is_empty()) {
                s.unpublish(task_id)?;
                self.save(&s)?;
                self.nft_dirty.store(true, Ordering::SeqCst);
            }
            rec
        };
        // Ports first, so no DNAT points at an address about to be freed.
        self.sync_nft_if_dirty()?;
        let veth = record
            .as_ref()
            .and_then(|r| r.network.veth_host_name.clone());
        self.remove_kernel_objects(task_id, veth.as_deref())?;
        if record.is_some() {
            let mut s = lock(&self.state);
            s.remove_task(task_id);
            self.save(&s)?;
        }
        drop(g);
        self.drop_task_lock(task_id, tl);
        tracing::debug!(task_id, "task network destroyed");
        Ok(())
    }

    fn set_credentials(&self, target: Option<CredentialsEndpoint>) -> Result<(), NetError> {
        {
            let mut s = lock(&self.state);
            if s.credentials_endpoint == target && !self.nft_dirty.load(Ordering::SeqCst) {
                return Ok(());
            }
            s.credentials_endpoint = target;
            self.save(&s)?;
        }
        self.sync_nft()
    }

    fn recover(&self) -> Result<Recovered, NetError> {
        let mut out = Recovered::default();
        let records: Vec<_> = lock(&self.state).tasks.values().cloned().collect();
        for rec in records {
            let net = rec.network;
            if self.kernel_intact(&net) {
                out.tasks.push(net);
                continue;
            }
            tracing::info!(task_id = %net.task_id, "task network lost while the agent was away");
            self.remove_kernel_objects(&net.task_id, net.veth_host_name.as_deref())?;
            lock(&self.state).remove_task(&net.task_id);
            out.lost.push(net.task_id);
        }
        // Berth-named objects no record claims.
        let cfg = &self.cfg;
        if !cfg.netns_prefix.is_empty() {
            for ns in self.tools.list_netns() {
                let Some(task_id) = ns.strip_prefix(&cfg.netns_prefix) else {
                    continue;
                };
                if lock(&self.state).tasks.contains_key(task_id) {
                    continue;
                }
                self.tools.ip_batch(None, &format!("netns del {ns}\n"))?;
                out.orphans_removed.push(ns);
            }
        }
        let known: Vec<String> = lock(&self.state)
            .tasks
            .values()
            .filter_map(|r| r.network.veth_host_name.clone())
            .collect();
        for port in self.tools.bridge_ports(&cfg.bridge) {
            if port.starts_with(&cfg.veth_prefix) && !known.contains(&port) {
                self.tools
                    .ip_batch(None, &format!("link del dev {port}\n"))?;
                out.orphans_removed.push(port);
            }
        }
        self.save(&lock(&self.state))?;
        self.ensure_bridge()?;
        Ok(out)
    }

    fn teardown(&self) -> Result<(), NetError> {
        let ids: Vec<String> = lock(&self.state).tasks.keys().cloned().collect();
        for id in ids {
            self.destroy(&id)?;
        }
        self.tools.nft(&render::nft_delete_table(&self.cfg))?;
        if self.tools.link_exists(&self.cfg.bridge) {
            self.tools
                .ip_batch(None, &format!("link del dev {}\n", self.cfg.bridge))?;
        }
        Ok(())
    }
}

#[async_trait]
impl Network for LinuxNetwork {
    async fn ensure_bridge(&self) -> Result<(), NetError> {
        self.run(|i| i.ensure_bridge()).await
    }

    async fn create_task_network(
        &self,
        task_id: &str,
        mode: NetworkMode,
    ) -> Result<TaskNetwork, NetError> {
        let id = task_id.to_string();
        self.run(move |i| i.create(&id, mode)).await
    }

    async fn publish_ports(&self, task_id: &str, mappings: &[PortMapping]) -> Result<(), NetError> {
        let id = task_id.to_string();
        let mappings = mappings.to_vec();
        self.run(move |i| i.publish(&id, &mappings)).await
    }

    async fn unpublish_ports(&self, task_id: &str) -> Result<(), NetError> {
        let id = task_id.to_string();
        self.run(move |i| i.unpublish(&id)).await
    }

    async fn destroy_task_network(&self, task_id: &str) -> Result<(), NetError> {
        let id = task_id.to_string();
        self.run(move |i| i.destroy(&id)).await
    }

    async fn recover(&self) -> Result<Recovered, NetError> {
        self.run(|i| i.recover()).await
    }

    async fn set_credentials_endpoint(
        &self,
        target: Option<CredentialsEndpoint>,
    ) -> Result<(), NetError> {
        self.run(move |i| i.set_credentials(target)).await
    }

    fn task_network(&self, task_id: &str) -> Option<TaskNetwork> {
        lock(&self.inner.state)
            .tasks
            .get(task_id)
            .map(|r| r.network.clone())
    }

    fn task_networks(&self) -> Vec<TaskNetwork> {
        lock(&self.inner.state)
            .tasks
            .values()
            .map(|r| r.network.clone())
            .collect()
    }

    fn published_ports(&self) -> Vec<PublishedPort> {
        lock(&self.inner.state).published()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tools::{RecordingTools, ToolCall};

    fn setup() -> (tempfile::TempDir, Arc<RecordingTools>, LinuxNetwork) {
        let dir = tempfile::tempdir().unwrap();
        let tools = Arc::new(RecordingTools::new());
        let cfg = BridgeConfig {
            bridge: "bu0".into(),
            subnet: "10.60.0.0/24".parse().unwrap(),
            nft_table: "berth_unit".into(),
            netns_prefix: "bu-".into(),
            ..BridgeConfig::default()
        };
        let net = LinuxNetwork::with_tools(cfg, dir.path(), tools.clone()).unwrap();
        (dir, tools, net)
    }

    fn nft_scripts(tools: &RecordingTools) -> Vec<String> {
        tools
            .calls()
            .into_iter()
            .filter_map(|c| match c {
                ToolCall::Nft(s) => Some(s),
                _ => None,
            })
            .collect()
    }

    #[tokio::test]
    async fn ensure_bridge_sets_sysctls_and_table() {
        let (_d, tools, net) = setup();
        net.ensure_bridge().await.unwrap();
        let calls = tools.calls();
        assert!(
            matches!(&calls[0], ToolCall::IpBatch { netns: None, script } if script.starts_with("link add name bu0"))
        );
        assert!(calls.contains(&ToolCall::Sysctl {
            key: "net/ipv4/conf/bu0/route_localnet".into(),
            value: "1".into()
        }));
        assert!(calls.contains(&ToolCall::Sysctl {
            key: "net/ipv4/ip_forward".into(),
            value: "1".into()
        }));
        assert_eq!(nft_scripts(&tools).len(), 1);
        // Second time: the bridge exists, no `link add`.
        net.ensure_bridge().await.unwrap();
        assert!(
            matches!(&tools.calls()[5], ToolCall::IpBatch { script, .. } if script.starts_with("addr replace"))
        );
    }

    #[tokio::test]
    async fn refuses_a_subnet_the_host_routes_elsewhere() {
        let (_d, tools, net) = setup();
        tools.add_route("eth9", "10.0.0.0/8".parse().unwrap());
        assert!(matches!(
            net.ensure_bridge().await,
            Err(NetError::SubnetConflict { .. })
        ));
    }

    #[tokio::test]
    async fn create_is_idempotent_and_repairs() {
        let (_d, tools, net) = setup();
        let a = net
            .create_task_network("a", NetworkMode::Bridge)
            .await
            .unwrap();
        assert_eq!(a.ipv4, Some("10.60.0.2".parse().unwrap()));
        let n = tools.calls().len();
        assert_eq!(
            net.create_task_network("a", NetworkMode::Bridge)
                .await
                .unwrap(),
            a
        );
        assert_eq!(tools.calls().len(), n, "an intact network is left alone");
        tools.forget_link(a.veth_host_name.as_deref().unwrap());
        assert_eq!(
            net.create_task_network("a", NetworkMode::Bridge)
                .await
                .unwrap(),
            a
        );
        assert!(tools.calls().len() > n, "a broken one is rebuilt");
        let h = net
            .create_task_network("h", NetworkMode::Host)
            .await
            .unwrap();
        assert_eq!(h.netns_path, None);
    }

    #[tokio::test]
    async fn failed_create_rolls_back_the_address() {
        let (_d, tools, net) = setup();
        net.ensure_bridge().await.unwrap();
        tools.fail_on("route add default");
        let err = net.create_task_network("a", NetworkMode::Bridge).await;
        assert!(matches!(err, Err(NetError::Injected(_))));
        assert_eq!(net.task_network("a"), None);
        assert!(!tools.netns_exists("bu-a"));
        tools.clear_failures();
        let a = net
            .create_task_network("a", NetworkMode::Bridge)
            .await
            .unwrap();
        assert_eq!(
            a.ipv4,
            Some("10.60.0.3".parse().unwrap()),
            "round robin moved on"
        );
    }

    #[tokio::test]
    async fn failed_nft_apply_reverts_the_publish() {
        let (_d, tools, net) = setup();
        net.create_task_network("a", NetworkMode::Bridge)
            .await
            .unwrap();
        tools.fail_on("18080");
        assert!(
            net.publish_ports("a", &[PortMapping::tcp(18080, 80)])
                .await
                .is_err()
        );
        assert!(net.published_ports().is_empty());
        tools.clear_failures();
        net.publish_ports("a", &[PortMapping::tcp(18080, 80)])
            .await
            .unwrap();
        assert!(
            nft_scripts(&tools)
                .last()
                .unwrap()
                .contains("18080 : 10.60.0.2 . 80")
        );
        net.unpublish_ports("a").await.unwrap();
        assert!(!nft_scripts(&tools).last().unwrap().contains("18080"));
    }

    #[tokio::test]
    async fn destroy_withdraws_ports_then_removes_and_is_idempotent() {
        let (_d, tools, net) = setup();
        let a = net
            .create_task_network("a", NetworkMode::Bridge)
            .await
            .unwrap();
        net.publish_ports("a", &[PortMapping::tcp(18080, 80)])
            .await
            .unwrap();
        net.destroy_task_network("a").await.unwrap();
        assert!(!nft_scripts(&tools).last().unwrap().contains("18080"));
        assert!(!tools.link_exists(a.veth_host_name.as_deref().unwrap()));
        assert!(!tools.netns_exists("bu-a"));
        assert_eq!(net.task_network("a"), None);
        net.destroy_task_network("a").await.unwrap();
        net.destroy_task_network("never-was").await.unwrap();
        assert!(net.destroy_task_network("../etc").await.is_err());
    }

    #[tokio::test]
    async fn recover_keeps_intact_drops_lost_and_removes_orphans() {
        let (dir, tools, net) = setup();
        let a = net
            .create_task_network("a", NetworkMode::Bridge)
            .await
            .unwrap();
        let b = net
            .create_task_network("b", NetworkMode::Awsvpc)
            .await
            .unwrap();
        net.publish_ports("a", &[PortMapping::tcp(18080, 80)])
            .await
            .unwrap();
        let cfg = net.config().clone();
        drop(net);
        // While the agent was away: b's namespace vanished, strangers came.
        tools.forget_netns("bu-b");
        tools.add_netns("bu-stranger");
        tools.add_netns("someone-elses");
        tools.add_link("vb0a3c0063", Some("bu0"));
        let again = LinuxNetwork::with_tools(cfg, dir.path(), tools.clone()).unwrap();
        let r = again.recover().await.unwrap();
        assert_eq!(r.tasks, vec![a.clone()]);
        assert_eq!(r.lost, vec!["b".to_string()]);
        assert_eq!(
            r.orphans_removed,
            vec!["bu-stranger".to_string(), "vb0a3c0063".to_string()]
        );
        assert!(tools.netns_exists("someone-elses"));
        assert!(!tools.link_exists(b.veth_host_name.as_deref().unwrap()));
        assert!(
            nft_scripts(&tools)
                .last()
                .unwrap()
                .contains("18080 : 10.60.0.2 . 80")
        );
        // a keeps its address; the next task doesn't get it.
        let c = again
            .create_task_network("c", NetworkMode::Bridge)
            .await
            .unwrap();
        assert_ne!(c.ipv4, a.ipv4);
    }

    #[tokio::test]
    async fn credentials_endpoint_is_rendered_and_persisted() {
        let (dir, tools, net) = setup();
        net.set_credentials_endpoint(Some("127.0.0.1:51679".parse().unwrap()))
            .await
            .unwrap();
        assert!(
            nft_scripts(&tools)
                .last()
                .unwrap()
                .contains("dnat to 127.0.0.1:51679")
        );
        let cfg = net.config().clone();
        drop(net);
        let again = LinuxNetwork::with_tools(cfg, dir.path(), tools.clone()).unwrap();
        again.ensure_bridge().await.unwrap();
        assert!(
            nft_scripts(&tools)
                .last()
                .unwrap()
                .contains("dnat to 127.0.0.1:51679")
        );
    }
}
