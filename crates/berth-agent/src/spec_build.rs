//! A container plan, its image's defaults and the task's network, merged
//! into the runtime's [`ContainerSpec`] the way Docker merges `docker run`
//! flags with an image (and ECS maps its fields onto them). Pure: the
//! caller resolves the user against the image's passwd and reads the
//! environment files.

use crate::plan::{ContainerPlan, TaskPlan};
use berth_image::ImageConfig;
use berth_net::{NetworkMode, TaskNetwork};
use berth_runtime::spec::{DnsConfig, HostEntry, NsMode, Resources, Rlimit, User};
use berth_runtime::ContainerSpec;
use std::path::Path;

/// Docker's floor for cpu shares (the kernel's is 2): ECS sends cpu 0 as 2.
const MIN_CPU_SHARES: u64 = 2;
const MIB: i64 = 1024 * 1024;

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum BuildError {
    #[error("container {0} has no command: neither the task definition nor the image gives one")]
    NoCommand(String),
    #[error("container {name}: unsupported ulimit {ulimit:?}")]
    Ulimit { name: String, ulimit: String },
}

/// Everything outside the plan the spec depends on.
pub struct SpecInputs<'a> {
    pub image: &'a ImageConfig,
    pub rootfs: &'a Path,
    pub network: &'a TaskNetwork,
    pub user: User,
    /// KEY=VALUE pairs read from the container's environment files.
    pub env_file_vars: Vec<(String, String)>,
    /// What the agent itself sets (the task endpoint's variables): these
    /// win over the definition's, as the ECS agent's do.
    pub agent_env: Vec<(String, String)>,
    pub cgroups_path: String,
}

/// Docker's rule: an explicit entryPoint drops the image's Cmd too.
pub fn args(plan: &ContainerPlan, image: &ImageConfig) -> Vec<String> {
    match &plan.entry_point {
        Some(ep) => {
            let mut out = ep.clone();
            out.extend(plan.command.clone().unwrap_or_default());
            out
        }
        None => {
            let mut out = image.entrypoint.clone();
            out.extend(plan.command.clone().unwrap_or_else(|| image.cmd.clone()));
            out
        }
    }
}

fn image_env(image: &ImageConfig) -> Vec<(String, String)> {
    image
        .env
        .iter()
        .filter_map(|kv| kv.split_once('=').map(|(k, v)| (k.to_string(), v.to_string())))
        .collect()
}

fn set(env: &mut Vec<(String, String)>, k: &str, v: &str) {
    match env.iter_mut().find(|(n, _)| n == k) {
        Some(slot) => slot.1 = v.to_string(),
        None => env.push((k.to_string(), v.to_string())),
    }
}

pub fn build(task: &TaskPlan, plan: &ContainerPlan, inputs: SpecInputs<'_>) -> Result<ContainerSpec, BuildError> {
    let args = args(plan, inputs.image);
    if args.is_empty() {
        return Err(BuildError::NoCommand(plan.name.clone()));
    }
    let mut spec = ContainerSpec::new(plan.runtime_id.clone(), inputs.rootfs, args);
    // Image env, then environment files, then the definition's
    // environment, then the agent's.
    let mut env = image_env(inputs.image);
    for (k, v) in inputs.env_file_vars.iter().chain(plan.environment.iter()).chain(inputs.agent_env.iter()) {
        set(&mut env, k, v);
    }
    if !env.iter().any(|(k, _)| k == "PATH") {
        env.insert(0, ("PATH".into(), berth_runtime::spec::DEFAULT_PATH.into()));
    }
    spec.env = env;
    spec.cwd = plan
        .working_directory
        .clone()
        .or_else(|| (!inputs.image.working_dir.is_empty()).then(|| inputs.image.working_dir.clone()));
    spec.user = inputs.user;

    let host_net = task.network_mode == NetworkMode::Host;
    spec.namespaces.network = match &inputs.network.netns_path {
        Some(path) if !host_net => NsMode::Join(path.clone()),
        _ => NsMode::Host,
    };
    spec.namespaces.uts = if host_net { NsMode::Host } else { NsMode::New };
    spec.namespaces.pid = if task.pid_mode_host { NsMode::Host } else { NsMode::New };
    spec.namespaces.ipc = if task.ipc_mode_host { NsMode::Host } else { NsMode::New };
    if !host_net {
        // Docker names a bridge-mode container's host after its id.
        spec.hostname = Some(plan.hostname.clone().unwrap_or_else(|| task.task_id.chars().take(12).collect()));
    }

    // All containers of a task share one network namespace, so a link is
    // the loopback address under the linked name and its alias.
    let mut hosts: Vec<HostEntry> = Vec::new();
    for (name, alias) in &plan.links {
        for h in [name, alias] {
            if !hosts.iter().any(|e| &e.hostname == h) {
                hosts.push(HostEntry { hostname: h.clone(), ip_address: "127.0.0.1".into() });
            }
        }
    }
    if let (Some(ip), Some(name)) = (inputs.network.ipv4, spec.hostname.clone()) {
        hosts.push(HostEntry { hostname: name, ip_address: ip.to_string() });
    }
    hosts.extend(plan.extra_hosts.iter().map(|(h, ip)| HostEntry { hostname: h.clone(), ip_address: ip.clone() }));
    spec.extra_hosts = hosts;
    if !plan.dns_servers.is_empty() || !plan.dns_search_domains.is_empty() {
        spec.dns = Some(DnsConfig {
            servers: plan.dns_servers.clone(),
            search: plan.dns_search_domains.clone(),
            options: Vec::new(),
        });
    }

    spec.resources = Resources {
        cpu_shares: Some(plan.cpu.max(MIN_CPU_SHARES)),
        memory_limit_bytes: plan.memory_mib.map(|m| m as i64 * MIB),
        memory_reservation_bytes: plan.memory_reservation_mib.map(|m| m as i64 * MIB),
        // ECS (like docker run --memory) gives no swap beyond the limit.
        memory_swap_bytes: plan.memory_mib.map(|m| m as i64 * MIB),
        ..Resources::default()
    };
    spec.rlimits = plan
        .ulimits
        .iter()
        .map(|u| {
            Rlimit::from_ecs(&u.name, u.soft, u.hard).ok_or_else(|| BuildError::Ulimit { name: plan.name.clone(), ulimit: u.name.clone() })
        })
        .collect::<Result<_, _>>()?;
    spec.readonly_rootfs = plan.readonly_root_filesystem;
    spec.privileged = plan.privileged;
    spec.cap_add = plan.cap_add.clone();
    spec.cap_drop = plan.cap_drop.clone();
    spec.sysctls = plan.system_controls.iter().cloned().collect();
    spec.init = plan.init_process_enabled;
    spec.shm_size_bytes = plan.shared_memory_mib.map(|m| m * 1024 * 1024);
    spec.cgroups_path = inputs.cgroups_path;
    Ok(spec)
}

/// Parses an environment file: `KEY=VALUE` lines; blank lines and `#`
/// comments skipped, as ECS does.
pub fn parse_env_file(text: &str) -> Vec<(String, String)> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|l| l.split_once('=').map(|(k, v)| (k.trim().to_string(), v.to_string())))
        .filter(|(k, _)| !k.is_empty())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::plan;
    use serde_json::json;

    fn task(td: serde_json::Value) -> TaskPlan {
        plan(&crate::plan::desired_for_tests("arn:aws:ecs:us-east-1:1:task/c/abcdefabcdefabcdefabcdefabcdef12", td, None)).unwrap()
    }

    fn image() -> ImageConfig {
        ImageConfig {
            entrypoint: vec!["/entry".into()],
            cmd: vec!["serve".into()],
            env: vec!["PATH=/bin".into(), "A=image".into()],
            working_dir: "/app".into(),
            ..ImageConfig::default()
        }
    }

    fn net(mode: NetworkMode) -> TaskNetwork {
        TaskNetwork {
            task_id: "t".into(),
            mode,
            netns_path: (mode != NetworkMode::Host).then(|| "/run/netns/berth-t".into()),
            ipv4: Some("172.29.0.5".parse().unwrap()),
            prefix_len: Some(16),
            gateway: None,
            mac: None,
            veth_host_name: None,
            bridge: None,
        }
    }

    fn inputs<'a>(image: &'a ImageConfig, network: &'a TaskNetwork) -> SpecInputs<'a> {
        SpecInputs {
            image,
            rootfs: Path::new("/r"),
            network,
            user: User::root(),
            env_file_vars: vec![("A".into(), "file".into()), ("F".into(), "f".into())],
            agent_env: vec![("AWS_EXECUTION_ENV".into(), "AWS_ECS_EC2".into())],
            cgroups_path: "/berth/t/c".into(),
        }
    }

    #[test]
    fn docker_merge_rules_for_entrypoint_and_command() {
        let img = image();
        let p = task(json!({"containerDefinitions": [{"name": "a", "image": "x"}]}));
        assert_eq!(args(&p.containers[0], &img), vec!["/entry", "serve"]);
        let p = task(json!({"containerDefinitions": [{"name": "a", "image": "x", "command": ["run"]}]}));
        assert_eq!(args(&p.containers[0], &img), vec!["/entry", "run"]);
        let p = task(json!({"containerDefinitions": [{"name": "a", "image": "x", "entryPoint": ["/bin/sh"]}]}));
        assert_eq!(args(&p.containers[0], &img), vec!["/bin/sh"], "an entryPoint drops the image's Cmd");
        let empty = ImageConfig::default();
        let p = task(json!({"containerDefinitions": [{"name": "a", "image": "x"}]}));
        let n = net(NetworkMode::Bridge);
        assert_eq!(build(&p, &p.containers[0], inputs(&empty, &n)), Err(BuildError::NoCommand("a".into())));
    }

    #[test]
    fn environment_precedence_limits_and_namespaces() {
        let img = image();
        let p = task(json!({"networkMode": "bridge", "containerDefinitions": [{"name": "a", "image": "x",
            "environment": [{"name": "F", "value": "def"}, {"name": "AWS_EXECUTION_ENV", "value": "mine"}], "memory": 64, "memoryReservation": 32, "cpu": 0,
            "links": ["db:database"], "ulimits": [{"name": "nofile", "softLimit": 10, "hardLimit": 20}]}]}));
        let n = net(NetworkMode::Bridge);
        let s = build(&p, &p.containers[0], inputs(&img, &n)).unwrap();
        let env: std::collections::HashMap<_, _> = s.env.iter().cloned().collect();
        assert_eq!((env["PATH"].as_str(), env["A"].as_str(), env["F"].as_str()), ("/bin", "file", "def"));
        assert_eq!(env["AWS_EXECUTION_ENV"], "AWS_ECS_EC2", "the agent's variables win");
        assert_eq!(s.resources.memory_limit_bytes, Some(64 * MIB));
        assert_eq!(s.resources.memory_reservation_bytes, Some(32 * MIB));
        assert_eq!(s.resources.cpu_shares, Some(2));
        assert_eq!(s.namespaces.network, NsMode::Join("/run/netns/berth-t".into()));
        assert_eq!(s.hostname.as_deref(), Some("abcdefabcdef"));
        assert!(s.extra_hosts.iter().any(|h| h.hostname == "database" && h.ip_address == "127.0.0.1"));
        assert!(s.extra_hosts.iter().any(|h| h.hostname == "abcdefabcdef" && h.ip_address == "172.29.0.5"));
        assert_eq!(s.rlimits[0].kind, "RLIMIT_NOFILE");
        assert_eq!(s.cwd.as_deref(), Some("/app"));
        assert_eq!(s.cgroups_path, "/berth/t/c");

        let p = task(json!({"networkMode": "host", "containerDefinitions": [{"name": "a", "image": "x"}]}));
        let n = net(NetworkMode::Host);
        let s = build(&p, &p.containers[0], inputs(&img, &n)).unwrap();
        assert_eq!((s.namespaces.network.clone(), s.namespaces.uts.clone()), (NsMode::Host, NsMode::Host));
        assert_eq!(s.hostname, None);
    }

    #[test]
    fn env_files() {
        let v = parse_env_file("# c\nA=1\n\n B = x=y\n=bad\nnovalue\n");
        assert_eq!(v, vec![("A".into(), "1".into()), ("B".into(), " x=y".into())]);
    }
}
