//! Validation of RegisterTaskDefinition. Problems are reported one at a
//! time, like ECS: the task's enum members, then the shape of the
//! definition (containers, volumes, constraints), what containers say about
//! one another, the launch types the caller requires, and last the memory
//! and cpu the containers ask for — so a Fargate definition missing its
//! task size hears about that rather than about container memory.
//!
//! Classes follow ECS: a value outside an enum is InvalidParameterException;
//! a problem with the definition's content is ClientException.

use super::compat;
use super::containers;
use super::model::{ContainerView, RegisterView, VolumeView};
use super::relations;
use super::units::TaskSize;
use crate::error::{EcsError, EcsResult};
use std::collections::HashSet;

pub const MAX_CONTAINERS: usize = 10;
const MAX_PLACEMENT_CONSTRAINTS: usize = 10;
const NETWORK_MODES: [&str; 4] = ["bridge", "host", "awsvpc", "none"];
#[rustfmt::skip]
const OS_FAMILIES: [&str; 10] = [
    "LINUX", "WINDOWS_SERVER_2016_FULL", "WINDOWS_SERVER_2019_FULL", "WINDOWS_SERVER_2019_CORE",
    "WINDOWS_SERVER_2022_FULL", "WINDOWS_SERVER_2022_CORE", "WINDOWS_SERVER_2025_FULL",
    "WINDOWS_SERVER_2025_CORE", "WINDOWS_SERVER_2004_CORE", "WINDOWS_SERVER_20H2_CORE",
];

/// An enum-valued member: a value outside the model is a malformed
/// parameter, not a problem with the definition's content.
pub fn one_of(value: &str, member: &str, allowed: &[&str]) -> EcsResult<()> {
    if allowed.contains(&value) {
        Ok(())
    } else {
        Err(EcsError::invalid(format!(
            "Invalid value '{value}' for {member}. Valid values are: {}",
            allowed.join(", ")
        )))
    }
}

/// Families, container names and volume names follow the same rule.
pub use crate::input::is_simple_name;

pub fn family(name: &str) -> EcsResult<()> {
    if is_simple_name(name) {
        Ok(())
    } else {
        Err(EcsError::client(
            "Family contains invalid characters. Up to 255 letters (uppercase and lowercase), numbers, hyphens, and underscores are allowed.",
        ))
    }
}

/// Everything about a registration except the family and tags.
pub fn definition(view: &RegisterView, size: &TaskSize) -> EcsResult<()> {
    enums(view)?;
    let containers: Vec<&ContainerView> = view.containers().collect();
    if containers.is_empty() {
        return Err(EcsError::client("Container list cannot be empty."));
    }
    if containers.len() > MAX_CONTAINERS {
        return Err(EcsError::client(format!(
            "Too many containers. The maximum is {MAX_CONTAINERS}."
        )));
    }
    let volume_names = volumes(view)?;
    placement_constraints(view)?;
    ephemeral_storage(view)?;
    containers::each(view, &containers, &volume_names)?;
    relations::references(&containers)?;
    proxy_configuration(view, &containers)?;
    inference_accelerators(view)?;
    compat::check_required(view, size)?;
    relations::resources(&containers, size)
}

fn enums(view: &RegisterView) -> EcsResult<()> {
    if let Some(m) = &view.network_mode {
        one_of(m, "networkMode", &NETWORK_MODES)?;
    }
    if let Some(m) = &view.pid_mode {
        one_of(m, "pidMode", &["host", "task"])?;
    }
    if let Some(m) = &view.ipc_mode {
        one_of(m, "ipcMode", &["host", "task", "none"])?;
    }
    for c in view.requires_compatibilities.iter().flatten() {
        one_of(c, "requiresCompatibilities", &compat::LAUNCH_TYPES)?;
    }
    if let Some(rp) = &view.runtime_platform {
        if let Some(a) = &rp.cpu_architecture {
            one_of(a, "runtimePlatform.cpuArchitecture", &["X86_64", "ARM64"])?;
        }
        if let Some(os) = &rp.operating_system_family {
            one_of(os, "runtimePlatform.operatingSystemFamily", &OS_FAMILIES)?;
        }
    }
    Ok(())
}

/// Validate `volumes` and return the declared names, which mount points
/// must refer to.
fn volumes(view: &RegisterView) -> EcsResult<HashSet<String>> {
    let mut names = HashSet::new();
    for v in view.volumes() {
        let name = v.name.as_deref().unwrap_or("");
        if name.is_empty() {
            return Err(EcsError::client("Volume.name should not be null or empty."));
        }
        if !is_simple_name(name) {
            return Err(EcsError::client(format!(
                "Invalid volume name '{name}'. Up to 255 letters (uppercase and lowercase), numbers, hyphens, and underscores are allowed."
            )));
        }
        if !names.insert(name.to_string()) {
            return Err(EcsError::client(format!(
                "Duplicate volume name '{name}'. Volume names must be unique."
            )));
        }
        volume_configuration(name, v)?;
    }
    Ok(names)
}

fn volume_configuration(name: &str, v: &VolumeView) -> EcsResult<()> {
    let kinds = [
        v.host.is_some(),
        v.docker_volume_configuration.is_some(),
        v.efs_volume_configuration.is_some(),
        v.fsx_windows_file_server_volume_configuration.is_some(),
    ];
    if kinds.iter().filter(|k| **k).count() > 1 {
        return Err(EcsError::client(format!(
            "Invalid volume '{name}'. Specify only one of host, dockerVolumeConfiguration, efsVolumeConfiguration or fsxWindowsFileServerVolumeConfiguration."
        )));
    }
    if let Some(d) = &v.docker_volume_configuration {
        if let Some(scope) = &d.scope {
            one_of(
                scope,
                "dockerVolumeConfiguration.scope",
                &["task", "shared"],
            )?;
        }
        // Docker scopes volumes to the task unless told otherwise, and only
        // a shared volume outlives the task to be provisioned ahead of it.
        if d.autoprovision == Some(true) && d.scope.as_deref() != Some("shared") {
            return Err(EcsError::client(format!(
                "Invalid volume '{name}'. autoprovision can only be true when scope is 'shared'."
            )));
        }
    }
    if let Some(efs) = &v.efs_volume_configuration {
        efs_volume(name, efs)?;
    }
    if let Some(fsx) = &v.fsx_windows_file_server_volume_configuration {
        if fsx.file_system_id.as_deref().is_none_or(str::is_empty) {
            return Err(EcsError::client(format!(
                "Invalid volume '{name}'. fileSystemId is required."
            )));
        }
        if fsx.root_directory.as_deref().is_none_or(str::is_empty) {
            return Err(EcsError::client(format!(
                "Invalid volume '{name}'. rootDirectory is required."
            )));
        }
        let auth = fsx.authorization_config.as_ref();
        if auth.is_none_or(|a| a.credentials_parameter.is_none() || a.domain.is_none()) {
            return Err(EcsError::client(format!(
                "Invalid volume '{name}'. authorizationConfig with credentialsParameter and domain is required."
            )));
        }
    }
    Ok(())
}

fn efs_volume(name: &str, efs: &super::model::EfsVolumeView) -> EcsResult<()> {
    if efs.file_system_id.as_deref().is_none_or(str::is_empty) {
        return Err(EcsError::client(format!(
            "Invalid volume '{name}'. fileSystemId is required."
        )));
    }
    if let Some(t) = &efs.transit_encryption {
        one_of(
            t,
            "efsVolumeConfiguration.transitEncryption",
            &["ENABLED", "DISABLED"],
        )?;
    }
    if let Some(port) = efs.transit_encryption_port
        && !(1..=65535).contains(&port)
    {
        return Err(EcsError::client(format!(
            "Invalid volume '{name}'. transitEncryptionPort must be between 1 and 65535."
        )));
    }
    let encrypted = efs.transit_encryption.as_deref() == Some("ENABLED");
    if let Some(auth) = &efs.authorization_config {
        if let Some(iam) = &auth.iam {
            one_of(
                iam,
                "efsVolumeConfiguration.authorizationConfig.iam",
                &["ENABLED", "DISABLED"],
            )?;
        }
        // EFS enforces IAM and access points only over TLS.
        let needs_tls = auth.iam.as_deref() == Some("ENABLED") || auth.access_point_id.is_some();
        if needs_tls && !encrypted {
            return Err(EcsError::client(format!(
                "Invalid volume '{name}'. Transit encryption must be enabled when using IAM authorization or an access point."
            )));
        }
        // An access point carries its own root directory.
        let root = efs.root_directory.as_deref().unwrap_or("/");
        if auth.access_point_id.is_some() && root != "/" {
            return Err(EcsError::client(format!(
                "Invalid volume '{name}'. rootDirectory must be omitted or set to '/' when an access point is used."
            )));
        }
    }
    Ok(())
}

fn placement_constraints(view: &RegisterView) -> EcsResult<()> {
    let constraints = view.placement_constraints.as_deref().unwrap_or(&[]);
    if constraints.len() > MAX_PLACEMENT_CONSTRAINTS {
        return Err(EcsError::client(format!(
            "Too many placement constraints. The maximum is {MAX_PLACEMENT_CONSTRAINTS}."
        )));
    }
    for c in constraints {
        match c.kind.as_deref() {
            Some("memberOf") => {}
            Some(other) => {
                return Err(EcsError::client(format!(
                    "Invalid placement constraint type '{other}'. Task definitions support only 'memberOf'."
                )));
            }
            None => {
                return Err(EcsError::client(
                    "Placement constraint type should not be null or empty.",
                ));
            }
        }
        if c.expression.as_deref().is_none_or(str::is_empty) {
            return Err(EcsError::client(
                "Placement constraint expression is required for type 'memberOf'.",
            ));
        }
    }
    Ok(())
}

fn ephemeral_storage(view: &RegisterView) -> EcsResult<()> {
    let Some(es) = &view.ephemeral_storage else {
        return Ok(());
    };
    match es.size_in_gib {
        Some(n) if (21..=200).contains(&n) => Ok(()),
        _ => Err(EcsError::client(
            "The ephemeral storage size must be between 21 GiB and 200 GiB.",
        )),
    }
}

fn proxy_configuration(view: &RegisterView, containers: &[&ContainerView]) -> EcsResult<()> {
    let Some(p) = &view.proxy_configuration else {
        return Ok(());
    };
    if let Some(kind) = &p.kind {
        one_of(kind, "proxyConfiguration.type", &["APPMESH"])?;
    }
    let name = p.container_name.as_deref().unwrap_or("");
    if name.is_empty() {
        return Err(EcsError::client(
            "proxyConfiguration.containerName should not be null or empty.",
        ));
    }
    if !containers.iter().any(|c| c.name.as_deref() == Some(name)) {
        return Err(EcsError::client(format!(
            "The proxy configuration container '{name}' is not defined in the task definition."
        )));
    }
    if view.network_mode() != Some("awsvpc") {
        return Err(EcsError::client(
            "A proxy configuration requires network mode 'awsvpc'.",
        ));
    }
    for prop in p.properties.iter().flatten() {
        if prop.name.as_deref().is_none_or(str::is_empty) {
            return Err(EcsError::client(
                "proxyConfiguration.properties entries require a name.",
            ));
        }
    }
    Ok(())
}

fn inference_accelerators(view: &RegisterView) -> EcsResult<()> {
    let mut seen = HashSet::new();
    for a in view.inference_accelerators.iter().flatten() {
        let name = a.device_name.as_deref().unwrap_or("");
        if name.is_empty() || a.device_type.as_deref().is_none_or(str::is_empty) {
            return Err(EcsError::client(
                "Inference accelerators require a deviceName and a deviceType.",
            ));
        }
        if !seen.insert(name) {
            return Err(EcsError::client(format!(
                "Duplicate inference accelerator deviceName '{name}'."
            )));
        }
    }
    Ok(())
}
