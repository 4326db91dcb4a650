//! [`NetError`]: everything a [`crate::Network`] can fail with.

use crate::addr::{CidrError, Ipv4Net};
use crate::ipam::IpamError;
use crate::types::{NetworkMode, PortMapping};
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum NetError {
    #[error("invalid network configuration: {0}")]
    InvalidConfig(String),
    #[error(transparent)]
    Cidr(#[from] CidrError),
    #[error("subnet {subnet} of bridge {bridge} overlaps the host route {route} on {iface}")]
    SubnetConflict {
        bridge: String,
        subnet: Ipv4Net,
        route: Ipv4Net,
        iface: String,
    },
    #[error("invalid task id {0:?}: 1 to 64 of A-Z a-z 0-9 _ . - (not starting with . or -)")]
    InvalidTaskId(String),
    #[error(transparent)]
    Ipam(#[from] IpamError),
    #[error("task {task_id} already has a {existing} network (asked for {requested})")]
    ModeConflict {
        task_id: String,
        existing: NetworkMode,
        requested: NetworkMode,
    },
    #[error("no network for task {0}")]
    UnknownTask(String),
    #[error("task {task_id} has network mode {mode}: it has no interface to publish ports to")]
    NotPublishable { task_id: String, mode: NetworkMode },
    #[error("invalid port mapping {mapping}: {reason}")]
    InvalidPortMapping {
        mapping: PortMapping,
        reason: &'static str,
    },
    /// The host port is already published. Placement should have made this
    /// impossible (RESOURCE:PORTS): this is a bug upstream, surfaced.
    #[error("host port {mapping} is already published for task {owner}")]
    PortInUse { mapping: PortMapping, owner: String },
    #[error("{tool} is not installed (looked in PATH, /usr/sbin, /sbin, /usr/bin, /bin){hint}")]
    ToolMissing {
        tool: &'static str,
        hint: &'static str,
    },
    #[error("`{command}` failed ({status}): {stderr}")]
    Tool {
        command: String,
        status: String,
        stderr: String,
    },
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    #[error("state file {path} is unreadable: {reason}")]
    State { path: PathBuf, reason: String },
    #[error("injected failure: {0}")]
    Injected(String),
}

impl NetError {
    pub(crate) fn io(context: impl Into<String>, source: std::io::Error) -> NetError {
        NetError::Io {
            context: context.into(),
            source,
        }
    }
}
