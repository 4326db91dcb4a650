//! Simulated hosts: the real agent engine (registration, the long poll,
//! workers, reports) over fake runtime, network, cgroups and images, so
//! one process can stand in for thousands of machines talking the real
//! agent protocol to a real server. For scale and fault tests and
//! benchmarks; nothing here touches the kernel.

use crate::control::ControlPlane;
use crate::engine::{Engine, EngineConfig};
use crate::host::HostResources;
use crate::images::FakeImages;
use crate::report::Reporter;
use crate::state::TaskFiles;
use crate::task_endpoint::{EndpointRegistry, HostInfo};
use crate::worker::Host;
use berth_clock::Clock;
use berth_image::{ImageConfig, PullPolicy};
use berth_net::{BridgeConfig, FakeNetwork};
use berth_runtime::{FakeCgroups, FakeRuntime};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// How one simulated host looks to the cluster.
#[derive(Debug, Clone)]
pub struct SimHostSpec {
    pub cluster: String,
    pub region: String,
    pub availability_zone: String,
    pub instance_type: String,
    pub resources: HostResources,
    /// Where its task records live (one directory per host).
    pub state_dir: PathBuf,
}

/// A simulated host: its engine (to run) and its fake runtime (to make
/// containers exit, or inspect what it started).
pub struct SimHost {
    pub engine: Engine,
    pub runtime: Arc<FakeRuntime>,
}

#[derive(Debug, thiserror::Error)]
#[error("simulated host: {0}")]
pub struct SimError(String);

pub fn sim_host(spec: SimHostSpec, control: Arc<dyn ControlPlane>, clock: Arc<dyn Clock>) -> Result<SimHost, SimError> {
    let err = |e: &dyn std::fmt::Display| SimError(e.to_string());
    let runtime = Arc::new(FakeRuntime::new());
    let image = ImageConfig { cmd: vec!["sh".into()], env: vec!["PATH=/bin".into()], ..ImageConfig::default() };
    let host = Arc::new(Host {
        cluster: spec.cluster.clone(),
        runtime: runtime.clone(),
        network: Arc::new(FakeNetwork::new(BridgeConfig::default()).map_err(|e| err(&e))?),
        cgroups: Arc::new(FakeCgroups::new()),
        images: Arc::new(FakeImages::any(spec.state_dir.join("rootfs"), image)),
        clock,
        reporter: Reporter::new(),
        files: TaskFiles::open(spec.state_dir.join("tasks")).map_err(|e| err(&e))?,
        pull_policy: PullPolicy::PreferCached,
        boot_id: "simulated".into(),
        // Simulated hosts serve no endpoint (they bind no port).
        endpoints: Arc::new(EndpointRegistry::new(HostInfo {
            cluster: spec.cluster.clone(),
            availability_zone: spec.availability_zone.clone(),
        })),
    });
    let cfg = EngineConfig {
        cluster: spec.cluster,
        region: spec.region,
        instance_type: spec.instance_type,
        availability_zone: spec.availability_zone,
        hostname: spec.state_dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default(),
        resources: spec.resources,
        reserved_ports: vec![22],
        reserved_ports_udp: Vec::new(),
        custom_attributes: Vec::new(),
        state_dir: spec.state_dir,
        task_cleanup_wait: Duration::from_secs(3600),
    };
    Ok(SimHost { engine: Engine::new(cfg, host, control), runtime })
}
