//! Synthetic clusters for benchmarks, simulations and tests: deterministic
//! for a seed, shaped like a real EC2 fleet (a few instance types across
//! availability zones, the agent's reserved ports, tasks of many services
//! already running).

use crate::model::{InstanceView, TaskArn, TaskSummary};
use crate::rng;

/// The shape of a synthetic cluster.
#[derive(Clone, Debug)]
pub struct ClusterSpec {
    pub instances: usize,
    /// Availability zones, `us-east-1a`, `us-east-1b`, ...
    pub zones: usize,
    /// Tasks already running, spread pseudo-randomly.
    pub running_tasks: usize,
    /// Services the running tasks belong to (`service:svc-N`).
    pub services: usize,
    /// CPU units and MiB each running task holds.
    pub task_cpu: u32,
    pub task_memory: u32,
    pub seed: u64,
}

impl Default for ClusterSpec {
    /// 5,000 instances in 3 zones running 90,000 tasks of 500 services: the
    /// design scale (100,000 tasks) less room for 10,000 more.
    fn default() -> Self {
        ClusterSpec {
            instances: 5_000,
            zones: 3,
            running_tasks: 90_000,
            services: 500,
            task_cpu: 64,
            task_memory: 128,
            seed: 1,
        }
    }
}

/// Instance types: name, vCPUs, GiB.
const TYPES: [(&str, u32, u32); 4] = [
    ("m5.large", 2, 8),
    ("m5.xlarge", 4, 16),
    ("c5.2xlarge", 8, 16),
    ("t3.medium", 2, 4),
];

/// The ports the ECS agent reserves by default.
const RESERVED_PORTS: [u16; 5] = [22, 2375, 2376, 51678, 51679];

/// Builds the instances of a cluster of this shape.
pub fn cluster(spec: &ClusterSpec) -> Vec<InstanceView> {
    let mut instances: Vec<InstanceView> = (0..spec.instances)
        .map(|i| {
            let (itype, vcpu, gib) = TYPES[i % TYPES.len()];
            let zone = (b'a' + (i % spec.zones.clamp(1, 26)) as u8) as char;
            let mut inst = InstanceView::new(format!("ci-{i:05}"), vcpu * 1024, gib * 1024 - 256)
                .with_attribute("ecs.availability-zone", &format!("us-east-1{zone}"))
                .with_attribute("ecs.instance-type", itype)
                .with_attribute("ecs.os-type", "linux")
                .with_attribute("ecs.cpu-architecture", "x86_64");
            inst.ec2_instance_id = Some(format!("i-{:017x}", rng::mix(spec.seed ^ i as u64) >> 4));
            inst.agent_version = Some("1.89.0".to_owned());
            inst.registered.ports_tcp.extend(RESERVED_PORTS);
            inst.remaining.ports_tcp.extend(RESERVED_PORTS);
            inst
        })
        .collect();
    let n = instances.len();
    if n == 0 {
        return instances;
    }
    for t in 0..spec.running_tasks {
        let start = (rng::mix(spec.seed.wrapping_add(t as u64)) % n as u64) as usize;
        // The first instance from `start` with room; none left ends it.
        let Some(i) = (0..n).map(|k| (start + k) % n).find(|&i| {
            let r = &instances[i].remaining;
            r.cpu >= spec.task_cpu && r.memory >= spec.task_memory
        }) else {
            break;
        };
        let service = t % spec.services.max(1);
        let inst = &mut instances[i];
        inst.remaining.cpu -= spec.task_cpu;
        inst.remaining.memory -= spec.task_memory;
        inst.running_tasks.push(TaskSummary {
            task_definition_family: format!("svc-{service}"),
            group: format!("service:svc-{service}"),
            started_by: Some("ecs-svc/1".to_owned()),
            task_arn: TaskArn::new(format!(
                "arn:aws:ecs:us-east-1:000000000000:task/default/t{t:06}"
            )),
        });
    }
    instances
}
