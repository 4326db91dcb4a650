//! Typed views of a RegisterTaskDefinition request.
//!
//! The request is stored as the raw JSON the caller sent (so every member,
//! including ones this version of Berth does not know, round-trips through
//! DescribeTaskDefinition); these views exist to type-check it — a wrong
//! JSON type anywhere is a SerializationException — and to validate it.
//! Many fields are therefore only ever deserialized, never read.
#![allow(dead_code)]

use crate::tags::Tag;
use serde::Deserialize;
use serde::de::{DeserializeOwned, Deserializer};
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::ops::Deref;

/// A structure member. serde's derived struct impls also accept a JSON
/// array (positional fields); AWS's JSON protocol does not, so every
/// structure-typed member goes through this wrapper, which insists on an
/// object.
#[derive(Debug, Clone)]
pub struct Obj<T>(pub T);

impl<T> Deref for Obj<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

impl<'de, T: DeserializeOwned> Deserialize<'de> for Obj<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let map = Map::<String, Value>::deserialize(d)?;
        T::deserialize(Value::Object(map))
            .map(Obj)
            .map_err(serde::de::Error::custom)
    }
}

pub type StringMap = BTreeMap<String, String>;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RegisterView {
    pub family: Option<String>,
    pub task_role_arn: Option<String>,
    pub execution_role_arn: Option<String>,
    pub network_mode: Option<String>,
    pub container_definitions: Option<Vec<Obj<ContainerView>>>,
    pub volumes: Option<Vec<Obj<VolumeView>>>,
    pub placement_constraints: Option<Vec<Obj<PlacementConstraintView>>>,
    pub requires_compatibilities: Option<Vec<String>>,
    pub cpu: Option<String>,
    pub memory: Option<String>,
    pub tags: Option<Vec<Tag>>,
    pub pid_mode: Option<String>,
    pub ipc_mode: Option<String>,
    pub proxy_configuration: Option<Obj<ProxyConfigurationView>>,
    pub inference_accelerators: Option<Vec<Obj<InferenceAcceleratorView>>>,
    pub ephemeral_storage: Option<Obj<EphemeralStorageView>>,
    pub runtime_platform: Option<Obj<RuntimePlatformView>>,
    pub enable_fault_injection: Option<bool>,
}

impl RegisterView {
    pub fn containers(&self) -> impl Iterator<Item = &ContainerView> {
        self.container_definitions.iter().flatten().map(|c| &c.0)
    }
    pub fn volumes(&self) -> impl Iterator<Item = &VolumeView> {
        self.volumes.iter().flatten().map(|v| &v.0)
    }
    pub fn requires(&self, compatibility: &str) -> bool {
        self.requires_compatibilities
            .iter()
            .flatten()
            .any(|c| c == compatibility)
    }
    pub fn network_mode(&self) -> Option<&str> {
        self.network_mode.as_deref()
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContainerView {
    pub name: Option<String>,
    pub image: Option<String>,
    pub repository_credentials: Option<Obj<RepositoryCredentialsView>>,
    pub cpu: Option<i32>,
    pub memory: Option<i32>,
    pub memory_reservation: Option<i32>,
    pub links: Option<Vec<String>>,
    pub port_mappings: Option<Vec<Obj<PortMappingView>>>,
    pub essential: Option<bool>,
    pub restart_policy: Option<Obj<RestartPolicyView>>,
    pub entry_point: Option<Vec<String>>,
    pub command: Option<Vec<String>>,
    pub environment: Option<Vec<Obj<KeyValueView>>>,
    pub environment_files: Option<Vec<Obj<EnvironmentFileView>>>,
    pub mount_points: Option<Vec<Obj<MountPointView>>>,
    pub volumes_from: Option<Vec<Obj<VolumeFromView>>>,
    pub linux_parameters: Option<Obj<LinuxParametersView>>,
    pub secrets: Option<Vec<Obj<SecretView>>>,
    pub depends_on: Option<Vec<Obj<DependencyView>>>,
    pub start_timeout: Option<i32>,
    pub stop_timeout: Option<i32>,
    pub version_consistency: Option<String>,
    pub hostname: Option<String>,
    pub user: Option<String>,
    pub working_directory: Option<String>,
    pub disable_networking: Option<bool>,
    pub privileged: Option<bool>,
    pub readonly_root_filesystem: Option<bool>,
    pub dns_servers: Option<Vec<String>>,
    pub dns_search_domains: Option<Vec<String>>,
    pub extra_hosts: Option<Vec<Obj<HostEntryView>>>,
    pub docker_security_options: Option<Vec<String>>,
    pub interactive: Option<bool>,
    pub pseudo_terminal: Option<bool>,
    pub docker_labels: Option<StringMap>,
    pub ulimits: Option<Vec<Obj<UlimitView>>>,
    pub log_configuration: Option<Obj<LogConfigurationView>>,
    pub health_check: Option<Obj<HealthCheckView>>,
    pub system_controls: Option<Vec<Obj<SystemControlView>>>,
    pub resource_requirements: Option<Vec<Obj<ResourceRequirementView>>>,
    pub firelens_configuration: Option<Obj<FirelensConfigurationView>>,
    pub credential_specs: Option<Vec<String>>,
}

impl ContainerView {
    /// The name for messages; validation has ensured it is present by the
    /// time most checks run.
    pub fn label(&self) -> &str {
        self.name.as_deref().unwrap_or("")
    }
    pub fn port_mappings(&self) -> impl Iterator<Item = &PortMappingView> {
        self.port_mappings.iter().flatten().map(|p| &p.0)
    }
    pub fn secrets(&self) -> impl Iterator<Item = &SecretView> {
        self.secrets.iter().flatten().map(|s| &s.0)
    }
    pub fn log_driver(&self) -> Option<&str> {
        self.log_configuration
            .as_ref()
            .and_then(|l| l.log_driver.as_deref())
    }
    pub fn is_privileged(&self) -> bool {
        self.privileged == Some(true)
    }
    pub fn has_links(&self) -> bool {
        self.links.as_ref().is_some_and(|l| !l.is_empty())
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RepositoryCredentialsView {
    pub credentials_parameter: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PortMappingView {
    pub container_port: Option<i32>,
    pub host_port: Option<i32>,
    pub protocol: Option<String>,
    pub name: Option<String>,
    pub app_protocol: Option<String>,
    pub container_port_range: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RestartPolicyView {
    pub enabled: Option<bool>,
    pub ignored_exit_codes: Option<Vec<i32>>,
    pub restart_attempt_period: Option<i32>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KeyValueView {
    pub name: Option<String>,
    pub value: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EnvironmentFileView {
    pub value: Option<String>,
    #[serde(rename = "type")]
    pub kind: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MountPointView {
    pub source_volume: Option<String>,
    pub container_path: Option<String>,
    pub read_only: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VolumeFromView {
    pub source_container: Option<String>,
    pub read_only: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LinuxParametersView {
    pub capabilities: Option<Obj<CapabilitiesView>>,
    pub devices: Option<Vec<Obj<DeviceView>>>,
    pub init_process_enabled: Option<bool>,
    pub shared_memory_size: Option<i32>,
    pub tmpfs: Option<Vec<Obj<TmpfsView>>>,
    pub max_swap: Option<i32>,
    pub swappiness: Option<i32>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CapabilitiesView {
    pub add: Option<Vec<String>>,
    pub drop: Option<Vec<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeviceView {
    pub host_path: Option<String>,
    pub container_path: Option<String>,
    pub permissions: Option<Vec<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TmpfsView {
    pub container_path: Option<String>,
    pub size: Option<i32>,
    pub mount_options: Option<Vec<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SecretView {
    pub name: Option<String>,
    pub value_from: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DependencyView {
    pub container_name: Option<String>,
    pub condition: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HostEntryView {
    pub hostname: Option<String>,
    pub ip_address: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UlimitView {
    pub name: Option<String>,
    pub soft_limit: Option<i32>,
    pub hard_limit: Option<i32>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LogConfigurationView {
    pub log_driver: Option<String>,
    pub options: Option<StringMap>,
    pub secret_options: Option<Vec<Obj<SecretView>>>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HealthCheckView {
    pub command: Option<Vec<String>>,
    pub interval: Option<i32>,
    pub timeout: Option<i32>,
    pub retries: Option<i32>,
    pub start_period: Option<i32>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SystemControlView {
    pub namespace: Option<String>,
    pub value: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResourceRequirementView {
    pub value: Option<String>,
    #[serde(rename = "type")]
    pub kind: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FirelensConfigurationView {
    #[serde(rename = "type")]
    pub kind: Option<String>,
    pub options: Option<StringMap>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VolumeView {
    pub name: Option<String>,
    pub host: Option<Obj<HostVolumeView>>,
    pub docker_volume_configuration: Option<Obj<DockerVolumeView>>,
    pub efs_volume_configuration: Option<Obj<EfsVolumeView>>,
    pub fsx_windows_file_server_volume_configuration: Option<Obj<FsxVolumeView>>,
    pub configured_at_launch: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HostVolumeView {
    pub source_path: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DockerVolumeView {
    pub scope: Option<String>,
    pub autoprovision: Option<bool>,
    pub driver: Option<String>,
    pub driver_opts: Option<StringMap>,
    pub labels: Option<StringMap>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EfsVolumeView {
    pub file_system_id: Option<String>,
    pub root_directory: Option<String>,
    pub transit_encryption: Option<String>,
    pub transit_encryption_port: Option<i32>,
    pub authorization_config: Option<Obj<EfsAuthorizationView>>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EfsAuthorizationView {
    pub access_point_id: Option<String>,
    pub iam: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FsxVolumeView {
    pub file_system_id: Option<String>,
    pub root_directory: Option<String>,
    pub authorization_config: Option<Obj<FsxAuthorizationView>>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FsxAuthorizationView {
    pub credentials_parameter: Option<String>,
    pub domain: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PlacementConstraintView {
    #[serde(rename = "type")]
    pub kind: Option<String>,
    pub expression: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProxyConfigurationView {
    #[serde(rename = "type")]
    pub kind: Option<String>,
    pub container_name: Option<String>,
    pub properties: Option<Vec<Obj<KeyValueView>>>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InferenceAcceleratorView {
    pub device_name: Option<String>,
    pub device_type: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct EphemeralStorageView {
    #[serde(rename = "sizeInGiB")]
    pub size_in_gib: Option<i32>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RuntimePlatformView {
    pub cpu_architecture: Option<String>,
    pub operating_system_family: Option<String>,
}
