//! Putting a real agent together from its configuration: the on-disk
//! layout, runc, cgroups, the bridge, the image cache.

use crate::control::{AgentCredentials, ControlPlane};
use crate::engine::{Engine, EngineConfig};
use crate::host::HostResources;
use crate::images::{RealImages, RegistryAuth};
use crate::report::Reporter;
use crate::state::TaskFiles;
use crate::task_endpoint::{CgroupV1Stats, EndpointRegistry, HostInfo};
use crate::worker::Host;
use berth_clock::Clock;
use berth_image::{ContentStore, ImageService, OverlaySnapshotter, PullPolicy, RegistryClient, RegistryConfig};
use berth_net::{BridgeConfig, LinuxNetwork, Network};
use berth_runtime::{RuncConfig, RuncRuntime, V1Cgroups};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error("{context}: {message}")]
    Setup { context: String, message: String },
}

fn setup_err(context: impl Into<String>) -> impl FnOnce(String) -> AgentError {
    let context = context.into();
    move |message| AgentError::Setup { context, message }
}

/// Where an agent keeps things under its data dir.
#[derive(Debug, Clone)]
pub struct AgentLayout {
    pub data_dir: PathBuf,
}

impl AgentLayout {
    pub fn new(data_dir: impl Into<PathBuf>) -> AgentLayout {
        AgentLayout { data_dir: data_dir.into() }
    }
    /// Shared with `berth image load`.
    pub fn images(&self) -> PathBuf {
        self.data_dir.join("images")
    }
    pub fn agent(&self) -> PathBuf {
        self.data_dir.join("agent")
    }
    pub fn tasks(&self) -> PathBuf {
        self.agent().join("tasks")
    }
    pub fn containers(&self) -> PathBuf {
        self.agent().join("containers")
    }
    pub fn runc_root(&self) -> PathBuf {
        self.agent().join("runc")
    }
    pub fn rootfs(&self) -> PathBuf {
        self.agent().join("rootfs")
    }
    pub fn net(&self) -> PathBuf {
        self.agent().join("net")
    }
    pub fn credentials(&self) -> PathBuf {
        self.agent().join("instance-credentials.json")
    }
}

pub struct AgentConfig {
    pub cluster: String,
    pub endpoint: String,
    pub region: String,
    pub data_dir: PathBuf,
    pub instance_type: String,
    pub availability_zone: Option<String>,
    pub reserved_memory_mib: u64,
    pub reserved_ports: Vec<u16>,
    pub reserved_ports_udp: Vec<u16>,
    pub custom_attributes: Vec<(String, String)>,
    pub pull_policy: PullPolicy,
    pub insecure_registries: Vec<String>,
    pub registry_auth: RegistryAuth,
    pub bridge: BridgeConfig,
    pub runc: PathBuf,
    /// The `berth` binary (for `berth shim` and `berth init`).
    pub helper_exe: PathBuf,
    pub cgroup_prefix: String,
    pub task_cleanup_wait: Duration,
    /// Where the task endpoint (role credentials, task metadata) listens;
    /// containers reach it at 169.254.170.2:80 through a redirect. Port 0
    /// picks a free port (several agents on one machine); `None` serves
    /// nothing. Must be an IPv4 address of the host (the redirect is an
    /// IPv4 DNAT), normally 127.0.0.1.
    pub task_endpoint: Option<SocketAddr>,
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname").map(|s| s.trim().to_string()).unwrap_or_else(|_| "localhost".into())
}

fn ensure_dir(p: &Path) -> Result<(), AgentError> {
    std::fs::create_dir_all(p).map_err(|e| setup_err(format!("creating {}", p.display()))(e.to_string()))
}

/// Builds a real agent. Touches the kernel only to create its bridge.
pub async fn build_engine(
    cfg: AgentConfig,
    control: Arc<dyn ControlPlane>,
    clock: Arc<dyn Clock>,
) -> Result<Engine, AgentError> {
    let layout = AgentLayout::new(&cfg.data_dir);
    for d in [layout.agent(), layout.tasks(), layout.containers(), layout.runc_root(), layout.rootfs(), layout.net()] {
        ensure_dir(&d)?;
    }
    let mut runc = RuncConfig::new(&cfg.helper_exe, layout.containers(), layout.runc_root());
    runc.runc = cfg.runc.clone();
    let runtime = Arc::new(RuncRuntime::new(runc));
    let cgroups = Arc::new(V1Cgroups::new("/sys/fs/cgroup", cfg.cgroup_prefix.clone()).map_err(|e| setup_err("cgroups")(e.to_string()))?);
    let network = Arc::new(LinuxNetwork::open(cfg.bridge.clone(), &layout.net()).map_err(|e| setup_err("network")(e.to_string()))?);
    network.ensure_bridge().await.map_err(|e| setup_err("creating the task bridge")(e.to_string()))?;
    let store = ContentStore::open(layout.images()).map_err(|e| setup_err("image cache")(e.to_string()))?;
    let registry = RegistryClient::new(RegistryConfig { insecure_registries: cfg.insecure_registries.clone(), ..RegistryConfig::default() })
        .map_err(|e| setup_err("registry client")(e.to_string()))?;
    let snapshotter = Arc::new(OverlaySnapshotter::new(layout.rootfs()).map_err(|e| setup_err("root filesystems")(e.to_string()))?);
    let images = Arc::new(
        RealImages::new(ImageService::new(store, registry), snapshotter, cfg.registry_auth.clone()).with_registry_logins(control.clone()),
    );
    let availability_zone = cfg.availability_zone.clone().unwrap_or_else(|| format!("{}a", cfg.region));
    let endpoints = Arc::new(EndpointRegistry::new(HostInfo { cluster: cfg.cluster.clone(), availability_zone: availability_zone.clone() }));
    let endpoint_server = match cfg.task_endpoint {
        None => {
            // A redirect an earlier agent left would lead nowhere.
            network.set_credentials_endpoint(None).await.map_err(|e| setup_err("removing the 169.254.170.2 redirect")(e.to_string()))?;
            None
        }
        Some(addr) => {
            let SocketAddr::V4(_) = addr else {
                return Err(setup_err("the task endpoint")(format!("{addr} is not an IPv4 address: the 169.254.170.2 redirect is IPv4")));
            };
            let listener = tokio::net::TcpListener::bind(addr).await.map_err(|e| {
                setup_err(format!("listening for the task endpoint on {addr} (choose another with --task-endpoint-port)"))(e.to_string())
            })?;
            let bound = listener.local_addr().map_err(|e| setup_err("the task endpoint's address")(e.to_string()))?;
            let SocketAddr::V4(bound_v4) = bound else {
                return Err(setup_err("the task endpoint")(format!("bound to {bound}, not IPv4")));
            };
            network
                .set_credentials_endpoint(Some(bound_v4))
                .await
                .map_err(|e| setup_err("redirecting 169.254.170.2 to the task endpoint")(e.to_string()))?;
            tracing::info!(address = %bound, "task endpoint listening (containers reach it at 169.254.170.2)");
            let stats = Arc::new(CgroupV1Stats::new("/sys/fs/cgroup", "/proc", clock.clone()));
            Some(tokio::spawn(crate::task_endpoint::serve(listener, endpoints.clone(), stats)))
        }
    };
    let host = Arc::new(Host {
        cluster: cfg.cluster.clone(),
        runtime,
        network,
        cgroups,
        images,
        clock,
        reporter: Reporter::new(),
        files: TaskFiles::open(layout.tasks()).map_err(|e| setup_err("task records")(e.to_string()))?,
        pull_policy: cfg.pull_policy,
        boot_id: crate::state::boot_id(),
        endpoints,
    });
    let engine_cfg = EngineConfig {
        cluster: cfg.cluster,
        region: cfg.region,
        instance_type: cfg.instance_type,
        availability_zone,
        hostname: hostname(),
        resources: HostResources::detect(cfg.reserved_memory_mib),
        reserved_ports: cfg.reserved_ports,
        reserved_ports_udp: cfg.reserved_ports_udp,
        custom_attributes: cfg.custom_attributes,
        state_dir: layout.agent(),
        task_cleanup_wait: cfg.task_cleanup_wait,
    };
    let engine = Engine::new(engine_cfg, host, control);
    Ok(match endpoint_server {
        Some(server) => engine.with_task_endpoint(server),
        None => engine,
    })
}

/// Reads saved instance credentials (`None` when there are none yet).
pub fn load_credentials(path: &Path) -> Option<AgentCredentials> {
    serde_json::from_slice(&std::fs::read(path).ok()?).ok()
}

/// Saves instance credentials, readable by root only.
pub fn save_credentials(path: &Path, creds: &AgentCredentials) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    use std::io::Write;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(&tmp)?;
    f.write_all(&serde_json::to_vec_pretty(creds).map_err(std::io::Error::other)?)?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)
}
