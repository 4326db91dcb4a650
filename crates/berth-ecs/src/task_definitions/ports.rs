//! Port mappings: ports in range, one of containerPort or
//! containerPortRange, and host ports the network mode can honour.

use super::containers::bad;
use super::model::PortMappingView;
use super::validate::one_of;
use crate::error::{EcsError, EcsResult};
use std::collections::HashSet;

/// `start-end` of a `containerPortRange`.
fn port_range(text: &str) -> Option<(i32, i32)> {
    let (a, b) = text.split_once('-')?;
    let (a, b): (i32, i32) = (a.trim().parse().ok()?, b.trim().parse().ok()?);
    (1 <= a && a < b && b <= 65535).then_some((a, b))
}

fn is_port_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && !s.starts_with('-')
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
}

pub fn port_mapping(
    mode: Option<&str>,
    name: &str,
    pm: &PortMappingView,
    port_names: &mut HashSet<String>,
) -> EcsResult<()> {
    let setting = "portMappings";
    if mode == Some("none") {
        return Err(bad(
            name,
            setting,
            "Port mappings are not supported when networkMode=none.",
        ));
    }
    if let Some(p) = &pm.protocol {
        one_of(p, "portMappings.protocol", &["tcp", "udp"])?;
    }
    if let Some(p) = &pm.app_protocol {
        one_of(p, "portMappings.appProtocol", &["http", "http2", "grpc"])?;
    }
    if let Some(n) = &pm.name {
        if !is_port_name(n) {
            return Err(bad(
                name,
                setting,
                format!(
                    "Port mapping name '{n}' is invalid. Up to 64 lowercase letters, numbers, underscores, and hyphens are allowed, not starting with a hyphen."
                ),
            ));
        }
        if !port_names.insert(n.clone()) {
            return Err(bad(
                name,
                setting,
                format!("Port mapping names must be unique within a task definition: '{n}'."),
            ));
        }
    }
    match (pm.container_port, &pm.container_port_range) {
        (Some(_), Some(_)) | (None, None) => {
            return Err(bad(
                name,
                setting,
                "Specify either containerPort or containerPortRange.",
            ));
        }
        (None, Some(range)) => {
            if port_range(range).is_none() {
                return Err(bad(
                    name,
                    setting,
                    format!(
                        "containerPortRange '{range}' is invalid. Use the form start-end with 1 <= start < end <= 65535."
                    ),
                ));
            }
            if !matches!(mode, None | Some("bridge") | Some("awsvpc")) {
                return Err(bad(
                    name,
                    setting,
                    "containerPortRange is supported only with network mode 'bridge' or 'awsvpc'.",
                ));
            }
            if pm.host_port.is_some() {
                return Err(bad(
                    name,
                    setting,
                    "hostPort cannot be specified with containerPortRange.",
                ));
            }
        }
        (Some(port), None) => {
            if !(1..=65535).contains(&port) {
                return Err(bad(
                    name,
                    setting,
                    "containerPort must be between 1 and 65535.",
                ));
            }
            if pm.host_port.is_some_and(|h| !(0..=65535).contains(&h)) {
                return Err(bad(name, setting, "hostPort must be between 0 and 65535."));
            }
            if let (Some(m @ ("awsvpc" | "host")), Some(h)) = (mode, pm.host_port)
                && h != port
            {
                return Err(EcsError::client(format!(
                    "When networkMode={m}, the host ports and container ports in port mappings must match."
                )));
            }
        }
    }
    Ok(())
}
