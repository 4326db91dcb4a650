//! Validation of each container definition on its own (and against the
//! task's network mode and volumes). What containers say about one another
//! is checked in `relations`, port mappings in `ports`.

use super::model::{ContainerView, RegisterView};
use super::ports;
use super::validate::{is_simple_name, one_of};
use crate::error::{EcsError, EcsResult};
use std::collections::HashSet;

/// Docker refuses smaller memory limits or reservations.
const MIN_CONTAINER_MEMORY: i32 = 6;
#[rustfmt::skip]
const LOG_DRIVERS: [&str; 8] = [
    "json-file", "syslog", "journald", "gelf", "fluentd", "awslogs", "splunk", "awsfirelens",
];
#[rustfmt::skip]
const ULIMITS: [&str; 15] = [
    "core", "cpu", "data", "fsize", "locks", "memlock", "msgqueue", "nice", "nofile", "nproc",
    "rss", "rtprio", "rttime", "sigpending", "stack",
];
#[rustfmt::skip]
const CAPABILITIES: [&str; 38] = [
    "ALL", "AUDIT_CONTROL", "AUDIT_WRITE", "BLOCK_SUSPEND", "CHOWN", "DAC_OVERRIDE",
    "DAC_READ_SEARCH", "FOWNER", "FSETID", "IPC_LOCK", "IPC_OWNER", "KILL", "LEASE",
    "LINUX_IMMUTABLE", "MAC_ADMIN", "MAC_OVERRIDE", "MKNOD", "NET_ADMIN", "NET_BIND_SERVICE",
    "NET_BROADCAST", "NET_RAW", "SETFCAP", "SETGID", "SETPCAP", "SETUID", "SYS_ADMIN", "SYS_BOOT",
    "SYS_CHROOT", "SYS_MODULE", "SYS_NICE", "SYS_PACCT", "SYS_PTRACE", "SYS_RAWIO", "SYS_RESOURCE",
    "SYS_TIME", "SYS_TTY_CONFIG", "SYSLOG", "WAKE_ALARM",
];
const MAX_ENVIRONMENT_FILES: usize = 10;
const MAX_IGNORED_EXIT_CODES: usize = 50;

pub(super) fn bad(container: &str, setting: &str, why: impl std::fmt::Display) -> EcsError {
    EcsError::client(format!(
        "Invalid '{setting}' setting for container '{container}'. {why}"
    ))
}

pub(super) fn blank(s: &Option<String>) -> bool {
    s.as_deref().is_none_or(str::is_empty)
}

/// Checks that need only one container (and the task's network mode and
/// volumes).
pub fn each(
    view: &RegisterView,
    containers: &[&ContainerView],
    volumes: &HashSet<String>,
) -> EcsResult<()> {
    let mut names = HashSet::new();
    let mut port_names = HashSet::new();
    for c in containers {
        let name = c.name.as_deref().unwrap_or("");
        if name.is_empty() {
            return Err(EcsError::client(
                "Container.name should not be null or empty.",
            ));
        }
        if !is_simple_name(name) {
            return Err(EcsError::client(format!(
                "Invalid container name '{name}'. Up to 255 letters (uppercase and lowercase), numbers, hyphens, and underscores are allowed."
            )));
        }
        if !names.insert(name) {
            return Err(EcsError::client(format!(
                "Duplicate container name '{name}'. Container names must be unique within a task definition."
            )));
        }
        if blank(&c.image) {
            return Err(EcsError::client(
                "Container.image should not be null or empty.",
            ));
        }
        limits(c)?;
        for pm in c.port_mappings() {
            ports::port_mapping(view.network_mode(), name, pm, &mut port_names)?;
        }
        environment(c)?;
        storage(c, volumes)?;
        linux_parameters(c)?;
        secrets(view, c)?;
        runtime_settings(view, c)?;
        logging(c)?;
        health_check(c)?;
    }
    Ok(())
}

fn limits(c: &ContainerView) -> EcsResult<()> {
    let name = c.label();
    if c.cpu.is_some_and(|n| n < 0) {
        return Err(bad(name, "cpu", "The value must be 0 or greater."));
    }
    if c.memory.is_some_and(|m| m < MIN_CONTAINER_MEMORY) {
        return Err(bad(
            name,
            "memory",
            format!("The minimum is {MIN_CONTAINER_MEMORY} MiB."),
        ));
    }
    if c.memory_reservation
        .is_some_and(|m| m < MIN_CONTAINER_MEMORY)
    {
        return Err(bad(
            name,
            "memoryReservation",
            format!("The minimum is {MIN_CONTAINER_MEMORY} MiB."),
        ));
    }
    if let (Some(m), Some(r)) = (c.memory, c.memory_reservation)
        && r > m
    {
        return Err(EcsError::client(format!(
            "Invalid setting for container '{name}'. 'memory' must be greater than or equal to 'memoryReservation'."
        )));
    }
    if c.start_timeout.is_some_and(|t| t < 0) {
        return Err(bad(name, "startTimeout", "The value must be 0 or greater."));
    }
    if c.stop_timeout.is_some_and(|t| t < 0) {
        return Err(bad(name, "stopTimeout", "The value must be 0 or greater."));
    }
    Ok(())
}

fn environment(c: &ContainerView) -> EcsResult<()> {
    let name = c.label();
    for e in c.environment.iter().flatten() {
        if blank(&e.name) {
            return Err(bad(
                name,
                "environment",
                "Environment variable names should not be null or empty.",
            ));
        }
    }
    let files = c.environment_files.as_deref().unwrap_or(&[]);
    if files.len() > MAX_ENVIRONMENT_FILES {
        return Err(bad(
            name,
            "environmentFiles",
            format!("At most {MAX_ENVIRONMENT_FILES} environment files are allowed."),
        ));
    }
    for f in files {
        match &f.kind {
            Some(k) => one_of(k, "environmentFiles.type", &["s3"])?,
            None => {
                return Err(bad(
                    name,
                    "environmentFiles",
                    "type should not be null or empty.",
                ));
            }
        }
        if blank(&f.value) {
            return Err(bad(
                name,
                "environmentFiles",
                "value should not be null or empty.",
            ));
        }
    }
    Ok(())
}

fn storage(c: &ContainerView, volumes: &HashSet<String>) -> EcsResult<()> {
    let name = c.label();
    for m in c.mount_points.iter().flatten() {
        let source = m.source_volume.as_deref().unwrap_or("");
        if source.is_empty() {
            return Err(bad(
                name,
                "mountPoints",
                "sourceVolume should not be null or empty.",
            ));
        }
        if !volumes.contains(source) {
            return Err(bad(
                name,
                "mountPoints",
                format!(
                    "The source volume '{source}' is not defined in the task definition's volumes."
                ),
            ));
        }
        if blank(&m.container_path) {
            return Err(bad(
                name,
                "mountPoints",
                "containerPath should not be null or empty.",
            ));
        }
    }
    for v in c.volumes_from.iter().flatten() {
        if blank(&v.source_container) {
            return Err(bad(
                name,
                "volumesFrom",
                "sourceContainer should not be null or empty.",
            ));
        }
    }
    Ok(())
}

fn linux_parameters(c: &ContainerView) -> EcsResult<()> {
    let name = c.label();
    let Some(lp) = &c.linux_parameters else {
        return Ok(());
    };
    if let Some(caps) = &lp.capabilities {
        for cap in caps.add.iter().flatten().chain(caps.drop.iter().flatten()) {
            one_of(cap, "linuxParameters.capabilities", &CAPABILITIES)?;
        }
    }
    for d in lp.devices.iter().flatten() {
        if blank(&d.host_path) {
            return Err(bad(
                name,
                "linuxParameters",
                "devices.hostPath should not be null or empty.",
            ));
        }
        for p in d.permissions.iter().flatten() {
            one_of(
                p,
                "linuxParameters.devices.permissions",
                &["read", "write", "mknod"],
            )?;
        }
    }
    if lp.shared_memory_size.is_some_and(|s| s <= 0) {
        return Err(bad(
            name,
            "linuxParameters",
            "sharedMemorySize must be greater than 0.",
        ));
    }
    for t in lp.tmpfs.iter().flatten() {
        if blank(&t.container_path) || t.size.is_none_or(|s| s <= 0) {
            return Err(bad(
                name,
                "linuxParameters",
                "tmpfs entries require a containerPath and a size greater than 0.",
            ));
        }
    }
    if lp.max_swap.is_some_and(|s| s < 0) {
        return Err(bad(
            name,
            "linuxParameters",
            "maxSwap must be 0 or greater.",
        ));
    }
    if lp.swappiness.is_some_and(|s| !(0..=100).contains(&s)) {
        return Err(bad(
            name,
            "linuxParameters",
            "swappiness must be between 0 and 100.",
        ));
    }
    Ok(())
}

fn secrets(view: &RegisterView, c: &ContainerView) -> EcsResult<()> {
    let name = c.label();
    let log_secrets = c
        .log_configuration
        .iter()
        .flat_map(|l| l.secret_options.iter().flatten());
    let mut any = false;
    for s in c.secrets.iter().flatten().chain(log_secrets) {
        any = true;
        if blank(&s.name) {
            return Err(bad(
                name,
                "secrets",
                "Secret names should not be null or empty.",
            ));
        }
        if blank(&s.value_from) {
            return Err(bad(
                name,
                "secrets",
                "valueFrom should not be null or empty.",
            ));
        }
    }
    // The agent fetches secrets with the execution role, so without one
    // they could never be resolved.
    if any && blank(&view.execution_role_arn) {
        return Err(EcsError::client(
            "When you are specifying container secrets, you must also specify a value for 'executionRoleArn'.",
        ));
    }
    if let Some(rc) = &c.repository_credentials
        && blank(&rc.credentials_parameter)
    {
        return Err(bad(
            name,
            "repositoryCredentials",
            "credentialsParameter should not be null or empty.",
        ));
    }
    Ok(())
}

fn runtime_settings(view: &RegisterView, c: &ContainerView) -> EcsResult<()> {
    let name = c.label();
    if let Some(v) = &c.version_consistency {
        one_of(v, "versionConsistency", &["enabled", "disabled"])?;
    }
    if let Some(rp) = &c.restart_policy {
        if rp.enabled.is_none() {
            return Err(bad(name, "restartPolicy", "'enabled' is required."));
        }
        if rp
            .ignored_exit_codes
            .as_ref()
            .is_some_and(|c| c.len() > MAX_IGNORED_EXIT_CODES)
        {
            return Err(bad(
                name,
                "restartPolicy",
                format!("At most {MAX_IGNORED_EXIT_CODES} ignoredExitCodes are allowed."),
            ));
        }
        if rp
            .restart_attempt_period
            .is_some_and(|p| !(60..=1800).contains(&p))
        {
            return Err(bad(
                name,
                "restartPolicy",
                "restartAttemptPeriod must be between 60 and 1800 seconds.",
            ));
        }
    }
    let mode = view.network_mode();
    if c.has_links() && !matches!(mode, None | Some("bridge")) {
        return Err(EcsError::client(format!(
            "Links are not supported when networkMode={}.",
            mode.unwrap_or("bridge")
        )));
    }
    if mode == Some("awsvpc") {
        if c.hostname.is_some() {
            return Err(EcsError::client(
                "hostname is not supported on container when networkMode=awsvpc.",
            ));
        }
        if c.extra_hosts.as_ref().is_some_and(|h| !h.is_empty()) {
            return Err(EcsError::client(
                "extraHosts is not supported on container when networkMode=awsvpc.",
            ));
        }
    }
    for h in c.extra_hosts.iter().flatten() {
        if blank(&h.hostname) || blank(&h.ip_address) {
            return Err(bad(
                name,
                "extraHosts",
                "Each entry requires a hostname and an ipAddress.",
            ));
        }
    }
    for u in c.ulimits.iter().flatten() {
        match &u.name {
            Some(n) => one_of(n, "ulimits.name", &ULIMITS)?,
            None => return Err(bad(name, "ulimits", "name should not be null or empty.")),
        }
        match (u.soft_limit, u.hard_limit) {
            (Some(s), Some(h)) if s <= h => {}
            (Some(_), Some(_)) => {
                return Err(bad(
                    name,
                    "ulimits",
                    "softLimit must be less than or equal to hardLimit.",
                ));
            }
            _ => {
                return Err(bad(
                    name,
                    "ulimits",
                    "softLimit and hardLimit are required.",
                ));
            }
        }
    }
    for s in c.system_controls.iter().flatten() {
        if blank(&s.namespace) {
            return Err(bad(
                name,
                "systemControls",
                "namespace should not be null or empty.",
            ));
        }
    }
    let mut kinds = HashSet::new();
    for r in c.resource_requirements.iter().flatten() {
        let kind = r.kind.as_deref().unwrap_or("");
        one_of(
            kind,
            "resourceRequirements.type",
            &["GPU", "InferenceAccelerator"],
        )?;
        if !kinds.insert(kind) {
            return Err(bad(
                name,
                "resourceRequirements",
                format!("Only one requirement of type {kind} is allowed."),
            ));
        }
        let value = r.value.as_deref().unwrap_or("");
        if kind == "GPU" && value.parse::<u32>().map_or(true, |n| n == 0) {
            return Err(bad(
                name,
                "resourceRequirements",
                "The GPU value must be a positive whole number.",
            ));
        }
        if kind == "InferenceAccelerator"
            && !view
                .inference_accelerators
                .iter()
                .flatten()
                .any(|a| a.device_name.as_deref() == Some(value))
        {
            return Err(bad(
                name,
                "resourceRequirements",
                format!("Inference accelerator '{value}' is not defined in the task definition."),
            ));
        }
    }
    Ok(())
}

fn logging(c: &ContainerView) -> EcsResult<()> {
    let name = c.label();
    if let Some(l) = &c.log_configuration {
        match &l.log_driver {
            Some(d) => one_of(d, "logConfiguration.logDriver", &LOG_DRIVERS)?,
            None => {
                return Err(bad(
                    name,
                    "logConfiguration",
                    "logDriver should not be null or empty.",
                ));
            }
        }
    }
    if let Some(f) = &c.firelens_configuration {
        match &f.kind {
            Some(k) => one_of(k, "firelensConfiguration.type", &["fluentd", "fluentbit"])?,
            None => {
                return Err(bad(
                    name,
                    "firelensConfiguration",
                    "type should not be null or empty.",
                ));
            }
        }
    }
    Ok(())
}

fn health_check(c: &ContainerView) -> EcsResult<()> {
    let name = c.label();
    let Some(h) = &c.health_check else {
        return Ok(());
    };
    if h.command.as_ref().is_none_or(|cmd| cmd.is_empty()) {
        return Err(bad(
            name,
            "healthCheck",
            "command should not be null or empty.",
        ));
    }
    let ranges = [
        ("interval", h.interval, 5, 300),
        ("timeout", h.timeout, 2, 60),
        ("retries", h.retries, 1, 10),
        ("startPeriod", h.start_period, 0, 300),
    ];
    for (field, value, min, max) in ranges {
        if value.is_some_and(|v| !(min..=max).contains(&v)) {
            return Err(bad(
                name,
                "healthCheck",
                format!("{field} must be between {min} and {max}."),
            ));
        }
    }
    Ok(())
}
