//! Launch-type compatibility: the checks behind `requiresCompatibilities`
//! and the `compatibilities` ECS computes for every revision.
//!
//! One function per launch type says why a definition cannot run there (or
//! that it can). Registration runs the ones the caller requires and fails
//! with their message; `compatibilities` lists every launch type whose
//! check passes. Keeping both on the same checks means a definition never
//! claims a compatibility that requiring it would refuse.

use super::model::RegisterView;
use super::units::TaskSize;
use crate::error::{EcsError, EcsResult};

pub const LAUNCH_TYPES: [&str; 4] = ["EC2", "FARGATE", "EXTERNAL", "MANAGED_INSTANCES"];

/// Fargate's task sizes: cpu → (min memory, max memory, step), all MiB.
const FARGATE_SIZES: [(u32, u32, u32, u32); 7] = [
    (256, 512, 2048, 512),
    (512, 1024, 4096, 1024),
    (1024, 2048, 8192, 1024),
    (2048, 4096, 16384, 1024),
    (4096, 8192, 30720, 1024),
    (8192, 16384, 61440, 4096),
    (16384, 32768, 122880, 8192),
];

pub fn fargate_pair_is_valid(cpu: u32, memory: u32) -> bool {
    FARGATE_SIZES.iter().any(|&(c, min, max, step)| {
        // 256 CPU allows exactly 512, 1024 and 2048.
        c == cpu && (min..=max).contains(&memory) && (memory - min).is_multiple_of(step)
    })
}

/// Log drivers Fargate tasks may use.
const FARGATE_LOG_DRIVERS: [&str; 3] = ["awslogs", "splunk", "awsfirelens"];
/// Fargate's limit on both container start and stop timeouts, in seconds.
const FARGATE_MAX_TIMEOUT: i32 = 120;

fn no(feature: &str) -> EcsError {
    EcsError::client(format!("Fargate does not support {feature}."))
}

pub fn is_ecr_image(image: &str) -> bool {
    let registry = image.split('/').next().unwrap_or("");
    registry.contains(".dkr.ecr.") && registry.contains(".amazonaws.com")
}

/// Why the definition cannot run on Fargate, if it cannot.
pub fn fargate(view: &RegisterView, size: &TaskSize) -> EcsResult<()> {
    if view.network_mode() != Some("awsvpc") {
        return Err(EcsError::client(
            "Fargate only supports network mode 'awsvpc'.",
        ));
    }
    let cpu = size.cpu.ok_or_else(|| {
        EcsError::client("Fargate requires that 'cpu' be defined at the task level.")
    })?;
    let memory = size.memory.ok_or_else(|| {
        EcsError::client("Fargate requires that 'memory' be defined at the task level.")
    })?;
    if !fargate_pair_is_valid(cpu, memory) {
        return Err(EcsError::client(format!(
            "No Fargate configuration exists for given values: {cpu} CPU, {memory} memory. See the Amazon ECS documentation for the valid values."
        )));
    }
    if view
        .placement_constraints
        .as_ref()
        .is_some_and(|p| !p.is_empty())
    {
        return Err(no("task placement constraints"));
    }
    if view.ipc_mode.is_some() {
        return Err(no("the ipcMode parameter"));
    }
    if view.pid_mode.as_deref() == Some("host") {
        return Err(no("pidMode 'host'"));
    }
    if view
        .inference_accelerators
        .as_ref()
        .is_some_and(|i| !i.is_empty())
    {
        return Err(no("inference accelerators"));
    }
    for v in view.volumes() {
        if v.host.as_ref().is_some_and(|h| h.source_path.is_some()) {
            return Err(no("host volumes with a sourcePath"));
        }
        if v.docker_volume_configuration.is_some() {
            return Err(no("Docker volumes"));
        }
    }
    let has_execution_role = view
        .execution_role_arn
        .as_deref()
        .is_some_and(|a| !a.is_empty());
    for c in view.containers() {
        fargate_container(c, has_execution_role)?;
    }
    Ok(())
}

fn fargate_container(c: &super::model::ContainerView, has_execution_role: bool) -> EcsResult<()> {
    if c.is_privileged() {
        return Err(no("privileged containers"));
    }
    if c.has_links() {
        return Err(no("container links"));
    }
    if c.docker_security_options
        .as_ref()
        .is_some_and(|o| !o.is_empty())
    {
        return Err(no("dockerSecurityOptions"));
    }
    if let Some(lp) = &c.linux_parameters {
        if lp.devices.as_ref().is_some_and(|d| !d.is_empty()) {
            return Err(no("linuxParameters.devices"));
        }
        if lp.shared_memory_size.is_some() {
            return Err(no("linuxParameters.sharedMemorySize"));
        }
        if lp.tmpfs.as_ref().is_some_and(|t| !t.is_empty()) {
            return Err(no("linuxParameters.tmpfs"));
        }
        if lp.max_swap.is_some() || lp.swappiness.is_some() {
            return Err(no("linuxParameters.maxSwap or linuxParameters.swappiness"));
        }
        let adds = lp.capabilities.as_ref().and_then(|cap| cap.add.as_ref());
        if adds.is_some_and(|a| a.iter().any(|cap| cap != "SYS_PTRACE")) {
            return Err(EcsError::client(
                "Fargate only supports adding the SYS_PTRACE kernel capability.",
            ));
        }
    }
    if c.resource_requirements
        .iter()
        .flatten()
        .any(|r| r.kind.as_deref() == Some("GPU"))
    {
        return Err(no("GPU resource requirements"));
    }
    if let Some(driver) = c.log_driver() {
        if !FARGATE_LOG_DRIVERS.contains(&driver) {
            return Err(EcsError::client(format!(
                "Fargate does not support the {driver} log driver. Supported log drivers: awslogs, splunk, awsfirelens."
            )));
        }
        if driver == "awslogs" && !has_execution_role {
            return Err(EcsError::client(
                "Fargate requires task definition to have execution role ARN to support log driver awslogs.",
            ));
        }
    }
    if c.image.as_deref().is_some_and(is_ecr_image) && !has_execution_role {
        return Err(EcsError::client(
            "Fargate requires task definition to have execution role ARN to support ECR images.",
        ));
    }
    if c.start_timeout
        .is_some_and(|t| !(2..=FARGATE_MAX_TIMEOUT).contains(&t))
    {
        return Err(EcsError::client(format!(
            "Invalid 'startTimeout' setting for container '{}'. Fargate supports values between 2 and {FARGATE_MAX_TIMEOUT} seconds.",
            c.label()
        )));
    }
    if c.stop_timeout.is_some_and(|t| t > FARGATE_MAX_TIMEOUT) {
        return Err(EcsError::client(format!(
            "Invalid 'stopTimeout' setting for container '{}'. Fargate supports values up to {FARGATE_MAX_TIMEOUT} seconds.",
            c.label()
        )));
    }
    Ok(())
}

/// Why the definition cannot run on external (ECS Anywhere) instances:
/// those have no ENI trunking, EFS/FSx integration, Elastic Inference or
/// App Mesh.
pub fn external(view: &RegisterView) -> EcsResult<()> {
    let no =
        |feature: &str| EcsError::client(format!("External instances do not support {feature}."));
    if view.network_mode() == Some("awsvpc") {
        return Err(no("network mode 'awsvpc'"));
    }
    for v in view.volumes() {
        if v.efs_volume_configuration.is_some() {
            return Err(no("Amazon EFS volumes"));
        }
        if v.fsx_windows_file_server_volume_configuration.is_some() {
            return Err(no("FSx for Windows File Server volumes"));
        }
    }
    if view
        .inference_accelerators
        .as_ref()
        .is_some_and(|i| !i.is_empty())
    {
        return Err(no("inference accelerators"));
    }
    if view.proxy_configuration.is_some() {
        return Err(no("proxy configurations"));
    }
    Ok(())
}

/// Fail as ECS does when a required launch type cannot run the definition.
pub fn check_required(view: &RegisterView, size: &TaskSize) -> EcsResult<()> {
    if view.requires("FARGATE") {
        fargate(view, size)?;
    }
    if view.requires("EXTERNAL") {
        external(view)?;
    }
    Ok(())
}

/// The `compatibilities` of a registered definition, in the order ECS
/// writes them (`["EXTERNAL", "EC2"]` for a bridge definition,
/// `["EC2", "FARGATE"]` for a Fargate-sized awsvpc one).
///
/// MANAGED_INSTANCES is listed only when the caller required it: whether
/// ECS computes it for other definitions is not something Berth can
/// observe, and claiming it unasked would be a guess.
pub fn compute(view: &RegisterView, size: &TaskSize) -> Vec<String> {
    let mut out = Vec::new();
    if external(view).is_ok() {
        out.push("EXTERNAL".to_string());
    }
    out.push("EC2".to_string());
    if fargate(view, size).is_ok() {
        out.push("FARGATE".to_string());
    }
    if view.requires("MANAGED_INSTANCES") {
        out.push("MANAGED_INSTANCES".to_string());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fargate_pairs() {
        for (cpu, mem) in [
            (256, 512),
            (256, 2048),
            (512, 4096),
            (1024, 8192),
            (4096, 30720),
            (8192, 61440),
            (16384, 122880),
        ] {
            assert!(fargate_pair_is_valid(cpu, mem), "{cpu}/{mem}");
        }
        for (cpu, mem) in [
            (256, 4096),
            (256, 768),
            (512, 512),
            (1024, 1024),
            (8192, 18432),
            (16384, 40000),
            (128, 512),
            (3000, 4096),
        ] {
            assert!(!fargate_pair_is_valid(cpu, mem), "{cpu}/{mem}");
        }
        assert!(fargate_pair_is_valid(256, 1024));
        assert!(fargate_pair_is_valid(8192, 20480));
    }

    #[test]
    fn ecr_images() {
        assert!(is_ecr_image(
            "123456789012.dkr.ecr.us-east-1.amazonaws.com/app:1"
        ));
        assert!(!is_ecr_image("public.ecr.aws/nginx/nginx"));
        assert!(!is_ecr_image("nginx"));
    }
}
